"""DfE statistical neighbours: the bundled lists, the lookup function and its errors."""

from __future__ import annotations

import pandas as pd
import pytest

from bayes_lac.config import (
    BUNDLED_NEIGHBOURS,
    BUNDLED_PANEL,
    DEFAULT_OFFICIAL_SOURCE,
    THURROCK_CODE,
)
from bayes_lac.data.neighbours import (
    NEIGHBOUR_COLUMNS,
    neighbour_table,
    statistical_neighbours,
)
from bayes_lac.errors import InputFileError, UnknownAuthorityError

THURROCK_2021 = [
    ("Medway", "E06000035"),
    ("Bexley", "E09000004"),
    ("Havering", "E09000016"),
    ("Swindon", "E06000030"),
    ("Dudley", "E08000027"),
    ("Southend-on-Sea", "E06000033"),
    ("West Northamptonshire", "E06000062"),
    ("Telford and Wrekin", "E06000020"),
    ("Milton Keynes", "E06000042"),
    ("Peterborough", "E06000031"),
]
THURROCK_2025 = [
    ("Swindon", "E06000030"),
    ("Bexley", "E09000004"),
    ("Havering", "E09000016"),
    ("Medway", "E06000035"),
    ("North Northamptonshire", "E06000061"),
    ("Bedford", "E06000055"),
    ("West Northamptonshire", "E06000062"),
    ("Dudley", "E08000027"),
    ("Lincolnshire", "E10000019"),
    ("Suffolk", "E10000029"),
]

official = pytest.mark.skipif(not DEFAULT_OFFICIAL_SOURCE.is_dir(), reason=f"{DEFAULT_OFFICIAL_SOURCE} not present")


@pytest.mark.parametrize("model, expected", [(2021, THURROCK_2021), (2025, THURROCK_2025)])
def test_thurrock_neighbours_match_dfe_lists_by_name_and_code(model, expected):
    codes = statistical_neighbours(THURROCK_CODE, model)
    assert codes == [code for _, code in expected]

    table = neighbour_table(model)
    rows = table[table["la_code"] == THURROCK_CODE].sort_values("rank")
    assert rows["rank"].tolist() == list(range(1, 11))
    assert rows["neighbour_name"].tolist() == [name for name, _ in expected]
    assert set(rows["la_name"]) == {"Thurrock"}


def test_model_can_be_given_as_text():
    assert statistical_neighbours(THURROCK_CODE, "2025") == [code for _, code in THURROCK_2025]


@pytest.mark.parametrize("model", [2019, "2020", "latest", ""])
def test_unknown_model_is_refused_with_the_models_available(model):
    with pytest.raises(UnknownAuthorityError, match=r"expected one of 2021, 2025"):
        statistical_neighbours(THURROCK_CODE, model)


def test_unknown_code_names_the_code_and_gives_an_example():
    with pytest.raises(UnknownAuthorityError) as err:
        statistical_neighbours("E06000999")
    message = str(err.value)
    assert "'E06000999'" in message and "2021 model" in message
    assert "E06000034 (Thurrock)" in message


def test_authority_missing_from_one_model_points_to_the_other():
    # Cumberland (2023) postdates the April 2021 model, which prints '-' for its neighbours.
    with pytest.raises(UnknownAuthorityError, match="it has a list under model 2025"):
        statistical_neighbours("E06000063", 2021)
    assert len(statistical_neighbours("E06000063", 2025)) == 10


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match="nowhere.csv: statistical-neighbour file not found"):
        neighbour_table(2021, tmp_path / "nowhere.csv")


# The April 2021 model covers the authorities in place from April 2021 (panel year 2022:
# Northamptonshire's list is kept only under "Old SNs"); the May 2025 model those of 2025.
@pytest.mark.parametrize("model, year", [(2021, 2022), (2025, 2025)])
def test_every_authority_of_the_model_year_has_ten_distinct_neighbours_that_exist(model, year):
    panel = pd.read_csv(BUNDLED_PANEL, dtype={"la_code": str})
    las = set(panel.loc[(panel["year"] == year) & (panel["geographic_level"] == "Local authority"), "la_code"])
    table = neighbour_table(model)
    lists = table[table["list"] == "model"]

    assert set(lists["la_code"]) == las
    for code, rows in table.groupby("la_code"):
        assert rows["rank"].tolist() == list(range(1, 11)), code
        assert rows["neighbour_code"].nunique() == 10, code
        assert code not in set(rows["neighbour_code"]), code
    assert set(table["neighbour_code"]) <= set(panel["la_code"])
    assert table["neighbour_name"].ne("").all() and table["la_name"].ne("").all()


def test_bundled_file_has_the_documented_columns_and_former_authorities_are_marked():
    table = pd.read_csv(BUNDLED_NEIGHBOURS, dtype=str, keep_default_na=False)
    assert tuple(table.columns) == NEIGHBOUR_COLUMNS
    old = table[table["list"] == "old SNs"]
    # LAIT keeps older lists for authorities abolished by reorganisation.
    assert {"E10000021", "E06000028", "E06000029", "E10000009"} <= set(old["la_code"])
    assert not table.duplicated(["model", "la_code", "rank"]).any()


@pytest.mark.official
@official
def test_lait_workbooks_agree_with_the_csc_csv_copies():
    """DfE's CSC dashboard copies of the groupings give the same ordered lists (by DfE number)."""
    raw = DEFAULT_OFFICIAL_SOURCE / "dfe_CSC_outcomes_and_enablers" / "data-raw"
    copy_2021 = pd.read_csv(raw / "New_Statistical_Neighbour_Groupings_April_2021.csv", dtype=str, encoding="utf-8-sig")
    copy_2025 = pd.read_csv(raw / "sn_model_2025_wide.csv", dtype=str, encoding="utf-8-sig")
    panel = pd.read_csv(BUNDLED_PANEL, dtype=str, keep_default_na=False)
    number_to_code = dict(zip(panel["old_la_code"], panel["la_code"]))

    checked = 0
    for model, copy, id_col, sn_cols in (
        (2021, copy_2021, "LA num", [f"SN{k}" for k in range(1, 11)]),
        (2025, copy_2025, "old_la_code", [f"SN_{k}" for k in range(1, 11)]),
    ):
        table = neighbour_table(model)
        for _, row in copy.iterrows():
            number = str(row[id_col]).strip()
            if number not in number_to_code or row[sn_cols[0]] in ("-", None) or pd.isna(row[sn_cols[0]]):
                continue
            expected = [number_to_code[str(row[c]).strip()] for c in sn_cols]
            got = table.loc[table["la_code"] == number_to_code[number], "neighbour_code"].tolist()
            assert got == expected, (model, number)
            checked += 1
    assert checked > 290
