"""Flows: the reconciliation table, the stock recursion and its split, the flows model's graph,
its run files and CLI errors. Fits live in test_flows_recovery.py."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis.flows import (
    COMPONENTS,
    _route_probabilities,
    flows_split,
    reconciliation_finding,
    reconciliation_table,
    shapley_flows,
    stock_path,
)
from bayes_lac.cli import main
from bayes_lac.errors import PanelError, RunFileError
from bayes_lac.model.flows import ROUTES, build_flows_model, load_flows_run, prepare_flows, save_flows_run
from bayes_lac.model.flows_simulate import simulate_flows_panel
from tests.conftest import made_flows_run, python_evaluation


def _panel(**changes) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "la_code": ["E06000034"] * 3,
            "la_name": ["Thurrock"] * 3,
            "year": [2015, 2016, 2017],
            "looked_after": [284.0, 333.0, 333.0],
            "started": [129.0, 193.0, 199.0],
            "ceased": [131.0, 146.0, 200.0],
        }
    )
    for col, value in changes.items():
        rows[col] = value
    return rows


def test_reconciliation_gap_is_stock_change_minus_net_flow_and_blank_never_filled():
    table = reconciliation_table(_panel())
    row = table[table["year"] == 2016].iloc[0]
    assert row["stock_change"] == 49 and row["started_minus_ceased"] == 47 and row["gap"] == 2
    assert row["gap_share_of_start"] == pytest.approx(2 / 284)
    first = table[table["year"] == 2015].iloc[0]
    assert np.isnan(first["gap"]) and first["note"] == "not published: looked_after of the year before"


def test_reconciliation_does_not_bridge_a_missing_year():
    panel = _panel().drop(index=1)  # no 2016 row: 2017 has no stock at its start
    table = reconciliation_table(panel)
    assert np.isnan(table.loc[table["year"] == 2017, "gap"]).all()


def test_reconciliation_finding_reports_the_gap_with_its_size():
    finding = reconciliation_finding(reconciliation_table(_panel()), "E06000034")
    assert "children, not episodes" in finding.sentence and "Thurrock" in finding.sentence
    assert len(finding.table) == 2


def test_reconciliation_needs_started_and_ceased():
    with pytest.raises(PanelError, match="no started column"):
        reconciliation_table(_panel().drop(columns=["started"]))


def test_stock_path_obeys_the_identity_year_by_year():
    pop = np.array([40_000.0, 40_000.0, 41_000.0])
    rate, p = np.array([25.0, 30.0, 28.0]), np.array([0.4, 0.35, 0.45])
    path = stock_path(200.0, pop, rate, p)
    previous = 200.0
    for t in range(3):
        entries = pop[t] * rate[t] / 10_000
        exits = p[t] * (previous + entries)
        assert path[t] == pytest.approx(previous + entries - exits)
        previous = path[t]


def _toy(n=4, years=6, seed=0):
    rng = np.random.default_rng(seed)
    lam = 25 * np.exp(rng.normal(0, 0.1, (n, years)))
    exit_p = 0.4 * np.exp(rng.normal(0, 0.05, (n, years)))
    shares = rng.uniform(0.05, 0.2, (n, len(ROUTES), 1, years))
    probs = _route_probabilities(exit_p[:, None], shares)[:, 0]
    return lam, exit_p, probs


def test_shapley_players_add_up_to_the_modelled_change_less_the_baseline():
    lam, _, probs = _toy()
    parts = shapley_flows(np.full(4, 300.0), 40_000.0, lam, probs)
    players = parts["entries"] + sum(parts[r] for r in (*ROUTES, "other"))
    assert np.allclose(players, parts["modelled_change"] - parts["baseline"])


def test_shapley_gives_exits_nothing_when_exit_probabilities_never_move():
    lam, _, probs = _toy()
    flat = np.repeat(probs[..., :1], probs.shape[-1], axis=-1)
    parts = shapley_flows(np.full(4, 300.0), 40_000.0, lam, flat)
    for route in (*ROUTES, "other"):
        assert np.allclose(parts[route], 0.0)
    held = stock_path(300.0, 40_000.0, np.repeat(lam[:, :1], 5, axis=1), flat[:, :, 1:].sum(axis=1))[:, -1]
    assert np.allclose(parts["entries"], parts["modelled_change"] + 300.0 - held)


def test_flows_data_refuses_more_leavers_than_children_at_risk():
    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2013), seed=2)
    row = (panel["la_code"] == truth["la"][1]) & (panel["year"] == 2012)
    panel.loc[row, "ceased"] = 10_000
    with pytest.raises(PanelError, match=rf"{truth['la'][1]} 2012: ceased \(10,000\) is more than"):
        prepare_flows(panel, truth["la"][0], neighbours=truth["la"][1:])


def test_flows_data_needs_started_and_ceased():
    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2013), seed=2)
    with pytest.raises(PanelError, match="no ceased column"):
        prepare_flows(panel.drop(columns=["ceased"]), truth["la"][0], neighbours=truth["la"][1:])


@pytest.mark.slow  # builds and evaluates the symbolic gradient: about 10 s
def test_flows_log_density_and_gradient_are_finite_and_blank_routes_are_masked():
    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=3)
    panel.loc[panel["year"] == 2012, "ceased_returned_home"] = np.nan
    data = prepare_flows(panel, truth["la"][0], neighbours=truth["la"][1:])
    assert data.route_mask()[0, :, 2].sum() == 0 and data.route_mask()[1, :, 2].all()
    model = build_flows_model(data)
    point = model.initial_point()
    with python_evaluation() as mode:
        # one term per variable, summed here: pytensor's Python Add takes at most 32 operands,
        # and this model's log density adds more terms than that (with the Jacobians)
        terms = model.compile_logp(sum=False, mode=mode)(point)
        assert np.isfinite(sum(float(np.sum(t)) for t in terms))
        grad = model.compile_dlogp(mode=mode)(point)
    assert np.isfinite(grad).all()
    assert len(model["ceased_by_route"].owner.inputs) and model.rvs_to_values


def _fake_run(truth: dict, panel: pd.DataFrame, draws: int = 40) -> xr.DataTree:
    """A flows run whose posterior is the truth with a little noise (no fit)."""

    data = prepare_flows(panel, truth["la"][0], neighbours=truth["la"][1:])
    rng = np.random.default_rng(0)

    def noisy(x):
        return xr.DataArray(x[None, None] * np.exp(rng.normal(0, 0.01, (1, draws, *x.shape))))

    post = xr.Dataset(
        {
            "entry_rate": noisy(truth["entry_rate"]).rename({"dim_2": "la", "dim_3": "year"}),
            "exit_probability": noisy(truth["exit_probability"]).rename({"dim_2": "la", "dim_3": "year"}),
            "route_share": noisy(truth["route_share"]).rename({"dim_2": "route", "dim_3": "la", "dim_4": "year"}),
        }
    ).rename({"dim_0": "chain", "dim_1": "draw"})
    post = post.assign_coords(la=data.la, year=data.year, route=list(ROUTES))
    return made_flows_run(data, post)


def test_flows_run_attrs_are_read_once_and_a_broken_one_is_named(tmp_path, capsys):
    from bayes_lac.model.flows import flows_run_info

    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=6)
    run = _fake_run(truth, panel)
    info = flows_run_info(run)
    assert info.target_la == truth["la"][0] and info.authorities == tuple(truth["la"])
    assert (info.first_year, info.last_year) == (2010, 2014) and info.converged and info.problem == ""
    run.attrs.update({"converged": "false", "max_rhat": 1.2, "min_ess_bulk": 35.0, "divergences": 3})
    assert flows_run_info(run).problem == (
        "the flows run failed its convergence diagnostics (max R-hat 1.200, need <= 1.01; "
        "min bulk ESS 35, need >= 400; 3 divergences, need 0)"
    )
    path = save_flows_run(run, tmp_path / "unconverged.nc")
    argv = ["flows", str(path), "--from", "2011", "--to", "2014", "--out", str(tmp_path / "split.csv")]
    assert main(argv) == 2 and not (tmp_path / "split.csv").exists()
    assert f"{path}: {flows_run_info(run).problem}; refit with more draws" in capsys.readouterr().err
    assert main([*argv, "--allow-unconverged"]) == 0
    assert "the numbers are provisional" in capsys.readouterr().err
    for name, value, message in [
        ("converged", "yes", "attr 'converged' is not what a flows run holds: expected 'true' or 'false'"),
        ("first_year", "2010.5", "attr 'first_year' is not what a flows run holds"),
        ("target_la", "E06999999", "target_la E06999999 is not one of its authorities"),
    ]:
        broken = _fake_run(truth, panel)
        broken.attrs[name] = value
        path = tmp_path / f"{name}.nc"
        broken.to_netcdf(path, engine="h5netcdf")
        with pytest.raises(RunFileError, match=f"^{re.escape(str(path))}: .*{re.escape(message)}"):
            load_flows_run(path)
    del run.attrs["divergences"]
    with pytest.raises(RunFileError, match="lacks its attr 'divergences'"):
        flows_run_info(run)


def test_split_table_has_every_component_for_la_neighbours_and_england():
    panel, truth = simulate_flows_panel(n_la=4, years=(2010, 2016), scenario="entries", change_from=2012, seed=4)
    split = flows_split(_fake_run(truth, panel), from_year=2011, to_year=2016)
    assert set(split.table["area"]) == {"la", "neighbours", "england"}
    for area in ("la", "neighbours"):
        assert list(split.table.loc[split.table["area"] == area, "component"]) == list(COMPONENTS)
    la = split.table[split.table["area"] == "la"].set_index("component")
    assert la.loc["entries", "lower"] > 0  # the target's entries rose
    assert "90% credible interval" in split.findings[0].sentence


def test_split_refuses_years_outside_the_run_and_unknown_authorities():
    from bayes_lac.errors import UsageError

    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=5)
    run = _fake_run(truth, panel)
    with pytest.raises(UsageError, match="covers 2010-2014"):
        flows_split(run, from_year=2009, to_year=2014)
    with pytest.raises(UsageError, match="expected --from before --to"):
        flows_split(run, from_year=2014, to_year=2012)
    with pytest.raises(UsageError, match="not in this flows run"):
        flows_split(run, la="E06000034", from_year=2011, to_year=2014)


def test_flows_run_round_trips_and_a_stock_run_is_refused(tmp_path):
    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=6)
    run = _fake_run(truth, panel)
    path = save_flows_run(run, tmp_path / "flows.nc")
    back = load_flows_run(path)
    assert back.attrs["target_la"] == truth["la"][0]
    xr.testing.assert_allclose(back["posterior"]["entry_rate"], run["posterior"]["entry_rate"])
    other = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": ("a", [1.0])})})
    other.to_netcdf(tmp_path / "stock.nc", engine="h5netcdf")
    with pytest.raises(RunFileError, match="not a flows run"):
        load_flows_run(tmp_path / "stock.nc")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["flows", "RUN", "--from", "2017", "--to", "2012", "--out", "OUT"], "expected --from before --to"),
        (["flows", "RUN", "--from", "17", "--to", "2012", "--out", "OUT"], "expected a four-digit year"),
        (["flows", "missing.nc", "--from", "2012", "--to", "2017", "--out", "OUT"], "flows run not found"),
        (["flows", "RUN", "--from", "2012", "--to", "2017"], "the following arguments are required: --out"),
        (["fit-flows", "--draws", "0", "--out", "OUT"], "expected a whole number above 0"),
        (["flows-reconcile", "--la", "E06999999", "--out", "OUT"], "is not in the panel"),
    ],
)
def test_bad_flows_options_exit_2_with_one_line(tmp_path, capsys, argv, message):
    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=7)
    run_path = save_flows_run(_fake_run(truth, panel), tmp_path / "run.nc")
    argv = [str(run_path) if a == "RUN" else str(tmp_path / "out.csv") if a == "OUT" else a for a in argv]
    if "missing.nc" in argv:
        argv[argv.index("missing.nc")] = str(tmp_path / "missing.nc")
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err


def test_flows_command_writes_the_split_and_says_it(tmp_path, capsys):
    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=8)
    run_path = save_flows_run(_fake_run(truth, panel), tmp_path / "run.nc")
    out = tmp_path / "split.csv"
    assert main(["flows", str(run_path), "--from", "2011", "--to", "2014", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert {"entries", "exits", "exits_returned_home"} <= set(table["component"])
    printed = capsys.readouterr().out
    assert "Changes in the rate of entering care account for" in printed and str(out) in printed


def test_flows_reconcile_command_writes_the_bundled_thurrock_rows(tmp_path, capsys):
    out = tmp_path / "recon.csv"
    assert main(["flows-reconcile", "--la", "E06000034", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    thurrock = table[table["la_code"] == "E06000034"].set_index("year")
    # 2016: 284 -> 333 (+49) against 193 started - 146 ceased (+47): a gap of 2 children
    assert thurrock.loc[2016, "gap"] == 2
    assert {"E92000001"} <= set(table["la_code"]) and table["la_code"].nunique() == 12
    assert "children, not episodes" in capsys.readouterr().out


def test_exit_trends_show_published_ratios_beside_the_model_for_each_area():
    from bayes_lac.analysis.flows import exit_trends

    panel, truth = simulate_flows_panel(n_la=4, years=(2010, 2015), seed=9)
    run = _fake_run(truth, panel)
    trends = exit_trends(run)
    assert set(trends["area"]) == {"la", "neighbours", "england"}
    la = panel[panel["la_code"] == truth["la"][0]].set_index("year")
    row = trends[(trends["area"] == "la") & (trends["measure"] == "share_returned_home") & (trends["year"] == 2013)]
    assert row["observed"].iloc[0] == pytest.approx(la.loc[2013, "ceased_returned_home"] / la.loc[2013, "ceased"])
    e = panel[panel["la_code"] == "E92000001"].set_index("year")
    at_risk = e.loc[2012, "looked_after"] + e.loc[2013, "started"]
    row = trends[(trends["area"] == "england") & (trends["measure"] == "exit_probability") & (trends["year"] == 2013)]
    assert row["observed"].iloc[0] == pytest.approx(e.loc[2013, "ceased"] / at_risk)
    assert row["lower"].iloc[0] < row["observed"].iloc[0] < row["upper"].iloc[0]
    # the model's interval for the target tracks the truth (the fake posterior is the truth + 1 %)
    row = trends[(trends["area"] == "la") & (trends["measure"] == "exit_probability") & (trends["year"] == 2013)]
    assert row["median"].iloc[0] == pytest.approx(truth["exit_probability"][0, 3], rel=0.02)


def test_plot_exit_trends_draws_one_panel_per_measure():
    import matplotlib.pyplot as plt

    from bayes_lac.analysis.flows import exit_trends, plot_exit_trends

    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=10)
    fig, axes = plot_exit_trends(exit_trends(_fake_run(truth, panel)), la_name="Simulated 0")
    try:
        assert len(axes) == 2 and axes[0].get_title().startswith("Exit probability")
        assert len(axes[0].get_lines()) >= 3  # the authority, its neighbours and England (+ points)
    finally:
        plt.close(fig)


def test_flows_split_of_a_saved_run_imports_no_sampler_or_plotting(tmp_path):
    from tests.test_imports import _heavy, _modules_after

    panel, truth = simulate_flows_panel(n_la=3, years=(2010, 2014), seed=13)
    path = save_flows_run(_fake_run(truth, panel), tmp_path / "run.nc")
    modules = _modules_after(
        "from bayes_lac.model.flows import load_flows_run\n"
        "from bayes_lac.analysis.flows import flows_split\n"
        f"flows_split(load_flows_run({str(path)!r}), from_year=2011, to_year=2014)\n"
    )
    # xarray imports dask (when installed) to decode any string coordinate of a netCDF file
    heavy = [m for m in _heavy(modules) if m != "dask"]
    assert not heavy, heavy
