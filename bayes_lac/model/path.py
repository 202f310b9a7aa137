"""The model's path, and how counts follow it: written once for every part that needs them.

For measure m, authority i and year t (see ``bayes_lac.model.results`` for the whole model)::

    log_rate   = intercept + la_intercept + la_trend * (year - reference_year)
                 + year_effect + deprivation_effect * (deprivation - deprivation_centre)
    count[t]   ~ NegBin(path_count[t] * exp(persistence * deviation[t - 1]), dispersion)
    deviation  = log(count + 0.5) - log(path_count)

`log_rate_path` is the first line, term by term; `persist_forward` draws counts year after
year around a path, feeding each drawn count's distance from the path into the next year.
They are used by

* `bayes_lac.model.results.log_rate_terms`: the path of a fitted run, which the
  decomposition splits and from which expected counts and deviations come;
* `bayes_lac.analysis.forecast.forecast`: the forecast paths and predictive draws;
* `bayes_lac.model.simulate.simulate_panel`: simulated panels with a known truth;
* ``bench/sbc_model.py``: simulation-based calibration.

Both work on numpy arrays (the caller lays out axes that broadcast) and, for
`log_rate_path`, on xarray DataArrays (broadcast by dimension name).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bayes_lac.config import RATE_PER

#: Added to a count before its logarithm, so that a zero count stays finite.
COUNT_OFFSET = 0.5


def log_distance(count, expected):
    """How far a count sits from an expected count on the log scale: ``log(count + 0.5) - log(expected)``.

    The deviation of the persistence term (a count against the path's expected count of the
    same cell). Works on numpy arrays and DataArrays (NaN stays NaN).
    """
    return np.log(count + COUNT_OFFSET) - np.log(expected)


def observed_log_rate(count, population):
    """Log rate per 10,000 of observed counts: ``log((count + 0.5) / (population / 10,000))``.

    ``observed_log_rate - log_rate`` is `log_distance` of the count from the path's expected
    count. Works on numpy arrays and DataArrays (NaN stays NaN).
    """
    return np.log((count + COUNT_OFFSET) / (population / RATE_PER))


def log_rate_path(
    intercept,
    la_intercept,
    la_trend,
    year_effect,
    deprivation_effect,
    deprivation,
    year,
    reference_year,
    deprivation_centre,
) -> dict:
    """The path's log rate per 10,000 children, and its terms.

    Returns ``{"level", "trend", "year_effect", "deprivation", "log_rate"}``: ``level =
    intercept + la_intercept``, ``trend = la_trend * (year - reference_year)``,
    ``deprivation = deprivation_effect * (deprivation - deprivation_centre)`` and their sum
    with ``year_effect``. Arguments broadcast against each other (numpy by position, xarray
    by dimension name).
    """
    terms = {
        "level": intercept + la_intercept,
        "trend": la_trend * (year - reference_year),
        "year_effect": year_effect,
        "deprivation": deprivation_effect * (deprivation - deprivation_centre),
    }
    terms["log_rate"] = terms["level"] + terms["trend"] + terms["year_effect"] + terms["deprivation"]
    return terms


def persist_forward(
    path_count: np.ndarray,
    persistence,
    draw_counts: Callable[[int, np.ndarray], np.ndarray],
    deviation=0.0,
    carries: np.ndarray | None = None,
) -> np.ndarray:
    """Counts drawn year after year around a path, each year's distance carried into the next.

    Parameters
    ----------
    path_count
        Expected count on the path (deviation 0), years on the last axis: (..., T).
    persistence
        Share of a year's distance from the path carried into the next; broadcasts against
        ``path_count[..., 0]``.
    draw_counts
        ``draw_counts(t, mean)``: the counts of year t given their mean (the caller's noise
        and random stream, e.g. a negative binomial as a gamma-Poisson mixture).
    deviation
        The distance from the path in the year before the first (0: start on the path).
    carries
        (..., T) booleans: where False, year t starts afresh on its path (no distance carried
        in, e.g. a measure's first published year). None: it carries everywhere.

    Returns
    -------
    The drawn counts, shaped like ``path_count`` broadcast with `persistence` and `deviation`.
    """
    path_count = np.asarray(path_count, float)
    first = np.broadcast_shapes(path_count.shape[:-1], np.shape(persistence), np.shape(deviation))
    n_years = path_count.shape[-1]
    counts = np.empty((*first, n_years))
    previous = np.broadcast_to(np.asarray(deviation, float), first)
    for t in range(n_years):
        carried = persistence * previous
        if carries is not None:
            carried = np.where(carries[..., t], carried, 0.0)
        counts[..., t] = draw_counts(t, path_count[..., t] * np.exp(carried))
        previous = log_distance(counts[..., t], path_count[..., t])
    return counts
