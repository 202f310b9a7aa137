"""The backtest machinery: what each origin scores, failed fits, the cache, the manifest and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from bayes_lac.config import THURROCK_CODE
from bayes_lac.errors import BayesLacError, PanelError, UnconvergedFitError, UnknownAuthorityError
from bayes_lac.model import latent_fit as LF
from bayes_lac.studies import backtest as B
from bayes_lac.studies.baselines import LastValue, PooledGrowth, empty_draws
from tests.conftest import TEST_SAMPLER

# -- test forecasters (top level, so they pickle) ----------------------------------------------

CALLS: list[tuple[str, int, int]] = []


class Oracle:
    """Draws around the panel's latest value at the origin; records each call and the last year it saw."""

    def __init__(self, name="oracle", fail_at=()):
        self.name = name
        self.fail_at = tuple(fail_at)

    def signature(self):
        return f"{self.name}:{self.fail_at}"

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        CALLS.append((self.name, int(origin), int(panel["year"].max())))
        if origin in self.fail_at:
            raise UnconvergedFitError(f"R-hat 1.2 at origin {origin}")
        out = empty_draws(measures, las, horizons, 50)
        rng = np.random.default_rng(origin)
        for i, m in enumerate(measures):
            at_origin = panel[panel["year"] == origin].set_index("la_code")[m].astype(float)
            for j, la in enumerate(las):
                out.values[i, j] = at_origin.get(la, np.nan) * (1 + 0.05 * rng.standard_normal((len(horizons), 50)))
        out.attrs["fit_seconds"] = 0.0
        return out


@pytest.fixture(scope="module")
def small_panel():
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=6, years=(2010, 2019), seed=4)
    return panel


# -- what is scored ------------------------------------------------------------------------------


def test_plan_starts_children_in_need_after_four_years_and_drops_unpublished_horizons(small_panel):
    plan, notes = B.plan_backtest(small_panel, [2014, 2015, 2016, 2017], B.DEFAULT_HORIZONS)
    assert plan[2014] == (("looked_after", (1, 2, 3, 4, 5)),)  # 2014 + 8 is after 2019
    assert dict(plan[2016])["children_in_need"] == (1, 2, 3)  # the series starts in 2013
    assert dict(plan[2017])["child_protection"] == (1, 2)
    assert any("children_in_need: origin(s) 2014-2015 have fewer than 4 years" in n for n in notes)
    assert any("after 2019, the last published year" in n for n in notes)


def test_forecasters_see_only_the_years_up_to_the_origin(small_panel):
    CALLS.clear()
    result = B.backtest(
        small_panel, [Oracle()], origins=[2015, 2017], measures=["looked_after"], horizons=[1, 2], progress=False
    )
    assert sorted((o, seen) for _, o, seen in CALLS) == [(2015, 2015), (2017, 2017)]
    table = result.table
    assert len(table) == 6 * 2 * 2
    assert (table["year"] == table["origin"] + table["horizon"]).all()
    row = table.iloc[0]
    published = small_panel[(small_panel["la_code"] == row["la_code"]) & (small_panel["year"] == row["year"])]
    assert row["observed"] == float(published["looked_after"].iloc[0])
    assert table["crps"].notna().all() and table["pit"].between(0, 1).all()
    assert (table["lower_90"] <= table["lower_50"]).all() and (table["upper_50"] <= table["upper_90"]).all()


def test_authorities_are_forecast_only_from_origins_at_which_they_exist(small_panel):
    late = "E06990005"
    panel = small_panel[~((small_panel["la_code"] == late) & (small_panel["year"] < 2016))]
    table = B.backtest(
        panel, [Oracle()], origins=[2015, 2016], measures=["looked_after"], horizons=[1], progress=False
    ).table
    assert set(table.loc[table["origin"] == 2015, "la_code"]) == set(B.local_authorities(panel)) - {late}
    assert late in set(table.loc[table["origin"] == 2016, "la_code"])


def test_an_origin_whose_fit_failed_is_reported_and_not_scored(small_panel):
    result = B.backtest(
        small_panel,
        [Oracle("model", fail_at=(2016,)), PooledGrowth(n_draws=200, min_changes=5)],
        origins=[2015, 2016, 2017],
        measures=["looked_after"],
        horizons=[1],
        progress=False,
    )
    status = result.origins.set_index(["origin", "method"])["status"]
    assert status[(2016, "model")] == "failed" and status[(2015, "model")] == "scored"
    assert status[(2016, "pooled_growth")] == "scored"
    model_rows = result.table[result.table["method"] == "model"]
    assert set(model_rows["origin"]) == {2015, 2017}
    assert any("origin 2016, model: not scored" in n and "R-hat 1.2" in n for n in result.notes)
    # the failed origin's cells leave the paired comparison
    ratios = B.crps_ratios(result.table)
    assert ratios["n_origins"].iloc[0] == 2 and ratios["n_pairs"].iloc[0] == 12


def test_unknown_authorities_and_early_origins_are_refused(small_panel):
    with pytest.raises(UnknownAuthorityError):
        B.backtest(small_panel, [Oracle()], origins=[2015], las=["E09999999"], progress=False)
    with pytest.raises(BayesLacError, match="not in the panel"):
        B.backtest(small_panel, [Oracle()], origins=[2005], progress=False)
    with pytest.raises(BayesLacError, match="distinct"):
        B.backtest(small_panel, [Oracle(), Oracle()], origins=[2015], progress=False)


def test_strata_size_quartile_and_uasc_change():
    assert B.uasc_change(0.05, 0.08) == "rose"
    assert B.uasc_change(0.08, 0.05) == "fell"
    assert B.uasc_change(0.05, 0.055) == "flat"
    assert B.uasc_change(np.nan, 0.05) == "unknown"
    rows = []
    for i, pop in enumerate([1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000]):
        for year, uasc in ((2015, 5), (2016, 5 + 10 * (i % 2))):
            rows.append(
                {
                    "la_code": f"E06{i:06d}",
                    "year": year,
                    "geographic_level": "Local authority",
                    "population_0_17": pop,
                    "looked_after": 100,
                    "uasc": uasc,
                }
            )
    panel = pd.DataFrame(rows)
    quartiles = B.size_quartiles(panel, 2015)
    assert quartiles["E06000000"] == "Q1 smallest" and quartiles["E06000007"] == "Q4 largest"
    assert quartiles.value_counts().to_dict() == dict.fromkeys(B.SIZE_QUARTILES, 2)
    cells = B.cell_table(panel, 2015, "looked_after", [1, 2], ["E06000000", "E06000001"])
    assert cells.set_index(["la_code", "horizon"])["uasc_change"].to_dict() == {
        ("E06000000", 1): "flat",
        ("E06000000", 2): "unknown",
        ("E06000001", 1): "rose",
        ("E06000001", 2): "unknown",
    }


def test_first_release_outcomes_are_scored_as_a_sensitivity_row(small_panel):
    panel = small_panel.copy()
    panel["looked_after_first_release"] = (panel["looked_after"].astype(float) + 3).where(panel["year"] <= 2017)
    result = B.backtest(panel, [Oracle()], origins=[2016], measures=["looked_after"], horizons=[1, 2], progress=False)
    t = result.table
    assert t.loc[t["horizon"] == 1, "observed_first_release"].notna().all()  # 2017
    assert t.loc[t["horizon"] == 2, "observed_first_release"].isna().all()  # 2018: none
    summary = B.summary_tables(result, n_boot=50)["summary"]
    first = summary[summary["outcome"] == "first_release"]
    assert list(first["horizon"]) == [1] and first["n_scored"].iloc[0] == 6


# -- resuming from the cache -------------------------------------------------------------------


def test_an_origin_already_scored_is_read_back_not_rerun(small_panel, tmp_path):
    settings = {
        "origins": [2015, 2016],
        "measures": ["looked_after"],
        "horizons": [1],
        "cache_dir": tmp_path / "cache",
        "progress": False,
    }
    CALLS.clear()
    first = B.backtest(small_panel, [Oracle()], **settings)
    assert sorted(o for _, o, _ in CALLS) == [2015, 2016]
    CALLS.clear()
    again = B.backtest(small_panel, [Oracle()], **settings)
    assert CALLS == []
    assert again.origins["from_cache"].all()
    pd.testing.assert_frame_equal(again.table, first.table, check_dtype=False)
    # a run interrupted after 2015: only 2016 runs again
    (tmp_path / "cache" / "origin_2016.json").unlink()
    CALLS.clear()
    B.backtest(small_panel, [Oracle()], **settings)
    assert [o for _, o, _ in CALLS] == [2016]
    # asked to rerun: every origin runs
    CALLS.clear()
    B.backtest(small_panel, [Oracle()], **settings, rerun=True)
    assert sorted(o for _, o, _ in CALLS) == [2015, 2016]
    # other settings never mix with cached ones
    with pytest.raises(BayesLacError, match="other settings.*rerun"):
        B.backtest(small_panel, [Oracle()], **settings, seed=1)
    with pytest.raises(BayesLacError, match="other settings"):
        B.backtest(small_panel.assign(looked_after=small_panel["looked_after"] + 1), [Oracle()], **settings)


def test_a_failed_origin_is_cached_as_failed(small_panel, tmp_path):
    settings = {
        "origins": [2016],
        "measures": ["looked_after"],
        "horizons": [1],
        "cache_dir": tmp_path,
        "progress": False,
    }
    B.backtest(small_panel, [Oracle("model", fail_at=(2016,))], **settings)
    CALLS.clear()
    again = B.backtest(small_panel, [Oracle("model", fail_at=(2016,))], **settings)
    assert CALLS == [] and again.origins["status"].tolist() == ["failed"] and again.table.empty


# -- the comparison set: what a report fits ------------------------------------------------------


class ModelOracle(B.ModelForecaster):
    """The model forecaster's comparison set with the oracle's draws (no fit)."""

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        return Oracle("model")(panel, origin, horizons, measures, las=las, quantity=quantity, seed=seed)


def test_the_model_forecaster_fits_what_a_report_fits_by_default():
    from bayes_lac.cli import build_parser
    from bayes_lac.data.neighbours import statistical_neighbours
    from bayes_lac.data.panel import load_panel

    model = B.ModelForecaster()
    assert (model.config()["target"], model.config()["neighbours"]) == (THURROCK_CODE, "2021")
    expected = [THURROCK_CODE, *statistical_neighbours(THURROCK_CODE, 2021)]
    assert list(model.comparison_las(load_panel())) == expected and len(expected) == 11
    report = build_parser().parse_args(["report"])
    args = build_parser().parse_args(["backtest", "--out", "x.csv"])
    assert (args.la, args.neighbours, args.las) == (report.la, report.neighbours, "comparison")
    # by default both fit the latent-state model on every authority
    assert args.model == "latent" and report.model is None and report.neighbours is None
    latent = B.default_model_forecaster()
    assert (latent.config()["target"], latent.config()["neighbours"]) == (THURROCK_CODE, "all")
    assert len(latent.comparison_las(load_panel())) > 140
    # the comparison set is part of the configuration the shipped backtest is checked against
    hashes = {
        B.ModelForecaster(target=t, neighbours=n).config_hash()
        for t, n in [(None, "2021"), ("E06000033", "2021"), (None, "all"), (None, "2025")]
    }
    assert len(hashes) == 4
    assert B.ModelForecaster(target=THURROCK_CODE).config_hash() == model.config_hash()


def test_a_backtest_fit_leaves_out_measures_with_fewer_than_four_years():
    from bayes_lac.data.panel import load_panel

    panel = load_panel()  # children in need and child protection are published from 2013
    model = B.ModelForecaster()
    assert model.measures_at(panel, 2014) == ("looked_after",)
    assert model.measures_at(panel, 2015) == ("looked_after",)
    assert model.measures_at(panel, 2016) == B.MEASURES
    with pytest.raises(BayesLacError, match="children_in_need have fewer than 4 years"):
        model(panel, 2015, [1], ["looked_after", "children_in_need"], las=[THURROCK_CODE])
    with pytest.raises(PanelError, match="no measure of children_in_need has 4 years"):
        B.ModelForecaster(fit_measures=("children_in_need",)).measures_at(panel, 2014)


def test_a_backtest_scores_the_model_forecasters_comparison_set(small_panel):
    codes = sorted(B.local_authorities(small_panel))  # not England's row
    model = ModelOracle(target=codes[1], neighbours=",".join(codes[2:5]))
    result = B.backtest(small_panel, [model], origins=[2016], measures=["looked_after"], horizons=[1], progress=False)
    assert sorted(result.table["la_code"].unique()) == sorted(codes[1:5])
    every = B.backtest(
        small_panel, [model], origins=[2016], measures=["looked_after"], horizons=[1], las="all", progress=False
    )
    assert sorted(every.table["la_code"].unique()) == codes


# -- the shipped backtest and its staleness check ----------------------------------------------


def test_the_manifest_records_version_and_model_configuration(small_panel, tmp_path):
    model = B.default_model_forecaster()
    result = B.backtest(
        small_panel, [Oracle()], origins=[2016], measures=["looked_after"], horizons=[1], progress=False
    )
    result = dataclasses.replace(result, model_config=model.config())
    paths = B.save_backtest(result, tmp_path / "bt.csv.gz", B.summary_tables(result, n_boot=50))
    for key in ("forecasts", "summary", "ratios", "pit", "origins", "vintages", "manifest"):
        assert paths[key].is_file(), key
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["model_config_hash"] == model.config_hash()
    assert B.stale_reasons(manifest) == []
    assert B.check_shipped_backtest(tmp_path, stem="bt") == []
    table = pd.read_csv(paths["forecasts"])
    assert list(table.columns) == list(B.FORECAST_COLUMNS)


def test_a_backtest_of_another_model_version_or_configuration_is_stale():
    current = B.current_model_signature()
    same = dict(current)
    assert B.stale_reasons(same, current) == []
    older = dict(current, package_version="0.1.0")
    assert any("made by bayes_lac 0.1.0" in r for r in B.stale_reasons(older, current))
    # the default is the latent-state model, as a report fits it: the 0.2 model's backtest is stale
    assert B.default_model_forecaster().config()["model"] == "LatentModel"
    assert B.ModelForecaster().config_hash() != current["model_config_hash"]
    # any setting of the model changes its hash
    other = B.LatentModelForecaster(draws=100).config_hash()
    assert other != current["model_config_hash"]
    assert any("model configuration" in r for r in B.stale_reasons(dict(current, model_config_hash=other), current))
    assert any("no model forecasts" in r for r in B.stale_reasons(dict(current, model_config_hash=None), current))
    assert B.LatentModelForecaster(neighbours="2021").config_hash() != current["model_config_hash"]
    # the forecasts' tails are part of it, with the constants that define them
    assert B.LatentModelForecaster(tails="normal").config_hash() != current["model_config_hash"]
    assert B.LatentModelForecaster().config()["tail_draws"] == LF.TAIL_DRAWS


def test_a_latent_forecaster_refuses_a_bad_start_or_tails_before_fitting():
    with pytest.raises(BayesLacError, match="tails must be one of"):
        B.LatentModelForecaster(tails="cauchy")
    with pytest.raises(BayesLacError, match="start must be one of"):
        B.LatentModelForecaster(start="latest")


def test_the_shipped_backtest_was_made_by_the_packages_model():
    reasons = B.check_shipped_backtest()
    assert not reasons, "models/backtest is stale: " + "; ".join(reasons)


def test_vintage_table_matches_the_bundled_panel_sources():
    from bayes_lac.data.panel import load_panel

    panel = load_panel()
    las = panel[panel["geographic_level"] == "Local authority"]
    sources = las.dropna(subset=["looked_after"]).groupby("year")["looked_after_source"].agg(lambda s: set(s))
    for year, found in sources.items():
        if year <= 2014:
            assert all(s.startswith("SFR") for s in found), (year, found)
        else:
            expected = "LAIT@b3494e3d664d" if year == 2015 else "LAIT@2e30e3959a6a"
            assert found == {expected}, (year, found)
    flags = las.groupby("year")["population_0_17_flag"].agg(lambda s: set(s.dropna()))
    assert flags[2010] == {"mid-2009 rounded"} and "interpolated" in flags[2011] and "ons_mye" in flags[2013]
    table = B.vintage_table([2014, 2022])
    at_2014 = table[table["origin"] == 2014].set_index("input")
    assert not at_2014.loc["looked_after", "later_than_origin"]  # 2010-2014: first releases of their own year
    pop = table[(table["input"] == "population_0_17") & table["later_than_origin"]]
    assert set(pop["origin"]) == {2014, 2022}  # the Census-2021 rebasing came out in 2023
    assert table[(table["origin"] == 2022) & (table["input"] == "looked_after")]["later_than_origin"].any()


# -- targets, charts and the command line -------------------------------------------------------


def test_target_finding_names_the_misses(small_panel):
    result = B.backtest(
        small_panel,
        [Oracle("model"), PooledGrowth(n_draws=200, min_changes=5)],
        origins=[2015, 2016],
        measures=["looked_after"],
        horizons=[2],
        progress=False,
    )
    sentence = B.target_finding(result.table).sentence
    assert "90% intervals" in sentence and "PIT mean" in sentence and "pooled_growth" in sentence
    narrow = result.table.copy()
    narrow.loc[narrow["method"] == "model", "upper_90"] = narrow["lower_90"] - 1  # empty intervals
    assert "miss the coverage target" in B.target_finding(narrow).sentence
    high = result.table.copy()
    high.loc[high["method"] == "model", "pit"] = 0.2  # outcomes low in the predictive distribution
    assert "2 (0.200, forecasts too high)" in B.target_finding(high).sentence


def test_calibration_chart_draws_its_table_twins(small_panel):
    import matplotlib.pyplot as plt

    table = B.backtest(
        small_panel, [Oracle("model")], origins=[2015, 2016], measures=["looked_after"], horizons=[1, 2], progress=False
    ).table
    fig = B.plot_calibration(table)
    left, right = fig.axes[:2]
    drawn = np.concatenate(
        [line.get_ydata() for line in left.get_lines() if len(line.get_xdata()) == 2 and line.get_linestyle() != ":"]
    )
    assert set(np.round(B.coverage_table(table)["coverage"], 6)) == set(np.round(drawn.astype(float), 6))
    assert [p.get_height() for p in right.patches] == pytest.approx(B.pit_histogram_table(table)["share"].tolist())
    plt.close(fig)


def test_parse_years_and_methods():
    assert B.parse_years("2014-2016", "origins") == [2014, 2015, 2016]
    assert B.parse_years("2014, 2018,2016", "origins") == [2014, 2016, 2018]
    with pytest.raises(BayesLacError, match="backwards"):
        B.parse_years("2016-2014", "origins")
    with pytest.raises(BayesLacError, match="--origins"):
        B.parse_years("2014 to 2016", "origins")
    names = [f.name for f in B.parse_methods("model,baselines,last_value")]
    assert names == ["model", *B.BASELINES]
    with pytest.raises(BayesLacError, match="unknown method 'naive'"):
        B.parse_methods("naive")


def test_model_forecaster_refuses_spend(small_panel):
    with pytest.raises(BayesLacError, match="counts only"):
        B.ModelForecaster()(small_panel, 2016, [1], ["looked_after"], las=["E06990000"], quantity="spend")


def test_backtest_command_scores_the_comparison_set_or_says_how_not_to(small_panel, tmp_path, capsys):
    from bayes_lac.cli import main

    panel_file = tmp_path / "panel.csv"
    small_panel.drop(columns=["geographic_level"]).to_csv(panel_file, index=False)
    common = ["backtest", "--panel", str(panel_file), "--origins", "2017", "--horizons", "1"]
    common += ["--measures", "looked_after", "--methods", "last_value", "--workers", "1"]
    # the default --la (Thurrock) is not in this panel: one line that says what to do
    assert main([*common, "--out", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert "E06000034" in err and "--las all" in err
    codes = sorted(B.local_authorities(small_panel))
    argv = [*common, "--la", codes[0], "--neighbours", ",".join(codes[1:3]), "--out", str(tmp_path / "b.csv")]
    assert main(argv) == 0
    assert sorted(pd.read_csv(tmp_path / "b.csv")["la_code"].unique()) == codes[:3]


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_backtest_command_with_a_tiny_model_fit(small_panel, tmp_path, capsys):
    from bayes_lac.cli import main

    panel_file = tmp_path / "panel.csv"
    small_panel.drop(columns=["geographic_level"]).to_csv(panel_file, index=False)
    out = tmp_path / "bt.csv.gz"
    argv = [
        "backtest",
        "--model",
        "default",
        "--panel",
        str(panel_file),
        "--origins",
        "2017",
        "--horizons",
        "1,3",
        "--measures",
        "looked_after",
        "--la",
        "E06990000",
        "--neighbours",
        "all",
        "--las",
        "E06990000,E06990001",
        "--methods",
        "model,last_value",
        "--draws",
        "40",
        "--tune",
        "40",
        "--chains",
        "2",
        "--sampler",
        TEST_SAMPLER,
        "--max-treedepth",
        "3",
        "--allow-unconverged",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert set(table["la_code"]) == {"E06990000", "E06990001"} and set(table["method"]) == {"model", "last_value"}
    assert set(table["horizon"]) == {1}  # 2017 + 3 is after the panel's last year, 2019
    model = table[table["method"] == "model"]
    assert model["crps"].notna().all() and (model["median"] > 0).all()
    printed = capsys.readouterr().out
    assert "Where the time went" in printed and "after 2019, the last published year" in printed
    manifest = json.loads((tmp_path / "bt_manifest.json").read_text())
    assert manifest["model_config"]["sampler"] == TEST_SAMPLER and manifest["model_config"]["allow_unconverged"] is True
    origins = pd.read_csv(tmp_path / "bt_origins.csv")
    assert origins.set_index("method").loc["model", "fit_seconds"] > 0
    # run again: read from the cache, no refit
    assert main(argv) == 0
    assert "read from" in capsys.readouterr().out


@pytest.mark.slow  # two cold worker processes on a Dask LocalCluster
def test_small_backtest_on_a_dask_local_cluster(small_panel):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = B.backtest(
            small_panel,
            [LastValue(n_draws=100), PooledGrowth(n_draws=100, min_changes=5)],
            origins=[2016, 2017],
            measures=["looked_after"],
            horizons=[1, 2],
            scheduler=cluster,
            progress=False,
        )
    assert set(result.table["origin"]) == {2016, 2017}
    assert result.origins["status"].eq("scored").all()


def test_checked_horizons_are_the_unbroken_run_of_scored_horizons():
    rows = [("model", "looked_after", h, 1.0) for h in (1, 2, 3, 5)] + [
        ("model", "children_in_need", 2, 1.0),
        ("pooled_growth", "child_protection", 1, 1.0),
    ]
    rows.append(("model", "child_protection", 1, np.nan))  # a forecast with no outcome yet is not checked
    table = pd.DataFrame(rows, columns=["method", "measure", "horizon", "observed"])
    # horizon 4 was never scored, so 5 does not count; children in need lacks horizon 1
    assert B.checked_horizons(table) == {"looked_after": 3}
    assert B.checked_horizons(table, method="pooled_growth") == {"child_protection": 1}


def test_against_pooled_puts_the_model_beside_pooled_growth_on_the_same_cells(small_panel):
    """Every figure is of the cells both scored: an origin whose model fit failed leaves pooled
    growth's coverage, PIT mean and CRPS too; with fewer than three origins no interval."""
    from bayes_lac.report.board import backtest_against_pooled

    result = B.backtest(
        small_panel,
        [PooledGrowth(n_draws=200), Oracle(name=B.MODEL_METHOD, fail_at=(2016,))],
        origins=[2015, 2016, 2017, 2018],
        measures=["looked_after"],
        horizons=[1],
        progress=False,
    )
    table = result.table
    rows = B.against_pooled(table, n_boot=200)
    model = table[(table["method"] == B.MODEL_METHOD) & table["crps"].notna()]
    pooled = table[(table["method"] == "pooled_growth") & table["crps"].notna()]
    assert set(model["origin"]) == {2015, 2017, 2018} and set(pooled["origin"]) == {2015, 2016, 2017, 2018}
    same = pooled[pooled["origin"] != 2016]
    want = model["crps"].sum() / same["crps"].sum()
    assert rows["crps_ratio"].item() == pytest.approx(want)
    assert rows["lower"].item() <= want <= rows["upper"].item()
    assert rows["n_scored"].item() == 6 * 3 and rows["n_origins"].item() == 3
    # pooled growth's coverage and PIT mean on the model's cells, not on all of its own
    inside = (same["observed"] >= same["lower_90"]) & (same["observed"] <= same["upper_90"])
    assert rows["coverage_90_pooled"].item() == pytest.approx(inside.mean())
    assert rows["pit_mean_pooled"].item() == pytest.approx(same["pit"].mean())
    words = backtest_against_pooled(table)
    assert list(words["Years ahead"]) == ["1"]
    assert words["CRPS, model / pooled growth"].item() == (
        f"{want:.2f} ({rows['lower'].item():.2f} to {rows['upper'].item():.2f})"
    )
    # two origins: the ratio without an interval (resampling two origins gives only their own ratios)
    two = B.against_pooled(table[table["origin"] != 2018], n_boot=200)
    assert two["n_origins"].item() == 2 and np.isnan(two["lower"].item())
    assert (
        backtest_against_pooled(table[table["origin"] != 2018])["CRPS, model / pooled growth"]
        .item()
        .endswith("(2 years' forecasts)")
    )
    # no model rows: nothing to put beside pooled growth
    assert B.against_pooled(table[table["method"] != B.MODEL_METHOD]).empty
