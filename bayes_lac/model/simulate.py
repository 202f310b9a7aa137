"""Simulated panels with known parameters, for tests, recovery checks and development.

`simulate_panel` draws a panel in the schema of ``bayes_lac.data.panel`` from the model written in
``bayes_lac.model.results`` (negative-binomial counts around a log-linear rate per 10,000 children
with authority levels and trends, a common random-walk path, a deprivation effect and the
persistence of each year's deviation into the next), and
returns the true parameters beside it. It also mimics the gaps of the official data: children
in need and child protection published only from 2013, UASC counts of 1-5 suppressed, no
authority-level UASC in 2010, deprivation published for 2015-2024 only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_lac.config import ENGLAND_CODE, MEASURES, RATE_PER
from bayes_lac.model.path import log_rate_path, persist_forward

#: Default true values, one per measure in `MEASURES` order (log rate per 10,000 children).
DEFAULT_TRUTH: dict = {
    "intercept": (4.0, 5.8, 3.8),
    "la_intercept_sd": (0.35, 0.3, 0.4),
    "la_trend_sd": (0.02, 0.02, 0.03),
    "year_sigma": (0.03, 0.04, 0.05),
    "deprivation_effect": (0.02, 0.012, 0.018),
    "dispersion": (300.0, 400.0, 150.0),
    # share of a year's deviation from the path carried into the next (0: none)
    "persistence": (0.0, 0.0, 0.0),
    # correlation of authority deviations across measures (levels and trends alike)
    "correlation": 0.5,
}


#: The kinds of awkward truth `simulate_panel` takes (its ``events``).
EVENTS: tuple[str, ...] = ("local", "national", "uasc", "deprivation", "population", "starts")


def surge_then_plateau(years, start: int, rise: float = 0.05, rise_years: int = 7) -> np.ndarray:
    """A log-scale shift over `years`: 0 up to `start`, then up by log(1 + `rise`) a year for
    `rise_years` years, then flat (a local surge in supply that stops)."""
    years = np.asarray(years)
    steps = np.clip(years - start, 0, rise_years)
    return steps * np.log1p(rise)


def _sum_to_zero_mvnormal(rng, n: int, sds, corr: float) -> np.ndarray:
    m = len(sds)
    r = np.full((m, m), corr) + (1 - corr) * np.eye(m)
    cov = np.outer(sds, sds) * r
    x = rng.multivariate_normal(np.zeros(m), cov, size=n)
    return x - x.mean(axis=0)


def simulate_panel(
    n_la: int = 11,
    years: tuple[int, int] = (2010, 2025),
    truth: dict | None = None,
    seed: int = 0,
    measures_from: dict | None = None,
    deprivation_years: tuple[int, int] | None = (2015, 2024),
    uasc_gaps: bool = True,
    population: float = 40_000.0,
    events: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """A simulated panel and the truth it was drawn from.

    Parameters
    ----------
    n_la
        Number of local authorities (codes ``E0699xxxx``, not real ones).
    years
        First and last year (inclusive), 31 March snapshots.
    truth
        Overrides of `DEFAULT_TRUTH` (same keys; per-measure tuples in `MEASURES` order).
    seed
        Random seed.
    measures_from
        First published year per measure; default ``{"children_in_need": 2013,
        "child_protection": 2013}`` as in the official data. Earlier cells are blank.
    deprivation_years
        Years whose deprivation is published (blank outside); ``None`` publishes every year.
        The truth uses deprivation in every year regardless.
    uasc_gaps
        Blank the UASC count in the first year, and suppress counts of 1-5 (blank with
        ``uasc_note = "x"``), as in the official data.
    population
        Typical number of children aged 0-17 per authority.
    events
        Awkward truths, each by authority index (see `EVENTS`):

        ``local``: ``{i: shift}``, a shift of authority ``i``'s looked-after log rate per year
        (an array over the years, e.g. `surge_then_plateau`): a local change in supply;
        ``national``: a shift of every authority's log rate per year, an array over the years
        or ``{measure: array}``: a national change;
        ``uasc``: ``{i: extra}``, UASC children added per year (an influx);
        ``deprivation``: ``{i: (year, points)}``, deprivation up by ``points`` from ``year`` on;
        ``population``: ``{i: rate}``, the child population growing by ``rate`` a year
        (compounded from the first year) instead of the common 0.4 %;
        ``starts``: ``{i: year}``, an authority created in ``year`` (a reorganisation): no row
        before it.

    Returns
    -------
    panel
        One row per authority and year plus England (``E92000001``, the sum of the
        authorities), with the columns of the panel schema and ``geographic_level``,
        ``uasc_note``.
    truth
        ``log_rate`` (measure, la, year), the true log rate of the modelled count with every
        event; ``local_shift`` (la, year) and ``national_shift`` (measure, year), the events'
        shifts in it; ``intercept`` (measure,), ``la_intercept`` and ``la_trend`` (la, measure; each sums
        to zero over la), ``year_effect`` (measure, year; zero up to each measure's first
        published year), ``year_sigma``, ``deprivation_effect``, ``dispersion``, ``persistence`` (measure,),
        ``reference_year`` (the last year), ``deprivation_centre`` (mean of the true
        deprivation over all authority-years before any deprivation event), ``la``, ``year``,
        ``measure``.
    """
    rng = np.random.default_rng(seed)
    events = dict(events or {})
    strange = sorted(set(events) - set(EVENTS))
    if strange:
        raise ValueError(f"unknown events {', '.join(strange)}; known: {', '.join(EVENTS)}")
    spec = {**DEFAULT_TRUTH, **(truth or {})}
    measures_from = {"children_in_need": 2013, "child_protection": 2013, **(measures_from or {})}
    yrs = np.arange(years[0], years[1] + 1)
    n_y, m = len(yrs), len(MEASURES)
    codes = [f"E0699{i:04d}" for i in range(n_la)]
    names = [f"Simulated {i}" for i in range(n_la)]

    pop = population * np.exp(rng.normal(0, 0.5, n_la))[:, None] * (1 + 0.004 * (yrs - yrs[0]))[None, :]
    for i, rate in events.get("population", {}).items():
        pop[i] = pop[i, 0] * (1 + rate) ** (yrs - yrs[0])
    pop = np.round(pop)
    dep_level = rng.normal(20, 7, n_la).clip(4, 45)
    deprivation = dep_level[:, None] + rng.normal(0, 1.0, (n_la, n_y)).cumsum(axis=1) * 0.5
    # the centre is that of the deprivation without events, so an event moves its authority only
    centre = float(np.round(deprivation, 1).mean())
    for i, (year, points) in events.get("deprivation", {}).items():
        deprivation[i, yrs >= year] += points
    deprivation = np.round(deprivation, 1)

    intercept = np.asarray(spec["intercept"], float)
    la_intercept = _sum_to_zero_mvnormal(rng, n_la, np.asarray(spec["la_intercept_sd"]), spec["correlation"])
    la_trend = _sum_to_zero_mvnormal(rng, n_la, np.asarray(spec["la_trend_sd"]), spec["correlation"])
    year_sigma = np.asarray(spec["year_sigma"], float)
    first_year = np.array([measures_from.get(name, yrs[0]) for name in MEASURES])
    steps = rng.normal(0, year_sigma[:, None], (m, n_y))
    steps[yrs[None, :] <= first_year[:, None]] = 0.0
    year_effect = steps.cumsum(axis=1)
    national_shift = np.zeros((m, n_y))
    shift = events.get("national")
    if isinstance(shift, dict):
        for name, values in shift.items():
            national_shift[MEASURES.index(name)] = values
    elif shift is not None:
        national_shift[:] = np.asarray(shift, float)[None, :]
    local_shift = np.zeros((n_la, n_y))
    for i, values in events.get("local", {}).items():
        local_shift[i] = values
    dep_effect = np.asarray(spec["deprivation_effect"], float)
    dispersion = np.asarray(spec["dispersion"], float)
    reference_year = int(yrs[-1])

    log_rate = log_rate_path(
        intercept[:, None, None],
        la_intercept.T[:, :, None],
        la_trend.T[:, :, None],
        year_effect[:, None, :],
        dep_effect[:, None, None],
        deprivation[None],
        yrs[None, None, :],
        reference_year,
        centre,
    )["log_rate"]
    log_rate = log_rate + national_shift[:, None, :]
    log_rate[0] = log_rate[0] + local_shift
    persistence = np.asarray(spec["persistence"], float)
    path = np.exp(log_rate) * pop[None] / RATE_PER
    # a measure's first published year starts on its path (no distance carried in)
    carries = np.broadcast_to((yrs[None, :] > first_year[:, None])[:, None, :], path.shape)
    # NegBin(mean, alpha) as a gamma-Poisson mixture, year by year
    counts = persist_forward(
        path,
        persistence[:, None],
        lambda t, mean: rng.poisson(rng.gamma(dispersion[:, None], mean / dispersion[:, None])),
        carries=carries,
    )
    for k in range(len(MEASURES)):
        counts[k][:, yrs < first_year[k]] = np.nan

    uasc = rng.poisson(np.exp(rng.normal(np.log(4.0), 0.8, n_la))[:, None] * pop / 40_000 * np.ones(n_y)).astype(float)
    for i, extra in events.get("uasc", {}).items():
        uasc[i] = uasc[i] + np.asarray(extra, float)
    uasc_note = np.full((n_la, n_y), "", dtype=object)
    if uasc_gaps:
        small = (uasc >= 1) & (uasc <= 5)
        uasc_note[small] = "x"
        uasc_note[:, 0] = "not published"
        uasc_reported = np.where(small, np.nan, uasc)
        uasc_reported[:, 0] = np.nan
    else:
        uasc_reported = uasc
    lac_reported = counts[0] + uasc  # published looked_after includes UASC

    dep_reported = deprivation.astype(float).copy()
    if deprivation_years is not None:
        outside = (yrs < deprivation_years[0]) | (yrs > deprivation_years[1])
        dep_reported[:, outside] = np.nan

    starts = events.get("starts", {})
    rows = []
    for i in range(n_la):
        for t, year in enumerate(yrs):
            if year < starts.get(i, yrs[0]):
                continue
            rows.append(
                {
                    "la_code": codes[i],
                    "la_name": names[i],
                    "geographic_level": "Local authority",
                    "year": int(year),
                    "population_0_17": pop[i, t],
                    "looked_after": lac_reported[i, t],
                    "children_in_need": counts[1][i, t],
                    "child_protection": counts[2][i, t],
                    "uasc": uasc_reported[i, t],
                    "uasc_note": uasc_note[i, t],
                    "deprivation": dep_reported[i, t],
                }
            )
    exists = np.array([[year >= starts.get(i, yrs[0]) for year in yrs] for i in range(n_la)])
    for t, year in enumerate(yrs):
        now = exists[:, t]
        rows.append(
            {
                "la_code": ENGLAND_CODE,
                "la_name": "England",
                "geographic_level": "National",
                "year": int(year),
                "population_0_17": pop[now, t].sum(),
                "looked_after": lac_reported[now, t].sum(),
                "children_in_need": counts[1][now, t].sum(),
                "child_protection": counts[2][now, t].sum(),
                "uasc": uasc[now, t].sum() if not uasc_gaps or t > 0 else np.nan,
                "uasc_note": "",
                "deprivation": np.nan,
            }
        )
    panel = pd.DataFrame(rows)
    panel["uasc_note"] = panel["uasc_note"].replace("", np.nan)

    truth_out = {
        "log_rate": log_rate,
        "local_shift": local_shift,
        "national_shift": national_shift,
        "intercept": intercept,
        "la_intercept": la_intercept,
        "la_trend": la_trend,
        "year_effect": year_effect,
        "year_sigma": year_sigma,
        "deprivation_effect": dep_effect,
        "dispersion": dispersion,
        "persistence": persistence,
        "reference_year": reference_year,
        "deprivation_centre": centre,
        "la": codes,
        "year": yrs,
        "measure": list(MEASURES),
    }
    return panel, truth_out
