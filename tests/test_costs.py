"""Cost projections: units of money and time, unit-cost models, tables and the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.costs import (
    WEEKS_PER_YEAR,
    constant_price_index,
    cost_change_table,
    cost_chart_table,
    cost_finding,
    cost_table,
    costs,
    financial_year,
    plot_costs,
    prob_cost_exceeds,
    unit_cost_history,
)
from bayes_lac.analysis.forecast import forecast
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError
from bayes_lac.model.results import save_run
from tests.conftest import make_toy_results

BASE = 2020


@pytest.fixture(scope="module")
def fc():
    return forecast(make_toy_results(), horizon=10, scenarios=["trend", "population-only", "converge-england"], seed=2)


def _constant_children(fc, n=100.0):
    """The forecast with exactly `n` children looked after in every draw, scenario and year."""
    data = fc.data.copy()
    data["predicted"] = data["predicted"] * 0 + n
    history = pd.DataFrame(
        {
            "measure": ["looked_after"],
            "year": [BASE],
            "reported_count": [n],
            "population_0_17": [40_000.0],
            "reported_rate": [n / 4],
        }
    )
    return dataclasses.replace(fc, data=data, history=history)


def _history(la_code, growth=1.05, noise=0.0, years=range(2011, 2021), start=1000.0, seed=0):
    yrs = np.array(list(years))
    eps = np.random.default_rng(seed).normal(0, noise, len(yrs))
    return pd.DataFrame(
        {"la_code": la_code, "year": yrs, "weekly_cost_per_child": start * growth ** (yrs - yrs[0]) * np.exp(eps)}
    )


def test_constant_unit_cost_and_children_give_5_218m_a_year(fc):
    c = costs(_constant_children(fc), 1000.0, inflation=0.0, prices=constant_price_index(0.0))
    assert np.allclose(c.data["cost_nominal"], 5_218_000.0)
    assert np.allclose(c.data["cost_real"], 5_218_000.0)
    assert np.allclose(c.data["base_cost"], 5_218_000.0)
    t = cost_table(c)
    assert {"mean_gbp_per_year", "median_gbp_per_year", "lower_gbp_per_year", "upper_gbp_per_year"} <= set(t.columns)
    assert np.allclose(t["median_gbp_per_year"], 5_218_000.0)
    assert c.data["cost_real"].attrs["units"] == f"£ per year, real terms, cash prices of {BASE}"


def test_inflation_gives_nominal_and_base_year_prices(fc):
    c = costs(_constant_children(fc), 1000.0, inflation=0.02, prices=constant_price_index(0.02))
    nominal = c.data["cost_nominal"].sel(scenario="trend", year=BASE + 10)
    real = c.data["cost_real"].sel(scenario="trend", year=BASE + 10)
    assert np.allclose(nominal, 100 * 1000 * WEEKS_PER_YEAR * 1.02**10)
    assert np.allclose(real, 100 * 1000 * WEEKS_PER_YEAR)
    change = cost_change_table(c, years_ahead=(3, 5, 10), prices="nominal")
    row = change[(change["scenario"] == "trend") & (change["years_ahead"] == 5)].iloc[0]
    assert np.isclose(row["median_change_gbp_per_year"], 5_218_000 * (1.02**5 - 1))
    assert np.isclose(row["median_change_percent"], 100 * (1.02**5 - 1))
    assert row["financial_year"] == "2024-25"
    real_change = cost_change_table(c, prices="real")
    assert np.allclose(real_change["median_change_gbp_per_year"], 0.0)


def test_unit_cost_trend_recovers_known_growth(fc):
    history = _history(fc.la_code, growth=1.05, noise=0.01)
    c = costs(_constant_children(fc), history, inflation=0.02, method="trend", prices=constant_price_index(0.02))
    weekly_nominal = c.data["weekly_unit_cost_nominal"].median("draw")
    # 5 % a year nominal from £1,000 in 2011: £1,000 * 1.05**19 in 2030
    assert np.isclose(float(weekly_nominal.sel(year=2030)), 1000 * 1.05**19, rtol=0.04)
    weekly_real = c.data["weekly_unit_cost_real"].median("draw")
    assert np.isclose(float(weekly_real.sel(year=2030)), 1000 * 1.05**19 / 1.02**10, rtol=0.04)
    # the unit-cost uncertainty grows with the horizon
    spread = c.data["weekly_unit_cost_real"].quantile([0.05, 0.95], "draw").diff("quantile").squeeze()
    assert float(spread.sel(year=2030)) > 1.5 * float(spread.sel(year=2021))
    assert any("log-linear trend" in a for a in c.assumptions)


def test_flat_holds_the_base_year_real_unit_cost(fc):
    history = _history(fc.la_code, growth=1.05, noise=0.02)
    c = costs(_constant_children(fc), history, inflation=0.02, method="flat", prices=constant_price_index(0.02))
    unit_2020 = float(history["weekly_cost_per_child"].iloc[-1])
    medians = c.data["weekly_unit_cost_real"].median("draw")
    assert np.allclose(medians, unit_2020, rtol=0.02)
    nominal = c.data["weekly_unit_cost_nominal"].median("draw")
    assert np.isclose(float(nominal.sel(year=2030)), unit_2020 * 1.02**10, rtol=0.02)
    assert any("no real growth" in a for a in c.assumptions)


def test_resample_has_no_trend(fc):
    history = _history(fc.la_code, growth=1.0, noise=0.1, seed=3)
    c = costs(_constant_children(fc), history, inflation=0.0, method="resample", prices=constant_price_index(0.0))
    recent = history["weekly_cost_per_child"].iloc[-5:].to_numpy()
    values = np.unique(np.round(c.data["weekly_unit_cost_real"].values, 6))
    assert set(values) <= set(np.round(recent, 6))
    medians = c.data["weekly_unit_cost_real"].median("draw")
    assert abs(float(medians.sel(year=2030)) - float(medians.sel(year=2021))) < 0.1 * float(medians.sel(year=2021))


def test_base_year_cost_uses_published_count_and_unit_cost(fc):
    history = _history(fc.la_code, growth=1.05)
    c = costs(_constant_children(fc, 120.0), history)
    unit_2020 = float(history.loc[history["year"] == 2020, "weekly_cost_per_child"].iloc[0])
    assert np.allclose(c.data["base_cost"], 120 * unit_2020 * WEEKS_PER_YEAR)


def test_later_unit_costs_not_used_and_said(fc):
    history = _history(fc.la_code, years=range(2011, 2024))
    c = costs(fc, history)
    assert c.unit_costs["year"].max() == BASE
    assert any("2021, 2022, 2023" in a and "not used" in a for a in c.assumptions)


def test_cost_intervals_combine_count_and_unit_cost_uncertainty(fc):
    history = _history(fc.la_code, growth=1.04, noise=0.1)
    both = cost_table(costs(fc, history, method="trend"), include_base=False)
    counts_only = cost_table(costs(fc, 1000.0), include_base=False)
    width = lambda t: (t["upper_gbp_per_year"] - t["lower_gbp_per_year"]) / t["median_gbp_per_year"]  # noqa: E731
    assert width(both).mean() > 1.2 * width(counts_only).mean()


def test_prob_cost_exceeds_and_finding(fc):
    c = costs(_constant_children(fc), 1000.0, inflation=0.0, prices=constant_price_index(0.0))
    assert prob_cost_exceeds(c, 5_000_000, BASE + 3) == 1.0
    assert prob_cost_exceeds(c, 6_000_000, BASE + 3) == 0.0
    g = costs(fc, _history(fc.la_code, noise=0.02))
    median = float(g.data["cost_nominal"].sel(scenario="trend", year=BASE + 5).median())
    assert 0.4 < prob_cost_exceeds(g, median, BASE + 5) < 0.6
    f = cost_finding(g, 30e6, BASE + 5, scenario="population-only")
    assert "exceeds £30.00m in 2024-25" in f.sentence and "90% credible interval" in f.sentence
    assert not any(a.startswith("converge-england:") for a in f.caveats)


def test_tables_and_chart(fc):
    c = costs(fc, _history(fc.la_code, noise=0.02))
    t = cost_table(c)
    assert list(t.columns) == [
        "la_code",
        "scenario",
        "year",
        "financial_year",
        "years_ahead",
        "prices",
        "price_basis",
        "price_base_year",
        "mean_gbp_per_year",
        "median_gbp_per_year",
        "lower_gbp_per_year",
        "upper_gbp_per_year",
        "ci_prob",
    ]
    assert len(t) == 3 * 11 and (t.loc[t["years_ahead"] == 0, "year"] == BASE).all()
    change = cost_change_table(c, years_ahead=(3, 5, 10))
    assert len(change) == 9 and set(change["years_ahead"]) == {3, 5, 10}
    with pytest.raises(ValueError, match="outside"):
        cost_change_table(c, years_ahead=(12,))
    twin = cost_chart_table(c, scenarios=["trend"], prices="real")
    fig = plot_costs(c, scenarios=["trend"], prices="real")
    ax = fig.axes[0]
    assert np.allclose(ax.lines[0].get_ydata(), twin["median_gbp_per_year"] / 1e6)
    assert f"real terms, prices of {financial_year(BASE)}" in ax.get_ylabel()
    assert financial_year(2030) == "2029-30"


def test_unit_cost_history_published_and_derived():
    panel = pd.DataFrame(
        {
            "la_code": ["E06000034"] * 3 + ["E06000001"],
            "year": [2016, 2017, 2018, 2017],
            "looked_after": pd.array([300, 320, 0, 10], dtype="Int64"),
            "weekly_cost_per_child": [1085.0, np.nan, np.nan, 900.0],
            "spend_looked_after": [np.nan, 320 * 1500 * WEEKS_PER_YEAR, 5.0, np.nan],
        }
    )
    h = unit_cost_history(panel, "E06000034")
    assert list(h["year"]) == [2016, 2017]
    assert np.allclose(h["weekly_cost_per_child"], [1085.0, 1500.0])
    assert h["source"].iloc[1].startswith("derived")
    with pytest.raises(UnknownAuthorityError):
        unit_cost_history(panel, "E06000099")
    with pytest.raises(PanelError, match=r"costs .* needs a column weekly_cost_per_child .* or spend_looked_after"):
        unit_cost_history(panel[["la_code", "year", "looked_after"]], "E06000034")
    bad = panel.assign(weekly_cost_per_child=["1085", "lots", "", "900"])
    with pytest.raises(PanelError, match="'lots' is not a number"):
        unit_cost_history(bad, "E06000034")


def test_too_short_history_refused(fc):
    with pytest.raises(BayesLacError, match="at least 4 years"):
        costs(fc, _history(fc.la_code, years=range(2018, 2021)))
    # a trend needs 6 years: from 5 its draws are absurd by the eighth year; flat is offered
    five = _history(fc.la_code, years=range(2016, 2021))
    with pytest.raises(BayesLacError, match="trend method needs at least 6 years.*found 5.*method='flat'"):
        costs(fc, five, method="trend")
    assert costs(fc, five, method="flat").method == "flat"


@pytest.fixture
def saved_run(tmp_path, monkeypatch):
    """A toy run saved to disk, and the panel `costs` reads (its unit-cost history), patched in."""
    import bayes_lac.data.panel

    run = make_toy_results()
    la = run.attrs["target_la"]
    run_path = tmp_path / "run.nc"
    save_run(run, run_path)
    panel = _history(la, growth=1.05, noise=0.02)
    monkeypatch.setattr(bayes_lac.data.panel, "load_panel", lambda path=None: panel)
    return run, run_path, panel


def test_cli_costs(saved_run, tmp_path, capsys):
    from bayes_lac.cli import main

    run, run_path, panel = saved_run
    la = run.attrs["target_la"]
    out = tmp_path / "costs.csv"
    status = main(
        [
            "costs",
            str(run_path),
            "--horizon",
            "10",
            "--unit-cost-method",
            "flat",
            "--budget",
            "30000000",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    t = pd.read_csv(out)
    assert {"scenario", "year", "mean_gbp_per_year", "lower_gbp_per_year", "prob_exceeds_budget"} <= set(t.columns)
    # P(cost > budget) is the share of cost draws above the budget, year by year
    fc = forecast(run, horizon=10, scenarios=["trend", "population-only", "converge-england"], seed=0)
    cost = costs(fc, unit_cost_history(panel, la), seed=0).data["cost_nominal"]
    row = t[(t["scenario"] == "trend") & (t["year"] == 2030)].iloc[0]
    assert row["prob_exceeds_budget"] == pytest.approx(
        float((cost.sel(scenario="trend", year=2030) > 30_000_000).mean())
    )
    assert 0 < t["prob_exceeds_budget"].max() and t["prob_exceeds_budget"].min() < 1  # the budget splits the draws
    printed = capsys.readouterr().out
    assert "Change against 2019-20" in printed and "converge-england" in printed


def test_published_spend_is_drawn_before_the_forecast_cost(fc):
    """Thurrock's s251 outturn from 2012-13 beside a forecast cost: table rows, line and refusal
    of a real-terms chart (the outturn is in cash prices)."""
    import matplotlib.pyplot as plt

    from bayes_lac.analysis.costs import PUBLISHED_SPEND, cost_chart_table, plot_costs, spend_history
    from bayes_lac.data.panel import load_panel

    panel = load_panel()
    spend = spend_history(panel, "E06000034")
    assert spend["year"].min() == 2013  # earlier s251 totals are not comparable and are blank
    assert spend.set_index("year").at[2017, "spend_gbp"] == 19_387_208.0
    assert spend.set_index("year").at[2025, "spend_gbp"] == 40_328_336.0
    published = panel[(panel["la_code"] == "E06000034") & panel["spend_looked_after"].notna()]
    assert len(spend) == len(published)

    c = costs(fc, 900.0, inflation=0.0, prices=constant_price_index(0.0))
    table = cost_chart_table(c, spend=spend)
    rows = table[table["scenario"] == PUBLISHED_SPEND]
    np.testing.assert_array_equal(rows["year"], spend["year"])
    np.testing.assert_array_equal(rows["median_gbp_per_year"], spend["spend_gbp"])
    assert rows["lower_gbp_per_year"].isna().all()  # a published figure has no interval
    assert len(table) == len(rows) + len(cost_chart_table(c))

    fig = plot_costs(c, spend=spend)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith(PUBLISHED_SPEND)]
    np.testing.assert_allclose(line.get_ydata(), spend["spend_gbp"] / 1e6)
    plt.close(fig)
    with pytest.raises(BayesLacError, match="cash prices"):
        cost_chart_table(c, prices="real", spend=spend)
    assert spend_history(panel.drop(columns=["spend_looked_after"]), "E06000034").empty


def test_cli_costs_refuses_an_unconverged_unit_cost_fit_unless_allowed(saved_run, tmp_path, capsys, monkeypatch):
    import xarray as xr

    import bayes_lac.analysis.costs as cmod
    from bayes_lac.cli import main
    from bayes_lac.model.unit_cost import UnitCostFit

    _, run_path, _ = saved_run
    diagnostics = {"max_rhat": 1.034, "min_ess_bulk": 88.0, "divergences": 2, "seconds": 1.0, "sampler": "nutpie"}

    def unconverged(fc, panel, **kwargs):
        n = fc.data.sizes["draw"]
        years = fc.data["year"].values
        unit = xr.DataArray(
            np.full((n, len(years)), 60_000.0),
            dims=("draw", "year"),
            coords={"draw": fc.data["draw"].values, "year": years},
        )
        unit.attrs = {"fit": UnitCostFit(posterior=xr.Dataset(), data=None, diagnostics=diagnostics), "assumptions": []}
        return unit

    monkeypatch.setattr(cmod, "modelled_unit_costs", unconverged)
    out = tmp_path / "costs.csv"
    args = ["costs", str(run_path), "--horizon", "3", "--out", str(out)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert (
        "unit-cost model did not pass its convergence checks" in err and "1.034" in err and "--allow-unconverged" in err
    )
    assert not out.exists()
    assert main([*args, "--allow-unconverged"]) == 0
    assert "WARNING" in capsys.readouterr().out and out.exists()
