"""The cost forecast a report gives, backtested from every origin: Thurrock and its neighbours.

`bayes_lac.studies.backtest.backtest` with ``quantity="spend"``: at each origin the report's
fit of children looked after (`ModelForecaster`, Thurrock's 2021 comparison set, the package's
default sampler settings) is priced per draw by the unit cost (`SpendForecaster`):

* ``model``: the modelled unit cost (the default of ``bayes-lac costs`` and the report), fitted
  at the origin on every authority;
* ``model_flat_unit_cost`` and ``model_trend_unit_cost``: the named scenarios (the
  authority's own real unit cost held flat or trended; deflator cut at the origin);
* the baselines of `bayes_lac.studies.baselines` applied to spend itself (pooled growth of
  every authority's spend among them).

Scored against the s251 outturn (``spend_looked_after``, £ a year, cash) of the 11 authorities.
Spend is on one definition from 2012-13, so origins start in 2016 (4 years). An origin whose
count fit or unit-cost fit fails its convergence gate is reported as failed and not scored
(``--allow-unconverged`` scores it, recorded). Scored origins are cached (``--cache``).

Run from the project root (about 2 min per origin on 2 cores):
``.venv/bin/python bench/spend_backtest.py [--origins 2016-2024] [--out models/backtest/spend_thurrock.csv]``
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
from bayes_lac.files import write_csv  # noqa: E402
from bayes_lac.studies.backtest import (  # noqa: E402
    ModelForecaster,
    backtest,
    parse_years,
    save_backtest,
    summary_tables,
)
from bayes_lac.studies.baselines import default_baselines  # noqa: E402
from bayes_lac.studies.cost_backtest import SpendForecaster  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--origins", default="2016-2024")
    ap.add_argument("--horizons", default="1-5")
    ap.add_argument("--out", default=str(ROOT / "models" / "backtest" / "spend_thurrock.csv"))
    ap.add_argument("--allow-unconverged", action="store_true", help="score fits that fail their gates (recorded)")
    ap.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "bayes_lac_spend_backtest_cache"),
        help="folder of scored origins, read back when the run is repeated (default: in the temporary folder)",
    )
    args = ap.parse_args(argv)
    panel = load_panel()
    las = [THURROCK_CODE, *statistical_neighbours(THURROCK_CODE)]
    counts = ModelForecaster(neighbours="2021", allow_unconverged=args.allow_unconverged)
    forecasters = (
        *(
            SpendForecaster(counts, unit_cost=u, allow_unconverged=args.allow_unconverged)
            for u in ("model", "flat", "trend")
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
        quantity="spend",
        cache_dir=Path(args.cache),
    )
    tables = summary_tables(result)
    paths = save_backtest(result, args.out, tables)
    summary = tables["summary"]
    summary = summary[summary["outcome"] == "latest"]
    cols = ["method", "horizon", "n_scored", "n_missing", "coverage_50", "coverage_90", "pit_mean", "crps", "mae"]
    ratios = tables["ratios"]
    ratios = ratios[ratios["split"] == "all"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(summary[cols].to_string(index=False))
        print()
        print(ratios.to_string(index=False))
        print()
        print(result.origins.to_string(index=False))
    passed = result.origins.groupby("origin")["status"].apply(lambda s: bool((s == "scored").all()))
    kept = passed[passed].index.tolist()
    if len(kept) < len(passed):
        from bayes_lac.studies.scoring import summarise_backtest

        print(f"\nOrigins whose fits all passed their gates: {kept}")
        if kept:
            only = summarise_backtest(result.table[result.table["origin"].isin(kept)])
            with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
                print(only[cols].to_string(index=False))
            write_csv(only, Path(args.out).with_name(Path(args.out).name.split(".")[0] + "_summary_converged.csv"))
    print(f"\n{time.perf_counter() - start:.0f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
