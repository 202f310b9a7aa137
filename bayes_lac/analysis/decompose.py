"""Split a change in an authority's numbers into demand and supply components.

The question comes from the 2017 Thurrock report: why did the number of children looked after
rise faster in Thurrock than elsewhere? Its Figure 5 drew the actual numbers against
"population growth only", "+ UASC" and "+ deprivation" lines and concluded that demand
explained some but not all of the rise. This module does the same split from a fitted run
(`bayes_lac.model.results`), per posterior draw, so every part carries a credible interval.

Definitions (all counts are numbers of children at 31 March)
------------------------------------------------------------
For a measure, an authority and a window from year ``a`` to year ``b`` (both inside the
run's fitted years) the **modelled change** is

    total = expected_reported(b) - expected_reported(a)

on the scales of `bayes_lac.model.results`: the expected count without sampling noise, which for
looked_after includes the known count of unaccompanied asylum-seeking children (UASC). The
expected non-UASC count is a product of four factors that change over time,

    expected(t) = constant x population_0_17(t) x exp(deprivation term(t))
                  x exp(year_effect(t)) x exp(la_trend x (t - reference_year)),

and the UASC count is added on top. The components of ``total``, in children, are:

``population``
    the part due to the change in the number of children aged 0-17;
``uasc``
    the change in the known UASC count, U(b) - U(a) (zero for children in need and child
    protection). UASC is added, not multiplied, so it needs no attribution rule; it is data,
    so it has no model uncertainty;
``deprivation``
    the part due to deprivation_effect x (deprivation(b) - deprivation(a));
``supply_national``
    the part due to the change in the year effect that all authorities in the run's
    comparison set share (their common path: national policy, courts, shocks, and any demand
    common to them all that the model does not measure);
``supply_local``
    the part due to the authority's own trend relative to the comparison set,
    la_trend x (b - a);
``not_explained``
    supply_national + supply_local;
``total``
    the modelled change; population + uasc + deprivation + supply_national + supply_local
    equals it exactly in every draw (up to floating-point rounding).

How the multiplied factors are shared out (the Shapley value). Because the four factors
multiply, the credit each gets depends on the order in which they are switched from their
year-``a`` to their year-``b`` value: a population rise is worth more children if the rate
has already risen. We take every one of the 4! = 24 orders, credit each factor with the
change in the count at its step, and average over the orders. With ``r_k`` the ratio of factor
``k`` between ``b`` and ``a`` and ``E_a`` the expected non-UASC count in year ``a``:

    component_k = E_a x (r_k - 1) x sum over sets S of the other factors of
                  |S|! (3 - |S|)! / 4! x product of r_j over j in S.

So a factor that does not change gets exactly zero, two factors that change by the same ratio
get the same share, and the parts add up to the modelled change. This is done per posterior
draw. Point values in sentences and in the waterfall are posterior **means**, because means
of the parts add up to the mean of the total (medians do not); intervals are equal-tailed.

What the residual means. ``not_explained`` is the part of the modelled change that is **not
explained by the measured demand factors (population, UASC, deprivation)**. It is what is
left: it contains national and local policy, practice, thresholds, risk tolerance and
prevention, but equally any demand the model does not measure (for example family
breakdown, domestic abuse, neglect or housing pressure that the deprivation measure does not
track) and errors in the measured factors. It is **never proof of a practice effect**. The
split between ``supply_national`` and ``supply_local`` likewise depends on which authorities
are in the comparison set.

Counterfactual paths (`counterfactual_table`, the report's Figure 5 with credible bands).
For each year ``t`` in the window, with ``g(t) = population_0_17(t) / population_0_17(a)``:

* ``actual``: the published (reported) count, no model;
* ``modelled``: expected_reported(t);
* ``population_only``: expected(a) x g(t) + U(a): the year-``a`` expected count grown with the
  child population, UASC held at its year-``a`` count;
* ``plus_uasc``: expected(a) x g(t) + U(t) (looked_after only);
* ``plus_deprivation``: expected(a) x g(t) x exp(deprivation term(t) - deprivation term(a))
  + U(t).

These lines switch the demand factors on in one fixed order (population, then UASC, then
deprivation) as the report did, so the gaps between lines are close to, but not exactly, the
Shapley components above. The gap between ``plus_deprivation`` and ``modelled`` is the part
not explained by the measured demand factors.

Faster than elsewhere (`comparison_table`). To compare areas of different sizes, every
component is also expressed as a **percentage of the area's modelled (expected reported)
count in year a** (so the components are percentage points that add up to the percentage
change). Areas:

* the authority;
* ``neighbours``: the comparison authorities combined: for the run's target authority the
  run's neighbours (the rest of its comparison set; in a national run its DfE statistical
  neighbours), for any other authority every other modelled authority
  (``bayes_lac.model.results.RunInfo.neighbours_of``). Expected counts and components are
  summed over them before dividing by their summed year-``a`` count, so this is their
  count-weighted average;
* ``england``: in a national run (``comparison == "all"``) the sum over all modelled
  authorities, with full model uncertainty. Otherwise England is not modelled: its published
  counts and population (the run's ``reference`` group) are split into ``population`` and
  ``other_than_population`` with the Shapley value of two factors (population x rate),
  population part = C_a (r_pop - 1) (1 + r_rate) / 2. These rows carry **no model
  uncertainty** (lower = upper) and are labelled so; England's UASC and deprivation are not
  separated. A two-factor split is not the same as the authority's four-factor one (they
  differ in second-order terms), so compare population parts as approximate;
* ``target_minus_neighbours`` and ``target_minus_england``: per-draw differences of the
  authority's percentage-point components and the other area's.

``other_than_population`` = total - population is given for every area so the authority can
be set beside England's published split.

Modelled versus published change. The split is of the modelled change, the change in the
model's expected (smoothed) counts. The published counts also sit off that path: year-to-year
variation, and any bend in an authority's own path, because its own trend is a straight line
on the log scale (only the common path of the comparison set can bend). The model carries
that distance (``bayes_lac.model.results.deviation``) from year to year by its ``persistence``,
which matters for forecasts, but it is not attributed to any factor here, and the sentences
say how large it is.

Runs of the latent-state model (`bayes_lac.model.latent_fit`). The same split reads such a run
through `bayes_lac.model.results.log_rate_terms`: ``supply_national`` is the change in the
national path the run's authorities share, ``supply_local`` the change in the authority's own
latent path (a state that bends where the data bend, drawn per posterior draw,
`bayes_lac.model.latent_fit.latent_terms`), and ``deprivation`` the within-authority effect
times the change in deprivation (the between-authority effect does not change over time). The
model's path follows the published counts, so what is left between the published and the
modelled change is the year-to-year noise of the two years' counts, and the sentences call it
that. Whether deprivation's effect is identified is judged on the within-authority effect.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, MEASURE_LABELS, MEASURES
from bayes_lac.errors import BayesLacError, UnknownAuthorityError
from bayes_lac.model.results import (
    IDENTIFIED_CONTRACTION,
    expected_from,
    log_rate_terms,
    prior_contraction,
    run_info,
    uasc_component,
)
from bayes_lac.style import (
    BAND_ALPHA,
    ENGLAND_COLOUR,
    NEIGHBOURS_COLOUR,
    TARGET_COLOUR,
    get_axes,
    series_style,
)
from bayes_lac.summaries import Finding, format_count, format_percent, summarise_draws

#: Components of a change, in the order they are tabulated and drawn.
COMPONENTS: tuple[str, ...] = (
    "population",
    "uasc",
    "deprivation",
    "supply_national",
    "supply_local",
    "not_explained",
    "total",
)
#: The parts that add up to ``total`` (``not_explained`` is the sum of the last two).
ADDITIVE_COMPONENTS: tuple[str, ...] = ("population", "uasc", "deprivation", "supply_national", "supply_local")
COMPONENT_LABELS: dict[str, str] = {
    "population": "Child population",
    "uasc": "UASC (known count)",
    "deprivation": "Deprivation",
    "supply_national": "Common path of comparison areas",
    "supply_local": "Own trend vs comparison areas",
    "not_explained": "Not explained by measured demand",
    "other_than_population": "Everything other than population",
    "total": "Total change",
}
#: Columns of the decomposition table and of the CSV written by ``bayes-lac decompose``.
TABLE_COLUMNS: tuple[str, ...] = (
    "la_code",
    "measure",
    "from_year",
    "to_year",
    "component",
    "mean",
    "median",
    "lower",
    "upper",
    "ci_prob",
)
#: Columns of the faster-than-elsewhere table.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "la_code",
    "area",
    "area_name",
    "measure",
    "component",
    "mean",
    "median",
    "lower",
    "upper",
    "ci_prob",
    "source",
    "from_year",
    "to_year",
)
COUNTERFACTUAL_SERIES: tuple[str, ...] = ("actual", "modelled", "population_only", "plus_uasc", "plus_deprivation")
SERIES_LABELS: dict[str, str] = {
    "actual": "Actual (published)",
    "modelled": "Modelled",
    "population_only": "Population growth only",
    "plus_uasc": "+ UASC",
    "plus_deprivation": "+ deprivation",
}
_NOUNS: dict[str, str] = {
    "looked_after": "the number of children looked after",
    "children_in_need": "the number of children in need",
    "child_protection": "the number of children on child protection plans",
}
# The multiplied factors and the log_rate_terms entry that carries each (population is data).
_FACTOR_TERMS = {"deprivation": "deprivation", "supply_national": "year_effect", "supply_local": "trend"}


# --------------------------------------------------------------------------------------------
# The attribution rule


def shapley_split(start: xr.DataArray, log_ratios: Mapping[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    """Shapley split of the change in a product of factors, vectorised over draws.

    Parameters
    ----------
    start
        The product at the start (a count of children), any dims.
    log_ratios
        For each factor, log(value at the end / value at the start); broadcastable to `start`.

    Returns
    -------
    For each factor, its share of ``start * (exp(sum of log_ratios) - 1)``, in the units of
    `start`. The shares add up to that change exactly (up to rounding).
    """
    names = list(log_ratios)
    n = len(names)
    ratios = {k: np.exp(v) for k, v in log_ratios.items()}
    shares = {}
    for k in names:
        others = [j for j in names if j != k]
        weighted = 0.0
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for subset in combinations(others, size):
                product = 1.0
                for j in subset:
                    product = product * ratios[j]
                weighted = weighted + weight * product
        shares[k] = start * np.expm1(log_ratios[k]) * weighted
    return shares


# --------------------------------------------------------------------------------------------
# Checking the request against the run


def _run_years(results: xr.DataTree) -> np.ndarray:
    return np.array(run_info(results, allow_latent=True).years, dtype=int)


def _check_window(results: xr.DataTree, from_year: int, to_year: int) -> None:
    years = _run_years(results)
    span = f"{years.min()}-{years.max()}"
    for name, year in (("from", from_year), ("to", to_year)):
        if int(year) not in years:
            raise BayesLacError(
                f"the {name} year {year} is outside the run's fitted years {span}; "
                f"choose years between {years.min()} and {years.max()}"
            )
    if int(from_year) >= int(to_year):
        raise BayesLacError(
            f"the from year ({from_year}) must be before the to year ({to_year}); the run covers {span}"
        )


def _check_la(results: xr.DataTree, la) -> str:
    info = run_info(results, allow_latent=True)
    la = info.target_la if la is None else str(la)
    if la not in info.authorities:
        raise UnknownAuthorityError(
            f"authority {la} is not modelled in this run; the run holds {len(info.authorities)} authorities: "
            f"{', '.join(info.authorities)}"
        )
    return la


def data_years(results: xr.DataTree, la: str) -> tuple[int, int] | None:
    """First and last year in which `la` has a published count of any measure in the run.

    None if it has none. Windows of `decompose` and `counterfactual_table` must lie inside.
    """
    reported = results["observed_data"]["reported_count"].sel(la=la)
    years = reported["year"].values[reported.notnull().any("measure").values].astype(int)
    return (int(years.min()), int(years.max())) if years.size else None


def _check_data_years(results: xr.DataTree, la: str, from_year: int, to_year: int) -> None:
    """Refuse a window that reaches outside the years in which `la` has published counts.

    The model gives every authority a value in every fitted year, also before it existed or
    after it ended (e.g. West Northamptonshire, created in 2021, in 2010); those values are the
    model's extrapolation, not history, so no decomposition or counterfactual spans them.
    """
    span = data_years(results, la)
    name = _la_name(results, la)
    if span is None:
        raise BayesLacError(f"{name} ({la}) has no published counts in this run; there is nothing to decompose")
    first, last = span
    if from_year < first or to_year > last:
        outside = f"starts in {first}" if from_year < first else f"ends in {last}"
        raise BayesLacError(
            f"{name} ({la}) has published counts for {first}-{last} only (first year {first}); a "
            f"window from {from_year} to {to_year} would describe years it has no data for, "
            f"because its series {outside}; choose years from {first} to {last}"
        )


def with_data_in_both(results: xr.DataTree, las: Sequence[str], from_year: int, to_year: int) -> list[str]:
    """The authorities of `las` with a published count (of any measure) in both years: the only
    ones a change between the two years can be compared with (the model's values for an
    authority before it existed, e.g. West Northamptonshire before 2022, are extrapolation)."""
    if not len(las):
        return []
    reported = results["observed_data"]["reported_count"].sel(la=list(las), year=[int(from_year), int(to_year)])
    has = reported.notnull().any("measure").all("year").values
    return [str(code) for code, ok in zip(reported["la"].values, has) if ok]


def _kept(results, las: Sequence[str], who: str, from_year: int, to_year: int, caveats: list[str]) -> list[str]:
    """`with_data_in_both` of `las`, with a caveat in `caveats` naming those left out of `who`."""
    kept = with_data_in_both(results, las, from_year, to_year)
    left_out = [c for c in las if c not in kept]
    if left_out:
        names = ", ".join(_la_name(results, code) for code in left_out)
        caveats.append(
            f"Left out of {who} for {from_year}-{to_year}: {names}, which {'lacks' if len(left_out) == 1 else 'lack'} "
            f"a published count for {from_year} or {to_year} (the model's values for years with no data are not "
            "history)."
        )
    return kept


def _la_name(results: xr.DataTree, la: str) -> str:
    return run_info(results, allow_latent=True).la_name(la)


def _published(results: xr.DataTree, measure: str, la: str, year: int) -> float:
    obs = results["observed_data"]["reported_count"]
    if measure not in obs["measure"].values:
        return np.nan
    return float(obs.sel(measure=measure, la=la, year=year).values)


def _choose_measures(results, la, from_year, to_year, measures) -> tuple[tuple[str, ...], list[str]]:
    run_measures = [str(m) for m in results["posterior"]["intercept"]["measure"].values]
    name = _la_name(results, la)
    caveats: list[str] = []
    if measures is None:
        chosen = []
        for m in run_measures:
            missing = [y for y in (from_year, to_year) if np.isnan(_published(results, m, la, y))]
            if m == "looked_after" or not missing:
                chosen.append(m)
            else:
                caveats.append(
                    f"Not decomposed: {MEASURE_LABELS.get(m, m).lower()}, because the count is not "
                    f"published for {name} in {' and '.join(map(str, missing))}."
                )
    else:
        chosen = [measures] if isinstance(measures, str) else list(measures)
        unknown = [m for m in chosen if m not in run_measures]
        if unknown:
            raise BayesLacError(
                f"measure(s) {', '.join(unknown)} are not in the run; it models {', '.join(run_measures)}"
            )
    for m in chosen:
        missing = [y for y in (from_year, to_year) if np.isnan(_published(results, m, la, y))]
        if missing and (m == "looked_after" or measures is not None):
            caveats.append(
                f"The published {MEASURE_LABELS.get(m, m).lower()} count for {name} is not available in "
                f"{' and '.join(map(str, missing))}; the decomposition is of the modelled count only."
            )
    if not chosen:
        raise BayesLacError(f"no measure of the run is published for {name} in both {from_year} and {to_year}")
    if run_info(results, allow_latent=True).latent:
        for m in chosen:
            start = _series_start(results, m, la)
            if start is None or start > from_year:
                raise BayesLacError(
                    f"{name}'s {MEASURE_LABELS.get(m, m).lower()} series "
                    f"{'has no count in this run' if start is None else f'starts in {start}'}; the latent model "
                    f"has no path before a series starts, so a window from {from_year} cannot split its change: "
                    "choose a later first year or leave the measure out"
                )
    order = {m: i for i, m in enumerate(MEASURES)}
    return tuple(sorted(chosen, key=lambda m: order.get(m, len(order)))), caveats


def _series_start(results: xr.DataTree, measure: str, la: str) -> int | None:
    """The first year with a modelled count of `measure` for `la` (where its series starts)."""
    counts = results["observed_data"]["modelled_count"].sel(measure=measure, la=la)
    years = counts["year"].values[counts.notnull().values]
    return int(years.min()) if years.size else None


def _not_started_caveats(results, start: xr.DataArray, who: str, from_year: int) -> list[str]:
    """Notices naming the authorities left out of `who`'s sums for a measure because their
    series of it starts after `from_year` (a latent run has no path there: `start` is NaN)."""
    missing = start.isnull().all(("chain", "draw"))
    out = []
    for m in missing["measure"].values:
        codes = [str(c) for c in missing["la"].values if bool(missing.sel(measure=m, la=c))]
        if codes:
            names = ", ".join(_la_name(results, c) for c in codes)
            out.append(
                f"Left out of {who} for {MEASURE_LABELS.get(str(m), str(m)).lower()}: {names}, whose series "
                f"starts after {from_year} (the model has no path before a series starts)."
            )
    return out


def _neighbour_codes(results: xr.DataTree, la: str) -> list[str]:
    """The authorities `la` is compared with (`bayes_lac.model.results.RunInfo.neighbours_of`)."""
    return list(run_info(results, allow_latent=True).neighbours_of(la))


def _imputation_caveats(results: xr.DataTree, las: Sequence[str], years: Sequence[int], who: str) -> list[str]:
    const = results["constant_data"]
    notes = []
    for var, what, consequence in (
        (
            "deprivation_imputed",
            "deprivation",
            "so the deprivation component only covers the change in the values the model used, "
            "not any real change in those years; what it misses falls into the other components",
        ),
        (
            "uasc_imputed",
            "the UASC count",
            "so the UASC component uses the imputed count",
        ),
    ):
        if var not in const:
            continue
        flags = const[var].sel(la=list(las), year=list(years))
        years_hit = [int(y) for y in flags["year"].values if bool(flags.sel(year=y).any())]
        if years_hit:
            when = ", ".join(map(str, years_hit[:-1])) + " and " if len(years_hit) > 1 else ""
            notes.append(
                f"For {who}, {what} in {when}{years_hit[-1]} was imputed in the run "
                f"(not published for that year; see the run's imputation notices), {consequence}."
            )
    return notes


def _run_notices(results: xr.DataTree, caveats: Sequence[str]) -> list[str]:
    """The run's own imputation notices for the inputs the caveats say were imputed."""
    notices = run_info(results, allow_latent=True).imputations
    text = " ".join(caveats)
    wanted = []
    if "deprivation in" in text:
        wanted.append("Deprivation")
    if "UASC count in" in text:
        wanted.append("UASC")
    return [f"How the run filled it: {n}" for n in notices if n.split(":")[0] in wanted]


# --------------------------------------------------------------------------------------------
# Components per draw


def imputation_caveats(results: xr.DataTree, la: str, years: Sequence[int]) -> list[str]:
    """The caveats `decompose` gives for inputs imputed in `years`, for the authority and its
    comparison authorities, with the run's notices on how it filled them: once for several
    windows (a report decomposing 2010-2017 and 2017-2025 says them once, for 2010, 2017 and
    2025)."""
    la = _check_la(results, la)
    years = sorted({int(y) for y in years})
    caveats = _imputation_caveats(results, [la], years, _la_name(results, la))
    neighbours = _neighbour_codes(results, la)
    if neighbours:
        caveats += _imputation_caveats(results, neighbours, years, "at least one comparison authority")
    return caveats + _run_notices(results, caveats)


def _window_view(results: xr.DataTree, years: Sequence[int]) -> xr.DataTree:
    """The run with constant data cut to `years`, so the scale functions only compute those.

    A latent-state run is returned whole: its states are drawn from every year's data."""
    if run_info(results, allow_latent=True).latent:
        return results
    view = results.copy(deep=False)
    view["constant_data"] = xr.DataTree(results["constant_data"].to_dataset().sel(year=list(years)))
    return view


def _window_terms(results, las, from_year, to_year, measures) -> xr.Dataset:
    """`log_rate_terms` of authorities `las` in the window's two years (a latent run draws their
    states here: ask once for every authority a decomposition needs)."""
    window = [from_year, to_year]
    return log_rate_terms(results, la=list(las), years=window).sel(measure=list(measures))


def _components(results, las, from_year, to_year, measures, terms=None) -> tuple[xr.DataArray, xr.DataArray]:
    """Components per draw and authority, and the year-``a`` expected reported count.

    `terms` are `_window_terms` of these authorities or more (default: computed here). Returns
    (components with dims chain, draw, measure, la, component; start with dims chain, draw,
    measure, la), in children.
    """
    window = [from_year, to_year]
    view = _window_view(results, window)
    las = list(las)
    terms = _window_terms(results, las, from_year, to_year, measures) if terms is None else terms.sel(la=las)
    pop = view["constant_data"]["population_0_17"].sel(la=las, year=window)
    exp_count = expected_from(terms["log_rate"], pop)
    uasc = uasc_component(view, la=las).sel(measure=list(measures), year=window)
    reported = exp_count + uasc

    def change(x):
        return x.sel(year=to_year, drop=True) - x.sel(year=from_year, drop=True)

    log_ratios = {"population": np.log(pop.sel(year=to_year, drop=True) / pop.sel(year=from_year, drop=True))}
    for comp, term in _FACTOR_TERMS.items():
        log_ratios[comp] = change(terms[term])
    parts = shapley_split(exp_count.sel(year=from_year, drop=True), log_ratios)
    parts["uasc"] = change(uasc)
    parts["not_explained"] = parts["supply_national"] + parts["supply_local"]
    parts["total"] = change(reported)
    template = parts["total"]
    stacked = [parts[c].broadcast_like(template).transpose(*template.dims) for c in COMPONENTS]
    draws = xr.concat(stacked, dim="component").assign_coords(component=np.array(COMPONENTS))
    draws = draws.transpose("chain", "draw", "measure", "la", "component")
    draws = draws.drop_vars([c for c in draws.coords if c not in draws.dims]).rename("change")
    start = reported.sel(year=from_year, drop=True).transpose("chain", "draw", "measure", "la")
    start = start.drop_vars([c for c in start.coords if c not in start.dims]).rename("start")
    # an authority without a path in year a (a latent series not yet started) has no parts
    # either: the known UASC change must not be summed without the rest
    draws = draws.where(start.notnull())
    return draws, start


# --------------------------------------------------------------------------------------------
# The typed result


@dataclass(frozen=True, eq=False)
class Decomposition:
    """A change split into components, per draw, with its tables and sentences.

    Attributes
    ----------
    la_code, la_name
        The authority decomposed.
    from_year, to_year
        The window (31 March snapshots).
    measures
        Measures decomposed.
    draws
        Components in children, dims (chain, draw, measure, component); see `COMPONENTS`.
    start
        Expected reported count in `from_year`, children, dims (chain, draw, measure).
    published
        Published counts in `from_year` and `to_year` (columns measure, from_count, to_count;
        NaN where not published).
    table
        Summary per measure and component with columns `TABLE_COLUMNS` (children).
    comparison_draws
        Components as percentage points of each area's year-``a`` modelled count, dims
        (chain, draw, measure, area, component); modelled areas only.
    comparison
        Summary of the comparison (see `comparison_table`), including England's published
        split where England is not modelled.
    neighbours
        Codes of the authorities combined as ``neighbours``.
    ci_prob
        Probability of the equal-tailed intervals.
    caveats
        Notices the reader must see (imputed inputs, unpublished counts, unconverged run).
    findings
        Plain-language sentences (`summary_findings`).
    """

    la_code: str
    la_name: str
    from_year: int
    to_year: int
    measures: tuple[str, ...]
    draws: xr.DataArray = field(repr=False)
    start: xr.DataArray = field(repr=False)
    published: pd.DataFrame = field(repr=False)
    table: pd.DataFrame = field(repr=False)
    comparison_draws: xr.DataArray = field(repr=False)
    comparison: pd.DataFrame = field(repr=False)
    neighbours: tuple[str, ...] = ()
    ci_prob: float = CI_PROB
    caveats: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    #: Measures whose deprivation effect the data do not identify (`deprivation_not_identified`).
    not_identified: tuple[str, ...] = ()
    #: Whether the run is the latent-state model's (its own path bends with the data).
    latent: bool = False


def deprivation_not_identified(results: xr.DataTree, measures: Sequence[str]) -> tuple[str, ...]:
    """The measures of `measures` whose deprivation effect the data do not identify: its posterior
    contraction is below `IDENTIFIED_CONTRACTION` (the posterior is still mostly the prior), so
    the deprivation part of a change is the prior's guess, not a finding."""
    if run_info(results, allow_latent=True).latent:
        from bayes_lac.model.latent_fit import latent_prior_contraction

        # the part of a change it splits off is the within-authority effect's
        contraction = latent_prior_contraction(results, "deprivation_within")
    else:
        contraction = prior_contraction(results, "deprivation_effect")
    if contraction is None:
        return ()
    return tuple(
        m
        for m in measures
        if m in contraction["measure"] and float(contraction.sel(measure=m)) < IDENTIFIED_CONTRACTION
    )


def _england_published(results, from_year, to_year, measures) -> tuple[pd.DataFrame, list[str]]:
    """England's published change split into population and the rest (percentage points)."""
    rows, caveats = [], []
    if "reference" not in results.children:
        return pd.DataFrame(), ["England is not compared: the run has no reference group."]
    ref = results["reference"].to_dataset()
    for m in measures:
        try:
            c_a = float(ref["count"].sel(measure=m, year=from_year))
            c_b = float(ref["count"].sel(measure=m, year=to_year))
            p_a = float(ref["population_0_17"].sel(year=from_year))
            p_b = float(ref["population_0_17"].sel(year=to_year))
        except KeyError:
            c_a = c_b = p_a = p_b = np.nan
        if not np.all(np.isfinite([c_a, c_b, p_a, p_b])):
            caveats.append(
                f"England is not compared for {MEASURE_LABELS.get(m, m).lower()}: its published count or "
                f"population is missing in {from_year} or {to_year}."
            )
            continue
        r_pop = p_b / p_a
        r_rate = (c_b / p_b) / (c_a / p_a)
        pop_part = c_a * (r_pop - 1) * (1 + r_rate) / 2
        total = c_b - c_a
        for comp, value in (
            ("population", pop_part),
            ("other_than_population", total - pop_part),
            ("total", total),
        ):
            pct = 100 * value / c_a
            rows.append({"measure": m, "component": comp, "mean": pct, "median": pct, "lower": pct, "upper": pct})
    return pd.DataFrame(rows), caveats


def _with_other(draws: xr.DataArray) -> xr.DataArray:
    other = (draws.sel(component="total", drop=True) - draws.sel(component="population", drop=True)).expand_dims(
        "component"
    )
    names = [str(c) for c in draws["component"].values] + ["other_than_population"]
    stacked = xr.concat([draws.drop_vars("component"), other], dim="component")
    return stacked.assign_coords(component=np.array(names)).transpose(*draws.dims)


def decompose(
    results: xr.DataTree,
    la: str | None = None,
    from_year: int | None = None,
    to_year: int | None = None,
    measures: str | Sequence[str] | None = None,
    ci_prob: float = CI_PROB,
    allow_unconverged: bool = False,
) -> Decomposition:
    """Split the modelled change of an authority's counts between two years into components.

    Parameters
    ----------
    results
        A fitted run (see `bayes_lac.model.results`).
    la
        ONS code of the authority; default the run's target authority.
    from_year, to_year
        Start and end of the window (31 March snapshots), both within the run's fitted years.
    measures
        Measure or measures to decompose. Default: looked_after, plus children_in_need and
        child_protection where the authority's count is published in both years.
    ci_prob
        Probability of the equal-tailed credible intervals.
    allow_unconverged
        Use a run that failed its convergence diagnostics (a caveat says so); otherwise such
        a run raises `UnconvergedFitError`.

    Returns
    -------
    `Decomposition`: components in children per draw (see the module docstring for their
    definitions), their summary table, the faster-than-elsewhere comparison in percentage
    points of the year-``a`` count, caveats and plain-language findings.
    """
    from bayes_lac.model.diagnostics import require_converged

    diagnostics = require_converged(results, allow_unconverged=allow_unconverged, allow_latent=True)
    caveats: list[str] = []
    if not diagnostics.converged:
        caveats.append(
            "The run failed its convergence diagnostics and was used only because that was "
            f"explicitly allowed ({' '.join(diagnostics.problems)}); treat every number here as provisional."
        )
    if from_year is None or to_year is None:
        years = _run_years(results)
        raise BayesLacError(f"give both from_year and to_year; the run covers {years.min()}-{years.max()}")
    from_year, to_year = int(from_year), int(to_year)
    _check_window(results, from_year, to_year)
    la = _check_la(results, la)
    _check_data_years(results, la, from_year, to_year)
    name = _la_name(results, la)
    chosen, measure_caveats = _choose_measures(results, la, from_year, to_year, measures)
    caveats += measure_caveats
    all_neighbours = _neighbour_codes(results, la)
    neighbours = _kept(results, all_neighbours, "the comparison authorities", from_year, to_year, caveats)
    caveats += _imputation_caveats(results, [la], [from_year, to_year], name)
    info = run_info(results, allow_latent=True)
    national = info.is_national
    # every authority's terms at once: a latent run draws each one's states only once
    needed = dict.fromkeys([la, *neighbours, *(info.authorities if national else ())])
    terms = _window_terms(results, list(needed), from_year, to_year, chosen)

    target_draws, target_start = _components(results, [la], from_year, to_year, chosen, terms)
    draws = target_draws.sel(la=la, drop=True)
    start = target_start.sel(la=la, drop=True)

    table = summarise_draws(draws, ci_prob=ci_prob)
    table.insert(0, "la_code", la)
    table.insert(2, "from_year", from_year)
    table.insert(3, "to_year", to_year)
    table = table[list(TABLE_COLUMNS)]

    published = pd.DataFrame(
        {
            "measure": list(chosen),
            "from_count": [_published(results, m, la, from_year) for m in chosen],
            "to_count": [_published(results, m, la, to_year) for m in chosen],
        }
    )

    # faster than elsewhere, as percentage points of each area's year-a modelled count
    areas = {"target": draws}
    starts = {"target": start}
    if neighbours:
        nb_draws, nb_start = _components(results, neighbours, from_year, to_year, chosen, terms)
        areas["neighbours"] = nb_draws.sum("la")
        starts["neighbours"] = nb_start.sum("la")
        caveats += _not_started_caveats(results, nb_start, "the comparison authorities", from_year)
        caveats += _imputation_caveats(results, neighbours, [from_year, to_year], "at least one comparison authority")
    elif all_neighbours:
        caveats.append(
            f"No comparison authority has published counts in both {from_year} and {to_year}, so there is no "
            "neighbours comparison."
        )
    else:
        caveats.append("The run has no neighbours of this authority, so there is no neighbours comparison.")
    if national:
        all_codes = _kept(
            results, list(info.authorities), "England (all modelled authorities)", from_year, to_year, caveats
        )
        if neighbours and set(neighbours) | {la} == set(all_codes):
            areas["england"] = areas["neighbours"] + draws
            starts["england"] = starts["neighbours"] + start
        else:
            en_draws, en_start = _components(results, all_codes, from_year, to_year, chosen, terms)
            areas["england"] = en_draws.sum("la")
            starts["england"] = en_start.sum("la")
            caveats += _not_started_caveats(results, en_start, "England (all modelled authorities)", from_year)
    caveats += _run_notices(results, caveats)
    pct = {k: _with_other(100 * v / starts[k]) for k, v in areas.items()}
    if "neighbours" in pct:
        pct["target_minus_neighbours"] = pct["target"] - pct["neighbours"]
    if "england" in pct:
        pct["target_minus_england"] = pct["target"] - pct["england"]
    comparison_draws = xr.concat(list(pct.values()), dim="area").assign_coords(area=np.array(list(pct)))
    comparison_draws = comparison_draws.transpose("chain", "draw", "measure", "area", "component").rename(
        "percentage_points"
    )

    comparison = summarise_draws(comparison_draws, ci_prob=ci_prob)
    comparison["source"] = "model"
    if not national:
        england, en_caveats = _england_published(results, from_year, to_year, chosen)
        caveats += en_caveats
        if not england.empty:
            england["area"] = "england"
            england["ci_prob"] = ci_prob
            england["source"] = "published counts, no model uncertainty"
            comparison = pd.concat([comparison, england[comparison.columns]], ignore_index=True)
            # target minus a fixed number: the interval is the authority's alone
            for _, row in england.iterrows():
                if row["component"] == "total":
                    target_part = pct["target"].sel(measure=row["measure"], component="total")
                elif row["component"] == "population":
                    target_part = pct["target"].sel(measure=row["measure"], component="population")
                else:
                    target_part = pct["target"].sel(measure=row["measure"], component="other_than_population")
                diff = summarise_draws(target_part - row["mean"], ci_prob=ci_prob)
                diff["area"] = "target_minus_england"
                diff["measure"] = row["measure"]
                diff["component"] = row["component"]
                diff["source"] = "model minus published England"
                comparison = pd.concat([comparison, diff[comparison.columns]], ignore_index=True)
    labels = {
        "target": name,
        "neighbours": f"Comparison authorities combined ({len(neighbours)})",
        "england": "England (all modelled authorities)" if national else "England (published counts)",
        "target_minus_neighbours": f"{name} minus comparison authorities",
        "target_minus_england": f"{name} minus England",
    }
    comparison["area_name"] = comparison["area"].map(labels)
    comparison["la_code"] = la
    comparison["from_year"] = from_year
    comparison["to_year"] = to_year
    comparison = comparison[list(COMPARISON_COLUMNS)]

    not_identified = deprivation_not_identified(results, chosen)
    for m in not_identified:
        caveats.append(
            f"Deprivation's effect on {MEASURE_LABELS.get(m, m).lower()} is not identified by the data: its "
            "range after fitting is still mostly the prior's, so the deprivation part of this change is not a "
            "finding (and not evidence of no effect either)."
        )
    decomposition = Decomposition(
        la_code=la,
        la_name=name,
        from_year=from_year,
        to_year=to_year,
        measures=chosen,
        draws=draws,
        start=start,
        published=published,
        table=table,
        comparison_draws=comparison_draws,
        comparison=comparison,
        neighbours=tuple(neighbours),
        ci_prob=ci_prob,
        caveats=tuple(caveats),
        not_identified=not_identified,
        latent=info.latent,
    )
    return replace(decomposition, findings=tuple(summary_findings(decomposition)))


# --------------------------------------------------------------------------------------------
# Sentences


def unexplained_with_deprivation(d: Decomposition, measure: str, area: str | None = None) -> pd.Series:
    """Deprivation's part and the part not explained, as one figure (mean, lower, upper, ...): what
    is said when deprivation's effect is not identified (`Decomposition.not_identified`), in
    children, or with `area` in percentage points of `comparison_draws`."""
    parts = ["deprivation", "not_explained"]
    if area is None:
        both = d.draws.sel(measure=measure, component=parts)
    else:
        both = d.comparison_draws.sel(measure=measure, area=area, component=parts)
    return summarise_draws(both.sum("component"), ci_prob=d.ci_prob).iloc[0]


def _row(table: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(table), bool)
    for k, v in where.items():
        mask &= (table[k] == v).to_numpy()
    rows = table[mask]
    if len(rows) != 1:
        raise KeyError(f"expected one row for {where}, found {len(rows)}")
    return rows.iloc[0]


def _signed(x: float) -> str:
    return format_count(x) if round(x) <= 0 else f"+{format_count(x)}"


def _points(x: float) -> str:
    """Percentage points, whole numbers (a difference of two percentages)."""
    return format_count(x)


def _pct(x: float) -> str:
    """A percentage held on the 0-100 scale."""
    return format_percent(x / 100)


def _est(row, formatter=format_count, full: bool = False) -> str:
    """'about 20 (15 to 25)', or with ``full`` '(90% credible interval 15 to 25)'; point value the mean."""
    label = f"{format_percent(row['ci_prob'])} credible interval " if full else ""
    return f"about {formatter(row['mean'])} ({label}{formatter(row['lower'])} to {formatter(row['upper'])})"


def _direction(row, formatter=format_count) -> str:
    """'rose by about X (90% credible interval A to B)', 'fell by ...' or 'changed by ...'."""
    if row["lower"] > 0:
        return f"rose by {_est(row, formatter, full=True)}"
    if row["upper"] < 0:
        flip = row.copy()
        flip["mean"], flip["lower"], flip["upper"] = -row["mean"], -row["upper"], -row["lower"]
        return f"fell by {_est(flip, formatter, full=True)}"
    return f"changed by {_est(row, formatter, full=True)[:-1]}; the interval includes no change)"


def summary_findings(decomposition: Decomposition) -> list[Finding]:
    """Plain-language sentences about a decomposition, each with its table and interval.

    One finding per measure (the change and its components, in children) and, where there is
    a comparison, one for looked_after (or the first measure) setting the authority beside its
    comparison authorities and England in percentages of the start-year count. Point values
    are posterior means (they add up); the residual is called "not explained by the measured
    demand factors", never a practice effect.
    """
    d = decomposition
    findings = []
    when = f"Between March {d.from_year} and March {d.to_year}"
    for m in d.measures:
        t = d.table[d.table["measure"] == m].reset_index(drop=True)
        total = _row(t, component="total")
        pub = d.published[d.published["measure"] == m].iloc[0]
        published = ""
        if np.isfinite(pub["from_count"]) and np.isfinite(pub["to_count"]):
            seen = pub["to_count"] - pub["from_count"]
            published = (
                f" The published count went from {format_count(pub['from_count'])} to "
                f"{format_count(pub['to_count'])} ({_signed(seen)})"
            )
            if abs(round(seen - total["mean"])) >= 1 and d.latent:
                published += (
                    f"; the other {_signed(seen - total['mean'])} is year-to-year noise around the model's "
                    f"path in those two years (a count's own randomness, one-off recording changes), "
                    f"which this split does not attribute"
                )
            elif abs(round(seen - total["mean"])) >= 1:
                published += (
                    f"; the other {_signed(seen - total['mean'])} is how far the published counts sit "
                    f"from the model's smoothed path in those two years (year-to-year variation, or a "
                    f"bend in the authority's own path that its straight-line trend does not follow), "
                    f"which this split does not attribute"
                )
            published += "."
        pop = _row(t, component="population")
        pop_word = "Growth in" if pop["mean"] >= 0 else "The fall in"
        parts = [f"{pop_word} the child population accounts for {_est(pop)}"]
        if m == "looked_after":
            uasc = _row(t, component="uasc")
            parts.append(
                f"the change in unaccompanied asylum-seeking children for {format_count(uasc['mean'])} (a known count)"
            )
        if m in d.not_identified:
            # deprivation's part is the prior's guess, and so is the remainder it leaves: say them as one
            sentence = (
                f"{when} the modelled {_NOUNS.get(m, m).removeprefix('the ')} in {d.la_name} "
                f"{_direction(total)}.{published} {' and '.join(parts)}; {_est(unexplained_with_deprivation(d, m))} "
                "is not explained by population or UASC, and the data cannot tell how much of that is deprivation "
                "(its effect is not identified). That part includes deprivation, policy and practice, and any demand "
                "the model does not measure: it is not proof of a practice effect."
            )
        else:
            parts.append(f"the change in deprivation for {_est(_row(t, component='deprivation'))}")
            resid = _row(t, component="not_explained")
            nat = _row(t, component="supply_national")
            loc = _row(t, component="supply_local")
            sentence = (
                f"{when} the modelled {_NOUNS.get(m, m).removeprefix('the ')} in {d.la_name} "
                f"{_direction(total)}.{published} "
                f"{', '.join(parts[:-1])} and {parts[-1]}; {_est(resid)} is not explained by the measured "
                f"demand factors (population, UASC, deprivation). Of that, {_est(nat)} follows "
                + (
                    f"the national path every authority shares and {_est(loc)} is {d.la_name}'s own path. "
                    if d.latent
                    else f"the common path of the comparison authorities and {_est(loc)} is {d.la_name}'s own "
                    "trend relative to them. "
                )
                + "The unexplained part includes policy and practice but also any demand the model "
                "does not measure: it is not proof of a practice effect."
            )
        findings.append(
            Finding(
                title=f"What changed: {MEASURE_LABELS.get(m, m).lower()}, {d.from_year} to {d.to_year}",
                sentence=sentence,
                table=t,
                ci_prob=d.ci_prob,
                caveats=d.caveats,
            )
        )

    comp = d.comparison
    if comp.empty or not set(comp["area"]) - {"target"}:
        return findings
    m = "looked_after" if "looked_after" in d.measures else d.measures[0]
    c = comp[comp["measure"] == m].reset_index(drop=True)
    areas = set(c["area"])
    tgt = _row(c, area="target", component="total")
    text = (
        f"Relative to its modelled {d.from_year} level, {_NOUNS.get(m, m)} in {d.la_name} "
        f"{_direction(tgt, _pct)} by {d.to_year}"
    )
    if "neighbours" in areas:
        nb = _row(c, area="neighbours", component="total")
        text += f", against {_est(nb, _pct)} across its {len(d.neighbours)} comparison authorities combined"
    if "england" in areas:
        en = _row(c, area="england", component="total")
        if en["source"] == "model":
            text += f" and {_est(en, _pct)} across all modelled authorities (England)"
        else:
            en_pop = _row(c, area="england", component="population")
            text += (
                f" and {_pct(en['mean'])} in England (published counts, no model uncertainty; "
                f"{_points(en_pop['mean'])} percentage points of it from growth in the child population)"
            )
    text += "."
    if "target_minus_neighbours" in areas:
        g = {
            k: _row(c, area="target_minus_neighbours", component=k)
            for k in ("total", "population", "uasc", "deprivation", "not_explained")
        }
        demand = [f"population {_points(g['population']['mean'])}"]
        if m == "looked_after":
            demand.append(f"UASC {_points(g['uasc']['mean'])}")
        if m in d.not_identified:
            gap = unexplained_with_deprivation(d, m, area="target_minus_neighbours")
            text += (
                f" The gap to the comparison authorities is {_est(g['total'], _points)} percentage points "
                f"(population and UASC, in points: {', '.join(demand)}); {_est(gap, _points)} "
                "points of the gap are not explained by population or UASC, and the data cannot tell how much of "
                "that is deprivation (not identified); it is not proof of a practice effect."
            )
        else:
            demand.append(f"deprivation {_points(g['deprivation']['mean'])}")
            text += (
                f" The gap to the comparison authorities is {_est(g['total'], _points)} percentage points "
                f"(measured demand factors, in points: {', '.join(demand)}); {_est(g['not_explained'], _points)} "
                f"points of the gap are not explained by the measured demand factors (population, UASC, "
                f"deprivation), which is not proof of a practice effect."
            )
    findings.append(
        Finding(
            title=f"Faster than elsewhere? {MEASURE_LABELS.get(m, m).lower()}, {d.from_year} to {d.to_year}",
            sentence=text,
            table=c,
            ci_prob=d.ci_prob,
            caveats=d.caveats,
        )
    )
    return findings


# --------------------------------------------------------------------------------------------
# Tables and charts


def counterfactual_table(
    results: xr.DataTree,
    la: str | None = None,
    from_year: int | None = None,
    to_year: int | None = None,
    measure: str = "looked_after",
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Counterfactual paths of a count over a window (the numbers `plot_counterfactuals` draws).

    Parameters
    ----------
    results
        A fitted run.
    la
        ONS code; default the run's target authority.
    from_year, to_year
        The window, within the run's fitted years.
    measure
        One measure of the run.
    ci_prob
        Probability of the equal-tailed intervals.

    Returns
    -------
    DataFrame with columns ``la_code, measure, year, series, mean, median, lower, upper,
    ci_prob``, counts of children at 31 March. Series (see the module docstring): ``actual``
    (published count: mean = median = the count, lower/upper NaN), ``modelled``,
    ``population_only``, ``plus_uasc`` (looked_after only), ``plus_deprivation``.
    """
    if from_year is None or to_year is None:
        years = _run_years(results)
        raise BayesLacError(f"give both from_year and to_year; the run covers {years.min()}-{years.max()}")
    from_year, to_year = int(from_year), int(to_year)
    _check_window(results, from_year, to_year)
    la = _check_la(results, la)
    _check_data_years(results, la, from_year, to_year)
    run_measures = [str(m) for m in results["posterior"]["intercept"]["measure"].values]
    if measure not in run_measures:
        raise BayesLacError(f"measure {measure} is not in the run; it models {', '.join(run_measures)}")
    years = [int(y) for y in _run_years(results) if from_year <= y <= to_year]
    view = _window_view(results, years)
    terms = log_rate_terms(results, la=la, years=years).sel(measure=measure)
    pop = view["constant_data"]["population_0_17"].sel(la=la, year=years)
    exp_count = expected_from(terms["log_rate"], pop)
    uasc = uasc_component(view, la=la).sel(measure=measure, year=years)
    growth = pop / pop.sel(year=from_year)
    grown = exp_count.sel(year=from_year, drop=True) * growth
    dep_change = np.exp(terms["deprivation"] - terms["deprivation"].sel(year=from_year, drop=True))
    series = {
        "modelled": exp_count + uasc,
        "population_only": grown + uasc.sel(year=from_year, drop=True),
        "plus_uasc": grown + uasc,
        "plus_deprivation": grown * dep_change + uasc,
    }
    if measure != "looked_after":
        del series["plus_uasc"]
    pieces = []
    for key, value in series.items():
        value = value.broadcast_like(exp_count)
        value = value.drop_vars([c for c in value.coords if c not in value.dims])
        s = summarise_draws(value, ci_prob=ci_prob)
        s["series"] = key
        pieces.append(s)
    actual = [_published(results, measure, la, y) for y in years]
    pieces.insert(
        0,
        pd.DataFrame(
            {
                "year": years,
                "mean": actual,
                "median": actual,
                "lower": np.nan,
                "upper": np.nan,
                "ci_prob": ci_prob,
                "series": "actual",
            }
        ),
    )
    table = pd.concat(pieces, ignore_index=True)
    table["la_code"] = la
    table["measure"] = measure
    table["year"] = table["year"].astype(int)
    return table[["la_code", "measure", "year", "series", "mean", "median", "lower", "upper", "ci_prob"]]


def plot_counterfactuals(
    results: xr.DataTree,
    *,
    la: str | None = None,
    from_year: int | None = None,
    to_year: int | None = None,
    measure: str = "looked_after",
    ci_prob: float = CI_PROB,
    ax=None,
):
    """Actual counts against modelled and demand-only counterfactual paths, with credible bands.

    Draws the numbers of `counterfactual_table`: published counts as points, each other series
    as its median line and equal-tailed band. Returns the figure.
    """
    table = counterfactual_table(results, la=la, from_year=from_year, to_year=to_year, measure=measure, ci_prob=ci_prob)
    fig, ax = get_axes(ax)
    la = _check_la(results, la)
    for i, key in enumerate(s for s in COUNTERFACTUAL_SERIES if s != "actual"):
        part = table[table["series"] == key]
        if part.empty:
            continue
        style = series_style(i + 1) if key != "modelled" else {"color": TARGET_COLOUR, "linestyle": "-", "marker": None}
        # several bands overlap, so each is fainter than the house default
        ax.fill_between(
            part["year"], part["lower"], part["upper"], color=style["color"], alpha=BAND_ALPHA / 2, linewidth=0
        )
        ax.plot(
            part["year"], part["median"], color=style["color"], linestyle=style["linestyle"], label=SERIES_LABELS[key]
        )
    act = table[(table["series"] == "actual") & table["mean"].notna()]
    ax.plot(act["year"], act["mean"], linestyle="none", marker="o", color=TARGET_COLOUR, label=SERIES_LABELS["actual"])
    ax.set_xlabel("Year (31 March)")
    ax.set_ylabel(f"{MEASURE_LABELS.get(measure, measure)} (count)")
    ax.set_title(
        f"{_la_name(results, la)}: {MEASURE_LABELS.get(measure, measure).lower()}, {table['year'].min()}-{table['year'].max()}\n"
        f"lines: medians; bands: {format_percent(ci_prob)} credible intervals"
    )
    ax.legend(frameon=False, fontsize="small")
    return fig


def decomposition_table(decomposition: Decomposition, measure: str = "looked_after") -> pd.DataFrame:
    """The waterfall's numbers (what `plot_decomposition` draws), in children.

    Rows: ``start`` (modelled count in the from year), the five additive components, ``end``
    (modelled count in the to year). Columns ``component, label, mean, median, lower, upper,
    ci_prob, bar_bottom, bar_top, published, whisker_low, whisker_high``: each component's
    bar runs from ``bar_bottom`` to ``bar_top`` (cumulative posterior means, which add up); its
    whisker is its interval placed on the bar's base (``bar_bottom + lower`` to
    ``bar_bottom + upper``); ``published`` is the published count on the start and end rows
    (NaN where not published), drawn as a dot.
    """
    if measure not in decomposition.measures:
        raise BayesLacError(
            f"measure {measure} was not decomposed; this decomposition has {', '.join(decomposition.measures)}"
        )
    t = decomposition.table[decomposition.table["measure"] == measure].set_index("component")
    start = summarise_draws(decomposition.start.sel(measure=measure), ci_prob=decomposition.ci_prob).iloc[0]
    end = summarise_draws(
        decomposition.start.sel(measure=measure) + decomposition.draws.sel(measure=measure, component="total"),
        ci_prob=decomposition.ci_prob,
    ).iloc[0]
    rows = [
        {
            "component": "start",
            **start[["mean", "median", "lower", "upper", "ci_prob"]].to_dict(),
            "bar_bottom": 0.0,
            "bar_top": start["mean"],
        }
    ]
    level = start["mean"]
    for comp in ADDITIVE_COMPONENTS:
        r = t.loc[comp]
        rows.append(
            {
                "component": comp,
                **r[["mean", "median", "lower", "upper", "ci_prob"]].to_dict(),
                "bar_bottom": level,
                "bar_top": level + r["mean"],
            }
        )
        level += r["mean"]
    rows.append(
        {
            "component": "end",
            **end[["mean", "median", "lower", "upper", "ci_prob"]].to_dict(),
            "bar_bottom": 0.0,
            "bar_top": end["mean"],
        }
    )
    out = pd.DataFrame(rows)
    labels = {
        **COMPONENT_LABELS,
        "start": f"March {decomposition.from_year} (modelled)",
        "end": f"March {decomposition.to_year} (modelled)",
    }
    out.insert(1, "label", out["component"].map(labels))
    pub = decomposition.published.set_index("measure").loc[measure]
    out["published"] = np.nan
    out.loc[out["component"] == "start", "published"] = pub["from_count"]
    out.loc[out["component"] == "end", "published"] = pub["to_count"]
    is_part = out["component"].isin(ADDITIVE_COMPONENTS)
    out["whisker_low"] = np.where(is_part, out["bar_bottom"] + out["lower"], out["lower"])
    out["whisker_high"] = np.where(is_part, out["bar_bottom"] + out["upper"], out["upper"])
    return out


def plot_decomposition(decomposition: Decomposition, *, measure: str = "looked_after", ax=None):
    """Waterfall of the components of a change with credible-interval whiskers. Returns the figure.

    Bars are posterior means (they add up from the start count to the end count); whiskers are
    the equal-tailed intervals of each part, drawn from the bar's base.
    """
    table = decomposition_table(decomposition, measure=measure)
    fig, ax = get_axes(ax, figsize=(9, 4.5))
    x = np.arange(len(table))
    colours = []
    for comp in table["component"]:
        if comp in ("start", "end"):
            colours.append("#999999")
        elif comp in ("supply_national", "supply_local"):
            colours.append(NEIGHBOURS_COLOUR)
        else:
            colours.append(ENGLAND_COLOUR)
    bottoms = np.minimum(table["bar_bottom"], table["bar_top"])
    heights = np.abs(table["bar_top"] - table["bar_bottom"])
    bars = ax.bar(x, heights, bottom=bottoms, color=colours, edgecolor="black", linewidth=0.6)
    for bar, comp in zip(bars, table["component"]):
        if comp in ("supply_national", "supply_local"):
            bar.set_hatch("//")
    ax.errorbar(
        x,
        table["bar_top"],
        yerr=[
            np.clip(table["bar_top"] - table["whisker_low"], 0, None),
            np.clip(table["whisker_high"] - table["bar_top"], 0, None),
        ],
        fmt="none",
        ecolor="black",
        capsize=4,
        linewidth=1,
    )
    for xi, (comp, mean, top) in enumerate(zip(table["component"], table["mean"], table["bar_top"])):
        text = format_count(mean) if comp in ("start", "end") else _signed(mean)
        below = comp not in ("start", "end") and mean < 0
        ax.annotate(
            text, (xi + 0.42, top), textcoords="offset points", xytext=(2, -10 if below else 2), fontsize="small"
        )
    pub = table["published"].notna()
    if pub.any():
        ax.plot(
            x[pub.to_numpy()],
            table["published"][pub],
            linestyle="none",
            marker="o",
            color=TARGET_COLOUR,
            label="Published count",
        )
        ax.legend(frameon=False, fontsize="small", loc="upper left")
    ax.set_xticks(x, [textwrap.fill(s, 14) for s in table["label"]], fontsize="small")
    ax.set_ylabel(f"{MEASURE_LABELS.get(measure, measure)} (count)")
    lo = float(np.nanmin(np.r_[table["whisker_low"], table["bar_top"], table["bar_bottom"][1:-1], table["published"]]))
    ax.set_ylim(bottom=max(0.0, lo - 0.15 * (table["bar_top"].max() - lo)))
    ax.set_title(
        f"{decomposition.la_name}: {MEASURE_LABELS.get(measure, measure).lower()}, what changed "
        f"{decomposition.from_year} to {decomposition.to_year}\n"
        f"bars: posterior means; whiskers: {format_percent(decomposition.ci_prob)} credible intervals; "
        "hatched: not explained by measured demand",
        fontsize="medium",
    )
    return fig


def comparison_table(decomposition: Decomposition, measure: str = "looked_after") -> pd.DataFrame:
    """The faster-than-elsewhere comparison (what `plot_comparison` draws).

    Percentage points of each area's modelled count in the from year (England: published
    count where England is not modelled). Columns ``la_code, area, area_name, measure,
    component, mean, median, lower, upper, ci_prob, source, from_year, to_year``.
    """
    if measure not in decomposition.measures:
        raise BayesLacError(
            f"measure {measure} was not decomposed; this decomposition has {', '.join(decomposition.measures)}"
        )
    c = decomposition.comparison
    return c[c["measure"] == measure].reset_index(drop=True)


def plot_comparison(decomposition: Decomposition, *, measure: str = "looked_after", ax=None):
    """Grouped bars: each component as % of the start-year count, for the authority, its
    comparison authorities combined and England, with credible-interval whiskers (none for
    England's published counts). Returns the figure."""
    table = comparison_table(decomposition, measure=measure)
    fig, ax = get_axes(ax, figsize=(9, 4.5))
    areas = [a for a in ("target", "neighbours", "england") if a in set(table["area"])]
    comps = ["population", "uasc", "deprivation", "not_explained", "other_than_population", "total"]
    if measure != "looked_after":
        comps.remove("uasc")
    colours = {"target": TARGET_COLOUR, "neighbours": NEIGHBOURS_COLOUR, "england": ENGLAND_COLOUR}
    width = 0.8 / len(areas)
    x = np.arange(len(comps))
    for i, area in enumerate(areas):
        part = table[table["area"] == area].set_index("component").reindex(comps)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(
            pos, part["mean"], width=width, color=colours[area], alpha=0.85, label=part["area_name"].dropna().iloc[0]
        )
        ok = part["mean"].notna() & (part["upper"] > part["lower"])
        ax.errorbar(
            pos[ok.to_numpy()],
            part["mean"][ok],
            yerr=[(part["mean"] - part["lower"])[ok], (part["upper"] - part["mean"])[ok]],
            fmt="none",
            ecolor="grey",
            capsize=3,
        )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [textwrap.fill(COMPONENT_LABELS[c], 14) for c in comps], fontsize="small")
    ax.set_ylabel(f"percentage points of the {decomposition.from_year} count")
    ax.set_title(
        f"{MEASURE_LABELS.get(measure, measure)}: change {decomposition.from_year} to {decomposition.to_year} "
        f"as % of the {decomposition.from_year} count\nbars: means; whiskers: {format_percent(decomposition.ci_prob)} "
        "credible intervals (England's published counts: none)"
    )
    ax.legend(frameon=False, fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------
# Command line
