"""DfE statistical neighbours: the ten authorities most like each authority.

Two DfE groupings (Children's Services Statistical Neighbour Benchmarking Tool) are bundled
in data/statistical_neighbours.csv, derived from LAIT's ``sn_april_2021.xlsx`` (model 2021)
and ``sn_may_2025.xlsx`` (model 2025) by `build_neighbour_table` during ``bayes-lac data build``.

The long table has one row per model, authority and rank: ``model, la_code, la_name, rank,
neighbour_code, neighbour_name, closeness, list``. ``list`` is "model" for the model's own
lists and "old SNs" for the lists LAIT keeps, under the heading "Old SNs:", for former
authorities (e.g. Northamptonshire); ``closeness`` is DfE's band ("Very close", ...).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from bayes_lac.config import BUNDLED_NEIGHBOURS
from bayes_lac.errors import InputFileError, UnknownAuthorityError
from bayes_lac.files import write_bytes

MODELS: dict[int, str] = {2021: "sn_2021", 2025: "sn_2025"}
NEIGHBOUR_COLUMNS: tuple[str, ...] = (
    "model",
    "la_code",
    "la_name",
    "rank",
    "neighbour_code",
    "neighbour_name",
    "closeness",
    "list",
)
N_NEIGHBOURS = 10


def _model(model: int | str) -> int:
    text = str(model).strip()
    if text.isdigit() and int(text) in MODELS:
        return int(text)
    raise UnknownAuthorityError(
        f"statistical-neighbour model {model!r} is not known; expected one of "
        f"{', '.join(map(str, MODELS))} (DfE April 2021 or May 2025 grouping)"
    )


def _read_sn_workbook(path: Path) -> pd.DataFrame:
    """Rows of one LAIT SN workbook: number, name, then (SN number, closeness) x 10.

    The sheet has two rows of column letters/numbers, a header row ("LA num", "LA Name",
    ..., "SN1", "SNP", ...), the model's lists, a blank row, "Old SNs:", a blank row, then
    lists kept for former authorities.
    """
    raw = pd.read_excel(path, header=None, dtype=str)
    header_rows = raw.index[raw[0].astype(str).str.strip() == "LA num"]
    if len(header_rows) != 1:
        raise InputFileError(f"{path}: header row starting 'LA num' not found; expected LAIT's SN layout")
    start = header_rows[0] + 1
    header = [str(v).strip() for v in raw.iloc[header_rows[0]]]
    sn_cols = [i for i, h in enumerate(header) if h.startswith("SN") and h[2:].isdigit()]
    if [header[i] for i in sn_cols] != [f"SN{k}" for k in range(1, N_NEIGHBOURS + 1)]:
        raise InputFileError(f"{path}: expected columns SN1..SN10, found {[header[i] for i in sn_cols]}")
    rows = []
    block = "model"
    for _, line in raw.iloc[start:].iterrows():
        first = "" if pd.isna(line[0]) else str(line[0]).strip()
        name = "" if pd.isna(line[1]) else str(line[1]).strip()
        if not first:
            if name.lower().startswith("old sns"):
                block = "old SNs"
            continue
        for rank, col in enumerate(sn_cols, start=1):
            neighbour = "" if pd.isna(line[col]) else str(line[col]).strip()
            closeness = "" if pd.isna(line[col + 1]) else str(line[col + 1]).strip()
            rows.append((first, name, rank, neighbour, closeness, block))
    return pd.DataFrame(rows, columns=["number", "name", "rank", "neighbour", "closeness", "list"])


def build_neighbour_table(source, areas) -> pd.DataFrame:
    """The long neighbour table from the LAIT workbooks in `source`.

    Parameters
    ----------
    source
        Folder of official files (see `bayes_lac.data.official.SOURCE_FILES`).
    areas
        `bayes_lac.data.official.Areas` of the same build: maps DfE numbers to ONS codes and names.

    Authorities whose row prints '-' for every neighbour (Cumberland and Westmorland and
    Furness in the 2021 model, which predates them) have no rows for that model.
    """
    from bayes_lac.data.official import SOURCE_FILES

    names = dict(zip(areas.table["la_code"], areas.table["la_name"]))
    frames = []
    for model, key in MODELS.items():
        path = Path(source) / SOURCE_FILES[key]
        if not path.is_file():
            raise InputFileError(f"{path}: statistical-neighbour workbook not found (model {model})")
        sn = _read_sn_workbook(path)
        sn = sn[sn["neighbour"] != "-"]
        for col, target in (("number", "la_code"), ("neighbour", "neighbour_code")):
            sn[target] = sn[col].map(areas.code_for_number)
            unknown = sorted(set(sn.loc[sn[target].isna(), col]))
            if unknown:
                raise InputFileError(
                    f"{path}: DfE LA number(s) {', '.join(unknown)} not found in the SFR/EES files; "
                    "expected every number to map to an ONS code"
                )
        complete = sn.groupby("la_code")["rank"].count()
        short = complete[complete != N_NEIGHBOURS]
        if len(short):
            raise InputFileError(f"{path}: {', '.join(short.index)} do not have {N_NEIGHBOURS} neighbours")
        sn["model"] = model
        sn["la_name"] = sn["la_code"].map(names)
        sn["neighbour_name"] = sn["neighbour_code"].map(names)
        sn["closeness"] = sn["closeness"].str.strip()
        frames.append(sn)
    table = pd.concat(frames, ignore_index=True)
    table = table[list(NEIGHBOUR_COLUMNS)].sort_values(["model", "la_code", "rank"]).reset_index(drop=True)
    return table


def write_neighbour_table(table: pd.DataFrame, path: Path | str) -> Path:
    """Write the neighbour table as CSV (UTF-8, '\\n' line ends, fixed order). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(NEIGHBOUR_COLUMNS)
    for row in table[list(NEIGHBOUR_COLUMNS)].itertuples(index=False, name=None):
        writer.writerow([str(v) for v in row])
    return write_bytes(path, buffer.getvalue().encode("utf-8"))


def neighbour_table(model: int | str = 2021, path: Path | str | None = None) -> pd.DataFrame:
    """DfE's statistical neighbours for every authority under one model (long table).

    Parameters
    ----------
    model
        2021 (April 2021 grouping) or 2025 (May 2025 grouping).
    path
        Neighbour CSV (default: the bundled data/statistical_neighbours.csv).

    Returns
    -------
    DataFrame with the columns ``NEIGHBOUR_COLUMNS`` for that model, sorted by authority and
    rank (1 = most similar).
    """
    chosen = _model(model)
    path = Path(path) if path is not None else BUNDLED_NEIGHBOURS
    if not path.is_file():
        raise InputFileError(
            f"{path}: statistical-neighbour file not found; expected the CSV written by "
            "`bayes-lac data build` (columns " + ", ".join(NEIGHBOUR_COLUMNS) + ")"
        )
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in NEIGHBOUR_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(NEIGHBOUR_COLUMNS)}")
    table["model"] = table["model"].astype(int)
    table["rank"] = table["rank"].astype(int)
    table = table[table["model"] == chosen]
    return table.sort_values(["la_code", "rank"]).reset_index(drop=True)


def statistical_neighbours(la_code: str, model: int | str = 2021, path: Path | str | None = None) -> list[str]:
    """ONS codes of an authority's ten statistical neighbours, most similar first.

    Parameters
    ----------
    la_code
        ONS code of the authority, e.g. "E06000034" (Thurrock).
    model
        2021 (DfE April 2021 grouping, default) or 2025 (May 2025 grouping).
    path
        Neighbour CSV (default: the bundled file).

    Raises
    ------
    UnknownAuthorityError
        If the model is not 2021 or 2025, or the code has no list under that model.
    """
    chosen = _model(model)
    table = neighbour_table(chosen, path)
    code = str(la_code).strip()
    rows = table[table["la_code"] == code]
    if rows.empty:
        other = {m for m in MODELS if m != chosen}
        elsewhere = [m for m in other if code in set(neighbour_table(m, path)["la_code"])]
        hint = f"; it has a list under model {elsewhere[0]}" if elsewhere else ""
        close = sorted(c for c in set(table["la_code"]) if c[:6] == code[:6])[:5]
        suggestion = f" (codes of that kind: {', '.join(close)})" if close and not elsewhere else ""
        raise UnknownAuthorityError(
            f"{code!r} has no statistical neighbours in DfE's {chosen} model{hint}{suggestion}; "
            "expected the ONS code of an English upper-tier authority, e.g. E06000034 (Thurrock)"
        )
    return rows.sort_values("rank")["neighbour_code"].tolist()
