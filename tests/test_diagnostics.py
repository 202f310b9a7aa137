"""Convergence checks flag a broken fit, and analyses refuse it unless allowed. (Predictive
checks and LOO on a real small fit are tested in tests/test_runs.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bayes_lac.errors import UnconvergedFitError
from bayes_lac.model import diagnostics as D
from bayes_lac.model.diagnostics import check_convergence, require_converged
from bayes_lac.model.results import load_run

# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = pytest.mark.xdist_group("diagnostics")


@pytest.fixture(scope="session")
def broken_run(thurrock_run_path):
    """The suite's shared real fit (tests/conftest.py) cut to one chain of 30 draws: R-hat
    cannot be computed and ESS is tiny. The gate judges it afresh (no second fit to make)."""
    run = load_run(thurrock_run_path).isel(chain=[0], draw=slice(0, 30), missing_dims="ignore")
    D.attach_diagnostics(run)
    return run


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_broken_fit_is_flagged(broken_run):
    diag = check_convergence(broken_run)
    assert diag.converged is False
    assert diag.problems
    assert any("ESS" in p for p in diag.problems)
    assert any("R-hat" in p for p in diag.problems)
    assert broken_run.attrs["converged"] == "false"
    stored = json.loads(broken_run.attrs["diagnostics"])
    assert stored["converged"] is False and stored["problems"]
    table = diag.table()
    assert not table["ok"].all()


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_require_converged(broken_run):
    with pytest.raises(UnconvergedFitError, match="allow_unconverged"):
        require_converged(broken_run)
    diag = require_converged(broken_run, allow_unconverged=True)
    assert diag.converged is False


def test_require_converged_passes_a_converged_run(toy_results):
    assert require_converged(toy_results).converged


# -- R-hat and ESS computed here agree with ArviZ -------------------------------------------------


def _ar1(chains: int, draws: int, k: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws, k))
    noise = rng.standard_normal((chains, draws, k))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


@pytest.mark.parametrize(
    ("chains", "draws", "phi"),
    [(4, 500, 0.0), (4, 500, 0.6), (2, 301, 0.95), (2, 101, -0.5), (1, 200, 0.3)],
)
def test_rhat_and_ess_match_arviz(chains, draws, phi):
    import arviz as az

    x = _ar1(chains, draws, 5, phi, seed=draws)
    x[..., 4] = np.round(x[..., 4])  # ties share their average rank
    if chains > 1:
        x[1:, :, 3] += 0.5  # chains that disagree
    ds = xr.Dataset({"v": (("chain", "draw", "k"), x)})
    if chains > 1:
        np.testing.assert_allclose(D.rhat(x), az.rhat(ds)["v"].values, rtol=1e-10)
    else:
        assert np.isnan(D.rhat(x)).all()
    np.testing.assert_allclose(D.ess_bulk(x), az.ess(ds, method="bulk")["v"].values, rtol=1e-10)
    # the tail ESS of Vehtari et al. (2021): 5 % and 95 % quantiles (ArviZ's prob=0.95)
    np.testing.assert_allclose(D.ess_tail(x), az.ess(ds, method="tail", prob=0.95)["v"].values, rtol=1e-10)


def test_gate_checks_every_sampled_variable_not_a_fixed_list(toy_results):
    """A badly mixed variable the old fixed list did not name (here persistence and a
    parameterisation's own variable) fails the gate; a derived re-expression is not checked."""
    post = toy_results["posterior"].to_dataset()
    stuck = np.repeat(np.linspace(0.2, 0.8, post.sizes["chain"])[:, None, None], post.sizes["draw"], axis=1)
    wander = np.cumsum(np.random.default_rng(3).normal(size=(post.sizes["chain"], post.sizes["draw"], 2)), axis=1)
    for name, values in (
        ("persistence", stuck * np.ones((1, 1, post.sizes["measure"]))),
        ("some_parameter_z", wander),
    ):
        run = toy_results.copy()
        dims = ("chain", "draw", "measure") if name == "persistence" else ("chain", "draw", "k")
        run["posterior"] = xr.DataTree(post.assign({name: (dims, values)}))
        diag = D.check_convergence(run)
        assert not diag.converged and name in diag.worst["rhat"], diag.problems
    assert "la_trend" not in D.checked_variables(post) and "persistence" in D.checked_variables(post)


@pytest.mark.parametrize("parameterisation", ["non_centred", "centred", "auto", "baseline"])
def test_every_free_variable_of_the_model_is_checked(parameterisation):
    """The gate's set comes from the posterior: every free variable of the model in every
    parameterisation is in it, and what it leaves out are the model's deterministics."""
    from bayes_lac.config import ENGLAND_CODE
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=4, years=(2016, 2021), seed=7)
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    model = LACModel(codes[0], neighbours=codes[1:], parameterisation=parameterisation).build(panel)
    free = {rv.name for rv in model.free_RVs}
    deterministic = {d.name for d in model.deterministics}
    posterior = xr.Dataset({name: (("chain", "draw"), np.zeros((1, 1))) for name in free | deterministic})
    checked = set(D.checked_variables(posterior))
    assert free <= checked, free - checked
    assert (free | deterministic) - checked <= deterministic
    assert "persistence" in checked


def test_too_few_draws_to_compute_the_diagnostics_fail_the_gate():
    from tests.conftest import make_toy_results

    diag = check_convergence(make_toy_results(draws=3, converged=False))
    assert not diag.converged
    assert sum("fewer than 4 draws" in p for p in diag.problems) == 3  # R-hat, bulk and tail ESS
