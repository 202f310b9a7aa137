"""The model's path and its persistence, written once (bayes_lac.model.path)."""

import numpy as np
import xarray as xr

from bayes_lac.model.path import log_distance, log_rate_path, persist_forward


def test_the_path_is_the_sum_of_its_terms_in_numpy_and_xarray():
    rng = np.random.default_rng(0)
    years = np.arange(2015, 2021)
    intercept, la_intercept, la_trend = 4.0, rng.normal(0, 0.3, 3), rng.normal(0, 0.02, 3)
    year_effect = rng.normal(0, 0.05, len(years))
    dep = rng.normal(20, 5, (3, len(years)))
    terms = log_rate_path(
        intercept, la_intercept[:, None], la_trend[:, None], year_effect[None, :], 0.02, dep, years[None, :], 2020, 18.0
    )
    by_hand = (
        intercept
        + la_intercept[:, None]
        + la_trend[:, None] * (years[None, :] - 2020)
        + year_effect[None, :]
        + 0.02 * (dep - 18.0)
    )
    np.testing.assert_allclose(terms["log_rate"], by_hand, rtol=0, atol=1e-12)
    np.testing.assert_allclose(terms["trend"][:, -1], 0.0)  # centred on the reference year

    la = xr.DataArray(la_intercept, dims="la")
    arrays = log_rate_path(
        intercept,
        la,
        xr.DataArray(la_trend, dims="la"),
        xr.DataArray(year_effect, dims="year", coords={"year": years}),
        0.02,
        xr.DataArray(dep, dims=("la", "year"), coords={"year": years}),
        xr.DataArray(years, dims="year", coords={"year": years}),
        2020,
        18.0,
    )
    np.testing.assert_allclose(arrays["log_rate"].transpose("la", "year").values, by_hand, rtol=0, atol=1e-12)


def test_each_years_distance_from_the_path_carries_into_the_next_by_the_persistence():
    path = np.array([[100.0, 110.0, 120.0, 130.0]])
    seen = []

    def twice_the_mean_in_the_first_year(t, mean):
        seen.append(mean.copy())
        return np.round(mean * (2.0 if t == 0 else 1.0))

    counts = persist_forward(path, np.array([0.5]), twice_the_mean_in_the_first_year)
    assert counts[0, 0] == 200.0
    # year 1: half of year 0's log distance carried in
    d0 = log_distance(200.0, 100.0)
    np.testing.assert_allclose(seen[1], 110.0 * np.exp(0.5 * d0))
    # year 2: half of year 1's own distance (its drawn count against its path)
    d1 = log_distance(counts[0, 1], 110.0)
    np.testing.assert_allclose(seen[2], 120.0 * np.exp(0.5 * d1))
    assert seen[2][0] < seen[1][0] / 110.0 * 120.0  # the distance fades


def test_a_year_that_does_not_carry_starts_on_its_path_and_a_start_distance_is_used():
    path = np.full((2, 3), 50.0)
    carries = np.array([[True, False, True], [True, True, True]])
    means = []
    persist_forward(
        path,
        np.array([0.8, 0.8]),
        lambda t, mean: means.append(mean.copy()) or np.full(2, 80.0),
        deviation=np.array([0.0, np.log(2.0)]),
        carries=carries,
    )
    np.testing.assert_allclose(means[0], [50.0, 50.0 * 2.0**0.8])
    assert means[1][0] == 50.0  # restarts
    assert means[1][1] > 50.0


def test_no_persistence_draws_around_the_path_itself():
    rng = np.random.default_rng(1)
    path = np.full((20_000, 3), 40.0)
    counts = persist_forward(path, 0.0, lambda t, mean: rng.poisson(mean).astype(float), deviation=1.0)
    np.testing.assert_allclose(counts.mean(axis=0), 40.0, rtol=0.01)
