"""Invest-to-save with the evidence: no effect, deadweight, delayed entry, and today's prices."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.costs import constant_price_index
from bayes_lac.analysis.interventions import (
    bundled_interventions,
    evaluate_intervention,
    intervention_finding,
    intervention_from_dict,
    intervention_table,
    load_intervention,
    rebase_intervention,
)
from bayes_lac.errors import InputFileError

BASE = {
    "name": "The test service",
    "source": "a test",
    "price_year": 2017,
    "outcome": {"name": "children kept out of care", "unit": "children"},
    "reach": {"point": 100, "unit": "families", "unit_singular": "family"},
    "cost_per_participant": {"point": 2000, "uncertainty": {"dist": "normal", "mean": 2000, "sd": 200}},
    "effect": {"point": 0.3, "uncertainty": {"dist": "uniform", "lower": 0.2, "upper": 0.4}},
    "duration": {"point": 1.0, "unit": "years"},
    "unit_cost": {"point": 50000, "per": "year", "uncertainty": {"dist": "lognormal", "mean": 50000, "sd": 10000}},
}


def spec_with(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return intervention_from_dict({k: v for k, v in data.items() if v is not None})


def test_a_service_that_certainly_does_nothing_has_no_chance_of_saving():
    r = evaluate_intervention(spec_with(no_effect_probability={"point": 1.0}), draws=2000, seed=0)
    assert r.prob_net_saving == 0.0
    assert (r.draws["outcomes_prevented"] == 0).all()
    # without the no-effect prior the same service saves in nearly every draw
    assert evaluate_intervention(spec_with(), draws=2000, seed=0).prob_net_saving > 0.95


def test_the_chance_of_saving_never_exceeds_the_evidence_that_it_works():
    p_none = {"point": 0.6, "uncertainty": {"dist": "uniform", "lower": 0.5, "upper": 0.7}}
    r = evaluate_intervention(spec_with(no_effect_probability=p_none), draws=4000, seed=1)
    # P(saving) <= P(it works) = 0.4, up to Monte Carlo error (sd about 0.008)
    assert r.prob_net_saving <= 0.4 + 0.025
    assert r.prob_net_saving > 0.3  # and, where it works, this service saves


def test_deadweight_raises_the_break_even_effect_and_cuts_the_saving():
    plain = evaluate_intervention(spec_with(), uncertainty=False)
    dead = evaluate_intervention(spec_with(deadweight={"point": 0.25}), uncertainty=False)
    assert dead.point("break_even_effect") == pytest.approx(plain.point("break_even_effect") / 0.75)
    assert dead.point("gross_saving") == pytest.approx(0.75 * plain.point("gross_saving"))


def test_a_delayed_entry_saves_only_the_time_it_is_put_off():
    plain = evaluate_intervention(spec_with(), uncertainty=False)
    delayed = evaluate_intervention(spec_with(delayed_share={"point": 1.0}, delay={"point": 0.25}), uncertainty=False)
    assert delayed.point("gross_saving") == pytest.approx(0.25 * plain.point("gross_saving"))
    with pytest.raises(InputFileError, match="delay"):
        spec_with(delayed_share={"point": 0.5})


def test_the_edge_of_care_case_cites_its_trial_and_carries_it_into_the_finding():
    spec = load_intervention("edge_of_care")
    assert any("START" in e and "10.1016/S2215-0366(18)30001-4" in e for e in spec.evidence)
    r = evaluate_intervention(spec, draws=4000, seed=0)
    finding = intervention_finding(r)
    assert any(c.startswith("Evidence: Fonagy") for c in finding.caveats)
    works = 1 - float(r.draws["outcomes_prevented"].pipe(lambda d: (d == 0).mean()))
    assert r.prob_net_saving <= works + 1e-12
    assert "breaks even at" in finding.sentence


@pytest.mark.parametrize("name", bundled_interventions())
def test_every_shipped_case_states_its_evidence_and_allows_it_to_do_nothing(name):
    spec = load_intervention(name)
    assert spec.evidence and spec.price_year == 2017
    none = spec.quantities["no_effect_probability"]
    # the point value is the source's implicit "it works", so --no-uncertainty reproduces the
    # source; with uncertainty the service may do nothing
    assert none.point == 0.0 and none.uncertainty_range()[1] >= 0.4
    assert "deadweight" in spec.quantities
    point = evaluate_intervention(spec, uncertainty=False)
    r = evaluate_intervention(spec, draws=4000, seed=0)
    did_nothing = float((r.draws["outcomes_prevented"] == 0).mean())
    assert did_nothing > 0.1
    # no chance of saving beyond the evidence that it works
    assert r.prob_net_saving <= 1 - did_nothing + 1e-12
    # and the source's own arithmetic is untouched
    assert point.point("outcomes_prevented") > 0


def _panel(**columns):
    return pd.DataFrame({"la_code": ["A"], "la_name": ["Alpha"], "year": [2025], **columns})


def test_rebasing_takes_the_unit_cost_from_the_data_and_deflates_the_service_cost():
    spec = spec_with()
    panel = _panel(spend_looked_after=[40_000_000.0], looked_after=[250.0])
    index = constant_price_index(0.03)
    rebased = rebase_intervention(spec, panel, "A", 2025, prices=index)
    assert rebased.quantities["unit_cost"].point == pytest.approx(160_000.0)
    # the relative spread of the unit cost is kept
    assert rebased.quantities["unit_cost"].dist["sd"] / rebased.quantities["unit_cost"].dist["mean"] == pytest.approx(
        0.2
    )
    assert rebased.quantities["cost_per_participant"].point == pytest.approx(2000 * 1.03**8)
    assert rebased.price_year == 2025 and "2024-25" in rebased.assumptions[-1] and "Alpha" in rebased.assumptions[-1]
    assert rebased.prices == "cash prices of 2024-25"
    with pytest.raises(InputFileError, match="price_year"):
        rebase_intervention(
            intervention_from_dict({k: v for k, v in BASE.items() if k != "price_year"}), panel, "A", 2025
        )
    with pytest.raises(InputFileError, match="no unit cost for A in 2024"):
        rebase_intervention(spec, panel, "A", 2024, prices=index)
    assert np.isfinite(evaluate_intervention(rebased, draws=100).draws["net_saving"]).all()


def test_rebasing_reads_the_unit_cost_the_cost_section_reads():
    # a published weekly unit cost comes before spend / children, as in the cost section
    panel = _panel(weekly_cost_per_child=[2_000.0], spend_looked_after=[40_000_000.0], looked_after=[250.0])
    rebased = rebase_intervention(spec_with(), panel, "A", prices=constant_price_index(0.03))
    assert rebased.price_year == 2025  # the latest year with a unit cost
    assert rebased.quantities["unit_cost"].point == pytest.approx(2_000.0 * 52.18)
    # a saving per outcome is deflated like the service's cost, not replaced
    per_incident = spec_with(unit_cost={"point": 2000, "per": "outcome"}, duration=None)
    moved = rebase_intervention(per_incident, panel, "A", 2025, prices=constant_price_index(0.03))
    assert moved.quantities["unit_cost"].point == pytest.approx(2000 * 1.03**8)


def test_every_money_row_and_sentence_states_one_price_basis():
    r = evaluate_intervention(spec_with(), draws=200, seed=0)
    table = intervention_table(r)
    money = table[table["unit"].str.startswith("£ a year")]
    assert len(money) >= 3 and (money["unit"].str.contains("cash prices of 2016-17")).all()
    assert intervention_finding(r).sentence.count("cash prices of 2016-17") == 1
    point = intervention_finding(evaluate_intervention(spec_with(), uncertainty=False)).sentence
    assert point.count("cash prices of 2016-17") == 1
