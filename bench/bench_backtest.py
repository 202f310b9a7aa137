"""Time what one backtest origin costs, and what a new worker process adds.

Measures, on the bundled panel (national model, looked_after, 2 chains):

1. starting a spawned process and importing PyMC (the fixed cost of every local worker);
2. one origin fitted and forecast in this process (fit = compile + sample; forecasts for
   every authority);
3. the same origin run through `bayes_lac.studies.parallel.run_tasks` in a fresh worker process
   (pays 1 again, and compiles again).

From these it extrapolates the wall time of a full backtest (origins 2014-2022) on 2 workers.
The machine is shared: run it when nothing else is running, and read the numbers as rough.

Run from the project root: ``.venv/bin/python bench/bench_backtest.py [ORIGIN] [DRAWS]``
(default origin 2018, 500 draws and 500 tuning steps per chain).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.data.panel import load_panel  # noqa: E402
from bayes_lac.model.priors import load_priors  # noqa: E402
from bayes_lac.studies import backtest as B  # noqa: E402
from bayes_lac.studies.parallel import run_tasks  # noqa: E402

FULL_ORIGINS = range(2014, 2023)


def import_pymc(_task) -> float:
    start = time.perf_counter()
    import pymc  # noqa: F401

    return time.perf_counter() - start


def main(argv) -> None:
    origin = int(argv[1]) if len(argv) > 1 else 2018
    draws = int(argv[2]) if len(argv) > 2 else B.DEFAULT_DRAWS
    panel = load_panel()
    las = B.local_authorities(panel)

    start = time.perf_counter()
    import_seconds = run_tasks(import_pymc, [0], workers=2, progress=False)[0]
    spawn_total = time.perf_counter() - start
    print(f"spawned worker: {spawn_total:.1f} s in all, of which importing PyMC {import_seconds:.1f} s")

    task = {
        "panel": panel, "origin": origin, "horizons": [1, 2, 3, 4, 5], "measures": ("looked_after",),
        "las": las, "target_la": "E06000034", "priors": load_priors("default"),
        "sampler": {"draws": draws, "tune": draws, "chains": B.DEFAULT_CHAINS, "seed": origin},
        "cores": 1, "seed": 0,
    }
    start = time.perf_counter()
    here = B.model_origin_forecasts(task)
    here_total = time.perf_counter() - start
    print(
        f"origin {origin} in this process: {here_total:.0f} s (fit {here['fit_seconds']:.0f} s, "
        f"forecasts of {len(las)} authorities {here['forecast_seconds']:.0f} s)"
    )
    start = time.perf_counter()
    worker = run_tasks(B.model_origin_forecasts, [task], workers=2, progress=False)[0]
    worker_total = time.perf_counter() - start
    print(f"origin {origin} in a new worker: {worker_total:.0f} s (fit {worker['fit_seconds']:.0f} s)")
    n = len(FULL_ORIGINS)
    print(
        f"full backtest estimate ({n} origins, 2 workers, one origin at a time per worker): "
        f"about {worker_total * -(-n // 2) / 60:.0f} min, if the two workers do not slow each other"
    )


if __name__ == "__main__":
    multiprocessing.freeze_support()
    main(sys.argv)
