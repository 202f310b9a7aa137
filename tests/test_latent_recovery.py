"""The latent-state model's decomposition recovers awkward truths from a real (small) fit.

One simulated panel of 10 authorities, 2011-2022, looked-after children only:

* E06990000's looked-after supply rises 5 % a year for 7 years from 2012, then stays flat (the
  surge the default model's straight-line trend could not follow: a true rise of about +96 came
  out as +14, -7 to 44, in the issue that asked for this model);
* E06990001 is created in 2018 (a reorganisation: no row before it).

Counts are large and close to Poisson (dispersion 3,000, about 80,000 children per authority)
so the surge is in the data rather than lost in their noise. The fit is small (2 chains x 300 draws after 300 tuning, the suite's sampler) and its
convergence is not read. bench/recovery_latent.py checks six such truths at the default
settings, with the gate.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_lac.analysis.decompose import decompose, shapley_split
from bayes_lac.config import RATE_PER
from bayes_lac.errors import BayesLacError, RunFileError
from bayes_lac.model import latent_fit as LF
from bayes_lac.model.data import prepare_data
from bayes_lac.model.results import log_rate_terms, run_info
from bayes_lac.model.simulate import simulate_panel, surge_then_plateau
from tests.conftest import TEST_SAMPLER

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("latent_recovery")]

YEARS = np.arange(2011, 2023)
SURGE, NEW, NEW_FROM = 0, 1, 2018


@pytest.fixture(scope="module")
def simulated():
    events = {"local": {SURGE: surge_then_plateau(YEARS, 2012)}, "starts": {NEW: NEW_FROM}}
    panel, truth = simulate_panel(
        n_la=10,
        years=(2011, 2022),
        seed=21,
        deprivation_years=None,
        uasc_gaps=False,
        events=events,
        truth={"dispersion": (3000.0,) * 3},
        population=80_000,
    )
    data = prepare_data(panel, truth["la"][SURGE], neighbours="all", measures=("looked_after",))
    run = LF.LatentFitter(sampler=TEST_SAMPLER).fit(data, draws=300, tune=300, chains=2, seed=5)
    return panel, truth, run


def true_own_path_part(panel, truth, i: int, a: int, b: int) -> float:
    """The Shapley part of authority `i`'s own path in its true looked-after change a -> b."""
    ta, tb = (int(np.flatnonzero(YEARS == y)[0]) for y in (a, b))
    rows = panel[panel["la_code"] == truth["la"][i]].set_index("year")
    pop = rows["population_0_17"]
    dep = rows["deprivation"]
    start = np.exp(truth["log_rate"][0, i, ta]) * pop[a] / RATE_PER
    ratios = {
        "population": np.log(pop[b] / pop[a]),
        "deprivation": truth["deprivation_effect"][0] * (dep[b] - dep[a]),
        "supply_national": truth["year_effect"][0, tb] - truth["year_effect"][0, ta],
        "supply_local": truth["la_trend"][i, 0] * (b - a) + truth["local_shift"][i, tb] - truth["local_shift"][i, ta],
    }
    parts = shapley_split(xr.DataArray(start), {k: xr.DataArray(v) for k, v in ratios.items()})
    return float(parts["supply_local"])


def test_a_local_surge_then_plateau_is_the_authoritys_own_path(simulated):
    panel, truth, run = simulated
    code = truth["la"][SURGE]
    d = decompose(run, code, 2011, 2022, measures="looked_after", allow_unconverged=True)
    local = d.table.set_index("component").loc["supply_local"]
    expected = true_own_path_part(panel, truth, SURGE, 2011, 2022)
    assert expected > 60  # the surge is large: the check below means something
    assert local["lower"] <= expected <= local["upper"]
    # found, not shrunk away to the others' path
    assert local["lower"] > 0
    assert local["mean"] > 0.6 * expected
    assert d.latent
    assert "year-to-year noise around the model's path" in d.findings[0].sentence


def test_an_authority_created_mid_panel_has_no_path_before_it(simulated):
    _, truth, run = simulated
    code = truth["la"][NEW]
    own = log_rate_terms(run, la=code)["trend"].sel(measure="looked_after")
    before = own.sel(year=[y for y in YEARS if y < NEW_FROM])
    after = own.sel(year=[y for y in YEARS if y >= NEW_FROM])
    assert bool(before.isnull().all())
    assert bool(after.notnull().all())
    with pytest.raises(BayesLacError, match=str(NEW_FROM)):
        decompose(run, code, 2014, 2020, measures="looked_after", allow_unconverged=True)


def test_counterfactual_paths_of_a_latent_run_cover_the_window_only(simulated):
    from bayes_lac.analysis.decompose import counterfactual_table

    _, truth, run = simulated
    table = counterfactual_table(run, truth["la"][SURGE], 2014, 2020)
    for series, rows in table.groupby("series"):
        assert sorted(rows["year"]) == list(range(2014, 2021)), series
    modelled = table[table["series"] == "modelled"]
    assert modelled[["mean", "lower", "upper"]].notna().all().all()
    # the population-only line grows the 2014 modelled count with the child population alone
    only = table[table["series"] == "population_only"].set_index("year")["mean"]
    assert only[2014] == pytest.approx(modelled.set_index("year")["mean"][2014])


def test_deprivation_is_called_not_identified_when_its_posterior_is_its_prior(simulated):
    import json

    from bayes_lac.analysis.decompose import deprivation_not_identified

    _, _, run = simulated
    posterior_sd = float(run["posterior"]["deprivation_within"].std())
    for prior_sd, expected in ((100 * posterior_sd, ()), (1.05 * posterior_sd, ("looked_after",))):
        edited = run.copy()
        priors = json.loads(run.attrs["priors"])
        priors["deprivation_within"] = [0.17, {"looked_after": prior_sd}]
        edited.attrs["priors"] = json.dumps(priors)
        assert deprivation_not_identified(edited, ["looked_after"]) == expected


def test_an_authoritys_states_do_not_depend_on_which_others_are_asked_for(simulated, monkeypatch):
    _, truth, run = simulated
    one = LF.latent_terms(run, truth["la"][SURGE])["trend"]
    two = LF.latent_terms(run, [truth["la"][3], truth["la"][SURGE]])["trend"].sel(la=truth["la"][SURGE])
    np.testing.assert_array_equal(one.values, two.values)
    # nor on how the authorities are batched: every authority, 3 at a time and all in one batch
    monkeypatch.setattr(LF, "STATE_BATCH", 3)
    small = LF.latent_terms(run)["trend"]
    monkeypatch.setattr(LF, "STATE_BATCH", 100)
    whole = LF.latent_terms(run)["trend"]
    np.testing.assert_array_equal(small.values, whole.values)
    np.testing.assert_array_equal(whole.sel(la=truth["la"][SURGE]).values, one.values)
    # and keeping only some years keeps those years' draws
    kept = LF.latent_terms(run, truth["la"][SURGE], years=[2014, 2020])["trend"]
    np.testing.assert_array_equal(kept.values, one.sel(year=[2014, 2020]).values)


def test_forecasts_of_a_latent_run_start_where_the_authority_is(simulated):
    from bayes_lac.analysis.forecast import forecast

    panel, truth, run = simulated
    code = truth["la"][SURGE]
    fc = forecast(run, la=code, horizon=3, scenarios=("trend", "population-only"), seed=1)
    again = forecast(run, la=code, horizon=3, scenarios=("trend", "population-only"), seed=1)
    np.testing.assert_array_equal(fc.data["predicted"].values, again.data["predicted"].values)
    last = float(panel[(panel["la_code"] == code) & (panel["year"] == 2022)]["looked_after"].iloc[0])
    first_year = fc.data["predicted"].sel(measure="looked_after", scenario="trend", year=2023)
    assert abs(float(first_year.median()) / last - 1) < 0.15
    # population-only holds each draw's rate: expected count over population is flat
    held = fc.data["expected"].sel(measure="looked_after", scenario="population-only")
    ratio = (held / fc.data["population_0_17"]).values
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-12)
    assert any("damped local trend (children looked after" in a for a in fc.assumptions)
    assert not any("persistence" in a for a in fc.assumptions)
    # costs take its forecast as they take the default model's: children x unit cost
    from bayes_lac.analysis.costs import costs

    priced = costs(fc, 1000.0)
    children = priced.data["children"].sel(scenario="trend")
    predicted = fc.data["predicted"].sel(measure="looked_after", scenario="trend")
    np.testing.assert_array_equal(children.values, predicted.values)
    real = priced.data["cost_real"].sel(scenario="trend") / children
    assert float(real.min()) > 0 and np.allclose(real.values, float(real.values[0, 0]))


def test_analyses_not_ported_to_the_latent_model_refuse_its_run(simulated):
    from bayes_lac.model.diagnostics import require_converged

    _, _, run = simulated
    with pytest.raises(RunFileError, match="bayes-lac fit --model default for the others"):
        run_info(run)
    with pytest.raises(RunFileError, match="latent-state model"):
        require_converged(run, allow_unconverged=True)


def test_a_saved_latent_run_is_read_by_the_commands_ported_to_it(simulated, tmp_path, capsys):
    import pandas as pd

    from bayes_lac.cli import main
    from bayes_lac.model.results import load_run, save_run

    panel, truth, run = simulated
    path = tmp_path / "latent.nc"
    save_run(run, path)
    back = load_run(path, allow_latent=True)
    assert back.attrs["model"] == "latent"
    with pytest.raises(RunFileError, match="latent-state model"):
        load_run(path)
    code = truth["la"][SURGE]
    common = ["--la", code, "--allow-unconverged"]
    assert (
        main(["decompose", str(path), "--from", "2012", "--to", "2022", "--out", str(tmp_path / "d.csv"), *common]) == 0
    )
    table = pd.read_csv(tmp_path / "d.csv")
    assert set(table["component"]) >= {"supply_local", "supply_national", "total"}
    assert main(["forecast", str(path), "--horizon", "2", "--out", str(tmp_path / "f.csv"), *common]) == 0
    assert "damped local trend" in capsys.readouterr().out
    # prior sensitivity: its power-scaling, one row per prior it samples
    assert main(["sensitivity", str(path), "--out", str(tmp_path / "s.csv")]) == 0
    power = pd.read_csv(tmp_path / "s.csv")
    assert {"series_sd", "level_share", "drift", "damping"} <= set(power["parameter"])
    assert power[["prior_sensitivity", "likelihood_sensitivity"]].notna().all().all()
    # the 0.2 model's prior sets are not the latent model's: the message lists the latent ones
    argv = ["sensitivity", str(path), "--prior-sets", "weak", "--out", str(tmp_path / "w.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "latent prior set 'weak'" in err and "national, no-deprivation" in err
    assert not (tmp_path / "w.csv").exists()
    argv = ["sensitivity", str(path), "--refits", "no-such-choice", "--out", str(tmp_path / "w.csv")]
    assert main(argv) == 2 and "unknown refit 'no-such-choice'" in capsys.readouterr().err
    # a refit of the forecast's assumption only (future UASC at 0.1 % of children): the comparison
    # beside the run's own, and the power-scaling table beside it
    argv = ["sensitivity", str(path), "--refits", "uasc-nts", "--out", str(tmp_path / "r.csv")]
    assert main(argv) == 0
    refits = pd.read_csv(tmp_path / "r.csv")
    assert set(refits["choice"]) == {"as fitted", "uasc-nts"}
    moved = refits[(refits["choice"] == "uasc-nts") & (refits["shift"] != 0)]
    assert set(moved["conclusion"]) <= {"forecast_5", "forecast_10", "cost_5", "cost_10"} and len(moved)
    assert set(moved["measure"]) == {"looked_after"}
    assert (tmp_path / "r_power_scaling.csv").exists()
