"""The panel: one row per local authority and year, validated.

Schema (a user's CSV must follow it; the bundled panel adds extra columns):

=================  ==========================================================================
column             meaning
=================  ==========================================================================
la_code            area code: an ONS GSS code (E06/E08/E09/E10 authorities, E12 regions,
                   E92000001 England; Welsh, Scottish, Northern Irish codes too), a DfE
                   three-digit LA number, or the user's own code
la_name            name of the area
year               year of the 31 March snapshot; financial-year figures keyed by the year
                   they end (FY 2016-17 -> 2017)
population_0_17    children aged 0-17 (ONS mid-year estimate DfE uses as that year's
                   denominator)
looked_after       children looked after at 31 March
children_in_need   children in need at 31 March
child_protection   children on a child protection plan at 31 March
uasc               looked-after unaccompanied asylum-seeking children at 31 March
deprivation        a time-varying deprivation measure on a 0-100 scale (bundled: % of
                   children in relative low-income families, DWP)
=================  ==========================================================================

Optional columns (`OPTIONAL_COLUMNS`) are read by some outputs and checked like the required
ones when present: ``weekly_cost_per_child`` (£ per child per week) or ``spend_looked_after``
(£ per year) for costs and the board report; the flows (``started``, ``ceased`` and the
``ceased_*`` routes) for the flows model; ``uasc_note``, ``population_0_17_flag`` and
``geographic_level`` refine fits. England's rows (``E92000001``) are optional too; the
forecast scenario ``converge-england`` and the board report need them. `output_needs` says
what a panel can and cannot produce; `require_columns` and `require_england` refuse an output
in one line, naming what is missing.

Blank means "not available". DfE suppression markers (c, x, z, low, k, u, .., -, :) and the
missing-value words NA, N/A, NaN and NULL (as R and databases write them) are read as not
available and reported, never as numbers.

Rules the loader applies (it never drops, clips or imputes a value):

* The file is a text CSV with commas between columns, UTF-8 (a byte-order mark and Windows
  line ends, as Excel's "CSV UTF-8" writes, are fine; a file that is not UTF-8 is read as
  Windows-1252, Excel's older "CSV (Comma delimited)", with a notice). Semicolon- or
  tab-separated files and Excel workbooks saved under a ``.csv`` name are refused with a hint.
  A file that is UTF-8 in places but holds a byte that is not (one cell typed or pasted in
  another encoding) is refused, naming the line of each such byte: decoding the whole file
  another way would garble every other non-ASCII character.
* Every cell is text as written: control characters (NUL, escape, form feed, ...) and
  invisible formatting characters (bidirectional overrides, zero-width spaces) are refused
  with their line and column; tabs and line breaks are allowed only in extra text columns.
* Whitespace around values and column names is trimmed. Extra columns are kept in the table;
  those no output reads are reported as not used. Lines that are entirely blank are skipped
  with a notice (they hold nothing); columns with no name and no values (trailing commas)
  likewise.
* ``la_code``: English ONS codes (``E`` and 8 digits) as they are; other ONS codes (Welsh
  ``W06...``, Scottish, Northern Irish), DfE three-digit LA numbers and a user's own codes
  (letters, digits, ``-``, ``_``, ``.``; up to 30 characters) are accepted with a notice. A DfE
  number listed in ``data/dfe_la_numbers.csv`` is read as its ONS code (``883`` -> ``E06000034``).
  Codes that look like a mistyped ONS code (``E0600034``, ``e06000034``) are refused. The same
  code under different names in different rows is reported, not refused (authorities get
  renamed).
* ``year`` is a whole number from 1990 to the current calendar year. ``2015-16`` is refused
  with the year to use instead (2016, the year it ends).
* Numbers are written with the digits 0-9 (other scripts' digits, e.g. Arabic-Indic or
  full-width, are refused) and must be finite (``1e400`` reads as infinity: refused).
* Counts and ``population_0_17`` are whole numbers of children: ``12345.0`` is read as
  12345 (spreadsheets and pandas write whole numbers that way); ``12.5`` and ``-3`` are
  refused, and so is anything above `MAX_CHILDREN` (20 million; England has about 12 million
  children). Numbers with thousands separators (``"1,234"``, quoted) are read without the
  commas, with a notice.
* Scientific notation (``1.4E+03``) is refused in counts, ``population_0_17`` and £ columns:
  a spreadsheet writes a number that way when its cell is formatted "Scientific" and keeps
  only the digits shown, so ``1.4E+03`` may stand for any count from 1,350 to 1,449; reading
  it as 1,400 would invent a number. In ``deprivation`` it is read as written, with a notice.
* ``population_0_17`` must be above 0 wherever it is given: a rate per 10,000 children needs
  children, and no English area has none. Leave it blank if not available.
* No count may exceed ``population_0_17`` in its row; ``uasc`` (looked-after UASC) may not
  exceed ``looked_after`` and ``child_protection`` may not exceed ``children_in_need``
  (children on a plan are children in need).
* Flows (optional, `FLOW_COLUMNS` and `ROUTE_COLUMNS`): ``started`` and ``ceased`` (children
  who started / ceased to be looked after in the year to 31 March) and the routes
  ``ceased_returned_home``, ``ceased_adopted``, ``ceased_special_guardianship`` and
  ``ceased_age_18`` are whole numbers of children like the counts; no route may exceed
  ``ceased`` in its row.
* One row per (``la_code``, ``year``).
* ``deprivation`` is a number from 0 to 100 (blank if not available): the priors are set per
  percentage point. ``weekly_cost_per_child`` and ``spend_looked_after`` are £ amounts, 0 or
  more and below £100,000 a week and £100 billion a year.

Errors name the file, the line (as a text editor numbers it: the header is line 1) with the
authority and year, the column, what was found and what was expected. Up to 20 problems are
listed at once, so a file can be fixed in one pass.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.config import BUNDLED_LA_NUMBERS, BUNDLED_PANEL, ENGLAND_CODE, RATE_PER
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
#: Most children a row can hold (population or count). England has about 12 million children
#: aged 0-17 and the UK about 14 million; anything above this is a typing or export error.
MAX_CHILDREN: int = 20_000_000
#: The deprivation measure's documented scale (a percentage, or a score on 0-100); the
#: priors of ``models/priors`` are set per percentage point.
DEPRIVATION_RANGE: tuple[float, float] = (0.0, 100.0)

#: Unit-cost columns: costs and the board report need one of them.
COST_COLUMNS: tuple[str, ...] = ("weekly_cost_per_child", "spend_looked_after")
#: Flows during the year to 31 March of `year` (children, not episodes): optional columns read
#: by the flows model (`bayes_lac.model.flows`) and the reconciliation table.
FLOW_COLUMNS: tuple[str, ...] = ("started", "ceased")
#: Children who ceased, by route; each is a part of ``ceased`` in the same row.
ROUTE_COLUMNS: tuple[str, ...] = (
    "ceased_returned_home",
    "ceased_adopted",
    "ceased_special_guardianship",
    "ceased_age_18",
)
#: Columns outside the schema that some output reads: name -> what it is and who reads it.
OPTIONAL_COLUMNS: dict[str, str] = {
    "weekly_cost_per_child": (
        "unit cost, £ per child per week, financial year ending 31 March of `year`: read by costs and the board report"
    ),
    "spend_looked_after": (
        "spend on children looked after, £ per year: read by costs and the board report "
        "where weekly_cost_per_child is blank (spend / looked_after / 52.18)"
    ),
    "uasc_note": "why uasc is blank: fits set a blank marked 'x' (1 to 5 children) to 3",
    "population_0_17_flag": "how population_0_17 was obtained: fits list flagged values",
    "geographic_level": "'Local authority', 'Regional' or 'National': which rows --neighbours all fits",
    "started": "children who started to be looked after in the year to 31 March: read by fit-flows",
    "ceased": "children who ceased to be looked after in the year to 31 March: read by fit-flows",
    "ceased_returned_home": (
        "children who ceased by returning to parents or others with parental responsibility "
        "(planned or not): read by fit-flows; at most ceased"
    ),
    "ceased_adopted": "children who ceased because they were adopted: read by fit-flows; at most ceased",
    "ceased_special_guardianship": (
        "children who ceased under a special guardianship order: read by fit-flows; at most ceased"
    ),
    "ceased_age_18": "children who ceased aged 18 or over: read by fit-flows; at most ceased",
}
#: Code prefixes of the authorities the models fit: English children's services authorities
#: (unitary, metropolitan, London, county), Welsh unitary authorities, Scottish council
#: areas and Northern Irish districts. A code that is not an ONS code is a user's authority.
AUTHORITY_PREFIXES: tuple[str, ...] = ("E06", "E08", "E09", "E10", "W06", "S12", "N09")

# (part, whole, why): a count of `part` children can never exceed `whole` in the same row.
_SUBSETS: tuple[tuple[str, str, str], ...] = (
    ("uasc", "looked_after", "uasc counts looked-after unaccompanied asylum-seeking children"),
    ("child_protection", "children_in_need", "children on a child protection plan are children in need"),
)

# Digits are [0-9], never \d: \d also matches Arabic-Indic, full-width and other digits, which
# float() and int() read as numbers, so a code with them would become a phantom authority.
_LA_CODE = re.compile(r"E[0-9]{8}")
_GSS_CODE = re.compile(r"[EWSNKLM][0-9]{8}")
_GSS_LIKE = re.compile(r"[EWSNKLMewsnklm][0-9]{5,11}")
_DFE_NUMBER = re.compile(r"[0-9]{3}")
_OWN_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,29}")
_NUMBER_BODY = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_PLAIN_NUMBER = re.compile(_NUMBER_BODY)
_SCIENTIFIC = re.compile(rf"({_NUMBER_BODY})[eE]([+-]?[0-9]+)")
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_WHOLE_YEAR = re.compile(r"([0-9]{4})(?:\.0*)?")
_SPAN_YEAR = re.compile(r"([0-9]{4})\s*[-/\u2013]\s*([0-9]{2}|[0-9]{4})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")
#: Control characters have no Unicode name; these are the ones people meet.
_CONTROL_NAMES: dict[int, str] = {
    0x00: "NUL",
    0x07: "BELL",
    0x08: "BACKSPACE",
    0x09: "TAB",
    0x0A: "LINE FEED",
    0x0B: "VERTICAL TAB",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
}
# Control (Cc), format (Cf: bidi overrides, zero-width spaces), line/paragraph separators
# and private-use characters: invisible or able to reorder what a reader sees.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})
# Share of control bytes above which a file is binary rather than a CSV with a stray one.
_BINARY_SHARE = 0.01
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls) or other Office file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
)
_DELIMITERS: tuple[tuple[str, str], ...] = ((";", ";"), ("\t", "tab"), ("|", "|"))


def _last_year() -> int:
    return date.today().year


@dataclass(frozen=True)
class _NumberRule:
    """How the cells of one numeric column are read and checked."""

    whole: bool  # whole numbers only (children)
    low: float  # smallest value allowed
    high: float  # largest value allowed
    scientific: bool  # scientific notation read as written (with a notice) or refused
    expected: str  # what a cell should hold, for error messages
    too_large: str  # why a value above `high` is refused


_CHILDREN_TOO_LARGE = f"more than {MAX_CHILDREN:,} children (England has about 12 million children aged 0-17)"
_RULES: dict[str, _NumberRule] = {
    "population_0_17": _NumberRule(
        True,
        1,
        MAX_CHILDREN,
        False,
        "a whole number of children aged 0-17, above 0 (blank if not available)",
        _CHILDREN_TOO_LARGE,
    ),
    **{
        column: _NumberRule(
            True,
            0,
            MAX_CHILDREN,
            False,
            "a whole number of children, 0 or more (blank if not available)",
            _CHILDREN_TOO_LARGE,
        )
        for column in (*COUNT_COLUMNS, *FLOW_COLUMNS, *ROUTE_COLUMNS)
    },
    "deprivation": _NumberRule(
        False,
        DEPRIVATION_RANGE[0],
        DEPRIVATION_RANGE[1],
        True,
        f"a number from {DEPRIVATION_RANGE[0]:g} to {DEPRIVATION_RANGE[1]:g}, e.g. a percentage "
        "(blank if not available)",
        f"outside {DEPRIVATION_RANGE[0]:g} to {DEPRIVATION_RANGE[1]:g}, the measure's documented "
        "scale (the priors are set per percentage point)",
    ),
    "weekly_cost_per_child": _NumberRule(
        False,
        0,
        100_000,
        False,
        "£ per child per week, 0 or more (blank if not available)",
        "more than £100,000 per child per week",
    ),
    "spend_looked_after": _NumberRule(
        False,
        0,
        1e11,
        False,
        "£ per year, 0 or more (blank if not available)",
        "more than £100 billion a year",
    ),
}


def _expected(column: str) -> str:
    """What a cell of `column` should hold, in the words of an error message."""
    if column == "la_code":
        return (
            "an area code: an ONS (GSS) code such as E06000034, a DfE 3-digit LA number such as "
            "883, or your own code of letters and digits (also - _ .; up to 30 characters)"
        )
    if column == "la_name":
        return "the name of the area"
    if column == "year":
        return f"a whole year from {FIRST_YEAR} to {_last_year()}: the year of the 31 March snapshot"
    if column in _RULES:
        return _RULES[column].expected
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
            f"the bundled panel {source} is missing; build it with `bayes-lac data build` or pass a panel CSV"
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
    _, notices = _validate(df, source, where, report_extras=True, from_file=False)
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


def log_changes(values: pd.DataFrame, origin: int, horizon: int) -> np.ndarray:
    """Every h-year change log((y[t + h] + 1) / (y[t] + 1)) in `values` (authority x year, NaN
    where not published) with both years up to `origin`; the pairs with either year missing
    are left out. The pool of pooled empirical growth."""
    years = [int(y) for y in values.columns if int(y) + horizon <= origin]
    if not years:
        return np.array([])
    start = np.log1p(values[years].to_numpy(float))
    end = np.log1p(values[[y + horizon for y in years]].to_numpy(float))
    d = (end - start).ravel()
    return d[~np.isnan(d)]


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
    """'England', 'region', 'local authority' or 'other area' (e.g. E13 Inner London, W92 Wales).

    ONS codes are typed by their prefix (Welsh W06, Scottish S12 and Northern Irish N09 codes
    are local authorities); a code that is not an ONS code (a user's own code, or a DfE number
    not in ``data/dfe_la_numbers.csv``) names a local authority.
    """
    code = str(la_code)
    if code.startswith("E92"):
        return "England"
    if code.startswith("E12"):
        return "region"
    if not _GSS_CODE.fullmatch(code):
        return "local authority"
    if code[:3] in {"E06", "E07", "E08", "E09", "E10", "E11", "W06", "S12", "N09"}:
        return "local authority"
    return "other area"


def is_authority(la_code: str) -> bool:
    """Whether the models fit an area of this code as an authority (see `AUTHORITY_PREFIXES`).

    England, regions and other ONS aggregates (E07 districts, E13 Inner London, W92 Wales,
    ...) are not; a code that is not an ONS code is (a user's own authority code).
    """
    code = str(la_code)
    return code.startswith(AUTHORITY_PREFIXES) or not _GSS_CODE.fullmatch(code)


def dfe_la_numbers(path: str | Path | None = None) -> pd.DataFrame:
    """DfE's three-digit LA numbers and the ONS code of each (``data/dfe_la_numbers.csv``).

    Derived by ``bayes-lac data build`` from the number/code pairs in DfE's own files
    (`bayes_lac.data.official.la_number_table`). Columns: ``old_la_code`` (the number, text),
    ``la_code``, ``la_name``, ``first_year``, ``last_year`` (31 March years DfE lists the
    authority). An empty table if the file has not been built.
    """
    file = Path(BUNDLED_LA_NUMBERS if path is None else path)
    modified = file.stat().st_mtime_ns if file.is_file() else 0
    return _dfe_la_numbers(str(file), modified).copy()


@lru_cache(maxsize=4)
def _dfe_la_numbers(path: str, modified: int) -> pd.DataFrame:
    """The table at `path`, read once per modification time (`modified` keys the cache)."""
    file = Path(path)
    columns = ["old_la_code", "la_code", "la_name", "first_year", "last_year"]
    if not file.is_file():
        return pd.DataFrame(columns=columns, dtype=str)
    table = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise PanelError(f"{file}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    return table[columns]


def require_columns(
    panel: pd.DataFrame, columns: tuple[str, ...] | list[str], for_output: str, any_of: bool = False
) -> None:
    """Refuse an output, in one line, when the panel lacks a column it reads.

    Parameters
    ----------
    panel
        A panel from `load_panel` (its ``attrs["source"]`` names it in the message).
    columns
        Columns the output reads. A column that is present but blank in every row counts as
        missing.
    for_output
        The output, as the message should name it, e.g. ``"costs"``.
    any_of
        If True, one of `columns` with values is enough (e.g. either unit-cost column).

    Raises
    ------
    PanelError
        Naming the panel, the output, the missing column(s) with their units, and saying
        that outputs that do not read them still work.
    """
    source = panel.attrs.get("source")
    with_values = [c for c in columns if c in panel.columns and panel[c].notna().any()]
    missing = [c for c in columns if c not in with_values]
    if (any_of and with_values) or not missing:
        return
    blank = [c for c in missing if c in panel.columns]
    described = [f"{c} ({_COLUMN_UNITS[c]})" if c in _COLUMN_UNITS else c for c in (columns if any_of else missing)]
    wanted = ("a column " + " or ".join(described)) if any_of else "column(s) " + ", ".join(described)
    found = f"the panel has {', '.join(blank)} but blank in every row" if blank else "the panel has no such column"
    raise PanelError(
        f"{source + ': ' if source else ''}{for_output} needs {wanted}; {found}. Add it (README, "
        "'Your own data' lists what each output needs); outputs that do not read it work without it"
    )


def require_england(panel: pd.DataFrame, for_output: str) -> None:
    """Refuse an output, in one line, when the panel has no usable England rows.

    England's rows (``la_code`` E92000001) are usable if at least one holds
    ``population_0_17`` and a count. Raises `PanelError` (see `missing_england`).
    """
    rows = panel[panel["la_code"].astype(str) == ENGLAND_CODE]
    counts = [c for c in COUNT_COLUMNS if c in rows.columns]
    usable = rows["population_0_17"].notna() & rows[counts].notna().any(axis=1) if len(rows) else []
    if len(rows) == 0 or not np.asarray(usable).any():
        has = "has no England rows" if len(rows) == 0 else "has England rows without population_0_17 and counts"
        raise missing_england(for_output, panel.attrs.get("source", "the panel"), has)


def missing_england(for_output: str, where: str, has: str = "has no England rows", hint: str = "") -> PanelError:
    """The one-line error for an output that needs England's rows and cannot have them."""
    return PanelError(
        f"{where}: {for_output} needs England's rows (la_code {ENGLAND_CODE}, one per year, with "
        f"population_0_17 and the counts); it {has}. Add them (README, 'Your own data'){hint}"
    )


#: Units of the columns `require_columns` names.
_COLUMN_UNITS: dict[str, str] = {
    "weekly_cost_per_child": "£ per child per week",
    "spend_looked_after": "£ per year",
}


def output_needs(panel: pd.DataFrame) -> list[tuple[str, str]]:
    """What a panel can produce: one (output, verdict) pair per output.

    The verdict is ``"available"`` or says what is missing, e.g. ``"unavailable: needs
    England's rows (E92000001)"``. Every output needs the required columns, which a loaded
    panel has.
    """
    codes = set(panel["la_code"].astype(str))
    england = ENGLAND_CODE in codes
    if england:
        try:
            require_england(panel, "")
        except PanelError:
            england = False
    costs = any(c in panel.columns and panel[c].notna().any() for c in COST_COLUMNS)
    english = any(_LA_CODE.fullmatch(c) and is_authority(c) for c in codes)
    no_england = f"England's rows ({ENGLAND_CODE})"
    no_costs = " or ".join(COST_COLUMNS)
    out = [
        (
            "fit, decompose",
            "available"
            if english
            else "available with --neighbours all or a list of codes (DfE's neighbour lists name English ONS codes only)",
        ),
        (
            "forecast",
            "available" if england else f"available except the scenario converge-england, which needs {no_england}",
        ),
        (
            "compare",
            ("available" if england else f"available, without the England line (needs {no_england})")
            if english
            else "unavailable: DfE's statistical-neighbour lists name English ONS codes only",
        ),
    ]
    if costs and england:
        out.append(("costs", "available"))
    elif costs:
        out.append(("costs", f"available with --scenario trend,population-only (converge-england needs {no_england})"))
    else:
        out.append(("costs", f"unavailable: needs {no_costs}"))
    missing = [m for m, ok in ((no_england, england), (no_costs, costs)) if not ok]
    out.append(("report", "available" if not missing else "unavailable: needs " + " and ".join(missing)))
    return out


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
        lines.append(f"  {row.column:<18} {row.years_with_data:<28} {row.not_available:,} of {row.cells:,} cells")
    optional = [c for c in OPTIONAL_COLUMNS if c in df.columns]
    unused = [str(c) for c in df.columns if c not in REQUIRED_COLUMNS and c not in OPTIONAL_COLUMNS]
    lines.append("")
    lines.append("Optional columns:" if optional or unused else "Optional columns: none")
    for column in optional:
        lines.append(f"  {column}: {OPTIONAL_COLUMNS[column]}")
    if unused:
        lines.append(f"  not read by any output (kept in the table): {', '.join(unused)}")
    lines.append("")
    lines.append("Outputs:")
    lines.extend(f"  {output}: {verdict}" for output, verdict in output_needs(df))
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
        text, notices = _decode_8bit(data, source)
    sample = text[:65536]
    controls = len(re.findall(r"[\x00-\x08\x0e-\x1f]", sample))
    # A few control characters are stray keystrokes in cells (refused later, with their
    # line); many mean the file is not text at all.
    if controls > max(8, _BINARY_SHARE * len(sample)):
        raise PanelError(f"{source} is not a text CSV (it holds binary data); expected a comma-separated text file")
    return text, notices


def _decode_8bit(data: bytes, source: str) -> tuple[str, list[str]]:
    """UTF-8 text, or Windows-1252 with a notice; refuses a file that mixes the two.

    A file in which some non-ASCII characters are valid UTF-8 and some bytes are not is UTF-8
    with stray bytes typed or pasted in another encoding. Decoding all of it as Windows-1252
    would garble every UTF-8 character, so it is refused with the line of each stray byte.
    """
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    stray = [m.start() for m in re.finditer("[\udc80-\udcff]", text)]
    if not stray:
        return text, []
    if re.search("[^\x00-\x7f\udc80-\udcff]", text):
        shown = []
        for position in stray[:10]:
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
            byte = ord(text[position]) - 0xDC00
            as_1252 = bytes([byte]).decode("cp1252", errors="replace")
            meaning = f", {as_1252!r} in Windows-1252" if as_1252 != "\ufffd" else ""
            shown.append(f"line {line} (character {column}: byte 0x{byte:02X}{meaning})")
        more = f" and {len(stray) - 10} more" if len(stray) > 10 else ""
        raise PanelError(
            f"{source} is UTF-8 but holds {len(stray)} byte(s) that are not: {'; '.join(shown)}{more}; "
            "expected one encoding for the whole file: retype those characters, or save the "
            "file as 'CSV UTF-8' from the program that wrote it"
        )
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise PanelError(
            f"{source} is not a text CSV (line {line}: byte 0x{data[err.start]:02X} is not text in "
            "UTF-8 or Windows-1252); expected a comma-separated text file"
        ) from err
    starts = [m.end() for m in re.finditer("\n", text)]  # offsets where lines 2, 3, ... begin
    lines = sorted({bisect.bisect_right(starts, m.start()) + 1 for m in re.finditer("[^\x00-\x7f]", text)})
    return text, [
        f"{source} is not UTF-8; read it as Windows-1252 (Excel's 'CSV (Comma delimited)'): "
        f"check the accented or special characters on line(s) {_line_list(lines)}; save as "
        "'CSV UTF-8' to avoid this"
    ]


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
    head = data[:65536]
    # A few control bytes are stray keystrokes in cells (refused later, with their line);
    # many (e.g. UTF-16 without a byte-order mark, where every other byte is NUL) mean binary.
    controls = len(re.findall(rb"[\x00-\x08\x0e-\x1f]", head))
    if controls > max(8, _BINARY_SHARE * len(head)) and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PanelError(f"{source} is not a text CSV (it holds binary data); expected a comma-separated text file")


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
            f"{source} has a header (line {header_line}) but no data rows; expected one row per area and year below it"
        )

    problems: list[tuple[int, str]] = []
    for n, fields in rows:
        if len(fields) != len(header):
            hint = ""
            if len(fields) > len(header):
                hint = "; a number with a thousands separator (1,234) must be in double quotes"
            if any("\n" in f or "\r" in f for f in fields):
                hint += '; a double quote (") left open joins lines together'
            problems.append(
                (
                    n,
                    f"line {n} has {len(fields)} fields but the header has {len(header)}; "
                    f"expected one value per column{hint}",
                )
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
                (
                    n,
                    f"column {i + 1} has no name in the header but holds data (line {n}: "
                    f"{fields[i].strip()!r}); expected a column name, or delete the column",
                )
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
    raw: pd.DataFrame, source: str, where: list[str], report_extras: bool, from_file: bool = True
) -> tuple[dict[str, list], list[str]]:
    """Parse and check every required cell; returns parsed columns (None = not available)."""
    _check_columns(raw, source)
    codes_raw = [_text(v) for v in raw["la_code"]]
    years_raw = [_text(v) for v in raw["year"]]
    labels = [
        f"{w} ({_shown(code)}, {_shown(year)})" if code and year else w
        for w, code, year in zip(where, codes_raw, years_raw)
    ]
    problems: list[tuple[int, str]] = []
    optional_numbers = (*COST_COLUMNS, *FLOW_COLUMNS, *ROUTE_COLUMNS)
    numeric = [*NUMBER_COLUMNS, *(c for c in optional_numbers if c in raw.columns)]
    # text cells as written, before any trimming: a control character at either end is
    # whitespace to str.strip() and would otherwise vanish unreported
    hidden: dict[str, set[int]] = {
        str(column): _check_text(raw[column], str(column), labels, problems, layout=column not in REQUIRED_COLUMNS)
        for column in raw.columns
    }
    codes, code_notices = _parse_codes(codes_raw, labels, problems, from_file, skip=hidden["la_code"])
    values: dict[str, list] = {
        "la_code": codes,
        "la_name": _parse_names(raw["la_name"], labels, problems, skip=hidden["la_name"]),
        "year": _parse_years(raw["year"], labels, problems, skip=hidden["year"]),
    }
    not_available: dict[str, Counter] = {}
    thousands: dict[str, list[int]] = {}
    scientific: dict[str, list[int]] = {}
    for column in numeric:
        values[column], not_available[column], thousands[column], scientific[column] = _parse_numbers(
            raw[column], column, labels, problems, skip=hidden[column]
        )
    _check_rows(values, codes_raw, labels, where, problems)
    if problems:
        raise PanelError(_format_problems(source, problems))

    notices = list(code_notices)
    unused = [c for c in raw.columns if c not in REQUIRED_COLUMNS and c not in OPTIONAL_COLUMNS]
    if unused and report_extras:
        notices.append(f"extra column(s) not read by any output, kept in the table: {', '.join(map(str, unused))}")
    for column in numeric:
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
        if scientific[column]:
            first = scientific[column][0]
            notices.append(
                f"{column}: read {len(scientific[column]):,} number(s) written in scientific "
                f"notation (first at {where[first]}: {_text(raw[column].iloc[first])!r}) exactly as "
                "written; check they carry all their digits"
            )
    notices.extend(_renamed_areas(values["la_code"], values["la_name"]))
    return values, notices


def _check_columns(raw: pd.DataFrame, source: str) -> None:
    names = [str(c) for c in raw.columns]
    hidden = [(i, name, _hidden_character(name)) for i, name in enumerate(names)]
    hidden = [(i, name, what) for i, name, what in hidden if what]
    if hidden:
        i, name, what = hidden[0]
        raise PanelError(
            f"{source}: the header's column {i + 1} ({name!r}) holds {what}; expected a column name in plain text"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        where = "; ".join(
            f"'{n}' at columns {', '.join(str(i + 1) for i, m in enumerate(names) if m == n)}" for n in repeated
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


def _shown(text: str) -> str:
    """Text safe to put in a message: escapes for anything that is not printable."""
    return text if text.isprintable() else repr(text)[1:-1]


def _hidden_character(text: str, layout: bool = False) -> str | None:
    """The first control or invisible formatting character in `text`, described; else None.

    With `layout`, tabs and line breaks are allowed (free-text columns).
    """
    if text.isprintable():  # the fast path: no control, format or separator characters
        return None
    for position, char in enumerate(text, start=1):
        if layout and char in "\t\n\r":
            continue
        if unicodedata.category(char) in _HIDDEN_CATEGORIES:
            name = _CONTROL_NAMES.get(ord(char)) or unicodedata.name(char, "control character")
            return f"an invisible character U+{ord(char):04X} ({name}) at character {position}"
    return None


def _other_digit(text: str) -> str | None:
    """The first digit that is not 0-9 (Arabic-Indic, full-width, ...), described; else None."""
    for char in text:
        if char.isdigit() and not "0" <= char <= "9":
            return f"{char!r} U+{ord(char):04X} ({unicodedata.name(char, 'digit')})"
    return None


def _check_text(cells: pd.Series, column: str, labels: list[str], problems: list, layout: bool) -> set[int]:
    """Rows whose text cell holds a control or invisible character, each added to `problems`.

    With `layout`, tabs and line breaks are allowed (free-text columns, not names or codes).
    """
    if column == "la_name":
        expected = "the name of the area in plain text (no control or invisible formatting characters)"
    elif column in REQUIRED_COLUMNS or column in _RULES:
        expected = _expected(column)
    else:
        expected = "plain text (no control or invisible formatting characters)"
    flagged = set()
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            what = _hidden_character(cell, layout=layout)
            if what:
                flagged.add(i)
                problems.append(
                    (
                        i,
                        f"{labels[i]}, column '{_shown(column)}': found {cell!r}, which holds {what}; expected {expected}",
                    )
                )
    return flagged


def _parse_codes(
    codes: list[str], labels: list[str], problems: list, from_file: bool, skip: set[int]
) -> tuple[list, list[str]]:
    """Area codes as the panel will hold them, and notices about codes that are not English ONS codes.

    DfE numbers become ONS codes in a loaded file; a DataFrame is never changed, so its
    notice asks for the codes instead.
    """
    numbers = dfe_la_numbers()
    by_number = dict(zip(numbers["old_la_code"], zip(numbers["la_code"], numbers["la_name"])))
    out: list = []
    mapped: dict[str, list[int]] = {}
    other_nations: list[str] = []
    own: list[str] = []
    for i, code in enumerate(codes):
        out.append(None)
        if i in skip:  # already reported: holds a control or invisible character
            continue
        if not code:
            problems.append((i, f"{labels[i]}, column 'la_code': is blank; expected {_expected('la_code')}"))
            continue
        problem = None
        digit = _other_digit(code)
        if digit:
            problem = f"found {code!r}, which has a digit other than 0-9: {digit}"
        elif _LA_CODE.fullmatch(code):
            out[-1] = code
        elif _GSS_CODE.fullmatch(code):
            out[-1] = code
            other_nations.append(code)
        elif _DFE_NUMBER.fullmatch(code) and code in by_number:
            out[-1] = by_number[code][0]
            mapped.setdefault(code, []).append(i)
        elif _GSS_CODE.fullmatch(code.upper()):
            problem = f"found {code!r}; ONS codes start with a capital letter ({code.upper()})"
        elif _GSS_LIKE.fullmatch(code):
            problem = (
                f"found {code!r}, which looks like an ONS code but has {len(code) - 1} digits "
                "(ONS codes have a letter and 8 digits)"
            )
        elif _OWN_CODE.fullmatch(code):
            out[-1] = code
            own.append(code)
        else:
            problem = f"found {code!r}"
        if problem:
            problems.append((i, f"{labels[i]}, column 'la_code': {problem}; expected {_expected('la_code')}"))

    notices = []
    if mapped:
        pairs = [f"{n} -> {by_number[n][0]} ({by_number[n][1]})" for n in mapped]
        rows = sum(len(v) for v in mapped.values())
        how = (
            "read as the ONS code DfE gives for each"
            if from_file
            else "which the models do not translate: replace them with the ONS code DfE gives for each"
        )
        notices.append(
            f"la_code: {rows:,} row(s) use DfE LA numbers, {how} (data/dfe_la_numbers.csv): "
            f"{'; '.join(pairs[:5])}" + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "")
        )
    if other_nations:
        distinct = list(dict.fromkeys(other_nations))
        notices.append(
            f"la_code: {len(distinct):,} area(s) with ONS codes from outside England "
            f"({', '.join(distinct[:5])}{' ...' if len(distinct) > 5 else ''}) accepted; DfE's "
            "statistical-neighbour lists cover English authorities, so fit them with "
            "--neighbours all or a list of codes"
        )
    if own:
        distinct = list(dict.fromkeys(own))
        unmapped = [c for c in distinct if _DFE_NUMBER.fullmatch(c)]
        numbers_note = (
            f" ({', '.join(unmapped[:5])}: 3-digit number(s) not in data/dfe_la_numbers.csv, kept as given)"
            if unmapped
            else ""
        )
        notices.append(
            f"la_code: {len(distinct):,} area(s) with codes that are not ONS codes "
            f"({', '.join(distinct[:5])}{' ...' if len(distinct) > 5 else ''}) accepted as your "
            f"own authority codes{numbers_note}; DfE's statistical-neighbour lists do not know "
            "them, so fit them with --neighbours all or a list of codes"
        )
    return out, notices


def _parse_names(names: pd.Series, labels: list[str], problems: list, skip: set[int]) -> list:
    out: list = []
    for i, cell in enumerate(names):
        name = "" if i in skip else _text(cell)  # skipped: already reported
        if not name and i not in skip:
            problems.append((i, f"{labels[i]}, column 'la_name': is blank; expected {_expected('la_name')}"))
        out.append(name or None)
    return out


def _parse_years(years: pd.Series, labels: list[str], problems: list, skip: set[int]) -> list:
    out: list = []
    last = _last_year()
    for i, cell in enumerate(years):
        if i in skip:  # already reported: holds a control or invisible character
            out.append(None)
            continue
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
            found = f"found {_shown(text)!r}"
        digit = _other_digit(text)
        if digit:
            hint = f"; it has a digit other than 0-9: {digit}"
        elif span:
            start, end = span.groups()
            end_year = int(start[:2] + end) if len(end) == 2 else int(end)
            if end_year < int(start):
                end_year += 100
            hint = f"; a financial or academic year goes under the year it ends (31 March {end_year}): use {end_year}"
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
    """Classify one cell and read its value.

    Kinds: 'blank', 'missing' (a marker or missing-value word), 'number', 'thousands' (read
    without the separators), 'scientific' (read as written), 'digits' (digits other than
    0-9), 'infinite' (a number too large for a float, or inf), 'bad'.
    """
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return "blank", None
        if _PLAIN_NUMBER.fullmatch(text):
            return "number", float(text)
        if _SCIENTIFIC.fullmatch(text):
            value = float(text)
            return ("scientific", value) if np.isfinite(value) else ("infinite", None)
        if text.lower() in SUPPRESSION_MARKERS or text.lower() in MISSING_WORDS:
            return "missing", None
        if _THOUSANDS.fullmatch(text):
            return "thousands", float(text.replace(",", ""))
        if _other_digit(text):
            return "digits", None
        return "bad", None
    if isinstance(cell, (bool, np.bool_)):
        return "bad", None
    if isinstance(cell, (int, np.integer)):
        return "number", float(cell)
    if isinstance(cell, (float, np.floating)):
        if np.isnan(cell):
            return "blank", None
        return ("number", float(cell)) if np.isfinite(cell) else ("infinite", None)
    return ("blank", None) if not _text(cell) else ("bad", None)


def _scientific_range(text: str) -> str:
    """'1,350 to 1,449' for '1.4E+03': the whole numbers a rounded scientific value may stand for."""
    mantissa, exponent = _SCIENTIFIC.fullmatch(text).groups()
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half = 0.5 * 10.0 ** (int(exponent) - decimals)
    value = float(text)
    low, high = np.ceil(value - half), np.ceil(value + half) - 1
    if half < 0.5 or high <= low:
        return ""
    return f"; {_shown(text)} may stand for any whole number from {low:,.0f} to {high:,.0f}"


def _parse_numbers(
    cells: pd.Series, column: str, labels: list[str], problems: list, skip: set[int]
) -> tuple[list, Counter, list[int], list[int]]:
    """Parsed values (int for whole-number columns, else float; None if not available), the
    not-available markers seen, rows written with thousands separators and rows written in
    scientific notation (read as written)."""
    rule = _RULES[column]
    out: list = []
    markers: Counter = Counter()
    thousands: list[int] = []
    scientific: list[int] = []
    for i, cell in enumerate(cells):
        if i in skip:  # already reported: holds a control or invisible character
            out.append(None)
            continue
        kind, x = _read_number(cell)
        text = _shown(_text(cell))
        if kind == "missing":
            markers[_text(cell)] += 1
        problem = None
        if kind == "bad":
            problem = f"found {text!r}, which is not a number"
        elif kind == "digits":
            problem = f"found {text!r}, which has a digit other than 0-9: {_other_digit(_text(cell))}"
        elif kind == "infinite":
            problem = f"found {text!r}, which is too large to be a number (it reads as infinity)"
        elif x is not None and x > rule.high:
            problem = f"found {text!r}, {rule.too_large}"
        elif kind == "scientific" and not rule.scientific:
            problem = (
                f"found {text!r}, a number in scientific notation: a spreadsheet writes numbers "
                "that way when their cells are formatted 'Scientific', keeping only the digits "
                f"shown, so the exact value is lost{_scientific_range(_text(cell))}; format the "
                "column as 'Number' and export again"
            )
        elif x is not None and rule.whole and not x.is_integer():
            problem = f"found {text!r}, which is not a whole number"
        elif x is not None and x < 0 and rule.low >= 0 and column != "deprivation":
            problem = f"found {text!r}, which is negative"
        elif x is not None and column == "population_0_17" and x == 0:
            problem = "found 0 (a rate per 10,000 children needs children; leave it blank if not available)"
        elif x is not None and x < rule.low:
            problem = f"found {text!r}, {rule.too_large}"
        if problem:
            problems.append((i, f"{labels[i]}, column '{column}': {problem}; expected {rule.expected}"))
            out.append(None)
            continue
        if kind == "thousands":
            thousands.append(i)
        if kind == "scientific":
            scientific.append(i)
        out.append(None if x is None else int(x) if rule.whole else x)
    return out, markers, thousands, scientific


def _check_rows(
    values: dict[str, list], codes_raw: list[str], labels: list[str], where: list[str], problems: list
) -> None:
    """Checks across columns: counts within the population and their totals, no duplicates."""
    population = values["population_0_17"]
    for column in COUNT_COLUMNS:
        for i, (count, pop) in enumerate(zip(values[column], population)):
            if count is not None and pop is not None and count > pop:
                problems.append(
                    (
                        i,
                        f"{labels[i]}, column '{column}': {count:,} is more than population_0_17 "
                        f"({pop:,}); expected a count no larger than the children aged 0-17",
                    )
                )
    routes = [(route, "ceased", "children who ceased by a route are children who ceased") for route in ROUTE_COLUMNS]
    for part, whole, reason in (*_SUBSETS, *routes):
        if part not in values or whole not in values:
            continue  # optional columns the file does not carry
        for i, (a, b) in enumerate(zip(values[part], values[whole])):
            if a is not None and b is not None and a > b:
                problems.append(
                    (
                        i,
                        f"{labels[i]}, column '{part}': {a:,} is more than {whole} ({b:,}); "
                        f"expected at most {whole}, since {reason}",
                    )
                )
    seen: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(zip(values["la_code"], values["year"])):
        if None not in key:
            seen.setdefault(key, []).append(i)
    for (code, year), rows in seen.items():
        if len(rows) > 1:
            verb = "both hold" if len(rows) == 2 else "all hold"
            numbers = sorted({codes_raw[i] for i in rows if codes_raw[i] != code})
            via = f" ({' and '.join(numbers)} being DfE's number for {code})" if numbers else ""
            problems.append(
                (
                    rows[1],
                    f"{_places([where[i] for i in rows])} {verb} {code} for {year}{via}; "
                    "expected one row per area and year (remove or merge the duplicates)",
                )
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
    columns["deprivation"] = np.array([np.nan if v is None else v for v in values["deprivation"]], dtype="float64")
    for column in raw.columns:
        if column in values and column not in REQUIRED_COLUMNS:
            # checked optional columns (unit costs): the values as validated
            columns[column] = _typed_numbers([None if v is None else float(v) for v in values[column]])
        elif column not in REQUIRED_COLUMNS:
            columns[column] = _extra_column(str(column), raw[column])
    return pd.DataFrame(columns)


def _typed_numbers(numbers: list):
    """Int64 if every value is a whole number (None = not available), else float64."""
    given = [x for x in numbers if x is not None]
    if all(x.is_integer() and abs(x) < 2**53 for x in given):
        return pd.array([None if x is None else int(x) for x in numbers], dtype="Int64")
    return np.array([np.nan if x is None else x for x in numbers], dtype="float64")


def _extra_column(name: str, cells: pd.Series):
    """Numbers where every value is a finite number (markers as not available), else text.

    Codes stay text so that e.g. DfE's old LA numbers are not turned into integers.
    """
    text = [_text(c) for c in cells]
    if not name.endswith("_code"):
        values: list = []
        for t in text:
            kind, x = _read_number(t)
            if kind not in ("blank", "missing", "number", "thousands", "scientific"):
                break  # a cell that is not a number: the column is text (no need to read on)
            values.append(x)
        else:
            if any(x is not None for x in values):
                return _typed_numbers(values)
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
