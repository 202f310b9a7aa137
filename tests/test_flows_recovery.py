"""Recovery of what caused a change in the stock, from simulated flows panels.

Two scenarios, one small fit each (session-scoped, the suite's sampler): the target authority's
stock rises because more children enter (entry rate up, exits unchanged), or because children
leave more slowly (exit probability down, entries unchanged). The flows split must put the
truth inside its 90 % interval for the component that moved and an interval containing zero
around the one that did not.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_lac.analysis.flows import _named, _route_probabilities, flows_split, shapley_flows
from bayes_lac.model.flows import FlowsModel
from bayes_lac.model.flows_simulate import simulate_flows_panel
from tests.conftest import TEST_SAMPLER

# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("flows_recovery")]

SPAN = (2012, 2017)


def _fit_and_truth(scenario: str):
    panel, truth = simulate_flows_panel(
        n_la=4,
        years=(2010, 2017),
        scenario=scenario,
        change=0.45,
        change_from=2013,
        seed=11,
        population=60_000.0,
        background_walk=0.08,
    )
    codes = truth["la"]
    run = FlowsModel(codes[0], neighbours=codes[1:]).fit(
        panel, draws=250, tune=300, chains=2, sampler=TEST_SAMPLER, cores=1, seed=3
    )
    split = flows_split(run, from_year=SPAN[0], to_year=SPAN[1])
    keep = (truth["year"] >= SPAN[0]) & (truth["year"] <= SPAN[1])
    probs = _route_probabilities(truth["exit_probability"][:, keep][None], truth["route_share"][:, :, keep][None])
    stock = panel.set_index(["la_code", "year"])["looked_after"].unstack().loc[codes, SPAN[0]].to_numpy()
    true = _named(
        shapley_flows(stock[None], truth["population"][:, keep][None], truth["entry_rate"][:, keep][None], probs)
    )
    table = split.table[split.table["area"] == "la"].set_index("component")
    return table, {k: float(v[0, 0]) for k, v in true.items()}


@pytest.fixture(scope="session")
def entries_case():
    return _fit_and_truth("entries")


@pytest.fixture(scope="session")
def exits_case():
    return _fit_and_truth("exits")


def _inside(table, component, value) -> bool:
    return table.loc[component, "lower"] <= value <= table.loc[component, "upper"]


def test_rise_from_more_entries_is_attributed_to_entries(entries_case):
    table, true = entries_case
    assert true["entries"] > 20 and true["exits"] == pytest.approx(0.0)
    assert _inside(table, "entries", true["entries"])
    assert table.loc["entries", "lower"] > 0
    assert _inside(table, "exits", 0.0)


def test_rise_from_slower_exits_is_attributed_to_exits(exits_case):
    table, true = exits_case
    assert true["exits"] > 20 and true["entries"] == pytest.approx(0.0)
    assert _inside(table, "exits", true["exits"])
    assert table.loc["exits", "lower"] > 0
    assert _inside(table, "entries", 0.0)


def test_components_add_up_to_the_modelled_change_in_every_case(entries_case, exits_case):
    for table, _ in (entries_case, exits_case):
        total = table.loc[["baseline", "entries", "exits"], "mean"].sum()
        assert np.isclose(total, table.loc["modelled_change", "mean"])
