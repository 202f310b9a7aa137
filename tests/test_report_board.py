"""The board report v2: one format per kind of number, the contradictions of the Thurrock
report (issue 18) pinned, plain words on the board pages, the workbook read back, and page
one's numbers traced to the analyses they come from.

All on the synthetic run of tests/test_report.py (built once per process).
"""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bayes_lac.analysis import costs as cmod
from bayes_lac.analysis import forecast as fmod
from bayes_lac.report import board as R
from bayes_lac.report.answers import answers_table
from bayes_lac.report.formats import KINDS, column_header, jargon_in, plain_words
from bayes_lac.summaries import format_chance, format_count, format_financial_year, format_probability
from tests.test_report import built_toy_report, read_table_sheet

# the synthetic report is built once per process: one worker runs its readers (tests/test_report.py)
pytestmark = pytest.mark.xdist_group("toy_report")


@pytest.fixture(scope="module")
def toy():
    return built_toy_report()


@pytest.fixture(scope="module")
def report(toy):
    return toy[1]


@pytest.fixture(scope="module")
def page(report):
    return R.render_html(report)


@pytest.fixture(scope="module")
def workbook(report, tmp_path_factory):
    return R.write_xlsx(report, tmp_path_factory.mktemp("xlsx") / "report.xlsx")


def _tables(report) -> dict:
    return {t.key: t for _, t in report.tables()}


def _sheet_of(path) -> dict:
    contents = pd.read_excel(path, sheet_name="Contents", skiprows=4)
    return dict(zip(contents["Table"], contents["Sheet"]))


def _board_keys(page: str) -> list[str]:
    """The board sections the page has ("Entering and leaving care" only with a flows run:
    tests/test_report_flows.py)."""
    keys = [k for k in R.BOARD_SECTIONS if f'id="{k}"' in page]
    assert len(keys) >= len(R.BOARD_SECTIONS) - 1, keys
    return keys


def _section_text(page: str, key: str) -> str:
    """The visible text of one section of the page (no images, tags or entities)."""
    match = re.search(rf'<section class="report-section[^"]*" id="{re.escape(key)}".*?</section>', page, re.S)
    assert match, key
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(0)))


# ---------------------------------------------------------------------------------------------
# 1. One format per kind, and the contradictions of the Thurrock report
# ---------------------------------------------------------------------------------------------


def test_a_posterior_probability_is_never_printed_as_100_percent():
    # the defect: the edge-of-care chance was ">99 %" in the text and "100 %" in the table
    assert format_probability(0.99675) == ">99%"
    assert format_probability(0.004) == "<1%"
    assert format_probability(0.5) == "50%"
    assert format_chance(0.99675) == "more than a 99% chance"
    assert format_chance(0.81) == "an 81% chance"
    # the text and the table agree at the edge: 0.995 rounds to 100 % as a share
    assert format_probability(0.995) == ">99%" and format_chance(0.995).startswith("more than a 99%")


def test_probability_cells_on_the_page_never_read_100_percent(report):
    seen = 0
    for _, table in report.tables():
        for values in table.frame[table.written_columns].itertuples(index=False, name=None):
            record = dict(zip(table.written_columns, values))
            for col, value in record.items():
                if table.cell_kind(col, record) == "probability" and isinstance(value, float) and np.isfinite(value):
                    seen += 1
                    text = R._format_cell(col, value, None, "probability")[0]
                    assert text not in ("100%", "0%"), (table.key, col, value)
    assert seen > 0


def test_edge_of_care_chance_is_the_same_in_text_table_and_workbook(report, page, workbook):
    from openpyxl import load_workbook

    table = _tables(report)["invest_edge_of_care"]
    row = table.frame.set_index("quantity").loc["prob_net_saving"]
    p = float(row["mean"])
    shown = format_probability(p)
    # the table cell prints the one format
    cells = dict(zip(table.columns, next(r for r in table.rows if r[0][0] == "Chance of a net saving")))
    assert cells["Mean"][0] == shown
    # the finding says the same chance in words
    finding = next(b for b in report.sections[5].blocks if b.kind == "finding" and "edge-of-care" in b.sentence)
    assert format_chance(p) in finding.sentence
    # the workbook keeps the number and shows it through the probability format
    book = load_workbook(workbook)
    sheet = book[_sheet_of(workbook)[table.caption]]
    header = [c.value for c in sheet[R.XLSX_HEADER_ROW]]
    for r in sheet.iter_rows(min_row=R.XLSX_HEADER_ROW + 1):
        if r[0].value == "Chance of a net saving":
            cell = r[header.index("Mean")]
            assert cell.value == pytest.approx(p) and cell.number_format == KINDS["probability"].excel
            break
    else:
        pytest.fail("no probability row in the edge-of-care sheet")
    assert '[>0.99]">99%"' in KINDS["probability"].excel


def test_families_are_whole_numbers_on_the_page_and_in_the_workbook(report, workbook):
    from openpyxl import load_workbook

    # the defect: 136 families in the text, 135.5 in the workbook
    table = _tables(report)["invest_edge_of_care"]
    participants = table.frame.set_index("quantity").loc["participants"]
    row = dict(zip(table.columns, next(r for r in table.rows if r[0][0] == "Participants")))
    assert row["Mean"][0] == format_count(participants["mean"])
    assert re.fullmatch(r"[\d,]+", row["Mean"][0])
    book = load_workbook(workbook)
    sheet = book[_sheet_of(workbook)[table.caption]]
    for r in sheet.iter_rows(min_row=R.XLSX_HEADER_ROW + 1):
        if r[0].value == "Participants":
            assert r[1].value == pytest.approx(participants["mean"])
            assert r[1].number_format == KINDS["count"].excel == "#,##0"


def test_years_are_never_thousands_separated(report, page):
    # the defect: "base year 2,025"
    assert not re.search(r"[Yy]ear\s+[12],\d{3}", _section_text(page, "costs"))
    change = _tables(report)["cost_change_3_5_10"]
    base_year = int(change.frame["base_year"].iloc[0])
    assert change.column_kind("base_year") == "year"
    assert R._format_cell("base_year", np.int64(2025), None, "year") == ("2025", True)
    assert str(base_year) in "".join(cell for row in change.rows for cell, _ in row)


def test_change_percent_has_a_header_with_its_unit_and_a_percent_format(report):
    # the defect: "median change percent 10.88"
    change = _tables(report)["cost_change_3_5_10"]
    assert column_header("median_change_percent") == "Change, central estimate (%)"
    i = change.columns.index("Change, central estimate (%)")
    values = change.frame["median_change_percent"]
    assert [row[i][0] for row in change.rows] == [f"{v:.0f}%" for v in values]


def test_the_cost_headline_is_the_cost_table_value(report, page):
    # the defect: £43.15m in the headline (base-year prices), £47.65m in the table (cash prices)
    answers = {b.key: b for b in report.sections[0].blocks if b.kind == "answer"}
    table = _tables(report)["cost_3_5_10"].frame
    trend = table[table["scenario"] == "trend"].set_index("financial_year")
    for f in answers["cost"].figures:
        m = re.search(r"(\d{4}-\d\d)", f.label)
        if f.kind == "money" and m and m.group(1) in trend.index:
            assert f.value == pytest.approx(trend.loc[m.group(1), "median_gbp_per_year"])
            assert f.text in _section_text(page, "costs")
    finding = next(b for b in report.sections[4].blocks if b.kind == "finding")
    year = re.search(r"in (\d{4}-\d\d)", finding.sentence).group(1)
    assert KINDS["money"].text(trend.loc[year, "median_gbp_per_year"]) in finding.sentence
    assert "cash prices of each year" in finding.sentence


def test_the_model_card_names_the_run_s_sampler_once(toy, page):
    from bayes_lac.model.results import run_info

    text = _section_text(page, "model-card")
    sampler = run_info(toy[0]).sampler.get("sampler")
    named = [n for n in R.SAMPLER_NAMES.values() if n in text]
    # the defect: "PyMC's NUTS sampler" in the description and nutpie in the settings
    assert named == ([R.SAMPLER_NAMES[sampler]] if sampler else [])
    for name in named:
        assert text.count(name) == 1
    described = R.sampler_description({"sampler": "nutpie", "chains": 2, "draws": 300, "tune": 300})
    assert described.startswith("nutpie (a NUTS sampler): 2 chains of 300 draws") and "PyMC" not in described


def test_the_backtest_caption_names_what_was_pooled():
    table = pd.DataFrame(
        {"measure": ["looked_after"] * 3, "la_code": ["A", "B", "B"], "horizon": [1, 2, 5]},
    )
    caption = R.backtest_caption(table)
    # the defect: "all authorities pooled" for a backtest of children looked after only
    assert "children looked after only" in caption and "2 authorities" in caption and "5 years" in caption


def test_the_model_card_names_the_origins_whose_fit_failed(tmp_path, monkeypatch):
    import json

    shipped = tmp_path / "backtest_full.csv.gz"
    monkeypatch.setattr(R, "BACKTEST_FILE", shipped)
    assert R._failed_backtest_origins() == []  # no manifest: nothing to name
    failed = [
        {"origin": 2016, "method": "model"},
        {"origin": 2014, "method": "model"},
        {"origin": 2015, "method": "flows"},
    ]
    (tmp_path / "backtest_full_manifest.json").write_text(json.dumps({"origins_failed": failed}))
    assert R._failed_backtest_origins() == [2014, 2016]  # the model's only, in order


def test_a_backtest_whose_model_never_converged_is_said_so_not_tabled(monkeypatch):
    baselines_only = pd.DataFrame(
        {
            "method": ["pooled_growth"] * 2,
            "measure": ["looked_after"] * 2,
            "la_code": ["A", "B"],
            "origin": [2016, 2016],
            "horizon": [1, 1],
            "observed": [10.0, 20.0],
            "lower_90": [8.0, 15.0],
            "upper_90": [12.0, 25.0],
            "crps": [1.0, 2.0],
        }
    )
    monkeypatch.setattr(R, "_shipped_backtest", lambda: baselines_only)
    monkeypatch.setattr(R, "_failed_backtest_origins", lambda: [2014, 2015])
    inputs = SimpleNamespace(la="E06000034", la_name="Thurrock", panel=None)
    sec = R.Section("model", "Model card")
    R._backtest_blocks(sec, inputs)
    notices = [b.text for b in sec.blocks if isinstance(b, R.Notice)]
    assert any("failed its convergence checks at every origin (2014 and 2015)" in t for t in notices)
    assert not any(isinstance(b, R.ReportTable) for b in sec.blocks)
    # a backtest of the baselines only is not a model that failed
    monkeypatch.setattr(R, "_failed_backtest_origins", lambda: [])
    sec = R.Section("model", "Model card")
    R._backtest_blocks(sec, inputs)
    notices = [b.text for b in sec.blocks if isinstance(b, R.Notice)]
    assert any("the model was not among the methods backtested" in t for t in notices)
    assert not any("failed" in t for t in notices)


def test_the_model_card_says_which_authorities_the_backtest_fitted():
    from bayes_lac.data.panel import load_panel

    config = {"target": "E06000034", "neighbours": "2021"}
    own = R.backtest_fitted_set(config, "E06000034", "Thurrock", report_neighbours="2021", scored=True)
    assert (
        own
        == "Thurrock and its 2021 DfE statistical neighbours at each origin, the comparison set this report's fit uses"
    )
    # the same authority fitted nationally is not the backtest's set
    national_run = R.backtest_fitted_set(config, "E06000034", "Thurrock", report_neighbours="all", scored=True)
    assert "(Thurrock among them): not the comparison set this report's fit uses" in national_run
    # a neighbour of Thurrock is scored in the backtest, but its report fits its own set
    other = R.backtest_fitted_set(
        config, "E06000033", "Southend-on-Sea", load_panel(), report_neighbours="2021", scored=True
    )
    assert other.startswith("Thurrock and its 2021") and "(Southend-on-Sea among them): not the comparison" in other
    outside = R.backtest_fitted_set(config, "E06000015", "Derby", load_panel(), report_neighbours="2021", scored=False)
    assert "(not Derby): not the comparison set" in outside
    national = {"target": "E06000034", "neighbours": "all"}
    assert R.backtest_fitted_set(national, "E06000015", "Derby", report_neighbours="all", scored=True).startswith(
        "every English authority together at each origin, the comparison set this report's fit uses"
    )
    assert "does not record" in R.backtest_fitted_set({}, "E06000034", "Thurrock")


# ---------------------------------------------------------------------------------------------
# 2. Plain words on the board pages
# ---------------------------------------------------------------------------------------------


def test_the_jargon_check_sees_jargon():
    assert jargon_in("fades by the model's persistence on the log scale") == ["persistence", "log scale"]
    assert "year_sigma" in jargon_in("steps drawn with each draw's year_sigma")
    assert jargon_in("R-hat at most 1.01, ESS at least 400")
    assert not jargon_in("Thurrock is now below its neighbours; less than a 1% chance")
    assert plain_words("£1 to £2 (90% credible interval)") == "£1 to £2 (likely range, 90%)"


def test_board_pages_carry_no_jargon(report, page):
    found = {}
    for key in _board_keys(page):
        words = jargon_in(_section_text(page, key))
        if words:
            found[key] = sorted(set(words))
    assert not found, f"jargon on the board pages: {found}"
    # the detail is not lost: it is in the analyst notes, and the terms in the glossary
    notes = _section_text(page, "analyst-notes")
    assert jargon_in(notes)
    glossary = _section_text(page, "glossary")
    for term in ("Persistence", "Random walk", "R-hat", "ESS", "Likely range (90%)"):
        assert term in glossary


def test_board_tables_have_human_headers_and_no_plotting_columns(report, page):
    for key in _board_keys(page):
        for header in re.findall(r"<th[^>]*>(.*?)</th>", _section_page(page, key)):
            assert "_" not in header and header not in ("bar bottom", "whisker high"), (key, header)
    for _, table in report.tables():
        assert not {"bar_bottom", "whisker_high"} & set(table.written_columns)


def _section_page(page: str, key: str) -> str:
    match = re.search(rf'<section class="report-section[^"]*" id="{re.escape(key)}".*?</section>', page, re.S)
    return match.group(0)


def test_intervals_on_the_board_pages_read_likely_range(page):
    text = " ".join(_section_text(page, k) for k in _board_keys(page))
    assert "likely range" in text and "credible" not in text


# ---------------------------------------------------------------------------------------------
# 3. The workbook
# ---------------------------------------------------------------------------------------------


def test_every_table_sheet_has_notes_headers_formats_and_a_filtered_excel_table(report, workbook):
    from openpyxl import load_workbook

    book = load_workbook(workbook)
    sheet_of = _sheet_of(workbook)
    money = rate = 0
    for _, table in report.tables():
        if not table.in_workbook:
            continue
        sheet = book[sheet_of[table.caption]]
        assert sheet["A1"].value == table.caption and sheet["A2"].value, sheet.title
        headers = [c.value for c in sheet[R.XLSX_HEADER_ROW]][: len(table.written_columns)]
        assert headers == R._unique([column_header(c) for c in table.written_columns])
        assert "index" not in headers and not any("_" in h for h in headers), (sheet.title, headers)
        if len(table.frame):
            assert len(sheet.tables) == 1
            excel_table = next(iter(sheet.tables.values()))
            assert excel_table.ref.startswith(f"A{R.XLSX_HEADER_ROW}:")
            assert excel_table.autoFilter is not None or excel_table.headerRowCount != 0
        for j, col in enumerate(table.written_columns, start=1):
            kind = table.column_kind(col)
            cell = sheet.cell(row=R.XLSX_HEADER_ROW + 1, column=j)
            if kind and isinstance(cell.value, float) and not table.unit_column and col not in table.formats:
                assert cell.number_format == KINDS[kind].excel, (sheet.title, col)
                money += kind == "money"
                rate += kind == "rate"
    assert money and rate


def test_printed_summaries_are_the_full_tables_numbers(report):
    # the board prints "central (low to high)" per scenario and year; the workbook has the
    # numbers in the full tables: both must say the same
    tables = _tables(report)
    count, money = KINDS["count"].text, KINDS["money"].text
    glance = tables["forecast_glance"].frame.set_index(["measure", "scenario"])
    full = tables["forecast_summary"].frame
    assert len(glance) * (glance.shape[1]) == len(full)
    for r in full.itertuples():
        expected = f"{count(r.median)} ({count(r.lower)} to {count(r.upper)})"
        assert glance.loc[(r.measure, r.scenario), f"March {r.year}"] == expected
    cost = tables["cost_glance"].frame.set_index("scenario")
    full = tables["cost_3_5_10"].frame
    later = full[full["years_ahead"] > 0]
    assert len(later) == len(cost) * len(later["financial_year"].unique())
    for r in later.itertuples():
        expected = f"{money(r.median_gbp_per_year)} ({money(r.lower_gbp_per_year)} to {money(r.upper_gbp_per_year)})"
        assert cost.loc[r.scenario, r.financial_year] == expected
    change = tables["cost_change_3_5_10"].frame
    last = change[change["years_ahead"] == change["years_ahead"].max()].set_index("scenario")
    column = next(c for c in cost.columns if c.startswith("Change by"))
    for name, pct in last["median_change_percent"].items():
        assert cost.loc[name, column] == KINDS["percent_scale"].text(pct)


def test_the_why_answer_gives_the_published_starters_and_leavers(toy, report):
    from tests.test_report import toy_panel

    run, _ = toy
    panel = toy_panel(run).set_index(["la_code", "year"])
    why = next(b for b in report.sections[0].blocks if b.kind == "answer" and b.key == "why")
    assert "entering and leaving care (not modelled)" in why.verdict
    checked = 0
    for f in why.figures:
        m = re.search(r"(starting|leaving) care a year, years to March (\d{4})-(\d{4})", f.label)
        if not m:
            continue
        column = "started" if m.group(1) == "starting" else "ceased"
        years = range(int(m.group(2)), int(m.group(3)) + 1)
        assert f.value == pytest.approx(np.mean([panel.at[(report.la, y), column] for y in years]))
        assert f.lower is None and f.text in why.verdict
        checked += 1
    assert checked >= 2


def test_starters_and_leavers_leave_out_a_window_with_an_unpublished_year():
    from bayes_lac.report.answers import starters_and_leavers

    panel = pd.DataFrame(
        {
            "la_code": "E1",
            "year": [2010, 2011, 2012, 2013],
            "started": [10.0, 20.0, np.nan, 40.0],
            "ceased": [5.0, 15.0, 25.0, 35.0],
        }
    )
    sentence, figures = starters_and_leavers(panel, "E1", [(2010, 2011), (2011, 2013)])
    assert "from 2010 to 2011, 20 a year started care and 15 a year left" in sentence
    assert "2011 to 2013" not in sentence  # 2012's starters are not published
    assert "in the year to March 2013, 40 started and 35 left" in sentence
    assert [f.value for f in figures] == [20.0, 15.0, 40.0, 35.0]
    assert starters_and_leavers(panel.drop(columns="ceased"), "E1", [(2010, 2011)]) is None
    # a window of the latest year alone is not said twice
    once, _ = starters_and_leavers(panel, "E1", [(2012, 2013)])
    assert "from 2012 to 2013, 40 a year started care and 35 a year left." == once.split(": ", 1)[1]
    # no window with every year published: nothing, not the latest year alone
    assert starters_and_leavers(panel, "E1", [(2011, 2013)]) is None


def test_no_table_writes_an_index_column(report):
    # the defect: the fan tables came with a stray `index` column
    for _, table in report.tables():
        assert "index" not in table.frame.columns, table.key


def test_headline_sheet_holds_page_one_numbers(report, workbook):
    from openpyxl import load_workbook

    answers = [b for b in report.sections[0].blocks if b.kind == "answer"]
    expected = answers_table(answers)
    sheet = read_table_sheet(workbook, "Headline")
    assert load_workbook(workbook).sheetnames[0] == "Headline"
    assert list(sheet[column_header("figure")]) == list(expected["figure"])
    np.testing.assert_allclose(sheet["Value"].to_numpy(float), expected["value"].to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(
        sheet["Likely range: low"].to_numpy(float), expected["lower"].to_numpy(float), rtol=1e-12
    )
    # each value is shown in its kind's format
    book = load_workbook(workbook)
    ws = book["Headline"]
    header = [c.value for c in ws[R.XLSX_HEADER_ROW]]
    for i, kind in enumerate(expected["kind"], start=R.XLSX_HEADER_ROW + 1):
        assert ws.cell(row=i, column=header.index("Value") + 1).number_format == KINDS[kind].excel


# ---------------------------------------------------------------------------------------------
# 4. Page one: every number equals the analysis result it comes from
# ---------------------------------------------------------------------------------------------


def _answers(report) -> dict:
    return {b.key: b for b in report.sections[0].blocks if b.kind == "answer"}


def test_page_one_forecasts_are_the_forecast_table(toy, report, page):
    run = toy[0]
    fc = fmod.forecast(run, horizon=R.FORECAST_HORIZON, scenarios=R.REPORT_SCENARIOS, seed=0)
    table = fmod.forecast_table(fc, measures=["looked_after"], scenarios=["trend"]).set_index("year")
    how_many = _answers(report)["how_many"]
    assert len(how_many.figures) == 2
    for f, h in zip(how_many.figures, (5, 10)):
        row = table.loc[fc.base_year + h]
        assert (f.value, f.lower, f.upper) == pytest.approx((row["median"], row["lower"], row["upper"]))
        # the page prints the same number in the count format
        assert f"about {format_count(row['median'])} in March {fc.base_year + h}" in html.unescape(page)


def test_page_one_position_is_computed_from_the_published_rates(report):
    rising = _answers(report)["rising"]
    comparison = _tables(report)["compare_looked_after_detail"].frame
    latest = comparison["year"].max()
    at = comparison[comparison["year"] == latest].set_index("group")["rate"]
    word = "below" if at["target"] < at["neighbours_average"] else "above"
    assert f"is now {word} its neighbours" in rising.verdict or "level with" in rising.verdict
    published = rising.figures[0]
    assert (
        published.value
        == comparison[(comparison["year"] == latest) & (comparison["group"] == "target")]["count"].item()
    )


def test_page_one_cost_and_budget_risk_are_the_cost_analysis(toy, report):
    from bayes_lac.report.answers import answer_cost

    cost = _answers(report)["cost"]
    chances = [f for f in cost.figures if f.kind == "probability"]
    chance = chances[0]
    assert chance.kind == "probability"
    assert format_chance(chance.value) in cost.verdict
    table = _tables(report)["cost_3_5_10"].frame
    base = int(table["year"].min())
    assert format_financial_year(base + 1) in cost.verdict
    # without a budget, this year's cost stands in, and the figure says so
    assert "this year's" in chance.label
    # and the chance at 3, 5 and 10 years were it held at that level, from the cost analysis
    later = chances[1:]
    assert len(later) == len([h for h in (3, 5, 10) if base + h <= int(table["year"].max())])
    for f in later:
        assert "held at that level" in f.label and format_probability(f.value) in cost.verdict
    assert answer_cost.__doc__ and "budget" in answer_cost.__doc__


@pytest.mark.slow  # builds a whole report (about 20 s on 2 cores)
def test_a_budget_given_to_the_report_is_the_one_page_one_weighs(toy):
    """`build_report(budget=...)` (``report --budget``) replaces this year's cost on page one:
    a budget of £1 is exceeded in every draw (the report without a budget, the `report`
    fixture, weighs this year's cost: see the test above)."""
    run, _ = toy
    from tests.test_report import toy_panel

    # power-scaling (Appendix A) has no part in page one
    with_budget = R.build_report(run, panel=toy_panel(run), budget=1.0, power_scaling=False)
    chance = next(f for f in _answers(with_budget)["cost"].figures if f.kind == "probability")
    assert chance.kind == "probability" and format_probability(chance.value) == ">99%"
    assert "the budget of £1" in chance.label and "this year's" not in chance.label


def test_page_one_prevention_is_the_intervention_results(report):
    prevention = _answers(report)["prevention"]
    tables = _tables(report)
    for f in prevention.figures:
        if f.kind != "probability":
            continue
        name = f.label.split(":")[0]
        key = next(
            k for k, t in tables.items() if k.startswith("invest_") and t.caption.lower().startswith(name.lower())
        )
        p = tables[key].frame.set_index("quantity").loc["prob_net_saving", "mean"]
        assert f.value == pytest.approx(p)
        assert format_probability(p) in prevention.verdict


def test_page_one_numbers_are_printed_on_the_page(report, page):
    text = re.sub(r"\s+", " ", _section_text(page, "headlines"))
    for answer in _answers(report).values():
        assert answer.verdict in text
        assert f'href="#{answer.anchor}"' in _section_page(page, "headlines")


def test_cost_headline_and_workbook_agree_to_the_pound(toy, report, workbook):
    cost = _answers(report)["cost"]
    sheet = read_table_sheet(workbook, "Headline").set_index(column_header("figure"))
    for f in cost.figures:
        assert sheet.loc[f.label, "Value"] == pytest.approx(f.value, rel=1e-12)
    assert isinstance(cmod.financial_year(2030), str) and cmod.financial_year(2030) == format_financial_year(2030)


# ---------------------------------------------------------------------------------------------
# 5. Charts
# ---------------------------------------------------------------------------------------------


def test_every_chart_states_its_message_in_its_alt_text(report):
    from bayes_lac.report.charts import alt_text_problem

    problems = {f.caption: alt_text_problem(f.alt) for f in report.figures() if alt_text_problem(f.alt)}
    assert not problems


def test_alt_text_that_only_describes_the_drawing_is_refused():
    import matplotlib.pyplot as plt

    from bayes_lac.report.charts import alt_text_problem

    # the defect: the comparison chart's alt text named colours and markers, not the message
    old = (
        "Line chart of the rate by year: Thurrock (solid black line with circles), the comparison "
        "authorities pooled (dash-dot orange with squares) and England (dashed blue with triangles)."
    )
    assert "describes the drawing" in alt_text_problem(old)
    assert "no number" in alt_text_problem("A chart of the cost by scenario.")
    assert alt_text_problem("Thurrock had 59.6 per 10,000 children in 2025 against England 67.1.") == ""
    fig, _ = plt.subplots()
    table = R.make_table("t", "c", pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="does not state its message"):
        R.ReportFigure.from_matplotlib(fig, alt=old, caption="C", twin=table)
    plt.close(fig)


def test_captions_start_upper_case(report):
    for f in report.figures():
        assert f.caption[:1].isupper(), f.caption
    for _, t in report.tables():
        assert t.caption[:1].isupper(), t.caption


def test_level_axes_start_at_zero_and_bands_have_outlines():
    import matplotlib.pyplot as plt

    from bayes_lac.report.charts import axes_from_zero, greyscale_safe

    fig, ax = plt.subplots()
    x = np.arange(5)
    for i, colour in enumerate(("C0", "C1", "C2")):
        ax.fill_between(x, 40 + i, 50 + i, color=colour, alpha=0.3)
        ax.plot(x, 45 + i + x, color=colour, linestyle="-", label=f"s{i}")
    ax.legend()
    assert ax.get_ylim()[0] > 0
    axes_from_zero(fig)
    assert ax.get_ylim()[0] == 0
    greyscale_safe(fig)
    styles = [line.get_linestyle() for line in ax.get_lines()]
    # three series, three line styles: they differ by more than colour
    assert len(set(styles)) == 3
    for band in ax.collections:
        assert band.get_edgecolor()[0][3] == 1.0 and band.get_linewidth()[0] > 0
    plt.close(fig)


def test_neighbours_are_named_and_highlighted_on_demand(toy):
    import matplotlib.pyplot as plt

    from bayes_lac.analysis import compare as emod
    from bayes_lac.report.charts import name_neighbours
    from tests.test_report import toy_panel

    run = toy[0]
    neighbours, _ = R.comparison_neighbours(run, run.attrs["target_la"])
    table = emod.comparison_table(toy_panel(run), run.attrs["target_la"], neighbours, measures=["looked_after"])
    fig = emod.plot_comparison(table, measure="looked_after")
    ax = fig.axes[0]
    names = table.loc[table["group"].isin(neighbours), "la_name"].unique()
    written = name_neighbours(ax, table, "looked_after", highlight=[neighbours[0]])
    assert sorted(written) == sorted(names)
    assert {t.get_text() for t in ax.texts} >= set(names)
    bold = [t for t in ax.texts if t.get_fontweight() == "bold"]
    assert [t.get_text() for t in bold] == [table.loc[table["group"] == neighbours[0], "la_name"].iloc[0]]
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# 6. Print layout
# ---------------------------------------------------------------------------------------------


def test_each_notice_is_printed_once(report):
    # the defect: the same imputation notices were repeated in two windows (p6 and p8)
    notices = [b.text for s in report.sections for b in s.blocks if b.kind == "notice"]
    repeated = {n for n in notices if notices.count(n) > 1}
    assert not repeated


def test_pointers_to_the_analyst_notes_name_the_right_appendix(report):
    titles = {s.title for s in report.sections}
    for s in report.sections:
        for b in s.blocks:
            if b.kind == "paragraph" and b.text.startswith("The modelling detail of this section is in "):
                target = b.text.removeprefix("The modelling detail of this section is in ").split(";")[0]
                assert target in titles


def test_print_style_keeps_headings_with_content_and_rows_whole(page):
    style = page.split("<style>")[1].split("</style>")[0]
    assert re.search(r"h2, h3 \{ break-after: avoid;", style)
    assert "tr, td, th { break-inside: avoid; }" in style
    assert "section.report-section.page-start { break-before: page; }" in style
    # the board sections follow on; every appendix starts a page
    flags = {s.key: report_starts(page, s.key) for s in built_toy_report()[1].sections}
    assert not any(flags[k] for k in R.BOARD_SECTIONS if k in flags)
    assert flags["model-card"] and flags["glossary"]


def report_starts(page: str, key: str) -> bool:
    return bool(re.search(rf'<section class="report-section page-start" id="{re.escape(key)}"', page))


def test_chart_titles_and_legends_use_the_board_words():
    import matplotlib.pyplot as plt

    from bayes_lac.report.charts import plain_chart_words

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="trend (median)")
    ax.set_title("bars: posterior means; whiskers: 90% credible intervals")
    ax.legend(title="Bands: 90% credible interval")
    plain_chart_words(fig)
    assert ax.get_title() == "bars: averages; whiskers: likely ranges (90%)"
    assert ax.get_legend().get_title().get_text() == "Bands: likely range (90%)"
    plt.close(fig)


def test_a_peak_first_published_otherwise_is_reconciled_on_page_one(toy):
    """Thurrock's 2017 count was first published as 345 and revised to 333: page one says so."""
    from bayes_lac.analysis.compare import comparison_table
    from bayes_lac.data.panel import load_panel
    from bayes_lac.report.answers import answer_rising, first_release_counts, revision_words

    panel = load_panel()
    thurrock = "E06000034"
    table = comparison_table(panel, thurrock, ["E06000033"])
    fc = fmod.forecast(toy[0], horizon=2, scenarios=["trend"], seed=0)
    first = first_release_counts(panel, thurrock)
    assert first[2017] == 345 and first[2016] == 334
    verdict = answer_rising(table, fc, "Thurrock", first_release=first).verdict
    assert (
        "after peaking at 333 children looked after in 2016 and 2017 (first published as 334 for 2016 and "
        "345 for 2017, later revised: this report uses the revised figures throughout)" in verdict
    )
    assert "first published" not in answer_rising(table, fc, "Thurrock").verdict
    # a first release equal to the revised count, or none, needs no words
    assert revision_words({2017: 333.0}, {2017: 333.0}, [2017]) == ""
    assert revision_words({}, {2017: 333.0}, [2017]) == ""
    assert revision_words({2017: 345.0}, {2017: 333.0}, [2017]) == "first published as 345, later revised"


def test_the_uasc_scenario_adds_children_up_to_the_transfer_scheme_threshold(toy, report):
    """The report's fourth scenario: the trend, with UASC at 0.1 % of the child population."""
    run = toy[0]
    fc = fmod.forecast(run, horizon=R.FORECAST_HORIZON, scenarios=R.REPORT_SCENARIOS, seed=0)
    assert "uasc-threshold" in fc.scenario_names
    expected = fc.data["expected_reported"]
    shift = expected.sel(scenario="uasc-threshold") - expected.sel(scenario="trend")
    la = run.attrs["target_la"]
    uasc_last = float(run["constant_data"]["uasc"].sel(la=la, year=fc.base_year))
    uasc = fc.data["uasc"]
    # UASC at 0.1 % of each draw's projected child population, against the latest count held
    np.testing.assert_allclose(
        uasc.sel(scenario="uasc-threshold").values, R.UASC_THRESHOLD * fc.data["population_0_17"].values
    )
    np.testing.assert_allclose(uasc.sel(scenario="trend").values, uasc_last)
    # ...and the expected looked-after count moves by exactly that difference
    np.testing.assert_allclose(
        shift.sel(measure="looked_after").values,
        (uasc.sel(scenario="uasc-threshold") - uasc.sel(scenario="trend")).values,
    )
    assert float(shift.sel(measure="looked_after").min()) > 0  # the toy's 10 UASC are below 40
    np.testing.assert_allclose(shift.sel(measure=["children_in_need", "child_protection"]).values, 0.0)
    tables = _tables(report)
    assert "fan_uasc-threshold" in tables
    summary = tables["forecast_summary"].frame
    assert "uasc-threshold" in set(summary["scenario"])
    assert any("uasc-threshold: future UASC = 0.1% of the child population" in a for a in fc.assumptions)


# -- an authority with suppressed counts and no unit cost (the Isles of Scilly's case) ----------


def test_counts_of_none_then_none_are_level_not_rising():
    from bayes_lac.report.answers import trend_words

    table = pd.DataFrame(
        {
            "measure": "looked_after",
            "group": "target",
            "year": [2016, 2017, 2018, 2019],
            "count": [0.0, 0.0, 0.0, 0.0],
            "rate": 0.0,
        }
    )
    assert trend_words(table)[0] == "broadly level"
    table.loc[table["year"] == 2019, "count"] = 2.0
    assert trend_words(table)[0] == "rising"


def test_a_counterfactual_end_without_a_published_count_is_said_so():
    cf = pd.DataFrame({"year": [2025, 2025], "series": ["published", "demand_only"], "median": [np.nan, 3.2]})
    alt = R._counterfactual_alt(cf, "Children looked after", "Isles of Scilly", 2025)
    assert alt == "Children looked after in Isles of Scilly in March 2025: published not published; demand only 3."


def test_a_scenario_the_numbers_cannot_carry_names_itself():
    from bayes_lac.errors import ScenarioError
    from tests.conftest import make_toy_results

    # 5,000 UASC against about 240 children looked after at England's rate
    run = make_toy_results(uasc=np.full((4, 11), 5_000.0))
    with pytest.raises(ScenarioError, match="converge-england: the assumed UASC count exceeds") as err:
        fmod.forecast(run, horizon=3, scenarios=["trend", "converge-england"], seed=0)
    assert err.value.scenario == "converge-england"


@pytest.mark.slow  # builds a whole report (about 40 s on 2 cores)
def test_a_report_without_unit_costs_or_a_feasible_scenario_says_what_it_left_out():
    from tests.conftest import make_toy_results
    from tests.test_report import _with_published_counts, toy_panel

    run = _with_published_counts(make_toy_results(years=(2009, 2020), uasc=np.full((4, 12), 5_000.0)))
    panel = toy_panel(run).drop(columns=["weekly_cost_per_child"])
    rep = R.build_report(run, panel=panel, power_scaling=False)
    html_text = html.unescape(R.render_html(rep))
    assert "No cost is estimated for Area 0: " in html_text
    assert "The converge-england scenario is not shown for Area 0: the assumed UASC count exceeds" in html_text
    answers = {a.key: a for a in _answers(rep).values()}
    # page one still answers the cost question: why there is no cost
    assert answers["cost"].figures == () and answers["cost"].verdict == (
        "No cost is estimated: the panel has no published unit cost or spend on children looked after "
        "for Area 0, so there is no unit cost to start from."
    )
    assert not jargon_in(answers["cost"].verdict)
    assert "rising" in answers
    assert "Forecasts under three scenarios" in html_text


@pytest.mark.slow  # builds a whole report
def test_a_unit_cost_history_too_short_to_project_leaves_out_the_cost_and_says_why():
    # the defect: Cumberland (created 2023, one published unit cost) stopped `report --all`
    from tests.conftest import make_toy_results
    from tests.test_report import _with_published_counts, toy_panel

    run = _with_published_counts(make_toy_results(years=(2009, 2020)))
    panel = toy_panel(run)
    target = panel["la_code"] == run.attrs["target_la"]
    panel.loc[target & (panel["year"] < 2020), "weekly_cost_per_child"] = np.nan
    rep = R.build_report(run, panel=panel, power_scaling=False)
    text = html.unescape(R.render_html(rep))
    assert "No cost is estimated for Area 0: the unit-cost flat method needs at least 4 years" in text
    assert "method='resample'" not in text
    cost = next(a for a in _answers(rep).values() if a.key == "cost")
    assert (
        cost.verdict == "No cost is estimated: the unit-cost flat method needs at least 4 years up to 2020 (found 1)."
    )


def test_invest_to_save_is_priced_in_the_authoritys_latest_money_and_unit_cost(toy, report):
    from bayes_lac.analysis import interventions as iv
    from tests.test_report import toy_panel

    panel = toy_panel(toy[0])
    year = cmod.latest_unit_cost_year(panel, report.la, until=2020)
    basis = f"cash prices of {format_financial_year(year)}"
    section = next(s for s in report.sections if s.key == "interventions")
    text = " ".join(b.text for b in section.blocks if b.kind == "paragraph")
    assert f"priced in {basis}" in text
    weekly = cmod.unit_cost_history(panel, report.la).set_index("year").at[year, "weekly_cost_per_child"]
    for name in iv.bundled_interventions():
        table = _tables(report)[f"invest_{name}"].frame.set_index("quantity")
        assert table.at["net_saving", "unit"] == f"£ a year, {basis}"
        spec = iv.rebase_intervention(iv.load_intervention(name), panel, report.la, year)
        if spec.unit_cost_per != "outcome":
            # a child kept out of care saves the authority's own unit cost of care that year
            assert spec.quantities["unit_cost"].point == pytest.approx(weekly * cmod.WEEKS_PER_YEAR)
            saving = iv.evaluate_intervention(spec, draws=R.INTERVENTION_DRAWS, seed=0)
            assert table.at["gross_saving", "median"] == pytest.approx(float(saving.draws["gross_saving"].median()))
    # page one: the surest service's chance, its saving in the one price basis and its break-even
    answer = next(b for b in report.sections[0].blocks if b.kind == "answer" and b.key == "prevention")
    assert basis in answer.verdict and "breaks even at" in answer.verdict and "against the source's" in answer.verdict
    # the source's own figures stay in the source's prices, beside each finding
    assert text.count("The source's own figures:") == len(iv.bundled_interventions())
    assert "(cash prices of 2016-17)" in text


def test_a_negative_sum_in_prose_is_never_split_across_lines():
    # the defect: the PDF printed "likely -" at the end of a line and "£39,507" on the next
    html_text = str(R._prose_html("net saving -£1.51m to £2m (likely -£39,507 & <more>)"))
    assert '<span class="nobr">-£1.51m</span>' in html_text and '<span class="nobr">-£39,507</span>' in html_text
    assert "&amp; &lt;more&gt;" in html_text  # still escaped
    assert ".nobr { white-space: nowrap; }" in R.render_html(R.Report(la="X", la_name="X", sections=[]))


def test_a_report_on_a_0_2_run_does_not_quote_the_latent_models_backtest(report):
    # the toy run is of the 0.2 model; the shipped backtest scored the latent-state model
    assert R._backtest_model_name() == "LatentModel"
    section = next(s for s in report.sections if s.key == "forecasts")
    text = " ".join(b.text for b in section.blocks if b.kind == "paragraph")
    assert R.other_model_words("LatentModel") in text
    assert "How far ahead forecasts of this kind have been tested" not in text
    fan = _tables(report)["fan_trend"].frame
    forecast_rows = fan[fan["scenario"] == "trend"]
    assert set(forecast_rows["backtested"]) == {"no"}  # no year of its fan was checked
    card = next(s for s in report.sections if s.key == "model-card")
    assert any(R.other_model_words("LatentModel") in b.text for b in card.blocks if isinstance(b, R.Notice))
    # the other scenarios are assumptions, never backtested
    others = [t.frame for _, t in report.tables() if t.key.startswith("fan_") and t.key != "fan_trend"]
    assert others and all((f.loc[f["scenario"] != "observed", "backtested"] == "no").all() for f in others)


def test_checked_words_name_the_unchecked_measures():
    words = R.checked_words(["looked_after", "children_in_need"], {"looked_after": 5}, stale=False)
    assert "checked 1 to 5 years ahead" in words and "those of children in need not at all" in words
    assert "earlier version" not in words
    assert "not at all" in R.checked_words(["looked_after"], {}, stale=True)
    assert "checked 1 year ahead" in R.checked_words(["looked_after"], {"looked_after": 1}, stale=False)
    # no backtest shipped: said so, not "checked not at all"
    assert R.checked_words(["looked_after"], None, stale=False).startswith("No backtest is shipped")
    # every measure checked as far: one phrase, not the same words three times
    three = ["looked_after", "children_in_need", "child_protection"]
    words = R.checked_words(three, dict.fromkeys(three, 5), stale=False)
    assert "forecasts of all 3 measures were checked 1 to 5 years ahead" in words
    assert words.count("checked") == 1
    words = R.checked_words(three, {"looked_after": 5, "children_in_need": 4, "child_protection": 4}, stale=False)
    assert "children looked after were checked 1 to 5" in words and "children in need were checked 1 to 4" in words
