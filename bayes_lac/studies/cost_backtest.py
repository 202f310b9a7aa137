"""Backtests of the cost forecast against the s251 outturn.

* `unit_cost_backtest`: every authority's unit cost forecast from each origin (the unit-cost
  model refitted at the origin, beside the ``flat`` and ``trend`` scenarios and the pooled
  empirical growth), scored against the outturn unit cost (`bench/unit_cost_backtest.py`).
* `SpendForecaster`: annual spend (children x unit cost, per draw) as a forecaster of the
  backtest machinery (`bayes_lac.studies.backtest.backtest` with ``quantity="spend"``), so the
  cost a report gives is scored from every origin on the same cells as the baselines
  (`bench/spend_backtest.py`).
* `cost_backtest`: one run fitted up to an origin (``bayes-lac fit --until YEAR``), its cost
  forecast under each unit-cost method against the outturn in every later year.

Everything is fitted with data up to the origin only: the unit-cost model is refitted there,
and the deflator is cut there (2 % a year after it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, interval_bounds
from bayes_lac.errors import BayesLacError
from bayes_lac.studies.baselines import method_name
from bayes_lac.studies.scoring import fair_crps


def cost_backtest(
    run: xr.DataTree,
    panel: pd.DataFrame,
    la: str | None = None,
    methods: Sequence[str] = ("model", "flat", "trend"),
    scenario: str = "trend",
    ci_prob: float = CI_PROB,
    seed: int = 0,
    unit_cost_fit=None,
    unit_cost_sampler: str | None = None,
) -> pd.DataFrame:
    """Forecast spend from the run's last year against the outturn, per unit-cost method.

    Parameters
    ----------
    run
        A run fitted with data up to the origin (its last fitted year).
    panel
        Panel with the outturn ``spend_looked_after`` after the origin, and the data the
        unit-cost model needs up to it.
    la
        Authority (default the run's target).
    methods
        Unit-cost methods to score: ``model``, ``flat``, ``trend``, ``resample``.
    scenario
        Forecast scenario of the children (default ``trend``).
    unit_cost_fit
        A `UnitCostFit` on data up to the origin, to reuse.

    Returns
    -------
    DataFrame, one row per method and outturn year: ``la_code, origin, method, year,
    years_ahead, outturn_gbp, median_gbp, lower_gbp, upper_gbp, ci_prob, covered``
    (outturn inside the interval), ``width_percent`` (interval width / median x 100),
    ``error_percent`` ((median - outturn) / outturn x 100), ``crps_gbp`` (fair CRPS of the
    draws against the outturn, £; lower is better); all £ per year in cash prices of each year. ``attrs["unit_cost_fit"]`` holds the unit-cost fit used.
    """
    from bayes_lac.analysis.costs import costs, modelled_unit_costs, unit_cost_history
    from bayes_lac.analysis.forecast import forecast
    from bayes_lac.model.results import run_info

    run_info(run)  # refuses a latent-state run: this backtest is of the default model's costs

    fc = forecast(run, la=la, horizon=1, scenarios=[scenario], seed=seed)
    origin = fc.base_year
    outturn = panel[(panel["la_code"] == fc.la_code) & (panel["year"] > origin)].set_index("year")["spend_looked_after"]
    outturn = outturn.dropna()
    if outturn.empty:
        raise BayesLacError(f"the panel has no outturn spend for {fc.la_code} after {origin}")
    horizon = int(outturn.index.max()) - origin
    fc = forecast(run, la=la, horizon=horizon, scenarios=[scenario], seed=seed)
    lo, hi = interval_bounds(ci_prob)
    rows = []
    fit = unit_cost_fit
    for method in methods:
        if method == "model":
            unit = modelled_unit_costs(fc, panel, fit=fit, sampler=unit_cost_sampler, seed=seed)
            fit = unit.attrs["fit"]
            co = costs(fc, unit, seed=seed)
        else:
            history = unit_cost_history(panel[panel["year"] <= origin], fc.la_code)
            co = costs(fc, history, seed=seed, method=method)
        cost = co.data["cost_nominal"].sel(scenario=scenario)
        for year, value in outturn.items():
            draws = cost.sel(year=int(year)).values
            median = float(np.median(draws))
            lower, upper = float(np.quantile(draws, lo)), float(np.quantile(draws, hi))
            rows.append(
                {
                    "la_code": fc.la_code,
                    "origin": origin,
                    "method": method,
                    "year": int(year),
                    "years_ahead": int(year) - origin,
                    "outturn_gbp": float(value),
                    "median_gbp": median,
                    "lower_gbp": lower,
                    "upper_gbp": upper,
                    "ci_prob": ci_prob,
                    "covered": bool(lower <= value <= upper),
                    "width_percent": 100 * (upper - lower) / median,
                    "error_percent": 100 * (median - value) / value,
                    "crps_gbp": float(fair_crps(draws[None, :], np.array([float(value)]))[0]),
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["unit_cost_fit"] = fit
    return table


def cost_backtest_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: coverage (share of outturns inside the interval), median interval width and
    median absolute error (% of the median / the outturn), mean CRPS (£m) and the error in the
    last year.

    Returns
    -------
    DataFrame ``method, n, coverage, ci_prob, median_width_percent, median_abs_error_percent,
    mean_crps_gbp_m, last_year, last_error_percent``.
    """
    out = []
    for method, g in table.groupby("method", sort=False):
        last = g.loc[g["year"].idxmax()]
        out.append(
            {
                "method": method,
                "n": len(g),
                "coverage": float(g["covered"].mean()),
                "ci_prob": float(g["ci_prob"].iloc[0]),
                "median_width_percent": float(g["width_percent"].median()),
                "median_abs_error_percent": float(g["error_percent"].abs().median()),
                "mean_crps_gbp_m": float(g["crps_gbp"].mean() / 1e6) if "crps_gbp" in g else np.nan,
                "last_year": int(last["year"]),
                "last_error_percent": float(last["error_percent"]),
            }
        )
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# The unit cost alone, every authority, every origin
# --------------------------------------------------------------------------------------------

#: Methods of `unit_cost_backtest`: the modelled unit cost, the authority's own history held
#: flat or trended in real terms (the ``flat`` and ``trend`` scenarios of `costs`), and the
#: pooled empirical growth of every authority's unit cost.
UNIT_COST_BACKTEST_METHODS: tuple[str, ...] = ("model", "flat", "trend", "pooled")
#: Interval levels scored.
UNIT_COST_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)


def pooled_unit_cost_growth(table: pd.DataFrame, origin: int, h: int) -> np.ndarray:
    """Every h-year log change of the unit cost, across all authorities, ending at or before
    `origin`: log(u[t + h] / u[t]) for each authority with both years used and t + h <= origin.
    """
    wide = table.pivot(index="la_code", columns="year", values="unit_cost_gbp_per_child_year")
    years = [y for y in wide.columns if y + h <= origin and y + h in wide.columns]
    changes = [np.log(wide[y + h] / wide[y]).dropna().to_numpy() for y in years]
    return np.concatenate(changes) if changes else np.array([])


def scenario_unit_cost(
    history: pd.DataFrame, method: str, origin: int, horizon: int, n_draws: int, index, rng
) -> np.ndarray:
    """Draws (n_draws, horizon) of an authority's unit cost 1..horizon years after `origin` under
    a named scenario of `bayes_lac.analysis.costs` (``flat``, ``trend``), in £ per child-year,
    cash prices of each year: its real weekly unit cost from `history` (``year``,
    ``weekly_cost_per_child``), brought back to cash with `index` (a deflator cut at the
    origin). Raises `BayesLacError` when the history is too short for the method."""
    from bayes_lac.analysis.costs import WEEKS_PER_YEAR, history_unit_cost_draws

    log_real, *_ = history_unit_cost_draws(history, method, origin, horizon, n_draws, index, rng)
    to_base = index.factor(np.arange(origin + 1, origin + horizon + 1), origin)
    return np.exp(log_real[:, 1:]) / to_base[None, :] * WEEKS_PER_YEAR


def unit_cost_backtest(
    panel: pd.DataFrame,
    origins: Sequence[int],
    horizons: Sequence[int] = (1, 2, 3, 4, 5),
    methods: Sequence[str] = UNIT_COST_BACKTEST_METHODS,
    n_draws: int = 1000,
    seed: int = 0,
    fit_settings: dict | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Forecast every authority's unit cost from each origin and score it against the outturn.

    At each origin T the unit-cost model (`bayes_lac.model.unit_cost`) is fitted to every
    authority with data up to T only; the deflator of the ``flat`` and ``trend`` methods is cut
    at T and rises at the package's assumed 2 % a year after it, as a forecast made at T would.
    An authority is forecast from T when it has a unit cost in T; a cell is scored when its
    outturn (s251 spend over children looked after, the model's own definition and exclusions)
    exists T + h years on.

    Parameters
    ----------
    panel
        Panel with ``spend_looked_after`` and ``looked_after`` for all authorities.
    origins
        Origin years (financial year ending 31 March); each needs 4 years of unit costs.
    horizons
        Years ahead scored.
    methods
        Any of `UNIT_COST_BACKTEST_METHODS`.
    n_draws
        Draws per forecast.
    fit_settings
        Keyword arguments of `bayes_lac.model.unit_cost.fit_unit_cost` (e.g. ``growth_model``).

    Returns
    -------
    DataFrame, one row per origin, authority, method and horizon: ``origin, la_code, method,
    h, year, outturn_gbp`` (£ per child-year, cash), ``median_gbp, lower_90_gbp, upper_90_gbp``,
    ``covered_50, covered_80, covered_90``, ``pit``, ``crps_log`` (fair CRPS of the log unit
    cost: scale-free, so authorities of any cost weigh alike), ``crps_gbp``. ``attrs``:
    ``fits`` (per origin: the fit's diagnostics and whether it passed its gate).
    """
    from bayes_lac.analysis.costs import WEEKS_PER_YEAR, _price_index_to
    from bayes_lac.model.unit_cost import fit_unit_cost, predict_unit_cost, unit_cost_data
    from bayes_lac.studies.scoring import randomised_pit

    unknown = sorted(set(methods) - set(UNIT_COST_BACKTEST_METHODS))
    if unknown:
        raise BayesLacError(
            f"unknown unit-cost backtest method(s) {unknown}; expected {', '.join(UNIT_COST_BACKTEST_METHODS)}"
        )
    horizons = sorted(int(h) for h in horizons)
    outcomes = unit_cost_data(panel).table.set_index(["la_code", "year"])["unit_cost_gbp_per_child_year"]
    rows, fits = [], {}
    from tqdm.auto import tqdm

    for origin in tqdm(origins, desc="unit-cost backtest origins", unit="origin", disable=not progress):
        origin = int(origin)
        data = unit_cost_data(panel, until=origin)
        if len(data.years) < 4:
            raise BayesLacError(f"origin {origin}: the unit-cost data hold {len(data.years)} years (4 needed)")
        fit = fit_unit_cost(data, seed=seed + origin, **(fit_settings or {})) if "model" in methods else None
        if fit is not None:
            fits[origin] = {**fit.diagnostics, "converged": fit.converged}
        index = _price_index_to(None, origin, 0.02)
        last_h = max(horizons)
        pooled = {h: pooled_unit_cost_growth(data.table, origin, h) for h in horizons}
        at_origin = data.table[data.table["year"] == origin]
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), origin, 2512]))
        for _, base in at_origin.iterrows():
            la = base["la_code"]
            cells = [(h, origin + h) for h in horizons if (la, origin + h) in outcomes.index]
            if not cells:
                continue
            history = data.table[data.table["la_code"] == la]
            weekly = pd.DataFrame(
                {
                    "year": history["year"],
                    "weekly_cost_per_child": history["unit_cost_gbp_per_child_year"] / WEEKS_PER_YEAR,
                }
            )
            draws = {}
            for method in methods:
                if method == "model":
                    d = predict_unit_cost(fit, la, range(origin + 1, origin + last_h + 1), n_draws=n_draws, seed=seed)
                    draws[method] = d.values
                elif method == "pooled":
                    out = np.empty((n_draws, last_h))
                    for h in horizons:
                        pool = pooled[h]
                        out[:, h - 1] = (
                            base["unit_cost_gbp_per_child_year"] * np.exp(pool[rng.integers(0, len(pool), n_draws)])
                            if len(pool)
                            else np.nan
                        )
                    draws[method] = out
                else:
                    try:
                        draws[method] = scenario_unit_cost(weekly, method, origin, last_h, n_draws, index, rng)
                    except BayesLacError:
                        continue  # too short a history for the method: not forecast (counted as missing)
            for method, d in draws.items():
                for h, year in cells:
                    x = d[:, h - 1]
                    if not np.all(np.isfinite(x)):
                        continue
                    y = float(outcomes[(la, year)])
                    row = {
                        "origin": origin,
                        "la_code": la,
                        "method": method,
                        "h": h,
                        "year": year,
                        "outturn_gbp": y,
                        "median_gbp": float(np.median(x)),
                        "lower_90_gbp": float(np.quantile(x, 0.05)),
                        "upper_90_gbp": float(np.quantile(x, 0.95)),
                    }
                    for level in UNIT_COST_LEVELS:
                        lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
                        row[f"covered_{round(100 * level)}"] = bool(lo <= y <= hi)
                    row["pit"] = float(randomised_pit(x[None, :], np.array([y]), rng)[0])
                    row["crps_log"] = float(fair_crps(np.log(x)[None, :], np.array([np.log(y)]))[0])
                    row["crps_gbp"] = float(fair_crps(x[None, :], np.array([y]))[0])
                    rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["fits"] = fits
    return table


def unit_cost_backtest_summary(table: pd.DataFrame, reference: str = "pooled", seed: int = 0) -> pd.DataFrame:
    """Per method and horizon: cells, origins, coverage of the 50/80/90 % intervals, PIT mean,
    median absolute error of the median (%), mean log CRPS, and the ratio of summed log CRPS to
    `reference` on the same cells with a bootstrap-over-origins 90 % interval.
    """
    from bayes_lac.studies.scoring import bootstrap_ratio

    out = []
    for (method, h), g in table.groupby(["method", "h"], sort=False):
        row = {
            "method": method,
            "h": int(h),
            "n": len(g),
            "origins": g["origin"].nunique(),
            **{f"coverage_{c.split('_')[1]}": float(g[c].mean()) for c in g.columns if c.startswith("covered_")},
            "pit_mean": float(g["pit"].mean()),
            "median_abs_error_percent": float(
                (100 * (g["median_gbp"] - g["outturn_gbp"]) / g["outturn_gbp"]).abs().median()
            ),
            "mean_crps_log": float(g["crps_log"].mean()),
        }
        ref = table[(table["method"] == reference) & (table["h"] == h)]
        pairs = g.merge(ref[["origin", "la_code", "crps_log"]], on=["origin", "la_code"], suffixes=("", "_ref"))
        if len(pairs) and method != reference:
            by = pairs.groupby("origin")[["crps_log", "crps_log_ref"]].sum()
            ratio, lo, hi = bootstrap_ratio(
                by["crps_log"].to_numpy(), by["crps_log_ref"].to_numpy(), rng=np.random.default_rng(seed)
            )
            row.update({f"crps_ratio_to_{reference}": ratio, "ratio_lower": lo, "ratio_upper": hi})
        out.append(row)
    return pd.DataFrame(out).sort_values(["method", "h"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Spend through the backtest machinery: children x unit cost from every origin
# --------------------------------------------------------------------------------------------

#: Unit costs a `SpendForecaster` can price children with.
SPEND_UNIT_COSTS: tuple[str, ...] = ("model", "flat", "trend")

# One count fit and one unit-cost fit per origin serve every spend forecaster of a backtest
# (they differ only in the unit cost): kept here for the life of the process.
_SHARED: dict = {}


def _shared(key, make):
    """`make()` once per `key` in this process; an exception is kept and raised again."""
    if key not in _SHARED:
        try:
            _SHARED[key] = ("value", make())
        except Exception as err:  # noqa: BLE001 - kept and re-raised for the next forecaster
            _SHARED[key] = ("error", err)
    kind, value = _SHARED[key]
    if kind == "error":
        raise value
    return value


@dataclass(frozen=True)
class SpendForecaster:
    """Annual spend on children looked after (£, cash) as a backtest forecaster
    (`bayes_lac.studies.backtest.backtest` with ``quantity="spend"``): each draw of the
    children forecast by `counts` (e.g. `ModelForecaster`, the report's fit) times a draw of
    the unit cost, as `bayes_lac.analysis.costs.costs` prices a forecast.

    ``unit_cost="model"`` is the default of ``bayes-lac costs`` and the report: the unit-cost
    model fitted at the origin on every authority in the panel (a fit failing its gate raises
    `UnconvergedFitError` unless `allow_unconverged`); ``flat`` and ``trend`` are the named
    scenarios on the authority's own history (deflator cut at the origin, 2 % a year after).
    Forecasters that share `counts` share one count fit per origin, and one unit-cost fit.
    """

    counts: object
    unit_cost: str = "model"
    allow_unconverged: bool = False

    @property
    def name(self) -> str:
        """``model`` for the package's default (the report's children x the modelled unit cost:
        the reference of the backtest's ratios), else e.g. ``model_flat_unit_cost``."""
        counts = method_name(self.counts)
        return counts if self.unit_cost == "model" else f"{counts}_{self.unit_cost}_unit_cost"

    def config(self) -> dict:
        import inspect

        from bayes_lac.model import unit_cost as uc

        config = {"counts": self.counts.config(), "unit_cost": self.unit_cost}
        if self.unit_cost == "model":
            config["unit_cost_model"] = {
                "priors": uc.UNIT_COST_PRIORS,
                **{
                    k: p.default
                    for k, p in inspect.signature(uc.fit_unit_cost).parameters.items()
                    if p.kind is p.KEYWORD_ONLY and k != "progressbar"
                },
            }
            config["allow_unconverged"] = bool(self.allow_unconverged)
        return config

    def signature(self) -> str:
        from bayes_lac import __version__
        from bayes_lac.studies.backtest import config_hash

        return f"{self.name}:{__version__}:{config_hash(self.config())}"

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="spend", seed=0):
        from bayes_lac.analysis.costs import (
            _price_index_to,
            unit_cost_history,
        )
        from bayes_lac.errors import UnconvergedFitError
        from bayes_lac.model.unit_cost import fit_unit_cost, predict_unit_cost, unit_cost_data

        if self.unit_cost not in SPEND_UNIT_COSTS:
            raise BayesLacError(f"unit_cost must be one of {', '.join(SPEND_UNIT_COSTS)}, got {self.unit_cost!r}")
        if quantity != "spend" or list(measures) != ["looked_after"]:
            raise BayesLacError(
                f"the spend forecaster forecasts spend on children looked after; asked for {quantity} of "
                f"{', '.join(measures)}"
            )
        origin = int(origin)
        horizons = [int(h) for h in horizons]
        from bayes_lac.studies.backtest import panel_hash

        digest = panel_hash(panel)
        key = (self.counts.signature(), origin, tuple(horizons), tuple(las), int(seed), digest)
        # fits shared with the other spend forecasters count where they were made: a forecaster
        # reusing one reports no fitting time (its time tables would otherwise count it twice)
        start = time.perf_counter()
        children = _shared(
            ("counts", *key),
            lambda: self.counts(panel, origin, horizons, ["looked_after"], las=las, quantity="count", seed=seed),
        )
        out = children.copy(data=np.full(children.shape, np.nan))
        n = children.sizes["draw"]
        years = [origin + h for h in horizons]
        converged = bool(children.attrs.get("converged", True))
        if self.unit_cost == "model":
            fit = _shared(
                ("unit_cost", origin, digest, int(seed)),
                lambda: fit_unit_cost(unit_cost_data(panel, until=origin), seed=int(seed) + origin),
            )
            if not fit.converged:
                d = fit.diagnostics
                message = (
                    f"unit-cost fit at origin {origin}: R-hat {d['max_rhat']:.3f}, bulk ESS {d['min_ess_bulk']:.0f}, "
                    f"{d['divergences']} divergences"
                )
                if not self.allow_unconverged:
                    raise UnconvergedFitError(message)
                converged = False
        fit_seconds = time.perf_counter() - start
        index = _price_index_to(None, origin, 0.02)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), origin, 2513]))
        for j, la in enumerate(las):
            kids = children.values[0, j]  # (horizon, draw)
            if not np.isfinite(kids).all():
                continue
            if self.unit_cost == "model":
                if la not in fit.data.la:
                    continue  # no usable unit cost up to the origin: counted as missing
                unit = predict_unit_cost(fit, la, range(origin + 1, max(years) + 1), n_draws=n, seed=int(seed) + origin)
                per_child = unit.sel(year=years).transpose("year", "draw").values
            else:
                try:
                    cash = scenario_unit_cost(
                        unit_cost_history(panel, la), self.unit_cost, origin, max(horizons), n, index, rng
                    )
                except BayesLacError:
                    continue  # too short a unit-cost history up to the origin: counted as missing
                per_child = cash[:, [h - 1 for h in horizons]].T
            out.values[0, j] = kids * per_child
        out.attrs.update(fit_seconds=fit_seconds, converged=converged)
        return out
