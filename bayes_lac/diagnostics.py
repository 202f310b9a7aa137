"""Is a fit to be trusted? Convergence diagnostics, predictive checks and LOO.

Every fit gets `check_convergence` (stored in the run's ``diagnostics`` and ``converged``
attrs); every analysis of a run calls `require_converged` first. Thresholds (Vehtari et al.
2021, Betancourt 2016): no divergent transitions, R-hat <= 1.01, bulk and tail effective
sample size >= 400, E-BFMI >= 0.3 in every chain.

Predictive checks suited to counts: the share of observed counts inside their predictive
interval (`coverage_table`), rootogram data (`rootogram_table`), PSIS-LOO (`model_checks`)
and a prior predictive summary on the rate scale (`prior_predictive_table`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, RATE_PER, interval_bounds
from bayes_lac.errors import UnconvergedFitError

MAX_RHAT = 1.01
MIN_ESS = 400
MIN_BFMI = 0.3

# Posterior variables whose convergence is checked: the contract's parameters and the
# hyper-parameters that drive them (derived duplicates such as year_step are implied).
CHECKED_VARIABLES: tuple[str, ...] = (
    "intercept",
    "la_intercept",
    "la_trend",
    "year_effect",
    "year_sigma",
    "deprivation_effect",
    "dispersion",
    "la_intercept_sd",
    "la_trend_sd",
    "la_intercept_corr",
    "la_trend_corr",
)


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a fit.

    Attributes
    ----------
    divergences
        Divergent transitions after tuning, all chains.
    max_rhat
        Largest rank-normalised split R-hat over every checked parameter.
    min_ess_bulk, min_ess_tail
        Smallest bulk and tail effective sample sizes.
    min_bfmi
        Smallest E-BFMI over chains.
    converged
        True when every threshold is met.
    problems
        One sentence per failed threshold, naming the worst parameter.
    """

    divergences: int
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    min_bfmi: float
    converged: bool
    problems: tuple[str, ...] = ()
    worst: dict | None = None

    def to_json(self) -> str:
        d = asdict(self)
        d["problems"] = list(self.problems)
        return json.dumps(d, default=float)

    @classmethod
    def from_json(cls, text: str) -> "Diagnostics":
        d = json.loads(text)
        d["problems"] = tuple(d.get("problems", ()))
        return cls(**d)

    def summary(self) -> str:
        """A few lines for the screen."""
        verdict = "converged" if self.converged else "NOT CONVERGED"
        lines = [
            f"Diagnostics: {verdict}",
            f"  divergent transitions  {self.divergences:>8d}   (need 0)",
            f"  max R-hat              {self.max_rhat:>8.3f}   (need <= {MAX_RHAT})",
            f"  min bulk ESS           {self.min_ess_bulk:>8.0f}   (need >= {MIN_ESS})",
            f"  min tail ESS           {self.min_ess_tail:>8.0f}   (need >= {MIN_ESS})",
            f"  min E-BFMI             {self.min_bfmi:>8.2f}   (need >= {MIN_BFMI})",
        ]
        return "\n".join(lines)

    def table(self) -> pd.DataFrame:
        """The diagnostics as a table: quantity, value, threshold, ok."""
        return pd.DataFrame(
            {
                "quantity": ["divergent transitions", "max R-hat", "min bulk ESS", "min tail ESS", "min E-BFMI"],
                "value": [self.divergences, self.max_rhat, self.min_ess_bulk, self.min_ess_tail, self.min_bfmi],
                "threshold": ["= 0", f"<= {MAX_RHAT}", f">= {MIN_ESS}", f">= {MIN_ESS}", f">= {MIN_BFMI}"],
                "ok": [
                    self.divergences == 0,
                    self.max_rhat <= MAX_RHAT,
                    self.min_ess_bulk >= MIN_ESS,
                    self.min_ess_tail >= MIN_ESS,
                    self.min_bfmi >= MIN_BFMI,
                ],
            }
        )


def _extreme(da: xr.DataArray, varying: xr.DataArray, largest: bool) -> tuple[float, str]:
    """Max or min of a per-parameter diagnostic over entries that vary across draws."""
    values = np.where(varying.values, da.values, np.nan)
    if np.all(np.isnan(values)):
        return (math.nan, "")
    flat = int(np.nanargmax(values) if largest else np.nanargmin(values))
    idx = np.unravel_index(flat, values.shape)
    label = ", ".join(f"{d}={da[d].values[i]}" for d, i in zip(da.dims, idx) if d in da.coords)
    return float(values[idx]), label


def check_convergence(results: xr.DataTree, var_names=None) -> Diagnostics:
    """Convergence diagnostics of a run (or any DataTree with posterior and sample_stats).

    R-hat and ESS are computed per variable (never by stacking variables of different
    shapes); entries that are constant across draws (e.g. the pinned first year of the
    common path, the unit diagonal of a correlation matrix) are skipped.
    """
    post = results["posterior"].to_dataset()
    names = [v for v in (var_names or CHECKED_VARIABLES) if v in post.data_vars]
    if not names:
        names = list(post.data_vars)
    rhat = az.rhat(post[names])
    ess_bulk = az.ess(post[names], method="bulk")
    ess_tail = az.ess(post[names], method="tail")
    worst_rhat, worst_bulk, worst_tail = (-math.inf, ""), (math.inf, ""), (math.inf, "")
    for v in names:
        varying = post[v].std(("chain", "draw")) > 0
        r = _extreme(rhat[v], varying, largest=True)
        b = _extreme(ess_bulk[v], varying, largest=False)
        t = _extreme(ess_tail[v], varying, largest=False)
        if not math.isnan(r[0]) and r[0] > worst_rhat[0]:
            worst_rhat = (r[0], f"{v}[{r[1]}]" if r[1] else v)
        if not math.isnan(b[0]) and b[0] < worst_bulk[0]:
            worst_bulk = (b[0], f"{v}[{b[1]}]" if b[1] else v)
        if not math.isnan(t[0]) and t[0] < worst_tail[0]:
            worst_tail = (t[0], f"{v}[{t[1]}]" if t[1] else v)
    n_chains = post.sizes["chain"]
    if n_chains < 2:
        # R-hat compares chains; with one chain it cannot detect non-convergence
        worst_rhat = (math.inf, "(one chain: R-hat needs at least 2)")

    stats = results["sample_stats"].to_dataset() if "sample_stats" in results.children else xr.Dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    if "energy" in stats and stats.sizes.get("draw", 0) > 2:
        energy = stats["energy"].values
        # E-BFMI per chain (Betancourt 2016): mean squared energy change over energy variance
        bfmi = np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1)
        min_bfmi = float(np.min(bfmi))
    else:
        min_bfmi = math.nan

    problems = []
    if divergences > 0:
        problems.append(f"{divergences} divergent transitions after tuning (need 0).")
    if not worst_rhat[0] <= MAX_RHAT:
        problems.append(f"R-hat {worst_rhat[0]:.3f} for {worst_rhat[1]} exceeds {MAX_RHAT}.")
    if not worst_bulk[0] >= MIN_ESS:
        problems.append(f"bulk ESS {worst_bulk[0]:.0f} for {worst_bulk[1]} is below {MIN_ESS}.")
    if not worst_tail[0] >= MIN_ESS:
        problems.append(f"tail ESS {worst_tail[0]:.0f} for {worst_tail[1]} is below {MIN_ESS}.")
    if not min_bfmi >= MIN_BFMI:
        problems.append(f"E-BFMI {min_bfmi:.2f} in some chain is below {MIN_BFMI}.")
    return Diagnostics(
        divergences=divergences,
        max_rhat=float(worst_rhat[0]),
        min_ess_bulk=float(worst_bulk[0]),
        min_ess_tail=float(worst_tail[0]),
        min_bfmi=min_bfmi,
        converged=not problems,
        problems=tuple(problems),
        worst={"rhat": worst_rhat[1], "ess_bulk": worst_bulk[1], "ess_tail": worst_tail[1]},
    )


def attach_diagnostics(results: xr.DataTree) -> Diagnostics:
    """Compute the diagnostics of a run and record them in its attrs (in place)."""
    diag = check_convergence(results)
    results.attrs["diagnostics"] = diag.to_json()
    results.attrs["converged"] = "true" if diag.converged else "false"
    return diag


def stored_diagnostics(results: xr.DataTree) -> Diagnostics:
    """The diagnostics recorded in a run's attrs (computed at fit time)."""
    text = results.attrs.get("diagnostics")
    if text is None:
        return check_convergence(results)
    d = json.loads(text)
    if "max_rhat" not in d:  # a run made by hand (e.g. a test fixture) with a bare flag
        converged = str(results.attrs.get("converged", "false")) == "true"
        return Diagnostics(0, math.nan, math.nan, math.nan, math.nan, converged, () if converged else ("marked unconverged",))
    return Diagnostics.from_json(text)


def convergence_warning(diag: Diagnostics) -> str:
    """The loud multi-line warning printed when a fit fails its diagnostics."""
    bar = "!" * 78
    lines = [
        bar,
        "WARNING: THIS FIT FAILED ITS CONVERGENCE DIAGNOSTICS. Its numbers may be wrong.",
        *[f"  - {p}" for p in diag.problems],
        "The run was saved and is marked converged=false; analyses refuse it unless given",
        "--allow-unconverged. Try more tuning and draws (--tune 1000 --draws 1000), more",
        "chains, or a different seed; persistent divergences point to a model problem.",
        bar,
    ]
    return "\n".join(lines)


def require_converged(results: xr.DataTree, allow_unconverged: bool = False) -> Diagnostics:
    """The run's diagnostics; raise `UnconvergedFitError` if it failed them, unless allowed.

    Downstream analyses call this first. The diagnostics are those stored at fit time.
    """
    diag = stored_diagnostics(results)
    if not diag.converged and not allow_unconverged:
        problems = "; ".join(p.rstrip(".") for p in diag.problems) or "the run is marked converged=false"
        raise UnconvergedFitError(
            f"the fit of {results.attrs.get('target_la', '?')} failed its convergence diagnostics: "
            f"{problems}. Refit with more tuning/draws, or pass allow_unconverged=True "
            "(--allow-unconverged) to use it anyway."
        )
    return diag


# ---------------------------------------------------------------------------------------
# Predictive checks
# ---------------------------------------------------------------------------------------


def posterior_predictive(results: xr.DataTree, seed: int | None = 0) -> xr.DataTree:
    """Posterior predictive draws of the modelled counts on ``obs`` (rebuilding the model).

    Returns a DataTree with ``posterior_predictive`` and ``observed_data`` (``modelled_count``
    on ``obs``, with ``obs_measure``, ``obs_la``, ``obs_year`` coordinates).
    """
    import pymc as pm

    from bayes_lac.model import LACModel, _obs_coords

    lac = LACModel.from_run(results)
    with lac.model_:
        idata = pm.sample_posterior_predictive(
            results, var_names=["modelled_count"], random_seed=seed, progressbar=False
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
        rows.append({"measure": m, "cells": int(sel.sum()), "inside": int(inside[sel].sum()), "share_inside": float(inside[sel].mean()), "ci_prob": ci_prob})
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
    ppc = posterior_predictive(results, seed=seed)
    measures = json.loads(results.attrs["measures"])
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
