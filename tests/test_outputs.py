"""Output files are safe: atomic, never over an input, text kept as text, named after the
authority, and a missing PDF engine never costs the report.

Each test is named after the defect it pins (issue #16). Most go through `bayes_lac.cli.main`,
where the user met the defect; the report ones use a small hand-made `Report` (no fit).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from bayes_lac import files
from bayes_lac.cli import main
from bayes_lac.config import BUNDLED_PANEL, PROJECT_DIR
from bayes_lac.errors import BayesLacError, OutputFileError
from tests.conftest import make_toy_results

SMALL_PANEL = Path(__file__).parent / "data" / "panel_small.csv"
EDGE_OF_CARE = PROJECT_DIR / "models" / "interventions" / "edge_of_care.toml"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    assert "Traceback" not in err
    return lines[0]


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(files.TEMP_PREFIX + "*"))


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    from bayes_lac.model.results import save_run

    path = tmp_path_factory.mktemp("run") / "run.nc"
    save_run(make_toy_results(), path)
    return path


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def test_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old complete content\n")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(target) as temp:
            temp.write_text("half of the new")
            raise KeyboardInterrupt
    assert target.read_text() == "old complete content\n"
    assert _leftovers(tmp_path) == []


def test_atomic_write_keeps_the_destination_suffix_and_ordinary_permissions(tmp_path):
    target = tmp_path / "backtest.csv.gz"
    files.write_csv(pd.DataFrame({"a": [1, 2]}), target)
    # compression was inferred from the destination's name, through the temporary file
    assert pd.read_csv(target)["a"].tolist() == [1, 2]
    assert target.read_bytes()[:2] == b"\x1f\x8b"
    assert target.stat().st_mode & 0o777 == files._default_mode()


def test_file_open_in_another_program_gives_a_clear_error(tmp_path, monkeypatch):
    """On Windows a workbook open in Excel cannot be replaced: say so, leave no temporary file."""
    target = tmp_path / "report.xlsx"
    target.write_bytes(b"open in Excel")

    def locked(src, dst):
        raise PermissionError(13, "Access is denied")

    monkeypatch.setattr(files.os, "replace", locked)
    with pytest.raises(OutputFileError, match="close it and run again"):
        files.write_bytes(target, b"new")
    assert target.read_bytes() == b"open in Excel" and _leftovers(tmp_path) == []


def test_save_run_is_atomic(tmp_path, monkeypatch):
    """An interrupt while a run is saved leaves the earlier run intact, not a broken file."""
    import xarray as xr

    from bayes_lac.model.results import load_run, save_run

    path = tmp_path / "run.nc"
    save_run(make_toy_results(), path)
    before = _digest(path)

    def interrupted(self, target, *args, **kwargs):
        Path(target).write_bytes(b"\x89HDF\r\n partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_run(make_toy_results(seed=1), path)
    assert _digest(path) == before and _leftovers(tmp_path) == []
    monkeypatch.undo()
    assert load_run(path).attrs["target_la"]


def small_report(name: str = "Area 0", sections: int = 8):
    """A report with `sections` sections of one table each (no fit, builds in milliseconds)."""
    from bayes_lac.report import board as R

    out = []
    for i in range(sections):
        sec = R.Section(f"s{i}", f"Section {i}")
        sec.paragraph(f"Paragraph {i} about {name}.")
        sec.table(
            f"table_{i}",
            f"Table {i}",
            pd.DataFrame(
                {
                    "la_name": [name, "= 0", "-2+3", "@SUM(A1)", "-5", "+44 20", "\tx", "plain"],
                    "value": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, float(i)],
                }
            ),
        )
        out.append(sec)
    return R.Report(la="E06009000", la_name=name, sections=out)


def test_interrupted_workbook_is_not_left_looking_valid(tmp_path, monkeypatch):
    """The defect: an interrupt left a valid-looking workbook with 7 of 31 sheets."""
    from bayes_lac.report import board as R

    path = tmp_path / "report.xlsx"
    calls = {"n": 0}
    original = R._table_sheet

    def table_sheet(*args, **kwargs):
        # interrupted while writing the fifth sheet
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(R, "_table_sheet", table_sheet)
    with pytest.raises(KeyboardInterrupt):
        R.write_xlsx(small_report(), path)
    assert not path.exists()
    # an earlier complete workbook survives an interrupted replacement
    monkeypatch.undo()
    R.write_xlsx(small_report(), path)
    before = _digest(path)
    calls["n"] = 0
    monkeypatch.setattr(R, "_table_sheet", table_sheet)
    with pytest.raises(KeyboardInterrupt):
        R.write_xlsx(small_report("Other"), path)
    assert _digest(path) == before and _leftovers(tmp_path) == []


def test_two_writers_to_one_workbook_never_corrupt_it(tmp_path):
    """The defect: two reports written to one path corrupted the workbook in 2 of 7 rounds."""
    from openpyxl import load_workbook

    from bayes_lac.report import board as R

    path = tmp_path / "report.xlsx"
    reports = {name: small_report(name, sections=20) for name in ("Writer A", "Writer B")}
    for _ in range(4):
        barrier = threading.Barrier(2)
        errors = []

        def write(report, barrier=barrier, errors=errors):
            try:
                barrier.wait()
                R.write_xlsx(report, path)
            except BaseException as err:  # collected and re-raised in the test thread
                errors.append(err)

        threads = [threading.Thread(target=write, args=(r,)) for r in reports.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        book = load_workbook(path)
        assert len(book.sheetnames) == 21
        # every sheet comes from the same writer: one whole workbook, not a mixture
        first = R.XLSX_HEADER_ROW + 1
        writers = {book[name].cell(row=first, column=1).value for name in book.sheetnames[1:]}
        assert len(writers) == 1 and writers <= set(reports)
        assert book["Contents"]["A1"].value == reports[writers.pop()].title
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Outputs checked before any work
# --------------------------------------------------------------------------------------------


def test_forecast_refuses_to_write_its_csv_over_the_run_file(run_file, capsys):
    """The defect: `forecast run.nc --out run.nc` replaced the run with a CSV."""
    before = _digest(run_file)
    spellings = [str(run_file), str(run_file.parent / "." / ".." / run_file.parent.name / run_file.name)]
    for out in spellings:
        assert main(["forecast", str(run_file), "--out", out]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "same file" in line and "--out" in line
    assert _digest(run_file) == before


def test_output_through_a_link_to_the_input_is_refused(run_file, tmp_path, capsys):
    link = tmp_path / "link.nc"
    link.symlink_to(run_file)
    assert main(["decompose", str(run_file), "--from", "2010", "--to", "2020", "--out", str(link)]) == 2
    assert "same file" in _one_line(capsys.readouterr().err)
    assert link.resolve() == run_file


@pytest.mark.parametrize(
    "command",
    [
        ["backtest", "--panel", "{panel}", "--out", "{panel}"],
        ["costs", "{run}", "--panel", "{panel}", "--out", "{panel}"],
        ["compare", "--panel", "{panel}", "--out", "{folder}"],
        ["fit", "--panel", "{panel}", "--out", "{panel}"],
        ["report", "--panel", "{panel}", "--run", "{run}", "--out", "{folder}/panel.html", "--xlsx"],
    ],
    ids=["backtest", "costs", "compare", "fit", "report"],
)
def test_panel_given_as_the_output_is_refused_before_any_work(command, run_file, tmp_path, capsys, monkeypatch):
    """`--panel p.csv --out p.csv` is refused in the first second, and the panel is unchanged."""
    import bayes_lac.model.fit as fit

    panel = tmp_path / "panel.csv"
    shutil.copy(SMALL_PANEL, panel)
    # compare writes <folder>/<la>_comparison.csv: make that the panel
    folder = tmp_path
    if command[0] == "compare":
        panel = panel.rename(tmp_path / "E06000034_comparison.csv")
    if command[0] == "report":
        panel = panel.rename(tmp_path / "panel.xlsx")
    monkeypatch.setattr(fit.LACModel, "fit", lambda *a, **k: pytest.fail("sampled before checking --out"))
    before = _digest(panel)
    argv = [a.format(panel=panel, run=run_file, folder=folder) for a in command]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "same file" in line and str(panel.name) in line
    assert _digest(panel) == before


def test_fit_checks_its_output_path_before_sampling(tmp_path, capsys, monkeypatch):
    """The defect: `fit` checked its output path only after sampling, so a bad path lost the fit."""
    import bayes_lac.model.fit as fit

    monkeypatch.setattr(fit.LACModel, "fit", lambda *a, **k: pytest.fail("sampled before checking --out"))
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    assert (
        main(["fit", "--model", "default", "--panel", str(SMALL_PANEL), "--out", str(blocker / "runs" / "run.nc")]) == 2
    )
    line = _one_line(capsys.readouterr().err)
    assert "is a file, not a folder" in line and str(blocker) in line


def test_output_in_a_missing_folder_is_created(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "edge.csv"
    assert main(["intervention", str(EDGE_OF_CARE), "--draws", "200", "--out", str(out)]) == 0
    assert out.is_file() and pd.read_csv(out).shape[0] > 0
    assert f"Wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["under_a_file", "is_a_folder"])
def test_output_under_a_file_or_on_a_folder_is_refused_in_one_line(where, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    if where == "under_a_file":
        blocker.write_text("x")
        out = blocker / "edge.csv"
    else:
        blocker.mkdir()
        out = blocker
    assert main(["intervention", str(EDGE_OF_CARE), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(blocker) in line and ("not a folder" in line or "is a folder" in line)


def test_two_outputs_of_one_command_cannot_share_a_name(tmp_path):
    with pytest.raises(OutputFileError, match="different names"):
        files.prepare_outputs({"--out": tmp_path / "a.csv", "the summary": tmp_path / "." / "a.csv"})


# --------------------------------------------------------------------------------------------
# The report: its run file, its name, its PDF
# --------------------------------------------------------------------------------------------


@pytest.fixture
def cheap_report(monkeypatch):
    """Make `bayes-lac report` build `small_report` instead of the real sections (no analyses);
    the run's convergence gate is taken as passed. Returns the calls made to the fit."""
    from bayes_lac.report import board as R

    fits = []

    def fake_fit(args, panel, run_path, **kw):
        fits.append(run_path)
        raise BayesLacError(f"fit stopped by the test (would save {run_path})")

    monkeypatch.setattr(R, "build_report", lambda results, la=None, **kw: small_report(la or "Area 0"))
    monkeypatch.setattr(R, "_convergence", lambda results, allow: (True, []))
    monkeypatch.setattr(R, "_fit_for_report", fake_fit)
    return fits


def test_report_never_overwrites_its_run_file_silently(tmp_path, capsys, cheap_report):
    """The defect: `report` overwrote `<out>_run.nc` silently. Without --overwrite an existing
    run is refused before fitting, and the message says how to use it or replace it."""
    out = tmp_path / "thurrock.html"
    run = tmp_path / "thurrock_run.nc"
    run.write_bytes(b"an earlier fit")
    assert main(["report", "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(run) in line and "--overwrite" in line and f"--run {run}" in line
    assert cheap_report == [] and run.read_bytes() == b"an earlier fit"

    # with --overwrite the fit goes ahead, to the named run file
    assert main(["report", "--out", str(out), "--overwrite"]) == 2
    assert cheap_report == [run]
    assert "would save" in capsys.readouterr().err


def test_report_is_named_after_its_authority(tmp_path, capsys, monkeypatch, run_file, cheap_report):
    """The defect: `make report LA=E06000015` wrote reports/thurrock.html."""
    from bayes_lac.cli.commands import _report_name
    from bayes_lac.data.panel import load_panel

    panel = load_panel()
    assert _report_name(panel, "E06000034") == "thurrock"
    assert _report_name(panel, "E06000015") == "derby"
    assert _report_name(panel, "E99999999") == "e99999999"
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--la", "E06000015", "--run", str(run_file), "--xlsx"]) == 0
    assert (tmp_path / "reports" / "derby.html").is_file()
    assert (tmp_path / "reports" / "derby.xlsx").is_file()
    assert not (tmp_path / "reports" / "thurrock.html").exists()
    assert "Wrote reports/derby.html" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_report_passes_the_authority_not_a_fixed_file_name():
    proc = subprocess.run(
        ["make", "-n", "report", "LA=E06000015"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    report_line = [line for line in proc.stdout.splitlines() if " report " in line][-1]
    assert "--la E06000015" in report_line and "thurrock" not in report_line


def test_file_slug_is_portable():
    assert files.file_slug("Bristol, City of") == "bristol-city-of"
    assert files.file_slug("Ynys Môn") == "ynys-mon"
    assert files.file_slug("King's Lynn & West Norfolk") == "king-s-lynn-west-norfolk"
    assert files.file_slug('=HYPERLINK("x")') == "hyperlink-x"
    assert files.file_slug("东莞", fallback="E06000099") == "e06000099"


def test_report_without_a_pdf_engine_writes_html_and_workbook_and_exits_0(
    tmp_path, capsys, monkeypatch, run_file, cheap_report
):
    """The defect: without Chromium, `make report` stopped with exit 2 after the HTML and before
    the workbook. The engine is looked for before fitting; the files are written; one line
    says the PDF was not, and how to get it."""
    from bayes_lac.report import board as R

    order = []
    monkeypatch.setattr(R, "find_chromium", lambda: order.append("engine") or None)
    real_load = __import__("bayes_lac.model.results", fromlist=["load_run"]).load_run
    monkeypatch.setattr("bayes_lac.model.results.load_run", lambda p, **kw: order.append("run") or real_load(p, **kw))
    monkeypatch.delenv(R.CHROMIUM_ENV, raising=False)
    out = tmp_path / "r.html"
    assert main(["report", "--run", str(run_file), "--out", str(out), "--pdf", "--xlsx"]) == 0
    assert order == ["engine", "run"]
    assert out.is_file() and out.with_suffix(".xlsx").is_file() and not out.with_suffix(".pdf").exists()
    printed = capsys.readouterr().out
    notes = [line for line in printed.splitlines() if "PDF" in line]
    assert len(notes) == 1
    assert "not written" in notes[0] and "HTML and the workbook were written" in notes[0]
    assert "apt-get install chromium" in notes[0] and R.CHROMIUM_ENV in notes[0]


def test_failing_pdf_engine_keeps_html_and_workbook(tmp_path, capsys, monkeypatch, run_file, cheap_report):
    from bayes_lac.report import board as R

    engine = tmp_path / "broken-chromium"
    engine.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    engine.chmod(0o755)
    monkeypatch.setenv(R.CHROMIUM_ENV, str(engine))
    out = tmp_path / "r.html"
    assert main(["report", "--run", str(run_file), "--out", str(out), "--pdf", "--xlsx"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "PDF was not written" in line and "status 3" in line and "workbook were written" in line
    assert out.is_file() and out.with_suffix(".xlsx").is_file() and not out.with_suffix(".pdf").exists()
    assert _leftovers(tmp_path) == []


def test_pdf_engines_are_looked_for_at_their_usual_places_on_every_os():
    from bayes_lac.report import board as R

    win = [str(p) for p in R.pdf_engine_candidates("win32", {"PROGRAMFILES": r"C:\Program Files"})]
    assert any(p.endswith(r"Google\Chrome\Application\chrome.exe") for p in win)
    assert any(p.endswith(r"Microsoft\Edge\Application\msedge.exe") for p in win)
    mac = [str(p) for p in R.pdf_engine_candidates("darwin", {"HOME": "/Users/a"})]
    assert "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" in mac
    assert "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge" in mac
    linux = [str(p) for p in R.pdf_engine_candidates("linux", {})]
    assert "/usr/bin/chromium" in linux and "/opt/google/chrome/chrome" in linux


def test_pdf_engine_from_the_environment_must_exist(tmp_path, monkeypatch):
    from bayes_lac.report import board as R

    monkeypatch.setenv(R.CHROMIUM_ENV, str(tmp_path / "missing"))
    assert R.find_chromium() is None
    assert str(tmp_path / "missing") in R.pdf_engine_help()


def test_report_page_may_fetch_nothing():
    """The page's Content-Security-Policy allows only inline styles and data: images."""
    from bayes_lac.report import board as R

    report = small_report("A\f} body { background: url(http://example.org/x) }")
    page = R.render_html(report)
    assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in page
    style = page.split("<style>")[1].split("</style>")[0]
    # the name appears in the style sheet only inside its escaped CSS string
    assert "example.org" not in style.replace(R._css_string(report.short_title), "")
    assert "\f" not in style


# --------------------------------------------------------------------------------------------
# Spreadsheet formula injection
# --------------------------------------------------------------------------------------------


def test_formula_like_text_is_quoted_in_csv_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "la_name": [
                '=HYPERLINK("http://x","y")',
                "= 0",
                "-2+3",
                "@SUM(A1)",
                "\tx",
                "\rx",
                "-5",
                "+1.5e3",
                "Thurrock",
            ],
            "change": [-1.5, -2.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, -6.25],
        }
    )
    path = files.write_csv(frame, tmp_path / "t.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    names = [r[0] for r in rows[1:]]
    assert names == ["'" + n for n in frame["la_name"][:6]] + ["-5", "+1.5e3", "Thurrock"]
    assert [float(r[1]) for r in rows[1:]] == frame["change"].tolist()
    # column names are text too
    header = files.csv_safe_frame(pd.DataFrame({"=cmd": [1]})).columns.tolist()
    assert header == ["'=cmd"]


def test_formula_in_an_authority_name_is_text_in_the_compare_csv(tmp_path, capsys):
    """The defect: a panel's la_name of =HYPERLINK(...) became a live formula in the compare CSV."""
    evil = '=HYPERLINK("http://attacker.example/","Southend")'
    panel = pd.read_csv(SMALL_PANEL, dtype=str)
    panel.loc[panel["la_code"] == "E06000033", "la_name"] = evil
    panel_file = tmp_path / "panel.csv"
    panel.to_csv(panel_file, index=False)
    out = tmp_path / "out"
    code = main(
        ["compare", "--la", "E06000034", "--panel", str(panel_file), "--neighbours", "E06000033", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out / "E06000034_comparison.csv", dtype=str)
    names = set(table["la_name"].dropna())
    assert "'" + evil in names and evil not in names
    assert (out / "E06000034_comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_formula_in_an_authority_name_is_text_in_the_workbook(tmp_path):
    """The defect: =HYPERLINK(...) in la_name (and the threshold text "= 0") became live
    formulas in the report workbook. Now they are string cells with Excel's quote prefix;
    numbers, negative ones included, stay numbers; the workbook holds no formula at all."""
    from openpyxl import load_workbook

    from bayes_lac.report import board as R

    evil = '=HYPERLINK("http://attacker.example/","Thurrock")'
    path = R.write_xlsx(small_report(evil), tmp_path / "r.xlsx")
    with zipfile.ZipFile(path) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)
    book = load_workbook(path)
    sheet = book[book.sheetnames[1]]
    first = R.XLSX_HEADER_ROW + 1
    cells = {sheet.cell(row=r, column=1).value: sheet.cell(row=r, column=1) for r in range(first, first + 8)}
    for text in (evil, "= 0", "-2+3", "@SUM(A1)", "+44 20", "\tx"):
        assert cells[text].data_type == "s" and cells[text].quotePrefix, text
    assert not cells["plain"].quotePrefix
    value = sheet.cell(row=first, column=2)
    assert value.value == -1.5 and value.data_type == "n"
    subtitle = book["Contents"]["A2"]
    assert subtitle.value.startswith(evil) and subtitle.data_type == "s" and subtitle.quotePrefix


def test_no_command_writes_around_the_safe_writers():
    """Every file a command writes goes through bayes_lac.files (atomic, formula-safe)."""
    import re

    import bayes_lac

    package = Path(bayes_lac.__file__).parent
    offenders = []
    writes = re.compile(r"\.(to_csv|to_excel|to_netcdf|savefig|write_text|write_bytes)\(|ExcelWriter\(|open\(.*[\"']w")
    # allowed: writing into a temporary file of bayes_lac.files, or into memory
    allowed = re.compile(r"\((temp|buf|buffer|writer)\b|to_csv\(index=False\)|to_excel\(writer")
    for source in package.rglob("*.py"):
        if source.name == "files.py":
            continue
        lines = source.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            # a call split over lines by the formatter: its first argument is on the next line
            call = line + (lines[n].strip() if line.rstrip().endswith("(") and n < len(lines) else "")
            if writes.search(line) and not allowed.search(call):
                offenders.append(f"{source.relative_to(package)}:{n}: {line.strip()}")
    assert not offenders, offenders


# --------------------------------------------------------------------------------------------
# What a run records about its inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not BUNDLED_PANEL.exists(), reason="no bundled panel")
def test_run_stores_the_panel_file_name_and_hash_not_the_analysts_folders(tmp_path):
    """The defect: the run file stored the analyst's absolute local path."""
    from bayes_lac.data.panel import load_panel, panel_sha256
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.priors import prior_set_name

    folder = tmp_path / "Users" / "analyst" / "secret-project"
    folder.mkdir(parents=True)
    path = folder / "my_panel.csv"
    shutil.copy(BUNDLED_PANEL, path)
    panel = load_panel(path)
    data = LACModel("E06000034").prepare(panel, source=str(path))
    attrs = data.attrs()
    assert not any(str(tmp_path) in value or "secret-project" in value for value in attrs.values())
    assert attrs["data_vintage"].startswith("my_panel.csv;")
    assert attrs["panel_sha256"] == panel_sha256(panel)
    assert prior_set_name(folder / "my_priors.toml") == "my_priors.toml"
    assert prior_set_name("weak") == "weak"
