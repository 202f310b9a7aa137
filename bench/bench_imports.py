"""Start-up time of the command line: ``--help``, and forecast, costs and decompose on a saved run.

Targets (issue #17): ``bayes-lac --help`` under 0.5 s; an analysis command on a saved run
under 3 s on a 2-core machine. Every case runs in a fresh process (as a user's command does),
``--repeat`` times; the median and the fastest wall time are printed, with the CPU time of the
fastest, which is steadier than wall time on a shared machine.

Each case runs twice: as installed here (Dask importable: xarray imports it whenever it can,
about a second) and with Dask blocked, as on an install without the optional ``dask`` extra.

The run: the file given, or else a small Thurrock fit made here (the bundled panel, its 2021
statistical neighbours, PyMC's sampler, 2 chains x 300 draws; several minutes with a cold
compile cache), also resampled to the default 4 chains x 1,500 draws to time a run of the
default size. The runs need not converge (the commands get ``--allow-unconverged``).

Run from the project root: ``.venv/bin/python bench/bench_imports.py [run.nc] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    "PYTENSOR_FLAGS": os.environ.get("PYTENSOR_FLAGS", "blas__ldflags="),
    "MPLBACKEND": "Agg",
}
#: Run the command line with Dask made unimportable (``import dask`` fails, find_spec gives None).
WITHOUT_DASK = "import sys; sys.modules['dask'] = None; from bayes_lac.cli import main; sys.exit(main(sys.argv[1:]))"
WITH_DASK = "import sys; from bayes_lac.cli import main; sys.exit(main(sys.argv[1:]))"


def _time(argv: list[str], program: str, repeat: int) -> tuple[float, float, float]:
    """Median and fastest wall time, and the CPU time of the fastest, of `argv` in fresh processes."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", program, *argv], env=ENV, cwd=ROOT, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    fastest = min(range(repeat), key=walls.__getitem__)
    return statistics.median(walls), walls[fastest], cpus[fastest]


def _small_run(folder: Path) -> Path:
    """Fit Thurrock with its 2021 neighbours, briefly, and save the run."""
    from bayes_lac.config import THURROCK_CODE
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.results import save_run

    print("Fitting a small Thurrock run (2 chains x 300 draws, PyMC's sampler) ...", flush=True)
    run = LACModel(THURROCK_CODE, neighbours="2021").fit(
        load_panel(), draws=300, tune=300, chains=2, cores=1, sampler="pymc", progressbar=False
    )
    path = folder / "thurrock_small.nc"
    save_run(run, path)
    return path


def _default_size(path: Path, folder: Path, chains: int = 4, draws: int = 1500) -> Path:
    """The run with its draws resampled to `chains` x `draws` (shapes of a default fit)."""
    import numpy as np
    import xarray as xr

    from bayes_lac.model.diagnostics import attach_diagnostics
    from bayes_lac.model.results import load_run, save_run

    run = load_run(path)
    rng = np.random.default_rng(0)
    n_chain, n_draw = run["posterior"].sizes["chain"], run["posterior"].sizes["draw"]
    pick_chain = rng.integers(0, n_chain, size=(chains, draws))
    pick_draw = rng.integers(0, n_draw, size=(chains, draws))
    for group in ("posterior", "sample_stats", "log_likelihood", "log_prior"):
        if group not in run.children:
            continue
        ds = run[group].to_dataset()
        picked = ds.isel(
            chain=xr.DataArray(pick_chain, dims=("chain", "draw")), draw=xr.DataArray(pick_draw, dims=("chain", "draw"))
        )
        run[group] = xr.DataTree(picked.assign_coords(chain=np.arange(chains), draw=np.arange(draws)))
    attach_diagnostics(run)
    out = folder / "thurrock_default_size.nc"
    save_run(run, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a saved run (default: fit a small one)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = [Path(args.run)] if args.run else [_small_run(folder)]
        if not args.run:
            runs.append(_default_size(runs[0], folder))
        cases = [("--help", ["--help"])]
        for run in runs:
            from bayes_lac.model.results import load_run

            sizes = load_run(run)["posterior"].sizes
            label = f"{run.name} ({sizes['chain']} x {sizes['draw']} draws)"
            out = str(folder / "out.csv")
            common = ["--allow-unconverged", "--out", out]
            cases += [
                (f"forecast {label}", ["forecast", str(run), *common]),
                (f"costs {label}", ["costs", str(run), *common]),
                (f"decompose {label}", ["decompose", str(run), "--from", "2015", "--to", "2024", *common]),
            ]
        print(f"{'command':<62} {'Dask':>8} {'median s':>9} {'fastest s':>10} {'CPU s':>6}")
        for name, argv in cases:
            for dask, program in (("installed", WITH_DASK), ("blocked", WITHOUT_DASK)):
                median, fastest, cpu = _time(argv, program, args.repeat)
                print(f"{name:<62} {dask:>8} {median:>9.2f} {fastest:>10.2f} {cpu:>6.2f}", flush=True)
        print(
            f"Load average during the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores."
        )


if __name__ == "__main__":
    main()
