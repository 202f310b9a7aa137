"""England's rows and unit-cost columns are optional in a user panel: ``data check`` says
which outputs a panel can produce, and each output that needs what is missing says so in one
line (exit status 2) where the gap is first detected, before any fitting.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis.costs import unit_cost_history
from bayes_lac.cli import main
from bayes_lac.data.panel import (
    COST_COLUMNS,
    load_panel,
    output_needs,
    require_columns,
    require_england,
)
from bayes_lac.errors import PanelError
from bayes_lac.model import results as R
from tests.conftest import make_toy_results

SMALL_PANEL = Path(__file__).parent / "data" / "panel_small.csv"


def panel_text(england: bool = True, costs: dict[str, str] | None = None) -> str:
    """The small panel, without its England row (line 7) if asked, with cost columns added."""
    rows = list(csv.reader(io.StringIO(SMALL_PANEL.read_text())))
    if not england:
        rows = [r for r in rows if r[0] != "E92000001"]
    for column, value in (costs or {}).items():
        rows[0].append(column)
        for row in rows[1:]:
            row.append(value)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def write(tmp_path: Path, text: str, name: str = "panel.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_data_check_called_weekly_cost_not_used_and_now_says_who_reads_it(tmp_path, capsys):
    path = write(tmp_path, panel_text(costs={"weekly_cost_per_child": "1500", "comment": "x"}))

    assert main(["data", "check", str(path)]) == 0

    out = capsys.readouterr().out
    assert "not used by the models" not in out
    assert "weekly_cost_per_child: unit cost, £ per child per week" in out
    assert "read by costs and the board report" in out
    assert "not read by any output (kept in the table): comment" in out
    assert "  costs: available" in out and "  report: available" in out


def test_data_check_says_which_outputs_a_panel_without_england_or_costs_cannot_produce(tmp_path, capsys):
    path = write(tmp_path, panel_text(england=False))

    assert main(["data", "check", str(path)]) == 0

    out = capsys.readouterr().out
    assert "  fit, decompose: available" in out
    assert "  forecast: available except the scenario converge-england, which needs England's rows (E92000001)" in out
    assert "  compare: available, without the England line" in out
    assert "  costs: unavailable: needs weekly_cost_per_child or spend_looked_after" in out
    assert (
        "  report: unavailable: needs England's rows (E92000001) and weekly_cost_per_child or spend_looked_after" in out
    )


def test_output_needs_with_costs_but_no_england_points_costs_at_other_scenarios(tmp_path):
    panel = load_panel(write(tmp_path, panel_text(england=False, costs={"spend_looked_after": "5000000"})))
    verdicts = dict(output_needs(panel))
    assert verdicts["costs"].startswith("available with --scenario trend,population-only")
    assert verdicts["report"] == "unavailable: needs England's rows (E92000001)"


def test_require_columns_names_output_columns_units_and_that_other_outputs_work(tmp_path):
    panel = load_panel(write(tmp_path, panel_text()))
    with pytest.raises(PanelError) as err:
        require_columns(panel, COST_COLUMNS, for_output="costs", any_of=True)
    message = str(err.value)
    assert message.startswith(
        f"{tmp_path / 'panel.csv'}: costs needs a column weekly_cost_per_child (£ per child per week)"
    )
    assert "or spend_looked_after (£ per year); the panel has no such column" in message
    assert "outputs that do not read it work without it" in message
    assert "\n" not in message

    blank = panel.assign(weekly_cost_per_child=np.nan)
    with pytest.raises(PanelError, match="the panel has weekly_cost_per_child but blank in every row"):
        require_columns(blank, COST_COLUMNS, for_output="costs", any_of=True)
    require_columns(panel.assign(spend_looked_after=1.0), COST_COLUMNS, for_output="costs", any_of=True)


def test_require_england_refuses_a_panel_without_usable_england_rows(tmp_path):
    with_england = load_panel(write(tmp_path, panel_text()))
    require_england(with_england, "converge-england")

    without = load_panel(write(tmp_path, panel_text(england=False), "no_england.csv"))
    with pytest.raises(PanelError, match=r"no_england.csv: converge-england needs England's rows \(la_code E92000001"):
        require_england(without, "converge-england")
    empty = with_england.copy()
    empty.loc[empty["la_code"] == "E92000001", "population_0_17"] = pd.NA
    with pytest.raises(PanelError, match="has England rows without population_0_17 and counts"):
        require_england(empty, "converge-england")


def test_unit_cost_history_refuses_in_one_line_without_cost_columns(tmp_path):
    panel = load_panel(write(tmp_path, panel_text()))
    with pytest.raises(
        PanelError, match=r"costs \(and the board report's cost section\) needs a column weekly_cost_per_child"
    ):
        unit_cost_history(panel, "E06000034")


def _run_without_england(tmp_path: Path) -> str:
    run = make_toy_results()
    reference = run["reference"].to_dataset()
    run["reference"] = reference.map(lambda v: v * np.nan)
    path = tmp_path / "run.nc"
    R.save_run(run, path)
    return str(path)


def test_forecast_converge_england_without_england_rows_says_what_is_missing(tmp_path, capsys):
    run = _run_without_england(tmp_path)
    out = tmp_path / "forecast.csv"

    assert main(["forecast", run, "--horizon", "3", "--out", str(out)]) == 2

    err = one_line_error(capsys)
    assert "the forecast scenario converge-england needs England's rows (la_code E92000001" in err
    assert "the panel this run was fitted on" in err and "--scenario trend,population-only" in err
    assert not out.exists()
    assert main(["forecast", run, "--horizon", "3", "--scenario", "trend,population-only", "--out", str(out)]) == 0


def test_costs_without_unit_cost_columns_says_what_is_missing(tmp_path, capsys):
    run = str(tmp_path / "run.nc")
    R.save_run(make_toy_results(), run)
    panel = write(tmp_path, panel_text())
    out = tmp_path / "costs.csv"

    assert main(["costs", run, "--panel", str(panel), "--horizon", "3", "--scenario", "trend", "--out", str(out)]) == 2

    err = one_line_error(capsys)
    assert f"{panel}: costs (and the board report's cost section) needs a column weekly_cost_per_child" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "england, costs, expected",
    [
        (
            False,
            {"weekly_cost_per_child": "1500"},
            "the board report (its forecast shows converge-england) needs England's rows",
        ),
        (True, None, "the board report (its cost section) needs a column weekly_cost_per_child"),
    ],
)
def test_report_refuses_before_fitting_when_the_panel_lacks_what_it_needs(tmp_path, capsys, england, costs, expected):
    panel = write(tmp_path, panel_text(england=england, costs=costs))
    html = tmp_path / "report.html"

    assert (
        main(["report", "--la", "E06000034", "--panel", str(panel), "--neighbours", "E06000033", "--out", str(html)])
        == 2
    )

    err = one_line_error(capsys)
    assert expected in err
    assert list(tmp_path.iterdir()) == [panel]  # nothing fitted, nothing written
