"""Model data: the arrays a model is built from, from a panel or back from a saved run."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import ENGLAND_CODE, MEASURES
from bayes_lac.data.neighbours import parse_neighbours
from bayes_lac.data.panel import is_authority
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError
from bayes_lac.model.path import observed_log_rate

#: Value used for a suppressed UASC count (DfE "x": 1 to 5 children): the midpoint.
UASC_SUPPRESSED_VALUE = 3.0

#: Fewest years with counts (and a population) for an authority to be modelled.
MIN_YEARS = 2
#: Authorities with fewer years of counts than this are named in a fit's notices.
SHORT_SERIES_YEARS = 5

#: English children's services authority code prefixes (E06, E08, E09, E10). The comparison
#: set accepts any authority code (`bayes_lac.data.panel.is_authority`: Welsh, Scottish and
#: Northern Irish codes and a user's own codes too); this is kept for code that asks about
#: English ONS codes only.
LA_PREFIXES: tuple[str, ...] = ("E06", "E08", "E09", "E10")


# ---------------------------------------------------------------------------------------
# Model data: the arrays the model is built from (from a panel, or back from a saved run)
# ---------------------------------------------------------------------------------------


@dataclass
class ModelData:
    """Everything the model graph needs, on the (measure, la, year) grid.

    Arrays are float (NaN = not available) with shapes (la, year) or (measure, la, year).
    A `ModelData` is made from a panel by `prepare_data` or from a saved run by `from_run`,
    so a run can rebuild its model without the panel file.
    """

    la: list[str]
    la_name: list[str]
    year: np.ndarray
    measures: tuple[str, ...]
    population_0_17: np.ndarray
    uasc: np.ndarray
    uasc_imputed: np.ndarray
    deprivation: np.ndarray
    deprivation_imputed: np.ndarray
    modelled_count: np.ndarray
    reported_count: np.ndarray
    reference: xr.Dataset
    reference_year: int
    deprivation_centre: float
    target_la: str
    comparison: str
    neighbours: list[str]
    until_year: int
    imputations: list[str] = field(default_factory=list)
    panel_sha256: str = ""
    data_vintage: str = "unknown"
    panel_name: str = ""

    # -- observed cells, flattened in (measure, la, year) order ---------------------------
    def observed_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices (measure, la, year) of the cells in the likelihood, in `obs` order."""
        return np.nonzero(~np.isnan(self.modelled_count))

    def previous_deviation_data(self) -> tuple[np.ndarray, np.ndarray]:
        """For the persistence term: each cell's previous-year observed log rate, and where it exists.

        Returns ``(previous, has_previous)``, both (measure, la, year): ``previous[m, i, t]`` is
        `bayes_lac.model.results.observed_log_rate` of cell (m, i, t - 1) (0 where that cell is not
        in the likelihood, e.g. the first year, a measure's first published year, a blank
        cell), and ``has_previous`` says where it is available.
        """
        current = observed_log_rate(self.modelled_count, self.population_0_17[None])
        previous = np.zeros_like(current)
        previous[:, :, 1:] = current[:, :, :-1]
        has = np.isfinite(previous)
        has[:, :, 0] = False
        return np.where(has, previous, 0.0), has

    def first_data_year(self) -> dict[str, int]:
        """First year with at least one modelled count, per measure."""
        out = {}
        for k, m in enumerate(self.measures):
            has = ~np.isnan(self.modelled_count[k]).all(axis=0)
            if not has.any():
                raise PanelError(f"no published {m} counts in the comparison set up to {self.until_year}")
            out[m] = int(self.year[np.argmax(has)])
        return out

    # -- groups of a run -----------------------------------------------------------------
    def constant_data(self) -> xr.Dataset:
        dims = ("la", "year")
        return xr.Dataset(
            {
                "population_0_17": (dims, self.population_0_17),
                "uasc": (dims, self.uasc),
                "deprivation": (dims, self.deprivation),
                "uasc_imputed": (dims, self.uasc_imputed.astype(bool)),
                "deprivation_imputed": (dims, self.deprivation_imputed.astype(bool)),
            },
            coords={"la": self.la, "year": self.year, "la_name": ("la", self.la_name)},
        )

    def observed_data(self) -> xr.Dataset:
        dims = ("measure", "la", "year")
        return xr.Dataset(
            {"modelled_count": (dims, self.modelled_count), "reported_count": (dims, self.reported_count)},
            coords={"measure": list(self.measures), "la": self.la, "year": self.year},
        )

    def attrs(self) -> dict[str, str]:
        return {
            "target_la": self.target_la,
            "comparison": self.comparison,
            "neighbours": json.dumps([c for c in self.neighbours if c in self.la and c != self.target_la]),
            "until_year": str(int(self.until_year)),
            "reference_year": str(int(self.reference_year)),
            "deprivation_centre": repr(float(self.deprivation_centre)),
            "measures": json.dumps(list(self.measures)),
            "panel_sha256": self.panel_sha256,
            "panel_name": self.panel_name,
            "data_vintage": self.data_vintage,
            "imputations": json.dumps(self.imputations),
        }

    @classmethod
    def from_groups(cls, results: xr.DataTree, measures: Sequence[str], **facts) -> ModelData:
        """The arrays of a run's ``constant_data``, ``observed_data`` and ``reference`` groups
        (`measures` in that order), with the facts (`facts`: the remaining fields) given."""
        const = results["constant_data"].to_dataset()
        obs = results["observed_data"].to_dataset().sel(measure=list(measures))
        facts.setdefault("la_name", [str(n) for n in const["la_name"].values])
        return cls(
            la=[str(c) for c in const["la"].values],
            year=const["year"].values.astype(int),
            measures=tuple(measures),
            population_0_17=const["population_0_17"].values.astype(float),
            uasc=const["uasc"].values.astype(float),
            uasc_imputed=const["uasc_imputed"].values.astype(bool),
            deprivation=const["deprivation"].values.astype(float),
            deprivation_imputed=const["deprivation_imputed"].values.astype(bool),
            modelled_count=obs["modelled_count"].values.astype(float),
            reported_count=obs["reported_count"].values.astype(float),
            reference=results["reference"].to_dataset() if "reference" in results.children else xr.Dataset(),
            **facts,
        )

    @classmethod
    def from_run(cls, results: xr.DataTree) -> ModelData:
        """The model data stored in a run (no panel file needed)."""
        from bayes_lac.model.results import run_info

        info = run_info(results)
        return cls.from_groups(
            results,
            info.measures,
            la_name=[info.la_name(c) for c in info.authorities],
            reference_year=info.reference_year,
            deprivation_centre=info.deprivation_centre,
            target_la=info.target_la,
            comparison=info.comparison,
            neighbours=list(info.neighbours),
            until_year=info.until_year,
            imputations=list(info.imputations),
            panel_sha256=info.panel_sha256,
            data_vintage=info.data_vintage or "unknown",
            panel_name=info.panel_name,
        )


def _panel_hash(panel: pd.DataFrame) -> str:
    from bayes_lac.data import panel as panel_module

    own = getattr(panel_module, "panel_sha256", None)
    if own is not None:
        return own(panel)
    # Fallback until bayes_lac.data.panel provides one: hash of the CSV text of the sorted panel.
    text = panel.sort_values(["la_code", "year"]).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _years_text(years) -> str:
    """'2010-2014, 2025' from a collection of years."""
    years = sorted({int(y) for y in years})
    if not years:
        return "none"
    runs, start, prev = [], years[0], years[0]
    for y in years[1:]:
        if y != prev + 1:
            runs.append((start, prev))
            start = y
        prev = y
    runs.append((start, prev))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _nearest_fill(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaNs in each row from the nearest non-NaN year of that row (later year on ties).

    Returns the filled array and the source column used for each cell (-1 where none).
    """
    out = values.copy()
    source = np.full(values.shape, -1)
    n_y = values.shape[1]
    for i in range(values.shape[0]):
        have = np.flatnonzero(~np.isnan(values[i]))
        if have.size == 0:
            continue
        for t in range(n_y):
            if np.isnan(values[i, t]):
                dist = np.abs(have - t)
                # ties resolve to the later year: the prefer-2011-for-2010 rule
                best = have[np.lexsort((-have, dist))[0]]
                out[i, t] = values[i, best]
                source[i, t] = best
            else:
                source[i, t] = t
    return out, source


def comparison_set(panel: pd.DataFrame, target_la: str, neighbours) -> tuple[list[str], str, list[str]]:
    """The authorities modelled with `target_la`, the comparison label and exclusion notices.

    Parameters
    ----------
    neighbours
        ``"2021"`` or ``"2025"`` (target plus its 10 DfE statistical neighbours; English ONS
        codes only), ``"all"`` (every authority row of the panel: codes for which
        `bayes_lac.data.panel.is_authority` holds, i.e. not England, regions or other ONS
        aggregates, and, where the panel has ``geographic_level``, rows marked "Local
        authority") or a list (or comma-separated string) of area codes; read by
        ``bayes_lac.data.neighbours.parse_neighbours``.
    """
    codes_in_panel = set(panel["la_code"].astype(str))
    if target_la not in codes_in_panel:
        raise UnknownAuthorityError(f"authority {target_la!r} is not in the panel")
    if not is_authority(target_la):
        raise UnknownAuthorityError(
            f"{target_la!r} is not a local authority code (England, regions and other ONS "
            "aggregates are never modelled units; expected e.g. E06000034, W06000015 or your own code)"
        )
    notices: list[str] = []
    choice = parse_neighbours(neighbours)
    if choice in ("2021", "2025"):
        from bayes_lac.data.neighbours import statistical_neighbours

        if not target_la.startswith(LA_PREFIXES):
            raise UnknownAuthorityError(
                f"{target_la!r} is not an English authority's ONS code, and DfE's statistical "
                f"neighbours ({neighbours}) list English authorities only; use --neighbours all "
                "or a comma-separated list of codes"
            )

        listed = [str(c) for c in statistical_neighbours(target_la, choice)]
        missing = [c for c in listed if c not in codes_in_panel]
        if missing:
            notices.append(
                f"Comparison set: {len(missing)} of the {choice} statistical neighbours of "
                f"{target_la} are not in the panel and were left out: {', '.join(missing)}."
            )
        codes = [target_la] + [c for c in listed if c in codes_in_panel and c != target_la]
        label = f"neighbours-{choice}"
    elif choice == "all":
        is_la = panel["la_code"].astype(str).map(is_authority).astype(bool)
        if "geographic_level" in panel.columns:
            is_la &= panel["geographic_level"].astype(str).str.lower().eq("local authority")
        others = sorted(set(panel.loc[is_la, "la_code"].astype(str)) - {target_la})
        codes = [target_la] + others
        label = "all"
    else:
        listed = list(choice)
        unknown = [c for c in listed if c not in codes_in_panel]
        if unknown:
            raise UnknownAuthorityError(
                f"comparison authorities not in the panel: {', '.join(unknown)} "
                "(expected ONS codes such as E06000034, or 2021, 2025, all)"
            )
        not_la = [c for c in listed if not is_authority(c)]
        if not_la:
            raise UnknownAuthorityError(
                f"not local authority codes: {', '.join(not_la)} (England, regions and other ONS "
                "aggregates are never modelled units; expected authority codes such as E06000034)"
            )
        codes = [target_la] + [c for c in dict.fromkeys(listed) if c != target_la]
        label = "list"
    if len(codes) < 3:
        raise PanelError(
            f"the comparison set of {target_la} has {len(codes)} authorities in the panel; the "
            "model needs at least 3 to separate an authority from the common path"
        )
    return codes, label, notices


def _grid(rows: pd.DataFrame, column: str, codes: list[str], years: np.ndarray) -> np.ndarray:
    wide = rows.pivot(index="la_code", columns="year", values=column)
    wide = wide.reindex(index=codes, columns=years)
    return wide.to_numpy(dtype=float)


def _numeric(panel: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(panel[column], errors="coerce")
    bad = panel[column].notna() & values.isna()
    if bad.any():
        row = panel.loc[bad].iloc[0]
        raise PanelError(
            f"{source}: column {column!r} has a non-numeric value {row[column]!r} for "
            f"{row['la_code']} in {row['year']}; expected a number or blank"
        )
    return values


def _is_suppressed_note(note) -> bool:
    from bayes_lac.data.panel import SUPPRESSION_MARKERS

    if note is None or (isinstance(note, float) and np.isnan(note)):
        return False
    text = str(note).strip().lower()
    if not text:
        return False
    first = text.split()[0].rstrip(":;,.")
    return first in SUPPRESSION_MARKERS or "1-5" in text or "1 to 5" in text


def prepare_data(
    panel: pd.DataFrame,
    target_la: str,
    neighbours="2021",
    until: int | None = None,
    measures: Sequence[str] = MEASURES,
    source: str = "panel",
) -> ModelData:
    """Arrange a panel for the model, with every imputation written down.

    Parameters
    ----------
    panel
        A panel in the schema of ``bayes_lac.data.panel`` (one row per area and year).
    target_la, neighbours
        The target authority and its comparison set (see `comparison_set`).
    until
        Use only years up to and including this one.
    measures
        Measures to model (default all three).
    source
        Name of the panel for messages (e.g. its file path).

    Returns
    -------
    ModelData. Its ``imputations`` list holds one sentence per imputation or exclusion.
    """
    from bayes_lac.data.panel import REQUIRED_COLUMNS

    measures = tuple(m for m in MEASURES if m in set(measures))
    if not measures:
        raise PanelError(f"no known measures given; expected some of {', '.join(MEASURES)}")
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in panel.columns]
    if missing_cols:
        raise PanelError(f"{source}: missing column(s) {', '.join(missing_cols)}")
    panel = panel.copy()
    panel["la_code"] = panel["la_code"].astype(str)
    panel["year"] = _numeric(panel, "year", source).astype(int)
    for col in ("population_0_17", "looked_after", "children_in_need", "child_protection", "uasc", "deprivation"):
        panel[col] = _numeric(panel, col, source)
    if until is not None:
        panel = panel[panel["year"] <= int(until)]
        if panel.empty:
            raise PanelError(f"{source}: no rows up to {until}")

    codes, label, notices = comparison_set(panel, target_la, neighbours)
    rows = panel[panel["la_code"].isin(codes)]
    dupes = rows.duplicated(["la_code", "year"])
    if dupes.any():
        row = rows.loc[dupes].iloc[0]
        raise PanelError(f"{source}: more than one row for {row['la_code']} in {row['year']}")
    years = np.arange(rows["year"].min(), rows["year"].max() + 1)
    names = rows.drop_duplicates("la_code").set_index("la_code")["la_name"].reindex(codes).astype(str).tolist()

    def name(i):
        return f"{codes[i]} ({names[i]})"

    # -- counts ------------------------------------------------------------------------
    reported = np.stack([_grid(rows, m, codes, years) for m in measures])
    for k, m in enumerate(measures):
        v = reported[k]
        bad = ~np.isnan(v) & ((v < 0) | (np.abs(v - np.round(v)) > 1e-9))
        if bad.any():
            i, t = np.argwhere(bad)[0]
            raise PanelError(
                f"{source}: {m} for {name(i)} in {years[t]} is {v[i, t]}; expected a "
                "whole number of children, 0 or more"
            )

    # -- population --------------------------------------------------------------------
    population = _grid(rows, "population_0_17", codes, years)
    bad = ~np.isnan(population) & (population <= 0)
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise PanelError(
            f"{source}: population_0_17 for {name(i)} in {years[t]} is {population[i, t]:g}; "
            "expected the number of children aged 0-17, above 0"
        )
    no_pop = np.isnan(population)
    # an authority with counts in fewer than MIN_YEARS years (with a population) cannot place
    # its own level and trend; it is left out of the comparison set, openly
    years_used = ((~np.isnan(reported)) & ~no_pop[None]).any(axis=0).sum(axis=1)
    if years_used[0] < MIN_YEARS:
        raise PanelError(
            f"{source}: {name(0)} has counts with a population in {int(years_used[0])} year(s); "
            f"the model needs at least {MIN_YEARS}"
        )
    few = years_used < MIN_YEARS
    if few.any():
        notices.append(
            f"Comparison set: {', '.join(name(i) for i in np.flatnonzero(few))} "
            f"{'has' if few.sum() == 1 else 'have'} counts with a population in fewer than "
            f"{MIN_YEARS} years and {'is' if few.sum() == 1 else 'are'} left out."
        )
        keep = ~few
        codes = [c for c, k in zip(codes, keep) if k]
        names = [n for n, k in zip(names, keep) if k]
        rows = rows[rows["la_code"].isin(codes)]
        reported, population, no_pop = reported[:, keep], population[keep], no_pop[keep]
        if len(codes) < 3:
            raise PanelError(
                f"{source}: fewer than 3 authorities with enough data in the comparison set of {target_la}"
            )
    # how many years each authority has, said every time: a short series leans on the
    # comparison set for its level and trend, and windows before its first year are refused
    has_data = ((~np.isnan(reported)) & ~no_pop[None]).any(axis=0)
    years_each = has_data.sum(axis=1)
    by_count = Counter(int(n) for n in years_each)
    notices.append(
        "Years with counts (and a population) per authority: "
        + ", ".join(
            f"{n} years: {k} authorit{'y' if k == 1 else 'ies'}" for n, k in sorted(by_count.items(), reverse=True)
        )
        + "."
    )
    short = np.flatnonzero(years_each < SHORT_SERIES_YEARS)
    if short.size:
        listed = "; ".join(
            f"{name(i)}: {int(years_each[i])} year{'s' if years_each[i] != 1 else ''} "
            f"({_years_text(years[has_data[i]])})"
            for i in short
        )
        notices.append(
            f"Short series: {short.size} authorit{'y has' if short.size == 1 else 'ies have'} fewer "
            f"than {SHORT_SERIES_YEARS} years with counts ({listed}); their level and trend "
            "lean on the comparison set, and a decomposition of years outside their data is refused."
        )
    if no_pop.all(axis=1).any():
        i = int(np.flatnonzero(no_pop.all(axis=1))[0])
        raise PanelError(
            f"{source}: no population_0_17 at all for {name(i)}; a rate per 10,000 children "
            "needs the number of children aged 0-17"
        )
    # a count without its population has no rate: it leaves the likelihood, openly
    lost = no_pop[None, :, :] & ~np.isnan(reported)
    if lost.any():
        cells = lost.any(axis=0)
        notices.append(
            f"Population aged 0-17 not published for {int(cells.sum())} authority-years with "
            f"counts ({', '.join(name(i) for i in np.flatnonzero(cells.any(axis=1)))}; years "
            f"{_years_text(years[np.nonzero(cells)[1]])}): those {int(lost.sum())} counts are "
            "absent from the likelihood."
        )
    if no_pop.any():
        population, _ = _nearest_fill(population)
        notices.append(
            f"Population aged 0-17: {int(no_pop.sum())} authority-years without a published "
            "population (including years before an authority existed or after it ended) carry "
            "the nearest year of the same authority, only to complete the grid; no count of "
            "those years is in the likelihood."
        )
    flag_col = "population_0_17_flag"
    if flag_col in rows.columns:
        flags = rows.pivot(index="la_code", columns="year", values=flag_col).reindex(index=codes, columns=years)
        text = flags.to_numpy().astype(object)
        # "ons_mye" is the plain published estimate; "missing: ..." is covered above
        notable = (
            np.vectorize(
                lambda f: isinstance(f, str) and f.strip() not in ("", "ons_mye") and not f.startswith("missing"),
                otypes=[bool],
            )(text)
            & ~no_pop
        )
        if notable.any():
            kinds = sorted(set(text[notable]))
            notices.append(
                f"Population aged 0-17: {int(notable.sum())} authority-years are flagged by the "
                f"panel ({'; '.join(kinds)}; years {_years_text(years[np.nonzero(notable)[1]])}) "
                "and are used as given."
            )

    # -- UASC --------------------------------------------------------------------------
    uasc_raw = _grid(rows, "uasc", codes, years)
    note_col = "uasc_note"
    suppressed = np.zeros(uasc_raw.shape, bool)
    if note_col in rows.columns:
        notes = rows.pivot(index="la_code", columns="year", values=note_col).reindex(index=codes, columns=years)
        suppressed = np.isnan(uasc_raw) & np.vectorize(_is_suppressed_note, otypes=[bool])(notes.to_numpy())
    uasc = uasc_raw.copy()
    uasc[suppressed] = UASC_SUPPRESSED_VALUE
    if suppressed.any():
        notices.append(
            f"UASC: {int(suppressed.sum())} suppressed counts (published as 'x', meaning 1 to 5 "
            f"children) in {int(suppressed.any(axis=1).sum())} authorities set to "
            f"{UASC_SUPPRESSED_VALUE:g}, the midpoint of 1-5."
        )
    gap = np.isnan(uasc)
    uasc, src = _nearest_fill(uasc)
    filled = gap & (src >= 0)
    if filled.any():
        gap_years = years[np.nonzero(filled)[1]]
        notices.append(
            f"UASC: {int(filled.sum())} authority-years not published "
            f"({_years_text(gap_years)}) take the same authority's nearest published year "
            "(the later one on ties, e.g. 2010 <- 2011)."
        )
    none = np.isnan(uasc).all(axis=1)
    if none.any():
        uasc[none] = 0.0
        notices.append(
            "UASC: no UASC figures at all for "
            + ", ".join(name(i) for i in np.flatnonzero(none))
            + "; set to 0, so their looked-after count is modelled in full."
        )
    uasc_imputed = np.isnan(uasc_raw)
    modelled = np.where(no_pop[None, :, :], np.nan, reported)
    if "looked_after" in measures:
        k = measures.index("looked_after")
        lac = reported[k]
        over = ~np.isnan(lac) & (uasc > lac)
        if (over & ~uasc_imputed).any():
            i, t = np.argwhere(over & ~uasc_imputed)[0]
            raise PanelError(
                f"{source}: uasc ({uasc[i, t]:g}) exceeds looked_after ({lac[i, t]:g}) for "
                f"{name(i)} in {years[t]}; UASC are a subset of children looked after"
            )
        if over.any():
            uasc[over] = lac[over]
            notices.append(
                f"UASC: {int(over.sum())} imputed UASC values exceeded the looked-after count and were lowered to it."
            )
        modelled[k] = np.where(no_pop, np.nan, lac - uasc)

    # -- deprivation -------------------------------------------------------------------
    dep_raw = _grid(rows, "deprivation", codes, years)
    dep, _ = _nearest_fill(dep_raw)
    dep_imputed = np.isnan(dep_raw)
    carried = dep_imputed & ~np.isnan(dep)
    if carried.any():
        observed_years = years[~np.isnan(dep_raw).all(axis=0)]
        notices.append(
            f"Deprivation: published for {_years_text(observed_years)}; {int(carried.sum())} "
            f"authority-years ({_years_text(years[np.nonzero(carried)[1]])}) carry the "
            "nearest published year of the same authority."
        )
    none = np.isnan(dep).all(axis=1)
    centre = float(np.nanmean(dep)) if (~none).any() else 0.0
    if none.any():
        dep[none] = centre
        notices.append(
            "Deprivation: no values at all for "
            + ", ".join(name(i) for i in np.flatnonzero(none))
            + f"; set to the centre ({centre:.2f}) so the deprivation term is zero for them."
        )
    if np.isnan(dep_raw).all():
        notices.append("Deprivation: no values in the comparison set; the deprivation term is zero.")

    # -- cells absent from the likelihood --------------------------------------------------
    for k, m in enumerate(measures):
        absent = np.isnan(reported[k])
        if absent.any():
            notices.append(
                f"{m}: {int(absent.sum())} of {absent.size} authority-years not published "
                f"({_years_text(years[np.nonzero(absent)[1]])}); absent from the likelihood."
            )

    # -- England, for reference ---------------------------------------------------------
    eng = panel[panel["la_code"] == ENGLAND_CODE].drop_duplicates("year").set_index("year")
    eng = eng.reindex(years)
    reference = xr.Dataset(
        {
            "count": (("measure", "year"), np.stack([eng[m].to_numpy(float) for m in measures])),
            "population_0_17": (("year",), eng["population_0_17"].to_numpy(float)),
            "uasc": (("year",), eng["uasc"].to_numpy(float)),
        },
        coords={"measure": list(measures), "year": years},
    )
    if eng["population_0_17"].isna().all():
        notices.append(f"England ({ENGLAND_CODE}) is not in the panel; reference figures are blank.")

    # The panel file's name, not its path: the run is shared, the analyst's folders are not;
    # the panel itself is identified by its SHA-256 (panel_sha256).
    vintage = panel.attrs.get("data_vintage") or (
        f"{Path(str(panel.attrs.get('source', source))).name}; latest year {int(panel['year'].max())}"
    )
    if label == "all":
        # the run's neighbours in the national model: the target's DfE statistical neighbours
        neighbours = _statistical_neighbours_in(target_la, codes, notices)
    else:
        neighbours = [c for c in codes if c != target_la]
    return ModelData(
        la=codes,
        la_name=names,
        year=years,
        measures=measures,
        population_0_17=population,
        uasc=uasc,
        uasc_imputed=uasc_imputed,
        deprivation=dep,
        deprivation_imputed=dep_imputed,
        modelled_count=modelled,
        reported_count=reported,
        reference=reference,
        reference_year=int(years[-1]),
        deprivation_centre=centre,
        target_la=target_la,
        comparison=label,
        neighbours=neighbours,
        until_year=int(until) if until is not None else int(years[-1]),
        imputations=notices,
        panel_sha256=_panel_hash(panel),
        data_vintage=vintage,
        panel_name=Path(str(panel.attrs.get("source", source))).name,
    )


def _statistical_neighbours_in(target_la: str, codes: Sequence[str], notices: list[str]) -> list[str]:
    """The target's DfE statistical neighbours (2021 model) among `codes`; a notice if it has none."""
    from bayes_lac.data.neighbours import statistical_neighbours

    try:
        listed = statistical_neighbours(target_la, 2021)
    except BayesLacError as err:
        notices.append(
            f"Neighbours: {err}. The national run has no neighbours of {target_la}, so comparisons "
            "with neighbours are left out."
        )
        return []
    return [c for c in listed if c in set(codes) and c != target_la]
