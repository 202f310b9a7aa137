"""The board report's "Entering and leaving care" section (``report --flows-run``): placed after
the decomposition, in board words, its printed numbers those of the flows analyses, the workbook's
sheets, page one's modelled split, and an unconverged or mismatched flows run refused.

On the synthetic run of tests/test_report.py, with a flows run made (not fitted) for its
authorities from its panel's published starters and leavers.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis.flows import flows_split
from bayes_lac.analysis.flows_forecast import flows_forecast
from bayes_lac.errors import UnconvergedFitError, UsageError
from bayes_lac.model.flows import ROUTES, prepare_flows
from bayes_lac.report import board as R
from bayes_lac.report.formats import KINDS, jargon_in
from tests.conftest import made_flows_run, make_toy_results
from tests.test_report import _with_published_counts, toy_panel

# one worker builds the toy report with its flows section and runs its readers (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("toy_report_flows")

DRAWS = 200


def flows_run_from_panel(panel, target: str, neighbours: list[str], converged: bool = True) -> xr.DataTree:
    """A flows run whose every draw holds the published ratios of `panel` (started per 10,000
    children, ceased per child at risk; route shares 0.3, 0.1, 0.1, 0.2), with small walk scales."""
    data = prepare_flows(panel, target, neighbours=neighbours)
    with np.errstate(invalid="ignore", divide="ignore"):
        entry = data.started / (data.population / 10_000)
        exits = data.ceased / data.at_risk
    # a year without a ratio takes the authority's mean (made runs only)
    entry = np.where(np.isfinite(entry), entry, np.nanmean(entry, axis=1, keepdims=True))
    exits = np.where(np.isfinite(exits), exits, np.nanmean(exits, axis=1, keepdims=True))
    shares = np.broadcast_to(np.array([0.3, 0.1, 0.1, 0.2])[:, None, None], (len(ROUTES), *entry.shape))
    rng = np.random.default_rng(0)

    def draws(x, dims):
        x = np.asarray(x, float)
        noise = np.exp(rng.normal(0, 0.02, (1, DRAWS, *x.shape)))
        return (("chain", "draw", *dims), x[None, None] * noise)

    post = xr.Dataset(
        {
            "entry_rate": draws(entry, ("la", "year")),
            "exit_probability": draws(exits, ("la", "year")),
            "route_share": draws(shares, ("route", "la", "year")),
            **{
                f"{part}_{scale}": draws(0.03, ())
                for part in ("entry", "exit")
                for scale in ("year_sigma", "walk_sigma")
            },
            "entry_inv_sqrt_dispersion": draws(0.05, ()),
        },
        coords={"la": data.la, "year": data.year, "route": list(ROUTES)},
    )
    return made_flows_run(data, post, converged=converged)


@pytest.fixture(scope="module")
def toy():
    run = _with_published_counts(make_toy_results(years=(2009, 2020)))
    panel = toy_panel(run)
    codes = [str(c) for c in run["posterior"]["la"].values]
    flows = flows_run_from_panel(panel, codes[0], codes[1:])
    report = R.build_report(run, panel=panel, flows_run=flows, power_scaling=False)
    return run, panel, flows, report


def _section(report, key):
    return next(s for s in report.sections if s.key == key)


def test_the_section_follows_the_decomposition_in_board_words(toy):
    _, _, _, report = toy
    keys = [s.key for s in report.sections]
    assert keys.index("flows") == keys.index("decomposition") + 1
    assert "flows" in R.BOARD_SECTIONS
    page = R.render_html(report)
    match = re.search(r'<section class="report-section[^"]*" id="flows".*?</section>', page, re.S)
    text = re.sub(r"<[^>]+>", " ", match.group(0))
    assert "Entering and leaving care" in text and "likely range" in text
    assert not jargon_in(text), jargon_in(text)


def test_printed_split_is_the_flows_analysis(toy):
    run, _, flows, report = toy
    sec = _section(report, "flows")
    change = KINDS["change"].text
    glance = next(b for b in sec.blocks if getattr(b, "key", "") == "flows_split_glance").frame
    glance = glance.set_index("Children looked after")
    windows = list(glance.columns)
    assert windows, glance
    checked = 0
    for column in windows:
        a, b = (int(y) for y in re.findall(r"\d{4}", column)[:2])
        split = flows_split(flows, from_year=a, to_year=b).table.set_index(["area", "component"])
        for label, component in (
            ("From children starting to be looked after", "entries"),
            ("From children leaving care", "exits"),
        ):
            r = split.loc[("la", component)]
            assert glance.loc[label, column] == f"{change(r['median'])} ({change(r['lower'])} to {change(r['upper'])})"
            checked += 1
    assert checked >= 2
    workbook = {t.key for t in sec.workbook_only}
    assert {"flows_split", "flows_forecast"} <= workbook


def test_printed_forecast_is_the_flows_forecast(toy):
    _, _, flows, report = toy
    sec = _section(report, "flows")
    glance = next(b for b in sec.blocks if getattr(b, "key", "") == "flows_forecast_glance").frame.set_index("Scenario")
    # the toy panel publishes no routes: the section leaves returns-home-neighbours out (its notice)
    assert any("Scenario left out" in getattr(b, "text", "") for b in sec.blocks)
    fc = flows_forecast(flows, horizon=10, scenarios=("trend", "entries-10"))
    count = KINDS["count"].text
    row = fc.table[(fc.table["quantity"] == "stock") & (fc.table["scenario"] == "entries-10")]
    for year in (fc.last_year + 5, fc.last_year + 10):
        r = row[row["year"] == year].iloc[0]
        assert glance.loc["10% fewer children starting", f"March {year}"] == (
            f"{count(r['median'])} ({count(r['lower'])} to {count(r['upper'])})"
        )


def test_page_one_gives_the_modelled_split(toy):
    _, _, flows, report = toy
    why = next(b for b in report.sections[0].blocks if b.kind == "answer" and b.key == "why")
    assert "Entering and leaving care (modelled)" in why.verdict
    # each period's figures on page one are the flows split's for that period
    glance = next(b for b in _section(report, "flows").blocks if getattr(b, "key", "") == "flows_split_glance").frame
    change = KINDS["change"].text
    for column in [c for c in glance.columns if c != "Children looked after"]:
        a, b = (int(y) for y in re.findall(r"\d{4}", column)[:2])
        r = flows_split(flows, from_year=a, to_year=b).table.set_index(["area", "component"])
        for component, words in (
            ("entries", "from children starting"),
            ("exits", "from children leaving"),
        ):
            x = r.loc[("la", component)]
            expected = f"{change(x['median'])} {words} (likely {change(x['lower'])} to {change(x['upper'])})"
            assert expected in why.verdict, (expected, why.verdict)
            # and the headline sheet carries the same numbers
            figure = next(f for f in why.figures if f.label.startswith(f"Change in children looked after {a}-{b} from"))
            assert figure.kind == "change"
    labels = [f.label for f in why.figures]
    assert sum("(modelled)" in x and "from children" in x for x in labels) == 2 * len(glance.columns[1:])


def test_an_unconverged_flows_run_is_refused_unless_allowed_and_then_marked(toy):
    run, panel, _, _ = toy
    codes = [str(c) for c in run["posterior"]["la"].values]
    failed = flows_run_from_panel(panel, codes[0], codes[1:], converged=False)
    with pytest.raises(UnconvergedFitError, match="flows run"):
        R.build_report(run, panel=panel, flows_run=failed, power_scaling=False)
    report = R.build_report(run, panel=panel, flows_run=failed, power_scaling=False, allow_unconverged=True)
    assert not report.converged and any(p.startswith("Entering and leaving care") for p in report.problems)


def test_a_flows_run_without_the_authority_is_refused(toy):
    run, panel, _, _ = toy
    codes = [str(c) for c in run["posterior"]["la"].values]
    other = flows_run_from_panel(panel, codes[1], codes[2:])
    with pytest.raises(UsageError, match="not in this flows run"):
        R.build_report(run, panel=panel, flows_run=other, power_scaling=False)


def test_report_command_refuses_a_missing_or_mismatched_flows_run_in_one_line(toy, tmp_path, capsys):
    from bayes_lac.cli import main
    from bayes_lac.model.flows import save_flows_run
    from bayes_lac.model.results import save_run

    run, panel, _, _ = toy
    run_path, panel_path = tmp_path / "run.nc", tmp_path / "panel.csv"
    save_run(run, run_path)
    panel.to_csv(panel_path, index=False)
    codes = [str(c) for c in run["posterior"]["la"].values]
    other = save_flows_run(flows_run_from_panel(panel, codes[1], codes[2:]), tmp_path / "other.nc")
    failed = save_flows_run(flows_run_from_panel(panel, codes[0], codes[1:], converged=False), tmp_path / "failed.nc")
    base = ["report", "--run", str(run_path), "--panel", str(panel_path), "--la", codes[0]]
    for flows, message in (
        (tmp_path / "missing.nc", "flows run not found"),
        (other, "not in this flows run"),
        (failed, "failed its convergence diagnostics"),
    ):
        out = tmp_path / "r.html"
        status = main([*base, "--flows-run", str(flows), "--out", str(out)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and message in err, err
        assert not out.exists()


def test_the_section_says_which_forecast_the_report_uses_from_the_shipped_backtest(tmp_path):
    from bayes_lac.report.flows_section import FLOWS_BACKTEST_SUMMARY, backtest_words

    assert "has not been tested on past data" in backtest_words(tmp_path)
    rows = [
        {"method": m, "measure": "looked_after", "horizon": h, "outcome": o, "crps": c}
        for m, base in (("model", 10.0), ("flows", 14.0), ("pooled-growth", 12.0))
        for h in (1, 2)
        for o, c in (("latest", base + h), ("first_release", 99.0))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / FLOWS_BACKTEST_SUMMARY, index=False)
    words = backtest_words(tmp_path)
    # the mean over horizons 1-2 of the latest outcome: 11.5 against 15.5
    assert "count model, which did better" in words and "11.5 against 15.5" in words and "1 to 2 years ahead" in words
    flipped = pd.DataFrame(rows).assign(method=lambda t: t["method"].replace({"model": "flows", "flows": "model"}))
    flipped.to_csv(tmp_path / FLOWS_BACKTEST_SUMMARY, index=False)
    assert "this forecast from entering and leaving care did better, 11.5 against 15.5" in backtest_words(tmp_path)
    # a backtest that scored the 0.2 count model is not credited to the report's latent-state model
    import json

    manifest = tmp_path / FLOWS_BACKTEST_SUMMARY.replace("_summary.csv", "_manifest.json")
    manifest.write_text(json.dumps({"model_config": {"model": "LACModel"}}))
    words = backtest_words(tmp_path)
    assert "tested against the earlier (0.2) count model, not the latent-state model" in words
    assert "did better" not in words and "11.5 for this forecast against 15.5 for that model" in words


def test_services_that_keep_children_out_of_care_are_priced_through_the_flows(toy):
    from bayes_lac.analysis import interventions as iv
    from bayes_lac.analysis.costs import latest_unit_cost_year

    _, panel, flows, report = toy
    sec = _section(report, "interventions")
    assert any("children starting and leaving care" in getattr(b, "text", "") for b in sec.blocks)
    answers = {b.key: b for b in report.sections[0].blocks if b.kind == "answer"}
    assert "prevention" in answers
    year = latest_unit_cost_year(panel, report.la, until=2020)
    for name in iv.bundled_interventions():
        # priced, as the report prices it, in the authority's latest money and unit cost of care
        spec = iv.rebase_intervention(iv.load_intervention(name), panel, report.la, year)
        table = next(t for t in [*sec.blocks, *sec.twins] if getattr(t, "key", "") == f"invest_{name}").frame
        gross = table.set_index("quantity").loc["gross_saving", "median"]
        if spec.unit_cost_per == "outcome":
            expected = iv.evaluate_intervention(spec, draws=R.INTERVENTION_DRAWS, seed=0)
        else:
            expected = iv.evaluate_through_flows(spec, flows, horizon=10, seed=0)
        assert gross == pytest.approx(float(np.median(expected.draws["gross_saving"])), rel=1e-9)
