"""The annual cost of children looked after, per scenario and year, with intervals.

Annual cost (£ per year) = children looked after x weekly unit cost (£ per child per week)
x 52.18 weeks, per posterior draw:

* Children: the forecast's predictive looked-after count at 31 March (including UASC). The
  31 March count stands for the average number in care through the financial year ending on
  that date, as in DfE's own unit cost (s251 spend / children looked after at 31 March).
* Year Y is the financial year ending 31 March Y (2030 = 2029-30), as in s251 returns.
* Weekly unit cost, by one of these methods:

  ``model`` (the default of ``bayes-lac costs``)
      The unit cost modelled across all authorities (`bayes_lac.model.unit_cost`, fitted on
      the fly with data up to the base year; `modelled_unit_costs`): each draw's unit cost is a
      posterior predictive draw of the authority's s251 spend per child, in cash prices of
      each year, so its uncertainty is in the interval. Pass the DataArray it returns as
      `unit_costs`.

  The scenarios use the authority's own history (`unit_cost_history`: the panel's
  ``weekly_cost_per_child``, or ``spend_looked_after`` / ``looked_after`` / 52.18 where the
  former is missing), deflated to **prices of the base year** with the deflator:

  ``flat`` (the function's default for a history)
      No real growth: the real unit cost stays at the base year's published level (the
      trend's value there if none is published), with the same year-to-year noise as
      ``trend`` (the residual sd of the log-linear fit, drawn per draw).
  ``trend``
      A log-linear trend of the real unit cost on year, fitted to the last 10 years up to the
      base year, with its parameter uncertainty (Bayesian linear regression with the
      standard non-informative prior: sigma**2 from a scaled inverse chi-square, intercept and
      slope from a normal given sigma) and residual noise in every future year.
  ``resample``
      Each future year's real unit cost is one of the last 5 years' real unit costs, drawn at
      random: no trend, the spread of recent years as the uncertainty.

  A single number instead of a history is a constant real weekly unit cost (no uncertainty).
* Prices (`bayes_lac.data.prices`). ``nominal`` (or ``cash``) = cash prices of each year;
  ``real`` = prices of the base year: cash deflated with the GDP deflator (the bundled UK
  GDP deflator unless `prices` is given), using its years up to the base year only and an
  assumed `inflation` (default 2 %) a year after. Every table carries ``prices``,
  ``price_basis`` and ``price_base_year``: one price basis per table.
* Budget risk: `budget_risk` (P(cost > budget) next year and 3, 5, 10 years on) and
  `budget_risk_finding` (its headline sentence).

The base-year cost is the published looked-after count in the base year x the published
unit cost of that year x 52.18 (modelled per draw where either is missing; then said so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.analysis.forecast import Forecast
from bayes_lac.config import CI_PROB, interval_bounds
from bayes_lac.data.panel import COST_COLUMNS, require_columns
from bayes_lac.data.prices import PriceIndex, price_index
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError
from bayes_lac.summaries import (
    Finding,
    format_chance,
    format_financial_year,
    format_money,
    format_percent,
    summarise_draws,
)

#: Weeks in a year (365.25 / 7): annual cost = weekly unit cost x children x this.
WEEKS_PER_YEAR: float = 52.18
#: Years of unit-cost history used by each method when `history_years` is not given.
DEFAULT_HISTORY_YEARS: dict[str, int] = {"trend": 10, "flat": 10, "resample": 5}
UNIT_COST_METHODS: tuple[str, ...] = ("trend", "flat", "resample")
#: Fewest years of history each method projects from. A trend's slope and noise from 4 or 5
#: years have so few degrees of freedom that some draws are absurd (measured: from Thurrock's
#: 4-5 years at the 2016-2017 origins, draws beyond £10^200 a year by the eighth year).
MIN_HISTORY_YEARS: dict[str, int] = {"flat": 4, "trend": 6}
#: Methods a user can name: the modelled unit cost (`bayes_lac.model.unit_cost`) and the scenarios.
ALL_UNIT_COST_METHODS: tuple[str, ...] = ("model", *UNIT_COST_METHODS)

_GBP = ("mean_gbp_per_year", "median_gbp_per_year", "lower_gbp_per_year", "upper_gbp_per_year")


def unit_cost_history(panel: pd.DataFrame, la_code: str) -> pd.DataFrame:
    """An authority's weekly unit cost of a looked-after child, by year.

    Parameters
    ----------
    panel
        Panel DataFrame with ``la_code``, ``year`` and ``weekly_cost_per_child`` (£ per child
        per week) and/or ``spend_looked_after`` (£ gross spend per year) with ``looked_after``.
    la_code
        ONS code of the authority.

    Returns
    -------
    DataFrame with columns ``la_code, year, weekly_cost_per_child`` (£ per child per week,
    cash prices of that year; year = financial year ending 31 March) and ``source``
    (published, or derived from spend / children looked after at 31 March / 52.18).
    Years with neither are left out (there is nothing to show for them); zero or negative
    costs are not used and listed in ``attrs["notices"]``.
    """
    require_columns(panel, COST_COLUMNS, for_output="costs (and the board report's cost section)", any_of=True)
    rows = panel[panel["la_code"] == la_code].sort_values("year")
    if rows.empty:
        raise UnknownAuthorityError(f"authority {la_code} is not in the panel")
    years = rows["year"].astype(int).to_numpy()

    def numbers(column: str) -> np.ndarray:
        if column not in rows.columns:
            return np.full(len(rows), np.nan)
        values = pd.to_numeric(rows[column], errors="coerce").astype(float).to_numpy()
        given = rows[column].notna().to_numpy() & (rows[column].astype(str).str.strip() != "").to_numpy()
        bad = given & ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PanelError(f"panel column {column}, {la_code} {years[i]}: {rows[column].iloc[i]!r} is not a number")
        return values

    weekly = numbers("weekly_cost_per_child")
    spend = numbers("spend_looked_after")
    count = numbers("looked_after")
    out, notices = [], []
    for i, year in enumerate(years):
        for name, v in (("weekly_cost_per_child", weekly[i]), ("spend_looked_after", spend[i])):
            if np.isfinite(v) and v <= 0:
                notices.append(f"{la_code} {year}: {name} is {v:g}, not a usable cost; not used.")
        if np.isfinite(weekly[i]) and weekly[i] > 0:
            out.append((la_code, int(year), float(weekly[i]), "published weekly unit cost (s251)"))
        elif np.isfinite(spend[i]) and np.isfinite(count[i]) and spend[i] > 0 and count[i] > 0:
            out.append(
                (
                    la_code,
                    int(year),
                    spend[i] / count[i] / WEEKS_PER_YEAR,
                    "derived: spend_looked_after / looked_after at 31 March / 52.18",
                )
            )
    table = pd.DataFrame(out, columns=["la_code", "year", "weekly_cost_per_child", "source"])
    if table.empty:
        raise PanelError(f"the panel has no unit cost for {la_code} (weekly_cost_per_child or spend_looked_after)")
    table.attrs["notices"] = notices
    return table


def modelled_unit_costs(
    forecast: Forecast,
    panel: pd.DataFrame,
    *,
    fit=None,
    sampler: str | None = None,
    seed: int = 0,
    **fit_kwargs,
) -> xr.DataArray:
    """The modelled unit cost of the forecast's authority per draw, for `costs`.

    Fits `bayes_lac.model.unit_cost` to every authority in `panel` with data up to the
    forecast's base year (on the fly: under a minute with nutpie; pass `fit` to reuse one) and
    draws the authority's unit cost in each forecast year, one draw per forecast draw.

    Parameters
    ----------
    forecast
        The forecast whose children are costed.
    panel
        Panel with ``spend_looked_after`` and ``looked_after`` for all authorities.
    fit
        A `UnitCostFit` on data up to the base year, to reuse (default: fit now).
    sampler
        NUTS implementation for the fit (default nutpie).
    seed
        Seed of the fit and of the future noise.

    Returns
    -------
    DataArray (draw, year), £ per child-year in cash prices of each year, with ``attrs``:
    ``base_unit_cost_gbp_per_child_year`` (the authority's published unit cost in the base
    year, or NaN), ``history`` (its unit-cost history, as in `Costs.unit_costs`),
    ``assumptions`` (sentences), ``fit`` (the `UnitCostFit`, not saved).
    """
    from bayes_lac.model.unit_cost import (
        DEFAULT_UNIT_COST_SAMPLER,
        fit_unit_cost_cached,
        predict_unit_cost,
        unit_cost_data,
    )

    T = forecast.base_year
    if fit is None:
        data = unit_cost_data(panel, until=T)
        kwargs = {"sampler": sampler or DEFAULT_UNIT_COST_SAMPLER, "seed": seed, **fit_kwargs}
        fit = fit_unit_cost_cached(data, **kwargs)
    elif fit.data.until is not None and fit.data.until > T:
        raise BayesLacError(f"the unit-cost fit uses data to {fit.data.until}, after the forecast's base year {T}")
    last = int(fit.data.years[-1])
    years = forecast.data["year"].values
    n_draws = forecast.data.sizes["draw"]
    draws = predict_unit_cost(fit, forecast.la_code, range(last + 1, int(years.max()) + 1), n_draws=n_draws, seed=seed)
    out = draws.sel(year=years).assign_coords(draw=forecast.data["draw"].values)
    table = fit.data.table[fit.data.table["la_code"] == forecast.la_code]
    at_base = table.loc[table["year"] == T, "unit_cost_gbp_per_child_year"]
    out.attrs = {
        "units": draws.attrs["units"],
        "base_unit_cost_gbp_per_child_year": float(at_base.iloc[0]) if len(at_base) else np.nan,
        "history": pd.DataFrame(
            {
                "year": table["year"].to_numpy(),
                "weekly_cost_per_child": table["unit_cost_gbp_per_child_year"].to_numpy() / WEEKS_PER_YEAR,
                "source": "derived: s251 spend_looked_after / looked_after at 31 March / 52.18",
            }
        ),
        "assumptions": [
            "Weekly unit cost: modelled across all authorities (bayes_lac.model.unit_cost: "
            + fit.design_words()
            + " in cash terms, heavy-tailed noise); each draw is a posterior predictive unit cost, so its "
            "uncertainty is in the interval. The unit cost and the number of children are drawn independently.",
            fit.summary_sentence(),
            *fit.data.notices(),
            *(
                []
                if fit.converged
                else ["The unit-cost fit did not pass its diagnostics (R-hat < 1.01, bulk ESS > 200, no divergences)."]
            ),
            *(
                [
                    f"No unit cost for {forecast.la_name} in {T}: the base-year cost is the first forecast year's unit cost."
                ]
                if not len(at_base)
                else []
            ),
        ],
        "fit": fit,
    }
    return out


@dataclass(frozen=True)
class Costs:
    """Annual cost of children looked after, per draw, scenario and year.

    Attributes
    ----------
    data
        Dataset with dims (draw, scenario, year), year = financial year ending 31 March:
        ``cost_nominal`` and ``cost_real`` (£ per year; cash prices of each year, and of the
        base year), ``children`` (predictive looked-after count), and, dims (draw, year),
        ``weekly_unit_cost_nominal`` / ``weekly_unit_cost_real`` (£ per child per week);
        ``base_cost`` (draw): £ per year in the base year; ``base_children`` (draw): children looked
        after in the base year (published, else modelled).
    la_code, la_name, base_year
        The authority and the last fitted year (prices of the ``real`` variables).
    inflation
        Assumed annual inflation of unit costs (0.02 = 2 %).
    method
        ``trend``, ``flat``, ``resample`` or ``constant``.
    assumptions
        Sentences stating every assumption (the forecast's and the cost model's).
    unit_costs
        The unit-cost history used: ``year, weekly_cost_per_child`` (cash prices of that year),
        ``weekly_cost_real`` (cash prices of the base year), ``source``.
    """

    data: xr.Dataset
    la_code: str
    la_name: str
    base_year: int
    inflation: float
    method: str
    assumptions: tuple[str, ...]
    unit_costs: pd.DataFrame = field(repr=False)
    scenarios: tuple[str, ...] = ()
    converged: bool = True
    price_index: PriceIndex | None = field(default=None, repr=False)

    def prices_label(self, prices: str) -> str:
        """The price basis of `prices` in words, with its base year."""
        prices = _check_prices(prices)
        if prices == "real":
            return f"real terms, prices of {financial_year(self.base_year)}"
        return "cash prices of each year"


def _check_prices(prices: str) -> str:
    """'nominal' for 'nominal' or 'cash', 'real' for 'real'; anything else is an error."""
    if prices == "cash":
        return "nominal"
    if prices not in ("nominal", "real"):
        raise ValueError(
            f"prices must be 'cash' (or 'nominal': cash prices of each year) or 'real' (base-year prices), got {prices!r}"
        )
    return prices


def latest_unit_cost_year(panel: pd.DataFrame, la_code: str, until: int | None = None) -> int:
    """The latest year (ending 31 March, up to `until` if given) in which the panel gives the
    authority a unit cost (`unit_cost_history`): the year an analysis prices things in.

    Raises
    ------
    PanelError
        No unit cost for the authority (up to `until`).
    """
    years = unit_cost_history(panel, la_code)["year"].astype(int)
    if until is not None:
        years = years[years <= int(until)]
    if years.empty:
        raise PanelError(f"the panel has no unit cost for {la_code} up to {until}")
    return int(years.max())


def constant_price_index(inflation: float = 0.02, first: int = 1990, last: int = 2100) -> PriceIndex:
    """A price index rising at a constant `inflation` a year (for assumptions and tests)."""
    years = np.arange(first, last + 1)
    series = pd.Series((1 + inflation) ** (years - first), index=years)
    return PriceIndex(calendar=series, inflation=float(inflation), source=f"an assumed {100 * inflation:g}% a year")


def _price_index_to(index: PriceIndex | None, base_year: int, inflation: float) -> PriceIndex:
    """`index` (default: the bundled GDP deflator) cut at the base year, extended at `inflation`.

    Deflator years after the base year are not used, so a forecast made at the base year uses
    only what was known then.
    """
    if index is None:
        index = price_index(None, inflation)
    calendar = index.calendar.loc[: int(base_year)]
    if calendar.empty:
        raise BayesLacError(f"the deflator ({index.source}) starts after the base year {base_year}")
    return PriceIndex(calendar=calendar, inflation=float(inflation), source=index.source)


#: '2029-30' for the financial year ending 31 March 2030 (the one formatter, kept under the name
#: this module and its callers use).
financial_year = format_financial_year


def _trend_draws(x: np.ndarray, y: np.ndarray, horizon: int, n_draws: int, rng):
    """Log-linear trend of `y` on `x` (years from the base year) per draw, 0..horizon ahead.

    Returns (line, noise, slope, residual sd): `line` (N, H+1) is each draw's trend line and
    `noise` (N, H+1) its year-to-year residual draws, both on the log scale.
    """
    n = len(x)
    X = np.column_stack([np.ones(n), x])
    xtx_inv = np.linalg.inv(X.T @ X)
    beta_hat = xtx_inv @ X.T @ y
    resid = y - X @ beta_hat
    dof = n - 2
    s2 = float(resid @ resid) / dof
    sigma2 = dof * s2 / rng.chisquare(dof, size=n_draws)
    chol = np.linalg.cholesky(xtx_inv)
    beta = beta_hat[None, :] + np.sqrt(sigma2)[:, None] * (rng.standard_normal((n_draws, 2)) @ chol.T)
    h = np.arange(horizon + 1)
    noise = np.sqrt(sigma2)[:, None] * rng.standard_normal((n_draws, horizon + 1))
    line = beta[:, [0]] + beta[:, [1]] * h[None, :]
    return line, noise, float(beta_hat[1]), float(np.sqrt(s2))


def history_unit_cost_draws(
    unit_costs: pd.DataFrame,
    method: str,
    base_year: int,
    horizon: int,
    n_draws: int,
    index: PriceIndex,
    rng: np.random.Generator,
    history_years: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame, float | None, list[str]]:
    """Draws of the real weekly unit cost from an authority's own history (``flat``, ``trend``
    or ``resample``; see the module docstring), for the base year and `horizon` years after.

    Parameters
    ----------
    unit_costs
        History with ``year`` and ``weekly_cost_per_child`` (£ per child per week, cash prices
        of that year), as from `unit_cost_history`; years after `base_year` are not used.
    index
        Price index cut at the base year (`_price_index_to`): it deflates the history.

    Returns
    -------
    (log_real, history, base_unit_observed, assumptions): ``log_real`` (n_draws, horizon + 1)
    is the log of the weekly unit cost in prices of the base year, column 0 the base year;
    ``history`` the years used with ``weekly_cost_real``; ``base_unit_observed`` the published
    weekly unit cost in the base year (cash) or None; ``assumptions`` sentences.
    """
    T, H = int(base_year), int(horizon)
    if method not in UNIT_COST_METHODS:
        raise BayesLacError(f"unknown unit-cost method {method!r}; expected one of {', '.join(UNIT_COST_METHODS)}")
    missing = [c for c in ("year", "weekly_cost_per_child") if c not in unit_costs.columns]
    if missing:
        raise BayesLacError(f"unit-cost history lacks column(s) {', '.join(missing)}")
    assumptions = list(unit_costs.attrs.get("notices", []))
    base_unit_observed = None
    hist = unit_costs.dropna(subset=["weekly_cost_per_child"]).copy()
    hist["year"] = hist["year"].astype(int)
    later = sorted(hist.loc[hist["year"] > T, "year"].tolist())
    if later:
        assumptions.append(f"Unit costs after the base year {T} ({', '.join(map(str, later))}) were not used.")
    hist = hist[hist["year"] <= T].sort_values("year")
    n_keep = history_years or DEFAULT_HISTORY_YEARS[method]
    hist = hist[hist["year"] > T - n_keep]
    if (hist["weekly_cost_per_child"] <= 0).any():
        raise BayesLacError("unit costs must be positive (£ per child per week)")
    hist["weekly_cost_real"] = hist["weekly_cost_per_child"] * index.factor(hist["year"].to_numpy(), T)
    history = hist.reset_index(drop=True)
    if T in set(hist["year"]):
        base_unit_observed = float(hist.loc[hist["year"] == T, "weekly_cost_per_child"].iloc[0])
    span = f"{int(hist['year'].min())}-{int(hist['year'].max())}" if len(hist) else "none"
    if method in ("trend", "flat"):
        need = MIN_HISTORY_YEARS[method]
        if len(hist) < need:
            raise BayesLacError(
                f"the unit-cost {method} method needs at least {need} years up to {T} (found {len(hist)}); use "
                + ("method='flat', " if method == "trend" and len(hist) >= MIN_HISTORY_YEARS["flat"] else "")
                + "method='resample' or give a constant weekly unit cost"
            )
        line, noise, slope, resid_sd = _trend_draws(
            (hist["year"] - T).to_numpy(float), np.log(hist["weekly_cost_real"].to_numpy(float)), H, n_draws, rng
        )
        if method == "trend":
            log_real = line + noise
            assumptions.append(
                f"Weekly unit cost: log-linear trend of the real unit cost ({len(hist)} years, {span}; "
                f"{100 * np.expm1(slope):+.1f}% a year real, residual sd {resid_sd:.3f} on the log scale), "
                "with its parameter uncertainty and a year-to-year noise."
            )
        else:
            # the trend fit supplies only the year-to-year noise; its slope is dropped
            level = np.log(base_unit_observed) if base_unit_observed is not None else line[:, [0]]
            log_real = level + noise
            assumptions.append(
                f"Weekly unit cost: no real growth; held at the {T} level in {T} prices with year-to-year noise "
                f"(residual sd {resid_sd:.3f} on the log scale, from {len(hist)} years {span})."
            )
    else:
        if len(hist) < 3:
            raise BayesLacError(f"resampling needs at least 3 years of unit costs up to {T} (found {len(hist)})")
        pool = np.log(hist["weekly_cost_real"].to_numpy(float))
        log_real = pool[rng.integers(0, len(pool), size=(n_draws, H + 1))]
        assumptions.append(
            f"Weekly unit cost: each future year's real unit cost is one of the {len(hist)} years {span}, drawn at random (no trend)."
        )
    assumptions.append(
        f"History deflated to {financial_year(T)} prices with the deflator; future costs converted to cash "
        f"prices at {100 * index.inflation:g}% a year."
    )
    return log_real, history, base_unit_observed, assumptions


def costs(
    forecast: Forecast,
    unit_costs,
    inflation: float = 0.02,
    seed: int = 0,
    method: str = "flat",
    history_years: int | None = None,
    prices: PriceIndex | None = None,
) -> Costs:
    """Annual cost of children looked after per scenario and year, per draw.

    Parameters
    ----------
    forecast
        From `bayes_lac.analysis.forecast.forecast`; its predictive looked-after counts are used.
    unit_costs
        The modelled unit cost (`modelled_unit_costs`: a DataArray (draw, year) of £ per
        child-year in cash prices of each year; `method` is then ``model``), the authority's
        unit-cost history (`unit_cost_history`: columns ``year`` and ``weekly_cost_per_child``,
        £ per child per week in cash prices of that year), or one number: a constant weekly
        unit cost in cash prices of the base year.
    inflation
        Annual inflation (0.02 = 2 % a year) assumed after the deflator's last year used.
    prices
        Price index for real terms (`bayes_lac.data.prices.price_index`); default the bundled
        UK GDP deflator. Only its years up to the base year are used; later years rise at
        `inflation`.
    seed
        Seed of the unit-cost draws (independent of the forecast's draws).
    method
        ``flat`` (default), ``trend`` or ``resample`` (see the module docstring).
    history_years
        Most recent years of history used (default 10 for ``trend`` and ``flat``, 5 for
        ``resample``).

    Returns
    -------
    Costs
    """
    if not -0.5 < inflation < 0.5:
        raise BayesLacError(f"inflation is an annual rate such as 0.02 (2%), got {inflation}")
    if "looked_after" not in forecast.data["measure"].values:
        raise BayesLacError("the forecast has no looked_after measure, so no cost can be computed")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 251]))
    T = forecast.base_year
    years = forecast.data["year"].values
    H = len(years)
    n_draws = forecast.data.sizes["draw"]
    assumptions = list(forecast.assumptions)
    assumptions.append(
        "Annual cost = children looked after at 31 March (standing for the average number in care through "
        f"the financial year ending then) x weekly unit cost x {WEEKS_PER_YEAR} weeks; year Y is the "
        "financial year ending 31 March Y."
    )
    base_unit_observed = None
    index = _price_index_to(prices, T, inflation)
    to_base = index.factor(np.concatenate([[T], years]), T)  # cash of each year -> prices of T

    if isinstance(unit_costs, xr.DataArray):
        method_used = "model"
        if "year" not in unit_costs.dims or "draw" not in unit_costs.dims:
            raise BayesLacError("a modelled unit cost must have dims (draw, year)")
        missing_years = sorted(set(years.tolist()) - set(unit_costs["year"].values.tolist()))
        if missing_years:
            raise BayesLacError(f"the modelled unit cost has no draws for {', '.join(map(str, missing_years))}")
        if unit_costs.sizes["draw"] != n_draws:
            raise BayesLacError(
                f"the modelled unit cost has {unit_costs.sizes['draw']} draws; the forecast has {n_draws}"
            )
        cash_weekly = unit_costs.sel(year=years).transpose("draw", "year").values / WEEKS_PER_YEAR
        log_real = np.empty((n_draws, H + 1))
        log_real[:, 1:] = np.log(cash_weekly * to_base[None, 1:])
        observed = unit_costs.attrs.get("base_unit_cost_gbp_per_child_year")
        if observed is not None and np.isfinite(observed):
            base_unit_observed = float(observed) / WEEKS_PER_YEAR
        log_real[:, 0] = np.log(base_unit_observed) if base_unit_observed is not None else log_real[:, 1]
        history = unit_costs.attrs.get("history", pd.DataFrame(columns=["year", "weekly_cost_per_child"])).copy()
        if len(history):
            history = history[history["year"].astype(int) <= T].reset_index(drop=True)
            # in base-year prices where the deflator reaches back to the year (blank before it)
            years_h = history["year"].astype(int).to_numpy()
            covered = years_h > int(index.calendar.index.min())
            real = np.full(len(history), np.nan)
            real[covered] = history["weekly_cost_per_child"].to_numpy(float)[covered] * index.factor(
                years_h[covered], T
            )
            history["weekly_cost_real"] = real
        assumptions.extend(unit_costs.attrs.get("assumptions", []))
    elif isinstance(unit_costs, (int, float, np.number)):
        if not unit_costs > 0:
            raise BayesLacError(
                f"a constant weekly unit cost must be positive (£ per child per week), got {unit_costs}"
            )
        method_used = "constant"
        log_real = np.full((n_draws, H + 1), np.log(float(unit_costs)))
        history = pd.DataFrame(columns=["year", "weekly_cost_per_child", "weekly_cost_real", "source"])
        assumptions.append(
            f"Weekly unit cost held at £{float(unit_costs):,.0f} per child in {T} prices (given), without uncertainty."
        )
    else:
        method_used = method
        log_real, history, base_unit_observed, said = history_unit_cost_draws(
            unit_costs, method, T, H, n_draws, index, rng, history_years
        )
        assumptions.extend(said)
    assumptions.extend(index.assumptions(T))

    real_weekly = np.exp(log_real[:, 1:])
    nominal_weekly = real_weekly / to_base[None, 1:]
    children = forecast.data["predicted"].sel(measure="looked_after")

    # Base year: published where available.
    base_unit = np.full(n_draws, base_unit_observed) if base_unit_observed is not None else np.exp(log_real[:, 0])
    if base_unit_observed is None and method_used not in ("constant", "model"):
        assumptions.append(f"No published unit cost for {T}: the base-year unit cost is modelled per draw.")
    hist_lac = forecast.history[(forecast.history["measure"] == "looked_after") & (forecast.history["year"] == T)]
    if len(hist_lac) and np.isfinite(hist_lac["reported_count"].iloc[0]):
        base_children = np.full(n_draws, float(hist_lac["reported_count"].iloc[0]))
    else:
        base_children = forecast.base["expected_reported"].sel(measure="looked_after").values
        assumptions.append(
            f"No published looked-after count for {T}: the base-year count is the modelled expected count."
        )
    base_cost = base_children * base_unit * WEEKS_PER_YEAR

    dims = ("draw", "year")
    data = xr.Dataset(
        {
            "children": children,
            "weekly_unit_cost_real": (dims, real_weekly),
            "weekly_unit_cost_nominal": (dims, nominal_weekly),
            "base_cost": (("draw",), base_cost),
            "base_children": (("draw",), base_children),
        },
        coords={"draw": forecast.data["draw"], "year": years},
    )
    data = data.drop_vars("measure", errors="ignore")
    data["cost_real"] = data["children"] * data["weekly_unit_cost_real"] * WEEKS_PER_YEAR
    data["cost_nominal"] = data["children"] * data["weekly_unit_cost_nominal"] * WEEKS_PER_YEAR
    data["cost_real"].attrs["units"] = f"£ per year, real terms, cash prices of {T}"
    data["cost_nominal"].attrs["units"] = "£ per year, cash prices of each year"
    data["weekly_unit_cost_real"].attrs["units"] = f"£ per child per week, real terms, cash prices of {T}"
    data["weekly_unit_cost_nominal"].attrs["units"] = "£ per child per week, cash prices of each year"
    data = data.transpose("draw", "scenario", "year")
    return Costs(
        data=data,
        la_code=forecast.la_code,
        la_name=forecast.la_name,
        base_year=T,
        inflation=float(inflation),
        method=method_used,
        assumptions=tuple(assumptions),
        unit_costs=history,
        scenarios=tuple(forecast.scenario_names),
        converged=forecast.converged,
        price_index=index,
    )


# --------------------------------------------------------------------------------------------
# Tables, probabilities, charts
# --------------------------------------------------------------------------------------------


def _cost(costs: Costs, prices: str) -> xr.DataArray:
    prices = _check_prices(prices)
    return costs.data["cost_nominal" if prices == "nominal" else "cost_real"]


def _price_columns(table: pd.DataFrame, costs: Costs, prices: str) -> pd.DataFrame:
    """Add ``prices`` (cash or real), ``price_basis`` (in words) and ``price_base_year``."""
    prices = _check_prices(prices)
    table["prices"] = "cash" if prices == "nominal" else "real"
    table["price_basis"] = costs.prices_label(prices)
    table["price_base_year"] = costs.base_year if prices == "real" else pd.NA
    return table


def _check_scenarios(costs: Costs, scenarios) -> list[str]:
    names = list(costs.data["scenario"].values)
    if scenarios is None:
        return names
    bad = [s for s in scenarios if s not in names]
    if bad:
        raise ValueError(f"scenario(s) {', '.join(bad)} not in the costs ({', '.join(names)})")
    return list(scenarios)


def cost_table(
    costs: Costs,
    ci_prob: float = CI_PROB,
    prices: str = "nominal",
    scenarios: Sequence[str] | None = None,
    include_base: bool = True,
) -> pd.DataFrame:
    """Annual cost per scenario and year: mean, median and credible interval in £ per year.

    Returns
    -------
    DataFrame with columns ``la_code, scenario, year, financial_year, years_ahead, prices,
    mean_gbp_per_year, median_gbp_per_year, lower_gbp_per_year, upper_gbp_per_year, ci_prob``;
    ``prices`` is ``nominal`` (cash prices of each year) or ``real`` (cash prices of the base
    year). With `include_base`, each scenario starts with the base year (years_ahead 0).
    """
    scenarios = _check_scenarios(costs, scenarios)
    da = _cost(costs, prices).sel(scenario=scenarios)
    table = summarise_draws(da, sample_dims=("draw",), ci_prob=ci_prob)
    if include_base:
        base = summarise_draws(costs.data["base_cost"], sample_dims=("draw",), ci_prob=ci_prob)
        base_rows = pd.concat([base.assign(scenario=s, year=costs.base_year) for s in scenarios], ignore_index=True)
        table = pd.concat([base_rows, table], ignore_index=True)
    table = table.rename(columns=dict(zip(("mean", "median", "lower", "upper"), _GBP)))
    table["year"] = table["year"].astype(int)
    table["financial_year"] = [financial_year(y) for y in table["year"]]
    table["years_ahead"] = table["year"] - costs.base_year
    table = _price_columns(table, costs, prices)
    table["la_code"] = costs.la_code
    cols = [
        "la_code",
        "scenario",
        "year",
        "financial_year",
        "years_ahead",
        "prices",
        "price_basis",
        "price_base_year",
        *_GBP,
        "ci_prob",
    ]
    order = {s: i for i, s in enumerate(scenarios)}
    table = table[cols].sort_values(["scenario", "year"], key=lambda c: c.map(order) if c.name == "scenario" else c)
    return table.reset_index(drop=True)


def cost_change_table(
    costs: Costs,
    years_ahead: Sequence[int] = (3, 5, 10),
    ci_prob: float = CI_PROB,
    prices: str = "nominal",
    scenarios: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Change in annual cost against the base year, per scenario, `years_ahead` years on.

    The change is computed per draw (future cost minus base-year cost).

    Returns
    -------
    DataFrame with columns ``la_code, scenario, years_ahead, year, financial_year, prices,
    base_year, base_cost_gbp_per_year, median_cost_gbp_per_year, mean_change_gbp_per_year,
    median_change_gbp_per_year, lower_change_gbp_per_year, upper_change_gbp_per_year,
    median_change_percent, ci_prob``.
    """
    scenarios = _check_scenarios(costs, scenarios)
    horizon = int(costs.data["year"].max()) - costs.base_year
    too_far = [h for h in years_ahead if not 1 <= h <= horizon]
    if too_far:
        raise ValueError(f"years ahead {too_far} are outside the forecast's 1-{horizon} years")
    lo, hi = interval_bounds(ci_prob)
    cost = _cost(costs, prices)
    base = costs.data["base_cost"]
    rows = []
    for s in scenarios:
        for h in years_ahead:
            y = costs.base_year + h
            c = cost.sel(scenario=s, year=y)
            change = (c - base).values
            rows.append(
                {
                    "la_code": costs.la_code,
                    "scenario": s,
                    "years_ahead": h,
                    "year": y,
                    "financial_year": financial_year(y),
                    "base_year": costs.base_year,
                    "base_cost_gbp_per_year": float(base.median()),
                    "median_cost_gbp_per_year": float(c.median()),
                    "mean_change_gbp_per_year": float(change.mean()),
                    "median_change_gbp_per_year": float(np.median(change)),
                    "lower_change_gbp_per_year": float(np.quantile(change, lo)),
                    "upper_change_gbp_per_year": float(np.quantile(change, hi)),
                    "median_change_percent": float(np.median(100 * change / base.values)),
                    "ci_prob": ci_prob,
                }
            )
    table = _price_columns(pd.DataFrame(rows), costs, prices)
    return table[[*table.columns[:5], "prices", "price_basis", "price_base_year", *table.columns[5:-3]]]


def prob_cost_exceeds(
    costs: Costs, budget: float, year: int, scenario: str = "trend", prices: str = "nominal"
) -> float:
    """Probability that the annual cost in `year` exceeds `budget` (£ per year, in `prices`)."""
    _check_scenarios(costs, [scenario])
    if year not in costs.data["year"].values:
        raise ValueError(f"year {year} is not in the costs ({costs.base_year + 1}-{int(costs.data['year'].max())})")
    return float((_cost(costs, prices).sel(scenario=scenario, year=year) > budget).mean())


#: Horizons of the budget-risk table: next financial year, 3, 5 and 10 years on.
BUDGET_HORIZONS: tuple[int, ...] = (1, 3, 5, 10)


def budget_risk(
    costs: Costs,
    budget: float,
    years_ahead: Sequence[int] = BUDGET_HORIZONS,
    scenarios: Sequence[str] | None = None,
    prices: str = "nominal",
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """P(annual cost > budget) per scenario for the next financial year and 3, 5 and 10 years on.

    Parameters
    ----------
    costs
        From `costs`.
    budget
        £ per year, on the price basis `prices` (cash: the budget in each year's cash;
        real: in prices of the base year).
    years_ahead
        Horizons; those beyond the forecast are left out and listed in ``attrs["notices"]``.

    Returns
    -------
    DataFrame ``la_code, scenario, years_ahead, year, financial_year, prices, price_basis,
    price_base_year, budget_gbp_per_year, prob_exceeds_budget, median_gbp_per_year,
    lower_gbp_per_year, upper_gbp_per_year, ci_prob``.
    """
    if not np.isfinite(budget) or budget <= 0:
        raise BayesLacError(f"a budget is £ per year, a positive number; got {budget}")
    scenarios = _check_scenarios(costs, scenarios)
    horizon = int(costs.data["year"].max()) - costs.base_year
    kept = [h for h in years_ahead if 1 <= h <= horizon]
    lo, hi = interval_bounds(ci_prob)
    cost = _cost(costs, prices)
    rows = []
    for s in scenarios:
        for h in kept:
            y = costs.base_year + h
            c = cost.sel(scenario=s, year=y).values
            rows.append(
                {
                    "la_code": costs.la_code,
                    "scenario": s,
                    "years_ahead": h,
                    "year": y,
                    "financial_year": financial_year(y),
                    "budget_gbp_per_year": float(budget),
                    "prob_exceeds_budget": float((c > budget).mean()),
                    "median_gbp_per_year": float(np.median(c)),
                    "lower_gbp_per_year": float(np.quantile(c, lo)),
                    "upper_gbp_per_year": float(np.quantile(c, hi)),
                    "ci_prob": ci_prob,
                }
            )
    table = _price_columns(pd.DataFrame(rows), costs, prices)
    table = table[[*table.columns[:5], "prices", "price_basis", "price_base_year", *table.columns[5:-3]]]
    table.attrs["notices"] = [
        f"{h} years ahead is beyond the {horizon}-year forecast; not shown." for h in years_ahead if h not in kept
    ]
    return table


def budget_risk_finding(
    costs: Costs, budget: float, scenario: str = "trend", prices: str = "nominal", ci_prob: float = CI_PROB
) -> Finding:
    """A headline sentence: the chance the cost exceeds `budget` next year and 3, 5 and 10 years on.

    The table is `budget_risk` for `scenario`; the caveats are the cost assumptions.
    """
    table = budget_risk(costs, budget, scenarios=[scenario], prices=prices, ci_prob=ci_prob)
    parts = [
        f"{format_chance(r.prob_exceeds_budget)} in {r.financial_year}"
        + (" (next year)" if r.years_ahead == 1 else f" ({r.years_ahead} years on)")
        for r in table.itertuples()
    ]
    first = table.iloc[0]
    sentence = (
        f"Under the {scenario} scenario, the chance that the cost of children looked after in {costs.la_name} "
        f"exceeds {format_money(budget)} a year is {'; '.join(parts)} ({costs.prices_label(prices)}; next year's "
        f"central estimate {format_money(first['median_gbp_per_year'])}, {format_percent(ci_prob)} credible "
        f"interval {format_money(first['lower_gbp_per_year'])} to {format_money(first['upper_gbp_per_year'])}; "
        f"unit cost: {costs.method})."
    )
    return Finding(
        title=f"Budget risk: chance the cost exceeds {format_money(budget)} a year",
        sentence=sentence,
        table=table,
        ci_prob=ci_prob,
        caveats=_scenario_caveats(costs, scenario) + tuple(table.attrs.get("notices", ())),
    )


def _scenario_caveats(costs: Costs, scenario: str) -> tuple[str, ...]:
    """The costs' assumptions, less those that belong to another scenario ("<name>: ...")."""
    others = [f"{s}:" for s in costs.scenarios if s != scenario]
    return tuple(a for a in costs.assumptions if not any(a.startswith(o) for o in others))


def cost_finding(
    costs: Costs, budget: float, year: int, scenario: str = "trend", prices: str = "nominal", ci_prob: float = CI_PROB
) -> Finding:
    """A sentence on the chance that the annual cost exceeds a budget, with the interval."""
    p = prob_cost_exceeds(costs, budget, year, scenario, prices)
    row = cost_table(costs, ci_prob=ci_prob, prices=prices, scenarios=[scenario], include_base=False)
    row = row[row["year"] == year].reset_index(drop=True)
    row["budget_gbp_per_year"] = budget
    row["prob_exceeds_budget"] = p
    sentence = (
        f"Under the {scenario} scenario there is {format_chance(p)} that the cost of children looked after "
        f"in {costs.la_name} exceeds {format_money(budget)} in {financial_year(year)} (central estimate "
        f"{format_money(row.loc[0, 'median_gbp_per_year'])}; {format_percent(ci_prob)} credible interval "
        f"{format_money(row.loc[0, 'lower_gbp_per_year'])} to {format_money(row.loc[0, 'upper_gbp_per_year'])}; "
        f"{costs.prices_label(prices)})."
    )
    return Finding(
        title=f"Chance the cost of children looked after exceeds {format_money(budget)} in {financial_year(year)}",
        sentence=sentence,
        table=row,
        ci_prob=ci_prob,
        caveats=_scenario_caveats(costs, scenario),
    )


#: Label of the published spend in cost charts and their tables.
PUBLISHED_SPEND = "published spend"


def spend_history(panel: pd.DataFrame, la_code: str) -> pd.DataFrame:
    """An authority's published spend on children looked after, by financial year.

    The panel's ``spend_looked_after``: s251 outturn, "Total Children Looked After" (gross, £ a
    year, cash prices of each year; year = financial year ending 31 March), with its
    ``spend_looked_after_source`` when the panel has one. Years without a figure are left out,
    among them those before 2012-13, whose s251 total excluded adoption and special
    guardianship and is not comparable. An empty frame when the panel holds no spend.

    Returns
    -------
    DataFrame with columns ``la_code, year, financial_year, spend_gbp, source``.
    """
    columns = ["la_code", "year", "financial_year", "spend_gbp", "source"]
    if "spend_looked_after" not in panel.columns:
        return pd.DataFrame(columns=columns)
    rows = panel[(panel["la_code"] == la_code) & panel["spend_looked_after"].notna()].sort_values("year")
    source = rows["spend_looked_after_source"] if "spend_looked_after_source" in rows else pd.Series("", rows.index)
    out = pd.DataFrame(
        {
            "la_code": la_code,
            "year": rows["year"].astype(int).to_numpy(),
            "financial_year": [financial_year(int(y)) for y in rows["year"]],
            "spend_gbp": rows["spend_looked_after"].astype(float).to_numpy(),
            "source": source.fillna("").astype(str).to_numpy(),
        },
        columns=columns,
    )
    return out.reset_index(drop=True)


def _spend_rows(spend: pd.DataFrame | None, table: pd.DataFrame, base_year: int, prices: str) -> pd.DataFrame:
    """Published spend as rows of a cost chart `table` (median = the published figure; no
    interval), on the table's price basis, which must be cash prices of each year."""
    if spend is None or spend.empty:
        return table.iloc[:0]
    if _check_prices(prices) != "nominal":
        raise BayesLacError("published spend is in cash prices of each year: show it with prices='cash'")
    first = table.iloc[0]
    rows = pd.DataFrame(
        {
            "la_code": spend["la_code"].to_numpy(),
            "scenario": PUBLISHED_SPEND,
            "year": spend["year"].astype(int).to_numpy(),
            "financial_year": spend["financial_year"].to_numpy(),
            "years_ahead": spend["year"].astype(int).to_numpy() - base_year,
            "prices": first["prices"],
            "price_basis": first["price_basis"],
            "price_base_year": first["price_base_year"],
            "median_gbp_per_year": spend["spend_gbp"].astype(float).to_numpy(),
        }
    )
    return rows.reindex(columns=table.columns)


def cost_chart_table(
    costs: Costs,
    scenarios: Sequence[str] | None = None,
    prices: str = "nominal",
    ci_prob: float = CI_PROB,
    spend: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The numbers `plot_costs` draws: `cost_table` (base year included), in £ per year, after
    the published spend (`spend_history`, scenario ``published spend``, the figure in the
    median column) when given."""
    table = cost_table(costs, ci_prob=ci_prob, prices=prices, scenarios=scenarios, include_base=True)
    history = _spend_rows(spend, table, costs.base_year, prices)
    if history.empty:
        return table
    return pd.concat([history, table], ignore_index=True)


def plot_costs(
    costs: Costs,
    *,
    scenarios: Sequence[str] | None = None,
    prices: str = "nominal",
    ci_prob: float = CI_PROB,
    spend: pd.DataFrame | None = None,
    ax=None,
):
    """Annual cost per scenario (£m a year): median and credible band from the base year, and
    the published spend before it (`spend_history`; cash prices only) when given.

    The numbers drawn are `cost_chart_table` with the same arguments. Returns the figure.
    """
    from matplotlib.ticker import MaxNLocator

    from bayes_lac.style import BAND_ALPHA, get_axes, series_style

    table = cost_chart_table(costs, scenarios=scenarios, prices=prices, ci_prob=ci_prob, spend=spend)
    fig, ax = get_axes(ax)
    published = table[table["scenario"] == PUBLISHED_SPEND]
    if not published.empty:
        ax.plot(
            published["year"],
            published["median_gbp_per_year"] / 1e6,
            color="black",
            linestyle="-",
            marker="o",
            markersize=4,
            label=f"{PUBLISHED_SPEND} (s251 outturn)",
        )
    table = table[table["scenario"] != PUBLISHED_SPEND]
    for i, s in enumerate(table["scenario"].unique()):
        t = table[table["scenario"] == s]
        style = series_style(i + 1)
        ax.fill_between(
            t["year"],
            t["lower_gbp_per_year"] / 1e6,
            t["upper_gbp_per_year"] / 1e6,
            color=style["color"],
            alpha=BAND_ALPHA,
            linewidth=0,
        )
        ax.plot(
            t["year"],
            t["median_gbp_per_year"] / 1e6,
            **style,
            markersize=3,
            label=f"{s} (median)",
        )
    if published.empty:
        ax.set_title(f"{costs.la_name}: annual cost of children looked after from {financial_year(costs.base_year)}")
    else:
        ax.set_title(f"{costs.la_name}: published spend on children looked after, and the forecast cost")
    ax.set_xlabel("Financial year ending 31 March")
    ax.set_ylabel(f"£m a year, {costs.prices_label(prices)}")
    ax.legend(title=f"Bands: {format_percent(ci_prob)} credible interval", fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig


def unit_cost_chart_table(costs: Costs, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """The numbers `plot_unit_costs` draws: the authority's published weekly unit cost (its
    history, to the base year) and the forecast one (median and credible interval of the draws
    the costs use), £ per child per week in cash prices of each year.

    Returns
    -------
    DataFrame ``la_code, year, financial_year, kind`` (``published`` or ``forecast``),
    ``median_gbp_per_week, lower_gbp_per_week, upper_gbp_per_week`` (the published figure in the
    median column, no interval), ``ci_prob``, ``prices``, ``price_basis``, ``price_base_year``
    (cash prices of each year, as every cost table states its basis).
    """
    lo, hi = interval_bounds(ci_prob)
    hist = costs.unit_costs
    hist = hist[hist["year"].astype(int) <= costs.base_year] if len(hist) else hist
    published = pd.DataFrame(
        {
            "year": hist["year"].astype(int).to_numpy() if len(hist) else np.array([], dtype=int),
            "kind": "published",
            "median_gbp_per_week": hist["weekly_cost_per_child"].astype(float).to_numpy() if len(hist) else [],
        }
    )
    draws = costs.data["weekly_unit_cost_nominal"]
    forecast_rows = pd.DataFrame(
        {
            "year": draws["year"].values.astype(int),
            "kind": "forecast",
            "median_gbp_per_week": draws.median("draw").values,
            "lower_gbp_per_week": draws.quantile(lo, "draw").values,
            "upper_gbp_per_week": draws.quantile(hi, "draw").values,
        }
    )
    out = pd.concat([published, forecast_rows], ignore_index=True)
    out.insert(0, "la_code", costs.la_code)
    out.insert(2, "financial_year", [financial_year(int(y)) for y in out["year"]])
    out["ci_prob"] = ci_prob
    out = _price_columns(out, costs, "cash")
    return out.reindex(
        columns=[
            "la_code",
            "year",
            "financial_year",
            "kind",
            "median_gbp_per_week",
            "lower_gbp_per_week",
            "upper_gbp_per_week",
            "ci_prob",
            "prices",
            "price_basis",
            "price_base_year",
        ]
    )


def plot_unit_costs(costs: Costs, *, ci_prob: float = CI_PROB, ax=None):
    """The weekly unit cost of a looked-after child: published to the base year, then the
    forecast's median and credible band (cash prices of each year). The numbers drawn are
    `unit_cost_chart_table`. Returns the figure."""
    from matplotlib.ticker import MaxNLocator

    from bayes_lac.style import BAND_ALPHA, get_axes, series_style

    table = unit_cost_chart_table(costs, ci_prob=ci_prob)
    fig, ax = get_axes(ax)
    published = table[table["kind"] == "published"]
    if not published.empty:
        ax.plot(
            published["year"],
            published["median_gbp_per_week"],
            color="black",
            marker="o",
            markersize=4,
            label="published (s251 spend per child)",
        )
    ahead = table[table["kind"] == "forecast"]
    style = series_style(1)
    ax.fill_between(
        ahead["year"],
        ahead["lower_gbp_per_week"],
        ahead["upper_gbp_per_week"],
        color=style["color"],
        alpha=BAND_ALPHA,
        linewidth=0,
    )
    ax.plot(
        ahead["year"],
        ahead["median_gbp_per_week"],
        **style,
        markersize=3,
        label=f"forecast (median; {costs.method} unit cost)",
    )
    ax.set_title(f"{costs.la_name}: weekly unit cost of a looked-after child")
    ax.set_xlabel("Financial year ending 31 March")
    ax.set_ylabel("£ per child per week, cash prices of each year")
    ax.legend(title=f"Band: {format_percent(ci_prob)} credible interval", fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
