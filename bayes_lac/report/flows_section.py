"""The board report's "Entering and leaving care" section, from a flows run.

`flows_section` builds the section (a `bayes_lac.report.board.Section`, so it is written to the
HTML, PDF and workbook like every other) for one authority from a flows run
(`bayes_lac.model.flows`, ``bayes-lac fit-flows``; the report takes it with ``--flows-run``):

* for each period page one explains (the rise to the peak and the change since, or the whole
  window), the change in the stock split into more or fewer children starting to be looked
  after and children leaving more or less quickly, exits split by route
  (`bayes_lac.analysis.flows.flows_split`), the authority's in print and its comparison
  authorities' and England's in the workbook;
* the chance of leaving care and the share of leavers returning home by year, against the
  comparison authorities and England, with the published ratios
  (`bayes_lac.analysis.flows.exit_trends`), and whether a fall in returns home is supported;
* the stock forecast from entries and exits under three scenarios
  (`bayes_lac.analysis.flows_forecast`), beside the count model's forecast the report uses.

`modelled_flows_words` gives page one's sentence on the modelled split. Every number comes from
the analyses; the section only arranges and words them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr

from bayes_lac.analysis.flows import exit_trends, flows_split, plot_exit_trends, returns_home_finding
from bayes_lac.analysis.flows_forecast import flows_forecast, scenario_problems
from bayes_lac.config import CI_PROB
from bayes_lac.model.flows import flows_run_info
from bayes_lac.report.board import Section, glance_table, make_table
from bayes_lac.report.formats import KINDS

#: Components of the split printed in the section, with their row labels.
PRINTED_COMPONENTS: dict[str, str] = {
    "published_change": "Published change",
    "entries": "From children starting to be looked after",
    "exits": "From children leaving care",
    "exits_returned_home": "of which returning home",
    "exits_other": "of which other routes",
    "published_minus_modelled": "Not carried by the flows (children counted, not episodes; chance)",
}
#: Scenarios of the forecast from entries and exits.
FLOW_SCENARIOS: tuple[str, ...] = ("trend", "entries-10", "returns-home-neighbours")
_SCENARIO_LABELS = {
    "trend": "As now",
    "entries-10": "10% fewer children starting",
    "returns-home-neighbours": "Returns home at the comparison authorities' share",
}
_AREA_LABELS = {"neighbours": "Comparison authorities (together)", "england": "England"}


@dataclass(frozen=True)
class FlowsOutcome:
    """What page one reads from the section: the authority's split of each period split
    (``(from_year, to_year, rows)``, the rows of its `flows_split` table for ``area == "la"``)
    and whether the flows run passed its checks."""

    splits: tuple[tuple[int, int, pd.DataFrame], ...] = ()
    converged: bool = True


def _window_label(a: int, b: int, peak_year: int | None) -> str:
    if peak_year is not None and b == peak_year:
        return f"{a} to {b} (the rise to the peak)"
    if peak_year is not None and a == peak_year:
        return f"{a} to {b} (since the peak)"
    return f"{a} to {b}"


def flows_section(
    run: xr.DataTree,
    la: str,
    la_name: str,
    windows: list[tuple[int, int]],
    peak_year: int | None = None,
    ci_prob: float = CI_PROB,
) -> tuple[Section, Section, FlowsOutcome]:
    """The "Entering and leaving care" section, its chart for the appendix of more charts, and
    what page one reads from it.

    Parameters
    ----------
    run
        A flows run holding `la` (`bayes_lac.model.flows.load_flows_run`).
    la, la_name
        The report's authority and its name.
    windows
        ``(from_year, to_year)`` periods to split (page one's); those outside the run's years
        are left out with a note.
    peak_year
        The peak page one names, for the periods' labels.
    ci_prob
        Probability of every likely range.
    """
    info = flows_run_info(run)
    la = info.authority(la)
    n_others = len(info.authorities) - 1
    sec = Section("flows", "Entering and leaving care")
    sec.paragraph(
        f"The number of children looked after at 31 March rises when more children start to be looked after or "
        f"when children leave care more slowly. Each change below is split into those two parts, from a model of "
        f"the numbers published each year of children starting to be looked after and leaving care in "
        f"{la_name} and its {n_others} comparison authorities ({info.comparison})."
    )
    if not info.converged:
        sec.notice(
            f"The model of entering and leaving care failed its checks ({info.problem}): these numbers are provisional."
        )
    splits, printed, detail, skipped = [], [], [], []
    for a, b in windows:
        if a < info.first_year or b > info.last_year:
            skipped.append(f"{a} to {b}")
            continue
        split = flows_split(run, la=la, from_year=a, to_year=b, ci_prob=ci_prob)
        own = split.table[split.table["area"] == "la"]
        splits.append((a, b, own))
        label = _window_label(a, b, peak_year)
        rows = own[own["component"].isin(PRINTED_COMPONENTS)].copy()
        rows["component"] = pd.Categorical(rows["component"], categories=list(PRINTED_COMPONENTS), ordered=True)
        printed.append(rows.sort_values("component").assign(period=label))
        detail.append(split.table.assign(period=label))
    if skipped:
        sec.notice(
            f"Not split (outside the flows model's years, {info.first_year} to {info.last_year}): "
            + ", ".join(skipped)
            + "."
        )
    if printed:
        frame = pd.concat(printed, ignore_index=True)
        frame["component"] = frame["component"].astype(str).map(PRINTED_COMPONENTS)
        glance = glance_table(frame, rows=["component"], across="period", kind="change")
        # the published change is a count, not an estimate: its cell is the number alone
        published = PRINTED_COMPONENTS["published_change"]
        for label, rows in frame[frame["component"] == published].groupby("period", sort=False):
            glance.loc[glance["component"] == published, label] = KINDS["change"].text(rows["median"].iloc[0])
        glance = glance.rename(columns={"component": "Children looked after"})
        sec.table(
            "flows_split_glance",
            f"{la_name}: change in the number of children looked after, split into children starting and "
            f"leaving care; each cell the central estimate (low to high of the likely range, {round(100 * ci_prob)}%)",
            glance,
            in_workbook=False,
        )
        sec.workbook_table(
            "flows_split",
            f"{la_name}, its comparison authorities and England: change in children looked after split into "
            "entries and exits (by route), children",
            pd.concat(detail, ignore_index=True),
            value_kind="change",
        )
    trends = exit_trends(run, la=la, ci_prob=ci_prob)
    own = trends[(trends["area"] == "la") & (trends["measure"] == "share_returned_home") & trends["observed"].notna()]
    if len(own) >= 2:
        years = (int(own["year"].min()), int(own["year"].max()))
        sec.finding(returns_home_finding(trends, la_name, years, ci_prob))
    fig, _ = plot_exit_trends(trends, la_name=la_name)
    shown = trends[trends["measure"].isin(["exit_probability", "share_returned_home"])].copy()
    shown["area"] = shown["area"].map(lambda a: la_name if a == "la" else _AREA_LABELS[a])
    shown["measure"] = shown["measure"].map(
        {
            "exit_probability": "Chance of leaving care in the year",
            "share_returned_home": "Share of leavers returning home",
        }
    )
    # the chart goes to the appendix of more charts: the board page keeps the tables and the sentence
    more = Section("more-charts", "Appendix C: more charts (other measures and scenarios)")
    more.heading("Entering and leaving care")
    more.figure(
        fig,
        alt=_exits_alt(trends, la_name),
        caption=f"Left: the chance that a child looked after during the year leaves care by 31 March. Right: the "
        f"share of children leaving care who returned home. {la_name}, its comparison authorities together and "
        "England; lines and bands the model's central estimate and likely range, points the published ratios.",
        table=make_table(
            "flows_exits_by_year",
            f"{la_name}, comparison authorities and England: chance of leaving care and share of leavers returning "
            "home, by year (model and published)",
            shown[["area", "measure", "year", "median", "lower", "upper", "observed"]],
            value_kind="percent",
            kinds={"observed": "percent"},
        ),
    )
    _forecast_part(sec, run, la, la_name, ci_prob)
    return sec, more, FlowsOutcome(splits=tuple(splits), converged=info.converged)


def _exits_alt(trends: pd.DataFrame, la_name: str) -> str:
    """The chart's message with its numbers: the authority's chance of leaving and share
    returning home in the first and last year the model gives them."""
    percent = KINDS["percent"].text
    parts = []
    for measure, words in (
        ("exit_probability", "the chance that a child looked after leaves care in the year"),
        ("share_returned_home", "the share of leavers returning home"),
    ):
        rows = trends[(trends["area"] == "la") & (trends["measure"] == measure)].dropna(subset=["median"])
        if rows.empty:
            continue
        first, last = rows.iloc[0], rows.iloc[-1]
        parts.append(
            f"{words} went from {percent(first['median'])} in {int(first['year'])} to {percent(last['median'])} in "
            f"{int(last['year'])}"
        )
    return f"In {la_name}, " + "; ".join(parts) + " (the comparison authorities and England drawn beside it)."


def _forecast_part(sec: Section, run: xr.DataTree, la: str, la_name: str, ci_prob: float) -> None:
    """The stock forecast from entries and exits under `FLOW_SCENARIOS` (those the run allows)."""
    problems = scenario_problems(run, la, FLOW_SCENARIOS)
    scenarios = [name for name in FLOW_SCENARIOS if name not in problems]
    # the analysis words its reasons for the command line: the board gets the scenario's name
    dropped = [f"{_SCENARIO_LABELS[name]}: not forecast ({why.split(': ', 1)[-1]})." for name, why in problems.items()]
    if not scenarios:
        sec.notice("No forecast from children starting and leaving care: " + " ".join(dropped))
        return
    fc = flows_forecast(run, la=la, horizon=10, scenarios=scenarios, ci_prob=ci_prob)
    stock = fc.table[fc.table["quantity"] == "stock"]
    years = [fc.last_year + 5, fc.last_year + 10]
    stock = stock[stock["year"].isin(years)].copy()
    stock["scenario"] = stock["scenario"].map(_SCENARIO_LABELS)
    glance = glance_table(stock, rows=["scenario"], across="year", kind="count", labels=lambda y: f"March {y}")
    sec.paragraph(
        f"The same model carried forward: the number of children looked after in {la_name} if the chance of "
        f"starting to be looked after and of leaving care go on as now, if 10% fewer children start, and if as many "
        f"leavers return home as in the comparison authorities, from {KINDS['count'].text(fc.last_stock)} in March "
        f"{fc.last_year}. {backtest_words()}"
    )
    sec.table(
        "flows_forecast_glance",
        f"{la_name}: children looked after forecast from children starting and leaving care, by scenario; each "
        f"cell the central estimate (low to high of the likely range, {round(100 * ci_prob)}%)",
        glance.rename(columns={"scenario": "Scenario"}),
        in_workbook=False,
    )
    sec.workbook_table(
        "flows_forecast",
        f"{la_name}: forecast from children starting and leaving care, by scenario, quantity and year",
        fc.table,
        unit_column="quantity",
    )
    sec.paragraph("Assumptions: " + " ".join(fc.assumptions))
    for text in dropped:
        sec.notice(f"Scenario left out. {text}")


#: The shipped comparison of flow-based and count-model forecasts (``bench/flows_backtest.py``).
FLOWS_BACKTEST_SUMMARY = "flows_vs_stock_thurrock_summary.csv"


def backtest_words(folder=None) -> str:
    """Which forecast the report uses and what the shipped backtest of the two found, in words.

    Reads ``models/backtest/flows_vs_stock_thurrock_summary.csv`` (`FLOWS_BACKTEST_SUMMARY`):
    the mean score of each method's looked-after forecasts over the horizons both were
    scored at (CRPS, in children; lower is better).
    """
    from bayes_lac.config import BACKTEST_DIR

    path = Path(folder or BACKTEST_DIR) / FLOWS_BACKTEST_SUMMARY
    uses = "The forecast section's numbers come from the count model"
    if not path.is_file():
        return f"{uses}; this forecast from entering and leaving care has not been tested on past data."
    table = pd.read_csv(path)
    table = table[table["measure"] == "looked_after"]
    if "outcome" in table.columns:
        table = table[table["outcome"] == "latest"]
    scores = table.pivot_table(index="horizon", columns="method", values="crps")
    if not {"flows", "model"} <= set(scores.columns):
        return f"{uses}; this forecast from entering and leaving care has not been tested on past data."
    scores = scores[["flows", "model"]].dropna()
    flows, model = float(scores["flows"].mean()), float(scores["model"].mean())
    h0, h1 = int(scores.index.min()), int(scores.index.max())
    manifest = path.with_name(path.name.replace("_summary.csv", "_manifest.json"))
    scored = json.loads(manifest.read_text()).get("model_config", {}).get("model") if manifest.is_file() else None
    where = (
        f"on past data (Thurrock and its comparison authorities, forecasts made each year and checked {h0} to {h1} "
        "years ahead; a score of the whole likely range in children, lower is better)"
    )
    if scored == "LACModel":
        # that backtest scored the 0.2 count model, not the latent-state model of a default report
        return (
            f"{uses}. This forecast from entering and leaving care was tested against the earlier (0.2) count "
            f"model, not the latent-state model, {where}: {flows:.1f} for this forecast against {model:.1f} for "
            "that model."
        )
    if model <= flows:
        return f"{uses}, which did better {where}: {model:.1f} against {flows:.1f} for this forecast."
    return (
        f"{uses}; {where} this forecast from entering and leaving care did better, {flows:.1f} against "
        f"{model:.1f}: read the two side by side."
    )


def modelled_flows_words(outcome: FlowsOutcome, peak_year: int | None):
    """Page one's sentence on the modelled split of each period and its figures, as
    ``(sentence, figures)``, or None without a split."""
    from bayes_lac.report.answers import Figure, period_words

    if not outcome.splits:
        return None
    change = KINDS["change"].text
    parts, figures = [], []
    for a, b, rows in outcome.splits:
        r = rows.set_index("component")
        entries, exits = r.loc["entries"], r.loc["exits"]
        parts.append(
            f"{period_words(a, b, peak_year)}, {change(entries['median'])} from children starting (likely {change(entries['lower'])} to "
            f"{change(entries['upper'])}) and {change(exits['median'])} from children leaving (likely "
            f"{change(exits['lower'])} to {change(exits['upper'])})"
        )
        for label, row in (("children starting to be looked after", entries), ("children leaving care", exits)):
            figures.append(
                Figure.from_row(f"Change in children looked after {a}-{b} from {label} (modelled)", row, "change")
            )
    lead = "Entering and leaving care (modelled" + (
        "" if outcome.converged else "; provisional: its model failed its checks"
    )
    return f"{lead}): " + "; ".join(parts) + ".", figures
