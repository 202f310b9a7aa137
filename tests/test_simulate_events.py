"""Awkward truths in simulated panels (`bayes_lac.model.simulate.simulate_panel`'s events)."""

import numpy as np
import pytest

from bayes_lac.config import ENGLAND_CODE
from bayes_lac.model.simulate import simulate_panel, surge_then_plateau

YEARS = np.arange(2010, 2021)


def test_a_surge_rises_by_its_rate_for_its_years_then_stays_flat():
    shift = surge_then_plateau(YEARS, 2012, rise=0.05, rise_years=3)
    np.testing.assert_allclose(np.exp(np.diff(shift)), [1, 1, 1.05, 1.05, 1.05, 1, 1, 1, 1, 1])
    assert shift[0] == 0


def test_each_event_changes_its_authority_and_no_other():
    plain, truth0 = simulate_panel(n_la=6, years=(2010, 2020), seed=4, uasc_gaps=False, deprivation_years=None)
    events = {
        "local": {0: surge_then_plateau(YEARS, 2012)},
        "national": {"looked_after": np.where(YEARS >= 2018, 0.1, 0.0)},
        "uasc": {2: np.full(len(YEARS), 30.0)},
        "deprivation": {3: (2015, 5.0)},
        "population": {4: 0.03},
        "starts": {5: 2016},
    }
    panel, truth = simulate_panel(
        n_la=6, years=(2010, 2020), seed=4, uasc_gaps=False, deprivation_years=None, events=events
    )
    codes = truth["la"]

    def rows(p, i):
        return p[p["la_code"] == codes[i]].set_index("year")

    # deprivation is centred as without events, so no other authority's rate moves
    assert truth["deprivation_centre"] == truth0["deprivation_centre"]
    for i in (1, 2, 5):
        np.testing.assert_allclose(truth["log_rate"][1:, i], truth0["log_rate"][1:, i])
        np.testing.assert_allclose(
            truth["log_rate"][0, i] - truth0["log_rate"][0, i], np.where(YEARS >= 2018, 0.1, 0.0)
        )
    # the true log rate carries the local surge (looked-after only) and the national shift
    np.testing.assert_allclose(
        truth["log_rate"][0, 0] - truth0["log_rate"][0, 0], events["local"][0] + np.where(YEARS >= 2018, 0.1, 0.0)
    )
    np.testing.assert_allclose(truth["log_rate"][1, 0], truth0["log_rate"][1, 0])
    np.testing.assert_allclose(truth["national_shift"][0], np.where(YEARS >= 2018, 0.1, 0.0))
    # an influx adds its children to UASC (published looked-after counts include UASC)
    np.testing.assert_allclose(rows(panel, 2)["uasc"] - rows(plain, 2)["uasc"], 30.0)
    # a deprivation step from its year on (published to one decimal)
    step = rows(panel, 3)["deprivation"] - rows(plain, 3)["deprivation"]
    np.testing.assert_allclose(step, np.where(YEARS >= 2015, 5.0, 0.0), atol=0.051)
    # population growth compounds from the first year
    pop = rows(panel, 4)["population_0_17"].to_numpy()
    np.testing.assert_allclose(pop / pop[0], 1.03 ** (YEARS - 2010), rtol=1e-4)
    # a created authority has no row before it, and England sums the authorities that exist
    assert rows(panel, 5).index.min() == 2016
    england = panel[panel["la_code"] == ENGLAND_CODE].set_index("year")
    local = panel[panel["la_code"] != ENGLAND_CODE].groupby("year")["population_0_17"].sum()
    np.testing.assert_allclose(england["population_0_17"], local)


def test_an_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown events surge"):
        simulate_panel(n_la=3, events={"surge": {0: 1}})
