"""Time a forecast plus costs: one authority, 3 scenarios, 20 years, 4,000 draws.

Target: under 5 seconds. Uses a saved run if one is given (``python bench/bench_forecast.py
run.nc``), otherwise a synthetic 4-chain x 1,000-draw run shaped like a real one (the target
and 10 neighbours, 2010-2025) with a synthetic unit-cost history.

Run from the project root: ``.venv/bin/python bench/bench_forecast.py [run.nc]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.analysis.costs import cost_change_table, cost_table, costs  # noqa: E402
from bayes_lac.analysis.forecast import forecast, forecast_table  # noqa: E402

SCENARIOS = ("trend", "population-only", "converge-england")
HORIZON = 20
REPEATS = 3


def _run(argv):
    if len(argv) > 1:
        from bayes_lac.analysis.forecast import load_checked_run

        return load_checked_run(argv[1], allow_unconverged=True), f"saved run {argv[1]}"
    from tests.conftest import make_toy_results

    run = make_toy_results(n_la=11, years=(2010, 2025), chains=4, draws=1000)
    return run, "synthetic run: 11 authorities, 2010-2025, 4 chains x 1,000 draws"


def main(argv=sys.argv) -> None:
    run, what = _run(argv)
    la = run.attrs["target_la"]
    base = int(run["posterior"]["year_effect"]["year"].max())
    years = np.arange(base - 9, base + 1)
    unit_costs = pd.DataFrame(
        {"la_code": la, "year": years, "weekly_cost_per_child": 1500 * 1.06 ** (years - years[0])}
    )
    times = []
    for i in range(REPEATS):
        start = time.perf_counter()
        fc = forecast(run, horizon=HORIZON, scenarios=SCENARIOS, seed=i)
        co = costs(fc, unit_costs, seed=i)
        forecast_table(fc)
        cost_table(co)
        cost_change_table(co)
        times.append(time.perf_counter() - start)
    n = fc.data.sizes["draw"]
    print(f"{what}")
    print(
        f"forecast + costs + tables, {len(SCENARIOS)} scenarios x {HORIZON} years x {n:,} draws: "
        f"best {min(times):.2f} s, median {float(np.median(times)):.2f} s over {REPEATS} runs (target < 5 s)"
    )


if __name__ == "__main__":
    main()
