"""Derive the model-ready panel from the official source files.

``bayes-lac data build`` reads DfE, ONS (as republished by DfE), DWP (via DfE's LAIT) and
MHCLG files from a folder (default `bayes_lac.config.DEFAULT_OFFICIAL_SOURCE`), parses each
with code and writes one row per area and year (`build_panel`, `write_panel`) plus DfE's
statistical-neighbour lists (`bayes_lac.data.neighbours.build_neighbour_table`).

Rules, in brief (data/README.md has the full account):

* Looked-after children (LAC) and UASC at 31 March: DfE's revised figures (LAIT) from 2015,
  the first release (SFR underlying data) for 2010-2014; England 2010-2014 from DfE's
  revised national time series. First releases 2010-2017 are kept in their own columns.
* Population aged 0-17: the ONS mid-year estimate of mid-(Y-1) for 31 March of year Y, as
  republished by DfE; 2010 uses the mid-2009 estimate rounded to 100; 2011-2012 are linear
  interpolations between mid-2009 and mid-2012, flagged.
* Deprivation: DWP % of children (under 16) in relative low-income families, the
  pre-revision series FYE 2015-2024, keyed to the year the financial year ends. Not
  available (blank, flagged) for 2010-2014 and 2025.
* Nothing is imputed except the flagged population interpolation; every blank value has a
  note saying what the source printed or that the source has no row.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.config import (
    BUNDLED_LA_NUMBERS,
    BUNDLED_NEIGHBOURS,
    DEFAULT_OFFICIAL_SOURCE,
    ENGLAND_CODE,
)
from bayes_lac.data.panel import REQUIRED_COLUMNS, ROUTE_COLUMNS
from bayes_lac.errors import InputFileError
from bayes_lac.files import write_bytes

FIRST_YEAR = 2010
LAST_YEAR = 2025
YEARS: tuple[int, ...] = tuple(range(FIRST_YEAR, LAST_YEAR + 1))

_LAIT = "dfe_local-authority-interactive-tool"
_CSC = "dfe_CSC_outcomes_and_enablers"
_BG = "BenGoodair_childrens_social_care_data"

#: Every file the build reads, by key: path relative to the source folder.
SOURCE_FILES: dict[str, str] = {
    "lait_head": f"{_LAIT}/bds_long_0_parquet_versions/bds_long_0@2e30e3959a6a.parquet",
    "lait_2015": f"{_LAIT}/bds_long_0_parquet_versions/bds_long_0@b3494e3d664d.parquet",
    "lait_child_poverty": f"{_LAIT}/bds_long_0_parquet_versions/bds_long_0@ef37a328d8b0.parquet",
    "sn_2021": f"{_LAIT}/01_data/02_prod/sn_april_2021.xlsx",
    "sn_2025": f"{_LAIT}/01_data/02_prod/sn_may_2025.xlsx",
    "ees_cla_2021_2025": f"{_CSC}/cla_number_and_rate_versions/cla_number_and_rate_per_10k_children@9a527ae3b5a3.csv",
    "ees_cla_2020_2024": f"{_CSC}/cla_number_and_rate_versions/cla_number_and_rate_per_10k_children@1329930840af.csv",
    "ees_cla_2019_2023": f"{_CSC}/cla_number_and_rate_versions/cla_number_and_rate_per_10k_children@43a1b59581c5.csv",
    "ees_b1": f"{_CSC}/data-raw/b1_children_in_need_2013_to_2025.csv",
    "ees_d5": f"{_CSC}/data-raw/d5_cpps_at31march_by_duration_2013_to_2025.csv",
    "ees_population": f"{_CSC}/data-raw/ons_mid-year_population_estimates_2012_to_2024.csv",
    "ees_national_time_series": f"{_BG}/post_2017_updated25/data/cla_time_series_1994_2024.csv",
    "sfr_2010": f"{_BG}/2010/SFR27_2010_March.csv",
    "sfr_2011": f"{_BG}/2011/SFR21_CLA.csv",
    "sfr_2012": f"{_BG}/2012/UnderlyingData/SFR20_CLA2012.csv",
    "sfr_2013": f"{_BG}/2013/SFR36_CLA2013.csv",
    "sfr_2014": f"{_BG}/2014/SFR36_CLA2014.csv",
    "sfr_2015": f"{_BG}/2015/SFR34_CLA2015.csv",
    "sfr_2016": f"{_BG}/2016/SFR41_CLA2016.csv",
    "sfr_2017": f"{_BG}/2017/SFR50_CLA2017.csv",
    "sfr_started_2010": f"{_BG}/2010/SFR27_2010_Started.csv",
    "sfr_started_2011": f"{_BG}/2011/SFE21_ADM.csv",
    "sfr_started_2012": f"{_BG}/2012/UnderlyingData/SFR20_ADM2012.csv",
    "sfr_started_2013": f"{_BG}/2013/SFR36_ADM2013.csv",
    "sfr_started_2014": f"{_BG}/2014/SFR36_ADM2014.csv",
    "sfr_started_2015": f"{_BG}/2015/SFR34_ADM2015.csv",
    "sfr_started_2016": f"{_BG}/2016/SFR41_ADM2016.csv",
    "sfr_started_2017": f"{_BG}/2017/SFR50_ADM2017.csv",
    "sfr_ceased_2010": f"{_BG}/2010/SFR27_2010_Ceased.csv",
    "sfr_ceased_2011": f"{_BG}/2011/SFR21_CEA.csv",
    "sfr_ceased_2012": f"{_BG}/2012/UnderlyingData/SFR_CEA2012.csv",
    "sfr_ceased_2013": f"{_BG}/2013/SFR36_CEA2013.csv",
    "sfr_ceased_2014": f"{_BG}/2014/SFR36_CEA2014.csv",
    "sfr_ceased_2015": f"{_BG}/2015/SFR34_CEA2015.csv",
    "sfr_ceased_2016": f"{_BG}/2016/SFR41_CEA2016.csv",
    "sfr_ceased_2017": f"{_BG}/2017/SFR50_CEA2017.csv",
    "ees_ceased_reasons": f"{_BG}/post_2017_updated25/data/la_children_who_ceased_during_the_year.csv",
    "outturn_2010": f"{_BG}/LA_Spend/outturn_0910.csv",
    "outturn_2011": f"{_BG}/LA_Spend/outturn_1011.csv",
    "outturn_2012": f"{_BG}/LA_Spend/outturn_1112.csv",
    "outturn_2013": f"{_BG}/LA_Spend/outturn_1213.csv",
    "outturn_2014": f"{_BG}/LA_Spend/outturn_1314.csv",
    "bg_panel": "BenGoodair_CSC_Outsourcing_Placement_Outcomes/placement_data_final.csv",
    "idaci_2019_utla": "BenGoodair_Care_Entries_Data/idacilarge.csv",
    "iod_2015_lad": "traffordDataLab_open_data/IoD2015/local_authority_district/IoD2015.csv",
    "iod_2025_lad": "traffordDataLab_open_data/IoD2025/local_authority_district/indices_of_deprivation_2025_lad.csv",
}

#: Short labels written to the *_source columns (data/README.md maps them to files).
SFR_LABELS: dict[int, str] = {
    2010: "SFR27/2010",
    2011: "SFR21/2011",
    2012: "SFR20/2012",
    2013: "SFR36/2013",
    2014: "SFR36/2014",
    2015: "SFR34/2015",
    2016: "SFR41/2016",
    2017: "SFR50/2017",
}
LAIT_HEAD = "LAIT@2e30e3959a6a"
LAIT_2015 = "LAIT@b3494e3d664d"
LAIT_CHILD_POVERTY = "LAIT@ef37a328d8b0"
EES_TIME_SERIES = "EES national time series 1994-2024"
EES_B1 = "EES CIN b1"
EES_D5 = "EES CIN d5"
EES_POPULATION = "EES ONS MYE 0-17"
EES_CEASED = "EES ceased 2020-2024"
#: DfE's dashboard file ceased_cla_data.rds (2025 reasons for ceasing), as extracted to the
#: tidy table beside the official folder (its `source_id`); read only if that table is there.
RDS_CEASED = "CSC_rds_ceased_cla_data@47c0a7745719"
#: The tidy table holding it, relative to the official folder (see ../shared/data/PROVENANCE.md).
TIDY_FLOWS = Path("..") / "tidy" / "cla_flows_starts_ceased.csv"

#: The panel's columns, in order. The first nine are the schema of `bayes_lac.data.panel`.
PANEL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + (
    "geographic_level",
    "old_la_code",
    "population_0_17_flag",
    "looked_after_source",
    "looked_after_note",
    "looked_after_first_release",
    "looked_after_first_release_note",
    "children_in_need_note",
    "child_protection_note",
    "uasc_source",
    "uasc_note",
    "uasc_first_release",
    "uasc_first_release_note",
    "deprivation_source",
    "deprivation_flag",
    "child_poverty_current_series",
    "published_rate_looked_after",
    "weekly_cost_per_child",
    "weekly_cost_per_child_note",
    "spend_looked_after",
    "spend_looked_after_source",
    "spend_looked_after_note",
    "spend_looked_after_pre2013_definition",
    "weekly_cost_fostering",
    "weekly_cost_residential",
    "placed_foster_percent",
    "placed_residential_percent",
    "placed_independent_living_percent",
    "placed_parents_others_percent",
    "idaci_rank_2015",
    "idaci_prop10_2015",
    "idaci_score_2019",
    "idaci_prop10_2019",
    "idaci_score_2025",
    "idaci_prop10_2025",
    *(column for name in ("started", "ceased", *ROUTE_COLUMNS) for column in (name, f"{name}_source", f"{name}_note")),
)

#: Placement-mix columns and their LAIT codes: weekly unit cost per placement (£ per child per
#: week, s251) and % of children looked after at 31 March by placement type.
PLACEMENT_COST_CODES: dict[str, str] = {
    "weekly_cost_fostering": "FosteringFinance",
    "weekly_cost_residential": "RescareFinance",
}
PLACEMENT_SHARE_CODES: dict[str, str] = {
    "placed_foster_percent": "LAC_Foster_Placements",
    "placed_residential_percent": "LAC_SecHome_And_ChildHome",
    "placed_independent_living_percent": "LAC_Ind_SInd_Liv_Arr",
    "placed_parents_others_percent": "LAC_Parents_OR_Others",
}

#: Columns holding whole numbers (written without a decimal point).
INTEGER_COLUMNS: frozenset[str] = frozenset(
    {
        "year",
        "population_0_17",
        "looked_after",
        "children_in_need",
        "child_protection",
        "uasc",
        "looked_after_first_release",
        "uasc_first_release",
        "weekly_cost_per_child",
        "idaci_rank_2015",
        "started",
        "ceased",
        *ROUTE_COLUMNS,
    }
)

LEVEL_LA = "Local authority"
LEVEL_REGION = "Regional"
LEVEL_NATIONAL = "National"

_LA_CODE = re.compile(r"^E(06|08|09|10)\d{6}$")
_REGION_CODE = re.compile(r"^E12\d{6}$")


# -- reading --------------------------------------------------------------------------------


class _Source:
    """The folder of official files; resolves a key of `SOURCE_FILES` to an existing path."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputFileError(
                f"{self.root}: official source folder not found; expected a folder holding the "
                f"official files listed in bayes_lac.data.official.SOURCE_FILES (default "
                f"{DEFAULT_OFFICIAL_SOURCE})"
            )
        missing = [rel for rel in SOURCE_FILES.values() if not (self.root / rel).is_file()]
        if missing:
            shown = "; ".join(str(self.root / rel) for rel in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise InputFileError(
                f"{self.root}: {len(missing)} required official file(s) missing: expected "
                f"{shown}{more}. Point --source at a folder laid out like "
                f"{DEFAULT_OFFICIAL_SOURCE} (see data/README.md, 'Source files')"
            )

    def path(self, key: str) -> Path:
        return self.root / SOURCE_FILES[key]

    def csv(self, key: str, encoding: str = "utf-8-sig") -> pd.DataFrame:
        """A CSV as strings, blanks kept as ''. Latin-1 is the fallback for old DfE files."""
        path = self.path(key)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="latin-1")
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame.apply(lambda s: s.str.strip())

    def lait(self, key: str, measures: list[str]) -> pd.DataFrame:
        """Rows of a LAIT long parquet for the given indicator codes ('Short Desc')."""
        frame = pd.read_parquet(
            self.path(key),
            columns=["Short Desc", "Years", "LA and Regions", "Values", "LA Number"],
            filters=[("Short Desc", "in", measures)],
        )
        frame.columns = ["measure", "period", "area", "raw", "number"]
        for col in ("measure", "period", "area", "raw"):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str).str.strip()
        return frame


def parse_values(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers in `raw` (strings) and, where not a number, what the source printed.

    Returns ``(values, markers)``: float values (NaN where not numeric) and the verbatim
    marker (``x``, ``c``, ``z``, ``-``, ``..`` or ``blank``) where the value is NaN, else ''.
    """
    text = raw.astype(str).str.strip()
    values = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
    markers = text.where(values.isna(), "")
    markers = markers.mask(values.isna() & (text == ""), "blank")
    return values.astype(float), markers


def _norm_name(name: str) -> str:
    """Loose key for matching area names across files (case, 'the', '&', punctuation)."""
    s = str(name).lower().replace("&", " and ")
    s = re.sub(r"[^a-z0-9 ]", " ", s)
    s = re.sub(r"\b(the|city of|county of|borough)\b", " ", s)
    return re.sub(r"\s+", " ", s).strip()


# -- areas ----------------------------------------------------------------------------------


@dataclass
class Areas:
    """Every area in the panel and how each source names it.

    ``table`` has one row per area: ``la_code`` (canonical ONS code), ``la_name``,
    ``old_la_code`` (DfE number, '' for regions/England), ``geographic_level``, ``first_year``,
    ``last_year``. ``code_changes`` lists codes replaced by a later code for the same area.
    """

    table: pd.DataFrame
    number_to_code: dict[str, str]
    code_to_code: dict[str, str]
    region_by_name: dict[str, str]
    code_changes: pd.DataFrame

    def code_for_number(self, number) -> str | None:
        key = _number_key(number)
        return self.number_to_code.get(key) if key else None

    def code_for_region_name(self, name: str) -> str | None:
        key = _norm_name(name)
        if key == "england":
            return ENGLAND_CODE
        return self.region_by_name.get(key)


def _number_key(number) -> str | None:
    if number is None or (isinstance(number, float) and np.isnan(number)):
        return None
    text = str(number).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return text if re.fullmatch(r"\d{3}", text) else None


def _sfr_frame(src: _Source, year: int) -> pd.DataFrame:
    """One SFR 'children looked after at 31 March' underlying-data file, tidied.

    Columns: ``number`` (DfE LA number or region letter), ``code`` (E-code printed, '' in
    2010), ``name``, ``level`` (LA/REGION/NATIONAL), ``looked_after``, ``uasc`` and, for 2010,
    ``population_mid2009`` - all as printed (strings).
    """
    frame = src.csv(f"sfr_{year}", encoding="latin-1")
    frame = frame.loc[:, [c for c in frame.columns if c and not c.startswith("Unnamed")]]
    if year == 2010:
        out = pd.DataFrame(
            {
                "number": frame["geog_c"],
                "code": "",
                "name": frame["geog_n"],
                "level": frame["geog_l"].str.upper().map({"NATIONAL": "NATIONAL", "GOR": "REGION", "LA": "LA"}),
                "looked_after": frame["MarTotal_2010"],
                "uasc": "",
                "population_mid2009": frame["Mid2009Pop0-17"],
            }
        )
    else:
        count_col = f"CLA_Mar{year}"
        for col in ("New_geog_code", "geog_c", "geog_n", count_col, "CLA_UASC"):
            if col not in frame.columns:
                raise InputFileError(
                    f"{src.path(f'sfr_{year}')}: column {col!r} not found; expected the SFR "
                    f"underlying-data layout (New_geog_code, geog_l, geog_c, geog_n, {count_col}, ...)"
                )
        code = frame["New_geog_code"]
        level = np.where(code.str.match(r"^E92"), "NATIONAL", np.where(code.str.match(r"^E1[23]"), "REGION", "LA"))
        out = pd.DataFrame(
            {
                "number": frame["geog_c"],
                "code": code,
                "name": frame["geog_n"],
                "level": level,
                "looked_after": frame[count_col],
                "uasc": frame["CLA_UASC"],
            }
        )
    out = out[out["name"] != ""].copy()
    out["year"] = year
    return out


def _ees_la_rows(frame: pd.DataFrame, year_col: str = "time_period") -> pd.DataFrame:
    rows = frame[frame["geographic_level"] == LEVEL_LA]
    return pd.DataFrame(
        {
            "number": rows["old_la_code"],
            "code": rows["new_la_code"],
            "name": rows["la_name"],
            "year": rows[year_col].astype(int),
        }
    )


def build_areas(src: _Source, b1: pd.DataFrame, population: pd.DataFrame, sfr: dict[int, pd.DataFrame]) -> Areas:
    """The area list: LAs from DfE's own files (SFR 2010-2017, EES CIN 2013-2025), regions, England.

    An authority's lifetime (first and last year) is the span of years in which DfE's LA-level
    files list it; years inside the span that a file omits still get a row (with blank values
    and a note). Where the same DfE number carries different ONS codes over time (the area
    unchanged, the code re-issued), the most recent code is used for every year.
    """
    seen = [_ees_la_rows(b1), _ees_la_rows(population).assign(year=lambda d: d["year"] + 1)]
    for key in ("ees_cla_2021_2025", "ees_cla_2020_2024", "ees_cla_2019_2023"):
        seen.append(_ees_la_rows(src.csv(key)))
    for year, frame in sfr.items():
        las = frame[frame["level"] == "LA"]
        seen.append(pd.DataFrame({"number": las["number"], "code": las["code"], "name": las["name"], "year": year}))
    obs = pd.concat(seen, ignore_index=True)
    obs = obs[obs["number"].str.fullmatch(r"\d{3}")]

    coded = obs[obs["code"].str.match(_LA_CODE)]
    latest = coded.sort_values(["number", "year", "code"]).groupby("number").tail(1)
    number_to_code = dict(zip(latest["number"], latest["code"]))
    code_to_code = {c: number_to_code[n] for n, c in zip(coded["number"], coded["code"])}
    changes = (
        coded[coded["code"] != coded["number"].map(number_to_code)]
        .groupby(["number", "code"])["year"]
        .agg(["min", "max"])
        .reset_index()
    )
    changes["current_code"] = changes["number"].map(number_to_code)
    uncoded = sorted(set(obs["number"]) - set(number_to_code))
    if uncoded:
        raise InputFileError(
            f"{src.root}: DfE LA number(s) {', '.join(uncoded)} appear without any ONS code in "
            "the SFR/EES files; expected every authority to carry an E06/E08/E09/E10 code somewhere"
        )

    # Lifetimes come from the files that list every LA each year (SFR CLA, EES CIN b1).
    listed = pd.concat(
        [
            _ees_la_rows(b1)[["number", "year"]],
            *[f.loc[f["level"] == "LA", ["number", "year"]] for f in sfr.values()],
        ]
    )
    span = listed.groupby("number")["year"].agg(["min", "max"])

    # Names: DfE's latest EES spelling (CIN b1), else the latest file that lists the LA.
    named = obs.assign(rank=obs["code"].ne("").astype(int)).sort_values(["number", "year", "rank"])
    b1_names = _ees_la_rows(b1).sort_values(["number", "year"]).groupby("number").tail(1)
    names = dict(zip(named["number"], named["name"]))
    names.update(dict(zip(b1_names["number"], b1_names["name"])))

    las = pd.DataFrame({"old_la_code": sorted(span.index)})
    las["la_code"] = las["old_la_code"].map(number_to_code)
    las["la_name"] = las["old_la_code"].map(names)
    las["first_year"] = las["old_la_code"].map(span["min"]).clip(lower=FIRST_YEAR)
    las["last_year"] = las["old_la_code"].map(span["max"]).clip(upper=LAST_YEAR)
    las["geographic_level"] = LEVEL_LA
    # Two areas with one name (Dorset county to 2019, Dorset unitary from 2020): the one that
    # ended is labelled with its last year, as LAIT does with "(Pre LG)".
    dup = las["la_name"].duplicated(keep=False)
    ended = dup & (las["last_year"] < LAST_YEAR)
    las.loc[ended, "la_name"] = las.loc[ended].apply(lambda r: f"{r['la_name']} (to {r['last_year']})", axis=1)

    regions = b1[(b1["geographic_level"] == LEVEL_REGION) & b1["region_code"].str.match(_REGION_CODE)]
    regions = regions.sort_values("time_period").groupby("region_code").tail(1)
    region_table = pd.DataFrame(
        {
            "old_la_code": "",
            "la_code": regions["region_code"],
            "la_name": regions["region_name"],
            "first_year": FIRST_YEAR,
            "last_year": LAST_YEAR,
            "geographic_level": LEVEL_REGION,
        }
    )
    england = pd.DataFrame(
        [
            {
                "old_la_code": "",
                "la_code": ENGLAND_CODE,
                "la_name": "England",
                "first_year": FIRST_YEAR,
                "last_year": LAST_YEAR,
                "geographic_level": LEVEL_NATIONAL,
            }
        ]
    )
    table = pd.concat([las, region_table, england], ignore_index=True).sort_values("la_code").reset_index(drop=True)
    region_by_name = {_norm_name(n): c for n, c in zip(region_table["la_name"], region_table["la_code"])}
    if len(region_by_name) != 9:
        raise InputFileError(
            f"{src.path('ees_b1')}: found {len(region_by_name)} English regions (E12 codes); expected 9"
        )
    return Areas(table, number_to_code, code_to_code, region_by_name, changes)


def skeleton(areas: Areas) -> pd.DataFrame:
    """One row per area and year of its lifetime, 2010-2025."""
    rows = [
        (r.la_code, year) for r in areas.table.itertuples() for year in range(int(r.first_year), int(r.last_year) + 1)
    ]
    frame = pd.DataFrame(rows, columns=["la_code", "year"])
    return frame.merge(areas.table[["la_code", "la_name", "old_la_code", "geographic_level"]], on="la_code")


# -- measures -------------------------------------------------------------------------------
# Each extractor returns a long frame: la_code, year, value (float), note (str), source (str).


def _long(codes, years, raw, source: str) -> pd.DataFrame:
    """Long frame from parallel sequences; `source` labels every row and every note."""
    values, markers = parse_values(pd.Series(list(raw), dtype=object).astype(str))
    frame = pd.DataFrame(
        {
            "la_code": list(codes),
            "year": np.asarray(list(years), dtype=int),
            "value": values.to_numpy(),
            "note": [f"{m} in {source}" if m else "" for m in markers],
            "source": source,
        }
    )
    return frame[frame["la_code"].notna() & (frame["la_code"] != "")]


def _area_codes_sfr(frame: pd.DataFrame, areas: Areas) -> pd.Series:
    def one(row):
        if row["level"] == "NATIONAL":
            return ENGLAND_CODE
        if row["level"] == "REGION":
            # By name: some SFR files print London's E12 code on Inner and Outer London too.
            return areas.code_for_region_name(row["name"])
        return areas.code_for_number(row["number"])

    return frame.apply(one, axis=1)


def sfr_measures(sfr: dict[int, pd.DataFrame], areas: Areas) -> dict[str, pd.DataFrame]:
    """First-release LAC and UASC counts (2010-2017) and the mid-2009 population (2010)."""
    out: dict[str, list[pd.DataFrame]] = {"looked_after": [], "uasc": [], "population_mid2009": []}
    for year, frame in sfr.items():
        codes = _area_codes_sfr(frame, areas)
        keep = codes.notna()
        label = SFR_LABELS[year]
        out["looked_after"].append(_long(codes[keep], [year] * keep.sum(), frame.loc[keep, "looked_after"], label))
        if year >= 2011:
            out["uasc"].append(_long(codes[keep], [year] * keep.sum(), frame.loc[keep, "uasc"], label))
        else:
            out["population_mid2009"].append(
                _long(codes[keep], [year] * keep.sum(), frame.loc[keep, "population_mid2009"], label)
            )
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def _lait_year(period: str) -> int | None:
    """LAIT period label to panel year: '2016' -> 2016; '2016-17 (OT)' -> 2017 (FY end)."""
    m = re.fullmatch(r"(\d{4})", period)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"(\d{4})-(\d{2})(?: \(OT\))?", period)
    if m:
        return int(m.group(1)) + 1
    return None


def lait_measure(frame: pd.DataFrame, measure: str, areas: Areas, label: str, years=None) -> pd.DataFrame:
    """One LAIT indicator as a long frame keyed by ONS code and panel year.

    LAIT's Inner/Outer London groupings are not areas of the panel and are left out.
    """
    rows = frame[frame["measure"] == measure].copy()
    rows["year"] = rows["period"].map(_lait_year)
    rows = rows[rows["year"].notna()]
    if years is not None:
        rows = rows[rows["year"].isin(list(years))]

    def code(row):
        number = _number_key(row["number"])
        if number is not None and number in areas.number_to_code:
            return areas.number_to_code[number]
        return areas.code_for_region_name(row["area"])

    rows["la_code"] = rows.apply(code, axis=1) if len(rows) else pd.Series(dtype=object)
    rows = rows[rows["la_code"].notna()]
    return _long(rows["la_code"], rows["year"], rows["raw"], label)


def ees_measure(frame: pd.DataFrame, column: str, areas: Areas, label: str, year_shift: int = 0) -> pd.DataFrame:
    """A column of an EES file (LA, E12 region and England rows) as a long frame."""
    level = frame["geographic_level"]
    codes = pd.Series(None, index=frame.index, dtype=object)
    is_la = level == LEVEL_LA
    codes[is_la] = frame.loc[is_la, "old_la_code"].map(areas.number_to_code)
    is_region = (level == LEVEL_REGION) & frame["region_code"].str.match(_REGION_CODE)
    codes[is_region] = frame.loc[is_region, "region_code"]
    codes[level == LEVEL_NATIONAL] = ENGLAND_CODE
    keep = codes.notna()
    return _long(codes[keep], frame.loc[keep, "time_period"].astype(int) + year_shift, frame.loc[keep, column], label)


def national_time_series(src: _Source) -> dict[str, pd.DataFrame]:
    """England LAC and UASC at 31 March, started, ceased and adopted during the year, from
    DfE's revised national time series."""
    frame = src.csv("ees_national_time_series")
    series = {
        "looked_after": "Children looked after at 31 March",
        "uasc": "Children looked after at 31 March who were unaccompanied asylum-seeking children",
    }
    out = {}
    series = {
        **series,
        "started": "Children starting to be looked after during the year",
        "ceased": "Children ceasing to be looked after during the year",
        "ceased_adopted": "Children looked after who were adopted during the year",
    }
    for name, label in series.items():
        rows = frame[frame["population_count"] == label]
        if rows.empty:
            raise InputFileError(f"{src.path('ees_national_time_series')}: no rows with population_count {label!r}")
        out[name] = _long([ENGLAND_CODE] * len(rows), rows["time_period"].astype(int), rows["number"], EES_TIME_SERIES)
    return out


# -- flows: children who started and ceased to be looked after ------------------------------

#: SFR underlying-data columns per flow and year; a list is summed (blank if any part is not
#: a number). Started files: ``sfr_started_<year>``; the rest: ``sfr_ceased_<year>``.
_SFR_FLOW_COLUMNS: dict[str, dict[int, list[str]]] = {
    "started": {
        2010: ["StartTotal_2010"],
        # SFR34/2015's header reads CLA_started2014, but file and metadata are for 2015.
        **{y: [f"CLA_started{y}"] for y in (2011, 2012, 2013, 2014, 2016, 2017)},
        2015: ["CLA_started2014"],
    },
    "ceased": {2010: ["CeasedTotal_2010"], **{y: ["CLA_cease"] for y in range(2011, 2017)}, 2017: ["CLA_cease2017"]},
    "ceased_returned_home": {
        2010: ["CeasedHome_2010"],
        **{y: ["CLA_ceaPar"] for y in range(2011, 2015)},
        2015: ["CLA_ceaParPlan", "CLA_ceaParNPlan"],
        2016: ["CLA_ceaParPlan", "CLA_ceaParNPlan"],
        2017: ["CEA_ParPlan", "CEA_ParNPlan"],
    },
    "ceased_adopted": {
        2010: ["CeasedAdoptUnop_2010", "CeasedAdoptDisp_2010"],
        **{y: ["CLA_ceaAdop", "CLA_ceaAdop2"] for y in range(2011, 2016)},
        2016: ["CLA_ceaAdop1", "CLA_ceaAdop2"],
        2017: ["CEA_Adop1", "CEA_Adop2"],
    },
    "ceased_special_guardianship": {
        2010: ["CeasedSpeGuaForm_2010", "CeasedSpecGuaOth_2010"],
        **{y: ["CLA_ceaSpecG", "CLA_ceaSpecG2"] for y in range(2011, 2016)},
        2016: ["CLA_ceaSpecG1", "CLA_ceaSpecG2"],
        2017: ["CEA_SGO1", "CEA_SGO2"],
    },
    "ceased_age_18": {2016: ["CLA_cea18"], 2017: ["CEA_18over"]},
}

#: EES 'children who ceased' characteristics per route; a list is summed.
_EES_ROUTES: dict[str, tuple[str, list[str]]] = {
    "ceased_returned_home": (
        "Reason episode ceased",
        [
            "Returned home to live with parents or other person with parental responsibility "
            "which was part of the care planning process",
            "Returned home to live with parents or other person with parental responsibility "
            "which was not part of the care planning process",
        ],
    ),
    "ceased_age_18": ("Age on ceasing", ["18 years and over"]),
}


def _summed_long(codes, years, parts: pd.DataFrame, source: str) -> pd.DataFrame:
    """Long frame whose value is the sum of `parts` (raw strings, one column per part).

    A sum is given only where every part is a number: a suppressed part (1 to 5 children,
    or secondary suppression) leaves the sum unknown, so it is blank and its note names the
    part and what the source printed. One part is read exactly as `_long` reads it.
    """
    if parts.shape[1] == 1:
        return _long(codes, years, parts.iloc[:, 0], source)
    values = []
    notes = []
    parsed = {col: parse_values(parts[col].astype(str)) for col in parts.columns}
    for i in range(len(parts)):
        marked = [(col, parsed[col][1].iloc[i]) for col in parts.columns if parsed[col][1].iloc[i]]
        if marked:
            values.append(np.nan)
            notes.append("; ".join(f"{m} in {source} ({col})" for col, m in marked))
        else:
            values.append(float(sum(parsed[col][0].iloc[i] for col in parts.columns)))
            notes.append("")
    frame = pd.DataFrame(
        {"la_code": list(codes), "year": np.asarray(list(years), dtype=int), "value": values, "note": notes}
    )
    frame["source"] = source
    return frame[frame["la_code"].notna() & (frame["la_code"] != "")]


def sfr_flow_measures(src: _Source, areas: Areas) -> dict[str, pd.DataFrame]:
    """First-release flows 2010-2017 (SFR underlying data): started, ceased and routes."""
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in _SFR_FLOW_COLUMNS}
    for year in SFR_LABELS:
        for kind in ("started", "ceased"):
            key = f"sfr_{kind}_{year}"
            frame = src.csv(key, encoding="latin-1")
            frame = frame.loc[:, [c for c in frame.columns if c and not c.startswith("Unnamed")]]
            frame = frame[frame["geog_n"] != ""]
            level = (
                frame["geog_l"]
                .str.upper()
                .map({"NATIONAL": "NATIONAL", "GOR": "REGION", "REGION": "REGION", "LA": "LA"})
            )
            geo = pd.DataFrame({"number": frame["geog_c"], "name": frame["geog_n"], "level": level})
            codes = _area_codes_sfr(geo, areas)
            keep = codes.notna()
            for name, by_year in _SFR_FLOW_COLUMNS.items():
                if (name == "started") != (kind == "started") or year not in by_year:
                    continue
                columns = by_year[year]
                absent = [c for c in columns if c not in frame.columns]
                if absent:
                    raise InputFileError(
                        f"{src.path(key)}: column(s) {', '.join(absent)} not found; expected the SFR "
                        f"underlying-data layout of {SFR_LABELS[year]} (see data/README.md, 'Flows')"
                    )
                parts = frame.loc[keep, columns]
                out[name].append(_summed_long(codes[keep], [year] * int(keep.sum()), parts, SFR_LABELS[year]))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def ees_ceased_routes(src: _Source, areas: Areas) -> dict[str, pd.DataFrame]:
    """Routes out of care 2020-2024 from DfE's EES 'children who ceased during the year'."""
    frame = src.csv("ees_ceased_reasons")
    out = {}
    for name, (group, characteristics) in _EES_ROUTES.items():
        rows = frame[frame["cla_group"] == group]
        wide = rows.pivot_table(
            index=["time_period", "geographic_level", "old_la_code", "region_code"],
            columns="characteristic",
            values="number",
            aggfunc="first",
        ).reset_index()
        absent = [c for c in characteristics if c not in wide.columns]
        if absent:
            raise InputFileError(
                f"{src.path('ees_ceased_reasons')}: no rows for {group!r} = {absent[0]!r}; expected "
                "DfE's la_children_who_ceased_during_the_year layout"
            )
        level = wide["geographic_level"]
        codes = pd.Series(None, index=wide.index, dtype=object)
        is_la = level == LEVEL_LA
        codes[is_la] = wide.loc[is_la, "old_la_code"].map(areas.number_to_code)
        is_region = (level == LEVEL_REGION) & wide["region_code"].str.match(_REGION_CODE)
        codes[is_region] = wide.loc[is_region, "region_code"]
        codes[level == LEVEL_NATIONAL] = ENGLAND_CODE
        keep = codes.notna()
        parts = wide.loc[keep, characteristics].fillna("")
        out[name] = _summed_long(codes[keep], wide.loc[keep, "time_period"].astype(int), parts, EES_CEASED)
    return out


def rds_returned_home_2025(src: _Source, areas: Areas) -> pd.DataFrame | None:
    """Returns home in the year to March 2025 from DfE's dashboard ``ceased_cla_data.rds``.

    The rds needs the optional ``rdata`` reader, so the build reads its values from the tidy
    extract beside the official folder (`TIDY_FLOWS`, rows whose ``source_id`` is
    `RDS_CEASED`): the same two reasons as 2020-2024 ("returned home ... part of" and "not
    part of the care planning process"), summed; a suppressed part leaves the sum blank. None
    when the extract is not there (the 2025 cells then stay blank, with their note).
    """
    path = src.root / TIDY_FLOWS
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    reasons = _EES_ROUTES["ceased_returned_home"][1]
    measures = {f"EES_ceased:Reason episode ceased:{r}:number": r for r in reasons}
    rows = frame[(frame["source_id"] == RDS_CEASED) & frame["measure"].isin(measures) & (frame["year"] == "2025")]
    if rows.empty:
        raise InputFileError(f"{path}: no 2025 returns home from {RDS_CEASED}; expected its two reasons' counts")
    rows = rows.assign(reason=rows["measure"].map(measures))
    wide = rows.pivot_table(
        index=["geographic_level", "la_code", "old_la_code", "la_name"],
        columns="reason",
        values="value",
        aggfunc="first",
    ).reset_index()
    level = wide["geographic_level"]
    codes = pd.Series(None, index=wide.index, dtype=object)
    is_la = level == LEVEL_LA
    codes[is_la] = wide.loc[is_la, "old_la_code"].map(areas.code_for_number)
    is_region = level == LEVEL_REGION
    codes[is_region] = wide.loc[is_region, "la_name"].map(areas.code_for_region_name)
    codes[level == LEVEL_NATIONAL] = ENGLAND_CODE
    keep = codes.notna()
    parts = wide.loc[keep, reasons].fillna("")
    return _summed_long(codes[keep], [2025] * int(keep.sum()), parts, f"{RDS_CEASED} (tidy extract)")


def outturn_total_looked_after(src: _Source, year: int, areas: Areas) -> pd.DataFrame:
    """s251 outturn line 'Total Children Looked After', gross (total) expenditure, £."""
    frame = src.csv(f"outturn_{year}", encoding="latin-1")
    number_col = frame.columns[0]
    desc_col = next(c for c in frame.columns if re.search(r"reference|description", c, re.I))
    total_col = next(c for c in frame.columns if re.fullmatch(r"total\s*expenditure.*", c, re.I))
    desc = frame[desc_col].str.replace(r"^\d+\s*", "", regex=True).str.strip().str.lower()
    rows = frame[desc == "total children looked after"]
    if rows.empty:
        raise InputFileError(f"{src.path(f'outturn_{year}')}: no 'Total Children Looked After' line found")
    codes = rows[number_col].map(areas.code_for_number)
    keep = codes.notna()
    label = f"s251 outturn {year - 1}-{str(year)[2:]}"
    return _long(codes[keep], [year] * keep.sum(), rows.loc[keep, total_col], label)


def bg_panel_spend(src: _Source, areas: Areas, year: int = 2015) -> pd.DataFrame:
    """Gross spend on CLA (s251 'Total Children Looked After') from B. Goodair's panel, £.

    The panel splits the line by provider; the total is the sum of the four provider
    columns (own provision, private, other public, voluntary), which equals DfE's total where
    both are available.
    """
    frame = src.csv("bg_panel")
    rows = frame[frame["year"] == str(year)]
    parts = ["LA_own_spend", "Private_spend", "Other_Public_spend", "Voluntary_spend"]
    values = rows[parts].apply(lambda s: pd.to_numeric(s, errors="coerce"))
    total = values.sum(axis=1, min_count=len(parts))
    codes = rows["New_geog_code"].map(areas.code_to_code)
    raw = total.map(lambda v: "" if np.isnan(v) else repr(float(v)))
    keep = codes.notna()
    label = f"BG panel s251 {year - 1}-{str(year)[2:]}"
    out = _long(codes[keep], [year] * keep.sum(), raw[keep], label)
    # The panel repeats some areas under an old and a new code; keep the row with a value.
    out = out.sort_values(["la_code", "value"], na_position="last").drop_duplicates(["la_code", "year"])
    out.loc[out["value"].isna(), "note"] = f"NA in {label}"
    return out


# -- deprivation ----------------------------------------------------------------------------


def idaci_columns(src: _Source, areas: Areas) -> pd.DataFrame:
    """IDACI by edition, one row per area (constant over years).

    2019: upper-tier LA summary (average score; proportion of LSOAs in the most deprived 10 %).
    2015 and 2025: lower-tier district summaries, used only where the district is the
    upper-tier authority (unitary, metropolitan and London boroughs); counties left blank.
    """
    out = pd.DataFrame({"la_code": areas.table["la_code"]})
    utla = src.csv("idaci_2019_utla")
    cols = list(utla.columns)
    score_col = next(c for c in cols if "average score" in c.lower())
    prop_col = next(c for c in cols if "proportion" in c.lower())
    utla["la_code"] = utla[cols[0]].map(lambda c: areas.code_to_code.get(c, c))
    out = out.merge(
        pd.DataFrame(
            {
                "la_code": utla["la_code"],
                "idaci_score_2019": pd.to_numeric(utla[score_col], errors="coerce"),
                "idaci_prop10_2019": pd.to_numeric(utla[prop_col], errors="coerce"),
            }
        ),
        on="la_code",
        how="left",
    )
    lad15 = src.csv("iod_2015_lad")
    lad15 = lad15[lad15["index_domain"] == "Income Deprivation Affecting Children"]
    out = out.merge(
        pd.DataFrame(
            {
                "la_code": lad15["lad19cd"],
                "idaci_rank_2015": pd.to_numeric(lad15["rank_average_score"], errors="coerce"),
                "idaci_prop10_2015": pd.to_numeric(lad15["proportion_bottom_decile"], errors="coerce"),
            }
        ),
        on="la_code",
        how="left",
    )
    lad25 = src.csv("iod_2025_lad")
    lad25 = lad25[lad25["index_domain"] == "Income Deprivation Affecting Children"]
    out = out.merge(
        pd.DataFrame(
            {
                "la_code": lad25["area_code"],
                "idaci_score_2025": pd.to_numeric(lad25["average_score"], errors="coerce"),
                "idaci_prop10_2025": pd.to_numeric(lad25["proportion_bottom_decile"], errors="coerce"),
            }
        ),
        on="la_code",
        how="left",
    )
    if out["la_code"].duplicated().any():
        raise InputFileError(
            f"IoD files: more than one IDACI row for {out.loc[out['la_code'].duplicated(), 'la_code'].iloc[0]}; "
            "expected one row per area and edition"
        )
    # District rows only stand for an upper-tier LA when the codes coincide (E06/E08/E09).
    is_la = out["la_code"].str.match(_LA_CODE)
    for col in ("idaci_rank_2015", "idaci_prop10_2015", "idaci_score_2025", "idaci_prop10_2025"):
        out.loc[~is_la, col] = np.nan
    return out


# -- assembly -------------------------------------------------------------------------------


def _pick(panel: pd.DataFrame, name: str, pieces: list, no_source: str) -> None:
    """Fill ``name`` (value), ``name_note`` and ``name_source`` from sources by year.

    `pieces` lists ``(long_frame, years)`` or ``(long_frame, years, codes)``: the first piece
    that covers a cell's year (and, if given, its code) is that cell's only source, so
    vintages are never mixed cell by cell. A cell whose source has no row for it gets the
    note "not listed in <source>"; a year no piece covers gets the note `no_source`.
    """
    key = panel[["la_code", "year"]]
    value = np.full(len(key), np.nan)
    note = np.full(len(key), no_source, dtype=object)
    source = np.full(len(key), "", dtype=object)
    done = np.zeros(len(key), dtype=bool)
    for piece in pieces:
        frame, years = piece[0], set(piece[1])
        codes = set(piece[2]) if len(piece) > 2 else None
        labels = frame.drop_duplicates("year").set_index("year")["source"]
        covers = key["year"].isin(years).to_numpy() & ~done
        if codes is not None:
            covers &= key["la_code"].isin(codes).to_numpy()
        if not covers.any():
            continue
        rows = frame[frame["year"].isin(years)]
        twice = rows[rows.duplicated(["la_code", "year"], keep=False)]
        if len(twice):
            first = twice.iloc[0]
            raise InputFileError(
                f"{first['source']}: {len(twice)} rows for {name} share an area and year (e.g. "
                f"{first['la_code']} {first['year']}); expected one value per area and year"
            )
        merged = key[covers].merge(rows, on=["la_code", "year"], how="left")
        found = merged["source"].notna().to_numpy()
        absent = "not listed in " + merged["year"].map(labels).fillna("its source")
        value[covers] = merged["value"].to_numpy()
        note[covers] = np.where(found, merged["note"].fillna("").to_numpy(), absent.to_numpy())
        source[covers] = np.where(found, merged["source"].fillna("").to_numpy(), "")
        done |= covers
    panel[name] = value
    panel[f"{name}_note"] = note
    panel[f"{name}_source"] = source


def _population(panel: pd.DataFrame, ons: pd.DataFrame, mid2009: pd.DataFrame) -> None:
    """population_0_17 and its flag (see the module docstring for the rule)."""
    key = ["la_code", "year"]
    frame = panel[key].copy()
    ons_value = ons.set_index(key)["value"]
    ons_note = ons.set_index(key)["note"]
    p09 = mid2009.set_index("la_code")["value"]
    p12 = ons[ons["year"] == 2013].set_index("la_code")["value"]  # mid-2012, used for 2013
    value = np.full(len(frame), np.nan)
    flag = np.empty(len(frame), dtype=object)
    for i, (code, year) in enumerate(zip(frame["la_code"], frame["year"])):
        if year >= 2013:
            v = ons_value.get((code, year), np.nan)
            if np.isnan(v):
                note = ons_note.get((code, year), "")
                flag[i] = f"missing: {note}" if note else f"missing: no row in {EES_POPULATION}"
            else:
                value[i], flag[i] = v, "ons_mye"
        elif year == 2010:
            v = p09.get(code, np.nan)
            if np.isnan(v):
                flag[i] = "missing: no mid-2009 estimate in SFR27/2010"
            else:
                value[i], flag[i] = v, "mid-2009 rounded"
        else:
            a, b = p09.get(code, np.nan), p12.get(code, np.nan)
            if np.isnan(a) or np.isnan(b):
                flag[i] = "missing: interpolation needs mid-2009 and mid-2012"
            else:
                # mid-2010 is one third of the way from mid-2009 to mid-2012, mid-2011 two thirds.
                share = (year - 2010) / 3.0
                value[i], flag[i] = float(np.round(a + share * (b - a))), "interpolated"
    panel["population_0_17"] = value
    panel["population_0_17_flag"] = flag


def build_panel(source: Path | str = DEFAULT_OFFICIAL_SOURCE, progress: bool = False) -> pd.DataFrame:
    """The model-ready panel, derived from the official files in `source`.

    Parameters
    ----------
    source
        Folder holding the official files (layout of `SOURCE_FILES`).
    progress
        Show a progress bar (the CLI does).

    Returns
    -------
    DataFrame with the columns `PANEL_COLUMNS`, one row per area (LA, region, England) and
    31 March year 2010-2025 of its lifetime, sorted by ``la_code`` and ``year``. Counts are
    children; ``population_0_17`` children aged 0-17; ``deprivation`` % of children under 16;
    costs £ (``weekly_cost_per_child`` £ per child per week, ``spend_looked_after`` £ per
    financial year ending 31 March of ``year``).

    Raises
    ------
    InputFileError
        If the folder or any required file is missing, or a file is not laid out as expected.
    """
    return build_all(source, progress)[0]


def build_all(source: Path | str = DEFAULT_OFFICIAL_SOURCE, progress: bool = False) -> tuple[pd.DataFrame, Areas]:
    """The panel and the area list it was built on (`build_panel` returns the panel only)."""
    from tqdm.auto import tqdm

    src = _Source(source)
    steps = tqdm(total=9, desc="building panel", unit="step", disable=not progress)

    sfr = {year: _sfr_frame(src, year) for year in SFR_LABELS}
    b1 = src.csv("ees_b1")
    d5 = src.csv("ees_d5")
    population = src.csv("ees_population")
    areas = build_areas(src, b1, population, sfr)
    panel = skeleton(areas).sort_values(["la_code", "year"]).reset_index(drop=True)
    england = [ENGLAND_CODE]
    steps.update()

    lait_codes = [
        "LACnum",
        "LAC",
        "Unacc_Asylmn_Seek_Childn",
        "LACFinance",
        "TotalLACFinance",
        "ChildPov",
        *PLACEMENT_COST_CODES.values(),
        *PLACEMENT_SHARE_CODES.values(),
        *LAIT_FLOW_CODES.values(),
    ]
    head = src.lait("lait_head", lait_codes)
    old = src.lait("lait_2015", lait_codes)
    poverty = src.lait("lait_child_poverty", ["ChildPov"])
    steps.update()

    first = sfr_measures(sfr, areas)
    national = national_time_series(src)

    def lait_series(measure: str, first_year: int) -> pd.DataFrame:
        """LAIT values: the b3494e3d664d version for `first_year`, the newest version after."""
        return pd.concat(
            [
                lait_measure(old, measure, areas, LAIT_2015, [first_year]),
                lait_measure(head, measure, areas, LAIT_HEAD, range(first_year + 1, LAST_YEAR + 1)),
            ],
            ignore_index=True,
        )

    # Looked after at 31 March: SFR first release 2010-2014, LAIT revised from 2015; England
    # 2010-2014 from DfE's revised national series (no revised LA/regional figures exist).
    revised = range(2015, LAST_YEAR + 1)
    _pick(
        panel,
        "looked_after",
        [
            (national["looked_after"], range(2010, 2015), england),
            (first["looked_after"], range(2010, 2015)),
            (lait_series("LACnum", 2015), revised),
        ],
        no_source="no source for this year",
    )
    _pick(
        panel,
        "looked_after_first_release",
        [(first["looked_after"], range(2010, 2018))],
        no_source="no first-release file for this year (SFR underlying data end in 2017)",
    )
    steps.update()

    # UASC at 31 March: the same rule, from 2011 (SFR 27/2010 has no UASC column).
    _pick(
        panel,
        "uasc",
        [
            (national["uasc"], range(2010, 2015), england),
            (first["uasc"], range(2011, 2015)),
            (lait_series("Unacc_Asylmn_Seek_Childn", 2015), revised),
        ],
        no_source="not published: SFR27/2010 has no LA or regional UASC count",
    )
    _pick(
        panel,
        "uasc_first_release",
        [(first["uasc"], range(2011, 2018))],
        no_source="no first-release UASC count for this year (SFR 2011-2017 only)",
    )
    steps.update()

    # Children in need and child protection plans at 31 March (EES CIN, 2013-2025).
    cin_gap = "not available: the CIN census series at 31 March starts in 2013"
    _pick(panel, "children_in_need", [(ees_measure(b1, "At31_episodes", areas, EES_B1), range(2013, 2026))], cin_gap)
    _pick(panel, "child_protection", [(ees_measure(d5, "CPP_At31", areas, EES_D5), range(2013, 2026))], cin_gap)

    # Population 0-17: time_period T of DfE's ONS file is mid-T, the denominator for T+1.
    ons = ees_measure(population, "population_estimate", areas, EES_POPULATION, year_shift=1)
    _population(panel, ons, first["population_mid2009"])
    steps.update()

    # Deprivation: DWP CiLIF % (pre-revision series), FYE Y -> year Y.
    dep = pd.concat(
        [
            lait_measure(old, "ChildPov", areas, LAIT_2015, [2015]),
            lait_measure(poverty, "ChildPov", areas, LAIT_CHILD_POVERTY, range(2016, 2025)),
        ],
        ignore_index=True,
    )
    _pick(panel, "deprivation", [(dep, range(2015, 2025))], "")
    panel.loc[panel["year"] < 2015, "deprivation_note"] = "not available: DWP local CiLIF series starts FYE 2015"
    panel.loc[panel["year"] == LAST_YEAR, "deprivation_note"] = (
        "not available on the pre-revision basis: DWP revised the series in 2026 (see child_poverty_current_series)"
    )
    # DWP publishes on current boundaries only: former authorities have '-' in LAIT.
    former = panel["deprivation"].isna() & panel["deprivation_note"].str.startswith("- in ")
    panel.loc[former, "deprivation_note"] = panel.loc[former, "deprivation_note"] + (
        " (DWP figures are on current boundaries; none for former authorities)"
    )
    panel = panel.rename(columns={"deprivation_note": "deprivation_flag"})
    current = lait_measure(head, "ChildPov", areas, LAIT_HEAD, range(2022, 2026))
    panel["child_poverty_current_series"] = _lookup(panel, current)
    steps.update()

    # DfE's published LAC rate per 10,000 (LAIT), for checking the computed rate.
    panel["published_rate_looked_after"] = _lookup(panel, lait_series("LAC", 2015))
    steps.update()

    # Costs: s251 outturn, FY ending 31 March of `year`.
    _pick(
        panel,
        "weekly_cost_per_child",
        [(lait_series("LACFinance", 2016), range(2016, 2026))],
        no_source="not available: LAIT unit costs start FY 2015-16",
    )
    _pick(
        panel,
        "spend_looked_after",
        [
            (outturn_total_looked_after(src, 2013, areas), [2013], _la_codes(areas)),
            (outturn_total_looked_after(src, 2014, areas), [2014], _la_codes(areas)),
            (bg_panel_spend(src, areas, 2015), [2015], _la_codes(areas)),
            (lait_series("TotalLACFinance", 2016), range(2016, 2026)),
        ],
        no_source="",
    )
    pre = panel["year"] < 2013
    panel.loc[pre, "spend_looked_after_note"] = (
        "not comparable: before FY 2012-13 the s251 CLA total excluded adoption and special "
        "guardianship (see spend_looked_after_pre2013_definition)"
    )
    aggregate = panel["year"].between(2013, 2015) & (panel["geographic_level"] != LEVEL_LA)
    panel.loc[aggregate, "spend_looked_after_note"] = (
        "not published here: the FY 2012-13 to 2014-15 files hold LAs only (no totals are summed)"
    )
    old_def = pd.concat([outturn_total_looked_after(src, y, areas) for y in (2010, 2011, 2012)], ignore_index=True)
    panel["spend_looked_after_pre2013_definition"] = _lookup(panel, old_def)
    # Placement mix: DfE's weekly unit cost per foster / residential placement (LAIT, from FY
    # 2015-16) and the % of children looked after at 31 March by placement (LAIT, 2020-2025).
    # Values only: a blank is a year LAIT does not publish or a suppressed cell.
    for column, code in PLACEMENT_COST_CODES.items():
        panel[column] = _lookup(panel, lait_series(code, 2016))
    for column, code in PLACEMENT_SHARE_CODES.items():
        panel[column] = _lookup(panel, lait_measure(head, code, areas, LAIT_HEAD, range(2020, LAST_YEAR + 1)))
    steps.update()

    panel = panel.merge(idaci_columns(src, areas), on="la_code", how="left")
    _flows(panel, src, areas, first_flows=sfr_flow_measures(src, areas), national=national, lait=lait_series)
    steps.update()
    steps.close()

    panel = panel.drop(
        columns=[
            "children_in_need_source",
            "child_protection_source",
            "looked_after_first_release_source",
            "uasc_first_release_source",
            "weekly_cost_per_child_source",
        ]
    )
    extra = set(panel.columns) - set(PANEL_COLUMNS)
    absent = set(PANEL_COLUMNS) - set(panel.columns)
    if extra or absent:
        raise AssertionError(f"panel columns out of step: extra {sorted(extra)}, missing {sorted(absent)}")
    panel = panel[list(PANEL_COLUMNS)].sort_values(["la_code", "year"]).reset_index(drop=True)
    return panel, areas


#: LAIT indicator codes of the flows (revised counts, 2015-2025).
LAIT_FLOW_CODES: dict[str, str] = {
    "started": "LACnum_Start",
    "ceased": "LACceased",
    "ceased_adopted": "No_of LAC Adopted",
    "ceased_special_guardianship": "LAC_ceased_SGO",
}


def _flows(panel: pd.DataFrame, src: _Source, areas: Areas, first_flows: dict, national: dict, lait) -> None:
    """Flows during the year: started, ceased and the routes (rules in data/README.md, 'Flows').

    Same rule as the stock where both vintages exist: SFR first release 2010-2014 (England
    from DfE's revised national series where it has the measure), LAIT revised from 2015.
    Returns home and ceasing aged 18 have no LAIT count: SFR 2010-2017 (2016-2017 for age)
    and EES 2020-2024; the years between have no count in any source found.
    """
    england = [ENGLAND_CODE]
    first, revised = range(2010, 2015), range(2015, LAST_YEAR + 1)
    for name in ("started", "ceased", "ceased_adopted", "ceased_special_guardianship"):
        pieces = []
        if name in national:
            pieces.append((national[name], first, england))
        pieces += [(first_flows[name], first), (lait(LAIT_FLOW_CODES[name], 2015), revised)]
        _pick(panel, name, pieces, no_source="no source for this year")
    ees = ees_ceased_routes(src, areas)
    pieces = [
        (first_flows["ceased_returned_home"], range(2010, 2018)),
        (ees["ceased_returned_home"], range(2020, 2025)),
    ]
    latest = rds_returned_home_2025(src, areas)
    if latest is not None:
        pieces.append((latest, [2025]))
    _pick(panel, "ceased_returned_home", pieces, no_source="")
    gap = panel["year"].isin([2018, 2019] if latest is not None else [2018, 2019, 2025])
    panel.loc[gap, "ceased_returned_home_note"] = (
        "not available as a count: for 2018 and 2019 DfE's files found give returns home only as a rounded % of "
        "children who ceased (LAIT), and the build never re-derives counts from rounded %"
        + ("" if latest is not None else "; for 2025 the count is in DfE's ceased_cla_data.rds, not read here")
    )
    _pick(
        panel,
        "ceased_age_18",
        [(first_flows["ceased_age_18"], range(2016, 2018)), (ees["ceased_age_18"], range(2020, 2025))],
        no_source="",
    )
    pre = panel["year"] < 2016
    panel.loc[pre, "ceased_age_18_note"] = (
        "not available: SFR files before 2016 give ages at ceasing only as '16 and over'"
    )
    panel.loc[panel["year"].isin([2018, 2019, LAST_YEAR]), "ceased_age_18_note"] = (
        "not available: no file found gives children who ceased aged 18 or over for this year"
    )


def _lookup(panel: pd.DataFrame, long: pd.DataFrame) -> np.ndarray:
    """Values of a long frame aligned to the panel's rows (NaN where absent)."""
    if long.duplicated(["la_code", "year"]).any():
        first = long[long.duplicated(["la_code", "year"])].iloc[0]
        raise InputFileError(
            f"{first['source']}: more than one value for {first['la_code']} in {first['year']}; "
            "expected one value per area and year"
        )
    rows = long[["la_code", "year", "value"]]
    return panel[["la_code", "year"]].merge(rows, on=["la_code", "year"], how="left")["value"].to_numpy()


def _la_codes(areas: Areas) -> list[str]:
    return areas.table.loc[areas.table["geographic_level"] == LEVEL_LA, "la_code"].tolist()


# -- writing --------------------------------------------------------------------------------


def format_number(value, integer: bool = False) -> str:
    """Fixed, shortest text for a number: '' for NaN, no exponent, no trailing zeros."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if integer:
        return str(int(round(float(value))))
    # The shortest text that reads back as the same double (so 17.100000000000001 -> 17.1).
    return np.format_float_positional(float(value), unique=True, trim="-")


def panel_text(df: pd.DataFrame) -> str:
    """The panel as CSV text: fixed column order and number formatting, '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = [c for c in PANEL_COLUMNS if c in df.columns] + [c for c in df.columns if c not in PANEL_COLUMNS]
    writer.writerow(columns)
    formatters = []
    for col in columns:
        if pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            formatters.append(lambda v, i=col in INTEGER_COLUMNS: format_number(v, i))
        else:
            formatters.append(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    for row in df[columns].itertuples(index=False, name=None):
        writer.writerow([f(v) for f, v in zip(formatters, row)])
    return buffer.getvalue()


def write_panel(df: pd.DataFrame, path: Path | str) -> Path:
    """Write the panel CSV (UTF-8, deterministic: same frame, same bytes). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(path, panel_text(df).encode("utf-8"))


#: Columns of the DfE LA number table (`la_number_table`), in order.
LA_NUMBER_COLUMNS: tuple[str, ...] = ("old_la_code", "la_code", "la_name", "first_year", "last_year")


def la_number_table(areas: Areas) -> pd.DataFrame:
    """DfE's three-digit LA numbers and the ONS code each stands for, one row per number.

    Derived from the number/code pairs printed side by side in DfE's own files (SFR
    underlying data 2011-2017, EES ``old_la_code``/``new_la_code``), as `build_areas` reads
    them: where ONS re-issued the code of an unchanged area, the number maps to the current
    code. ``first_year``/``last_year`` are the 31 March years in which DfE's LA-level files
    list the authority (within 2010-2025). A panel may use these numbers as ``la_code``;
    `bayes_lac.data.panel.load_panel` reads them as the ONS code, with a notice.
    """
    las = areas.table[areas.table["geographic_level"] == LEVEL_LA]
    table = las[list(LA_NUMBER_COLUMNS)].copy()
    duplicated = table["la_code"].duplicated(keep=False)
    if duplicated.any():
        shown = ", ".join(sorted(set(table.loc[duplicated, "la_code"])))
        raise InputFileError(
            f"DfE LA numbers: ONS code(s) {shown} carry more than one DfE number; expected one number per authority"
        )
    return table.sort_values("old_la_code").reset_index(drop=True)


def write_la_number_table(table: pd.DataFrame, path: Path | str) -> Path:
    """Write the DfE LA number table as CSV (UTF-8, '\\n' line ends, fixed order). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LA_NUMBER_COLUMNS)
    for row in table[list(LA_NUMBER_COLUMNS)].itertuples(index=False, name=None):
        writer.writerow([str(v) for v in row])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


def la_numbers_path_for(out: Path | str | None) -> Path:
    """Where the build writes the DfE LA number table: beside the default panel, or <stem>_la_numbers.csv."""
    if out is None:
        return BUNDLED_LA_NUMBERS
    out = Path(out)
    return out.with_name(f"{out.stem}_la_numbers.csv")


def neighbours_path_for(out: Path | str | None) -> Path:
    """Where the build writes the neighbour table: beside the default panel, or <stem>_neighbours.csv."""
    if out is None:
        return BUNDLED_NEIGHBOURS
    out = Path(out)
    return out.with_name(f"{out.stem}_neighbours.csv")


def summary_lines(df: pd.DataFrame) -> list[str]:
    """Short account of what a built panel holds (rows, areas, years, flagged cells)."""
    levels = df.drop_duplicates("la_code")["geographic_level"].value_counts()
    flag = df["population_0_17_flag"]
    marked = r"^(x|c|z|u|-|\.\.) in "
    notes = {
        "looked_after": "looked_after_note",
        "children_in_need": "children_in_need_note",
        "child_protection": "child_protection_note",
        "uasc": "uasc_note",
        "deprivation": "deprivation_flag",
    }
    suppressed = {col: int(df[note].str.match(marked).sum()) for col, note in notes.items()}
    las_per_year = df[df["geographic_level"] == LEVEL_LA].groupby("year").size()
    return [
        f"rows: {len(df)} (one per area and year)",
        f"areas: {levels.get(LEVEL_LA, 0)} local authorities (incl. former ones), "
        f"{levels.get(LEVEL_REGION, 0)} regions, England",
        f"years: {df['year'].min()}-{df['year'].max()}; local authorities per year "
        f"{las_per_year.min()}-{las_per_year.max()}",
        f"population_0_17: {int((flag == 'interpolated').sum())} cells interpolated, "
        f"{int((flag == 'mid-2009 rounded').sum())} mid-2009 rounded, "
        f"{int(flag.str.startswith('missing').sum())} missing",
        "suppressed or marked cells (blank, note kept): " + ", ".join(f"{k} {v}" for k, v in suppressed.items()),
        "deprivation: "
        f"{int(df['deprivation'].notna().sum())} cells with a value, "
        f"{int(df['deprivation'].isna().sum())} blank (flagged)",
    ]
