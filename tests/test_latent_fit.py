"""The latent-state model's fit path (bayes_lac.model.latent_fit): the run, its refusal by the
default model's analyses, the grid kept across refits, and forecasts from the run.

One small fit (simulated panel of 6 authorities x 9 years, the suite's sampler) is shared by the
module; it is far too small to converge, and no test reads its convergence.
"""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.errors import RunFileError, UsageError
from bayes_lac.model import latent_fit as LF
from bayes_lac.model.data import prepare_data
from bayes_lac.model.results import run_info
from bayes_lac.model.simulate import simulate_panel
from tests.conftest import TEST_SAMPLER

pytestmark = pytest.mark.slow  # compiles and samples a model: not in the fast tier


@pytest.fixture(scope="module")
def grid():
    panel, _ = simulate_panel(n_la=6, years=(2012, 2020), seed=5)
    code = sorted(c for c in panel["la_code"].unique() if c.startswith("E06"))[0]
    return panel, prepare_data(panel, code, neighbours="all")


@pytest.fixture(scope="module")
def fitted(grid):
    _, data = grid
    fitter = LF.LatentFitter(sampler=TEST_SAMPLER)
    run = fitter.fit(data, until=2018, draws=60, tune=60, chains=2, seed=3)
    return fitter, run


def test_a_fit_up_to_a_year_is_a_run_of_those_years_only(grid, fitted):
    _, data = grid
    _, run = fitted
    assert run.attrs["model"] == "latent"
    assert run.attrs["run_format"] == LF.LATENT_RUN_FORMAT
    assert int(run.attrs["until_year"]) == 2018
    # its facts are read like any run's: the reference year is one of its years
    assert run_info(run, allow_latent=True).reference_year == 2018
    assert list(run["constant_data"]["year"].values) == list(range(2012, 2019))
    assert list(run["posterior"]["national"]["year"].values) == list(range(2012, 2019))
    # the data it holds are the grid's, cut at 2018
    np.testing.assert_array_equal(
        run["observed_data"]["modelled_count"].values, data.modelled_count[..., : 2018 - 2012 + 1]
    )
    # the default model's gate ran on it, over its sampled variables, and its verdict is recorded
    diagnostics = json.loads(run.attrs["diagnostics"])
    assert run.attrs["converged"] == ("true" if diagnostics["converged"] else "false")
    for which in ("rhat", "ess_bulk", "ess_tail"):
        assert diagnostics["worst"][which].split("[")[0] in run["posterior"].data_vars


def test_the_default_models_analyses_refuse_a_latent_run(fitted):
    _, run = fitted
    with pytest.raises(RunFileError, match="latent-state model"):
        run_info(run)


def test_a_latent_window_before_a_measures_series_starts_is_refused(grid, fitted):
    from bayes_lac.analysis.decompose import decompose
    from bayes_lac.errors import BayesLacError

    _, data = grid
    _, run = fitted
    # children in need are published from 2013 in the simulated panel: no path in 2012
    with pytest.raises(BayesLacError, match="children in need series starts in 2013"):
        decompose(run, data.target_la, 2012, 2018, measures="children_in_need", allow_unconverged=True)
    d = decompose(run, data.target_la, 2013, 2018, measures="children_in_need", allow_unconverged=True)
    assert np.isfinite(d.table["mean"]).all()


def test_a_refit_on_the_same_grid_reuses_the_model(grid, fitted):
    _, data = grid
    fitter, _ = fitted
    assert len(fitter._models) == 1
    # the same fitter at another origin on the same grid: no new model
    fitter.fit(data, until=2017, draws=20, tune=20, chains=2, seed=4)
    assert len(fitter._models) == 1


def test_data_of_gives_back_the_data_fitted(grid, fitted):
    _, data = grid
    _, run = fitted
    back = LF.data_of(run)
    assert back.la == data.la and back.measures == data.measures
    np.testing.assert_array_equal(back.population_0_17, data.population_0_17[:, :7])
    stale = run.copy()
    stale.attrs["run_format"] = "2"
    with pytest.raises(RunFileError, match="format '2'"):
        LF.data_of(stale)


def test_forecasts_hold_uasc_at_the_last_count(fitted):
    _, run = fitted
    a = LF.latent_forecast(run, horizon=3, n_draws=100, seed=1, uasc="hold")
    assert a.dims == ("measure", "la", "horizon", "draw")
    assert list(a["year"].values) == [2019, 2020, 2021]
    again = LF.latent_forecast(run, horizon=3, n_draws=100, seed=1, uasc="hold")
    np.testing.assert_array_equal(a.values, again.values)  # seeded: the same draws
    # with every UASC count doubled at the last year, looked-after forecasts rise by exactly that
    more = run.copy()
    const = more["constant_data"].to_dataset()
    uasc = const["uasc"].values.copy()
    uasc[:, -1] = np.nan_to_num(uasc[:, -1]) * 2 + 7
    more["constant_data"] = const.assign(uasc=(("la", "year"), uasc))
    b = LF.latent_forecast(more, horizon=3, n_draws=100, seed=1, uasc="hold")
    lac = "looked_after"
    extra = uasc[:, -1] - np.nan_to_num(run["constant_data"]["uasc"].values[:, -1])
    np.testing.assert_allclose(
        (b.sel(measure=lac) - a.sel(measure=lac)).values, np.broadcast_to(extra[:, None, None], (len(extra), 3, 100))
    )
    # the other measures do not move
    np.testing.assert_array_equal(b.sel(measure="child_protection").values, a.sel(measure="child_protection").values)
    with pytest.raises(ValueError, match="uasc_history"):
        LF.latent_forecast(run, horizon=2, uasc="pooled")


def with_count_share(run, looked_after_share: float):
    """`run` as if fitted with ``count_noise="share"``: its draws with a looked-after share."""
    shared = run.copy()
    post = shared["posterior"].to_dataset()
    measures = [str(m) for m in post["measure"].values]
    values = np.array([looked_after_share if m == "looked_after" else 1.0 for m in measures])
    share = xr.DataArray(
        np.broadcast_to(values, (post.sizes["chain"], post.sizes["draw"], len(measures))).copy(),
        dims=("chain", "draw", "measure"),
        coords={"measure": measures},
    )
    shared["posterior"] = post.assign(count_share=share)
    shared.attrs["sampler"] = json.dumps(json.loads(run.attrs["sampler"]) | {"count_noise": "share"})
    return shared


def test_forecasts_of_a_count_share_run_draw_counts_with_that_share(grid, fitted):
    """A smaller share of the Poisson variance gives narrower looked-after counts one year ahead,
    in the backtest's forecasts and in the report's; the other measures keep share 1."""
    from bayes_lac.analysis.forecast import forecast

    _, data = grid
    _, run = fitted
    narrow, whole = with_count_share(run, 0.02), with_count_share(run, 1.0)

    def spread(x):
        q = np.quantile(x, [0.25, 0.75], axis=-1)
        return float(np.median(q[1] - q[0]))

    # normal shocks: the tails found in each run's errors depend on its share, which would
    # change every measure's draws
    a = LF.latent_forecast(narrow, horizon=1, n_draws=400, seed=4, tails="normal")
    b = LF.latent_forecast(whole, horizon=1, n_draws=400, seed=4, tails="normal")
    assert spread(a.sel(measure="looked_after").values) < 0.9 * spread(b.sel(measure="looked_after").values)
    np.testing.assert_array_equal(a.sel(measure="child_protection").values, b.sel(measure="child_protection").values)
    counts = a.sel(measure="looked_after").values
    assert np.array_equal(counts[np.isfinite(counts)], np.rint(counts[np.isfinite(counts)]))
    la = data.target_la
    f_narrow = forecast(narrow, la=la, horizon=1, scenarios="trend", seed=4)
    f_whole = forecast(whole, la=la, horizon=1, scenarios="trend", seed=4)
    lac = {
        k: f.data["predicted"].sel(measure="looked_after", scenario="trend").values[:, 0]
        for k, f in (("narrow", f_narrow), ("whole", f_whole))
    }
    assert np.std(lac["narrow"]) < np.std(lac["whole"])
    assert any("the share of it the model estimates" in line for line in f_narrow.assumptions)


def test_a_forecast_starts_at_the_published_count_or_the_models_state_as_asked(grid, fitted):
    """Started at the published count, every draw of the report's forecast sits on the last
    published count (UASC included), and its path moves by the model's own changes from there;
    started at the state, it sits where the model puts the authority. The backtest's forecasts
    start the same way."""
    from bayes_lac.analysis.forecast import forecast
    from bayes_lac.errors import BayesLacError

    _, data = grid
    _, run = fitted
    la = data.target_la
    published = run["observed_data"]["reported_count"].sel(la=la, year=2018)
    fc = {
        s: forecast(run, la=la, horizon=3, scenarios="trend,population-only", seed=2, start=s)
        for s in ("published", "state")
    }
    base = {s: f.base["expected_reported"] for s, f in fc.items()}
    for m in data.measures:
        np.testing.assert_allclose(base["published"].sel(measure=m).values, float(published.sel(measure=m)), rtol=1e-9)
        assert float(base["state"].sel(measure=m).std()) > 0  # the state varies from draw to draw
    # the path is the state's moved: the same change over the years in every draw
    change = {
        s: np.log(
            f.data["expected"].sel(scenario="trend", year=2021) / f.data["expected"].sel(scenario="trend", year=2019)
        )
        for s, f in fc.items()
    }
    np.testing.assert_allclose(change["published"].values, change["state"].values, rtol=1e-9)
    assert any("from the published 2018 count" in line for line in fc["published"].assumptions)
    assert not any("from the published 2018 count" in line for line in fc["state"].assumptions)
    with pytest.raises(BayesLacError, match="start must be one of"):
        forecast(run, la=la, horizon=1, start="latest")
    # the backtest's forecasts: named measures only are moved
    a = LF.latent_forecast(run, horizon=2, n_draws=200, seed=1, start="state")
    b = LF.latent_forecast(run, horizon=2, n_draws=200, seed=1, start=("child_protection",))
    assert not np.array_equal(a.sel(measure="child_protection").values, b.sel(measure="child_protection").values)
    # (the other measures' counts are drawn from the same stream, interleaved by draw, and Poisson
    # draws use as many numbers as their mean needs: only start_offsets' moves are checked exactly,
    # in tests/test_latent.py)


def test_a_stochastic_uasc_path_spreads_looked_after_forecasts_around_the_held_count(fitted):
    _, run = fitted
    # the simulated panel's UASC counts are too few and small to draw paths from
    with pytest.raises(ValueError, match="stochastic UASC path needs at least 30"):
        LF.latent_forecast(run, horizon=2, n_draws=50, uasc="stochastic")
    busier = run.copy()
    const = busier["constant_data"].to_dataset()
    # rising counts: every donor's path goes up, so only centring keeps the median at the held count
    years = np.arange(const["uasc"].shape[1])
    counts = np.round(8 * 1.25**years)[None, :] * np.ones(const["uasc"].shape)
    busier["constant_data"] = const.assign(
        uasc=(const["uasc"].dims, counts), uasc_imputed=(const["uasc"].dims, np.zeros(counts.shape, bool))
    )
    held = LF.latent_forecast(busier, horizon=4, n_draws=401, seed=2, uasc="hold")
    moved = LF.latent_forecast(busier, horizon=4, n_draws=401, seed=2, uasc="stochastic")
    # the same draws but the UASC path: other measures are unchanged
    np.testing.assert_array_equal(
        moved.sel(measure="children_in_need").values, held.sel(measure="children_in_need").values
    )
    extra = (moved - held).sel(measure="looked_after")
    assert float(np.abs(extra.median("draw")).max()) <= 0.5  # the median path is the held count
    assert float((extra != 0).mean()) > 0.3


def test_by_default_only_looked_after_children_have_a_local_trend(grid, fitted):
    _, data = grid
    fitter, run = fitted
    assert json.loads(run.attrs["trend_measures"]) == ["looked_after"]
    trend_sd = run["posterior"]["trend_sd"]
    for m in data.measures:
        values = trend_sd.sel(measure=m).values
        assert (values > 0).all() if m == "looked_after" else (values == 0).all()
    sampler = json.loads(run.attrs["sampler"])
    assert (sampler["variance"], sampler["national_steps"], sampler["count_noise"]) == (
        "split",
        "noncentred",
        "poisson",
    )
    # the default design gives every count the whole Poisson variance: no share is sampled or recorded
    assert "count_share" not in run["posterior"] and "count_share" not in json.loads(run.attrs["priors"])
    # None asks for a trend in every measure; an explicit list is kept as given
    assert LF.LatentFitter(trend_measures=None).trend_measures_for(data) is None
    assert LF.LatentFitter(trend_measures=("child_protection",)).trend_measures_for(data) == ("child_protection",)


def test_the_default_trend_is_left_out_of_data_without_looked_after_children(grid):
    from dataclasses import replace

    _, data = grid
    keep = [k for k, m in enumerate(data.measures) if m != "looked_after"]
    others = replace(
        data,
        measures=tuple(data.measures[k] for k in keep),
        modelled_count=data.modelled_count[keep],
        reported_count=data.reported_count[keep],
    )
    assert LF.LatentFitter().trend_measures_for(others) == ()


def test_a_refit_of_a_run_from_before_the_count_share_keeps_the_poisson_design(fitted, monkeypatch):
    _, run = fitted
    old = run.copy()
    sampler = json.loads(old.attrs["sampler"])
    del sampler["count_noise"]
    old.attrs["sampler"] = json.dumps(sampler)
    made = {}

    class Stop(Exception):
        pass

    def fit(self, *args, **kwargs):
        made["count_noise"] = self.count_noise
        raise Stop

    monkeypatch.setattr(LF.LatentFitter, "fit", fit)
    with pytest.raises(Stop):
        LF.refit(old)
    assert made["count_noise"] == "poisson"
    shared = run.copy()
    shared.attrs["sampler"] = json.dumps(sampler | {"count_noise": "share"})
    with pytest.raises(Stop):
        LF.refit(shared)
    assert made["count_noise"] == "share"


def test_the_fitter_refuses_an_unknown_design_before_any_fit():
    with pytest.raises(ValueError, match="count_noise must be one of share, poisson; got 'gamma'"):
        LF.LatentFitter(count_noise="gamma")
    with pytest.raises(ValueError, match="variance must be one of split, separate; got 'joint'"):
        LF.LatentFitter(variance="joint")
    with pytest.raises(ValueError, match="national_steps must be one of noncentred, centred"):
        LF.LatentFitter(national_steps="centered")


def test_small_panels_draw_more_by_default(grid, monkeypatch):
    import pymc as pm

    assert LF.default_draws(11) == LF.SMALL_PANEL_DRAWS == 2000
    assert LF.default_draws(LF.SMALL_PANEL) == LF.DEFAULT_DRAWS == 1000
    assert LF.default_draws(155) == LF.DEFAULT_DRAWS
    # a fit without draws asks the sampler for the default of its panel's size
    _, data = grid
    asked = {}

    class Stop(Exception):
        pass

    def sample(draws, **kwargs):
        asked["draws"] = draws
        raise Stop

    monkeypatch.setattr(pm, "sample", sample)
    with pytest.raises(Stop):
        LF.LatentFitter(sampler="pymc").fit(data, until=2018, tune=10, chains=2)
    assert asked["draws"] == LF.default_draws(len(data.la)) == 2000


def test_the_board_report_reads_a_latent_run(grid, fitted):
    import re

    import pandas as pd

    from bayes_lac.report import board as R

    panel, data = grid
    _, run = fitted
    panel = panel.assign(weekly_cost_per_child=900.0)
    report = R.build_report(run, la=data.la[0], panel=panel, allow_unconverged=True)
    page = re.sub(r"<[^>]+>", " ", R.render_html(report))
    # the model card describes the latent model as this run fitted it, and lists its priors
    assert "a path that all these authorities share" in page and "straight-line trend" not in page
    assert "every English authority in the data" in page  # fitted with neighbours="all"
    assert "for children looked after, it has a trend that fades" in page
    card = {t.key: t for _, t in report.tables()}["priors"].frame
    # the split variance design samples series_sd and level_share, not level_sd and noise; the
    # trend's priors are looked-after children's only; a drifting national path has no damping
    assert {"series_sd", "level_share", "damping", "drift"} <= set(card["prior"])
    assert not {"level_sd", "noise", "national_damping"} & set(card["prior"])
    assert "count_share" not in set(card["prior"])
    # a run of the "share" design lists the share's prior, for looked-after children only
    shared = run.copy()
    shared.attrs["sampler"] = json.dumps(json.loads(run.attrs["sampler"]) | {"count_noise": "share"})
    shared.attrs["priors"] = json.dumps(json.loads(run.attrs["priors"]) | {"count_share": [2.0, 2.0]})
    card = R.latent_priors_table(shared)
    rows = card[card["prior"] == "count_share"]
    assert rows["measure"].tolist() == ["looked_after", "looked_after"] and rows["value"].tolist() == [2.0, 2.0]
    assert card.loc[card["prior"] == "damping", "setting"].tolist() == ["alpha", "beta"]
    assert set(card.loc[card["prior"].isin(["damping", "trend_sd"]), "measure"]) == {"looked_after"}
    # the shipped backtest scored this model: the report says how far ahead it checked it
    from bayes_lac.studies import backtest as bmod

    checked = bmod.checked_horizons(pd.read_csv(R.BACKTEST_FILE))
    assert checked["looked_after"] == 8 - 3 and checked["child_protection"] == 5
    text = " ".join(b.text for s in report.sections if s.key == "forecasts" for b in s.blocks if b.kind == "paragraph")
    assert "How far ahead forecasts of this kind have been tested against what happened" in text
    assert "were checked 1 to 5 years ahead" in text and "not the model of this report" not in text
    fan = {t.key: t for _, t in report.tables()}["fan_trend"].frame
    assert {"yes", "no"} <= set(fan.loc[fan["scenario"] == "trend", "backtested"])
    # and the model card tables its coverage, with the baselines beside it
    assert "backtest_coverage" in {t.key for _, t in report.tables()}
    # prior sensitivity: the latent model's power-scaling; its refits are not built, and the report says so
    power = {t.key: t for _, t in report.tables()}["power_scaling"].frame
    assert {"series_sd", "level_share", "drift"} <= set(power["parameter"])
    assert set(power.loc[power["parameter"] == "damping", "measure"]) == {"looked_after"}
    # its refits under other beliefs are not run unless asked, and the report says how to ask
    assert "Run the report with --sensitivity-refits, or `bayes-lac sensitivity RUN --refits all" in page
    assert "refit_conclusions" not in {t.key for _, t in report.tables()}
    # and the power-scaling of the numbers the board reads: the parts of the change, the 5- and
    # 10-year forecasts and their costs, each at every posterior draw
    tables = {t.key: t for _, t in report.tables()}
    board = tables["board_power_scaling"].frame
    assert {"children looked after in 2023 (forecast)", "children looked after in 2028 (forecast)"} <= set(
        board["quantity"]
    )
    assert {"cost in 2023 (£, nominal prices)", "cost in 2028 (£, nominal prices)"} <= set(board["quantity"])
    assert any(q.startswith("change 2012-2018: ") for q in board["quantity"])
    assert (board[["prior_sensitivity", "likelihood_sensitivity"]] >= 0).all().all()
    assert "Power-scaling of the numbers a board reads" in page
    # the model card's leave-future-out check of this authority's series, one row per origin
    lfo_rows = tables["lfo"].frame
    assert set(lfo_rows["measure"]) == set(data.measures) and (lfo_rows["year"] == lfo_rows["origin"] + 1).all()
    assert "Leave-future-out (PSIS-LFO, no refit)" in page
    # the decomposition never speaks of a comparison set's common path (the 0.2 model's)
    assert "common path of the comparison authorities" not in page
    # a tiny fit: the report is marked on every page
    assert not report.converged and report.problems


def test_refits_under_other_beliefs_change_what_they_change(grid, fitted, monkeypatch):
    """Each variant refits the run with its one choice changed (or, for future UASC, only the
    forecast), and the comparison sets its conclusions beside the run's own."""
    from bayes_lac.studies import latent_sensitivity as LS

    panel, data = grid
    _, run = fitted
    fitted_with = []
    real_refit = LF.refit

    def spy(run_, **kwargs):
        fitted_with.append(kwargs)
        return real_refit(run_, **kwargs)

    monkeypatch.setattr(LF, "refit", spy)
    # the run's own choices are no variants of it: its comparison set ("all"), its national path
    # (a drift); a local trend for looked-after children only is neither "none" nor "every measure"
    keys = [v.key for v in LS.applicable(run)]
    assert "comparison-all" not in keys and "national-damped" in keys
    assert {"comparison-2021", "no-trend", "trend-all"} <= set(keys)
    study = LS.latent_refits(
        run, ["no-deprivation", "uasc-nts", "comparison-2021", "comparison-all"], panel=panel, unit_costs=900.0
    )
    # a simulated authority has no DfE statistical neighbours: that refit is said not compared,
    # and so is the one asked for that is the run's own
    assert study.skipped["comparison-all"] == "the run's own choice"
    assert list(study.skipped) == ["comparison-all", "comparison-2021"]
    assert "comparison-2021" in " ".join(study.finding.caveats)
    # one refit only (the UASC variant changes the forecast, not the fit), with the prior set's
    # entries and nothing else changed
    assert len(fitted_with) == 1
    priors = fitted_with[0]["priors"]
    assert set(priors) == {"deprivation_between", "deprivation_within"}
    assert priors["deprivation_within"] == (0.0, 0.05)
    table = study.comparison.set_index(["choice", "conclusion", "measure"])
    # forecast-only: the rates are the run's own, the looked-after forecast rises with UASC at 0.1 %
    same = study.comparison[
        (study.comparison["choice"] == "uasc-nts") & (study.comparison["conclusion"] == "current_rate")
    ]
    assert (same["shift"] == 0).all()
    uasc_held = table.loc[(LS.AS_FITTED, "forecast_5", "looked_after"), "median"]
    uasc_nts = table.loc[("uasc-nts", "forecast_5", "looked_after"), "median"]
    population = float(run["constant_data"]["population_0_17"].sel(la=data.la[0], year=2018))
    uasc = float(run["constant_data"]["uasc"].sel(la=data.la[0], year=2018))
    assert uasc_nts - uasc_held == pytest.approx(0.001 * population - uasc, abs=0.15 * population * 0.001 + 5)
    # every conclusion of the refit is compared, and the finding names what moved
    assert set(table.loc["no-deprivation"].index.get_level_values(0)) == set(
        table.loc[LS.AS_FITTED].index.get_level_values(0)
    )
    changed = list(dict.fromkeys(study.comparison.loc[study.comparison["changes"], "choice"]))
    sentence = study.finding.sentence
    if changed:
        assert sentence.startswith(f"{len(changed)} of the 2 other choices change a conclusion")
        assert all(f"{key} (" in sentence for key in changed)
    else:
        assert sentence.startswith("No conclusion changes under any of the 2 other choices")
    # the wrong panel stops the study before any fit, and says what to pass
    with pytest.raises(UsageError, match="not that panel .* pass it"):
        LS.latent_refits(run, ["comparison-2021"], panel=panel.assign(looked_after=panel["looked_after"] + 1))
    assert len(fitted_with) == 1
    # another comparison set: the target and three of the others, the run's draws (not the default)
    codes = ",".join(data.la[:4])
    four = LS.refit_variant(run, LS.Variant("four", "comparison", "four of them", comparison=codes), panel=panel)
    assert run_info(four, allow_latent=True).authorities == tuple(data.la[:4])
    assert four["posterior"].sizes["draw"] == run["posterior"].sizes["draw"]
    assert run_info(four, allow_latent=True).last_year == 2018


def test_a_report_on_a_saved_latent_run_with_refits(grid, fitted, tmp_path, capsys, monkeypatch):
    from bayes_lac.cli import main
    from bayes_lac.model.results import save_run
    from bayes_lac.studies import latent_sensitivity as LS

    panel, data = grid
    _, run = fitted
    save_run(run, tmp_path / "run.nc")
    panel.assign(weekly_cost_per_child=900.0).to_csv(tmp_path / "panel.csv", index=False)
    # quick: one variant that needs no refit (future UASC) and the run's own comparison set, left out
    monkeypatch.setattr(LS, "VARIANTS", {k: LS.VARIANTS[k] for k in ("uasc-nts", "comparison-all")})
    argv = ["report", "--run", str(tmp_path / "run.nc"), "--panel", str(tmp_path / "panel.csv"), "--la", data.la[0]]
    assert (
        main([*argv, "--sensitivity-refits", "--allow-unconverged", "--xlsx", "--out", str(tmp_path / "r.html")]) == 0
    )
    page = (tmp_path / "r.html").read_text()
    assert "Refits under other beliefs" in page and "uasc-nts" in page and "comparison-all" not in page
    workbook = pd.read_excel(tmp_path / "r.xlsx", sheet_name=None)
    sheet = workbook["Refit conclusions"].astype(str)
    assert sheet.apply(lambda col: col.str.fullmatch("uasc-nts")).any().any()


def test_the_latent_backtest_forecaster_fits_once_per_origin_and_reuses_its_model(grid):
    from bayes_lac.studies.backtest import LatentModelForecaster, backtest

    panel, _ = grid
    forecaster = LatentModelForecaster(
        grid_end=2020, draws=40, tune=40, chains=2, n_draws=80, sampler=TEST_SAMPLER, allow_unconverged=True
    )
    assert forecaster.config()["model"] == "LatentModel"
    result = backtest(
        panel, [forecaster], [2017, 2018], {"looked_after": (1, 2)}, ["looked_after"], "comparison", workers=1
    )
    scored = result.table[result.table["method"] == "model"]
    # every authority, both origins, both horizons: 6 x 2 x 2 cells, each with a score
    assert len(scored) == 6 * 2 * 2 and scored["crps"].notna().all()
    assert set(scored["origin"]) == {2017, 2018}
    # one compiled model for both origins: the second fit compiles nothing
    assert forecaster.timings[2018]["compile_seconds"] < 1.0
    # a fit that fails its gate is reported as failed, not scored
    strict = LatentModelForecaster(grid_end=2020, draws=10, tune=10, chains=2, n_draws=20, sampler=TEST_SAMPLER)
    failed = backtest(panel, [strict], [2017], {"looked_after": (1,)}, ["looked_after"], "comparison", workers=1)
    assert failed.origins.loc[failed.origins["method"] == "model", "status"].tolist() == ["failed"]


def test_a_window_can_be_decomposed_from_a_fit_on_the_data_to_its_end(grid, fitted, tmp_path, capsys):
    import pandas as pd

    from bayes_lac.cli import main
    from bayes_lac.errors import UsageError
    from bayes_lac.model.results import save_run

    _, data = grid
    _, run = fitted
    with pytest.raises(UsageError, match="at most its last"):
        LF.refit_until(run, 2019)  # the run holds data to 2018 only
    save_run(run, tmp_path / "run.nc")
    argv = ["decompose", str(tmp_path / "run.nc"), "--la", data.la[0], "--from", "2013", "--to", "2016"]
    out = tmp_path / "d.csv"
    assert main([*argv, "--fit-to-end", "--allow-unconverged", "--out", str(out)]) == 0
    assert "on the data up to 2016 only" in capsys.readouterr().out
    refitted = pd.read_csv(out)
    assert main([*argv, "--allow-unconverged", "--out", str(tmp_path / "whole.csv")]) == 0
    whole = pd.read_csv(tmp_path / "whole.csv")
    # the same window and parts, from another fit: its figures differ from the whole run's
    assert list(refitted["component"]) == list(whole["component"])
    total = refitted["component"] == "total"
    assert not np.allclose(refitted.loc[total, "mean"], whole.loc[total, "mean"])


def test_power_scalings_log_densities_are_the_models_own(fitted):
    """The log prior terms and series log-likelihoods that power-scaling scales add up, with the
    terms it leaves out on purpose, to the model's own log density at a posterior draw."""
    from scipy import stats

    from bayes_lac.model import latent as L
    from tests.conftest import python_evaluation

    _, run = fitted
    log_prior, log_lik = LF.latent_log_densities(run)
    data = LF.data_of(run)
    trend = json.loads(run.attrs["trend_measures"])
    model = L.build_latent_model(data, trend_measures=trend)
    post = run["posterior"].to_dataset()
    for chain, draw in [(0, 5), (1, 40)]:
        at = post.isel(chain=chain, draw=draw)
        point = {}
        for rv in model.free_RVs:
            transform = model.rvs_to_transforms.get(rv)
            value = at[rv.name].values
            point[model.rvs_to_values[rv].name] = value if transform is None else transform.forward(value).eval()
        with python_evaluation() as mode:
            total = model.compile_fn(model.logp(jacobian=False), mode=mode)(point)
        ours = float(log_prior.isel(chain=chain, draw=draw).to_array().sum())
        ours += float(log_lik["series"].isel(chain=chain, draw=draw).sum())
        # left out on purpose: the national path's standardised steps (the population model)
        # and the trend's priors of the measures without a local trend (no likelihood)
        left_out = stats.norm.logpdf(at["national_z"].values).sum()
        for i, m in enumerate(data.measures):
            if m not in trend:
                left_out += stats.halfnorm.logpdf(
                    at["trend_start_sd_raw"].values[i], scale=L.LATENT_PRIORS["trend_start_sd"]
                )
                left_out += stats.halfnorm.logpdf(at["trend_sd_raw"].values[i], scale=L.LATENT_PRIORS["trend_sd"])
                left_out += stats.beta.logpdf(at["damping"].values[i], *L.LATENT_PRIORS["damping"])
        np.testing.assert_allclose(ours + left_out, total, rtol=1e-9, atol=1e-6)


def test_a_series_year_terms_are_its_one_step_ahead_densities(grid, fitted):
    """Year t's term is what year t adds to the series' likelihood: the terms up to t add up to
    the likelihood of the data up to t (a filter run on those years only), for every t."""
    from bayes_lac.model import latent as L

    _, data = grid
    _, run = fitted
    la = data.la[1]
    terms = LF.series_year_loglik(run, la)
    _, log_lik = LF.latent_log_densities(run)
    np.testing.assert_allclose(terms.sum("year").values, log_lik["series"].sel(la=la).values, rtol=1e-10, atol=1e-8)
    j = list(LF.data_of(run).la).index(la)
    draws = L.posterior_draws(run["posterior"].to_dataset(), None, np.random.default_rng(0))
    cumulative = terms.cumsum("year").values.reshape(-1, *terms.shape[2:])  # (draw, measure, year)
    data = LF.data_of(run)
    arrays = L.series_arrays(data, until=2018)
    for until in (2013, 2015, 2018):
        # the same data (deprivation split as in the fit), the years after `until` unobserved
        one = {k: arrays[k][:, [j]] for k in ("y", "count_var", "observed")}
        one["observed"] = one["observed"] & (data.year <= until)[None, None, :]
        one |= {"dep_between": arrays["dep_between"][[j]], "dep_within": arrays["dep_within"][[j]]}
        direct = LF._series_loglik(draws, one)[:, :, 0]
        k = list(terms["year"].values).index(until)
        np.testing.assert_allclose(cumulative[:, :, k], direct, rtol=1e-10, atol=1e-8)
    # nothing observed after the fit's last year, so nothing scored there
    assert int(terms["year"].max()) == 2018
    with pytest.raises(Exception, match="not among the run's authorities"):
        LF.series_year_loglik(run, "E99999999")


def test_fits_sample_with_nutpies_diagonal_mass_matrix_at_0_95_by_default():
    # measured: lower targets and the low-rank mass matrix failed backtest origins (models/README.md)
    assert LF.DEFAULT_ADAPTATION == "diag" and LF.DEFAULT_TARGET_ACCEPT == 0.95


def test_adaptation_is_nutpies_setting_and_a_refit_keeps_the_runs(grid, fitted, monkeypatch):
    import xarray as xr

    _, data = grid
    _, run = fitted
    with pytest.raises(ValueError, match="adaptation is nutpie's setting"):
        LF.LatentFitter(sampler="pymc").fit(data, until=2018, adaptation="low_rank")
    asked = []

    def fit(self, data, until=None, **kwargs):
        asked.append((self.sampler, kwargs["adaptation"], kwargs["target_accept"]))
        return run

    monkeypatch.setattr(LF.LatentFitter, "fit", fit)

    def with_sampler(**changes):
        other = xr.DataTree.from_dict({k: run[k].to_dataset() for k in run.children})
        other.attrs.update(run.attrs)
        sampler = json.loads(run.attrs["sampler"])
        sampler.update(changes)
        other.attrs["sampler"] = json.dumps({k: v for k, v in sampler.items() if v is not None})
        return other

    LF.refit_until(with_sampler(sampler="nutpie", adaptation="low_rank", target_accept=0.9), 2016)
    LF.refit_until(with_sampler(sampler="nutpie", adaptation=None, target_accept=0.95), 2016)  # not recorded
    LF.refit_until(with_sampler(sampler="numpyro", adaptation=None, target_accept=0.8), 2016)
    assert asked == [("nutpie", "low_rank", 0.9), ("nutpie", "diag", 0.95), ("numpyro", None, 0.8)]


def test_power_scaling_of_a_board_number_is_that_of_the_parameter_it_equals(fitted):
    from bayes_lac.errors import BayesLacError
    from bayes_lac.studies import sensitivity as S

    _, run = fitted
    params = S.latent_power_scaling(run)
    drift = run["posterior"]["drift"].sel(measure="looked_after")
    flat = drift.stack(n=("chain", "draw")).values  # chains in order, as a forecast's draws
    table = S.quantity_power_scaling(
        run, {"drift (chain, draw)": drift, "drift (draw)": xr_draws(flat), "twice the drift": 2 * drift + 1}
    )
    assert list(table["quantity"]) == ["drift (chain, draw)", "drift (draw)", "twice the drift"]
    want = params[(params["parameter"] == "drift") & (params["measure"] == "looked_after")].iloc[0]
    for _, row in table.iterrows():
        # a distance between distributions: the same for an affine function of the parameter
        assert row["prior_sensitivity"] == pytest.approx(want["prior_sensitivity"], rel=1e-6)
        assert row["likelihood_sensitivity"] == pytest.approx(want["likelihood_sensitivity"], rel=1e-6)
    # a number the same at every draw cannot move: 0, not the distance's 0/0
    constant = S.quantity_power_scaling(run, {"fixed": 0 * drift + 3.0})
    assert constant[["prior_sensitivity", "likelihood_sensitivity"]].values.tolist() == [[0.0, 0.0]]
    with pytest.raises(BayesLacError, match="'some draws'.*posterior draws"):
        S.quantity_power_scaling(run, {"some draws": xr_draws(flat[:50])})


def xr_draws(values):
    import xarray as xr

    return xr.DataArray(values, dims="draw")


def test_psis_lfo_reweights_by_the_later_years_and_flags_unreliable_weights(grid, fitted, monkeypatch):
    """The PSIS-LFO check on known terms: with later years that barely vary over the draws the
    weights are nearly even and the score is the plain mean density; with later years that vary
    wildly the weights are unreliable and the origin is flagged."""
    import xarray as xr

    from bayes_lac.studies import lfo

    _, data = grid
    _, run = fitted
    la = data.la[0]
    real = LF.series_year_loglik(run, la)
    rng = np.random.default_rng(1)

    def fake(scale):
        # every year's term all but constant over the draws, 2016's varying a little, and the
        # years after 2016 varying by `scale`
        values = rng.normal(-1.0, 1e-3, real.shape)
        values[..., list(real["year"].values).index(2016)] = rng.normal(-1.0, 0.3, values.shape[:-1])
        later = real["year"].values > 2016
        values[..., later] = rng.normal(-1.0, scale, values[..., later].shape)
        return xr.DataArray(values, dims=real.dims, coords=real.coords)

    calm = fake(1e-3)
    monkeypatch.setattr(LF, "series_year_loglik", lambda run, la: calm)
    table = lfo.authority_lfo(run, la)
    assert set(table["measure"]) == set(data.measures) and table["reliable"].all()
    row = table[(table["measure"] == "looked_after") & (table["origin"] == 2015)].iloc[0]
    assert row["year"] == 2016
    # 2016's own term is among those left out: the score is the importance-sampling identity
    # -log mean exp(-term) (the harmonic mean of the density), not the plain mean
    term = calm.sel(measure="looked_after", year=2016).values.ravel()
    assert row["elpd"] == pytest.approx(-np.log(np.mean(np.exp(-term))), abs=0.01)
    assert abs(row["elpd"] - np.log(np.mean(np.exp(term)))) > 0.03
    wild = fake(60.0)
    monkeypatch.setattr(LF, "series_year_loglik", lambda run, la: wild)
    table = lfo.authority_lfo(run, la)
    # every origin leaves out the wild years: every one is flagged, and the sentence says so
    assert len(table) and not table["reliable"].any() and (table["pareto_k"] > lfo.K_THRESHOLD).all()
    assert table["elpd"].isna().all()  # an unreliable origin is not scored
    assert "Pareto k above 0.7" in lfo.lfo_sentence(table, "Somewhere")


def test_a_run_knows_the_panel_it_was_fitted_on_whole_or_cut_at_its_last_year(grid, fitted):
    import xarray as xr

    from bayes_lac.data.panel import panel_sha256
    from bayes_lac.model.results import fitted_on

    panel, _ = grid
    _, run = fitted  # fitted on the years to 2018 of a grid prepared from the whole panel
    assert fitted_on(run, panel) is True
    assert fitted_on(run, panel.assign(looked_after=panel["looked_after"] + 1)) is False
    # a run fitted on data prepared with until=2018 records the hash of the rows up to 2018
    cut = xr.DataTree.from_dict({k: run[k].to_dataset() for k in run.children})
    cut.attrs.update(run.attrs)
    cut.attrs["panel_sha256"] = panel_sha256(panel[panel["year"] <= 2018])
    assert fitted_on(cut, panel) is True
    assert fitted_on(cut, panel[panel["year"] <= 2018]) is True
    cut.attrs["panel_sha256"] = ""
    assert fitted_on(cut, panel) is None


def test_forecasts_drawn_with_the_fits_tails_keep_the_normals_stream_where_the_fit_shows_none(fitted, monkeypatch):
    """With ``tails="student"`` each measure's shocks take the tails `tail_errors` finds in the
    fit's one-step errors (deterministic for a run); where it finds the normal, the draws are
    exactly the normal forecast's; a measure given heavier tails is drawn otherwise."""
    from bayes_lac.model import latent as L

    _, run = fitted
    measures = list(run["posterior"]["measure"].values)
    df = LF.tail_errors(run)
    assert df.shape == (len(measures),)
    assert all(d in L.TAIL_DF_GRID for d in df)
    np.testing.assert_array_equal(df, LF.tail_errors(run))
    normal = LF.latent_forecast(run, horizon=2, n_draws=200, seed=1, tails="normal")
    monkeypatch.setattr(LF, "tail_errors", lambda run: np.full(len(measures), np.inf))
    np.testing.assert_array_equal(LF.latent_forecast(run, horizon=2, n_draws=200, seed=1, tails="student"), normal)
    heavy = np.full(len(measures), np.inf)
    heavy[-1] = 3.0
    monkeypatch.setattr(LF, "tail_errors", lambda run: heavy)
    student = LF.latent_forecast(run, horizon=2, n_draws=200, seed=1, tails="student")
    assert not np.array_equal(student.sel(measure=measures[-1]).values, normal.sel(measure=measures[-1]).values)
    with pytest.raises(ValueError, match="tails must be one of"):
        LF.latent_forecast(run, horizon=1, tails="t")


def test_the_reports_forecast_names_the_tails_it_draws(fitted, monkeypatch):
    """The report's forecast says which measures' shocks have heavier tails and with how many
    degrees of freedom; asked for normal shocks, it says so; a bad name is refused."""
    from bayes_lac.analysis.forecast import forecast
    from bayes_lac.errors import BayesLacError

    _, run = fitted
    measures = list(run["posterior"]["measure"].values)
    la = run.attrs["target_la"]
    heavy = np.full(len(measures), np.inf)
    heavy[measures.index("children_in_need")] = 5.0
    monkeypatch.setattr(LF, "tail_errors", lambda run: heavy)
    student = forecast(run, la=la, horizon=2, scenarios="trend", seed=4)
    normal = forecast(run, la=la, horizon=2, scenarios="trend", seed=4, tails="normal")
    assert any(
        "a Student t with 5 degrees of freedom for children in need (the other measures normal)." in a
        for a in student.assumptions
    )
    assert any("are normal, as in the model's likelihood" in a for a in normal.assumptions)
    cin = {
        name: f.data["predicted"].sel(measure="children_in_need", scenario="trend")
        for name, f in (("s", student), ("n", normal))
    }
    assert not np.array_equal(cin["s"].values, cin["n"].values)
    with pytest.raises(BayesLacError, match="tails must be one of"):
        forecast(run, la=la, horizon=1, tails="cauchy")
