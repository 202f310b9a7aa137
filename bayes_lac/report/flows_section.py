"""The board report's "Entering and leaving care" section, as an HTML fragment.

`flows_section_html` renders a flows run (`bayes_lac.model.flows`) for one authority: the
split of the change in the stock into entries and exits for each span asked for, the
exit probability and the share of leavers who returned home against the comparison
authorities and England (chart and table), and the reconciliation gap between the published
stock and the flows. It returns a fragment (a ``<section>``) that the board report can place
as it places its other sections; every number comes from `bayes_lac.analysis.flows`.
"""

from __future__ import annotations

import base64
import html
import io

import pandas as pd
import xarray as xr

from bayes_lac.analysis.flows import exit_trends, flows_split, la_names, plot_exit_trends, returns_home_finding
from bayes_lac.config import CI_PROB
from bayes_lac.model.flows import flows_run_info
from bayes_lac.summaries import format_percent

_COMPONENT_LABELS = {
    "published_change": "Published change",
    "modelled_change": "Change implied by the flows",
    "baseline": "At the first year's rates",
    "entries": "Entries (rate of entering care)",
    "exits": "Exits (how quickly children leave)",
    "exits_returned_home": "  of which returns home",
    "exits_adopted": "  of which adoption",
    "exits_special_guardianship": "  of which special guardianship",
    "exits_age_18": "  of which leaving at 18 or over",
    "exits_other": "  of which other routes",
    "published_minus_modelled": "Published minus flows (children, not episodes; chance)",
}
_AREAS = {"la": None, "neighbours": "Comparison authorities", "england": "England"}


def _split_table(table: pd.DataFrame, la_name: str) -> str:
    areas = [a for a in _AREAS if a in set(table["area"])]
    head = "".join(f"<th>{html.escape(_AREAS[a] or la_name)}</th>" for a in areas)
    rows = []
    for comp, label in _COMPONENT_LABELS.items():
        cells = []
        for a in areas:
            r = table[(table["area"] == a) & (table["component"] == comp)]
            if r.empty:
                cells.append("<td>-</td>")
                continue
            r = r.iloc[0]
            if comp == "published_change":
                cells.append(f"<td>{r['median']:+,.0f}</td>")
            else:
                cells.append(f"<td>{r['median']:+,.0f} <small>({r['lower']:+,.0f} to {r['upper']:+,.0f})</small></td>")
        rows.append(f"<tr><th scope='row'>{html.escape(label)}</th>{''.join(cells)}</tr>")
    return f"<table class='flows-split'><thead><tr><th>Children</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _trend_table(trends: pd.DataFrame, la_name: str, measure: str) -> str:
    rows = trends[trends["measure"] == measure]
    years = sorted(rows["year"].unique())
    areas = [a for a in _AREAS if a in set(rows["area"])]
    head = "".join(f"<th>{y}</th>" for y in years)
    body = []
    for a in areas:
        cells = []
        for y in years:
            r = rows[(rows["area"] == a) & (rows["year"] == y)].iloc[0]
            if pd.isna(r["median"]):
                cells.append("<td>-</td>")
            else:
                cells.append(
                    f"<td>{100 * r['median']:.0f}% <small>({100 * r['lower']:.0f}-{100 * r['upper']:.0f})</small></td>"
                )
        body.append(f"<tr><th scope='row'>{html.escape(_AREAS[a] or la_name)}</th>{''.join(cells)}</tr>")
    return f"<table class='flows-trend'><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _chart(trends: pd.DataFrame, la_name: str) -> str:
    import matplotlib.pyplot as plt

    fig, _ = plot_exit_trends(trends, la_name=la_name)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = f"Exit probability and share of leavers returning home by year: {la_name}, comparison authorities, England"
    return f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt, quote=True)}'>"


def flows_section_html(
    run: xr.DataTree,
    spans: list[tuple[int, int]],
    la: str | None = None,
    returns_home_years: tuple[int, int] | None = None,
    ci_prob: float = CI_PROB,
) -> str:
    """The "Entering and leaving care" section of the board report, as an HTML fragment.

    Parameters
    ----------
    run
        A flows run (`bayes_lac.model.flows.load_flows_run`).
    spans
        ``(from_year, to_year)`` pairs: one entries/exits split each.
    la
        Authority (default: the run's target).
    returns_home_years
        Two years whose returns-home shares are compared in words (default: the first and
        last year with the authority's count published).
    ci_prob
        Probability of every credible interval shown.

    Returns
    -------
    A ``<section>`` element (text). Errors from the analyses (years outside the run, an
    authority not in it) are raised, never printed into the report.
    """
    la = flows_run_info(run).authority(la)
    data = run["flows_data"].to_dataset()
    names = dict(zip([str(c) for c in data["la"].values], la_names(data)))
    la_name = names[la]
    parts = [
        "<section id='entering-and-leaving-care'>",
        "<h2>Entering and leaving care</h2>",
        "<p>The number of children looked after at 31 March changes because children enter care and because "
        "children leave it. The split below says how much of each change came from a change in the rate of "
        "entering care (per 10,000 children) and how much from a change in how quickly children leave "
        f"(the probability that a child looked after during the year leaves by 31 March), each with a "
        f"{format_percent(ci_prob)} credible interval.</p>",
    ]
    for y0, y1 in spans:
        split = flows_split(run, la=la, from_year=y0, to_year=y1, ci_prob=ci_prob)
        parts.append(f"<h3>{y0} to {y1}</h3>")
        parts.extend(f"<p>{html.escape(f.sentence)}</p>" for f in split.findings[:1])
        parts.append(_split_table(split.table, la_name))
        parts.extend(f"<p class='note'>{html.escape(c)}</p>" for c in split.caveats)
    trends = exit_trends(run, la=la, ci_prob=ci_prob)
    own = trends[(trends["area"] == "la") & (trends["measure"] == "share_returned_home") & trends["observed"].notna()]
    if returns_home_years is None and len(own) >= 2:
        returns_home_years = (int(own["year"].min()), int(own["year"].max()))
    parts.append("<h3>Leaving care and returning home</h3>")
    if returns_home_years is not None:
        parts.append(
            f"<p>{html.escape(returns_home_finding(trends, la_name, returns_home_years, ci_prob).sentence)}</p>"
        )
    parts.append(_chart(trends, la_name))
    parts.append("<h4>Exit probability</h4>" + _trend_table(trends, la_name, "exit_probability"))
    parts.append("<h4>Share of leavers who returned home</h4>" + _trend_table(trends, la_name, "share_returned_home"))
    parts.append(
        "<p class='note'>Points are the published ratios; lines and bands the model's median and interval. "
        "Returns home are not published as counts for 2018, 2019 and 2025, and a year whose count is suppressed "
        "shows the model's estimate only. DfE counts children, not episodes, so the published stock does not "
        "follow started minus ceased exactly; the gap is shown in the split.</p>"
    )
    parts.append("</section>")
    return "\n".join(parts)
