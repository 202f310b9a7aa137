"""`bayes-lac data check`: every kind of bad panel gives one clear message and exit status 2.

Each case writes a file derived from tests/data/panel_small.csv (header = line 1; Thurrock
2016 on line 2, Thurrock 2017 on line 3, Southend-on-Sea 2016/2017 on lines 4/5, the East of
England region on line 6, England on line 7) and checks that the message names the file, the
line or authority, the column and what was expected.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bayes_lac.cli import main

SMALL_PANEL = Path(__file__).parent / "data" / "panel_small.csv"
PREFIX = "bayes-lac data: error: "


def small_panel_text() -> str:
    return SMALL_PANEL.read_text(encoding="utf-8")


def set_cell(text: str, line: int, column: str, value: str) -> str:
    """The CSV text with one cell (by editor line number and column name) replaced."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def drop_columns(text: str, *columns: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in columns]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return out.getvalue()


def xlsx_bytes(tmp_path: Path) -> bytes:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for row in csv.reader(io.StringIO(small_panel_text())):
        book.active.append(row)
    path = tmp_path / "book.xlsx"
    book.save(path)
    return path.read_bytes()


PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256))


def _zip_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("panel.csv", small_panel_text())
    return path.read_bytes()


def _unnamed_column_with_data(tmp_path: Path) -> bytes:
    lines = small_panel_text().splitlines()
    return ("\n".join([lines[0] + ","] + [line + ",5" for line in lines[1:]]) + "\n").encode()


def _stray_cp1252_byte(tmp_path: Path) -> bytes:
    """A UTF-8 file (an en dash in line 4) with one Windows-1252 en dash typed into line 5."""
    text = small_panel_text().replace("Southend-on-Sea,2016", "Southend-on-Sea \u2013 Borough,2016")
    return text.encode("utf-8").replace(b"Southend-on-Sea,2017", b"Southend\x96on-Sea,2017")


def _byte_undefined_in_cp1252(tmp_path: Path) -> bytes:
    return small_panel_text().encode("utf-8").replace(b"Thurrock,2017", b"Thurrock\x81,2017")


def _with_note_column(value: str) -> bytes:
    rows = list(csv.reader(io.StringIO(small_panel_text())))
    rows[0].append("note")
    for i, row in enumerate(rows[1:], start=2):
        row.append(value if i == 4 else "")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


# (case id, function tmp_path -> file bytes, substrings the message must contain)
BAD_FILES = [
    ("empty", lambda t: b"", ["is empty (0 bytes)", "expected a CSV with a header line", "la_code,la_name,year"]),
    ("blank-lines-only", lambda t: b"\n\n  \n", ["only blank lines", "expected a header line"]),
    (
        "header-only",
        lambda t: small_panel_text().splitlines(keepends=True)[0].encode(),
        ["header (line 1) but no data rows", "expected one row per area and year"],
    ),
    (
        "missing-columns",
        lambda t: drop_columns(small_panel_text(), "uasc", "deprivation").encode(),
        [
            "missing required column(s) uasc, deprivation",
            "found: la_code, la_name, year, population_0_17, looked_after",
            "expected: la_code, la_name",
        ],
    ),
    (
        "upper-case-column",
        lambda t: small_panel_text().replace("la_code,", "LA_Code,", 1).encode(),
        ["missing required column(s) la_code", "'LA_Code' should be 'la_code'"],
    ),
    (
        "semicolons",
        lambda t: small_panel_text().replace(",", ";").encode(),
        ["line 1 (the header) looks like ;-separated", "expected commas between columns", "CSV UTF-8"],
    ),
    (
        "tabs",
        lambda t: small_panel_text().replace(",", "\t").encode(),
        ["line 1 (the header) looks like tab-separated", "expected commas"],
    ),
    ("xlsx", xlsx_bytes, ["is an Excel workbook (.xlsx), not a text CSV", "Save As", "CSV UTF-8"]),
    ("png", lambda t: PNG_BYTES, ["is a PNG image, not a text CSV", "expected a comma-separated text file"]),
    ("zip", _zip_bytes, ["is a zip archive, not a text CSV"]),
    (
        "binary-junk",
        lambda t: b"la_code\x00\x01\x02" + bytes(range(256)) * 4,
        ["is not a text CSV", "binary data", "expected a comma-separated text file"],
    ),
    (
        "non-numeric-count",
        lambda t: set_cell(small_panel_text(), 3, "looked_after", "abc").encode(),
        [
            "line 3 (E06000034, 2017), column 'looked_after': found 'abc', which is not a number",
            "expected a whole number of children, 0 or more (blank if not available)",
        ],
    ),
    (
        "fractional-count",
        lambda t: set_cell(small_panel_text(), 2, "children_in_need", "12.5").encode(),
        [
            "line 2 (E06000034, 2016), column 'children_in_need': found '12.5', which is not a whole number",
            "expected a whole number of children",
        ],
    ),
    (
        "fractional-population",
        lambda t: set_cell(small_panel_text(), 4, "population_0_17", "37900.4").encode(),
        [
            "line 4 (E06000033, 2016), column 'population_0_17': found '37900.4', which is not a whole number",
            "expected a whole number of children aged 0-17, above 0",
        ],
    ),
    (
        "negative-count",
        lambda t: set_cell(small_panel_text(), 5, "uasc", "-3").encode(),
        [
            "line 5 (E06000033, 2017), column 'uasc': found '-3', which is negative",
            "expected a whole number of children, 0 or more",
        ],
    ),
    (
        "zero-population",
        lambda t: set_cell(small_panel_text(), 2, "population_0_17", "0").encode(),
        [
            "line 2 (E06000034, 2016), column 'population_0_17': found 0",
            "expected a whole number of children aged 0-17, above 0",
        ],
    ),
    (
        "count-above-population",
        lambda t: set_cell(small_panel_text(), 3, "children_in_need", "50000").encode(),
        [
            "line 3 (E06000034, 2017), column 'children_in_need': 50,000 is more than population_0_17 (41,650)",
            "expected a count no larger than the children aged 0-17",
        ],
    ),
    (
        "uasc-above-looked-after",
        lambda t: set_cell(small_panel_text(), 4, "uasc", "400").encode(),
        [
            "line 4 (E06000033, 2016), column 'uasc': 400 is more than looked_after (330)",
            "expected at most looked_after",
        ],
    ),
    (
        "plans-above-children-in-need",
        lambda t: set_cell(small_panel_text(), 6, "child_protection", "40000").encode(),
        [
            "line 6 (E12000006, 2017), column 'child_protection': 40,000 is more than children_in_need (30,110)",
            "expected at most children_in_need",
        ],
    ),
    (
        "duplicate-area-year",
        lambda t: set_cell(small_panel_text(), 4, "la_code", "E06000034").encode(),
        ["lines 2 and 4 both hold E06000034 for 2016", "expected one row per area and year"],
    ),
    (
        "blank-la-code",
        lambda t: set_cell(small_panel_text(), 5, "la_code", "  ").encode(),
        ["line 5, column 'la_code': is blank", "expected an area code: an ONS (GSS) code such as E06000034"],
    ),
    (
        "malformed-la-code",
        lambda t: set_cell(small_panel_text(), 3, "la_code", "E0600034").encode(),
        [
            "line 3 (E0600034, 2017), column 'la_code': found 'E0600034', which looks like an ONS code but has 7 digits",
            "expected an area code",
        ],
    ),
    (
        "lower-case-la-code",
        lambda t: set_cell(small_panel_text(), 2, "la_code", "e06000034").encode(),
        ["line 2 (e06000034, 2016), column 'la_code'", "ONS codes start with a capital letter (E06000034)"],
    ),
    (
        "blank-la-name",
        lambda t: set_cell(small_panel_text(), 7, "la_name", "").encode(),
        ["line 7 (E92000001, 2017), column 'la_name': is blank", "expected the name of the area"],
    ),
    (
        "year-1890",
        lambda t: set_cell(small_panel_text(), 2, "year", "1890").encode(),
        [
            "line 2 (E06000034, 1890), column 'year': found '1890'",
            "expected a whole year from 1990 to 20",
            "31 March snapshot",
        ],
    ),
    (
        "year-2099",
        lambda t: set_cell(small_panel_text(), 3, "year", "2099").encode(),
        ["line 3 (E06000034, 2099), column 'year': found '2099'", "expected a whole year from 1990 to"],
    ),
    (
        "financial-year",
        lambda t: set_cell(small_panel_text(), 3, "year", "2015-16").encode(),
        ["line 3 (E06000034, 2015-16), column 'year': found '2015-16'", "the year it ends", "use 2016"],
    ),
    (
        "financial-year-slash",
        lambda t: set_cell(small_panel_text(), 3, "year", "1999/2000").encode(),
        ["column 'year': found '1999/2000'", "use 2000"],
    ),
    (
        "blank-year",
        lambda t: set_cell(small_panel_text(), 3, "year", "").encode(),
        ["line 3, column 'year': is blank", "expected a whole year"],
    ),
    (
        "non-numeric-deprivation",
        lambda t: set_cell(small_panel_text(), 5, "deprivation", "high").encode(),
        [
            "line 5 (E06000033, 2017), column 'deprivation': found 'high', which is not a number",
            "expected a number from 0 to 100, e.g. a percentage (blank if not available)",
        ],
    ),
    (
        "unquoted-thousands",
        lambda t: small_panel_text().replace("1320000", "1,320,000").encode(),
        ["line 6 has 11 fields but the header has 9", "thousands separator (1,234) must be in double quotes"],
    ),
    (
        "repeated-column",
        lambda t: small_panel_text().replace("deprivation", "year", 1).encode(),
        ["column name(s) repeated in the header: 'year' at columns 3, 9", "expected each once"],
    ),
    (
        "unnamed-column-with-data",
        _unnamed_column_with_data,
        ["column 10 has no name in the header but holds data (line 2: '5')", "expected a column name"],
    ),
    # values as written: control and invisible characters are refused with their line
    (
        "form-feed-in-name-broke-out-of-report-css",
        lambda t: set_cell(small_panel_text(), 3, "la_name", "Thurrock\x0c}body{").encode(),
        [
            "line 3 (E06000034, 2017), column 'la_name': found 'Thurrock\\x0c}body{'",
            "U+000C (FORM FEED) at character 9",
            "expected the name of the area in plain text",
        ],
    ),
    (
        "nul-in-name-was-binary-without-a-line",
        lambda t: set_cell(small_panel_text(), 4, "la_name", "Southend\x00").encode(),
        ["line 4 (E06000033, 2016), column 'la_name'", "U+0000 (NUL)"],
    ),
    (
        "escape-in-code",
        lambda t: set_cell(small_panel_text(), 3, "la_code", "E06000034\x1b[0m").encode(),
        [
            "line 3 (E06000034\\x1b[0m, 2017), column 'la_code'",
            "U+001B (ESCAPE) at character 10",
            "expected an area code",
        ],
    ),
    (
        "bidi-override-in-name",
        lambda t: set_cell(small_panel_text(), 5, "la_name", "Southend\u202eaes-no").encode(),
        ["line 5 (E06000033, 2017), column 'la_name'", "U+202E (RIGHT-TO-LEFT OVERRIDE)"],
    ),
    (
        "vertical-tab-in-extra-column",
        lambda t: _with_note_column("see\x0bnote"),
        ["line 4 (E06000033, 2016), column 'note'", "U+000B (VERTICAL TAB)", "expected plain text"],
    ),
    # values as written: numbers
    (
        "scientific-notation-count-read-as-1400",
        lambda t: set_cell(small_panel_text(), 3, "looked_after", "1.4E+03").encode(),
        [
            "line 3 (E06000034, 2017), column 'looked_after': found '1.4E+03', a number in scientific notation",
            "any whole number from 1,350 to 1,449",
            "format the column as 'Number'",
            "expected a whole number of children",
        ],
    ),
    (
        "scientific-notation-population",
        lambda t: set_cell(small_panel_text(), 2, "population_0_17", "4.1E+04").encode(),
        ["line 2 (E06000034, 2016), column 'population_0_17': found '4.1E+04', a number in scientific notation"],
    ),
    (
        "arabic-indic-digits-in-code-made-a-phantom-authority",
        lambda t: set_cell(small_panel_text(), 3, "la_code", "E06\u0660\u0660\u066034").encode(),
        [
            "line 3 (E06\u0660\u0660\u066034, 2017), column 'la_code'",
            "a digit other than 0-9: '\u0660' U+0660 (ARABIC-INDIC DIGIT ZERO)",
        ],
    ),
    (
        "full-width-digits-in-count",
        lambda t: set_cell(small_panel_text(), 3, "looked_after", "\uff13\uff10\uff11").encode(),
        [
            "line 3 (E06000034, 2017), column 'looked_after'",
            "U+FF13 (FULLWIDTH DIGIT THREE)",
            "expected a whole number of children",
        ],
    ),
    (
        "full-width-digits-in-year",
        lambda t: set_cell(small_panel_text(), 3, "year", "\uff12\uff10\uff11\uff17").encode(),
        ["column 'year'", "U+FF12 (FULLWIDTH DIGIT TWO)"],
    ),
    # values as written: encodings
    (
        "stray-cp1252-byte-garbled-every-name",
        _stray_cp1252_byte,
        [
            "is UTF-8 but holds 1 byte(s) that are not: line 5 (character 19: byte 0x96, '\u2013' in Windows-1252)",
            "expected one encoding for the whole file",
        ],
    ),
    (
        "byte-that-is-no-text-in-any-encoding",
        _byte_undefined_in_cp1252,
        ["line 3: byte 0x81 is not text in UTF-8 or Windows-1252"],
    ),
    # values as written: absurd magnitudes
    (
        "population-1e20-gave-a-traceback",
        lambda t: set_cell(small_panel_text(), 3, "population_0_17", "1e20").encode(),
        ["line 3 (E06000034, 2017), column 'population_0_17': found '1e20', more than 20,000,000 children"],
    ),
    (
        "population-above-20-million",
        lambda t: set_cell(small_panel_text(), 7, "population_0_17", "21000000").encode(),
        ["line 7 (E92000001, 2017), column 'population_0_17': found '21000000', more than 20,000,000"],
    ),
    (
        "count-above-20-million-without-population",
        lambda t: set_cell(
            set_cell(small_panel_text(), 3, "population_0_17", ""), 3, "children_in_need", "25000000"
        ).encode(),
        ["line 3 (E06000034, 2017), column 'children_in_need': found '25000000', more than 20,000,000"],
    ),
    (
        "deprivation-1e400-made-the-density-nan",
        lambda t: set_cell(small_panel_text(), 3, "deprivation", "1e400").encode(),
        [
            "line 3 (E06000034, 2017), column 'deprivation': found '1e400', which is too large to be a number",
            "reads as infinity",
        ],
    ),
    (
        "deprivation-outside-0-100",
        lambda t: set_cell(small_panel_text(), 3, "deprivation", "150").encode(),
        ["column 'deprivation': found '150', outside 0 to 100", "expected a number from 0 to 100"],
    ),
    (
        "negative-deprivation",
        lambda t: set_cell(small_panel_text(), 3, "deprivation", "-2").encode(),
        ["column 'deprivation': found '-2', outside 0 to 100"],
    ),
    (
        "weekly-cost-in-scientific-notation",
        lambda t: _with_cost_column("1.2E+03"),
        ["line 4 (E06000033, 2016), column 'weekly_cost_per_child': found '1.2E+03', a number in scientific notation"],
    ),
    (
        "negative-weekly-cost",
        lambda t: _with_cost_column("-5"),
        [
            "line 4 (E06000033, 2016), column 'weekly_cost_per_child': found '-5', which is negative",
            "expected £ per child per week, 0 or more",
        ],
    ),
    (
        "route-above-ceased",
        lambda t: _with_flow_columns({"ceased_returned_home": "95"}),
        [
            "line 4 (E06000033, 2016), column 'ceased_returned_home': 95 is more than ceased (90)",
            "expected at most ceased, since children who ceased by a route are children who ceased",
        ],
    ),
    (
        "adoptions-above-ceased",
        lambda t: _with_flow_columns({"ceased_adopted": "91"}),
        ["line 4 (E06000033, 2016), column 'ceased_adopted': 91 is more than ceased (90)"],
    ),
    (
        "fractional-started",
        lambda t: _with_flow_columns({"started": "80.5"}),
        [
            "line 4 (E06000033, 2016), column 'started': found '80.5', which is not a whole number",
            "expected a whole number of children, 0 or more",
        ],
    ),
]


def _with_flow_columns(line_4: dict[str, str]) -> bytes:
    """The small panel with flows columns (ceased 90 everywhere, routes within it); the cells
    of editor line 4 (Southend-on-Sea 2016) replaced by `line_4`."""
    columns = {"started": "80", "ceased": "90", "ceased_returned_home": "30", "ceased_adopted": "10"}
    rows = list(csv.reader(io.StringIO(small_panel_text())))
    rows[0].extend(columns)
    for i, row in enumerate(rows[1:], start=2):
        row.extend(line_4.get(c, v) if i == 4 else v for c, v in columns.items())
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _with_cost_column(value: str) -> bytes:
    rows = list(csv.reader(io.StringIO(small_panel_text())))
    rows[0].append("weekly_cost_per_child")
    for i, row in enumerate(rows[1:], start=2):
        row.append(value if i == 4 else "1500")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize("make, expected", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_panel_exits_2_with_a_message_naming_file_place_column_and_expectation(tmp_path, capsys, make, expected):
    path = tmp_path / "user panel.csv"
    path.write_bytes(make(tmp_path))

    status = main(["data", "check", str(path)])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith(PREFIX + str(path))
    assert "Traceback" not in captured.err
    assert captured.err.count("\n") == 1  # one line, ending the output
    assert captured.err.rstrip("\n").isprintable()  # no raw control character echoed back
    for part in expected:
        assert part in captured.err, f"{part!r} not in {captured.err!r}"
    assert captured.out == ""


def test_many_problems_are_listed_together_up_to_a_limit(tmp_path, capsys):
    text = small_panel_text()
    rows = text.splitlines()
    body = [rows[0]] + [f"E06{i:06d},Area {i},2017,100,abc,1,1,0,1" for i in range(1, 31)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(body) + "\n")

    assert main(["data", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "30 problems:" in err
    assert "line 2 (E06000001, 2017), column 'looked_after': found 'abc'" in err
    assert "line 21 " in err and "line 22 " not in err
    assert "... and 10 more" in err


def test_missing_file_and_folder_are_named(tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert main(["data", "check", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PREFIX}{missing}: file not found")

    assert main(["data", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PREFIX}{tmp_path} is a folder, not a file")
    assert "expected the path of a panel CSV" in err


def test_check_prints_what_a_valid_panel_holds(tmp_path, capsys):
    text = set_cell(small_panel_text(), 4, "looked_after", "c")
    text = set_cell(text, 5, "deprivation", "")
    path = tmp_path / "panel.csv"
    path.write_text(text)

    assert main(["data", "check", str(path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{path}: valid panel")
    assert "rows:  6 (one per area and year)" in out
    assert "areas: 2 local authorities, 1 region, England" in out
    assert "years: 2016-2017" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert lines["looked_after"].split()[1] == "2016-2017"
    assert lines["looked_after"].endswith("1 of 6 cells")
    assert lines["deprivation"].endswith("1 of 6 cells")
    assert lines["uasc"].endswith("0 of 6 cells")
    assert "looked_after: 1 cell(s) read as not available ('c': 1)" in out


def test_check_shows_gaps_in_years(tmp_path, capsys):
    rows = small_panel_text().splitlines()
    body = [rows[0]] + [
        f"E06000034,Thurrock,{y},41000,{'' if y == 2012 else 300},1400,200,20,18" for y in range(2010, 2015)
    ]
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join(body) + "\n")

    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "years: 2010-2014" in out
    looked_after = next(line for line in out.splitlines() if line.strip().startswith("looked_after"))
    assert "2010-2011, 2013-2014" in looked_after


def test_installed_command_prints_no_traceback(tmp_path):
    command = Path(sys.executable).parent / "bayes-lac"
    if not command.exists():
        pytest.skip("bayes-lac is not installed next to this Python")
    path = tmp_path / "bad.csv"
    path.write_text(set_cell(small_panel_text(), 3, "looked_after", "abc"))

    result = subprocess.run([str(command), "data", "check", str(path)], capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{PREFIX}{path}: line 3 (E06000034, 2017), column 'looked_after'")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--draws", "--tune", "--chains"])
@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_sampler_settings_must_be_whole_numbers_above_zero(option, value, tmp_path, capsys):
    # 0 used to fall back silently to the default; now it is refused before any work
    assert main(["fit", "--la", "E06000034", option, value, "--out", str(tmp_path / "run.nc")]) == 2
    err = capsys.readouterr().err
    assert option in err and "whole number above 0" in err
    assert not (tmp_path / "run.nc").exists()
