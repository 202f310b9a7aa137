"""Future UASC (unaccompanied asylum-seeking children looked after): a stochastic path.

UASC are not modelled: the looked-after count the models fit leaves them out, and forecasts add
them back. Their future is not known (arrivals, dispersal and the National Transfer Scheme move
them), so besides holding the last count a forecast can draw a path per draw:

    log(U[T + h] + 1) = log(U[T] + 1) + d_1 + ... + d_h

with each yearly change ``d`` resampled from the yearly log changes ``log((u[t] + 1) / (u[t - 1] + 1))``
of every authority and year in the data up to ``T``, **less their median**: the path's median
stays at the held count (the national surges and falls of the past are not carried forward as
a drift; the leave-future-out check measured that worse, models/README.md), while its spread is
that of the past year-to-year movements of authorities' UASC counts, heavy tails included.
Counts are rounded and never below zero.
"""

from __future__ import annotations

import numpy as np

#: How future UASC enter a looked-after forecast: the count at the fit's last year, held; a
#: stochastic path around it (this module); growth by pooled changes (the backtest's design
#: measured worse: models/README.md).
UASC_PATHS: tuple[str, ...] = ("hold", "stochastic", "pooled")
#: Fewest yearly changes a stochastic path is drawn from.
MIN_CHANGES = 30


def centred_yearly_changes(history: np.ndarray) -> np.ndarray:
    """The pooled yearly log changes of UASC counts, less their median.

    `history` is (authority, year), NaN where not published. Returns a 1-d array; raises
    ValueError when fewer than `MIN_CHANGES` changes are available.
    """
    history = np.asarray(history, float)
    if history.ndim != 2:
        raise ValueError(f"UASC history must be (authority, year); got shape {history.shape}")
    changes = np.log1p(history[:, 1:]) - np.log1p(history[:, :-1])
    changes = changes[np.isfinite(changes)]
    if changes.size < MIN_CHANGES:
        raise ValueError(
            f"a stochastic UASC path needs at least {MIN_CHANGES} yearly changes of authorities' UASC counts; "
            f"the data hold {changes.size}"
        )
    return changes - np.median(changes)


def stochastic_factors(changes: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """exp of the cumulated resampled changes: (*shape, horizon) multipliers of ``count + 1``.

    `shape` is the leading shape and its last entry the horizon, e.g. (draws, authorities, horizon).
    """
    steps = rng.choice(np.asarray(changes, float), size=shape)
    return np.exp(np.cumsum(steps, axis=-1))


def around(base: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """UASC counts around `base` (broadcast to `factors`): ``(base + 1) x factor - 1``,
    rounded, never below zero."""
    return np.round(np.clip((np.asarray(base, float) + 1.0) * factors - 1.0, 0.0, None))
