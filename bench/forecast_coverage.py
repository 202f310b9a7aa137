"""Forecast coverage on simulated panels: are the model's forecast intervals honest when the
model is true?

Each replication simulates a panel from the model (`bayes_lac.model.simulate.simulate_panel`:
11 authorities, 2010-2025, the package's default truths with a fresh seed), fits `LACModel` to the
data up to the origin (2022 by default), forecasts every authority 1-3 years ahead under the
``trend`` scenario (population projected, UASC held, as a report does) and scores the simulated
published counts of 2023-2025: share inside the central 50 %, 80 % and 90 % intervals, and the
mean PIT (0.5 if unbiased), per measure and horizon. A calibrated forecast covers about 50/80/90 %.
The fits use the package's default sampler settings (4 chains x 1,500 draws after 1,500 tuning
steps), as a report's fit does; ``--draws``/``--tune``/``--chains`` change them. Each fit's
convergence is recorded; an unconverged fit is scored all the same, counted, and named.

Writes ``bench/results/forecast_coverage.json`` and prints the table. Run from the project root
(about 3-4 min per replication on 2 cores): ``.venv/bin/python bench/forecast_coverage.py [--reps 10]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.analysis.forecast import forecast  # noqa: E402
from bayes_lac.config import ENGLAND_CODE, MEASURES  # noqa: E402
from bayes_lac.model.fit import DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_TUNE, LACModel  # noqa: E402
from bayes_lac.model.results import run_info  # noqa: E402
from bayes_lac.model.simulate import simulate_panel  # noqa: E402

LEVELS = (0.5, 0.8, 0.9)


def score_replication(rep: int, origin: int, horizon: int, settings: dict) -> tuple[list[dict], dict]:
    panel, _ = simulate_panel(n_la=11, years=(2010, origin + horizon), seed=1000 + rep)
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    run = LACModel(codes[0], neighbours=codes[1:], until=origin).fit(panel, progressbar=False, seed=rep, **settings)
    diag = run_info(run).diagnostics
    actual = panel.set_index(["la_code", "year"])
    rng = np.random.default_rng(rep)
    rows = []
    for code in codes:
        fc = forecast(run, la=code, horizon=horizon, scenarios=("trend",), seed=rep)
        for m in MEASURES:
            for year in range(origin + 1, origin + horizon + 1):
                y = actual.loc[(code, year), m]
                if pd.isna(y):
                    continue
                draws = fc.data["predicted"].sel(scenario="trend", measure=m, year=year).values
                pit = float(np.mean(draws < y) + rng.uniform() * np.mean(draws == y))
                row = {
                    "rep": rep,
                    "la_code": code,
                    "measure": m,
                    "horizon": year - origin,
                    "actual": float(y),
                    "median": float(np.median(draws)),
                    "pit": pit,
                }
                for level in LEVELS:
                    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
                    row[f"in{round(level * 100)}"] = bool(lo <= y <= hi)
                rows.append(row)
    return rows, {"rep": rep, "converged": diag.converged, "problems": list(diag.problems)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--origin", type=int, default=2022)
    ap.add_argument("--horizon", type=int, default=3)
    ap.add_argument("--sampler", default="nutpie")
    ap.add_argument("--draws", type=int, default=DEFAULT_DRAWS)
    ap.add_argument("--tune", type=int, default=DEFAULT_TUNE)
    ap.add_argument("--chains", type=int, default=DEFAULT_CHAINS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "forecast_coverage.json"))
    args = ap.parse_args(argv)
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "cores": 2, "sampler": args.sampler}
    start = time.perf_counter()
    rows, fits = [], []
    for rep in range(args.reps):
        t = time.perf_counter()
        r, f = score_replication(rep, args.origin, args.horizon, settings)
        rows += r
        fits.append(f)
        print(
            f"replication {rep + 1}/{args.reps}: {len(r)} cells, converged {f['converged']}, "
            f"{time.perf_counter() - t:.0f} s",
            flush=True,
        )
    cells = pd.DataFrame(rows)
    cols = [f"in{round(level * 100)}" for level in LEVELS]
    table = cells.groupby(["measure", "horizon"])[cols + ["pit"]].mean()
    table["cells"] = cells.groupby(["measure", "horizon"]).size()
    overall = cells[cols + ["pit"]].mean()
    result = {
        "what": "forecast coverage of LACModel on simulated panels",
        "replications": args.reps,
        "origin": args.origin,
        "sampler_settings": settings,
        "wall_seconds": round(time.perf_counter() - start),
        "fits_failing_gate": int(sum(not f["converged"] for f in fits)),
        "overall": {k: round(float(v), 3) for k, v in overall.items()},
        "by_measure_horizon": [
            {"measure": m, "horizon": int(h), **{k: round(float(v), 3) for k, v in row.items()}}
            for (m, h), row in table.iterrows()
        ],
        "fits": fits,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nForecast coverage, {args.reps} simulated panels, origin {args.origin} ({result['wall_seconds']} s):")
    print(table.round(3).to_string())
    print("all cells:", {k: round(float(v), 3) for k, v in overall.items()})
    print(f"fits failing the gate: {result['fits_failing_gate']} of {args.reps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
