"""Future UASC paths (bayes_lac.model.uasc) and their use in forecasts."""

import numpy as np
import pytest

from bayes_lac.analysis.forecast import Scenario, forecast
from bayes_lac.errors import BayesLacError
from bayes_lac.model import uasc as U
from tests.conftest import make_toy_results


def test_donor_trajectories_start_and_run_on_published_counts_only():
    history = np.array([[10, 20, 40, 30, 80], [2, 30, 30, 30, 31], [9, 9, np.nan, 9, 9]], float)
    filled = np.zeros_like(history, bool)
    filled[0, 3] = True  # a count filled from another year: it starts and continues no trajectory
    ratios = U.donor_ratios(np.tile(history, (12, 1)), np.tile(filled, (12, 1)), 3)
    one = ratios[:5]  # the first copy's donors: la 0 from 2010 and 2011, la 1 from 2011-2013, la 2 from 2010
    lg = np.log1p
    np.testing.assert_allclose(one[0], [lg(20) - lg(10), lg(40) - lg(10), lg(40) - lg(10)])  # ends at the filled cell
    np.testing.assert_allclose(one[1], [lg(40) - lg(20)] * 3)
    np.testing.assert_allclose(one[2], [0, 0, lg(31) - lg(30)])  # la 1 from 30 (2 is below the minimum)
    np.testing.assert_allclose(one[4], [lg(31) - lg(30)] * 3)  # la 1 from its last but one year: held after
    assert len(ratios) == 12 * 7  # la 0: 2 starts (none from the filled 30); la 1: 3; la 2: 2
    with pytest.raises(ValueError, match="at least 30 published authority-years"):
        U.donor_ratios(history, filled, 3)


def test_paths_keep_their_median_at_the_base_in_every_year_even_from_skewed_donors():
    rng = np.random.default_rng(0)
    # right-skewed trajectories that all move: uncentred, their median path would rise
    size = rng.gamma(0.5, 1.0, 100)[:, None]
    ratios = size * np.linspace(0.5, 1.5, 6)[None, :]
    assert (np.median(ratios, axis=0) > 0.05).all()
    factors = U.stochastic_factors(ratios, (4001,), rng)  # odd: the median is one draw
    counts = U.around(np.full((4001, 6), 20.0), factors)
    assert (np.median(counts, axis=0) == 20).all()
    assert (counts >= 0).all() and (counts == np.round(counts)).all()
    # one donor per draw: its years move together
    rising = counts[:, 0] > 20
    assert (counts[rising, -1] > counts[rising, 0]).all()


@pytest.fixture(scope="module")
def varied_run():
    run = make_toy_results()
    const = run["constant_data"].to_dataset()
    rng = np.random.default_rng(1)
    uasc = rng.poisson(10, const["uasc"].shape).astype(float) + 6  # published, above suppression
    uasc[:, -1] = 10.0
    run["constant_data"] = const.assign(uasc=(const["uasc"].dims, uasc))
    return run


def test_a_stochastic_uasc_path_spreads_around_the_held_count(varied_run):
    scenarios = ["trend", Scenario(kind="trend", uasc_rate=0.002)]
    held = forecast(varied_run, horizon=5, scenarios=scenarios, seed=3)
    f = forecast(varied_run, horizon=5, scenarios=scenarios, seed=3, uasc_path="stochastic")
    u = f.data["uasc"].sel(scenario="trend")
    assert np.allclose(held.data["uasc"].sel(scenario="trend"), 10.0)
    assert (u.median("draw") == 10).all()
    spread = u.quantile(0.9, "draw") - u.quantile(0.1, "draw")
    assert float(spread.isel(year=0)) > 0
    # the same path in every scenario: the share scenario's counts move with the held one's
    share = f.data["uasc"].sel(scenario="trend, UASC 0.2%")
    assert np.corrcoef(np.log1p(u.values.ravel()), np.log1p(share.values.ravel()))[0, 1] > 0.99
    assert any("stochastic path" in a for a in f.assumptions)
    # its own random stream: measures without UASC draw exactly what they draw with the held count
    np.testing.assert_array_equal(
        f.data["predicted"].sel(measure="child_protection").values,
        held.data["predicted"].sel(measure="child_protection").values,
    )
    with pytest.raises(BayesLacError, match="uasc_path must be hold or stochastic"):
        forecast(varied_run, horizon=2, uasc_path="drift")


def test_the_nts_scenario_sets_uasc_at_its_threshold(varied_run):
    f = forecast(varied_run, horizon=3, scenarios="trend,uasc-nts", seed=1)
    assert f.scenario_names == ["trend", "uasc-nts"]
    pop = f.data["population_0_17"]
    np.testing.assert_allclose(f.data["uasc"].sel(scenario="uasc-nts"), 0.001 * pop)
