"""Forecasters for backtests: the interface every method meets, and the baselines.

The forecaster interface
------------------------
A backtest treats the model as one forecaster among others. A forecaster is any picklable
callable (a top-level function, or an instance of a frozen dataclass with ``__call__``) with a
``name`` (the method's label in tables) that answers::

    draws = forecaster(panel, origin, horizons, measures, las=las, quantity="count", seed=0)

* ``panel``: the panel **cut at the origin** (rows with ``year <= origin`` only; the backtest
  cuts it, so no forecaster can see the outcomes it is scored on);
* ``origin``: the last year of data (31 March year); ``horizons``: years ahead (1, 2, ...);
* ``measures``: e.g. ``("looked_after", "children_in_need")``; ``las``: ONS codes to forecast;
* ``quantity``: what is forecast, ``"count"`` (children at 31 March) or ``"spend"`` (£ per
  year, cash, financial year ending in the target year; see `OUTCOME_COLUMNS`). This is the
  hook for backtesting costs: spend outturn is scored by the same machinery against the
  panel's spend column, once a forecaster of spend exists (the baselines below already
  forecast any quantity from its own history);
* ``seed``: the seed of the predictive draws.

It returns an `xarray.DataArray` of predictive draws with dims ``(measure, la, horizon,
draw)`` and those coordinates (any number of draws, at least 2), in the units of `quantity`.
NaN in every draw of a cell means "cannot forecast this cell" (it is kept and counted as
missing, never dropped). It may put ``attrs["fit_seconds"]`` on the array (time spent
fitting, reported apart from forecasting). A forecaster whose fit failed its convergence gate
raises `bayes_lac.errors.UnconvergedFitError`: the backtest then reports that origin as
failed and scores none of its cells.

Baselines
---------
Each baseline forecasts from the published values up to the origin only, and gives
`BASELINE_DRAWS` predictive draws per cell. "Log scale" means log(y + 1), so zero counts are
allowed; draws go back by exp(x) - 1.

* ``pooled_growth`` (`PooledGrowth`, the strong baseline): every h-year log change
  log((y[t+h] + 1) / (y[t] + 1)) of the same measure, across all local authorities in the
  panel, with both years published and t + h <= origin; the forecast multiplies the
  authority's (value + 1) at the origin by changes resampled from that pool.
* ``ets_damped`` (`DampedTrendETS`): exponential smoothing with a damped additive trend,
  ETS(A,Ad,N), on the log scale, fitted to each authority's own series.
* ``rw_drift`` (`RandomWalkDrift`): a random walk with drift on the log scale.
* ``last_value`` (`LastValue`), ``linear_trend`` (`LinearTrend`) and ``constant_rate``
  (`ConstantRate`): the value at the origin carried forward, a 5-year straight line, and the
  rate per 10,000 children times the projected child population (the 2017 report's method).

The Normal and Student-t baselines (last value, linear trend) can put some mass below zero for
small counts; they are scored as they are (no clipping).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import MEASURES, RATE_PER
from bayes_lac.errors import BayesLacError

#: Label of the model's rows in backtest tables.
MODEL_METHOD = "model"
#: Baselines, in table order.
BASELINES: tuple[str, ...] = ("pooled_growth", "ets_damped", "rw_drift", "last_value", "linear_trend", "constant_rate")
#: Draws each baseline gives per cell.
BASELINE_DRAWS: int = 4000
#: What a forecaster can be asked to forecast.
QUANTITIES: tuple[str, ...] = ("count", "spend")
#: Panel column of the outcome of each (quantity, measure). Spend exists for looked-after
#: children only (s251 outturn "Total Children Looked After", £ per year, cash).
OUTCOME_COLUMNS: dict[tuple[str, str], str] = {
    **{("count", m): m for m in MEASURES},
    ("spend", "looked_after"): "spend_looked_after",
}
#: Panel column of the first-release figure of an outcome, where DfE's first release is kept.
FIRST_RELEASE_COLUMNS: dict[tuple[str, str], str] = {("count", "looked_after"): "looked_after_first_release"}
#: Dimensions of a forecaster's draws, in order.
DRAW_DIMS: tuple[str, ...] = ("measure", "la", "horizon", "draw")


def outcome_column(measure: str, quantity: str = "count") -> str:
    """The panel column a (measure, quantity) forecast is made from and scored against."""
    if quantity not in QUANTITIES:
        raise BayesLacError(f"quantity must be one of {', '.join(QUANTITIES)}; got {quantity!r}")
    try:
        return OUTCOME_COLUMNS[(quantity, measure)]
    except KeyError:
        have = ", ".join(m for q, m in OUTCOME_COLUMNS if q == quantity)
        raise BayesLacError(f"no {quantity} outcome for measure {measure!r}; {quantity} exists for: {have}") from None


def method_name(forecaster) -> str:
    """A forecaster's label in tables: its ``name``, else the function's name."""
    return str(getattr(forecaster, "name", None) or getattr(forecaster, "__name__", type(forecaster).__name__))


# --------------------------------------------------------------------------------------
# Panel helpers


def local_authorities(panel: pd.DataFrame) -> list[str]:
    """ONS codes of the local authorities in the panel (E06/E08/E09/E10 codes at local-authority
    level): the areas a backtest forecasts and the pooled baseline pools over."""
    from bayes_lac.model.data import LA_PREFIXES

    is_la = panel["la_code"].astype(str).str.startswith(LA_PREFIXES)
    if "geographic_level" in panel.columns:
        is_la &= panel["geographic_level"].astype(str).str.lower().eq("local authority")
    return sorted(set(panel.loc[is_la, "la_code"].astype(str)))


def wide(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """Authority x year float table of one panel column; NaN where not published."""
    if column not in panel.columns:
        raise BayesLacError(f"the panel has no column {column!r}")
    values = pd.to_numeric(panel[column], errors="raise").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    frame = pd.DataFrame({"la_code": panel["la_code"].astype(str), "year": panel["year"].astype(int), "v": values})
    return frame.pivot_table(index="la_code", columns="year", values="v", aggfunc="first", dropna=False)


def consecutive_run(history: pd.Series, origin: int) -> pd.Series:
    """The published values of the unbroken run of years that ends at `origin` (sorted by year).

    A gap (a suppressed or missing year) ends the run: methods that need a regular yearly
    series never bridge it. Empty if `origin` itself is not published.
    """
    h = history[(history.index <= origin)].dropna().sort_index()
    if origin not in h.index:
        return h.iloc[:0]
    years = np.asarray(h.index, int)
    start = len(years) - 1
    while start > 0 and years[start - 1] == years[start] - 1:
        start -= 1
    return h.iloc[start:]


def empty_draws(measures: Sequence[str], las: Sequence[str], horizons: Sequence[int], n_draws: int) -> xr.DataArray:
    """An all-NaN draws array with the forecaster interface's dims and coordinates."""
    return xr.DataArray(
        np.full((len(measures), len(las), len(horizons), n_draws), np.nan),
        dims=DRAW_DIMS,
        coords={
            "measure": list(measures),
            "la": list(las),
            "horizon": [int(h) for h in horizons],
            "draw": np.arange(n_draws),
        },
    )


def check_draws(draws, name: str, measures: Sequence[str], las: Sequence[str], horizons: Sequence[int]) -> xr.DataArray:
    """A forecaster's answer, checked against the interface and put in (measure, la, horizon, draw) order.

    Raises
    ------
    TypeError, ValueError
        if the answer breaks the interface (a bug in the forecaster, named in the message).
    """
    if not isinstance(draws, xr.DataArray):
        raise TypeError(f"forecaster {name!r} returned {type(draws).__name__}; expected an xarray.DataArray")
    if set(draws.dims) != set(DRAW_DIMS):
        raise ValueError(f"forecaster {name!r} returned dims {draws.dims}; expected {DRAW_DIMS}")
    for dim, wanted in (("measure", measures), ("la", las), ("horizon", horizons)):
        have = {str(v) if dim != "horizon" else int(v) for v in draws[dim].values}
        missing = [w for w in wanted if (int(w) if dim == "horizon" else str(w)) not in have]
        if missing:
            raise ValueError(f"forecaster {name!r} gave no {dim} {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if draws.sizes["draw"] < 2:
        raise ValueError(f"forecaster {name!r} gave {draws.sizes['draw']} draw(s); the fair CRPS needs at least 2")
    return draws.sel(measure=list(measures), la=list(las), horizon=[int(h) for h in horizons]).transpose(*DRAW_DIMS)


def _stream(name: str) -> int:
    # A stable number per method for seeding (Python's hash() of a str changes per process).
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------------------
# Baselines that look at one authority's own history


def own_history_draws(method, panel, origin, horizons, measures, las, quantity, seed) -> xr.DataArray:
    """Draws of a baseline that forecasts each authority from its own series, for every cell.

    `method` has ``name``, ``n_draws`` and ``series_draws(history, population, origin,
    horizons, rng)``, which returns an array (len(horizons), n_draws) for one authority, or
    None when the authority's history is too short (its cells stay NaN: missing).
    """
    horizons = np.asarray([int(h) for h in horizons], int)
    out = empty_draws(measures, las, horizons, method.n_draws)
    population = wide(panel, "population_0_17") if "population_0_17" in panel.columns else None
    no_population = pd.Series(dtype=float)
    for i, measure in enumerate(measures):
        values = wide(panel, outcome_column(measure, quantity))
        rng = np.random.default_rng([int(seed), int(origin), MEASURES.index(measure), _stream(method.name)])
        for j, la in enumerate(las):
            if la not in values.index:
                continue
            pop = population.loc[la] if population is not None and la in population.index else no_population
            block = method.series_draws(values.loc[la], pop, int(origin), horizons, rng)
            if block is not None:
                out.values[i, j] = block
    return out


class _OwnHistory:
    """Mixin: the forecaster interface for a baseline with ``series_draws`` (see `own_history_draws`)."""

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0) -> xr.DataArray:
        return own_history_draws(self, panel, origin, horizons, measures, las, quantity, seed)


def _log1p_draws(mean: np.ndarray, sd: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """exp(Normal(mean, sd)) - 1 draws, (len(mean), n_draws): back from the log(y + 1) scale."""
    return np.expm1(mean[:, None] + sd[:, None] * rng.standard_normal((len(mean), n_draws)))


@dataclass(frozen=True)
class RandomWalkDrift(_OwnHistory):
    """Random walk with drift on the log scale.

    With d the yearly changes of log(y + 1) over the unbroken run of years ending at the
    origin (n of them, at least `min_changes`), the forecast h years ahead is Normal on the
    log scale with mean log(y_T + 1) + h * mean(d) and sd s * sqrt(h * (1 + h / n)), s the
    sample sd of d (the 1 + h/n term carries the uncertainty of the estimated drift).
    """

    name: str = "rw_drift"
    n_draws: int = BASELINE_DRAWS
    min_changes: int = 3

    def series_draws(self, history, population, origin, horizons, rng):
        run = consecutive_run(history, origin)
        changes = np.diff(np.log1p(run.to_numpy(float)))
        n = len(changes)
        if n < self.min_changes:
            return None
        h = horizons.astype(float)
        mean = np.log1p(float(run.iloc[-1])) + h * changes.mean()
        sd = changes.std(ddof=1) * np.sqrt(h * (1 + h / n))
        return _log1p_draws(mean, sd, self.n_draws, rng)


#: Grid over which `DampedTrendETS` minimises the one-step squared errors: smoothing of the
#: level alpha, trend smoothing as a share of alpha (beta = alpha * share, so beta <= alpha
#: as the model requires), and the damping phi in [0.8, 0.98] (the range Hyndman's forecast
#: package searches). 50 x 21 x 10 points; the search takes about 5 ms a series.
_ETS_ALPHA = np.linspace(0.01, 0.99, 50)
_ETS_SHARE = np.linspace(0.0, 1.0, 21)
_ETS_PHI = np.linspace(0.80, 0.98, 10)


def fit_damped_trend(x: np.ndarray) -> dict:
    """Least-squares ETS(A,Ad,N) fit of a yearly series `x` (already on the scale modelled).

    The model: x_t = l_{t-1} + phi b_{t-1} + e_t; l_t = l_{t-1} + phi b_{t-1} + alpha e_t;
    b_t = phi b_{t-1} + beta e_t, e_t ~ Normal(0, sigma^2). The initial level and trend are
    the straight line through the first (up to) 4 points, taken one year before the first;
    (alpha, beta, phi) minimise the sum of squared one-step errors over a grid; sigma^2 is
    that sum over n - 5, as five quantities are estimated from the series (the three smoothing
    parameters and the initial level and trend), the convention of Hyndman's forecast
    package and statsforecast. (Dividing by n - 3 instead left the 90 % intervals of
    looked-after counts covering 76 % one year ahead in the backtest, against 86 %.)

    Returns
    -------
    dict with ``alpha, beta, phi`` and the final ``level``, ``trend`` and ``sigma``.
    """
    x = np.asarray(x, float)
    n = len(x)
    if n < 7:
        raise ValueError(f"ETS(A,Ad,N) needs at least 7 points (five quantities are estimated), got {n}")
    k = min(n, 4)
    slope, intercept = np.polyfit(np.arange(1, k + 1), x[:k], 1)
    alpha, share, phi = (g.ravel() for g in np.meshgrid(_ETS_ALPHA, _ETS_SHARE, _ETS_PHI, indexing="ij"))
    beta = alpha * share
    level = np.full(alpha.shape, intercept)
    trend = np.full(alpha.shape, slope)
    sse = np.zeros(alpha.shape)
    for value in x:
        step = level + phi * trend
        error = value - step
        sse += error * error
        level = step + alpha * error
        trend = phi * trend + beta * error
    best = int(np.argmin(sse))
    return {
        "alpha": float(alpha[best]),
        "beta": float(beta[best]),
        "phi": float(phi[best]),
        "level": float(level[best]),
        "trend": float(trend[best]),
        "sigma": float(np.sqrt(sse[best] / (n - 5))),
    }


def damped_trend_forecast(fit: dict, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of the ETS(A,Ad,N) forecast distribution `horizons` steps ahead.

    Mean: l + (phi + ... + phi^h) b. Variance: sigma^2 (1 + sum_{j=1}^{h-1} c_j^2) with
    c_j = alpha + beta phi (1 - phi^j) / (1 - phi) (Hyndman et al. 2008, class 1 models).
    """
    alpha, beta, phi = fit["alpha"], fit["beta"], fit["phi"]
    horizons = np.asarray(horizons, int)
    top = int(horizons.max())
    powers = phi ** np.arange(1, top + 1)
    damped_sum = np.cumsum(powers)  # phi + ... + phi^h
    c = alpha + beta * phi * (1 - phi ** np.arange(1, top)) / (1 - phi)
    spread = np.concatenate([[1.0], 1.0 + np.cumsum(c**2)])  # h = 1 .. top
    mean = fit["level"] + damped_sum[horizons - 1] * fit["trend"]
    sd = fit["sigma"] * np.sqrt(spread[horizons - 1])
    return mean, sd


@dataclass(frozen=True)
class DampedTrendETS(_OwnHistory):
    """Damped-trend exponential smoothing, ETS(A,Ad,N), on the log scale, per authority.

    Fitted by `fit_damped_trend` to log(y + 1) over the unbroken run of years ending at the
    origin (at least `min_years` of them); draws are Normal on the log scale with the model's
    forecast mean and variance (`damped_trend_forecast`).

    Like statsforecast's AutoETS it needs at least 7 points, so it forecasts looked-after
    children from the 2016 origin and children in need and child protection from 2019; its
    earlier cells are missing (and leave its paired comparisons). Written here rather than
    taken from statsforecast because statsforecast 2.1 requires pandas < 3 (installing it
    downgrades this package's pandas 3); its point forecasts agreed with this fit's within a
    few per cent (at most 6 %) on five simulated series.
    """

    name: str = "ets_damped"
    n_draws: int = BASELINE_DRAWS
    min_years: int = 7

    def series_draws(self, history, population, origin, horizons, rng):
        run = consecutive_run(history, origin)
        if len(run) < self.min_years:
            return None
        mean, sd = damped_trend_forecast(fit_damped_trend(np.log1p(run.to_numpy(float))), horizons)
        return _log1p_draws(mean, sd, self.n_draws, rng)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


@dataclass(frozen=True)
class LastValue(_OwnHistory):
    """The value at the origin carried forward, with a random-walk spread on the count scale:
    Normal with sd sigma * sqrt(h), sigma the root mean square of the year-to-year changes over
    the unbroken run of years ending at the origin (at least 2 changes)."""

    name: str = "last_value"
    n_draws: int = BASELINE_DRAWS

    def series_draws(self, history, population, origin, horizons, rng):
        run = consecutive_run(history, origin).to_numpy(float)
        changes = np.diff(run)
        if len(changes) < 2:
            return None
        sigma = _rms(changes)
        return run[-1] + sigma * np.sqrt(horizons)[:, None] * rng.standard_normal((len(horizons), self.n_draws))


@dataclass(frozen=True)
class LinearTrend(_OwnHistory):
    """Ordinary least squares line through the published values of the last `window` years
    (T - window + 1 .. T, at least `min_points` of them, the origin included), extrapolated.
    Spread: the textbook OLS prediction interval, Student-t with n - 2 degrees of freedom and
    scale s * sqrt(1 + 1/n + (x - mean x)^2 / Sxx)."""

    name: str = "linear_trend"
    n_draws: int = BASELINE_DRAWS
    window: int = 5
    min_points: int = 4

    def series_draws(self, history, population, origin, horizons, rng):
        y = history[history.index <= origin].dropna()
        if origin not in y.index:
            return None
        recent = y[y.index > origin - self.window]
        n = len(recent)
        if n < self.min_points:
            return None
        x = np.asarray(recent.index, float)
        v = recent.to_numpy(float)
        slope, intercept = np.polyfit(x, v, 1)
        s = np.sqrt(np.sum((v - (intercept + slope * x)) ** 2) / (n - 2))
        x0 = origin + horizons.astype(float)
        scale = s * np.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
        t = rng.standard_t(n - 2, size=(len(horizons), self.n_draws))
        return (intercept + slope * x0)[:, None] + scale[:, None] * t


@dataclass(frozen=True)
class ConstantRate(_OwnHistory):
    """The rate per 10,000 children aged 0-17 at the origin times the projected child population.

    The population is projected as the model's forecasts project it
    (`bayes_lac.data.population.project_population`: growth drawn from the last five annual
    growth rates up to the origin); the rate follows a random walk on the log scale with
    sd sigma * sqrt(h), sigma the root mean square of the yearly changes of the log rate over
    the unbroken run of years ending at the origin (years with a value of zero have no log rate
    and end the run). Needs the population at the origin and one year before.
    """

    name: str = "constant_rate"
    n_draws: int = BASELINE_DRAWS

    def series_draws(self, history, population, origin, horizons, rng):
        from bayes_lac.data.population import project_population

        pop = population[population.index <= origin].dropna()
        if origin not in pop.index or len(pop) < 2 or origin not in history.dropna().index:
            return None
        rate = (history / pop * RATE_PER).dropna()
        log_rate = consecutive_run(np.log(rate[rate > 0]), origin)
        changes = np.diff(log_rate.to_numpy(float))
        if len(changes) < 2:
            return None
        sigma = _rms(changes)
        projected, _ = project_population(pop, int(horizons.max()), self.n_draws, rng)
        future_pop = projected[:, horizons - 1].T  # (horizon, draw)
        z = rng.standard_normal((len(horizons), self.n_draws))
        return float(rate.loc[origin]) * np.exp(sigma * np.sqrt(horizons)[:, None] * z) * future_pop / RATE_PER


# --------------------------------------------------------------------------------------
# The pooled baseline


@dataclass(frozen=True)
class PooledGrowth:
    """Pooled empirical growth: the authority's value at the origin times resampled h-year changes.

    For measure m and horizon h the pool is every log((y[t+h] + 1) / (y[t] + 1)) of measure m
    (within the measure only) over every local authority in the panel and every t with both
    years published and t + h <= origin; it needs at least `min_changes` of them. Draws:
    (y_T + 1) * exp(d) - 1 with d resampled from the pool with replacement. The pool is the
    same for every authority, so the spread is that of authorities' h-year changes in the
    years before the origin.
    """

    name: str = "pooled_growth"
    n_draws: int = BASELINE_DRAWS
    min_changes: int = 30

    @staticmethod
    def changes(values: pd.DataFrame, origin: int, horizon: int) -> np.ndarray:
        """Every h-year log change in `values` (authority x year) with both years <= origin
        (`bayes_lac.data.panel.log_changes`)."""
        from bayes_lac.data.panel import log_changes

        return log_changes(values, origin, horizon)

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0) -> xr.DataArray:
        out = empty_draws(measures, las, horizons, self.n_draws)
        pool_las = local_authorities(panel)
        for i, measure in enumerate(measures):
            values = wide(panel[panel["la_code"].astype(str).isin(pool_las)], outcome_column(measure, quantity))
            # complete the year columns so that y and y + h line up even across a year no one published
            values = values.reindex(columns=range(int(values.columns.min()), int(origin) + 1))
            rng = np.random.default_rng([int(seed), int(origin), MEASURES.index(measure), _stream(self.name)])
            at_origin = values[int(origin)] if int(origin) in values.columns else pd.Series(dtype=float)
            for k, h in enumerate(horizons):
                pool = self.changes(values, int(origin), int(h))
                if len(pool) < self.min_changes:
                    continue
                for j, la in enumerate(las):
                    last = at_origin.get(la, np.nan)
                    if np.isnan(last):
                        continue
                    out.values[i, j, k] = (last + 1) * np.exp(rng.choice(pool, size=self.n_draws, replace=True)) - 1
        return out


def default_baselines(n_draws: int = BASELINE_DRAWS) -> tuple:
    """One instance of every baseline, in `BASELINES` order."""
    made = (
        PooledGrowth(n_draws=n_draws),
        DampedTrendETS(n_draws=n_draws),
        RandomWalkDrift(n_draws=n_draws),
        LastValue(n_draws=n_draws),
        LinearTrend(n_draws=n_draws),
        ConstantRate(n_draws=n_draws),
    )
    return made
