"""A real run, saved and loaded; the ``fit`` command line.

The run is the suite's shared fit (tests/conftest.py: Thurrock and its 2021 neighbours, 2 chains
x 100 draws), too short to meet the convergence thresholds; these tests check the run's
structure, round trip and predictive tables, not its statistics (tests/test_recovery.py does
that). The command line's test replaces the sampler rather than fitting a model again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bayes_lac.cli import main
from bayes_lac.config import ENGLAND_CODE, MEASURES
from bayes_lac.errors import RunFileError
from bayes_lac.model.checks import (
    coverage_table,
    loo_table,
    posterior_predictive,
    rootogram_table,
)
from bayes_lac.model.fit import LACModel
from bayes_lac.model.results import REQUIRED_ATTRS, load_run, save_run
from bayes_lac.model.simulate import simulate_panel
from tests.conftest import SHARED_FIT, python_evaluation

# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = pytest.mark.xdist_group("runs")

THURROCK = "E06000034"


@pytest.fixture(scope="session")
def panel():
    panel, _ = simulate_panel(n_la=5, years=(2016, 2022), seed=5)
    return panel


@pytest.fixture(scope="session")
def codes(panel):
    return [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]


@pytest.fixture(scope="session")
def fitted(thurrock_run_path):
    """The shared run, and its model built from the bundled panel as the fit built it."""
    from bayes_lac import load_panel

    lac = LACModel(THURROCK, neighbours="2021")
    lac.build(load_panel())
    return lac, load_run(thurrock_run_path)


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_run_follows_contract(fitted):
    from bayes_lac.data.neighbours import statistical_neighbours

    _, run = fitted
    codes = [THURROCK, *statistical_neighbours(THURROCK)]
    for group in (
        "posterior",
        "constant_data",
        "observed_data",
        "reference",
        "log_likelihood",
        "log_prior",
        "sample_stats",
    ):
        assert group in run.children, group
    post = run["posterior"]
    assert post["la_trend"].dims == ("chain", "draw", "la", "measure")
    assert post["year_effect"].dims == ("chain", "draw", "measure", "year")
    assert post.sizes["chain"] == SHARED_FIT["chains"] and post.sizes["draw"] == SHARED_FIT["draws"]
    assert list(post["la"].values) == codes
    # authority effects are deviations from the set: they sum to zero in every draw
    np.testing.assert_allclose(post["la_trend"].sum("la").values, 0.0, atol=1e-8)
    np.testing.assert_allclose(post["la_intercept"].sum("la").values, 0.0, atol=1e-8)
    assert (post["dispersion"] > 0).all()
    for attr in REQUIRED_ATTRS:
        assert attr in run.attrs
    assert run.attrs["converged"] in ("true", "false")
    assert json.loads(run.attrs["measures"]) == list(MEASURES)
    assert json.loads(run.attrs["neighbours"]) == codes[1:]
    sampler = json.loads(run.attrs["sampler"])
    assert sampler["draws"] == SHARED_FIT["draws"] and sampler["chains"] == SHARED_FIT["chains"]
    # the log-likelihood has one entry per observed cell
    n_obs = int(run["observed_data"]["modelled_count"].notnull().sum())
    assert run["log_likelihood"]["modelled_count"].sizes["obs"] == n_obs


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_save_load_round_trip(fitted, tmp_path):
    lac, run = fitted
    path = tmp_path / "sub" / "run.nc"
    save_run(run, path)
    back = load_run(path)
    for name in ("intercept", "la_trend", "year_effect", "dispersion"):
        xr.testing.assert_allclose(back["posterior"][name], run["posterior"][name])
    xr.testing.assert_equal(back["constant_data"].to_dataset(), run["constant_data"].to_dataset())
    xr.testing.assert_identical(back["observed_data"]["modelled_count"], run["observed_data"]["modelled_count"])
    assert dict(back.attrs) == dict(run.attrs)

    # the model rebuilt from the file alone has the same log-density
    rebuilt = LACModel.from_run(back)
    point = lac.model_.initial_point()
    assert rebuilt.model_.initial_point().keys() == point.keys()
    # a point away from the initial one: shift every free value a little
    rng = np.random.default_rng(0)
    point = {k: v + 0.01 * rng.standard_normal(np.shape(v)) for k, v in point.items()}
    with python_evaluation() as mode:
        original = lac.model_.compile_logp(mode=mode)(point)
        assert np.isfinite(original)
        assert rebuilt.model_.compile_logp(mode=mode)(point) == pytest.approx(original, rel=1e-9)


def test_load_run_refuses_other_files(tmp_path):
    with pytest.raises(RunFileError, match="not found"):
        load_run(tmp_path / "missing.nc")
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(RunFileError, match="not a bayes_lac run"):
        load_run(other)
    text = tmp_path / "text.nc"
    text.write_text("not netcdf")
    with pytest.raises(RunFileError, match=str(text.name)):
        load_run(text)


@pytest.mark.parametrize("converged", [True, False], ids=["converged", "unconverged"])
def test_cli_fit_passes_its_settings_saves_the_run_and_warns_when_unconverged(
    panel, codes, tmp_path, capsys, monkeypatch, converged
):
    """The command's plumbing, without a second fit of the module's model: the sampler gets
    the settings typed, the run is saved, its diagnostics are printed, and a run that failed
    them is announced loudly (and only then)."""
    from bayes_lac.model.results import run_info
    from tests.conftest import make_toy_results

    fitted_run = make_toy_results(converged=converged)
    calls = []

    def fake_fit(self, panel=None, **settings):
        calls.append((self.target_la, self.neighbours, settings))
        return fitted_run

    monkeypatch.setattr(LACModel, "fit", fake_fit)
    csv = tmp_path / "panel.csv"
    panel.to_csv(csv, index=False)
    out = tmp_path / "cli_run.nc"
    argv = [
        "fit",
        "--model",
        "default",
        "--panel",
        str(csv),
        "--la",
        codes[0],
        "--neighbours",
        ",".join(codes[1:]),
        "--draws",
        "100",
        "--tune",
        "150",
        "--chains",
        "3",
        "--seed",
        "7",
        "--sampler",
        "pymc",
        "--max-treedepth",
        "6",
        "--out",
        str(out),
    ]
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 0
    [(target, neighbours, settings)] = calls
    assert target == codes[0] and neighbours == tuple(codes[1:])
    assert {k: settings[k] for k in ("draws", "tune", "chains", "seed", "sampler", "max_treedepth")} == {
        "draws": 100,
        "tune": 150,
        "chains": 3,
        "seed": 7,
        "sampler": "pymc",
        "max_treedepth": 6,
    }
    saved = run_info(load_run(out))
    assert saved.diagnostics == run_info(fitted_run).diagnostics
    assert saved.diagnostics.summary() in captured.out
    assert ("FAILED ITS CONVERGENCE DIAGNOSTICS" in captured.err) is (not converged)
    for problem in saved.diagnostics.problems:
        assert problem in captured.err


def test_cli_fit_bad_la(panel, tmp_path, capsys):
    csv = tmp_path / "panel.csv"
    panel.to_csv(csv, index=False)
    status = main(["fit", "--panel", str(csv), "--la", "E06999999", "--out", str(tmp_path / "x.nc")])
    assert status == 2
    assert "E06999999" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_predictive_tables_and_loo(fitted):
    _, run = fitted
    ppc = posterior_predictive(run, seed=1)
    n_obs = int(run["observed_data"]["modelled_count"].notnull().sum())
    assert ppc["posterior_predictive"]["modelled_count"].sizes["obs"] == n_obs
    cov = coverage_table(ppc, ci_prob=0.9)
    assert set(cov["measure"]) == {"looked_after", "children_in_need", "child_protection"}
    assert cov["cells"].sum() == n_obs
    # the counts inside, recomputed from the predictive draws
    pred = ppc["posterior_predictive"]["modelled_count"]
    lower, upper = pred.quantile(0.05, ("chain", "draw")), pred.quantile(0.95, ("chain", "draw"))
    obs = ppc["observed_data"]["modelled_count"]
    assert cov["inside"].sum() == int(((obs >= lower) & (obs <= upper)).sum())
    assert (cov["share_inside"] == cov["inside"] / cov["cells"]).all()
    # the model's 90 % predictive intervals hold most published counts (measured: 93 %)
    assert cov["inside"].sum() / n_obs > 0.75
    root = rootogram_table(ppc, "looked_after")
    sel = ppc["observed_data"]["obs_measure"].values == "looked_after"
    assert root["observed"].sum() == sel.sum()
    assert root["expected"].sum() == pytest.approx(sel.sum(), rel=0.02)
    assert (root["bin_upper"] > root["bin_lower"]).all()
    loo = loo_table(run)
    assert loo.loc[loo["measure"] == "all", "cells"].item() == n_obs
    per_measure = loo[loo["measure"] != "all"]
    assert per_measure["elpd_loo"].sum() == pytest.approx(loo.loc[loo["measure"] == "all", "elpd_loo"].item(), rel=1e-6)
    assert np.isfinite(loo["elpd_loo"]).all()


@pytest.mark.parametrize("depth", [0, 16, 2.5, True])
def test_a_bad_max_treedepth_is_refused_before_sampling(depth):
    from bayes_lac.model.fit import _sample

    with pytest.raises(ValueError, match="max_treedepth must be a whole number from 1 to 15"):
        _sample(
            None,
            draws=10,
            tune=10,
            chains=1,
            cores=1,
            seed=0,
            progressbar=False,
            sampler="pymc",
            target_accept=0.9,
            max_treedepth=depth,
        )
