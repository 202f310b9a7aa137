"""The board report in a real browser: headless Chromium loads it, decodes every chart, and
prints it to PDF.

Uses a synthetic run (the content does not matter here, only that a browser renders it).
Skipped, with the reason, when no Chromium is installed; CI installs Debian's `chromium`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata

import pytest

from bayes_lac.report import board as R
from tests.test_report import built_toy_report, unconverged_version

pytestmark = pytest.mark.skipif(
    R.find_chromium() is None,
    reason="headless Chromium not installed (apt-get install chromium, or set BAYES_LAC_CHROMIUM)",
)

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


def _squash(text: str) -> str:
    # NFKC undoes typographic ligatures (the "fi" in "fit") that PDF text extraction keeps
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    rep = built_toy_report()[1]
    out = tmp_path_factory.mktemp("browser") / "report.html"
    R.write_html(rep, out)
    return rep, out


def test_page_loads_images_decode_and_headlines_show(rendered, tmp_path):
    rep, path = rendered
    headlines = [_squash(b.sentence) for b in rep.sections[0].blocks if b.kind == "finding"]
    assert headlines
    page = path.read_text(encoding="utf-8")
    probe = (
        '<script type="application/json" id="probe-sentences">'
        + json.dumps(headlines).replace("</", "<\\/")
        + "</script>"
        + PROBE
    )
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


def test_pdf_has_pages_text_and_page_numbers(rendered):
    rep, path = rendered
    pdf = R.write_pdf(path)
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
