"""The cost backtest scores forecast spend against the outturn, per unit-cost method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_lac.errors import BayesLacError
from bayes_lac.studies.cost_backtest import cost_backtest, cost_backtest_summary
from tests.conftest import make_toy_results


@pytest.fixture(scope="module")
def scored():
    run = make_toy_results()
    la = run.attrs["target_la"]
    years = np.arange(2011, 2025)
    panel = pd.DataFrame(
        {
            "la_code": la,
            "year": years,
            "weekly_cost_per_child": np.where(years <= 2020, 1000 * 1.03 ** (years - 2011), np.nan),
            # outturn after the origin: 60 children at £60k, then a jump no forecast expects
            "spend_looked_after": np.where(years > 2020, np.where(years < 2024, 3.6e6, 5e8), np.nan),
            "looked_after": 60.0,
        }
    )
    return cost_backtest(run, panel, methods=("flat", "trend"))


@pytest.mark.slow
def test_each_outturn_year_is_scored_once_per_method_with_honest_coverage(scored):
    assert sorted(scored["year"].unique()) == [2021, 2022, 2023, 2024]
    assert (scored.groupby("method").size() == 4).all() and (scored["origin"] == 2020).all()
    inside = (scored["lower_gbp"] <= scored["outturn_gbp"]) & (scored["outturn_gbp"] <= scored["upper_gbp"])
    assert (scored["covered"] == inside).all()
    assert not scored.loc[scored["year"] == 2024, "covered"].any()  # the £500m year is missed
    err = 100 * (scored["median_gbp"] - scored["outturn_gbp"]) / scored["outturn_gbp"]
    assert np.allclose(scored["error_percent"], err)
    assert (scored["crps_gbp"] > 0).all()


@pytest.mark.slow
def test_the_summary_is_the_share_covered_and_the_median_errors(scored):
    summary = cost_backtest_summary(scored).set_index("method")
    flat = scored[scored["method"] == "flat"]
    assert summary.at["flat", "coverage"] == pytest.approx(flat["covered"].mean())
    assert summary.at["flat", "median_abs_error_percent"] == pytest.approx(flat["error_percent"].abs().median())
    assert summary.at["flat", "last_year"] == 2024


def test_no_outturn_after_the_origin_is_an_error():
    run = make_toy_results()
    panel = pd.DataFrame(
        {
            "la_code": run.attrs["target_la"],
            "year": [2019, 2020],
            "spend_looked_after": [1e6, 1e6],
            "looked_after": 50.0,
        }
    )
    with pytest.raises(BayesLacError, match="no outturn spend"):
        cost_backtest(run, panel, methods=("flat",))


# ---------------------------------------------------------------------------------------------
# The unit cost of every authority from every origin, and spend through the backtest machinery
# ---------------------------------------------------------------------------------------------


def _growing_panel(n_la=6, growth=0.05, years=range(2013, 2024)) -> pd.DataFrame:
    """Every authority's unit cost grows exactly `growth` a year (cash); 100 children each."""
    rows = []
    for a in range(n_la):
        for year in years:
            unit = (40_000 + 5_000 * a) * (1 + growth) ** (year - 2013)
            rows.append(
                {
                    "la_code": f"E0600{a:04d}",
                    "la_name": f"LA {a}",
                    "year": year,
                    "looked_after": 100.0,
                    "spend_looked_after": 100.0 * unit,
                    "geographic_level": "Local authority",
                }
            )
    return pd.DataFrame(rows)


def test_pooled_unit_cost_growth_is_every_h_year_change_up_to_the_origin():
    from bayes_lac.model.unit_cost import unit_cost_data
    from bayes_lac.studies.cost_backtest import pooled_unit_cost_growth

    table = unit_cost_data(_growing_panel(n_la=3)).table
    table.loc[(table["la_code"] == "E06000000") & (table["year"] == 2015), "unit_cost_gbp_per_child_year"] *= 2
    changes = pooled_unit_cost_growth(table, origin=2016, h=2)
    # t = 2013 and 2014 (t + 2 <= 2016) for 3 authorities; the doubled 2015 ends one change
    # (2013 -> 2015); the change that starts there (2015 -> 2017) ends after the origin
    assert sorted(np.round(changes, 6)) == sorted(np.round([2 * np.log(1.05)] * 5 + [np.log(2) + 2 * np.log(1.05)], 6))


# pooled growth is exact on this panel, so its CRPS is 0 and the ratios to it are infinite
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_unit_cost_backtest_scores_pooled_growth_right_and_flat_too_low_on_steady_growth():
    from bayes_lac.studies.cost_backtest import unit_cost_backtest, unit_cost_backtest_summary

    table = unit_cost_backtest(
        _growing_panel(), [2018, 2019], horizons=(1, 3), methods=("flat", "pooled"), progress=False
    )
    assert set(table["method"]) == {"flat", "pooled"} and set(table["h"]) == {1, 3}
    assert len(table) == 2 * 2 * 6 * 2  # 2 methods x 2 origins x 6 authorities x 2 horizons
    pooled = table[table["method"] == "pooled"]
    assert np.allclose(pooled["median_gbp"], pooled["outturn_gbp"], rtol=1e-9)  # every change is the same
    flat = table[table["method"] == "flat"]
    # flat holds the real unit cost: cash grows at the assumed 2 % (the deflator is cut at the origin)
    expected = flat["outturn_gbp"] * (1.02 / 1.05) ** flat["h"]
    assert np.allclose(flat["median_gbp"], expected, rtol=0.01)
    summary = unit_cost_backtest_summary(table).set_index(["method", "h"])
    assert summary.loc[("flat", 3), "pit_mean"] == 1.0  # every outturn above every draw
    assert summary.loc[("flat", 3), "crps_ratio_to_pooled"] > 1


def test_a_unit_cost_backtest_needs_four_years_at_each_origin():
    from bayes_lac.studies.cost_backtest import unit_cost_backtest

    with pytest.raises(BayesLacError, match="origin 2015: the unit-cost data hold 3 years"):
        unit_cost_backtest(_growing_panel(), [2015], methods=("flat",), progress=False)


class _Children:
    """A count forecaster with known draws: authority j has 100 + j children in every draw."""

    name = "model"

    def config(self):
        return {"children": "fixed"}

    def signature(self):
        return "fixed-children"

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        from bayes_lac.studies.baselines import empty_draws

        out = empty_draws(measures, las, horizons, 50)
        for j in range(len(las)):
            out.values[0, j] = 100.0 + j
        out.attrs.update(fit_seconds=0.0, converged=True)
        return out


def test_spend_is_the_childrens_draws_times_the_unit_cost():
    from bayes_lac.studies.cost_backtest import SpendForecaster

    panel = _growing_panel(years=range(2013, 2020))
    las = ["E06000000", "E06000001"]
    spend = SpendForecaster(_Children(), unit_cost="flat")
    assert spend.name == "model_flat_unit_cost"
    draws = spend(panel, 2019, [1, 2], ["looked_after"], las=las, quantity="spend", seed=0)
    # flat: the 2019 real unit cost held, cash at 2 % a year, with the history's noise around it
    # (small: real = cash growing 5 % deflated by the GDP deflator); each draw is children x unit cost
    for j in range(len(las)):
        unit_2019 = (40_000 + 5_000 * j) * 1.05**6
        for k, h in enumerate([1, 2]):
            x = draws.values[0, j, k]
            assert np.median(x) == pytest.approx((100 + j) * unit_2019 * 1.02**h, rel=0.01)
            assert 0 < np.std(x) / np.median(x) < 0.05
    with pytest.raises(BayesLacError, match="spend on children looked after"):
        spend(panel, 2019, [1], ["looked_after"], las=las, quantity="count")


def test_a_spend_forecast_refuses_an_unconverged_unit_cost_fit(monkeypatch):
    import bayes_lac.model.unit_cost as uc
    from bayes_lac.errors import UnconvergedFitError
    from bayes_lac.studies import cost_backtest as cb

    def failed_fit(data, **settings):
        diagnostics = {"max_rhat": 1.04, "min_ess_bulk": 60.0, "divergences": 5, "seconds": 1.0, "sampler": "x"}
        return uc.UnitCostFit(posterior=None, data=data, diagnostics=diagnostics)

    monkeypatch.setattr(uc, "fit_unit_cost", failed_fit)
    monkeypatch.setattr(cb, "_SHARED", {})
    panel = _growing_panel(years=range(2013, 2020))
    with pytest.raises(UnconvergedFitError, match="unit-cost fit at origin 2019: R-hat 1.040"):
        cb.SpendForecaster(_Children())(panel, 2019, [1], ["looked_after"], las=["E06000000"], quantity="spend")


class _SlowChildren(_Children):
    """`_Children` whose fit takes a measurable time (and says so, as the model forecaster does)."""

    def __call__(self, *args, **kwargs):
        import time

        start = time.perf_counter()
        time.sleep(0.2)
        out = super().__call__(*args, **kwargs)
        out.attrs["fit_seconds"] = time.perf_counter() - start
        return out


def test_spend_forecasters_sharing_a_count_fit_count_its_time_once(monkeypatch):
    from bayes_lac.studies import cost_backtest as cb

    monkeypatch.setattr(cb, "_SHARED", {})
    panel = _growing_panel(years=range(2013, 2020))
    counts = _SlowChildren()
    args = (panel, 2019, [1], ["looked_after"])
    first = cb.SpendForecaster(counts, unit_cost="flat")(*args, las=["E06000000"], quantity="spend")
    again = cb.SpendForecaster(counts, unit_cost="trend")(*args, las=["E06000000"], quantity="spend")
    assert first.attrs["fit_seconds"] >= 0.2  # the fit was made here
    assert again.attrs["fit_seconds"] < 0.1  # and reused here: no fitting time a second time
