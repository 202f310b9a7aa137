"""Cold-cache cost of one test-sized fit, by NUTS implementation.

The test suite's fits are dominated by compiling, not sampling: pymc's own sampler compiles
the model's log density and gradient to C (under a lock per compile folder), then the log
likelihood and log prior again. This times the recovery test's fit (8 simulated authorities x
13 years, 2 chains x 400 + 400) from an empty compile folder for one sampler:

    rm -rf /tmp/cc && PYTENSOR_FLAGS=blas__ldflags=,base_compiledir=/tmp/cc \\
        python bench/bench_cold_sampler.py pymc      # then again with numpyro

It prints the wall time of the fit, the part spent in the sampler call (compile + sampling),
the sampling alone, and building the run (the log densities). Results: bench/results/cold_sampler.txt.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.model.fit import LACModel  # noqa: E402
from tests.simulated import recovery_panel  # noqa: E402


def main(sampler: str) -> None:
    panel, _, codes = recovery_panel()
    start = time.perf_counter()
    model = LACModel(codes[0], neighbours=codes[1:])
    run = model.fit(panel, draws=400, tune=400, chains=2, cores=1, seed=4, progressbar=False, sampler=sampler)
    wall = time.perf_counter() - start
    t = model.timing_
    diag = json.loads(run.attrs["diagnostics"])
    print(
        f"{sampler}: fit {wall:.0f} s; sampler call {t['sample_call_s']:.0f} s "
        f"(sampling {t.get('sampling_s', float('nan')):.0f} s); run assembly {t['assemble_s']:.1f} s; "
        f"max R-hat {diag['max_rhat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "pymc")
