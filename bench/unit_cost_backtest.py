"""Unit-cost forecasts of every authority from every origin, scored against the outturn.

`bayes_lac.studies.cost_backtest.unit_cost_backtest` at origins 2016-2024 (the s251 total is
on one definition from 2012-13, and the baselines need 4 years), horizons 1-5, for each
design of the unit-cost model named with ``--variants`` (departure/growth, e.g. ``ar/drift``)
beside the ``flat``, ``trend`` and ``pooled`` baselines (scored once). Prints, per variant,
each origin's fit diagnostics and the summary by method and horizon with log-CRPS ratios
against pooled growth (bootstrap over origins), and writes the per-forecast rows and the
summary next to ``--out``.

Run from the project root (about 20 s per origin and variant on 2 cores):
``.venv/bin/python bench/unit_cost_backtest.py [--variants ar/drift walk/local] [--out models/backtest/unit_cost_backtest.csv.gz]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bayes_lac import __version__, load_panel  # noqa: E402
from bayes_lac.files import write_csv, write_text  # noqa: E402
from bayes_lac.studies.backtest import parse_years  # noqa: E402
from bayes_lac.studies.cost_backtest import unit_cost_backtest, unit_cost_backtest_summary  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--origins", default="2016-2024")
    ap.add_argument("--variants", nargs="+", default=["walk/local", "ar/drift"])
    ap.add_argument("--chains", type=int, default=None, help="chains of each fit (default the package's)")
    ap.add_argument("--draws", type=int, default=None, help="draws per chain (default the package's)")
    ap.add_argument("--out", default=str(ROOT / "models" / "backtest" / "unit_cost_backtest.csv.gz"))
    args = ap.parse_args(argv)
    origins = parse_years(args.origins, "origins")
    panel = load_panel()
    tables, fits = [], {}
    start = time.perf_counter()
    for i, variant in enumerate(args.variants):
        departure, growth = variant.split("/")
        settings = {"departure": departure, "growth_model": growth}
        if args.chains:
            settings["chains"] = args.chains
        if args.draws:
            settings["draws"] = args.draws
        methods = ("model", "flat", "trend", "pooled") if i == 0 else ("model",)
        t0 = time.perf_counter()
        table = unit_cost_backtest(panel, origins, methods=methods, fit_settings=settings)
        print(f"{variant}: {time.perf_counter() - t0:.0f} s")
        for origin, d in table.attrs["fits"].items():
            print(
                f"  {origin}: R-hat {d['max_rhat']:.3f}, bulk ESS {d['min_ess_bulk']:.0f}, "
                f"{d['divergences']} divergences, {'passed' if d['converged'] else 'FAILED'} the gate"
            )
        table.loc[table["method"] == "model", "method"] = f"model {variant}"
        fits[variant] = {str(k): v for k, v in table.attrs["fits"].items()}
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    summary = unit_cost_backtest_summary(table)
    pd.set_option("display.width", 200)
    print(summary.round(3).to_string(index=False))
    print(f"total {time.perf_counter() - start:.0f} s")
    out = Path(args.out)
    write_csv(table, out)
    stem = out.name.split(".")[0]
    write_csv(summary, out.with_name(f"{stem}_summary.csv"))
    write_text(
        out.with_name(f"{stem}_fits.json"),
        json.dumps({"version": __version__, "origins": origins, "fits": fits}, indent=1),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
