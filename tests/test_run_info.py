"""Facts about a run are read once (`run_info`), and loading a run re-runs the convergence gate.

Runs here are toys (tests/conftest.py) saved to netCDF and edited the way a user could edit
one: attributes rewritten, a verdict flipped. No sampling.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bayes_lac import __version__
from bayes_lac.cli import main
from bayes_lac.data.neighbours import parse_neighbours
from bayes_lac.errors import RunFileError, UnknownAuthorityError
from bayes_lac.model.diagnostics import attach_diagnostics, check_convergence
from bayes_lac.model.results import RunInfo, load_run, run_info, save_run
from tests.conftest import make_toy_results


def _published(run: xr.DataTree, first_years: dict[str, int] | None = None) -> xr.DataTree:
    """The toy with modelled counts from `first_years[la]` (default its first year) on."""
    obs = run["observed_data"].to_dataset()
    years = obs["year"].values
    counts = np.full(obs["modelled_count"].shape, 100.0)
    for i, la in enumerate(obs["la"].values):
        start = (first_years or {}).get(str(la), int(years[0]))
        counts[:, i, years < start] = np.nan
    obs["modelled_count"] = (obs["modelled_count"].dims, counts)
    obs["reported_count"] = (obs["reported_count"].dims, counts + 10)
    run["observed_data"] = xr.DataTree(obs)
    return run


def _save(run: xr.DataTree, path, **attrs) -> str:
    """Save `run` with some attributes rewritten (as a user editing the file would)."""
    edited = run.copy()
    edited.attrs.update(attrs)
    save_run(edited, path)
    return str(path)


# -- RunInfo ----------------------------------------------------------------------------------


def test_run_info_holds_the_facts_of_a_run():
    run = _published(make_toy_results(n_la=4, years=(2012, 2020)), {"E06009002": 2016})
    info = run_info(run)
    assert isinstance(info, RunInfo)
    assert info.target_la == "E06009000"
    assert info.authorities == ("E06009000", "E06009001", "E06009002", "E06009003")
    assert info.years == tuple(range(2012, 2021)) and (info.first_year, info.last_year) == (2012, 2020)
    assert info.reference_year == 2020 and info.deprivation_centre == 20.0
    assert info.measures == ("looked_after", "children_in_need", "child_protection")
    assert info.comparison == "list" and info.neighbours == ("E06009001", "E06009002", "E06009003")
    assert info.converged and info.diagnostics.converged and info.version == __version__
    assert info.la_name("E06009001") == "Area 1"
    # the first year whose count is in the likelihood, per authority and measure
    assert info.first_data_year["E06009000"]["looked_after"] == 2012
    assert info.first_data_year["E06009002"] == dict.fromkeys(info.measures, 2016)
    with pytest.raises(AttributeError):
        info.target_la = "E06009001"  # frozen


def test_first_data_year_is_none_for_a_measure_without_counts():
    run = _published(make_toy_results(n_la=3, years=(2015, 2020)))
    obs = run["observed_data"].to_dataset()
    obs["modelled_count"].loc[{"measure": "child_protection", "la": "E06009001"}] = np.nan
    run["observed_data"] = xr.DataTree(obs)
    info = run_info(run)
    assert info.first_data_year["E06009001"]["child_protection"] is None
    assert info.first_data_year["E06009001"]["looked_after"] == 2015


def test_neighbours_of_the_target_and_of_another_authority():
    info = run_info(make_toy_results(n_la=4))
    assert info.neighbours_of("E06009000") == info.neighbours
    assert info.neighbours_of("E06009002") == ("E06009000", "E06009001", "E06009003")
    with pytest.raises(UnknownAuthorityError, match="E06999999"):
        info.neighbours_of("E06999999")
    assert info.neighbours_setting == ("E06009001", "E06009002", "E06009003")


def test_every_analysis_uses_the_run_neighbours():
    """decompose, forecast's converge-neighbours and the report's comparison agree on one list."""
    from bayes_lac.analysis.decompose import decompose
    from bayes_lac.analysis.forecast import _neighbour_rates
    from bayes_lac.report.board import comparison_neighbours

    run = _published(make_toy_results(n_la=5, years=(2012, 2020)))
    # a run whose neighbours are a subset of the modelled authorities (as in a national run)
    run.attrs["comparison"] = "all"
    run.attrs["neighbours"] = json.dumps(["E06009003", "E06009001"])
    expected = ("E06009003", "E06009001")
    assert run_info(run).neighbours == expected
    assert decompose(run, from_year=2012, to_year=2020).neighbours == expected
    assert tuple(_neighbour_rates(run, 2020, ["looked_after"], "E06009000")[1]) == expected
    assert tuple(comparison_neighbours(run, "E06009000")[0]) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021", "2021"),
        (2025, "2025"),
        (" ALL ", "all"),
        ("E06000034, E06000035,,E06000034", ("E06000034", "E06000035")),
        (["E06000035", "E09000004"], ("E06000035", "E09000004")),
    ],
)
def test_parse_neighbours_reads_every_form_of_the_setting(value, expected):
    assert parse_neighbours(value) == expected


@pytest.mark.parametrize("value", ["", " , ", [], "2019"])
def test_parse_neighbours_refuses_an_empty_setting_or_an_unknown_model_year(value):
    with pytest.raises(UnknownAuthorityError, match="--neighbours"):
        parse_neighbours(value)


def test_national_run_neighbours_are_the_targets_dfe_statistical_neighbours():
    from bayes_lac.config import BUNDLED_PANEL, THURROCK_CODE
    from bayes_lac.data.neighbours import statistical_neighbours
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.data import prepare_data

    if not BUNDLED_PANEL.exists():
        pytest.skip("no bundled panel")
    data = prepare_data(load_panel(), THURROCK_CODE, "all", until=2020)
    assert len(data.la) > 100
    assert data.neighbours == [c for c in statistical_neighbours(THURROCK_CODE, 2021) if c in data.la]
    assert json.loads(data.attrs()["neighbours"]) == data.neighbours
    assert data.attrs()["panel_name"] == "panel.csv"


# -- tampered attributes: one clear error -----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("priors", "{not json", "priors"),
        ("reference_year", "abc", "reference_year"),
        ("reference_year", "1990", "outside its years"),
        ("deprivation_centre", "nan", "deprivation_centre"),
        ("measures", '["looked_after", "foster_care"]', "measures"),
        ("neighbours", '["E06999999"]', "E06999999"),
        ("comparison", "neighbours-2019", "comparison"),
        ("diagnostics", "[]", "diagnostics"),
        ("converged", "yes", "converged"),
        ("target_la", "E06999999", "target_la"),
    ],
)
def test_tampered_attribute_is_refused_with_a_message_naming_it(tmp_path, key, value, expected):
    path = _save(make_toy_results(), tmp_path / "run.nc", **{key: value})
    with pytest.raises(RunFileError, match=expected) as err:
        load_run(path)
    assert str(err.value).startswith(str(path))


@pytest.mark.parametrize(("key", "value"), [("priors", "not json"), ("reference_year", "abc")])
def test_cli_turns_a_tampered_run_into_one_line_and_status_2(tmp_path, capsys, key, value):
    path = _save(make_toy_results(), tmp_path / "run.nc", **{key: value})
    status = main(["forecast", path, "--horizon", "2", "--out", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err and key in err
    assert not (tmp_path / "f.csv").exists()


def test_run_from_an_older_minor_version_is_refused(tmp_path):
    path = _save(make_toy_results(), tmp_path / "old.nc", bayes_lac_version="0.1.4")
    with pytest.raises(RunFileError, match=r"written by bayes_lac 0\.1\.4.*Refit"):
        load_run(path)


def test_run_from_release_0_2_is_refused_with_why(tmp_path):
    # 0.3 is a new major version of the run: its default model is the latent-state model
    path = _save(make_toy_results(), tmp_path / "v02.nc", bayes_lac_version="0.2.0")
    with pytest.raises(RunFileError, match=r"v02\.nc was written by bayes_lac 0\.2\.0.*latent-state model.*Refit"):
        load_run(path)
    status = main(["forecast", str(path), "--horizon", "2", "--out", str(tmp_path / "f.csv")])
    assert status == 2 and not (tmp_path / "f.csv").exists()


def test_run_with_a_version_that_is_not_one_is_refused(tmp_path):
    path = _save(make_toy_results(), tmp_path / "odd.nc", bayes_lac_version="test")
    with pytest.raises(RunFileError, match="unknown version"):
        load_run(path)


def test_run_from_a_later_patch_release_is_read(tmp_path):
    major, minor, _ = __version__.split(".")
    path = _save(make_toy_results(), tmp_path / "patch.nc", bayes_lac_version=f"{major}.{minor}.99")
    assert run_info(load_run(path)).version == f"{major}.{minor}.99"


# -- the gate recomputes ----------------------------------------------------------------------


def _stuck_chain(shift: float = 0.015) -> xr.DataTree:
    """A toy whose second chain sits apart in ``intercept`` (R-hat about 1.3), honestly marked."""
    run = make_toy_results()
    post = run["posterior"].to_dataset()
    post["intercept"] = post["intercept"] + xr.DataArray([0.0, shift], dims="chain")
    run["posterior"] = xr.DataTree(post)
    attach_diagnostics(run)
    return run


def test_edited_run_claiming_convergence_with_rhat_1_3_is_refused(tmp_path):
    run = _stuck_chain()
    diag = run_info(run).diagnostics
    assert not diag.converged and 1.25 < diag.max_rhat < 1.4
    # a user edits two attributes to make it pass
    claimed = json.loads(run.attrs["diagnostics"]) | {"converged": True, "max_rhat": 1.001, "problems": []}
    path = _save(run, tmp_path / "edited.nc", converged="true", diagnostics=json.dumps(claimed))
    with pytest.raises(RunFileError, match=rf"marked converged.*R-hat {diag.max_rhat:.3f} for intercept"):
        load_run(path)


def test_edited_flag_alone_disagrees_with_the_stored_diagnostics(tmp_path):
    path = _save(_stuck_chain(), tmp_path / "flag.nc", converged="true")
    with pytest.raises(RunFileError, match="'converged' is 'true' but its stored diagnostics say not converged"):
        load_run(path)


def test_run_marked_unconverged_whose_draws_pass_is_refused(tmp_path):
    run = make_toy_results()
    failed = json.loads(run.attrs["diagnostics"]) | {"converged": False, "problems": ["made up"]}
    path = _save(run, tmp_path / "down.nc", converged="false", diagnostics=json.dumps(failed))
    with pytest.raises(RunFileError, match="marked not converged, but its draws pass"):
        load_run(path)


def test_loaded_run_carries_the_recomputed_diagnostics(tmp_path):
    run = _stuck_chain()
    stored = json.loads(run.attrs["diagnostics"]) | {"max_rhat": 1.02}  # numbers edited, verdict kept
    back = load_run(_save(run, tmp_path / "numbers.nc", diagnostics=json.dumps(stored)))
    assert run_info(back).diagnostics == check_convergence(back)
    assert run_info(back).diagnostics.max_rhat > 1.25


def test_cli_refuses_the_edited_run_with_one_line(tmp_path, capsys):
    run = _stuck_chain()
    claimed = json.loads(run.attrs["diagnostics"]) | {"converged": True, "problems": []}
    path = _save(run, tmp_path / "edited.nc", converged="true", diagnostics=json.dumps(claimed))
    out = tmp_path / "d.csv"
    status = main(["decompose", path, "--from", "2015", "--to", "2020", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "R-hat" in err and not out.exists()


def _counting_gate(monkeypatch) -> list:
    """Count the gate's recomputations in `load_run` (each call appends the run's target)."""
    import bayes_lac.model.diagnostics as diagnostics

    calls, real = [], diagnostics.check_convergence

    def counted(results):
        calls.append(results.attrs["target_la"])
        return real(results)

    monkeypatch.setattr(diagnostics, "check_convergence", counted)
    return calls


def test_a_run_as_fitted_is_loaded_on_its_recorded_verdict_without_recomputing(tmp_path, monkeypatch):
    run = make_toy_results()
    path = _save(run, tmp_path / "run.nc")
    calls = _counting_gate(monkeypatch)
    back = load_run(path)
    assert calls == []
    assert (
        back.attrs["diagnostics"] == run.attrs["diagnostics"] and back.attrs["gate_digest"] == run.attrs["gate_digest"]
    )
    # and the recorded verdict is the gate's on the loaded draws
    assert run_info(back).diagnostics == check_convergence(back)


def _edit_a_draw(run):
    post = run["posterior"].to_dataset()
    post["intercept"][0, 0, 0] = post["intercept"][0, 0, 0] + 1e-9
    run["posterior"] = xr.DataTree(post)


def _add_a_divergence(run):
    stats = run["sample_stats"].to_dataset()
    stats["diverging"][1, 7] = True
    run["sample_stats"] = xr.DataTree(stats)


def _rename_an_authority(run):
    post = run["posterior"].to_dataset()
    run["posterior"] = xr.DataTree(post.assign_coords(la=[*post["la"].values[:-1], "E06009999"]))


def _edit_the_energy(run):
    stats = run["sample_stats"].to_dataset()
    stats["energy"][0, 3] = stats["energy"][0, 3] + 0.5
    run["sample_stats"] = xr.DataTree(stats)


def _edit_a_number(run):
    run.attrs["diagnostics"] = json.dumps(json.loads(run.attrs["diagnostics"]) | {"max_rhat": 1.0001})


@pytest.mark.parametrize(
    "edit, refused",
    [
        (_edit_a_draw, False),
        (_add_a_divergence, True),
        (_rename_an_authority, False),
        (_edit_the_energy, False),
        (_edit_a_number, False),
    ],
    ids=["a-draw", "a-divergence", "a-label", "the-energy", "a-recorded-number"],
)
def test_any_edit_after_the_fit_makes_load_run_recompute_the_gate(tmp_path, monkeypatch, edit, refused):
    run = make_toy_results()
    edit(run)  # after attach_diagnostics: the recorded digest no longer matches
    path = _save(run, tmp_path / "edited.nc")
    calls = _counting_gate(monkeypatch)
    if refused:
        with pytest.raises(RunFileError, match="marked converged, but its draws fail.*1 divergent transition"):
            load_run(path)
    else:
        back = load_run(path)
        assert run_info(back).diagnostics == check_convergence(back)
        # the recomputed verdict now carries its own digest: a second load does not recompute
        save_run(back, tmp_path / "again.nc")
        load_run(tmp_path / "again.nc")
    assert calls == ["E06009000"]


def test_a_changed_gate_recomputes_the_verdict_of_a_run_as_fitted(tmp_path, monkeypatch):
    import bayes_lac.model.diagnostics as diagnostics

    path = _save(make_toy_results(), tmp_path / "run.nc")
    # a stricter threshold: the recorded digest no longer matches, and the new gate judges
    monkeypatch.setattr(diagnostics, "MIN_ESS", 10**6)
    with pytest.raises(RunFileError, match="marked converged, but its draws fail.*bulk ESS"):
        load_run(path)
    monkeypatch.undo()
    calls = _counting_gate(monkeypatch)
    # a change to the gate's code (its module's source) does the same
    monkeypatch.setattr(diagnostics, "_gate_source", lambda: b"another gate")
    load_run(path)
    assert calls == ["E06009000"]


def test_load_run_reads_only_the_groups_an_analysis_needs(tmp_path):
    from bayes_lac.model.results import ANALYSIS_GROUPS

    run = make_toy_results()
    run["log_likelihood"] = xr.DataTree(
        xr.Dataset({"modelled_count": (("chain", "draw", "obs"), np.zeros((2, 500, 4)))})
    )
    # a sampler statistic the gate does not read (nutpie records about twenty)
    stats = run["sample_stats"].to_dataset()
    run["sample_stats"] = xr.DataTree(stats.assign(step_size=(("chain", "draw"), np.full((2, 500), 0.1))))
    path = _save(run, tmp_path / "run.nc")
    full, light = load_run(path), load_run(path, groups=ANALYSIS_GROUPS)
    assert "log_likelihood" in full.children and "log_likelihood" not in light.children
    assert set(ANALYSIS_GROUPS) <= set(light.children)
    assert dict(light.attrs) == dict(full.attrs)
    xr.testing.assert_identical(light["posterior"].to_dataset(), full["posterior"].to_dataset())
    # of the sampler statistics, only what the gate reads; the same diagnostics from them
    assert "step_size" in full["sample_stats"] and set(light["sample_stats"].data_vars) == {"diverging", "energy"}
    xr.testing.assert_identical(light["sample_stats"]["energy"], full["sample_stats"]["energy"])
    assert json.loads(light.attrs["diagnostics"]) == json.loads(full.attrs["diagnostics"])
    # the gate runs whatever is read
    edited = _save(_stuck_chain(), tmp_path / "edited.nc", converged="true")
    with pytest.raises(RunFileError, match="converged"):
        load_run(edited, groups=ANALYSIS_GROUPS)
