"""Price bases: the deflator file, cash <-> real round trips, and one price basis per table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.costs import budget_risk, cost_change_table, cost_table, costs, unit_cost_chart_table
from bayes_lac.analysis.forecast import forecast
from bayes_lac.data.prices import BUNDLED_DEFLATOR, load_deflator, price_index
from bayes_lac.errors import BayesLacError, InputFileError
from tests.conftest import make_toy_results


def test_bundled_deflator_is_the_uk_gdp_deflator_2020_100():
    d = load_deflator()
    assert d.loc[2020] == 100.0 and d.index.min() == 2010
    assert np.all(np.diff(d.loc[2010:2020].to_numpy()) > 0)
    assert "IMF" in pd.read_csv(BUNDLED_DEFLATOR)["source"].iloc[0]


def test_deflation_round_trip_returns_the_cash_figures():
    index = price_index()
    years = np.arange(2014, 2031)
    cash = np.random.default_rng(0).uniform(1e6, 5e7, size=(4, len(years)))
    real = index.to_real(cash, years, base_year=2024)
    assert np.allclose(index.to_cash(real, years, base_year=2024), cash, rtol=1e-12)
    # the base year's cash is already in base-year prices; earlier years are worth more
    assert np.allclose(real[:, years == 2024], cash[:, years == 2024])
    assert np.all(real[:, years == 2016] > cash[:, years == 2016])


def test_financial_year_weights_three_quarters_of_the_calendar_year_it_starts_in():
    index = price_index()
    assert index.financial_year(2021) == pytest.approx(0.75 * 100.0 + 0.25 * 100.1)
    # after the file's last year (2024) the index rises at the assumed inflation
    index5 = price_index(inflation=0.05)
    assert index5.financial_year(2027) == pytest.approx(117.3 * 1.05**2 * 0.75 + 117.3 * 1.05**3 * 0.25)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("year,index\n2020,100\n", "lacks column"),
        ("year,gdp_deflator_index\n2020,100\n20x1,101\n", "line 3, column year"),
        ("year,gdp_deflator_index\n2020,100\n2021,-3\n", "line 3, column gdp_deflator_index"),
        ("year,gdp_deflator_index\n2020,100\n2022,101\n", "no row for 2021"),
        ("year,gdp_deflator_index\n2020,100\n2020,101\n", "more than once"),
    ],
)
def test_a_bad_deflator_file_names_the_file_row_and_column(tmp_path, text, message):
    path = tmp_path / "deflator.csv"
    path.write_text(text)
    with pytest.raises(InputFileError, match=message) as err:
        load_deflator(path)
    assert str(path) in str(err.value)


def test_a_deflator_that_starts_after_the_history_is_refused(tmp_path):
    path = tmp_path / "deflator.csv"
    path.write_text("year,gdp_deflator_index\n2019,95\n2020,100\n")
    index = price_index(path)
    with pytest.raises(InputFileError, match="starts in 2019"):
        index.financial_year(2016)


@pytest.fixture(scope="module")
def toy_costs():
    fc = forecast(make_toy_results(), horizon=10, scenarios=["trend", "population-only"], seed=1)
    years = np.arange(2011, 2021)
    history = pd.DataFrame(
        {"la_code": fc.la_code, "year": years, "weekly_cost_per_child": 900 * 1.06 ** (years - 2011)}
    )
    return costs(fc, history, method="trend")


@pytest.mark.parametrize("prices", ["cash", "real"])
def test_every_cost_table_states_one_price_basis(toy_costs, prices):
    tables = [
        cost_table(toy_costs, prices=prices),
        cost_change_table(toy_costs, prices=prices),
        budget_risk(toy_costs, 3e7, prices=prices),
    ]
    if prices == "cash":  # the unit-cost chart is in cash prices only, as the published history is
        tables.append(unit_cost_chart_table(toy_costs))
    for table in tables:
        assert table["prices"].nunique() == 1 and table["prices"].iloc[0] == prices
        assert table["price_basis"].nunique() == 1
        if prices == "real":
            assert "2019-20" in table["price_basis"].iloc[0] and (table["price_base_year"] == 2020).all()
        else:
            assert table["price_basis"].iloc[0] == "cash prices of each year"


def test_one_cost_never_has_two_values(toy_costs):
    cash = cost_table(toy_costs, prices="cash")
    real = cost_table(toy_costs, prices="real")
    # the base year's cost is the same figure on both bases; later years differ only by the deflator
    base_cash = cash.loc[cash["years_ahead"] == 0, "median_gbp_per_year"].to_numpy()
    base_real = real.loc[real["years_ahead"] == 0, "median_gbp_per_year"].to_numpy()
    assert np.allclose(base_cash, base_real)
    later = cash["years_ahead"] > 0
    factor = toy_costs.price_index.factor(cash.loc[later, "year"].to_numpy(), toy_costs.base_year)
    assert np.allclose(
        real.loc[later, "median_gbp_per_year"].to_numpy(), cash.loc[later, "median_gbp_per_year"] * factor
    )


def test_budget_risk_is_the_share_of_draws_over_budget_next_year_and_at_3_5_10(toy_costs):
    budget = float(toy_costs.data["cost_nominal"].sel(scenario="trend", year=2021).median())
    risk = budget_risk(toy_costs, budget)
    assert list(risk.loc[risk["scenario"] == "trend", "years_ahead"]) == [1, 3, 5, 10]
    first = risk[(risk["scenario"] == "trend") & (risk["years_ahead"] == 1)].iloc[0]
    assert first["prob_exceeds_budget"] == pytest.approx(0.5, abs=0.01)
    ten = float((toy_costs.data["cost_nominal"].sel(scenario="trend", year=2030) > budget).mean())
    assert risk[(risk["scenario"] == "trend") & (risk["years_ahead"] == 10)]["prob_exceeds_budget"].iloc[0] == ten
    short = budget_risk(toy_costs, budget, years_ahead=(1, 12))
    assert set(short["years_ahead"]) == {1} and "12 years ahead" in short.attrs["notices"][0]
    with pytest.raises(BayesLacError, match="positive"):
        budget_risk(toy_costs, -5)


def test_budget_risk_finding_names_each_horizon_with_its_chance(toy_costs):
    from bayes_lac.analysis.costs import budget_risk_finding

    finding = budget_risk_finding(toy_costs, 3e7)
    risk = budget_risk(toy_costs, 3e7, scenarios=["trend"])
    assert list(finding.table["prob_exceeds_budget"]) == list(risk["prob_exceeds_budget"])
    for fy in ("2020-21", "2022-23", "2024-25", "2029-30"):
        assert fy in finding.sentence
    assert "cash prices of each year" in finding.sentence and "90% credible interval" in finding.sentence


def test_cli_costs_refuses_a_bad_deflator_in_one_line(tmp_path, capsys):
    from bayes_lac.cli import main
    from bayes_lac.model.results import save_run

    run_path = tmp_path / "run.nc"
    save_run(make_toy_results(), run_path)
    bad = tmp_path / "deflator.csv"
    bad.write_text("year,gdp_deflator_index\n2020,abc\n")
    out = tmp_path / "costs.csv"
    status = main(["costs", str(run_path), "--unit-cost-method", "flat", "--deflator", str(bad), "--out", str(out)])
    assert status == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "line 2, column gdp_deflator_index" in err and len(err.strip().splitlines()) == 1
