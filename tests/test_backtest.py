"""Backtests: scoring, baselines, calibration tables and a small backtest on a Dask LocalCluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_lac.errors import BayesLacError, UnknownAuthorityError
from bayes_lac.studies import backtest as B
from bayes_lac.summaries import format_percent

# -- scoring --------------------------------------------------------------------------------


def test_score_samples_matches_closed_forms():
    rng = np.random.default_rng(0)
    mu, sd = np.array([100.0, 200.0, 50.0]), np.array([10.0, 20.0, 5.0])
    samples = mu[:, None] + sd[:, None] * rng.standard_normal((3, 20_000))
    observed = np.array([100.0, 240.0, np.nan])
    scores = B.score_samples(samples, observed)
    # CRPS of a normal forecast in closed form (Gneiting & Raftery 2007)
    z = (observed[:2] - mu[:2]) / sd[:2]
    exact = sd[:2] * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert scores["crps"].iloc[:2].to_numpy() == pytest.approx(exact, rel=0.02)
    assert scores.loc[0, "pit"] == pytest.approx(0.5, abs=0.02)
    assert scores.loc[1, "pit"] == pytest.approx(stats.norm.cdf(2.0), abs=0.01)
    assert scores.loc[0, "upper_90"] == pytest.approx(100 + 1.645 * 10, abs=0.5)
    assert scores.loc[0, "lower_50"] == pytest.approx(100 - 0.674 * 10, abs=0.5)
    # not published: bounds still given, no score
    assert np.isnan(scores.loc[2, "crps"]) and np.isnan(scores.loc[2, "pit"])
    assert scores.loc[2, "median"] == pytest.approx(50, abs=0.2)


def test_randomised_pit_spreads_ties():
    samples = np.tile(np.array([3.0] * 500 + [4.0] * 500), (2000, 1))  # P(X=3) = P(X=4) = 0.5
    pit = B.score_samples(samples, np.full(2000, 3.0))["pit"]
    assert pit.min() >= 0 and pit.max() <= 0.5
    assert pit.mean() == pytest.approx(0.25, abs=0.02)


def test_no_forecast_rows_get_no_scores():
    samples = np.vstack([np.full(10, np.nan), np.arange(10.0)])
    scores = B.score_samples(samples, np.array([5.0, 5.0]))
    assert scores.iloc[0].isna().all()
    assert scores.iloc[1].notna().all()


# -- baselines ------------------------------------------------------------------------------


def _history(values, start=2010):
    return pd.Series(np.asarray(values, float), index=range(start, start + len(values)))


def test_last_value_is_a_random_walk_from_the_origin():
    counts = _history([100, 104, 99, 103, 101, 105])
    pop = _history([10_000] * 6)
    draws = B.baseline_samples(counts, pop, 2015, [1, 4], "last_value", np.random.default_rng(1), 20_000)
    assert np.median(draws, axis=1) == pytest.approx([105, 105], abs=0.3)
    changes = np.diff(counts.to_numpy())
    sigma = np.sqrt(np.mean(changes**2))
    assert draws.std(axis=1) == pytest.approx([sigma, 2 * sigma], rel=0.03)


def test_linear_trend_extrapolates_the_last_five_years_only():
    # flat until 2014, then +10 a year: the fit must use 2016-2020 only
    counts = _history([50, 50, 50, 50, 50, 60, 70, 80, 90, 100, 110])
    pop = _history([10_000] * 11)
    draws = B.baseline_samples(counts, pop, 2020, [1, 3], "linear_trend", np.random.default_rng(2), 4000)
    # an exact line: no residual spread, the forecast is the line itself
    assert np.median(draws, axis=1) == pytest.approx([120, 140], abs=1e-6)
    noisy = counts + np.array([0, 0, 0, 0, 0, 0, 3, -2, 1, -3, 2])
    draws = B.baseline_samples(noisy, pop, 2020, [1, 3], "linear_trend", np.random.default_rng(2), 20_000)
    assert np.median(draws[0]) == pytest.approx(120, abs=3)
    assert draws[1].std() > draws[0].std()  # the prediction interval widens away from the data


def test_constant_rate_grows_with_population_and_needs_the_origin():
    counts = _history([100, 102, 98, 101, 100, 100])
    pop = _history([10_000, 10_100, 10_201, 10_303, 10_406, 10_510])  # +1 % a year
    draws = B.baseline_samples(counts, pop, 2015, [5], "constant_rate", np.random.default_rng(3), 20_000)
    assert np.median(draws) == pytest.approx(100 * 1.01**5, rel=0.01)
    gap = counts.drop(2015)
    assert np.isnan(B.baseline_samples(gap, pop, 2015, [1], "constant_rate", np.random.default_rng(3), 10)).all()
    with pytest.raises(ValueError, match="unknown baseline"):
        B.baseline_samples(counts, pop, 2015, [1], "naive", np.random.default_rng(3), 10)


# -- summaries from a synthetic table ----------------------------------------------------------


def _calibrated_table(n=3000, seed=5):
    """Forecast rows whose outcomes are drawn from the forecast distribution itself."""
    rng = np.random.default_rng(seed)
    horizon = np.tile([1, 2], n // 2)
    mu = rng.uniform(80, 300, n)
    sd = 0.05 * mu * np.sqrt(horizon)
    samples = mu[:, None] + sd[:, None] * rng.standard_normal((n, 1000))
    observed = mu + sd * rng.standard_normal(n)
    scores = B.score_samples(samples, observed)
    index = pd.DataFrame(
        {
            "la_code": [f"E0600{i % 30:04d}" for i in range(n)],
            "measure": "looked_after",
            "origin": 2015 + (np.arange(n) // 60) % 5,
            "horizon": horizon,
        }
    )
    index["year"] = index["origin"] + index["horizon"]
    index["observed"] = observed
    model = pd.concat([index, scores], axis=1).assign(method="model")
    # a baseline with twice the spread around the same centre: worse CRPS
    wide = B.score_samples(mu[:, None] + 2 * sd[:, None] * rng.standard_normal((n, 1000)), observed)
    base = pd.concat([index, wide], axis=1).assign(method="last_value")
    return pd.concat([model, base], ignore_index=True)[list(B.FORECAST_COLUMNS)]


def test_calibrated_forecasts_cover_at_nominal_rates():
    table = _calibrated_table()
    cov = B.coverage_table(table)
    assert cov["coverage"].to_numpy() == pytest.approx(cov["nominal"].to_numpy(), abs=0.04)
    pooled = B.pooled_coverage(table)
    assert list(pooled["nominal"]) == [0.5, 0.8, 0.9]
    assert pooled["coverage"].to_numpy() == pytest.approx([0.5, 0.8, 0.9], abs=0.03)
    assert pooled["n"].iloc[0] == 3000 and pooled["horizons"].iloc[0] == "1-2"
    assert pooled["origins"].iloc[0] == "2015-2019"
    hist = B.pit_histogram_table(table)
    assert hist["count"].sum() == 3000
    assert hist["share"].to_numpy() == pytest.approx(np.full(10, 0.1), abs=0.025)
    # the too-wide baseline over-covers and its PIT piles up in the middle
    wide = B.coverage_table(table, method="last_value")
    assert (wide["coverage"] > wide["nominal"]).all()


def test_summary_and_crps_ratios():
    table = _calibrated_table()
    summary = B.summarise_backtest(table)
    assert list(summary["method"].unique()) == ["model", "last_value"]
    assert (summary["n_missing"] == 0).all()
    ratios = B.crps_ratios(table)
    assert set(ratios["baseline"]) == {"last_value"}
    assert (ratios["ratio"] < 1).all()
    # ratios only use forecasts both methods scored
    table.loc[(table["method"] == "last_value") & (table["horizon"] == 1), "crps"] = np.nan
    ratios = B.crps_ratios(table)
    assert list(ratios["horizon"]) == [2]
    summary = B.summarise_backtest(table)
    missing = summary.set_index(["method", "horizon"]).loc[("last_value", 1), "n_missing"]
    assert missing == 1500
    with pytest.raises(UnknownAuthorityError):
        B.summarise_backtest(table, la="E09999999")
    one = B.summarise_backtest(table, la="E06000003")
    assert one["n_forecasts"].sum() == 200


def test_target_finding_reports_misses():
    table = _calibrated_table()
    finding = B.target_finding(table)
    # calibrated forecasts (outcomes drawn from the forecast itself) meet the target; the
    # sentence quotes the lowest and highest coverage of the 90 % intervals
    cov = B.coverage_table(table)
    cov = cov[cov["nominal"] == 0.9]["coverage"]
    assert f"in {format_percent(cov.min())} to {format_percent(cov.max())} of forecasts at every horizon" in finding.sentence
    assert "miss" not in finding.sentence
    narrow = table.copy()
    narrow.loc[narrow["method"] == "model", "upper_90"] = narrow["lower_90"]  # empty intervals
    assert "miss the coverage target" in B.target_finding(narrow).sentence


def test_calibration_chart_and_twins():
    import matplotlib.pyplot as plt

    table = _calibrated_table(n=400)
    fig = B.plot_calibration(table)
    left, right = fig.axes[:2]
    twin = B.coverage_table(table)
    drawn = np.concatenate([line.get_ydata() for line in left.get_lines() if len(line.get_ydata()) > 2 or line.get_linestyle() != ":"])
    assert set(np.round(twin["coverage"], 6)) <= set(np.round(drawn.astype(float), 6))
    heights = [p.get_height() for p in right.patches]
    assert heights == pytest.approx(B.pit_histogram_table(table)["share"].tolist())
    plt.close(fig)
    fig, ax = plt.subplots()
    assert B.plot_coverage(table, ax=ax) is fig
    plt.close(fig)


def test_parse_years():
    assert B.parse_years("2014-2016", "origins") == [2014, 2015, 2016]
    assert B.parse_years("2014, 2018,2016", "origins") == [2014, 2016, 2018]
    assert B.parse_years("1-5", "horizons") == [1, 2, 3, 4, 5]
    with pytest.raises(BayesLacError, match="backwards"):
        B.parse_years("2016-2014", "origins")
    with pytest.raises(BayesLacError, match="--origins"):
        B.parse_years("2014 to 2016", "origins")


# -- a small backtest with the model ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_panel():
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=6, years=(2010, 2019), seed=4)
    return panel


@pytest.mark.slow  # two cold worker processes, each importing PyMC and compiling the model
def test_small_backtest_on_a_dask_local_cluster(small_panel):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = B.backtest(
            small_panel, origins=[2016, 2017], horizons=[1, 2], draws=150, tune=150, chains=2,
            scheduler=cluster, progress=False,
        )
    table = result.table
    las = B.local_authorities(small_panel)
    model = table[table["method"] == "model"]
    assert len(model) == len(las) * 2 * 2
    assert set(model["origin"]) == {2016, 2017}
    assert (model["year"] == model["origin"] + model["horizon"]).all()
    assert model["crps"].notna().all() and model["pit"].between(0, 1).all()
    assert (model["lower_90"] <= model["lower_50"]).all() and (model["upper_50"] <= model["upper_90"]).all()
    # each published count is the panel's
    row = model.iloc[0]
    published = small_panel[(small_panel["la_code"] == row["la_code"]) & (small_panel["year"] == row["year"])]
    assert row["observed"] == float(published["looked_after"].iloc[0])
    assert set(table["method"]) == {"model", *B.BASELINES}
    assert set(result.fit_seconds) == {2016, 2017}
    summary = B.summarise_backtest(table)
    assert set(summary["horizon"]) == {1, 2}


def test_backtest_command_on_a_panel_file(small_panel, tmp_path, capsys):
    from bayes_lac.cli import main

    panel_file = tmp_path / "panel.csv"
    small_panel.drop(columns=["geographic_level"]).to_csv(panel_file, index=False)
    out = tmp_path / "backtest.csv"
    code = main(
        [
            # origin 2017 with the same panel as the Dask test: the same model graph, so the
            # compiled model comes from pytensor's disk cache when that test ran first
            "backtest", "--panel", str(panel_file), "--origins", "2017", "--horizons", "1,3",
            "--las", "E06990000,E06990001", "--draws", "150", "--tune", "150", "--chains", "2",
            "--workers", "1", "--out", str(out),
        ]
    )
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == list(B.FORECAST_COLUMNS)
    assert set(table["la_code"]) == {"E06990000", "E06990001"}
    assert len(table) == 2 * (1 + len(B.BASELINES))
    assert (tmp_path / "backtest_summary.csv").exists()
    assert set(table["horizon"]) == {1}  # 2017 + 3 is after the panel's last year, 2019
    printed = capsys.readouterr().out
    assert "Wall time" in printed and "Fit time per origin" in printed
    assert "after 2019, the last published year, are left out" in printed
