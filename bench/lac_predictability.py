"""How much better than pooled growth can a forecast of looked-after children be? A measurement.

Usage: python bench/lac_predictability.py [ORIGINS [MEASURE [OUT]]]   e.g. 2014-2022 looked_after

Issue #13 asks the model for a CRPS at most 0.90 times that of pooled empirical growth at
horizons 2-5 for looked-after children. This script scores, on the backtest's cells (every
authority, origins 2014-2022 by default, horizons 1-5, the backtest machinery of
`bayes_lac.studies.backtest`), simple forecasters that add one kind of information to pooled
growth, and one that is told the future:

* ``pooled_growth``: the baseline (`bayes_lac.studies.baselines.PooledGrowth`);
* ``growth_given_<features>``: pooled growth whose centre depends on what the authority looks
  like at the origin. For each horizon h, an ordinary least-squares regression of every
  h-year log change (both years <= origin, as in the pool) on features of the authority in
  the change's first year; the forecast is the fitted change at the origin's features plus a
  resampled residual. Features (each known at the origin):
  ``level``: its log rate per 10,000 children minus the mean over authorities that year;
  ``momentum``: its log change over the last year and the mean over the last three;
  ``flows``: (started - ceased) / children looked after, and started / children looked after;
  ``uasc``: the share of its looked-after children who are UASC;
  ``cpp``: log(child protection plans / children looked after), centred;
  ``all``: every feature above.
* ``oracle_national``: pooled growth moved so that its median equals the median h-year change
  over authorities that actually happened from the origin (it reads the outcomes: not a
  forecaster). It moves the centre only and keeps pooled growth's spread, so it is not an upper
  bound on what knowing the national path could add (such a forecaster could also be narrower).

Prints each method's coverage, PIT mean and CRPS, and its CRPS over pooled growth's on the
same cells with a 90 % bootstrap-over-origins interval.

A second part asks how UASC should enter a looked-after forecast (with MEASURE looked_after).
On the same origins and horizons it scores (fair CRPS, 90 % coverage, ratios with intervals over
origins, every authority with both counts published):

* UASC counts alone: pooled growth of the UASC column against the count held at the origin
  with pooled growth's spread centred on no change (``held``);
* looked-after totals: pooled growth of the total; pooled growth of children who are not UASC
  plus pooled growth of UASC (``split_pooled``); pooled growth of children who are not UASC
  plus UASC held at the origin's count (``split_held``), or plus UASC centred on that count
  with pooled growth's spread (``split_held_spread``: a stochastic UASC path, measured and not
  adopted; see models/README.md).

With OUT, writes both parts there.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.config import MEASURES
from bayes_lac.data.panel import load_panel, log_changes
from bayes_lac.files import write_text
from bayes_lac.studies.backtest import backtest, parse_years
from bayes_lac.studies.baselines import PooledGrowth, empty_draws, local_authorities, wide
from bayes_lac.studies.scoring import bootstrap_ratio, crps_ratios, fair_crps, summarise_backtest

FEATURES = {
    "level": ("level",),
    "momentum": ("change_1", "change_3"),
    "flows": ("net_flow", "start_rate"),
    "uasc": ("uasc_share",),
    "cpp": ("cpp_ratio",),
    "all": ("level", "change_1", "change_3", "net_flow", "start_rate", "uasc_share", "cpp_ratio"),
}
N_DRAWS = 4000
MIN_ROWS = 150


def feature_table(panel: pd.DataFrame, measure: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """log(y + 1) (authority x year) and each feature (authority x year) from the panel."""
    las = local_authorities(panel)
    panel = panel[panel["la_code"].astype(str).isin(las)]

    def w(column):
        return wide(panel, column) if column in panel.columns else None

    y = w(measure)
    years = range(int(y.columns.min()), int(y.columns.max()) + 1)
    y = y.reindex(columns=years)
    log_y = np.log1p(y)

    def aligned(frame):
        return frame.reindex(index=y.index, columns=years) if frame is not None else y * np.nan

    pop = aligned(w("population_0_17"))
    rate = np.log((y + 1) / pop)
    started, ceased, uasc = aligned(w("started")), aligned(w("ceased")), aligned(w("uasc"))
    cpp = np.log1p(aligned(w("child_protection")))
    stock = y.where(y > 0)
    f = {
        "level": rate.sub(rate.mean(axis=0), axis=1),
        "change_1": log_y.diff(axis=1),
        "change_3": log_y.diff(3, axis=1) / 3,
        "net_flow": (started - ceased) / stock,
        "start_rate": started / stock,
        "uasc_share": uasc / stock,
        "cpp_ratio": (cpp - log_y).sub((cpp - log_y).mean(axis=0), axis=1),
    }
    return log_y, f


@dataclass(frozen=True)
class GrowthGiven:
    """Pooled growth whose centre is regressed on features at the change's start (see module)."""

    features: str
    measure_name: str = "looked_after"
    n_draws: int = N_DRAWS

    @property
    def name(self) -> str:
        return f"growth_given_{self.features}"

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        out = empty_draws(measures, las, horizons, self.n_draws)
        log_y, feats = feature_table(panel, self.measure_name)
        names = FEATURES[self.features]
        i = list(measures).index(self.measure_name)
        rng = np.random.default_rng([int(seed), int(origin), MEASURES.index(self.measure_name), len(names)])
        years = [int(c) for c in log_y.columns]
        for k, h in enumerate(horizons):
            rows_x, rows_d = [], []
            for t in years:
                if t + h > origin:
                    break
                d = (log_y[t + h] - log_y[t]).to_numpy()
                x = np.column_stack([feats[n][t].to_numpy(float) for n in names])
                ok = np.isfinite(d) & np.isfinite(x).all(axis=1)
                rows_x.append(x[ok])
                rows_d.append(d[ok])
            if sum(len(r) for r in rows_d) < MIN_ROWS:
                continue  # too few complete rows: this cell is missing (its pooled-growth pair too)
            x = np.column_stack([np.ones(sum(len(r) for r in rows_d)), np.concatenate(rows_x)])
            d = np.concatenate(rows_d)
            beta, *_ = np.linalg.lstsq(x, d, rcond=None)
            resid = d - x @ beta
            at = np.column_stack([feats[n][origin].reindex(las).to_numpy(float) for n in names])
            base = log_y[origin].reindex(las).to_numpy(float)
            ok = np.isfinite(base) & np.isfinite(at).all(axis=1)
            centre = np.column_stack([np.ones(len(las)), np.nan_to_num(at)]) @ beta
            draws = base[:, None] + centre[:, None] + rng.choice(resid, (len(las), self.n_draws))
            out.values[i, ok, k] = np.expm1(draws[ok])
        return out


@dataclass(frozen=True)
class OracleNational:
    """Pooled growth centred on the median h-year change that actually happened (reads outcomes)."""

    full_panel: pd.DataFrame
    measure_name: str = "looked_after"
    n_draws: int = N_DRAWS
    name: str = "oracle_national"

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        out = empty_draws(measures, las, horizons, self.n_draws)
        log_y, _ = feature_table(self.full_panel, self.measure_name)
        seen, _ = feature_table(panel, self.measure_name)
        i = list(measures).index(self.measure_name)
        rng = np.random.default_rng([int(seed), int(origin), 99])
        base = log_y[origin].reindex(las).to_numpy(float)
        for k, h in enumerate(horizons):
            if origin + h not in log_y.columns:
                continue
            pool = PooledGrowth.changes(np.expm1(seen), int(origin), int(h))
            if len(pool) < 30:
                continue
            actual = float(np.nanmedian((log_y[origin + h] - log_y[origin]).to_numpy()))
            draws = base[:, None] + (actual - np.median(pool)) + rng.choice(pool, (len(las), self.n_draws))
            ok = np.isfinite(base)
            out.values[i, ok, k] = np.expm1(draws[ok])
        return out


def uasc_part(panel: pd.DataFrame, origins: list[int], horizons=range(1, 6)) -> str:
    """Scores of the UASC and looked-after-total forecasters of the module docstring."""
    las = local_authorities(panel)
    panel = panel[panel["la_code"].astype(str).isin(las)]
    total = wide(panel, "looked_after").reindex(las)
    uasc = wide(panel, "uasc").reindex(index=las, columns=total.columns)
    years = [int(c) for c in total.columns]
    t_all, u_all = total.to_numpy(float), uasc.to_numpy(float)
    n_all = t_all - u_all
    counts = {"total": total, "uasc": uasc, "not_uasc": total - uasc}
    rng = np.random.default_rng(0)
    spread_rng = np.random.default_rng(1)
    rows = []
    for origin in origins:
        k = years.index(origin)
        for h in horizons:
            if origin + h > years[-1]:
                continue
            pools = {name: log_changes(v, origin, h) for name, v in counts.items()}
            if min(len(v) for v in pools.values()) < 30:
                continue
            ok = np.isfinite(t_all[:, k]) & np.isfinite(u_all[:, k]) & np.isfinite(t_all[:, k + h])
            ok &= np.isfinite(u_all[:, k + h])
            n = int(ok.sum())

            def grow(name, values, centre=False, pools=pools, ok=ok, k=k, n=n, rng=rng):
                pool = pools[name] - (np.median(pools[name]) if centre else 0.0)
                return (values[ok, k][:, None] + 1) * np.exp(rng.choice(pool, (n, N_DRAWS))) - 1

            forecasts = {
                ("uasc", "pooled_growth"): grow("uasc", u_all),
                ("uasc", "held"): grow("uasc", u_all, centre=True),
                ("looked_after", "pooled_growth"): grow("total", t_all),
                ("looked_after", "split_pooled"): grow("not_uasc", n_all) + grow("uasc", u_all),
                ("looked_after", "split_held"): grow("not_uasc", n_all) + u_all[ok, k][:, None],
                # its own random numbers, so the rows above reproduce those made before it was added
                ("looked_after", "split_held_spread"): grow("not_uasc", n_all, rng=spread_rng)
                + np.maximum(grow("uasc", u_all, centre=True, rng=spread_rng), 0.0),
            }
            for (what, method), draws in forecasts.items():
                observed = (u_all if what == "uasc" else t_all)[ok, k + h]
                low, high = np.quantile(draws, [0.05, 0.95], axis=1)
                rows.append(
                    {
                        "what": what,
                        "method": method,
                        "origin": origin,
                        "horizon": h,
                        "n": n,
                        "crps_sum": float(fair_crps(draws, observed).sum()),
                        "covered": int(((observed >= low) & (observed <= high)).sum()),
                    }
                )
    cells = pd.DataFrame(rows)
    out = []
    for (what, method, h), g in cells.groupby(["what", "method", "horizon"]):
        ref = cells[(cells["what"] == what) & (cells["method"] == "pooled_growth") & (cells["horizon"] == h)]
        ref = ref.set_index("origin").loc[g["origin"], "crps_sum"].to_numpy()
        ratio, low, high = bootstrap_ratio(g["crps_sum"].to_numpy(), ref, n_boot=2000)
        out.append(
            {
                "what": what,
                "method": method,
                "horizon": h,
                "cells": int(g["n"].sum()),
                "coverage_90": g["covered"].sum() / g["n"].sum(),
                "crps": g["crps_sum"].sum() / g["n"].sum(),
                "ratio_to_pooled": ratio,
                "lower": low,
                "upper": high,
            }
        )
    return pd.DataFrame(out).to_string(index=False)


def main(argv: list[str]) -> None:
    origins = parse_years(argv[0] if argv else "2014-2022", "origins")
    measure = argv[1] if len(argv) > 1 else "looked_after"
    panel = load_panel()
    methods = [PooledGrowth(n_draws=N_DRAWS)]
    methods += [GrowthGiven(name, measure) for name in FEATURES]
    methods.append(OracleNational(panel, measure))
    start = time.perf_counter()
    result = backtest(panel, methods, origins, list(range(1, 6)), [measure], "all", workers=1)
    seconds = time.perf_counter() - start
    table = result.table
    summary = summarise_backtest(table)[["method", "horizon", "n_scored", "coverage_90", "pit_mean", "crps"]]
    # pooled growth as the reference: ratio = method / pooled growth (below 1: better than it)
    ratios = crps_ratios(table, reference="pooled_growth", n_boot=2000)
    ratios = ratios.assign(
        method=ratios["baseline"],
        ratio=1 / ratios["ratio"],
        lower=1 / ratios["upper"],
        upper=1 / ratios["lower"],
    )[["method", "horizon", "n_pairs", "n_origins", "ratio", "lower", "upper"]]
    with pd.option_context("display.width", 200, "display.precision", 3, "display.max_rows", 200):
        text = (
            f"measure {measure}; origins {origins[0]}-{origins[-1]}; horizons 1-5; every authority; "
            f"{seconds:.0f} s\n\nScores (coverage of the 90 % interval, PIT mean, mean fair CRPS):\n"
            f"{summary.to_string(index=False)}\n\n"
            "CRPS of each method / CRPS of pooled growth on the same cells (90 % bootstrap over origins):\n"
            f"{ratios.to_string(index=False)}\n"
        )
    if measure == "looked_after":
        with pd.option_context("display.precision", 3):
            text += (
                "\nUASC in a looked-after forecast (CRPS over pooled growth of the same column, "
                "90 % bootstrap over origins):\n" + uasc_part(panel, [o for o in origins if o < 2025]) + "\n"
            )
    print(text)
    if len(argv) > 2:
        write_text(Path(argv[2]), text)


if __name__ == "__main__":
    main(sys.argv[1:])
