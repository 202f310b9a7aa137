"""Flow-based stock forecasts scored beside the stock model: Thurrock and its statistical neighbours.

The same backtest machinery as ``bayes-lac backtest`` (`bayes_lac.studies.backtest.backtest`),
looked-after children only, on the 11 authorities of Thurrock's 2021 comparison set:

* ``model``: the stock model (`ModelForecaster`) fitted on those 11 authorities
  (``neighbours="2021"``) at its default settings, as a report's small fit;
* ``flows``: the flows model (`FlowsForecaster`) fitted on the same authorities at its
  defaults, each authority's stock forecast from its entries and exits
  (`bayes_lac.analysis.flows_forecast`);
* the baselines (`bayes_lac.studies.baselines`), pooled growth among them, fitted on nothing.

Flows are published from 2010, so origins start in 2014 (five years of flows). Each origin's
scored rows are cached (``--cache``, default in the temporary folder), so an interrupted run
resumes. Prints the summary by method and horizon and the CRPS ratios against pooled growth, and
writes the per-forecast rows, the summaries and a manifest (`save_backtest`).

Run from the project root (about 5 min per origin on 2 cores):
``.venv/bin/python bench/flows_backtest.py [--origins 2014-2022] [--out models/backtest/flows_vs_stock_thurrock.csv]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bayes_lac import load_panel  # noqa: E402
from bayes_lac.config import THURROCK_CODE  # noqa: E402
from bayes_lac.data.neighbours import statistical_neighbours  # noqa: E402
from bayes_lac.studies.backtest import (  # noqa: E402
    FlowsForecaster,
    ModelForecaster,
    backtest,
    parse_years,
    save_backtest,
    summary_tables,
)
from bayes_lac.studies.baselines import default_baselines  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--origins", default="2014-2022")
    ap.add_argument("--horizons", default="1-5")
    ap.add_argument("--out", default=str(ROOT / "models" / "backtest" / "flows_vs_stock_thurrock.csv"))
    ap.add_argument("--allow-unconverged", action="store_true", help="score fits that fail their gates (recorded)")
    ap.add_argument("--flows-draws", type=int, help="flows fits: draws per chain (default: the flows model's)")
    ap.add_argument("--flows-tune", type=int, help="flows fits: tuning steps per chain (default: the flows model's)")
    ap.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "bayes_lac_flows_backtest_cache"),
        help="folder of scored origins, read back when the run is repeated (default: in the temporary folder)",
    )
    args = ap.parse_args(argv)
    panel = load_panel()
    las = [THURROCK_CODE, *statistical_neighbours(THURROCK_CODE)]
    forecasters = (
        ModelForecaster(neighbours="2021", allow_unconverged=args.allow_unconverged),
        FlowsForecaster(
            neighbours="2021", draws=args.flows_draws, tune=args.flows_tune, allow_unconverged=args.allow_unconverged
        ),
        *default_baselines(),
    )
    start = time.perf_counter()
    result = backtest(
        panel,
        forecasters,
        origins=parse_years(args.origins, "origins"),
        horizons=parse_years(args.horizons, "horizons"),
        measures=("looked_after",),
        las=las,
        cache_dir=Path(args.cache),
    )
    tables = summary_tables(result)
    paths = save_backtest(result, args.out, tables)
    summary = tables["summary"]
    summary = summary[summary["outcome"] == "latest"]
    cols = ["method", "horizon", "n_scored", "n_missing", "coverage_50", "coverage_90", "pit_mean", "crps", "mae"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(summary[cols].to_string(index=False))
        print()
        print(tables["ratios"].to_string(index=False))
        print()
        print(result.origins.to_string(index=False))
    print(f"\n{time.perf_counter() - start:.0f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
