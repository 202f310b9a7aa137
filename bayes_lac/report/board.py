"""The board report: one self-contained HTML page on one authority, with optional PDF and XLSX.

`build_report` assembles the analyses of a fitted run into a `Report` (sections of headings,
paragraphs, findings, charts and tables); `render_html` turns it into a single HTML file with
the charts embedded as PNG (no network fetches, no web fonts; a Content-Security-Policy forbids
the page any), `write_pdf` prints that file with headless Chromium, Chrome or Edge started with
its network cut off, and `write_xlsx` puts every table into one workbook (text that Excel would
run as a formula is stored as text). Every file is written atomically (`bayes_lac.files`).

The report fails loudly rather than printing a wrong number: nothing here catches a general
exception, and a run that failed its convergence diagnostics is refused unless the caller
allows it, in which case every section and every printed page says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac import __version__
from bayes_lac.analysis import compare as emod
from bayes_lac.analysis import costs as cmod
from bayes_lac.analysis import decompose as dec
from bayes_lac.analysis import forecast as fmod
from bayes_lac.analysis import interventions as iv
from bayes_lac.config import (
    BACKTEST_DIR,
    CI_PROB,
    DATA_README,
    MEASURE_LABELS,
    MEASURES,
    bundled_name,
)
from bayes_lac.errors import UnknownAuthorityError
from bayes_lac.files import atomic_path, is_formula_like, write_bytes, write_files, write_text
from bayes_lac.model.results import run_info
from bayes_lac.studies import backtest as bmod
from bayes_lac.studies import sensitivity as smod
from bayes_lac.summaries import Finding, format_money, format_percent, format_rate

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

#: Chart resolution: 8 x 4.5 inch figures at this dpi are 960 x 540 pixels, sharp on screen
#: and in A4 print at full text width.
FIGURE_DPI = 120

#: A chart's table twin up to this many rows follows it; a longer one goes to Appendix C.
MAX_INLINE_TWIN_ROWS = 14
#: Columns left out of the HTML tables when they hold a single value (stated in the caption).
HTML_OMIT_CONSTANT = frozenset({"la_code", "ci_prob", "inner_prob", "measure", "scenario", "from_year", "to_year"})

#: Windows of the decomposition besides first-to-last fitted year: the 2017 report's window.
EXTRA_DECOMPOSITION_WINDOWS: tuple[tuple[int, int], ...] = ((2010, 2017),)
#: Forecast scenarios shown in the report, in order.
REPORT_SCENARIOS: tuple[str, ...] = ("trend", "population-only", "converge-england")
#: Years ahead forecast.
FORECAST_HORIZON = 10
#: Assumed annual inflation of unit costs (2 % a year).
COST_INFLATION = 0.02
#: Years ahead at which the cost table is given.
COST_HORIZONS: tuple[int, ...] = (3, 5, 10)
#: Prior sets the model is refitted under with --sensitivity-refits.
SENSITIVITY_PRIOR_SETS: tuple[str, ...] = ("weak", "tight")
#: Monte Carlo draws per invest-to-save evaluation.
INTERVENTION_DRAWS = 4000
#: Interventions whose finding is also a headline.
HEADLINE_INTERVENTIONS: tuple[str, ...] = ("edge_of_care",)
#: Backtest results the model card reads, if present (written by `bayes-lac backtest`; the
#: shipped one is documented in models/backtest/README.md).
BACKTEST_FILE = BACKTEST_DIR / "backtest_full.csv.gz"

#: Environment variable naming the browser that prints the PDF (overrides the search).
CHROMIUM_ENV = "BAYES_LAC_CHROMIUM"
#: Browser commands looked for on the PATH, in order, when BAYES_LAC_CHROMIUM is not set.
CHROMIUM_NAMES: tuple[str, ...] = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "microsoft-edge",
    "microsoft-edge-stable",
    "msedge",
)
#: Flags for a headless, throw-away Chromium with no network (root needs --no-sandbox). Every
#: request, loopback included (``<-loopback>``), goes to a proxy at the discard port of
#: 127.0.0.1, where nothing listens, and no host name resolves; the report itself needs none.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


# --------------------------------------------------------------------------------------------
# Report content: blocks, sections, the report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    text: str
    kind: str = field(default="heading", init=False)


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: str = field(default="paragraph", init=False)


@dataclass(frozen=True)
class Notice:
    """A boxed note: an imputation, an exclusion, an assumption the reader must see."""

    text: str
    kind: str = field(default="notice", init=False)


@dataclass(frozen=True)
class FindingBlock:
    title: str
    sentence: str
    caveats: tuple[str, ...] = ()
    #: For a headline: the section holding the finding with its caveats and numbers.
    see_anchor: str = ""
    see_title: str = ""
    kind: str = field(default="finding", init=False)


@dataclass(frozen=True)
class Definitions:
    """A list of (term, value) pairs, e.g. the model card."""

    items: tuple[tuple[str, str], ...]
    kind: str = field(default="definitions", init=False)


@dataclass(frozen=True)
class ReportFigure:
    """A chart as a PNG, with its alternative text for screen readers and its caption."""

    png: bytes
    alt: str
    caption: str
    width: int
    height: int
    #: HTML id and caption of the table holding the chart's numbers.
    twin_anchor: str = ""
    twin_caption: str = ""
    kind: str = field(default="figure", init=False)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")

    @classmethod
    def from_matplotlib(cls, fig, *, alt: str, caption: str, twin: ReportTable, dpi: int = FIGURE_DPI) -> ReportFigure:
        """Render a matplotlib figure to PNG and close it; `twin` holds the numbers it draws."""
        import matplotlib.pyplot as plt

        if not alt.strip():
            raise ValueError("every chart in the report needs alternative text")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        width, height = (int(round(v)) for v in fig.get_size_inches() * dpi)
        plt.close(fig)
        return cls(
            png=buf.getvalue(),
            alt=alt,
            caption=caption,
            width=width,
            height=height,
            twin_anchor=twin.anchor,
            twin_caption=twin.caption,
        )


@dataclass(frozen=True)
class ReportTable:
    """A table of the report: printed in the HTML and written as one sheet of the XLSX.

    `frame` holds the numbers in their units (the XLSX gets them unformatted); `formats`
    maps a column to a function giving its text in the HTML.
    """

    key: str
    caption: str
    frame: pd.DataFrame
    formats: dict[str, Callable] = field(default_factory=dict)
    unit_column: str | None = None
    kind: str = field(default="table", init=False)

    @property
    def anchor(self) -> str:
        return "table-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.key)

    def _shown(self) -> list[str]:
        # Columns that repeat one value the caption already states are left out of the HTML
        # (the XLSX keeps them).
        return [
            c for c in self.frame.columns if not (c in HTML_OMIT_CONSTANT and self.frame[c].nunique(dropna=False) <= 1)
        ]

    @property
    def columns(self) -> list[str]:
        return [_column_label(c) for c in self._shown()]

    @property
    def rows(self) -> list[list[tuple[str, bool]]]:
        out = []
        shown = self._shown()
        for values in self.frame[shown].itertuples(index=False, name=None):
            record = dict(zip(shown, values))
            row_format = _unit_formatter(record[self.unit_column]) if self.unit_column else None
            row = []
            for col, value in record.items():
                fmt = self.formats.get(col)
                if fmt is None and row_format is not None and col in _STAT_COLUMNS:
                    fmt = row_format
                row.append(_format_cell(col, value, fmt))
            out.append(row)
        return out


def make_table(
    key: str,
    caption: str,
    frame: pd.DataFrame,
    formats: dict | None = None,
    unit_column: str | None = None,
) -> ReportTable:
    """A report table; `key` names its XLSX sheet, `unit_column` (if any) picks each row's format."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"table {key!r}: expected a DataFrame, got {type(frame).__name__}")
    return ReportTable(key, caption, _flat_frame(frame), dict(formats or {}), unit_column)


@dataclass
class Section:
    key: str
    title: str
    blocks: list = field(default_factory=list)
    #: Long tables holding the numbers of this section's charts, printed in Appendix C.
    twins: list = field(default_factory=list)
    #: Tables written only to the XLSX workbook (full detail behind a compact printed table).
    workbook_only: list = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(Heading(text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def notice(self, text: str) -> None:
        self.blocks.append(Notice(text))

    def finding(self, finding: Finding, shown: Sequence[str] = ()) -> None:
        """Add a finding with its caveats, less those in `shown` (already printed in the section)."""
        caveats = tuple(c for c in finding.caveats if c not in set(shown))
        self.blocks.append(FindingBlock(finding.title, finding.sentence, caveats))

    def figure(self, fig, *, alt: str, caption: str, table: ReportTable) -> None:
        """Add a chart and its table twin: the twin follows it if short, else goes to Appendix C."""
        self.blocks.append(ReportFigure.from_matplotlib(fig, alt=alt, caption=caption, twin=table))
        if len(table.frame) <= MAX_INLINE_TWIN_ROWS:
            self.blocks.append(table)
        else:
            self.twins.append(table)

    def table(self, key: str, caption: str, frame: pd.DataFrame, **kwargs) -> ReportTable:
        """Add a table in the text (see `make_table`) and return it."""
        table = make_table(key, caption, frame, **kwargs)
        self.blocks.append(table)
        return table

    def workbook_table(self, key: str, caption: str, frame: pd.DataFrame, **kwargs) -> ReportTable:
        """Add a table that goes to the XLSX workbook only (too detailed to print)."""
        table = make_table(key, caption, frame, **kwargs)
        self.workbook_only.append(table)
        return table

    def definitions(self, items: Sequence[tuple[str, str]]) -> None:
        self.blocks.append(Definitions(tuple((str(a), str(b)) for a, b in items)))


@dataclass
class Report:
    """Everything the board report says, ready to render to HTML, PDF and XLSX."""

    la: str
    la_name: str
    sections: list[Section]
    converged: bool = True
    problems: tuple[str, ...] = ()
    generated_utc: str = ""
    version: str = __version__
    run_description: str = ""

    @property
    def title(self) -> str:
        return f"Children's social care demand in {self.la_name}: board report"

    @property
    def short_title(self) -> str:
        return f"{self.la_name} ({self.la}): children's social care demand"

    @property
    def subtitle(self) -> str:
        parts = [f"{self.la_name} ({self.la})", f"generated {self.generated_utc}", f"bayes_lac {self.version}"]
        if self.run_description:
            parts.append(self.run_description)
        return " · ".join(parts)

    @property
    def unconverged_header(self) -> str:
        return "WARNING: the model fit FAILED its convergence checks; numbers in this report are unreliable"

    @property
    def unconverged_message(self) -> str:
        return (
            "This report was produced from a model fit that failed its convergence diagnostics "
            "(--allow-unconverged). Its numbers may be wrong and must not be used for decisions "
            "until the model is refitted and passes. Problems found:"
        )

    @property
    def footer(self) -> str:
        return (
            f"Produced by bayes_lac {self.version} on {self.generated_utc}. Intervals are "
            f"{format_percent(CI_PROB)} equal-tailed credible intervals: there is a "
            f"{format_percent(CI_PROB)} probability, under the model, that the quantity lies in "
            "the interval."
        )

    def tables(self) -> list[tuple[Section, ReportTable]]:
        """Every table of the report with the section it belongs to, in section order: the
        printed ones, then those printed in Appendix C, then workbook-only ones."""
        out, seen = [], set()
        for s in self.sections:
            for t in [*s.blocks, *s.twins, *s.workbook_only]:
                if isinstance(t, ReportTable) and id(t) not in seen:
                    seen.add(id(t))
                    out.append((s, t))
        return out

    def figures(self) -> list[ReportFigure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, ReportFigure)]


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _column_label(col) -> str:
    return str(col).replace("_", " ")


def _flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Index as columns and one level of string column names, for HTML and XLSX alike."""
    out = frame.copy()
    if not isinstance(out.index, pd.RangeIndex) or out.index.name is not None:
        out = out.reset_index()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(p) for p in c if str(p) != "") for c in out.columns]
    out.columns = [str(c) for c in out.columns]
    return out


def _is_money_column(col: str) -> bool:
    name = str(col).lower()
    return any(w in name for w in ("cost", "saving", "spend", "budget", "£", "gbp", "net_benefit"))


def _format_number(x: float) -> str:
    a = abs(x)
    if a >= 100 or (float(x).is_integer() and a >= 1):
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:,.2f}"
    if a == 0:
        return "0"
    return f"{x:.3g}"


def _format_cell(col, value, formatter=None) -> tuple[str, bool]:
    """The text of one table cell and whether it is numeric (right-aligned)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–", True
    if formatter is not None:
        return str(formatter(value)), True
    if str(col) == "measure" and value in MEASURE_LABELS:
        return MEASURE_LABELS[value], False
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        if str(col).lower() in ("year", "from_year", "to_year", "origin", "start_year", "end_year"):
            return str(int(value)), True
        return f"{int(value):,}", True
    if isinstance(value, (float, np.floating)):
        if str(col) == "ci_prob" or str(col).lower().startswith(("prob", "p_")):
            return format_percent(value), True
        if str(col) == "rate" or str(col).endswith("_rate"):
            return format_rate(value), True
        if _is_money_column(col):
            return format_money(value), True
        return _format_number(float(value)), True
    return str(value), False


#: Summary columns whose format follows the row's unit (see `ReportTable.unit_column`).
_STAT_COLUMNS = frozenset({"mean", "median", "lower", "upper", "sd", "point", "value"})


def _unit_formatter(unit) -> Callable | None:
    """Number format for a row whose unit is `unit` (e.g. "£ a year", "probability")."""
    if not isinstance(unit, str):
        return None
    if unit.startswith("£") and "per £" not in unit:
        return format_money
    if unit == "probability":
        return format_percent
    return None


#: Characters kept as they are in a CSS string; every other is written as a hex escape.
_CSS_PLAIN = re.compile(r"[A-Za-z0-9 ,.()_:;!?%£+*=/#@-]")


def _css_string(text: str) -> str:
    """A quoted CSS string literal, safe inside a <style> element.

    Everything but letters, digits, spaces and harmless punctuation is written as a CSS hex
    escape (``\\22 `` for a double quote): quotes, backslashes and ``<`` cannot end the string
    or the element, and no control character (a form feed or a newline ends a CSS string)
    can break out of it.
    """
    escaped = "".join(ch if _CSS_PLAIN.fullmatch(ch) else f"\\{ord(ch):X} " for ch in str(text))
    return f'"{escaped}"'


# --------------------------------------------------------------------------------------------
# Rendering: HTML, PDF, XLSX
# --------------------------------------------------------------------------------------------


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (charts embedded, no external resources)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = lambda s: Markup(_css_string(s))
    return env.get_template("report.html").render(report=report)


def write_html(report: Report, path) -> Path:
    """Write the report as one HTML file (UTF-8), atomically. The folder must exist."""
    return write_text(path, render_html(report))


def write_report_files(report: Report, html_path, xlsx_path=None) -> list[Path]:
    """Write the HTML and (if `xlsx_path`) the workbook together: both are replaced, or neither.

    Both are built in memory first, so a failure or an interrupt while building leaves the
    files of an earlier report untouched rather than a new page beside an old workbook.
    """
    contents = {Path(html_path): render_html(report).encode("utf-8")}
    if xlsx_path is not None:
        contents[Path(xlsx_path)] = xlsx_bytes(report)
    return write_files(contents)


class PdfEngineError(RuntimeError):
    """The browser that prints the PDF failed, timed out or could not be started."""


def pdf_engine_candidates(platform: str | None = None, environ: dict | None = None) -> list[Path]:
    """Where Chromium, Chrome and Edge are usually installed on `platform` (default: this one).

    Looked at after the PATH, in order: Chromium, then Chrome, then Edge.
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform.startswith("win"):
        roots = [environ.get(k) for k in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")]
        tails = (
            r"Chromium\Application\chrome.exe",
            r"Google\Chrome\Application\chrome.exe",
            r"Microsoft\Edge\Application\msedge.exe",
        )
        return [Path(root) / tail for tail in tails for root in roots if root]
    if platform == "darwin":
        apps = (
            "Chromium.app/Contents/MacOS/Chromium",
            "Google Chrome.app/Contents/MacOS/Google Chrome",
            "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
        )
        homes = [Path("/Applications")]
        if environ.get("HOME"):
            homes.append(Path(environ["HOME"]) / "Applications")
        return [home / app for app in apps for home in homes]
    return [
        Path(p)
        for p in (
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/snap/bin/chromium",
            "/usr/lib/chromium/chromium",
            "/usr/bin/google-chrome",
            "/usr/bin/google-chrome-stable",
            "/opt/google/chrome/chrome",
            "/usr/bin/microsoft-edge",
            "/opt/microsoft/msedge/msedge",
        )
    ]


def find_chromium() -> str | None:
    """The browser that prints the PDF: $BAYES_LAC_CHROMIUM if set, else Chromium, Chrome or
    Edge on the PATH or at their usual places (`pdf_engine_candidates`); None if none is found."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for path in pdf_engine_candidates():
        if path.is_file():
            return str(path)
    return None


def pdf_engine_help() -> str:
    """Why no PDF engine was found and how to get one, in one sentence."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return f"{CHROMIUM_ENV} is set to {env}, which is not a file; set it to a Chromium, Chrome or Edge program"
    return (
        "no Chromium, Chrome or Edge was found on the PATH or at its usual place; install one "
        f"(Debian/Ubuntu: apt-get install chromium) or set {CHROMIUM_ENV} to its program"
    )


def run_chromium(url: str, *extra: str, timeout: float = 180, binary: str | None = None) -> subprocess.CompletedProcess:
    """Run headless Chromium on `url` with a throw-away profile and no network access.

    Parameters
    ----------
    url
        The page (a ``file://`` URL of the report).
    *extra
        More command-line flags (``--print-to-pdf=...``, ``--dump-dom``).
    timeout
        Seconds before the browser is stopped.
    binary
        The browser; found with `find_chromium` if None.

    Raises
    ------
    PdfEngineError
        No browser was found, it could not be started, it timed out or it failed.
    """
    binary = binary or find_chromium()
    if binary is None:
        raise PdfEngineError(pdf_engine_help())
    with tempfile.TemporaryDirectory(prefix="bayes_lac_chromium_") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfEngineError(f"{binary} did not finish within {timeout:.0f} s") from None
        except OSError as err:
            raise PdfEngineError(f"{binary} could not be started: {err}") from None
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise PdfEngineError(f"{binary} exited with status {proc.returncode}: {last[0][:300]}")
    return proc


def write_pdf(html_path, pdf_path=None, *, engine: str | None = None) -> Path:
    """Print the HTML report to an A4 PDF with headless Chromium, beside it by default.

    The PDF is printed to a temporary file and renamed into place only when the browser has
    written a complete PDF, so an older PDF is never left half-replaced.

    Raises
    ------
    PdfEngineError
        No browser, or the browser failed or wrote no PDF.
    """
    html_path = Path(html_path).resolve()
    pdf_path = Path(pdf_path) if pdf_path is not None else html_path.with_suffix(".pdf")
    pdf_path = pdf_path.resolve()
    with atomic_path(pdf_path) as temp:
        run_chromium(
            html_path.as_uri(),
            "--no-pdf-header-footer",
            "--virtual-time-budget=10000",
            f"--print-to-pdf={temp}",
            binary=engine,
        )
        with open(temp, "rb") as fh:
            if fh.read(5) != b"%PDF-":
                raise PdfEngineError(f"the browser reported success but wrote no PDF for {pdf_path}")
    return pdf_path


_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def sheet_names(keys: Sequence[str], reserved: Sequence[str] = ("Contents",)) -> list[str]:
    """Unique Excel sheet names (at most 31 characters, no []:*?/\\) for table keys."""
    taken = {r.lower() for r in reserved}
    out = []
    for key in keys:
        base = _SHEET_FORBIDDEN.sub("_", str(key)).strip("'") or "table"
        name = base[:31]
        n = 2
        while name.lower() in taken:
            suffix = f"_{n}"
            name = base[: 31 - len(suffix)] + suffix
            n += 1
        taken.add(name.lower())
        out.append(name)
    return out


def write_xlsx(report: Report, path) -> Path:
    """Every table of the report in one workbook (see `xlsx_bytes`), written atomically."""
    return write_bytes(path, xlsx_bytes(report))


def xlsx_bytes(report: Report) -> bytes:
    """Every table of the report in one workbook: a contents sheet, then one sheet per table.

    Numbers are stored as numbers, unformatted. Text that starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return (an authority named ``=HYPERLINK(...)``, a threshold
    written ``= 0``) is stored as a text cell with Excel's quote prefix, so it is shown as
    written and never run as a formula.
    """
    tables = report.tables()
    names = sheet_names([t.key for _, t in tables])
    contents = pd.DataFrame(
        {
            "sheet": names,
            "section": [s.title for s, _ in tables],
            "table": [t.caption for _, t in tables],
            "rows": [len(t.frame) for _, t in tables],
        }
    )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        header = pd.DataFrame({"": [report.title, report.subtitle, report.footer]})
        header.to_excel(writer, sheet_name="Contents", index=False, header=False)
        contents.to_excel(writer, sheet_name="Contents", index=False, startrow=len(header) + 1)
        if not report.converged:
            warning = pd.DataFrame({"": [report.unconverged_header, *report.problems]})
            warning.to_excel(
                writer, sheet_name="Contents", index=False, header=False, startrow=len(header) + len(contents) + 3
            )
        for name, (_, table) in zip(names, tables):
            table.frame.to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            sheet.freeze_panes = "A2"
            for i, col in enumerate(table.frame.columns, start=1):
                sheet.column_dimensions[_excel_column(i)].width = min(max(len(str(col)) + 2, 10), 40)
        contents_sheet = writer.sheets["Contents"]
        for letter, width in zip("ABCD", (34, 50, 90, 8)):
            contents_sheet.column_dimensions[letter].width = width
        for sheet in writer.book.worksheets:
            _cells_as_text(sheet)
    return buffer.getvalue()


def _cells_as_text(sheet) -> None:
    """Store every formula-like text cell of an openpyxl sheet as text, never as a formula.

    openpyxl turns any string starting with ``=`` into a formula cell; pandas hands it the
    cell values as they are. Nothing in a report is meant to be a formula.
    """
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f" or is_formula_like(cell.value):
                cell.data_type = "s"
                cell.quotePrefix = True


def _excel_column(i: int) -> str:
    """Excel column letters of the 1-based column number `i` (1 -> A, 27 -> AA)."""
    letters = ""
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(65 + r) + letters
    return letters


# --------------------------------------------------------------------------------------------
# Assembling the report from a run
# --------------------------------------------------------------------------------------------


@dataclass
class _Context:
    results: xr.DataTree
    la: str
    la_name: str
    panel: pd.DataFrame | None
    panel_path: str | None
    sensitivity_refits: bool
    allow_unconverged: bool = False
    headlines: list[Finding] = field(default_factory=list)
    forecast: object = None
    comparison: pd.DataFrame | None = None
    run_path: str | None = None
    panel_mismatch: str = ""
    unit_costs: pd.DataFrame | None = None


def comparison_neighbours(results: xr.DataTree, la: str) -> tuple[list[str], str]:
    """The authorities the report compares `la` (the run's target) with, and where the list
    comes from: the run's neighbours (`bayes_lac.model.results.RunInfo.neighbours`)."""
    info = run_info(results)
    return list(info.neighbours_of(la)), info.neighbours_source


def _comparison_section(ctx: _Context) -> Section:
    sec = Section("comparison", f"{ctx.la_name} against its statistical neighbours and England")
    neighbours, source = comparison_neighbours(ctx.results, ctx.la)
    measures = [m for m in MEASURES if m in ctx.panel.columns]
    table = emod.comparison_table(ctx.panel, ctx.la, neighbours, measures=measures)
    ctx.comparison = table
    sec.paragraph(
        "Published rates per 10,000 children aged 0-17, with no model: the authority, each of its "
        f"{len(neighbours)} comparison authorities ({source}), the comparison authorities taken "
        "together (their pooled rate) and England."
    )
    for finding in emod.comparison_findings(table):
        sec.finding(finding)
        ctx.headlines.append(finding)
    for m in measures:
        label = _measure_label(m)
        t = table[table["measure"] == m]
        wide = _comparison_wide(t)
        sec.heading(label)
        sec.figure(
            emod.plot_comparison(table, measure=m),
            alt=(
                f"Line chart of the rate of {label.lower()} per 10,000 children aged 0-17 by year: "
                f"{ctx.la_name} (solid black line with circles), each comparison authority (thin "
                "orange lines), the comparison authorities pooled (dash-dot orange with squares) and "
                "England (dashed blue with triangles)."
            ),
            caption=f"{label}: rate per 10,000 children aged 0-17, {ctx.la_name} against its comparison "
            "authorities and England (published counts).",
            table=make_table(
                f"compare_{m}",
                f"{label}: rate per 10,000 children aged 0-17 by area and year (published; counts and "
                "populations in the XLSX workbook)",
                wide,
                formats=_rate_formats(wide),
            ),
        )
        sec.workbook_table(f"compare_{m}_detail", f"{label}: published counts, populations and rates", t)
    return sec


def _rate_formats(frame: pd.DataFrame) -> dict:
    """Every column but ``year`` formatted as a rate per 10,000 (one decimal place)."""
    return {c: format_rate for c in frame.columns if c != "year"}


def _comparison_wide(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison chart's rates, one row per year and one column per area."""
    names = {"neighbours_average": "Comparison authorities (pooled)", "england": "England"}
    order = list(dict.fromkeys(table["group"]))
    first = ["target", "neighbours_average", "england"]
    order = [g for g in first if g in order] + [g for g in order if g not in first]
    wide = table.pivot(index="year", columns="group", values="rate").reindex(columns=order)
    labels = table.drop_duplicates("group").set_index("group")["la_name"].to_dict()
    wide.columns = [names.get(g, labels.get(g) or g) for g in order]
    return wide.reset_index()


def decomposition_windows(results: xr.DataTree, la: str | None = None) -> list[tuple[int, int]]:
    """Windows decomposed in the report: first to last fitted year, then the 2017 report's.

    With `la`, only years in which that authority has published counts (a decomposition of
    years before it existed would be invented history).
    """
    info = run_info(results)
    first, last = info.first_year, info.last_year
    span = dec.data_years(results, la) if la is not None else None
    if span is not None:
        first, last = max(first, span[0]), min(last, span[1])
    windows = [(first, last)] if last > first else []
    for a, b in EXTRA_DECOMPOSITION_WINDOWS:
        if first <= a < b <= last and (a, b) not in windows:
            windows.append((a, b))
    return windows


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _measure_label(measure: str) -> str:
    return MEASURE_LABELS.get(measure, measure)


def _decomposition_section(ctx: _Context) -> Section:
    sec = Section("decomposition", "What drove the change")
    windows = decomposition_windows(ctx.results, ctx.la)
    if not windows:
        sec.notice("The run has a single year of counts for this authority, so there is no change to decompose.")
        return sec
    sec.paragraph(
        "The modelled change in each count is split into the part due to the number of children "
        "aged 0-17, the known number of unaccompanied asylum-seeking children (looked-after "
        "children only), deprivation, and the rest. The rest is NOT explained by the measured "
        "demand factors: it holds national and local policy and practice, but equally any demand "
        "the model does not measure, so it is never proof of a practice effect. Every part has a "
        f"{format_percent(CI_PROB)} credible interval; point values are posterior means, which "
        "add up to the total."
    )
    for i, (a, b) in enumerate(windows):
        main = i == 0
        measures = None if main else ("looked_after",)
        d = dec.decompose(
            ctx.results,
            la=ctx.la,
            from_year=a,
            to_year=b,
            measures=measures,
            allow_unconverged=ctx.allow_unconverged,
        )
        title = f"{a} to {b}" + ("" if main else " (the window of the 2017 report)")
        sec.heading(f"Change from March {title}")
        for caveat in d.caveats:
            sec.notice(caveat)
        for finding in d.findings:
            sec.finding(finding, shown=d.caveats)
        if main:
            ctx.headlines.extend(d.findings)
        for m in d.measures:
            label = _measure_label(m)
            table = dec.decomposition_table(d, measure=m)
            sec.figure(
                dec.plot_decomposition(d, measure=m),
                alt=_decomposition_alt(ctx.la_name, label, a, b, table),
                caption=f"{label}, {ctx.la_name}, March {a} to March {b}: the modelled change split into "
                "components (bars: posterior means; whiskers: credible intervals).",
                table=make_table(
                    f"decomp_{m}_{a}_{b}", f"{label}: components of the change, March {a} to {b} (children)", table
                ),
            )
        comp_measure = "looked_after" if "looked_after" in d.measures else d.measures[0]
        comp = dec.comparison_table(d, measure=comp_measure)
        label = _measure_label(comp_measure)
        sec.figure(
            dec.plot_comparison(d, measure=comp_measure),
            alt=(
                f"Grouped bar chart comparing the change in {label.lower()} from {a} to {b} in "
                f"{ctx.la_name}, its comparison authorities and England, each component as a "
                "percentage of the start-year count."
            ),
            caption=f"{label}: change as a percentage of the {a} count, by component, against "
            "comparison authorities and England.",
            table=make_table(
                f"decomp_compare_{a}_{b}",
                f"{label}: components of the change {a} to {b}, as percentage points of the {a} count",
                comp,
            ),
        )
        cf = dec.counterfactual_table(ctx.results, la=ctx.la, from_year=a, to_year=b, measure=comp_measure)
        sec.figure(
            dec.plot_counterfactuals(ctx.results, la=ctx.la, from_year=a, to_year=b, measure=comp_measure),
            alt=(
                f"Line chart of {label.lower()} in {ctx.la_name} from {a} to {b}: published counts "
                "against the modelled count and paths with population growth only, plus UASC and "
                "plus deprivation, with credible bands."
            ),
            caption=f"{label}: published counts against demand-only paths (the 2017 report's Figure 5, "
            "with credible bands).",
            table=make_table(f"counterfactual_{a}_{b}", f"{label}: counterfactual paths, {a} to {b} (children)", cf),
        )
    return sec


def _decomposition_alt(la_name: str, label: str, a: int, b: int, table: pd.DataFrame) -> str:
    text = (
        f"Waterfall chart of the change in {label.lower()} in {la_name} from March {a} to March {b}, "
        "split into population, UASC, deprivation and the part not explained by them."
    )
    return text


def _forecast_section(ctx: _Context) -> Section:
    sec = Section("forecasts", "Forecasts under three scenarios")
    fc = fmod.forecast(ctx.results, la=ctx.la, horizon=FORECAST_HORIZON, scenarios=REPORT_SCENARIOS, seed=0)
    ctx.forecast = fc
    base = fc.base_year
    sec.paragraph(
        f"Forecasts run from March {base + 1} to March {base + FORECAST_HORIZON} under three scenarios: "
        "trend (the model's own projection: the authority's trend continues and the national path "
        "wanders as it has), population-only (today's rates, applied to the projected number of "
        "children) and converge-england (rates move to England's latest published rate over five "
        "years). Intervals on counts include year-to-year noise, so they are wider than the "
        "uncertainty about the underlying rate."
    )
    sec.heading("Assumptions")
    for assumption in fc.assumptions:
        sec.paragraph(assumption)
    key_years = [base + h for h in COST_HORIZONS if h <= FORECAST_HORIZON]
    table = fmod.forecast_table(fc)
    summary = table[table["year"].isin(key_years)].reset_index(drop=True)
    sec.heading(f"At a glance: March {', '.join(str(y) for y in key_years)}")
    sec.table(
        "forecast_summary",
        f"Forecast number of children at 31 March by scenario ({format_percent(CI_PROB)} credible intervals)",
        summary,
    )
    if "looked_after" in fc.data["measure"].values:
        last = fc.history[(fc.history["measure"] == "looked_after")].dropna(subset=["reported_count"])
        if not last.empty:
            row = last.sort_values("year").iloc[-1]
            year = base + min(5, FORECAST_HORIZON)
            finding = fmod.exceedance_finding(
                fc, float(row["reported_count"]), year, measure="looked_after", scenario="trend"
            )
            finding = replace(finding, title=f"{finding.title} (the March {int(row['year'])} count)")
            sec.finding(finding, shown=fc.assumptions)
            ctx.headlines.append(finding)
    for scenario in fc.scenario_names:
        sec.heading(f"Scenario: {scenario}")
        measures = [str(m) for m in fc.data["measure"].values]
        fig, axes = _panel_axes(len(measures))
        frames = []
        for ax, m in zip(axes, measures):
            fmod.plot_forecast(fc, measure=m, scenarios=[scenario], ax=ax)
            frames.append(fmod.fan_chart_table(fc, measure=m, scenarios=[scenario]))
        fan = pd.concat(frames, ignore_index=True)
        sec.figure(
            fig,
            alt=(
                f"Fan charts of the {scenario} forecast for {ctx.la_name}, one panel per measure "
                f"({', '.join(_measure_label(m).lower() for m in measures)}): published counts up to "
                f"{base}, then the median forecast to {base + FORECAST_HORIZON} with 50% and "
                f"{format_percent(CI_PROB)} credible bands."
            ),
            caption=f"{scenario} scenario: published counts and forecast fans (50% and "
            f"{format_percent(CI_PROB)} bands). The published history is in the comparison section.",
            table=make_table(
                f"fan_{scenario}",
                f"{scenario} scenario: forecast number of children at 31 March (median, 50% and "
                f"{format_percent(CI_PROB)} bands)",
                fan[fan["scenario"] != "observed"].drop(columns=["observed"]),
            ),
        )
    return sec


def _panel_axes(n: int):
    """A figure with `n` chart panels stacked vertically, sized for an A4 page."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 1, figsize=(8, 3.6 * n), layout="constrained", squeeze=False)
    return fig, list(axes[:, 0])


def _cost_section(ctx: _Context) -> Section:
    sec = Section("costs", "What it would cost")
    if ctx.forecast is None:
        raise RuntimeError("the cost section needs the forecast section to run first")
    fc = ctx.forecast
    history = cmod.unit_cost_history(ctx.panel, ctx.la)
    ctx.unit_costs = history
    c = cmod.costs(fc, history, inflation=COST_INFLATION, seed=0)
    base = c.base_year
    sec.paragraph(
        "The annual cost of children looked after is the forecast number of children times the "
        f"weekly unit cost times {cmod.WEEKS_PER_YEAR} weeks, per posterior draw, so the interval "
        "carries the uncertainty in both. The unit cost is projected from the authority's own "
        f"history ({c.method} method), in cash prices of each year with {format_percent(COST_INFLATION)} "
        f"a year inflation unless stated otherwise. Year Y is the financial year ending 31 March Y."
    )
    own = [a for a in c.assumptions if a not in fc.assumptions]
    if own:
        sec.heading("Assumptions (besides those of the forecasts)")
        for assumption in own:
            sec.paragraph(assumption)
    for notice in history.attrs.get("notices", ()):
        sec.notice(notice)
    horizons = tuple(h for h in COST_HORIZONS if h <= fc.horizon)
    table = cmod.cost_table(c)
    at = table[table["years_ahead"].isin((0, *horizons))].reset_index(drop=True)
    sec.heading(f"The cost at {', '.join(str(h) for h in horizons)} years")
    sec.table(
        "cost_3_5_10",
        f"Annual cost of children looked after by scenario, base year {cmod.financial_year(base)} and "
        f"{', '.join(str(h) for h in horizons)} years on (£ a year, cash prices of each year, "
        f"{format_percent(CI_PROB)} credible intervals)",
        at,
    )
    sec.table(
        "cost_change_3_5_10",
        f"Change in the annual cost against {cmod.financial_year(base)} (£ a year, cash prices of each "
        f"year, {format_percent(CI_PROB)} credible intervals)",
        cmod.cost_change_table(c, years_ahead=horizons),
    )
    base_cost = float(c.data["base_cost"].median())
    year = base + min(5, fc.horizon)
    finding = cmod.cost_finding(c, base_cost, year, scenario="trend", prices="real")
    finding = replace(finding, title=f"{finding.title} (the {cmod.financial_year(base)} cost)")
    sec.finding(finding, shown=c.assumptions)
    ctx.headlines.append(finding)
    sec.figure(
        cmod.plot_costs(c),
        alt=(
            f"Line chart of the annual cost of children looked after in {ctx.la_name} from "
            f"{cmod.financial_year(base)} to {cmod.financial_year(base + fc.horizon)} under each scenario, "
            f"median with {format_percent(CI_PROB)} credible bands, in £ million a year."
        ),
        caption="Annual cost of children looked after by scenario (£m a year, cash prices of each year).",
        table=make_table(
            "cost_chart",
            "Annual cost of children looked after by scenario and year (£ a year)",
            cmod.cost_chart_table(c),
        ),
    )
    sec.heading("Unit-cost history")
    sec.table(
        "unit_cost_history",
        f"Weekly unit cost of a looked-after child in {ctx.la_name} (£ per child per week, cash prices of "
        f"each year, and of {base})",
        c.unit_costs,
    )
    return sec


def _intervention_section(ctx: _Context) -> Section:
    sec = Section("interventions", "Invest to save: preventive services")
    names = iv.bundled_interventions()
    if not names:
        sec.notice("No intervention files are shipped in models/interventions, so there is nothing to evaluate.")
        return sec
    sec.paragraph(
        "Each preventive service below is priced from the figures in its source paper; every "
        "uncertain input is given a distribution, so the costs and savings come with credible "
        f"intervals and a probability of saving more than the service costs "
        f"({INTERVENTION_DRAWS:,} Monte Carlo draws). The files are in models/interventions/; "
        "the assumptions we added to the sources' figures are listed under each finding."
    )
    for name in names:
        spec = iv.load_intervention(name)
        result = iv.evaluate_intervention(spec, draws=INTERVENTION_DRAWS, seed=0)
        point = iv.evaluate_intervention(spec, uncertainty=False)
        finding = iv.intervention_finding(result)
        sec.heading(_capital(spec.name))
        if spec.description:
            sec.paragraph(spec.description)
        sec.finding(finding)
        sec.paragraph(f"Source: {spec.source}. The source's own figures: {iv.intervention_finding(point).sentence}")
        fig = iv.plot_intervention(result)
        table = iv.intervention_table(result)
        net = table.set_index("quantity").loc["net_saving"]
        sec.figure(
            fig,
            alt=(
                f"Histogram of the simulated net saving of {spec.name}, "
                f"{spec.period}. The {format_percent(CI_PROB)} credible interval runs from "
                f"{format_money(net['lower'])} to {format_money(net['upper'])}; the chance of a net saving is "
                f"{format_percent(result.prob_net_saving)}."
            ),
            caption=f"{_capital(spec.name)}: distribution of the net saving.",
            table=make_table(
                f"invest_{name}",
                f"{_capital(spec.name)}: costs and savings ({format_percent(CI_PROB)} credible intervals)",
                table,
                unit_column="unit",
            ),
        )
        if name in HEADLINE_INTERVENTIONS:
            ctx.headlines.append(finding)
    return sec


def _sensitivity_section(ctx: _Context) -> Section:
    sec = Section("sensitivity", "Appendix A: how much the priors matter")
    sec.paragraph(
        "A Bayesian model combines the data with prior beliefs. These checks ask whether the "
        "numbers in this report come from the data or from the priors."
    )
    sec.heading("Power-scaling (no refit)")
    sec.paragraph(
        "Each prior (and, separately, the likelihood) is raised to a power close to one and the "
        "shift of each parameter's posterior is measured by importance sampling on the existing "
        f"draws (Kallioinen et al. 2024). A prior sensitivity of {smod.THRESHOLD:g} or more together "
        f"with a likelihood sensitivity of {smod.THRESHOLD:g} or more means the prior and the data "
        "disagree (prior-data conflict); prior sensitivity alone means the data say little (weak "
        "likelihood)."
    )
    missing = [g for g in ("log_prior", "log_likelihood") if g not in ctx.results.children]
    if missing:
        sec.notice(
            f"Power-scaling is not available for this run: it was saved without the "
            f"{' and '.join(missing)} group(s). Refit with this version of bayes_lac to get it."
        )
        return sec
    prior_sets = SENSITIVITY_PRIOR_SETS if ctx.sensitivity_refits else ()
    result = smod.sensitivity(ctx.results, prior_sets=prior_sets, unit_costs=ctx.unit_costs, workers=2, progress=True)
    sec.finding(result.power_finding)
    sec.figure(
        smod.plot_power_scaling(result.power),
        alt=(
            "Scatter chart of each parameter's prior sensitivity (horizontal) against its "
            f"likelihood sensitivity (vertical), with dashed threshold lines at {smod.THRESHOLD:g}; "
            "parameters flagged as prior-data conflict or weak likelihood are coloured differently "
            "and labelled."
        ),
        caption="Power-scaling sensitivity of each parameter (unitless; 0 = insensitive).",
        table=make_table(
            "power_scaling", "Power-scaling sensitivity of each parameter (unitless; 0 = insensitive)", result.power
        ),
    )
    sec.heading(f"Refits under the {' and '.join(SENSITIVITY_PRIOR_SETS)} prior sets")
    if not ctx.sensitivity_refits:
        sec.notice(
            "Not run for this report: refitting the model under the weak and tight prior sets "
            "adds two model fits to the time the report takes. Run the report with "
            "--sensitivity-refits, or `bayes-lac sensitivity RUN --prior-sets weak,tight "
            "--out FILE`, to add it."
        )
        return sec
    sec.paragraph(
        "The model is refitted with the same data and sampler settings under each other prior "
        "set (models/priors/), and the conclusions a board reads are compared with the run's own."
    )
    sec.finding(result.finding)
    ctx.headlines.append(result.finding)
    comparison = result.comparison
    sec.table(
        "prior_set_conclusions",
        f"Conclusions under each prior set, beside the run's own ({result.reference})",
        comparison,
        unit_column="units",
    )
    rows = smod.prior_sets_table(comparison, conclusion="forecast_5", measure="looked_after")
    sec.figure(
        smod.plot_prior_sets(comparison, conclusion="forecast_5", measure="looked_after"),
        alt=(
            "Interval chart of the forecast number of children looked after five years ahead under "
            f"each prior set ({', '.join(rows['prior_set'])}): median with its "
            f"{format_percent(CI_PROB)} credible interval."
        ),
        caption="Forecast number of children looked after five years ahead, by prior set.",
        table=make_table(
            "prior_sets_forecast_5", "Forecast of children looked after five years ahead, by prior set", rows
        ),
    )
    return sec


def _priors_table(priors: dict) -> pd.DataFrame:
    """The priors a run used, one row per section, key and measure."""
    rows = []
    for section, body in priors.items():
        for key, value in body.items():
            if isinstance(value, dict):
                for measure, v in value.items():
                    rows.append({"prior": section, "setting": key, "measure": measure, "value": v})
            else:
                rows.append({"prior": section, "setting": key, "measure": "all", "value": value})
    return pd.DataFrame(rows, columns=["prior", "setting", "measure", "value"])


MODEL_DESCRIPTION: tuple[str, ...] = (
    "The model looks at the authority together with its comparison authorities, year by year, "
    "for the three measures at once. For each authority and year it estimates an underlying "
    "rate per 10,000 children aged 0-17, and treats each published count as that rate times the "
    "number of children, plus year-to-year noise (a negative binomial distribution, which allows "
    "more spread than pure chance).",
    "The underlying rate is built from: a common level for the comparison set; each authority's "
    "own level and own straight-line trend relative to the set (the three measures' levels and "
    "trends may be correlated); a common path over time that all authorities in the set share "
    "(national policy, courts and shocks), which can wander from year to year; and the effect of "
    "deprivation (the share of children in relative low-income families). An authority's distance "
    "from this path in one year partly carries into the next (the model estimates how much), so "
    "forecasts start from where the authority is now and return towards its path.",
    "For children looked after, unaccompanied asylum-seeking children (UASC) are taken out before "
    "modelling and added back as a known number, so population, UASC and deprivation can be "
    "separated. The model is fitted by Markov chain Monte Carlo (PyMC's NUTS sampler); every "
    "number in this report is summarised from the resulting posterior draws.",
)


def _model_card_section(ctx: _Context) -> Section:
    sec = Section("model-card", "Appendix B: model card")
    results = ctx.results
    info = run_info(results)
    sampler = info.sampler
    sec.heading("The run")
    items = [
        ("Authority", f"{ctx.la_name} ({ctx.la})"),
        ("Comparison set", f"{info.comparison} ({info.comparison_chosen})"),
        ("Years fitted", f"{info.first_year} to {info.last_year} (31 March)"),
        ("Measures", ", ".join(_measure_label(m) for m in info.measures)),
        ("Prior set", info.prior_set),
        (
            "Sampler",
            ", ".join(f"{k} {v}" for k, v in sampler.items()) if sampler else "not recorded",
        ),
        ("Fitted", info.created_utc),
        ("bayes_lac version of the fit", info.version),
        ("Run file", ctx.run_path or "fitted for this report, not saved"),
    ]
    sec.definitions(items)
    sec.heading("Data sources and vintage")
    data_items = [
        ("Data vintage", info.data_vintage or "not recorded"),
        # the file's name only: a board does not need the analyst's folders
        ("Panel", Path(str(ctx.panel.attrs.get("source", ctx.panel_path or "given in memory"))).name),
        ("Panel SHA-256 (at fit)", info.panel_sha256),
    ]
    readme = DATA_README
    if readme.is_file():
        data_items.append(("Data documentation", f"{bundled_name(readme)} in the bayes_lac repository"))
    sec.definitions(data_items)
    sec.workbook_table(
        "model_card", "Model card: the run and its data", pd.DataFrame(items + data_items, columns=["item", "value"])
    )
    for paragraph in _data_sources_summary(ctx.panel):
        sec.paragraph(paragraph)
    if ctx.panel_mismatch:
        sec.notice(ctx.panel_mismatch)
    sec.heading("Comparison authorities")
    const = results["constant_data"]
    codes = [str(c) for c in const["la"].values]
    names = [str(n) for n in const["la_name"].values] if "la_name" in const.coords else [""] * len(codes)
    sec.table(
        "comparison_set",
        "Authorities in the model's comparison set",
        pd.DataFrame(
            {"la_code": codes, "la_name": names, "role": ["target" if c == ctx.la else "comparison" for c in codes]}
        ),
    )
    sec.heading("The model in plain words")
    for paragraph in MODEL_DESCRIPTION:
        sec.paragraph(paragraph)
    sec.heading("Priors used")
    sec.table(
        "priors",
        f"Priors of the fit (prior set {info.prior_set}; scales in models/priors/default.toml)",
        _priors_table(info.priors),
    )
    sec.heading("Convergence diagnostics")
    diag = info.diagnostics
    sec.paragraph(
        "Thresholds: no divergent transitions, R-hat at most 1.01, bulk and tail effective sample "
        "size at least 400, E-BFMI at least 0.3 in every chain. "
        + ("The fit meets all of them." if diag.converged else "The fit FAILS: " + " ".join(diag.problems))
    )
    table = diag.table()
    # divergences and effective sample sizes are counts; R-hat and E-BFMI need three decimals
    # to compare with 1.01 and 0.3
    table["value"] = pd.Series(
        [
            float(v) if q in ("max R-hat", "min E-BFMI") or not np.isfinite(v) else int(round(v))
            for q, v in zip(table["quantity"], table["value"])
        ],
        dtype=object,
        index=table.index,
    )
    sec.table("diagnostics", "Convergence diagnostics of the fit", table, formats={"value": _diagnostic_value})
    sec.heading("Imputations and exclusions")
    imputations = info.imputations
    if imputations:
        for line in imputations:
            sec.notice(line)
    else:
        sec.paragraph("The fit recorded no imputations or exclusions.")
    panel_notices = list(ctx.panel.attrs.get("notices", ()))
    if panel_notices:
        sec.table(
            "panel_notices",
            "Notices from reading the panel (cells not available, areas renamed, columns ignored)",
            pd.DataFrame({"notice": panel_notices}),
        )
    sec.heading("Forecast calibration (backtest)")
    _backtest_blocks(sec, ctx)
    return sec


def _diagnostic_value(v) -> str:
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"


def _data_sources_summary(panel: pd.DataFrame) -> list[str]:
    """What the panel holds, in words: areas, years, and where its columns come from."""
    years = panel["year"]
    areas = panel["la_code"].nunique()
    return [
        f"The panel holds {areas} areas and the years {int(years.min())} to {int(years.max())}. "
        "Counts of children looked after, in need and on child protection plans are DfE's "
        "published figures (children looked after in England; characteristics of children in "
        "need); the child population is ONS's mid-year estimate of children aged 0-17; deprivation "
        "is DWP's share of children in relative low-income families; unit costs are from the s251 "
        "outturn. See the data documentation for files, releases and licences (OGL v3.0)."
    ]


def _backtest_blocks(sec: Section, ctx: _Context) -> None:
    if not BACKTEST_FILE.is_file():
        sec.notice(
            "Backtest: not yet run. `bayes-lac backtest --out models/backtest/backtest_full.csv.gz` forecasts "
            "from past years and scores the intervals against what happened; its coverage appears "
            "here when that file exists."
        )
        return
    table = pd.read_csv(BACKTEST_FILE)
    sec.paragraph(
        f"Forecasts made from past years ({bundled_name(BACKTEST_FILE)}) scored against "
        "the published counts: the share of outcomes inside each credible interval. A calibrated "
        "forecast puts about 90% of outcomes inside its 90% interval. The settings and fit diagnostics "
        "of the shipped backtest are in models/backtest/README.md."
    )
    sec.table(
        "backtest_coverage",
        "Backtest: coverage of forecast intervals, all authorities pooled",
        bmod.pooled_coverage(table),
    )


def _headline_section(ctx: _Context, sections: Sequence[Section]) -> Section:
    """The headline findings, each pointing to the section that gives its caveats and numbers."""
    sec = Section("headlines", "Headline findings")
    if not ctx.headlines:
        raise RuntimeError("no analysis gave a headline finding")
    sec.paragraph(
        f"Intervals are {format_percent(CI_PROB)} credible intervals: under the model there is a "
        f"{format_percent(CI_PROB)} chance the number lies in the interval. Each finding's "
        "assumptions and caveats are given in the section it links to."
    )
    where = {}
    for s in sections:
        for b in s.blocks:
            if isinstance(b, FindingBlock):
                where.setdefault((b.title, b.sentence), s)
    for finding in ctx.headlines:
        home = where.get((finding.title, finding.sentence))
        sec.blocks.append(
            FindingBlock(
                finding.title,
                finding.sentence,
                see_anchor=home.key if home else "",
                see_title=home.title if home else "",
            )
        )
    return sec


#: The sections after the headlines, in report order.
SECTION_BUILDERS: tuple[Callable[[_Context], Section], ...] = (
    _comparison_section,
    _decomposition_section,
    _forecast_section,
    _cost_section,
    _intervention_section,
    _sensitivity_section,
    _model_card_section,
)


def build_report(
    results: xr.DataTree,
    *,
    la: str | None = None,
    panel: pd.DataFrame | None = None,
    panel_path: str | None = None,
    allow_unconverged: bool = False,
    sensitivity_refits: bool = False,
    run_path: str | None = None,
    run_description: str = "",
    progress: bool = False,
) -> Report:
    """Assemble the board report on authority `la` (default: the run's target) from a run.

    Parameters
    ----------
    results
        A fitted run (see `bayes_lac.model.results`).
    la
        ONS code of the authority; must be the run's target authority.
    panel
        The panel the run was fitted on (for the comparison chart and unit-cost history);
        the bundled panel if None.
    allow_unconverged
        Report on a run that failed its diagnostics, saying so on every page. Without it such
        a run raises `UnconvergedFitError`.
    sensitivity_refits
        Also refit under the weak and tight prior sets (about triples the time).
    run_path
        Where the run is saved, for the model card.
    progress
        Show a progress bar over the sections.
    """
    info = run_info(results)
    la = la or info.target_la
    converged, problems = _convergence(results, allow_unconverged)
    if panel is None:
        from bayes_lac.data.panel import load_panel

        panel = load_panel(panel_path)
    target = info.target_la
    if la != target:
        # the run's comparison set, decomposition and neighbours are those of its target
        raise UnknownAuthorityError(
            f"the run was fitted for {target}, not {la}: report on {target} (--la {target}), or fit a run for {la}"
        )
    ctx = _Context(
        results=results,
        la=la,
        la_name=info.la_name(la),
        panel=panel,
        panel_path=panel_path,
        sensitivity_refits=sensitivity_refits,
        allow_unconverged=allow_unconverged,
        run_path=None if run_path is None else str(run_path),
        panel_mismatch=_panel_mismatch(results, panel),
    )
    builders = SECTION_BUILDERS
    if progress:
        from tqdm.auto import tqdm

        builders = tqdm(builders, desc="report sections", unit="section")
    body = [build(ctx) for build in builders]
    sections = [_headline_section(ctx, body), *body]
    twins = [t for sec in sections for t in sec.twins]
    if twins:
        data = Section("chart-data", "Appendix C: the numbers behind the charts")
        data.paragraph(
            "Tables too long to print beside their charts. Every table of the report is also in "
            "the XLSX workbook when the report is run with --xlsx."
        )
        data.blocks.extend(twins)
        sections.append(data)
    return Report(
        la=la,
        la_name=ctx.la_name,
        sections=sections,
        converged=converged,
        problems=tuple(problems),
        generated_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        run_description=run_description,
    )


def _convergence(results: xr.DataTree, allow_unconverged: bool) -> tuple[bool, list[str]]:
    """Whether the run passed its diagnostics, and the problems if not.

    Raises `UnconvergedFitError` (listing the problems) for a failed run unless allowed.
    """
    from bayes_lac.model.diagnostics import require_converged

    diag = require_converged(results, allow_unconverged=allow_unconverged)
    if diag.converged:
        return True, []
    return False, list(diag.problems) or ["the run is marked as not converged"]


def _panel_mismatch(results: xr.DataTree, panel: pd.DataFrame) -> str:
    """A notice if `panel` is not the panel the run was fitted on (by its SHA-256), else ''."""
    from bayes_lac.data.panel import panel_sha256

    fitted = run_info(results).panel_sha256
    if not fitted or fitted == panel_sha256(panel):
        return ""
    return (
        "The panel given to the report is not the one the run was fitted on (their SHA-256 "
        "hashes differ). The comparison chart and unit costs come from the panel given; every "
        "modelled number comes from the run."
    )


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def default_fit_settings() -> dict:
    """Sampler settings `bayes-lac report` fits with when not given: the model's defaults.

    They give a converged fit of the bundled data within the time budget of `make report`.
    """
    from bayes_lac.model import fit as model

    return {
        "draws": model.DEFAULT_DRAWS,
        "tune": model.DEFAULT_TUNE,
        "chains": model.DEFAULT_CHAINS,
        "seed": model.DEFAULT_SEED,
        "sampler": model.DEFAULT_SAMPLER,
    }


def _fit_for_report(args, panel: pd.DataFrame, run_path: Path) -> xr.DataTree:
    """Fit the model with the command's settings, save the run to `run_path`, return it."""
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.results import save_run

    settings = default_fit_settings()
    for key in settings:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    model = LACModel(args.la, neighbours=args.neighbours, until=args.until, priors=args.priors or "default")
    data = model.prepare(panel, source=str(args.panel or "bundled panel"))
    print(
        f"Fitting {args.la} with {len(data.la) - 1} comparison authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}: {settings['chains']} chains x {settings['draws']} draws "
        f"(+{settings['tune']} tuning)."
    )
    results = model.fit(progressbar=True, **settings)
    save_run(results, run_path)
    diag = run_info(results).diagnostics
    print(f"Saved the run to {run_path}")
    print(diag.summary())
    return results
