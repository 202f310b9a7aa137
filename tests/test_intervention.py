"""Invest-to-save cases: exact reproduction of the 2017 Thurrock report, uncertainty, errors, CLI."""

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from scipy import stats

from bayes_lac import cli
from bayes_lac.analysis.interventions import (
    InterventionResult,
    bundled_interventions,
    evaluate_intervention,
    intervention_finding,
    intervention_from_dict,
    intervention_table,
    load_intervention,
    plot_intervention,
    round_half_up,
)
from bayes_lac.config import INTERVENTIONS_DIR
from bayes_lac.errors import InputFileError

BASE = {
    "name": "The test service",
    "source": "a test",
    "outcome": {"name": "children kept out of care", "unit": "children"},
    "reach": {"point": 100, "unit": "families", "unit_singular": "family"},
    "cost_per_participant": {"point": 2000, "uncertainty": {"dist": "normal", "mean": 2000, "sd": 200}},
    "effect": {"point": 0.1, "uncertainty": {"dist": "uniform", "lower": 0.05, "upper": 0.15}},
    "duration": {"point": 1.0, "unit": "years"},
    "unit_cost": {"point": 50000, "per": "year", "uncertainty": {"dist": "lognormal", "mean": 50000, "sd": 10000}},
    "cashable_share": {"point": 0.5, "basis": "gross"},
}


def spec_with(**changes):
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return intervention_from_dict(data)


def pounds(result: InterventionResult, quantity: str) -> float:
    return round_half_up(result.point(quantity))


# --- the report's four cases, uncertainty off -------------------------------------------------


def test_shipped_files_are_the_reports_four_cases():
    assert set(bundled_interventions()) >= {
        "edge_of_care",
        "pause",
        "domestic_abuse_victims",
        "domestic_abuse_perpetrators",
    }


def test_edge_of_care_reproduces_report_to_the_pound():
    r = evaluate_intervention(INTERVENTIONS_DIR / "edge_of_care.toml", uncertainty=False)
    assert r.point("participants") == 135.5
    assert pounds(r, "programme_cost") == 309_618
    assert round_half_up(r.point("outcomes_prevented"), 1) == 21.7
    assert pounds(r, "gross_saving") == 1_534_771
    assert pounds(r, "net_saving") == 1_225_153
    assert pounds(r, "cashable_saving") == 649_331
    sentence = intervention_finding(r).sentence
    for figure in ("£309,618", "21.7 children", "£1,534,771", "£1,225,153", "£649,331"):
        assert figure in sentence


def test_pause_reproduces_report_range():
    low = evaluate_intervention("pause", uncertainty=False, scenario="low")
    high = evaluate_intervention("pause", uncertainty=False, scenario="high")
    assert low.point("participants") == 15 and high.point("participants") == 15
    assert low.point("outcomes_prevented") == 2 and high.point("outcomes_prevented") == 5
    assert pounds(low, "net_saving") == 128_520
    assert pounds(high, "net_saving") == 307_945


@pytest.mark.parametrize(
    "name, places, incidents, net",
    [("domestic_abuse_victims", 60, 144, 133_220), ("domestic_abuse_perpetrators", 10, 19, -7_293)],
)
def test_domestic_abuse_cases_reproduce_report(name, places, incidents, net):
    r = evaluate_intervention(name, uncertainty=False)
    assert r.point("participants") == places
    assert round_half_up(r.point("outcomes_prevented"), 1) == incidents
    assert pounds(r, "net_saving") == net
    assert r.spec.outcome_unit == "incidents"
    assert f"{incidents} incidents" in intervention_finding(r).sentence


# --- uncertainty ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["edge_of_care", "pause", "domestic_abuse_victims", "domestic_abuse_perpetrators"])
def test_point_case_lies_inside_the_interval(name):
    point = evaluate_intervention(name, uncertainty=False)
    table = intervention_table(evaluate_intervention(name, draws=4000, seed=1), ci_prob=0.9).set_index("quantity")
    for q in ("programme_cost", "outcomes_prevented", "gross_saving", "net_saving", "break_even_effect"):
        assert table.at[q, "lower"] <= point.point(q) <= table.at[q, "upper"], q
    p = table.at["prob_net_saving", "mean"]
    assert 0 < p <= 1
    assert list(table.columns) == ["mean", "median", "lower", "upper", "ci_prob", "unit"]


def test_pause_uncertain_effect_spans_report_range():
    # the effect if Pause works spans the report's 2 to 5 children a year; the evidence priors
    # (no effect, deadweight) then only take children off
    effect = load_intervention("pause").quantities["effect"].sample(np.random.default_rng(0), 2000)
    assert effect.min() >= 2 and effect.max() <= 5
    assert effect.min() < 2.1 and effect.max() > 4.9
    prevented = evaluate_intervention("pause", draws=2000, seed=0).draws["outcomes_prevented"].values
    assert prevented.max() <= 5 and (prevented == 0).mean() > 0.1


def test_probability_of_net_saving_is_monotone_in_effect():
    probs = []
    for shift in (0.0, 0.01, 0.02, 0.04, 0.08):
        spec = spec_with(
            effect={"point": 0.02 + shift, "uncertainty": {"dist": "uniform", "lower": shift, "upper": 0.08 + shift}}
        )
        probs.append(evaluate_intervention(spec, draws=3000, seed=3).prob_net_saving)
    assert all(0 <= p <= 1 for p in probs)
    assert probs == sorted(probs)
    assert probs[0] < 0.5 < probs[-1]


def test_break_even_effect_gives_zero_net_saving():
    from dataclasses import replace

    evidence = ("no_effect_probability", "deadweight", "delayed_share", "delay")
    for case in ("edge_of_care", "pause", "domestic_abuse_victims"):
        # the service as its source assumed it: it works, no deadweight, nothing delayed (the
        # evidence priors' effect on the break-even is in test_intervention_evidence.py)
        spec = load_intervention(case)
        spec = replace(spec, quantities={k: v for k, v in spec.quantities.items() if k not in evidence})
        r = evaluate_intervention(spec, draws=50, seed=2)
        d = {k: r.draws[k].values for k in ("participants", "programme_cost", "gross_saving", "outcomes_prevented")}
        # The effect each draw used, recovered from its outputs (no at_risk in these files).
        if r.spec.effect_per == "year":
            effect = d["outcomes_prevented"] / r.spec.years
        else:
            effect = d["outcomes_prevented"] / d["participants"]
        # Gross saving is proportional to the effect: at the break-even effect it equals the cost.
        gross_at_break_even = d["gross_saving"] * r.draws["break_even_effect"].values / effect
        np.testing.assert_allclose(gross_at_break_even, d["programme_cost"], rtol=1e-9)


def test_break_even_matches_closed_form_without_uncertainty():
    r = evaluate_intervention(spec_with(), uncertainty=False)
    # cost per family / (duration x unit cost) = 2000 / 50000
    assert math.isclose(r.point("break_even_effect"), 0.04)
    at_be = evaluate_intervention(spec_with(effect={"point": 0.04}), uncertainty=False)
    assert abs(at_be.point("net_saving")) < 1e-6


def test_discounting_and_horizon():
    one = evaluate_intervention(spec_with(), uncertainty=False)
    three = evaluate_intervention(spec_with(years=3, discount_rate=0.035), uncertainty=False)
    factor = 1 + 1 / 1.035 + 1 / 1.035**2
    assert math.isclose(three.point("net_saving"), factor * one.point("net_saving"))
    assert three.point("participants") == 300
    assert math.isclose(three.point("break_even_effect"), one.point("break_even_effect"))


def test_at_risk_share_and_week_units():
    spec = spec_with(
        at_risk={"point": 0.5},
        effect={"point": 0.2, "uncertainty": {"dist": "beta", "mean": 0.2, "sd": 0.05}},
        duration={"point": 26, "unit": "weeks"},
        unit_cost={"point": 1000, "per": "week"},
    )
    r = evaluate_intervention(spec, uncertainty=False)
    assert math.isclose(r.point("outcomes_prevented"), 100 * 0.5 * 0.2)
    assert math.isclose(r.point("gross_saving"), 10 * 26 * 1000)
    assert math.isclose(r.point("break_even_effect"), 2000 / (0.5 * 26 * 1000))
    assert "share" in spec.effect_unit


def test_same_seed_same_draws_and_no_uncertainty_is_one_draw():
    a = evaluate_intervention(spec_with(), draws=100, seed=5)
    b = evaluate_intervention(spec_with(), draws=100, seed=5)
    np.testing.assert_array_equal(a.draws["net_saving"].values, b.draws["net_saving"].values)
    assert a.draws.sizes["draw"] == 100
    assert evaluate_intervention(spec_with(), uncertainty=False).draws.sizes["draw"] == 1


def test_finding_sentence_has_interval_and_assumptions():
    spec = spec_with(assumptions=["Made up for a test."])
    f = intervention_finding(evaluate_intervention(spec, draws=500), ci_prob=0.8)
    assert "80% credible interval" in f.sentence
    assert "chance it saves more than it costs" in f.sentence
    assert f.caveats == ("Assumption: Made up for a test.",)
    assert f.ci_prob == 0.8


def test_plot_returns_figure_with_zero_marked():
    fig = plot_intervention(evaluate_intervention("edge_of_care", draws=500))
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert "Net saving" in ax.get_xlabel()
    assert any(list(line.get_xdata()) == [0, 0] for line in ax.lines)
    fig2, ax2 = matplotlib.pyplot.subplots()
    assert plot_intervention(evaluate_intervention("pause", uncertainty=False), ax=ax2) is fig2
    matplotlib.pyplot.close("all")


# --- bad files --------------------------------------------------------------------------------


def write(tmp_path, text, name="bad.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    text = (INTERVENTIONS_DIR / "edge_of_care.toml").read_text(encoding="utf-8").replace("[effect]", "[efect]")
    p = write(tmp_path, text)
    with pytest.raises(InputFileError, match=r"bad\.toml.*'efect'.*did you mean 'effect'"):
        load_intervention(p)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"effect": None}, r"'effect'.*required"),
        ({"cashable_share": {"point": 1.5}}, r"'cashable_share.point'.*\[0, 1\]"),
        ({"effect": {"point": 0.1, "uncertainty": {"dist": "betta", "mean": 0.1, "sd": 0.01}}}, r"did you mean 'beta'"),
        (
            {"effect": {"point": 0.1, "uncertainty": {"dist": "beta", "mean": 0.1, "sd": 0.5}}},
            r"'effect.uncertainty'.*sd below",
        ),
        ({"effect": {"point": 0.1, "uncertainty": {"dist": "normal", "mean": 0.1}}}, r"'effect.uncertainty.sd'"),
        ({"effect": {"point": 0.1, "uncertainty": {"dist": "normal", "mean": 0.1, "sd": 0.1}}}, r"mean >= 3 \* sd"),
        ({"duration": {"point": 10, "unit": "weeks"}}, r"'duration.unit'.*'years'"),
        ({"duration": None}, r"'duration'"),
        ({"reach": {"point": -3, "unit": "families"}}, r"'reach.point'"),
        ({"reach": {"point": 3}}, r"'reach.unit'"),
        ({"unit_cost": {"point": "lots", "per": "year"}}, r"'unit_cost.point'.*a number"),
        ({"years": 0}, r"'years'"),
    ],
)
def test_bad_values_raise_clear_errors(change, message):
    with pytest.raises(InputFileError, match=message):
        spec_with(**change)


def test_missing_file_and_invalid_toml(tmp_path):
    with pytest.raises(InputFileError, match="no such intervention file"):
        load_intervention(tmp_path / "nope.toml")
    with pytest.raises(InputFileError, match="not valid TOML"):
        load_intervention(write(tmp_path, "name = \n"))


# --- command line -----------------------------------------------------------------------------


def test_cli_writes_table_and_prints_sentence(tmp_path, capsys):
    out = tmp_path / "sub" / "eoc.csv"
    code = cli.main(["intervention", str(INTERVENTIONS_DIR / "edge_of_care.toml"), "--draws", "500", "--out", str(out)])
    assert code == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table.columns) == ["quantity", "mean", "median", "lower", "upper", "ci_prob", "unit"]
    assert "net_saving" in set(table["quantity"])
    assert "chance it saves more than it costs" in capsys.readouterr().out

    point = tmp_path / "point.csv"
    assert cli.main(["intervention", "edge_of_care", "--no-uncertainty", "--out", str(point)]) == 0
    t = pd.read_csv(point).set_index("quantity")
    assert round_half_up(t.at["net_saving", "mean"]) == 1_225_153


def test_cli_prices_a_case_in_an_authoritys_latest_money_and_unit_cost(tmp_path, capsys):
    import pandas as pd

    from bayes_lac.data.panel import load_panel

    # one authority of the bundled panel, renamed, with known spend and children in its last two years
    rows = load_panel().query("la_code == 'E06000034'").copy()
    rows = rows[rows["year"] <= 2025].assign(la_code="E1", la_name="Alpha")
    rows["weekly_cost_per_child"] = np.nan
    for year, children, spend in ((2024, 200, 20_000_000.0), (2025, 250, 40_000_000.0)):
        rows.loc[rows["year"] == year, ["looked_after", "spend_looked_after"]] = [children, spend]
    panel = tmp_path / "panel.csv"
    rows.to_csv(panel, index=False)
    argv = ["intervention", "edge_of_care", "--no-uncertainty", "--la", "E1", "--panel", str(panel)]
    assert cli.main([*argv, "--out", str(tmp_path / "today.csv")]) == 0
    out = capsys.readouterr().out
    today = pd.read_csv(tmp_path / "today.csv").set_index("quantity")
    source = evaluate_intervention("edge_of_care", uncertainty=False)
    # a child kept out of care saves Alpha's 2024-25 unit cost (£40m / 250 children), not the
    # file's £70,792 of 2016-17
    assert today.at["gross_saving", "mean"] == pytest.approx(21.68 * 160_000.0)
    assert today.at["programme_cost", "mean"] > source.point("programme_cost")
    assert today.at["net_saving", "unit"] == "£ a year, cash prices of 2024-25"
    assert "cash prices of 2024-25" in out and "Alpha's own in 2024-25" in out
    assert cli.main([*argv, "--price-year", "2024", "--out", str(tmp_path / "then.csv")]) == 0
    then = pd.read_csv(tmp_path / "then.csv").set_index("quantity")
    assert then.at["gross_saving", "mean"] == pytest.approx(21.68 * 100_000.0)
    capsys.readouterr()
    # without --la, the file's own figures, and said so
    assert cli.main(["intervention", "edge_of_care", "--out", str(tmp_path / "file.csv")]) == 0
    assert "give --la CODE" in capsys.readouterr().out
    for extra, message in (
        (["--price-year", "2024"], "go with --la"),
        (["--la", "E1", "--panel", str(panel), "--price-year", "2011"], "no unit cost for E1 in 2011"),
    ):
        status = cli.main(["intervention", "edge_of_care", *extra, "--out", str(tmp_path / "no.csv")])
        assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "no.csv").exists()


def test_cli_bad_file_exits_2(tmp_path, capsys):
    bad = write(tmp_path, 'name = "x"\n')
    assert cli.main(["intervention", str(bad), "--out", str(tmp_path / "x.csv")]) == 2
    assert "bad.toml" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


# --- files that contradict themselves or are implausible (refused through the CLI) ------------


def toml_text(data: dict) -> str:
    """A TOML file for `data` (top-level scalars and lists, then one table per quantity)."""

    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def with_changes(**changes) -> dict:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


PAUSE_LIKE = with_changes(
    reach={"point": 15, "unit": "women", "unit_singular": "woman"},
    effect={
        "point": 3.5,
        "low": 2,
        "high": 5,
        "per": "year",
        "uncertainty": {"dist": "uniform", "lower": 2, "upper": 5},
    },
    duration={"point": 1.0, "unit": "years"},
)

CONTRADICTIONS = [
    # The defect: a point effect of 0.16 quoted in the sentence, savings drawn around 0.9.
    (
        "point_outside_uncertainty",
        with_changes(effect={"point": 0.16, "uncertainty": {"dist": "beta", "mean": 0.9, "sd": 0.05}}),
        "effect.point",
    ),
    (
        "low_outside_uniform",
        with_changes(
            effect={"point": 0.1, "low": 0.01, "uncertainty": {"dist": "uniform", "lower": 0.05, "upper": 0.15}}
        ),
        "effect.low",
    ),
    (
        "high_outside_lognormal",
        with_changes(
            unit_cost={
                "point": 50000,
                "high": 500000,
                "per": "year",
                "uncertainty": {"dist": "lognormal", "mean": 50000, "sd": 10000},
            }
        ),
        "unit_cost.high",
    ),
    # A free service "saves" for certain: >99% chance it saves.
    ("zero_cost", with_changes(cost_per_participant={"point": 0}), "cost_per_participant.point"),
    ("negative_cost", with_changes(cost_per_participant=-2000), "cost_per_participant.point"),
    ("zero_unit_cost", with_changes(unit_cost={"point": 0, "per": "year"}), "unit_cost.point"),
    (
        "uniform_cost_from_zero",
        with_changes(
            cost_per_participant={"point": 2000, "uncertainty": {"dist": "uniform", "lower": 0, "upper": 4000}}
        ),
        "cost_per_participant.uncertainty",
    ),
    ("huge_horizon", with_changes(years=1_000_000_000), "years"),
    ("horizon_above_max", with_changes(years=51), "years"),
    ("implausible_reach", with_changes(reach={"point": 2e6, "unit": "families"}), "reach.point"),
    ("implausible_effect", with_changes(effect={"point": 160}), "effect.point"),
    (
        "implausible_effect_distribution",
        with_changes(effect={"point": 20, "uncertainty": {"dist": "gamma", "mean": 20, "sd": 40}}),
        "effect.uncertainty",
    ),
    ("implausible_effect_per_year", {**PAUSE_LIKE, "effect": {"point": 3000, "per": "year"}}, "effect.point"),
    ("implausible_at_risk", with_changes(at_risk={"point": 500}), "at_risk.point"),
    ("duration_beyond_childhood", with_changes(duration={"point": 30, "unit": "years"}), "duration.point"),
    ("cost_in_pence", with_changes(unit_cost={"point": 7_079_200_000, "per": "year"}), "unit_cost.point"),
]


@pytest.mark.parametrize("name, data, key", CONTRADICTIONS, ids=[c[0] for c in CONTRADICTIONS])
def test_cli_refuses_contradictory_or_implausible_file_naming_file_and_key(tmp_path, capsys, name, data, key):
    path = write(tmp_path, toml_text(data), name=f"{name}.toml")
    out = tmp_path / "out.csv"
    assert cli.main(["intervention", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{name}.toml: '{key}': expected" in err
    assert not out.exists()


def test_pause_like_file_without_the_defect_is_accepted(tmp_path, capsys):
    # The fixture for implausible_effect_per_year is valid apart from its effect.
    path = write(tmp_path, toml_text(PAUSE_LIKE), name="fine.toml")
    assert cli.main(["intervention", str(path), "--draws", "200", "--out", str(tmp_path / "fine.csv")]) == 0
    assert (tmp_path / "fine.csv").exists()


def test_horizon_of_max_years_is_accepted():
    from bayes_lac.analysis.interventions import MAX_YEARS

    r = evaluate_intervention(spec_with(years=MAX_YEARS), uncertainty=False)
    assert r.point("participants") == 100 * MAX_YEARS


def test_values_at_the_bounds_of_a_uniform_are_inside_its_range():
    # Pause gives the source's low and high cases as the bounds of its uniform effect.
    spec = load_intervention("pause")
    assert spec.quantities["effect"].low == spec.quantities["effect"].uncertainty_range()[0] == 2


@pytest.mark.parametrize(
    "dist",
    [
        {"dist": "normal", "mean": 2000, "sd": 600},
        {"dist": "lognormal", "mean": 50000, "sd": 20000},
        {"dist": "gamma", "mean": 1.9, "sd": 0.7},
        {"dist": "beta", "mean": 0.16, "sd": 0.05},
    ],
    ids=lambda d: d["dist"],
)
def test_uncertainty_range_is_the_range_of_the_draws(dist):
    """The range the point is checked against is that of the distribution the draws come from."""
    from bayes_lac.analysis.interventions import Quantity

    q = Quantity("x", dist["mean"], dist["mean"], dist["mean"], dist)
    lo, hi = q.uncertainty_range(0.99)
    draws = q.sample(np.random.default_rng(0), 400_000)
    np.testing.assert_allclose(np.quantile(draws, [0.005, 0.995]), [lo, hi], rtol=0.02)


def test_python_dash_m_refuses_point_outside_uncertainty_in_one_line(tmp_path):
    name, data, key = CONTRADICTIONS[0]
    path = write(tmp_path, toml_text(data), name=f"{name}.toml")
    out = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-m", "bayes_lac", "intervention", str(path), "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    # beta with mean 0.9 and sd 0.05 is Beta(31.5, 3.5): nu = 0.9 * 0.1 / 0.05**2 - 1 = 35.
    lo, hi = stats.beta(31.5, 3.5).ppf([0.005, 0.995])
    expected = (
        f"bayes-lac intervention: error: {path}: '{key}': expected a value inside the central 99% range of "
        f"effect.uncertainty (beta, mean 0.9, sd 0.05: {lo:.4g} to {hi:.4g}), got 0.16; the sentence quotes the "
        "point value and the savings are drawn from the distribution, so the two must agree"
    )
    assert result.stderr.strip().splitlines() == [expected]
    assert not out.exists()
