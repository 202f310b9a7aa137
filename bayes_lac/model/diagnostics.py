"""Is a fit to be trusted? The convergence gate.

Every fit gets `check_convergence` (stored in the run's ``diagnostics`` and ``converged``
attrs, with a digest of the draws and verdict, `gate_digest`), and loading a saved run whose
digest differs recomputes it from the stored draws and refuses a run whose stored verdict
disagrees (see ``bayes_lac.model.results.load_run``); every analysis of a run
calls `require_converged` first. Thresholds (Vehtari et al. 2021, Betancourt 2016): no
divergent transitions, R-hat <= 1.01, bulk and tail effective sample size >= 400, E-BFMI >=
0.3 in every chain.

The variables checked are read off the posterior itself (`checked_variables`): every
variable in it except the derived re-expressions listed in `DERIVED_VARIABLES`. So every
sampled parameter is checked whatever the parameterisation calls it (``la_mid_z``,
``year_step_z``, ``persistence``, ...), with no list that could fall behind the model and no
attribute that could be edited to leave one out; ``tests/test_diagnostics.py`` builds the
model in each parameterisation and checks that every free variable is in the set.

R-hat and the effective sample sizes are computed here with numpy, following Vehtari,
Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis
16(2): rank-normalised split R-hat (the larger of the bulk and the folded R-hat), bulk ESS on
rank-normalised split chains and tail ESS as the smaller ESS of the indicators of the 5 % and
95 % quantiles, each ESS by Geyer's initial monotone sequence. Computing them here keeps
loading a run quick (ArviZ takes seconds to import); ``tests/test_diagnostics.py`` checks
them against ArviZ.

Predictive checks and LOO are in ``bayes_lac.model.checks``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import xarray as xr

from bayes_lac.errors import UnconvergedFitError

MAX_RHAT = 1.01
MIN_ESS = 400
MIN_BFMI = 0.3
#: Posterior variables the gate leaves out: deterministic functions of the sampled ones
#: (authority effects and the common path rebuilt from their sampled forms, the dispersion
#: from its coefficient of variation, correlations from the Cholesky factors). Checking the
#: variables they are computed from checks them; leaving them out halves the work of
#: loading a run.
DERIVED_VARIABLES: frozenset[str] = frozenset(
    {"la_intercept", "la_trend", "year_effect", "year_step", "dispersion", "la_intercept_corr", "la_trend_corr"}
)
#: Quantiles whose indicators give the tail effective sample size: 5 % and 95 %, the definition
#: of Vehtari et al. (2021) as the Stan team's posterior package computes it. ArviZ 1's
#: ``ess(method="tail")``, ``summary`` and ``diagnose`` default to its ``stats.ci_prob`` (0.89),
#: i.e. the 11 % and 89 % quantiles, a different quantity: a cross-check against ArviZ must pass
#: ``prob=(0.05, 0.95)``.
TAIL_QUANTILES: tuple[float, float] = (0.05, 0.95)


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a fit.

    Attributes
    ----------
    divergences
        Divergent transitions after tuning, all chains.
    max_rhat
        Largest rank-normalised split R-hat over every checked parameter (unitless).
    min_ess_bulk, min_ess_tail
        Smallest bulk and tail effective sample sizes (draws).
    min_bfmi
        Smallest E-BFMI over chains (unitless).
    converged
        True when every threshold is met.
    problems
        One sentence per failed threshold, naming the worst parameter.
    worst
        The parameter (and coordinates) with the worst R-hat, bulk ESS and tail ESS.
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
    def from_json(cls, text: str) -> Diagnostics:
        """The diagnostics a run stores; ValueError if `text` is not what `to_json` writes."""
        try:
            d = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"not JSON ({err})") from None
        fields = ("divergences", "max_rhat", "min_ess_bulk", "min_ess_tail", "min_bfmi", "converged")
        if not isinstance(d, dict) or any(k not in d for k in fields):
            raise ValueError(f"expected a JSON object with {', '.join(fields)}")
        if not isinstance(d["converged"], bool):
            raise ValueError(f"'converged' is {d['converged']!r}; expected true or false")
        try:
            numbers = {k: float(d[k]) for k in fields[1:5]}
            divergences = int(d["divergences"])
        except (TypeError, ValueError):
            raise ValueError(
                "expected numbers for divergences, max_rhat, min_ess_bulk, min_ess_tail and min_bfmi"
            ) from None
        problems = d.get("problems", [])
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
            raise ValueError("'problems' must be a list of sentences")
        worst = d.get("worst")
        return cls(
            divergences,
            **numbers,
            converged=d["converged"],
            problems=tuple(problems),
            worst=worst if isinstance(worst, dict) else None,
        )

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

    def table(self):
        """The diagnostics as a table: quantity, value, threshold, ok."""
        import pandas as pd

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


# ---------------------------------------------------------------------------------------
# R-hat and effective sample size, with numpy. Internally arrays are (K, chain, draw): K
# scalars at once, each scalar's draws contiguous (sorting and FFTs along the last axis).
# ---------------------------------------------------------------------------------------


def _split_chains(x: np.ndarray) -> np.ndarray:
    """Each chain cut into its first and second half (the middle draw dropped if odd)."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..S along the last axis of a (K, S) array, ties given their average rank."""
    n = values.shape[1]
    order = np.argsort(values, axis=1)
    ordered = np.take_along_axis(values, order, axis=1)
    position = np.broadcast_to(np.arange(n), values.shape)
    starts_group = np.ones(values.shape, bool)
    starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    if starts_group.all():  # no ties (the usual case for continuous draws)
        average = position + 1.0
    else:
        ends_group = np.ones(values.shape, bool)
        ends_group[:, :-1] = starts_group[:, 1:]
        first = np.maximum.accumulate(np.where(starts_group, position, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends_group, position, n - 1)[:, ::-1], axis=1)[:, ::-1]
        average = (first + last) / 2.0 + 1.0
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, average, axis=1)
    return ranks


@functools.lru_cache(maxsize=8)
def _normal_scores(size: int) -> np.ndarray:
    """Normal quantiles of Blom's plotting positions ``(r - 3/8) / (size + 1/4)``, indexed by 2r.

    Ranks are whole or half numbers (ties share their average rank), so a table of
    ``2 * size + 1`` entries covers them all.
    """
    inverse = NormalDist().inv_cdf
    return np.array([inverse((h / 2.0 - 0.375) / (size + 0.25)) if h >= 2 else np.nan for h in range(2 * size + 1)])


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks pooled over chains (Blom's offset 3/8), shape of `x` (K, chain, draw)."""
    k, m, n = x.shape
    ranks = _average_ranks(x.reshape(k, m * n))
    return _normal_scores(m * n)[np.rint(2.0 * ranks).astype(int)].reshape(k, m, n)


def _classic_rhat(x: np.ndarray) -> np.ndarray:
    """Potential scale reduction of (K, chain, draw) draws (Gelman et al. 2013, BDA3 ch. 11)."""
    n = x.shape[2]
    between = n * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(x, axis=2, ddof=1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _fast_length(target: int) -> int:
    """The smallest 2^a 3^b 5^c at least `target`: a length numpy's FFT handles quickly."""
    best = 1 << max(target - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35 << max(0, (target - 1) // power35).bit_length()
            # the smallest power of two times power35 that reaches target
            while length // 2 >= target and length % 2 == 0:
                length //= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at lags 0..n-1, by FFT: (K, chain, draw) -> (K, chain, lag)."""
    n = x.shape[2]
    centred = x - x.mean(axis=2, keepdims=True)
    size = _fast_length(2 * n - 1)  # zero padding to at least 2n - 1: no wrap-around
    spectrum = np.fft.rfft(centred, n=size, axis=2)
    return np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=size, axis=2)[:, :, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of (K, chain, draw) draws (Geyer's initial monotone sequence).

    The autocorrelations combine chains as in Vehtari et al. (2021, eq. 10); pairs of
    autocorrelations are summed while the previous pair's sum is positive, and the pair sums
    are made non-increasing. A constant scalar has the full sample size.
    """
    k, m, n = x.shape
    total = m * n
    acov = _autocovariance(x)
    mean_var = acov[:, :, 0].mean(axis=1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    constant = ~(np.ptp(x.reshape(k, total), axis=1) > np.finfo(float).resolution)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (K, lag)
    rho[:, 0] = 1.0
    n_pairs = n // 2
    pairs = rho[:, 0 : 2 * n_pairs : 2] + rho[:, 1 : 2 * n_pairs : 2]  # (K, pair)
    # pairs 1, 2, ... are looked at while the previous pair's sum is positive, up to the last
    # pair whose odd lag is below n - 2
    last_pair = max(0, (n - 1) // 2 - 1)
    positive = pairs[:, : last_pair + 1] > 0
    stop = np.where(positive.all(axis=1), last_pair, np.argmin(positive, axis=1))
    monotone = np.minimum.accumulate(np.where(np.isnan(pairs), np.inf, pairs), axis=1)
    summed = np.where(np.arange(pairs.shape[1]) < stop[:, None], monotone, 0.0).sum(axis=1)
    rows = np.arange(k)
    stop_even = rho[rows, 2 * stop]
    tail = np.where(pairs[rows, stop] >= 0, stop_even, np.maximum(stop_even, 0.0))
    tau = np.maximum(-1.0 + 2.0 * summed + tail, 1.0 / np.log10(total))
    ess = np.where(np.isnan(rho).any(axis=1), np.nan, total / tau)
    return np.where(constant, float(total), ess)


def _convergence_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of (K, chain, draw) draws, sharing the ranks between them.

    Each is NaN with fewer than 4 draws per chain; R-hat also with fewer than 2 chains.
    """
    x = np.asarray(x, float)
    k = x.shape[0]
    if x.shape[2] < 4:
        nan = np.full(k, np.nan)
        return nan, nan, nan
    split = _split_chains(x)
    z = _rank_normalise(split)
    if x.shape[1] >= 2:
        folded = _rank_normalise(np.abs(split - np.median(split.reshape(k, -1), axis=1)[:, None, None]))
        r_hat = np.maximum(_classic_rhat(z), _classic_rhat(folded))
    else:
        r_hat = np.full(k, np.nan)
    bulk = _ess(z)
    # quantiles of all draws (the middle one of an odd chain included), indicators on split chains
    low, high = np.quantile(x.reshape(k, -1), TAIL_QUANTILES, axis=1)
    indicators = np.concatenate([split <= low[:, None, None], split <= high[:, None, None]], axis=0).astype(float)
    tail_both = _ess(indicators)
    return r_hat, bulk, np.minimum(tail_both[:k], tail_both[k:])


def _scalars_first(x) -> np.ndarray:
    """(chain, draw, ...) draws as (K, chain, draw)."""
    x = np.asarray(x, float)
    return np.moveaxis(x.reshape(x.shape[0], x.shape[1], -1), 2, 0)


def rhat(x) -> np.ndarray:
    """Rank-normalised split R-hat of (chain, draw, ...) draws: the larger of bulk and folded
    R-hat, one per scalar (flattened). NaN with fewer than 2 chains or 4 draws."""
    return _convergence_statistics(_scalars_first(x))[0]


def ess_bulk(x) -> np.ndarray:
    """Bulk effective sample size of (chain, draw, ...) draws: ESS of the rank-normalised split
    chains, one per scalar (flattened)."""
    return _convergence_statistics(_scalars_first(x))[1]


def max_rhat_min_bulk_ess(posterior: xr.Dataset, names) -> tuple[float, float]:
    """The largest R-hat and the smallest bulk ESS over every entry of the variables `names` of
    `posterior` (each variable's ranks computed once): the summary that fits judged by those
    two alone (flows, unit cost) record."""
    largest, smallest = -math.inf, math.inf
    for name in names:
        r_hat, bulk, _ = _convergence_statistics(_scalars_first(posterior[name].transpose("chain", "draw", ...).values))
        largest = max(largest, float(np.nanmax(r_hat)))
        smallest = min(smallest, float(np.nanmin(bulk)))
    return largest, smallest


def ess_tail(x) -> np.ndarray:
    """Tail effective sample size of (chain, draw, ...) draws: the smaller ESS of the indicators
    of the 5 % and 95 % quantiles (`TAIL_QUANTILES`) on split chains, one per scalar (flattened).

    Equal to ArviZ 1's ``ess(..., method="tail", prob=(0.05, 0.95))``; ArviZ's default quantiles
    differ (see `TAIL_QUANTILES`)."""
    return _convergence_statistics(_scalars_first(x))[2]


# ---------------------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------------------


def _label(name: str, da: xr.DataArray, flat_index: int) -> str:
    """``name[dim=coord, ...]`` of entry `flat_index` of `da` without its chain and draw dims."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return name
    idx = np.unravel_index(flat_index, [da.sizes[d] for d in dims])
    parts = [f"{d}={da[d].values[i]}" if d in da.coords else f"{d}={i}" for d, i in zip(dims, idx)]
    return f"{name}[{', '.join(parts)}]"


def checked_variables(posterior: xr.Dataset) -> list[str]:
    """The posterior variables the gate checks: every one with chain and draw dims that is not
    in `DERIVED_VARIABLES`."""
    return [
        str(v)
        for v, da in posterior.data_vars.items()
        if "chain" in da.dims and "draw" in da.dims and str(v) not in DERIVED_VARIABLES
    ]


def check_convergence(results: xr.DataTree) -> Diagnostics:
    """Convergence diagnostics of a run (or any DataTree with posterior and sample_stats).

    R-hat and ESS are computed for every entry of every checked variable (`checked_variables`),
    variable by variable (never by stacking variables of different shapes); entries constant
    across draws (e.g. the pinned first year of the common path, the unit diagonal of a
    correlation matrix) are skipped. Divergences and E-BFMI come from ``sample_stats``; a run
    without its sampler statistics cannot show E-BFMI and fails.
    """
    post = results["posterior"].to_dataset()
    worst_rhat, worst_bulk, worst_tail = (-math.inf, ""), (math.inf, ""), (math.inf, "")
    n_chains = post.sizes.get("chain", 0)
    for name in checked_variables(post):
        da = post[name]
        values = _scalars_first(da.transpose("chain", "draw", ...).values)
        varying = np.ptp(values.reshape(values.shape[0], -1), axis=1) > 0
        if not varying.any():
            continue
        columns = np.flatnonzero(varying)
        r_hat, bulk, tail = _convergence_statistics(np.ascontiguousarray(values[columns]))
        for result, stat, largest in (("rhat", r_hat, True), ("bulk", bulk, False), ("tail", tail, False)):
            if np.all(np.isnan(stat)):
                continue
            j = int(np.nanargmax(stat) if largest else np.nanargmin(stat))
            value, label = float(stat[j]), _label(name, da, int(columns[j]))
            if result == "rhat" and value > worst_rhat[0]:
                worst_rhat = (value, label)
            elif result == "bulk" and value < worst_bulk[0]:
                worst_bulk = (value, label)
            elif result == "tail" and value < worst_tail[0]:
                worst_tail = (value, label)
    if n_chains < 2:
        # R-hat compares chains; with one chain it cannot detect non-convergence
        worst_rhat = (math.inf, "(one chain: R-hat needs at least 2)")
    if post.sizes.get("draw", 0) < 4:
        # nothing can be computed, and what cannot be computed must not pass
        few = (math.nan, "(fewer than 4 draws per chain)")
        worst_rhat, worst_bulk, worst_tail = few, few, few

    stats = results["sample_stats"].to_dataset() if "sample_stats" in results.children else xr.Dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    if "energy" in stats and stats.sizes.get("draw", 0) > 2:
        energy = stats["energy"].transpose("chain", "draw").values
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
        what = "no sampler energy recorded" if math.isnan(min_bfmi) else f"{min_bfmi:.2f} in some chain"
        problems.append(f"E-BFMI {what}; need at least {MIN_BFMI} in every chain.")
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


@functools.cache
def _gate_source() -> bytes:
    """This module's source, so that any change to the gate changes every digest; without a
    readable source, a token of this process (no recorded digest matches: the gate reruns)."""
    from pathlib import Path

    try:
        return Path(__file__).read_bytes()
    except OSError:
        return os.urandom(16)


def gate_digest(results: xr.DataTree) -> str:
    """A digest of everything the gate's verdict on a run rests on.

    It covers the posterior (every variable's name, dims, dtype and values, and the
    coordinate labels the gate's messages name), the sampler statistics the gate reads
    (divergences, energy), the recorded ``diagnostics`` and ``converged`` attrs, the gate's
    thresholds, the bayes_lac version and the source of this module (the gate's code).
    `attach_diagnostics` records it in the run's ``gate_digest`` attr;
    `bayes_lac.model.results.load_run` recomputes the gate only when a loaded run's digest
    differs (about 0.02 s against 0.2-0.4 s for the gate on a default fit). An edit to the
    draws, to a verdict or to the recorded numbers that does not also rewrite ``gate_digest``,
    or any change to the gate, changes the digest, so the gate is then recomputed and judges.
    The digest guards against edited and corrupted files, not against a forger who rewrites it
    too (as one could write draws made to pass).
    """
    from bayes_lac import __version__

    digest = hashlib.blake2b(digest_size=20)

    def add(*parts) -> None:
        for part in parts:
            digest.update(str(part).encode("utf-8"))
            digest.update(b"\0")

    add("bayes_lac gate", __version__, MAX_RHAT, MIN_ESS, MIN_BFMI, TAIL_QUANTILES, sorted(DERIVED_VARIABLES))
    digest.update(_gate_source())
    stats = results["sample_stats"].to_dataset() if "sample_stats" in results.children else xr.Dataset()
    for group, ds, names in (
        ("posterior", results["posterior"].to_dataset(), None),
        ("sample_stats", stats, ("diverging", "energy")),
    ):
        for name in sorted(str(v) for v in ds.data_vars if names is None or v in names):
            values = np.ascontiguousarray(ds[name].values)
            add(group, name, ds[name].dims, values.shape, values.dtype.str)
            digest.update(values.tobytes())
        for name in sorted(str(c) for c in ds.coords):
            add(group, "coordinate", name, "|".join(map(str, np.asarray(ds[name].values).ravel())))
    add("diagnostics", results.attrs.get("diagnostics"), "converged", results.attrs.get("converged"))
    return digest.hexdigest()


def attach_diagnostics(results: xr.DataTree) -> Diagnostics:
    """Compute the diagnostics of a run and record them in its attrs (in place), with the
    digest that lets a saved copy be loaded without recomputing them (`gate_digest`)."""
    diag = check_convergence(results)
    results.attrs["diagnostics"] = diag.to_json()
    results.attrs["converged"] = "true" if diag.converged else "false"
    results.attrs["gate_digest"] = gate_digest(results)
    return diag


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


def require_converged(results: xr.DataTree, allow_unconverged: bool = False, allow_latent: bool = False) -> Diagnostics:
    """The run's diagnostics; raise `UnconvergedFitError` if it failed them, unless allowed.

    A latent-state run is refused (`bayes_lac.model.results.run_info`) unless `allow_latent`:
    the analyses ported to it pass that.

    Downstream analyses call this first. The diagnostics are the run's (`bayes_lac.model.results.run_info`):
    computed at fit time and recomputed from the draws when a saved run is loaded.
    """
    from bayes_lac.model.results import run_info

    info = run_info(results, allow_latent=allow_latent)
    diag = info.diagnostics
    if not diag.converged and not allow_unconverged:
        problems = "; ".join(p.rstrip(".") for p in diag.problems) or "the run is marked converged=false"
        raise UnconvergedFitError(
            f"the fit of {info.target_la} failed its convergence diagnostics: "
            f"{problems}. Refit with more tuning/draws, or pass allow_unconverged=True "
            "(--allow-unconverged) to use it anyway."
        )
    return diag
