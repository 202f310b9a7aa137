"""First look at the data: an authority against its statistical neighbours and England.

This is the comparison a needs assessment opens with (the 2017 Thurrock report's Figure 1):
each measure's rate per 10,000 children aged 0-17, year by year, for the authority, each of
its statistical neighbours, the neighbours together, and England. It uses the published
counts only (no model), so it is the reference the modelled results are checked against.

Definitions
-----------
rate
    ``count / population_0_17 * 10,000``: children per 10,000 children aged 0-17, computed
    from the panel's count and denominator. DfE's published rates are rounded to whole
    numbers and may differ from these in the last digit.
neighbours' average
    The **pooled** rate of the neighbours that report both a count and a population that
    year: ``sum(counts) / sum(populations) * 10,000``. It weights each neighbour by its child
    population, so it is the rate of the neighbours taken as one area (the usual DfE
    convention for a group rate); a small neighbour does not pull it as far as a simple
    mean of rates would. Which neighbours contribute can change from year to year (published
    cells suppressed, authorities reorganised, e.g. West and North Northamptonshire exist
    only from 2021): every neighbours' average row says how many neighbours reported
    (``n_neighbours_reporting``, out of ``n_neighbours``) and which did not
    (``neighbours_missing``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_lac.config import ENGLAND_CODE, MEASURE_LABELS, MEASURES, RATE_PER
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError
from bayes_lac.summaries import Finding, format_count, format_rate

#: Years the comparison chart shows (31 March snapshots).
CHART_YEARS: tuple[int, int] = (2010, 2025)

TABLE_COLUMNS: tuple[str, ...] = (
    "year",
    "measure",
    "group",
    "la_code",
    "la_name",
    "count",
    "population_0_17",
    "rate",
    "n_neighbours_reporting",
    "n_neighbours",
    "neighbours_missing",
)


def _check_panel(panel: pd.DataFrame, measures: Sequence[str]) -> None:
    needed = ["la_code", "la_name", "year", "population_0_17", *measures]
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise PanelError(f"panel: missing column(s) {', '.join(missing)}; expected {', '.join(needed)}")
    dup = panel.duplicated(["la_code", "year"], keep=False)
    if dup.any():
        first = panel.loc[dup, ["la_code", "year"]].iloc[0]
        raise PanelError(
            f"panel: more than one row for {first['la_code']} in {first['year']}; expected one row "
            "per authority and year"
        )


def _names(panel: pd.DataFrame) -> dict[str, str]:
    # The latest name wins: authorities are sometimes renamed (e.g. "Bristol, City of").
    latest = panel.sort_values("year").drop_duplicates("la_code", keep="last")
    return dict(zip(latest["la_code"], latest["la_name"]))


def comparison_table(
    panel: pd.DataFrame,
    la_code: str,
    neighbours: Sequence[str],
    measures: Sequence[str] = MEASURES,
) -> pd.DataFrame:
    """Rates of an authority, each neighbour, the neighbours pooled, and England, by year.

    Parameters
    ----------
    panel
        One row per authority and year with the columns of ``bayes_lac.data.panel`` (at least
        la_code, la_name, year, population_0_17 and the `measures`). England is the row
        with code E92000001, if present.
    la_code
        ONS code of the target authority.
    neighbours
        ONS codes of its comparators (e.g. ``statistical_neighbours(la_code)``). A code with
        no rows in the panel is kept and reported as not reporting in every year.
    measures
        Count columns to compare.

    Returns
    -------
    Long DataFrame, one row per year, measure and group, columns ``year, measure, group,
    la_code, la_name, count, population_0_17, rate, n_neighbours_reporting, n_neighbours,
    neighbours_missing``. ``group`` is "target", "neighbours_average", "england", or a
    neighbour's ONS code. ``rate`` is per 10,000 children aged 0-17 (NaN where the count or
    the population is not published: such rows are kept, never dropped). For
    "neighbours_average" rows, ``count`` and ``population_0_17`` are the sums over the
    neighbours reporting that year, ``n_neighbours_reporting`` how many they are (of
    ``n_neighbours``) and ``neighbours_missing`` the codes that did not report
    (comma-separated, empty if none); these three columns are blank on other rows.

    Raises
    ------
    UnknownAuthorityError
        If `la_code` is not in the panel.
    PanelError
        If a column is missing or an authority has two rows for a year.
    """
    measures = list(measures)
    _check_panel(panel, measures)
    codes = set(panel["la_code"])
    if la_code not in codes:
        raise UnknownAuthorityError(f"{la_code} is not in the panel (it has {len(codes)} areas)")
    neighbours = [c for c in dict.fromkeys(neighbours) if c != la_code]
    names = _names(panel)
    years = np.sort(panel["year"].astype(int).unique())

    def series(code: str) -> pd.DataFrame:
        rows = panel.loc[panel["la_code"] == code, ["year", "population_0_17", *measures]]
        rows = rows.set_index("year").reindex(years)
        # Counts arrive as nullable integers (load_panel) or floats; work in float with NaN.
        return rows.apply(lambda col: col.astype("Float64").to_numpy(dtype=float, na_value=np.nan))

    frames = []
    groups = [("target", la_code)] + [(c, c) for c in neighbours]
    if ENGLAND_CODE in codes:
        groups.append(("england", ENGLAND_CODE))
    for group, code in groups:
        s = series(code)
        for m in measures:
            frames.append(
                pd.DataFrame(
                    {
                        "year": years,
                        "measure": m,
                        "group": group,
                        "la_code": code,
                        "la_name": names.get(code, ""),
                        "count": s[m].to_numpy(dtype=float),
                        "population_0_17": s["population_0_17"].to_numpy(dtype=float),
                    }
                )
            )

    if neighbours:
        stacked = {c: series(c) for c in neighbours}
        for m in measures:
            count = np.zeros(len(years))
            pop = np.zeros(len(years))
            reporting = np.zeros(len(years), dtype=int)
            missing: list[list[str]] = [[] for _ in years]
            for c, s in stacked.items():
                ok = (s[m].notna() & s["population_0_17"].notna()).to_numpy()
                count += np.where(ok, s[m].to_numpy(dtype=float), 0.0)
                pop += np.where(ok, s["population_0_17"].to_numpy(dtype=float), 0.0)
                reporting += ok
                for i in np.flatnonzero(~ok):
                    missing[i].append(c)
            frames.append(
                pd.DataFrame(
                    {
                        "year": years,
                        "measure": m,
                        "group": "neighbours_average",
                        "la_code": "",
                        "la_name": "Statistical neighbours (pooled)",
                        "count": np.where(reporting > 0, count, np.nan),
                        "population_0_17": np.where(reporting > 0, pop, np.nan),
                        "n_neighbours_reporting": reporting,
                        "n_neighbours": len(neighbours),
                        "neighbours_missing": [",".join(x) for x in missing],
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["rate"] = table["count"] / table["population_0_17"] * RATE_PER
    for col in ("n_neighbours_reporting", "n_neighbours"):
        if col not in table:
            table[col] = np.nan
        table[col] = table[col].astype("Int64")
    if "neighbours_missing" not in table:
        table["neighbours_missing"] = pd.NA
    order = {"target": 0, "neighbours_average": 1, "england": 2}
    table["_order"] = table["group"].map(order).fillna(3)
    table["_measure"] = table["measure"].map({m: i for i, m in enumerate(measures)})
    table = table.sort_values(["_measure", "year", "_order", "group"], kind="stable").drop(
        columns=["_order", "_measure"]
    )
    table["year"] = table["year"].astype(int)
    return table[list(TABLE_COLUMNS)].reset_index(drop=True)


def plot_comparison(table: pd.DataFrame, *, measure: str | None = None, ax=None, years=CHART_YEARS):
    """Chart of `comparison_table`: the authority, each neighbour, their pooled rate, England.

    Parameters
    ----------
    table
        From `comparison_table` (its table twin: the chart draws exactly these rates).
    measure
        One measure on one axes; None draws one panel per measure in the table (then `ax`
        must be None).
    ax
        Axes to draw on (single measure only).
    years
        First and last year shown.

    Returns
    -------
    matplotlib Figure. Target: black, bold; neighbours: thin; neighbours' pooled rate: bold
    orange; England: dashed blue. Gaps are years with no published figure.
    """
    import matplotlib.pyplot as plt

    from bayes_lac.style import (
        ENGLAND_COLOUR,
        NEIGHBOURS_COLOUR,
        TARGET_COLOUR,
        get_axes,
    )

    if measure is None:
        measures = [m for m in MEASURES if m in set(table["measure"])]
        measures += [m for m in dict.fromkeys(table["measure"]) if m not in measures]
        if ax is not None:
            raise ValueError("give `measure` to draw on an existing axes; the full chart makes its own figure")
        fig, axes = plt.subplots(
            1, len(measures), figsize=(5 * len(measures), 4.5), layout="constrained", squeeze=False
        )
        for m, a in zip(measures, axes[0]):
            plot_comparison(table, measure=m, ax=a, years=years)
        target = table.loc[table["group"] == "target", "la_name"].iloc[0]
        fig.suptitle(f"{target} against its statistical neighbours and England")
        return fig

    if measure not in set(table["measure"]):
        raise ValueError(f"measure {measure!r} is not in the table (it has {sorted(set(table['measure']))})")
    fig, ax = get_axes(ax)
    t = table[(table["measure"] == measure) & table["year"].between(*years)]
    neighbour_groups = [g for g in dict.fromkeys(t["group"]) if g not in ("target", "neighbours_average", "england")]
    for i, g in enumerate(neighbour_groups):
        s = t[t["group"] == g]
        ax.plot(
            s["year"],
            s["rate"],
            color=NEIGHBOURS_COLOUR,
            linewidth=0.8,
            alpha=0.6,
            label="each statistical neighbour" if i == 0 else "_nolegend_",
        )
    s = t[t["group"] == "neighbours_average"]
    if len(s):
        ax.plot(
            s["year"],
            s["rate"],
            color=NEIGHBOURS_COLOUR,
            linewidth=2.2,
            linestyle="-.",
            marker="s",
            markersize=4,
            label="statistical neighbours (pooled)",
        )
    s = t[t["group"] == "england"]
    if len(s):
        ax.plot(
            s["year"],
            s["rate"],
            color=ENGLAND_COLOUR,
            linewidth=1.8,
            linestyle="--",
            marker="^",
            markersize=4,
            label="England",
        )
    s = t[t["group"] == "target"]
    ax.plot(
        s["year"],
        s["rate"],
        color=TARGET_COLOUR,
        linewidth=2.8,
        marker="o",
        markersize=5,
        label=s["la_name"].iloc[0] if len(s) else "target",
    )
    ax.set_xlim(years[0] - 0.5, years[1] + 0.5)
    ax.set_xlabel("Year (31 March)")
    ax.set_ylabel("Rate per 10,000 children aged 0-17")
    ax.set_title(MEASURE_LABELS.get(measure, measure))
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize="small")
    return fig


def comparison_findings(table: pd.DataFrame) -> list[Finding]:
    """One sentence per measure: the latest year the authority reports, against comparators.

    Observed rates, no model: the findings carry no interval. A caveat says when not every
    neighbour reported that year.
    """
    findings = []
    for m in dict.fromkeys(table["measure"]):
        t = table[table["measure"] == m]
        target = t[(t["group"] == "target") & t["rate"].notna()]
        if target.empty:
            continue
        year = int(target["year"].max())
        row = target[target["year"] == year].iloc[0]
        at_year = t[t["year"] == year].set_index("group")
        parts = [
            f"{row['la_name']} {format_rate(row['rate'])} per 10,000 children aged 0-17 ({format_count(row['count'])} children)"
        ]
        caveats = []
        if "neighbours_average" in at_year.index and pd.notna(at_year.at["neighbours_average", "rate"]):
            nb = at_year.loc["neighbours_average"]
            parts.append(f"statistical neighbours {format_rate(nb['rate'])}")
            if nb["n_neighbours_reporting"] < nb["n_neighbours"]:
                caveats.append(
                    f"Only {nb['n_neighbours_reporting']} of {nb['n_neighbours']} neighbours reported in {year} "
                    f"(missing: {nb['neighbours_missing']})."
                )
        if "england" in at_year.index and pd.notna(at_year.at["england", "rate"]):
            parts.append(f"England {format_rate(at_year.at['england', 'rate'])}")
        sentence = f"{MEASURE_LABELS.get(m, m)} at 31 March {year}: " + "; ".join(parts) + "."
        findings.append(
            Finding(
                title=MEASURE_LABELS.get(m, m),
                sentence=sentence,
                table=t[t["year"] == year].reset_index(drop=True),
                caveats=tuple(caveats),
            )
        )
    return findings


def _year_ranges(years) -> str:
    years = sorted(int(y) for y in years)
    spans, start = [], years[0]
    for prev, cur in zip(years, years[1:] + [None]):
        if cur != prev + 1:
            spans.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(spans)


def coverage_notes(table: pd.DataFrame) -> list[str]:
    """Sentences saying in which years the neighbours' average leaves neighbours out, and which.

    Parameters
    ----------
    table
        From `comparison_table`.

    Returns
    -------
    One sentence per measure and set of missing neighbours, e.g. "Children looked after:
    the neighbours' average leaves out E06000062 in 2010-2021 (not published for those
    years)." Empty if every neighbour reported every year.
    """
    avg = table[(table["group"] == "neighbours_average") & (table["neighbours_missing"].fillna("") != "")]
    notes = []
    for (m, missing), rows in avg.groupby(["measure", "neighbours_missing"], sort=False):
        label, years = MEASURE_LABELS.get(m, m), _year_ranges(rows["year"])
        if (rows["n_neighbours_reporting"] == 0).all():
            notes.append(
                f"{label}: no neighbour has a figure in the panel for {years}, so there is no neighbours' average."
            )
            continue
        codes = missing.split(",")
        notes.append(
            f"{label}: the neighbours' average leaves out {', '.join(codes)} in {years} "
            f"({'its figure is' if len(codes) == 1 else 'their figures are'} not in the panel for those years)."
        )
    return notes


def _neighbour_codes(la_code: str, choice) -> list[str]:
    """The published comparison's authorities for a ``--neighbours`` setting (read by
    ``bayes_lac.data.neighbours.parse_neighbours``): a DfE model's statistical neighbours of
    `la_code`, or the codes given."""
    from bayes_lac.data.neighbours import parse_neighbours, statistical_neighbours

    setting = parse_neighbours(choice)
    if setting == "all":
        raise BayesLacError(
            "--neighbours all: the comparison chart shows an authority against a few others; give 2021 "
            "or 2025 (DfE statistical-neighbour models) or a comma-separated list of ONS codes"
        )
    if setting in ("2021", "2025"):
        return list(statistical_neighbours(la_code, model=int(setting)))
    return list(setting)
