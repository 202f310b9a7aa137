"""Simulation-based calibration (SBC) of the unit-cost model, `bayes_lac.model.unit_cost`.

Each replication draws every parameter from the default design's own prior (pymc's prior
sampling of the model built on a skeleton panel: the first year's national growth, the sd of
its yearly changes, each change, the own-walk scale and the Student-t degrees of freedom),
simulates log unit costs from the process the model describes (the national level summing a
growth that walks; each authority's own random walk against it with Student-t steps, from a
starting distance drawn at random, which the model does not need), fits the model with the
package's default settings and records the rank of each true value among L thinned posterior
draws. A calibrated model and sampler give ranks uniform on 0..L: the script prints, per
quantity, a chi-square test of uniformity over 10 bins, the mean rank / L (0.5 if unbiased) and
the share of truths inside the central 50 % and 90 % posterior intervals, and writes everything
to ``bench/results/sbc_unit_cost.json``.

Run from the project root (about 15-25 min on 2 cores):
``.venv/bin/python bench/sbc_unit_cost.py [--reps 100] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.model.unit_cost import build_unit_cost_model, fit_unit_cost, unit_cost_data  # noqa: E402

N_LA, YEARS = 20, np.arange(2013, 2027)
CHILDREN = 200.0
RANKS_FROM = 99  # posterior draws kept per replication (ranks 0..99)
BINS = 10
#: Every quantity ranked is judged: the first and the latest national growth, the sd of its
#: yearly changes, the own-walk scale and tails, and the national level's change over the years.
JUDGED = ("first_growth", "growth", "drift_sd", "sigma", "nu", "national_change")
#: Sd of the authorities' starting distances from the national level (not a model parameter).
START_SD = 0.3


def panel_from(log_unit_cost: np.ndarray) -> pd.DataFrame:
    """A panel (authority x year) whose s251 spend / children gives these unit costs."""
    rows = []
    for a in range(log_unit_cost.shape[0]):
        for t, year in enumerate(YEARS):
            rows.append(
                {
                    "la_code": f"E0698{a:04d}",
                    "la_name": f"SBC {a}",
                    "year": int(year),
                    "looked_after": CHILDREN,
                    "spend_looked_after": CHILDREN * float(np.exp(log_unit_cost[a, t])),
                    "geographic_level": "Local authority",
                }
            )
    return pd.DataFrame(rows)


def prior_draws(n: int, seed: int) -> dict[str, np.ndarray]:
    """`n` draws of every parameter from the model's prior, built on a skeleton panel."""
    import pymc as pm

    skeleton = unit_cost_data(panel_from(np.full((N_LA, len(YEARS)), np.log(50_000.0))))
    with build_unit_cost_model(skeleton):
        prior = pm.sample_prior_predictive(n, random_seed=seed)["prior"].dataset
    return {k: prior[k].values[0] for k in prior.data_vars}


def simulate(theta: dict, i: int, rng: np.random.Generator) -> np.ndarray:
    """Log unit costs (authority, year) from replication `i`'s parameters."""
    national = theta["national"][i]
    sigma, nu = float(theta["sigma"][i]), float(theta["nu"][i])
    steps = sigma * rng.standard_t(nu, (N_LA, len(YEARS) - 1))
    own = START_SD * rng.standard_normal((N_LA, 1)) + np.concatenate(
        [np.zeros((N_LA, 1)), np.cumsum(steps, axis=1)], axis=1
    )
    return national[None, :] + own


def quantities(source: dict, i=None) -> dict[str, np.ndarray]:
    """The ranked quantities (`JUDGED`)."""

    def pick(name):
        v = np.asarray(source[name])
        return v[i] if i is not None else v

    out = {k: pick(k) for k in ("first_growth", "growth", "drift_sd", "sigma", "nu")}
    national = pick("national")
    out["national_change"] = national[..., -1] - national[..., 0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sampler", default="nutpie")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sbc_unit_cost.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    theta = prior_draws(args.reps, args.seed)
    ranks: dict[str, list[int]] = {}
    inside50: dict[str, list[bool]] = {}
    inside90: dict[str, list[bool]] = {}
    fits = []
    start = time.perf_counter()
    for i in range(args.reps):
        data = unit_cost_data(panel_from(simulate(theta, i, rng)))
        fit = fit_unit_cost(data, sampler=args.sampler, seed=args.seed * 1000 + i)
        post = fit.posterior
        keep = np.linspace(0, post.sizes["sample"] - 1, RANKS_FROM).round().astype(int)
        draws = quantities(
            {k: post[k].values for k in ("first_growth", "growth", "drift_sd", "sigma", "nu", "national")}
        )
        truth = quantities(theta, i)
        for name, value in truth.items():
            d = draws[name]
            ranks.setdefault(name, []).append(int((d[keep] < value).sum()))
            lo50, hi50, lo90, hi90 = np.quantile(d, [0.25, 0.75, 0.05, 0.95])
            inside50.setdefault(name, []).append(bool(lo50 <= value <= hi50))
            inside90.setdefault(name, []).append(bool(lo90 <= value <= hi90))
        fits.append({k: fit.diagnostics[k] for k in ("max_rhat", "min_ess_bulk", "divergences", "seconds")})
        print(
            f"replication {i + 1}/{args.reps}: R-hat {fit.diagnostics['max_rhat']:.3f}, "
            f"{fit.diagnostics['divergences']} divergences, {fit.diagnostics['seconds']:.0f} s",
            flush=True,
        )
    summary = {}
    for name, r in ranks.items():
        counts = np.histogram(r, bins=BINS, range=(0, RANKS_FROM + 1))[0]
        summary[name] = {
            "chi2_p": float(stats.chisquare(counts).pvalue),
            "mean_rank": float(np.mean(r) / RANKS_FROM),
            "cover50": float(np.mean(inside50[name])),
            "cover90": float(np.mean(inside90[name])),
            "histogram": counts.tolist(),
            "judged": name in JUDGED,
        }
    result = {
        "what": "SBC of bayes_lac.model.unit_cost",
        "replications": args.reps,
        "authorities": N_LA,
        "years": [int(YEARS[0]), int(YEARS[-1])],
        "posterior_draws_ranked": RANKS_FROM,
        "sampler": args.sampler,
        "wall_seconds": round(time.perf_counter() - start),
        "design": "default (growth_model='local', departure='walk')",
        "fits_failing_gate": int(
            sum(f["max_rhat"] >= 1.01 or f["min_ess_bulk"] <= 200 or f["divergences"] > 0 for f in fits)
        ),
        "quantities": summary,
        "fits": fits,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nSBC, {args.reps} replications, ranks among {RANKS_FROM} draws ({result['wall_seconds']} s):")
    print(f"{'quantity':<15}{'chi2 p':>8}{'mean rank':>11}{'in 50%':>8}{'in 90%':>8}  histogram")
    for name, s in summary.items():
        flag = "" if s["judged"] else "  (not judged)"
        print(
            f"{name:<15}{s['chi2_p']:>8.3f}{s['mean_rank']:>11.2f}{s['cover50']:>8.2f}{s['cover90']:>8.2f}  "
            f"{s['histogram']}{flag}"
        )
    print(f"fits failing the gate (R-hat >= 1.01 or divergences): {result['fits_failing_gate']} of {args.reps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
