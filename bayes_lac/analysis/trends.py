"""Where each authority's modelled level and trend sit against its comparison set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import ENGLAND_CODE, MEASURES, RATE_PER

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
    from bayes_lac.model.results import log_rate_terms, run_info
    from bayes_lac.summaries import summarise_draws

    info = run_info(results)
    ci_prob = CI_PROB if ci_prob is None else ci_prob
    ref_year = info.reference_year
    terms = log_rate_terms(results)
    log_rate = terms["log_rate"]
    rate_ref = np.exp(log_rate.sel(year=ref_year))
    post = results["posterior"]
    ye = post["year_effect"]
    years = np.array(info.years)
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
            eng_rate = count / pop * RATE_PER
            r1 = float(eng_rate.sel(year=y1)) if y1 in eng_rate["year"] else np.nan
            r0 = float(eng_rate.sel(year=y0)) if y0 in eng_rate["year"] else np.nan
            if m == "looked_after" and "uasc" in ref:
                # compare like with like: the modelled looked-after count excludes UASC
                ex = (count - ref["uasc"]) / pop * RATE_PER
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
    names = {**info.la_names, ENGLAND_CODE: "England"}
    out["la_name"] = out["la"].map(names)
    out["is_target"] = out["la"] == info.target_la
    out["reference_year"] = ref_year
    out["ci_prob"] = ci_prob
    out["order"] = np.where(out["is_target"], 0, np.where(out["la"] == ENGLAND_CODE, 2, 1))
    out = out.sort_values(["measure", "order", "rate_mean"], ascending=[True, True, False], kind="stable")
    cols = [
        "measure",
        "la",
        "la_name",
        "is_target",
        "reference_year",
        "from_year",
        "to_year",
        "rate_mean",
        "rate_lower",
        "rate_upper",
        "trend_pct_mean",
        "trend_pct_lower",
        "trend_pct_upper",
        "ci_prob",
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
    from bayes_lac.style import (
        ENGLAND_COLOUR,
        NEIGHBOURS_COLOUR,
        TARGET_COLOUR,
        get_axes,
    )

    table = trend_table(results, ci_prob=ci_prob)
    table = table[table["measure"] == measure]
    eng = table[table["la"] == ENGLAND_CODE]
    las = table[table["la"] != ENGLAND_CODE].sort_values("trend_pct_mean")
    fig, ax = get_axes(ax, figsize=(7, 0.35 * len(las) + 1.5))
    ypos = np.arange(len(las))
    for y, (_, row) in zip(ypos, las.iterrows()):
        colour = TARGET_COLOUR if row["is_target"] else NEIGHBOURS_COLOUR
        ax.plot(
            [row["trend_pct_lower"], row["trend_pct_upper"]], [y, y], color=colour, lw=2.5 if row["is_target"] else 1.5
        )
        ax.plot(
            row["trend_pct_mean"],
            y,
            marker="o" if row["is_target"] else "s",
            color=colour,
            ms=7 if row["is_target"] else 5,
        )
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
