"""Baseline forecasters: the pooled baseline by hand, ETS and the random walk on known series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_lac.errors import BayesLacError
from bayes_lac.studies import baselines as F


def toy_panel(values: dict, years, measure="looked_after", population=10_000, extra=None) -> pd.DataFrame:
    """A panel of local authorities {code: [value per year]} (None = not published)."""
    rows = []
    for code, series in values.items():
        level = "National" if code.startswith("E92") else "Local authority"
        for year, v in zip(years, series):
            row = {"la_code": code, "year": year, "geographic_level": level, "population_0_17": population, measure: v}
            rows.append(row | (extra or {}))
    panel = pd.DataFrame(rows)
    panel[measure] = panel[measure].astype("Float64")
    return panel


def draws_of(forecaster, panel, origin, horizons, measures=("looked_after",), las=None, quantity="count"):
    las = las or F.local_authorities(panel)
    out = forecaster(panel, origin, horizons, list(measures), las=las, quantity=quantity, seed=0)
    return F.check_draws(out, F.method_name(forecaster), list(measures), las, horizons)


# -- pooled empirical growth ------------------------------------------------------------------


def test_pooled_growth_on_a_toy_panel_by_hand():
    years = [2010, 2011, 2012, 2013, 2014]
    values = {
        "E06000001": [99, 109, 119, None, 999],  # 2013 suppressed; 2014 is after the origin
        "E06000002": [49, 59, 49, 39, 0],
        "E92000001": [10_000, 50, 10_000, 50, 10_000],  # England: an aggregate, never pooled
    }
    panel = toy_panel(values, years)
    pooled = F.PooledGrowth(n_draws=20_000, min_changes=1)
    draws = draws_of(pooled, panel, 2013, [1, 2])
    # 1-year changes up to 2013, log((y[t+1] + 1) / (y[t] + 1)): E06000001 100->110->120
    # (2012->2013 not published), E06000002 50->60->50->40
    one_year = np.log([110 / 100, 120 / 110, 60 / 50, 50 / 60, 40 / 50])
    two_year = np.log([120 / 100, 50 / 50, 40 / 60])
    b = draws.sel(measure="looked_after", la="E06000002")
    # E06000002's count at the origin is 39: draws are 40 * exp(change) - 1
    assert set(np.round(b.sel(horizon=1).values, 9)) == set(np.round(40 * np.exp(one_year) - 1, 9))
    assert set(np.round(b.sel(horizon=2).values, 9)) == set(np.round(40 * np.exp(two_year) - 1, 9))
    # resampled with replacement, each change equally often
    shares = pd.Series(np.round(b.sel(horizon=1).values, 9)).value_counts(normalize=True)
    assert shares.to_numpy() == pytest.approx(np.full(5, 0.2), abs=0.02)
    # no count at the origin: no forecast (missing, not imputed)
    assert np.isnan(draws.sel(la="E06000001").values).all()


def test_pooled_growth_pools_within_a_measure_and_needs_enough_changes():
    years = [2010, 2011, 2012, 2013]
    panel = toy_panel({"E06000001": [100, 110, 121, 133]}, years)
    panel["children_in_need"] = pd.array([1000, 500, 250, 125], dtype="Float64")
    pooled = F.PooledGrowth(n_draws=1000, min_changes=3)
    draws = draws_of(pooled, panel, 2013, [1, 2], measures=("looked_after", "children_in_need"))
    lac = draws.sel(measure="looked_after", horizon=1).values.ravel()
    cin = draws.sel(measure="children_in_need", horizon=1).values.ravel()
    assert lac.min() > 133 and cin.max() < 125  # growth of looked-after, decline of children in need
    # only 2 two-year changes exist up to 2013: fewer than min_changes, so no forecast
    assert np.isnan(draws.sel(horizon=2).values).all()


# -- own-history baselines ------------------------------------------------------------------


def history(values, start=2010):
    return pd.Series(np.asarray(values, float), index=range(start, start + len(values)))


def test_random_walk_with_drift_on_the_log_scale():
    counts = history([100, 110, 118, 131, 140, 152])
    x = np.log1p(counts.to_numpy())
    d = np.diff(x)
    draws = F.RandomWalkDrift(n_draws=40_000).series_draws(
        counts, history([]), 2015, np.array([1, 3]), np.random.default_rng(1)
    )
    logs = np.log1p(draws)
    assert logs.mean(axis=1) == pytest.approx(x[-1] + np.array([1, 3]) * d.mean(), abs=0.002)
    expected_sd = d.std(ddof=1) * np.sqrt(np.array([1, 3]) * (1 + np.array([1, 3]) / len(d)))
    assert logs.std(axis=1) == pytest.approx(expected_sd, rel=0.02)


def test_a_gap_ends_the_history_an_own_series_method_uses():
    counts = history([500, 500, np.nan, 100, 110, 121, 133])  # 2012 suppressed
    run = F.consecutive_run(counts, 2016)
    assert list(run.index) == [2013, 2014, 2015, 2016]
    assert F.consecutive_run(counts, 2012).empty  # origin not published
    rw = F.RandomWalkDrift(n_draws=10, min_changes=4)
    assert rw.series_draws(counts, history([]), 2016, np.array([1]), np.random.default_rng(0)) is None


def simulate_damped(n, alpha, beta, phi, sigma, rng, level=5.0, trend=0.05):
    x = np.empty(n)
    for t in range(n):
        step = level + phi * trend
        e = sigma * rng.standard_normal()
        x[t] = step + e
        level, trend = step + alpha * e, phi * trend + beta * e
    return x, level, trend


def test_damped_trend_forecast_variance_matches_simulating_the_state_space():
    fit = {"alpha": 0.6, "beta": 0.2, "phi": 0.9, "level": 5.0, "trend": 0.04, "sigma": 0.05}
    horizons = np.array([1, 2, 5, 8])
    mean, sd = F.damped_trend_forecast(fit, horizons)
    rng = np.random.default_rng(8)
    paths = np.array([simulate_damped(8, 0.6, 0.2, 0.9, 0.05, rng, level=5.0, trend=0.04)[0] for _ in range(20_000)])
    assert mean == pytest.approx(paths[:, horizons - 1].mean(axis=0), abs=0.003)
    assert sd == pytest.approx(paths[:, horizons - 1].std(axis=0), rel=0.03)


def test_damped_trend_ets_recovers_a_simulated_process():
    rng = np.random.default_rng(9)
    alpha, beta, phi, sigma = 0.5, 0.1, 0.9, 0.04
    inside, fits = [], []
    for _ in range(300):
        x, _, _ = simulate_damped(41, alpha, beta, phi, sigma, rng)
        fit = F.fit_damped_trend(x[:40])
        fits.append(fit)
        mean, sd = F.damped_trend_forecast(fit, np.array([1]))
        inside.append(abs(x[40] - mean[0]) <= 1.2816 * sd[0])
    assert np.median([f["sigma"] for f in fits]) == pytest.approx(sigma, rel=0.1)
    assert np.median([f["alpha"] for f in fits]) == pytest.approx(alpha, abs=0.15)
    # 80 % one-step intervals; estimated parameters make them a little short of nominal
    assert np.mean(inside) == pytest.approx(0.8, abs=3 * np.sqrt(0.8 * 0.2 / 300) + 0.02)


def test_ets_baseline_needs_seven_consecutive_years():
    counts = history([100, 104, 109, 112, 118, 121])
    ets = F.DampedTrendETS(n_draws=100)
    assert ets.series_draws(counts, history([]), 2015, np.array([1]), np.random.default_rng(0)) is None
    longer = history([100, 104, 109, 112, 118, 121, 125])
    draws = ets.series_draws(longer, history([]), 2016, np.array([1, 2]), np.random.default_rng(0))
    assert draws.shape == (2, 100)
    assert 121 < np.median(draws[0]) < 132 and np.median(draws[1]) > np.median(draws[0])


def test_last_value_is_a_random_walk_from_the_origin():
    counts = history([100, 104, 99, 103, 101, 105])
    draws = F.LastValue(n_draws=20_000).series_draws(
        counts, history([]), 2015, np.array([1, 4]), np.random.default_rng(1)
    )
    assert np.median(draws, axis=1) == pytest.approx([105, 105], abs=0.3)
    sigma = np.sqrt(np.mean(np.diff(counts.to_numpy()) ** 2))
    assert draws.std(axis=1) == pytest.approx([sigma, 2 * sigma], rel=0.03)


def test_linear_trend_extrapolates_the_last_five_years_only():
    counts = history([50, 50, 50, 50, 50, 60, 70, 80, 90, 100, 110])  # +10 a year from 2015
    draws = F.LinearTrend(n_draws=4000).series_draws(
        counts, history([]), 2020, np.array([1, 3]), np.random.default_rng(2)
    )
    assert np.median(draws, axis=1) == pytest.approx([120, 140], abs=1e-6)
    noisy = counts + np.array([0, 0, 0, 0, 0, 0, 3, -2, 1, -3, 2])
    draws = F.LinearTrend(n_draws=20_000).series_draws(
        noisy, history([]), 2020, np.array([1, 3]), np.random.default_rng(2)
    )
    assert np.median(draws[0]) == pytest.approx(120, abs=3)
    assert draws[1].std() > draws[0].std()


def test_constant_rate_grows_with_population_and_needs_the_origin():
    counts = history([100, 102, 98, 101, 100, 100])
    pop = history([10_000, 10_100, 10_201, 10_303, 10_406, 10_510])  # +1 % a year
    rate = F.ConstantRate(n_draws=20_000)
    draws = rate.series_draws(counts, pop, 2015, np.array([5]), np.random.default_rng(3))
    assert np.median(draws) == pytest.approx(100 * 1.01**5, rel=0.01)
    assert rate.series_draws(counts.drop(2015), pop, 2015, np.array([1]), np.random.default_rng(3)) is None


# -- the interface ---------------------------------------------------------------------------


def test_every_baseline_answers_the_interface_for_every_cell():
    years = list(range(2010, 2018))
    rng = np.random.default_rng(10)
    values = {f"E06{i:06d}": list(rng.poisson(200, len(years))) for i in range(40)}
    values["E06000099"] = [None] * 7 + [50]  # a new authority: one year of data
    panel = toy_panel(values, years)
    for forecaster in F.default_baselines(n_draws=200):
        draws = draws_of(forecaster, panel, 2017, [1, 2, 3])
        assert draws.dims == F.DRAW_DIMS and draws.sizes["draw"] == 200
        assert np.isfinite(draws.sel(la="E06000001").values).all(), forecaster.name
        new = draws.sel(la="E06000099").values
        # too short a history gives NaN cells (missing), except for the pooled baseline, which needs only the count at the origin
        assert np.isfinite(new).all() if forecaster.name == "pooled_growth" else np.isnan(new).all(), forecaster.name


def test_forecaster_answers_that_break_the_interface_are_refused():
    good = F.empty_draws(["looked_after"], ["A"], [1, 2], 10)
    with pytest.raises(ValueError, match="no horizon"):
        F.check_draws(good, "x", ["looked_after"], ["A"], [1, 2, 3])
    with pytest.raises(ValueError, match="dims"):
        F.check_draws(good.rename(la="authority"), "x", ["looked_after"], ["A"], [1])
    with pytest.raises(TypeError, match="DataArray"):
        F.check_draws(good.values, "x", ["looked_after"], ["A"], [1])
    with pytest.raises(ValueError, match="at least 2"):
        F.check_draws(good.isel(draw=[0]), "x", ["looked_after"], ["A"], [1])


def test_spend_is_forecast_from_the_spend_column():
    # the costs hook: the same baselines forecast spend (£ per year) from the panel's spend column
    assert F.outcome_column("looked_after", "spend") == "spend_looked_after"
    with pytest.raises(BayesLacError, match="no spend outcome"):
        F.outcome_column("child_protection", "spend")
    with pytest.raises(BayesLacError, match="quantity"):
        F.outcome_column("looked_after", "pounds")
    years = list(range(2013, 2019))
    panel = toy_panel({"E06000001": [1e6, 1.1e6, 1.2e6, 1.3e6, 1.4e6, 1.5e6]}, years, measure="spend_looked_after")
    panel["looked_after"] = pd.array([10] * len(years), dtype="Float64")
    draws = draws_of(F.LastValue(n_draws=2000), panel, 2018, [1], quantity="spend")
    assert np.median(draws.values) == pytest.approx(1.5e6, rel=0.01)
