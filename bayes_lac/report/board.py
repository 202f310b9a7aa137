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
import json
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
from bayes_lac.errors import BayesLacError, PanelError, ScenarioError, UnknownAuthorityError, UsageError
from bayes_lac.files import atomic_path, is_formula_like, write_bytes, write_files, write_text
from bayes_lac.model.results import run_info
from bayes_lac.report.answers import (
    Answer,
    answer_cost,
    answer_how_many,
    answer_no_cost,
    answer_prevention,
    answer_rising,
    answer_why,
    answers_table,
    first_release_counts,
    join_words,
    peak,
    published_series,
    starters_and_leavers,
)
from bayes_lac.report.charts import (
    alt_text_problem,
    axes_from_zero,
    greyscale_safe,
    name_neighbours,
    plain_chart_words,
)
from bayes_lac.report.formats import (
    KINDS,
    PLOTTING_COLUMNS,
    STAT_COLUMNS,
    column_header,
    column_kind,
    format_value,
    jargon_in,
    plain_words,
    unit_kind,
)
from bayes_lac.studies import backtest as bmod
from bayes_lac.studies import sensitivity as smod
from bayes_lac.summaries import Finding, format_financial_year, format_money, format_percent, format_probability

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

#: Chart resolution: 8 x 4.5 inch figures at this dpi are 960 x 540 pixels, sharp on screen
#: and in A4 print at full text width.
FIGURE_DPI = 120

#: A chart's table twin up to this many rows follows it; a longer one goes to Appendix D. On
#: the board pages every twin goes to Appendix D (the chart's caption links to it), so the
#: pages hold the charts and the findings.
MAX_INLINE_TWIN_ROWS = 14
#: Key of the table of page one's answers: the first sheet of the workbook.
HEADLINE_TABLE = "headline"
#: Columns left out of the HTML tables when they hold a single value (stated in the caption).
HTML_OMIT_CONSTANT = frozenset({"la_code", "ci_prob", "inner_prob", "measure", "scenario", "from_year", "to_year"})

#: Windows of the decomposition besides first-to-last fitted year: the 2017 report's window.
EXTRA_DECOMPOSITION_WINDOWS: tuple[tuple[int, int], ...] = ((2010, 2017),)
#: Share of the child population at which the National Transfer Scheme expects an authority to
#: hold unaccompanied asylum-seeking children (0.1 %, the Home Office threshold since 2022).
UASC_THRESHOLD = 0.001
#: The UASC scenario: the trend, with UASC at that threshold from next year.
UASC_SCENARIO = fmod.Scenario(kind="trend", uasc_rate=UASC_THRESHOLD, name="uasc-threshold")
#: Forecast scenarios shown in the report, in order.
REPORT_SCENARIOS: tuple = ("trend", "population-only", "converge-england", UASC_SCENARIO)
#: What each report scenario assumes, in the board's words.
SCENARIO_WORDS: dict[str, str] = {
    "trend": "the model's own projection: the authority's trend continues and the national path wanders as it has",
    "population-only": "today's rates, applied to the projected number of children",
    "converge-england": "rates move to England's latest published rate over five years",
    "uasc-threshold": f"the trend, with unaccompanied asylum-seeking children held at {100 * UASC_THRESHOLD:g}% of "
    "the child population, the National Transfer Scheme's threshold, instead of at their latest count",
}
#: Their names, as tables and charts label them.
REPORT_SCENARIO_NAMES: tuple[str, ...] = tuple(s.name for s in fmod.parse_scenarios(REPORT_SCENARIOS))
#: Years ahead forecast.
FORECAST_HORIZON = 10
#: The unit cost the board sees when the modelled one is not available (said in a notice).
COST_FALLBACK_METHOD = "flat"
#: Assumed annual inflation of unit costs (2 % a year).
COST_INFLATION = 0.02
#: Price basis of every cost on the report's pages (one basis for every table and sentence):
#: cash prices of each year.
COST_PRICES = "nominal"
#: Years ahead at which the cost table is given.
COST_HORIZONS: tuple[int, ...] = (3, 5, 10)
#: Prior sets the model is refitted under with --sensitivity-refits.
SENSITIVITY_PRIOR_SETS: tuple[str, ...] = ("weak", "tight")
#: Monte Carlo draws per invest-to-save evaluation.
INTERVENTION_DRAWS = 4000
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

        problem = alt_text_problem(alt)
        if problem:
            raise ValueError(f"the alternative text of the chart {caption!r} does not state its message: {problem}")
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

    `frame` holds the numbers in their units; every number is written by the one format of
    its kind (`bayes_lac.report.formats`): the HTML prints the text, the XLSX keeps the number
    and gives its cell the matching Excel number format. A column's kind comes from its name,
    from `kinds` (column -> kind), from `value_kind` (the kind of the summary columns ``mean,
    median, lower, upper``) or, per row, from the unit in `unit_column`. `formats` (column ->
    function) is only for appendix columns no kind describes (convergence diagnostics).
    """

    key: str
    caption: str
    frame: pd.DataFrame
    formats: dict[str, Callable] = field(default_factory=dict)
    unit_column: str | None = None
    kinds: dict[str, str | None] = field(default_factory=dict)
    value_kind: str | None = None
    #: The sheet's name in the workbook (default: from `key`).
    sheet: str = ""
    #: False for a printed summary whose cells are text ("295 (236 to 364)"): the workbook
    #: has the numbers in the full table it summarises instead.
    in_workbook: bool = True
    kind: str = field(default="table", init=False)

    @property
    def anchor(self) -> str:
        return "table-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.key)

    def _shown(self) -> list[str]:
        # Columns that repeat one value the caption already states are left out of the HTML
        # (the XLSX keeps them).
        return [
            c
            for c in self.written_columns
            if not (c in HTML_OMIT_CONSTANT and self.frame[c].nunique(dropna=False) <= 1)
        ]

    @property
    def written_columns(self) -> list[str]:
        """The columns printed or written: all but the chart's plotting positions."""
        return [c for c in self.frame.columns if c not in PLOTTING_COLUMNS]

    def column_kind(self, column: str) -> str | None:
        """The kind of number in `column` for the whole table (None: text, or set per row)."""
        if column in self.kinds:
            return self.kinds[column]
        return column_kind(column, self.frame[column], self.value_kind)

    def cell_kind(self, column: str, record: dict) -> str | None:
        """The kind of one cell: the row's unit decides the summary columns when it names one."""
        if self.unit_column and column in STAT_COLUMNS and column not in self.kinds:
            by_unit = unit_kind(record.get(self.unit_column))
            if by_unit is not None:
                return by_unit
        return self.column_kind(column)

    @property
    def columns(self) -> list[str]:
        return [column_header(c) for c in self._shown()]

    @property
    def rows(self) -> list[list[tuple[str, bool]]]:
        out = []
        shown = self._shown()
        for values in self.frame[self.written_columns].itertuples(index=False, name=None):
            record = dict(zip(self.written_columns, values))
            row = []
            for col in shown:
                row.append(_format_cell(col, record[col], self.formats.get(col), self.cell_kind(col, record)))
            out.append(row)
        return out


def make_table(
    key: str,
    caption: str,
    frame: pd.DataFrame,
    formats: dict | None = None,
    unit_column: str | None = None,
    kinds: dict | None = None,
    value_kind: str | None = None,
    in_workbook: bool = True,
) -> ReportTable:
    """A report table; `key` names its XLSX sheet, `unit_column` (if any) picks each row's
    kind, `kinds` and `value_kind` set kinds the column names do not give (see `ReportTable`)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"table {key!r}: expected a DataFrame, got {type(frame).__name__}")
    caption = _capital(caption)
    return ReportTable(
        key,
        caption,
        _flat_frame(frame),
        dict(formats or {}),
        unit_column,
        dict(kinds or {}),
        value_kind,
        in_workbook=in_workbook,
    )


def glance_table(
    frame: pd.DataFrame, *, rows: Sequence[str], across: str, kind: str, labels: Callable[[object], str] = str
) -> pd.DataFrame:
    """A printed summary of a long table: one row per `rows`, one column per value of
    `across` (headed by `labels(value)`), each cell "central (low to high)" written by the
    format of `kind` from the ``median, lower, upper`` columns."""
    text = KINDS[kind].text
    cells = frame.assign(
        _cell=[
            f"{text(m)} ({text(lo)} to {text(hi)})"
            for m, lo, hi in zip(frame["median"], frame["lower"], frame["upper"])
        ]
    )
    wide = cells.pivot(index=list(rows), columns=across, values="_cell")
    # rows and columns in the order they first appear in `frame`, not sorted
    order = pd.MultiIndex.from_frame(frame[list(rows)].drop_duplicates()) if len(rows) > 1 else None
    wide = wide.reindex(index=order if order is not None else pd.unique(frame[rows[0]]))
    wide = wide.reindex(columns=pd.unique(frame[across]))
    wide.columns = [labels(c) for c in wide.columns]
    return wide.reset_index()


@dataclass
class Section:
    key: str
    title: str
    blocks: list = field(default_factory=list)
    #: Tables holding the numbers of this section's charts, printed in Appendix D.
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
        """Add a chart and its table twin: the twin follows it if short and the section is an
        appendix, else goes to Appendix D. Captions start upper-case."""
        plain_chart_words(fig)
        self.blocks.append(ReportFigure.from_matplotlib(fig, alt=alt, caption=_capital(caption), twin=table))
        if self.key not in BOARD_SECTIONS and len(table.frame) <= MAX_INLINE_TWIN_ROWS:
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

    def starts_page(self, section: Section) -> bool:
        """Whether `section` starts a new printed page: every appendix does; the board sections
        follow on (page one after the title, the contents on page two before the findings)."""
        return section.key not in BOARD_SECTIONS

    def tables(self) -> list[tuple[Section, ReportTable]]:
        """Every table of the report with the section it belongs to, in section order: the
        printed ones, then those printed in Appendix D, then workbook-only ones."""
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


def _flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Named index levels as columns and one level of string column names, for HTML and XLSX
    alike; an unnamed index (row positions left by a filter) is dropped, never written as a
    column called ``index``."""
    out = frame.copy()
    if any(n is not None for n in out.index.names):
        out = out.reset_index()
    else:
        out = out.reset_index(drop=True)
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(p) for p in c if str(p) != "") for c in out.columns]
    out.columns = [str(c) for c in out.columns]
    return out


def _format_cell(col, value, formatter=None, kind: str | None = None) -> tuple[str, bool]:
    """The text of one table cell and whether it is numeric (right-aligned)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–", True
    if formatter is not None:
        return str(formatter(value)), True
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        return format_value(None, value), False
    if kind is None:
        kind = column_kind(col)
    return format_value(kind, value), True


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
    env.filters["prose"] = _prose_html
    return env.get_template("report.html").render(report=report)


#: A negative sum of money in prose ("-£39,507", "-£1.2m"): a line may break after a hyphen-minus
#: before "£", which would print "-" at the end of one line and the sum on the next.
_NEGATIVE_MONEY = re.compile(r"-£[\d,]+(?:\.\d+)?(?:bn|m|k)?")


def _prose_html(text: str):
    """`text` escaped for HTML, each negative sum of money kept on one line."""
    from markupsafe import Markup, escape

    escaped = str(escape(text))
    return Markup(_NEGATIVE_MONEY.sub(lambda m: f'<span class="nobr">{m.group(0)}</span>', escaped))


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
#: Longest sheet name Excel accepts.
SHEET_NAME_MAX = 31


def sheet_names(keys: Sequence[str], reserved: Sequence[str] = ("Contents",)) -> list[str]:
    """Unique Excel sheet names for table keys: words of the key (``_`` and ``-`` read as
    spaces), first letter upper-case, as many whole words as fit in 31 characters (a word is
    never cut), no []:*?/\\; a repeated name gets " 2", " 3", ... in place of its last words."""
    taken = {r.lower() for r in reserved}
    out = []
    for key in keys:
        key = re.sub(r"(\d{4})_\d\d(\d\d)\b", r"\1-\2", str(key))
        for long, short in SHEET_WORDS.items():
            key = key.replace(long, short)
        words = [w for w in re.split(r"[\s_]+", _SHEET_FORBIDDEN.sub(" ", key).strip("'")) if w] or ["table"]
        words[0] = _capital(words[0])
        n = 1
        while True:
            suffix = "" if n == 1 else f" {n}"
            kept = []
            for w in words:
                if len(" ".join([*kept, w])) + len(suffix) > SHEET_NAME_MAX:
                    break
                kept.append(w)
            # a single word longer than a sheet name is the only thing ever cut
            name = (" ".join(kept) or words[0][: SHEET_NAME_MAX - len(suffix)]) + suffix
            if name.lower() not in taken:
                break
            n += 1
        taken.add(name.lower())
        out.append(name)
    return out


def write_xlsx(report: Report, path) -> Path:
    """Every table of the report in one workbook (see `xlsx_bytes`), written atomically."""
    return write_bytes(path, xlsx_bytes(report))


#: Short forms in sheet names (the contents sheet gives each table's full caption): the
#: sector's abbreviations of the measures.
SHEET_WORDS = {
    "looked_after": "LAC",
    "children_in_need": "CIN",
    "child_protection": "CPP",
    "decomp_compare": "change vs others",
    "decomp": "change",
    "counterfactual": "demand paths",
}


#: Row of a table sheet holding the column headers (row 1: the table's caption, row 2: notes).
XLSX_HEADER_ROW = 4


def xlsx_bytes(report: Report) -> bytes:
    """Every table of the report in one workbook: the headline sheet first (the answers of
    page one), a contents sheet, then one sheet per table in report order.

    Each table sheet has its caption in row 1, a notes row (intervals, prices, source) in row 2,
    then an Excel table with filters whose headers (row 4) are the report's words with units.
    Numbers are stored unrounded with the Excel number format of their kind
    (`bayes_lac.report.formats.KINDS`), so a cell shows what the page prints (0.99675 shows as
    ">99%", 135.5 families as "136") and still holds the number. Text that starts with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return is stored as a text cell with Excel's quote
    prefix, so it is shown as written and never run as a formula.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    tables = [x for x in report.tables() if x[1].in_workbook]
    tables = [x for x in tables if x[1].key == HEADLINE_TABLE] + [x for x in tables if x[1].key != HEADLINE_TABLE]
    names = sheet_names([t.key for _, t in tables])
    book = Workbook()
    contents = book.active
    contents.title = "Contents"
    bold = Font(bold=True)
    for text in (report.title, report.subtitle, report.footer):
        contents.append([text])
    contents["A1"].font = Font(bold=True, size=14)
    contents.append([])
    contents.append(["Sheet", "Section", "Table", "Rows"])
    for cell in contents[contents.max_row]:
        cell.font = bold
    for name, (sec, table) in zip(names, tables):
        contents.append([name, sec.title, table.caption, len(table.frame)])
    if not report.converged:
        contents.append([])
        contents.append([report.unconverged_header])
        for problem in report.problems:
            contents.append([problem])
    for letter, width in zip("ABCD", (34, 50, 90, 8)):
        contents.column_dimensions[letter].width = width
    for i, (name, (_, table)) in enumerate(zip(names, tables)):
        sheet = book.create_sheet(name, index=0 if table.key == HEADLINE_TABLE else None)
        _table_sheet(sheet, table, report, display_name=f"T{i + 1}_" + re.sub(r"\W", "_", name))
        sheet["A1"].font = bold
        sheet["A2"].alignment = Alignment(wrap_text=False)
    for sheet in book.worksheets:
        _cells_as_text(sheet)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_notes(table: ReportTable, report: Report) -> str:
    """The notes row of a table's sheet: what the intervals are, and the report it is from."""
    notes = [
        f"Likely ranges are {format_percent(CI_PROB)} equal-tailed credible intervals.",
        "Numbers are stored unrounded and shown in the report's format.",
        f"From: {report.title} ({report.subtitle}).",
    ]
    if not report.converged:
        notes.insert(0, report.unconverged_header + ".")
    return " ".join(notes)


def _table_sheet(sheet, table: ReportTable, report: Report, display_name: str) -> None:
    """Write `table` to an openpyxl sheet: caption, notes, then an Excel table with filters."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.table import Table, TableStyleInfo

    columns = table.written_columns
    headers = _unique([column_header(c) for c in columns])
    sheet.cell(row=1, column=1, value=table.caption)
    sheet.cell(row=2, column=1, value=_xlsx_notes(table, report))
    for j, header in enumerate(headers, start=1):
        sheet.cell(row=XLSX_HEADER_ROW, column=j, value=header)
    for i, values in enumerate(table.frame[columns].itertuples(index=False, name=None), start=XLSX_HEADER_ROW + 1):
        record = dict(zip(columns, values))
        for j, col in enumerate(columns, start=1):
            value = _xlsx_value(col, record[col])
            cell = sheet.cell(row=i, column=j, value=value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and col not in table.formats:
                kind = table.cell_kind(col, record)
                if kind is not None:
                    cell.number_format = KINDS[kind].excel
    last_row = XLSX_HEADER_ROW + len(table.frame)
    if columns and len(table.frame):
        ref = f"A{XLSX_HEADER_ROW}:{get_column_letter(len(columns))}{last_row}"
        excel_table = Table(displayName=display_name[:250], ref=ref)
        excel_table.tableStyleInfo = TableStyleInfo(name="TableStyleLight9", showRowStripes=True)
        sheet.add_table(excel_table)
    sheet.freeze_panes = f"A{XLSX_HEADER_ROW + 1}"
    for j, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(j)].width = min(max(len(header) + 2, 11), 40)


def _xlsx_value(column: str, value):
    """A cell's value for openpyxl: plain Python numbers, None for missing, measure names in words."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, str):
        return format_value(None, value)
    return str(value)


def _unique(headers: list[str]) -> list[str]:
    """Headers made unique (an Excel table needs distinct ones): a repeat gets " (2)"."""
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        seen[h.lower()] = seen.get(h.lower(), 0) + 1
        out.append(h if seen[h.lower()] == 1 else f"{h} ({seen[h.lower()]})")
    return out


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


# --------------------------------------------------------------------------------------------
# Assembling the report from a run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportInputs:
    """What every section reads: the run, the authority, the panel and the report's options.

    Sections are functions of these inputs and of the outputs of the sections they depend on,
    passed as arguments; each returns its `Section` with what later sections and page one use.
    `build_report` calls them in report order, so the dependencies are visible there.
    """

    results: xr.DataTree
    la: str
    la_name: str
    panel: pd.DataFrame
    panel_path: str | None
    sensitivity_refits: bool
    allow_unconverged: bool = False
    run_path: str | None = None
    panel_mismatch: str = ""
    #: Comparison authorities (codes or names) drawn boldly on the comparison charts.
    highlight: tuple[str, ...] = ()
    power_scaling: bool = True
    #: The council's budget for next year (£ a year, cash prices), if given.
    budget: float | None = None
    #: A flows run holding the authority (`bayes_lac.model.flows`), for "Entering and leaving care".
    flows_run: xr.DataTree | None = None


@dataclass(frozen=True)
class Why:
    """The decompositions of children looked after that page one explains: the whole window, or
    the rise to the peak and the change since (`peak_year`)."""

    decompositions: tuple = ()
    peak_year: int | None = None


@dataclass(frozen=True)
class CostOutcome:
    """The cost section's result: the unit-cost history and costs, or why there is no cost."""

    #: What the costs were priced with: the unit-cost fit (modelled) or the history (flat).
    unit_costs: object = None
    costs: object = None
    #: Why there is no cost (the cost section's notice), for page one's cost answer.
    problem: str = ""


def _more_charts() -> Section:
    """A section's charts of the other measures and scenarios, for the appendix of more charts."""
    return Section("more-charts", "Appendix C: more charts (other measures and scenarios)")


def comparison_neighbours(results: xr.DataTree, la: str) -> tuple[list[str], str]:
    """The authorities the report compares `la` with, and where the list comes from: the run's
    neighbours for its target (`bayes_lac.model.results.RunInfo.neighbours`); in a national run,
    another authority's DfE statistical neighbours (those the run models)."""
    info = run_info(results, allow_latent=True)
    if la != info.target_la and info.is_national:
        from bayes_lac.data.neighbours import statistical_neighbours

        modelled = set(info.authorities)
        try:
            listed = statistical_neighbours(la)
        except UnknownAuthorityError:
            # an authority DfE gives no neighbours for (made by a reorganisation after the list)
            return list(info.neighbours_of(la)), "every other authority of the national model (DfE lists none)"
        return (
            [c for c in listed if c in modelled],
            "DfE statistical neighbours (2021 model), all in the national model",
        )
    return list(info.neighbours_of(la)), info.neighbours_source


def _comparison_section(inputs: ReportInputs) -> tuple[Section, pd.DataFrame]:
    """The published rates against the comparison authorities and England, and their table."""
    sec = Section("comparison", f"{inputs.la_name} against its statistical neighbours and England")
    neighbours, source = comparison_neighbours(inputs.results, inputs.la)
    measures = [m for m in MEASURES if m in inputs.panel.columns]
    table = emod.comparison_table(inputs.panel, inputs.la, neighbours, measures=measures)
    sec.paragraph(
        "Published rates per 10,000 children aged 0-17, with no model: the authority, each of its "
        f"{len(neighbours)} comparison authorities ({source}), the comparison authorities taken "
        "together (their pooled rate) and England."
    )
    for finding in emod.comparison_findings(table):
        sec.finding(finding)
    for m in measures:
        label = _measure_label(m)
        t = table[table["measure"] == m]
        wide = _comparison_wide(t)
        sec.heading(label)
        fig = emod.plot_comparison(table, measure=m)
        # the chart draws each series in its own line style and marker already
        name_neighbours(fig.axes[0], table, m, highlight=inputs.highlight)
        sec.figure(
            fig,
            alt=_comparison_alt(t, inputs.la_name, label),
            caption=f"{label}: rate per 10,000 children aged 0-17, {inputs.la_name} against its comparison "
            "authorities (named at the right; those asked about drawn boldly) and England (published counts).",
            table=make_table(
                f"compare_{m}",
                f"{label}: rate per 10,000 children aged 0-17 by area and year (published; counts and "
                "populations in the XLSX workbook)",
                wide,
                kinds={c: "rate" for c in wide.columns if c != "year"},
            ),
        )
        sec.workbook_table(f"compare_{m}_detail", f"{label}: published counts, populations and rates", t)
    return sec, table


def _comparison_alt(t: pd.DataFrame, la_name: str, label: str) -> str:
    """The message of a comparison chart: the latest rates, and the authority's peak."""
    latest = int(t.loc[(t["group"] == "target") & t["rate"].notna(), "year"].max())
    at = t[t["year"] == latest].set_index("group")["rate"]
    text = f"{label}: {la_name} had {KINDS['rate'].text(at['target'])} per 10,000 children aged 0-17 in {latest}"
    others = []
    if "neighbours_average" in at and pd.notna(at["neighbours_average"]):
        others.append(f"its comparison authorities {KINDS['rate'].text(at['neighbours_average'])}")
    if "england" in at and pd.notna(at["england"]):
        others.append(f"England {KINDS['rate'].text(at['england'])}")
    if others:
        text += " against " + " and ".join(others)
    own = t[(t["group"] == "target") & t["rate"].notna()]
    top = own.loc[own["rate"].idxmax()]
    if int(top["year"]) != latest:
        text += f"; its highest rate was {KINDS['rate'].text(top['rate'])} in {int(top['year'])}"
    return text + "."


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
    info = run_info(results, allow_latent=True)
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


def _decomposition_section(inputs: ReportInputs, comparison: pd.DataFrame) -> tuple[Section, Section, Why]:
    """What drove the change (the peak is found in the published `comparison` table), its
    charts of the other measures for the appendix, and the decompositions page one explains."""
    sec, more = Section("decomposition", "What drove the change"), _more_charts()
    windows = decomposition_windows(inputs.results, inputs.la)
    if not windows:
        sec.notice("The run has a single year of counts for this authority, so there is no change to decompose.")
        return sec, more, Why()
    main_window = windows[0]
    peak_year = _fitted_peak(comparison, *main_window)
    why: list = []
    if peak_year is not None:
        # the rise to the peak and the change since, in place of the 2017 report's window
        # (the same window when the peak is 2017 and the fit starts in 2010)
        windows = [main_window, (main_window[0], peak_year), (peak_year, main_window[1])]
    sec.paragraph(
        "The modelled change in each count is split into the part due to the number of children "
        "aged 0-17, the known number of unaccompanied asylum-seeking children (looked-after "
        "children only), deprivation, and the rest. The rest is NOT explained by the measured "
        "demand factors: it holds national and local policy and practice, but equally any demand "
        "the model does not measure, so it is never proof of a practice effect. Every part has a "
        f"likely range ({format_percent(CI_PROB)}); the central values are averages, which add up "
        "to the total."
    )
    peak_case = peak_year is not None
    imputed = dec.imputation_caveats(inputs.results, inputs.la, sorted({y for w in windows for y in w}))
    shown_notices: set[str] = set(imputed)
    for i, (a, b) in enumerate(windows):
        main = i == 0
        measures = None if main else ("looked_after",)
        d = dec.decompose(
            inputs.results,
            la=inputs.la,
            from_year=a,
            to_year=b,
            measures=measures,
            allow_unconverged=inputs.allow_unconverged,
        )
        if (main and not peak_case and "looked_after" in d.measures) or (not main and peak_case):
            why.append(d)
        if peak_case and b == peak_year:
            title = f"{a} to the {b} peak"
        elif peak_case and a == peak_year:
            title = f"the {a} peak to {b}"
        else:
            title = f"{a} to {b}" + ("" if main else " (the window of the 2017 report)")
        # with a peak, the board pages give the rise to it and the change since; the whole
        # window's findings and waterfalls are in the appendix of more charts (its comparison
        # with other areas and demand-only paths stay on the board pages, after the windows)
        home_of_window = more if (main and peak_case) else sec
        home_of_window.heading(f"Change from March {title}")
        for finding in d.findings:
            home_of_window.finding(finding, shown=d.caveats)
        # each notice once, after the findings it qualifies; the imputed inputs of every
        # window are said once, at the end of the section
        window_imputed = set(dec.imputation_caveats(inputs.results, inputs.la, [a, b]))
        for caveat in d.caveats:
            if caveat not in shown_notices and caveat not in window_imputed:
                home_of_window.notice(caveat)
                shown_notices.add(caveat)
        for m in d.measures:
            label = _measure_label(m)
            table = dec.decomposition_table(d, measure=m)
            # the board pages show children looked after; the other measures' waterfalls are
            # in the appendix of more charts
            home = home_of_window if m == "looked_after" or len(d.measures) == 1 else more
            if home is more and home_of_window is sec:
                home.heading(f"{label}: change from March {a} to {b}")
            waterfall = dec.plot_decomposition(d, measure=m)
            axes_from_zero(waterfall)
            home.figure(
                waterfall,
                alt=_decomposition_alt(inputs.la_name, label, a, b, table),
                caption=f"{label}, {inputs.la_name}, March {a} to March {b}: the modelled change split into "
                f"components (bars: averages; whiskers: likely ranges, {format_percent(CI_PROB)}).",
                table=make_table(
                    f"decomp_{m}_{a}_{b}",
                    f"{label}: components of the change, March {a} to {b} (children)",
                    table,
                    value_kind="count",
                ),
            )
        if main:
            whole = (a, b, d)
    a, b, d = whole
    if peak_case:
        sec.heading(f"March {a} to {b} against other areas")
    comp_measure = "looked_after" if "looked_after" in d.measures else d.measures[0]
    comp = dec.comparison_table(d, measure=comp_measure)
    label = _measure_label(comp_measure)
    sec.figure(
        dec.plot_comparison(d, measure=comp_measure),
        alt=_decomp_compare_alt(comp, label, a, b),
        caption=f"{label}: change as a percentage of the {a} count, by component, against "
        "comparison authorities and England.",
        table=make_table(
            f"decomp_compare_{a}_{b}",
            f"{label}: components of the change {a} to {b}, as percentage points of the {a} count",
            comp,
            value_kind="points",
        ),
    )
    cf = dec.counterfactual_table(inputs.results, la=inputs.la, from_year=a, to_year=b, measure=comp_measure)
    paths = dec.plot_counterfactuals(inputs.results, la=inputs.la, from_year=a, to_year=b, measure=comp_measure)
    greyscale_safe(paths)
    sec.figure(
        paths,
        alt=_counterfactual_alt(cf, label, inputs.la_name, b),
        caption=f"{label}: published counts against demand-only paths (the 2017 report's Figure 5, "
        "with credible bands).",
        table=make_table(
            f"counterfactual_{a}_{b}",
            f"{label}: counterfactual paths, {a} to {b} (children)",
            cf,
            value_kind="count",
        ),
    )
    for caveat in imputed:
        sec.notice(caveat)
    return sec, more, Why(tuple(why), peak_year)


def _decomp_compare_alt(comp: pd.DataFrame, label: str, a: int, b: int) -> str:
    """The message of the change-against-others chart: each area's total change in % of its start."""
    total = comp[(comp["component"] == "total") & comp["area"].isin(["target", "neighbours", "england"])]
    parts = [f"{r.area_name} {KINDS['points'].text(r.mean)}%" for r in total.itertuples()]
    return f"{label}, change from {a} to {b} as a percentage of the {a} count: " + "; ".join(parts) + "."


def _counterfactual_alt(cf: pd.DataFrame, label: str, la_name: str, b: int) -> str:
    """The message of the demand-only paths: where each path ends against the published count."""
    end = cf[cf["year"] == b]
    parts = [
        f"{r.series.replace('_', ' ')} {KINDS['count'].text(r.median)}"
        if pd.notna(r.median)
        else f"{r.series.replace('_', ' ')} not published"
        for r in end.itertuples()
    ]
    return f"{label} in {la_name} in March {b}: " + "; ".join(parts) + "."


def _fitted_peak(comparison: pd.DataFrame, first: int, last: int) -> int | None:
    """The year of the highest published count of children looked after within the fitted
    years, if it is strictly inside them and above the first and last published counts (else
    None: no rise-and-fall to explain, as when every count is the same)."""
    if "looked_after" not in set(comparison["measure"]):
        return None
    t = comparison[comparison["year"].between(first, last)]
    series = published_series(t)
    if series.empty:
        return None
    year, top = peak(t)
    rise_and_fall = top > series["count"].iloc[0] and top > series["count"].iloc[-1]
    return year if first < year < last and rise_and_fall else None


def _decomposition_alt(la_name: str, label: str, a: int, b: int, table: pd.DataFrame) -> str:
    """The message of a waterfall: the modelled start and end, and what each part added."""
    rows = table.set_index("component")
    change = KINDS["change"].text
    parts = [
        f"{dec.COMPONENT_LABELS[c]} {change(rows.at[c, 'mean'])}" for c in dec.ADDITIVE_COMPONENTS if c in rows.index
    ]
    text = f"{label} in {la_name}, modelled: {KINDS['count'].text(rows.at['start', 'mean'])} in March {a}"
    if "end" in rows.index:
        text += f" and {KINDS['count'].text(rows.at['end', 'mean'])} in March {b}"
    return text + ". The change split into parts: " + "; ".join(parts) + "."


def _forecast_section(inputs: ReportInputs) -> tuple[Section, Section, fmod.Forecast]:
    """The forecasts under the report's scenarios, the other scenarios' charts for the appendix,
    and the forecast (which the cost section and page one use)."""
    scenarios, left_out = list(fmod.parse_scenarios(REPORT_SCENARIOS)), []
    while True:
        try:
            fc = fmod.forecast(inputs.results, la=inputs.la, horizon=FORECAST_HORIZON, scenarios=scenarios, seed=0)
            break
        except ScenarioError as err:
            # a scenario this authority's numbers cannot carry is left out and said so; the
            # trend is the report's backbone and is never left out
            if err.scenario == "trend":
                raise
            scenarios = [s for s in scenarios if s.name != err.scenario]
            left_out.append(
                f"The {err.scenario} scenario is not shown for {inputs.la_name}: {str(err).split(': ', 1)[-1]}."
            )
    base = fc.base_year
    count = {1: "one", 2: "two", 3: "three", 4: "four"}.get(len(scenarios), str(len(scenarios)))
    sec = Section("forecasts", f"Forecasts under {count} scenario{'s' if len(scenarios) > 1 else ''}")
    sec.paragraph(
        f"Forecasts run from March {base + 1} to March {base + FORECAST_HORIZON} under "
        + join_words([f"{s.name} ({SCENARIO_WORDS[s.name]})" for s in scenarios])
        + ". Intervals on counts include year-to-year noise, so they are wider than the uncertainty "
        "about the underlying rate."
    )
    for notice in left_out:
        sec.notice(notice)
    measures = [str(m) for m in fc.data["measure"].values]
    shipped = _shipped_backtest()
    checked = bmod.checked_horizons(shipped) if shipped is not None else None
    stale = shipped is not None and bool(
        bmod.check_shipped_backtest(BACKTEST_FILE.parent, BACKTEST_FILE.name[: -len(".csv.gz")])
    )
    if shipped is not None and _backtest_of_other_model(inputs.results):
        checked = {}  # no year of this model's fan was checked: all shaded as untested
        sec.paragraph(other_model_words(_backtest_model_name()))
    else:
        sec.paragraph(checked_words(measures, checked, stale))
    sec.heading("Assumptions")
    for assumption in fc.assumptions:
        sec.paragraph(assumption)
    key_years = [base + h for h in COST_HORIZONS if h <= FORECAST_HORIZON]
    table = fmod.forecast_table(fc)
    summary = table[table["year"].isin(key_years)].reset_index(drop=True)
    sec.heading(f"At a glance: March {', '.join(str(y) for y in key_years)}")
    # children looked after first, then the trend and the other scenarios in report order
    order = {name: i for i, name in enumerate((*MEASURES, *fc.scenario_names))}
    by_scenario = summary.sort_values(["measure", "scenario"], key=lambda c: c.map(order), kind="stable")
    sec.table(
        "forecast_glance",
        f"Forecast number of children at 31 March by scenario: central estimate (likely range, "
        f"{format_percent(CI_PROB)})",
        glance_table(
            by_scenario, rows=("measure", "scenario"), across="year", kind="count", labels=lambda y: f"March {y}"
        ),
        in_workbook=False,
    )
    sec.workbook_table(
        "forecast_summary",
        f"Forecast number of children at 31 March by scenario ({format_percent(CI_PROB)} credible intervals)",
        summary,
        value_kind="count",
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
    others = _more_charts()
    for scenario in fc.scenario_names:
        target = sec if scenario == "trend" else others
        target.heading(f"Scenario: {scenario}")
        fig, axes = _panel_axes(len(measures))
        frames = []
        for ax, m in zip(axes, measures):
            # only the trend scenario was backtested; no shading at all without a backtest
            h = None if checked is None else checked.get(m, 0) if scenario == "trend" else 0
            fmod.plot_forecast(fc, measure=m, scenarios=[scenario], checked_horizon=h, ax=ax)
            frames.append(fmod.fan_chart_table(fc, measure=m, scenarios=[scenario], checked_horizon=h))
        fan = pd.concat(frames, ignore_index=True)
        target.figure(
            fig,
            alt=_fan_alt(fc, scenario, measures, inputs.la_name),
            caption=f"{scenario} scenario: published counts and forecast fans (50% and "
            f"{format_percent(CI_PROB)} likely ranges). The published history is in the comparison section.",
            table=make_table(
                f"fan_{scenario}",
                f"{scenario} scenario: forecast number of children at 31 March (central estimate, 50% and "
                f"{format_percent(CI_PROB)} likely ranges)",
                fan[fan["scenario"] != "observed"].drop(columns=["observed"]),
                value_kind="count",
            ),
        )
    return sec, others, fc


def _fan_alt(fc, scenario: str, measures: Sequence[str], la_name: str) -> str:
    """The message of a scenario's fan chart: where each measure is forecast to be at the end."""
    table = fmod.forecast_table(fc, scenarios=[scenario])
    end = fc.base_year + fc.horizon
    parts = []
    for m in measures:
        row = table[(table["measure"] == m) & (table["year"] == end)].iloc[0]
        parts.append(
            f"{_measure_label(m).lower()} about {KINDS['count'].text(row['median'])} "
            f"(likely {KINDS['count'].text(row['lower'])} to {KINDS['count'].text(row['upper'])})"
        )
    return (
        f"Under the {scenario} scenario, {la_name} is forecast to have in March {end}: "
        + "; ".join(parts)
        + f". Fan charts, one panel per measure, from the published counts to {fc.base_year}."
    )


def _cost_alt(table: pd.DataFrame, la_name: str) -> str:
    """The message of the cost chart: the published spend, if drawn, from its first year to its
    last; each scenario's cost in the last year against the base."""
    published = table[table["scenario"] == cmod.PUBLISHED_SPEND].sort_values("year")
    table = table[table["scenario"] != cmod.PUBLISHED_SPEND]
    first, last = table["year"].min(), table["year"].max()
    base = table[table["year"] == first]["median_gbp_per_year"].iloc[0]
    end = table[table["year"] == last]
    parts = [
        f"{r.scenario} {KINDS['money'].text(r.median_gbp_per_year)} (likely {KINDS['money'].text(r.lower_gbp_per_year)} "
        f"to {KINDS['money'].text(r.upper_gbp_per_year)})"
        for r in end.itertuples()
    ]
    spent = ""
    if len(published) > 1:
        a, b = published.iloc[0], published.iloc[-1]
        spent = (
            f"Published spend on children looked after in {la_name} went from "
            f"{KINDS['money'].text(a['median_gbp_per_year'])} in {format_financial_year(int(a['year']))} to "
            f"{KINDS['money'].text(b['median_gbp_per_year'])} in {format_financial_year(int(b['year']))}. "
        )
    return (
        spent + f"The annual cost of children looked after in {la_name}, {KINDS['money'].text(base)} in "
        f"{format_financial_year(int(first))}, reaches in {format_financial_year(int(last))}: "
        + "; ".join(parts)
        + " (cash prices of each year)."
    )


def _unit_cost_alt(table: pd.DataFrame, la_name: str) -> str:
    """Alt text of the unit-cost chart: the published first and last unit costs and the forecast's
    last year, in words and numbers."""
    money = KINDS["money"].text
    published = table[table["kind"] == "published"]
    ahead = table[table["kind"] == "forecast"]
    parts = []
    if len(published):
        first, last = published.iloc[0], published.iloc[-1]
        parts.append(
            f"The published weekly unit cost of a looked-after child in {la_name} went from "
            f"{money(first['median_gbp_per_week'])} in {format_financial_year(int(first['year']))} to "
            f"{money(last['median_gbp_per_week'])} in {format_financial_year(int(last['year']))}."
        )
    end = ahead.iloc[-1]
    parts.append(
        f"The forecast reaches {money(end['median_gbp_per_week'])} a week in {format_financial_year(int(end['year']))} "
        f"(likely range {money(end['lower_gbp_per_week'])} to {money(end['upper_gbp_per_week'])}), cash prices of each year."
    )
    return " ".join(parts)


def _panel_axes(n: int):
    """A figure with `n` chart panels stacked vertically, sized for an A4 page."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 1, figsize=(8, 3.6 * n), layout="constrained", squeeze=False)
    return fig, list(axes[:, 0])


#: The shipped backtest of the unit cost on every authority (`bench/unit_cost_backtest.py`).
UNIT_COST_BACKTEST_SUMMARY = "unit_cost_backtest_summary.csv"


def unit_cost_backtest_words(folder=None) -> str:
    """How far ahead the default unit-cost design was backtested and what it found, in words,
    from the shipped summary (``models/backtest/unit_cost_backtest_summary.csv``); if it is
    missing or holds no row of the default design, says that it has not been checked."""
    from bayes_lac.config import BACKTEST_DIR
    from bayes_lac.model.unit_cost import DEFAULT_DEPARTURE, DEFAULT_GROWTH_MODEL

    untested = "This unit-cost forecast has not been checked against past outturns. "
    path = Path(folder or BACKTEST_DIR) / UNIT_COST_BACKTEST_SUMMARY
    if not path.is_file():
        return untested
    table = pd.read_csv(path)
    rows = table[table["method"] == f"model {DEFAULT_DEPARTURE}/{DEFAULT_GROWTH_MODEL}"]
    if rows.empty or "coverage_90" not in rows.columns:
        return untested
    lo, hi = round(100 * rows["coverage_90"].min()), round(100 * rows["coverage_90"].max())
    h0, h1 = int(rows["h"].min()), int(rows["h"].max())
    held = f"{lo} times in 100" if lo == hi else f"{lo} to {hi} times in 100"
    side = ""
    if rows["pit_mean"].mean() > 0.55:
        side = ", but the outturn fell more often above the central estimate than below it"
    elif rows["pit_mean"].mean() < 0.45:
        side = ", but the outturn fell more often below the central estimate than above it"
    return (
        f"Backtested {h0} to {h1} years ahead on every authority, its likely ranges (90%) held the outturn "
        f"{held}{side}; further ahead the cost rests on that growth continuing and has not been checked. "
    )


def _unit_cost_growth_words(unit, base: int) -> str:
    """What the modelled unit cost carries forward, and how far ahead that was checked."""
    growth = np.expm1(unit.attrs["fit"].posterior["growth"].values)
    lo, hi = np.quantile(growth, [0.05, 0.95])
    return (
        f"It carries on from the latest national growth, {format_percent(float(np.median(growth)))} a year in cash in "
        f"{cmod.financial_year(base)} (likely {format_percent(float(lo))} to {format_percent(float(hi))}), which may "
        "speed up or slow down. " + unit_cost_backtest_words()
    )


def _modelled_unit_cost(inputs: ReportInputs, fc: fmod.Forecast):
    """The modelled unit cost of the authority per draw, or (None, why) when the board cannot
    have it: the authority has no usable unit cost in the model's data, or the unit-cost fit
    failed its convergence gate (then the flat unit cost is used, and the notice says so)."""
    fallback = (
        f"so the cost below holds the unit cost at its {cmod.financial_year(fc.base_year)} level in real terms "
        f"(with {format_percent(COST_INFLATION)} a year inflation) instead, which leaves out any real growth in "
        "unit costs."
    )
    try:
        unit = cmod.modelled_unit_costs(fc, inputs.panel, seed=0)
    except (UnknownAuthorityError, PanelError) as err:
        return None, f"The modelled unit cost is not available for {inputs.la_name} ({err}), {fallback}"
    fit = unit.attrs["fit"]
    if not fit.converged:
        d = fit.diagnostics
        # in plain words for the board page (the package's names for these checks are jargon there)
        return None, (
            "The unit-cost model did not pass its convergence checks (disagreement between its chains "
            f"{d['max_rhat']:.3f}, at most 1.01 allowed; {d['min_ess_bulk']:.0f} independent draws, more than 200 "
            f"needed; {d['divergences']} divergent transitions, none allowed), " + fallback
        )
    return unit, ""


def _cost_section(inputs: ReportInputs, fc: fmod.Forecast) -> tuple[Section, CostOutcome]:
    """What the forecast `fc` would cost, or why there is no cost."""
    sec = Section("costs", "What it would cost")
    try:
        history = cmod.unit_cost_history(inputs.panel, inputs.la)
    except PanelError as err:
        # no published unit cost or spend (e.g. the Isles of Scilly): no cost, said so; page
        # one then has no cost answer
        problem = (
            f"the panel has no published unit cost or spend on children looked after for {inputs.la_name}, "
            "so there is no unit cost to start from"
        )
        sec.notice(
            f"No cost is estimated for {inputs.la_name}: {err}. The cost of children looked after is "
            "the forecast number of children times a unit cost, and there is none to start from."
        )
        return sec, CostOutcome(problem=problem)
    unit, why_not_modelled = _modelled_unit_cost(inputs, fc)
    try:
        if unit is not None:
            c = cmod.costs(fc, unit, inflation=COST_INFLATION, seed=0)
        else:
            c = cmod.costs(fc, history, inflation=COST_INFLATION, seed=0, method=COST_FALLBACK_METHOD)
    except BayesLacError as err:
        # too short a unit-cost history to project (e.g. an authority created in 2023): no
        # cost, said so, as above
        problem = str(err).split(";")[0]
        sec.notice(
            f"No cost is estimated for {inputs.la_name}: {problem}. The cost of children looked "
            "after is the forecast number of children times a unit cost projected from the authority's own "
            "history, and its history is too short to project."
        )
        return sec, CostOutcome(problem=problem)
    base = c.base_year
    if why_not_modelled:
        sec.notice(why_not_modelled)
    how = (
        "The unit cost is modelled from every English authority's published spend per child in care "
        "(s251 outturn over children looked after, from 2012-13): a national cost level that grows "
        "each year, the authority's own distance from it, and year-to-year noise, so the interval "
        "carries the chance that costs grow faster or slower than they have. " + _unit_cost_growth_words(unit, base)
        if c.method == "model"
        else f"The unit cost is held at the authority's {cmod.financial_year(base)} level in real terms "
        f"({c.method} method), with {format_percent(COST_INFLATION)} a year inflation. "
    )
    sec.paragraph(
        "The annual cost of children looked after is the forecast number of children times the "
        f"weekly unit cost times {cmod.WEEKS_PER_YEAR} weeks, per posterior draw, so the interval "
        "carries the uncertainty in both. "
        + how
        + "All costs are in cash prices of each year. Year Y is the financial year ending 31 March Y."
    )
    own = [a for a in c.assumptions if a not in fc.assumptions]
    if own:
        sec.heading("Assumptions (besides those of the forecasts)")
        for assumption in own:
            sec.paragraph(assumption)
    for notice in history.attrs.get("notices", ()):
        sec.notice(notice)
    horizons = tuple(h for h in COST_HORIZONS if h <= fc.horizon)
    table = cmod.cost_table(c, prices=COST_PRICES)
    at = table[table["years_ahead"].isin((0, *horizons))].reset_index(drop=True)
    change = cmod.cost_change_table(c, years_ahead=horizons, prices=COST_PRICES)
    sec.heading(f"The cost at {', '.join(str(h) for h in horizons)} years")
    later = at[at["years_ahead"] > 0]
    glance = glance_table(
        later.rename(
            columns={"median_gbp_per_year": "median", "lower_gbp_per_year": "lower", "upper_gbp_per_year": "upper"}
        ),
        rows=("scenario",),
        across="financial_year",
        kind="money",
    )
    growth = change.set_index(["scenario", "years_ahead"])["median_change_percent"]
    last = max(horizons)
    glance[f"Change by {cmod.financial_year(base + last)}"] = [
        f"{format_value('percent_scale', growth.loc[(name, last)])}" for name in glance["scenario"]
    ]
    sec.table(
        "cost_glance",
        f"Annual cost of children looked after by scenario: central estimate (likely range, "
        f"{format_percent(CI_PROB)}), £ a year in cash prices of each year; the base year "
        f"{cmod.financial_year(base)} costs {format_value('money', float(c.data['base_cost'].median()))}, and "
        f"the last column is the change in the central cost from it",
        glance,
        kinds={col: None for col in glance.columns},
        in_workbook=False,
    )
    sec.workbook_table(
        "cost_3_5_10",
        f"Annual cost of children looked after by scenario, base year {cmod.financial_year(base)} and "
        f"{', '.join(str(h) for h in horizons)} years on (£ a year, cash prices of each year, "
        f"{format_percent(CI_PROB)} credible intervals)",
        at,
    )
    sec.workbook_table(
        "cost_change_3_5_10",
        f"Change in the annual cost against {cmod.financial_year(base)} (£ a year, cash prices of each "
        f"year, {format_percent(CI_PROB)} credible intervals)",
        change,
    )
    base_cost = float(c.data["base_cost"].median())
    year = base + min(5, fc.horizon)
    # the same price basis as the cost tables (cash prices of each year), so the headline's
    # cost in a year is the table's cost in that year
    finding = cmod.cost_finding(c, base_cost, year, scenario="trend", prices=COST_PRICES)
    finding = replace(finding, title=f"{finding.title} (the {cmod.financial_year(base)} cost)")
    sec.finding(finding, shown=c.assumptions)
    spend = cmod.spend_history(inputs.panel, inputs.la)
    cost_fig = cmod.plot_costs(c, prices=COST_PRICES, spend=spend)
    axes_from_zero(cost_fig)
    greyscale_safe(cost_fig)
    chart_table = cmod.cost_chart_table(c, prices=COST_PRICES, spend=spend)
    caption = "Annual cost of children looked after by scenario (£m a year, cash prices of each year)."
    if not spend.empty:
        caption = (
            "Published spend on children looked after (s251 outturn, from "
            f"{format_financial_year(int(spend['year'].min()))}; earlier s251 totals excluded adoption and "
            "special guardianship and are not comparable) and the forecast annual cost by scenario (£m a year, cash prices "
            "of each year). The forecast cost is children times the unit cost, so its base year need not "
            "equal the published spend."
        )
    sec.figure(
        cost_fig,
        alt=_cost_alt(chart_table, inputs.la_name),
        caption=caption,
        table=make_table(
            "cost_chart",
            "Published spend and annual cost of children looked after by scenario and year (£ a year)",
            chart_table,
        ),
    )
    sec.heading("Unit-cost history")
    unit_fig = cmod.plot_unit_costs(c)
    axes_from_zero(unit_fig)
    greyscale_safe(unit_fig)
    unit_table = cmod.unit_cost_chart_table(c)
    sec.figure(
        unit_fig,
        alt=_unit_cost_alt(unit_table, inputs.la_name),
        caption=(
            "Weekly unit cost of a looked-after child: published (s251 spend on children looked after over "
            "children in care at 31 March) to "
            f"{format_financial_year(base)}, then the unit cost the forecast cost uses (central estimate and "
            f"likely range, {format_percent(CI_PROB)}); £ per child per week, cash prices of each year."
        ),
        table=make_table(
            "unit_cost_chart",
            "Weekly unit cost of a looked-after child, published and forecast (£ per child per week, cash prices "
            f"of each year, {format_percent(CI_PROB)} credible intervals)",
            unit_table,
        ),
    )
    sec.table(
        "unit_cost_history",
        f"Weekly unit cost of a looked-after child in {inputs.la_name} (£ per child per week, cash prices of "
        f"each year, and of {base})",
        c.unit_costs,
    )
    # the prior sensitivity prices each refit's forecast as the board's cost is priced
    priced_by = unit.attrs["fit"] if unit is not None else history
    return sec, CostOutcome(unit_costs=priced_by, costs=c)


def _intervention_section(inputs: ReportInputs) -> tuple[Section, list]:
    """The shipped invest-to-save cases, and their results (in order) for page one: each in the
    cash prices and unit cost of care of the authority's latest year with a unit cost (up to the
    run's last year), its source's own figures beside it."""
    sec = Section("interventions", "Invest to save: preventive services")
    names = iv.bundled_interventions()
    results: list = []
    if not names:
        sec.notice("No intervention files are shipped in models/interventions, so there is nothing to evaluate.")
        return sec, results
    sec.paragraph(
        "Each preventive service below is priced from the figures in its source paper; every "
        "uncertain input is given a distribution, including the chance that the service does nothing, that "
        "some of what it prevents would not have happened anyway, and, for services that keep children out of "
        "care, that entries are only put off, judged from the evidence each file cites. So the costs and savings "
        f"come with credible intervals and a probability of saving more than the service costs "
        f"({INTERVENTION_DRAWS:,} Monte Carlo draws); the headline is that chance and the effect at which the "
        "service breaks even, against the effect its source assumed. That chance can be no higher than the "
        "judged chance that the service works at all, which the evidence informs but does not measure. "
        "The files are in models/interventions/; "
        "the assumptions we added to the sources' figures, and the evidence, are listed under each finding."
    )
    try:
        history = cmod.unit_cost_history(inputs.panel, inputs.la).set_index("year")["weekly_cost_per_child"]
        year = int(history[history.index <= run_info(inputs.results, allow_latent=True).last_year].index.max())
    except (PanelError, ValueError):
        year = None
    if year is not None:
        weekly = history.at[year]
        sec.paragraph(
            f"The services are priced in cash prices of {format_financial_year(year)}, not their sources' years: "
            "each service's cost is moved from its source's prices with the GDP deflator, a child kept out of care "
            f"saves {inputs.la_name}'s own unit cost of care in {format_financial_year(year)} "
            f"({format_money(weekly * cmod.WEEKS_PER_YEAR)} a year; the average child in care, not necessarily the "
            "children a service would keep out), and a saving per incident is moved like the service's cost. "
            "The source's own figures, in its prices and without uncertainty, follow each finding."
        )
    else:
        sec.notice(
            f"The panel has no unit cost of care for {inputs.la_name}, so each service is priced with its "
            "source's own figures, in the source's prices, not today's."
        )
    flows = inputs.flows_run
    if flows is not None:
        sec.paragraph(
            f"With the model of children starting and leaving care, a service that keeps children from entering "
            f"care is priced from {inputs.la_name}'s forecast: the children it keeps out are taken off the forecast "
            "entries, and the saving is the care they would have had, year by year, at the forecast chance of "
            "leaving (10 years counted), in place of the source's assumed time in care. Each year of that care is "
            + (
                "priced at the unit cost above, without the growth the cost section forecasts."
                if year is not None
                else "priced at the source's unit cost."
            )
        )
    for name in names:
        source_spec = iv.load_intervention(name)
        spec = source_spec
        if year is not None and source_spec.price_year is not None:
            spec = iv.rebase_intervention(source_spec, inputs.panel, inputs.la, year)
        elif year is not None:
            sec.notice(
                f"{_capital(spec.name)} is priced with its source's own figures: its file gives no price year to "
                f"move them to {format_financial_year(year)} prices from."
            )
        through_flows = flows is not None and spec.unit_cost_per != "outcome"
        if through_flows:
            result = iv.evaluate_through_flows(spec, flows, la=inputs.la, horizon=10, seed=0)
        else:
            result = iv.evaluate_intervention(spec, draws=INTERVENTION_DRAWS, seed=0)
        point = iv.evaluate_intervention(source_spec, uncertainty=False)
        finding = iv.intervention_finding(result)
        results.append(result)
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
                f"{_capital(spec.name)}: net saving about {format_money(net['median'])} {spec.period} "
                f"(likely {format_money(net['lower'])} to {format_money(net['upper'])}); the chance it saves "
                f"more than it costs is {format_probability(result.prob_net_saving)}. Histogram of the simulated "
                "net saving."
            ),
            caption=f"{_capital(spec.name)}: distribution of the net saving.",
            table=make_table(
                f"invest_{name}",
                f"{_capital(spec.name)}: costs and savings ({format_percent(CI_PROB)} credible intervals)",
                table,
                unit_column="unit",
            ),
        )
    return sec, results


#: Years ahead of the forecasts and costs whose power-scaling a latent run's report gives.
BOARD_SENSITIVITY_HORIZONS: tuple[int, ...] = (5, 10)


def board_quantities(
    results: xr.DataTree, why: Why | None, forecast, cost: CostOutcome | None
) -> dict[str, xr.DataArray]:
    """The numbers a board reads from the report, at each posterior draw, for
    `bayes_lac.studies.sensitivity.quantity_power_scaling`: the parts of the change in children looked
    after over the report's main window, the trend forecast of children looked after
    `BOARD_SENSITIVITY_HORIZONS` years after the last fitted year, and its cost (the cost section's
    prices) in those years. What the report did not compute (no decomposition, forecast or cost)
    is left out."""
    out: dict[str, xr.DataArray] = {}
    last = run_info(results, allow_latent=True).last_year
    if why is not None and why.decompositions:
        d = why.decompositions[0]
        if "looked_after" in list(d.measures):
            parts = d.draws.sel(measure="looked_after")
            for c in (*dec.ADDITIVE_COMPONENTS, "total"):
                out[f"change {d.from_year}-{d.to_year}: {dec.COMPONENT_LABELS[c].lower()}"] = parts.sel(component=c)
    if forecast is not None and "looked_after" in list(forecast.data["measure"].values):
        predicted = forecast.data["predicted"].sel(measure="looked_after", scenario="trend")
        for h in BOARD_SENSITIVITY_HORIZONS:
            if last + h in predicted["year"].values:
                out[f"children looked after in {last + h} (forecast)"] = predicted.sel(year=last + h)
    if cost is not None and cost.costs is not None:
        c = cost.costs.data[f"cost_{COST_PRICES}"].sel(scenario="trend")
        for h in BOARD_SENSITIVITY_HORIZONS:
            if last + h in c["year"].values:
                out[f"cost in {last + h} (£, {COST_PRICES} prices)"] = c.sel(year=last + h)
    return out


def board_power_finding(table: pd.DataFrame, threshold: float = smod.THRESHOLD) -> Finding:
    """One sentence on the power-scaling of the board's numbers (`board_quantities`)."""
    flagged = table[table["diagnosis"] != ""]
    kinds = [
        kind
        for kind, prefix in (
            ("the parts of the change", "change "),
            ("forecasts", "children looked after in "),
            ("costs", "cost in "),
        )
        if table["quantity"].str.startswith(prefix).any()
    ]
    what = ", ".join(kinds[:-1]) + (" and " if len(kinds) > 1 else "") + kinds[-1] if kinds else "numbers"
    if flagged.empty:
        sentence = (
            f"None of the {len(table)} numbers checked ({what}) is flagged by power-scaling (threshold "
            f"{threshold:g}): none is sensitive to the priors; the data, not the priors, decide them."
        )
    else:
        sentence = (
            f"Power-scaling flags {len(flagged)} of the {len(table)} numbers checked ({what}; threshold "
            f"{threshold:g}): "
            + "; ".join(f"{r.quantity} ({r.diagnosis})" for r in flagged.itertuples())
            + ". A flagged number moves when the priors are made slightly stronger or weaker; read it with the priors "
            "in Appendix B."
        )
    return Finding(title="Power-scaling of the board's numbers", sentence=sentence, table=table)


def _sensitivity_section(
    inputs: ReportInputs, unit_costs, *, why: Why | None = None, forecast=None, cost: CostOutcome | None = None
) -> Section:
    """Appendix A: power-scaling, and refits under other prior sets if asked (their costs are
    priced with `unit_costs`, what the cost section priced with: its unit-cost fit or history).
    A latent run's power-scaling also covers the numbers the board reads (`board_quantities` of
    `why`, `forecast` and `cost`)."""
    sec = Section("sensitivity", "Appendix A: how much the priors matter")
    sec.paragraph(
        "A Bayesian model combines the data with prior beliefs. These checks ask whether the "
        "numbers in this report come from the data or from the priors."
    )
    latent = run_info(inputs.results, allow_latent=True).latent
    sec.heading("Power-scaling (no refit)")
    sec.paragraph(
        "Each prior (and, separately, the likelihood) is raised to a power close to one and the "
        "shift of each parameter's posterior is measured by importance sampling on the existing "
        f"draws (Kallioinen et al. 2024). A prior sensitivity of {smod.THRESHOLD:g} or more together "
        f"with a likelihood sensitivity of {smod.THRESHOLD:g} or more means the prior and the data "
        "disagree (prior-data conflict); prior sensitivity alone means the data say little (weak "
        "likelihood)."
    )
    if not inputs.power_scaling:
        sec.notice(
            "Not run for this report (made in a batch of every authority's reports): run "
            f"`bayes-lac report --la {inputs.la} --run RUN` for this authority's checks."
        )
        return sec
    if latent:
        from bayes_lac.model.latent_fit import latent_log_densities

        densities = latent_log_densities(inputs.results)
        power = smod.latent_power_scaling(inputs.results, densities=densities)
        sec.paragraph(
            "The priors power-scaled together are those set in models/latent_priors.toml (the levels, drifts, "
            "deprivation effects and the sizes of yearly movements); the likelihood is that of every authority's "
            "series."
        )
        sec.finding(smod.power_scaling_finding(power, converged=run_info(inputs.results, allow_latent=True).converged))
        _power_figure(sec, power)
        quantities = board_quantities(inputs.results, why, forecast, cost)
        if quantities:
            sec.heading("Power-scaling of the numbers a board reads")
            sec.paragraph(
                "The same check for the report's own numbers, from the same draws: how far each would move if the "
                "priors, or the data's weight, were changed slightly. The costs are reweighted by this model's priors "
                "and likelihood only: the unit-cost model's priors and data are not scaled."
            )
            finite = {k: v for k, v in quantities.items() if bool(np.isfinite(np.asarray(v)).all())}
            if finite:
                board_power = smod.quantity_power_scaling(inputs.results, finite, densities=densities)
                sec.finding(board_power_finding(board_power))
                sec.table(
                    "board_power_scaling",
                    "Power-scaling sensitivity of the board's numbers (unitless; 0 = insensitive)",
                    board_power,
                )
            if len(finite) < len(quantities):
                sec.notice(
                    "Not checked (not a number at every draw): "
                    + "; ".join(k for k in quantities if k not in finite)
                    + "."
                )
        _latent_refits(sec, inputs, unit_costs)
        return sec
    missing = [g for g in ("log_prior", "log_likelihood") if g not in inputs.results.children]
    if missing:
        sec.notice(
            f"Power-scaling is not available for this run: it was saved without the "
            f"{' and '.join(missing)} group(s). Refit with this version of bayes_lac to get it."
        )
        return sec
    prior_sets = SENSITIVITY_PRIOR_SETS if inputs.sensitivity_refits else ()
    result = smod.sensitivity(inputs.results, prior_sets=prior_sets, unit_costs=unit_costs, workers=2, progress=True)
    sec.finding(result.power_finding)
    _power_figure(sec, result.power)
    sec.heading(f"Refits under the {' and '.join(SENSITIVITY_PRIOR_SETS)} prior sets")
    if not inputs.sensitivity_refits:
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
    comparison = result.comparison
    sec.table(
        "prior_set_conclusions",
        f"Conclusions under each prior set, beside the run's own ({result.reference})",
        comparison,
        unit_column="units",
    )
    _forecast_by_choice(sec, comparison, "prior set", "prior_sets_forecast_5", "by prior set")
    return sec


def _forecast_by_choice(sec: Section, comparison: pd.DataFrame, by: str, key: str, caption: str) -> None:
    """The chart of the 5-year forecast of children looked after under each prior set or choice
    (`comparison`'s column ``prior_set``), with its table `key`; `caption` ends its caption."""
    rows = smod.prior_sets_table(comparison, conclusion="forecast_5", measure="looked_after")
    column = by.replace(" ", "_")
    sec.figure(
        smod.plot_prior_sets(comparison, conclusion="forecast_5", measure="looked_after", by=by),
        alt=(
            f"Forecast of children looked after five years ahead by {by}: "
            + "; ".join(f"{r.prior_set} {KINDS['count'].text(r.median)}" for r in rows.itertuples())
            + "."
        ),
        caption=f"Forecast number of children looked after five years ahead, {caption}.",
        table=make_table(
            key,
            f"Forecast of children looked after five years ahead, by {by}",
            rows.rename(columns={"prior_set": column}),
        ),
    )


def _latent_refits(sec: Section, inputs: ReportInputs, unit_costs) -> None:
    """A latent run's refits under other beliefs (`bayes_lac.studies.latent_sensitivity`), if asked."""
    from bayes_lac.studies import latent_sensitivity as LS

    sec.heading("Refits under other beliefs")
    if not inputs.sensitivity_refits:
        sec.notice(
            "Not run for this report: the model can be fitted again under other prior beliefs (change is national; "
            "change is local; deprivation drives nothing; no literature prior for deprivation) and other structural "
            "choices (comparison set, trend flexibility, national path, future UASC), about ten fits. Run the report "
            "with --sensitivity-refits, or `bayes-lac sensitivity RUN --refits all --out FILE`, to add them."
        )
        return
    try:
        study = LS.latent_refits(inputs.results, panel=inputs.panel, unit_costs=unit_costs)
    except UsageError as err:
        sec.notice(f"The refits could not be made: {err}.")
        return
    sec.paragraph(
        "The model is fitted again with one choice changed at a time, the data and sampler settings otherwise "
        "unchanged (another comparison set: the same panel's authorities, with its own default number of draws), "
        "and the conclusions a board reads are set beside the run's own. The prior sets are in "
        "models/latent_prior_sets/, each a different belief, not a rescaling of every prior: "
        + "; ".join(f"{v.key}: {v.belief}" for v in study.variants)
        + "."
    )
    sec.finding(study.finding)
    comparison = study.comparison
    sec.table(
        "refit_conclusions",
        "Conclusions under each other choice, beside the run as fitted",
        comparison,
        unit_column="units",
    )
    _forecast_by_choice(
        sec,
        comparison.rename(columns={"choice": "prior_set"}),
        "choice",
        "refits_forecast_5",
        "as fitted and under each other choice",
    )


def _power_figure(sec: Section, power: pd.DataFrame) -> None:
    """The power-scaling chart with its table."""
    sec.figure(
        smod.plot_power_scaling(power),
        alt=_power_alt(power),
        caption="Power-scaling sensitivity of each parameter (unitless; 0 = insensitive).",
        table=make_table(
            "power_scaling", "Power-scaling sensitivity of each parameter (unitless; 0 = insensitive)", power
        ),
    )


def _power_alt(power: pd.DataFrame) -> str:
    """The message of the power-scaling chart: how many parameters are flagged, and which."""
    flagged = power[power["diagnosis"].notna() & (power["diagnosis"].astype(str) != "")]
    if flagged.empty:
        return (
            f"Power-scaling sensitivity: none of the {len(power)} parameters reaches the threshold of "
            f"{smod.THRESHOLD:g}, so no prior dominates the data."
        )
    names = ", ".join(dict.fromkeys(str(p) for p in flagged["parameter"]))
    return (
        f"Power-scaling sensitivity: {len(flagged)} of {len(power)} parameters reach the threshold of "
        f"{smod.THRESHOLD:g} ({names})."
    )


#: Parameters of the latent model whose prior is a beta (alpha, beta); its other pairs are
#: normals (mean, sd) and its single numbers half-normal scales (`bayes_lac.model.latent`).
_LATENT_BETA_PRIORS = ("level_share", "damping", "national_damping", "count_share")


def latent_priors_table(results: xr.DataTree) -> pd.DataFrame:
    """The priors a latent run's parameters had (`bayes_lac.model.latent.load_latent_priors`'s
    form, as the run's design used them), one row per parameter, setting and measure: with the
    default ``split`` variance the sampled ``series_sd`` (half-normal of scale
    sqrt(level_sd**2 + noise**2)) and ``level_share`` replace ``level_sd`` and ``noise``; the
    trend's priors apply to the measures with a local trend; ``national_damping`` only to a
    damped national path."""
    info = run_info(results, allow_latent=True)
    priors = dict(info.priors)
    sampler = info.sampler
    measures = list(info.measures)
    from bayes_lac.model.latent_fit import trend_measures_of

    trend = trend_measures_of(results)
    if sampler.get("variance", "split") == "split":
        from bayes_lac.model.latent import _by_measure

        level, noise = (_by_measure(priors.pop(k), tuple(measures)) for k in ("level_sd", "noise"))
        scale = np.hypot(level, noise)
        priors["series_sd"] = float(scale[0]) if np.all(scale == scale[0]) else dict(zip(measures, map(float, scale)))
    else:
        priors.pop("level_share", None)
    if sampler.get("national", "drift") != "damped":
        priors.pop("national_damping", None)
    if sampler.get("count_noise", "poisson") != "share":
        priors.pop("count_share", None)
    rows = []
    for name, value in priors.items():
        if isinstance(value, (list, tuple)):
            settings = ("alpha", "beta") if name in _LATENT_BETA_PRIORS else ("mean", "sd")
        else:
            settings, value = ("half-normal scale",), (value,)
        if name == "count_share":
            from bayes_lac.model.latent import COUNT_SHARE_MEASURES

            applies = [m for m in measures if m in COUNT_SHARE_MEASURES]
        else:
            applies = trend if name.startswith("trend") or name == "damping" else measures
        if not applies:
            continue
        for setting, v in zip(settings, value):
            if isinstance(v, dict):
                pairs = [(m, v[m]) for m in applies if m in v]
            else:
                pairs = [("all" if applies == measures else ", ".join(applies), v)]
            for measure, number in pairs:
                rows.append({"prior": name, "setting": setting, "measure": measure, "value": number})
    return pd.DataFrame(rows, columns=["prior", "setting", "measure", "value"])


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
    "separated. The model is fitted by Markov chain Monte Carlo (the sampler is named under The "
    "run above); every number in this report is summarised from the resulting posterior draws.",
)


def latent_model_description(results: xr.DataTree) -> list[str]:
    """The latent-state model of a run in plain words, as the run fitted it (its authorities,
    measures and which of them have a local trend)."""
    info = run_info(results, allow_latent=True)
    measures = [_measure_label(m).lower() for m in info.measures]
    from bayes_lac.model.latent_fit import trend_measures_of

    trend = trend_measures_of(results)
    who = (
        "every English authority in the data"
        if info.is_national
        else f"{len(info.authorities)} authorities (the authority and its comparison set)"
    )
    with_trend = join_words([_measure_label(m).lower() for m in trend])
    from bayes_lac.model.latent import LATENT_PRIORS

    damped = info.sampler.get("national") == "damped"
    bundled_drift = json.dumps(info.priors.get("drift"), sort_keys=True) == json.dumps(
        list(LATENT_PRIORS["drift"]), sort_keys=True
    )
    own = (
        "its level can move every year"
        + (f" and, for {with_trend}, it has a trend that fades unless the data keep renewing it" if trend else "")
        + "."
    )
    return [
        f"The model is fitted once on {who}, year by year, for {join_words(measures)}. For each authority "
        "and year it estimates an underlying rate per 10,000 children aged 0-17, and treats each published "
        "count as that rate times the number of children, plus chance and a little extra year-to-year noise "
        "(recording changes, one-off years).",
        "The underlying rate is the sum of: a path that all these authorities share (national policy, courts "
        "and shocks), which moves a little each year around a long-run drift estimated from the data"
        + (", a recent rise or fall carrying on for a while" if damped else "")
        + (
            " (for children looked after, the drift's prior is centred on England's change from 1994 to 2009); the "
            if bundled_drift
            else "; the "
        )
        + "effect of deprivation (the share of children in relative low-income families), both between "
        "authorities and within one authority over time; and the authority's own path, which follows its "
        f"data: {own} How much own paths move is learned from all the authorities together. An authority's "
        "path starts in the first year it publishes counts; nothing is extended backwards to years before it "
        "existed.",
        "For children looked after, unaccompanied asylum-seeking children (UASC) are taken out before "
        "modelling and added back as a known number, so population, UASC and deprivation can be separated. "
        "Forecasts start from where the model puts the authority in its last fitted year (close to its latest "
        "published count) and carry its own path and the shared path forward with their year-to-year "
        "uncertainty; that uncertainty has the size the model estimates and the shape of the model's own errors "
        "one year ahead in the fitted years (where those are heavier-tailed than a bell curve, most years are "
        "calmer than a bell curve suggests and very large surprises more common). The model is fitted by Markov chain Monte Carlo (the sampler is named under The run "
        "above); every number in this report is summarised from the resulting posterior draws.",
    ]


def _model_card_section(inputs: ReportInputs) -> Section:
    sec = Section("model-card", "Appendix B: model card")
    results = inputs.results
    info = run_info(results, allow_latent=True)
    sampler = info.sampler
    sec.heading("The run")
    items = [
        ("Authority", f"{inputs.la_name} ({inputs.la})"),
        ("Comparison set", f"{info.comparison} ({info.comparison_chosen})"),
        ("Years fitted", f"{info.first_year} to {info.last_year} (31 March)"),
        ("Measures", ", ".join(_measure_label(m) for m in info.measures)),
        ("Prior set", "models/latent_priors.toml" if info.latent else info.prior_set),
        ("Sampler", sampler_description(sampler)),
        ("Fitted", info.created_utc),
        ("bayes_lac version of the fit", info.version),
        ("Run file", inputs.run_path or "fitted for this report, not saved"),
    ]
    sec.definitions(items)
    sec.heading("Data sources and vintage")
    data_items = [
        ("Data vintage", info.data_vintage or "not recorded"),
        # the file's name only: a board does not need the analyst's folders
        ("Panel", Path(str(inputs.panel.attrs.get("source", inputs.panel_path or "given in memory"))).name),
        ("Panel SHA-256 (at fit)", info.panel_sha256),
    ]
    readme = DATA_README
    if readme.is_file():
        data_items.append(("Data documentation", f"{bundled_name(readme)} in the bayes_lac repository"))
    sec.definitions(data_items)
    sec.workbook_table(
        "model_card", "Model card: the run and its data", pd.DataFrame(items + data_items, columns=["item", "value"])
    )
    for paragraph in _data_sources_summary(inputs.panel):
        sec.paragraph(paragraph)
    if inputs.panel_mismatch:
        sec.notice(inputs.panel_mismatch)
    sec.heading("Comparison authorities")
    const = results["constant_data"]
    codes = [str(c) for c in const["la"].values]
    names = [str(n) for n in const["la_name"].values] if "la_name" in const.coords else [""] * len(codes)
    other = "fitted with it" if info.is_national else "comparison"
    sec.table(
        "comparison_set",
        "Authorities fitted together in the model (the comparison section names the statistical neighbours)"
        if info.is_national
        else "Authorities in the model's comparison set",
        pd.DataFrame(
            {"la_code": codes, "la_name": names, "role": ["target" if c == inputs.la else other for c in codes]}
        ),
    )
    sec.heading("The model in plain words")
    for paragraph in latent_model_description(results) if info.latent else MODEL_DESCRIPTION:
        sec.paragraph(paragraph)
    sec.heading("Priors used")
    if info.latent:
        sec.table(
            "priors",
            "Priors of the fit (models/latent_priors.toml, which gives the source of each)",
            latent_priors_table(results),
        )
    else:
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
    if info.latent and inputs.la in info.authorities:
        from bayes_lac.studies import lfo

        sec.heading("Leave-future-out check of this authority's series (no refit)")
        lfo_table = lfo.authority_lfo(results, inputs.la)
        sec.paragraph(
            "Each year's published rate (on the log scale) is scored against the model's prediction from this "
            "authority's years before it, with its later years taken out of the fit by Pareto-smoothed importance "
            "sampling (Bürkner, Gabry and Vehtari 2020). The other authorities' data stay in, the same year's "
            "included, and so does the national path: this checks the authority's own year-to-year movement, "
            "not a forecast (the backtest below checks forecasts). A Pareto k above "
            f"{lfo.K_THRESHOLD:g} means reweighting cannot stand in for a refit there."
        )
        sentence = lfo.lfo_sentence(lfo_table, inputs.la_name)
        if lfo_table["reliable"].all():
            sec.paragraph(sentence)
        else:
            sec.notice(sentence)
        sec.workbook_table("lfo", f"Leave-future-out check of {inputs.la_name}'s series (PSIS-LFO)", lfo_table)
    sec.heading("Imputations and exclusions")
    imputations = info.imputations
    if imputations:
        for line in imputations:
            sec.notice(line)
    else:
        sec.paragraph("The fit recorded no imputations or exclusions.")
    panel_notices = list(inputs.panel.attrs.get("notices", ()))
    if panel_notices:
        sec.table(
            "panel_notices",
            "Notices from reading the panel (cells not available, areas renamed, columns ignored)",
            pd.DataFrame({"notice": panel_notices}),
        )
    sec.heading("Forecast calibration (backtest)")
    _backtest_blocks(sec, inputs)
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


_BACKTEST_READ: dict = {}


def _shipped_backtest() -> pd.DataFrame | None:
    """The per-forecast backtest at `BACKTEST_FILE` (None if absent), read once per file version."""
    if not BACKTEST_FILE.is_file():
        return None
    key = (str(BACKTEST_FILE), BACKTEST_FILE.stat().st_mtime_ns)
    if key not in _BACKTEST_READ:
        _BACKTEST_READ.clear()
        _BACKTEST_READ[key] = pd.read_csv(BACKTEST_FILE)
    return _BACKTEST_READ[key]


def checked_words(measures: Sequence[str], checked: dict[str, int] | None, stale: bool) -> str:
    """How far ahead the package's backtest checked forecasts of each of `measures` (`checked`:
    years ahead per measure, as `bmod.checked_horizons` gives; None: no backtest is shipped), in
    words for the forecast section; the years beyond are shaded on the trend scenario's charts."""
    if checked is None:
        return (
            "No backtest is shipped with this installation, so none of these forecasts' likely ranges has been "
            "tested against what happened (`bayes-lac backtest` makes one)."
        )

    def ahead(h: int) -> str:
        return "1 year ahead" if h == 1 else f"1 to {h} years ahead"

    done = [m for m in measures if checked.get(m)]
    not_done = [m for m in measures if not checked.get(m)]
    if len(done) > 1 and not not_done and len({checked[m] for m in done}) == 1:
        parts = [f"forecasts of all {len(done)} measures were checked {ahead(checked[done[0]])}"]
    else:
        parts = [f"forecasts of {_measure_label(m).lower()} were checked {ahead(checked[m])}" for m in done]
    text = (
        "How far ahead forecasts of this kind have been tested against what happened (the trend scenario; the "
        "backtest forecast every authority from past years and compared the likely ranges with the counts "
        "published later): "
    )
    if parts:
        text += join_words(parts)
        if not_done:
            text += "; those of " + join_words([_measure_label(m).lower() for m in not_done]) + " not at all"
    else:
        text += "not at all"
    text += (
        ". On the trend scenario's charts the years beyond are shaded: their ranges are the model's, untested. "
        "The other scenarios are assumptions and were not backtested."
    )
    if stale:
        text += (
            " The backtest shipped with the package was made by an earlier version or configuration of the "
            "model, so even the checked years were checked for that one (models/backtest/README.md)."
        )
    return text


def backtest_fitted_set(
    config: dict | None,
    la: str,
    la_name: str,
    panel: pd.DataFrame | None = None,
    *,
    report_target: str | None = None,
    report_neighbours=None,
    scored: bool | None = None,
) -> str:
    """What the shipped backtest fitted at each origin, in words, beside the report's own fit:
    e.g. "Thurrock and its 2021 DfE statistical neighbours at each origin, the comparison set
    this report's fit uses".

    `report_target` and `report_neighbours` are the report's run's target and comparison
    setting (`RunInfo.neighbours_setting`); `scored` whether the backtest scored `la`.
    """
    config = config or {}
    neighbours, target = str(config.get("neighbours", "")), str(config.get("target", ""))
    if not neighbours or not target:
        return "a comparison set its manifest does not record"
    name = la_name if target == la else target
    if panel is not None and target != la:
        names = panel.loc[panel["la_code"].astype(str) == target, "la_name"]
        name = str(names.iloc[-1]) if len(names) else target
    if neighbours == "all":
        what = "every English authority together"
    elif neighbours in ("2021", "2025"):
        what = f"{name} and its {neighbours} DfE statistical neighbours"
    else:
        what = f"{name} and a list of comparison authorities"
    report_target = report_target or la
    setting = report_neighbours if isinstance(report_neighbours, str) or report_neighbours is None else "list"
    same = (neighbours == "all" and setting == "all") or (target == report_target and neighbours == setting)
    if same:
        return f"{what} at each origin, the comparison set this report's fit uses"
    where = f"{la_name} among them" if scored else f"not {la_name}"
    return (
        f"{what} at each origin ({where}): not the comparison set this report's fit uses, so these figures "
        "describe the model on that set"
    )


def _backtest_model_name() -> str:
    """The model the shipped backtest scored (its manifest's ``model_config["model"]``; '' if none)."""
    return str((_backtest_model_config() or {}).get("model", ""))


def _backtest_of_other_model(results: xr.DataTree) -> bool:
    """Whether the shipped backtest scored another kind of model than the run's (the 0.2 model
    for a latent-state run, or the reverse)."""
    name = _backtest_model_name()
    return bool(name) and name != ("LatentModel" if run_info(results, allow_latent=True).latent else "LACModel")


def other_model_words(scored: str) -> str:
    """The forecast section's words when the shipped backtest scored another model (`scored`)."""
    if scored == "LACModel":
        which, own = "the earlier (0.2) model", "the leave-future-out checks of this model are in models/README.md"
    else:
        which = "the latent-state model (the package's default)"
        own = "`bayes-lac backtest --model default` backtests this model"
    return (
        f"The backtest shipped with the package scored {which}, not the model of this report, so these forecasts' "
        f"likely ranges have not been tested against what happened by it (models/backtest/README.md; {own}). "
        "Every year of the fan is the model's, unchecked here. The other scenarios are assumptions and were not "
        "backtested."
    )


def _backtest_blocks(sec: Section, inputs: ReportInputs) -> None:
    table = _shipped_backtest()
    if table is None:
        sec.notice(
            "Backtest: not yet run. `bayes-lac backtest --out models/backtest/backtest_full.csv.gz` forecasts "
            "from past years and scores the intervals against what happened; its coverage appears "
            "here when that file exists."
        )
        return
    if getattr(inputs, "results", None) is not None and _backtest_of_other_model(inputs.results):
        sec.notice(other_model_words(_backtest_model_name()) + " Its tables are in models/backtest/README.md.")
        return
    info = run_info(inputs.results, allow_latent=True) if getattr(inputs, "results", None) is not None else None
    fitted = backtest_fitted_set(
        _backtest_model_config(),
        inputs.la,
        inputs.la_name,
        inputs.panel,
        report_target=info.target_la if info is not None else None,
        report_neighbours=info.neighbours_setting if info is not None else None,
        scored=inputs.la in set(table["la_code"].astype(str)),
    )
    sec.paragraph(
        f"Forecasts made from past years ({bundled_name(BACKTEST_FILE)}; the model was fitted on {fitted}) "
        "scored against the published counts: the share of outcomes inside each credible interval. A calibrated "
        "forecast puts about 90% of outcomes inside its 90% interval. The settings and fit diagnostics "
        "of the shipped backtest are in models/backtest/README.md."
    )
    coverage = bmod.pooled_coverage(table)
    if coverage.dropna(subset=["coverage"]).empty:
        failed = _failed_backtest_origins()
        why = (
            f"its fit failed its convergence checks at every origin ({join_words([str(o) for o in failed])})"
            if failed
            else "the model was not among the methods backtested"
        )
        sec.notice(
            f"The backtest holds no scored forecast of the model: {why}, so the model's likely ranges have not "
            "been tested against what happened. The baselines' scores are in models/backtest/README.md."
        )
        return
    sec.table("backtest_coverage", backtest_caption(table[table["method"] == bmod.MODEL_METHOD]), coverage)
    failed = _failed_backtest_origins()
    if failed:
        sec.paragraph(
            "In the backtest (at a report's settings) the model's fit "
            f"failed its convergence checks for the forecasts made in {join_words([str(o) for o in failed])}: "
            "those were not scored, so the figures here come from the other years only."
        )
    against = backtest_against_pooled(table)
    if not against.empty:
        sec.table(
            "backtest_against_pooled",
            "Backtest: the model beside the strongest simple forecast (pooled growth: the authority's count times "
            "the changes every authority saw over as many years before), on the same forecasts; a ratio of "
            "accuracy (CRPS) below 1 means the model was more accurate",
            against,
            kinds={"Model: 90% interval held": "percent", "Pooled growth: 90% interval held": "percent"},
        )


_MANIFEST_READ: dict = {}


def _backtest_manifest() -> dict:
    """The shipped backtest's manifest ({} without one), read once per file version."""
    manifest = bmod.output_paths(BACKTEST_FILE)["manifest"]
    if not manifest.is_file():
        return {}
    key = (str(manifest), manifest.stat().st_mtime_ns)
    if key not in _MANIFEST_READ:
        _MANIFEST_READ.clear()
        _MANIFEST_READ[key] = json.loads(manifest.read_text())
    return _MANIFEST_READ[key]


def _backtest_model_config() -> dict | None:
    """The model configuration recorded in the shipped backtest's manifest (None without one)."""
    config = _backtest_manifest().get("model_config")
    return config if isinstance(config, dict) else None


def _failed_backtest_origins() -> list[int]:
    """Origins at which the shipped backtest's model fit failed its gate (from its manifest)."""
    records = _backtest_manifest().get("origins_failed", [])
    return sorted({int(r["origin"]) for r in records if r.get("method") == bmod.MODEL_METHOD})


def backtest_against_pooled(table: pd.DataFrame) -> pd.DataFrame:
    """The model card's table of the model against pooled growth (`bmod.against_pooled`), in words."""
    rows = bmod.against_pooled(table)
    if rows.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "Measure": [_measure_label(m) for m in rows["measure"]],
            "Years ahead": rows["horizon"].astype(int).astype(str),
            "Forecasts": rows["n_scored"].astype(int).map("{:,}".format),
            "Made in": rows["n_origins"].astype(int).map(lambda n: f"{n} {'year' if n == 1 else 'years'}"),
            "Model: 90% interval held": rows["coverage_90"],
            "Pooled growth: 90% interval held": rows["coverage_90_pooled"],
            "CRPS, model / pooled growth": [
                f"{r.crps_ratio:.2f} ({r.lower:.2f} to {r.upper:.2f})"
                if pd.notna(r.lower)
                else f"{r.crps_ratio:.2f} ({r.n_origins} {'year' if r.n_origins == 1 else 'years'}' forecasts)"
                for r in rows.itertuples()
            ],
        }
    )


def backtest_caption(table: pd.DataFrame) -> str:
    """The backtest table's caption, naming what was pooled: its measures and authorities."""
    measures = [_measure_label(m).lower() for m in dict.fromkeys(table["measure"])]
    n_la = table["la_code"].nunique()
    return (
        f"Backtest: coverage of forecast intervals for {', '.join(measures)} only, pooled over "
        f"{n_la} {'authority' if n_la == 1 else 'authorities'}, every forecast year and 1 to "
        f"{int(table['horizon'].max())} years ahead"
    )


#: How each sampler of `bayes_lac.model.fit.SAMPLERS` is named in the model card.
SAMPLER_NAMES = {
    "pymc": "PyMC's NUTS sampler",
    "nutpie": "nutpie (a NUTS sampler)",
    "numpyro": "NumPyro's NUTS sampler",
}


def sampler_description(sampler: dict) -> str:
    """The sampler of a run in words, named once: "PyMC's NUTS sampler: 2 chains of 300 draws
    after 300 tuning steps, target acceptance 0.95, seed 20260331"."""
    if not sampler:
        return "not recorded"
    name = str(sampler.get("sampler", ""))
    parts = []
    if "chains" in sampler and "draws" in sampler:
        parts.append(f"{int(sampler['chains'])} chains of {int(sampler['draws']):,} draws")
    if "tune" in sampler:
        parts.append(f"after {int(sampler['tune']):,} tuning steps")
    if "target_accept" in sampler:
        parts.append(f"target acceptance {float(sampler['target_accept']):g}")
    if "adaptation" in sampler:
        parts.append(f"{str(sampler['adaptation']).replace('_', '-').replace('diag', 'diagonal')} mass matrix")
    if "seed" in sampler:
        parts.append(f"seed {sampler['seed']}")
    known = {"sampler", "chains", "draws", "tune", "target_accept", "adaptation", "seed"}
    parts += [f"{k} {v}" for k, v in sampler.items() if k not in known]
    return f"{SAMPLER_NAMES.get(name, name or 'unnamed sampler')}: " + ", ".join(parts)


def page_one_answers(
    inputs: ReportInputs,
    *,
    comparison: pd.DataFrame,
    why: Why,
    forecast: fmod.Forecast,
    cost: CostOutcome,
    interventions: Sequence,
    flows=None,
) -> list[Answer]:
    """The five answers of page one, from the analyses the sections computed (`flows`: the
    "Entering and leaving care" section's outcome, when the report has one)."""
    answers = []
    if "looked_after" in set(comparison["measure"]):
        first = first_release_counts(inputs.panel, inputs.la)
        answers.append(answer_rising(comparison, forecast, inputs.la_name, first_release=first))
    if why.decompositions:
        answers.append(answer_why(list(why.decompositions), why.peak_year, flows=flows_hook(inputs, why, flows)))
    if "looked_after" in forecast.data["measure"].values:
        answers.append(answer_how_many(forecast, horizons=(5, 10)))
    if cost.costs is not None:
        budget, label = budget_hook(inputs.budget)
        answers.append(answer_cost(cost.costs, prices=COST_PRICES, horizon=5, budget=budget, budget_label=label))
    elif cost.problem:
        answers.append(answer_no_cost(cost.problem))
    answers.append(answer_prevention(interventions))
    return answers


def _flows_section(inputs: ReportInputs, why: Why):
    """ "Entering and leaving care" (`bayes_lac.report.flows_section`) when the report was given
    a flows run, and what page one reads from it; ``(None, None)`` without one."""
    if inputs.flows_run is None:
        return None, None, None
    from bayes_lac.report.flows_section import flows_section

    if why.decompositions:
        windows = [(d.from_year, d.to_year) for d in why.decompositions]
    else:
        info = run_info(inputs.results, allow_latent=True)
        windows = [(info.first_year, info.last_year)]
    return flows_section(inputs.flows_run, inputs.la, inputs.la_name, windows, why.peak_year)


def flows_hook(inputs: ReportInputs, why: Why, flows=None):
    """The starters and leavers of the "why" answer: a callable returning ``(sentence,
    figures)`` or None, from the panel's published flows over the decomposed windows
    (`answers.starters_and_leavers`) and, given the flows section's outcome (`flows`, a
    `bayes_lac.report.flows_section.FlowsOutcome`), the modelled split of each into children
    starting and leaving care."""
    if not why.decompositions:
        return None
    windows = [(d.from_year, d.to_year) for d in why.decompositions]

    def words():
        published = starters_and_leavers(inputs.panel, inputs.la, windows, why.peak_year)
        if flows is None:
            return published
        from bayes_lac.report.flows_section import modelled_flows_words

        modelled = modelled_flows_words(flows, why.peak_year)
        if modelled is None:
            return published
        # the modelled split says more than the published counts: page one gives it, and keeps
        # the published figures for the workbook's headline sheet
        return modelled[0], [*modelled[1], *(published[1] if published else [])]

    return words


def budget_hook(budget: float | None) -> tuple[float | None, str]:
    """The council's budget for next year's looked-after spend (£ a year, cash prices) and its
    name, for the chance of exceeding it; ``(None, "")`` (this year's cost stands in) when the
    report was not given one (`build_report(budget=...)`, ``bayes-lac report --budget``)."""
    if budget is None:
        return None, ""
    return float(budget), f"the budget of {format_value('money', float(budget))}"


def _headline_section(inputs: ReportInputs, answers: list[Answer]) -> Section:
    """Page one: the board's five questions, each with a verdict, its figures and a link."""
    sec = Section("headlines", "Summary: the board's five questions")
    if not answers:
        raise RuntimeError("no analysis gave an answer for page one")
    sec.paragraph(
        f"Each answer gives a central estimate and, for the model's numbers, a likely range "
        f"({format_percent(CI_PROB)}): a {format_percent(CI_PROB)} chance, under the model, that the "
        "number lies in it. The linked section gives the assumptions and caveats."
    )
    sec.blocks.extend(answers)
    sec.workbook_table(
        HEADLINE_TABLE,
        f"{inputs.la_name}: the board's five questions, with the figures of each answer",
        answers_table(answers),
        unit_column="kind",
    )
    return sec


def _report_sections(inputs: ReportInputs, progress: bool = False) -> tuple[list[Section], Section]:
    """Every section in report order (page one first) and the appendix of more charts. Each
    section is given what it reads; this is the one place their order is set."""
    from tqdm.auto import tqdm

    with tqdm(total=7, desc="report sections", unit="section", disable=not progress) as bar:
        comparison_sec, comparison = _comparison_section(inputs)
        bar.update()
        decomposition_sec, decomposition_more, why = _decomposition_section(inputs, comparison)
        flows_sec, flows_more, flows = _flows_section(inputs, why)
        bar.update()
        forecast_sec, forecast_more, forecast = _forecast_section(inputs)
        bar.update()
        cost_sec, cost = _cost_section(inputs, forecast)
        bar.update()
        intervention_sec, interventions = _intervention_section(inputs)
        bar.update()
        sensitivity_sec = _sensitivity_section(inputs, cost.unit_costs, why=why, forecast=forecast, cost=cost)
        bar.update()
        card_sec = _model_card_section(inputs)
        bar.update()
    answers = page_one_answers(
        inputs, comparison=comparison, why=why, forecast=forecast, cost=cost, interventions=interventions, flows=flows
    )
    more = _more_charts()
    for part in (decomposition_more, flows_more, forecast_more):
        if part is None:
            continue
        more.blocks.extend(part.blocks)
        more.twins.extend(part.twins)
        more.workbook_only.extend(part.workbook_only)
    body = [comparison_sec, decomposition_sec, forecast_sec, cost_sec, intervention_sec, sensitivity_sec, card_sec]
    if flows_sec is not None:
        body.insert(2, flows_sec)
    return [_headline_section(inputs, answers), *body], more


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
    highlight: Sequence[str] = (),
    power_scaling: bool = True,
    budget: float | None = None,
    flows_run: xr.DataTree | None = None,
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
        Also refit under other priors: a 0.2 run under the weak and tight prior sets (about
        triples the time); a latent run under other prior beliefs and structural choices
        (`bayes_lac.studies.latent_sensitivity`, about ten fits).
    run_path
        Where the run is saved, for the model card.
    progress
        Show a progress bar over the sections.
    highlight
        Comparison authorities (ONS codes or names) to draw boldly on the comparison charts;
        every comparison authority is named at the end of its line either way.
    power_scaling
        Run the power-scaling check of Appendix A (it runs its own worker processes, so the
        batch of every authority's report, already parallel, leaves it out and says so).
    budget
        The council's budget for next year's looked-after spend (£ a year, cash prices): page
        one gives the chance of exceeding it. Without it, this year's cost stands in.
    flows_run
        A flows run holding the authority (``bayes-lac fit-flows``): adds the section
        "Entering and leaving care" and the modelled split of the change to page one.
    """
    info = run_info(results, allow_latent=True)
    la = la or info.target_la
    converged, problems = _convergence(results, allow_unconverged)
    if flows_run is not None:
        flows_ok, flows_problems = flows_convergence(flows_run, la or info.target_la, allow_unconverged)
        converged, problems = converged and flows_ok, [*problems, *flows_problems]
    if panel is None:
        from bayes_lac.data.panel import load_panel

        panel = load_panel(panel_path)
    target = info.target_la
    if la != target and not (info.is_national and la in info.authorities):
        # the run's comparison set, decomposition and neighbours are those of its target; a
        # national run models every authority, so it can report on any of them
        raise UnknownAuthorityError(
            f"the run was fitted for {target}, not {la}: report on {target} (--la {target}), or fit a run for {la}"
        )
    inputs = ReportInputs(
        results=results,
        la=la,
        la_name=info.la_name(la),
        panel=panel,
        panel_path=panel_path,
        sensitivity_refits=sensitivity_refits,
        allow_unconverged=allow_unconverged,
        run_path=None if run_path is None else str(run_path),
        panel_mismatch=_panel_mismatch(results, panel),
        highlight=tuple(highlight),
        power_scaling=power_scaling,
        budget=budget,
        flows_run=flows_run,
    )
    sections, more_charts = _report_sections(inputs, progress=progress)
    notes = Section("analyst-notes", "Appendix E: analyst notes")
    notes.paragraph(
        "The modelling detail behind the board pages, in the model's own terms (see the glossary), "
        "under the section it belongs to."
    )
    for sec in sections:
        if sec.key in BOARD_SECTIONS:
            _plain_board_section(sec, notes)
    if more_charts.blocks:
        sections.append(more_charts)
    twins = [t for sec in sections for t in sec.twins]
    if twins:
        data = Section("chart-data", "Appendix D: the numbers behind the charts")
        data.paragraph(
            "Tables too long to print beside their charts. Every table of the report is also in "
            "the XLSX workbook when the report is run with --xlsx."
        )
        data.blocks.extend(twins)
        sections.append(data)
    if len(notes.blocks) > 1:
        sections.append(notes)
    sections.append(_glossary_section(latent=info.latent))
    return Report(
        la=la,
        la_name=inputs.la_name,
        sections=sections,
        converged=converged,
        problems=tuple(problems),
        generated_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        run_description=run_description,
    )


#: Sections a board member reads: plain words only (`bayes_lac.report.formats.jargon_in`).
BOARD_SECTIONS: tuple[str, ...] = (
    "headlines",
    "comparison",
    "decomposition",
    "flows",
    "forecasts",
    "costs",
    "interventions",
)


def _split_sentences(text: str) -> list[str]:
    # a full stop followed by a space and a capital or a digit ends a sentence; "e.g. x" does not
    return [t for t in re.split(r"(?<=[.;])\s+(?=[A-Z(])", text) if t.strip()]


def _plain_text(text: str) -> tuple[str, list[str]]:
    """`text` in board words, and the sentences of it that stay jargon (for the analyst notes)."""
    kept, moved = [], []
    for sentence in _split_sentences(plain_words(text)):
        (moved if jargon_in(sentence) else kept).append(sentence)
    return " ".join(kept), moved


def _plain_board_section(sec: Section, notes: Section) -> None:
    """Put a board section in plain words: interval wording, and every sentence that still
    needs a modelling term moved to the analyst notes (`notes`) under the section's title."""
    blocks, moved = [], []
    for block in sec.blocks:
        if isinstance(block, (Paragraph, Notice)):
            text, gone = _plain_text(block.text)
            moved.extend(gone)
            if text:
                blocks.append(replace(block, text=text))
        elif isinstance(block, FindingBlock):
            sentence, gone = _plain_text(block.sentence)
            moved.extend(gone)
            caveats = []
            for caveat in block.caveats:
                text, gone = _plain_text(caveat)
                moved.extend(gone)
                if text:
                    caveats.append(text)
            blocks.append(replace(block, title=plain_words(block.title), sentence=sentence, caveats=tuple(caveats)))
        elif isinstance(block, ReportFigure):
            blocks.append(
                replace(block, caption=plain_words(block.caption), twin_caption=plain_words(block.twin_caption))
            )
        elif isinstance(block, ReportTable):
            blocks.append(replace(block, caption=plain_words(block.caption)))
        else:
            blocks.append(block)
    sec.twins = [replace(t, caption=plain_words(t.caption)) for t in sec.twins]
    moved = list(dict.fromkeys(moved))
    if moved:
        blocks.append(
            Paragraph(f"The modelling detail of this section is in {notes.title}; terms are in the glossary.")
        )
        notes.heading(sec.title)
        for sentence in moved:
            notes.paragraph(sentence)
    sec.blocks = blocks


#: The glossary: every term the analyst pages use, in plain words.
GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "Likely range (90%)",
        "The range the number has a 90% chance of lying in, under the model (a 90% equal-tailed "
        "credible interval): a 5% chance it is lower and a 5% chance it is higher.",
    ),
    ("Central estimate", "The middle of the likely range: an equal chance the number is higher or lower (the median)."),
    ("Rate per 10,000", "Children in the measure per 10,000 children aged 0-17 living in the area."),
    (
        "Comparison authorities",
        "The authority's statistical neighbours: councils most like it (the comparison section names them).",
    ),
    ("UASC", "Unaccompanied asylum-seeking children, who enter care for reasons outside the council's control."),
    (
        "Not explained by measured demand",
        "The part of a change that population, UASC and deprivation do not account for: policy, "
        "practice, and any demand the model does not measure.",
    ),
    ("Scenario: trend", "The model's own projection: the authority's recent trend continues."),
    ("Scenario: population-only", "Today's rates applied to the projected number of children."),
    ("Scenario: converge-england", "Rates move to England's latest rate over five years."),
    (
        "Scenario: uasc-threshold",
        "The trend, with unaccompanied asylum-seeking children at 0.1% of the child population "
        "(the National Transfer Scheme's threshold) instead of their latest count.",
    ),
    ("Cash prices of each year", "Pounds of the year spent, with unit costs rising by the stated inflation."),
    (
        "Posterior, posterior draws",
        "What the model believes after seeing the data; the draws are a large sample from it, "
        "and every number in the report is summarised from them.",
    ),
    ("Credible interval", "The statistical name of the likely range."),
    (
        "Persistence",
        "How much of an authority's distance from its modelled path in one year carries into the "
        "next (0: none, 1: all of it).",
    ),
    (
        "Random walk",
        "A path that moves each year by a random step from where it was, with no pull back: the "
        "model's common path over time.",
    ),
    ("year_sigma", "The size of the common path's yearly random step (on the log scale)."),
    ("Log scale", "Changes measured as proportions: a step of 0.1 on the log scale is about 10%."),
    (
        "Dispersion",
        "How much more the published counts vary from year to year than pure chance would give "
        "(a negative binomial distribution).",
    ),
    ("R-hat", "A convergence check: the chains of the sampler agree when it is at most 1.01."),
    ("ESS", "Effective sample size: how many independent draws the correlated draws are worth (at least 400)."),
    ("E-BFMI", "A check that the sampler explored the whole distribution (at least 0.3 in every chain)."),
    ("Break-even effect", "The effect per participant at which a service's savings just equal its cost."),
)


#: Terms of the 0.2 model only, left out of a latent run's glossary.
_GLOSSARY_02_ONLY = ("Persistence", "year_sigma", "Dispersion")
#: Terms of the latent-state model, added to a latent run's glossary.
LATENT_GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "Own path",
        "The authority's underlying rate relative to the shared path, which follows its own data: it can "
        "move every year, and for children looked after it has a trend that fades unless the data renew it.",
    ),
    (
        "National path",
        "The path over time that all the modelled authorities share (national policy, courts and shocks), "
        "moving each year around a long-run drift.",
    ),
    ("Extra noise", "Year-to-year variation of the published counts beyond pure chance (on the log scale)."),
)


def _glossary_section(latent: bool = False) -> Section:
    """The glossary; for a latent run without the 0.2 model's terms and with its own."""
    sec = Section("glossary", "Glossary")
    if latent:
        sec.definitions([t for t in GLOSSARY if t[0] not in _GLOSSARY_02_ONLY] + list(LATENT_GLOSSARY))
    else:
        sec.definitions(GLOSSARY)
    return sec


def _convergence(results: xr.DataTree, allow_unconverged: bool) -> tuple[bool, list[str]]:
    """Whether the run passed its diagnostics, and the problems if not.

    Raises `UnconvergedFitError` (listing the problems) for a failed run unless allowed.
    """
    from bayes_lac.model.diagnostics import require_converged

    diag = require_converged(results, allow_unconverged=allow_unconverged, allow_latent=True)
    if diag.converged:
        return True, []
    return False, list(diag.problems) or ["the run is marked as not converged"]


def flows_convergence(run: xr.DataTree, la: str, allow_unconverged: bool) -> tuple[bool, list[str]]:
    """Whether a flows run holding `la` passed its checks, and its problem if not; raises
    `UnconvergedFitError` for a failed one unless allowed, `UsageError` if it lacks `la`."""
    from bayes_lac.errors import UnconvergedFitError
    from bayes_lac.model.flows import flows_run_info

    info = flows_run_info(run)
    info.authority(la)
    if info.converged:
        return True, []
    if not allow_unconverged:
        raise UnconvergedFitError(
            f"the flows run of {info.target_la}: {info.problem}; refit it with more draws, or pass "
            "allow_unconverged=True (--allow-unconverged) to report on it marked as such"
        )
    return False, [f"Entering and leaving care: {info.problem}."]


def _panel_mismatch(results: xr.DataTree, panel: pd.DataFrame) -> str:
    """A notice if `panel` is not the panel the run was fitted on (by its SHA-256), else ''."""
    from bayes_lac.model.results import fitted_on

    if fitted_on(results, panel) in (None, True):
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
        "max_treedepth": model.DEFAULT_MAX_TREEDEPTH,
    }


def _fit_for_report(args, panel: pd.DataFrame, run_path: Path, fit_latent: Callable | None = None) -> xr.DataTree:
    """Fit the model with the command's settings, save the run to `run_path`, return it.

    `fit_latent(args, panel)` fits the latent-state model (the command line's); without it the
    0.2 model is fitted.
    """
    from bayes_lac.model.results import save_run

    results = fit_latent(args, panel) if fit_latent is not None else _fit_02(args, panel)
    save_run(results, run_path)
    print(f"Saved the run to {run_path}")
    print(run_info(results, allow_latent=True).diagnostics.summary())
    return results


def _fit_02(args, panel: pd.DataFrame) -> xr.DataTree:
    """The 0.2 model fitted with the command's settings (`default_fit_settings` where not given)."""
    from bayes_lac.model.fit import LACModel

    settings = default_fit_settings()
    for key in settings:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    model = LACModel(args.la, neighbours=args.neighbours or "2021", until=args.until, priors=args.priors or "default")
    data = model.prepare(panel, source=str(args.panel or "bundled panel"))
    print(
        f"Fitting {args.la} with {len(data.la) - 1} comparison authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}: {settings['chains']} chains x {settings['draws']} draws "
        f"(+{settings['tune']} tuning)."
    )
    return model.fit(progressbar=True, **settings)
