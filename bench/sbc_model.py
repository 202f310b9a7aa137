"""Simulation-based calibration (SBC) of the main model, `bayes_lac.model.graph` (v0.2).

Each replication draws every parameter from the model's own prior (pymc's prior sampling of
the model built on a fixed skeleton panel: the same authorities, years, child populations,
UASC and deprivation in every replication), then simulates the counts year by year from the
process the model describes, *feeding each simulated count back* into the persistence term:

    log mean[t] = log(population / 10,000) + log_rate[t]
                  + persistence * (log((count[t-1] + 0.5) / (population[t-1] / 10,000)) - log_rate[t-1])
    count[t]    ~ NegBin(mean[t], dispersion)

(the first year has no persistence term, as in the likelihood). The model's likelihood is the
product of these conditionals, so this is its generative process and SBC is exact. The panel
is then fitted with the package's defaults (`LACModel(...).fit(panel)`: nutpie, 4 chains x
1,500 draws after 1,500 tuning, target acceptance 0.95), and the rank of each true value among
L thinned posterior draws is recorded. A calibrated model and sampler give ranks uniform on
0..L: the script prints, per quantity, a chi-square test of uniformity over 10 bins, the mean
rank / L (0.5 if unbiased) and the share of truths inside the central 50 % and 90 % posterior
intervals, and writes everything to ``bench/results/sbc_model.json``.

The skeleton is small so that 100 replications fit in well under an hour on 2 cores: 6
simulated authorities x 10 years, looked-after children only (the cross-measure correlations
of the three-measure model are not checked here), UASC known in every year and deprivation
published in every year (so nothing is imputed and the model sees the covariates the truth
used).

Run from the project root: ``.venv/bin/python bench/sbc_model.py [--reps 100] [--seed 1]`` (about 40 s a
replication on one core). On 2 cores, two halves side by side and then their summary::

    .venv/bin/python bench/sbc_model.py --reps 50 --seed 1 --out /tmp/sbc1.json &
    .venv/bin/python bench/sbc_model.py --reps 50 --seed 2 --out /tmp/sbc2.json
    .venv/bin/python bench/sbc_model.py --combine /tmp/sbc1.json /tmp/sbc2.json
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

from bayes_lac.config import ENGLAND_CODE, RATE_PER  # noqa: E402
from bayes_lac.model.diagnostics import MAX_RHAT, MIN_BFMI, MIN_ESS  # noqa: E402
from bayes_lac.model.fit import LACModel  # noqa: E402
from bayes_lac.model.path import log_rate_path, persist_forward  # noqa: E402
from bayes_lac.model.results import run_info  # noqa: E402
from bayes_lac.model.simulate import simulate_panel  # noqa: E402

N_LA, YEARS = 6, (2014, 2023)
MEASURES = ("looked_after",)
RANKS_FROM = 99  # posterior draws kept per replication (ranks 0..99)
#: hyper-parameters (judged: the issue's target) and three lower-level quantities (reported)
HYPER = ("intercept", "la_intercept_sd", "la_trend_sd", "year_sigma", "deprivation_effect", "dispersion", "persistence")
LOWER = ("la_intercept[0]", "la_trend[0]", "year_effect[-1]")


def skeleton():
    """The fixed skeleton: a simulated panel whose covariates every replication keeps."""
    panel, _ = simulate_panel(n_la=N_LA, years=YEARS, seed=7, deprivation_years=None, uasc_gaps=False)
    codes = sorted(c for c in panel["la_code"].unique() if c != ENGLAND_CODE)
    return panel, codes


def model_for(panel, codes) -> LACModel:
    return LACModel(codes[0], neighbours=codes, measures=MEASURES)


def prior_draws(panel, codes, n: int, seed: int):
    """`n` draws of every parameter from the model's prior, built on the skeleton, and the
    skeleton's `ModelData`."""
    model = model_for(panel, codes)
    prior = model.prior_predictive(panel, draws=n, seed=seed)["prior"].dataset
    return {k: prior[k].values[0] for k in prior.data_vars}, model.data_


def simulate_counts(theta: dict, i: int, data, rng: np.random.Generator) -> np.ndarray:
    """Modelled counts (la, year) of replication `i`, with the persistence term fed back.

    The path and the year-by-year draws are the package's own (`bayes_lac.model.path`), as
    used by forecasts and simulated panels."""
    log_rate = log_rate_path(
        theta["intercept"][i][0],
        theta["la_intercept"][i][:, 0][:, None],
        theta["la_trend"][i][:, 0][:, None],
        theta["year_effect"][i][0][None, :],
        theta["deprivation_effect"][i][0],
        data.deprivation,
        data.year.astype(float)[None, :],
        data.reference_year,
        data.deprivation_centre,
    )["log_rate"]
    alpha = float(theta["dispersion"][i][0])
    path = np.exp(log_rate) * data.population_0_17 / RATE_PER
    # NegBin(mean, alpha) as a gamma-Poisson mixture; the first year starts on the path
    return persist_forward(
        path, float(theta["persistence"][i][0]), lambda t, mean: rng.poisson(rng.gamma(alpha, mean / alpha))
    )


def panel_with(skeleton_panel, codes, data, counts: np.ndarray):
    """The skeleton panel with these modelled counts (published looked-after = modelled + UASC)."""
    panel = skeleton_panel.copy()
    year_index = {int(y): t for t, y in enumerate(data.year)}
    la_index = {c: i for i, c in enumerate(data.la)}
    is_la = panel["la_code"] != ENGLAND_CODE
    rows = panel[is_la]
    published = [
        counts[la_index[c], year_index[int(y)]] + data.uasc[la_index[c], year_index[int(y)]]
        for c, y in zip(rows["la_code"], rows["year"])
    ]
    panel.loc[is_la, "looked_after"] = published
    totals = panel[is_la].groupby("year")["looked_after"].sum()
    england = ~is_la
    panel.loc[england, "looked_after"] = panel.loc[england, "year"].map(totals).to_numpy()
    return panel


def quantities(source: dict, i=None) -> dict[str, np.ndarray]:
    """The ranked quantities, from prior draws (index `i`) or posterior draws (all)."""

    def pick(name):
        v = np.asarray(source[name])
        return v[i] if i is not None else v

    out = {name: pick(name)[..., 0] for name in HYPER}
    out["la_intercept[0]"] = pick("la_intercept")[..., 0, 0]
    out["la_trend[0]"] = pick("la_trend")[..., 0, 0]
    out["year_effect[-1]"] = pick("year_effect")[..., 0, -1]
    return out


def replicate(i: int, theta: dict, data, base, codes, seed: int, sampler: str, rng) -> dict:
    """One replication: simulate from draw `i` of the prior, fit, rank the truth."""
    counts = simulate_counts(theta, i, data, rng)
    panel = panel_with(base, codes, data, counts)
    tic = time.perf_counter()
    # one core: two halves run side by side on a 2-core machine (see the module docstring)
    run = model_for(panel, codes).fit(panel, sampler=sampler, seed=seed * 1000 + i, progressbar=False, cores=1)
    seconds = time.perf_counter() - tic
    post = run["posterior"].to_dataset().stack(sample=("chain", "draw"))
    post = {k: np.moveaxis(post[k].values, -1, 0) for k in ("la_intercept", "la_trend", "year_effect", *HYPER)}
    draws = quantities(post)
    keep = thinned(len(draws["intercept"]), RANKS_FROM)
    record = {"seed": seed, "replication": i, **rank_record(draws, quantities(theta, i), keep)}
    diag = run_info(run).diagnostics
    record["fit"] = {
        "converged": diag.converged,
        "max_rhat": diag.max_rhat,
        "min_ess_bulk": diag.min_ess_bulk,
        "min_ess_tail": diag.min_ess_tail,
        "divergences": diag.divergences,
        "min_bfmi": diag.min_bfmi,
        "seconds": round(seconds, 1),
        "max_count": float(np.max(counts)),
    }
    return record


def summarise(records: list[dict], sampler: str, wall_seconds: float) -> dict:
    """Rank histograms, chi-square p-values, mean ranks and interval coverage per quantity."""
    summary = summarise_ranks(records, HYPER + LOWER, HYPER, RANKS_FROM)
    fits = [rec["fit"] for rec in records]
    return {
        "what": "SBC of bayes_lac.model.graph (the default model, v0.2)",
        "replications": len(records),
        "authorities": N_LA,
        "years": list(YEARS),
        "measures": list(MEASURES),
        "posterior_draws_ranked": RANKS_FROM,
        "sampler": sampler,
        "gate": {"max_rhat": MAX_RHAT, "min_ess": MIN_ESS, "min_bfmi": MIN_BFMI, "divergences": 0},
        "fit_seconds": round(sum(f["seconds"] for f in fits)),
        "wall_seconds": round(wall_seconds),
        "fits_failing_gate": int(sum(not f["converged"] for f in fits)),
        "quantities": summary,
        "replication_records": records,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sampler", default="nutpie")
    ap.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="summarise the replications of earlier runs (e.g. two halves run side by side) instead of fitting",
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sbc_model.json"))
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if args.combine:
        parts = [json.loads(Path(f).read_text()) for f in args.combine]
        records = combined_records(args.combine)
        result = summarise(records, parts[0]["sampler"], sum(p["wall_seconds"] for p in parts))
    else:
        rng = np.random.default_rng(args.seed)
        base, codes = skeleton()
        theta, data = prior_draws(base, codes, args.reps, args.seed)
        records = []
        for i in range(args.reps):
            rec = replicate(i, theta, data, base, codes, args.seed, args.sampler, rng)
            records.append(rec)
            f = rec["fit"]
            print(
                f"replication {i + 1}/{args.reps}: {'converged' if f['converged'] else 'NOT converged'}, "
                f"R-hat {f['max_rhat']:.3f}, bulk ESS {f['min_ess_bulk']:.0f}, {f['divergences']} divergences, "
                f"{f['seconds']:.0f} s",
                flush=True,
            )
        result = summarise(records, args.sampler, time.perf_counter() - start)
    write_json(args.out, result)
    show_ranks(result, RANKS_FROM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
