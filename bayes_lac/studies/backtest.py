"""Backtests: forecast from past origins, score against what happened, and check calibration.

For each origin year ``T`` the national model (every authority in the panel as the comparison
set, ``neighbours="all"``) is fitted on the data up to and including ``T`` and forecast
``h = 1..H`` years ahead under the trend scenario; the forecasts are compared with the counts
DfE later published for ``T + h``. Simple baselines are scored on the same forecasts.

Scores (per forecast, then averaged by method, measure and horizon)
-------------------------------------------------------------------
* coverage: whether the published count lies inside the equal-tailed 50 %, 80 % and 90 %
  predictive intervals (bounds included; sample quantiles). Well calibrated intervals cover
  the published count in about 50 %, 80 % and 90 % of forecasts.
* CRPS: the continuous ranked probability score of the predictive sample, in children (lower
  is better; for a point forecast it equals the absolute error). Computed by ``scoringrules``:
  the "fair" energy form E|X - y| - E|X - X'| / 2 with the unbiased pair term (so methods
  with different numbers of draws are scored alike), evaluated through its identical
  probability-weighted-moment form (``estimator="pwm"``), which sorts the draws instead of
  forming all pairs and so needs no n_draws x n_draws memory.
* MAE: absolute error of the predictive median, in children.
* PIT: the probability integral transform, P(X < y) + U * P(X = y) with U uniform (the
  randomised PIT for counts; U is seeded). Uniform on [0, 1] for a calibrated forecast.

Baselines (their predictive distributions, defined from each authority's own history)
-------------------------------------------------------------------------------------
Each baseline is a point forecast plus a spread learnt only from the authority's published
counts up to the origin (never from later years), drawn as `BASELINE_DRAWS` samples:

* ``last_value`` (last value carried forward): the count in ``T``. Spread: a random walk,
  Normal with sd = sigma * sqrt(h), sigma the root mean square of the authority's
  year-to-year changes up to ``T``. Needs the count in ``T`` and at least 2 changes.
* ``linear_trend``: ordinary least squares line through the counts of the last 5 years
  ``T-4..T`` (the published ones; at least 4), extrapolated. Spread: the textbook OLS
  prediction interval, Student-t with n - 2 degrees of freedom and scale
  s * sqrt(1 + 1/n + (x - mean x)^2 / Sxx).
* ``constant_rate`` (the 2017 report's population-growth method): the rate per 10,000
  children in ``T`` times the projected child population. The population is projected as the
  model's forecasts project it (`bayes_lac.data.population.project_population`: growth drawn from
  the last five annual growth rates up to ``T``); the rate is a random walk on the log scale,
  sd = sigma * sqrt(h), sigma the root mean square of the yearly changes of the log rate
  (years with a count of zero have no log rate and do not enter sigma).

The Normal and Student-t baselines can put some mass below zero for small counts; they are
scored as they are (no clipping). Where a baseline cannot be formed (e.g. no count in ``T``)
its row is kept with empty scores and counted in the summary's ``n_missing``; so are the
model's rows for authorities not in an origin's fit (created later) and forecasts whose
published count is missing (e.g. an authority abolished before ``T + h``). Forecasts of years
after the last published year are left out, with a note.

The published count is the panel's ``looked_after`` (``children_in_need``,
``child_protection``) column, the figure the model is fitted on: looked_after includes UASC.

Outputs
-------
`backtest` returns one row per forecast (`FORECAST_COLUMNS`); `summarise_backtest`,
`coverage_table`, `crps_ratios`, `pit_histogram_table` and `pooled_coverage` turn it into the
tables the report quotes, and `plot_calibration` draws coverage by horizon and the PIT
histogram.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_lac.config import MEASURES, RATE_PER, THURROCK_CODE
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError
from bayes_lac.summaries import Finding

#: Nominal probabilities of the predictive intervals scored.
LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)
#: Samples drawn from each baseline's predictive distribution.
BASELINE_DRAWS: int = 4000
#: Baseline methods, in the order they appear in tables.
BASELINES: tuple[str, ...] = ("last_value", "linear_trend", "constant_rate")
MODEL_METHOD = "model"
#: Years of history the linear-trend baseline fits, and the fewest published it needs.
TREND_WINDOW, TREND_MIN_POINTS = 5, 4
#: Default sampler settings of the backtest fits (per origin): enough for interval ends.
DEFAULT_DRAWS, DEFAULT_TUNE, DEFAULT_CHAINS = 500, 500, 2
#: Targets the report states (not tuned to): 90 % coverage within this range at every
#: horizon, and a model CRPS below every baseline from this horizon on.
COVERAGE_90_TARGET: tuple[float, float] = (0.85, 0.95)
CRPS_TARGET_FROM_HORIZON: int = 2


def _level_name(level: float) -> str:
    return f"{round(100 * level)}"


#: Columns of the per-forecast table, in order.
FORECAST_COLUMNS: tuple[str, ...] = (
    "la_code",
    "measure",
    "origin",
    "horizon",
    "year",
    "observed",
    "median",
    *[f"{side}_{_level_name(level)}" for level in LEVELS for side in ("lower", "upper")],
    "pit",
    "crps",
    "method",
)


# --------------------------------------------------------------------------------------
# Scoring


def score_samples(samples: np.ndarray, observed: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Score predictive samples against observed values.

    Parameters
    ----------
    samples
        Array (n_forecasts, n_draws) of predictive draws (children). A row of all-NaN
        samples means "no forecast" and gets NaN scores.
    observed
        Array (n_forecasts,) of what happened (children); NaN where not published (NaN
        scores, interval bounds still given).
    seed
        Seed of the uniform draws of the randomised PIT.

    Returns
    -------
    DataFrame with ``median``, ``lower_50``, ``upper_50``, ..., ``upper_90`` (children),
    ``pit`` (in [0, 1]), ``crps`` (children), one row per forecast.
    """
    import scoringrules

    samples = np.asarray(samples, float)
    observed = np.asarray(observed, float)
    if samples.ndim != 2 or samples.shape[0] != observed.shape[0]:
        raise ValueError(
            f"samples must be (n_forecasts, n_draws) matching observed {observed.shape}; got {samples.shape}"
        )
    n = samples.shape[0]
    have = ~np.isnan(samples).any(axis=1)
    out: dict[str, np.ndarray] = {"median": np.full(n, np.nan)}
    quantiles = [0.5] + [q for level in LEVELS for q in ((1 - level) / 2, (1 + level) / 2)]
    if have.any():
        qs = np.quantile(samples[have], quantiles, axis=1)
        out["median"][have] = qs[0]
    for k, level in enumerate(LEVELS):
        for j, side in enumerate(("lower", "upper")):
            column = np.full(n, np.nan)
            if have.any():
                column[have] = qs[1 + 2 * k + j]
            out[f"{side}_{_level_name(level)}"] = column
    scored = have & ~np.isnan(observed)
    pit = np.full(n, np.nan)
    crps = np.full(n, np.nan)
    if scored.any():
        x, y = samples[scored], observed[scored][:, None]
        u = np.random.default_rng(seed).uniform(size=int(scored.sum()))
        pit[scored] = (x < y).mean(axis=1) + u * (x == y).mean(axis=1)
        crps[scored] = scoringrules.crps_ensemble(observed[scored], x, estimator="pwm", backend="numpy")
    out["pit"] = pit
    out["crps"] = crps
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------
# Data helpers


def _series(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """Wide (la_code x year) float table of one panel column; NaN where not available."""
    values = panel[column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    frame = pd.DataFrame({"la_code": panel["la_code"].astype(str), "year": panel["year"].astype(int), "v": values})
    return frame.pivot_table(index="la_code", columns="year", values="v", aggfunc="first", dropna=False)


def local_authorities(panel: pd.DataFrame) -> list[str]:
    """ONS codes of the authorities the national model fits (as `bayes_lac.model.comparison_set`
    with ``neighbours="all"``: E06/E08/E09/E10 codes at local-authority level)."""
    from bayes_lac.model.data import LA_PREFIXES

    is_la = panel["la_code"].astype(str).str.startswith(LA_PREFIXES)
    if "geographic_level" in panel.columns:
        is_la &= panel["geographic_level"].astype(str).str.lower().eq("local authority")
    return sorted(set(panel.loc[is_la, "la_code"].astype(str)))


def parse_years(text: str, what: str) -> list[int]:
    """'2014-2022' or '2014,2016,2018' (or a mix) as a sorted list of integers."""
    years: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            a, b = int(match[1]), int(match[2])
            if b < a:
                raise BayesLacError(f"--{what}: range {part!r} runs backwards; write it as {b}-{a}")
            years.update(range(a, b + 1))
        elif re.fullmatch(r"\d+", part):
            years.add(int(part))
        else:
            raise BayesLacError(f"--{what}: expected e.g. 2014-2022 or 2014,2016; got {text!r}")
    return sorted(years)


# --------------------------------------------------------------------------------------
# Baselines


def _rms(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.sqrt(np.mean(x**2))) if len(x) else np.nan


def _consecutive_changes(history: pd.Series) -> np.ndarray:
    """Year-to-year changes between consecutive published years only (gaps are not bridged)."""
    h = history.sort_index()
    if len(h) < 2:
        return np.array([])
    diff = h.diff()
    consecutive = np.diff(np.asarray(h.index, int), prepend=h.index[0] - 2) == 1
    return diff[consecutive].dropna().to_numpy(float)


def baseline_samples(
    counts: pd.Series,
    population: pd.Series,
    origin: int,
    horizons: Sequence[int],
    method: str,
    rng: np.random.Generator,
    n_draws: int = BASELINE_DRAWS,
) -> np.ndarray:
    """Predictive draws of one baseline for one authority and measure.

    Parameters
    ----------
    counts, population
        The authority's published counts and children aged 0-17, indexed by year; only years
        up to `origin` are used.
    origin
        Last year of data the forecast may use.
    horizons
        Years ahead.
    method
        One of `BASELINES` (see the module docstring for their definitions).

    Returns
    -------
    Array (len(horizons), n_draws) of children; all NaN for a horizon the baseline cannot
    forecast from this history.
    """
    horizons = np.asarray(list(horizons), int)
    out = np.full((len(horizons), n_draws), np.nan)
    y = counts[counts.index <= origin].dropna()
    if origin not in y.index:
        return out
    last = float(y.loc[origin])
    z = rng.standard_normal((len(horizons), n_draws))
    if method == "last_value":
        changes = _consecutive_changes(y)
        if len(changes) < 2:
            return out
        sigma = _rms(changes)
        return last + sigma * np.sqrt(horizons)[:, None] * z
    if method == "linear_trend":
        window = y[y.index > origin - TREND_WINDOW]
        n = len(window)
        if n < TREND_MIN_POINTS:
            return out
        x = np.asarray(window.index, float)
        v = window.to_numpy(float)
        slope, intercept = np.polyfit(x, v, 1)
        resid = v - (intercept + slope * x)
        s = np.sqrt(np.sum(resid**2) / (n - 2))
        x0 = origin + horizons.astype(float)
        scale = s * np.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
        t = rng.standard_t(n - 2, size=(len(horizons), n_draws))
        return (intercept + slope * x0)[:, None] + scale[:, None] * t
    if method == "constant_rate":
        from bayes_lac.data.population import project_population

        pop = population[population.index <= origin].dropna()
        if origin not in pop.index or len(pop) < 2:
            return out
        rate = (y / pop * RATE_PER).dropna()
        log_changes = _consecutive_changes(np.log(rate[rate > 0]))
        if len(log_changes) < 2:
            return out
        sigma = _rms(log_changes)
        projected, _ = project_population(pop, int(horizons.max()), n_draws, rng)
        future_pop = projected[:, horizons - 1].T  # (horizon, draw)
        last_rate = float(rate.loc[origin])
        return last_rate * np.exp(sigma * np.sqrt(horizons)[:, None] * z) * future_pop / RATE_PER
    raise ValueError(f"unknown baseline {method!r}; expected one of {', '.join(BASELINES)}")


def baseline_forecasts(
    panel: pd.DataFrame,
    origin: int,
    horizons: Sequence[int],
    measures: Sequence[str],
    las: Sequence[str],
    methods: Sequence[str] = BASELINES,
    seed: int = 0,
    n_draws: int = BASELINE_DRAWS,
) -> pd.DataFrame:
    """Scored baseline forecasts from one origin, in the layout of `FORECAST_COLUMNS`."""
    population = _series(panel, "population_0_17")
    frames = []
    for measure in measures:
        counts = _series(panel, measure)
        for method in methods:
            rng = np.random.default_rng([seed, origin, MEASURES.index(measure), BASELINES.index(method)])
            keys, blocks = [], []
            for la in las:
                if la not in counts.index:
                    continue
                blocks.append(
                    baseline_samples(counts.loc[la], population.loc[la], origin, horizons, method, rng, n_draws)
                )
                keys.extend((la, h) for h in horizons)
            if not blocks:
                continue
            frames.append(_score_block(keys, np.vstack(blocks), counts, measure, origin, method, seed))
    return _concat(frames)


def _score_block(keys, samples, counts: pd.DataFrame, measure, origin, method, seed) -> pd.DataFrame:
    index = pd.DataFrame(keys, columns=["la_code", "horizon"])
    index["measure"] = measure
    index["origin"] = origin
    index["year"] = origin + index["horizon"]
    index["observed"] = [
        counts.at[la, year] if (la in counts.index and year in counts.columns) else np.nan
        for la, year in zip(index["la_code"], index["year"])
    ]
    scores = score_samples(samples, index["observed"].to_numpy(float), seed=seed + origin)
    table = pd.concat([index, scores], axis=1)
    table["method"] = method
    return table[list(FORECAST_COLUMNS)]


def _concat(frames) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: [] for c in FORECAST_COLUMNS})
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------
# Summaries


def _select(table: pd.DataFrame, method: str | None = None, la: str | None = None, measure: str | None = None) -> pd.DataFrame:
    out = table
    if method is not None:
        out = out[out["method"] == method]
    if la is not None:
        if la not in set(table["la_code"]):
            raise UnknownAuthorityError(f"{la} has no forecasts in this backtest table")
        out = out[out["la_code"] == la]
    if measure is not None:
        out = out[out["measure"] == measure]
    return out


def _covered(table: pd.DataFrame, level: float) -> pd.Series:
    name = _level_name(level)
    inside = (table[f"lower_{name}"] <= table["observed"]) & (table["observed"] <= table[f"upper_{name}"])
    return inside.where(table["crps"].notna())


def summarise_backtest(table: pd.DataFrame, la: str | None = None) -> pd.DataFrame:
    """Scores by method, measure and horizon, pooled over authorities and origins.

    Parameters
    ----------
    table
        The per-forecast table of `backtest` (columns `FORECAST_COLUMNS`).
    la
        Only this authority's forecasts (ONS code); None pools every authority.

    Returns
    -------
    DataFrame with ``method, measure, horizon, n_forecasts`` (rows), ``n_scored`` (with a
    forecast and a published count), ``n_missing`` (the rest), ``coverage_50``,
    ``coverage_80``, ``coverage_90`` (share of scored forecasts whose interval holds the
    published count), ``crps`` and ``mae`` (mean, children), ``pit_mean`` (0.5 if unbiased).
    """
    sub = _select(table, la=la).copy()
    for level in LEVELS:
        sub[f"coverage_{_level_name(level)}"] = _covered(sub, level).astype(float)
    sub["abs_error"] = (sub["median"] - sub["observed"]).abs().where(sub["crps"].notna())
    grouped = sub.groupby(["method", "measure", "horizon"], sort=False)
    summary = grouped.agg(
        n_forecasts=("crps", "size"),
        n_scored=("crps", "count"),
        **{f"coverage_{_level_name(v)}": (f"coverage_{_level_name(v)}", "mean") for v in LEVELS},
        crps=("crps", "mean"),
        mae=("abs_error", "mean"),
        pit_mean=("pit", "mean"),
    ).reset_index()
    summary["n_missing"] = summary["n_forecasts"] - summary["n_scored"]
    order = {m: i for i, m in enumerate((MODEL_METHOD, *BASELINES))}
    summary = summary.sort_values(
        ["measure", "method", "horizon"], key=lambda s: s.map(order).fillna(99) if s.name == "method" else s
    )
    columns = ["method", "measure", "horizon", "n_forecasts", "n_scored", "n_missing"]
    columns += [f"coverage_{_level_name(v)}" for v in LEVELS] + ["crps", "mae", "pit_mean"]
    return summary[columns].reset_index(drop=True)


def crps_ratios(table: pd.DataFrame, la: str | None = None) -> pd.DataFrame:
    """Model CRPS over each baseline's CRPS, by measure and horizon, on the same forecasts.

    Only forecasts (authority, measure, origin, horizon) that both the model and the baseline
    scored enter a ratio, so a baseline that could not forecast an authority does not shift it.

    Returns
    -------
    DataFrame with ``measure, horizon, baseline, n_pairs, crps_model, crps_baseline``
    (mean CRPS, children) and ``ratio`` (below 1: the model forecasts better).
    """
    sub = _select(table, la=la)
    keys = ["la_code", "measure", "origin", "horizon"]
    model = sub[sub["method"] == MODEL_METHOD][keys + ["crps"]].dropna()
    rows = []
    for baseline in [b for b in pd.unique(sub["method"]) if b != MODEL_METHOD]:
        base = sub[sub["method"] == baseline][keys + ["crps"]].dropna()
        pairs = model.merge(base, on=keys, suffixes=("_model", "_baseline"))
        for (measure, horizon), g in pairs.groupby(["measure", "horizon"]):
            rows.append(
                {
                    "measure": measure,
                    "horizon": int(horizon),
                    "baseline": baseline,
                    "n_pairs": len(g),
                    "crps_model": g["crps_model"].mean(),
                    "crps_baseline": g["crps_baseline"].mean(),
                }
            )
    out = pd.DataFrame(rows, columns=["measure", "horizon", "baseline", "n_pairs", "crps_model", "crps_baseline"])
    out["ratio"] = out["crps_model"] / out["crps_baseline"]
    return out.sort_values(["measure", "baseline", "horizon"]).reset_index(drop=True)


def coverage_table(table: pd.DataFrame, method: str = MODEL_METHOD, la: str | None = None) -> pd.DataFrame:
    """Empirical coverage by measure, horizon and nominal level: the numbers `plot_coverage` draws.

    Returns
    -------
    DataFrame with ``measure, horizon, nominal`` (0.5, 0.8, 0.9), ``coverage`` (share of
    scored forecasts inside the interval) and ``n`` (scored forecasts).
    """
    sub = _select(table, method=method, la=la)
    rows = []
    for (measure, horizon), g in sub.groupby(["measure", "horizon"]):
        for level in LEVELS:
            inside = _covered(g, level).dropna()
            rows.append(
                {
                    "measure": measure,
                    "horizon": int(horizon),
                    "nominal": level,
                    "coverage": float(inside.mean()) if len(inside) else np.nan,
                    "n": int(len(inside)),
                }
            )
    return pd.DataFrame(rows, columns=["measure", "horizon", "nominal", "coverage", "n"])


def pooled_coverage(table: pd.DataFrame, method: str = MODEL_METHOD, la: str | None = None) -> pd.DataFrame:
    """Empirical coverage of the 50 %, 80 % and 90 % intervals pooled over every horizon.

    The figure a model card quotes ("the 90 % intervals held the published count in X % of
    N backtest forecasts"). Pooled over authorities (or for `la`), origins and horizons.

    Returns
    -------
    DataFrame with ``measure, nominal, coverage, n, origins, horizons`` (the last two as
    text, e.g. "2014-2022" and "1-5").
    """
    sub = _select(table, method=method, la=la)
    rows = []
    for measure, g in sub.groupby("measure"):
        for level in LEVELS:
            inside = _covered(g, level).dropna()
            rows.append(
                {
                    "measure": measure,
                    "nominal": level,
                    "coverage": float(inside.mean()) if len(inside) else np.nan,
                    "n": int(len(inside)),
                    "origins": _span(g["origin"]),
                    "horizons": _span(g["horizon"]),
                }
            )
    return pd.DataFrame(rows, columns=["measure", "nominal", "coverage", "n", "origins", "horizons"])


def _span(values: pd.Series) -> str:
    v = sorted(set(int(x) for x in values))
    if not v:
        return ""
    if v == list(range(v[0], v[-1] + 1)):
        return f"{v[0]}-{v[-1]}" if len(v) > 1 else str(v[0])
    return ",".join(str(x) for x in v)


def pit_histogram_table(
    table: pd.DataFrame,
    method: str = MODEL_METHOD,
    la: str | None = None,
    measure: str | None = None,
    bins: int = 10,
) -> pd.DataFrame:
    """PIT histogram counts: the numbers `plot_pit` draws.

    Returns
    -------
    DataFrame with ``bin_lower, bin_upper, count, share`` and ``expected_share`` (1 / bins,
    what a calibrated forecast gives). A U shape means intervals too narrow; a hump, too
    wide; a slope, biased forecasts.
    """
    pit = _select(table, method=method, la=la, measure=measure)["pit"].dropna().to_numpy(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(pit, bins=edges)
    total = counts.sum()
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "count": counts,
            "share": counts / total if total else np.full(bins, np.nan),
            "expected_share": np.full(bins, 1.0 / bins),
        }
    )


# --------------------------------------------------------------------------------------
# Charts


def plot_coverage(table: pd.DataFrame, *, method: str = MODEL_METHOD, la: str | None = None, measure: str | None = None, ax=None):
    """Empirical coverage by horizon against the nominal level (dashed). Table twin: `coverage_table`."""
    from bayes_lac.style import get_axes, series_style

    fig, ax = get_axes(ax)
    cov = coverage_table(table, method=method, la=la)
    if measure is not None:
        cov = cov[cov["measure"] == measure]
    for i, ((m, level), g) in enumerate(cov.groupby(["measure", "nominal"])):
        style = series_style(i)
        label = f"{_level_name(level)}% interval" + (f" ({m})" if cov["measure"].nunique() > 1 else "")
        ax.plot(g["horizon"], g["coverage"], label=label, **style)
        ax.axhline(level, color=style["color"], linestyle=":", linewidth=1)
    ax.set_xlabel("Years ahead (horizon)")
    ax.set_ylabel("Share of published counts inside the interval")
    ax.set_ylim(0, 1)
    ax.set_xticks(sorted(cov["horizon"].unique()))
    ax.set_title("Coverage of predictive intervals (dotted: nominal)")
    ax.legend(frameon=False)
    return fig


def plot_pit(table: pd.DataFrame, *, method: str = MODEL_METHOD, la: str | None = None, measure: str | None = None, bins: int = 10, ax=None):
    """Histogram of PIT values with the uniform line a calibrated forecast gives. Table twin: `pit_histogram_table`."""
    from bayes_lac.style import PALETTE, get_axes

    fig, ax = get_axes(ax)
    hist = pit_histogram_table(table, method=method, la=la, measure=measure, bins=bins)
    ax.bar(hist["bin_lower"], hist["share"], width=hist["bin_upper"] - hist["bin_lower"], align="edge",
           color=PALETTE[2], edgecolor=PALETTE[0], label="backtest forecasts")
    ax.axhline(1.0 / bins, color=PALETTE[0], linestyle="--", label="calibrated")
    ax.set_xlabel("PIT (where the published count fell in the predictive distribution)")
    ax.set_ylabel("Share of forecasts")
    ax.set_xlim(0, 1)
    ax.set_title("PIT histogram")
    ax.legend(frameon=False)
    return fig


def plot_calibration(table: pd.DataFrame, *, method: str = MODEL_METHOD, la: str | None = None, measure: str | None = None, ax=None):
    """Coverage by horizon (left) and PIT histogram (right).

    `ax` may be a pair of axes; table twins: `coverage_table` and `pit_histogram_table`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    else:
        fig = ax[0].figure
    plot_coverage(table, method=method, la=la, measure=measure, ax=ax[0])
    plot_pit(table, method=method, la=la, measure=measure, ax=ax[1])
    return fig


# --------------------------------------------------------------------------------------
# The model's forecasts from one origin (a worker task)


def model_origin_forecasts(task: dict) -> dict:
    """Worker task: fit the national model up to one origin and score its forecasts.

    `task` holds ``panel`` (the whole panel: later years are used only as the observed
    outcomes), ``origin``, ``horizons``, ``measures``, ``las``, ``target_la`` (any authority
    in the panel; the national model needs one), ``priors``, ``sampler`` (settings for
    `LACModel.fit`), ``cores`` and ``seed``.

    Returns a dict with ``table`` (scored rows, method ``"model"``), ``fit_seconds``,
    ``forecast_seconds``, ``converged``, ``problems`` (diagnostic messages) and ``notes``.
    """
    from bayes_lac.analysis.forecast import forecast
    from bayes_lac.model.fit import LACModel

    origin, horizons = int(task["origin"]), list(task["horizons"])
    panel = task["panel"]
    start = time.perf_counter()
    model = LACModel(task["target_la"], neighbours="all", until=origin, priors=task["priors"], measures=task["measures"])
    # log_likelihood and log_prior are not needed to forecast; leaving them out saves two compilations
    run = model.fit(panel, progressbar=False, cores=task["cores"], log_density=False, **task["sampler"])
    fit_seconds = time.perf_counter() - start
    last = int(run["posterior"]["year_effect"]["year"].max())
    if last != origin:
        raise PanelError(f"backtest origin {origin}: the panel's latest year up to {origin} is {last}; expected data for {origin}")
    start = time.perf_counter()
    in_run = set(str(c) for c in run["constant_data"]["la"].values)
    notes = []
    absent = [la for la in task["las"] if la not in in_run]
    if absent:
        notes.append(f"origin {origin}: {len(absent)} authorities not in the fitted set (no forecast): {', '.join(absent)}")
    years = [origin + h for h in horizons]
    blocks: dict[str, list] = {m: [] for m in task["measures"]}
    for la in task["las"]:
        if la in in_run:
            fc = forecast(run, la=la, horizon=max(horizons), scenarios=("trend",), seed=task["seed"] + origin)
            predicted = fc.data["predicted"].sel(scenario="trend", year=years)
            for m in task["measures"]:
                blocks[m].append(predicted.sel(measure=m).transpose("year", "draw").values)
        else:
            for m in task["measures"]:
                blocks[m].append(None)
    keys = [(la, h) for la in task["las"] for h in horizons]
    frames = []
    for m in task["measures"]:
        width = max((b.shape[1] for b in blocks[m] if b is not None), default=1)
        samples = np.vstack([np.full((len(horizons), width), np.nan) if b is None else b for b in blocks[m]])
        frames.append(_score_block(keys, samples, _series(panel, m), m, origin, MODEL_METHOD, task["seed"]))
    from bayes_lac.model.results import run_info

    diagnostics = run_info(run).diagnostics
    return {
        "table": _concat(frames),
        "fit_seconds": fit_seconds,
        "forecast_seconds": time.perf_counter() - start,
        "converged": diagnostics.converged,
        "problems": list(diagnostics.problems),
        "notes": notes,
    }


# --------------------------------------------------------------------------------------
# The backtest


@dataclass(frozen=True)
class Backtest:
    """A backtest: every scored forecast and how the run went.

    Attributes
    ----------
    table
        One row per forecast (`FORECAST_COLUMNS`): the model's and the baselines'.
    origins, horizons, measures
        What was backtested.
    fit_seconds
        Wall time of each origin's fit (seconds), by origin.
    converged
        Whether each origin's fit passed its convergence diagnostics, by origin.
    notes
        What a reader must know (authorities without forecasts, unconverged fits).
    wall_seconds
        Wall time of the whole backtest (seconds).
    workers
        Local processes used (or the Dask scheduler address).
    """

    table: pd.DataFrame = field(repr=False)
    origins: tuple[int, ...]
    horizons: tuple[int, ...]
    measures: tuple[str, ...]
    fit_seconds: dict = field(default_factory=dict)
    converged: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    wall_seconds: float = 0.0
    workers: str = ""


def backtest(
    panel: pd.DataFrame,
    origins: Sequence[int],
    horizons: Sequence[int] = (1, 2, 3, 4, 5),
    measures: Sequence[str] = ("looked_after",),
    las: Sequence[str] | str = "all",
    target_la: str | None = None,
    priors="default",
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = DEFAULT_CHAINS,
    seed: int = 0,
    baselines: Sequence[str] = BASELINES,
    workers: int = 2,
    scheduler=None,
    progress: bool = True,
) -> Backtest:
    """Forecast from each origin with the national model and the baselines; score against the published counts.

    Parameters
    ----------
    panel
        The panel (all years: later years are the outcomes the forecasts are scored on).
    origins
        Last year of data of each fit (31 March years).
    horizons
        Years ahead to score.
    measures
        Measures to score (the model is fitted on these only).
    las
        ``"all"`` (every local authority in the panel) or ONS codes to score. The model is
        always fitted on every authority (``neighbours="all"``).
    target_la
        Authority the national model is built around (it makes no difference to the
        forecasts of a national fit); default Thurrock if in the panel, else the first.
    priors
        Prior set name, TOML file or dict.
    draws, tune, chains, seed
        Sampler settings of each origin's fit.
    baselines
        Baselines to score beside the model (`BASELINES`).
    workers, scheduler
        Origins run in parallel (`bayes_lac.studies.parallel.run_tasks`): local processes, or a
        Dask scheduler address.

    Returns
    -------
    `Backtest`
    """
    from bayes_lac.model.priors import load_priors
    from bayes_lac.studies.parallel import run_tasks

    start = time.perf_counter()
    origins = sorted(int(o) for o in origins)
    horizons = sorted(int(h) for h in horizons)
    measures = tuple(measures)
    if not origins or not horizons:
        raise BayesLacError("give at least one origin and one horizon")
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise BayesLacError(f"unknown measure(s) {', '.join(unknown)}; expected some of {', '.join(MEASURES)}")
    all_las = local_authorities(panel)
    if isinstance(las, str) and las == "all":
        chosen = all_las
    else:
        chosen = [str(c).strip() for c in (las.split(",") if isinstance(las, str) else las) if str(c).strip()]
        missing = [c for c in chosen if c not in all_las]
        if missing:
            raise UnknownAuthorityError(f"authorities not in the panel as local authorities: {', '.join(missing)}")
    if target_la is None:
        target_la = THURROCK_CODE if THURROCK_CODE in all_las else all_las[0]
    years = set(panel["year"].astype(int))
    early = [o for o in origins if o not in years]
    if early:
        raise PanelError(f"origin year(s) {', '.join(map(str, early))} not in the panel")
    priors_dict = priors if isinstance(priors, dict) else load_priors(priors)
    sampler = {"draws": int(draws), "tune": int(tune), "chains": int(chains), "seed": int(seed)}
    parallel = scheduler is not None or workers > 1
    tasks = [
        {
            "panel": panel,
            "origin": o,
            "horizons": horizons,
            "measures": measures,
            "las": chosen,
            "target_la": target_la,
            "priors": priors_dict,
            "sampler": {**sampler, "seed": int(seed) + o},
            "cores": 1 if parallel else None,
            "seed": int(seed),
        }
        for o in origins
    ]
    outputs = run_tasks(model_origin_forecasts, tasks, workers=workers, scheduler=scheduler, progress=progress, description="backtest origins")
    frames = [o["table"] for o in outputs]
    for origin in origins:
        frames.append(baseline_forecasts(panel, origin, horizons, measures, chosen, methods=baselines, seed=seed))
    notes = [n for o in outputs for n in o["notes"]]
    table = _concat(frames)
    # Forecasts of years after the last published one can never be scored: leave them out,
    # and say so, rather than count them as missing outcomes.
    last_published = {m: int(panel.loc[panel[m].notna(), "year"].max()) for m in measures}
    beyond = table["year"] > table["measure"].map(last_published)
    if beyond.any():
        for m in measures:
            cut = table[beyond & (table["measure"] == m)]
            if len(cut):
                notes.append(
                    f"{m}: {len(cut)} forecasts of years after {last_published[m]}, the last published year, "
                    f"are left out (origins {_span(cut['origin'])}, horizons {_span(cut['horizon'])})."
                )
        table = table[~beyond].reset_index(drop=True)
    for origin, o in zip(origins, outputs):
        if not o["converged"]:
            notes.append(f"origin {origin}: the fit failed its convergence diagnostics ({'; '.join(p.rstrip('.') for p in o['problems'][:3])}).")
    return Backtest(
        table=table,
        origins=tuple(origins),
        horizons=tuple(horizons),
        measures=measures,
        fit_seconds={o: out["fit_seconds"] for o, out in zip(origins, outputs)},
        converged={o: out["converged"] for o, out in zip(origins, outputs)},
        notes=tuple(notes),
        wall_seconds=time.perf_counter() - start,
        workers=str(getattr(scheduler, "scheduler_address", scheduler)) if scheduler is not None else f"{workers} local processes",
    )


# --------------------------------------------------------------------------------------
# Targets and the command line


def target_finding(table: pd.DataFrame, measure: str = "looked_after") -> Finding:
    """Plain sentences: does the model meet the backtest targets, and by how much does it miss?

    Targets (stated in advance, not tuned to): 90 % interval coverage within
    `COVERAGE_90_TARGET` at every horizon, and a CRPS below every baseline's from horizon
    `CRPS_TARGET_FROM_HORIZON` on.
    """
    from bayes_lac.summaries import format_percent

    cov = coverage_table(table)
    cov = cov[(cov["measure"] == measure) & (cov["nominal"] == 0.9)]
    low, high = COVERAGE_90_TARGET
    misses = cov[(cov["coverage"] < low) | (cov["coverage"] > high)]
    parts = []
    if misses.empty:
        parts.append(
            f"The 90% intervals held the published count in {format_percent(cov['coverage'].min())} to "
            f"{format_percent(cov['coverage'].max())} of forecasts at every horizon (target {format_percent(low)}-{format_percent(high)})."
        )
    else:
        parts.append(
            "The 90% intervals miss the coverage target "
            f"({format_percent(low)}-{format_percent(high)}) at horizon(s) "
            + ", ".join(f"{int(r.horizon)} ({format_percent(r.coverage)})" for r in misses.itertuples())
            + "."
        )
    ratios = crps_ratios(table)
    ratios = ratios[(ratios["measure"] == measure) & (ratios["horizon"] >= CRPS_TARGET_FROM_HORIZON)]
    worse = ratios[ratios["ratio"] >= 1]
    if ratios.empty:
        parts.append("No baseline was scored, so the CRPS target cannot be checked.")
    elif worse.empty:
        parts.append(
            f"From horizon {CRPS_TARGET_FROM_HORIZON} the model's CRPS is below every baseline's "
            f"(ratios {ratios['ratio'].min():.2f} to {ratios['ratio'].max():.2f})."
        )
    else:
        parts.append(
            f"From horizon {CRPS_TARGET_FROM_HORIZON} the model's CRPS is not below "
            + "; ".join(f"{r.baseline} at horizon {int(r.horizon)} (ratio {r.ratio:.2f})" for r in worse.itertuples())
            + "."
        )
    table_out = summarise_backtest(table)
    return Finding(title="Backtest calibration and accuracy", sentence=" ".join(parts), table=table_out[table_out["measure"] == measure])
