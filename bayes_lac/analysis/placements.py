"""Which placements drive the cost: placement mix against neighbours, and moving children.

Two things, both in cash prices of the year named:

`placement_mix_table`
    For an authority and its statistical neighbours in one year: children looked after at
    31 March and their placements (% in foster care, in secure and children's homes, in
    independent living, with parents or others, and the remainder), DfE's weekly unit cost
    per foster and per residential placement, and the spend these imply:
    children x % placed x weekly unit cost x 52.18. The implied spend is an estimate (the
    placements are counted on 31 March, the unit costs over the year; DfE divides fostering
    spend by placements at 31 March and residential spend by care days, so the estimate is
    close to the s251 fostering and residential care lines); the rest of the s251 "Total
    Children Looked After" outturn is shown as "other" (other placements, leaving care,
    adoption, special guardianship, education and other services).
`move_to_foster`
    A scenario: k children move from residential to foster care from the first forecast year.
    The annual saving per draw is k x (weekly residential - weekly foster unit cost in the base
    year) x 52.18, grown in each later year at that draw's growth of the modelled (or scenario)
    unit cost, and the cost per draw is the forecast cost minus it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.analysis.costs import WEEKS_PER_YEAR, Costs, financial_year
from bayes_lac.config import CI_PROB, interval_bounds
from bayes_lac.data.panel import require_columns
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError

PLACEMENT_SHARES: dict[str, str] = {
    "placed_foster_percent": "foster care",
    "placed_residential_percent": "secure and children's homes",
    "placed_independent_living_percent": "independent living",
    "placed_parents_others_percent": "with parents or others",
}
PLACEMENT_COSTS: tuple[str, str] = ("weekly_cost_fostering", "weekly_cost_residential")


def _number(rows: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(rows[column], errors="coerce")
    bad = rows[column].notna() & values.isna()
    if bad.any():
        row = rows[bad].iloc[0]
        raise PanelError(f"panel column {column}, {row['la_code']} {row['year']}: {row[column]!r} is not a number")
    return values.astype(float)


def placement_mix_table(
    panel: pd.DataFrame, la_code: str, neighbours: Sequence[str] = (), year: int | None = None
) -> pd.DataFrame:
    """Which placements drive the cost: the authority against its neighbours in one year.

    Parameters
    ----------
    panel
        Panel with ``looked_after``, ``spend_looked_after`` (£ a year), the placement shares
        (``placed_*_percent``, %) and unit costs (``weekly_cost_fostering``,
        ``weekly_cost_residential``, £ per child per week).
    la_code
        The authority.
    neighbours
        ONS codes to compare with (e.g. `bayes_lac.data.neighbours.statistical_neighbours`).
    year
        Year (financial year ending 31 March); default the authority's latest year with all of
        these published.

    Returns
    -------
    DataFrame, one row per authority (the authority first) and a last row ``neighbours
    (median)``: ``la_code, la_name, year, looked_after``, the four shares and
    ``placed_other_percent`` (100 minus the four), the two weekly unit costs,
    ``foster_spend_gbp`` and ``residential_spend_gbp`` (implied spend: children x share x
    weekly unit cost x 52.18), ``other_spend_gbp`` (outturn minus both),
    ``spend_looked_after_gbp`` (s251 outturn), ``residential_share_of_spend_percent``,
    ``prices`` and ``price_basis`` (cash prices of the year). Neighbours without the figures
    that year are left out and named in ``attrs["notices"]``.
    """
    needed = ("looked_after", "spend_looked_after", *PLACEMENT_SHARES, *PLACEMENT_COSTS)
    require_columns(panel, needed, for_output="the placement-mix table")
    rows = panel[panel["la_code"] == la_code]
    if rows.empty:
        raise UnknownAuthorityError(f"authority {la_code} is not in the panel")
    frame = panel[panel["la_code"].isin([la_code, *neighbours])].copy()
    for column in needed:
        frame[column] = _number(frame, column)
    frame["year"] = frame["year"].astype(int)
    complete = frame[list(needed)].notna().all(axis=1)
    if year is None:
        years = frame.loc[complete & (frame["la_code"] == la_code), "year"]
        if years.empty:
            raise PanelError(f"the panel has no year with spend, placements and unit costs all published for {la_code}")
        year = int(years.max())
    at = frame[(frame["year"] == year)]
    target = at[(at["la_code"] == la_code) & complete.loc[at.index]]
    if target.empty:
        raise PanelError(f"{la_code} {year}: spend, placement shares or placement unit costs not published")
    kept = at[complete.loc[at.index]]
    missing = [c for c in neighbours if c not in set(kept["la_code"])]
    order = {c: i for i, c in enumerate([la_code, *neighbours])}
    kept = kept.sort_values("la_code", key=lambda s: s.map(order))
    shares = kept[list(PLACEMENT_SHARES)]
    out = pd.DataFrame(
        {
            "la_code": kept["la_code"].to_numpy(),
            "la_name": (kept["la_name"] if "la_name" in kept else kept["la_code"]).to_numpy(),
            "year": year,
            "looked_after": kept["looked_after"].to_numpy(),
        }
    )
    for column in PLACEMENT_SHARES:
        out[column] = kept[column].to_numpy()
    out["placed_other_percent"] = 100.0 - shares.sum(axis=1).to_numpy()
    for column in PLACEMENT_COSTS:
        out[column] = kept[column].to_numpy()
    children = out["looked_after"]
    out["foster_spend_gbp"] = (
        children * out["placed_foster_percent"] / 100 * out["weekly_cost_fostering"] * WEEKS_PER_YEAR
    )
    out["residential_spend_gbp"] = (
        children * out["placed_residential_percent"] / 100 * out["weekly_cost_residential"] * WEEKS_PER_YEAR
    )
    out["spend_looked_after_gbp"] = kept["spend_looked_after"].to_numpy()
    out["other_spend_gbp"] = out["spend_looked_after_gbp"] - out["foster_spend_gbp"] - out["residential_spend_gbp"]
    out["residential_share_of_spend_percent"] = 100 * out["residential_spend_gbp"] / out["spend_looked_after_gbp"]
    numeric = [c for c in out.columns if c not in ("la_code", "la_name", "year")]
    others = out.iloc[1:]
    if len(others):
        median = others[numeric].median().to_frame().T
        median.insert(0, "year", year)
        median.insert(0, "la_name", "neighbours (median)")
        median.insert(0, "la_code", "")
        out = pd.concat([out, median], ignore_index=True)
    out["prices"] = "cash"
    out["price_basis"] = f"cash prices of {financial_year(year)}"
    out.attrs["notices"] = [
        f"{c} {year}: spend, placement shares or placement unit costs not published; not compared." for c in missing
    ]
    return out


@dataclass(frozen=True)
class PlacementMove:
    """Cost of moving k children from residential to foster care, per draw.

    Attributes
    ----------
    cost
        DataArray (draw, year): annual cost after the move, £ per year, cash prices of each year.
    saving
        DataArray (draw, year): the annual saving against the forecast cost, same units.
    k, scenario
        Children moved; the forecast scenario.
    weekly_difference
        Residential minus foster weekly unit cost in the base year, £ per child per week.
    """

    cost: xr.DataArray
    saving: xr.DataArray
    k: int
    scenario: str
    weekly_difference: float
    base_year: int


def move_to_foster(costs: Costs, panel: pd.DataFrame, k: int, scenario: str = "trend") -> PlacementMove:
    """Move `k` children from residential to foster care from the first forecast year.

    Parameters
    ----------
    costs
        From `bayes_lac.analysis.costs.costs` (any unit-cost method).
    panel
        Panel with the authority's ``weekly_cost_fostering``, ``weekly_cost_residential`` and
        ``placed_residential_percent`` in the base year.
    k
        Children moved, at most the number in secure and children's homes in the base year.
    scenario
        Forecast scenario.

    Returns
    -------
    PlacementMove
    """
    require_columns(panel, (*PLACEMENT_COSTS, "placed_residential_percent"), for_output="the placement-move scenario")
    if scenario not in costs.data["scenario"].values:
        raise BayesLacError(f"scenario {scenario!r} is not in the costs")
    T = costs.base_year
    rows = panel[(panel["la_code"] == costs.la_code) & (panel["year"].astype(int) == T)]
    if rows.empty:
        raise PanelError(f"the panel has no row for {costs.la_code} in the base year {T}")
    row = rows.iloc[0]
    values = {c: pd.to_numeric(row[c], errors="coerce") for c in (*PLACEMENT_COSTS, "placed_residential_percent")}
    blank = [c for c, v in values.items() if not np.isfinite(v)]
    if blank:
        raise PanelError(f"{costs.la_code} {T}: {', '.join(blank)} not published; the move cannot be priced")
    children = float(pd.to_numeric(row.get("looked_after"), errors="coerce"))
    in_residential = children * values["placed_residential_percent"] / 100
    if not 0 < k <= in_residential + 1e-9:
        raise BayesLacError(
            f"k must be between 1 and the {in_residential:.0f} children in secure and children's homes in "
            f"{costs.la_code} in {T}; got {k}"
        )
    difference = values["weekly_cost_residential"] - values["weekly_cost_fostering"]
    weekly = costs.data["weekly_unit_cost_nominal"]
    base_weekly = costs.data["base_cost"] / costs.data["base_children"] / WEEKS_PER_YEAR
    growth = weekly / base_weekly
    saving = k * difference * WEEKS_PER_YEAR * growth
    saving.attrs["units"] = "£ per year, cash prices of each year"
    cost = costs.data["cost_nominal"].sel(scenario=scenario) - saving
    cost.attrs["units"] = "£ per year, cash prices of each year"
    return PlacementMove(
        cost=cost, saving=saving, k=int(k), scenario=scenario, weekly_difference=float(difference), base_year=T
    )


def move_to_foster_table(move: PlacementMove, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Saving and cost after the move per year: median and interval, £ per year, cash prices.

    Returns
    -------
    DataFrame ``year, financial_year, k, scenario, median_saving_gbp, lower_saving_gbp,
    upper_saving_gbp, median_cost_after_gbp, lower_cost_after_gbp, upper_cost_after_gbp,
    ci_prob, prices, price_basis``.
    """
    lo, hi = interval_bounds(ci_prob)
    rows = []
    for year in move.cost["year"].values:
        s = move.saving.sel(year=year).values
        c = move.cost.sel(year=year).values
        rows.append(
            {
                "year": int(year),
                "financial_year": financial_year(int(year)),
                "k": move.k,
                "scenario": move.scenario,
                "median_saving_gbp": float(np.median(s)),
                "lower_saving_gbp": float(np.quantile(s, lo)),
                "upper_saving_gbp": float(np.quantile(s, hi)),
                "median_cost_after_gbp": float(np.median(c)),
                "lower_cost_after_gbp": float(np.quantile(c, lo)),
                "upper_cost_after_gbp": float(np.quantile(c, hi)),
                "ci_prob": ci_prob,
                "prices": "cash",
                "price_basis": "cash prices of each year",
            }
        )
    return pd.DataFrame(rows)


def placement_chart_table(table: pd.DataFrame) -> pd.DataFrame:
    """The numbers `plot_placement_mix` draws: implied spend by placement per authority, £m.

    Returns
    -------
    DataFrame ``la_name, placement, spend_gbp_m`` (cash prices of the table's year), placement
    one of ``residential``, ``foster``, ``other``.
    """
    long = table.melt(
        id_vars=["la_name"],
        value_vars=["residential_spend_gbp", "foster_spend_gbp", "other_spend_gbp"],
        var_name="placement",
        value_name="spend_gbp_m",
    )
    long["placement"] = long["placement"].str.replace("_spend_gbp", "", regex=False)
    long["spend_gbp_m"] = long["spend_gbp_m"] / 1e6
    return long


def plot_placement_mix(table: pd.DataFrame, *, ax=None):
    """Stacked bars: implied spend on residential and foster placements and the rest, per authority.

    `table` is `placement_mix_table`; the numbers drawn are `placement_chart_table(table)`.
    Returns the figure.
    """
    from bayes_lac.style import get_axes, series_style

    data = placement_chart_table(table)
    fig, ax = get_axes(ax)
    names = list(dict.fromkeys(data["la_name"]))
    bottom = np.zeros(len(names))
    for i, placement in enumerate(("residential", "foster", "other")):
        values = data[data["placement"] == placement].set_index("la_name").loc[names, "spend_gbp_m"].to_numpy()
        ax.barh(names, values, left=bottom, color=series_style(i + 1)["color"], label=placement)
        bottom = bottom + values
    ax.invert_yaxis()
    year = int(table["year"].iloc[0])
    ax.set_xlabel(f"£m a year, {table['price_basis'].iloc[0]}")
    ax.set_title(f"Spend on children looked after by placement, {financial_year(year)} (implied from DfE unit costs)")
    ax.legend(fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return fig
