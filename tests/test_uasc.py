"""Future UASC paths (bayes_lac.model.uasc) and their use in forecasts."""

import numpy as np
import pytest

from bayes_lac.analysis.forecast import Scenario, forecast
from bayes_lac.errors import BayesLacError
from bayes_lac.model import uasc as U
from tests.conftest import make_toy_results


def test_changes_are_pooled_yearly_log_changes_less_their_median():
    history = np.array([[0, 1, 3, np.nan, 7], [10, 10, 21, 43, 43]] * 8, float)
    changes = U.centred_yearly_changes(history)
    raw = np.log1p(history[:, 1:]) - np.log1p(history[:, :-1])
    raw = raw[np.isfinite(raw)]
    assert changes.size == raw.size == 48
    np.testing.assert_allclose(np.sort(changes), np.sort(raw - np.median(raw)))
    assert np.median(changes) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 30 yearly changes"):
        U.centred_yearly_changes(history[:2])


def test_paths_are_whole_non_negative_counts_around_the_base():
    rng = np.random.default_rng(0)
    assert (U.stochastic_factors(np.zeros(40), (5, 3), rng) == 1).all()
    factors = U.stochastic_factors(np.array([-3.0, 3.0]), (2000, 4), rng)
    counts = U.around(np.array([[5.0]]), factors)
    assert (counts >= 0).all() and (counts == np.round(counts)).all()
    assert (counts == 0).any()  # a fall past zero stops at zero
    # the cumulated changes: one step, then two
    np.testing.assert_allclose(np.log(factors[:, 0]) ** 2, 9.0)
    assert set(np.round(np.log(factors[:, 1]), 6)) <= {-6.0, 0.0, 6.0}


@pytest.fixture(scope="module")
def varied_run():
    run = make_toy_results()
    const = run["constant_data"].to_dataset()
    rng = np.random.default_rng(1)
    uasc = rng.poisson(10, const["uasc"].shape).astype(float)
    uasc[:, -1] = 10.0
    run["constant_data"] = const.assign(uasc=(const["uasc"].dims, uasc))
    return run


def test_a_stochastic_uasc_path_spreads_around_the_held_count(varied_run):
    scenarios = ["trend", Scenario(kind="trend", uasc_rate=0.002)]
    held = forecast(varied_run, horizon=5, scenarios=scenarios, seed=3)
    f = forecast(varied_run, horizon=5, scenarios=scenarios, seed=3, uasc_path="stochastic")
    u = f.data["uasc"].sel(scenario="trend")
    assert np.allclose(held.data["uasc"].sel(scenario="trend"), 10.0)
    assert (np.abs(u.median("draw") - 10) <= 1).all()
    spread = u.quantile(0.9, "draw") - u.quantile(0.1, "draw")
    assert float(spread.isel(year=-1)) > float(spread.isel(year=0)) > 0
    # the same path in every scenario: the share scenario's counts move with the held one's
    share = f.data["uasc"].sel(scenario="trend, UASC 0.2%")
    assert np.corrcoef(np.log1p(u.values.ravel()), np.log1p(share.values.ravel()))[0, 1] > 0.99
    assert any("stochastic path" in a for a in f.assumptions)
    # looked-after predictions include the path's count
    lac = f.data["predicted"].sel(measure="looked_after", scenario="trend")
    assert (lac >= u).all()
    with pytest.raises(BayesLacError, match="uasc_path must be hold or stochastic"):
        forecast(varied_run, horizon=2, uasc_path="drift")


def test_the_nts_scenario_sets_uasc_at_its_threshold(varied_run):
    f = forecast(varied_run, horizon=3, scenarios="trend,uasc-nts", seed=1)
    assert f.scenario_names == ["trend", "uasc-nts"]
    pop = f.data["population_0_17"]
    np.testing.assert_allclose(f.data["uasc"].sel(scenario="uasc-nts"), 0.001 * pop)
