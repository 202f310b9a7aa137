"""Every notebook in notebooks/ runs top to bottom, with small settings, through papermill,
and ends by checking the numbers it showed (a cell tagged 'checks').

Notebooks are discovered by glob, so a new one is covered without editing this file. Each is
run through its ``parameters`` cell with small sampler settings (only the parameters the
notebook declares are passed), in a temporary folder: outputs are never written back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bayes_lac.config import PROJECT_DIR
from tests.conftest import TEST_SAMPLER

NOTEBOOK_DIR = PROJECT_DIR / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

#: Small settings for CI; a notebook gets those among them that its parameters cell declares.
#: Fits this small cannot reach the convergence thresholds (bulk ESS >= 400 needs more draws),
#: so notebooks that fit are allowed to use an unconverged run (they say so in their output).
#: One worker: for a couple of small fits a new process (import + compile) costs more than it
#: saves. One backtest origin is enough to run every cell.
CI_PARAMETERS = {
    "draws": 100,
    "tune": 100,
    "chains": 2,
    "allow_unconverged": True,
    "workers": 1,
    "origins": [2020],
    # the suite's sampler (see conftest): no numba compile per notebook
    "sampler": TEST_SAMPLER,
    # trees capped at 32 steps: after 100 tuning steps pymc's NUTS otherwise runs 1,023 per draw
    "max_treedepth": 5,
    # the backtest notebook scores the baselines only: the model's backtest path is covered by
    # tests/test_backtest.py with a tiny fit, and a fit per origin is too slow for CI
    "methods": "baselines",
    # ... on Thurrock's comparison set (the 0.2 model's default set), not all 155 authorities the
    # latent model fits: the baselines' code path is the same, in a fifteenth of the cells
    "model_kind": "default",
    # ... for children looked after only: every cell still runs (each measure takes the same
    # path), in a third of the time (15 s for all three measures at one origin in CI)
    "measures": ["looked_after"],
    # the prior-sensitivity notebook: the run's own prior set, which the run itself stands for,
    # runs every cell without a refit (a refit is a fit of Thurrock: 45-60 s in CI); refits
    # through `sensitivity` are checked in tests/test_sensitivity.py
    "prior_sets": ["default"],
}

papermill = pytest.importorskip("papermill", reason="papermill is a dev dependency: pip install -e '.[dev]'")


def test_notebooks_are_found():
    # guards against the glob silently matching nothing after a move of the folder
    assert NOTEBOOK_DIR.is_dir()
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


def test_notebooks_have_a_parameters_cell_and_no_outputs():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, f"{path.name} has no code cells"
        assert "parameters" in code[0].metadata.get("tags", []), (
            f"{path.name}: first code cell is not tagged 'parameters'"
        )
        with_outputs = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
        assert not with_outputs, f"{path.name}: committed outputs in code cells {with_outputs}"


def test_notebooks_end_by_checking_their_numbers():
    """A notebook that runs without an error could still show wrong numbers: each ends with a
    cell tagged 'checks' that asserts the numbers it showed against each other and the data."""
    import nbformat

    for path in NOTEBOOKS:
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        last = code[-1]
        assert "checks" in last.metadata.get("tags", []), f"{path.name}: the last code cell is not tagged 'checks'"
        assert "assert" in last.source and "Checked:" in last.source, f"{path.name}: its checks cell asserts nothing"


# Notebooks read or make fits, compile predictive draws or run a backtest (in clean-clone CI,
# 02 on the 0.2 model took 60-80 s), so the runs are marked slow.
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, request):
    declared = papermill.inspect_notebook(str(path))
    parameters = {k: v for k, v in CI_PARAMETERS.items() if k in declared}
    if path.stem.startswith("02_"):
        # the latent-state model's notebook reads the suite's small saved latent run (its
        # fitting cell is LatentFitter's call, as in tests/test_latent_fit.py)
        parameters.update(request.getfixturevalue("latent_run_files"))
    elif "run_path" in declared:
        # notebooks that read a run are given the one shared fit (tests/conftest.py)
        parameters["run_path"] = str(request.getfixturevalue("thurrock_run_path"))
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=parameters,
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=900,
    )
    import nbformat

    executed = nbformat.read(out, as_version=4)
    errors = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code" and c.source.strip())
    # the checks cell ran to its end: its assertions on the notebook's numbers held
    checks = [c for c in executed.cells if c.cell_type == "code" and "checks" in c.metadata.get("tags", [])]
    printed = "".join(
        o.get("text", "") for c in checks for o in c.get("outputs", []) if o.get("output_type") == "stream"
    )
    assert "Checked:" in printed
