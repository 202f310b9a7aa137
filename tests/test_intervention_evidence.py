"""Invest-to-save with the evidence: no effect, deadweight, delayed entry, and today's prices."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.costs import constant_price_index
from bayes_lac.analysis.interventions import (
    evaluate_intervention,
    intervention_finding,
    intervention_from_dict,
    load_intervention,
    rebase_intervention,
)
from bayes_lac.config import INTERVENTIONS_DIR
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
    return intervention_from_dict(data)


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


def test_the_bundled_evidence_case_cites_its_trial_and_carries_it_into_the_finding():
    spec = load_intervention(INTERVENTIONS_DIR / "edge_of_care_evidence.toml")
    assert any("START" in e and "10.1016/S2215-0366(18)30001-4" in e for e in spec.evidence)
    r = evaluate_intervention(spec, draws=4000, seed=0)
    finding = intervention_finding(r)
    assert any(c.startswith("Evidence: Fonagy") for c in finding.caveats)
    works = 1 - float(r.draws["outcomes_prevented"].pipe(lambda d: (d == 0).mean()))
    assert r.prob_net_saving <= works + 1e-12
    assert "breaks even at" in finding.sentence


def test_rebasing_takes_the_unit_cost_from_the_data_and_deflates_the_service_cost():
    spec = spec_with()
    panel = pd.DataFrame(
        {"la_code": ["A"], "year": [2025], "spend_looked_after": [40_000_000.0], "looked_after": [250.0]}
    )
    index = constant_price_index(0.03)
    rebased = rebase_intervention(spec, panel, "A", 2025, prices=index)
    assert rebased.quantities["unit_cost"].point == pytest.approx(160_000.0)
    # the relative spread of the unit cost is kept
    assert rebased.quantities["unit_cost"].dist["sd"] / rebased.quantities["unit_cost"].dist["mean"] == pytest.approx(
        0.2
    )
    assert rebased.quantities["cost_per_participant"].point == pytest.approx(2000 * 1.03**8)
    assert rebased.price_year == 2025 and "2024-25" in rebased.assumptions[-1]
    with pytest.raises(InputFileError, match="price_year"):
        rebase_intervention(
            intervention_from_dict({k: v for k, v in BASE.items() if k != "price_year"}), panel, "A", 2025
        )
    with pytest.raises(InputFileError, match="no spend_looked_after"):
        rebase_intervention(spec, panel, "A", 2024, prices=index)
    assert np.isfinite(evaluate_intervention(rebased, draws=100).draws["net_saving"]).all()
