"""The report's cost section prices the forecast with the modelled unit cost, and says so; when
the unit-cost fit fails its convergence gate (or the panel has no spend), it falls back to the
flat unit cost with a notice naming why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis import costs as cmod
from bayes_lac.analysis.forecast import forecast
from bayes_lac.model.unit_cost import UnitCostFit
from bayes_lac.report import board
from bayes_lac.report.formats import jargon_in
from tests.conftest import make_toy_results
from tests.test_report import _with_published_counts, toy_panel


@pytest.fixture(scope="module")
def inputs_and_forecast():
    run = _with_published_counts(make_toy_results(years=(2010, 2020)))
    panel = toy_panel(run)
    la = str(run["constant_data"]["la"].values[0])
    inputs = board.ReportInputs(results=run, la=la, la_name=la, panel=panel, panel_path=None, sensitivity_refits=False)
    return inputs, forecast(run, la=la, horizon=10, seed=0)


def _fake_unit_costs(fc, converged: bool):
    """What `modelled_unit_costs` returns: draws of £ per child-year, and the fit behind them."""
    n = fc.data.sizes["draw"]
    years = fc.data["year"].values
    unit = xr.DataArray(
        np.random.default_rng(0).lognormal(np.log(60_000), 0.1, size=(n, len(years))),
        dims=("draw", "year"),
        coords={"draw": fc.data["draw"].values, "year": years},
    )
    diagnostics = {
        "max_rhat": 1.004 if converged else 1.031,
        "min_ess_bulk": 800.0 if converged else 90.0,
        "divergences": 0 if converged else 3,
        "seconds": 1.0,
        "sampler": "nutpie",
    }
    posterior = xr.Dataset({"growth": ("sample", np.log([1.10, 1.12, 1.14]))})  # latest national growth
    fit = UnitCostFit(posterior=posterior, data=None, diagnostics=diagnostics)
    unit.attrs = {"base_unit_cost_gbp_per_child_year": 58_000.0, "assumptions": ["modelled"], "fit": fit}
    return unit


def _cost_text(section) -> str:
    return " ".join(str(getattr(b, "text", "")) for b in section.blocks)


def test_the_board_is_costed_with_the_modelled_unit_cost(inputs_and_forecast, monkeypatch):
    inputs, fc = inputs_and_forecast
    unit = _fake_unit_costs(fc, converged=True)
    monkeypatch.setattr(cmod, "modelled_unit_costs", lambda *a, **k: unit)
    section, outcome = board._cost_section(inputs, fc)
    assert outcome.costs.method == "model"
    children = fc.data["predicted"].sel(measure="looked_after", scenario="trend").values
    cost = outcome.costs.data["cost_nominal"].sel(scenario="trend").values
    assert np.allclose(cost, children * unit.values)  # the modelled draws, not the flat unit cost
    text = _cost_text(section)
    assert "modelled from every English authority" in text
    # what the unit cost carries forward, and how far ahead that was checked
    assert "latest national growth, 12% a year in cash" in text and "(likely 10% to 14%)" in text
    assert board.unit_cost_backtest_words() in text and "has not been checked" in text
    assert not jargon_in(board._unit_cost_growth_words(unit, fc.base_year))
    assert not [b for b in section.blocks if b.kind == "notice" and "unit-cost model" in str(b.text)]


def test_an_unconverged_unit_cost_fit_is_refused_and_the_section_says_why(inputs_and_forecast, monkeypatch):
    inputs, fc = inputs_and_forecast
    monkeypatch.setattr(cmod, "modelled_unit_costs", lambda *a, **k: _fake_unit_costs(fc, converged=False))
    section, outcome = board._cost_section(inputs, fc)
    assert outcome.costs.method == board.COST_FALLBACK_METHOD
    notices = [str(b.text) for b in section.blocks if b.kind == "notice"]
    assert any("did not pass its convergence checks" in n and "1.031" in n and "3 divergent" in n for n in notices)
    assert not [n for n in notices if jargon_in(n)]  # a board page: plain words
    assert any("leaves out any real growth in unit costs" in n for n in notices)


def test_a_panel_without_spend_falls_back_to_the_flat_unit_cost_and_says_so(inputs_and_forecast):
    inputs, fc = inputs_and_forecast  # the toy panel has published weekly unit costs but no s251 spend
    assert "spend_looked_after" not in inputs.panel.columns
    section, outcome = board._cost_section(inputs, fc)
    assert outcome.costs.method == "flat"
    notices = [str(b.text) for b in section.blocks if b.kind == "notice"]
    assert any(n.startswith("The modelled unit cost is not available") and "spend_looked_after" in n for n in notices)


def test_the_unit_cost_history_is_drawn_beside_its_forecast(inputs_and_forecast, monkeypatch):
    inputs, fc = inputs_and_forecast
    unit = _fake_unit_costs(fc, converged=True)
    unit.attrs["history"] = cmod.unit_cost_history(inputs.panel, inputs.la)[["year", "weekly_cost_per_child", "source"]]
    monkeypatch.setattr(cmod, "modelled_unit_costs", lambda *a, **k: unit)
    section, outcome = board._cost_section(inputs, fc)
    figures = [b for b in section.blocks if b.kind == "figure"]
    chart = next(f for f in figures if f.caption.startswith("Weekly unit cost"))
    twin = next(t for t in section.twins if t.key == "unit_cost_chart")
    frame = twin.frame
    published = frame[frame["kind"] == "published"]
    history = unit.attrs["history"]
    assert published["year"].tolist() == history["year"].tolist()
    assert np.allclose(published["median_gbp_per_week"], history["weekly_cost_per_child"])
    ahead = frame[frame["kind"] == "forecast"].set_index("year")
    weekly = outcome.costs.data["weekly_unit_cost_nominal"]
    assert np.allclose(ahead["median_gbp_per_week"], weekly.median("draw").values)
    assert np.allclose(ahead["median_gbp_per_week"], np.median(unit.values, axis=0) / cmod.WEEKS_PER_YEAR)
    assert (ahead["lower_gbp_per_week"] < ahead["median_gbp_per_week"]).all()
    last = int(ahead.index.max())
    assert f"{last - 1}-{str(last)[-2:]}" in chart.alt and "£" in chart.alt


def test_the_prior_sensitivity_prices_costs_as_the_board_does(inputs_and_forecast, monkeypatch):
    """Given the cost section's unit-cost fit, each refit's forecast is priced with the modelled
    unit cost drawn for its own draws (not the flat history), so the default prior set's cost
    is the board's cost."""
    from bayes_lac.studies import sensitivity as smod

    inputs, fc = inputs_and_forecast
    unit = _fake_unit_costs(fc, converged=True)
    calls = []

    def drawn_for(forecast, panel, *, fit=None, **kwargs):
        calls.append(fit)
        return unit

    monkeypatch.setattr(cmod, "modelled_unit_costs", drawn_for)
    fit = unit.attrs["fit"]
    table = smod.conclusions(inputs.results, unit_costs=fit, seed=0)
    assert calls == [fit]
    cost = table[table["conclusion"].str.startswith("cost_")]
    assert len(cost) > 0
    # the forecast the conclusions make (trend only, to their longest horizon), priced with the unit cost
    same = forecast(inputs.results, horizon=max(smod.FORECAST_HORIZONS), scenarios=("trend",), seed=0)
    board_cost = cmod.costs(same, unit.sel(year=same.data["year"]), seed=0).data["cost_nominal"].sel(scenario="trend")
    for _, row in cost.iterrows():
        assert row["median"] == pytest.approx(float(board_cost.sel(year=int(row["year"])).median()))


def test_the_unit_cost_backtest_is_worded_from_the_shipped_summary(tmp_path):
    from bayes_lac.model.unit_cost import DEFAULT_DEPARTURE, DEFAULT_GROWTH_MODEL

    default = f"model {DEFAULT_DEPARTURE}/{DEFAULT_GROWTH_MODEL}"
    pd.DataFrame(
        {
            "method": [default] * 3 + ["pooled"],
            "h": [1, 2, 3, 1],
            "coverage_90": [0.91, 0.88, 0.95, 0.5],
            "pit_mean": [0.6, 0.65, 0.7, 0.9],
        }
    ).to_csv(tmp_path / board.UNIT_COST_BACKTEST_SUMMARY, index=False)
    words = board.unit_cost_backtest_words(tmp_path)
    assert "Backtested 1 to 3 years ahead" in words and "held the outturn 88 to 95 times in 100" in words
    assert "more often above the central estimate" in words
    # no summary, or none of the default design: said to be unchecked, with no figures
    assert "has not been checked" in board.unit_cost_backtest_words(tmp_path / "none")
    pd.DataFrame({"method": ["pooled"], "h": [1], "coverage_90": [0.9], "pit_mean": [0.5]}).to_csv(
        tmp_path / board.UNIT_COST_BACKTEST_SUMMARY, index=False
    )
    assert board.unit_cost_backtest_words(tmp_path).startswith("This unit-cost forecast has not been checked")
    # the shipped one: the default design, 1-5 years
    shipped = board.unit_cost_backtest_words()
    assert "Backtested 1 to 5 years ahead" in shipped and "90 to 95 times in 100" in shipped
