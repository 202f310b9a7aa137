"""One uncertainty vocabulary: interval summaries of draws, number formats, typed findings.

Every table, chart and sentence in the package summarises draws through `summarise_draws`
and words them through `Finding`, so the interval probability and kind are set in one place
(`bayes_lac.config.CI_PROB`, equal-tailed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, interval_bounds

SUMMARY_COLUMNS: tuple[str, ...] = ("mean", "median", "lower", "upper", "ci_prob")


def summarise_draws(
    draws: xr.DataArray,
    sample_dims: Sequence[str] = ("chain", "draw"),
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Mean, median and equal-tailed credible interval of `draws` over `sample_dims`.

    Parameters
    ----------
    draws
        Draws with the sample dimensions and any number of other (labelled) dimensions.
    sample_dims
        Dimensions that index draws; those absent from `draws` are ignored.
    ci_prob
        Probability of the equal-tailed interval.

    Returns
    -------
    DataFrame with one row per combination of the other dimensions (as columns) and the
    columns ``mean, median, lower, upper, ci_prob``, in the units of `draws`.
    """
    dims = [d for d in sample_dims if d in draws.dims]
    if not dims:
        raise ValueError(f"draws have none of the sample dimensions {tuple(sample_dims)}")
    lo, hi = interval_bounds(ci_prob)
    stats = xr.Dataset(
        {
            "mean": draws.mean(dims),
            "median": draws.median(dims),
            "lower": draws.quantile(lo, dims).drop_vars("quantile"),
            "upper": draws.quantile(hi, dims).drop_vars("quantile"),
        }
    )
    other = [d for d in draws.dims if d not in dims]
    if other:
        table = stats.to_dataframe().reset_index()
        extra = [c for c in table.columns if c not in other and c not in SUMMARY_COLUMNS[:4]]
        table = table[other + extra + list(SUMMARY_COLUMNS[:4])]
    else:
        table = pd.DataFrame({k: [float(v)] for k, v in stats.items()})
    table["ci_prob"] = ci_prob
    return table


def probability(draws: xr.DataArray | np.ndarray, sample_dims: Sequence[str] = ("chain", "draw")):
    """Share of draws that are True: a posterior probability (draws of a boolean event)."""
    if isinstance(draws, xr.DataArray):
        dims = [d for d in sample_dims if d in draws.dims]
        return draws.astype(float).mean(dims)
    return float(np.mean(draws))


def join_words(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def format_count(x: float) -> str:
    """A count of children or families: whole number with thousands separators (135.5 -> "136")."""
    return f"{round(float(x)):,}"


def format_rate(x: float) -> str:
    """A rate per 10,000 children aged 0-17, one decimal place ("59.6")."""
    return f"{float(x):,.1f}"


def format_money(x: float, prices: str | None = None) -> str:
    """Pounds for a board paper: £1.23m above a million, £12,345 below; minus sign kept.

    With `prices` (the price basis, e.g. "cash prices of 2029-30") it is stated after the
    amount in brackets: "£47.65m (cash prices of 2029-30)".
    """
    x = float(x)
    sign = "-" if x < 0 else ""
    a = abs(x)
    text = f"{sign}£{a / 1e6:,.2f}m" if a >= 1e6 else f"{sign}£{a:,.0f}"
    return f"{text} ({prices})" if prices else text


def format_percent(p: float) -> str:
    """A share as a whole percentage (values in [0, 1]): 0.108 -> "11%"."""
    return f"{100 * float(p):.0f}%"


def format_probability(p: float) -> str:
    """A posterior probability as a whole percentage, never "100%" or "0%" from finitely many
    draws: above 0.99 it is ">99%", below 0.01 "<1%"."""
    p = float(p)
    if p > 0.99:
        return ">99%"
    if p < 0.01:
        return "<1%"
    return format_percent(p)


def format_year(year: int) -> str:
    """A calendar year (31 March of it for the published counts): "2025", never "2,025"."""
    return str(int(year))


def format_financial_year(year: int) -> str:
    """The financial year ending 31 March `year`: 2030 -> "2029-30"."""
    year = int(year)
    return f"{year - 1}-{str(year)[-2:]}"


def format_chance(p: float) -> str:
    """'a 70% chance', 'an 80% chance'; 'more than a 99% chance' where `format_probability`
    gives ">99%" (never 'a 100% chance' from finitely many draws)."""
    text = format_probability(p)
    if text == ">99%":
        return "more than a 99% chance"
    if text == "<1%":
        return "less than a 1% chance"
    article = "an" if text.startswith("8") or text in ("11%", "18%") else "a"
    return f"{article} {text} chance"


def format_interval(lower: float, upper: float, formatter=format_count, ci_prob: float = CI_PROB) -> str:
    """'A to B (90% credible interval)' in the given number format."""
    return f"{formatter(lower)} to {formatter(upper)} ({format_percent(ci_prob)} credible interval)"


@dataclass(frozen=True)
class Finding:
    """A table and the sentence that describes it, for notebooks and the board report.

    The report prints `sentence` as is; it always carries the interval and its probability.
    """

    title: str
    sentence: str
    table: pd.DataFrame = field(repr=False)
    ci_prob: float = CI_PROB
    caveats: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.title}: {self.sentence}"
        if self.caveats:
            text += " " + " ".join(self.caveats)
        return text
