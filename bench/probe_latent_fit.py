"""One national latent fit at one origin, with its timings, gate and a few posteriors (a probe).

Usage: python bench/probe_latent_fit.py NEIGHBOURS UNTIL [COUNT_NOISE [MEASURES]]
e.g. ``all 2016 share`` or ``all 2014 poisson looked_after``: Thurrock's comparison set (``all``:
every authority), data up to UNTIL laid on the grid to 2025 as the backtest lays them, seed
UNTIL as the backtest's, `LatentFitter`'s defaults otherwise. A measurement, not a test.
"""

import json
import sys
import time

import numpy as np

from bayes_lac.data.panel import load_panel
from bayes_lac.model import latent_fit as LF
from bayes_lac.model.data import prepare_data
from bayes_lac.model.latent_fit import on_grid

panel = load_panel()
nb = sys.argv[1]
until = int(sys.argv[2])
design = sys.argv[3] if len(sys.argv) > 3 else "poisson"
measures = sys.argv[4] if len(sys.argv) > 4 else "all"
kw = {} if measures == "all" else {"measures": tuple(measures.split(","))}
data = on_grid(prepare_data(panel, "E06000034", neighbours=nb, until=until, **kw), 2025)
t = time.time()
run = LF.LatentFitter(count_noise=design).fit(data, until=until, seed=until)
s = json.loads(run.attrs["sampler"])
d = json.loads(run.attrs["diagnostics"])
print("wall", round(time.time() - t, 1), "compile", s["compile_seconds"], "sample", s["sample_seconds"])
print(
    "converged",
    run.attrs["converged"],
    {k: d.get(k) for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "worst")},
)
post = run["posterior"]
for v in ("count_share", "level_share", "series_sd", "noise", "level_sd", "trend_sd", "damping"):
    if v in post:
        print(
            v,
            np.round(post[v].median(("chain", "draw")).values, 4),
            np.round(post[v].quantile([0.05, 0.95], ("chain", "draw")).values, 4).tolist(),
        )
