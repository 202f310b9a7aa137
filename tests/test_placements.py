"""Placement mix against neighbours and the residential-to-foster scenario, on hand-built inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.costs import WEEKS_PER_YEAR, constant_price_index, costs
from bayes_lac.analysis.forecast import forecast
from bayes_lac.analysis.placements import move_to_foster, move_to_foster_table, placement_mix_table
from bayes_lac.errors import BayesLacError, PanelError
from tests.conftest import make_toy_results


def _row(code, year=2024, lac=200.0, foster=70.0, res=10.0, ind=8.0, par=4.0, wf=900.0, wr=6000.0, spend=2e7):
    return {
        "la_code": code,
        "la_name": f"LA {code}",
        "year": year,
        "looked_after": lac,
        "spend_looked_after": spend,
        "placed_foster_percent": foster,
        "placed_residential_percent": res,
        "placed_independent_living_percent": ind,
        "placed_parents_others_percent": par,
        "weekly_cost_fostering": wf,
        "weekly_cost_residential": wr,
    }


def test_placement_mix_prices_each_placement_and_leaves_the_rest_as_other():
    panel = pd.DataFrame(
        [
            _row("A", res=15.0, wr=12_000.0, spend=4e7),
            _row("B"),
            _row("C", res=6.0),
            _row("D", res=np.nan),  # not published: left out and named
            _row("A", year=2023),
        ]
    )
    table = placement_mix_table(panel, "A", neighbours=["B", "C", "D"])
    assert list(table["la_code"]) == ["A", "B", "C", ""] and (table["year"] == 2024).all()
    a = table.iloc[0]
    assert a["residential_spend_gbp"] == pytest.approx(200 * 0.15 * 12_000 * WEEKS_PER_YEAR)
    assert a["foster_spend_gbp"] == pytest.approx(200 * 0.70 * 900 * WEEKS_PER_YEAR)
    assert a["other_spend_gbp"] == pytest.approx(4e7 - a["residential_spend_gbp"] - a["foster_spend_gbp"])
    assert a["placed_other_percent"] == pytest.approx(100 - 70 - 15 - 8 - 4)
    median = table.iloc[-1]
    assert median["la_name"] == "neighbours (median)" and median["placed_residential_percent"] == pytest.approx(8.0)
    assert "D 2024" in table.attrs["notices"][0]
    assert table["price_basis"].nunique() == 1 and table["price_basis"].iloc[0] == "cash prices of 2023-24"


def test_placement_mix_refuses_a_year_without_the_figures():
    panel = pd.DataFrame([_row("A", wr=np.nan), _row("B")])
    with pytest.raises(PanelError, match="no year with spend, placements and unit costs"):
        placement_mix_table(panel, "A")


@pytest.fixture(scope="module")
def flat_costs():
    fc = forecast(make_toy_results(), horizon=5, scenarios=["trend"], seed=0)
    data = fc.data.copy()
    data["predicted"] = data["predicted"] * 0 + 100.0
    history = pd.DataFrame(
        {
            "measure": ["looked_after"],
            "year": [2020],
            "reported_count": [100.0],
            "population_0_17": [4e4],
            "reported_rate": [25.0],
        }
    )
    fc = dataclasses.replace(fc, data=data, history=history)
    return costs(fc, 1000.0, inflation=0.0, prices=constant_price_index(0.0))


def test_moving_children_to_foster_care_saves_the_difference_in_unit_costs_per_draw(flat_costs):
    panel = pd.DataFrame([_row(flat_costs.la_code, year=2020, lac=100.0, res=10.0, wf=800.0, wr=5000.0)])
    move = move_to_foster(flat_costs, panel, k=4)
    expected = 4 * (5000 - 800) * WEEKS_PER_YEAR
    assert np.allclose(move.saving.values, expected)
    assert np.allclose(move.cost.values, flat_costs.data["cost_nominal"].sel(scenario="trend").values - expected)
    table = move_to_foster_table(move)
    assert np.allclose(table["median_saving_gbp"], expected) and (table["k"] == 4).all()
    with pytest.raises(BayesLacError, match="between 1 and the 10 children"):
        move_to_foster(flat_costs, panel, k=11)


def test_the_placement_chart_draws_its_table_twin():
    import matplotlib

    matplotlib.use("Agg")
    from bayes_lac.analysis.placements import placement_chart_table, plot_placement_mix

    table = placement_mix_table(pd.DataFrame([_row("A"), _row("B", res=20.0)]), "A", neighbours=["B"])
    fig = plot_placement_mix(table)
    twin = placement_chart_table(table)
    bars = fig.axes[0].patches
    residential = twin[twin["placement"] == "residential"]["spend_gbp_m"].to_numpy()
    assert np.allclose([b.get_width() for b in bars[: len(residential)]], residential)
    assert "2023-24" in fig.axes[0].get_title()
