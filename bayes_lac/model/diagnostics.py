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
