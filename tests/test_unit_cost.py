"""The modelled unit cost: the data it uses, recovery on simulated spend, and its draws in costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis.costs import WEEKS_PER_YEAR, constant_price_index, costs
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError
from bayes_lac.model.unit_cost import (
    FIRST_COMPARABLE_YEAR,
    fit_unit_cost,
    predict_unit_cost,
    unit_cost_data,
    unit_cost_table,
)
from tests.conftest import TEST_SAMPLER

# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = pytest.mark.xdist_group("unit_cost")

TRUTH = {"growth": 0.05, "national_sd": 0.02, "offset_sd": 0.25, "persistence": 0.6, "sigma": 0.08}


def simulate_panel(n_la=20, years=range(2013, 2027), seed=1, truth=TRUTH) -> pd.DataFrame:
    """Spend and children in care drawn from the unit-cost model with known parameters."""
    rng = np.random.default_rng(seed)
    years = np.array(list(years))
    steps = truth["growth"] + truth["national_sd"] * rng.standard_normal(len(years) - 1)
    national = np.log(50_000) + np.concatenate([[0.0], np.cumsum(steps)])
    offset = truth["offset_sd"] * rng.standard_normal(n_la)
    offset -= offset.mean()
    rho, sigma = truth["persistence"], truth["sigma"]
    log_unit = np.empty((n_la, len(years)))
    children = np.empty(n_la)
    for a in range(n_la):
        dep = sigma / np.sqrt(1 - rho**2) * rng.standard_normal()
        children[a] = rng.integers(80, 600)
        for t in range(len(years)):
            if t:
                dep = rho * dep + sigma * rng.standard_normal()
            log_unit[a, t] = national[t] + offset[a] + dep
    return spend_panel(log_unit, years, children)


def spend_panel(log_unit: np.ndarray, years, children: np.ndarray) -> pd.DataFrame:
    """A panel whose s251 spend over children in care gives these log unit costs (authority, year)."""
    rows = [
        {
            "la_code": f"E0600{a:04d}",
            "la_name": f"LA {a}",
            "year": int(year),
            "looked_after": float(children[a]),
            "spend_looked_after": float(children[a] * np.exp(log_unit[a, t])),
            "geographic_level": "Local authority",
        }
        for a in range(log_unit.shape[0])
        for t, year in enumerate(years)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def recovery_fit():
    """The measured alternative design (one growth rate, AR departures) on data drawn from it."""
    panel = simulate_panel()
    data = unit_cost_data(panel)
    return fit_unit_cost(
        data, sampler=TEST_SAMPLER, draws=300, tune=500, chains=2, seed=3, growth_model="drift", departure="ar"
    )


#: National growth of 2 % a year for 7 years, then rising by 2 points a year to 12 %
#: (the shape of the s251 series 2014-2025); each authority walks away from it.
WALK_TRUTH = {
    "drift": np.r_[np.full(7, 0.02), 0.04, 0.06, 0.08, 0.10, 0.12, 0.12],
    "sigma": 0.06,
    "offset_sd": 0.25,
}


def simulate_walk_panel(n_la=25, seed=5, truth=WALK_TRUTH) -> pd.DataFrame:
    """Spend and children in care drawn from the default design with an accelerating national growth."""
    rng = np.random.default_rng(seed)
    drift = np.asarray(truth["drift"])
    years = np.arange(2013, 2013 + len(drift) + 1)
    national = np.log(50_000) + np.concatenate([[0.0], np.cumsum(drift)])
    log_unit = np.empty((n_la, len(years)))
    children = np.empty(n_la)
    for a in range(n_la):
        own = truth["offset_sd"] * rng.standard_normal() + np.concatenate(
            [[0.0], np.cumsum(truth["sigma"] * rng.standard_normal(len(years) - 1))]
        )
        children[a] = rng.integers(80, 600)
        log_unit[a] = national + own
    return spend_panel(log_unit, years, children)


@pytest.fixture(scope="session")
def walk_fit():
    """The default design on data drawn from it."""
    data = unit_cost_data(simulate_walk_panel())
    return fit_unit_cost(data, sampler=TEST_SAMPLER, draws=400, tune=600, chains=2, seed=4)


@pytest.mark.slow
def test_the_default_unit_cost_model_follows_a_national_growth_that_speeds_up(walk_fit):
    post = walk_fit.posterior
    assert "drift_sd" in post and "persistence" not in post  # the default design
    drift = post["drift"].values  # (sample, step): each year's national growth
    true = WALK_TRUTH["drift"]
    lo, hi = np.quantile(drift, [0.05, 0.95], axis=0)
    inside = (lo <= true) & (true <= hi)
    assert inside.mean() >= 0.75, f"true growth inside the 90% interval in {inside.sum()} of {len(true)} years"
    # the latest growth is the speeded-up one, not the average over the years (about 5.5 %)
    latest = post["growth"].values
    assert np.quantile(latest, 0.05) > 0.07 and np.quantile(latest, 0.05) <= 0.12 <= np.quantile(latest, 0.95)
    nu = post["nu"].values
    noise_sd = post["sigma"].values * np.sqrt(np.where(nu > 2, nu / np.maximum(nu - 2, 1e-9), np.inf))
    lo, hi = np.quantile(noise_sd, [0.05, 0.95])
    assert lo <= WALK_TRUTH["sigma"] <= hi, f"own-walk sd: truth outside {lo:.3f}-{hi:.3f}"
    assert walk_fit.diagnostics["max_rhat"] < 1.05


@pytest.mark.slow
def test_the_default_unit_cost_forecast_continues_the_latest_growth_and_its_fan_widens(walk_fit):
    la = walk_fit.data.la[0]
    draws = predict_unit_cost(walk_fit, la, range(2027, 2032), n_draws=2000, seed=2)
    log = np.log(draws.values)
    last = np.log(walk_fit.data.table.query("la_code == @la")["unit_cost_gbp_per_child_year"].iloc[-1])
    # first year: the latest national growth (12 %) carried on, within its uncertainty
    first_step = np.median(log[:, 0]) - last
    assert 0.07 < first_step < 0.17
    sd = log.std(axis=0)
    assert np.all(np.diff(sd) > 0)  # each year further out is less certain
    # the fan widens faster than a walk with one fixed growth rate (sd growing like sqrt(h))
    assert sd[4] / sd[0] > np.sqrt(5)


@pytest.mark.slow
def test_unit_cost_model_recovers_known_growth_persistence_and_noise(recovery_fit):
    post = recovery_fit.posterior
    # sigma is the scale of a Student-t; its sd, comparable to the simulated normal noise's, is larger
    nu = post["nu"].values
    noise_sd = post["sigma"].values * np.sqrt(np.where(nu > 2, nu / np.maximum(nu - 2, 1e-9), np.inf))
    draws = {name: post[name].values for name in TRUTH if name != "sigma"} | {"sigma": noise_sd}
    for name, true in TRUTH.items():
        lo, hi = np.quantile(draws[name], [0.05, 0.95])
        assert lo <= true <= hi, f"{name}: truth {true} outside the 90% interval {lo:.3f}-{hi:.3f}"
    assert recovery_fit.diagnostics["max_rhat"] < 1.05


@pytest.mark.slow
def test_predicted_unit_cost_grows_at_the_national_rate_and_widens(recovery_fit):
    la = recovery_fit.data.la[0]
    draws = predict_unit_cost(recovery_fit, la, range(2027, 2037), n_draws=1000, seed=1)
    assert draws.dims == ("draw", "year") and draws.sizes["draw"] == 1000
    median = draws.median("draw")
    growth = float((median.sel(year=2036) / median.sel(year=2031)) ** (1 / 5) - 1)
    assert 0.02 < growth < 0.08  # the true national growth is 5 % a year
    width = draws.quantile(0.95, "draw") - draws.quantile(0.05, "draw")
    assert float(width.sel(year=2036) / median.sel(year=2036)) > float(width.sel(year=2027) / median.sel(year=2027))
    table = unit_cost_table(recovery_fit, la)
    assert {"unit_cost_gbp_per_child_year", "national_gbp_per_child_year"} <= set(table.columns)


def test_years_before_the_definitional_break_and_tiny_counts_are_listed_not_used():
    panel = simulate_panel(n_la=3, years=range(2010, 2016))
    panel.loc[(panel["la_code"] == "E06000001") & (panel["year"] == 2014), "looked_after"] = 5.0
    panel.loc[(panel["la_code"] == "E06000002") & (panel["year"] == 2015), "spend_looked_after"] = np.nan
    data = unit_cost_data(panel)
    assert data.table["year"].min() == FIRST_COMPARABLE_YEAR
    reasons = data.excluded.set_index(["la_code", "year"])["reason"]
    assert "definitional break" in reasons[("E06000000", 2012)]
    assert "fewer than 20" in reasons[("E06000001", 2014)]
    assert reasons[("E06000002", 2015)] == "no spend_looked_after"
    assert len(data.table) + len(data.excluded) == len(panel)  # nothing silently dropped
    assert any("definitional break" in n for n in data.notices())


def test_a_change_of_spend_source_is_flagged_as_a_break():
    panel = simulate_panel(n_la=2, years=range(2013, 2018))
    panel["spend_looked_after_source"] = np.where(panel["year"] < 2016, "s251 outturn 2013-14", "LAIT@abc")
    data = unit_cost_data(panel)
    flagged = data.table[data.table["break_before"]]
    assert set(flagged["year"]) == {2016} and len(flagged) == 2
    with pytest.raises(BayesLacError, match="break year"):
        unit_cost_data(panel, breaks=(2030,))


def test_a_spend_that_is_not_a_number_names_the_authority_and_year():
    panel = simulate_panel(n_la=2, years=range(2013, 2016)).astype({"spend_looked_after": object})
    panel.loc[1, "spend_looked_after"] = "n/a"
    with pytest.raises(PanelError, match=r"spend_looked_after, E06000000 2014: 'n/a'"):
        unit_cost_data(panel)


@pytest.mark.slow
def test_an_authority_without_unit_costs_cannot_be_predicted(recovery_fit):
    with pytest.raises(UnknownAuthorityError):
        predict_unit_cost(recovery_fit, "E06009999", [2027])


def test_modelled_unit_cost_draws_multiply_the_children_draw_by_draw():
    from bayes_lac.analysis.forecast import forecast
    from tests.conftest import make_toy_results

    fc = forecast(make_toy_results(), horizon=3, scenarios=["trend"], seed=0)
    n = fc.data.sizes["draw"]
    rng = np.random.default_rng(0)
    unit = xr.DataArray(
        rng.lognormal(np.log(80_000), 0.2, size=(n, 3)),
        dims=("draw", "year"),
        coords={"draw": fc.data["draw"].values, "year": fc.data["year"].values},
    )
    unit.attrs["base_unit_cost_gbp_per_child_year"] = 75_000.0
    c = costs(fc, unit, inflation=0.0, prices=constant_price_index(0.0))
    assert c.method == "model"
    children = fc.data["predicted"].sel(measure="looked_after", scenario="trend").values
    assert np.allclose(c.data["cost_nominal"].sel(scenario="trend").values, children * unit.values)
    assert np.allclose(c.data["weekly_unit_cost_nominal"].values, unit.values / WEEKS_PER_YEAR)
    with pytest.raises(BayesLacError, match="draws"):
        costs(fc, unit.isel(draw=slice(0, 10)))


def _fake_fit(calls):
    """A stand-in for `fit_unit_cost` that records its calls and returns a tiny fit."""
    from bayes_lac.model.unit_cost import UnitCostFit

    def fake(data, **settings):
        calls.append(settings)
        rng = np.random.default_rng(settings.get("seed", 0))
        posterior = xr.Dataset(
            {"growth": ("sample", rng.normal(0.05, 0.01, 40)), "offset": (("sample", "la"), rng.normal(size=(40, 2)))},
            coords={"la": ["E06000001", "E06000002"]},
        )
        diagnostics = {"max_rhat": 1.002, "min_ess_bulk": 500.0, "divergences": 0, "seconds": 1.0, "sampler": "pymc"}
        return UnitCostFit(posterior=posterior, data=data, diagnostics=diagnostics)

    return fake


def test_a_unit_cost_fit_is_kept_and_reused_for_the_same_data_and_settings(tmp_path, monkeypatch):
    import bayes_lac.model.unit_cost as uc

    calls = []
    monkeypatch.setattr(uc, "fit_unit_cost", _fake_fit(calls))
    data = unit_cost_data(simulate_panel(n_la=3, years=range(2013, 2018)))
    first = uc.fit_unit_cost_cached(data, folder=tmp_path, sampler=TEST_SAMPLER, seed=3)
    again = uc.fit_unit_cost_cached(data, folder=tmp_path, sampler=TEST_SAMPLER, seed=3, progressbar=True)
    assert len(calls) == 1 and len(list(tmp_path.glob("unit_cost-*.nc"))) == 1
    xr.testing.assert_identical(first.posterior, again.posterior)
    assert again.diagnostics == first.diagnostics and again.data is data
    # another seed, other data or no cache: fitted again
    uc.fit_unit_cost_cached(data, folder=tmp_path, sampler=TEST_SAMPLER, seed=4)
    other = unit_cost_data(simulate_panel(n_la=3, years=range(2013, 2018), seed=2))
    uc.fit_unit_cost_cached(other, folder=tmp_path, sampler=TEST_SAMPLER, seed=3)
    uc.fit_unit_cost_cached(data, folder=None, sampler=TEST_SAMPLER, seed=3)
    assert len(calls) == 4 and len(list(tmp_path.glob("unit_cost-*.nc"))) == 3


def test_an_unreadable_unit_cost_cache_entry_is_fitted_again(tmp_path, monkeypatch):
    import bayes_lac.model.unit_cost as uc

    calls = []
    monkeypatch.setattr(uc, "fit_unit_cost", _fake_fit(calls))
    data = unit_cost_data(simulate_panel(n_la=3, years=range(2013, 2018)))
    uc.fit_unit_cost_cached(data, folder=tmp_path, seed=3)
    [entry] = tmp_path.glob("unit_cost-*.nc")
    entry.write_bytes(b"not a netCDF file")
    with pytest.warns(UserWarning, match="could not be read"):
        refit = uc.fit_unit_cost_cached(data, folder=tmp_path, seed=3)
    assert len(calls) == 2 and refit.diagnostics["max_rhat"] == 1.002
    assert uc.fit_unit_cost_cached(data, folder=tmp_path, seed=3).diagnostics == refit.diagnostics and len(calls) == 2


def test_the_unit_cost_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    import bayes_lac.model.unit_cost as uc

    monkeypatch.setenv("BAYES_LAC_CACHE", str(tmp_path / "c"))
    assert uc.cache_dir() == tmp_path / "c"
    monkeypatch.setenv("BAYES_LAC_CACHE", "")
    assert uc.cache_dir() is None
    monkeypatch.delenv("BAYES_LAC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert uc.cache_dir() == tmp_path / "x" / "bayes_lac"


def test_a_damped_growth_is_pulled_back_towards_its_long_run_in_the_forecast():
    """`predict_unit_cost` with the measured alternative ``growth_model="damped"``: each year's
    national growth is long_run + damping x (last year's - long_run), here without noise."""
    from bayes_lac.model.unit_cost import UnitCostFit

    data = unit_cost_data(spend_panel(np.log(np.full((2, 5), 50_000.0)), range(2013, 2018), np.full(2, 100.0)))
    n = 4
    posterior = xr.Dataset(
        {
            "growth": ("sample", np.full(n, 0.12)),
            "long_run_growth": ("sample", np.full(n, 0.04)),
            "damping": ("sample", np.full(n, 0.5)),
            "drift_sd": ("sample", np.zeros(n)),
            "sigma": ("sample", np.full(n, 1e-9)),
            "nu": ("sample", np.full(n, 50.0)),
            "national": (("sample", "year"), np.tile(np.log(50_000.0) + np.zeros(5), (n, 1))),
        },
        coords={"year": data.years},
    )
    fit = UnitCostFit(posterior=posterior, data=data, diagnostics={})
    draws = predict_unit_cost(fit, data.la[0], range(2018, 2021), n_draws=n, seed=0)
    steps = np.diff(np.log(np.r_[50_000.0, draws.values[0]]))
    np.testing.assert_allclose(steps, [0.08, 0.06, 0.05], atol=1e-6)
