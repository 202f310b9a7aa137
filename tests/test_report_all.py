"""`bayes-lac report --all`: every authority's report from one national run, and the index."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from bayes_lac.errors import BayesLacError
from bayes_lac.report import batch
from tests.conftest import make_toy_results
from tests.test_report import _with_published_counts, toy_panel


def national_toy_run():
    run = _with_published_counts(make_toy_results(n_la=3, years=(2009, 2020)))
    run.attrs["comparison"] = "all"
    return run


@pytest.mark.slow
def test_report_all_writes_a_report_per_authority_and_a_sortable_index(tmp_path):
    from bayes_lac.model.results import run_info, save_run

    run = national_toy_run()
    run_file = tmp_path / "national.nc"
    save_run(run, run_file)
    panel_file = tmp_path / "panel.csv"
    toy_panel(run).to_csv(panel_file, index=False)
    las = list(run_info(run).authorities)[:2]
    index, rows = batch.report_all(
        run_file, tmp_path / "all", panel_path=panel_file, authorities=las, workers=1, progress=False, with_rows=True
    )
    page = index.read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">', page)
    assert len(links) == 2
    assert sorted(link.split("-")[-1].removesuffix(".html") for link in links) == sorted(las)
    reports = {}
    for link in links:
        report = html.unescape((tmp_path / "all" / html.unescape(link)).read_text(encoding="utf-8"))
        assert "Summary: the board's five questions" in report
        reports[link.split("-")[-1].removesuffix(".html")] = report
    # the index's numbers are each report's page-one numbers: the forecast and its likely range
    # as the written report prints them
    assert sorted(row.la_code for row in rows) == sorted(las) and not any(row.problem for row in rows)
    count = batch.KINDS["count"].text
    for row in rows:
        assert np.isfinite(row.forecast_5) and row.forecast_5_lower <= row.forecast_5 <= row.forecast_5_upper
        answer = f"{count(row.forecast_5)} in March"
        likely = f"likely {count(row.forecast_5_lower)} to {count(row.forecast_5_upper)}"
        assert answer in reports[row.la_code] and likely in reports[row.la_code], row
        assert count(row.forecast_5) in page and count(row.forecast_5_lower) in page
    # sortable by any heading, with the one script admitted by its hash
    assert page.count("<button") == len(batch.INDEX_COLUMNS)
    assert "script-src 'sha256-" in page and "unsafe-inline'" not in page.split("script-src")[1].split(";")[0]


def test_report_all_refuses_a_run_that_is_not_national(tmp_path):
    from bayes_lac.model.results import save_run

    run = make_toy_results(n_la=3, years=(2009, 2020))
    run_file = tmp_path / "run.nc"
    save_run(run, run_file)
    with pytest.raises(BayesLacError, match="national run"):
        batch.report_all(run_file, tmp_path / "all", workers=1, progress=False)


def test_report_file_names_are_plain():
    assert batch.report_file_name("Southend-on-Sea", "E06000033") == "southend-on-sea-E06000033.html"
    assert batch.report_file_name("Isles Of Scilly", "E06000053") == "isles-of-scilly-E06000053.html"


def test_an_authority_without_a_report_is_listed_in_the_index_with_its_reason():
    from types import SimpleNamespace

    rows = [
        batch.AuthorityRow("E1", "Alpha", "alpha-E1.html", looked_after=10.0),
        batch.AuthorityRow("E2", "Beta", "", problem="its counts start in 2024"),
    ]
    page = batch.render_index(rows, SimpleNamespace(first_year=2010, last_year=2025))
    assert re.findall(r'<a href="([^"]+)">', page) == ["alpha-E1.html"]
    assert "No report for 1 authority:" in page and "Beta (E2): its counts start in 2024" in page
