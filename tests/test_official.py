"""The panel derived from the official files (bayes_lac.data.official, data/panel.csv).

Tests on the committed data/panel.csv need nothing else; tests marked ``official`` rebuild
from ``<checkout>/../shared/data/official-raw`` and are skipped when that folder is absent.
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pandas as pd
import pytest

from bayes_lac.cli import main
from bayes_lac.config import (
    BUNDLED_LA_NUMBERS,
    BUNDLED_NEIGHBOURS,
    BUNDLED_PANEL,
    DATA_DIR,
    DEFAULT_OFFICIAL_SOURCE,
    ENGLAND_CODE,
)
from bayes_lac.data.official import (
    PANEL_COLUMNS,
    SOURCE_FILES,
    _summed_long,
    build_panel,
    format_number,
    la_numbers_path_for,
    neighbours_path_for,
    panel_text,
    parse_values,
)
from bayes_lac.data.panel import REQUIRED_COLUMNS, ROUTE_COLUMNS
from bayes_lac.errors import InputFileError

THURROCK = "E06000034"
FLOWS = ("started", "ceased", *ROUTE_COLUMNS)
official = pytest.mark.skipif(not DEFAULT_OFFICIAL_SOURCE.is_dir(), reason=f"{DEFAULT_OFFICIAL_SOURCE} not present")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(BUNDLED_PANEL, dtype={"la_code": str, "old_la_code": str}, keep_default_na=False, na_values=[""])


def _rows(panel, code):
    return panel[panel["la_code"] == code].set_index("year")


# -- the committed panel -------------------------------------------------------------------


def test_columns_start_with_the_panel_schema(panel):
    assert tuple(panel.columns[: len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS
    assert tuple(panel.columns) == PANEL_COLUMNS


def test_thurrock_first_release_before_2015_and_revised_after(panel):
    t = _rows(panel, THURROCK)
    assert t.loc[2012, "looked_after"] == 239
    assert t.loc[2012, "looked_after_first_release"] == 239
    assert t.loc[2012, "looked_after_source"] == "SFR20/2012"
    assert t.loc[2017, "looked_after"] == 333
    assert t.loc[2017, "looked_after_first_release"] == 345
    assert t.loc[2017, "looked_after_source"].startswith("LAIT@")
    assert t.loc[2015, "looked_after"] == 284 and t.loc[2015, "looked_after_first_release"] == 279


def test_no_duplicate_area_year_and_rows_sorted(panel):
    assert not panel.duplicated(["la_code", "year"]).any()
    assert panel[["la_code", "year"]].equals(
        panel[["la_code", "year"]].sort_values(["la_code", "year"]).reset_index(drop=True)
    )


def test_every_area_has_every_year_of_its_lifetime(panel):
    for code, rows in panel.groupby("la_code"):
        years = rows["year"].tolist()
        assert years == list(range(min(years), max(years) + 1)), code
    las = panel[panel["geographic_level"] == "Local authority"].groupby("year").size()
    expected = {**{y: 152 for y in range(2010, 2020)}, 2020: 151, 2021: 151, 2022: 152, 2023: 152, 2024: 153, 2025: 153}
    assert las.to_dict() == expected
    regions = panel[panel["geographic_level"] == "Regional"].groupby("year")["la_code"].nunique()
    assert (regions == 9).all() and len(regions) == 16
    assert _rows(panel, ENGLAND_CODE).index.tolist() == list(range(2010, 2026))


# (code, first year, last year) as documented in data/README.md "Reorganisations".
LIFETIMES = [
    ("E06000028", 2010, 2019),  # Bournemouth
    ("E06000029", 2010, 2019),  # Poole
    ("E10000009", 2010, 2019),  # Dorset county
    ("E06000058", 2020, 2025),  # Bournemouth, Christchurch and Poole
    ("E06000059", 2020, 2025),  # Dorset unitary
    ("E10000021", 2010, 2021),  # Northamptonshire (last DfE figures: 31 March 2021)
    ("E06000061", 2022, 2025),  # North Northamptonshire
    ("E06000062", 2022, 2025),  # West Northamptonshire
    ("E10000006", 2010, 2023),  # Cumbria (last DfE figures: 31 March 2023)
    ("E06000063", 2024, 2025),  # Cumberland
    ("E06000064", 2024, 2025),  # Westmorland and Furness
    ("E06000053", 2010, 2025),  # Isles of Scilly
]


@pytest.mark.parametrize("code, first, last", LIFETIMES)
def test_reorganised_areas_start_and_end_as_documented(panel, code, first, last):
    rows = _rows(panel, code)
    assert (rows.index.min(), rows.index.max()) == (first, last)
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert code in readme


@pytest.mark.parametrize(
    "current, former",
    [
        ("E08000037", "E08000020"),
        ("E06000057", "E06000048"),
        ("E06000060", "E10000002"),
        ("E06000065", "E10000023"),
        ("E06000066", "E10000027"),
    ],
)
def test_code_changes_keep_one_series_under_the_current_code(panel, current, former):
    assert _rows(panel, current).index.tolist() == list(range(2010, 2026))
    assert former not in set(panel["la_code"])
    assert former in (DATA_DIR / "README.md").read_text(encoding="utf-8")


def test_counts_are_whole_and_consistent(panel):
    for col in (
        "population_0_17",
        "looked_after",
        "children_in_need",
        "child_protection",
        "uasc",
        "looked_after_first_release",
    ):
        values = panel[col].dropna()
        assert (values == values.round()).all() and (values >= 0).all(), col
    assert (panel["population_0_17"].dropna() > 0).all()
    assert not (panel["uasc"] > panel["looked_after"]).any()
    assert not (panel["child_protection"] > panel["children_in_need"]).any()
    for col in ("looked_after", "children_in_need", "child_protection"):
        assert not (panel[col] > panel["population_0_17"]).any(), col


def test_every_blank_value_carries_a_note(panel):
    pairs = {
        "looked_after": "looked_after_note",
        "children_in_need": "children_in_need_note",
        "child_protection": "child_protection_note",
        "uasc": "uasc_note",
        "deprivation": "deprivation_flag",
        "population_0_17": "population_0_17_flag",
        "weekly_cost_per_child": "weekly_cost_per_child_note",
        "spend_looked_after": "spend_looked_after_note",
        "looked_after_first_release": "looked_after_first_release_note",
        "uasc_first_release": "uasc_first_release_note",
        **{col: f"{col}_note" for col in FLOWS},
    }
    for value, note in pairs.items():
        blank = panel[value].isna()
        assert panel.loc[blank, note].notna().all(), value
        assert panel.loc[blank, note].str.len().gt(0).all(), value
    # Where a value exists the note is empty, except the population flag which always says how.
    for value, note in pairs.items():
        if note != "population_0_17_flag":
            assert panel.loc[panel[value].notna(), note].isna().all(), value
    suppressed = panel["children_in_need_note"].fillna("").str.match(r"^[xcu] in EES CIN b1$")
    assert suppressed.sum() >= 5 and panel.loc[suppressed, "children_in_need"].isna().all()


def test_population_interpolation_and_flags(panel):
    t = _rows(panel, THURROCK)
    mid2009, mid2012 = t.loc[2010, "population_0_17"], t.loc[2013, "population_0_17"]
    assert t.loc[2010, "population_0_17_flag"] == "mid-2009 rounded" and mid2009 % 100 == 0
    assert t.loc[2011, "population_0_17"] == round(mid2009 + (mid2012 - mid2009) / 3)
    assert t.loc[2012, "population_0_17"] == round(mid2009 + 2 * (mid2012 - mid2009) / 3)
    assert set(panel.loc[panel["year"].isin([2011, 2012]), "population_0_17_flag"]) <= {
        "interpolated",
        "missing: interpolation needs mid-2009 and mid-2012",
    }
    assert set(panel.loc[panel["year"] >= 2013, "population_0_17_flag"].str.split(":").str[0]) == {"ons_mye", "missing"}
    # Former Dorset authorities: DfE's ONS file prints x for their pre-2019 boundaries.
    assert _rows(panel, "E06000028").loc[2015, "population_0_17_flag"].startswith("missing: x")


def test_deprivation_gaps_are_blank_and_flagged_never_filled(panel):
    gaps = panel["year"].isin([2010, 2011, 2012, 2013, 2014, 2025])
    assert panel.loc[gaps, "deprivation"].isna().all()
    assert panel.loc[panel["year"] < 2015, "deprivation_flag"].str.startswith("not available: DWP").all()
    assert panel.loc[panel["year"] == 2025, "deprivation_flag"].str.contains("revised the series in 2026").all()
    inside = panel["year"].between(2015, 2024)
    assert panel.loc[inside, "deprivation"].notna().mean() > 0.97
    assert _rows(panel, THURROCK).loc[2016, "deprivation"] == 17.0


# Tolerance of the rate check: DfE publishes rates rounded to whole numbers, so a rate computed
# from the same count and denominator is within 0.5 of it. Regional and England counts are
# themselves rounded to the nearest 10, which adds up to 5 / population * 10,000.
RATE_TOLERANCE = 0.5


def _rate_check(panel):
    both = panel.dropna(subset=["looked_after", "population_0_17", "published_rate_looked_after"]).copy()
    both["computed"] = both["looked_after"] / both["population_0_17"] * 10_000
    aggregate = both["geographic_level"] != "Local authority"
    both["tolerance"] = RATE_TOLERANCE + np.where(aggregate, 5 / both["population_0_17"] * 10_000, 0) + 1e-9
    both["beyond"] = (both["computed"] - both["published_rate_looked_after"]).abs() > both["tolerance"]
    return both


def test_computed_rate_matches_published_rate_within_rounding_from_2019(panel):
    both = _rate_check(panel)
    recent = both[both["year"] >= 2019]
    assert len(recent) > 1100
    assert not recent["beyond"].any(), recent.loc[recent["beyond"], ["la_code", "year"]].to_string()
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert f"2019-2025: all {len(recent)} cells" in readme


def test_rate_disagreements_2015_2018_are_as_reported_and_bounded(panel):
    """2015-2018 published rates used the ONS estimates of the time (before ONS rebased
    mid-2012 to mid-2021 to Census 2021) and counts as then published; data/README.md reports
    how many cells differ beyond rounding. None differs grossly except tiny City of London."""
    both = _rate_check(panel)
    early = both[both["year"].between(2015, 2018)]
    n_beyond, n = int(early["beyond"].sum()), len(early)
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert f"2015-2018: {n_beyond} of {n} cells" in readme
    nonzero = early[early["published_rate_looked_after"] > 0]  # Isles of Scilly: 0 children
    relative = (nonzero["computed"] / nonzero["published_rate_looked_after"] - 1).abs()
    assert (relative[nonzero["la_code"] != "E09000001"] < 0.4).all()
    assert relative.median() < 0.03


def test_costs_are_on_one_definition_and_earlier_lines_kept_apart(panel):
    t = _rows(panel, THURROCK)
    assert t.loc[2017, "spend_looked_after"] == 19387208
    assert t.loc[2025, "weekly_cost_per_child"] == 2800
    assert panel.loc[panel["year"] < 2013, "spend_looked_after"].isna().all()
    assert panel.loc[panel["year"] < 2013, "spend_looked_after_note"].str.startswith("not comparable").all()
    assert t.loc[2011, "spend_looked_after_pre2013_definition"] == 1942294
    assert panel.loc[panel["year"] >= 2013, "spend_looked_after_pre2013_definition"].isna().all()


def test_idaci_editions_are_constant_per_area(panel):
    for col in ("idaci_score_2019", "idaci_score_2025", "idaci_rank_2015"):
        assert (panel.groupby("la_code")[col].nunique(dropna=True) <= 1).all(), col
    t = _rows(panel, THURROCK)
    assert t.loc[2010, "idaci_score_2019"] == pytest.approx(0.186)
    # District-level editions stand only for unitary, metropolitan and London authorities.
    assert panel.loc[panel["la_code"].str.startswith("E10"), "idaci_score_2025"].isna().all()


def test_flows_are_whole_and_no_route_exceeds_ceased(panel):
    for col in FLOWS:
        values = panel[col].dropna()
        assert (values == values.round()).all() and (values >= 0).all(), col
    for route in ROUTE_COLUMNS:
        assert not (panel[route] > panel["ceased"]).any(), route
        assert panel[route].notna().sum() > 500, route


def test_thurrock_flows_first_release_before_2015_revised_after(panel):
    t = _rows(panel, THURROCK)
    # SFR21/2011 underlying data: CLA_started2011 118, CLA_cease 140, CLA_ceaPar 73
    assert (t.loc[2011, "started"], t.loc[2011, "ceased"], t.loc[2011, "ceased_returned_home"]) == (118, 140, 73)
    assert t.loc[2011, "started_source"] == "SFR21/2011"
    # SFR34/2015: returned home = as part of care planning (26) + not (9)
    assert t.loc[2015, "ceased_returned_home"] == 35 and t.loc[2015, "ceased_returned_home_source"] == "SFR34/2015"
    # revised LAIT counts from 2015
    assert t.loc[2016, "started_source"] == "LAIT@2e30e3959a6a" and t.loc[2016, "started"] == 193
    assert t.loc[2015, "ceased_source"] == "LAIT@b3494e3d664d"
    # a sum with a suppressed part is blank, never a lower bound
    assert np.isnan(t.loc[2016, "ceased_returned_home"])
    assert t.loc[2016, "ceased_returned_home_note"] == "x in SFR41/2016 (CLA_ceaParNPlan)"
    assert t.loc[2017, "ceased_age_18"] == 49 and t.loc[2020, "ceased_age_18_source"] == "EES ceased 2020-2024"
    for year in (2018, 2019):
        assert np.isnan(t.loc[year, "ceased_returned_home"])
        assert "rounded %" in t.loc[year, "ceased_returned_home_note"]
    # 2025 from the dashboard's rds (tidy extract): Thurrock's unplanned part is suppressed
    assert np.isnan(t.loc[2025, "ceased_returned_home"])
    assert t.loc[2025, "ceased_returned_home_note"].startswith("c in CSC_rds_ceased_cla_data@47c0a7745719")
    e = _rows(panel, "E92000001")
    # England 2025: both reasons published; their sum (checked against the extract's two rows)
    assert e.loc[2025, "ceased_returned_home"] == 6610
    assert e.loc[2025, "ceased_returned_home_source"] == "CSC_rds_ceased_cla_data@47c0a7745719 (tidy extract)"


def test_england_flows_2010_2014_come_from_the_revised_national_series(panel):
    e = _rows(panel, "E92000001")
    assert (e.loc[2010, "started"], e.loc[2010, "ceased"], e.loc[2010, "ceased_adopted"]) == (28090, 25310, 3200)
    assert e.loc[2014, "ceased_source"] == "EES national time series 1994-2024"
    # no revised national SGO series: the SFR national row (rounded to 10) is used
    assert e.loc[2010, "ceased_special_guardianship_source"] == "SFR27/2010"


def test_summed_route_is_blank_when_any_part_is_suppressed():
    parts = pd.DataFrame({"plan": ["26", "29", "x"], "not_plan": ["9", "x", "c"]})
    out = _summed_long(["A", "B", "C"], [2015, 2016, 2017], parts, "SFR")
    assert out["value"].iloc[0] == 35
    assert out["value"].iloc[1:].isna().all()
    assert out["note"].tolist() == ["", "x in SFR (not_plan)", "x in SFR (plan); c in SFR (not_plan)"]


# -- helpers -------------------------------------------------------------------------------


def test_parse_values_keeps_markers():
    values, markers = parse_values(pd.Series(["12", "x", "", "c", "17.100000000000001", "-", "1,234"]))
    assert values.iloc[0] == 12 and values.iloc[4] == 17.1 and values.iloc[6] == 1234
    assert markers.tolist() == ["", "x", "blank", "c", "", "-", ""]


def test_number_format_is_fixed_and_shortest():
    assert format_number(17.100000000000001) == "17.1"
    assert format_number(8955421269.0) == "8955421269"
    assert format_number(0.000012) == "0.000012"
    assert format_number(239.0, integer=True) == "239"
    assert format_number(float("nan")) == ""


def test_panel_text_is_deterministic_and_ordered():
    frame = pd.DataFrame({"year": [2016], "la_code": ["E06000034"], "looked_after": [333.0], "deprivation": [17.0]})
    text = panel_text(frame)
    assert text == "la_code,year,looked_after,deprivation\nE06000034,2016,333,17\n"
    assert panel_text(frame) == text


def test_neighbours_file_goes_beside_a_custom_panel(tmp_path):
    assert neighbours_path_for(None) == BUNDLED_NEIGHBOURS
    assert neighbours_path_for(tmp_path / "my panel.csv") == tmp_path / "my panel_neighbours.csv"


def test_dfe_number_table_goes_beside_a_custom_panel(tmp_path):
    assert la_numbers_path_for(None) == BUNDLED_LA_NUMBERS
    assert la_numbers_path_for(tmp_path / "my panel.csv") == tmp_path / "my panel_la_numbers.csv"


def test_missing_source_folder_is_named(tmp_path):
    with pytest.raises(InputFileError, match="official source folder not found"):
        build_panel(tmp_path / "nowhere")


# -- rebuilding from the official files ------------------------------------------------------


@pytest.mark.official
@official
def test_build_reproduces_committed_files_byte_for_byte(tmp_path, capsys):
    out = tmp_path / "panel.csv"
    start = time.perf_counter()
    status = main(["data", "build", "--source", str(DEFAULT_OFFICIAL_SOURCE), "--out", str(out)])
    elapsed = time.perf_counter() - start

    assert status == 0
    assert out.read_bytes() == BUNDLED_PANEL.read_bytes()
    assert (tmp_path / "panel_neighbours.csv").read_bytes() == BUNDLED_NEIGHBOURS.read_bytes()
    assert (tmp_path / "panel_la_numbers.csv").read_bytes() == BUNDLED_LA_NUMBERS.read_bytes()
    printed = capsys.readouterr().out
    assert "rows: 2592" in printed and "interpolated" in printed and str(out) in printed
    assert elapsed < 30


@pytest.mark.official
@official
def test_missing_official_file_is_named_with_where_it_was_expected(tmp_path):
    dropped = SOURCE_FILES["ees_b1"]
    for rel in SOURCE_FILES.values():
        if rel == dropped:
            continue
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(DEFAULT_OFFICIAL_SOURCE / rel, target)
    with pytest.raises(InputFileError) as err:
        build_panel(tmp_path)
    assert str(tmp_path / dropped) in str(err.value)
    assert "1 required official file(s) missing" in str(err.value)


@pytest.mark.official
@official
def test_counts_and_denominators_equal_the_latest_ees_release(panel):
    """LAIT (used for LAC) and DfE's 2025 EES release agree for 2021-2025, and the ONS file
    the panel uses is exactly the denominator that release prints."""
    ees = pd.read_csv(
        DEFAULT_OFFICIAL_SOURCE / SOURCE_FILES["ees_cla_2021_2025"],
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
    )
    ees = ees[ees["population_type"].str.contains("31 March") & (ees["geographic_level"] == "Local authority")]
    number_to_code = dict(zip(panel["old_la_code"].dropna(), panel["la_code"]))
    ees["la_code"] = ees["old_la_code"].map(number_to_code)
    ees["year"] = ees["time_period"].astype(int)
    merged = ees.merge(panel, on=["la_code", "year"])
    assert len(merged) > 750
    numeric = pd.to_numeric(merged["children_count"], errors="coerce")
    assert ((numeric == merged["looked_after"]) | (numeric.isna() & merged["looked_after"].isna())).all()
    pop = pd.to_numeric(merged["population_estimate"], errors="coerce")
    assert ((pop == merged["population_0_17"]) | pop.isna()).all()


@pytest.mark.official
@official
def test_spend_sources_agree_where_they_overlap():
    """The BG panel (only source for FY 2014-15) equals DfE's outturn files for FY 2012-13 and
    2013-14 and LAIT for FY 2015-16, so the spend series joins without a seam."""
    from bayes_lac.data.official import (
        _Source,
        bg_panel_spend,
        build_all,
        lait_measure,
        outturn_total_looked_after,
    )

    src = _Source(DEFAULT_OFFICIAL_SOURCE)
    _, areas = build_all(DEFAULT_OFFICIAL_SOURCE)
    for year, other in (
        (2013, outturn_total_looked_after(src, 2013, areas)),
        (2014, outturn_total_looked_after(src, 2014, areas)),
        (2016, lait_measure(src.lait("lait_2015", ["TotalLACFinance"]), "TotalLACFinance", areas, "LAIT", [2016])),
    ):
        bg = bg_panel_spend(src, areas, year).dropna(subset=["value"])
        both = bg.merge(other, on=["la_code", "year"], suffixes=("_bg", "_other")).dropna(subset=["value_other"])
        assert len(both) > 140, year
        close = np.isclose(both["value_bg"], both["value_other"], rtol=1e-5, atol=100)
        assert close.mean() > 0.97, (year, both.loc[~close, ["la_code", "value_bg", "value_other"]])


@pytest.mark.official
@pytest.mark.slow
@official
@pytest.mark.skipif(
    not os.environ.get("BAYES_LAC_RDS_CHECK"),
    reason="set BAYES_LAC_RDS_CHECK=1 to run (parsing the rds takes 100-200 s in pure Python)",
)
def test_uasc_equals_ees_characteristics_file(panel):
    """UASC 2021-2025 (LAIT) equals the EES 'la_cla_on_31_march_by_characteristics' UASC rows in
    DfE's dashboard rds. Opt-in: the rds takes 100-200 s to parse with the `rdata` package."""
    import warnings

    rdata = pytest.importorskip("rdata", reason="rdata is the 'official' extra: pip install 'bayes_lac[official]'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rds = rdata.read_rds(
            DEFAULT_OFFICIAL_SOURCE / "dfe_CSC_outcomes_and_enablers/data/combined_cla_31_march_data.rds"
        )
    u = rds[(rds["characteristic"] == "UASC") & rds["population_count"].str.contains("31 March")]
    u = u[u["geographic_level"] == "Local authority"]
    number_to_code = dict(zip(panel["old_la_code"].dropna(), panel["la_code"]))
    frame = pd.DataFrame(
        {
            "la_code": u["old_la_code"].astype(str).map(number_to_code).to_numpy(),
            "year": u["time_period"].astype(int).to_numpy(),
            "ees": pd.to_numeric(u["cla_31_march_number"], errors="coerce").to_numpy(),
        }
    ).drop_duplicates()
    merged = frame.merge(panel, on=["la_code", "year"])
    assert len(merged) > 750
    assert ((merged["ees"] == merged["uasc"]) | (merged["ees"].isna() & merged["uasc"].isna())).all()


def test_readme_documents_every_column():
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    for col in PANEL_COLUMNS:
        assert f"`{col}`" in readme, col
    assert "Open Government Licence v3.0" in readme
    assert "bayes-lac data build --source" in readme
    assert re.search(r"Contains public sector information licensed under the Open Government Licence v3\.0", readme)
    for publisher in ("DfE", "ONS", "DWP", "MHCLG"):
        assert publisher in readme
    for rel in SOURCE_FILES.values():
        assert rel.split("/")[-1] in readme, rel


def test_readme_coverage_table_matches_the_panel(panel):
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    table = {}
    for line in readme.splitlines():
        m = re.match(r"\| `?([\w ]+?)`? \| (\d+(?: \| \d+){15}) \|$", line)
        if m:
            table[m.group(1)] = [int(x) for x in m.group(2).split(" | ")]
    assert table.pop("year") == list(range(2010, 2026))
    expected = {
        "rows": panel.groupby("year").size().tolist(),
        "local authorities": panel[panel["geographic_level"] == "Local authority"].groupby("year").size().tolist(),
    }
    for col in (
        "population_0_17",
        "looked_after",
        "children_in_need",
        "child_protection",
        "uasc",
        "deprivation",
        "weekly_cost_per_child",
        "spend_looked_after",
        *FLOWS,
    ):
        expected[col] = panel.groupby("year")[col].count().tolist()
    assert table == expected
