"""Scoring predictive draws against what happened, and the tables a backtest is read from.

Every forecaster in a backtest (the model and each baseline) gives predictive draws for a
cell (method, measure, authority, origin, horizon). `score_samples` turns a cell's draws and
its published outcome into one row of the per-forecast table; the functions below turn that
table into summaries. They are plain functions of the table, so they work the same on a
backtest run a minute ago and on the shipped ``models/backtest/backtest_full.csv.gz``.

Scores
------
* **coverage** of the equal-tailed 50 %, 80 % and 90 % predictive intervals (bounds included;
  sample quantiles). A calibrated forecaster covers the outcome in about 50, 80 and 90 % of cells.
* **PIT**, the probability integral transform P(X < y) + U * P(X = y), U uniform: the randomised
  PIT, uniform on [0, 1] for a calibrated forecaster even when draws are whole counts (U is
  seeded). A PIT mean above 0.5 means outcomes fell high in the predictive distribution
  (forecasts too low).
* **fair CRPS** (continuous ranked probability score, in the outcome's units, children or £;
  lower is better; for a point forecast it is the absolute error). The fair ensemble estimator
  E|X - y| - sum_{i != j} |x_i - x_j| / (2 m (m - 1)) is unbiased for the CRPS of the
  distribution the m draws come from, so forecasters with different numbers of draws are scored
  alike. It is evaluated by ``scoringrules.crps_ensemble(..., estimator="pwm")``, the
  probability-weighted-moment form, which equals the fair estimator exactly (to rounding;
  checked in the tests) but sorts the draws instead of forming all m^2 pairs, so 4,000 draws
  cost milliseconds, not minutes.
* **MAE** and **bias** of the predictive median (median - outcome), in the outcome's units.

Paired comparisons
------------------
`crps_ratios` compares a reference forecaster (the model) with every other one on exactly the
cells both scored: ratio = sum of the reference's CRPS / sum of the other's. Cells from one
origin share national shocks (a change of law, a pandemic year), so they are not independent;
the interval of the ratio resamples whole origins with replacement (a bootstrap over origins)
and takes the equal-tailed percentile interval of the ratio of summed CRPS.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_lac.config import CI_PROB, MEASURES, interval_bounds
from bayes_lac.errors import BayesLacError, UnknownAuthorityError

#: Nominal probabilities of the predictive intervals scored.
LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)
#: Bins of the PIT histograms.
PIT_BINS: int = 10
#: Bootstrap resamples of origins for the interval of a CRPS ratio.
BOOTSTRAP_RESAMPLES: int = 2000
#: Outcomes a forecast can be scored against: the panel's figure (revised where DfE revised
#: it), or the figure as first published (a sensitivity row; only where it exists).
OUTCOMES: tuple[str, ...] = ("latest", "first_release")


def level_name(level: float) -> str:
    """'90' for 0.9: the suffix of interval and coverage columns."""
    return f"{round(100 * level)}"


#: Score columns of a per-forecast row, as `score_samples` returns them.
SCORE_COLUMNS: tuple[str, ...] = (
    "median",
    *[f"{side}_{level_name(level)}" for level in LEVELS for side in ("lower", "upper")],
    "pit",
    "crps",
)


def _scoringrules():
    """scoringrules, imported without compiling its numba kernels.

    Importing scoringrules compiles its numba gufuncs (measured: 7.1 s on 2 cores, in every
    process that scores, the backtest's worker processes included); this module uses its numpy
    backend, which needs none of them. scoringrules imports its gufuncs under ``try: ...
    except ImportError``, so numba is hidden while it is imported (0.7 s) and restored
    afterwards, for the other libraries that use it.
    """
    if "scoringrules" in sys.modules:
        return sys.modules["scoringrules"]
    missing = object()
    numba = sys.modules.get("numba", missing)
    sys.modules["numba"] = None  # an import of numba now raises ImportError
    try:
        import scoringrules
    finally:
        if numba is missing:
            del sys.modules["numba"]
        else:
            sys.modules["numba"] = numba
    return scoringrules


def fair_crps(samples: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Fair-ensemble CRPS of each row of draws against its outcome.

    Parameters
    ----------
    samples
        Array (n_forecasts, n_draws) of predictive draws, no NaN.
    observed
        Array (n_forecasts,) of outcomes, no NaN, in the units of the draws.

    Returns
    -------
    Array (n_forecasts,) of CRPS values in the units of the draws (see the module docstring
    for the estimator).
    """
    scoringrules = _scoringrules()
    samples = np.asarray(samples, float)
    if samples.shape[1] < 2:
        raise ValueError("the fair CRPS needs at least 2 draws per forecast")
    return np.asarray(
        scoringrules.crps_ensemble(np.asarray(observed, float), samples, estimator="pwm", backend="numpy")
    )


def randomised_pit(samples: np.ndarray, observed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """P(X < y) + U * P(X = y) for each row of draws, U ~ Uniform(0, 1) from `rng`."""
    y = np.asarray(observed, float)[:, None]
    u = rng.uniform(size=len(y))
    return (samples < y).mean(axis=1) + u * (samples == y).mean(axis=1)


def score_samples(samples: np.ndarray, observed: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Score predictive samples against observed values.

    Parameters
    ----------
    samples
        Array (n_forecasts, n_draws) of predictive draws (children, or £ for spend). A row
        with any NaN means "no forecast" and gets NaN everywhere.
    observed
        Array (n_forecasts,) of what happened; NaN where not published (NaN scores, interval
        bounds still given).
    seed
        Seed of the uniform draws of the randomised PIT.

    Returns
    -------
    DataFrame with `SCORE_COLUMNS`: ``median``, ``lower_50``, ``upper_50``, ...,
    ``upper_90`` (units of the draws), ``pit`` (in [0, 1]) and ``crps`` (units of the draws),
    one row per forecast.
    """
    samples = np.asarray(samples, float)
    observed = np.asarray(observed, float)
    if samples.ndim != 2 or samples.shape[0] != observed.shape[0]:
        raise ValueError(
            f"samples must be (n_forecasts, n_draws) matching observed {observed.shape}; got {samples.shape}"
        )
    n = samples.shape[0]
    have = ~np.isnan(samples).any(axis=1)
    out = {name: np.full(n, np.nan) for name in SCORE_COLUMNS}
    quantiles = [0.5] + [q for level in LEVELS for q in ((1 - level) / 2, (1 + level) / 2)]
    if have.any():
        qs = np.quantile(samples[have], quantiles, axis=1)
        out["median"][have] = qs[0]
        for k, level in enumerate(LEVELS):
            out[f"lower_{level_name(level)}"][have] = qs[1 + 2 * k]
            out[f"upper_{level_name(level)}"][have] = qs[2 + 2 * k]
    scored = have & ~np.isnan(observed)
    if scored.any():
        x, y = samples[scored], observed[scored]
        out["pit"][scored] = randomised_pit(x, y, np.random.default_rng(seed))
        out["crps"][scored] = fair_crps(x, y)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------
# Selecting rows


def _outcome_columns(outcome: str) -> dict[str, str]:
    """Names of the observed, PIT and CRPS columns for `outcome`."""
    if outcome == "latest":
        return {"observed": "observed", "pit": "pit", "crps": "crps"}
    if outcome == "first_release":
        return {"observed": "observed_first_release", "pit": "pit_first_release", "crps": "crps_first_release"}
    raise BayesLacError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}")


def outcome_view(table: pd.DataFrame, outcome: str = "latest") -> pd.DataFrame:
    """The rows scored against `outcome`, with its columns renamed to observed, pit, crps.

    For ``"first_release"`` only rows whose first-release figure exists are kept (DfE's
    first-release looked-after counts exist for 2010-2017 only).
    """
    names = _outcome_columns(outcome)
    if outcome == "latest":
        return table
    missing = [c for c in names.values() if c not in table.columns]
    if missing:
        raise BayesLacError(f"the backtest table has no first-release scores (columns {', '.join(missing)} missing)")
    sub = table[table[names["observed"]].notna()].drop(columns=["observed", "pit", "crps"])
    return sub.rename(columns={v: k for k, v in names.items()})


def select(
    table: pd.DataFrame, method: str | None = None, la: str | None = None, measure: str | None = None
) -> pd.DataFrame:
    """Rows of one method, authority (ONS code) and measure; None keeps all."""
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


def covered(table: pd.DataFrame, level: float) -> pd.Series:
    """Whether the outcome lies in the `level` interval (bounds included); NaN where unscored."""
    name = level_name(level)
    inside = (table[f"lower_{name}"] <= table["observed"]) & (table["observed"] <= table[f"upper_{name}"])
    return inside.astype(float).where(table["crps"].notna())


def span(values) -> str:
    """Years or horizons as text: '2014-2022', or '2014,2016' when not consecutive."""
    v = sorted({int(x) for x in values if pd.notna(x)})
    if not v:
        return ""
    if v == list(range(v[0], v[-1] + 1)):
        return f"{v[0]}-{v[-1]}" if len(v) > 1 else str(v[0])
    return ",".join(str(x) for x in v)


def method_order(methods) -> list[str]:
    """Methods in table order: the model first, then the baselines as `BASELINES` lists them."""
    from bayes_lac.studies.baselines import BASELINES, MODEL_METHOD

    rank = {m: i for i, m in enumerate((MODEL_METHOD, *BASELINES))}
    return sorted(pd.unique(pd.Series(list(methods))), key=lambda m: (rank.get(m, len(rank)), m))


def measure_rank(measure: str) -> tuple[int, str]:
    """Sort key of a measure: `MEASURES` order (looked-after children first), others after."""
    return (MEASURES.index(measure) if measure in MEASURES else len(MEASURES), measure)


def _sort(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    keys = [c for c in by if c in frame.columns]
    order = {m: i for i, m in enumerate(method_order(frame["method"]))} if "method" in frame.columns else {}
    return frame.sort_values(keys, key=lambda s: s.map(order) if s.name == "method" else s, kind="stable").reset_index(
        drop=True
    )


# --------------------------------------------------------------------------------------
# Summaries


def summarise_backtest(
    table: pd.DataFrame,
    by: Sequence[str] = ("method", "measure", "horizon"),
    outcome: str = "latest",
    la: str | None = None,
) -> pd.DataFrame:
    """Scores by method, measure and horizon (or any grouping), pooled over the other cells.

    Parameters
    ----------
    table
        The per-forecast table of a backtest.
    by
        Columns to group by, e.g. ``("method", "measure", "horizon", "size_quartile")``.
    outcome
        ``"latest"`` (the panel's figures) or ``"first_release"`` (sensitivity: DfE's first
        release, where it exists).
    la
        Only this authority's forecasts (ONS code); None pools every authority.

    Returns
    -------
    DataFrame with the `by` columns, ``n_forecasts`` (rows), ``n_scored`` (with a forecast and
    an outcome), ``n_missing`` (the rest), ``origins`` (span of the origins scored),
    ``coverage_50``, ``coverage_80``, ``coverage_90`` (share of scored forecasts whose interval
    holds the outcome), ``pit_mean`` (0.5 if unbiased), ``crps``, ``mae`` and ``bias`` (mean,
    outcome units; bias = median - outcome, negative when forecasts are too low).
    """
    by = list(by)
    sub = select(outcome_view(table, outcome), la=la).copy()
    scored = sub["crps"].notna()
    for level in LEVELS:
        sub[f"coverage_{level_name(level)}"] = covered(sub, level)
    sub["error"] = (sub["median"] - sub["observed"]).where(scored)
    sub["abs_error"] = sub["error"].abs()
    sub["scored_origin"] = sub["origin"].where(scored)
    columns = by + ["n_forecasts", "n_scored", "n_missing", "origins"]
    columns += [f"coverage_{level_name(v)}" for v in LEVELS] + ["pit_mean", "crps", "mae", "bias"]
    if sub.empty:
        return pd.DataFrame({c: [] for c in columns})
    grouped = sub.groupby(by, sort=False, observed=True, dropna=False)
    summary = grouped.agg(
        n_forecasts=("method", "size"),
        n_scored=("crps", "count"),
        origins=("scored_origin", span),
        **{f"coverage_{level_name(v)}": (f"coverage_{level_name(v)}", "mean") for v in LEVELS},
        pit_mean=("pit", "mean"),
        crps=("crps", "mean"),
        mae=("abs_error", "mean"),
        bias=("error", "mean"),
    ).reset_index()
    summary["n_missing"] = summary["n_forecasts"] - summary["n_scored"]
    return _sort(
        summary[columns],
        [c for c in ("measure", "method") if c in by] + [c for c in by if c not in ("measure", "method")],
    )


def coverage_table(table: pd.DataFrame, method: str = "model", la: str | None = None) -> pd.DataFrame:
    """Empirical coverage by measure, horizon and nominal level: the numbers `plot_coverage` draws.

    Returns
    -------
    DataFrame with ``measure, horizon, nominal`` (0.5, 0.8, 0.9), ``coverage`` (share of
    scored forecasts inside the interval) and ``n`` (scored forecasts).
    """
    sub = select(table, method=method, la=la)
    rows = []
    for (measure, horizon), g in sub.groupby(["measure", "horizon"]):
        for level in LEVELS:
            inside = covered(g, level).dropna()
            rows.append(
                {
                    "measure": measure,
                    "horizon": int(horizon),
                    "nominal": level,
                    "coverage": float(inside.mean()) if len(inside) else np.nan,
                    "n": len(inside),
                }
            )
    return pd.DataFrame(rows, columns=["measure", "horizon", "nominal", "coverage", "n"])


def pooled_coverage(table: pd.DataFrame, method: str = "model", la: str | None = None) -> pd.DataFrame:
    """Empirical coverage of the 50 %, 80 % and 90 % intervals pooled over every horizon, by
    measure in `MEASURES` order.

    The figure a model card quotes ("the 90 % intervals held the published count in X % of
    N backtest forecasts"). Pooled over authorities (or for `la`), origins and horizons.

    Returns
    -------
    DataFrame with ``measure, nominal, coverage, n, origins, horizons`` (the last two as
    text, e.g. "2014-2022" and "1-5": those of the scored forecasts).
    """
    sub = select(table, method=method, la=la)
    rows = []
    for measure, g in sorted(sub.groupby("measure"), key=lambda item: measure_rank(item[0])):
        for level in LEVELS:
            inside = covered(g, level).dropna()
            rows.append(
                {
                    "measure": measure,
                    "nominal": level,
                    "coverage": float(inside.mean()) if len(inside) else np.nan,
                    "n": len(inside),
                    "origins": span(g.loc[g["crps"].notna(), "origin"]),
                    "horizons": span(g.loc[g["crps"].notna(), "horizon"]),
                }
            )
    return pd.DataFrame(rows, columns=["measure", "nominal", "coverage", "n", "origins", "horizons"])


def pit_histogram_table(
    table: pd.DataFrame,
    method: str = "model",
    la: str | None = None,
    measure: str | None = None,
    bins: int = PIT_BINS,
) -> pd.DataFrame:
    """PIT histogram counts of one method (pooled over horizons): the numbers `plot_pit` draws.

    Returns
    -------
    DataFrame with ``bin_lower, bin_upper, count, share`` and ``expected_share`` (1 / bins,
    what a calibrated forecast gives). A U shape means intervals too narrow; a hump, too
    wide; a slope, biased forecasts.
    """
    pit = select(table, method=method, la=la, measure=measure)["pit"].dropna().to_numpy(float)
    return _histogram(pit, bins)


def _histogram(pit: np.ndarray, bins: int) -> pd.DataFrame:
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


def pit_histograms(
    table: pd.DataFrame,
    by: Sequence[str] = ("method", "measure", "horizon"),
    bins: int = PIT_BINS,
    outcome: str = "latest",
) -> pd.DataFrame:
    """PIT histograms (`bins` equal bins on [0, 1]) of every group of `by`, in one long table.

    Returns
    -------
    DataFrame with the `by` columns and ``bin_lower, bin_upper, count, share, expected_share``.
    """
    by = list(by)
    sub = outcome_view(table, outcome)
    sub = sub[sub["pit"].notna()]
    frames = []
    for key, g in sub.groupby(by, sort=False, observed=True):
        hist = _histogram(g["pit"].to_numpy(float), bins)
        for name, value in zip(by, key if isinstance(key, tuple) else (key,)):
            hist[name] = value
        frames.append(hist[by + ["bin_lower", "bin_upper", "count", "share", "expected_share"]])
    if not frames:
        return pd.DataFrame({c: [] for c in by + ["bin_lower", "bin_upper", "count", "share", "expected_share"]})
    return _sort(
        pd.concat(frames, ignore_index=True),
        [c for c in ("measure", "method") if c in by]
        + [c for c in by if c not in ("measure", "method")]
        + ["bin_lower"],
    )


# --------------------------------------------------------------------------------------
# Paired CRPS ratios with a bootstrap over origins


def bootstrap_ratio(
    reference_by_origin: np.ndarray,
    other_by_origin: np.ndarray,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    ci_prob: float = CI_PROB,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Ratio of summed CRPS and its bootstrap-over-origins interval.

    Parameters
    ----------
    reference_by_origin, other_by_origin
        Summed CRPS of the paired cells of each origin (same order, one entry per origin).
    n_boot
        Resamples: each draws as many origins as there are, with replacement.
    ci_prob
        Probability of the equal-tailed percentile interval.

    Returns
    -------
    (ratio, lower, upper): sum(reference) / sum(other) and the interval; the bounds are NaN
    with fewer than 2 origins (one origin says nothing about how origins vary).
    """
    ref = np.asarray(reference_by_origin, float)
    other = np.asarray(other_by_origin, float)
    if ref.shape != other.shape or ref.ndim != 1 or len(ref) == 0:
        raise ValueError("give the same number (at least one) of per-origin sums for both methods")
    ratio = float(ref.sum() / other.sum())
    if len(ref) < 2:
        return ratio, np.nan, np.nan
    rng = rng if rng is not None else np.random.default_rng(0)
    idx = rng.integers(0, len(ref), size=(n_boot, len(ref)))
    resampled = ref[idx].sum(axis=1) / other[idx].sum(axis=1)
    low, high = np.quantile(resampled, interval_bounds(ci_prob))
    return ratio, float(low), float(high)


def crps_ratios(
    table: pd.DataFrame,
    reference: str = "model",
    by: Sequence[str] = ("measure", "horizon"),
    outcome: str = "latest",
    la: str | None = None,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    ci_prob: float = CI_PROB,
    seed: int = 0,
) -> pd.DataFrame:
    """CRPS of `reference` relative to every other method, on the cells both scored.

    Only cells (authority, measure, origin, horizon) that both methods scored enter a ratio,
    so a baseline that could not forecast an authority, or a model origin that failed its
    convergence gate, drops those cells from the comparison rather than shifting it.

    Parameters
    ----------
    reference
        The method compared with all others (default the model).
    by
        Groups, e.g. ``("measure", "horizon", "size_quartile")``.
    outcome, la
        As in `summarise_backtest`.
    n_boot, ci_prob, seed
        Bootstrap over origins (see `bootstrap_ratio`).

    Returns
    -------
    DataFrame with the `by` columns, ``baseline``, ``n_pairs``, ``n_origins``,
    ``crps_reference`` and ``crps_baseline`` (mean over the pairs, outcome units),
    ``ratio`` (sum of the reference's CRPS over the baseline's; below 1 the reference
    forecasts better) and ``lower``, ``upper`` (bootstrap-over-origins interval, `ci_prob`).
    """
    by = list(by)
    sub = select(outcome_view(table, outcome), la=la)
    keys = ["la_code", "measure", "origin", "horizon"]
    extra = [c for c in by if c not in keys]
    ref = sub[sub["method"] == reference][keys + extra + ["crps"]].dropna(subset=["crps"])
    columns = by + ["baseline", "n_pairs", "n_origins", "crps_reference", "crps_baseline", "ratio", "lower", "upper"]
    rows = []
    rng = np.random.default_rng(seed)
    for other in [m for m in method_order(sub["method"]) if m != reference]:
        base = sub[sub["method"] == other][keys + ["crps"]].dropna(subset=["crps"])
        pairs = ref.merge(base, on=keys, suffixes=("_reference", "_baseline"))
        for key, g in pairs.groupby(by, sort=True, observed=True):
            per_origin = g.groupby("origin")[["crps_reference", "crps_baseline"]].sum()
            ratio, low, high = bootstrap_ratio(
                per_origin["crps_reference"].to_numpy(), per_origin["crps_baseline"].to_numpy(), n_boot, ci_prob, rng
            )
            row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
            row.update(
                baseline=other,
                n_pairs=len(g),
                n_origins=len(per_origin),
                crps_reference=g["crps_reference"].mean(),
                crps_baseline=g["crps_baseline"].mean(),
                ratio=ratio,
                lower=low,
                upper=high,
            )
            rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    if "horizon" in out.columns:
        out["horizon"] = out["horizon"].astype(int)
    order = {m: i for i, m in enumerate(method_order(sub["method"]))}
    sort_keys = [c for c in ("measure",) if c in by] + ["baseline"] + [c for c in by if c != "measure"]
    if out.empty:
        return out
    return out.sort_values(
        sort_keys, key=lambda s: s.map(order) if s.name == "baseline" else s, kind="stable"
    ).reset_index(drop=True)
