"""The hierarchical model of looked-after children, children in need and child protection.

One authority is fitted jointly with its comparison set (its DfE statistical neighbours, a
list of authorities, or every authority in England); the model, its variables and the run it
returns are specified in ``bayes_lac.results``. In short, for measure m, authority i, year t::

    modelled_count ~ NegBin(mean, alpha = dispersion[m])
    log mean       = log(population_0_17 / 10,000) + log_rate + persistence[m] * deviation[t - 1]
    log_rate       = intercept[m] + la_intercept[i, m] + la_trend[i, m] * (year - reference_year)
                     + year_effect[m, t] + deprivation_effect[m] * (deprivation - deprivation_centre)

``log_rate`` is the authority's path; ``deviation`` is how far last year's published count
sat from it. Authority levels and trends sum to zero over the comparison set and are
correlated across measures (LKJ prior); the common path ``year_effect`` is a random walk,
held at zero up to each measure's first year with data (children in need and child
protection are published from 2013).

Parameterisation: the model is the same whichever way the sampler sees it; `build_model`
documents the changes of variables (levels at the middle of each authority's data, the
deprivation parts folded into the effects) and `choose_parameterisation` which blocks are
sampled as themselves (centred) or standardised (non-centred). With the persistence term
each year's count informs the path only through its change from last year's, so the
authority effects are weakly pinned by their own data and the default is non-centred
(measured in ``bench/bench_fit.py``).

Usage::

    from bayes_lac.model import LACModel
    run = LACModel("E06000034", neighbours="2021").fit(panel)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.distributions.transforms import ZeroSumTransform

from bayes_lac import __version__
from bayes_lac.config import ENGLAND_CODE, MEASURES, RATE_PER
from bayes_lac.errors import PanelError, UnknownAuthorityError
from bayes_lac.priors import load_priors, prior_set_name, priors_json

#: Default sampler settings: they give a converged fit of the bundled data (see bench/).
#: How the sampler sees the parameters by default (see `choose_parameterisation`).
DEFAULT_PARAMETERISATION = "non_centred"
DEFAULT_DRAWS = 1500
DEFAULT_TUNE = 1500
DEFAULT_CHAINS = 4
DEFAULT_SEED = 20260331
DEFAULT_SAMPLER = "nutpie"
DEFAULT_TARGET_ACCEPT = 0.95
SAMPLERS: tuple[str, ...] = ("pymc", "nutpie", "numpyro")
PARAMETERISATIONS: tuple[str, ...] = ("auto", "centred", "non_centred", "baseline")

#: Value used for a suppressed UASC count (DfE "x": 1 to 5 children): the midpoint.
UASC_SUPPRESSED_VALUE = 3.0

#: Fewest years with counts (and a population) for an authority to be modelled.
MIN_YEARS = 2

#: Local-authority code prefixes modelled in the national ("all") comparison set.
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

    # -- observed cells, flattened in (measure, la, year) order ---------------------------
    def observed_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices (measure, la, year) of the cells in the likelihood, in `obs` order."""
        return np.nonzero(~np.isnan(self.modelled_count))

    def previous_deviation_data(self) -> tuple[np.ndarray, np.ndarray]:
        """For the persistence term: each cell's previous-year observed log rate, and where it exists.

        Returns ``(previous, has_previous)``, both (measure, la, year): ``previous[m, i, t]`` is
        `bayes_lac.results.observed_log_rate` of cell (m, i, t - 1) (0 where that cell is not
        in the likelihood, e.g. the first year, a measure's first published year, a blank
        cell), and ``has_previous`` says where it is available.
        """
        from bayes_lac.results import observed_log_rate

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
            "neighbours": json.dumps([c for c in self.la if c != self.target_la]),
            "until_year": str(int(self.until_year)),
            "reference_year": str(int(self.reference_year)),
            "deprivation_centre": repr(float(self.deprivation_centre)),
            "measures": json.dumps(list(self.measures)),
            "panel_sha256": self.panel_sha256,
            "data_vintage": self.data_vintage,
            "imputations": json.dumps(self.imputations),
        }

    @classmethod
    def from_run(cls, results: xr.DataTree) -> "ModelData":
        """The model data stored in a run (no panel file needed)."""
        const = results["constant_data"].to_dataset()
        obs = results["observed_data"].to_dataset()
        attrs = results.attrs
        measures = tuple(json.loads(attrs["measures"]))
        obs = obs.sel(measure=list(measures))
        return cls(
            la=[str(c) for c in const["la"].values],
            la_name=[str(n) for n in const["la_name"].values],
            year=const["year"].values.astype(int),
            measures=measures,
            population_0_17=const["population_0_17"].values.astype(float),
            uasc=const["uasc"].values.astype(float),
            uasc_imputed=const["uasc_imputed"].values.astype(bool),
            deprivation=const["deprivation"].values.astype(float),
            deprivation_imputed=const["deprivation_imputed"].values.astype(bool),
            modelled_count=obs["modelled_count"].values.astype(float),
            reported_count=obs["reported_count"].values.astype(float),
            reference=results["reference"].to_dataset() if "reference" in results.children else xr.Dataset(),
            reference_year=int(attrs["reference_year"]),
            deprivation_centre=float(attrs["deprivation_centre"]),
            target_la=attrs["target_la"],
            comparison=attrs["comparison"],
            neighbours=json.loads(attrs["neighbours"]),
            until_year=int(attrs["until_year"]),
            imputations=json.loads(attrs.get("imputations", "[]")),
            panel_sha256=attrs.get("panel_sha256", ""),
            data_vintage=attrs.get("data_vintage", "unknown"),
        )


def _panel_hash(panel: pd.DataFrame) -> str:
    from bayes_lac import panel as panel_module

    own = getattr(panel_module, "panel_sha256", None)
    if own is not None:
        return own(panel)
    # Fallback until bayes_lac.panel provides one: hash of the CSV text of the sorted panel.
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


def comparison_set(
    panel: pd.DataFrame, target_la: str, neighbours
) -> tuple[list[str], str, list[str]]:
    """The authorities modelled with `target_la`, the comparison label and exclusion notices.

    Parameters
    ----------
    neighbours
        ``"2021"`` or ``"2025"`` (target plus its 10 DfE statistical neighbours), ``"all"``
        (every local authority in the panel: E06/E08/E09/E10 codes) or a list (or
        comma-separated string) of ONS codes.
    """
    codes_in_panel = set(panel["la_code"].astype(str))
    if target_la not in codes_in_panel:
        raise UnknownAuthorityError(f"authority {target_la!r} is not in the panel")
    if target_la == ENGLAND_CODE or not target_la.startswith(LA_PREFIXES):
        raise UnknownAuthorityError(
            f"{target_la!r} is not a local authority code (expected E06, E08, E09 or E10)"
        )
    notices: list[str] = []
    if isinstance(neighbours, str) and neighbours in ("2021", "2025"):
        from bayes_lac.neighbours import statistical_neighbours

        listed = [str(c) for c in statistical_neighbours(target_la, neighbours)]
        missing = [c for c in listed if c not in codes_in_panel]
        if missing:
            notices.append(
                f"Comparison set: {len(missing)} of the {neighbours} statistical neighbours of "
                f"{target_la} are not in the panel and were left out: {', '.join(missing)}."
            )
        codes = [target_la] + [c for c in listed if c in codes_in_panel and c != target_la]
        label = f"neighbours-{neighbours}"
    elif isinstance(neighbours, str) and neighbours == "all":
        is_la = panel["la_code"].astype(str).str.startswith(LA_PREFIXES)
        if "geographic_level" in panel.columns:
            is_la &= panel["geographic_level"].astype(str).str.lower().eq("local authority")
        others = sorted(set(panel.loc[is_la, "la_code"].astype(str)) - {target_la})
        codes = [target_la] + others
        label = "all"
    else:
        listed = neighbours.split(",") if isinstance(neighbours, str) else list(neighbours)
        listed = [str(c).strip() for c in listed if str(c).strip()]
        unknown = [c for c in listed if c not in codes_in_panel]
        if unknown:
            raise UnknownAuthorityError(
                f"comparison authorities not in the panel: {', '.join(unknown)} "
                "(expected ONS codes such as E06000034, or 2021, 2025, all)"
            )
        not_la = [c for c in listed if c == ENGLAND_CODE or not c.startswith(LA_PREFIXES)]
        if not_la:
            raise UnknownAuthorityError(
                f"not local authority codes: {', '.join(not_la)} (England and regions are never "
                "modelled units; expected E06, E08, E09 or E10 codes)"
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
    from bayes_lac.panel import SUPPRESSION_MARKERS

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
        A panel in the schema of ``bayes_lac.panel`` (one row per area and year).
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
    from bayes_lac.panel import REQUIRED_COLUMNS

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
            raise PanelError(f"{source}: fewer than 3 authorities with enough data in the comparison set of {target_la}")
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
        notable = np.vectorize(
            lambda f: isinstance(f, str) and f.strip() not in ("", "ons_mye") and not f.startswith("missing"),
            otypes=[bool],
        )(text) & ~no_pop
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
                f"UASC: {int(over.sum())} imputed UASC values exceeded the looked-after count "
                "and were lowered to it."
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

    vintage = panel.attrs.get("data_vintage") or (
        f"{panel.attrs.get('source', source)}; latest year {int(panel['year'].max())}"
    )
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
        neighbours=codes[1:],
        until_year=int(until) if until is not None else int(years[-1]),
        imputations=notices,
        panel_sha256=_panel_hash(panel),
        data_vintage=vintage,
    )


# ---------------------------------------------------------------------------------------
# The model graph
# ---------------------------------------------------------------------------------------


def _zero_sum_effect(name: str, chol, mean, centred: np.ndarray, n_measures: int, model: pm.Model):
    """Authority effects (la, measure): `mean` plus zero-sum multivariate normal deviations.

    The distribution: draw each authority's row from MvNormal(0, Sigma) (Sigma = chol @
    chol.T, across measures), subtract the mean row, add `mean`. So the effects less `mean`
    sum to zero over authorities exactly.

    How it is sampled: the zero-sum deviations are an orthonormal map Q (pymc's zero-sum
    basis) of n_la - 1 independent rows ``Y[i] ~ MvNormal(0, Sigma)``; row i stands for
    authority i (the last authority has no own row). Each row is built measure by measure
    from its Cholesky conditionals, ``Y[i, k] | Y[i, :k] ~ Normal(sum_j<k chol[k, j] z[i, j],
    chol[k, k])``, and each element is sampled either as itself plus its share of `mean`
    (centred: where the authority's own data pin it, ``centred[i, k]``; the data pin the
    effect *with* its mean, e.g. an authority's level including its deprivation part) or as
    a standard normal z (non-centred: where the prior dominates, e.g. a trend with two years
    of data, or a measure the authority has no data for). Every choice gives the same
    distribution; it only changes the geometry the sampler sees (centred effects with weak
    data, and non-centred ones with strong data, form funnels with Sigma).

    Sampled variables: ``{name}`` (centred elements, dim ``{name}_centred``) and ``{name}_z``
    (the others, dim ``{name}_noncentred``). Returns the (la, measure) tensor of effects.
    """
    centred = np.asarray(centred, bool)
    n_la = centred.shape[0]
    rows = centred[:-1]  # rows of Y: authorities 0 .. n_la - 2
    n_rows = n_la - 1
    # element order: measure by measure (column-major), the order the Cholesky recursion uses
    cmask = rows.T.ravel()  # (m * n_rows,)
    c_pos, nc_pos = np.flatnonzero(cmask), np.flatnonzero(~cmask)
    n_c, n_nc = len(c_pos), len(nc_pos)
    labels = np.array(model.coords["la"], dtype=object)
    measures = list(model.coords["measure"])
    cell_labels = np.array([f"{labels[i]} {measures[k]}" for k in range(n_measures) for i in range(n_rows)], dtype=object)
    basis = ZeroSumTransform([0])
    mean_avg = mean.mean(axis=0, keepdims=True)
    # `mean` in the coordinates of Y (its zero-sum part): centred elements are sampled as
    # Y + mean_y, which is what the data see
    mean_y = basis.forward(mean - mean_avg).T.ravel()  # column-major like the elements

    def columns(chol, yc_full, z_full, mean_y):
        """Y (column-major vector) and the conditional means of all elements.

        Every symbolic input is an argument: a CustomDist's logp may not reach variables of
        the enclosing model."""
        ycols, zcols, cond = [], [], []
        for k in range(n_measures):
            sl = slice(k * n_rows, (k + 1) * n_rows)
            cm = pt.zeros(n_rows)
            for j in range(k):
                cm = cm + chol[k, j] * zcols[j]
            yk = pt.where(cmask[sl], yc_full[sl] - mean_y[sl], cm + chol[k, k] * z_full[sl])
            cond.append(cm + mean_y[sl])
            ycols.append(yk)
            zcols.append((yk - cm) / chol[k, k])
        return pt.concatenate(ycols), pt.concatenate(cond)

    def full(values, positions):
        return pt.set_subtensor(pt.zeros(n_measures * n_rows)[positions], values)

    sd_index = np.repeat(np.arange(n_measures), n_rows)
    if n_nc:
        model.add_coord(f"{name}_noncentred", cell_labels[nc_pos].tolist())
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=f"{name}_noncentred")
        z_full = full(z, nc_pos)
    else:
        z = pt.zeros(0)
        z_full = pt.zeros(n_measures * n_rows)
    if n_c:
        model.add_coord(f"{name}_centred", cell_labels[c_pos].tolist())

        def dist(chol, z, mean_y, size):
            eps = pm.Normal.dist(0.0, 1.0, shape=(n_measures * n_rows,))
            zf = full(z, nc_pos)
            # draw column by column: a centred element is its conditional mean plus noise
            ycols, zcols = [], []
            for k in range(n_measures):
                sl = slice(k * n_rows, (k + 1) * n_rows)
                cm = pt.zeros(n_rows)
                for j in range(k):
                    cm = cm + chol[k, j] * zcols[j]
                yk = cm + chol[k, k] * pt.where(cmask[sl], eps[sl], zf[sl])
                ycols.append(yk + mean_y[sl])
                zcols.append((yk - cm) / chol[k, k])
            return pt.concatenate(ycols)[c_pos]

        def logp(value, chol, z, mean_y):
            _, cond = columns(chol, full(value, c_pos), full(z, nc_pos), mean_y)
            sd = pt.diag(chol)[sd_index]
            return pt.sum(pm.logp(pm.Normal.dist(cond[c_pos], sd[c_pos]), value))

        yc = pm.CustomDist(
            name,
            chol,
            z,
            mean_y,
            dist=dist,
            logp=logp,
            support_point=lambda rv, size, chol, z, mean_y: mean_y[c_pos],
            signature="(m,m),(q),(e)->(c)",
            dims=f"{name}_centred",
        )
        yc_full = full(yc, c_pos)
    else:
        yc_full = pt.zeros(n_measures * n_rows)
    y, _ = columns(chol, yc_full, z_full, mean_y)
    return mean + basis.backward(y.reshape((n_measures, n_rows)).T)


def _negbin_log_mean_dist(log_mu, alpha, size):
    return pm.NegativeBinomial.dist(mu=pt.exp(log_mu), alpha=alpha, size=size)


def _negbin_log_mean_logp(value, log_mu, alpha):
    """Negative-binomial log-probability in terms of the log mean.

    The same density as ``pm.NegativeBinomial(mu, alpha)`` with fewer special functions per
    cell (pymc's form evaluates a log-beta, i.e. three log-gammas, and their digammas in the
    gradient): the likelihood is most of the cost of a gradient evaluation.
    """
    return (
        pt.gammaln(value + alpha)
        - pt.gammaln(alpha)
        - pt.gammaln(value + 1.0)
        + value * log_mu
        + alpha * pt.log(alpha)
        - (value + alpha) * pt.log(pt.exp(log_mu) + alpha)
    )


def _random_walk_levels(name: str, loc, scale, is_first: np.ndarray, dims):
    """Random walks on levels, several laid end to end in one vector.

    Element k starts a walk where ``is_first[k]``: ``value[k] ~ Normal(loc[k], scale[k])``;
    otherwise ``value[k] ~ Normal(value[k - 1] + loc[k], scale[k])`` (loc is the mean step).
    """
    is_first = np.asarray(is_first, bool)
    starts = np.flatnonzero(is_first)
    # index of the start of each element's walk
    start_of = starts[np.searchsorted(starts, np.arange(len(is_first)), side="right") - 1]
    follows = (~is_first).astype(float)

    def segmented_cumsum(increments):
        total = pt.cumsum(increments)
        return total - total[start_of] + increments[start_of]

    def dist(loc, scale, size):
        eps = pm.Normal.dist(0.0, 1.0, shape=(len(is_first),))
        return segmented_cumsum(loc + scale * eps)

    def logp(value, loc, scale):
        previous = pt.concatenate([pt.zeros(1), value[:-1]]) * follows
        return pt.sum(pm.logp(pm.Normal.dist(previous + loc, scale), value))

    return pm.CustomDist(
        name,
        loc,
        scale,
        dist=dist,
        logp=logp,
        support_point=lambda rv, size, loc, scale: segmented_cumsum(loc),
        signature="(k),(k)->(k)",
        dims=dims,
    )


def _by_measure(value, measures) -> np.ndarray:
    return np.array([value[m] for m in measures], dtype=float)


def _covariance(name: str, prior: dict, measures) -> pt.TensorVariable:
    """Cholesky factor of the covariance across measures of an authority effect.

    Stores ``{name}_sd`` (measure) and, for several measures, ``{name}_corr``.
    """
    n_m = len(measures)
    sd_scale = _by_measure(prior["sd_scale"], measures)
    if n_m == 1:
        sds = pm.HalfNormal(f"{name}_sd", sigma=sd_scale, dims="measure")
        return pt.diag(sds)
    chol, corr, sds = pm.LKJCholeskyCov(
        f"{name}_chol",
        n=n_m,
        eta=prior["lkj_eta"],
        sd_dist=pm.HalfNormal.dist(sigma=sd_scale, shape=n_m),
        compute_corr=True,
        store_in_trace=False,
    )
    pm.Deterministic(f"{name}_sd", sds, dims="measure")
    pm.Deterministic(f"{name}_corr", corr, dims=("measure", "measure_bis"))
    return chol


def deprivation_parts(data: ModelData) -> dict[str, np.ndarray]:
    """Split centred deprivation into authority, year, authority-trend and residual parts.

    ``deprivation - centre = la[i] + year[t] + la_slope[i] * (year - mean year) + rest[i, t]``
    with ``la`` and ``la_slope`` summing to zero over authorities and ``year`` over years.
    The model samples the combinations the data identify (e.g. an authority's level
    including its deprivation part) instead of fighting the ridge between the deprivation
    effect and the authority and year effects; this is an exact change of variables.
    """
    dep = data.deprivation - data.deprivation_centre
    la = dep.mean(axis=1)
    year = dep.mean(axis=0)
    rest = dep - la[:, None] - year[None, :]
    tc = (data.year - data.year.mean()).astype(float)
    slope = (rest * tc[None, :]).sum(axis=1) / np.sum(tc**2) if np.sum(tc**2) > 0 else np.zeros(len(la))
    rest = rest - slope[:, None] * tc[None, :]
    return {"la": la, "year": year, "la_slope": slope, "rest": rest, "year_centre": float(data.year.mean())}


def informativeness(data: ModelData) -> dict:
    """How well each block of parameters is pinned by its own data (quick, before fitting).

    The sampler mixes best when a parameter the data pin is sampled as itself (centred) and
    one the data barely inform is sampled through a standardised variable (non-centred).
    On the log-rate scale, with each cell weighted by its information (count / (1 + count *
    cv^2), cv the residual coefficient of variation estimated from the data), this compares

    * per authority and measure: the standard error of the authority's own level and own
      trend (weighted least squares on its log rates) with the spread of levels and trends
      between authorities (method-of-moments estimates from the same fits);
    * per measure: the standard error of one year's common level (all authorities) with the
      year-to-year movement of the common level (its differences, noise removed).

    Returns ``level_ratio``, ``trend_ratio`` (la, measure) and ``year_ratio`` (measure,):
    below 1 the data dominate, above 1 the prior does; and the estimates used.
    """
    n_m, n_la, n_y = data.modelled_count.shape
    years = data.year.astype(float)
    level_ratio = np.full((n_la, n_m), np.inf)
    trend_ratio = np.full((n_la, n_m), np.inf)
    year_ratio = np.full(n_m, np.inf)
    details: dict = {"cv": [], "residual_autocorrelation": [], "level_sd": [], "trend_sd": [], "year_sd": [], "year_se": []}
    for k in range(n_m):
        y = data.modelled_count[k]
        have = ~np.isnan(y)
        rate = np.where(have, np.log((np.nan_to_num(y) + 0.5) / data.population_0_17), 0.0)
        # residual cv: noise of log rates around each authority's straight line, less Poisson
        resid, dof, lag_num, lag_den = 0.0, 0, 0.0, 0.0
        for i in range(n_la):
            h = have[i]
            if h.sum() >= 3:
                coef = np.polyfit(years[h], rate[i, h], 1)
                e = rate[i, h] - np.polyval(coef, years[h])
                resid += np.sum(e**2 - 1.0 / (y[i, h] + 0.5))
                dof += int(h.sum()) - 2
                lag_num += float(np.sum(e[1:] * e[:-1]))
                lag_den += float(np.sum(e**2))
        cv2 = max(resid / dof, 0.02**2) if dof > 0 else 0.1**2
        # persistent deviations (lag-1 autocorrelation rho of the residuals): with the
        # persistence term each year's count informs the path only through its change from
        # persistence x last year's, so standard errors grow by about 1 / (1 - rho)
        rho = float(np.clip(lag_num / lag_den, 0.0, 0.9)) if lag_den > 0 else 0.0
        inflate = 1.0 / (1.0 - rho)
        w = np.where(have, (np.nan_to_num(y) + 0.5) / (1.0 + (np.nan_to_num(y) + 0.5) * cv2), 0.0)
        wsum = w.sum(axis=1)
        level = np.where(wsum > 0, (w * rate).sum(axis=1) / np.maximum(wsum, 1e-12), np.nan)
        se_level = np.where(wsum > 0, 1.0 / np.sqrt(np.maximum(wsum, 1e-12)), np.inf)
        tbar = np.where(wsum > 0, (w * years).sum(axis=1) / np.maximum(wsum, 1e-12), 0.0)
        sxx = (w * (years[None, :] - tbar[:, None]) ** 2).sum(axis=1)
        two_years = have.sum(axis=1) >= 2
        slope = np.where(two_years, (w * (years[None, :] - tbar[:, None]) * (rate - level[:, None])).sum(axis=1) / np.maximum(sxx, 1e-12), np.nan)
        se_slope = np.where(two_years & (sxx > 0), 1.0 / np.sqrt(np.maximum(sxx, 1e-12)), np.inf)
        ok = np.isfinite(se_level)
        # levels include the year mix of each authority's data: a crude but safe spread
        level_var = max(np.var(level[ok]) - np.mean(se_level[ok] ** 2), 0.05**2) if ok.sum() >= 3 else 0.3**2
        ok = np.isfinite(se_slope) & (have.sum(axis=1) >= 5)
        trend_var = max(np.var(slope[ok]) - np.mean(se_slope[ok] ** 2), 0.003**2) if ok.sum() >= 3 else 0.02**2
        level_ratio[:, k] = inflate * se_level / np.sqrt(level_var)
        trend_ratio[:, k] = inflate * se_slope / np.sqrt(trend_var)
        # common level per year: precision sums over authorities; its movement from the
        # differences of the weighted yearly means of each authority's deviations from its
        # own level (so authorities entering or leaving do not move it)
        year_w = w.sum(axis=0)
        use = year_w > 0
        dev = np.where(have, rate - np.nan_to_num(level)[:, None], 0.0)
        ybar = (w * dev).sum(axis=0)[use] / year_w[use]
        se_year = float(np.sqrt(np.median(1.0 / year_w[use])))
        diffs = np.diff(ybar)
        move2 = np.var(diffs) - 2 * se_year**2 if diffs.size >= 3 else 0.0
        year_sd = float(np.sqrt(max(move2, 0.005**2)))
        year_ratio[k] = se_year / year_sd
        details["cv"].append(float(np.sqrt(cv2)))
        details["residual_autocorrelation"].append(rho)
        details["level_sd"].append(float(np.sqrt(level_var)))
        details["trend_sd"].append(float(np.sqrt(trend_var)))
        details["year_sd"].append(year_sd)
        details["year_se"].append(se_year)
    return {"level_ratio": level_ratio, "trend_ratio": trend_ratio, "year_ratio": year_ratio, **details}


#: Centre a block when its own data's standard error is below this multiple of the spread
#: its prior must explain (`informativeness`).
CENTRE_BELOW_RATIO = 1.0


def choose_parameterisation(data: ModelData, parameterisation: str = "auto") -> dict:
    """Which parameters are sampled centred (as themselves) rather than standardised.

    ``"auto"`` centres each authority's level and trend per measure, and each measure's
    common path, where its own data dominate (`informativeness` ratio below
    `CENTRE_BELOW_RATIO`); ``"centred"`` and ``"non_centred"`` centre everything or nothing
    (``"baseline"`` is the straightforward non-centred model). Returns a JSON-able dict
    ``{"mode", "centred_level": {measure: [codes]}, "centred_trend": {...}, "centred_year":
    [measures]}``, stored in a run so the same model can be rebuilt from it.
    """
    measures = list(data.measures)
    if parameterisation == "centred":
        every = {m: list(data.la) for m in measures}
        return {"mode": "centred", "centred_level": every, "centred_trend": every, "centred_year": measures}
    if parameterisation in ("non_centred", "baseline"):
        none = {m: [] for m in measures}
        return {"mode": parameterisation, "centred_level": none, "centred_trend": none, "centred_year": []}
    if parameterisation != "auto":
        raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {parameterisation!r}")
    info = informativeness(data)
    las = np.array(data.la)
    return {
        "mode": "auto",
        "centred_level": {m: las[info["level_ratio"][:, k] < CENTRE_BELOW_RATIO].tolist() for k, m in enumerate(measures)},
        "centred_trend": {m: las[info["trend_ratio"][:, k] < CENTRE_BELOW_RATIO].tolist() for k, m in enumerate(measures)},
        "centred_year": [m for m, r in zip(measures, info["year_ratio"]) if r < CENTRE_BELOW_RATIO],
    }


def _centred_matrix(data: ModelData, by_measure: dict) -> np.ndarray:
    """(la, measure) booleans from a {measure: [codes]} partition."""
    return np.stack([np.isin(np.array(data.la), by_measure.get(m, [])) for m in data.measures], axis=1)


def build_model(data: ModelData, priors: dict, parameterisation=DEFAULT_PARAMETERISATION) -> pm.Model:
    """The PyMC model of `data` under `priors` (see the module docstring).

    Parameters
    ----------
    parameterisation
        ``"non_centred"`` (default, `DEFAULT_PARAMETERISATION`), ``"auto"`` (centre each block
        where its data dominate, see `choose_parameterisation`), ``"centred"``, ``"baseline"`` (the
        straightforward model of the benchmark: non-centred effects and steps, deprivation
        entered as written), or a dict from `choose_parameterisation` (e.g. from a saved run).

    Notes
    -----
    Except in the baseline, the sampled variables are combinations the data identify, each
    with the prior of the contract variables it stands for (linear changes of variables with
    unit Jacobian, so the model is the same):

    * deprivation is split by `deprivation_parts`; its authority, authority-trend and year
      parts are folded into the authority levels, trends and the common path (the ridge
      between the deprivation effect and those effects then disappears);
    * authority levels are sampled at the middle of each measure's data (``la_mid``), where
      level and trend are nearly uncorrelated, and trends as ``la_slope``;
    * the common path is sampled as the level of each year (``common_level``, a random walk
      on levels), not as steps, when centred: each year's data pin its level, while steps
      (differences of levels) are strongly correlated.

    The contract variables (``intercept``, ``la_intercept``, ``la_trend``, ``year_effect``,
    ...) are deterministics of these.
    """
    partition = parameterisation if isinstance(parameterisation, dict) else choose_parameterisation(data, parameterisation)
    mode = partition["mode"]
    measures = data.measures
    n_la, n_m, n_y = len(data.la), len(measures), len(data.year)
    centred_level = _centred_matrix(data, partition["centred_level"])
    centred_trend = _centred_matrix(data, partition["centred_trend"])
    centred_year = np.isin(np.array(measures), partition["centred_year"])
    first = data.first_data_year()
    first_t = np.array([int(np.flatnonzero(data.year == first[m])[0]) for m in measures])
    m_idx, la_idx, t_idx = data.observed_index()
    y = data.modelled_count[m_idx, la_idx, t_idx].astype("int64")

    # Free random-walk steps: every year after the measure's first year with data.
    step_m, step_t = np.nonzero(np.arange(n_y)[None, :] > first_t[:, None])
    coords = {
        "measure": list(measures),
        "measure_bis": list(measures),
        "la": data.la,
        "year": data.year,
        "obs": np.arange(len(y)),
        "step": [f"{measures[k]} {data.year[t]}" for k, t in zip(step_m, step_t)],
    }
    offset = np.log(data.population_0_17 / RATE_PER)
    parts = deprivation_parts(data)
    # each authority's level is sampled at the middle of its own data for the measure (the
    # measure's middle year if it has none), where its level and trend are uncorrelated
    has = ~np.isnan(data.modelled_count)  # (measure, la, year)
    n_years = has.sum(axis=2)
    mid_year = np.array([data.year[t_idx][m_idx == k].mean() for k in range(n_m)])
    own_mid = (has * data.year[None, None, :]).sum(axis=2) / np.maximum(n_years, 1)
    la_mid_year = np.where(n_years > 0, own_mid, mid_year[:, None]).T  # (la, measure)
    prior = {
        k: _by_measure(priors[s][k2], measures)
        for k, (s, k2) in {
            "intercept_mu": ("intercept", "mean"),
            "intercept_sd": ("intercept", "sd"),
            "dep_mu": ("deprivation_effect", "mean"),
            "dep_sd": ("deprivation_effect", "sd"),
            "step_scale": ("year_effect", "step_sd_scale"),
            "cv_scale": ("dispersion", "cv_scale"),
            "persist_mean": ("persistence", "mean"),
            "persist_conc": ("persistence", "concentration"),
        }.items()
    }
    after = (np.arange(n_y)[None, :] >= first_t[:, None]).astype(float)

    with pm.Model(coords=coords) as model:
        d = pm.Normal("deprivation_effect", mu=prior["dep_mu"], sigma=prior["dep_sd"], dims="measure")
        chol_level = _covariance("la_intercept", priors["la_intercept"], measures)
        chol_trend = _covariance("la_trend", priors["la_trend"], measures)
        year_sigma = pm.HalfNormal("year_sigma", sigma=prior["step_scale"], dims="measure")

        if mode == "baseline":
            intercept = pm.Normal("intercept", mu=prior["intercept_mu"], sigma=prior["intercept_sd"], dims="measure")
            model.add_coord("la_all", data.la)
            z_trend = pm.ZeroSumNormal("la_trend_z", sigma=1.0, dims=("measure", "la_all"), n_zerosum_axes=1)
            la_trend = pm.Deterministic("la_trend", (chol_trend @ z_trend).T, dims=("la", "measure"))
            # the hierarchical prior is on levels in each measure's middle year (see Notes)
            z_level = pm.ZeroSumNormal("la_intercept_z", sigma=1.0, dims=("measure", "la_all"), n_zerosum_axes=1)
            la_intercept = pm.Deterministic(
                "la_intercept",
                (chol_level @ z_level).T - la_trend * (mid_year - data.reference_year)[None, :],
                dims=("la", "measure"),
            )
            z_step = pm.Normal("year_step_z", 0.0, 1.0, dims="step")
            steps = pm.Deterministic("year_step", z_step * year_sigma[step_m], dims="step")
            year_effect = pm.Deterministic(
                "year_effect",
                pt.cumsum(pt.set_subtensor(pt.zeros((n_m, n_y))[step_m, step_t], steps), axis=1),
                dims=("measure", "year"),
            )
            log_rate = (
                intercept[:, None, None]
                + la_intercept.T[:, :, None]
                + la_trend.T[:, :, None] * (data.year - data.reference_year)[None, None, :]
                + year_effect[:, None, :]
                + d[:, None, None] * (data.deprivation - data.deprivation_centre)[None, :, :]
            )
        else:
            # authority trends, then levels at each measure's middle year, each prior shifted by
            # its deprivation part
            slope_shift = parts["la_slope"][:, None] * d[None, :]
            la_slope = _zero_sum_effect("la_slope", chol_trend, slope_shift, centred_trend, n_m, model)
            la_trend = pm.Deterministic("la_trend", la_slope - slope_shift, dims=("la", "measure"))
            # la_mid: each authority's level at the middle of its own data; its prior is the
            # hierarchical prior on levels in the measure's middle year, moved along the
            # authority's trend and shifted by its deprivation part
            dep_shift = (
                parts["la"][:, None] + parts["la_slope"][:, None] * (la_mid_year - parts["year_centre"])
            ) * d[None, :]
            la_mid = _zero_sum_effect(
                "la_mid", chol_level, la_trend * (la_mid_year - mid_year[None, :]) + dep_shift, centred_level, n_m, model
            )
            la_intercept = pm.Deterministic(
                "la_intercept", la_mid - la_trend * (la_mid_year - data.reference_year) - dep_shift, dims=("la", "measure")
            )

            # the common path: per measure, levels of each year from its first year with data
            year_dep = d[:, None] * parts["year"][None, :]  # (measure, year)
            level_shift = d * parts["year"][first_t]
            step_shift = year_dep[step_m, step_t] - year_dep[step_m, step_t - 1]
            level = pt.zeros(n_m)
            path = pt.zeros((n_m, n_y))
            rw = np.flatnonzero(centred_year)
            if rw.size:
                cell_m, cell_t = np.nonzero((np.arange(n_y)[None, :] >= first_t[:, None]) & centred_year[:, None])
                is_first = cell_t == first_t[cell_m]
                # mean and sd of each cell given the previous one (first cell: the level prior)
                follow = ~is_first
                step_of = np.array([np.flatnonzero((step_m == k) & (step_t == t))[0] for k, t in zip(cell_m[follow], cell_t[follow])], int)
                loc = pt.zeros(len(cell_m))
                loc = pt.set_subtensor(loc[np.flatnonzero(is_first)], (prior["intercept_mu"] + level_shift)[rw])
                scale = pt.zeros(len(cell_m))
                scale = pt.set_subtensor(scale[np.flatnonzero(is_first)], prior["intercept_sd"][rw])
                if follow.any():
                    loc = pt.set_subtensor(loc[np.flatnonzero(follow)], step_shift[step_of])
                    scale = pt.set_subtensor(scale[np.flatnonzero(follow)], year_sigma[cell_m[follow]])
                model.add_coord("level_cell", [f"{measures[k]} {data.year[t]}" for k, t in zip(cell_m, cell_t)])
                common = _random_walk_levels("common_level", loc, scale, is_first, dims="level_cell")
                level = pt.set_subtensor(level[rw], common[np.flatnonzero(is_first)])
                path = pt.set_subtensor(path[cell_m, cell_t], common)
            nc = np.flatnonzero(~centred_year)
            if nc.size:
                model.add_coord("measure_noncentred", list(np.array(measures)[nc]))
                level_nc = pm.Normal(
                    "level",
                    mu=(prior["intercept_mu"] + level_shift)[nc],
                    sigma=prior["intercept_sd"][nc],
                    dims="measure_noncentred",
                )
                level = pt.set_subtensor(level[nc], level_nc)
                walk = pt.zeros((n_m, n_y))
                sel = np.isin(step_m, nc)
                if sel.any():
                    model.add_coord("step_noncentred", list(np.array(coords["step"])[sel]))
                    z_step = pm.Normal("year_step_z", 0.0, 1.0, dims="step_noncentred")
                    steps = step_shift[sel] + z_step * year_sigma[step_m[sel]]
                    walk = pt.cumsum(pt.set_subtensor(walk[step_m[sel], step_t[sel]], steps), axis=1)
                path = path + (level[:, None] + walk) * ((~centred_year)[:, None] * after)
            # path: from each measure's first year with data, the common log level (level +
            # year_effect + the deprivation year part relative to the first year); zero before
            intercept = pm.Deterministic("intercept", level - level_shift, dims="measure")
            year_effect = pm.Deterministic(
                "year_effect",
                (path - level[:, None] - (year_dep - year_dep[np.arange(n_m), first_t][:, None])) * after,
                dims=("measure", "year"),
            )
            pm.Deterministic("year_step", (year_effect[step_m, step_t] - year_effect[step_m, step_t - 1]), dims="step")
            # likelihood in the sampled combinations: only the residual deprivation remains
            # (computed on the full measure x la x year grid: dense broadcasting is far cheaper
            # to differentiate than gathering each term by fancy index)
            log_rate = (
                path[:, None, :]
                + la_mid.T[:, :, None]
                + la_slope.T[:, :, None] * (data.year[None, None, :] - la_mid_year.T[:, :, None])
                + d[:, None, None] * parts["rest"][None, :, :]
            )

        # persistence: a share of last year's observed distance from the path carries into
        # this year (an observation-driven autoregressive term; see bayes_lac.results)
        previous, has_previous = data.previous_deviation_data()
        persistence = pm.Beta(
            "persistence",
            alpha=prior["persist_mean"] * prior["persist_conc"],
            beta=(1.0 - prior["persist_mean"]) * prior["persist_conc"],
            dims="measure",
        )
        previous_path = pt.concatenate([pt.zeros((n_m, n_la, 1)), log_rate[:, :, :-1]], axis=2)
        log_rate = log_rate + persistence[:, None, None] * has_previous * (previous - previous_path)

        cv = pm.HalfNormal("dispersion_cv", sigma=prior["cv_scale"], dims="measure")
        dispersion = pm.Deterministic("dispersion", 1.0 / cv**2, dims="measure")
        # one gather from the flattened grid to the observed cells (its gradient is a single
        # increment-by-index)
        flat = np.ravel_multi_index((m_idx, la_idx, t_idx), (n_m, n_la, n_y))
        log_expected = offset.ravel()[la_idx * n_y + t_idx] + log_rate.ravel()[flat]
        pm.CustomDist(
            "modelled_count",
            log_expected,
            dispersion[m_idx],
            dist=_negbin_log_mean_dist,
            logp=_negbin_log_mean_logp,
            observed=y,
            dims="obs",
            dtype="int64",
        )
    model.partition = partition  # recorded in the run (attrs "parameterisation")
    model.log_expected = log_expected  # for checks: log of the expected count of each cell
    return model


# ---------------------------------------------------------------------------------------
# Sampling and the run
# ---------------------------------------------------------------------------------------

#: Variables of the contract, in the order a summary shows them.
CONTRACT_VARIABLES: tuple[str, ...] = (
    "intercept",
    "la_intercept",
    "la_trend",
    "year_effect",
    "year_sigma",
    "deprivation_effect",
    "dispersion",
    "persistence",
)


def _obs_coords(data: ModelData) -> dict:
    m_idx, la_idx, t_idx = data.observed_index()
    return {
        "obs_measure": ("obs", np.array(data.measures)[m_idx]),
        "obs_la": ("obs", np.array(data.la)[la_idx]),
        "obs_year": ("obs", data.year[t_idx]),
    }


def _sample(model, *, draws, tune, chains, cores, seed, progressbar, sampler, target_accept) -> tuple[xr.DataTree, dict]:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    timing: dict = {}
    start = time.perf_counter()
    with model:
        idata = pm.sample(
            draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            progressbar=progressbar,
            nuts_sampler=sampler,
            target_accept=target_accept,
            compute_convergence_checks=False,
        )
    timing["sample_call_s"] = time.perf_counter() - start
    post_attrs = idata["posterior"].attrs
    if "sampling_time" in post_attrs:
        timing["sampling_s"] = float(post_attrs["sampling_time"])
    return idata, timing


def assemble_run(
    idata: xr.DataTree,
    model: pm.Model,
    data: ModelData,
    *,
    priors: dict,
    prior_set: str,
    sampler_info: dict,
    log_density: bool = True,
) -> xr.DataTree:
    """Turn sampler output into a run that follows the contract of ``bayes_lac.results``."""
    posterior = idata["posterior"].to_dataset()
    groups: dict[str, xr.Dataset] = {
        "posterior": posterior,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "constant_data": data.constant_data(),
        "observed_data": data.observed_data(),
        "reference": data.reference,
    }
    if log_density:
        ll = pm.stats.compute_log_likelihood(idata, model=model, extend_inferencedata=False, progressbar=False)
        ll = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
        # float32 halves the largest group (draws x cells); LOO does not need more precision
        groups["log_likelihood"] = ll.astype("float32").assign_coords(_obs_coords(data))
        lp = pm.stats.compute_log_prior(idata, model=model, extend_inferencedata=False, progressbar=False)
        lp = lp["log_prior"].to_dataset() if isinstance(lp, xr.DataTree) else lp
        groups["log_prior"] = lp
    run = xr.DataTree.from_dict(groups)
    run.attrs.update(
        {
            "bayes_lac_version": __version__,
            **data.attrs(),
            "priors": priors_json(priors),
            "prior_set": prior_set,
            "sampler": json.dumps(sampler_info),
            "parameterisation": json.dumps(model.partition),
            "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    from bayes_lac.diagnostics import attach_diagnostics

    attach_diagnostics(run)
    return run


def _stored_partition(text: str):
    """The parameterisation recorded in a run: a partition dict (JSON) or a mode name."""
    return json.loads(text) if text.strip().startswith("{") else text


class LACModel:
    """The hierarchical model of one authority among its comparison set.

    The constructor stores settings; `fit` arranges the panel, builds the PyMC model and
    samples. The `pm.Model` is held in ``model_`` after `build` or `fit`.

    Parameters
    ----------
    target_la
        ONS code of the authority of interest, e.g. ``"E06000034"`` (Thurrock).
    neighbours
        Comparison set: ``"2021"`` or ``"2025"`` (DfE statistical neighbours), ``"all"``
        (every local authority in the panel: the national model) or a list of ONS codes.
    until
        Use only data up to and including this year (for backtests).
    priors
        A prior set name (``"default"``, ``"weak"``, ``"tight"``), a TOML file, or a dict as
        returned by ``bayes_lac.priors.load_priors``.
    measures
        Measures to fit jointly (default all three).
    parameterisation
        How the sampler sees the parameters (the model is the same): ``"non_centred"``
        (default), ``"auto"`` (centred where the data dominate, per authority and per
        measure), ``"centred"``, ``"baseline"`` (the straightforward non-centred model used
        as the benchmark's baseline), or a partition dict stored in a run.
    """

    def __init__(
        self,
        target_la: str,
        neighbours="2021",
        until: int | None = None,
        priors="default",
        measures: Sequence[str] = MEASURES,
        parameterisation=DEFAULT_PARAMETERISATION,
    ):
        self.target_la = target_la
        self.neighbours = neighbours
        self.until = until
        self.priors = priors
        self.measures = tuple(measures)
        self.parameterisation = parameterisation
        self.data_: ModelData | None = None
        self.model_: pm.Model | None = None
        self.timing_: dict = {}

    # -- priors -------------------------------------------------------------------------
    def _priors(self) -> tuple[dict, str]:
        if isinstance(self.priors, dict):
            return self.priors, "custom"
        return load_priors(self.priors, tuple(m for m in MEASURES if m in self.measures)), prior_set_name(self.priors)

    # -- graph ------------------------------------------------------------------------------
    def prepare(self, panel: pd.DataFrame, source: str = "panel") -> ModelData:
        """Arrange `panel` for this model (no sampling); stores and returns the `ModelData`."""
        self.data_ = prepare_data(panel, self.target_la, self.neighbours, self.until, self.measures, source)
        return self.data_

    def build(self, panel: pd.DataFrame | None = None) -> pm.Model:
        """The PyMC model for `panel` (or for the data already prepared / loaded from a run)."""
        if panel is not None:
            self.prepare(panel)
        if self.data_ is None:
            raise ValueError("build needs a panel (or a model made by LACModel.from_run)")
        priors, _ = self._priors()
        self.model_ = build_model(self.data_, priors, self.parameterisation)
        return self.model_

    @classmethod
    def from_run(cls, results: xr.DataTree) -> "LACModel":
        """The model of a saved run, rebuilt from its stored data and priors (no panel)."""
        attrs = results.attrs
        comparison = attrs["comparison"]
        neighbours = comparison.removeprefix("neighbours-") if comparison.startswith("neighbours-") else (
            "all" if comparison == "all" else json.loads(attrs["neighbours"])
        )
        data = ModelData.from_run(results)
        self = cls(
            attrs["target_la"],
            neighbours=neighbours,
            until=int(attrs["until_year"]),
            priors=json.loads(attrs["priors"]),
            measures=data.measures,
            parameterisation=_stored_partition(attrs.get("parameterisation", "auto")),
        )
        self.data_ = data
        self.build()
        return self

    # -- sampling ---------------------------------------------------------------------------
    def fit(
        self,
        panel: pd.DataFrame | None = None,
        draws: int = DEFAULT_DRAWS,
        tune: int = DEFAULT_TUNE,
        chains: int = DEFAULT_CHAINS,
        seed: int | None = DEFAULT_SEED,
        progressbar: bool = True,
        sampler: str = DEFAULT_SAMPLER,
        cores: int | None = None,
        target_accept: float = DEFAULT_TARGET_ACCEPT,
        log_density: bool = True,
        source: str = "panel",
    ) -> xr.DataTree:
        """Fit the model and return the run (diagnostics computed, attrs filled).

        Parameters
        ----------
        panel
            The panel (``bayes_lac.load_panel()``); may be omitted after `from_run`.
        draws, tune, chains, seed
            Sampler settings: posterior draws and tuning steps per chain, chains, seed.
        sampler
            ``"nutpie"`` (default: the fastest here, see ``bench/bench_fit.py``), ``"pymc"``
            or ``"numpyro"`` (if installed).
        cores
            Processes for the chains (default: pymc's choice, up to the number of CPUs).
        log_density
            Store ``log_likelihood`` and ``log_prior`` (needed for LOO and power-scaling).

        Returns
        -------
        xarray.DataTree following ``bayes_lac.results``. A fit that fails its diagnostics is
        returned all the same, with ``attrs["converged"] == "false"``; see
        ``bayes_lac.diagnostics.require_converged``.
        """
        if panel is not None:
            self.prepare(panel, source)
        priors, prior_set = self._priors()
        start = time.perf_counter()
        self.build()
        build_s = time.perf_counter() - start
        idata, timing = _sample(
            self.model_,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            progressbar=progressbar,
            sampler=sampler,
            target_accept=target_accept,
        )
        timing["build_s"] = build_s
        start = time.perf_counter()
        info = {
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "seed": seed,
            "sampler": sampler,
            "target_accept": target_accept,
        }
        run = assemble_run(
            idata,
            self.model_,
            self.data_,
            priors=priors,
            prior_set=prior_set,
            sampler_info=info,
            log_density=log_density,
        )
        timing["assemble_s"] = time.perf_counter() - start
        self.timing_ = timing
        return run

    def prior_predictive(self, panel: pd.DataFrame | None = None, draws: int = 500, seed: int | None = DEFAULT_SEED) -> xr.DataTree:
        """Draws from the prior and the prior predictive of the counts (dims ``obs``).

        Returns a DataTree with groups ``prior``, ``prior_predictive``, ``observed_data``
        (``modelled_count`` on ``obs``) and the run's ``constant_data``; see
        ``bayes_lac.diagnostics.prior_predictive_table``.
        """
        if panel is not None or self.model_ is None:
            self.build(panel)
        with self.model_:
            pp = pm.sample_prior_predictive(draws, random_seed=seed)
        obs_coords = _obs_coords(self.data_)
        tree = {
            "prior": pp["prior"].to_dataset(),
            "prior_predictive": pp["prior_predictive"].to_dataset().assign_coords(obs_coords),
            "observed_data": pp["observed_data"].to_dataset().assign_coords(obs_coords),
            "constant_data": self.data_.constant_data(),
        }
        out = xr.DataTree.from_dict(tree)
        out.attrs.update(self.data_.attrs())
        return out


def fit(panel: pd.DataFrame, target_la: str, **kwargs) -> xr.DataTree:
    """Fit `LACModel` in one call: settings and sampler arguments as keywords.

    ``neighbours``, ``until``, ``priors``, ``measures``, ``parameterisation`` go to the model;
    everything else to `LACModel.fit`.
    """
    model_keys = ("neighbours", "until", "priors", "measures", "parameterisation")
    model_kw = {k: kwargs.pop(k) for k in model_keys if k in kwargs}
    return LACModel(target_la, **model_kw).fit(panel, **kwargs)


# ---------------------------------------------------------------------------------------
# Comparison with neighbours: where the target's level and trend sit
# ---------------------------------------------------------------------------------------


def trend_table(results: xr.DataTree, ci_prob: float | None = None) -> pd.DataFrame:
    """Each authority's modelled rate and trend in the reference year, with England.

    Returns one row per measure and authority (target first) with columns ``measure``,
    ``la``, ``la_name``, ``is_target``, ``rate`` (mean, lower, upper: expected rate per
    10,000 children aged 0-17 of the modelled count in the reference year, i.e. excluding
    UASC for looked_after), ``trend_pct`` (mean, lower, upper: the authority's own trend,
    common path plus its deviation, in % a year, averaged over the fitted years) and, for
    England (``la = E92000001``), the published rate and its average yearly change over the
    same years (no interval: published figures).
    """
    from bayes_lac.config import CI_PROB
    from bayes_lac.results import log_rate_terms
    from bayes_lac.summaries import summarise_draws

    ci_prob = CI_PROB if ci_prob is None else ci_prob
    ref_year = int(results.attrs["reference_year"])
    terms = log_rate_terms(results)
    log_rate = terms["log_rate"]
    first = int(log_rate["year"].values[0])
    rate_ref = np.exp(log_rate.sel(year=ref_year))
    post = results["posterior"]
    ye = post["year_effect"]
    years = results["constant_data"]["year"].values
    # Common yearly change over the years the measure has data, plus the authority's own slope.
    obs = results["observed_data"]["modelled_count"]
    rows = []
    for m in log_rate["measure"].values:
        has = obs.sel(measure=m).notnull().any("la")
        yrs = years[has.values]
        y0, y1 = int(yrs[0]), int(yrs[-1])
        common = (ye.sel(measure=m, year=y1) - ye.sel(measure=m, year=y0)) / max(y1 - y0, 1)
        slope = 100 * (np.exp(common + post["la_trend"].sel(measure=m)) - 1)
        rate_s = summarise_draws(rate_ref.sel(measure=m), ci_prob=ci_prob)
        slope_s = summarise_draws(slope, ci_prob=ci_prob)
        table = rate_s.rename(columns={"mean": "rate_mean", "lower": "rate_lower", "upper": "rate_upper"})
        table = table.merge(
            slope_s.rename(columns={"mean": "trend_pct_mean", "lower": "trend_pct_lower", "upper": "trend_pct_upper"})[
                ["la", "trend_pct_mean", "trend_pct_lower", "trend_pct_upper"]
            ],
            on="la",
        )
        table["measure"] = m
        table["from_year"], table["to_year"] = y0, y1
        rows.append(table)
        ref = results["reference"] if "reference" in results.children else None
        if ref is not None and "count" in ref:
            count = ref["count"].sel(measure=m)
            pop = ref["population_0_17"]
            eng_rate = (count / pop * RATE_PER)
            r1 = float(eng_rate.sel(year=y1)) if y1 in eng_rate["year"] else np.nan
            r0 = float(eng_rate.sel(year=y0)) if y0 in eng_rate["year"] else np.nan
            if m == "looked_after" and "uasc" in ref:
                # compare like with like: the modelled looked-after count excludes UASC
                ex = ((count - ref["uasc"]) / pop * RATE_PER)
                r1 = float(ex.sel(year=y1))
                r0 = float(ex.sel(year=y0))
            eng_trend = 100 * ((r1 / r0) ** (1 / max(y1 - y0, 1)) - 1) if r0 > 0 else np.nan
            rows.append(
                pd.DataFrame(
                    {
                        "la": [ENGLAND_CODE],
                        "rate_mean": [r1],
                        "rate_lower": [np.nan],
                        "rate_upper": [np.nan],
                        "trend_pct_mean": [eng_trend],
                        "trend_pct_lower": [np.nan],
                        "trend_pct_upper": [np.nan],
                        "measure": [m],
                        "from_year": [y0],
                        "to_year": [y1],
                    }
                )
            )
    out = pd.concat(rows, ignore_index=True)
    names = dict(zip(results["constant_data"]["la"].values, results["constant_data"]["la_name"].values))
    names[ENGLAND_CODE] = "England"
    out["la_name"] = out["la"].map(names)
    target = results.attrs["target_la"]
    out["is_target"] = out["la"] == target
    out["reference_year"] = ref_year
    out["ci_prob"] = ci_prob
    out["order"] = np.where(out["is_target"], 0, np.where(out["la"] == ENGLAND_CODE, 2, 1))
    out = out.sort_values(["measure", "order", "rate_mean"], ascending=[True, True, False], kind="stable")
    cols = [
        "measure", "la", "la_name", "is_target", "reference_year", "from_year", "to_year",
        "rate_mean", "rate_lower", "rate_upper", "trend_pct_mean", "trend_pct_lower", "trend_pct_upper", "ci_prob",
    ]
    measure_order = {m: i for i, m in enumerate(MEASURES)}
    out = out.sort_values(["measure"], key=lambda s: s.map(measure_order), kind="stable")
    return out[cols].reset_index(drop=True)


def plot_trend_forest(results: xr.DataTree, measure: str = "looked_after", ci_prob: float | None = None, ax=None):
    """Forest chart of each authority's rate (left) or trend: where the target sits.

    Draws, for `measure`, the modelled trend (% a year, with its credible interval) of every
    authority in the comparison set, the target in black and first, and England's published
    average yearly change as a vertical line. The numbers are those of `trend_table`.
    Returns the figure.
    """
    from bayes_lac.config import MEASURE_LABELS
    from bayes_lac.style import ENGLAND_COLOUR, NEIGHBOURS_COLOUR, TARGET_COLOUR, get_axes

    table = trend_table(results, ci_prob=ci_prob)
    table = table[table["measure"] == measure]
    eng = table[table["la"] == ENGLAND_CODE]
    las = table[table["la"] != ENGLAND_CODE].sort_values("trend_pct_mean")
    fig, ax = get_axes(ax, figsize=(7, 0.35 * len(las) + 1.5))
    ypos = np.arange(len(las))
    for y, (_, row) in zip(ypos, las.iterrows()):
        colour = TARGET_COLOUR if row["is_target"] else NEIGHBOURS_COLOUR
        ax.plot([row["trend_pct_lower"], row["trend_pct_upper"]], [y, y], color=colour, lw=2.5 if row["is_target"] else 1.5)
        ax.plot(row["trend_pct_mean"], y, marker="o" if row["is_target"] else "s", color=colour, ms=7 if row["is_target"] else 5)
    if not eng.empty and np.isfinite(eng["trend_pct_mean"].iloc[0]):
        ax.axvline(eng["trend_pct_mean"].iloc[0], color=ENGLAND_COLOUR, linestyle="--", label="England (published)")
        ax.legend(loc="lower right", frameon=False)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_yticks(ypos)
    ax.set_yticklabels([f"{n} *" if t else n for n, t in zip(las["la_name"], las["is_target"])])
    pct = round(100 * table["ci_prob"].iloc[0])
    y0, y1 = int(table["from_year"].iloc[0]), int(table["to_year"].iloc[0])
    ax.set_xlabel(f"Trend in the rate, % a year, {y0}-{y1} (mean and {pct}% credible interval)")
    ax.set_title(f"{MEASURE_LABELS.get(measure, measure)}: trend by authority (* = target)")
    return fig


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def fit_command(args) -> int:
    """``bayes-lac fit``: fit, print notices and diagnostics, save the run."""
    from bayes_lac import load_panel
    from bayes_lac.diagnostics import check_convergence, convergence_warning
    from bayes_lac.results import save_run

    panel = load_panel(args.panel) if args.panel else load_panel()
    neighbours = args.neighbours
    if neighbours not in ("2021", "2025", "all"):
        neighbours = [c.strip() for c in neighbours.split(",") if c.strip()]
    model = LACModel(args.la, neighbours=neighbours, until=args.until, priors=args.priors or "default")
    data = model.prepare(panel, source=str(args.panel or "bundled panel"))
    print(
        f"Fitting {args.la} with {len(data.la) - 1} comparison authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}, {len(data.observed_index()[0])} published counts."
    )
    if data.imputations:
        print("Notices (imputations and exclusions):")
        for line in data.imputations:
            print(f"  - {line}")
    run = model.fit(
        draws=DEFAULT_DRAWS if args.draws is None else args.draws,
        tune=DEFAULT_TUNE if args.tune is None else args.tune,
        chains=DEFAULT_CHAINS if args.chains is None else args.chains,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        sampler=getattr(args, "sampler", None) or DEFAULT_SAMPLER,
        progressbar=True,
    )
    diag = check_convergence(run)
    print(diag.summary())
    save_run(run, args.out)
    print(f"Saved the run to {args.out}")
    if not diag.converged:
        print(convergence_warning(diag), file=sys.stderr)
    return 0
