"""Shared fixtures: small synthetic results that follow the contract in bayes_lac.model.results.

`make_toy_results` builds a run without sampling, with draws scattered around known
parameter values, so tables, charts and arithmetic can be tested against hand calculations.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

os.environ.setdefault("MPLBACKEND", "Agg")
# Cached fits (the unit-cost model's) go to a folder of this test run, never the user's cache;
# xdist workers inherit the controller's folder.
if "BAYES_LAC_CACHE" not in os.environ:
    import tempfile

    os.environ["BAYES_LAC_CACHE"] = tempfile.mkdtemp(prefix="bayes-lac-test-cache-")
# JAX keeps what it compiles for the suite's sampler (TEST_SAMPLER) in a folder of this run too,
# cold at its start: a model compiled again with the same shapes and constants (in another
# worker, notebook or command) is read back. Measured on a small model: a second process's fit
# took 19 s instead of 37 s.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(os.environ["BAYES_LAC_CACHE"], "jax")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("PYTENSOR_FLAGS", "blas__ldflags=")
# the suite's workers already run side by side (pytest -n 2): one core per fit, not one per CPU
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("BAYES_LAC_CORES", "1")
# What pytensor compiles outside a JAX sampler (fits with pymc's sampler, C-compiled checks)
# uses its C linker. Its compiled ops do not depend on array shapes, so differently sized panels
# share one cold compile; the default (numba) recompiles for each new shape (measured on 2 cores
# with a warm cache: a second panel shape cost 86 s of CPU under numba and 42 s under C). Set here, before pytensor is
# imported, so notebook kernels and CLI subprocesses inherit it.
if "linker=" not in os.environ["PYTENSOR_FLAGS"]:
    os.environ["PYTENSOR_FLAGS"] = ",".join(x for x in (os.environ["PYTENSOR_FLAGS"], "linker=cvm") if x)

from bayes_lac import __version__  # noqa: E402
from bayes_lac.config import MEASURES  # noqa: E402
from bayes_lac.model.diagnostics import attach_diagnostics  # noqa: E402


def made_flows_run(data, posterior, converged: bool = True):
    """A flows run made, not fitted: `posterior` (a Dataset with chain and draw dims) over the
    flows data `data` (`bayes_lac.model.flows.prepare_flows`), with the attrs a fit records."""
    import json

    import xarray as xr

    from bayes_lac import __version__
    from bayes_lac.model.flows import RUN_KIND

    run = xr.DataTree.from_dict({"posterior": posterior, "flows_data": data.to_dataset()})
    run.attrs.update(
        {
            "run_kind": RUN_KIND,
            "target_la": data.target,
            "comparison": data.comparison,
            "authorities": json.dumps(list(data.la)),
            "first_year": int(data.year[0]),
            "last_year": int(data.year[-1]),
            "sampler": "none",
            "bayes_lac_version": __version__,
            "converged": "true" if converged else "false",
            "max_rhat": 1.0 if converged else 1.03,
            "min_ess_bulk": float(posterior.sizes["chain"] * posterior.sizes["draw"]),
            "divergences": 0,
        }
    )
    return run


def make_toy_results(
    n_la: int = 4,
    years: tuple[int, int] = (2010, 2020),
    chains: int = 2,
    draws: int = 500,
    intercept=(4.0, 5.8, 3.8),
    la_trend=0.02,
    year_step=0.01,
    deprivation_effect=(0.02, 0.01, 0.015),
    dispersion=50.0,
    persistence=0.0,
    noise_sd: float = 0.01,
    population=None,
    uasc=None,
    deprivation=None,
    seed: int = 0,
    converged: bool = True,
) -> xr.DataTree:
    """A DataTree in the shape of a bayes_lac run, with known parameters.

    ``la_trend`` is the first authority's trend (log scale per year); the others get the
    negatives spread so trends sum to zero. ``year_effect`` rises by ``year_step`` a year.
    ``population``/``uasc``/``deprivation`` default to constant 40,000 / 10 / 20.0 and may be
    arrays of shape (n_la, n_years).

    The run passes the convergence gate honestly: its draws are independent and its
    ``sample_stats`` hold no divergence, and its stored diagnostics are those the gate
    computes from them (so a saved and loaded toy run is accepted). ``converged=False`` adds
    three divergent transitions, so the gate fails it. A converged toy needs enough draws for
    an effective sample size of 400 (about 2 x 500); asking for one with fewer raises.
    """
    rng = np.random.default_rng(seed)
    la = [f"E0600{9000 + i:04d}" for i in range(n_la)]
    yrs = np.arange(years[0], years[1] + 1)
    n_y = len(yrs)
    m = len(MEASURES)

    def jitter(shape):
        return rng.normal(0.0, noise_sd, size=(chains, draws) + shape)

    trend_truth = np.full(n_la, -la_trend / max(n_la - 1, 1))
    trend_truth[0] = la_trend
    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw", "measure"), np.array(intercept)[None, None] + jitter((m,))),
            "la_intercept": (("chain", "draw", "la", "measure"), np.zeros((n_la, m))[None, None] + jitter((n_la, m))),
            "la_trend": (
                ("chain", "draw", "la", "measure"),
                np.repeat(trend_truth[:, None], m, 1)[None, None] + jitter((n_la, m)) / 10,
            ),
            "year_effect": (
                ("chain", "draw", "measure", "year"),
                np.broadcast_to(year_step * np.arange(n_y), (chains, draws, m, n_y)).copy(),
            ),
            "year_sigma": (("chain", "draw", "measure"), np.full((chains, draws, m), 0.05)),
            "deprivation_effect": (
                ("chain", "draw", "measure"),
                np.array(deprivation_effect)[None, None] + jitter((m,)) / 10,
            ),
            "dispersion": (("chain", "draw", "measure"), np.full((chains, draws, m), dispersion)),
            "persistence": (("chain", "draw", "measure"), np.full((chains, draws, m), persistence)),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "measure": list(MEASURES), "la": la, "year": yrs},
    )
    shape = (n_la, n_y)
    pop = np.full(shape, 40_000.0) if population is None else np.asarray(population, float)
    ua = np.full(shape, 10.0) if uasc is None else np.asarray(uasc, float)
    dep = np.full(shape, 20.0) if deprivation is None else np.asarray(deprivation, float)
    constant = xr.Dataset(
        {
            "population_0_17": (("la", "year"), pop),
            "uasc": (("la", "year"), ua),
            "deprivation": (("la", "year"), dep),
            "uasc_imputed": (("la", "year"), np.zeros(shape, bool)),
            "deprivation_imputed": (("la", "year"), np.zeros(shape, bool)),
        },
        coords={"la": la, "year": yrs, "la_name": ("la", [f"Area {i}" for i in range(n_la)])},
    )
    reference = xr.Dataset(
        {
            "count": (("measure", "year"), np.tile(np.array([60.0, 330.0, 45.0])[:, None], n_y) * 1_200),
            "population_0_17": (("year",), np.full(n_y, 12_000_000.0)),
        },
        coords={"measure": list(MEASURES), "year": yrs},
    )
    observed = xr.Dataset(
        {
            "modelled_count": (("measure", "la", "year"), np.full((m,) + shape, np.nan)),
            "reported_count": (("measure", "la", "year"), np.full((m,) + shape, np.nan)),
        },
        coords={"measure": list(MEASURES), "la": la, "year": yrs},
    )
    diverging = np.zeros((chains, draws), bool)
    if not converged:
        diverging[0, :3] = True
    sample_stats = xr.Dataset(
        {"diverging": (("chain", "draw"), diverging), "energy": (("chain", "draw"), rng.normal(size=(chains, draws)))},
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "constant_data": constant,
            "observed_data": observed,
            "reference": reference,
        }
    )
    tree.attrs.update(
        {
            "bayes_lac_version": __version__,
            "target_la": la[0],
            "comparison": "list",
            "neighbours": json.dumps(la[1:]),
            "until_year": str(int(yrs[-1])),
            "reference_year": str(int(yrs[-1])),
            "deprivation_centre": "20.0",
            "measures": json.dumps(list(MEASURES)),
            "priors": json.dumps({}),
            "prior_set": "default",
            "sampler": json.dumps({"draws": draws, "chains": chains}),
            "panel_sha256": "0" * 64,
            "data_vintage": "synthetic",
            "created_utc": "2026-01-01T00:00:00Z",
            "imputations": json.dumps([]),
        }
    )
    diagnostics = attach_diagnostics(tree)
    if diagnostics.converged != converged:
        raise ValueError(
            f"make_toy_results(converged={converged}) made a run the gate judges otherwise: "
            f"{'; '.join(diagnostics.problems)}; give it more draws"
        )
    return tree


@contextmanager
def python_evaluation():
    """Yield a pytensor mode that evaluates graphs with pytensor's Python implementations.

    For tests that evaluate a log-density or its gradient once, at a point: they check the
    graph's arithmetic, which is the same in every backend, without a cold C compile of every
    op (measured: the latent model's log-density and gradient, 263 s in CI with C, 35-55 s here,
    nearly all of it building the symbolic gradient of its scans). C is still compiled by the
    fits that sample the same models. Nothing may fall back to C inside the block.
    """
    import pytensor
    from pytensor.compile.mode import Mode

    with pytensor.config.change_flags(cxx=""):
        yield Mode(linker="py", optimizer="fast_compile").excluding("fusion")


@pytest.fixture
def toy_results() -> xr.DataTree:
    return make_toy_results()


# -- the fast tier samples nothing ------------------------------------------------------------


def pytest_configure(config):
    """`make test-fast` sets BAYES_LAC_NO_FITS=1: any MCMC sampling then fails the test that
    asked for it, so the fast tier provably runs no fits (such a test must be marked slow)."""
    if os.environ.get("BAYES_LAC_NO_FITS") != "1":
        return
    import nutpie
    import pymc

    def refuse(*args, **kwargs):
        raise AssertionError("this test samples a model: mark it @pytest.mark.slow (BAYES_LAC_NO_FITS=1)")

    pymc.sample = refuse
    nutpie.sample = refuse


# -- the suite's sampler -----------------------------------------------------------------------

#: The NUTS implementation of the suite's fits. numpyro compiles a small model with JAX in
#: seconds where pymc's own sampler compiles C for minutes on a cold cache (measured on 2 cores,
#: bench/results/cold_sampler.txt: the recovery test's fit took 67 s with numpyro and 221 s with
#: pymc), and the run's log densities are then computed with JAX too. The package's default for
#: users stays nutpie. BAYES_LAC_TEST_SAMPLER=pymc runs the suite with pymc's sampler instead.
TEST_SAMPLER = os.environ.get("BAYES_LAC_TEST_SAMPLER", "numpyro")


# -- one real fit shared by the whole run -------------------------------------------------------

#: The shared Thurrock fit: the bundled panel, Thurrock and its 2021 DfE statistical neighbours,
#: the suite's sampler, settings far too small to converge (tests that read it allow that). Trees
#: are capped at 32 steps: after 100 tuning steps pymc's NUTS otherwise hits its 1,023-step limit on
#: every draw of this posterior (measured: 239 s of sampling with a warm cache, 42 s capped).
SHARED_FIT = {
    "draws": 100,
    "tune": 100,
    "chains": 2,
    "seed": 1,
    "sampler": TEST_SAMPLER,
    "max_treedepth": 5,
}


def _shared_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this run sees (the session's base temporary folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _code_digest() -> str:
    """Digest of what a fit depends on: the package's model code, bundled panel and priors."""
    from bayes_lac import config

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = sorted((root / "bayes_lac" / "model").glob("*.py")) + sorted((root / "bayes_lac" / "data").glob("*.py"))
    files += [Path(config.BUNDLED_PANEL)] + sorted(Path(config.PRIORS_DIR).glob("*.toml"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


#: `SHARED_FIT` as options of the `fit` and `report` commands.
SHARED_FIT_OPTIONS = [
    a
    for name in ("draws", "tune", "chains", "seed", "sampler", "max_treedepth")
    for a in (f"--{name.replace('_', '-')}", str(SHARED_FIT[name]))
]

#: The command that makes the shared fit: the report command, fitting Thurrock and its 2021
#: neighbours (its default) with `SHARED_FIT`, saving the run beside the report and writing the
#: workbook. One call covers both the command's own test and every test that reads a real run.
SHARED_REPORT_ARGS = [
    "report",
    "--model",
    "default",
    "--la",
    "E06000034",
    *SHARED_FIT_OPTIONS,
    "--xlsx",
    "--allow-unconverged",
]


@pytest.fixture(scope="session")
def thurrock_report_path(tmp_path_factory) -> Path:
    """The HTML report of the shared real fit, written by ``bayes-lac report`` (`SHARED_REPORT_ARGS`)
    once per test run; its run is ``thurrock_run.nc`` beside it and its workbook ``thurrock.xlsx``.
    xdist workers wait on a lock for the first; a failed command fails every test that needs it,
    with the command's messages."""
    import contextlib
    import io

    from filelock import FileLock

    from bayes_lac.cli import main

    folder = _shared_dir(tmp_path_factory) / f"thurrock-{_code_digest()}"
    html = folder / "thurrock.html"
    with FileLock(str(folder) + ".lock"):
        if not html.exists():
            folder.mkdir(exist_ok=True)
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = main([*SHARED_REPORT_ARGS, "--out", str(html)])
            if code != 0:
                raise RuntimeError(f"bayes-lac {' '.join(SHARED_REPORT_ARGS)} exited {code}:\n{err.getvalue()}")
    return html


@pytest.fixture(scope="session")
def thurrock_run_path(thurrock_report_path) -> Path:
    """The saved real fit of Thurrock and its neighbours (`thurrock_report_path`), shared by every
    test and notebook that only reads a run."""
    return thurrock_report_path.with_name("thurrock_run.nc")


@pytest.fixture(scope="session")
def latent_run_files(tmp_path_factory) -> dict:
    """A small fit of the latent-state model, saved with its panel, for notebook 02: a simulated
    panel of 6 authorities, 2012-2020, every measure (the suite's sampler, 2 chains x 60 draws:
    far too small to converge; readers must allow that). Returns the notebook's parameters
    ``run_path``, ``panel_path`` and ``la_code``. xdist workers wait on a lock for the first."""
    from filelock import FileLock

    from bayes_lac.model import latent_fit as LF
    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.results import save_run
    from bayes_lac.model.simulate import simulate_panel

    folder = _shared_dir(tmp_path_factory) / f"latent-{_code_digest()}"
    run_path, panel_path = folder / "run.nc", folder / "panel.csv"
    with FileLock(str(folder) + ".lock"):
        panel, _ = simulate_panel(n_la=6, years=(2012, 2020), seed=5)
        code = sorted(c for c in panel["la_code"].unique() if c.startswith("E06"))[0]
        if not run_path.exists():
            folder.mkdir(exist_ok=True)
            run = LF.LatentFitter(sampler=TEST_SAMPLER).fit(
                prepare_data(panel, code, neighbours="all"), draws=60, tune=60, chains=2, seed=3
            )
            panel.to_csv(panel_path, index=False)
            save_run(run, run_path)
    return {"run_path": str(run_path), "panel_path": str(panel_path), "la_code": code}
