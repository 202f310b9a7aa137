"""The model's scales computed from a run agree with the formula in bayes_lac.model.results."""

import numpy as np

from bayes_lac.model import results as R
from tests.conftest import make_toy_results


def test_expected_matches_formula_by_hand():
    run = make_toy_results(noise_sd=0.0, n_la=3, years=(2015, 2018))
    la = run["constant_data"]["la"].values[0]
    exp = R.expected(run, la=la).sel(measure="looked_after", year=2015).isel(chain=0, draw=0)
    # level 4.0, trend 0.02 * (2015 - 2018), year effect 0, deprivation at centre
    by_hand = np.exp(4.0 + 0.02 * (2015 - 2018)) * 40_000 / 10_000
    assert np.isclose(float(exp), by_hand)


def test_reported_adds_uasc_to_looked_after_only():
    run = make_toy_results(noise_sd=0.0, n_la=2)
    diff = R.expected_reported(run) - R.expected(run)
    assert np.allclose(diff.sel(measure="looked_after"), 10.0)
    assert np.allclose(diff.sel(measure=["children_in_need", "child_protection"]), 0.0)


def test_rate_is_per_10000_children():
    run = make_toy_results(noise_sd=0.0, n_la=2)
    r = R.rate(run)
    e = R.expected_reported(run)
    assert np.allclose(r, e / 40_000 * 10_000)
