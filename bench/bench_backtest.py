"""Time what one backtest origin costs per method, and what a new worker process adds.

Measures, on the bundled panel (every authority, the measures scored at that origin):

1. starting a spawned process and importing PyMC (the fixed cost of every local worker);
2. one origin with every baseline in this process: forecasting and scoring seconds per method
   (the first scoring call also compiles scoringrules' numba kernels, about 20 s, once per
   process);
3. with ``--model``, the same origin with the model (`ModelForecaster`: a report's comparison set and sampler
   settings unless ``--draws`` is given): fit, forecasts and scoring, in this process and in a
   fresh worker process (which pays 1 again and compiles the model again).

From these it extrapolates the wall time of a full backtest (origins 2014-2022). The machine
is shared: run it when nothing else is running, and read the numbers as rough.

Run from the project root:
``.venv/bin/python bench/bench_backtest.py [--origin 2018] [--model] [--draws N]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.data.panel import load_panel  # noqa: E402
from bayes_lac.studies import backtest as B  # noqa: E402
from bayes_lac.studies.baselines import default_baselines  # noqa: E402
from bayes_lac.studies.parallel import run_tasks  # noqa: E402


def import_pymc(_task) -> float:
    start = time.perf_counter()
    import pymc  # noqa: F401

    return time.perf_counter() - start


def origin_task(panel, origin: int, forecasters) -> B.OriginTask:
    plan, _ = B.plan_backtest(panel, [origin], B.DEFAULT_HORIZONS)
    las = tuple(B.local_authorities(panel))
    return B.OriginTask(panel, origin, plan[origin], las, tuple(forecasters), "count", 0, "bench")


def report(label: str, result: B.OriginResult, total: float) -> None:
    print(f"{label}: {total:.0f} s in all")
    for row in result.status.itertuples():
        print(
            f"  {row.method:>14}: fit {row.fit_seconds:6.1f} s, forecasts {row.forecast_seconds:6.1f} s, "
            f"scoring {row.scoring_seconds:6.1f} s ({row.status})"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origin", type=int, default=2018)
    parser.add_argument("--model", action="store_true", help="also time the model at this origin")
    parser.add_argument("--draws", type=int, help="model draws and tuning steps per chain (default: a report's)")
    args = parser.parse_args(argv)
    panel = load_panel()
    n_origins = len(B.DEFAULT_ORIGINS)

    start = time.perf_counter()
    import_seconds = run_tasks(import_pymc, [0], workers=2, progress=False)[0]
    print(f"spawned worker: {time.perf_counter() - start:.1f} s in all, of which importing PyMC {import_seconds:.1f} s")

    start = time.perf_counter()
    baselines = B.run_origin(origin_task(panel, args.origin, default_baselines()))
    baseline_total = time.perf_counter() - start
    report(f"baselines at origin {args.origin} in this process", baselines, baseline_total)
    print(
        f"baselines, full backtest on one worker: about {baseline_total * n_origins / 60:.0f} min (less the one-off compilation)"
    )

    if args.model:
        model = B.ModelForecaster(draws=args.draws, tune=args.draws, cores=1, allow_unconverged=True)
        task = origin_task(panel, args.origin, [model])
        start = time.perf_counter()
        here = B.run_origin(task)
        report(f"model at origin {args.origin} in this process", here, time.perf_counter() - start)
        start = time.perf_counter()
        worker = run_tasks(B.run_origin, [task], workers=2, progress=False)[0]
        worker_total = time.perf_counter() - start
        report(f"model at origin {args.origin} in a new worker", worker, worker_total)
        print(
            f"model, full backtest estimate ({n_origins} origins, 2 workers, one origin at a time per worker): "
            f"about {worker_total * -(-n_origins // 2) / 60:.0f} min, if the two workers do not slow each other"
        )


if __name__ == "__main__":
    multiprocessing.freeze_support()
    main()
