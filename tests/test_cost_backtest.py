"""The cost backtest scores forecast spend against the outturn, per unit-cost method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_lac.errors import BayesLacError
from bayes_lac.studies.cost_backtest import cost_backtest, cost_backtest_summary
from tests.conftest import make_toy_results


@pytest.fixture(scope="module")
def scored():
    run = make_toy_results()
    la = run.attrs["target_la"]
    years = np.arange(2011, 2025)
    panel = pd.DataFrame(
        {
            "la_code": la,
            "year": years,
            "weekly_cost_per_child": np.where(years <= 2020, 1000 * 1.03 ** (years - 2011), np.nan),
            # outturn after the origin: 60 children at £60k, then a jump no forecast expects
            "spend_looked_after": np.where(years > 2020, np.where(years < 2024, 3.6e6, 5e8), np.nan),
            "looked_after": 60.0,
        }
    )
    return cost_backtest(run, panel, methods=("flat", "trend"))


@pytest.mark.slow
def test_each_outturn_year_is_scored_once_per_method_with_honest_coverage(scored):
    assert sorted(scored["year"].unique()) == [2021, 2022, 2023, 2024]
    assert (scored.groupby("method").size() == 4).all() and (scored["origin"] == 2020).all()
    inside = (scored["lower_gbp"] <= scored["outturn_gbp"]) & (scored["outturn_gbp"] <= scored["upper_gbp"])
    assert (scored["covered"] == inside).all()
    assert not scored.loc[scored["year"] == 2024, "covered"].any()  # the £500m year is missed
    err = 100 * (scored["median_gbp"] - scored["outturn_gbp"]) / scored["outturn_gbp"]
    assert np.allclose(scored["error_percent"], err)
    assert (scored["crps_gbp"] > 0).all()


@pytest.mark.slow
def test_the_summary_is_the_share_covered_and_the_median_errors(scored):
    summary = cost_backtest_summary(scored).set_index("method")
    flat = scored[scored["method"] == "flat"]
    assert summary.at["flat", "coverage"] == pytest.approx(flat["covered"].mean())
    assert summary.at["flat", "median_abs_error_percent"] == pytest.approx(flat["error_percent"].abs().median())
    assert summary.at["flat", "last_year"] == 2024


def test_no_outturn_after_the_origin_is_an_error():
    run = make_toy_results()
    panel = pd.DataFrame(
        {
            "la_code": run.attrs["target_la"],
            "year": [2019, 2020],
            "spend_looked_after": [1e6, 1e6],
            "looked_after": 50.0,
        }
    )
    with pytest.raises(BayesLacError, match="no outturn spend"):
        cost_backtest(run, panel, methods=("flat",))
