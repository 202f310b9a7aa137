"""Do two commits of bayes_lac give the same numbers? For refactors that must not change behaviour.

    python bench/compare_commits.py 64808ec 7f913f7      # before and after the layout move

Each commit is checked out into a temporary git worktree and imported from there (PYTHONPATH),
with this environment's dependencies. Each writes, from the same inputs:

* ``model.json``: the main model's log density, and a digest of its gradient (rounded to 1e-9),
  at five random points, for Thurrock and its 2021 statistical neighbours on the bundled panel;
* ``baselines.csv``: the backtest's baseline forecasts, scored, from origins 2015, 2018 and
  2021 for every authority and measure of the bundled panel;
* ``forecast.csv`` and ``decompose.csv``: the ``forecast`` and ``decompose`` commands on one
  synthetic run (``tests.conftest.make_toy_results``).

Then the files are compared byte for byte and the result printed. Nothing is sampled. It reads
both package layouts: sub-packages (from 7f913f7) and the flat modules before them. Results go
to a temporary folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ("model.json", "baselines.csv", "forecast.csv", "decompose.csv")

# Run inside the commit's checkout: PYTHONPATH points at it.
OUTPUTS = r"""
import hashlib, json, os, sys
from pathlib import Path

import numpy as np
import pandas as pd

out = Path(sys.argv[1])
try:
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.results import save_run
    from bayes_lac.studies import backtest as B
except ImportError:  # the flat layout before 7f913f7
    from bayes_lac import backtest as B
    from bayes_lac.model import LACModel
    from bayes_lac.panel import load_panel
    from bayes_lac.results import save_run
import bayes_lac
from bayes_lac.cli import main

checkout = Path(os.environ["PYTHONPATH"]).resolve()
assert Path(bayes_lac.__file__).resolve().is_relative_to(checkout), bayes_lac.__file__
panel = load_panel()
model = LACModel("E06000034", neighbours="2021").build(panel)
logp, dlogp = model.compile_logp(), model.compile_dlogp()
rng = np.random.default_rng(0)
start = model.initial_point()
values = {}
for k in range(5):
    point = {n: v + 0.1 * rng.standard_normal(np.shape(v)) for n, v in start.items()}
    values[f"logp{k}"] = float(logp(point))
    values[f"grad{k}"] = hashlib.sha256(np.round(dlogp(point), 9).tobytes()).hexdigest()[:16]
(out / "model.json").write_text(json.dumps(values, indent=1))
las = B.local_authorities(panel)
measures = ["looked_after", "children_in_need", "child_protection"]
if hasattr(B, "baseline_forecasts"):  # the first backtest's interface
    tables = [B.baseline_forecasts(panel, origin, [1, 2, 3], measures, las) for origin in (2015, 2018, 2021)]
    pd.concat(tables).to_csv(out / "baselines.csv", index=False)
else:  # the backtest of the forecaster interface: the baselines scored by the backtest itself
    from bayes_lac.studies.baselines import default_baselines

    scored = B.backtest(panel, default_baselines(), origins=(2015, 2018, 2021), horizons=[1, 2, 3],
                        measures=measures, las=las, progress=False)
    scored.table.to_csv(out / "baselines.csv", index=False)
sys.path.insert(0, str(checkout))
from tests.conftest import make_toy_results

toy = make_toy_results(years=(2009, 2020))
try:  # the toy with published counts, which decompose needs (tests/test_report.py)
    from tests.test_report import _with_published_counts

    toy = _with_published_counts(toy)
except ImportError:
    pass
save_run(toy, out / "toy.nc")
assert main(["forecast", str(out / "toy.nc"), "--horizon", "5", "--out", str(out / "forecast.csv")]) == 0
assert main(["decompose", str(out / "toy.nc"), "--from", "2012", "--to", "2020", "--out", str(out / "decompose.csv")]) == 0
"""


def outputs(rev: str, work: Path) -> Path:
    """Write the commit's outputs into `work`/<rev>/out and return that folder."""
    tree = work / rev / "src"
    out = work / rev / "out"
    out.mkdir(parents=True)
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
    try:
        env = dict(os.environ, PYTHONPATH=str(tree), MPLBACKEND="Agg")
        subprocess.run(
            [sys.executable, "-c", OUTPUTS, str(out)], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL
        )
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--out", type=Path, help="folder to keep the outputs in (default: a temporary one)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="bayes-lac-compare-"))
    a, b = outputs(args.before, work), outputs(args.after, work)
    same = True
    for name in FILES:
        equal = (a / name).read_bytes() == (b / name).read_bytes()
        same &= equal
        print(f"{name:15s} {'identical' if equal else 'DIFFERS'}")
    print(f"{args.before} and {args.after}: {'the same numbers' if same else 'different numbers'} ({work})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
