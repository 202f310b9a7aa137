"""Backtest of the cost forecast: from one origin, forecast spend against the s251 outturn.

For a run fitted on data up to an origin year (``bayes-lac fit --until YEAR``), the annual cost
of children looked after is forecast under the modelled unit cost (the default of
``bayes-lac costs``) and under the ``flat`` and ``trend`` scenarios, in cash prices of each
year, and set against the outturn (the panel's ``spend_looked_after``, s251 "Total Children
Looked After", £) in every later year the panel has. Everything is fitted with data up to
the origin only: the unit-cost model is refitted to the origin, and the deflator is cut there.
Call it once per origin to build a backtest over several origins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, interval_bounds
from bayes_lac.errors import BayesLacError
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
