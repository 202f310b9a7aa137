"""The code passes ruff's lint and is formatted as ruff formats it (settings in pyproject.toml).

Part of the test suite, so ``make test`` and CI check it; ruff is in the dev extra.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bayes_lac.config import PROJECT_DIR

pytest.importorskip("ruff", reason="ruff is a dev dependency: pip install -e '.[dev]'")

CHECKED = ["bayes_lac", "tests", "bench"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *CHECKED], cwd=PROJECT_DIR, capture_output=True, text=True
    )


def test_ruff_lint_finds_nothing():
    done = _ruff("check", "--no-cache", "--output-format", "concise")
    assert done.returncode == 0, done.stdout + done.stderr


def test_code_is_formatted_by_ruff():
    done = _ruff("format", "--check", "--no-cache")
    assert done.returncode == 0, "run `ruff format bayes_lac tests bench`:\n" + done.stdout + done.stderr
