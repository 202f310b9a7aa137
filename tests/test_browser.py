"""The board report in a real browser: headless Chromium loads it, decodes every chart, and
prints it to PDF.

Uses a synthetic run (the content does not matter here, only that a browser renders it).
Skipped, with the reason, when no Chromium is installed; CI installs Debian's `chromium`.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import threading
import unicodedata

import pytest

from bayes_lac.report import board as R
from tests.test_report import built_toy_report, unconverged_version

pytestmark = [
    pytest.mark.skipif(
        R.find_chromium() is None,
        reason="headless Chromium not installed (apt-get install chromium, or set BAYES_LAC_CHROMIUM)",
    ),
    # each test starts a browser and prints a PDF (about 45 s of the fast tier's time): they run
    # with the slow tier, in CI
    pytest.mark.slow,
    # the worker that builds the synthetic report for tests/test_report.py (built once a process)
    pytest.mark.xdist_group("toy_report"),
]

#: Run in the page after load: record whether every image decoded, and which of the given
#: sentences the page's rendered text holds. Chromium's --dump-dom prints the DOM after the
#: load event once the virtual time budget has elapsed.
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const text = document.body.innerText.replace(/\\s+/g, " ");
  const wanted = JSON.parse(document.getElementById("probe-sentences").textContent);
  const found = wanted.filter(s => text.includes(s));
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({
    images: images.length,
    decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    found: found.length,
    wanted: wanted.length,
    title: document.title,
  });
  document.body.appendChild(out);
});
</script>
"""


def _pdf_pages_text(path) -> list[str]:
    """Text of each page of a PDF (pypdf, else poppler's pdftotext)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        PdfReader = None
    if PdfReader is not None:
        return [page.extract_text() or "" for page in PdfReader(str(path)).pages]
    if shutil.which("pdftotext") is None:
        pytest.skip("neither pypdf nor pdftotext is installed to read the PDF")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


#: Points per millimetre, and the page margins of the report's print style (report.html @page).
_MM = 72 / 25.4
_MARGIN = 18 * _MM


def page_fill(page) -> float:
    """How far down a printed page its content reaches, as a share of the space between the
    top and bottom margins (0: blank, 1: full): measured from where the page draws its text
    and images (pypdf), the page-number footer in the margin left out."""
    height = float(page.mediabox.height)
    ys: list[float] = []

    def on_text(text, cm, tm, font, size):
        if text.strip():
            ys.append(tm[4] * cm[1] + tm[5] * cm[3] + cm[5])

    def on_operator(op, args, cm, tm):
        if op == b"Do":  # an image, drawn in the unit square mapped by cm
            ys.extend((cm[5], cm[5] + cm[3]))

    page.extract_text(visitor_text=on_text, visitor_operand_before=on_operator)
    inside = [y for y in ys if _MARGIN < y < height - _MARGIN + 1]
    if not inside:
        return 0.0
    return (height - _MARGIN - min(inside)) / (height - 2 * _MARGIN)


def near_blank_pages(pdf, section_titles, share: float = 0.25) -> list[tuple[int, float]]:
    """Pages (1-based) filled less than `share`, except a section's last page (the next page
    starts with one of `section_titles`) and the document's last page."""
    from pypdf import PdfReader

    pages = PdfReader(str(pdf)).pages
    texts = [_squash(p.extract_text() or "") for p in pages]
    out = []
    for i, page in enumerate(pages[:-1]):
        fill = page_fill(page)
        if fill >= share:
            continue
        following = re.sub(r"^Page \d+ of \d+", "", texts[i + 1])[:300]
        if any(_squash(t) in following for t in section_titles):
            continue
        out.append((i + 1, round(fill, 2)))
    return out


def _squash(text: str) -> str:
    # NFKC undoes typographic ligatures (the "fi" in "fit") that PDF text extraction keeps
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    rep = built_toy_report()[1]
    out = tmp_path_factory.mktemp("browser") / "report.html"
    R.write_html(rep, out)
    return rep, out


@pytest.fixture(scope="module")
def printed(rendered):
    """The toy report printed to PDF once (8-14 s in CI), read by every test of the printout."""
    rep, path = rendered
    return rep, R.write_pdf(path)


def test_page_loads_images_decode_and_headlines_show(rendered, tmp_path):
    rep, path = rendered
    headlines = [_squash(b.verdict) for b in rep.sections[0].blocks if b.kind == "answer"]
    assert headlines
    page = path.read_text(encoding="utf-8")
    probe = (
        '<script type="application/json" id="probe-sentences">'
        + json.dumps(headlines).replace("</", "<\\/")
        + "</script>"
        + PROBE
    )
    # The report forbids scripts (its Content-Security-Policy); the probe's own inline script
    # is let in, and everything else the policy says is kept.
    policy = "default-src 'none'; img-src data:; style-src 'unsafe-inline';"
    assert policy in page
    page = page.replace(policy, policy + " script-src 'unsafe-inline';")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    proc = R.run_chromium(probed.as_uri(), "--virtual-time-budget=10000", "--dump-dom", timeout=120)
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"the page did not finish loading; Chromium said: {proc.stderr[-1000:]}"
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["title"] == rep.title
    assert result["images"] == len(rep.figures()) > 0
    assert result["decoded"] == result["images"]
    assert result["found"] == result["wanted"] == len(headlines)


def test_pdf_has_pages_text_and_page_numbers(printed):
    rep, pdf = printed
    assert pdf.read_bytes()[:5] == b"%PDF-"
    pages = _pdf_pages_text(pdf)
    assert len(pages) >= len(rep.sections)
    assert rep.la_name in pages[0] and "board report" in _squash(pages[0])
    assert f"Page 1 of {len(pages)}" in _squash(pages[0])
    assert "WARNING" not in " ".join(pages)


def test_unconverged_warning_on_every_pdf_page(rendered, tmp_path):
    rep = unconverged_version(rendered[0])
    pdf = R.write_pdf(R.write_html(rep, tmp_path / "unconverged.html"))
    pages = _pdf_pages_text(pdf)
    assert len(pages) > 3
    header = _squash(rep.unconverged_header)
    missing = [i + 1 for i, text in enumerate(pages) if header not in _squash(text)]
    assert not missing, f"pages without the unconverged warning: {missing}"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request a browser makes to the loopback server."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server():
    """An HTTP server on 127.0.0.1 that records what is fetched from it."""
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    server.shutdown()
    server.server_close()


def _fetching_page(base: str) -> str:
    return (
        "<!DOCTYPE html><html><head><style>body { background: url(" + base + "/css) }</style>"
        '<link rel="stylesheet" href="' + base + '/link"></head><body>'
        '<img src="' + base + '/img" alt="x"><iframe src="' + base + '/frame"></iframe></body></html>'
    )


def test_chromium_runs_with_the_network_cut_off(loopback_server, tmp_path):
    """A page asking for four loopback URLs gets none of them through `run_chromium`; the
    same browser without the package's flags fetches them (so the check can fail)."""
    base, requests = loopback_server
    page = tmp_path / "fetching.html"
    page.write_text(_fetching_page(base), encoding="utf-8")
    R.run_chromium(page.as_uri(), "--virtual-time-budget=3000", "--dump-dom", timeout=120)
    assert requests == []

    plain = [f for f in R.CHROMIUM_FLAGS if not f.startswith(("--proxy", "--host-resolver"))]
    with __import__("tempfile").TemporaryDirectory() as profile:
        subprocess.run(
            [
                R.find_chromium(),
                *plain,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=3000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert requests, "control: without the network flags the page should have fetched from loopback"


def test_authority_name_cannot_make_the_pdf_fetch_anything(loopback_server, tmp_path):
    """The defect: a form feed in an authority's name broke out of the page-margin CSS and made
    Chromium fetch a URL while printing. Now the name is escaped, the page's policy forbids
    fetches and the browser has no network: nothing is requested, and the PDF is written."""
    base, requests = loopback_server
    name = "Thurrock\f} body { background: url(" + base + '/css) } @page { x: "<img src=' + base + "/img>"
    section = R.Section("s", "Section")
    section.paragraph(name)
    report = R.Report(la="E06000034", la_name=name, sections=[section])
    html_path = R.write_html(report, tmp_path / "evil.html")
    text = html_path.read_text(encoding="utf-8")
    style = text.split("<style>")[1].split("</style>")[0]
    # the name is inside one CSS string literal, and nowhere else in the style sheet
    assert "url(" + base not in style.replace(R._css_string(report.short_title), "")
    pdf = R.write_pdf(html_path)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert requests == []


def test_no_pdf_page_is_under_a_quarter_full(printed):
    """Measured from the printed pages: no page under a quarter full, except the last page of a
    section that starts a new page (an appendix) and the last page."""
    pytest.importorskip("pypdf")
    rep, pdf = printed
    titles = [s.title for s in rep.sections if rep.starts_page(s)]
    assert near_blank_pages(pdf, titles) == []


def test_the_near_blank_page_check_sees_a_near_blank_page(tmp_path):
    """Control: a page holding one line before a forced page break is measured as near blank."""
    pytest.importorskip("pypdf")
    from pypdf import PdfReader

    page = tmp_path / "blank.html"
    page.write_text(
        "<!DOCTYPE html><html><head><style>@page { size: A4; margin: 18mm 14mm; }</style></head><body>"
        "<p>One line.</p><p style='break-before: page'>" + "Text. " * 2000 + "</p></body></html>",
        encoding="utf-8",
    )
    pdf = R.write_pdf(page)
    pages = PdfReader(str(pdf)).pages
    assert page_fill(pages[0]) < 0.1 and page_fill(pages[1]) > 0.9
    assert near_blank_pages(pdf, [])[:1] == [(1, round(page_fill(pages[0]), 2))]


def test_page_one_answers_are_in_the_pdf_text(printed):
    """Every verdict of page one, with its numbers, is in the PDF's text, on the first pages."""
    pytest.importorskip("pypdf")
    rep, pdf = printed
    pages = _pdf_pages_text(pdf)
    start = _squash(" ".join(pages[:3]))
    answers = [b for b in rep.sections[0].blocks if b.kind == "answer"]
    assert len(answers) == 5
    for answer in answers:
        assert _squash(answer.verdict) in start, answer.key
