"""Decomposition arithmetic on synthetic runs with known parameters (no sampling)."""

from __future__ import annotations

import json

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis import decompose as D
from bayes_lac.cli import main
from bayes_lac.errors import BayesLacError, UnconvergedFitError, UnknownAuthorityError
from bayes_lac.model import results as R
from bayes_lac.model.results import prior_contraction, run_info
from bayes_lac.summaries import format_count
from tests.conftest import make_toy_results

YEARS = (2010, 2020)
N_Y = YEARS[1] - YEARS[0] + 1
N_LA = 4


def grid(start, end) -> np.ndarray:
    """(la, year) array moving linearly from `start` to `end` over the toy years."""
    return np.linspace(start, end, N_Y)[None, :].repeat(N_LA, 0)


def published(run: xr.DataTree, measures=("looked_after", "children_in_need", "child_protection")) -> xr.DataTree:
    """The run with published counts filled in (the toy run has none) for `measures`."""
    obs = run["observed_data"].to_dataset()
    exp = R.expected_reported(run).median(("chain", "draw")).transpose("measure", "la", "year")
    filled = obs["reported_count"].copy(data=np.round(exp.values))
    keep = xr.DataArray(
        np.isin(obs["measure"].values, list(measures)), dims="measure", coords={"measure": obs["measure"]}
    )
    obs["reported_count"] = filled.where(keep)
    out = run.copy(deep=False)
    out["observed_data"] = xr.DataTree(obs)
    return out


def mixed_run(**kw) -> xr.DataTree:
    """Every factor changes: population, UASC, deprivation, year effect, own trend."""
    args = dict(
        population=grid(40_000, 46_000),
        uasc=grid(5, 40),
        deprivation=grid(18, 24),
        year_step=0.03,
        la_trend=0.04,
        noise_sd=0.05,
    )
    args.update(kw)
    return published(make_toy_results(**args))


# --------------------------------------------------------------------------------------------
# The attribution rule


def test_components_add_up_to_the_modelled_change_in_every_draw():
    run = mixed_run()
    d = D.decompose(run, from_year=2011, to_year=2019)
    parts = d.draws.sel(component=list(D.ADDITIVE_COMPONENTS)).sum("component")
    total = d.draws.sel(component="total")
    la = run.attrs["target_la"]
    modelled = R.expected_reported(run, la=la).sel(year=2019) - R.expected_reported(run, la=la).sel(year=2011)
    np.testing.assert_allclose(parts.values, total.values, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(
        total.transpose("chain", "draw", "measure").values,
        modelled.transpose("chain", "draw", "measure").values,
        rtol=1e-12,
    )
    # every factor moved, so every part is non-zero (UASC only counts for looked_after)
    moved = d.draws.drop_sel(component="uasc")
    assert (np.abs(moved) > 1e-6).all()
    assert (np.abs(d.draws.sel(component="uasc", measure="looked_after")) > 1).all()
    assert float(d.draws.sel(component="supply_local").std()) > 0
    np.testing.assert_allclose(
        d.draws.sel(component="not_explained"),
        d.draws.sel(component="supply_national") + d.draws.sel(component="supply_local"),
    )


def test_only_population_changes_everything_goes_to_population():
    run = published(make_toy_results(population=grid(40_000, 50_000), la_trend=0.0, year_step=0.0, noise_sd=0.0))
    d = D.decompose(run, from_year=2010, to_year=2020)
    for comp in ("uasc", "deprivation", "supply_national", "supply_local"):
        assert np.allclose(d.draws.sel(component=comp), 0.0, atol=1e-9), comp
    np.testing.assert_allclose(d.draws.sel(component="population"), d.draws.sel(component="total"))
    # by hand: level exp(4.0) per 10,000 children, 10,000 more children
    lac = d.draws.sel(component="population", measure="looked_after")
    np.testing.assert_allclose(lac, np.exp(4.0) * 10_000 / 10_000, rtol=1e-9)


def test_two_factors_split_by_hand():
    # population x1.25 and year effect exp(0.05 * 10): Shapley shares by hand
    run = published(make_toy_results(population=grid(40_000, 50_000), la_trend=0.0, year_step=0.05, noise_sd=0.0))
    d = D.decompose(run, from_year=2010, to_year=2020, measures="looked_after")
    la = run.attrs["target_la"]
    e0 = float(R.expected(run, la=la).sel(measure="looked_after", year=2010).isel(chain=0, draw=0))
    r_pop, r_year = 1.25, np.exp(0.5)
    pop_by_hand = e0 * (r_pop - 1) * (1 + r_year) / 2
    year_by_hand = e0 * (r_year - 1) * (1 + r_pop) / 2
    got = d.draws.sel(measure="looked_after").isel(chain=0, draw=0)
    assert float(got.sel(component="population")) == pytest.approx(pop_by_hand, rel=1e-10)
    assert float(got.sel(component="supply_national")) == pytest.approx(year_by_hand, rel=1e-10)
    assert float(got.sel(component="supply_local")) == pytest.approx(0.0, abs=1e-9)
    assert float(got.sel(component="deprivation")) == pytest.approx(0.0, abs=1e-9)


def test_shapley_is_symmetric_and_matches_three_factor_hand_calculation():
    equal = D.shapley_split(xr.DataArray(100.0), {"a": xr.DataArray(np.log(1.2)), "b": xr.DataArray(np.log(1.2))})
    assert float(equal["a"]) == pytest.approx(float(equal["b"]))
    assert float(equal["a"] + equal["b"]) == pytest.approx(100 * (1.2**2 - 1))
    r = {"a": 1.1, "b": 1.3, "c": 0.8}
    shares = D.shapley_split(xr.DataArray(50.0), {k: xr.DataArray(np.log(v)) for k, v in r.items()})
    # factor a over the 6 orders: weights 1/3 (first), 1/6 after b only, 1/6 after c only, 1/3 last
    a_by_hand = 50 * (r["a"] - 1) * (1 / 3 + r["b"] / 6 + r["c"] / 6 + r["b"] * r["c"] / 3)
    assert float(shares["a"]) == pytest.approx(a_by_hand, rel=1e-12)
    assert float(sum(shares.values())) == pytest.approx(50 * (1.1 * 1.3 * 0.8 - 1), rel=1e-12)
    unchanged = D.shapley_split(xr.DataArray(50.0), {"a": xr.DataArray(0.0), "b": xr.DataArray(np.log(2.0))})
    assert float(unchanged["a"]) == 0.0 and float(unchanged["b"]) == pytest.approx(50.0)


def test_uasc_is_additive_known_and_only_for_looked_after():
    run = published(make_toy_results(uasc=grid(10, 60), la_trend=0.0, year_step=0.0, noise_sd=0.0))
    d = D.decompose(run, from_year=2010, to_year=2020)
    np.testing.assert_allclose(d.draws.sel(measure="looked_after", component="uasc"), 50.0)
    np.testing.assert_allclose(d.draws.sel(measure=["children_in_need", "child_protection"], component="uasc"), 0.0)
    # UASC does not change the rate factors, so nothing else moves
    np.testing.assert_allclose(d.draws.sel(component="total", measure="looked_after"), 50.0, rtol=1e-10)
    row = d.table.query("measure == 'looked_after' and component == 'uasc'").iloc[0]
    assert row["lower"] == row["upper"] == pytest.approx(50.0)


def test_deprivation_and_local_trend_by_hand():
    run = published(make_toy_results(deprivation=grid(20, 25), la_trend=0.03, year_step=0.0, noise_sd=0.0))
    d = D.decompose(run, from_year=2010, to_year=2020, measures="looked_after")
    la = run.attrs["target_la"]
    e0 = float(R.expected(run, la=la).sel(measure="looked_after", year=2010).isel(chain=0, draw=0))
    r_dep, r_trend = np.exp(0.02 * 5), np.exp(0.03 * 10)
    got = d.draws.sel(measure="looked_after").isel(chain=0, draw=0)
    assert float(got.sel(component="deprivation")) == pytest.approx(e0 * (r_dep - 1) * (1 + r_trend) / 2, rel=1e-10)
    assert float(got.sel(component="supply_local")) == pytest.approx(e0 * (r_trend - 1) * (1 + r_dep) / 2, rel=1e-10)


# --------------------------------------------------------------------------------------------
# Tables, caveats, sentences


def test_table_columns_and_summaries():
    d = D.decompose(mixed_run(), from_year=2010, to_year=2017, ci_prob=0.8)
    assert tuple(d.table.columns) == D.TABLE_COLUMNS
    assert set(d.table["component"]) == set(D.COMPONENTS)
    assert (d.table["ci_prob"] == 0.8).all()
    assert (d.table["lower"] <= d.table["median"]).all() and (d.table["median"] <= d.table["upper"]).all()
    # means of the parts add up to the mean of the total
    for _, t in d.table.groupby("measure"):
        parts = t.set_index("component").loc[list(D.ADDITIVE_COMPONENTS), "mean"].sum()
        assert parts == pytest.approx(t.set_index("component").loc["total", "mean"], rel=1e-9)


def test_unpublished_measure_is_left_out_with_a_caveat():
    run = published(make_toy_results(), measures=("looked_after", "child_protection"))
    d = D.decompose(run, from_year=2010, to_year=2015)
    assert d.measures == ("looked_after", "child_protection")
    assert any("children in need" in c and "not published" in c for c in d.caveats)


def test_imputed_inputs_are_named_in_the_caveats():
    run = mixed_run()
    const = run["constant_data"].to_dataset()
    const["deprivation_imputed"] = const["deprivation_imputed"].copy(
        data=np.asarray(const["year"] < 2015)[None, :].repeat(N_LA, 0)
    )
    run["constant_data"] = xr.DataTree(const)
    run.attrs["imputations"] = json.dumps(
        ["Deprivation: published for 2015-2020; 40 authority-years carry the nearest published year.", "UASC: none."]
    )
    d = D.decompose(run, from_year=2010, to_year=2017)
    text = " ".join(d.caveats)
    assert "deprivation in 2010 was imputed" in text
    assert "How the run filled it: Deprivation: published for 2015-2020" in text
    assert "UASC: none" not in text
    assert "2017" not in text.split("deprivation in")[1].split("was imputed")[0]
    assert all(f.caveats == d.caveats for f in d.findings)
    assert D.decompose(mixed_run(), from_year=2015, to_year=2017).caveats == ()


def test_findings_carry_intervals_and_never_claim_a_practice_effect():
    d = D.decompose(mixed_run(), from_year=2010, to_year=2017)
    assert len(d.findings) == len(d.measures) + 1
    first = d.findings[0].sentence
    assert first.startswith("Between March 2010 and March 2017")
    assert "90% credible interval" in first
    assert "not explained by the measured demand factors" in first
    assert "not proof of a practice effect" in first
    total = d.table.query("measure == 'looked_after' and component == 'total'").iloc[0]
    assert f"rose by about {round(total['mean'])}" in first
    assert "comparison authorities combined" in d.findings[-1].sentence


# --------------------------------------------------------------------------------------------
# Faster than elsewhere


def test_comparison_percentages_and_differences():
    run = mixed_run()
    d = D.decompose(run, from_year=2010, to_year=2020)
    cd = d.comparison_draws
    target = cd.sel(area="target")
    np.testing.assert_allclose(target.sel(component="total"), 100 * d.draws.sel(component="total") / d.start)
    np.testing.assert_allclose(cd.sel(area="target_minus_neighbours"), target - cd.sel(area="neighbours"))
    # neighbours: sums over the other authorities, by hand
    others = json.loads(run.attrs["neighbours"])
    er = R.expected_reported(run, la=others)
    by_hand = 100 * (er.sel(year=2020) - er.sel(year=2010)).sum("la") / er.sel(year=2010).sum("la")
    np.testing.assert_allclose(
        cd.sel(area="neighbours", component="total"),
        by_hand.transpose(*cd.sel(area="neighbours", component="total").dims),
    )
    # components still add up on the percentage scale
    parts = cd.sel(component=list(D.ADDITIVE_COMPONENTS)).sum("component")
    np.testing.assert_allclose(parts, cd.sel(component="total"), rtol=1e-9, atol=1e-9)


def test_england_from_published_counts_has_no_model_uncertainty():
    run = mixed_run()
    ref = run["reference"].to_dataset()
    ref["population_0_17"] = ref["population_0_17"].copy(data=np.linspace(12e6, 13.2e6, N_Y))
    ref["count"] = ref["count"] * xr.DataArray(np.linspace(1.0, 1.32, N_Y), dims="year", coords={"year": ref["year"]})
    run["reference"] = xr.DataTree(ref)
    d = D.decompose(run, from_year=2010, to_year=2020)
    eng = D.comparison_table(d, "looked_after").query("area == 'england'").set_index("component")
    r_pop, r_rate = 1.1, 1.32 / 1.1
    assert eng.loc["population", "mean"] == pytest.approx(100 * (r_pop - 1) * (1 + r_rate) / 2)
    assert eng.loc["total", "mean"] == pytest.approx(32.0)
    assert (eng["lower"] == eng["upper"]).all()
    assert eng["source"].str.contains("no model uncertainty").all()
    diff = (
        D.comparison_table(d, "looked_after").query("area == 'target_minus_england' and component == 'total'").iloc[0]
    )
    tgt = D.comparison_table(d, "looked_after").query("area == 'target' and component == 'total'").iloc[0]
    assert diff["mean"] == pytest.approx(tgt["mean"] - 32.0)


def test_national_run_models_england_as_the_sum_of_authorities():
    run = mixed_run()
    run.attrs["comparison"] = "all"
    d = D.decompose(run, from_year=2010, to_year=2020)
    assert "england" in d.comparison_draws["area"].values
    er = R.expected_reported(run)
    by_hand = 100 * (er.sel(year=2020) - er.sel(year=2010)).sum("la") / er.sel(year=2010).sum("la")
    got = d.comparison_draws.sel(area="england", component="total")
    np.testing.assert_allclose(got, by_hand.transpose(*got.dims))
    assert (d.comparison.query("area == 'england'")["source"] == "model").all()


def test_a_neighbour_that_did_not_exist_at_the_start_is_left_out_of_the_comparison_and_named():
    # the defect: West Northamptonshire (from 2022) entered a 2010-2025 comparison with 674
    # invented children in 2010
    run = mixed_run()
    run.attrs["comparison"] = "all"
    others = json.loads(run.attrs["neighbours"])
    late = others[0]
    obs = run["observed_data"].to_dataset()
    obs["reported_count"].loc[dict(la=late, year=slice(2010, 2015))] = np.nan
    run["observed_data"] = xr.DataTree(obs)
    d = D.decompose(run, from_year=2010, to_year=2020)
    kept = [c for c in others if c != late]
    er = R.expected_reported(run, la=kept)
    by_hand = 100 * (er.sel(year=2020) - er.sel(year=2010)).sum("la") / er.sel(year=2010).sum("la")
    got = d.comparison_draws.sel(area="neighbours", component="total")
    np.testing.assert_allclose(got, by_hand.transpose(*got.dims))
    # England too is the authorities with data in both years
    every = [c for c in run["posterior"]["la"].values.astype(str) if c != late]
    er = R.expected_reported(run, la=every)
    by_hand = 100 * (er.sel(year=2020) - er.sel(year=2010)).sum("la") / er.sel(year=2010).sum("la")
    got = d.comparison_draws.sel(area="england", component="total")
    np.testing.assert_allclose(got, by_hand.transpose(*got.dims))
    name = run_info(run).la_name(late)
    assert any(c.startswith("Left out of the comparison authorities for 2010-2020") and name in c for c in d.caveats)
    assert any(c.startswith("Left out of England") for c in d.caveats)
    # a window inside its years keeps it
    later = D.decompose(run, from_year=2016, to_year=2020)
    assert not any(c.startswith("Left out") for c in later.caveats)
    assert D.with_data_in_both(run, others, 2010, 2020) == kept


def test_a_deprivation_effect_the_data_do_not_identify_is_said_so_not_given_as_a_number():
    run = mixed_run()
    post_sd = run["posterior"]["deprivation_effect"].std(("chain", "draw"))
    measures = [str(m) for m in post_sd["measure"].values]
    # looked after: the posterior is as wide as its prior (contraction about 0.1); the others:
    # the data narrowed a prior 10 times wider
    sd = {m: float(post_sd.sel(measure=m)) * (1.05 if m == "looked_after" else 10.0) for m in measures}
    run.attrs["priors"] = json.dumps({"deprivation_effect": {"mean": dict.fromkeys(measures, 0.0), "sd": sd}})
    contraction = prior_contraction(run, "deprivation_effect")
    assert float(contraction.sel(measure="looked_after")) == pytest.approx(1 - 1 / 1.05**2)
    assert float(contraction.sel(measure="children_in_need")) == pytest.approx(0.99)
    d = D.decompose(run, from_year=2010, to_year=2020)
    assert d.not_identified == ("looked_after",)
    what = {f.title: f.sentence for f in d.findings if f.title.startswith("What changed")}
    lac = next(v for k, v in what.items() if "looked after" in k)
    cin = next(v for k, v in what.items() if "in need" in k)
    # deprivation's part is not given; with the remainder it leaves it is one figure, by hand
    both = d.draws.sel(measure="looked_after", component=["deprivation", "not_explained"]).sum("component")
    assert f"about {format_count(float(both.mean()))} (" in lac
    assert "is not explained by population or UASC, and the data cannot tell how much of that is deprivation" in lac
    assert "the change in deprivation for" not in lac
    assert "the change in deprivation for about" in cin
    gap = next(f.sentence for f in d.findings if f.title.startswith("Faster than elsewhere"))
    assert "cannot tell how much of that is deprivation (not identified)" in gap and "deprivation -" not in gap
    assert any(c.startswith("Deprivation's effect on children looked after is not identified") for c in d.caveats)
    # page one's "why" says so too, with no number for deprivation
    from bayes_lac.report.answers import _why_sentence

    why = _why_sentence(d, "Here")
    assert "from deprivation" not in why and "how much of it is deprivation, the data cannot tell" in why
    # a run that records no priors cannot be judged, and says nothing of the kind
    assert D.decompose(mixed_run(), from_year=2010, to_year=2020).not_identified == ()


# --------------------------------------------------------------------------------------------
# Charts and their tables


def test_counterfactual_paths_by_hand():
    run = published(
        make_toy_results(population=grid(40_000, 44_000), uasc=grid(10, 30), la_trend=0.0, year_step=0.0, noise_sd=0.0)
    )
    t = D.counterfactual_table(run, from_year=2012, to_year=2018)
    assert set(t["series"]) == set(D.COUNTERFACTUAL_SERIES)
    assert sorted(t["year"].unique()) == list(range(2012, 2019))
    first = t[t["year"] == 2012].set_index("series")
    for s in ("population_only", "plus_uasc", "plus_deprivation"):
        assert first.loc[s, "median"] == pytest.approx(first.loc["modelled", "median"])
    last = t[t["year"] == 2018].set_index("series")
    la = run.attrs["target_la"]
    pop = run["constant_data"]["population_0_17"].sel(la=la)
    e0 = np.exp(4.0) * float(pop.sel(year=2012)) / 10_000
    growth = float(pop.sel(year=2018) / pop.sel(year=2012))
    u = run["constant_data"]["uasc"].sel(la=la)
    assert last.loc["population_only", "median"] == pytest.approx(e0 * growth + float(u.sel(year=2012)))
    assert last.loc["plus_uasc", "median"] == pytest.approx(e0 * growth + float(u.sel(year=2018)))
    # no deprivation or supply change: the last line reaches the modelled count
    assert last.loc["plus_deprivation", "median"] == pytest.approx(last.loc["modelled", "median"])
    assert last.loc["actual", "mean"] == pytest.approx(round(last.loc["modelled", "median"]))
    cin = D.counterfactual_table(run, from_year=2012, to_year=2018, measure="children_in_need")
    assert "plus_uasc" not in set(cin["series"])


def test_waterfall_table_steps_from_start_to_end():
    d = D.decompose(mixed_run(), from_year=2010, to_year=2020)
    w = D.decomposition_table(d, measure="looked_after")
    assert list(w["component"]) == ["start", *D.ADDITIVE_COMPONENTS, "end"]
    parts = w[w["component"].isin(D.ADDITIVE_COMPONENTS)]
    np.testing.assert_allclose(parts["bar_bottom"].to_numpy()[1:], parts["bar_top"].to_numpy()[:-1])
    assert parts["bar_top"].iloc[-1] == pytest.approx(w.set_index("component").loc["end", "mean"])
    assert parts["bar_bottom"].iloc[0] == pytest.approx(w.set_index("component").loc["start", "mean"])


def test_plots_return_figures():
    run = mixed_run()
    d = D.decompose(run, from_year=2010, to_year=2020)
    for fig in (
        D.plot_counterfactuals(run, from_year=2010, to_year=2020),
        D.plot_decomposition(d, measure="child_protection"),
        D.plot_comparison(d),
    ):
        assert isinstance(fig, matplotlib.figure.Figure)
        assert fig.axes[0].has_data()


# --------------------------------------------------------------------------------------------
# Errors and the command line


@pytest.mark.parametrize("years", [(2005, 2015), (2012, 2024), (2015, 2012), (2015, 2015)])
def test_years_outside_the_run_are_refused_naming_its_years(years):
    with pytest.raises(BayesLacError, match="2010-2020"):
        D.decompose(mixed_run(), from_year=years[0], to_year=years[1])


def test_unknown_authority_and_measure_are_refused():
    with pytest.raises(UnknownAuthorityError, match="E09999999"):
        D.decompose(mixed_run(), la="E09999999", from_year=2010, to_year=2015)
    with pytest.raises(BayesLacError, match="foster_care"):
        D.decompose(mixed_run(), from_year=2010, to_year=2015, measures="foster_care")


def test_command_writes_the_csv_and_prints_the_summary(tmp_path, capsys):
    run = mixed_run()
    R.save_run(run, tmp_path / "run.nc")
    out = tmp_path / "d.csv"
    code = main(
        ["decompose", str(tmp_path / "run.nc"), "--from", "2010", "--to", "2017", "--ci-prob", "0.8", "--out", str(out)]
    )
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "la_code",
        "measure",
        "from_year",
        "to_year",
        "component",
        "mean",
        "median",
        "lower",
        "upper",
        "ci_prob",
    ]
    assert set(table["measure"]) == {"looked_after", "children_in_need", "child_protection"}
    assert (table["la_code"] == run.attrs["target_la"]).all() and (table["ci_prob"] == 0.8).all()
    assert "not explained by the measured demand factors" in capsys.readouterr().out


def test_command_names_the_run_years_for_a_bad_window(tmp_path, capsys):
    R.save_run(mixed_run(), tmp_path / "run.nc")
    code = main(
        ["decompose", str(tmp_path / "run.nc"), "--from", "2005", "--to", "2017", "--out", str(tmp_path / "d.csv")]
    )
    assert code == 2
    assert "2010-2020" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()


def test_command_refuses_an_unconverged_run_unless_allowed(tmp_path, capsys):
    run = published(make_toy_results(converged=False))
    R.save_run(run, tmp_path / "run.nc")
    args = ["decompose", str(tmp_path / "run.nc"), "--from", "2010", "--to", "2017", "--out", str(tmp_path / "d.csv")]
    assert main(args) == 2
    assert "convergence" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()
    with pytest.raises(UnconvergedFitError):
        D.decompose(run, from_year=2010, to_year=2017)
    assert main(args + ["--allow-unconverged"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err.lower()
    assert "convergence" in captured.out
    d = D.decompose(run, from_year=2010, to_year=2017, allow_unconverged=True)
    assert any("convergence" in c for c in d.caveats)


def test_published_change_beside_the_modelled_one():
    run = mixed_run()
    la = run.attrs["target_la"]
    obs = run["observed_data"].to_dataset()
    obs["reported_count"].loc[dict(measure="looked_after", la=la, year=2017)] += 40
    run["observed_data"] = xr.DataTree(obs)
    d = D.decompose(run, from_year=2010, to_year=2017)
    pub = d.published.set_index("measure").loc["looked_after"]
    seen = pub["to_count"] - pub["from_count"]
    modelled = d.table.query("measure == 'looked_after' and component == 'total'")["mean"].iloc[0]
    assert seen - modelled == pytest.approx(40, abs=2.5)  # toy counts are rounded medians
    assert "year-to-year variation" in d.findings[0].sentence
    assert f"+{round(seen - modelled)}" in d.findings[0].sentence
    w = D.decomposition_table(d, measure="looked_after").set_index("component")
    assert w.loc["end", "published"] == pub["to_count"]
    assert w.loc["start", "published"] == pub["from_count"]
    assert w["published"].drop(["start", "end"]).isna().all()
