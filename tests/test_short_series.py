"""Honest about short series: a decomposition of years in which an authority has no data is
refused (it would be invented history), and every fit says how many years each authority has,
naming those with fewer than five.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_lac import load_panel
from bayes_lac.analysis import decompose as D
from bayes_lac.cli import main
from bayes_lac.config import BUNDLED_PANEL, MEASURES
from bayes_lac.errors import BayesLacError
from bayes_lac.model import results as R
from bayes_lac.model.data import SHORT_SERIES_YEARS, prepare_data
from bayes_lac.model.simulate import simulate_panel
from bayes_lac.report import board
from tests.conftest import make_toy_results

WEST_NORTHANTS = "E06000062"


def run_with_a_new_authority(first_year: int = 2022, last_year: int | None = None) -> xr.DataTree:
    """A toy run 2010-2025 whose second authority is West Northamptonshire, with published
    counts only from `first_year` (to `last_year`); the others have counts every year."""
    run = make_toy_results(years=(2010, 2025))
    old = str(run["constant_data"]["la"].values[1])
    codes = [WEST_NORTHANTS if str(c) == old else str(c) for c in run["constant_data"]["la"].values]
    names = ["West Northamptonshire" if c == WEST_NORTHANTS else f"Area {i}" for i, c in enumerate(codes)]
    for group in ("posterior", "constant_data", "observed_data"):
        ds = run[group].to_dataset().assign_coords(la=codes)
        if group == "constant_data":
            ds = ds.assign_coords(la_name=("la", names))
        run[group] = xr.DataTree(ds)
    exp = R.expected_reported(run).mean(("chain", "draw")).transpose("measure", "la", "year")
    obs = run["observed_data"].to_dataset()
    counts = np.round(exp.values)
    years = obs["year"].values
    outside = (years < first_year) | (years > (last_year or years.max()))
    counts[:, codes.index(WEST_NORTHANTS), outside] = np.nan
    obs["reported_count"] = obs["reported_count"].copy(data=counts)
    run["observed_data"] = xr.DataTree(obs)
    run.attrs["neighbours"] = str([c for c in codes if c != codes[0]]).replace("'", '"')
    return run


def test_decompose_from_before_an_authority_existed_is_refused_through_the_cli(tmp_path, capsys):
    path = tmp_path / "run.nc"
    R.save_run(run_with_a_new_authority(), path)
    out = tmp_path / "decomposition.csv"

    status = main(["decompose", str(path), "--la", WEST_NORTHANTS, "--from", "2010", "--to", "2017", "--out", str(out)])

    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "West Northamptonshire (E06000062) has published counts for 2022-2025 only (first year 2022)" in err
    assert "choose years from 2022 to 2025" in err
    assert not out.exists()
    assert (
        main(["decompose", str(path), "--la", WEST_NORTHANTS, "--from", "2022", "--to", "2025", "--out", str(out)]) == 0
    )
    assert out.exists()


def test_decompose_past_the_last_year_of_an_ended_authority_is_refused():
    run = run_with_a_new_authority(first_year=2010, last_year=2021)
    with pytest.raises(BayesLacError, match=r"has published counts for 2010-2021 only .* its series ends in 2021"):
        D.decompose(run, la=WEST_NORTHANTS, from_year=2015, to_year=2025)
    assert not D.decompose(run, la=WEST_NORTHANTS, from_year=2015, to_year=2021).table.empty


def test_counterfactual_paths_before_an_authority_existed_are_refused():
    run = run_with_a_new_authority()
    with pytest.raises(BayesLacError, match=r"West Northamptonshire \(E06000062\) .*\(first year 2022\)"):
        D.counterfactual_table(run, la=WEST_NORTHANTS, from_year=2010, to_year=2025)


def test_report_decomposes_only_the_years_an_authority_has_data_for():
    run = run_with_a_new_authority()
    assert D.data_years(run, WEST_NORTHANTS) == (2022, 2025)
    assert board.decomposition_windows(run, WEST_NORTHANTS) == [(2022, 2025)]
    target = str(run["constant_data"]["la"].values[0])
    assert board.decomposition_windows(run, target) == [(2010, 2025), (2010, 2017)]


def test_fit_notices_list_authorities_with_short_series():
    panel, _ = simulate_panel(n_la=6, years=(2012, 2022), seed=4)
    codes = [c for c in panel["la_code"].unique() if c.startswith("E0699")]
    young = panel["la_code"] == codes[3]
    panel = panel[~young | (panel["year"] >= 2020)]  # a new authority: 3 years, 2020-2022

    data = prepare_data(panel, codes[0], codes[1:], None, MEASURES, "simulated.csv")

    summary = next(n for n in data.imputations if n.startswith("Years with counts"))
    assert (
        summary == "Years with counts (and a population) per authority: 11 years: 5 authorities, 3 years: 1 authority."
    )
    short = next(n for n in data.imputations if n.startswith("Short series"))
    assert f"fewer than {SHORT_SERIES_YEARS} years" in short
    assert f"{codes[3]} (Simulated 3): 3 years (2020-2022)" in short
    assert codes[0] not in short


def test_cumberland_with_two_years_is_fitted_with_a_notice_not_silently():
    if not BUNDLED_PANEL.exists():
        pytest.skip("data/panel.csv not built yet")
    data = prepare_data(load_panel(), "E06000063", "2025")
    short = next(n for n in data.imputations if n.startswith("Short series"))
    assert "E06000063 (Cumberland): 2 years (2024-2025)" in short
    assert "decomposition of years outside their data is refused" in short
