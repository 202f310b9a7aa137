"""Forecasts in flow terms (`bayes_lac.analysis.flows_forecast`): the stock carried forward from
entries and exits, each scenario's lever, the reconciliation term and the command line.

Runs here are made, not fitted: a simulated flows panel (`simulate_flows_panel`, whose stock obeys
the identity exactly) with a posterior at chosen values, so each check has a known answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis.flows import stock_path
from bayes_lac.analysis.flows_forecast import FlowScenario, flows_forecast
from bayes_lac.cli import main
from bayes_lac.errors import UsageError
from bayes_lac.model.flows import ROUTES, prepare_flows, save_flows_run
from bayes_lac.model.flows_simulate import simulate_flows_panel
from tests.conftest import made_flows_run

DRAWS = 400


def _made_run(panel: pd.DataFrame, truth: dict, walk: float = 0.0, dispersion: float = 1e6, shares=None) -> xr.DataTree:
    """A flows run whose every draw holds the true rates (walk scales `walk`, entry dispersion
    `dispersion`; `shares` (route, la) replaces the true route shares in every year)."""
    data = prepare_flows(panel, truth["la"][0], neighbours=truth["la"][1:])
    # the truth over the panel's years (a panel cut at a backtest origin has fewer)
    keep = np.isin(np.asarray(truth["year"]), data.year)
    truth = {
        k: (np.asarray(v)[..., keep] if k in ("entry_rate", "exit_probability", "route_share") else v)
        for k, v in truth.items()
    }
    route_share = np.asarray(truth["route_share"], float)
    if shares is not None:
        route_share = np.broadcast_to(np.asarray(shares, float)[:, :, None], route_share.shape)

    def every_draw(x, dims):
        x = np.asarray(x, float)
        return (("chain", "draw", *dims), np.broadcast_to(x, (1, DRAWS, *x.shape)).copy())

    scalars = {
        f"{part}_{name}": every_draw(value, ())
        for part in ("entry", "exit")
        for name, value in (("year_sigma", walk), ("walk_sigma", walk))
    }
    post = xr.Dataset(
        {
            "entry_rate": every_draw(truth["entry_rate"], ("la", "year")),
            "exit_probability": every_draw(truth["exit_probability"], ("la", "year")),
            "route_share": every_draw(route_share, ("route", "la", "year")),
            "entry_inv_sqrt_dispersion": every_draw(1 / np.sqrt(dispersion), ()),
            **scalars,
        },
        coords={"la": data.la, "year": data.year, "route": list(ROUTES)},
    )
    return made_flows_run(data, post)


@pytest.fixture(scope="module")
def simulated():
    return simulate_flows_panel(n_la=4, years=(2010, 2018), seed=3)


def test_with_no_walk_the_central_stock_follows_the_identity_from_the_last_published_stock(simulated):
    panel, truth = simulated
    fc = flows_forecast(_made_run(panel, truth), horizon=6, seed=1)
    stock0 = float(panel[(panel["la_code"] == truth["la"][0]) & (panel["year"] == 2018)]["looked_after"].iloc[0])
    assert fc.last_year == 2018 and fc.last_stock == stock0
    # the simulated panel obeys the identity exactly: no reconciliation gap to carry
    assert (fc.data["gap"] == 0).all()
    lam, p = truth["entry_rate"][0, -1], truth["exit_probability"][0, -1]
    pop = np.full(6, truth["population"][0, -1])
    expected = stock_path(stock0, pop, np.full(6, lam), np.full(6, p))
    mean = fc.data["stock"].sel(scenario="trend").mean("draw").values
    # binomial and Poisson noise only: the mean of 400 draws is within a few per cent of the path
    np.testing.assert_allclose(mean, expected, rtol=0.03)
    # intervals are honest about the count noise: the 90% interval of the last year is not a point
    row = fc.table[(fc.table["quantity"] == "stock") & (fc.table["year"] == 2024)].iloc[0]
    assert row["upper"] - row["lower"] > 10


def test_each_scenario_moves_only_its_lever(simulated):
    panel, truth = simulated
    run = _made_run(panel, truth, walk=0.05)
    fc = flows_forecast(run, horizon=5, scenarios=("trend", "entries-10", "exits-as-2012"), seed=2)
    rate = fc.data["entry_rate"]
    np.testing.assert_allclose(rate.sel(scenario="entries-10"), 0.9 * rate.sel(scenario="trend"))
    prob = fc.data["exit_probability"]
    np.testing.assert_allclose(prob.sel(scenario="entries-10"), prob.sel(scenario="trend"))

    # exits-as-2012: the same steps from 2012's level instead of 2018's
    def logit(x):
        return np.log(x / (1 - x))

    p12, p18 = truth["exit_probability"][0, 2], truth["exit_probability"][0, -1]
    shift = logit(prob.sel(scenario="exits-as-2012").values) - logit(prob.sel(scenario="trend").values)
    np.testing.assert_allclose(shift, logit(p12) - logit(p18), atol=1e-9)
    np.testing.assert_allclose(rate.sel(scenario="exits-as-2012"), rate.sel(scenario="trend"))
    # fewer entries, fewer children on average (the same random steps and noise stream)
    fewer = fc.data["stock"].sel(scenario="entries-10") - fc.data["stock"].sel(scenario="trend")
    assert float(fewer.isel(year=-1).mean()) < 0


def test_returns_home_at_the_neighbours_share_raises_exits_by_the_stated_factor(simulated):
    panel, truth = simulated
    q_target, q_others = 0.2, 0.4
    shares = np.tile(np.array([[q_target], [0.1], [0.1], [0.25]]), (1, 4))
    shares[0, 1:] = q_others
    run = _made_run(panel, truth, shares=shares)
    fc = flows_forecast(run, horizon=3, scenarios=("trend", "returns-home-neighbours"), seed=3)
    prob = fc.data["exit_probability"]
    factor = (1 - q_target) / (1 - q_others)
    np.testing.assert_allclose(prob.sel(scenario="returns-home-neighbours"), prob.sel(scenario="trend") * factor)
    assert any("latest year with them published" in a for a in fc.assumptions)
    # at the neighbours' own share nothing moves
    same = _made_run(panel, truth, shares=np.tile(np.array([[0.3], [0.1], [0.1], [0.25]]), (1, 4)))
    fc = flows_forecast(same, horizon=3, scenarios=("trend", "returns-home-neighbours"), seed=3)
    np.testing.assert_allclose(
        fc.data["stock"].sel(scenario="returns-home-neighbours"), fc.data["stock"].sel(scenario="trend")
    )


def test_the_published_gap_is_carried_as_a_measured_term(simulated):
    panel, truth = simulated
    shifted = panel.copy()
    target = shifted["la_code"] == truth["la"][0]
    # published stocks 2 children a year above the flows' identity, from 2010 on
    shifted.loc[target & (shifted["year"] >= 2010), "looked_after"] += 2 * (
        shifted.loc[target & (shifted["year"] >= 2010), "year"] - 2009
    )
    fc = flows_forecast(_made_run(shifted, truth), horizon=4, seed=4)
    assert (fc.data["gap"] == 2).all()
    assert any("mean (+2.0) and spread (sd 0.0) of its 9 published gaps" in a for a in fc.assumptions)


def test_scenario_names_are_read_or_refused_with_what_is_expected():
    assert FlowScenario.parse("entries+5").entries_change == pytest.approx(0.05)
    assert FlowScenario.parse("entries-12.5%").entries_change == pytest.approx(-0.125)
    assert FlowScenario.parse("exits-as-2017").exit_year == 2017
    for bad in ("entries", "exits-as-17", "more", "entries-100"):
        with pytest.raises(UsageError, match="--scenario"):
            FlowScenario.parse(bad)


def test_a_year_outside_the_run_or_an_unknown_authority_is_refused(simulated):
    panel, truth = simulated
    run = _made_run(panel, truth)
    with pytest.raises(UsageError, match="2005 is not a year of the run"):
        flows_forecast(run, scenarios=("exits-as-2005",))
    with pytest.raises(UsageError, match="not in this flows run"):
        flows_forecast(run, la="E06000034")
    with pytest.raises(UsageError, match="each scenario once"):
        flows_forecast(run, scenarios=("trend", "trend"))


def test_flows_forecast_command_writes_the_table_and_says_it(simulated, tmp_path, capsys):
    panel, truth = simulated
    path = save_flows_run(_made_run(panel, truth, walk=0.05), tmp_path / "flows.nc")
    out = tmp_path / "fc.csv"
    argv = ["flows-forecast", str(path), "--horizon", "5", "--scenario", "trend,entries-10", "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert set(table["scenario"]) == {"trend", "entries-10"} and set(table["year"]) == set(range(2019, 2024))
    assert {"stock", "started", "ceased", "gap", "entry_rate", "exit_probability"} == set(table["quantity"])
    printed = capsys.readouterr().out
    assert (
        "If 10% fewer children start to be looked after than in the trend" in printed
        and "children looked after in March 2023" in printed
    )
    # a bad scenario is one line and status 2, and writes nothing
    status = main(["flows-forecast", str(path), "--scenario", "entries", "--out", str(tmp_path / "no.csv")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--scenario 'entries'" in err
    assert not (tmp_path / "no.csv").exists()


@pytest.mark.parametrize("converged", [True, False], ids=["converged", "unconverged"])
def test_the_flows_forecaster_scores_each_authority_in_the_backtest(simulated, monkeypatch, converged):
    from bayes_lac.model.flows import FlowsModel
    from bayes_lac.studies.backtest import FlowsForecaster, backtest

    panel, truth = simulated
    fits = []

    def made_fit(self, cut, **settings):
        fits.append((self.last_year, int(cut["year"].max()), settings["draws"] * settings["chains"]))
        run = _made_run(cut, truth, walk=0.05)
        run.attrs["converged"] = "true" if converged else "false"
        return run

    monkeypatch.setattr(FlowsModel, "fit", made_fit)
    codes = list(truth["la"])
    forecaster = FlowsForecaster(neighbours=codes[1:], draws=100, chains=4)
    result = backtest(
        panel, [forecaster], origins=[2015], horizons=[1, 3], measures=("looked_after",), las=codes, progress=False
    )
    # one fit, at the origin, on the panel cut there
    assert fits == [(2015, 2015, 400)]
    if not converged:
        assert result.table.empty and result.origins["status"].tolist() == ["failed"]
        assert "flows fit at origin 2015" in result.origins["message"].iloc[0]
        return
    table = result.table.set_index(["la_code", "horizon"])
    assert len(table) == len(codes) * 2 and table["crps"].notna().all()
    observed = panel.set_index(["la_code", "year"])["looked_after"]
    for code in codes:
        for h in (1, 3):
            assert table.loc[(code, h), "observed"] == observed[(code, 2015 + h)]
    # the forecasts are the simulated flows carried on: the truth is inside most 90% intervals
    inside = (table["lower_90"] <= table["observed"]) & (table["observed"] <= table["upper_90"])
    assert inside.mean() >= 0.75


# -- invest-to-save through the flows: entries prevented, care averted from the forecast -----


def _spec(**changes):
    from dataclasses import replace

    from bayes_lac.analysis.interventions import Quantity, load_intervention

    spec = load_intervention("edge_of_care")
    q = dict(spec.quantities)
    # the file's evidence priors (no effect, deadweight, delay) off unless a test sets them
    changes = {"no_effect_probability": 0.0, "deadweight": 0.0, "delayed_share": 0.0, **changes}
    for key, value in changes.items():
        fixed = {"point": value, "low": value, "high": value, "dist": None}
        bound = 1.0 if key.endswith(("_share", "_probability")) else np.inf
        q[key] = replace(q[key], **fixed) if key in q else Quantity(name=key, upper_bound=bound, **fixed)
    # one year of care per outcome in the file's own arithmetic; fixed, so only the flows vary
    q["duration"] = replace(q["duration"], dist=None)
    return replace(spec, quantities=q)


def test_care_averted_follows_the_forecast_chance_of_leaving(simulated):
    from bayes_lac.analysis.interventions import evaluate_through_flows

    panel, truth = simulated
    p = truth["exit_probability"][0, -1]
    spec = _spec(effect=0.2, unit_cost=50_000.0, cost_per_participant=2_000.0, reach=100.0)
    result = evaluate_through_flows(spec, _made_run(panel, truth), horizon=30, seed=0)
    d = result.draws
    # 100 families x 0.2 = 20 entries prevented in the one year the service runs
    np.testing.assert_allclose(d["outcomes_prevented"], 20.0)
    # one entry prevented: each year's care averted is the mean of the averted stock at its start
    # and end, (1 - p)^t and (1 - p)^(t + 1), starting from none before the entry
    survive = (1 - p) ** np.arange(1, 31)
    years = (np.concatenate([[0.0], survive[:-1]]) + survive).sum() / 2
    np.testing.assert_allclose(d["saving_per_outcome"], 50_000.0 * years, rtol=1e-9)
    np.testing.assert_allclose(d["gross_saving"], 20 * 50_000.0 * years, rtol=1e-9)
    np.testing.assert_allclose(d["net_saving"], d["gross_saving"] - 200_000.0)
    # at the break-even effect the service pays for itself exactly
    even = float(d["break_even_effect"][0])
    again = evaluate_through_flows(
        _spec(effect=even, unit_cost=50_000.0, cost_per_participant=2_000.0, reach=100.0),
        _made_run(panel, truth),
        horizon=30,
    )
    np.testing.assert_allclose(again.draws["net_saving"], 0.0, atol=1e-6)


def test_a_service_with_no_effect_saves_nothing_through_the_flows(simulated):
    from bayes_lac.analysis.interventions import evaluate_through_flows

    panel, truth = simulated
    result = evaluate_through_flows(_spec(no_effect_probability=1.0), _made_run(panel, truth, walk=0.05), seed=1)
    assert (result.draws["gross_saving"] == 0).all() and result.prob_net_saving == 0.0


def test_a_unit_cost_per_outcome_cannot_act_through_the_flows(simulated):
    from dataclasses import replace

    from bayes_lac.analysis.interventions import evaluate_through_flows

    panel, truth = simulated
    spec = replace(_spec(), unit_cost_per="outcome")
    with pytest.raises(UsageError, match="unit cost per week or year of care"):
        evaluate_through_flows(spec, _made_run(panel, truth))


def test_intervention_command_through_the_flows(simulated, tmp_path, capsys):
    panel, truth = simulated
    path = save_flows_run(_made_run(panel, truth, walk=0.05), tmp_path / "flows.nc")
    out = tmp_path / "iv.csv"
    argv = ["intervention", "edge_of_care", "--flows-run", str(path), "--horizon", "5", "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert "gross_saving" in set(table["quantity"])
    assert "in place of the file's duration of care" in capsys.readouterr().out
    for extra, message in (
        (["--no-uncertainty"], "leave out --no-uncertainty"),
        (["--draws", "100"], "leave out --draws"),
    ):
        status = main([*argv[:-2], *extra, "--out", str(tmp_path / "no.csv")])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "no.csv").exists()


def test_the_flows_forecaster_leaves_an_authority_without_a_stock_at_the_origin_unscored(simulated, monkeypatch):
    from bayes_lac.model.flows import FlowsModel
    from bayes_lac.studies.backtest import FlowsForecaster, backtest

    panel, truth = simulated
    codes = list(truth["la"])
    blank = panel.copy()
    blank.loc[(blank["la_code"] == codes[2]) & (blank["year"] == 2015), "looked_after"] = np.nan
    monkeypatch.setattr(FlowsModel, "fit", lambda self, cut, **settings: _made_run(cut, truth))
    result = backtest(
        blank,
        [FlowsForecaster(neighbours=codes[1:], draws=100, chains=4)],
        origins=[2015],
        horizons=[1],
        measures=("looked_after",),
        las=codes,
        progress=False,
    )
    crps = result.table.set_index("la_code")["crps"]
    assert np.isnan(crps[codes[2]]) and crps.drop(codes[2]).notna().all()


def test_the_yearly_steps_have_the_model_s_variance(simulated):
    panel, truth = simulated
    run = _made_run(panel, truth)
    post = run["posterior"].to_dataset()
    # common-path steps of 0.1 and the authority's own walk of 0.2, zero-sum over 4 authorities:
    # a step's variance is 0.1^2 + (3 / 4) 0.2^2 = 0.04
    for part, sd in (("entry", 0.1), ("exit", 0.1)):
        post[f"{part}_year_sigma"] = xr.full_like(post[f"{part}_year_sigma"], sd)
        post[f"{part}_walk_sigma"] = xr.full_like(post[f"{part}_walk_sigma"], 0.2)
    run["posterior"] = xr.DataTree(post)
    fc = flows_forecast(run, horizon=2, seed=5)
    rate = fc.data["entry_rate"].sel(scenario="trend").values
    prob = fc.data["exit_probability"].sel(scenario="trend").values
    log_steps = np.diff(np.log(np.concatenate([np.full((1, DRAWS), truth["entry_rate"][0, -1]), rate])), axis=0)
    p0 = truth["exit_probability"][0, -1]
    logit = np.log(prob / (1 - prob))
    logit_steps = np.diff(np.concatenate([np.full((1, DRAWS), np.log(p0 / (1 - p0))), logit]), axis=0)
    for steps in (log_steps, logit_steps):
        np.testing.assert_allclose(steps.std(), 0.2, rtol=0.1)
        assert abs(steps.mean()) < 0.03  # no drift


def test_savings_through_the_flows_add_up_over_years_with_discounting_and_delay(simulated):
    from bayes_lac.analysis.interventions import evaluate_through_flows

    panel, truth = simulated
    p = truth["exit_probability"][0, -1]
    h = 12
    spec = _spec(
        effect=0.2, unit_cost=50_000.0, cost_per_participant=2_000.0, reach=100.0, delayed_share=0.5, delay=1.5
    )
    from dataclasses import replace

    spec = replace(spec, years=3, discount_rate=0.035)
    d = evaluate_through_flows(spec, _made_run(panel, truth), horizon=h).draws

    def care(start: float) -> np.ndarray:
        """Years of care in each of the h years of one child entering in year `start` (whole)."""
        out = np.zeros(h)
        before = 0.0
        for k in range(int(start), h):
            after = (1 - p) ** (k - start + 1)
            out[k] = (before + after) / 2
            before = after
        return out

    discount = 1.035 ** -np.arange(h)
    # 20 entries prevented a year for 3 years; half of them only delayed by 1.5 years: they
    # enter care half in the year after and half two years after
    per_entry = sum(care(t) - 0.5 * (0.5 * care(t + 1) + 0.5 * care(t + 2)) for t in range(3))
    expected = 20 * 50_000.0 * float((per_entry * discount).sum())
    np.testing.assert_allclose(d["gross_saving"], expected, rtol=1e-9)
    cost = 100 * 2_000.0 * (1 + 1.035**-1 + 1.035**-2)
    np.testing.assert_allclose(d["programme_cost"], cost, rtol=1e-12)
    np.testing.assert_allclose(d["net_saving"], expected - cost, rtol=1e-9)
