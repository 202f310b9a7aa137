"""Model checks on a fitted run: posterior and prior predictive coverage, rootograms, LOO."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, RATE_PER, interval_bounds

# ---------------------------------------------------------------------------------------
# Predictive checks
# ---------------------------------------------------------------------------------------


def posterior_predictive(results: xr.DataTree, seed: int | None = 0) -> xr.DataTree:
    """Posterior predictive draws of the modelled counts on ``obs`` (rebuilding the model).

    Returns a DataTree with ``posterior_predictive`` and ``observed_data`` (``modelled_count``
    on ``obs``, with ``obs_measure``, ``obs_la``, ``obs_year`` coordinates).
    """
    import pymc as pm

    from bayes_lac.model.fit import LACModel, _obs_coords, compile_kwargs_for

    lac = LACModel.from_run(results)
    post = results["posterior"]
    n_draws = post.sizes["chain"] * post.sizes["draw"]
    with lac.model_:
        idata = pm.sample_posterior_predictive(
            results,
            var_names=["modelled_count"],
            random_seed=seed,
            progressbar=False,
            compile_kwargs=compile_kwargs_for(lac.sampler_, n_draws),
        )
    coords = _obs_coords(lac.data_)
    m_idx, la_idx, t_idx = lac.data_.observed_index()
    observed = xr.Dataset(
        {"modelled_count": ("obs", lac.data_.modelled_count[m_idx, la_idx, t_idx])},
        coords={"obs": np.arange(len(m_idx)), **coords},
    )
    return xr.DataTree.from_dict(
        {
            "posterior_predictive": idata["posterior_predictive"].to_dataset().assign_coords(coords),
            "observed_data": observed,
        }
    )


def coverage_table(ppc: xr.DataTree, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Share of observed counts inside their equal-tailed predictive interval, by measure.

    A calibrated model puts about `ci_prob` of the observed counts inside; much less means
    the model is overconfident (e.g. dispersion too high), much more that it is too vague.
    """
    lo, hi = interval_bounds(ci_prob)
    pred = ppc["posterior_predictive"]["modelled_count"]
    obs = ppc["observed_data"]["modelled_count"]
    lower = pred.quantile(lo, ("chain", "draw"))
    upper = pred.quantile(hi, ("chain", "draw"))
    inside = ((obs >= lower) & (obs <= upper)).values
    measure = ppc["observed_data"]["obs_measure"].values
    rows = []
    for m in pd.unique(measure):
        sel = measure == m
        rows.append(
            {
                "measure": m,
                "cells": int(sel.sum()),
                "inside": int(inside[sel].sum()),
                "share_inside": float(inside[sel].mean()),
                "ci_prob": ci_prob,
            }
        )
    return pd.DataFrame(rows)


def rootogram_table(ppc: xr.DataTree, measure: str, bins: int = 20) -> pd.DataFrame:
    """Rootogram data for one measure: observed and expected frequency of counts per bin.

    Counts are large (tens to thousands), so they are binned on a log scale; the rootogram
    compares sqrt(observed frequency) with sqrt(mean predicted frequency) per bin.
    """
    sel = ppc["observed_data"]["obs_measure"].values == measure
    obs = ppc["observed_data"]["modelled_count"].values[sel]
    pred = ppc["posterior_predictive"]["modelled_count"].values[..., sel]
    top = max(obs.max(), np.quantile(pred, 0.999)) + 1
    edges = np.unique(np.round(np.geomspace(1, top + 1, bins + 1))) - 1
    edges[0] = 0
    observed, _ = np.histogram(obs, edges)
    flat = pred.reshape(-1, pred.shape[-1])
    expected = np.mean([np.histogram(row, edges)[0] for row in flat], axis=0)
    return pd.DataFrame(
        {
            "measure": measure,
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "observed": observed,
            "expected": expected,
            "sqrt_observed": np.sqrt(observed),
            "sqrt_expected": np.sqrt(expected),
        }
    )


def loo_table(results: xr.DataTree) -> pd.DataFrame:
    """PSIS-LOO of the run: elpd, its standard error, p_loo and Pareto-k counts, by measure too."""
    import arviz as az

    loo = az.loo(results, pointwise=True)
    k = np.asarray(loo.pareto_k).ravel()
    elpd_i = np.asarray(loo.elpd_i).ravel()
    measure = results["log_likelihood"]["obs_measure"].values
    rows = [
        {
            "measure": "all",
            "elpd_loo": float(loo.elpd),
            "se": float(loo.se),
            "p_loo": float(loo.p),
            "cells": int(k.size),
            "k_over_0.7": int((k > 0.7).sum()),
        }
    ]
    for m in pd.unique(measure):
        sel = measure == m
        rows.append(
            {
                "measure": m,
                "elpd_loo": float(elpd_i[sel].sum()),
                "se": float(np.sqrt(sel.sum() * np.var(elpd_i[sel]))),
                "p_loo": math.nan,
                "cells": int(sel.sum()),
                "k_over_0.7": int((k[sel] > 0.7).sum()),
            }
        )
    return pd.DataFrame(rows)


def model_checks(results: xr.DataTree, ci_prob: float = CI_PROB, seed: int | None = 0) -> dict:
    """Posterior predictive checks and LOO of a run.

    Returns a dict with ``coverage`` (`coverage_table`), ``rootogram`` (`rootogram_table` for
    every measure, stacked), ``loo`` (`loo_table`) and ``ppc`` (the predictive DataTree, for
    ArviZ plots such as ``az.plot_ppc_rootogram``).
    """
    from bayes_lac.model.results import run_info

    ppc = posterior_predictive(results, seed=seed)
    measures = run_info(results).measures
    return {
        "coverage": coverage_table(ppc, ci_prob),
        "rootogram": pd.concat([rootogram_table(ppc, m) for m in measures], ignore_index=True),
        "loo": loo_table(results),
        "ppc": ppc,
    }


def prior_predictive_table(prior: xr.DataTree, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Prior predictive rates per 10,000 children against the observed range, by measure.

    `prior` is from ``LACModel.prior_predictive``. A sensible prior puts the observed rates
    well inside its predictive range, and does not put much mass on absurd rates (e.g. more
    children in need than children).
    """
    lo, hi = interval_bounds(ci_prob)
    pred = prior["prior_predictive"]["modelled_count"]
    obs = prior["observed_data"]["modelled_count"]
    const = prior["constant_data"]
    la = prior["prior_predictive"]["obs_la"].values
    yr = prior["prior_predictive"]["obs_year"].values
    pop = const["population_0_17"].to_pandas().stack().reindex(list(zip(la, yr))).to_numpy()
    pred_rate = pred.values.reshape(-1, pred.shape[-1]) / pop * RATE_PER
    obs_rate = obs.values / pop * RATE_PER
    measure = prior["prior_predictive"]["obs_measure"].values
    rows = []
    for m in pd.unique(measure):
        sel = measure == m
        pr = pred_rate[:, sel]
        rows.append(
            {
                "measure": m,
                "observed_min": float(obs_rate[sel].min()),
                "observed_max": float(obs_rate[sel].max()),
                "prior_lower": float(np.quantile(pr, lo)),
                "prior_median": float(np.median(pr)),
                "prior_upper": float(np.quantile(pr, hi)),
                "share_over_10000": float((pr > RATE_PER).mean()),
                "ci_prob": ci_prob,
            }
        )
    return pd.DataFrame(rows)
