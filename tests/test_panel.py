"""The panel loader: what it accepts, how it types values, what it reports.

Bad input that must be refused is covered (with the CLI's exit status) in test_cli_data.py;
here: valid variants are read correctly, nothing is dropped or invented, and the DataFrame
API (validate_panel, panel_sha256, rates) does what it says.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_lac
from bayes_lac.config import BUNDLED_PANEL
from bayes_lac.data.panel import (
    COUNT_COLUMNS,
    REQUIRED_COLUMNS,
    SUPPRESSION_MARKERS,
    coverage,
    load_panel,
    panel_sha256,
    rates,
    validate_panel,
    with_rates,
)
from bayes_lac.errors import PanelError

SMALL_PANEL = Path(__file__).parent / "data" / "panel_small.csv"


def small_panel_text() -> str:
    return SMALL_PANEL.read_text(encoding="utf-8")


def set_cell(text: str, line: int, column: str, value: str) -> str:
    """The CSV text with one cell (by editor line number and column name) replaced."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def write(tmp_path: Path, text: str | bytes, name: str = "panel.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def test_package_exports_load_panel():
    assert bayes_lac.load_panel is load_panel


def test_small_panel_loads_with_types_and_values():
    panel = load_panel(SMALL_PANEL)

    assert list(panel.columns) == list(REQUIRED_COLUMNS)
    assert len(panel) == 6
    assert panel["year"].dtype == np.int64
    for column in ("population_0_17", *COUNT_COLUMNS):
        assert panel[column].dtype == "Int64", column
    assert panel["deprivation"].dtype == np.float64
    assert pd.api.types.is_string_dtype(panel["la_code"])
    assert pd.api.types.is_string_dtype(panel["la_name"])
    first = panel.iloc[0]
    assert (first["la_code"], first["la_name"], first["year"]) == ("E06000034", "Thurrock", 2016)
    assert first["population_0_17"] == 41230 and first["looked_after"] == 296
    assert first["deprivation"] == pytest.approx(18.4)
    assert panel.attrs["source"] == str(SMALL_PANEL)
    assert panel.attrs["notices"] == []


def test_excel_export_with_bom_crlf_and_quoted_thousands_is_accepted(tmp_path):
    text = small_panel_text().replace("1320000", '"1,320,000"').replace("389430", '"389,430"')
    path = write(tmp_path, b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))

    panel = load_panel(path)

    assert list(panel.columns) == list(REQUIRED_COLUMNS)  # BOM not glued to 'la_code'
    assert panel.loc[4, "population_0_17"] == 1_320_000
    assert panel.loc[5, "children_in_need"] == 389_430
    assert panel_sha256(panel) == panel_sha256(load_panel(SMALL_PANEL))
    notices = " | ".join(panel.attrs["notices"])
    assert (
        "population_0_17: read 1 number(s) written with thousands separators (first at line 6: '1,320,000')" in notices
    )
    assert "children_in_need: read 1 number(s)" in notices


def test_windows_1252_file_is_read_with_a_notice(tmp_path):
    text = small_panel_text().replace("Southend-on-Sea", "Southend-on-Sea \u2013 Borough")
    path = write(tmp_path, text.encode("cp1252"))

    panel = load_panel(path)

    assert panel.loc[2, "la_name"] == "Southend-on-Sea \u2013 Borough"
    assert any("is not UTF-8; read it as Windows-1252" in n for n in panel.attrs["notices"])


def test_utf16_excel_unicode_text_is_refused_as_tab_separated(tmp_path):
    text = small_panel_text().replace(",", "\t")
    path = write(tmp_path, text.encode("utf-16"))
    with pytest.raises(PanelError, match="looks like tab-separated"):
        load_panel(path)


@pytest.mark.parametrize("marker", sorted(SUPPRESSION_MARKERS | {"C", "NA", "n/a", "NULL", "NaN"}))
def test_suppression_markers_are_not_available_never_numbers(tmp_path, marker):
    text = set_cell(small_panel_text(), 3, "looked_after", marker)
    text = set_cell(text, 4, "looked_after", marker)
    text = set_cell(text, 5, "uasc", marker)

    panel = load_panel(write(tmp_path, text))

    assert panel["looked_after"].isna().tolist() == [False, True, True, False, False, False]
    assert panel["uasc"].isna().sum() == 1
    assert panel["looked_after"].dtype == "Int64"
    notices = panel.attrs["notices"]
    assert f"looked_after: 2 cell(s) read as not available ('{marker}': 2)" in " | ".join(notices)
    assert f"uasc: 1 cell(s) read as not available ('{marker}': 1)" in " | ".join(notices)


def test_blank_cells_are_not_available_silently_and_nothing_is_dropped(tmp_path):
    text = set_cell(small_panel_text(), 2, "deprivation", "")
    text = set_cell(text, 3, "child_protection", "")
    text = set_cell(text, 6, "population_0_17", "")

    panel = load_panel(write(tmp_path, text))

    assert len(panel) == 6
    assert np.isnan(panel.loc[0, "deprivation"])
    assert panel["child_protection"].isna().tolist() == [False, True, False, False, False, False]
    assert pd.isna(panel.loc[4, "population_0_17"])
    assert panel.loc[4, "looked_after"] == 6120  # count kept although the denominator is missing
    assert panel.attrs["notices"] == []


def test_whole_numbers_written_with_decimals_are_counts(tmp_path):
    text = set_cell(small_panel_text(), 2, "population_0_17", "41230.0")
    text = set_cell(text, 2, "looked_after", "296.00")
    text = set_cell(text, 2, "year", "2016.0")

    panel = load_panel(write(tmp_path, text))

    assert panel.loc[0, "population_0_17"] == 41230
    assert panel.loc[0, "looked_after"] == 296
    assert panel.loc[0, "year"] == 2016


def test_whitespace_is_trimmed(tmp_path):
    lines = small_panel_text().splitlines()
    lines[0] = " " + lines[0].replace(",", " , ")
    lines[1] = " E06000034 ,  Thurrock , 2016 , 41230 ,296, 1410,205,25 , 18.4 "
    panel = load_panel(write(tmp_path, "\n".join(lines) + "\n"))

    assert list(panel.columns) == list(REQUIRED_COLUMNS)
    assert (panel.loc[0, "la_code"], panel.loc[0, "la_name"], panel.loc[0, "uasc"]) == ("E06000034", "Thurrock", 25)


def test_extra_columns_are_kept_typed_and_reported(tmp_path):
    rows = list(csv.reader(io.StringIO(small_panel_text())))
    rows[0] += ["old_la_code", "weekly_cost_per_child", "note", "spend", "mixed"]
    last = len(rows) - 1
    for i, row in enumerate(rows[1:], start=1):
        row += [str(880 + i), f"{5000 + i / 4}", "x" if i == 2 else f"note {i}", "c" if i == 3 else str(1000 * i)]
        row += ["see notes" if i == last else str(i)]  # numbers, then text in the last row only
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)

    panel = load_panel(write(tmp_path, out.getvalue()))

    assert list(panel.columns) == list(REQUIRED_COLUMNS) + [
        "old_la_code",
        "weekly_cost_per_child",
        "note",
        "spend",
        "mixed",
    ]
    assert panel["mixed"].tolist()[:2] == ["1", "2"] and panel["mixed"].iloc[-1] == "see notes"  # text throughout
    assert panel.loc[0, "old_la_code"] == "881"  # codes stay text
    assert panel["weekly_cost_per_child"].dtype == np.float64
    assert panel.loc[1, "weekly_cost_per_child"] == pytest.approx(5000.5)
    assert panel["note"].tolist()[:3] == ["note 1", "x", "note 3"]  # text column keeps its text
    assert panel["spend"].dtype == "Int64" and pd.isna(panel.loc[2, "spend"])
    # weekly_cost_per_child is read by costs and the report: it used to be called "not used"
    assert panel.attrs["notices"][0] == (
        "extra column(s) not read by any output, kept in the table: old_la_code, note, spend, mixed"
    )


def test_renamed_area_is_a_notice_not_an_error(tmp_path):
    text = set_cell(small_panel_text(), 5, "la_name", "Southend-on-Sea City")
    panel = load_panel(write(tmp_path, text))
    assert panel.loc[3, "la_name"] == "Southend-on-Sea City"
    assert panel.attrs["notices"] == [
        "1 code(s) appear under more than one la_name (E06000033: Southend-on-Sea / "
        "Southend-on-Sea City); areas get renamed, so the code is what identifies an area"
    ]


def test_blank_lines_and_trailing_empty_columns_are_skipped_with_notices(tmp_path):
    lines = small_panel_text().splitlines()
    lines = [line + ",," for line in lines]
    lines.insert(3, "")
    lines.append(",,,,,,,,,,")
    panel = load_panel(write(tmp_path, "\n".join(lines) + "\n"))

    assert list(panel.columns) == list(REQUIRED_COLUMNS)
    assert len(panel) == 6
    assert panel.attrs["notices"] == [
        "skipped 2 empty line(s): 4, 9",
        "ignored 2 column(s) with no name and no values",
    ]


def with_column(text: str, name: str, values: dict[int, str]) -> str:
    """The CSV text with a column added (cells by editor line number; others blank)."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[0].append(name)
    for line, row in enumerate(rows[1:], start=2):
        row.append(values.get(line, ""))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_line_numbers_count_quoted_line_breaks(tmp_path):
    text = with_column(small_panel_text(), "note", {2: "two\nlines"})
    text = set_cell(text, 4, "looked_after", "many")
    with pytest.raises(PanelError, match=r"^\S+: line 5 \(E06000033, 2016\), column 'looked_after'"):
        load_panel(write(tmp_path, text))


def test_line_breaks_and_tabs_are_kept_in_free_text_columns_but_refused_in_names(tmp_path):
    text = with_column(small_panel_text(), "note", {2: "two\nlines", 3: "a\ttab"})
    panel = load_panel(write(tmp_path, text))
    assert panel.loc[0, "note"] == "two\nlines" and panel.loc[1, "note"] == "a\ttab"

    named = set_cell(small_panel_text(), 2, "la_name", "Thurrock\n(unitary)")
    with pytest.raises(PanelError, match=r"line 2 \(E06000034, 2016\), column 'la_name'.*U\+000A \(LINE FEED\)"):
        load_panel(write(tmp_path, named, "named.csv"))


def test_windows_1252_notice_names_the_lines_to_check(tmp_path):
    text = small_panel_text().replace("Southend-on-Sea,2017", "Southend-on-S\u00e9a,2017")
    panel = load_panel(write(tmp_path, text.encode("cp1252")))
    assert panel.loc[3, "la_name"] == "Southend-on-S\u00e9a"
    assert any("check the accented or special characters on line(s) 5;" in n for n in panel.attrs["notices"])


def test_deprivation_in_scientific_notation_is_read_as_written_with_a_notice(tmp_path):
    # counts refuse scientific notation (the count may not be exact); a 0-100 measure is
    # read exactly as written, and the notice says so
    panel = load_panel(write(tmp_path, set_cell(small_panel_text(), 3, "deprivation", "1.89E+01")))
    assert panel.loc[1, "deprivation"] == pytest.approx(18.9)
    assert any(
        n.startswith("deprivation: read 1 number(s) written in scientific notation (first at line 3: '1.89E+01')")
        for n in panel.attrs["notices"]
    )


def test_notebook_dataframe_with_infinite_or_absurd_values_is_refused():
    df = load_panel(SMALL_PANEL)
    df["deprivation"] = df["deprivation"].astype(float)
    df.loc[1, "deprivation"] = float("inf")
    df["population_0_17"] = df["population_0_17"].astype(float)
    df.loc[2, "population_0_17"] = 1e20
    df["la_name"] = df["la_name"].astype(object)
    df.loc[3, "la_name"] = "Southend\x0c"
    with pytest.raises(PanelError) as err:
        validate_panel(df, source="frame")
    message = str(err.value)
    assert message.startswith("frame: 3 problems:")
    assert "row with index 1 (E06000034, 2017), column 'deprivation': found 'inf', which is too large" in message
    assert (
        "row with index 2 (E06000033, 2016), column 'population_0_17': found '1e+20', more than 20,000,000" in message
    )
    assert "row with index 3 (E06000033, 2017), column 'la_name'" in message and "FORM FEED" in message


def test_error_lists_every_problem_and_names_the_file(tmp_path):
    text = set_cell(small_panel_text(), 3, "looked_after", "abc")
    text = set_cell(text, 7, "deprivation", "high")
    path = write(tmp_path, text)
    with pytest.raises(PanelError) as err:
        load_panel(path)
    message = str(err.value)
    assert message.startswith(f"{path}: 2 problems:\n")
    assert message.index("line 3 (E06000034, 2017)") < message.index("line 7 (E92000001, 2017)")


def test_bundled_panel_loads_without_extra_column_notices():
    if not BUNDLED_PANEL.exists():
        pytest.skip("data/panel.csv not built yet (bayes-lac data build)")
    panel = load_panel()
    assert panel.attrs["source"] == str(BUNDLED_PANEL)
    assert list(panel.columns[: len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    assert not any("extra column" in n for n in panel.attrs["notices"])
    assert panel["la_code"].str.fullmatch(r"E\d{8}").all()
    assert not panel.duplicated(["la_code", "year"]).any()


def test_validate_panel_accepts_a_notebook_dataframe_without_changing_it():
    df = pd.DataFrame(
        {
            "la_code": ["E06000034", "E06000034"],
            "la_name": ["Thurrock", "Thurrock"],
            "year": [2016, 2017],
            "population_0_17": [41230.0, 41650.0],
            "looked_after": [296, "c"],
            "children_in_need": [1410, 1452],
            "child_protection": [205, 198],
            "uasc": [25, np.nan],
            "deprivation": [18.4, None],
            "region": ["East", "East"],
        }
    )
    before = df.copy()

    notices = validate_panel(df, source="notebook panel")

    pd.testing.assert_frame_equal(df, before)
    assert "looked_after: 1 cell(s) read as not available ('c': 1)" in " | ".join(notices)
    assert any("extra column(s)" in n and "region" in n for n in notices)


def test_validate_panel_names_the_row_by_index_label():
    df = load_panel(SMALL_PANEL).set_index(pd.Index(list("abcdef")))
    assert validate_panel(df) == []
    df["looked_after"] = df["looked_after"].astype("Float64")
    df.loc["c", "looked_after"] = 12.5
    df.loc["e", "la_code"] = "E06000034"
    df.loc["e", "year"] = 2016
    with pytest.raises(PanelError) as err:
        validate_panel(df, source="my frame")
    message = str(err.value)
    assert message.startswith("my frame: 2 problems:")
    assert (
        "row with index 'c' (E06000033, 2016), column 'looked_after': found '12.5', which is not a whole number"
        in message
    )
    assert "rows with index 'a' and 'e' both hold E06000034 for 2016" in message


def test_validate_panel_reports_missing_columns():
    df = load_panel(SMALL_PANEL).drop(columns=["uasc"])
    with pytest.raises(PanelError, match=r"<DataFrame>: missing required column\(s\) uasc"):
        validate_panel(df)


def test_panel_hash_ignores_formatting_order_and_extras_but_not_values(tmp_path):
    base = panel_sha256(load_panel(SMALL_PANEL))
    lines = small_panel_text().splitlines()
    reordered = [lines[0]] + lines[:0:-1]
    shuffled = load_panel(write(tmp_path, "\n".join(reordered) + "\n", "reordered.csv"))
    with_extra = load_panel(SMALL_PANEL).assign(note="x")
    as_float = load_panel(SMALL_PANEL).astype({"population_0_17": "float64"})
    changed = load_panel(write(tmp_path, set_cell(small_panel_text(), 3, "uasc", "23"), "changed.csv"))

    assert len(base) == 64
    assert panel_sha256(shuffled) == base
    assert panel_sha256(with_extra) == base
    assert panel_sha256(as_float) == base
    assert panel_sha256(changed) != base


def test_rates_are_per_10000_children_and_missing_where_inputs_are():
    panel = load_panel(SMALL_PANEL)
    panel.loc[1, "looked_after"] = pd.NA
    panel.loc[2, "population_0_17"] = pd.NA

    looked_after = rates(panel, "looked_after")
    table = with_rates(panel)

    assert looked_after.name == "looked_after_rate"
    assert looked_after[0] == pytest.approx(296 / 41230 * 10_000)
    assert np.isnan(looked_after[1]) and np.isnan(looked_after[2])
    assert [c for c in table.columns if c.endswith("_rate")] == [f"{m}_rate" for m in COUNT_COLUMNS]
    assert table.loc[5, "children_in_need_rate"] == pytest.approx(389430 / 11850000 * 10_000)
    assert "looked_after_rate" not in panel.columns
    with pytest.raises(ValueError, match="measure must be one of"):
        rates(panel, "deprivation")


def test_coverage_counts_years_and_gaps():
    panel = load_panel(SMALL_PANEL)
    panel.loc[[0, 2], "deprivation"] = np.nan
    table = coverage(panel).set_index("column")
    assert table.loc["deprivation", "years_with_data"] == "2017"
    assert table.loc["deprivation", "not_available"] == 2
    assert table.loc["looked_after", "first_year"] == 2016
    assert table.loc["looked_after", "last_year"] == 2017


def test_missing_bundled_panel_says_how_to_build_it(tmp_path, monkeypatch):
    import bayes_lac.data.panel as panel_module

    monkeypatch.setattr(panel_module, "BUNDLED_PANEL", tmp_path / "data" / "panel.csv")
    with pytest.raises(
        PanelError, match=r"the bundled panel .*panel\.csv is missing; build it with `bayes-lac data build`"
    ):
        load_panel()


def test_flows_columns_are_read_as_counts_and_listed_as_optional(tmp_path):
    rows = list(csv.reader(io.StringIO(small_panel_text())))
    rows[0].extend(["started", "ceased", "ceased_returned_home"])
    for row in rows[1:]:
        row.extend(["80", "90", "x"])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    panel = load_panel(write(tmp_path, out.getvalue()))
    assert str(panel["started"].dtype) == "Int64" and panel["started"].tolist()[0] == 80
    assert panel["ceased_returned_home"].isna().all()
    notices = " | ".join(panel.attrs["notices"])
    assert "ceased_returned_home:" in notices and "read as not available ('x'" in notices
    assert "not read by any output" not in notices


def test_route_without_ceased_column_is_read_without_a_subset_check(tmp_path):
    # a user panel may carry one route alone: nothing to compare it with, nothing refused
    rows = list(csv.reader(io.StringIO(small_panel_text())))
    rows[0].append("ceased_adopted")
    for row in rows[1:]:
        row.append("7")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    assert load_panel(write(tmp_path, out.getvalue()))["ceased_adopted"].tolist()[0] == 7
