"""The panel: one row per local authority and year, validated.

Schema (a user's CSV must follow it; the bundled panel adds extra columns):

=================  ==========================================================================
column             meaning
=================  ==========================================================================
la_code            ONS GSS code (E06/E08/E09/E10 authorities, E12 regions, E92000001 England)
la_name            name of the area
year               year of the 31 March snapshot; financial-year figures keyed by the year
                   they end (FY 2016-17 -> 2017)
population_0_17    children aged 0-17 (ONS mid-year estimate DfE uses as that year's
                   denominator)
looked_after       children looked after at 31 March
children_in_need   children in need at 31 March
child_protection   children on a child protection plan at 31 March
uasc               looked-after unaccompanied asylum-seeking children at 31 March
deprivation        a time-varying deprivation measure (bundled: % of children in relative
                   low-income families, DWP)
=================  ==========================================================================

Blank means "not available". DfE suppression markers (c, x, z, low, k, u, .., -, :) and the
missing-value words NA, N/A, NaN and NULL (as R and databases write them) are read as not
available and reported, never as numbers.

Rules the loader applies (it never drops, clips or imputes a value):

* The file is a text CSV with commas between columns, UTF-8 (a byte-order mark and Windows
  line ends, as Excel's "CSV UTF-8" writes, are fine; a file that is not UTF-8 is read as
  Windows-1252, Excel's older "CSV (Comma delimited)", with a notice). Semicolon- or
  tab-separated files and Excel workbooks saved under a ``.csv`` name are refused with a hint.
* Whitespace around values and column names is trimmed. Extra columns are kept in the table
  and reported as not used by the models. Lines that are entirely blank are skipped with a
  notice (they hold nothing); columns with no name and no values (trailing commas) likewise.
* ``la_code`` is an English ONS code, ``E`` and 8 digits. The same code under different names
  in different rows is reported, not refused (authorities get renamed).
* ``year`` is a whole number from 1990 to the current calendar year. ``2015-16`` is refused
  with the year to use instead (2016, the year it ends).
* Counts and ``population_0_17`` are whole numbers of children: ``12345.0`` is read as
  12345 (spreadsheets and pandas write whole numbers that way); ``12.5`` and ``-3`` are
  refused. Numbers with thousands separators (``"1,234"``, quoted) are read without the
  commas, with a notice.
* ``population_0_17`` must be above 0 wherever it is given: a rate per 10,000 children needs
  children, and no English area has none. Leave it blank if not available.
* No count may exceed ``population_0_17`` in its row; ``uasc`` (looked-after UASC) may not
  exceed ``looked_after`` and ``child_protection`` may not exceed ``children_in_need``
  (children on a plan are children in need).
* One row per (``la_code``, ``year``).
* ``deprivation`` is any number (blank if not available).

Errors name the file, the line (as a text editor numbers it: the header is line 1) with the
authority and year, the column, what was found and what was expected. Up to 20 problems are
listed at once, so a file can be fixed in one pass.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.config import BUNDLED_PANEL, RATE_PER
from bayes_lac.errors import PanelError

REQUIRED_COLUMNS: tuple[str, ...] = (
    "la_code",
    "la_name",
    "year",
    "population_0_17",
    "looked_after",
    "children_in_need",
    "child_protection",
    "uasc",
    "deprivation",
)
COUNT_COLUMNS: tuple[str, ...] = ("looked_after", "children_in_need", "child_protection", "uasc")
SUPPRESSION_MARKERS: frozenset[str] = frozenset({"c", "x", "z", "low", "k", "u", "..", "-", ":"})
#: Words other software writes for a missing value; read as not available, like the markers.
MISSING_WORDS: frozenset[str] = frozenset({"na", "n/a", "nan", "null"})
NUMBER_COLUMNS: tuple[str, ...] = ("population_0_17", *COUNT_COLUMNS, "deprivation")
#: Earliest plausible snapshot year (DfE's national looked-after series starts in 1994).
FIRST_YEAR: int = 1990
#: Problems listed in one error message; the rest are counted.
MAX_PROBLEMS_SHOWN: int = 20

# (part, whole, why): a count of `part` children can never exceed `whole` in the same row.
_SUBSETS: tuple[tuple[str, str, str], ...] = (
    ("uasc", "looked_after", "uasc counts looked-after unaccompanied asylum-seeking children"),
    ("child_protection", "children_in_need", "children on a child protection plan are children in need"),
)

_LA_CODE = re.compile(r"E\d{8}")
_OTHER_NATION_CODE = re.compile(r"[WSN]\d{8}")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_WHOLE_YEAR = re.compile(r"(\d{4})(?:\.0*)?")
_SPAN_YEAR = re.compile(r"(\d{4})\s*[-/\u2013]\s*(\d{2}|\d{4})")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4}")
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls) or other Office file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
)
_DELIMITERS: tuple[tuple[str, str], ...] = ((";", ";"), ("\t", "tab"), ("|", "|"))


def _last_year() -> int:
    return date.today().year


def _expected(column: str) -> str:
    """What a cell of `column` should hold, in the words of an error message."""
    if column == "la_code":
        return "an English ONS (GSS) code: E followed by 8 digits, e.g. E06000034"
    if column == "la_name":
        return "the name of the area"
    if column == "year":
        return (
            f"a whole year from {FIRST_YEAR} to {_last_year()}: the year of the 31 March snapshot"
        )
    if column == "population_0_17":
        return "a whole number of children aged 0-17, above 0 (blank if not available)"
    if column in COUNT_COLUMNS:
        return "a whole number of children, 0 or more (blank if not available)"
    return "a number (blank if not available)"


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_panel(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a panel CSV (the bundled panel if `path` is None).

    Parameters
    ----------
    path
        A panel CSV following the schema in this module's docstring, or None for the bundled
        panel (``bayes_lac.config.BUNDLED_PANEL``, built by ``bayes-lac data build``).

    Returns
    -------
    pandas.DataFrame
        One row per area and year, in file order, required columns first: ``la_code`` and
        ``la_name`` (str), ``year`` (int64), ``population_0_17`` and the counts (nullable
        ``Int64``, numbers of children), ``deprivation`` (float64, NaN if not available);
        then any extra columns (numeric where every value is a number, else str).
        ``attrs["source"]`` is the path read; ``attrs["notices"]`` lists what a user should
        know (cells read as not available, ignored columns, renamed areas). Nothing is printed.

    Raises
    ------
    PanelError
        If the file is missing, not a comma-separated text file, or breaks the schema; the
        message names the file, line, authority, column and what was expected.
    """
    bundled = path is None or _same_file(Path(path), BUNDLED_PANEL)
    file = Path(BUNDLED_PANEL if path is None else path)
    source = str(file)
    if path is None and not file.exists():
        raise PanelError(
            f"the bundled panel {source} is missing; build it with `bayes-lac data build` "
            "or pass a panel CSV"
        )
    text, notices = _read_text(file, source)
    header, rows, lines, split_notices = _split_csv(text, source)
    notices += split_notices
    raw = pd.DataFrame(rows, columns=header, dtype=object)
    values, check_notices = _validate(raw, source, [f"line {n}" for n in lines], report_extras=not bundled)
    notices += check_notices
    panel = _build_frame(raw, values)
    panel.attrs["source"] = source
    panel.attrs["notices"] = notices
    return panel


def validate_panel(df: pd.DataFrame, source: str = "<DataFrame>") -> list[str]:
    """Check a DataFrame against the panel schema without changing it.

    For a panel an analyst assembled in a notebook: cells may be numbers or text (text is
    read as it would be from a CSV, so suppression markers count as not available).

    Parameters
    ----------
    df
        The panel, one row per area and year, with the columns in ``REQUIRED_COLUMNS``.
    source
        How to name the data in messages.

    Returns
    -------
    list of str
        Notices (cells read as not available, extra columns, renamed areas).

    Raises
    ------
    PanelError
        Naming the row (by index label), authority, column and what was expected.
    """
    where = [f"row with index {label!r}" for label in df.index]
    _, notices = _validate(df, source, where, report_extras=True)
    return notices


def panel_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of the panel's content, independent of file formatting and row order.

    The hash covers the required columns only, sorted by (la_code, year), written as a
    canonical CSV: whole numbers without decimals, other numbers as Python's shortest
    round-trip form, not available as empty. A fit records it to say which data it used.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PanelError(f"cannot hash the panel: missing column(s) {', '.join(missing)}")
    table = df.loc[:, list(REQUIRED_COLUMNS)].copy()
    table["year"] = table["year"].astype("int64")
    table = table.sort_values(["la_code", "year"], kind="stable")
    columns = [_canonical_column(table[c], text=c in ("la_code", "la_name")) for c in REQUIRED_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REQUIRED_COLUMNS)
    writer.writerows(zip(*columns))
    return hashlib.sha256(out.getvalue().encode("utf-8")).hexdigest()


def rates(df: pd.DataFrame, measure: str) -> pd.Series:
    """Rate per 10,000 children aged 0-17 of one count column.

    Parameters
    ----------
    df
        A panel (from `load_panel`).
    measure
        One of ``COUNT_COLUMNS``: looked_after, children_in_need, child_protection, uasc.

    Returns
    -------
    pandas.Series
        float64, rate per 10,000 children aged 0-17, named ``<measure>_rate``; NaN where the
        count or the population is not available.
    """
    if measure not in COUNT_COLUMNS:
        raise ValueError(f"measure must be one of {', '.join(COUNT_COLUMNS)}; got {measure!r}")
    count = df[measure].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    population = df["population_0_17"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(count / population * RATE_PER, index=df.index, name=f"{measure}_rate")


def with_rates(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of the panel with ``<measure>_rate`` (per 10,000 children aged 0-17) added
    for each of looked_after, children_in_need, child_protection and uasc."""
    out = df.copy()
    for measure in COUNT_COLUMNS:
        out[f"{measure}_rate"] = rates(df, measure)
    return out


def area_type(la_code: str) -> str:
    """'England', 'region', 'local authority' or 'other area' (e.g. E13 Inner London)."""
    if la_code.startswith("E92"):
        return "England"
    if la_code.startswith("E12"):
        return "region"
    if la_code[:3] in {"E06", "E07", "E08", "E09", "E10", "E11"}:
        return "local authority"
    return "other area"


def coverage(df: pd.DataFrame) -> pd.DataFrame:
    """What each value column holds: years with data and cells not available.

    Returns
    -------
    pandas.DataFrame
        One row per column of ``NUMBER_COLUMNS``: ``first_year``, ``last_year`` (years with
        at least one value; NA if none), ``years_with_data`` (text, e.g. "2010-2015, 2017"),
        ``not_available`` (cells) and ``cells`` (rows).
    """
    records = []
    for column in NUMBER_COLUMNS:
        present = df[column].notna().to_numpy()
        years = sorted(set(df.loc[present, "year"].astype(int)))
        records.append(
            {
                "column": column,
                "first_year": years[0] if years else pd.NA,
                "last_year": years[-1] if years else pd.NA,
                "years_with_data": _year_ranges(years) or "none",
                "not_available": int((~present).sum()),
                "cells": len(df),
            }
        )
    return pd.DataFrame.from_records(records)




def describe_panel(df: pd.DataFrame) -> str:
    """A few lines for a terminal: rows, areas, years, coverage per column, notices."""
    kinds = Counter(area_type(code) for code in df["la_code"].unique())
    areas = [
        f"{kinds[kind]:,} {kind if kinds[kind] == 1 else plural}"
        for kind, plural in (
            ("local authority", "local authorities"),
            ("region", "regions"),
            ("other area", "other areas"),
        )
        if kinds[kind]
    ]
    if kinds["England"]:
        areas.append("England")
    years = sorted(set(df["year"].astype(int)))
    lines = [
        f"{df.attrs.get('source', '<DataFrame>')}: valid panel",
        f"  rows:  {len(df):,} (one per area and year)",
        f"  areas: {', '.join(areas) or 'none'}",
        f"  years: {_year_ranges(years)}",
        "",
        f"  {'column':<18} {'years with data':<28} not available",
    ]
    for row in coverage(df).itertuples(index=False):
        lines.append(
            f"  {row.column:<18} {row.years_with_data:<28} {row.not_available:,} of {row.cells:,} cells"
        )
    notices = df.attrs.get("notices", [])
    lines.append("")
    lines.append("Notices:" if notices else "Notices: none")
    lines.extend(f"  - {notice}" for notice in notices)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _read_text(path: Path, source: str) -> tuple[str, list[str]]:
    """The file's text; refuses missing, empty and binary files."""
    if not path.exists():
        raise PanelError(f"{source}: file not found; expected a panel CSV (check the path)")
    if path.is_dir():
        raise PanelError(f"{source} is a folder, not a file; expected the path of a panel CSV")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PanelError(f"{source} cannot be read: {err.strerror}") from err
    if not data:
        raise PanelError(
            f"{source} is empty (0 bytes); expected a CSV with a header line "
            f"({','.join(REQUIRED_COLUMNS)}) and one row per area and year"
        )
    _refuse_binary(data, source)
    notices: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError as err:
                raise PanelError(
                    f"{source} is not a text CSV (byte {err.start + 1} is not text in UTF-8 "
                    "or Windows-1252); expected a comma-separated text file"
                ) from err
            notices.append(
                f"{source} is not UTF-8; read it as Windows-1252 (Excel's 'CSV (Comma "
                "delimited)'); save as 'CSV UTF-8' to avoid this"
            )
    if re.search(r"[\x00-\x08\x0e-\x1f]", text[:65536]):
        raise PanelError(
            f"{source} is not a text CSV (it holds binary data); expected a comma-separated "
            "text file"
        )
    return text, notices


def _refuse_binary(data: bytes, source: str) -> None:
    if data.startswith(b"PK\x03\x04"):
        if b"xl/" in data:
            raise PanelError(
                f"{source} is an Excel workbook (.xlsx), not a text CSV; open it in Excel and "
                "use File > Save As > 'CSV UTF-8 (Comma delimited)', then use that file"
            )
        raise PanelError(f"{source} is a zip archive, not a text CSV; extract the CSV from it")
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise PanelError(f"{source} is {what}, not a text CSV; expected a comma-separated text file")
    if b"\x00" in data[:65536] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PanelError(
            f"{source} is not a text CSV (it holds binary data); expected a comma-separated "
            "text file"
        )


def _split_csv(text: str, source: str) -> tuple[list[str], list[list[str]], list[int], list[str]]:
    """Header, data rows and each row's first line number (header = line 1)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    previous_end = 0
    try:
        for fields in reader:
            records.append((previous_end + 1, fields))
            previous_end = reader.line_num
    except csv.Error as err:
        raise PanelError(f"{source}: line {reader.line_num} cannot be read as CSV ({err})") from err

    blank_lines = [n for n, fields in records if not any(f.strip() for f in fields)]
    records = [(n, fields) for n, fields in records if any(f.strip() for f in fields)]
    if not records:
        raise PanelError(
            f"{source} holds only blank lines; expected a header line "
            f"({','.join(REQUIRED_COLUMNS)}) and one row per area and year"
        )
    header_line, header = records[0]
    header = [name.strip().lstrip("\ufeff") for name in header]
    rows = records[1:]
    _refuse_other_delimiters(header, header_line, text, source)
    if not rows:
        raise PanelError(
            f"{source} has a header (line {header_line}) but no data rows; expected one row per "
            "area and year below it"
        )

    problems: list[tuple[int, str]] = []
    for n, fields in rows:
        if len(fields) != len(header):
            hint = ""
            if len(fields) > len(header):
                hint = "; a number with a thousands separator (1,234) must be in double quotes"
            if any("\n" in f or "\r" in f for f in fields):
                hint += "; a double quote (\") left open joins lines together"
            problems.append(
                (n, f"line {n} has {len(fields)} fields but the header has {len(header)}; "
                    f"expected one value per column{hint}")
            )
    if problems:
        raise PanelError(_format_problems(source, problems))

    notices = []
    if blank_lines:
        notices.append(f"skipped {len(blank_lines)} empty line(s): {_line_list(blank_lines)}")
    unnamed = [i for i, name in enumerate(header) if not name]
    if unnamed:
        with_values = [i for i in unnamed if any(fields[i].strip() for _, fields in rows)]
        for i in with_values:
            n, fields = next((n, f) for n, f in rows if f[i].strip())
            problems.append(
                (n, f"column {i + 1} has no name in the header but holds data (line {n}: "
                    f"{fields[i].strip()!r}); expected a column name, or delete the column")
            )
        if problems:
            raise PanelError(_format_problems(source, problems))
        notices.append(f"ignored {len(unnamed)} column(s) with no name and no values")
        keep = [i for i, name in enumerate(header) if name]
        header = [header[i] for i in keep]
        rows = [(n, [fields[i] for i in keep]) for n, fields in rows]
    return header, [fields for _, fields in rows], [n for n, _ in rows], notices


def _refuse_other_delimiters(header: list[str], line: int, text: str, source: str) -> None:
    """A semicolon- or tab-separated file reads as one wide column: say so plainly."""
    if all(c in header for c in REQUIRED_COLUMNS):
        return
    first_line = text.lstrip("\ufeff").splitlines()[line - 1]
    for delimiter, name in _DELIMITERS:
        found = first_line.count(delimiter)
        if found >= 2 and found >= first_line.count(","):
            raise PanelError(
                f"{source}: line {line} (the header) looks like {name}-separated ({found} "
                f"'{name}' separators); expected commas between columns: export or save it as "
                "'CSV UTF-8 (Comma delimited)'"
            )


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _validate(
    raw: pd.DataFrame, source: str, where: list[str], report_extras: bool
) -> tuple[dict[str, list], list[str]]:
    """Parse and check every required cell; returns parsed columns (None = not available)."""
    _check_columns(raw, source)
    codes_raw = [_text(v) for v in raw["la_code"]]
    years_raw = [_text(v) for v in raw["year"]]
    labels = [
        f"{w} ({code}, {year})" if code and year else w
        for w, code, year in zip(where, codes_raw, years_raw)
    ]
    problems: list[tuple[int, str]] = []
    values: dict[str, list] = {
        "la_code": _parse_codes(codes_raw, labels, problems),
        "la_name": _parse_names(raw["la_name"], labels, problems),
        "year": _parse_years(raw["year"], labels, problems),
    }
    not_available: dict[str, Counter] = {}
    thousands: dict[str, list[int]] = {}
    for column in NUMBER_COLUMNS:
        values[column], not_available[column], thousands[column] = _parse_numbers(
            raw[column], column, labels, problems
        )
    _check_rows(values, labels, where, problems)
    if problems:
        raise PanelError(_format_problems(source, problems))

    notices = []
    extras = [c for c in raw.columns if c not in REQUIRED_COLUMNS]
    if extras and report_extras:
        notices.append(
            f"ignored extra column(s), kept in the table but not used by the models: "
            f"{', '.join(map(str, extras))}"
        )
    for column in NUMBER_COLUMNS:
        if not_available[column]:
            found = ", ".join(f"'{k}': {n:,}" for k, n in not_available[column].most_common())
            notices.append(
                f"{column}: {sum(not_available[column].values()):,} cell(s) read as not "
                f"available ({found}): suppression markers and missing-value words are never "
                "read as numbers"
            )
        if thousands[column]:
            first = thousands[column][0]
            notices.append(
                f"{column}: read {len(thousands[column]):,} number(s) written with thousands "
                f"separators (first at {where[first]}: {_text(raw[column].iloc[first])!r}) "
                "without the commas"
            )
    notices.extend(_renamed_areas(values["la_code"], values["la_name"]))
    return values, notices


def _check_columns(raw: pd.DataFrame, source: str) -> None:
    names = [str(c) for c in raw.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        where = "; ".join(
            f"'{n}' at columns {', '.join(str(i + 1) for i, m in enumerate(names) if m == n)}"
            for n in repeated
        )
        raise PanelError(f"{source}: column name(s) repeated in the header: {where}; expected each once")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        lower = {n.lower(): n for n in names}
        hints = [f"'{lower[c]}' should be '{c}'" for c in missing if c in lower]
        hint = f" (names are lower case: {'; '.join(hints)})" if hints else ""
        raise PanelError(
            f"{source}: missing required column(s) {', '.join(missing)}{hint}; "
            f"found: {', '.join(names) or 'none'}; expected: {', '.join(REQUIRED_COLUMNS)} "
            "(extra columns are allowed)"
        )


def _text(cell) -> str:
    """A cell as trimmed text ('' for blank or missing)."""
    if isinstance(cell, str):
        return cell.strip()
    if cell is None or (np.ndim(cell) == 0 and pd.isna(cell)):
        return ""
    return str(cell).strip()


def _parse_codes(codes: list[str], labels: list[str], problems: list) -> list:
    out: list = []
    for i, code in enumerate(codes):
        if not code:
            problems.append((i, f"{labels[i]}, column 'la_code': is blank; expected {_expected('la_code')}"))
            out.append(None)
            continue
        if _LA_CODE.fullmatch(code):
            out.append(code)
            continue
        if _LA_CODE.fullmatch(code.upper()):
            hint = "; ONS codes start with a capital E"
        elif code.isdigit() and len(code) == 3:
            hint = "; this looks like a DfE 3-digit LA number: use the ONS code"
        elif _OTHER_NATION_CODE.fullmatch(code):
            hint = "; this is a Welsh, Scottish or Northern Irish code: the panel covers England"
        else:
            hint = ""
        problems.append((i, f"{labels[i]}, column 'la_code': found {code!r}; expected {_expected('la_code')}{hint}"))
        out.append(None)
    return out


def _parse_names(names: pd.Series, labels: list[str], problems: list) -> list:
    out: list = []
    for i, cell in enumerate(names):
        name = _text(cell)
        if not name:
            problems.append((i, f"{labels[i]}, column 'la_name': is blank; expected {_expected('la_name')}"))
        out.append(name or None)
    return out


def _parse_years(years: pd.Series, labels: list[str], problems: list) -> list:
    out: list = []
    last = _last_year()
    for i, cell in enumerate(years):
        year = _year_value(cell)
        if year is not None and FIRST_YEAR <= year <= last:
            out.append(year)
            continue
        out.append(None)
        text = _text(cell)
        span = _SPAN_YEAR.fullmatch(text)
        if not text:
            found = "is blank"
        else:
            found = f"found {text!r}"
        if span:
            start, end = span.groups()
            end_year = int(start[:2] + end) if len(end) == 2 else int(end)
            if end_year < int(start):
                end_year += 100
            hint = (
                f"; a financial or academic year goes under the year it ends (31 March "
                f"{end_year}): use {end_year}"
            )
        elif _DATE.fullmatch(text):
            hint = "; write just the year of the 31 March snapshot, e.g. 2016 for 31/03/2016"
        elif year is not None:
            hint = "; this year is outside the range the panel can hold"
        else:
            hint = ""
        problems.append((i, f"{labels[i]}, column 'year': {found}; expected {_expected('year')}{hint}"))
    return out


def _year_value(cell) -> int | None:
    if isinstance(cell, (bool, np.bool_)):
        return None
    if isinstance(cell, (int, np.integer)):
        return int(cell)
    if isinstance(cell, (float, np.floating)):
        return int(cell) if np.isfinite(cell) and float(cell).is_integer() else None
    match = _WHOLE_YEAR.fullmatch(_text(cell))
    return int(match.group(1)) if match else None


def _read_number(cell) -> tuple[str, float | None]:
    """Classify one cell: ('blank' | 'missing' | 'number' | 'thousands' | 'bad', value)."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return "blank", None
        if _PLAIN_NUMBER.fullmatch(text):
            return "number", float(text)
        if text.lower() in SUPPRESSION_MARKERS or text.lower() in MISSING_WORDS:
            return "missing", None
        if _THOUSANDS.fullmatch(text):
            return "thousands", float(text.replace(",", ""))
        return "bad", None
    if isinstance(cell, (bool, np.bool_)):
        return "bad", None
    if isinstance(cell, (int, float, np.integer, np.floating)):
        if np.isnan(cell):
            return "blank", None
        return ("number", float(cell)) if np.isfinite(cell) else ("bad", None)
    return ("blank", None) if not _text(cell) else ("bad", None)


def _parse_numbers(
    cells: pd.Series, column: str, labels: list[str], problems: list
) -> tuple[list, Counter, list[int]]:
    """Parsed values (int for counts, float for deprivation, None if not available), the
    not-available markers seen, and rows written with thousands separators."""
    whole = column != "deprivation"
    out: list = []
    markers: Counter = Counter()
    thousands: list[int] = []
    for i, cell in enumerate(cells):
        kind, x = _read_number(cell)
        if kind == "missing":
            markers[_text(cell)] += 1
        if kind == "thousands":
            thousands.append(i)
        problem = None
        if kind == "bad":
            problem = f"found {_text(cell)!r}, which is not a number"
        elif x is not None and whole and not x.is_integer():
            problem = f"found {_text(cell)!r}, which is not a whole number"
        elif x is not None and whole and x < 0:
            problem = f"found {_text(cell)!r}, which is negative"
        elif x is not None and column == "population_0_17" and x == 0:
            problem = "found 0 (a rate per 10,000 children needs children; leave it blank if not available)"
        if problem:
            problems.append((i, f"{labels[i]}, column '{column}': {problem}; expected {_expected(column)}"))
            out.append(None)
        elif x is None:
            out.append(None)
        else:
            out.append(int(x) if whole else x)
    return out, markers, thousands


def _check_rows(values: dict[str, list], labels: list[str], where: list[str], problems: list) -> None:
    """Checks across columns: counts within the population and their totals, no duplicates."""
    population = values["population_0_17"]
    for column in COUNT_COLUMNS:
        for i, (count, pop) in enumerate(zip(values[column], population)):
            if count is not None and pop is not None and count > pop:
                problems.append(
                    (i, f"{labels[i]}, column '{column}': {count:,} is more than population_0_17 "
                        f"({pop:,}); expected a count no larger than the children aged 0-17")
                )
    for part, whole, reason in _SUBSETS:
        for i, (a, b) in enumerate(zip(values[part], values[whole])):
            if a is not None and b is not None and a > b:
                problems.append(
                    (i, f"{labels[i]}, column '{part}': {a:,} is more than {whole} ({b:,}); "
                        f"expected at most {whole}, since {reason}")
                )
    seen: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(zip(values["la_code"], values["year"])):
        if None not in key:
            seen.setdefault(key, []).append(i)
    for (code, year), rows in seen.items():
        if len(rows) > 1:
            verb = "both hold" if len(rows) == 2 else "all hold"
            problems.append(
                (rows[1], f"{_places([where[i] for i in rows])} {verb} {code} for {year}; "
                          "expected one row per area and year (remove or merge the duplicates)")
            )


def _renamed_areas(codes: list, names: list) -> list[str]:
    by_code: dict[str, list[str]] = {}
    for code, name in zip(codes, names):
        if name not in by_code.setdefault(code, []):
            by_code[code].append(name)
    renamed = [(code, names) for code, names in by_code.items() if len(names) > 1]
    if not renamed:
        return []
    shown = "; ".join(f"{code}: {' / '.join(names)}" for code, names in renamed[:5])
    more = f" and {len(renamed) - 5} more" if len(renamed) > 5 else ""
    return [
        f"{len(renamed)} code(s) appear under more than one la_name ({shown}{more}); areas get "
        "renamed, so the code is what identifies an area"
    ]


# --------------------------------------------------------------------------------------------
# Building the table and formatting
# --------------------------------------------------------------------------------------------


def _build_frame(raw: pd.DataFrame, values: dict[str, list]) -> pd.DataFrame:
    columns: dict[str, object] = {
        "la_code": pd.array(values["la_code"], dtype="str"),
        "la_name": pd.array(values["la_name"], dtype="str"),
        "year": np.array(values["year"], dtype="int64"),
    }
    for column in ("population_0_17", *COUNT_COLUMNS):
        columns[column] = pd.array(values[column], dtype="Int64")
    columns["deprivation"] = np.array(
        [np.nan if v is None else v for v in values["deprivation"]], dtype="float64"
    )
    for column in raw.columns:
        if column not in REQUIRED_COLUMNS:
            columns[column] = _extra_column(str(column), raw[column])
    return pd.DataFrame(columns)


def _extra_column(name: str, cells: pd.Series):
    """Numbers where every value is a number (markers as not available), else text.

    Codes stay text so that e.g. DfE's old LA numbers are not turned into integers.
    """
    text = [_text(c) for c in cells]
    if not name.endswith("_code"):
        parsed = [_read_number(t) for t in text]
        numbers = [x for kind, x in parsed if x is not None]
        if numbers and all(kind != "bad" for kind, _ in parsed):
            if all(x.is_integer() and abs(x) < 2**53 for x in numbers):
                return pd.array([None if x is None else int(x) for _, x in parsed], dtype="Int64")
            return np.array([np.nan if x is None else x for _, x in parsed], dtype="float64")
    return pd.array([t or None for t in text], dtype="str")


def _canonical_column(values: pd.Series, text: bool) -> list[str]:
    """Cells as text for hashing: whole numbers without decimals, '' for not available."""
    if text:
        return [_text(v) for v in values]
    numbers = values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return ["" if np.isnan(x) else str(int(x)) if x.is_integer() else repr(x) for x in numbers.tolist()]


def _format_problems(source: str, problems: list[tuple[int, str]]) -> str:
    problems = sorted(problems, key=lambda p: p[0])
    if len(problems) == 1:
        return f"{source}: {problems[0][1]}"
    shown = [f"  - {text}" for _, text in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN:,} more")
    return f"{source}: {len(problems):,} problems:\n" + "\n".join(shown)


def _year_ranges(years: list[int]) -> str:
    """'2010-2015, 2017, 2019-2024' from sorted distinct years."""
    parts: list[str] = []
    start = previous = None
    for year in years:
        if start is None:
            start = previous = year
        elif year == previous + 1:
            previous = year
        else:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = previous = year
    if start is not None:
        parts.append(f"{start}" if start == previous else f"{start}-{previous}")
    return ", ".join(parts)


def _line_list(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:10])
    return shown + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def _places(where: list[str]) -> str:
    """'lines 5 and 12' or 'rows with index 3 and 7' from 'line 5', 'line 12', ..."""
    for singular, plural in (("line ", "lines "), ("row with index ", "rows with index ")):
        if all(w.startswith(singular) for w in where):
            return plural + _and_list([w.removeprefix(singular) for w in where])
    return _and_list(where)


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
