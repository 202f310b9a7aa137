"""Simulation-based calibration (SBC) of the latent-state model, `bayes_lac.model.latent`.

Each replication draws every parameter from the model's own prior (pymc's prior sampling of
the model built on a fixed skeleton: the same authorities, years, child populations,
deprivation and count variances in every replication), then simulates each series from the
process the model describes:

    level, trend  start in the series' first observed year: Normal(0, level_start_sd), Normal(0, trend_start_sd)
    level[t]    = level[t-1] + trend[t-1] + Normal(0, level_sd)
    trend[t]    = damping * trend[t-1] + Normal(0, trend_sd)
    y[t]        = national[t] + intercept + deprivation parts + level[t] + Normal(0, count_share * count_var + noise**2)

The likelihood treats the count variances (1 / (count + 0.5), from the skeleton's counts) as
data, so these log rates are drawn from exactly the density the model conditions on and SBC is
exact: it checks the integrated-out states (the Kalman filter), the sampler at the package's
defaults and the state draws afterwards (`bayes_lac.model.latent.draw_states`). It does not
check the Gaussian approximation to the counts (the leave-future-out check and the backtest
judge that).

The skeleton is awkward on purpose: one authority starts in `NEW_FROM` (created mid-panel),
about 3 % of the other cells are missing (suppressed), and looked-after children alone have
a local trend (the package's default, `DEFAULT_TREND_MEASURES`). A fit is the package's
default (`bayes_lac.model.latent_fit`: nutpie, 4 chains after 1,000 tuning, target acceptance
0.95) with the package's default draws for the skeleton's authorities (`default_draws`: 2,000 a
chain below 50 authorities; `results/sbc_latent.json` was recorded at 1,000, before that default;
``--draws`` sets another number), compiled
once and refitted on each replication's data. Each true
value is ranked among 99 thinned posterior draws; states are drawn once per kept draw.

Judged: every hyper-parameter the data inform. The trend parameters and damping of the
measures without a local trend are left out: nothing in the likelihood depends on them, so
their posterior is their prior. Reported, not judged: the national path's last year, and
states of an authority that starts with the panel, of the new authority, and a local trend.

Run from the project root: ``.venv/bin/python bench/sbc_latent.py [--reps 100] [--seed 1]``;
``--combine A.json B.json`` summarises earlier runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sbc_ranks import combined_records, rank_record, show_ranks, summarise_ranks, thinned, write_json  # noqa: E402

from bayes_lac.config import ENGLAND_CODE  # noqa: E402
from bayes_lac.model import latent as L  # noqa: E402
from bayes_lac.model.data import prepare_data  # noqa: E402
from bayes_lac.model.diagnostics import MAX_RHAT, MIN_ESS, checked_variables, ess_tail, rhat  # noqa: E402
from bayes_lac.model.diagnostics import ess_bulk as bulk_ess  # noqa: E402
from bayes_lac.model.latent_fit import (  # noqa: E402
    DEFAULT_CHAINS,
    DEFAULT_DRAWS,
    DEFAULT_TARGET_ACCEPT,
    DEFAULT_TREND_MEASURES,
    DEFAULT_TUNE,
    default_draws,
)
from bayes_lac.model.simulate import simulate_panel  # noqa: E402

N_LA, YEARS = 8, (2014, 2023)
MEASURES = ("looked_after", "children_in_need", "child_protection")
#: The authority (index) created mid-panel, and its first year.
NEW_LA, NEW_FROM = 1, 2018
#: Share of the other cells left out (suppressed), the same cells in every replication.
MISSING_SHARE = 0.03
RANKS_FROM = 99
#: Hyper-parameters whose draws are sampled or computed per measure (`bayes_lac.model.latent`).
SAMPLED = ("intercept", "level_start_sd", "series_sd", "level_share", "deprivation_between", "deprivation_within")
SAMPLED += ("drift", "national_sd")
TREND = ("trend_start_sd", "trend_sd", "damping")
#: The design's observation noise (`build_latent_model`'s ``count_noise``: the package's default).
COUNT_NOISE = "poisson"
#: Sampled for the measures in `COUNT_SHARE_MEASURES` only (1 for the others), by the designs
#: that have it.
SHARE = ("count_share",) if COUNT_NOISE != "poisson" else ()


def judged_names() -> list[str]:
    names = [f"{p}[{m}]" for p in SAMPLED for m in MEASURES]
    names += [f"{p}[{m}]" for p in TREND for m in MEASURES if m in DEFAULT_TREND_MEASURES]
    names += [f"{p}[{m}]" for p in SHARE for m in MEASURES if m in L.COUNT_SHARE_MEASURES]
    return names


LOWER = (
    "national[looked_after, last]",
    "national[children_in_need, last]",
    "level[looked_after, la 0, last]",
    "level[looked_after, new la, last]",
    "trend[looked_after, la 0, last]",
    "level[child_protection, la 0, last]",
)


def skeleton():
    """The fixed skeleton's data and its model arrays (with the new authority and the gaps)."""
    panel, _ = simulate_panel(n_la=N_LA, years=YEARS, seed=7, deprivation_years=None, uasc_gaps=False)
    codes = sorted(c for c in panel["la_code"].unique() if c != ENGLAND_CODE)
    data = prepare_data(panel, codes[0], neighbours=codes, measures=MEASURES)
    arrays = L.series_arrays(data)
    observed = arrays["observed"].copy()
    observed[:, NEW_LA, data.year < NEW_FROM] = False
    gaps = np.random.default_rng(11).random(observed.shape) < MISSING_SHARE
    gaps[:, :, 0] = False  # each series that starts with the panel keeps its first year
    arrays["observed"] = observed & ~gaps
    return data, arrays


def prior_draws(data, n: int, seed: int) -> dict[str, np.ndarray]:
    import pymc as pm

    model = L.build_latent_model(data, trend_measures=DEFAULT_TREND_MEASURES, count_noise=COUNT_NOISE)
    prior = pm.sample_prior_predictive(draws=n, model=model, random_seed=seed)["prior"]
    prior = prior.to_dataset() if hasattr(prior, "to_dataset") else prior
    return {k: prior[k].values[0] for k in prior.data_vars}


def simulate(theta: dict, i: int, arrays: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Log rates of replication `i` (0 where not observed) and the true states."""
    obs = arrays["observed"]
    n_m, n_la, n_t = obs.shape

    def col(name):
        return np.asarray(theta[name][i], float)[:, None]

    mean = (
        theta["national"][i][:, None, :]
        + col("intercept")[:, :, None]
        + col("deprivation_between")[:, :, None] * arrays["dep_between"][None, :, None]
        + col("deprivation_within")[:, :, None] * arrays["dep_within"][None]
    )
    move = L.propagation_mask(obs) > 0
    started = L.series_started(obs)
    level, trend = np.zeros((n_m, n_la)), np.zeros((n_m, n_la))
    levels, trends = np.zeros(obs.shape), np.zeros(obs.shape)
    for t in range(n_t):
        first = started[..., t] & ~(started[..., t - 1] if t else np.zeros_like(started[..., 0]))
        level = np.where(first, col("level_start_sd") * rng.standard_normal((n_m, n_la)), level)
        trend = np.where(first, col("trend_start_sd") * rng.standard_normal((n_m, n_la)), trend)
        moved_level = level + trend + col("level_sd") * rng.standard_normal((n_m, n_la))
        moved_trend = col("damping") * trend + col("trend_sd") * rng.standard_normal((n_m, n_la))
        level = np.where(move[..., t], moved_level, level)
        trend = np.where(move[..., t], moved_trend, trend)
        levels[..., t], trends[..., t] = level, trend
    share = np.asarray(theta["count_share"][i], float)[:, None, None] if SHARE else 1.0
    sd = np.sqrt(share * arrays["count_var"] + col("noise")[:, :, None] ** 2)
    y = mean + levels + sd * rng.standard_normal(obs.shape)
    return np.where(obs, y, 0.0), {"level": levels, "trend": trends}


def _picker(source: dict, i):
    def pick(name):
        v = np.asarray(source[name])
        return v[i] if i is not None else v

    return pick


def hyper_quantities(source: dict, i=None) -> dict[str, np.ndarray]:
    """Hyper-parameters per measure from prior draw `i` or from posterior draws (all)."""
    pick = _picker(source, i)
    return {f"{p}[{m}]": pick(p)[..., k] for p in (*SAMPLED, *TREND, *SHARE) for k, m in enumerate(MEASURES)}


def lower_quantities(source: dict, states: dict, i=None) -> dict[str, np.ndarray]:
    """The national path's last year and a few states (`LOWER`)."""
    pick = _picker(source, i)
    out = {}
    lac, cin, cpp = (MEASURES.index(m) for m in ("looked_after", "children_in_need", "child_protection"))
    out["national[looked_after, last]"] = pick("national")[..., lac, -1]
    out["national[children_in_need, last]"] = pick("national")[..., cin, -1]
    out["level[looked_after, la 0, last]"] = states["level"][..., lac, 0, -1]
    out["level[looked_after, new la, last]"] = states["level"][..., lac, NEW_LA, -1]
    out["trend[looked_after, la 0, last]"] = states["trend"][..., lac, 0, -1]
    out["level[child_protection, la 0, last]"] = states["level"][..., cpp, 0, -1]
    return out


def gate(posterior, diverging) -> dict:
    worst_rhat, least_bulk, least_tail = 0.0, np.inf, np.inf
    for name in checked_variables(posterior):
        x = posterior[name].transpose("chain", "draw", ...).values
        if np.nanstd(x) == 0:  # a measure's trend sd without a trend: 0 in every draw
            continue
        worst_rhat = max(worst_rhat, float(np.nanmax(rhat(x))))
        least_bulk = min(least_bulk, float(np.nanmin(bulk_ess(x))))
        least_tail = min(least_tail, float(np.nanmin(ess_tail(x))))
    divergences = int(np.asarray(diverging).sum())
    converged = worst_rhat <= MAX_RHAT and min(least_bulk, least_tail) >= MIN_ESS and divergences == 0
    return {
        "converged": bool(converged),
        "max_rhat": worst_rhat,
        "min_ess_bulk": least_bulk,
        "min_ess_tail": least_tail,
        "divergences": divergences,
    }


def replicate(i, theta, data, arrays, compiled, seed, rng, draws: int = DEFAULT_DRAWS) -> dict:
    import nutpie

    y, true_states = simulate(theta, i, arrays, rng)
    values = {
        "y": y,
        "count_var": arrays["count_var"],
        "observed": arrays["observed"].astype(float),
        "dep_between": arrays["dep_between"],
        "dep_within": arrays["dep_within"],
    }
    tic = time.perf_counter()
    trace = nutpie.sample(
        compiled.with_data(**values),
        draws=draws,
        tune=DEFAULT_TUNE,
        chains=DEFAULT_CHAINS,
        cores=2,
        seed=seed * 1000 + i,
        target_accept=DEFAULT_TARGET_ACCEPT,
        progress_bar=False,
    )
    seconds = time.perf_counter() - tic
    post = trace["posterior"]
    post = post.to_dataset() if hasattr(post, "to_dataset") else post
    total = post.sizes["chain"] * post.sizes["draw"]
    keep = thinned(total, RANKS_FROM)
    flat = {
        k: post[k].values.reshape(total, *post[k].shape[2:]) for k in (*SAMPLED, *TREND, *SHARE, *L.HYPER, "national")
    }
    kept = {k: v[keep] for k, v in flat.items()}
    states = L.draw_states(data, kept, rng, arrays={**arrays, "y": y})
    # hyper-parameters: intervals from every draw; states: drawn once per kept draw
    draws = hyper_quantities(flat) | lower_quantities(kept, states)
    truth = hyper_quantities(theta, i) | lower_quantities(theta, true_states, i)
    names = judged_names() + list(LOWER)
    record = {
        "seed": seed,
        "replication": i,
        **rank_record({k: draws[k] for k in names}, {k: truth[k] for k in names}, keep),
    }
    stats = trace["sample_stats"]
    stats = stats.to_dataset() if hasattr(stats, "to_dataset") else stats
    record["fit"] = gate(post, stats["diverging"].values) | {"seconds": round(seconds, 1)}
    return record


def summarise(records: list[dict], wall_seconds: float) -> dict:
    fits = [rec["fit"] for rec in records]
    judged = judged_names()
    return {
        "what": "SBC of bayes_lac.model.latent (the latent-state model) at the package's default settings",
        "replications": len(records),
        "authorities": N_LA,
        "years": list(YEARS),
        "measures": list(MEASURES),
        "new_authority_from": NEW_FROM,
        "missing_share": MISSING_SHARE,
        "trend_measures": list(DEFAULT_TREND_MEASURES),
        "count_noise": COUNT_NOISE,
        **({"count_share_measures": list(L.COUNT_SHARE_MEASURES)} if SHARE else {}),
        "posterior_draws_ranked": RANKS_FROM,
        "gate": {"max_rhat": MAX_RHAT, "min_ess": MIN_ESS, "divergences": 0},
        "fit_seconds": round(sum(f["seconds"] for f in fits)),
        "wall_seconds": round(wall_seconds),
        "fits_failing_gate": int(sum(not f["converged"] for f in fits)),
        "quantities": summarise_ranks(records, judged + list(LOWER), judged, RANKS_FROM),
        "replication_records": records,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--draws",
        type=int,
        help="draws per chain (default: the package's for the skeleton's authorities, default_draws)",
    )
    ap.add_argument("--combine", nargs="+", metavar="JSON", help="summarise earlier runs instead of fitting")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sbc_latent.json"))
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if args.combine:
        parts = [json.loads(Path(f).read_text()) for f in args.combine]
        result = summarise(combined_records(args.combine), sum(p["wall_seconds"] for p in parts))
    else:
        import nutpie

        rng = np.random.default_rng(args.seed)
        data, arrays = skeleton()
        theta = prior_draws(data, args.reps, args.seed)
        model = L.build_latent_model(data, trend_measures=DEFAULT_TREND_MEASURES, count_noise=COUNT_NOISE)
        compiled = nutpie.compile_pymc_model(model)
        records = []
        draws = args.draws or default_draws(len(data.la))
        print(f"{len(data.la)} authorities: {draws} draws a chain", flush=True)
        for i in range(args.reps):
            rec = replicate(i, theta, data, arrays, compiled, args.seed, rng, draws)
            records.append(rec)
            f = rec["fit"]
            print(
                f"replication {i + 1}/{args.reps}: {'converged' if f['converged'] else 'NOT converged'}, "
                f"R-hat {f['max_rhat']:.3f}, bulk ESS {f['min_ess_bulk']:.0f}, tail ESS {f['min_ess_tail']:.0f}, "
                f"{f['divergences']} divergences, {f['seconds']:.0f} s",
                flush=True,
            )
            if (i + 1) % 10 == 0:
                write_json(args.out, summarise(records, time.perf_counter() - start))
        result = summarise(records, time.perf_counter() - start)
    write_json(args.out, result)
    show_ranks(result, RANKS_FROM, width=38)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
