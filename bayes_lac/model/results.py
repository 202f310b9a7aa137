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
(e.g. "neighbours-2021"), neighbours (JSON list of codes: the target's neighbours among the
modelled authorities, see `RunInfo.neighbours`), until_year, reference_year,
deprivation_centre, measures (JSON list), priors (JSON), prior_set, sampler (JSON: draws,
tune, chains, seed, sampler name), panel_sha256, panel_name, data_vintage, created_utc,
imputations (JSON list of human-readable notices), diagnostics (JSON), converged
("true"/"false").

Facts about a run are read once
-------------------------------
`run_info` reads these attrs, checks them and returns a frozen `RunInfo`; `load_run` does so
for every file it reads (and recomputes the convergence verdict from the draws). No other
module parses a run's attrs: analyses, reports and commands ask `run_info`.

Coordinates: ``la`` holds ONS codes, ``year`` integers (31 March year), ``measure`` the
names in ``bayes_lac.config.MEASURES``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bayes_lac.config import MEASURES, RATE_PER
from bayes_lac.errors import RunFileError
from bayes_lac.model.diagnostics import Diagnostics
from bayes_lac.model.path import log_rate_path, observed_log_rate

# ---------------------------------------------------------------------------------------
# Facts about a run, read once
# ---------------------------------------------------------------------------------------

#: DfE statistical-neighbour models a comparison set can be built from.
NEIGHBOUR_MODELS: tuple[str, ...] = ("2021", "2025")


@dataclass(frozen=True)
class RunInfo:
    """What a run is about, read once from its attrs and coordinates by `run_info`.

    Attributes
    ----------
    target_la
        ONS code of the authority the run was fitted for.
    authorities
        Codes of every modelled authority, in the run's order (the target first in a fit).
    la_names
        Name of each modelled authority, by code.
    years
        The fitted years (31 March), in order.
    until_year
        The last year of data the fit was allowed to use.
    reference_year
        Year at which authority trends are centred.
    deprivation_centre
        Deprivation value at which the deprivation effect is zero (share of children in
        relative low-income families, %).
    measures
        Measures fitted.
    first_data_year
        ``{la: {measure: year}}``: the first year whose count is in the likelihood, None
        when the authority has no count of that measure in the run.
    comparison
        How the comparison set was chosen: ``"neighbours-2021"``, ``"neighbours-2025"``,
        ``"all"`` or ``"list"``; `comparison_chosen` says it in words.
    neighbours
        The run's neighbours of its target, all modelled: the comparison set less the target,
        except in a national run (``"all"``), where they are the target's DfE statistical
        neighbours (2021 model); `neighbours_source` says it in words. `neighbours_of`
        gives them for any modelled authority.
    converged, diagnostics
        The convergence verdict and its diagnostics (recomputed from the draws when a run is
        loaded, see `load_run`).
    version
        bayes_lac version that made the run.
    data_vintage, panel_sha256, panel_name
        The data: its vintage, the SHA-256 of the panel and the panel's file name.
    prior_set, priors
        The prior set's name and the priors used (``{section: {key: value}}``).
    sampler
        Sampler settings (draws, tune, chains, seed, sampler, target_accept) as recorded.
    parameterisation
        How the sampler saw the parameters (a partition dict, or a mode name).
    created_utc
        When the fit finished.
    latent
        Whether the run is the latent-state model's (`bayes_lac.model.latent_fit`).
    imputations
        The fit's notices about imputed and excluded inputs.
    """

    target_la: str
    authorities: tuple[str, ...]
    la_names: dict[str, str] = field(repr=False)
    years: tuple[int, ...]
    until_year: int
    reference_year: int
    deprivation_centre: float
    measures: tuple[str, ...]
    first_data_year: dict[str, dict[str, int | None]] = field(repr=False)
    comparison: str
    neighbours: tuple[str, ...]
    converged: bool
    diagnostics: Diagnostics = field(repr=False)
    version: str
    data_vintage: str = ""
    panel_sha256: str = ""
    panel_name: str = ""
    prior_set: str = ""
    priors: dict = field(default_factory=dict, repr=False)
    sampler: dict = field(default_factory=dict, repr=False)
    parameterisation: dict | str = field(default="auto", repr=False)
    created_utc: str = ""
    latent: bool = False
    imputations: tuple[str, ...] = field(default=(), repr=False)

    @property
    def first_year(self) -> int:
        """The first fitted year."""
        return self.years[0]

    @property
    def last_year(self) -> int:
        """The last fitted year: forecasts start the year after, costs are priced in it."""
        return self.years[-1]

    @property
    def is_national(self) -> bool:
        """Whether the comparison set is every local authority (the national model)."""
        return self.comparison == "all"

    @property
    def comparison_chosen(self) -> str:
        """How the comparison set was chosen, in words."""
        if self.comparison.startswith("neighbours-"):
            model = self.comparison.removeprefix("neighbours-")
            return f"{self.target_la} and its DfE statistical neighbours ({model} model) found in the panel"
        if self.is_national:
            return "every local authority in the panel (the national model)"
        return "a list of authorities given when fitting"

    @property
    def neighbours_source(self) -> str:
        """Where `neighbours` come from, in words."""
        if self.comparison.startswith("neighbours-"):
            return f"DfE statistical neighbours ({self.comparison.removeprefix('neighbours-')} model), as in the fit"
        if self.is_national:
            return "DfE statistical neighbours (2021 model) of the target, all in the national model"
        return "the run's comparison authorities"

    @property
    def neighbours_setting(self) -> str | tuple[str, ...]:
        """The comparison-set setting that rebuilds this run's set (`LACModel`'s ``neighbours``)."""
        if self.comparison.startswith("neighbours-"):
            return self.comparison.removeprefix("neighbours-")
        if self.is_national:
            return "all"
        return tuple(c for c in self.authorities if c != self.target_la)

    def neighbours_of(self, la: str) -> tuple[str, ...]:
        """The authorities `la` is compared with: the run's `neighbours` for its target, every
        other modelled authority for any other authority of the run."""
        if la == self.target_la:
            return self.neighbours
        if la not in self.authorities:
            from bayes_lac.errors import UnknownAuthorityError

            raise UnknownAuthorityError(
                f"authority {la} is not modelled in this run; it holds {len(self.authorities)} "
                f"authorities: {', '.join(self.authorities)}"
            )
        return tuple(c for c in self.authorities if c != la)

    def la_name(self, la: str) -> str:
        """The name of a modelled authority (its code if the run has no names)."""
        return self.la_names.get(la, la)


def _shown(text) -> str:
    text = str(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse(attrs, key: str, parse, expected: str, default=None, required: bool = True):
    """Attribute `key` parsed by `parse`, or a `RunFileError` naming it and what was expected."""
    if key not in attrs:
        if required:
            raise RunFileError(f"the run has no attribute {key!r}; is it a bayes_lac run?")
        return default
    text = attrs[key]
    try:
        return parse(text)
    except (TypeError, ValueError):  # json.JSONDecodeError is a ValueError
        raise RunFileError(f"the run's attribute {key!r} is {_shown(text)!r}; expected {expected}") from None


def _whole(text) -> int:
    value = str(text).strip()
    if not value.lstrip("-").isdigit():
        raise TypeError(value)
    return int(value)


def _finite(text) -> float:
    value = float(str(text).strip())
    if not math.isfinite(value):
        raise TypeError(value)
    return value


def _json_of(kind: type):
    def parse(text):
        value = json.loads(text)
        if not isinstance(value, kind):
            raise TypeError(value)
        return value

    return parse


def _json_strings(text) -> tuple[str, ...]:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(value)
    return tuple(value)


def _flag(text) -> bool:
    if text not in ("true", "false"):
        raise TypeError(text)
    return text == "true"


def _partition(text):
    text = str(text)
    return json.loads(text) if text.strip().startswith("{") else text


def run_info(results: xr.DataTree, allow_latent: bool = False) -> RunInfo:
    """The facts about a run (`RunInfo`), read from its attrs and coordinates and checked.

    A run of the latent-state model (`bayes_lac.model.latent_fit`) is refused unless
    `allow_latent`: only the analyses that have been ported to it (the decomposition, the
    forecasts and costs, and the board report) pass it.

    Raises
    ------
    RunFileError
        An attribute is missing or not what a run holds (e.g. priors that are not JSON, a
        reference year that is not a year, a converged flag that disagrees with the stored
        diagnostics); the message names the attribute and what was expected.
    """
    attrs = results.attrs
    latent = str(attrs.get("model", "")) == "latent"
    if latent and not allow_latent:
        raise RunFileError(
            "this is a run of the latent-state model (bayes_lac.model.latent_fit), the package's default, which "
            "this analysis of the 0.2 model does not read: the decomposition, forecasts, costs, the board report "
            "and prior sensitivity read it (bayes-lac decompose, forecast, costs, report and sensitivity); fit the "
            "0.2 model with "
            "bayes-lac fit --model default for the others (models/README.md)"
        )
    if "constant_data" not in results.children:
        raise RunFileError("the run has no constant_data group; is it a bayes_lac run?")
    const = results["constant_data"]
    authorities = tuple(str(c) for c in const["la"].values)
    years = tuple(int(y) for y in const["year"].values)
    names = (
        {str(c): str(n) for c, n in zip(const["la"].values, const["la_name"].values)}
        if "la_name" in const.coords
        else {}
    )
    # a run without its draws (sent to workers to refit) still has its facts
    post = results["posterior"] if "posterior" in results.children else xr.Dataset()
    if "year_effect" in post and tuple(int(y) for y in post["year_effect"]["year"].values) != years:
        raise RunFileError("the run's posterior and constant_data cover different years; the file is damaged")

    target = _parse(attrs, "target_la", str, "an ONS code")
    if target not in authorities:
        raise RunFileError(f"the run's attribute 'target_la' is {_shown(target)!r}, which the run does not model")
    comparison = _parse(attrs, "comparison", str, "neighbours-2021, neighbours-2025, all or list")
    if comparison not in ("all", "list") + tuple(f"neighbours-{m}" for m in NEIGHBOUR_MODELS):
        raise RunFileError(
            f"the run's attribute 'comparison' is {_shown(comparison)!r}; expected neighbours-2021, "
            "neighbours-2025, all or list"
        )
    neighbours = _parse(attrs, "neighbours", _json_strings, "a JSON list of ONS codes")
    stray = [c for c in neighbours if c not in authorities or c == target]
    if stray:
        raise RunFileError(
            f"the run's attribute 'neighbours' lists {', '.join(stray[:5])}, which the run does not model "
            "besides its target"
        )
    reference_year = _parse(attrs, "reference_year", _whole, "a year such as 2025")
    if reference_year not in years:
        raise RunFileError(
            f"the run's attribute 'reference_year' is {reference_year}, outside its years {years[0]}-{years[-1]}"
        )
    measures = _parse(attrs, "measures", _json_strings, "a JSON list of measures")
    run_measures = [str(m) for m in post["intercept"]["measure"].values] if "intercept" in post else list(measures)
    unknown = [m for m in measures if m not in MEASURES or m not in run_measures]
    if not measures or unknown:
        raise RunFileError(
            f"the run's attribute 'measures' is {_shown(attrs['measures'])!r}; expected a JSON list of the "
            f"measures in its posterior ({', '.join(run_measures)})"
        )
    diagnostics = _parse(attrs, "diagnostics", Diagnostics.from_json, "the JSON diagnostics a fit stores")
    converged = _parse(attrs, "converged", _flag, '"true" or "false"')
    if converged != diagnostics.converged:
        raise RunFileError(
            f"the run's attribute 'converged' is {attrs['converged']!r} but its stored diagnostics say "
            f"{'converged' if diagnostics.converged else 'not converged'}; the file was edited"
        )
    first: dict[str, dict[str, int | None]] = {la: {} for la in authorities}
    if "observed_data" in results.children and "modelled_count" in results["observed_data"]:
        counts = results["observed_data"]["modelled_count"]
        have = counts.notnull().transpose("measure", "la", "year").values
        obs_measures = [str(m) for m in counts["measure"].values]
        obs_las = [str(c) for c in counts["la"].values]
        obs_years = [int(y) for y in counts["year"].values]
        for k, m in enumerate(obs_measures):
            if m not in measures:
                continue
            for i, la in enumerate(obs_las):
                hits = np.flatnonzero(have[k, i])
                if la in first:
                    first[la][m] = obs_years[hits[0]] if hits.size else None
    return RunInfo(
        target_la=target,
        authorities=authorities,
        la_names=names,
        years=years,
        until_year=_parse(attrs, "until_year", _whole, "a year such as 2025", default=years[-1], required=False),
        reference_year=reference_year,
        deprivation_centre=_parse(attrs, "deprivation_centre", _finite, "a finite number"),
        measures=measures,
        first_data_year=first,
        comparison=comparison,
        neighbours=neighbours,
        converged=converged,
        diagnostics=diagnostics,
        version=_parse(attrs, "bayes_lac_version", str, "a version such as 0.2.0"),
        data_vintage=str(attrs.get("data_vintage", "")),
        panel_sha256=str(attrs.get("panel_sha256", "")),
        panel_name=str(attrs.get("panel_name", "")),
        prior_set=str(attrs.get("prior_set", "")),
        priors=_parse(attrs, "priors", _json_of(dict), "the priors as a JSON object"),
        sampler=_parse(attrs, "sampler", _json_of(dict), "the sampler settings as a JSON object", {}, required=False),
        parameterisation=_parse(
            attrs, "parameterisation", _partition, "a parameterisation (JSON) or its name", "auto", required=False
        ),
        created_utc=str(attrs.get("created_utc", "")),
        latent=latent,
        imputations=_parse(attrs, "imputations", _json_strings, "a JSON list of notices", (), required=False),
    )


def _select_la(ds: xr.Dataset, la) -> xr.Dataset:
    if la is None or "la" not in ds.dims:
        return ds
    return ds.sel(la=la)


def log_rate_terms(results: xr.DataTree, la=None, years=None) -> xr.Dataset:
    """The terms of ``log_rate`` per draw, for authorities `la` (a code, a list, or all).

    Returns a Dataset with dims (chain, draw, measure[, la], year) holding ``level``
    (intercept + la_intercept), ``trend`` (la_trend * (year - reference_year)), ``year_effect``,
    ``deprivation`` (deprivation_effect * centred deprivation) and their sum ``log_rate``,
    the log of the expected rate per 10,000 children aged 0-17 of the modelled count.

    For a latent-state run the same terms come from `bayes_lac.model.latent_fit.latent_terms`:
    ``trend`` is then the authority's own (bending) path and ``year_effect`` the national path.

    `years`: only those years (a latent run's states are still drawn from every year's data).
    """
    if str(results.attrs.get("model", "")) == "latent":
        from bayes_lac.model.latent_fit import latent_terms

        return latent_terms(results, la, years=years)
    post = results["posterior"].to_dataset()
    const = _select_la(results["constant_data"].to_dataset(), la)
    if years is not None:
        const = const.sel(year=list(years))
    # read here rather than through run_info: analyses call this on views of a run cut to a
    # few years (see bayes_lac.analysis.decompose), which are not whole runs
    reference_year = _parse(results.attrs, "reference_year", _whole, "a year such as 2025")
    centre = _parse(results.attrs, "deprivation_centre", _finite, "a finite number")
    la_intercept = _select_la(post["la_intercept"].to_dataset(), la)["la_intercept"]
    la_trend = _select_la(post["la_trend"].to_dataset(), la)["la_trend"]
    years = const["year"]
    return xr.Dataset(
        log_rate_path(
            post["intercept"],
            la_intercept,
            la_trend,
            post["year_effect"].sel(year=years),
            post["deprivation_effect"],
            const["deprivation"],
            years,
            reference_year,
            centre,
        )
    )


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
    return expected_from(log_rate_terms(results, la)["log_rate"], const["population_0_17"])


def expected_from(log_rate, population) -> xr.DataArray:
    """The expected modelled count of a log rate per 10,000 and the child population (`expected`)."""
    return (np.exp(log_rate) * population / RATE_PER).rename("expected")


def uasc_component(results: xr.DataTree, la=None) -> xr.DataArray:
    """The known UASC count added to looked_after (zero for the other measures)."""
    const = _select_la(results["constant_data"].to_dataset(), la)
    measures = results["posterior"]["intercept"]["measure"]
    is_lac = xr.DataArray(measures.values == "looked_after", coords={"measure": measures}, dims="measure")
    return (const["uasc"] * is_lac).rename("uasc")


def expected_reported(results: xr.DataTree, la=None) -> xr.DataArray:
    """Expected count of the published measure per draw: looked_after includes UASC."""
    return (expected(results, la) + uasc_component(results, la)).rename("expected_reported")


def fitted_on(results: xr.DataTree, panel) -> bool | None:
    """Whether `panel` is the panel `results` was fitted on: its SHA-256 against the one the run
    records, of the whole panel or of its rows up to the run's until year (a fit on data prepared
    with ``until`` records the second, `bayes_lac.model.data.prepare_data`; a fit of earlier years
    of a longer grid the first); None if the run records none."""
    import pandas as pd

    from bayes_lac.data.panel import panel_sha256

    info = run_info(results, allow_latent=True)
    if not info.panel_sha256:
        return None
    if panel_sha256(panel) == info.panel_sha256:
        return True
    years = pd.to_numeric(panel["year"], errors="coerce")
    return panel_sha256(panel[years <= info.until_year]) == info.panel_sha256


def rate(results: xr.DataTree, la=None) -> xr.DataArray:
    """Expected rate per 10,000 children aged 0-17 of the published measure, per draw."""
    const = _select_la(results["constant_data"].to_dataset(), la)
    return (expected_reported(results, la) / const["population_0_17"] * RATE_PER).rename("rate")


#: Below this posterior contraction (1 - posterior variance / prior variance) the data are said
#: not to identify a parameter: its posterior is still mostly its prior.
IDENTIFIED_CONTRACTION = 0.5


def prior_contraction(results: xr.DataTree, name: str) -> xr.DataArray | None:
    """How much the data narrowed the prior of `name`: 1 - posterior variance / prior variance,
    per measure (1: the data decide it; 0: the posterior is the prior). For parameters with a
    normal prior whose ``sd`` per measure the run records (``attrs["priors"]``); None otherwise."""
    if name not in results["posterior"].data_vars:
        return None
    sd = json.loads(results.attrs.get("priors", "{}")).get(name, {}).get("sd")
    post = results["posterior"][name]
    if not isinstance(sd, dict) or "measure" not in post.dims:
        return None
    measures = [str(m) for m in post["measure"].values]
    if any(m not in sd for m in measures):
        return None
    prior_var = xr.DataArray([float(sd[m]) ** 2 for m in measures], dims="measure", coords={"measure": measures})
    return (1 - post.var(("chain", "draw")) / prior_var).rename(f"{name}_contraction")


# ---------------------------------------------------------------------------------------
# Saving and loading runs (netCDF via h5netcdf; never pickle, never executed)
# ---------------------------------------------------------------------------------------

#: Root attrs every saved run must carry.
REQUIRED_ATTRS: tuple[str, ...] = (
    "bayes_lac_version",
    "target_la",
    "comparison",
    "neighbours",
    "reference_year",
    "deprivation_centre",
    "measures",
    "priors",
    "diagnostics",
    "converged",
)
#: Groups every saved run must carry.
REQUIRED_GROUPS: tuple[str, ...] = ("posterior", "constant_data", "observed_data")
#: Groups the analyses of a run read (decompose, forecast, costs) and the gate needs: what
#: `load_run` reads for them, leaving out the pointwise log-likelihood and log-prior (reading
#: a group's metadata takes a noticeable share of a command's time).
ANALYSIS_GROUPS: tuple[str, ...] = ("posterior", "sample_stats", "constant_data", "observed_data", "reference")
#: The sampler statistics the convergence gate reads (divergences, E-BFMI), with their coordinates:
#: all of ``sample_stats`` that `load_run` reads when it is given `groups`.
GATE_SAMPLE_STATS: frozenset[str] = frozenset({"diverging", "energy", "chain", "draw"})


def _release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a version string such as "0.2.0", None if it is not one."""
    parts = str(version).strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])


def _version_compatible(saved: str, current: str) -> bool:
    """Runs are readable across patch releases; before 1.0, a minor release may change them."""
    s, c = _release(saved), _release(current)
    if s is None or c is None:
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


def _read(path, groups: Sequence[str] | None) -> xr.DataTree:
    """The run in `path`, fully in memory: every group, or the root attrs and `groups`.

    Read straight from HDF5 (`bayes_lac.model.runfile`, several times faster), or through
    xarray when the file uses a netCDF feature that reader does not decode.
    """
    import h5py

    from bayes_lac.model.runfile import read_groups

    with h5py.File(path, "r") as handle:
        every = list(handle) if groups is None else groups
        present = [g for g in every if g in handle]
        # given groups: the sampler statistics the gate reads, and no others (nutpie records about twenty)
        unread = (
            [k for k in handle["sample_stats"] if k not in GATE_SAMPLE_STATS]
            if groups is not None and "sample_stats" in handle
            else []
        )
    fast = read_groups(path, present, {"sample_stats": unread})
    if fast is not None:
        return fast
    if groups is None:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            return tree.load()
    parts = {}
    for group in ["/", *present]:
        drop = unread if group == "sample_stats" else None
        with xr.open_dataset(path, engine="h5netcdf", group=group, drop_variables=drop) as ds:
            parts[group] = ds.load()
    tree = xr.DataTree.from_dict({g: ds for g, ds in parts.items() if g != "/"})
    tree.attrs.update(parts["/"].attrs)
    return tree


def load_run(path, groups: Sequence[str] | None = None, allow_latent: bool = False) -> xr.DataTree:
    """Read a run saved by `save_run`, fully into memory, and check it before anything uses it.

    The checks: the file is a bayes_lac run of a version this one reads; its attrs are what a
    run holds (`run_info`); and the convergence gate passes the same verdict on the stored
    draws as the run records. The run's ``gate_digest`` attr (recorded at fit time,
    ``bayes_lac.model.diagnostics.gate_digest``) covers its draws, its recorded diagnostics
    and verdict, and the gate's thresholds and version: when the loaded run's digest is the
    recorded one, its recorded diagnostics are the gate's on these draws and are kept.
    Otherwise (an edit to the draws, the verdict or the numbers; a run from another
    version; no digest) R-hat, ESS, divergences and E-BFMI are recomputed
    (``bayes_lac.model.diagnostics.check_convergence``), a verdict they do not support is
    refused, and the recomputed diagnostics replace the stored ones in the returned run,
    so they are the only ones anything reads.

    Parameters
    ----------
    path
        The run file.
    groups
        Groups to read (e.g. `ANALYSIS_GROUPS`, for commands that need no log-likelihood);
        default every group. Those of `REQUIRED_GROUPS` and ``sample_stats`` are always read;
        given `groups`, ``sample_stats`` holds only what the gate reads (`GATE_SAMPLE_STATS`).
    allow_latent
        Read a latent-state model's run (`run_info`'s switch: for the analyses ported to it).

    Raises
    ------
    RunFileError
        The file is missing, not netCDF, not a bayes_lac run, from an incompatible version of
        bayes_lac, has attrs that are not what a run holds, or records a verdict its draws do
        not support. The message starts with the file's path.
    """
    from pathlib import Path

    from bayes_lac import __version__
    from bayes_lac.model.diagnostics import check_convergence, gate_digest

    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"run file {path} not found; expected a netCDF file from `bayes-lac fit`")
    if groups is not None:
        groups = list(dict.fromkeys([*REQUIRED_GROUPS, "sample_stats", *groups]))
    try:
        results = _read(path, groups)
    except (OSError, ValueError) as err:
        raise RunFileError(f"{path} is not a readable netCDF run file: {err}") from None
    missing = [a for a in REQUIRED_ATTRS if a not in results.attrs]
    if missing:
        raise RunFileError(f"{path} is not a bayes_lac run: it lacks the attrs {', '.join(missing)}")
    groups = [g for g in REQUIRED_GROUPS if g not in results.children]
    if groups:
        raise RunFileError(f"{path} is not a complete bayes_lac run: no {', '.join(groups)} group")
    saved = str(results.attrs["bayes_lac_version"])
    if not _version_compatible(saved, __version__):
        made = f"bayes_lac {_shown(saved)}" if _release(saved) else f"an unknown version ({_shown(saved)!r})"
        why = (
            " (0.3 replaced 0.2's default model, a line and an AR term per authority, by the latent-state "
            "model, and what a run holds changed with it)"
            if _release(saved) == (0, 2)
            else " (what a run holds may change between minor versions before 1.0)"
        )
        raise RunFileError(
            f"{path} was written by {made}; this is bayes_lac {__version__}, which reads runs written by "
            f"{'.'.join(__version__.split('.')[:2])}.x only{why}. Refit the model with this version "
            "(`bayes-lac fit`)"
        )
    try:
        info = run_info(results, allow_latent=allow_latent)
    except RunFileError as err:
        raise RunFileError(f"{path}: {err}") from None
    if results.attrs.get("gate_digest") == gate_digest(results):
        # the draws, verdict and gate are those the verdict was recorded for: nothing to recompute
        return results
    recomputed = check_convergence(results)
    if recomputed.converged != info.converged:
        if info.converged:
            why = "; ".join(p.rstrip(".") for p in recomputed.problems)
            raise RunFileError(
                f"{path} is marked converged, but its draws fail the convergence checks: {why}. The file "
                "was edited, or its verdict was made by other checks; refit the model"
            )
        raise RunFileError(
            f"{path} is marked not converged, but its draws pass the convergence checks; the file was "
            "edited; refit the model"
        )
    results.attrs["diagnostics"] = recomputed.to_json()
    results.attrs["gate_digest"] = gate_digest(results)
    return results
