"""Prior sensitivity: power-scaling flags a wrong tight prior and not a sensible one; refits
under another prior set are compared conclusion by conclusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_lac.errors import RunFileError
from bayes_lac.studies import sensitivity as S
from tests.conftest import TEST_SAMPLER, make_toy_results

# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = pytest.mark.xdist_group("sensitivity")

# Intercept of looked_after in the simulation is 4.0 (log rate per 10,000); this prior puts
# it at 5.0 with sd 0.01: a factor of 2.7 too high, held tight.
WRONG_PRIOR = """
base = "default"
[intercept]
mean = 5.0
sd = 0.01
"""

FIT = {"draws": 200, "tune": 200, "chains": 2, "cores": 1, "seed": 11, "progressbar": False, "sampler": TEST_SAMPLER}


def _fit(panel, target, priors):
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.priors import load_priors

    # Priors passed as a loaded dict (all measures) so the single-measure fit accepts them.
    model = LACModel(target, neighbours="all", measures=("looked_after",), priors=load_priors(priors))
    return model.fit(panel, **FIT)


@pytest.fixture(scope="session")
def simulated():
    from bayes_lac.model.simulate import simulate_panel

    return simulate_panel(n_la=8, years=(2010, 2020), seed=1)


@pytest.fixture(scope="session")
def sensible_run(simulated):
    panel, truth = simulated
    run = _fit(panel, truth["la"][0], "default")
    run.attrs["prior_set"] = "default"  # the dict route records "custom"
    return run


@pytest.fixture(scope="session")
def wrong_prior_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("priors") / "wrong_intercept.toml"
    path.write_text(WRONG_PRIOR)
    return path


# -- no sampling ---------------------------------------------------------------------------


def test_diagnosis_rules_use_the_threshold():
    assert S._diagnosis(0.2, 0.2, 0.05) == "prior-data conflict"
    assert S._diagnosis(0.2, 0.01, 0.05) == "weak likelihood"
    assert S._diagnosis(0.01, 0.3, 0.05) == ""
    assert S._diagnosis(0.04, 0.04, 0.05) == ""


def test_prior_log_density_is_the_prior_file():
    from scipy import stats

    from bayes_lac.model.priors import load_priors, priors_json

    toy_results = make_toy_results(persistence=0.7)
    toy_results.attrs["priors"] = priors_json(load_priors("tight"))
    terms = S.prior_log_density(toy_results)
    post = toy_results["posterior"]
    draw = post["intercept"].isel(chain=0, draw=3)
    # tight: intercept ~ Normal(4.0, 0.3) for looked_after; dispersion cv ~ HalfNormal(0.06)
    lac = draw.sel(measure="looked_after")
    assert float(terms["intercept"].isel(chain=0, draw=3).sel(measure="looked_after")) == pytest.approx(
        stats.norm.logpdf(float(lac), 4.0, 0.3)
    )
    cv = 1 / np.sqrt(float(post["dispersion"].isel(chain=0, draw=3).sel(measure="looked_after")))
    assert float(terms["dispersion_cv"].isel(chain=0, draw=3).sel(measure="looked_after")) == pytest.approx(
        stats.halfnorm.logpdf(cv, scale=0.06)
    )
    # tight: persistence ~ Beta(10, 10)
    assert float(terms["persistence"].isel(chain=0, draw=3).sel(measure="looked_after")) == pytest.approx(
        stats.beta.logpdf(0.7, 10, 10)
    )
    # population-model terms (authority effects, random-walk steps) are not prior beliefs
    assert not {"la_intercept", "la_trend", "year_effect"} & set(terms.data_vars)


def test_power_scaling_needs_log_groups(toy_results):
    with pytest.raises(RunFileError, match="log_likelihood"):
        S.power_scaling(toy_results)


def _conclusion_rows(prior_set, median, lower, upper):
    return pd.DataFrame(
        {
            "prior_set": prior_set,
            "conclusion": ["current_rate", "forecast_5"],
            "measure": "looked_after",
            "year": [2020, 2025],
            "units": ["per 10,000 children aged 0-17", "children"],
            "mean": median,
            "median": median,
            "lower": lower,
            "upper": upper,
            "ci_prob": 0.9,
            "converged": True,
        }
    )


def test_compare_conclusions_measures_moves_against_the_reference_interval():
    table = pd.concat(
        [
            _conclusion_rows("default", [50.0, 200.0], [40.0, 150.0], [60.0, 250.0]),
            # rate moves by 2 (10 % of width 20); forecast by 40 (40 % of width 100)
            _conclusion_rows("weak", [52.0, 240.0], [38.0, 170.0], [66.0, 300.0]),
        ],
        ignore_index=True,
    )
    out = S.compare_conclusions(table, "default")
    weak = out[out["prior_set"] == "weak"].set_index("conclusion")
    assert weak.loc["current_rate", "shift_share"] == pytest.approx(0.1)
    assert weak.loc["forecast_5", "shift_share"] == pytest.approx(0.4)
    assert not weak.loc["current_rate", "changes"]
    assert weak.loc["forecast_5", "changes"]
    finding = S.comparison_finding(out, "default")
    assert "1 of 2 conclusions change" in finding.sentence
    assert "240" in finding.sentence and "200" in finding.sentence
    assert "25%" in finding.sentence  # the rule is stated


def test_comparison_finding_says_when_nothing_changes():
    table = pd.concat(
        [
            _conclusion_rows("default", [50.0, 200.0], [40.0, 150.0], [60.0, 250.0]),
            _conclusion_rows("tight", [50.5, 205.0], [42.0, 165.0], [58.0, 245.0]),
        ],
        ignore_index=True,
    )
    finding = S.comparison_finding(S.compare_conclusions(table, "default"), "default")
    assert finding.sentence.startswith("No conclusion changes under the tight priors")
    assert "largest move" in finding.sentence


def test_the_latent_refits_finding_names_each_choice_and_what_it_moved():
    from bayes_lac.studies import latent_sensitivity as LS

    own = _conclusion_rows(LS.AS_FITTED, [50.0, 200.0], [40.0, 150.0], [60.0, 250.0])
    # local-change moves the forecast by 40 % of its interval's width; no-trend only doubles its
    # width; national-damped moves nothing, and failed its convergence check
    local = _conclusion_rows("local-change", [50.0, 240.0], [40.0, 190.0], [60.0, 290.0])
    wide = _conclusion_rows("no-trend", [50.0, 200.0], [40.0, 100.0], [60.0, 300.0])
    steady = _conclusion_rows("national-damped", [50.5, 201.0], [40.0, 150.0], [61.0, 251.0]).assign(converged=False)
    table = pd.concat([own, local, wide, steady], ignore_index=True).assign(belief=lambda t: t["prior_set"] + " belief")
    comparison = S.compare_conclusions(table, LS.AS_FITTED).rename(columns={"prior_set": "choice"})
    finding = LS.refits_finding(comparison, skipped={"uasc-stochastic": "too few UASC"})
    sentence = finding.sentence
    assert sentence.startswith("2 of the 3 other choices change a conclusion")
    assert (
        "local-change (local-change belief) moves the children looked after forecast for 2025 to 240 from 200"
        in sentence
    )
    assert (
        "no-trend (no-trend belief) makes the interval of the children looked after forecast for 2025 2.0 times as wide"
        in sentence
    )
    assert "None changes under national-damped." in sentence
    assert any("national-damped failed their convergence check" in c for c in finding.caveats)
    assert "Not compared: uasc-stochastic (too few UASC)." in finding.caveats
    quiet = comparison[comparison["choice"].isin([LS.AS_FITTED, "national-damped"])]
    assert LS.refits_finding(quiet).sentence.startswith("No conclusion changes under the other choice (")


# -- small fits ------------------------------------------------------------------------------


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_sensible_prior_is_not_flagged(sensible_run):
    table = S.power_scaling(sensible_run)
    assert set(table["parameter"]) == set(S.SENSITIVITY_PARAMETERS)
    assert (table.loc[table["parameter"] == "la_trend", "la_code"] == sensible_run.attrs["target_la"]).all()
    by_name = table.set_index("parameter")
    # The intercept is well identified by 8 authorities x 11 years: the data decide it.
    # (The deprivation effect is only weakly identified in so small a simulation, so its
    # flag depends on the draws; it is not asserted either way.)
    for name in ("intercept", "dispersion"):
        assert by_name.loc[name, "diagnosis"] == "", by_name.loc[name]
        assert by_name.loc[name, "prior_sensitivity"] < S.THRESHOLD
        assert by_name.loc[name, "likelihood_sensitivity"] > S.THRESHOLD


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_wrong_tight_prior_is_flagged_as_conflict(simulated, wrong_prior_file):
    panel, truth = simulated
    run = _fit(panel, truth["la"][0], wrong_prior_file)
    table = S.power_scaling(run).set_index("parameter")
    assert table.loc["intercept", "diagnosis"] == "prior-data conflict"
    assert table.loc["intercept", "prior_sensitivity"] > S.THRESHOLD
    assert table.loc["intercept", "likelihood_sensitivity"] > S.THRESHOLD


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_refit_under_wrong_prior_changes_the_conclusions(sensible_run, wrong_prior_file):
    result = S.sensitivity(sensible_run, prior_sets=["default", str(wrong_prior_file)], workers=1, progress=False)
    comparison = result.comparison
    assert set(comparison["prior_set"]) == {"default", "wrong_intercept"}
    assert list(result.fit_seconds) == ["wrong_intercept"]  # the run itself stands for default
    wrong = comparison[comparison["prior_set"] == "wrong_intercept"].set_index("conclusion")
    default = comparison[comparison["prior_set"] == "default"].set_index("conclusion")
    assert (default["shift"] == 0).all() and not default["changes"].any()
    # The model meets the pinned intercept by bending the common random walk, which leaves the
    # recent rate roughly in place but makes the forecasts far less certain.
    assert wrong.loc["forecast_10", "width_ratio"] > S.WIDTH_CHANGE
    assert wrong.loc["forecast_10", "changes"]
    assert {"forecast_5", "forecast_10", "recent_trend", "unexplained_change", "unexplained_share"} <= set(
        comparison["conclusion"]
    )
    assert "change under other priors" in result.finding.sentence


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_command_writes_power_scaling_without_refits(sensible_run, tmp_path, capsys):
    from bayes_lac.cli import main
    from bayes_lac.model.results import save_run

    run_file = tmp_path / "run.nc"
    save_run(sensible_run, run_file)
    out = tmp_path / "sensitivity.csv"
    assert main(["sensitivity", str(run_file), "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == list(S.POWER_COLUMNS)
    assert "power-scaling" in capsys.readouterr().out


def test_latent_refits_are_refused_for_a_run_of_the_0_2_model(toy_results, tmp_path, capsys):
    from bayes_lac.cli import main
    from bayes_lac.model.results import save_run

    save_run(toy_results, tmp_path / "run.nc")
    argv = ["sensitivity", str(tmp_path / "run.nc"), "--refits", "no-trend", "--out", str(tmp_path / "s.csv")]
    assert main(argv) == 2
    assert "--refits and --panel are for a latent-state run" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()
