"""Forecasts and scenarios on small synthetic runs with known parameters (no sampling)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.forecast import (
    FORECAST_TABLE_COLUMNS,
    Scenario,
    exceedance_finding,
    fan_chart_table,
    forecast,
    forecast_table,
    plot_forecast,
    prob_exceeds,
    scenario_difference,
)
from bayes_lac.data.population import (
    growth_summary,
    project_population,
    read_population_file,
)
from bayes_lac.errors import BayesLacError, InputFileError
from bayes_lac.model import results as R
from tests.conftest import make_toy_results

ENGLAND_LAC_RATE = 60.0  # the toy reference: 72,000 children in 12 million
BASE = 2020


@pytest.fixture(scope="module")
def run():
    return make_toy_results()


@pytest.fixture(scope="module")
def fc(run):
    return forecast(
        run,
        horizon=10,
        scenarios=["trend", "population-only", "converge-england", "converge-neighbours", "target:50@2024"],
        seed=1,
    )


def _population_file(tmp_path, years, pops, name="pop.csv", la_code=None):
    frame = pd.DataFrame({"year": years, "population_0_17": pops})
    if la_code is not None:
        frame.insert(0, "la_code", la_code)
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_dataset_layout_and_units(run, fc):
    d = fc.data
    assert d["predicted"].dims == ("draw", "measure", "scenario", "year")
    assert d.sizes["draw"] == run["posterior"].sizes["chain"] * run["posterior"].sizes["draw"]  # stacked
    assert list(d["year"].values) == list(range(BASE + 1, BASE + 11))
    assert fc.base_year == BASE and fc.horizon == 10
    assert np.allclose(d["rate"], d["expected_reported"] / d["population_0_17"] * 10_000)
    assert any("Deprivation held" in a for a in fc.assumptions)


def test_base_year_rate_matches_results_scales(run, fc):
    la = run.attrs["target_la"]
    by_results = R.rate(run, la=la).sel(year=BASE).stack(sample=("chain", "draw")).transpose("sample", "measure")
    assert np.allclose(fc.base["rate"].values, by_results.values)


def test_trend_centre_follows_la_trend(run):
    # With year_sigma 0.05 the random walk has mean zero: the log rate's mean follows the trend.
    f = forecast(run, horizon=10, scenarios=["trend"], seed=3)
    pop = f.data["population_0_17"]
    log_rate = np.log(f.data["expected"].sel(measure="children_in_need", scenario="trend") / pop * 10_000)
    level = float(run["posterior"]["intercept"].sel(measure="children_in_need").mean())
    # trend 0.02 a year from the reference year 2020, year effect at 2020 is 10 * 0.01
    by_hand = level + 0.02 * (f.data["year"] - 2020) + 0.10
    assert np.allclose(log_rate.mean("draw"), by_hand, atol=0.02)


def test_population_only_holds_the_modelled_rate(run, tmp_path):
    years = np.arange(BASE + 1, BASE + 11)
    path = _population_file(tmp_path, years, 40_000 * 1.02 ** (years - BASE))
    f = forecast(run, horizon=10, scenarios=["population-only"], population=path)
    modelled_rate = f.data["expected"].sel(scenario="population-only") / f.data["population_0_17"] * 10_000
    # constant over years within each draw, equal to the draw's base-year modelled rate
    assert np.allclose(modelled_rate - modelled_rate.isel(year=0), 0.0)
    base_modelled = f.base["rate"].sel(measure="children_in_need")
    assert np.allclose(modelled_rate.sel(measure="children_in_need").isel(year=0), base_modelled)
    # counts grow with the population
    counts = f.data["expected"].sel(scenario="population-only", measure="children_in_need")
    assert np.allclose(counts.isel(year=-1) / counts.isel(year=0), 1.02**9)


def test_converge_england_reaches_england_in_year_5_and_holds(fc):
    r = fc.data["rate"].sel(scenario="converge-england", measure="looked_after")
    assert np.allclose(r.sel(year=slice(BASE + 5, None)), ENGLAND_LAC_RATE)
    # equal steps on the log scale from each draw's base-year rate
    start = np.log(fc.base["rate"].sel(measure="looked_after"))
    for h in range(1, 5):
        expected = start + h / 5 * (np.log(ENGLAND_LAC_RATE) - start)
        assert np.allclose(np.log(r.sel(year=BASE + h)), expected)
    cin = fc.data["rate"].sel(scenario="converge-england", measure="children_in_need", year=BASE + 7)
    assert np.allclose(cin, 330.0)


def test_converge_neighbours_reaches_pooled_neighbour_rate_per_draw(run, fc):
    codes = json.loads(run.attrs["neighbours"])
    exp = R.expected_reported(run, la=codes).sel(year=BASE, measure="looked_after").sum("la")
    pop = float(run["constant_data"]["population_0_17"].sel(la=codes, year=BASE).sum())
    pooled = (exp / pop * 10_000).stack(sample=("chain", "draw")).values
    r = fc.data["rate"].sel(scenario="converge-neighbours", measure="looked_after", year=BASE + 6).values
    assert np.allclose(r, pooled)


def test_custom_target_reached_and_other_measures_follow_trend(fc):
    r = fc.data["rate"].sel(scenario="target:50@2024", measure="looked_after")
    assert np.allclose(r.sel(year=slice(2024, None)), 50.0)
    assert not np.allclose(r.sel(year=2022), 50.0)
    cin_target = fc.data["expected"].sel(scenario="target:50@2024", measure="children_in_need")
    cin_trend = fc.data["expected"].sel(scenario="trend", measure="children_in_need")
    assert np.allclose(cin_target, cin_trend)


def test_scenario_object_and_parse():
    s = Scenario.parse("target:65.5@2030")
    assert (s.kind, s.target_rate, s.target_year, s.name) == ("target", 65.5, 2030, "target:65.5@2030")
    with pytest.raises(BayesLacError, match="unknown scenario"):
        Scenario.parse("optimistic")
    with pytest.raises(ValueError):
        Scenario(kind="target", target_rate=50.0)


def test_target_year_must_be_after_base_year(run):
    with pytest.raises(BayesLacError, match="after the last fitted year"):
        forecast(run, horizon=3, scenarios=["target:50@2019"])


def test_uasc_share_scenario(run):
    f = forecast(run, horizon=5, scenarios=["trend", Scenario(kind="trend", uasc_rate=0.002)], uasc_rate=0.001)
    share_name = "trend, UASC 0.2%"
    assert f.scenario_names == ["trend", share_name]
    # toy population is a constant 40,000: 0.1 % is 40 children, 0.2 % is 80
    assert np.allclose(f.data["uasc"].sel(scenario="trend"), 40.0)
    assert np.allclose(f.data["uasc"].sel(scenario=share_name), 80.0)
    added = f.data["expected_reported"] - f.data["expected"]
    assert np.allclose(added.sel(measure="looked_after", scenario="trend"), 40.0)
    assert np.allclose(added.sel(measure="child_protection"), 0.0)
    # the predicted count includes UASC: at least the UASC count
    assert (f.data["predicted"].sel(measure="looked_after", scenario=share_name) >= 80).all()
    # default: held at the last observed count (10 in the toy run)
    g = forecast(run, horizon=2, scenarios=["trend"])
    assert np.allclose(g.data["uasc"], 10.0)


def test_uasc_above_target_is_refused(run):
    with pytest.raises(BayesLacError, match="UASC"):
        forecast(run, horizon=5, scenarios=["target:5@2023"], uasc_rate=0.05)


def test_intervals_widen_with_horizon(fc):
    t = forecast_table(fc, scenarios=["trend"], measures=["looked_after"])
    width = (t["upper"] - t["lower"]).to_numpy()
    assert width[-1] > 1.3 * width[0]
    r = forecast_table(fc, scenarios=["trend"], measures=["looked_after"], scale="rate")
    rw = (r["upper"] - r["lower"]).to_numpy()
    assert rw[-1] > 2 * rw[0]


def test_predictive_intervals_wider_than_expected(fc):
    pred = forecast_table(fc, scale="count")
    exp = forecast_table(fc, scale="expected")
    assert ((pred["upper"] - pred["lower"]) > (exp["upper"] - exp["lower"])).all()
    # the noise is centred: means agree within Monte Carlo error
    assert np.allclose(pred["mean"], exp["mean"], rtol=0.05)


def test_per_draw_differences(fc):
    d = scenario_difference(fc, "converge-england", baseline="trend", measure="looked_after")
    t = forecast_table(fc, measures=["looked_after"])
    means = t.pivot(index="year", columns="scenario", values="mean")
    assert np.allclose(d["mean"], (means["converge-england"] - means["trend"]).to_numpy())
    # pairing draws (shared random numbers) gives a narrower interval than independent draws
    a = fc.data["predicted"].sel(measure="looked_after", scenario="converge-england", year=BASE + 10).values
    b = fc.data["predicted"].sel(measure="looked_after", scenario="trend", year=BASE + 10).values
    shuffled = a - np.random.default_rng(0).permutation(b)
    paired_width = d["upper"].iloc[-1] - d["lower"].iloc[-1]
    assert paired_width < np.subtract(*np.quantile(shuffled, [0.95, 0.05]))
    # the probability that the scenario is higher is the share of draws in which it is
    assert d["prob_higher"].iloc[-1] == pytest.approx(float(np.mean(a > b)))


def test_prob_exceeds_and_sentence(fc):
    assert prob_exceeds(fc, 10, BASE + 3) == 1.0
    assert prob_exceeds(fc, 1e6, BASE + 3) == 0.0
    median = float(fc.data["predicted"].sel(measure="looked_after", scenario="trend", year=BASE + 5).median())
    p = prob_exceeds(fc, median, BASE + 5)
    assert 0.35 < p < 0.6
    finding = exceedance_finding(fc, 320, BASE + 8)
    assert "chance that the number of children looked after" in finding.sentence
    assert "exceeds 320 by March 2028" in finding.sentence
    assert "90% credible interval" in finding.sentence
    assert not any(c.startswith("converge-england:") for c in finding.caveats)


def test_forecast_table_columns_and_rows(fc):
    t = forecast_table(fc, ci_prob=0.8)
    assert tuple(t.columns) == FORECAST_TABLE_COLUMNS
    assert len(t) == 3 * 5 * 10
    assert (t["ci_prob"] == 0.8).all()
    assert ((t["lower"] <= t["median"]) & (t["median"] <= t["upper"])).all()


def test_plot_and_its_table_twin(fc):
    twin = fan_chart_table(fc, measure="looked_after", scenarios=["trend", "converge-england"])
    t = forecast_table(fc, measures=["looked_after"], scenarios=["trend"])
    tw = twin[twin["scenario"] == "trend"]
    assert np.allclose(tw["median"], t["median"])
    assert (tw["lower"] <= tw["lower_inner"]).all() and (tw["upper_inner"] <= tw["upper"]).all()
    fig = plot_forecast(fc, measure="looked_after", scenarios=["trend", "converge-england"])
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 4
    assert np.allclose(ax.lines[0].get_ydata(), tw["median"])


def test_years_beyond_the_backtested_horizon_are_marked_and_shaded(fc):
    twin = fan_chart_table(fc, measure="looked_after", scenarios=["trend"], checked_horizon=2)
    ahead = twin["year"] - fc.base_year
    forecast_rows = twin["scenario"] == "trend"
    assert (twin.loc[forecast_rows & (ahead <= 2), "backtested"] == "yes").all()
    assert (twin.loc[forecast_rows & (ahead > 2), "backtested"] == "no").sum() == fc.horizon - 2
    assert twin.loc[~forecast_rows, "backtested"].isna().all()
    assert "backtested" not in fan_chart_table(fc, measure="looked_after", scenarios=["trend"]).columns
    fig = plot_forecast(fc, measure="looked_after", scenarios=["trend"], checked_horizon=2)
    shaded = [p for p in fig.axes[0].patches if "not checked" in p.get_label()]
    assert len(shaded) == 1
    x = shaded[0].get_x()
    assert x == pytest.approx(fc.base_year + 2.5)
    # nothing shaded when the whole horizon was checked
    fig = plot_forecast(fc, measure="looked_after", scenarios=["trend"], checked_horizon=fc.horizon)
    assert not [p for p in fig.axes[0].patches if "not checked" in p.get_label()]


def test_history_used_when_published(run):
    tree = run.copy()
    obs = tree["observed_data"].to_dataset()
    la = run.attrs["target_la"]
    obs["reported_count"].loc[dict(la=la, measure="looked_after")] = np.arange(200.0, 211.0)
    tree["observed_data"] = obs
    f = forecast(tree, horizon=3, scenarios=["trend"])
    twin = fan_chart_table(f, measure="looked_after")
    observed = twin[twin["scenario"] == "observed"]
    assert list(observed["observed"]) == list(np.arange(200.0, 211.0))


def test_horizon_and_authority_checked(run):
    with pytest.raises(BayesLacError, match="horizon"):
        forecast(run, horizon=21)
    with pytest.raises(BayesLacError, match="not in this run"):
        forecast(run, la="E06000999")


# ---- population -----------------------------------------------------------------------------


def test_population_projection_recovers_growth():
    hist = pd.Series(30_000 * 1.01 ** np.arange(8), index=range(2013, 2021))
    mean, sd, n = growth_summary(hist)
    assert np.isclose(mean, np.log(1.01)) and np.isclose(sd, 0.0) and n == 5
    pop, note = project_population(hist, 10, 50, np.random.default_rng(0))
    assert pop.shape == (50, 10)
    assert np.allclose(pop[:, -1], hist.iloc[-1] * 1.01**10)
    assert "+1.00% a year" in note


def test_population_projection_uncertainty_widens():
    rng = np.random.default_rng(0)
    hist = pd.Series(30_000 * np.exp(np.cumsum(rng.normal(0.01, 0.005, 8))), index=range(2013, 2021))
    pop, _ = project_population(hist, 10, 2000, np.random.default_rng(1))
    spread = np.quantile(pop, 0.95, axis=0) - np.quantile(pop, 0.05, axis=0)
    assert spread[-1] > 5 * spread[0]


def test_population_file_used_as_given(run, tmp_path):
    years = np.arange(BASE + 1, BASE + 4)
    path = _population_file(tmp_path, years, [41_000, 42_000, 43_000], la_code=run.attrs["target_la"])
    f = forecast(run, horizon=3, scenarios=["trend"], population=path)
    assert np.allclose(f.data["population_0_17"].isel(draw=0), [41_000, 42_000, 43_000])
    assert np.allclose(f.data["population_0_17"].std("draw"), 0.0)


@pytest.mark.parametrize(
    "content, match",
    [
        ("year,children\n2021,100\n", r"missing column\(s\) population_0_17"),
        ("year,population_0_17\n2021,40000\n2022,lots\n", r"line 3, column population_0_17: 'lots' is not a number"),
        ("year,population_0_17\n2021,40000\n2022,-5\n", r"line 3, column population_0_17.*positive"),
        ("year,population_0_17\n2021,40000\n2021-22,40000\n", r"line 3, column year: '2021-22'"),
        (
            "year,population_0_17\n2021,40000\n2021,41000\n",
            r"lines 2, 3, column year: year 2021 appears more than once",
        ),
        ("year,population_0_17\n2021,40000\n", r"no population_0_17 for year\(s\) 2022, 2023"),
        ("la_code,year,population_0_17\nE06000001,2021,40000\n", r"no rows with la_code E06000034"),
    ],
)
def test_bad_population_files(tmp_path, content, match):
    path = tmp_path / "projection.csv"
    path.write_text(content)
    with pytest.raises(InputFileError, match=match) as err:
        read_population_file(path, la_code="E06000034", years=[2021, 2022, 2023])
    assert "projection.csv" in str(err.value)


def test_missing_population_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_population_file(tmp_path / "absent.csv")


# ---- command line ---------------------------------------------------------------------------


def _save(run, path):
    R.save_run(run, path)
    return str(path)


def test_cli_forecast_writes_exact_columns(tmp_path, capsys):
    from bayes_lac.cli import main

    run_path = _save(make_toy_results(), tmp_path / "run.nc")
    out = tmp_path / "forecast.csv"
    status = main(
        [
            "forecast",
            run_path,
            "--horizon",
            "4",
            "--scenario",
            "trend,target:50@2023",
            "--ci-prob",
            "0.8",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "la_code",
        "measure",
        "year",
        "scenario",
        "mean",
        "median",
        "lower",
        "upper",
        "ci_prob",
    ]
    assert set(table["scenario"]) == {"trend", "target:50@2023"}
    assert (table["ci_prob"] == 0.8).all() and len(table) == 3 * 2 * 4
    assert "Assumptions" in capsys.readouterr().out


def test_cli_refuses_unconverged_unless_allowed(tmp_path, capsys):
    from bayes_lac.cli import main

    run_path = _save(make_toy_results(draws=50, converged=False), tmp_path / "bad.nc")
    out = tmp_path / "f.csv"
    assert main(["forecast", run_path, "--out", str(out)]) == 2
    assert "converge" in capsys.readouterr().err.lower()
    assert not out.exists()
    assert main(["forecast", run_path, "--allow-unconverged", "--horizon", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "WARNING" in printed.out and "CONVERGENCE" in printed.err
    assert out.exists()


def _above_path(persistence: float, share: float = 1.25):
    """A toy run whose target authority's last count sits `share` times its path."""
    run = make_toy_results(persistence=persistence)
    path = R.expected(run, run.attrs["target_la"]).sel(year=BASE).median(("chain", "draw"))
    counts = run["observed_data"]["modelled_count"].copy()
    counts.loc[dict(la=run.attrs["target_la"], year=BASE)] = np.round(share * path.values)
    run["observed_data"]["modelled_count"] = counts
    return run


def test_persistence_starts_forecasts_where_the_authority_is_and_fades():
    phi, share = 0.8, 1.25
    scen = ("trend", "population-only", "converge-england")
    held = forecast(_above_path(phi, share), horizon=10, scenarios=scen, seed=3)
    plain = forecast(_above_path(0.0, share), horizon=10, scenarios=scen, seed=3)
    ratio = (held.data["expected"] / plain.data["expected"]).median("draw")
    dev = np.log(share)
    for s in ("trend", "population-only"):
        got = ratio.sel(measure="looked_after", scenario=s)
        # the distance from the path decays as persistence ** h (0.5-count rounding aside)
        np.testing.assert_allclose(got.values, np.exp(phi ** np.arange(1, 11) * dev), rtol=0.01)
    # a prescribed rate path has no persistence term
    np.testing.assert_allclose(ratio.sel(scenario="converge-england").values, 1.0)
    # the predictive draws follow: one year ahead, the median count is about 1.2 x the plain one
    one = held.data["predicted"].sel(scenario="trend", measure="looked_after", year=BASE + 1).median()
    base = plain.data["predicted"].sel(scenario="trend", measure="looked_after", year=BASE + 1).median()
    assert float(one / base) == pytest.approx(np.exp(phi * dev), rel=0.03)
    assert any("fades by the model's persistence" in a for a in held.assumptions)


def test_persistence_feedback_widens_long_horizon_intervals():
    # with persistence, each year's noise carries forward, so ten-year intervals are wider
    wide = forecast(make_toy_results(persistence=0.8), horizon=10, scenarios=("trend",), seed=3)
    narrow = forecast(make_toy_results(persistence=0.0), horizon=10, scenarios=("trend",), seed=3)

    def width(fc):
        p = fc.data["predicted"].sel(scenario="trend", measure="looked_after", year=BASE + 10)
        return float(p.quantile(0.95) - p.quantile(0.05))

    assert width(wide) > 1.2 * width(narrow)
