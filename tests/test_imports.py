"""Heavy libraries are imported only where they are used.

``bayes-lac --help`` must not import the numerical stack, and an analysis of a saved run
(forecast, costs, decompose) must not import PyMC, PyTensor, ArviZ or matplotlib: each costs
seconds on the 2-core machines analysts use (``bench/bench_imports.py`` prints the times).
The checks run in a fresh interpreter, as a command would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import make_toy_results

HEAVY = ("pymc", "pytensor", "arviz", "arviz_base", "arviz_stats", "matplotlib", "dask", "scipy.stats", "numba")


def _modules_after(code: str) -> set[str]:
    """Top-level and dotted module names imported after running `code` in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))\n"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTENSOR_FLAGS": "blas__ldflags="}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in modules)


def test_help_imports_nothing_numerical():
    modules = _modules_after(
        "import contextlib, io\nfrom bayes_lac.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
    )
    assert not _heavy(modules) and "pandas" not in modules and "xarray" not in modules


@pytest.mark.parametrize(
    "argv",
    [
        ["forecast", "{run}", "--horizon", "3", "--out", "{out}"],
        # the modelled unit cost (the default) fits a small PyMC model, so this checks the
        # named scenario that reads the panel's history only
        ["costs", "{run}", "--horizon", "3", "--unit-cost-method", "flat", "--out", "{out}"],
        ["decompose", "{run}", "--from", "2012", "--to", "2020", "--out", "{out}"],
    ],
    ids=lambda a: a[0],
)
def test_analysis_of_a_saved_run_imports_no_model_or_plotting_library(tmp_path, argv):
    import numpy as np
    import pandas as pd
    import xarray as xr

    from bayes_lac.model.results import save_run

    run = make_toy_results(years=(2010, 2020))
    obs = run["observed_data"].to_dataset()
    obs["reported_count"] = obs["reported_count"].fillna(500.0)
    obs["modelled_count"] = obs["modelled_count"].fillna(490.0)
    run["observed_data"] = xr.DataTree(obs)
    save_run(run, tmp_path / "run.nc")
    # the unit-cost history the costs command reads from the panel
    years = np.arange(2011, 2021)
    costs = pd.DataFrame(
        {"la_code": run.attrs["target_la"], "year": years, "weekly_cost_per_child": 1000.0 * 1.03 ** (years - 2011)}
    )
    costs.to_csv(tmp_path / "costs.csv", index=False)
    filled = [a.format(run=tmp_path / "run.nc", out=tmp_path / "out.csv") for a in argv]
    # dask is blocked as if the optional extra were not installed (xarray imports it whenever
    # it can); the command must work without it
    modules = _modules_after(
        "import sys\n"
        "sys.modules['dask'] = None  # import dask fails; importlib.util.find_spec gives None\n"
        "import pandas as pd\n"
        "import bayes_lac.data.panel\n"
        f"bayes_lac.data.panel.load_panel = lambda path=None: pd.read_csv({str(tmp_path / 'costs.csv')!r})\n"
        "from bayes_lac.cli import main\n"
        f"assert main({filled!r}) == 0\n"
    )
    assert (tmp_path / "out.csv").is_file()
    assert not _heavy(modules), _heavy(modules)
