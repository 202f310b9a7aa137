"""Convergence checks flag a broken fit, and analyses refuse it unless allowed. (Predictive
checks and LOO on a real small fit are tested in tests/test_runs.py, sharing its fit.)"""

from __future__ import annotations

import json

import pytest

from bayes_lac.config import ENGLAND_CODE
from bayes_lac.errors import UnconvergedFitError
from bayes_lac.model.diagnostics import check_convergence, require_converged
from bayes_lac.model.fit import LACModel
from bayes_lac.model.simulate import simulate_panel


@pytest.fixture(scope="module")
def broken_run():
    # one chain, 10 tuning steps, 30 draws: R-hat cannot be computed and ESS is tiny
    panel, _ = simulate_panel(n_la=4, years=(2016, 2022), seed=7)
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    return LACModel(codes[0], neighbours=codes[1:]).fit(
        panel, draws=30, tune=10, chains=1, cores=1, seed=2, progressbar=False
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
