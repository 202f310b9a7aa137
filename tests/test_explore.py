"""Comparison of an authority against its neighbours and England, on a small synthetic panel."""

import argparse

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis import compare as explore
from bayes_lac.analysis.compare import (
    comparison_findings,
    comparison_table,
    plot_comparison,
)
from bayes_lac.cli.commands import compare_command
from bayes_lac.config import ENGLAND_CODE
from bayes_lac.errors import PanelError, UnknownAuthorityError

TARGET = "E06000901"
NB = ["E06000902", "E06000903", "E06000904"]
YEARS = [2015, 2016, 2017]


@pytest.fixture
def panel() -> pd.DataFrame:
    rows = []
    # looked_after, children_in_need, child_protection per area and year; population
    spec = {
        TARGET: ("Targetshire", 40_000, (300, 320, 340), (1200, 1250, 1300), (160, 170, 180)),
        NB[0]: ("Alphaton", 30_000, (150, 180, 210), (900, 950, 1000), (90, 95, 100)),
        NB[1]: ("Betaby", 50_000, (400, 410, 420), (1500, 1550, 1600), (200, 210, 220)),
        NB[2]: ("Gammaford", 20_000, (100, 110, 120), (600, 650, 700), (60, 65, 70)),
        ENGLAND_CODE: (
            "England",
            12_000_000,
            (69_000, 70_000, 72_000),
            (390_000, 395_000, 390_000),
            (50_000, 50_500, 51_000),
        ),
    }
    for code, (name, pop, lac, cin, cpp) in spec.items():
        for i, y in enumerate(YEARS):
            rows.append(
                dict(
                    la_code=code,
                    la_name=name,
                    year=y,
                    population_0_17=pop + 100 * i,
                    looked_after=lac[i],
                    children_in_need=cin[i],
                    child_protection=cpp[i],
                    uasc=5,
                    deprivation=20.0,
                )
            )
    df = pd.DataFrame(rows)
    # Gammaford did not exist in 2015 (a reorganised authority) and suppressed its 2016 CPP count.
    df = df[~((df.la_code == NB[2]) & (df.year == 2015))]
    df.loc[(df.la_code == NB[2]) & (df.year == 2016), "child_protection"] = np.nan
    # Counts as load_panel returns them: nullable integers.
    for col in ("population_0_17", "looked_after", "children_in_need", "child_protection", "uasc"):
        df[col] = df[col].astype("Int64")
    return df.reset_index(drop=True)


def rate(count, pop):
    return count / pop * 10_000


def test_target_and_england_rates_match_hand_computation(panel):
    t = comparison_table(panel, TARGET, NB)
    row = t[(t.group == "target") & (t.measure == "looked_after") & (t.year == 2016)].iloc[0]
    assert row.la_code == TARGET and row.la_name == "Targetshire"
    assert row["count"] == 320 and row.population_0_17 == 40_100
    assert row.rate == pytest.approx(rate(320, 40_100))
    eng = t[(t.group == "england") & (t.measure == "children_in_need") & (t.year == 2017)].iloc[0]
    assert eng.rate == pytest.approx(rate(390_000, 12_000_200))
    nb = t[(t.group == NB[1]) & (t.measure == "child_protection") & (t.year == 2015)].iloc[0]
    assert nb.rate == pytest.approx(rate(200, 50_000))


def test_neighbours_average_is_pooled_rate(panel):
    t = comparison_table(panel, TARGET, NB)
    avg = t[(t.group == "neighbours_average") & (t.measure == "looked_after") & (t.year == 2017)].iloc[0]
    counts, pops = (210 + 420 + 120), (30_200 + 50_200 + 20_200)
    assert avg["count"] == counts and avg.population_0_17 == pops
    assert avg.rate == pytest.approx(rate(counts, pops))
    # Pooled, not the mean of the rates (these differ for unequal populations).
    mean_of_rates = np.mean([rate(210, 30_200), rate(420, 50_200), rate(120, 20_200)])
    assert abs(avg.rate - mean_of_rates) > 0.5
    assert avg.n_neighbours_reporting == 3 and avg.n_neighbours == 3 and avg.neighbours_missing == ""


def test_n_neighbours_reporting_when_a_neighbour_is_missing(panel):
    t = comparison_table(panel, TARGET, NB)
    avg = t[t.group == "neighbours_average"].set_index(["measure", "year"])
    # Gammaford absent in 2015: two neighbours, and the pooled rate uses only those two.
    assert avg.loc[("looked_after", 2015), "n_neighbours_reporting"] == 2
    assert avg.loc[("looked_after", 2015), "neighbours_missing"] == NB[2]
    assert avg.loc[("looked_after", 2015), "rate"] == pytest.approx(rate(150 + 400, 30_000 + 50_000))
    # Its 2016 CPP count suppressed: missing for that measure only.
    assert avg.loc[("child_protection", 2016), "n_neighbours_reporting"] == 2
    assert avg.loc[("looked_after", 2016), "n_neighbours_reporting"] == 3
    # The neighbour's own rows are kept, with no rate, rather than dropped.
    own = t[(t.group == NB[2]) & (t.measure == "child_protection") & (t.year == 2016)]
    assert len(own) == 1 and np.isnan(own.rate.iloc[0])
    # Blank on rows that are not the neighbours' average.
    assert t.loc[t.group == "target", "n_neighbours_reporting"].isna().all()


def test_table_shape_and_columns(panel):
    t = comparison_table(panel, TARGET, NB)
    assert list(t.columns) == list(explore.TABLE_COLUMNS)
    # groups: target + 3 neighbours + average + England, for 3 measures and 3 years
    assert len(t) == 6 * 3 * 3
    assert set(t.group) == {"target", "neighbours_average", "england", *NB}


def test_unknown_authority_and_missing_column(panel):
    with pytest.raises(UnknownAuthorityError, match="E06000999"):
        comparison_table(panel, "E06000999", NB)
    with pytest.raises(PanelError, match="population_0_17"):
        comparison_table(panel.drop(columns="population_0_17"), TARGET, NB)
    with pytest.raises(PanelError, match="more than one row"):
        comparison_table(pd.concat([panel, panel.head(1)]), TARGET, NB)


def test_neighbour_absent_from_panel_is_reported_not_dropped(panel):
    t = comparison_table(panel, TARGET, NB + ["E06000999"])
    avg = t[(t.group == "neighbours_average") & (t.measure == "looked_after") & (t.year == 2017)].iloc[0]
    assert avg.n_neighbours == 4 and avg.n_neighbours_reporting == 3
    assert "E06000999" in avg.neighbours_missing


def test_plot_single_measure_lines_and_labels(panel):
    t = comparison_table(panel, TARGET, NB)
    fig = plot_comparison(t, measure="looked_after")
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    # target + 3 neighbours + pooled average + England
    assert len(ax.lines) == 6
    assert "per 10,000" in ax.get_ylabel() and "Year" in ax.get_xlabel()
    assert ax.get_title()
    target_line = [line for line in ax.lines if line.get_label() == "Targetshire"][0]
    assert target_line.get_color() == "#000000"
    np.testing.assert_allclose(target_line.get_ydata(), [rate(300, 40_000), rate(320, 40_100), rate(340, 40_200)])
    plt.close("all")


def test_plot_three_panels_and_given_axes(panel):
    t = comparison_table(panel, TARGET, NB)
    fig = plot_comparison(t)
    assert len(fig.axes) == 3
    assert all(len(a.lines) == 6 for a in fig.axes)
    fig2, ax2 = plt.subplots()
    assert plot_comparison(t, measure="child_protection", ax=ax2) is fig2
    plt.close("all")


def test_findings_sentences(panel):
    findings = comparison_findings(comparison_table(panel, TARGET, NB))
    assert len(findings) == 3
    lac = findings[0]
    assert "2017" in lac.sentence and "Targetshire" in lac.sentence and "England" in lac.sentence
    assert f"{rate(340, 40_200):.1f}" in lac.sentence


def test_compare_command_writes_chart_and_table(panel, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bayes_lac.data.panel.load_panel", lambda path=None: panel)
    args = argparse.Namespace(la=TARGET, panel=None, neighbours=",".join(NB), out=str(tmp_path / "out"))
    assert compare_command(args) == 0
    png = tmp_path / "out" / f"{TARGET}_comparison.png"
    csv = tmp_path / "out" / f"{TARGET}_comparison.csv"
    assert png.stat().st_size > 1000
    back = pd.read_csv(csv)
    assert set(back.group) >= {"target", "neighbours_average", "england"}
    printed = capsys.readouterr().out
    assert str(png) in printed and "Children looked after" in printed


def test_compare_command_rejects_bad_neighbours_option(panel, tmp_path, monkeypatch):
    from bayes_lac.errors import BayesLacError

    monkeypatch.setattr("bayes_lac.data.panel.load_panel", lambda path=None: panel)
    args = argparse.Namespace(la=TARGET, panel=None, neighbours="2019", out=str(tmp_path))
    with pytest.raises(BayesLacError, match="--neighbours"):
        compare_command(args)


def test_coverage_notes_name_missing_neighbours_and_years(panel):
    notes = explore.coverage_notes(comparison_table(panel, TARGET, NB))
    assert any(NB[2] in n and "2015" in n and n.startswith("Children looked after") for n in notes)
    assert any(NB[2] in n and "2016" in n and n.startswith("Child protection plans") for n in notes)
    cin = [n for n in notes if n.startswith("Children in need")]
    assert len(cin) == 1 and "2015" in cin[0] and "2016" not in cin[0]
