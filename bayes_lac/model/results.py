"""Fitted results: what a run holds, how it is saved and loaded, and the model's scales.

A run is an ``xarray.DataTree``. Everything downstream of ``fit`` (decomposition, forecasts,
costs, sensitivity, reports) is a plain function of it, so it works the same on a fit made a
minute ago and on one loaded from disk a year later.

The model (see ``bayes_lac.model``)
-----------------------------------
For measure ``m``, authority ``i`` and year ``t`` the *modelled count* is

* looked_after: children looked after **excluding UASC** (the UASC count is added back as a
  known component, so population, UASC and deprivation stay separable);
* children_in_need, child_protection: the published count.

    modelled_count[m, i, t] ~ NegBin(mean = one_step[m, i, t], alpha = dispersion[m])
    log one_step[m, i, t]  = log(population_0_17[i, t] / 10_000) + log_rate[m, i, t]
                             + persistence[m] * deviation[m, i, t - 1]
    log_rate[m, i, t]      = intercept[m] + la_intercept[i, m]
                             + la_trend[i, m] * (year - reference_year)
                             + year_effect[m, t]
                             + deprivation_effect[m] * (deprivation[i, t] - deprivation_centre)
    deviation[m, i, t]     = observed_log_rate[m, i, t] - log_rate[m, i, t]
    observed_log_rate      = log((modelled_count + 0.5) / (population_0_17 / 10_000))

``log_rate`` is the authority's *path*: where its rate sits given its level, its trend, the
common path and deprivation. ``deviation`` is how far the published count sat from the path
in a year; a share ``persistence`` (0 to 1) of it carries into the next year, so a forecast
starts from where the authority is now and returns to its path at that rate (observed
deviations of English authorities from a straight line last for years). The term is left
out where the previous year's count is not in the likelihood (the first year, a measure's
first published year, a blank cell). ``expected`` below is the path's count (deviation 0);
the decomposition splits the path, and the deviation is reported beside it.

``la_intercept`` and ``la_trend`` sum to zero over the authorities in the comparison set (they
are each authority's deviation from the set's common level and trend), and are correlated
across measures. ``year_effect[m, first year] = 0`` and it is a random walk after that: it
carries the comparison set's common path (national policy and shocks).

Scales (one name per scale, used everywhere)
--------------------------------------------
* ``log_rate``: link scale, log of the expected rate per 10,000 children aged 0-17 (for
  looked_after: non-UASC children).
* ``expected``: expected modelled count (no sampling noise).
* ``rate``: rate per 10,000 children aged 0-17 of the **reported** measure (looked_after
  including UASC).
* ``predicted``: predictive count with negative-binomial noise, plus UASC for looked_after.
  Intervals on counts come from ``predicted``.

Groups and variables
--------------------
``posterior`` (dims ``chain``, ``draw`` plus):
    intercept (measure); la_intercept (la, measure); la_trend (la, measure), log scale per
    year; year_effect (measure, year); year_sigma (measure), random-walk step sd;
    deprivation_effect (measure), per unit of ``deprivation``; dispersion (measure), the
    negative-binomial alpha (variance = mu + mu**2 / alpha); persistence (measure), the
    share of a year's deviation from the path carried into the next. Further hyper-parameters may be
    present; downstream code must not rely on them.
``constant_data`` (dims la, year): population_0_17, uasc, deprivation (as used by the
    model, after any documented imputation), uasc_imputed, deprivation_imputed (bool), and
    coordinate ``la_name`` on ``la``.
``observed_data``: modelled_count (measure, la, year), NaN where not in the likelihood;
    reported_count (measure, la, year), the published count (NaN if not published).
``reference``: England's published counts and population by year, for charts and the
    converge-england scenario: count (measure, year), population_0_17 (year).
    Neighbours' average is computed from the comparison set.
``log_likelihood``, ``log_prior``: for LOO and power-scaling prior sensitivity.
``sample_stats``: from the sampler.

Root attrs (strings, JSON where structured): bayes_lac_version, target_la, comparison
(e.g. "neighbours-2021"), neighbours (JSON list of codes), until_year, reference_year,
deprivation_centre, measures (JSON list), priors (JSON), prior_set, sampler (JSON: draws,
tune, chains, seed, sampler name), panel_sha256, data_vintage, created_utc, imputations
(JSON list of human-readable notices), diagnostics (JSON), converged ("true"/"false").

Coordinates: ``la`` holds ONS codes, ``year`` integers (31 March year), ``measure`` the
names in ``bayes_lac.config.MEASURES``.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from bayes_lac.config import RATE_PER


def attr_json(results: xr.DataTree, key: str):
    """A structured root attribute of a run, decoded from JSON."""
    try:
        return json.loads(results.attrs[key])
    except KeyError:
        raise KeyError(f"the run has no attribute {key!r}; is it a bayes_lac run?") from None


def _select_la(ds: xr.Dataset, la) -> xr.Dataset:
    if la is None or "la" not in ds.dims:
        return ds
    return ds.sel(la=la)


def log_rate_terms(results: xr.DataTree, la=None) -> xr.Dataset:
    """The terms of ``log_rate`` per draw, for authorities `la` (a code, a list, or all).

    Returns a Dataset with dims (chain, draw, measure[, la], year) holding ``level``
    (intercept + la_intercept), ``trend`` (la_trend * (year - reference_year)), ``year_effect``,
    ``deprivation`` (deprivation_effect * centred deprivation) and their sum ``log_rate``,
    the log of the expected rate per 10,000 children aged 0-17 of the modelled count.
    """
    post = results["posterior"].to_dataset()
    const = _select_la(results["constant_data"].to_dataset(), la)
    reference_year = int(results.attrs["reference_year"])
    centre = float(results.attrs["deprivation_centre"])
    la_intercept = _select_la(post["la_intercept"].to_dataset(), la)["la_intercept"]
    la_trend = _select_la(post["la_trend"].to_dataset(), la)["la_trend"]
    years = const["year"]
    terms = xr.Dataset(
        {
            "level": post["intercept"] + la_intercept,
            "trend": la_trend * (years - reference_year),
            "year_effect": post["year_effect"].sel(year=years),
            "deprivation": post["deprivation_effect"] * (const["deprivation"] - centre),
        }
    )
    terms["log_rate"] = terms["level"] + terms["trend"] + terms["year_effect"] + terms["deprivation"]
    return terms


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


def deviation(results: xr.DataTree, la=None) -> xr.DataArray:
    """Observed distance from the path per draw: ``observed_log_rate - log_rate``.

    Dims (chain, draw, measure, [la,] year); NaN where the modelled count is not in the
    likelihood. Its last year is where a forecast starts (see ``bayes_lac.analysis.forecast``).
    """
    const = _select_la(results["constant_data"].to_dataset(), la)
    obs = _select_la(results["observed_data"].to_dataset(), la)["modelled_count"]
    observed = observed_log_rate(obs, const["population_0_17"])
    return (observed - log_rate_terms(results, la)["log_rate"]).rename("deviation")


def expected(results: xr.DataTree, la=None) -> xr.DataArray:
    """Expected modelled count on the path per draw (no sampling noise, deviation 0): dims
    (chain, draw, measure, [la,] year).

    For looked_after this excludes UASC; see `expected_reported` for the published measure.
    """
    const = _select_la(results["constant_data"].to_dataset(), la)
    log_rate = log_rate_terms(results, la)["log_rate"]
    return (np.exp(log_rate) * const["population_0_17"] / RATE_PER).rename("expected")


def uasc_component(results: xr.DataTree, la=None) -> xr.DataArray:
    """The known UASC count added to looked_after (zero for the other measures)."""
    const = _select_la(results["constant_data"].to_dataset(), la)
    measures = results["posterior"]["intercept"]["measure"]
    is_lac = xr.DataArray(measures.values == "looked_after", coords={"measure": measures}, dims="measure")
    return (const["uasc"] * is_lac).rename("uasc")


def expected_reported(results: xr.DataTree, la=None) -> xr.DataArray:
    """Expected count of the published measure per draw: looked_after includes UASC."""
    return (expected(results, la) + uasc_component(results, la)).rename("expected_reported")


def rate(results: xr.DataTree, la=None) -> xr.DataArray:
    """Expected rate per 10,000 children aged 0-17 of the published measure, per draw."""
    const = _select_la(results["constant_data"].to_dataset(), la)
    return (expected_reported(results, la) / const["population_0_17"] * RATE_PER).rename("rate")


# ---------------------------------------------------------------------------------------
# Saving and loading runs (netCDF via h5netcdf; never pickle, never executed)
# ---------------------------------------------------------------------------------------

#: Root attrs every saved run must carry.
REQUIRED_ATTRS: tuple[str, ...] = (
    "bayes_lac_version",
    "target_la",
    "comparison",
    "reference_year",
    "deprivation_centre",
    "measures",
    "priors",
    "converged",
)
#: Groups every saved run must carry.
REQUIRED_GROUPS: tuple[str, ...] = ("posterior", "constant_data", "observed_data")


def _version_compatible(saved: str, current: str) -> bool:
    """Runs are readable across patch releases; before 1.0, minor releases may break them."""
    if saved == "test":
        return True
    try:
        s = [int(x) for x in saved.split(".")[:2]]
        c = [int(x) for x in current.split(".")[:2]]
    except ValueError:
        return False
    if c[0] == 0:
        return s == c
    return s[0] == c[0]


def save_run(results: xr.DataTree, path) -> None:
    """Write a run to a netCDF file (HDF5 via h5netcdf), compressed.

    Parameters
    ----------
    results
        A run from ``bayes_lac.model.fit``.
    path
        File to write (conventionally ``*.nc``); its folder is created if needed. The file is
        replaced atomically (see `bayes_lac.files.atomic_path`).
    """
    from pathlib import Path

    from bayes_lac.errors import RunFileError

    path = Path(path)
    missing = [a for a in REQUIRED_ATTRS if a not in results.attrs]
    if missing:
        raise RunFileError(f"refusing to save {path}: the run lacks attrs {', '.join(missing)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    from bayes_lac.files import atomic_path

    encoding = {}
    for node in results.subtree:
        ds = node.to_dataset(inherit=False)
        enc = {
            name: {"compression": "gzip", "compression_opts": 4}
            for name, var in ds.data_vars.items()
            if var.dtype.kind in "fiub" and var.ndim > 0
        }
        if enc:
            encoding[node.path if node.path != "/" else "/"] = enc
    # Written to a temporary file and renamed: an interrupted save never leaves a partial run.
    with atomic_path(path) as temp:
        results.to_netcdf(temp, engine="h5netcdf", encoding=encoding)


def load_run(path) -> xr.DataTree:
    """Read a run saved by `save_run`, fully into memory, and check it is usable.

    Raises
    ------
    RunFileError
        The file is missing, not netCDF, not a bayes_lac run, or from an incompatible
        version of bayes_lac.
    """
    from pathlib import Path

    from bayes_lac import __version__
    from bayes_lac.errors import RunFileError

    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"run file {path} not found; expected a netCDF file from `bayes-lac fit`")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            results = tree.load()
    except (OSError, ValueError) as err:
        raise RunFileError(f"{path} is not a readable netCDF run file: {err}") from None
    missing = [a for a in REQUIRED_ATTRS if a not in results.attrs]
    if missing:
        raise RunFileError(
            f"{path} is not a bayes_lac run: it lacks the attrs {', '.join(missing)}"
        )
    groups = [g for g in REQUIRED_GROUPS if g not in results.children]
    if groups:
        raise RunFileError(f"{path} is not a complete bayes_lac run: no {', '.join(groups)} group")
    saved = str(results.attrs["bayes_lac_version"])
    if not _version_compatible(saved, __version__):
        raise RunFileError(
            f"{path} was written by bayes_lac {saved}, which this version ({__version__}) "
            "cannot read; refit the model with this version"
        )
    return results
