"""Prior sensitivity: does what the board reads depend on the priors?

Two checks, from cheapest to most direct.

Power-scaling (no refit)
------------------------
`power_scaling` raises the prior (or the likelihood) to a power close to 1 and measures, by
importance sampling on the existing draws, how far each parameter's posterior moves: the
cumulative Jensen-Shannon distance per unit of log power (Kallioinen et al. 2024, "Detecting
and diagnosing prior and likelihood sensitivity with power-scaling", Stat Comput 34:57;
ArviZ 1.3's ``az.psense``). With the usual threshold of 0.05 on both sensitivities
(`THRESHOLD`, the paper's and ArviZ's default):

* **prior-data conflict**: sensitive to both the prior and the likelihood (>= 0.05 each): the
  prior and the data pull in different directions;
* **weak likelihood**: sensitive to the prior (> 0.05) but not the likelihood (< 0.05): the
  data say little, so the prior decides;
* otherwise nothing to flag.

The top-level priors written in the prior file (`prior_log_density`: intercept, deprivation
effect, random-walk scale, dispersion, the spreads and correlations of the authority effects)
are power-scaled together, as the paper recommends for hierarchical models: scaling the
population distribution of the authority effects would scale part of the model (the pooling),
not a prior belief.

Refits under named prior sets
-----------------------------
`sensitivity` refits the run's model (same target, comparison set, years, data and sampler
settings, rebuilt from the run itself) under other prior sets (``weak``, ``tight`` or a
user's TOML file), in parallel (`bayes_lac.studies.parallel.run_tasks`), and compares the
conclusions a board reads (`CONCLUSIONS`). A conclusion **changes** under a prior set when its
median moves by more than `CHANGE_SHARE` (a quarter) of the width of its credible interval
under the run's own prior set (a deliberately small move: a quarter of a 90 % interval is
about 0.4 posterior standard deviations), or when its interval becomes more than
`WIDTH_CHANGE` times as wide or narrow (a board reads the range as well as the middle).

Those refits are the 0.2 model's; a latent-state run's refits under other beliefs (prior sets
and structural choices) are `bayes_lac.studies.latent_sensitivity`, which compares the same
conclusions by the same rule.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, MEASURE_LABELS
from bayes_lac.errors import BayesLacError, InputFileError, PanelError, RunFileError
from bayes_lac.model.results import run_info
from bayes_lac.summaries import (
    Finding,
    format_count,
    format_money,
    format_percent,
    format_rate,
    summarise_draws,
)

#: Parameters whose sensitivity is reported (the named parameters of the results contract);
#: ``la_trend`` is reported for the run's target authority only.
SENSITIVITY_PARAMETERS: tuple[str, ...] = (
    "intercept",
    "la_trend",
    "year_sigma",
    "deprivation_effect",
    "dispersion",
    "persistence",
)
#: Power-scaling threshold on both sensitivities (Kallioinen et al. 2024; ArviZ default).
THRESHOLD: float = 0.05
#: A conclusion "changes" when its median moves by more than this share of its interval
#: width under the run's own prior set.
CHANGE_SHARE: float = 0.25
#: A conclusion also "changes" when its interval is more than this many times as wide (or
#: narrow) as under the run's own prior set.
WIDTH_CHANGE: float = 1.5
#: Forecast horizons (years after the last fitted year) compared across prior sets.
FORECAST_HORIZONS: tuple[int, ...] = (5, 10)
#: Years over which the recent trend of the rate is measured.
TREND_YEARS: int = 5

#: Conclusions compared across prior sets: name -> (description, units).
CONCLUSIONS: dict[str, tuple[str, str]] = {
    "current_rate": ("expected rate in the last fitted year", "per 10,000 children aged 0-17"),
    "recent_trend": (
        f"average annual change of the expected rate over the last {TREND_YEARS} fitted years",
        "% per year",
    ),
    "unexplained_change": (
        "part of the modelled change in children looked after over the fitted years not explained by population, UASC and deprivation",
        "children",
    ),
    "unexplained_share": (
        "that part as a share of the modelled change (unstable when the change is near zero)",
        "share of the change",
    ),
    "forecast_5": ("predicted count 5 years after the last fitted year (trend scenario)", "children"),
    "forecast_10": ("predicted count 10 years after the last fitted year (trend scenario)", "children"),
    "cost_5": (
        "annual cost 5 years after the last fitted year (trend scenario)",
        "£ per year, cash prices of that year",
    ),
    "cost_10": (
        "annual cost 10 years after the last fitted year (trend scenario)",
        "£ per year, cash prices of that year",
    ),
}
CONCLUSION_COLUMNS: tuple[str, ...] = (
    "prior_set",
    "conclusion",
    "measure",
    "year",
    "units",
    "mean",
    "median",
    "lower",
    "upper",
    "ci_prob",
    "converged",
)
POWER_COLUMNS: tuple[str, ...] = (
    "parameter",
    "measure",
    "la_code",
    "prior_sensitivity",
    "likelihood_sensitivity",
    "diagnosis",
)


# --------------------------------------------------------------------------------------
# Power-scaling


def _prior_value(posterior: xr.Dataset, name: str) -> xr.DataArray | None:
    """The draws of the variable a prior is on, None if the run does not hold it."""
    if name in posterior:
        return posterior[name]
    if name == "dispersion_cv" and "dispersion" in posterior:
        # the coefficient of variation the prior is set on is 1 / sqrt(dispersion)
        return 1.0 / np.sqrt(posterior["dispersion"])
    return None


def prior_log_density(results: xr.DataTree) -> xr.Dataset:
    """Log density, per draw, of the top-level priors written in the run's prior file.

    Every prior of ``bayes_lac.model.priors.PRIORS`` (the table the model graph is built
    from) that the run holds, evaluated at the run's posterior draws with the priors recorded
    in its ``priors`` attribute (see ``models/priors/default.toml``):

    * ``intercept`` ~ Normal(mean, sd) and ``deprivation_effect`` ~ Normal(mean, sd), per measure;
    * ``year_sigma`` ~ HalfNormal(step_sd_scale);
    * ``dispersion_cv`` = 1 / sqrt(dispersion) ~ HalfNormal(cv_scale);
    * ``persistence`` ~ Beta(mean * concentration, (1 - mean) * concentration);
    * ``la_intercept_sd``, ``la_trend_sd`` ~ HalfNormal(sd_scale) and, with several measures,
      ``la_intercept_corr``, ``la_trend_corr`` ~ LKJ(lkj_eta) (log density (eta - 1) log det R,
      up to a constant).

    These are the prior beliefs a user sets. The population model (authority effects given
    their spread, random-walk steps given their sd) is left out: power-scaling it would
    scale the pooling, not a belief (Kallioinen et al. 2024 recommend scaling top-level
    priors in hierarchical models). Computing the terms from the contract variables makes
    the check independent of how `bayes_lac.model` parameterises the sampler: its sampled
    variables differ from the contract ones by unit-Jacobian shifts, so their prior densities
    are the same.

    Returns
    -------
    Dataset of log densities with dims (chain, draw[, measure]).
    """
    from bayes_lac.model.priors import LKJ, PRIORS

    post = results["posterior"].to_dataset()
    priors = run_info(results).priors
    if not priors:
        raise RunFileError("the run records no priors (attribute 'priors'), so its prior cannot be power-scaled")
    measures = [str(m) for m in post["intercept"]["measure"].values]
    terms = {}
    for name, prior in PRIORS.items():
        value = _prior_value(post, name)
        if value is None or prior.section not in priors:
            continue
        parameters = {
            k: xr.DataArray(v, coords={"measure": measures}, dims="measure") if np.ndim(v) else v
            for k, v in prior.parameters(priors, measures).items()
        }
        if prior.family is LKJ:
            if len(measures) < 2:
                continue
            matrices = value.transpose("chain", "draw", ...).values
            terms[name] = xr.DataArray(
                prior.family.logpdf(matrices, **parameters),
                coords={"chain": post["chain"], "draw": post["draw"]},
                dims=("chain", "draw"),
            )
        else:
            terms[name] = prior.family.logpdf(value, **parameters)
    return xr.Dataset(terms)


def _diagnosis(prior: float, likelihood: float, threshold: float) -> str:
    if prior >= threshold and likelihood >= threshold:
        return "prior-data conflict"
    if prior > threshold > likelihood:
        return "weak likelihood"
    return ""


def power_scaling(
    results: xr.DataTree,
    parameters: Sequence[str] = SENSITIVITY_PARAMETERS,
    threshold: float = THRESHOLD,
    prior_terms: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Prior and likelihood power-scaling sensitivity of each named parameter.

    Parameters
    ----------
    results
        A run with a ``log_likelihood`` group and its ``priors`` attribute.
    parameters
        Posterior variables to report; those absent from the run are skipped.
        ``la_trend`` is reported for the target authority only.
    threshold
        Sensitivity above which a parameter counts as sensitive (0.05, see module docstring).
    prior_terms
        Terms of `prior_log_density` to power-scale together; default all of them.

    Returns
    -------
    DataFrame with columns ``parameter, measure, la_code`` (the target for la_trend, else
    empty), ``prior_sensitivity, likelihood_sensitivity`` (cumulative Jensen-Shannon
    distance per unit of log power; unitless, 0 = insensitive) and ``diagnosis``
    ("prior-data conflict", "weak likelihood" or "").
    """

    if "log_likelihood" not in results.children:
        raise RunFileError(
            "the run has no log_likelihood group, which power-scaling needs; refit it with this "
            "version of bayes_lac (fits keep log_likelihood unless told not to)"
        )
    posterior = results["posterior"].to_dataset()
    names = [p for p in parameters if p in posterior.data_vars]
    if not names:
        raise BayesLacError(f"none of the parameters {', '.join(parameters)} is in the run's posterior")
    log_prior = prior_log_density(results)
    if prior_terms is not None:
        log_prior = log_prior[list(prior_terms)]
    target = run_info(results).target_la
    coords = {"la": [target]} if "la" in posterior.dims else None
    return _psense_table(posterior, results["log_likelihood"].to_dataset(), log_prior, names, coords, threshold)


#: Parameters of the latent-state model whose power-scaling sensitivity is reported: those a
#: prior in ``models/latent_priors.toml`` is set for (the trend's for the measures with a local
#: trend only).
LATENT_SENSITIVITY_PARAMETERS: tuple[str, ...] = (
    "intercept",
    "drift",
    "national_sd",
    "deprivation_between",
    "deprivation_within",
    "level_start_sd",
    "series_sd",
    "level_share",
    "level_sd",
    "noise",
    "trend_start_sd",
    "trend_sd",
    "damping",
    "national_damping",
    "count_share",
)


def latent_power_scaling(
    run: xr.DataTree, threshold: float = THRESHOLD, densities: tuple[xr.Dataset, xr.Dataset] | None = None
) -> pd.DataFrame:
    """`power_scaling` of a latent-state run: the priors of
    `bayes_lac.model.latent_fit.latent_log_densities` (`densities`, if already computed) scaled
    together, and the likelihood of every series, with the table's columns (``la_code`` empty)."""
    from bayes_lac.model.latent_fit import latent_log_densities, trend_measures_of

    log_prior, log_lik = densities if densities is not None else latent_log_densities(run)
    posterior = run["posterior"].to_dataset()
    names = [p for p in LATENT_SENSITIVITY_PARAMETERS if p in log_prior.data_vars and p in posterior.data_vars]
    with warnings.catch_warnings():
        # the trend's parameters of a measure without a local trend are constant 0: their
        # distances are 0/0, and their rows are dropped below
        warnings.simplefilter("ignore", RuntimeWarning)
        table = _psense_table(posterior[names], log_lik, log_prior, names, None, threshold)
    # the trend's parameters of a measure without a local trend do not touch the likelihood
    trend = trend_measures_of(run)
    trendless = [m for m in log_prior["measure"].values if m not in trend]
    local = table["parameter"].isin(["trend_start_sd", "trend_sd", "damping"])
    # a measure's count share is 1, not sampled, outside `COUNT_SHARE_MEASURES`
    from bayes_lac.model.latent import COUNT_SHARE_MEASURES

    fixed_share = (table["parameter"] == "count_share") & ~table["measure"].isin(COUNT_SHARE_MEASURES)
    return table[~(local & table["measure"].isin(trendless)) & ~fixed_share].reset_index(drop=True)


#: Columns of `quantity_power_scaling`'s table.
QUANTITY_POWER_COLUMNS: tuple[str, ...] = ("quantity", "prior_sensitivity", "likelihood_sensitivity", "diagnosis")


def quantity_power_scaling(
    run: xr.DataTree,
    quantities: dict[str, xr.DataArray],
    threshold: float = THRESHOLD,
    densities: tuple[xr.Dataset, xr.Dataset] | None = None,
) -> pd.DataFrame:
    """Power-scaling sensitivity of numbers a board reads, computed from a latent-state run.

    Parameters
    ----------
    run
        The latent-state run the numbers were computed from.
    quantities
        Name -> the number's value at each posterior draw: dims (chain, draw) as the posterior's,
        or one dim ``draw`` holding every posterior draw, chains in order (a forecast's or a
        cost's draws). Anything else (a subsample of the draws, another run's draws) is refused:
        the importance weights belong to the run's own draws.
    threshold
        Sensitivity from which a number is flagged (as for the parameters).
    densities
        `bayes_lac.model.latent_fit.latent_log_densities` of the run, if already computed.

    Returns
    -------
    DataFrame with columns `QUANTITY_POWER_COLUMNS`, a row per quantity in the order given. The
    priors and the likelihood are scaled as in `latent_power_scaling`; a number that also draws
    from outside the run (a cost's unit cost from the unit-cost model, predictive noise) is
    reweighted by this run's priors and likelihood only. A number the same at every draw has
    sensitivity 0.
    """
    from bayes_lac.model.latent_fit import latent_log_densities

    log_prior, log_lik = densities if densities is not None else latent_log_densities(run)
    posterior = run["posterior"].to_dataset()
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    values = {}
    for i, (name, q) in enumerate(quantities.items()):
        q = xr.DataArray(q)
        if set(q.dims) == {"chain", "draw"}:
            arr = q.transpose("chain", "draw").values
        elif q.dims == ("draw",) and q.sizes["draw"] == n_chain * n_draw:
            arr = q.values.reshape(n_chain, n_draw)
        else:
            raise BayesLacError(
                f"quantity {name!r} has dims {dict(q.sizes)}; power-scaling needs its value at each of the run's "
                f"{n_chain} x {n_draw} posterior draws: dims (chain, draw), or draw = {n_chain * n_draw}"
            )
        if arr.shape != (n_chain, n_draw):
            raise BayesLacError(f"quantity {name!r} has {arr.shape} draws; the run has {n_chain} x {n_draw}")
        if not np.isfinite(arr).all():
            raise BayesLacError(f"quantity {name!r} is not finite at every posterior draw")
        values[f"q{i}"] = (("chain", "draw"), arr.astype(float))
    if not values:
        return pd.DataFrame(columns=list(QUANTITY_POWER_COLUMNS))
    scaled = xr.Dataset(values, coords={"chain": posterior["chain"], "draw": posterior["draw"]})
    with warnings.catch_warnings():
        # a quantity constant over the draws has a distance of 0/0
        warnings.simplefilter("ignore", RuntimeWarning)
        table = _psense_table(scaled, log_lik, log_prior, list(values), None, threshold)
    table.insert(0, "quantity", list(quantities))
    # a number the same at every draw (e.g. a part computed from published counts alone) cannot
    # move under any reweighting: 0, where the distance's formula gives 0/0
    constant = [bool(np.ptp(v[1]) == 0) for v in values.values()]
    table.loc[constant, ["prior_sensitivity", "likelihood_sensitivity"]] = 0.0
    table.loc[constant, "diagnosis"] = ""
    return table[list(QUANTITY_POWER_COLUMNS)]


def _psense_table(posterior, log_lik, log_prior, names, coords, threshold) -> pd.DataFrame:
    """Prior and likelihood power-scaling sensitivity of `names` (``az.psense``), one row per
    parameter and coordinate, with the diagnosis."""
    import arviz as az

    # psense reads the prior from a log_prior group: give it the top-level beliefs only
    scaled = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": log_lik, "log_prior": log_prior})
    prior = az.psense(scaled, var_names=names, group="prior", coords=coords)
    likelihood = az.psense(scaled, var_names=names, group="likelihood", coords=coords)
    rows = []
    for name in names:
        p, lk = prior[name], likelihood[name]
        for index in np.ndindex(p.shape):
            where = {d: p[d].values[i] for d, i in zip(p.dims, index)}
            ps, ls = float(p.values[index]), float(lk.sel(where).values)
            rows.append(
                {
                    "parameter": name,
                    "measure": str(where.get("measure", "")),
                    "la_code": str(where.get("la", "")),
                    "prior_sensitivity": ps,
                    "likelihood_sensitivity": ls,
                    "diagnosis": _diagnosis(ps, ls, threshold),
                }
            )
    return pd.DataFrame(rows, columns=list(POWER_COLUMNS))


def power_scaling_finding(table: pd.DataFrame, threshold: float = THRESHOLD, converged: bool = True) -> Finding:
    """One sentence on the power-scaling table: which parameters are flagged and why.

    `converged` False adds a caveat: power-scaling reweights the existing draws, so with
    few effective draws its sensitivities are noisy and biased upwards.
    """
    flagged = table[table["diagnosis"] != ""]
    if flagged.empty:
        sentence = (
            f"No parameter is flagged by power-scaling (threshold {threshold:g}): the priors do "
            "not conflict with the data and the data, not the priors, determine the estimates."
        )
    else:
        parts = []
        for diagnosis, g in flagged.groupby("diagnosis"):
            labels = [_parameter_label(r) for _, r in g.iterrows()]
            parts.append(f"{diagnosis}: {', '.join(labels)}")
        sentence = (
            f"Power-scaling flags {len(flagged)} of {len(table)} parameters (threshold {threshold:g}); "
            + "; ".join(parts)
            + ". Prior-data conflict means the prior and the data disagree; weak likelihood means "
            "the prior, not the data, decides. Check these priors before relying on the results."
        )
    caveats = (
        ()
        if converged
        else (
            "The run failed its convergence diagnostics: power-scaling reweights its draws, so with few "
            "effective draws these sensitivities are noisy and tend to be too high. Refit with more draws "
            "before reading them.",
        )
    )
    return Finding(title="Prior sensitivity (power-scaling)", sentence=sentence, table=table, caveats=caveats)


def _parameter_label(row) -> str:
    extra = [x for x in (row["measure"], row["la_code"]) if x]
    return row["parameter"] + (f" ({', '.join(extra)})" if extra else "")


# --------------------------------------------------------------------------------------
# Conclusions a board reads


def conclusions(
    results: xr.DataTree,
    unit_costs=None,
    horizons: Sequence[int] = FORECAST_HORIZONS,
    seed: int = 0,
    ci_prob: float = CI_PROB,
    prior_set: str | None = None,
    uasc_path: str = "hold",
    uasc_rate: float | None = None,
) -> pd.DataFrame:
    """The conclusions a board reads from a run, summarised (see `CONCLUSIONS`).

    For the run's target authority: the expected rate in the last fitted year and its
    average annual change over the last `TREND_YEARS` years (each measure); the part of the
    modelled change in looked-after children from the first to the last fitted year not
    explained by population, UASC and deprivation (`bayes_lac.analysis.decompose`), in children and as
    a share of the change; the predicted
    count `horizons` years ahead under the trend scenario (`bayes_lac.analysis.forecast`); and, if
    `unit_costs` is given (a unit-cost history or number, see `bayes_lac.analysis.costs.costs`,
    or a fitted `bayes_lac.model.unit_cost.UnitCostFit`, whose predictive unit cost is drawn for
    each forecast draw), the annual cost of looked-after children in those years. `uasc_path`
    and `uasc_rate`: future UASC in the forecasts (`bayes_lac.analysis.forecast.forecast`).

    A latent-state run's rate is its latent rate (`bayes_lac.model.results.log_rate_terms`), for
    children looked after excluding UASC (the row's units say so).

    Returns
    -------
    DataFrame with columns `CONCLUSION_COLUMNS` (mean, median and equal-tailed interval in
    the units given per row).
    """
    from bayes_lac.analysis.decompose import decompose
    from bayes_lac.analysis.forecast import forecast
    from bayes_lac.model import results as R

    info = run_info(results, allow_latent=True)
    la = info.target_la
    first, last = info.first_year, info.last_year
    tables = []

    def add(draws: xr.DataArray, name: str, year: int, units: str | None = None):
        table = summarise_draws(draws, ci_prob=ci_prob)
        if "measure" not in table.columns:
            table["measure"] = "looked_after"
        table["conclusion"] = name
        table["year"] = year
        table["units"] = units or CONCLUSIONS[name][1]
        tables.append(table)

    start = max(first, last - TREND_YEARS)
    if info.latent:
        rate = np.exp(R.log_rate_terms(results, la=la, years=[start, last])["log_rate"])
    else:
        rate = R.rate(results, la=la)
    add(rate.sel(year=last), "current_rate", last)
    if info.latent:
        tables[-1]["units"] = np.where(
            tables[-1]["measure"] == "looked_after",
            CONCLUSIONS["current_rate"][1] + " (latent rate of children looked after other than UASC)",
            CONCLUSIONS["current_rate"][1] + " (latent rate)",
        )
    change = (rate.sel(year=last) / rate.sel(year=start)) ** (1.0 / (last - start)) - 1.0
    add(100 * change, "recent_trend", last)

    dec = decompose(results, la=la, from_year=first, to_year=last, measures="looked_after", allow_unconverged=True)
    parts = dec.draws.sel(measure="looked_after")
    add(parts.sel(component="not_explained"), "unexplained_change", last)
    add(parts.sel(component="not_explained") / parts.sel(component="total"), "unexplained_share", last)

    fc = forecast(
        results,
        la=la,
        horizon=max(horizons),
        scenarios=("trend",),
        seed=seed,
        uasc_path=uasc_path,
        uasc_rate=uasc_rate,
    )
    predicted = fc.data["predicted"].sel(scenario="trend")
    for h in horizons:
        add(predicted.sel(year=last + h), f"forecast_{h}", last + h)
    if unit_costs is not None:
        from bayes_lac.analysis.costs import costs, modelled_unit_costs
        from bayes_lac.model.unit_cost import UnitCostFit

        if isinstance(unit_costs, UnitCostFit):
            # the modelled unit cost, drawn for this forecast's draws from the one fit
            unit_costs = modelled_unit_costs(fc, None, fit=unit_costs, seed=seed)
        cost = costs(fc, unit_costs, seed=seed).data["cost_nominal"].sel(scenario="trend")
        for h in horizons:
            add(cost.sel(year=last + h), f"cost_{h}", last + h)
    out = pd.concat(tables, ignore_index=True)
    out["prior_set"] = prior_set if prior_set is not None else info.prior_set
    out["converged"] = info.converged
    return out[list(CONCLUSION_COLUMNS)]


def compare_conclusions(
    table: pd.DataFrame, reference: str, change_share: float = CHANGE_SHARE, width_change: float = WIDTH_CHANGE
) -> pd.DataFrame:
    """Set each prior set's conclusions beside the reference set's.

    Parameters
    ----------
    table
        Conclusions of several prior sets (`conclusions` output, concatenated).
    reference
        The prior set the others are compared with (the run's own).
    change_share
        A conclusion changes when ``|median - reference median|`` exceeds this share of the
        reference interval's width,
    width_change
        or when its interval width is more than this many times the reference's, or less than
        its inverse.

    Returns
    -------
    `table` plus ``shift`` (median minus the reference median, in the row's units),
    ``shift_share`` (that over the reference interval width), ``width_ratio`` (interval
    width over the reference's), ``median_moves``, ``width_changes`` and ``changes`` (bool).
    """
    if reference not in set(table["prior_set"]):
        raise BayesLacError(f"no conclusions for the reference prior set {reference!r}")
    keys = ["conclusion", "measure", "year"]
    ref = table[table["prior_set"] == reference][keys + ["median", "lower", "upper"]].rename(
        columns={"median": "ref_median", "lower": "ref_lower", "upper": "ref_upper"}
    )
    out = table.merge(ref, on=keys, how="left")
    out["shift"] = out["median"] - out["ref_median"]
    width = out["ref_upper"] - out["ref_lower"]
    out["shift_share"] = out["shift"] / width
    out["width_ratio"] = (out["upper"] - out["lower"]) / width
    out["median_moves"] = out["shift_share"].abs() > change_share
    out["width_changes"] = (out["width_ratio"] > width_change) | (out["width_ratio"] < 1 / width_change)
    out["changes"] = out["median_moves"] | out["width_changes"]
    return out.drop(columns=["ref_median", "ref_lower", "ref_upper"])


_FORMATTERS = {
    "current_rate": format_rate,
    "recent_trend": lambda x: f"{float(x):+.1f}%",
    "unexplained_change": format_count,
    "unexplained_share": format_percent,
    "forecast_5": format_count,
    "forecast_10": format_count,
    "cost_5": format_money,
    "cost_10": format_money,
}


def _conclusion_label(row) -> str:
    what = row["conclusion"]
    measure = MEASURE_LABELS.get(row["measure"], row["measure"]).lower()
    if what == "current_rate":
        return f"the {measure} rate in {row['year']}"
    if what == "recent_trend":
        return f"the recent trend of the {measure} rate"
    if what == "unexplained_change":
        return "the change in children looked after not explained by demand"
    if what == "unexplained_share":
        return "the share of the change in children looked after not explained by demand"
    if what.startswith("forecast_"):
        return f"the {measure} forecast for {row['year']}"
    return f"the cost of children looked after in {row['year']}"


def comparison_finding(
    comparison: pd.DataFrame, reference: str, change_share: float = CHANGE_SHARE, width_change: float = WIDTH_CHANGE
) -> Finding:
    """A plain sentence: does any conclusion change under another prior set, and by how much?"""
    others = comparison[comparison["prior_set"] != reference]
    sets = list(dict.fromkeys(others["prior_set"]))
    caveats = []
    unconverged = sorted(set(comparison.loc[~comparison["converged"].astype(bool), "prior_set"]))
    if unconverged:
        caveats.append(
            f"The fit under {', '.join(unconverged)} failed its convergence diagnostics; its numbers are provisional."
        )
    rule = (
        f"(a conclusion counts as changed when its median moves by more than {format_percent(change_share)} "
        f"of the width of its {format_percent(comparison['ci_prob'].iloc[0])} credible interval under {reference}, "
        f"or the interval becomes more than {width_change:g} times as wide or narrow)"
    )
    changed = others[others["changes"]]
    if changed.empty:
        largest = others.loc[others["shift_share"].abs().idxmax()] if len(others) else None
        sentence = f"No conclusion changes under the {', '.join(sets)} priors {rule}."
        if largest is not None:
            fmt = _FORMATTERS.get(largest["conclusion"], format_count)
            sentence += (
                f" The largest move is in {_conclusion_label(largest)} under {largest['prior_set']}: "
                f"{fmt(largest['median'])} against {fmt(largest['median'] - largest['shift'])} "
                f"({format_percent(abs(largest['shift_share']))} of the interval width)."
            )
    else:
        parts = []
        for _, row in changed.sort_values("shift_share", key=abs, ascending=False).iterrows():
            fmt = _FORMATTERS.get(row["conclusion"], format_count)
            ref_width = (row["upper"] - row["lower"]) / row["width_ratio"]
            wfmt = (lambda x: f"{float(x):.1f} points") if row["conclusion"] == "recent_trend" else fmt
            parts.append(
                f"{_conclusion_label(row)} under {row['prior_set']}: median {fmt(row['median'])} "
                f"({fmt(row['lower'])} to {fmt(row['upper'])}) against {fmt(row['median'] - row['shift'])} "
                f"(interval width {wfmt(ref_width)}) under {reference}: the median moves by "
                f"{format_percent(abs(row['shift_share']))} of that width and the interval is "
                f"{row['width_ratio']:.1f} times as wide"
            )
        sentence = (
            f"{len(changed)} of {len(others)} conclusions change under other priors {rule}: "
            + "; ".join(parts)
            + ". Report these with the prior set named."
        )
    return Finding(title="Prior sensitivity (refits)", sentence=sentence, table=comparison, caveats=tuple(caveats))


# --------------------------------------------------------------------------------------
# Refits


def _data_only(results: xr.DataTree) -> xr.DataTree:
    """The run without its draws: what `LACModel.from_run` needs, small enough to send to workers."""
    groups = {
        g: results[g].to_dataset() for g in ("constant_data", "observed_data", "reference") if g in results.children
    }
    light = xr.DataTree.from_dict(groups)
    light.attrs.update(results.attrs)
    return light


def sampler_settings(results: xr.DataTree, **overrides) -> dict:
    """The run's sampler settings (draws, tune, chains, seed, sampler, target_accept,
    max_treedepth; runs made before max_treedepth was recorded used 10), with any override that
    is not None."""
    stored = run_info(results).sampler
    keys = ("draws", "tune", "chains", "seed", "sampler", "target_accept", "max_treedepth")
    settings = {k: stored[k] for k in keys if k in stored}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    missing = [k for k in ("draws", "tune", "chains") if k not in settings]
    if missing:
        raise RunFileError(f"the run's sampler attribute lacks {', '.join(missing)}; give them explicitly")
    return settings


def refit_conclusions(task: dict) -> dict:
    """Worker task: refit a run's model under other priors and summarise its conclusions.

    `task` holds ``run`` (the run's data and attrs, see `_data_only`), ``priors`` (a loaded
    prior dict), ``prior_set`` (its label), ``sampler`` (settings for `LACModel.fit`),
    ``cores``, ``unit_costs`` and ``seed``. Returns a dict with ``table`` (`conclusions`),
    ``converged``, ``seconds`` (wall time of the fit) and ``diagnostics`` (the run's JSON).
    """
    from bayes_lac.model.fit import LACModel

    start = time.perf_counter()
    model = LACModel.from_run(task["run"])
    model.priors = task["priors"]
    # the conclusions need no log_likelihood or log_prior; leaving them out saves two compilations
    run = model.fit(None, progressbar=False, cores=task["cores"], log_density=False, **task["sampler"])
    run.attrs["prior_set"] = task["prior_set"]
    seconds = time.perf_counter() - start
    table = conclusions(run, unit_costs=task["unit_costs"], seed=task["seed"], prior_set=task["prior_set"])
    info = run_info(run)
    return {
        "table": table,
        "converged": info.converged,
        "seconds": seconds,
        "diagnostics": info.diagnostics.to_json(),
    }


@dataclass(frozen=True)
class Sensitivity:
    """Prior sensitivity of a run.

    Attributes
    ----------
    power
        Power-scaling table (`power_scaling`).
    power_finding
        Its sentence (`power_scaling_finding`).
    comparison
        Conclusions per prior set beside the reference's (`compare_conclusions`); None when
        no prior set was refitted.
    finding
        Its sentence (`comparison_finding`); None without refits.
    reference
        The run's own prior set, which the others are compared with.
    fit_seconds
        Wall time of each refit, by prior set (seconds).
    wall_seconds
        Wall time of the whole analysis (seconds).
    """

    power: pd.DataFrame = field(repr=False)
    power_finding: Finding
    comparison: pd.DataFrame | None = field(default=None, repr=False)
    finding: Finding | None = None
    reference: str = "default"
    fit_seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in (self.power_finding, self.finding) if f is not None)


def _prior_label(name_or_path) -> str:
    from bayes_lac.model.priors import PRIOR_SETS

    name = str(name_or_path)
    return name if name in PRIOR_SETS else Path(name).stem


def sensitivity(
    results: xr.DataTree,
    prior_sets: Sequence[str] = (),
    workers: int = 2,
    scheduler=None,
    unit_costs=None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    change_share: float = CHANGE_SHARE,
    progress: bool = True,
) -> Sensitivity:
    """Power-scaling sensitivity of a run and, optionally, refits under other prior sets.

    Parameters
    ----------
    results
        A run with ``log_prior`` and ``log_likelihood`` groups.
    prior_sets
        Prior sets to refit under: shipped names (``default``, ``weak``, ``tight``) or TOML
        files. The run's own prior set is not refitted: the run itself stands for it. Empty:
        power-scaling only.
    workers, scheduler
        Parallel refits (`bayes_lac.studies.parallel.run_tasks`): local processes, or a Dask
        scheduler address.
    unit_costs
        Unit-cost history or a weekly unit cost (`bayes_lac.analysis.costs.costs`); None leaves costs
        out of the comparison.
    draws, tune, chains, seed
        Sampler settings of the refits; default the run's own (its ``sampler`` attribute).
    change_share
        See `CHANGE_SHARE`.
    progress
        Progress bar over the refits.

    Returns
    -------
    `Sensitivity`
    """
    from bayes_lac.model.priors import load_priors
    from bayes_lac.studies.parallel import run_tasks

    start = time.perf_counter()
    info = run_info(results)
    power = power_scaling(results)
    power_finding = power_scaling_finding(power, converged=info.converged)
    reference = info.prior_set or "default"
    reference_label = _prior_label(reference)
    if not prior_sets:
        return Sensitivity(
            power=power,
            power_finding=power_finding,
            reference=reference_label,
            wall_seconds=time.perf_counter() - start,
        )
    settings = sampler_settings(results, draws=draws, tune=tune, chains=chains, seed=seed)
    parallel = scheduler is not None or workers > 1
    light = _data_only(results)
    tasks, labels = [], []
    for name in dict.fromkeys(str(p) for p in prior_sets):
        label = _prior_label(name)
        if label == reference_label:
            continue
        if label in labels:
            raise InputFileError(f"two prior sets are both called {label!r}; rename one of the files")
        tasks.append(
            {
                "run": light,
                # loaded here so a bad file fails before any fit, and workers need no file
                "priors": load_priors(name),
                "prior_set": label,
                "sampler": settings,
                "cores": 1 if parallel else None,
                "unit_costs": unit_costs,
                "seed": int(settings.get("seed") or 0),
            }
        )
        labels.append(label)
    own = conclusions(results, unit_costs=unit_costs, seed=int(settings.get("seed") or 0), prior_set=reference_label)
    outputs = run_tasks(
        refit_conclusions, tasks, workers=workers, scheduler=scheduler, progress=progress, description="refits"
    )
    table = pd.concat([own] + [o["table"] for o in outputs], ignore_index=True)
    comparison = compare_conclusions(table, reference_label, change_share)
    return Sensitivity(
        power=power,
        power_finding=power_finding,
        comparison=comparison,
        finding=comparison_finding(comparison, reference_label, change_share),
        reference=reference_label,
        fit_seconds={label: o["seconds"] for label, o in zip(labels, outputs)},
        wall_seconds=time.perf_counter() - start,
    )


# --------------------------------------------------------------------------------------
# Charts


def prior_sets_table(
    comparison: pd.DataFrame, conclusion: str = "forecast_5", measure: str = "looked_after"
) -> pd.DataFrame:
    """Rows of one conclusion across prior sets: the numbers `plot_prior_sets` draws."""
    rows = comparison[(comparison["conclusion"] == conclusion) & (comparison["measure"] == measure)]
    if rows.empty:
        raise BayesLacError(f"no {conclusion!r} conclusion for {measure!r} in the comparison")
    return rows.reset_index(drop=True)


def plot_prior_sets(
    comparison: pd.DataFrame,
    *,
    conclusion: str = "forecast_5",
    measure: str = "looked_after",
    ax=None,
    by: str = "prior set",
):
    """Median and credible interval of one conclusion under each prior set (or other choice,
    named by `by` in the title). Table twin: `prior_sets_table`."""
    from bayes_lac.style import get_axes, series_style

    rows = prior_sets_table(comparison, conclusion, measure)
    fig, ax = get_axes(ax, figsize=(7, max(3.5, 1.2 + 0.35 * len(rows))))
    for i, (_, row) in enumerate(rows.iterrows()):
        style = series_style(i)
        ax.errorbar(
            row["median"],
            i,
            xerr=[[row["median"] - row["lower"]], [row["upper"] - row["median"]]],
            fmt=style["marker"],
            color=style["color"],
            capsize=4,
        )
    ax.set_yticks(range(len(rows)), rows["prior_set"])
    ax.invert_yaxis()
    ax.set_xlabel(f"{CONCLUSIONS[conclusion][0]} ({rows['units'].iloc[0]})", wrap=True)
    ax.set_title(
        f"{MEASURE_LABELS.get(measure, measure)}: median and {format_percent(rows['ci_prob'].iloc[0])} interval by {by}"
    )
    return fig


def plot_power_scaling(table: pd.DataFrame, *, threshold: float = THRESHOLD, ax=None):
    """Prior against likelihood sensitivity per parameter, with the threshold lines. Table twin: the `power_scaling` table."""
    from bayes_lac.style import PALETTE, get_axes

    fig, ax = get_axes(ax, figsize=(6, 5))
    colours = {"": PALETTE[3], "weak likelihood": PALETTE[1], "prior-data conflict": PALETTE[5]}
    for diagnosis, g in table.groupby("diagnosis"):
        ax.scatter(
            g["prior_sensitivity"],
            g["likelihood_sensitivity"],
            color=colours.get(diagnosis, PALETTE[0]),
            label=diagnosis or "not flagged",
            edgecolor=PALETTE[0],
        )
        for _, row in g.iterrows():
            ax.annotate(
                _parameter_label(row),
                (row["prior_sensitivity"], row["likelihood_sensitivity"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.axvline(threshold, color=PALETTE[0], linestyle="--", linewidth=1)
    ax.axhline(threshold, color=PALETTE[0], linestyle="--", linewidth=1)
    ax.set_xlabel("Prior sensitivity")
    ax.set_ylabel("Likelihood sensitivity")
    ax.set_title(f"Power-scaling sensitivity (dashed: threshold {threshold:g})")
    ax.legend(frameon=False)
    return fig


# --------------------------------------------------------------------------------------
# Command line


def _bundled_unit_costs(results: xr.DataTree, panel: pd.DataFrame | None = None, where: str = "the bundled panel"):
    """The target's unit-cost history from the bundled panel, if the run was fitted on it; or
    from `panel` (named `where` in the note), already checked to be the run's.

    Returns (unit costs or None, a note for the user).
    """
    from bayes_lac.analysis.costs import unit_cost_history
    from bayes_lac.config import BUNDLED_PANEL
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.results import fitted_on

    if panel is None:
        if not BUNDLED_PANEL.exists():
            return None, "Costs left out: no bundled panel to read unit costs from."
        panel = load_panel()
        if not fitted_on(results, panel):
            return None, "Costs left out: the run was not fitted on the bundled panel, so its unit costs are not known."
    info = run_info(results, allow_latent=True)
    try:
        history = unit_cost_history(panel, info.target_la)
    except PanelError as err:
        return None, f"Costs left out: {err}."
    return history, f"Costs use the target's unit-cost history in {where}."
