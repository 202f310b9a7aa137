"""One format per kind of number, for every number on the report's pages and in its workbook.

A number in the report is one of a few kinds: a count of children or families, a rate per
10,000 children aged 0-17, pounds, a share, a posterior probability, a percentage held on the
0-100 scale, percentage points, a year. Each kind has exactly one text format (the functions
of `bayes_lac.summaries`, which the analyses' sentences use too) and one Excel number format
that shows the same text for the same stored number: the workbook keeps the unrounded number,
and Excel displays what the page prints (0.99675 shows as ">99%", 135.5 families as "136").

`column_kind` decides the kind of a table column from its name (and, for the summary columns
``mean, median, lower, upper``, from the table's stated unit); `column_header` gives the
column's heading in words, with its unit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_lac.config import CI_PROB, MEASURE_LABELS
from bayes_lac.summaries import (
    format_count,
    format_money,
    format_percent,
    format_probability,
    format_rate,
    format_year,
)


def format_percent_scale(x: float) -> str:
    """A percentage held on the 0-100 scale (10.88 -> "11%")."""
    return format_percent(float(x) / 100)


def format_points(x: float) -> str:
    """Percentage points, signed whole numbers ("+12", "-3", "0")."""
    x = round(float(x))
    return f"{x:+,d}" if x else "0"


def format_change(x: float) -> str:
    """A change in a count of children, signed whole number ("+47", "-9", "0")."""
    x = round(float(x))
    return f"{x:+,d}" if x else "0"


def format_number(x: float) -> str:
    """A number of no stated kind (a ratio, a sensitivity): three significant figures."""
    x = float(x)
    a = abs(x)
    if a >= 100 or (x.is_integer() and a >= 1):
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:,.2f}"
    if a == 0:
        return "0"
    return f"{x:.3g}"


@dataclass(frozen=True)
class NumberKind:
    """How one kind of number is written: as text, and as an Excel number format."""

    name: str
    text: Callable[[float], str]
    #: Excel number format showing the stored (unrounded) number as `text` shows it.
    excel: str


#: Every kind of number in the report. Excel's conditional sections (``[>0.99]``) give the
#: probability the same ">99%" the page prints.
KINDS: dict[str, NumberKind] = {
    k.name: k
    for k in (
        NumberKind("count", format_count, "#,##0"),
        NumberKind("rate", format_rate, "#,##0.0"),
        NumberKind("money", format_money, '"£"#,##0;-"£"#,##0'),
        NumberKind("percent", format_percent, "0%"),
        NumberKind("percent_scale", format_percent_scale, '0"%"'),
        NumberKind("points", format_points, "+#,##0;-#,##0;0"),
        NumberKind("change", format_change, "+#,##0;-#,##0;0"),
        NumberKind("probability", format_probability, '[>0.99]">99%";[<0.01]"<1%";0%'),
        NumberKind("year", format_year, "0"),
        NumberKind("number", format_number, "#,##0.000"),
    )
}

#: Columns that position bars and whiskers on a chart: never printed or written.
PLOTTING_COLUMNS = frozenset({"bar_bottom", "bar_top", "whisker_low", "whisker_high"})
#: Summary columns whose kind is the table's (or the row's) unit.
STAT_COLUMNS = frozenset({"mean", "median", "lower", "upper", "lower_inner", "upper_inner", "sd", "point", "value"})
_YEAR_COLUMNS = frozenset(
    {"year", "from_year", "to_year", "origin", "base_year", "start_year", "end_year", "peak_year"}
)
_SHARE_COLUMNS = frozenset({"ci_prob", "inner_prob", "nominal", "coverage"})
_COUNT_COLUMNS = frozenset(
    {"count", "population_0_17", "years_ahead", "n", "n_neighbours", "n_neighbours_reporting", "rows", "reported_count"}
)


def is_money_column(column: str) -> bool:
    name = str(column).lower()
    return any(w in name for w in ("cost", "saving", "spend", "budget", "£", "gbp", "net_benefit"))


def column_kind(column: str, values: pd.Series | None = None, value_kind: str | None = None) -> str | None:
    """The kind of number in `column` (a key of `KINDS`), or None for text.

    Parameters
    ----------
    column
        The column's name in the analysis table.
    values
        Its values; a column holding no numbers is text.
    value_kind
        The kind of the summary columns (``mean, median, lower, upper``) in this table, e.g.
        "count" for a forecast of children.
    """
    if values is not None and not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        numbers = [
            v for v in values if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        ]
        if not numbers:
            return None
    name = str(column).lower()
    if name in _YEAR_COLUMNS:
        return "year"
    if name in _SHARE_COLUMNS:
        return "percent"
    if name.startswith(("prob", "p_")):
        return "probability"
    if name.endswith("_percent"):
        return "percent_scale"
    if name == "percentage_points" or name.endswith("_points"):
        return "points"
    if name in _COUNT_COLUMNS or name.startswith("n_"):
        return "count"
    if name == "rate" or name.endswith("_rate"):
        return "rate"
    if is_money_column(name):
        return "money"
    if name in STAT_COLUMNS and value_kind:
        return value_kind
    return "number"


def unit_kind(unit) -> str | None:
    """The kind of a row whose unit is `unit` ("£ a year", "probability", "families", ...)."""
    if not isinstance(unit, str):
        return None
    if unit in KINDS:
        return unit
    if unit.startswith("£") and "per £" not in unit:
        return "money"
    if unit == "probability":
        return "probability"
    # people or events, in total or a year: "families a year", "children", "places a year"
    if "per" not in unit.split() and unit.removesuffix(" a year").isalpha():
        return "count"
    return None


def format_value(kind: str | None, value) -> str:
    """The text of `value` as a number of `kind` ("–" for a missing value)."""
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "–"
    if kind is None:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        return code_words(MEASURE_LABELS.get(value, value)) if isinstance(value, str) else str(value)
    return KINDS[kind].text(value)


#: Headings of the columns the analyses return, in words with their units.
HEADERS: dict[str, str] = {
    "la_code": "ONS code",
    "la_name": "Authority",
    "area_name": "Area",
    "area": "Group",
    "group": "Group",
    "measure": "Measure",
    "scenario": "Scenario",
    "component": "Component",
    "label": "Component",
    "series": "Path",
    "quantity": "Quantity",
    "unit": "Unit",
    "year": "Year (31 March)",
    "financial_year": "Financial year",
    "years_ahead": "Years ahead",
    "prices": "Prices",
    "base_year": "Base year",
    "from_year": "From (31 March)",
    "to_year": "To (31 March)",
    "mean": "Mean",
    "median": "Central estimate",
    "lower": "Likely range: low",
    "upper": "Likely range: high",
    "lower_inner": "Inner range (50%): low",
    "upper_inner": "Inner range (50%): high",
    "backtested": "Checked by the backtest",
    "ci_prob": "Likely range: chance",
    "inner_prob": "Inner range: chance",
    "count": "Children",
    "population_0_17": "Children aged 0-17",
    "rate": "Rate per 10,000 children aged 0-17",
    "n_neighbours_reporting": "Neighbours reporting",
    "n_neighbours": "Neighbours",
    "neighbours_missing": "Neighbours not reporting",
    "published": "Published change (children)",
    "source": "Source",
    "weekly_cost_per_child": "Weekly cost per child (£, cash prices of each year)",
    "weekly_cost_real": "Weekly cost per child (£, base-year prices)",
    "nominal": "Stated chance",
    "coverage": "Share of outcomes inside",
    "n": "Forecasts scored",
    "origins": "Forecast made in",
    "horizons": "Years ahead",
    "role": "Role",
    "item": "Item",
    "value": "Value",
    "threshold": "Threshold",
    "ok": "Met",
    "prior_set": "Prior set",
    "percentage_points": "Percentage points",
    "base_cost": "Base-year cost",
    "median_cost": "Cost, central estimate",
    "mean_change": "Change, mean",
    "median_change": "Change, central estimate",
    "lower_change": "Change, likely range: low",
    "upper_change": "Change, likely range: high",
    "prior_sensitivity": "Prior sensitivity",
    "likelihood_sensitivity": "Likelihood sensitivity",
}

_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_gbp_per_year", " (£ a year)"),
    ("_percent", " (%)"),
    ("_rate", " (per 10,000 children aged 0-17)"),
)


def column_header(column: str) -> str:
    """The heading of `column` in words, with its unit ("median_gbp_per_year" -> "Central
    estimate (£ a year)"); a column the package does not name is only un-snake-cased."""
    name = str(column)
    if name in HEADERS:
        return HEADERS[name]
    unit = ""
    for suffix, words in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            name, unit = name[: -len(suffix)], words
            break
    if name in HEADERS:
        return HEADERS[name] + unit
    text = " ".join(w for w in re.split(r"[_\s]+", name) if w)
    return text[:1].upper() + text[1:] + unit


def likely_range(lower: str, upper: str, ci_prob: float = CI_PROB) -> str:
    """'A to B (likely range, 90%)': the interval wording of the board pages."""
    return f"{lower} to {upper} (likely range, {format_percent(ci_prob)})"


_CREDIBLE = re.compile(r"(\d+%) credible (interval|band)s?")
_CREDIBLE_BRACKETED = re.compile(r"\((\d+%) credible intervals?\)")


def plain_words(text: str) -> str:
    """An analysis sentence in the board's words: "(90% credible interval)" becomes
    "(likely range, 90%)" and "90% credible interval A to B" "likely range (90%) A to B"."""
    text = _CREDIBLE_BRACKETED.sub(r"(likely range, \1)", text)
    text = re.sub(r"; (\d+%) credible interval ", r"; likely range (\1) ", text)
    text = _CREDIBLE.sub(lambda m: f"likely range{'s' if m[0].endswith('s') else ''} ({m[1]})", text)
    text = text.replace("credible interval", "likely range").replace("credible band", "likely-range band")
    return text.replace("posterior means", "averages").replace("posterior mean", "average")


#: Words a board page never uses: modelling terms (they are explained in the glossary and used
#: in the analyst appendix) and the columns that position chart elements.
JARGON: tuple[str, ...] = (
    "persistence",
    "log scale",
    "log-rate",
    "log rate",
    "dispersion",
    "random walk",
    "year_sigma",
    "sigma",
    "R-hat",
    "ESS",
    "effective sample size",
    "E-BFMI",
    "posterior",
    "credible interval",
    "credible band",
    "negative binomial",
    "negative-binomial",
    "bar bottom",
    "bar top",
    "whisker low",
    "whisker high",
    "prevented per",
    "residual sd",
    "Monte Carlo",
    "smoothed path",
    "straight-line trend",
)
_JARGON = re.compile("|".join(r"(?<![A-Za-z])" + re.escape(w) + r"(?![A-Za-z])" for w in JARGON), flags=re.IGNORECASE)
#: A snake_case name (a code name of the package's tables) in running text.
SNAKE_CASE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def jargon_in(text: str) -> list[str]:
    """The jargon terms and snake_case code names found in `text` (empty: plain words).

    "ESS" is matched in capitals only (it is not a word), every other term in any case.
    """
    found = [m.group(0) for m in _JARGON.finditer(text) if m.group(0).lower() != "ess" or m.group(0) == "ESS"]
    return found + SNAKE_CASE.findall(text)


#: Code names of table rows that read better otherwise than un-snake-cased.
VALUE_LABELS: dict[str, str] = {
    "participants": "Participants",
    "prob_net_saving": "Chance of a net saving",
    "saving_per_pound": "Saving per £1 spent",
    "break_even_effect": "Effect needed to break even",
    "outcomes_prevented": "Outcomes prevented",
    "neighbours_average": "Comparison authorities (pooled)",
    "england": "England",
    "target": "This authority",
}


def code_words(text: str) -> str:
    """A code name of a table cell in words: "programme_cost" -> "Programme cost"."""
    if text in VALUE_LABELS:
        return VALUE_LABELS[text]
    if SNAKE_CASE.fullmatch(text):
        text = text.replace("_", " ")
        return text[:1].upper() + text[1:]
    return text
