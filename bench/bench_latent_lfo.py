"""Leave-future-out check of the latent-state model (bayes_lac.model.latent) against pooled growth.

Usage: python bench/bench_latent_lfo.py ORIGINS [DRAWS [PRIORS [TREND_MEASURES [UASC [NATIONAL [TARGET_ACCEPT [COUNT_NOISE [START [TAILS]]]]]]]]]   e.g. 2016,2018,2020,2022 400
PRIORS: JSON overrides of bayes_lac.model.latent.LATENT_PRIORS, e.g. '{"damping": [2, 6]}' ('' for none).
TREND_MEASURES: the measures whose authorities have a local trend, e.g. children_in_need,child_protection,
or "all" (default: bayes_lac.model.latent_fit.DEFAULT_TREND_MEASURES, looked_after; the runs before
30 November's "local trend for looked-after children only" gave every measure one). UASC: "hold" (default: the count at the origin), "stochastic" (a path around it, bayes_lac.model.uasc) or
"pooled", how future UASC are drawn; "hold+stochastic" scores both on the same fits (the second as
model_stochastic_uasc).
NATIONAL: "drift" (default) or "damped", the design of the national path.
TARGET_ACCEPT: NUTS target acceptance (default 0.95; the runs of 30 November before it existed used nutpie's 0.8).
COUNT_NOISE: "poisson" (default) or "share" (looked-after children's share of the Poisson variance sampled).
START: where forecasts start (bayes_lac.model.latent.start_offsets): "state" (default), "published", or
measure names joined by ":" (those measures at the published count); several joined by "+" are
scored on the same fits and draws, the first as "model", the others as model_start_<start>.
TAILS: the tails of forecasts' shocks (bayes_lac.model.latent.TAILS): "normal" or "student" (default:
bayes_lac.model.latent.DEFAULT_TAILS, "student" since 2 December 2026); "normal+student" scores both on the
same fits, the second as model_tails_student.

Fits the national latent-state model once per origin on data up to the origin (one compiled
model for every origin), forecasts every authority 1-5 (and 8) years ahead and scores it with
the backtest machinery (bayes_lac.studies.backtest) beside the pooled-growth baseline on the same
cells. Prints the fit times, the convergence diagnostics per origin, coverage, PIT mean, CRPS and
the paired CRPS ratios. A measurement, not a test.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pandas as pd
from latent_forecaster import LatentForecaster

from bayes_lac.data.panel import load_panel
from bayes_lac.model.latent import DEFAULT_TAILS
from bayes_lac.model.latent_fit import DEFAULT_TARGET_ACCEPT, DEFAULT_TREND_MEASURES
from bayes_lac.studies.backtest import backtest, summary_tables
from bayes_lac.studies.baselines import PooledGrowth

origins = [int(o) for o in sys.argv[1].split(",")]
panel = load_panel()
lf = LatentForecaster(
    draws=int(sys.argv[2]) if len(sys.argv) > 2 else 500,
    tune=int(sys.argv[2]) if len(sys.argv) > 2 else 500,
    priors=json.loads(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None,
    trend_measures=(
        DEFAULT_TREND_MEASURES
        if len(sys.argv) <= 4 or not sys.argv[4]
        else None
        if sys.argv[4] == "all"
        else tuple(sys.argv[4].split(","))
    ),
    uasc=(sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else "hold").split("+")[0],
    national=sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else "drift",
    target_accept=float(sys.argv[7]) if len(sys.argv) > 7 and sys.argv[7] else DEFAULT_TARGET_ACCEPT,
    count_noise=sys.argv[8] if len(sys.argv) > 8 and sys.argv[8] else "poisson",
)
starts = (sys.argv[9] if len(sys.argv) > 9 and sys.argv[9] else "state").split("+")


def start_of(text):
    return text if text in ("state", "published") else tuple(text.split(":"))


lf.start = start_of(starts[0])
tails = (sys.argv[10] if len(sys.argv) > 10 and sys.argv[10] else DEFAULT_TAILS).split("+")
lf.tails = tails[0]
print(
    "priors:",
    lf.priors or "LATENT_PRIORS",
    "| local trend in:",
    lf.trend_measures or "every measure",
    "| UASC:",
    lf.uasc,
    "| count noise:",
    lf.count_noise,
    "| start:",
    " + ".join(starts),
    "| tails:",
    " + ".join(tails),
)
t0 = time.time()
second = []
if len(sys.argv) > 5 and "+" in sys.argv[5]:
    second = [
        LatentForecaster(name=f"model_{sys.argv[5].split('+')[1]}_uasc", uasc=sys.argv[5].split("+")[1], reuse=lf)
    ]
second += [
    LatentForecaster(name=f"model_start_{text.replace(':', '_')}", uasc=lf.uasc, start=start_of(text), reuse=lf)
    for text in starts[1:]
]
second += [
    LatentForecaster(name=f"model_tails_{text}", uasc=lf.uasc, start=lf.start, tails=text, reuse=lf)
    for text in tails[1:]
]
res = backtest(
    panel,
    [lf, *second, PooledGrowth()],
    origins,
    None,
    ["looked_after", "children_in_need", "child_protection"],
    "all",
    workers=1,
)
print("wall", time.time() - t0)
print(json.dumps(lf.timings, indent=0))
print(json.dumps(lf.diagnostics, indent=0))
tab = summary_tables(res, n_boot=500)
s = tab["summary"]
s = s[s.outcome == "latest"]
pd.set_option("display.width", 250)
print(
    s[["method", "measure", "horizon", "n_scored", "coverage_50", "coverage_90", "pit_mean", "crps"]].to_string(
        index=False
    )
)
r = tab["ratios"]
r = r[r.split == "all"]
print(r.to_string(index=False))
