"""Future UASC (unaccompanied asylum-seeking children looked after): a stochastic path.

UASC are not modelled: the looked-after count the models fit leaves them out, and forecasts add
them back. Their future is not known (arrivals, dispersal and the National Transfer Scheme move
them), so besides holding the last count a forecast can draw a path per draw, by resampling
whole past trajectories:

* a **donor** is an authority and a year ``t0`` of the data whose UASC count was published
  (not suppressed or filled) and at least `MIN_DONOR_COUNT`; its trajectory is the log ratio
  ``log((u[t0 + h] + 1) / (u[t0] + 1))`` for h = 1, 2, ... while its counts stay published;
  after that (the data end, or a count is suppressed or filled) its last ratio is **held**;
* each draw takes one donor at random, so a draw's years move together as a real authority's
  did (an influx that fades as children turn 18 included). The spread at h years is that of
  the past h-year movements of authorities' UASC counts where donors have h years of published
  data after ``t0``, and otherwise that of their shorter movements held: on the national panel
  to 2025, 56 % of donors have a real 5-year ratio and 21 % a 10-year one, so long horizons'
  spread is understated (0.71 on the log scale at 10 years against 0.78 among the donors with
  ten years), as is a fall into the suppressed range (1-5 children), which ends a trajectory;
* at every h the log ratios are **centred on their median across the draws**, so the median
  path stays at the base count at every horizon (to within rounding: with an even number of
  draws the median is the mean of the two middle ones): the national surges and falls of the
  past are not carried forward as a drift (the leave-future-out check measured a drift worse,
  models/README.md). Counts are ``(base + 1) x exp(ratio) - 1``, rounded, never below zero.
  Each authority's donor is drawn on its own, so a sum over authorities has less UASC spread
  than if their movements were shared.

Donors start from counts above the suppression range (1-5), so the ratios of a count going from
0 to 11 are not applied to an authority with hundreds.
"""

from __future__ import annotations

import numpy as np

#: How future UASC enter a looked-after forecast: the count at the fit's last year, held; a
#: stochastic path around it (this module); growth by pooled changes (the backtest's design
#: measured worse: models/README.md).
UASC_PATHS: tuple[str, ...] = ("hold", "stochastic", "pooled")
#: Fewest donors (authority-years) a stochastic path is drawn from.
MIN_DONORS = 30
#: Smallest published count a donor trajectory starts from (above the suppression range 1-5).
MIN_DONOR_COUNT = 6


def donor_ratios(history: np.ndarray, filled: np.ndarray | None, horizon: int) -> np.ndarray:
    """The donors' trajectories: (donor, horizon) log ratios ``log((u[t0 + h] + 1) / (u[t0] + 1))``.

    `history` is (authority, year) UASC counts, `filled` (same shape) True where the count was
    not published (suppressed and set to a midpoint, or filled from another year): such cells
    start no trajectory and end one, whose last ratio is then held. Raises ValueError with
    fewer than `MIN_DONORS` donors.
    """
    history = np.asarray(history, float)
    if history.ndim != 2:
        raise ValueError(f"UASC history must be (authority, year); got shape {history.shape}")
    published = np.isfinite(history) & (~np.asarray(filled, bool) if filled is not None else True)
    rows = []
    n_years = history.shape[1]
    for i, t0 in zip(*np.nonzero(published & (history >= MIN_DONOR_COUNT))):
        if t0 + 1 >= n_years or not published[i, t0 + 1]:
            continue  # no published year after it: nothing to learn about a path
        ratio = np.empty(horizon)
        for h in range(1, horizon + 1):
            t = t0 + h
            if t < n_years and published[i, t] and (h == 1 or np.isfinite(ratio[h - 2])):
                ratio[h - 1] = np.log1p(history[i, t]) - np.log1p(history[i, t0])
            else:
                ratio[h - 1] = np.nan
        rows.append(np.where(np.isfinite(ratio), ratio, _held(ratio)))
    if len(rows) < MIN_DONORS:
        raise ValueError(
            f"a stochastic UASC path needs at least {MIN_DONORS} published authority-years with {MIN_DONOR_COUNT} "
            f"or more UASC and a published year after; the data hold {len(rows)}"
        )
    return np.array(rows)


def _held(ratio: np.ndarray) -> np.ndarray:
    """`ratio` with each NaN replaced by the last finite value before it (0 if none)."""
    out = ratio.copy()
    last = 0.0
    for h in range(len(out)):
        if np.isfinite(out[h]):
            last = out[h]
        else:
            out[h] = last
    return out


def stochastic_factors(ratios: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Multipliers of ``count + 1``: (*shape, horizon), one donor trajectory per draw, centred so
    that their median over the draws (the first axis) is 1 at every horizon.

    `ratios` is (donor, horizon) from `donor_ratios`; `shape` the leading shape (draws[, authorities]).
    """
    ratios = np.asarray(ratios, float)
    picked = ratios[rng.integers(0, len(ratios), size=shape)]  # (*shape, horizon)
    centred = picked - np.median(picked, axis=0, keepdims=True)
    return np.exp(centred)


def around(base: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """UASC counts around `base` (broadcast to `factors`): ``(base + 1) x factor - 1``,
    rounded, never below zero."""
    return np.round(np.clip((np.asarray(base, float) + 1.0) * factors - 1.0, 0.0, None))
