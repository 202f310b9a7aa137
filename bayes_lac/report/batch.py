"""Every authority's board report from one national run, and an index page linking them.

`report_all` builds one report per authority of a national run (fitted with ``neighbours="all"``),
in parallel worker processes (`bayes_lac.studies.parallel.run_tasks`, local or on a Dask
cluster), and writes ``index.html``: a table of each authority's headline numbers with their
likely ranges, sortable by any column, linking its report. Every page is self-contained, so a
council can read its own report without installing anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.errors import BayesLacError
from bayes_lac.files import write_text
from bayes_lac.report.formats import KINDS

#: Columns of the index table: (key in `AuthorityRow`, heading, kind of number).
INDEX_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("la_name", "Authority", None),
    ("la_code", "ONS code", None),
    ("looked_after", "Children looked after (latest)", "count"),
    ("rate", "Per 10,000 children aged 0-17", "rate"),
    ("forecast_5", "In 5 years (trend)", "count"),
    ("cost_next", "Cost next year (£, cash prices)", "money"),
)

#: Sorts the index table when a column heading is clicked (the only script of any page; the
#: index's Content-Security-Policy admits it by its hash and nothing else).
SORT_SCRIPT = """
document.querySelectorAll("th button").forEach((button, col) => {
  button.addEventListener("click", () => {
    const body = document.querySelector("tbody");
    const rows = Array.from(body.rows);
    const up = button.dataset.order !== "up";
    const key = r => { const v = r.cells[col].dataset.sort; const n = parseFloat(v); return isNaN(n) ? v : n; };
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (up ? 1 : -1));
    document.querySelectorAll("th button").forEach(b => { delete b.dataset.order; b.parentElement.removeAttribute("aria-sort"); });
    button.dataset.order = up ? "up" : "down";
    button.parentElement.setAttribute("aria-sort", up ? "ascending" : "descending");
    rows.forEach(r => body.appendChild(r));
  });
});
"""


@dataclass(frozen=True)
class AuthorityRow:
    """One authority's line in the index: its headline numbers and likely ranges."""

    la_code: str
    la_name: str
    file: str
    looked_after: float = np.nan
    rate: float = np.nan
    forecast_5: float = np.nan
    forecast_5_lower: float = np.nan
    forecast_5_upper: float = np.nan
    cost_next: float = np.nan
    cost_next_lower: float = np.nan
    cost_next_upper: float = np.nan
    #: Why the authority has no report (empty when it has one).
    problem: str = ""


def report_file_name(la_name: str, la_code: str) -> str:
    """The report's file name: the authority's name in lower case with hyphens, and its code."""
    slug = re.sub(r"[^a-z0-9]+", "-", la_name.lower()).strip("-") or "authority"
    return f"{slug}-{la_code}.html"


def _headline_row(report, file: str) -> AuthorityRow:
    """The index line of a built report, read from its page-one answers."""
    values: dict = {}
    for answer in (b for b in report.sections[0].blocks if b.kind == "answer"):
        figures = list(answer.figures)
        if answer.key == "rising" and len(figures) >= 2:
            values["looked_after"] = figures[0].value
            values["rate"] = figures[1].value
        elif answer.key == "how_many" and figures:
            f = figures[0]
            values.update(forecast_5=f.value, forecast_5_lower=f.lower, forecast_5_upper=f.upper)
        elif answer.key == "cost" and len(figures) >= 2:
            f = figures[1] if figures[1].lower is not None else figures[0]
            values.update(cost_next=f.value, cost_next_lower=f.lower, cost_next_upper=f.upper)
    values = {k: (np.nan if v is None else float(v)) for k, v in values.items()}
    return AuthorityRow(la_code=report.la, la_name=report.la_name, file=file, **values)


def report_one(task: tuple) -> AuthorityRow:
    """Build and write one authority's report (a worker task: run file, authority, panel file
    or None, output folder, whether to write the workbook); return its index line."""
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.results import load_run
    from bayes_lac.report.board import build_report, write_report_files

    run_path, la, panel_path, out_dir, xlsx = task
    results = load_run(run_path, allow_latent=True)
    panel = load_panel(panel_path) if panel_path else load_panel()
    try:
        report = build_report(
            results, la=la, panel=panel, panel_path=panel_path, run_path=str(run_path), power_scaling=False
        )
    except BayesLacError as err:
        # this authority's numbers cannot carry a report: the others are still written, and
        # the index says which has none and why
        name = str(results["constant_data"]["la_name"].sel(la=la).item())
        return AuthorityRow(la_code=la, la_name=name, file="", problem=str(err))
    file = report_file_name(report.la_name, la)
    out = Path(out_dir) / file
    write_report_files(report, out, out.with_suffix(".xlsx") if xlsx else None)
    return _headline_row(report, file)


def report_all(
    run_path,
    out_dir,
    *,
    panel_path=None,
    authorities=None,
    xlsx: bool = False,
    workers: int = 2,
    scheduler=None,
    progress: bool = True,
    with_rows: bool = False,
) -> Path | tuple[Path, list[AuthorityRow]]:
    """Write a board report for every authority of a national run, and the index page.

    Parameters
    ----------
    run_path
        A saved national run (fitted with ``neighbours="all"``).
    out_dir
        Folder for the reports (``<name>-<code>.html``) and ``index.html``; made if missing.
    panel_path
        The panel the run was fitted on (default: the bundled panel).
    authorities
        ONS codes to report on (default: every authority of the run).
    xlsx
        Also write each report's workbook.
    workers, scheduler
        Local worker processes, or a Dask scheduler (see `bayes_lac.studies.parallel.run_tasks`).

    with_rows
        Also return the index lines (`AuthorityRow`; ``problem`` says why an authority has no
        report).

    Returns
    -------
    The path of ``index.html`` (and the index lines, with `with_rows`). An authority whose
    numbers cannot carry a report (a `BayesLacError` while building it) does not stop the
    others: the index lists it with the reason.

    Raises
    ------
    BayesLacError
        The run is not national, or an authority asked for is not in it.
    """
    from bayes_lac.model.results import load_run, run_info
    from bayes_lac.studies.parallel import run_tasks

    info = run_info(load_run(run_path, allow_latent=True), allow_latent=True)
    if not info.is_national:
        raise BayesLacError(
            f"{run_path}: --all needs a national run (fitted with every authority, neighbours 'all'); "
            f"this run models {len(info.authorities)} authorities around {info.target_la}"
        )
    las = list(authorities) if authorities else list(info.authorities)
    unknown = [la for la in las if la not in info.authorities]
    if unknown:
        raise BayesLacError(f"{run_path}: not modelled in this run: {', '.join(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(str(run_path), la, None if panel_path is None else str(panel_path), str(out_dir), xlsx) for la in las]
    rows = run_tasks(report_one, tasks, workers=workers, scheduler=scheduler, progress=progress, description="reports")
    index = write_text(out_dir / "index.html", render_index(rows, info))
    return (index, list(rows)) if with_rows else index


def _cell(row: AuthorityRow, key: str, kind: str | None) -> tuple[str, str]:
    """(text, sort key) of one index cell; a number carries its likely range when it has one."""
    value = getattr(row, key)
    if kind is None:
        return str(value), str(value).lower()
    if value is None or not np.isfinite(value):
        return "–", ""
    text = KINDS[kind].text(value)
    lower, upper = getattr(row, f"{key}_lower", np.nan), getattr(row, f"{key}_upper", np.nan)
    if np.isfinite(lower) and np.isfinite(upper):
        text += f" (likely {KINDS[kind].text(lower)} to {KINDS[kind].text(upper)})"
    return text, repr(float(value))


def render_index(rows, info) -> str:
    """The index page: a sortable table of every authority's headline numbers, linking its report."""
    script_hash = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    head = "".join(
        f'<th scope="col"><button type="button">{html.escape(title)}</button></th>' for _, title, _ in INDEX_COLUMNS
    )
    body = []
    for row in sorted(rows, key=lambda r: r.la_name):
        cells = []
        for key, _, kind in INDEX_COLUMNS:
            text, sort = _cell(row, key, kind)
            content = html.escape(text)
            if key == "la_name" and row.file:
                content = f'<a href="{html.escape(row.file)}">{content}</a>'
            cells.append(f'<td data-sort="{html.escape(sort)}"{" class=num" if kind else ""}>{content}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    years = f"{info.first_year} to {info.last_year}"
    missing = [r for r in sorted(rows, key=lambda r: r.la_name) if r.problem]
    problems = ""
    if missing:
        items = "".join(f"<li>{html.escape(r.la_name)} ({r.la_code}): {html.escape(r.problem)}</li>" for r in missing)
        problems = f"<p>No report for {len(missing)} authorit{'y' if len(missing) == 1 else 'ies'}:</p><ul>{items}</ul>"
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Children's social care demand: every authority's board report</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; max-width: 70rem; margin: 0 auto; padding: 1rem; }}
table {{ border-collapse: collapse; font-size: 0.9rem; width: 100%; }}
th, td {{ border-bottom: 1px solid #999; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
th button {{ font: inherit; font-weight: 700; background: none; border: none; padding: 0; cursor: pointer; text-align: left; }}
</style>
</head>
<body>
<h1>Children's social care demand: every authority's board report</h1>
<p>{len(rows)} authorities from one national model fitted on {years}. Click a heading to sort by it;
click an authority to open its report. Likely ranges are 90% ranges under the model.</p>
{problems}
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
<script>{SORT_SCRIPT}</script>
</body>
</html>
"""


def index_table(rows) -> pd.DataFrame:
    """The index's numbers as a table (one row per authority), for tests and the workbook."""
    return pd.DataFrame([r.__dict__ for r in rows])
