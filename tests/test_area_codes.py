"""Any area code: English ONS codes as before; Welsh and other ONS codes, DfE three-digit LA
numbers and a user's own codes accepted with a notice; DfE numbers read as their ONS code from
the bundled table; ``--neighbours all`` means every authority row of the panel.

Panels derive from tests/data/panel_small.csv (Thurrock 2016/2017 on lines 2/3,
Southend-on-Sea 2016/2017 on lines 4/5, the East of England region on line 6, England on
line 7).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest

from bayes_lac.cli import main
from bayes_lac.config import BUNDLED_LA_NUMBERS, BUNDLED_PANEL, ENGLAND_CODE
from bayes_lac.data.panel import (
    dfe_la_numbers,
    is_authority,
    load_panel,
    validate_panel,
)
from bayes_lac.errors import PanelError, UnknownAuthorityError
from bayes_lac.model.data import comparison_set, prepare_data
from bayes_lac.model.simulate import simulate_panel

SMALL_PANEL = Path(__file__).parent / "data" / "panel_small.csv"


def set_cell(text: str, line: int, column: str, value: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def check(tmp_path: Path, text: str, capsys) -> tuple[int, str, str]:
    path = tmp_path / "panel.csv"
    path.write_text(text, encoding="utf-8")
    status = main(["data", "check", str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def needs_numbers():
    if not BUNDLED_LA_NUMBERS.exists():
        pytest.skip("data/dfe_la_numbers.csv not built yet (bayes-lac data build)")


def test_welsh_code_was_refused_and_is_accepted_with_a_notice(tmp_path, capsys):
    text = SMALL_PANEL.read_text().replace("E06000033,Southend-on-Sea", "W06000015,Cardiff")

    status, out, err = check(tmp_path, text, capsys)

    assert status == 0, err
    assert "areas: 2 local authorities, 1 region, England" in out
    assert "la_code: 1 area(s) with ONS codes from outside England (W06000015) accepted" in out
    assert "--neighbours all or a list of codes" in out


def test_dfe_number_was_refused_and_is_read_as_its_ons_code(tmp_path, capsys):
    needs_numbers()
    text = set_cell(SMALL_PANEL.read_text(), 3, "la_code", "883")
    path = tmp_path / "numbers.csv"
    path.write_text(text)

    panel = load_panel(path)

    assert panel.loc[1, "la_code"] == "E06000034"  # one Thurrock series, not a phantom '883'
    assert panel["la_code"].nunique() == 4
    assert any(
        "1 row(s) use DfE LA numbers, read as the ONS code DfE gives for each" in n
        and "883 -> E06000034 (Thurrock)" in n
        for n in panel.attrs["notices"]
    )
    status, out, _ = check(tmp_path, text, capsys)
    assert status == 0 and "883 -> E06000034 (Thurrock)" in out


def test_dfe_number_and_its_ons_code_in_one_year_are_a_duplicate_named_as_such(tmp_path, capsys):
    needs_numbers()
    text = set_cell(set_cell(SMALL_PANEL.read_text(), 3, "la_code", "883"), 3, "year", "2016")

    status, _, err = check(tmp_path, text, capsys)

    assert status == 2
    assert "lines 2 and 3 both hold E06000034 for 2016 (883 being DfE's number for E06000034)" in err


def test_unknown_three_digit_number_is_kept_as_the_users_own_code(tmp_path, capsys):
    needs_numbers()
    assert "999" not in set(dfe_la_numbers()["old_la_code"])
    text = SMALL_PANEL.read_text().replace("E06000033", "999")

    status, out, err = check(tmp_path, text, capsys)

    assert status == 0, err
    assert "999: 3-digit number(s) not in data/dfe_la_numbers.csv, kept as given" in out


def test_own_alphanumeric_codes_are_accepted_with_a_notice_and_fit_with_neighbours_all(tmp_path, capsys):
    text = SMALL_PANEL.read_text().replace("E06000034", "THURROCK-1").replace("E06000033", "sos_2")

    status, out, err = check(tmp_path, text, capsys)

    assert status == 0, err
    assert "2 area(s) with codes that are not ONS codes (THURROCK-1, sos_2) accepted as your own authority codes" in out
    assert "compare: unavailable: DfE's statistical-neighbour lists name English ONS codes only" in out


@pytest.mark.parametrize(
    "code, expected",
    [
        ("E0600034", "looks like an ONS code but has 7 digits"),
        ("e06000034", "ONS codes start with a capital letter (E06000034)"),
        ("Thurrock Council", "found 'Thurrock Council'"),
        ("X" * 31, "found 'XXXXXXXX"),
    ],
)
def test_codes_that_are_neither_ons_dfe_nor_plain_own_codes_are_refused(tmp_path, capsys, code, expected):
    status, _, err = check(tmp_path, set_cell(SMALL_PANEL.read_text(), 3, "la_code", code), capsys)
    assert status == 2
    assert "line 3" in err and "column 'la_code'" in err and expected in err
    assert "expected an area code" in err


def test_simulated_panel_with_made_up_codes_passes_data_check(tmp_path, capsys):
    panel, _ = simulate_panel(n_la=4, years=(2018, 2022), seed=1)
    panel["la_code"] = panel["la_code"].where(panel["la_code"] == ENGLAND_CODE, "SIM-" + panel["la_code"].str[-2:])
    path = tmp_path / "simulated.csv"
    panel.to_csv(path, index=False)

    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "areas: 4 local authorities, England" in out
    assert "accepted as your own authority codes" in out


def test_neighbours_all_means_every_authority_row_of_the_panel():
    panel, _ = simulate_panel(n_la=5, years=(2016, 2022), seed=2)
    names = {"E06990000": "OWN1", "E06990001": "W06000015", "E06990002": "S12000036"}
    panel["la_code"] = panel["la_code"].replace(names)
    region = panel[panel["la_code"] == ENGLAND_CODE].assign(la_code="E12000006", la_name="East of England")
    panel = pd.concat([panel, region], ignore_index=True)

    codes, label, _ = comparison_set(panel, "OWN1", "all")

    # own, Welsh, Scottish and English-format codes are authorities; England and regions are not
    assert label == "all"
    assert sorted(codes) == sorted(["OWN1", "W06000015", "S12000036", "E06990003", "E06990004"])
    data = prepare_data(panel, "OWN1", "all")
    assert data.la[0] == "OWN1" and len(data.la) == 5


def test_neighbours_all_respects_geographic_level_when_given():
    panel, _ = simulate_panel(n_la=4, years=(2016, 2022), seed=2)
    panel.loc[panel["la_code"] == "E06990003", "geographic_level"] = "Regional"
    codes, _, _ = comparison_set(panel, "E06990000", "all")
    assert "E06990003" not in codes and len(codes) == 3


def test_dfe_neighbour_lists_on_a_non_english_code_say_what_to_use_instead():
    panel, _ = simulate_panel(n_la=4, years=(2016, 2022), seed=2)
    panel["la_code"] = panel["la_code"].replace({"E06990000": "W06000015"})
    with pytest.raises(
        UnknownAuthorityError,
        match="DfE's statistical neighbours \\(2021\\) list English authorities only; use --neighbours all",
    ):
        comparison_set(panel, "W06000015", "2021")
    with pytest.raises(UnknownAuthorityError, match="not a local authority code"):
        comparison_set(panel, ENGLAND_CODE, "all")


def test_is_authority_separates_authorities_from_aggregates():
    for code in ("E06000034", "E10000012", "W06000015", "S12000036", "N09000003", "OWN1", "883"):
        assert is_authority(code), code
    for code in (ENGLAND_CODE, "E12000006", "E13000001", "W92000004", "E07000066", "K04000001"):
        assert not is_authority(code), code


def test_bundled_dfe_number_table_agrees_with_the_panels_pairs():
    needs_numbers()
    if not BUNDLED_PANEL.exists():
        pytest.skip("data/panel.csv not built yet")
    table = dfe_la_numbers()
    raw = pd.read_csv(BUNDLED_PANEL, dtype=str, keep_default_na=False)
    pairs = raw.loc[raw["old_la_code"] != "", ["old_la_code", "la_code"]].drop_duplicates()

    assert table["old_la_code"].is_unique and table["la_code"].is_unique
    assert table["old_la_code"].str.fullmatch(r"[0-9]{3}").all()
    assert dict(zip(pairs["old_la_code"], pairs["la_code"])) == dict(zip(table["old_la_code"], table["la_code"]))
    thurrock = table[table["old_la_code"] == "883"].iloc[0]
    assert (thurrock["la_code"], thurrock["la_name"]) == ("E06000034", "Thurrock")
    cumberland = table[table["la_code"] == "E06000063"].iloc[0]
    assert (cumberland["first_year"], cumberland["last_year"]) == ("2024", "2025")


def test_notebook_dataframe_with_dfe_numbers_is_told_they_are_not_translated():
    needs_numbers()
    df = load_panel(SMALL_PANEL)
    df["la_code"] = df["la_code"].astype(object)
    df.loc[1, "la_code"] = "883"
    notices = validate_panel(df)
    assert any("which the models do not translate: replace them" in n and "883 -> E06000034" in n for n in notices)
    assert df.loc[1, "la_code"] == "883"  # the DataFrame is never changed


def test_missing_dfe_number_table_keeps_numbers_as_own_codes(tmp_path, monkeypatch):
    import bayes_lac.data.panel as panel_module

    monkeypatch.setattr(panel_module, "BUNDLED_LA_NUMBERS", tmp_path / "absent.csv")
    path = tmp_path / "p.csv"
    path.write_text(set_cell(SMALL_PANEL.read_text(), 3, "la_code", "883"))
    panel = load_panel(path)
    assert panel.loc[1, "la_code"] == "883"
    assert any(
        "883: 3-digit number(s) not in data/dfe_la_numbers.csv, kept as given" in n for n in panel.attrs["notices"]
    )


def test_broken_dfe_number_table_is_named(tmp_path, monkeypatch):
    import bayes_lac.data.panel as panel_module

    bad = tmp_path / "numbers.csv"
    bad.write_text("number,code\n883,E06000034\n")
    monkeypatch.setattr(panel_module, "BUNDLED_LA_NUMBERS", bad)
    with pytest.raises(PanelError, match="numbers.csv: missing column\\(s\\) old_la_code, la_code"):
        load_panel(SMALL_PANEL)
