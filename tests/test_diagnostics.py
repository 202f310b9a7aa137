"""Convergence checks flag a broken fit, and analyses refuse it unless allowed; predictive
checks and LOO give tables of the right shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayes_lac.config import ENGLAND_CODE
from bayes_lac.diagnostics import (
    check_convergence,
    coverage_table,
    loo_table,
    posterior_predictive,
    require_converged,
    rootogram_table,
)
from bayes_lac.errors import UnconvergedFitError
from bayes_lac.model import LACModel
from bayes_lac.simulate import simulate_panel


@pytest.fixture(scope="module")
def broken_run():
    # one chain, no tuning, 30 draws: R-hat cannot be computed and ESS is tiny
    panel, _ = simulate_panel(n_la=5, years=(2016, 2022), seed=7)
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    return LACModel(codes[0], neighbours=codes[1:]).fit(
        panel, draws=30, tune=0, chains=1, cores=1, seed=2, progressbar=False
    )


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


def test_require_converged(broken_run):
    with pytest.raises(UnconvergedFitError, match="allow_unconverged"):
        require_converged(broken_run)
    diag = require_converged(broken_run, allow_unconverged=True)
    assert diag.converged is False


def test_require_converged_passes_a_converged_run(toy_results):
    assert require_converged(toy_results).converged


def test_predictive_tables(broken_run):
    ppc = posterior_predictive(broken_run, seed=1)
    n_obs = int(broken_run["observed_data"]["modelled_count"].notnull().sum())
    assert ppc["posterior_predictive"]["modelled_count"].sizes["obs"] == n_obs
    cov = coverage_table(ppc, ci_prob=0.9)
    assert set(cov["measure"]) == {"looked_after", "children_in_need", "child_protection"}
    assert cov["cells"].sum() == n_obs
    assert cov["share_inside"].between(0, 1).all()
    root = rootogram_table(ppc, "looked_after")
    sel = ppc["observed_data"]["obs_measure"].values == "looked_after"
    assert root["observed"].sum() == sel.sum()
    assert root["expected"].sum() == pytest.approx(sel.sum(), rel=0.02)
    assert (root["bin_upper"] > root["bin_lower"]).all()
    loo = loo_table(broken_run)
    assert loo.loc[loo["measure"] == "all", "cells"].item() == n_obs
    per_measure = loo[loo["measure"] != "all"]
    assert per_measure["elpd_loo"].sum() == pytest.approx(loo.loc[loo["measure"] == "all", "elpd_loo"].item(), rel=1e-6)
    assert np.isfinite(loo["elpd_loo"]).all()
