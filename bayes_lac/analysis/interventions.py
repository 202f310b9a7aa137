"""Invest-to-save cases for preventive services, with uncertainty.

A council paper typically prices a preventive service with point estimates: so many families
a year, so much per family, so many children kept out of care, so much saved per child. This
module gives the same answers from the same inputs and, when asked, the uncertainty around
them: every uncertain input gets a distribution, and every output is summarised from Monte
Carlo draws with the package's one credible-interval vocabulary.

The arithmetic, per draw (all money in £, cash prices of the file's year)::

    effective           = 0 with probability no_effect_probability, else 1 (per draw)
    effect'             = effect * effective * (1 - deadweight)
    prevented per year  = reach * at_risk * effect'     (effect per participant)
                        = effect'                       (effect per year)
    saving per outcome  = duration * unit_cost          (unit_cost per week or per year)
                          * (1 - delayed_share) + min(delay, duration) * unit_cost * delayed_share
                        = unit_cost                     (unit_cost per outcome)
    programme_cost      = reach * cost_per_participant * A
    gross_saving        = prevented per year * saving per outcome * A
    net_saving          = gross_saving - programme_cost
    cashable_saving     = cashable_share * gross_saving (basis "gross")
                        = cashable_share * net_saving   (basis "net")
    break_even_effect   = the effect at which net_saving = 0, other inputs held at the draw

where ``A = sum_{t=0}^{years-1} (1 + discount_rate) ** -t`` (1 for a one-year case).
``no_effect_probability`` (the evidence that the service may do nothing), ``deadweight``
(share of the outcomes "prevented" that would not have happened anyway) and ``delayed_share``
with ``delay`` (entries to care only put off, by ``delay`` in the duration's unit) are optional
and default to 0; with uncertainty off a no-effect probability enters as its expected value
(effect x (1 - p)). ``break_even_effect`` is the effect, given that the service works, at which
the net saving is zero: deadweight and delay raise it, the no-effect probability does not. Savings
from an outcome prevented in year t are counted in year t. ``break_even_effect`` is in the
units of ``effect`` and does not depend on ``A``.

Intervention file (TOML)
------------------------
See ``models/interventions/edge_of_care.toml`` for a commented example. Top-level keys:

=====================  =====================================================================
key                    meaning
=====================  =====================================================================
name                   the service as the subject of a sentence ("The edge-of-care service")
description            optional, one or two sentences
source                 attribution of the figures (report, year, page)
assumptions            optional list of strings: assumptions added to the source's figures;
                       they are carried into every finding as caveats
years                  optional, whole years the service runs at this scale (default 1, at
                       most 50)
discount_rate          optional, annual discount rate for years > 1 (default 0; HM Treasury
                       Green Book: 0.035)
[outcome]              ``name`` (what is prevented, e.g. "children kept out of care") and
                       ``unit`` (plural noun for counts, e.g. "children", "incidents")
[reach]                participants per year; ``unit`` (plural noun, e.g. "families") and
                       optional ``unit_singular`` ("family")
[cost_per_participant] £ per participant
[effect]               outcomes prevented; ``per = "participant"`` (default: per participant
                       a year) or ``per = "year"`` (in total, per year)
[at_risk]              optional: outcomes per participant expected without the service; when
                       given, ``effect`` is the *share* of them prevented (0 to 1)
[duration]             how long each prevented outcome would have lasted; ``unit`` "weeks"
                       or "years". Required when unit_cost is per week or per year
[unit_cost]            £ per ``per``: "week" or "year" (of care), or "outcome" (e.g. £ per
                       incident, then no duration)
[cashable_share]       optional: share (0 to 1) of savings that is directly cashable;
                       ``basis`` "gross" (default) or "net"
[no_effect_probability] optional: probability (0 to 1) that the service has no effect at all
[deadweight]           optional: share (0 to 1) of prevented outcomes that would not have
                       happened anyway
[delayed_share]        optional: share (0 to 1) of prevented entries to care that are only
                       delayed; needs [delay] (same unit as [duration])
evidence               optional list of strings: the trial evidence behind the effect and
                       its priors (author, year, title, where published, the figure used)
price_year             optional: the financial year (ending 31 March) of the £ figures;
                       `rebase_intervention` moves them to another year's prices
=====================  =====================================================================

Every quantity table has ``point`` (the value used with uncertainty switched off; the
source's figure), optional ``low`` and ``high`` (the source's low and high cases, used by
``scenario="low"``/``"high"``; default ``point``) and optional ``uncertainty``, an inline
table giving its distribution when uncertainty is on (without it the quantity is fixed). A
quantity with only a point value may be written as a number (``cost_per_participant = 2285``).

* ``{dist = "normal", mean = M, sd = S}``: for quantities that cannot be negative it is
  truncated at zero, and ``M >= 3 * S`` is required so the truncation removes at most 0.14%
  of the probability;
* ``{dist = "lognormal", mean = M, sd = S}``: mean and sd on the natural scale;
* ``{dist = "gamma", mean = M, sd = S}``;
* ``{dist = "beta", mean = M, sd = S}``: draws between 0 and 1 (shares, or an effect per
  participant below 1);
* ``{dist = "uniform", lower = L, upper = U}``;
* ``{dist = "triangular", lower = L, mode = C, upper = U}``.

Checks, besides the keys and types: a file is refused, with an
`bayes_lac.errors.InputFileError` naming the file, the key and what was expected, when

* a ``point``, ``low`` or ``high`` value lies outside its ``uncertainty`` distribution's
  range (lower to upper for uniform and triangular, the central 99% for the others): the
  sentence quotes the point value and the savings are drawn from the distribution, so they
  must describe the same thing;
* a cost (``cost_per_participant``, ``unit_cost``) is zero or negative, or a uniform or
  triangular cost starts at zero;
* a value is beyond plausible bounds (point, low, high and the top of the distribution's
  central 99%): reach above 1,000,000 participants a year; more than 100 outcomes prevented
  (or, for ``at_risk``, expected) per participant a year, and for ``per = "year"`` more than
  100 per participant; a duration beyond 18 years (936 weeks); a £ figure above £100 million;
* ``years`` is above 50 (`MAX_YEARS`).

The bounds are the module constants ``MAX_*`` and `POINT_RANGE_PROB`.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_lac.config import CI_PROB, INTERVENTIONS_DIR
from bayes_lac.errors import InputFileError
from bayes_lac.summaries import (
    Finding,
    format_chance,
    format_financial_year,
    format_interval,
    format_money,
    format_percent,
    summarise_draws,
)

SCENARIOS: tuple[str, ...] = ("central", "low", "high")

#: Longest horizon a file may give, in years. Preventive services are planned over a few
#: years; beyond a working life the discounted arithmetic means nothing (and 10**9 hangs).
MAX_YEARS = 50
#: Probability of the central range a quantity's point, low and high values must lie in when
#: it has an uncertainty distribution (for uniform and triangular: their lower to upper).
POINT_RANGE_PROB = 0.99
#: Largest plausible values, to catch a slipped decimal point or a figure in the wrong unit.
#: Checked on point, low, high and the upper end of the distribution's 99% range.
MAX_REACH = 1_000_000  # participants a year: more than the children aged 0-17 of any English authority
MAX_OUTCOMES_PER_PARTICIPANT = 100  # outcomes prevented (or expected, at_risk) per participant a year
MAX_DURATION = {"years": 18.0, "weeks": 18 * 52.0}  # a child leaves care at 18 at the latest
MAX_POUNDS = 100_000_000  # £ per participant, per week, year or outcome

_TOP_KEYS = {
    "name",
    "description",
    "source",
    "assumptions",
    "years",
    "discount_rate",
    "outcome",
    "reach",
    "cost_per_participant",
    "effect",
    "at_risk",
    "duration",
    "unit_cost",
    "cashable_share",
    "no_effect_probability",
    "deadweight",
    "delayed_share",
    "delay",
    "evidence",
    "price_year",
}
_REQUIRED_TOP = ("name", "source", "outcome", "reach", "cost_per_participant", "effect", "unit_cost")
_QUANTITY_KEYS = {"point", "low", "high", "uncertainty"}
#: Extra keys each quantity table may carry, and their allowed values (None: any string).
_EXTRA_KEYS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "reach": {"unit": None, "unit_singular": None},
    "cost_per_participant": {},
    "effect": {"per": ("participant", "year")},
    "at_risk": {},
    "duration": {"unit": ("weeks", "years")},
    "unit_cost": {"per": ("week", "year", "outcome")},
    "cashable_share": {"basis": ("gross", "net")},
    "no_effect_probability": {},
    "deadweight": {},
    "delayed_share": {},
    "delay": {},
}
_DIST_PARAMS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "sd"),
    "lognormal": ("mean", "sd"),
    "gamma": ("mean", "sd"),
    "beta": ("mean", "sd"),
    "uniform": ("lower", "upper"),
    "triangular": ("lower", "mode", "upper"),
}


def _natural_parameters(d: Mapping) -> tuple[float, float]:
    """Parameters of a mean/sd distribution as numpy and scipy take them.

    lognormal: (mu, sigma) of the log; gamma: (shape, scale); beta: (a, b); normal: (mean, sd).
    """
    kind, m, s = d["dist"], d["mean"], d["sd"]
    if kind == "lognormal":
        sigma2 = math.log1p((s / m) ** 2)
        return math.log(m) - sigma2 / 2, math.sqrt(sigma2)
    if kind == "gamma":
        return (m / s) ** 2, s**2 / m
    if kind == "beta":
        nu = m * (1 - m) / s**2 - 1
        return m * nu, (1 - m) * nu
    return m, s


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _error(source: str, key: str, expected: str) -> InputFileError:
    return InputFileError(f"{source}: '{key}': expected {expected}")


@dataclass(frozen=True)
class Quantity:
    """One input: its point value, the source's low/high cases and its distribution.

    Attributes
    ----------
    name
        Key in the file, e.g. ``"effect"``.
    point, low, high
        Values used with uncertainty off (``low``/``high`` default to ``point``).
    dist
        Distribution spec (``{"dist": ..., params}``) used with uncertainty on, or None
        (the quantity is then fixed at the scenario's point value).
    lower_bound, upper_bound
        Range the quantity may take (e.g. 0 and 1 for a share).
    """

    name: str
    point: float
    low: float
    high: float
    dist: Mapping | None = None
    lower_bound: float = 0.0
    upper_bound: float = math.inf

    def value(self, scenario: str) -> float:
        return {"central": self.point, "low": self.low, "high": self.high}[scenario]

    def sample(self, rng: np.random.Generator, size: int, scenario: str = "central") -> np.ndarray:
        """Draws from the distribution, or the scenario's point value repeated if fixed."""
        if self.dist is None:
            return np.full(size, self.value(scenario), dtype=float)
        d = dict(self.dist)
        kind = d["dist"]
        if kind == "normal":
            if self.lower_bound == 0.0:
                a = (0.0 - d["mean"]) / d["sd"]
                return stats.truncnorm.rvs(a, np.inf, loc=d["mean"], scale=d["sd"], size=size, random_state=rng)
            return rng.normal(d["mean"], d["sd"], size)
        if kind == "lognormal":
            return rng.lognormal(*_natural_parameters(d), size)
        if kind == "gamma":
            return rng.gamma(*_natural_parameters(d), size)
        if kind == "beta":
            return rng.beta(*_natural_parameters(d), size)
        if kind == "uniform":
            return rng.uniform(d["lower"], d["upper"], size)
        if kind == "triangular":
            return rng.triangular(d["lower"], d["mode"], d["upper"], size)
        raise AssertionError(f"unvalidated distribution {kind!r}")  # validation prevents this

    def uncertainty_range(self, prob: float = POINT_RANGE_PROB) -> tuple[float, float]:
        """The central range of the distribution holding `prob` of its draws (same units).

        Equal-tailed quantiles of the distribution `sample` draws from; for uniform and
        triangular, whose range is written in the file, their lower and upper bounds.
        Without a distribution: the scenario values (low, high).
        """
        if self.dist is None:
            return self.low, self.high
        d = dict(self.dist)
        kind = d["dist"]
        if kind in ("uniform", "triangular"):
            return d["lower"], d["upper"]
        if kind == "normal" and self.lower_bound == 0.0:
            frozen = stats.truncnorm((0.0 - d["mean"]) / d["sd"], np.inf, loc=d["mean"], scale=d["sd"])
        elif kind == "normal":
            frozen = stats.norm(d["mean"], d["sd"])
        elif kind == "lognormal":
            mu, sigma = _natural_parameters(d)
            frozen = stats.lognorm(sigma, scale=math.exp(mu))
        elif kind == "gamma":
            shape, scale = _natural_parameters(d)
            frozen = stats.gamma(shape, scale=scale)
        else:
            frozen = stats.beta(*_natural_parameters(d))
        tail = (1 - prob) / 2
        lo, hi = frozen.ppf([tail, 1 - tail])
        return float(lo), float(hi)


@dataclass(frozen=True)
class InterventionSpec:
    """A validated intervention file. Build with `load_intervention` or `intervention_from_dict`."""

    name: str
    source: str
    outcome_name: str
    outcome_unit: str
    participant_unit: str
    participant_unit_singular: str
    effect_per: str
    unit_cost_per: str
    duration_unit: str | None
    cashable_basis: str
    quantities: Mapping[str, Quantity] = field(repr=False)
    description: str = ""
    assumptions: tuple[str, ...] = ()
    years: int = 1
    discount_rate: float = 0.0
    path: str = "<dict>"
    evidence: tuple[str, ...] = ()
    price_year: int | None = None

    @property
    def effect_unit(self) -> str:
        """Unit of ``effect`` and ``break_even_effect`` in words."""
        if "at_risk" in self.quantities:
            return f"share of expected {self.outcome_unit} prevented"
        if self.effect_per == "year":
            return f"{self.outcome_unit} prevented a year"
        return f"{self.outcome_unit} prevented per {self.participant_unit_singular}"

    @property
    def period(self) -> str:
        """'a year' or 'over N years' for sentences and units."""
        return "a year" if self.years == 1 else f"over {self.years} years"

    @property
    def prices(self) -> str:
        """The price basis of the file's £ figures in words ("cash prices of 2016-17")."""
        if self.price_year is None:
            return "the source's prices (the file gives no price_year)"
        return f"cash prices of {format_financial_year(self.price_year)}"


def _number(source: str, key: str, value, lower: float, upper: float, *, open_lower=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error(source, key, f"a number, got {value!r}")
    lo_ok = value > lower if open_lower else value >= lower
    if not lo_ok or value > upper:
        if open_lower and lower == 0 and math.isinf(upper):
            raise _error(source, key, f"a number above 0, got {value!r}")
        bracket = "(" if open_lower else "["
        hi = "infinity)" if math.isinf(upper) else f"{upper:g}]"
        raise _error(source, key, f"a number in {bracket}{lower:g}, {hi}, got {value!r}")
    return float(value)


def _check_keys(source: str, where: str, table: Mapping, allowed: set[str]) -> None:
    for k in table:
        if k not in allowed:
            name = f"{where}.{k}" if where else k
            raise InputFileError(
                f"{source}: unknown key '{name}'{_suggest(k, allowed)}; expected one of {', '.join(sorted(allowed))}"
            )


def _parse_dist(source: str, key: str, spec, lower: float, upper: float, *, open_lower=False) -> dict:
    if not isinstance(spec, Mapping):
        raise _error(source, key, 'an inline table such as {dist = "normal", mean = 1, sd = 0.1}')
    kind = spec.get("dist")
    if kind not in _DIST_PARAMS:
        hint = _suggest(str(kind), _DIST_PARAMS) if isinstance(kind, str) else ""
        raise _error(source, f"{key}.dist", f"one of {', '.join(_DIST_PARAMS)}, got {kind!r}{hint}")
    params = _DIST_PARAMS[kind]
    _check_keys(source, key, spec, {"dist", *params})
    for p in params:
        if p not in spec:
            raise _error(source, f"{key}.{p}", f"a value: a {kind} distribution needs {', '.join(params)}")
    d = {"dist": kind}
    for p in params:
        d[p] = _number(source, f"{key}.{p}", spec[p], -math.inf, math.inf)
    bounds = f"[{lower:g}, {upper:g}]" if math.isfinite(upper) else f"at least {lower:g}"
    if kind in ("normal", "lognormal", "gamma", "beta"):
        if d["sd"] <= 0:
            raise _error(source, f"{key}.sd", f"a positive number, got {d['sd']:g}")
        if not lower <= d["mean"] <= upper:
            raise _error(source, f"{key}.mean", f"a value {bounds}, got {d['mean']:g}")
    if kind == "normal":
        if math.isfinite(upper):
            raise _error(source, f"{key}.dist", f"a distribution that stays in {bounds} (beta or uniform), not normal")
        if lower == 0.0 and d["mean"] < 3 * d["sd"]:
            raise _error(
                source,
                key,
                f"mean >= 3 * sd for a normal on a quantity that cannot be negative (got mean "
                f"{d['mean']:g}, sd {d['sd']:g}); use lognormal or gamma for a skewed quantity",
            )
    if kind in ("lognormal", "gamma") and d["mean"] <= 0:
        raise _error(source, f"{key}.mean", f"a positive number for a {kind}, got {d['mean']:g}")
    if kind in ("lognormal", "gamma") and math.isfinite(upper):
        raise _error(source, f"{key}.dist", f"a distribution that stays in {bounds} (beta or uniform), not {kind}")
    if kind == "beta":
        if lower > 0 or upper < 1:
            raise _error(source, f"{key}.dist", f"a distribution within {bounds}; beta draws lie between 0 and 1")
        if not 0 < d["mean"] < 1 or d["sd"] ** 2 >= d["mean"] * (1 - d["mean"]):
            raise _error(
                source,
                key,
                f"a beta mean in (0, 1) and sd below sqrt(mean * (1 - mean)) = "
                f"{math.sqrt(max(d['mean'] * (1 - d['mean']), 0)):.4g}, got mean {d['mean']:g}, sd {d['sd']:g}",
            )
    if kind in ("uniform", "triangular"):
        lower_ok = d["lower"] > lower if open_lower else d["lower"] >= lower
        if not (lower_ok and d["lower"] < d["upper"] <= upper):
            within = f"above {lower:g}" if open_lower and not math.isfinite(upper) else bounds
            raise _error(source, key, f"lower < upper, both {within}, got {d['lower']:g} and {d['upper']:g}")
        if kind == "triangular" and not d["lower"] <= d["mode"] <= d["upper"]:
            raise _error(source, f"{key}.mode", f"a value between lower and upper, got {d['mode']:g}")
    return d


def _parse_quantity(source: str, data: Mapping, key: str, lower: float, upper: float, *, open_lower=False):
    table = data[key]
    if isinstance(table, (int, float)) and not isinstance(table, bool):
        table = {"point": table}
    if not isinstance(table, Mapping):
        raise _error(source, key, "a table with at least 'point', e.g. [" + key + "] point = 1.0")
    extras = _EXTRA_KEYS[key]
    _check_keys(source, key, table, _QUANTITY_KEYS | set(extras))
    if "point" not in table:
        raise _error(source, f"{key}.point", "a number (the value used when uncertainty is off)")
    point = _number(source, f"{key}.point", table["point"], lower, upper, open_lower=open_lower)
    low = _number(source, f"{key}.low", table.get("low", point), lower, upper, open_lower=open_lower)
    high = _number(source, f"{key}.high", table.get("high", point), lower, upper, open_lower=open_lower)
    if low > high:
        raise _error(source, f"{key}.low", f"a value no greater than {key}.high ({high:g}), got {low:g}")
    dist = None
    if "uncertainty" in table:
        dist = _parse_dist(source, f"{key}.uncertainty", table["uncertainty"], lower, upper, open_lower=open_lower)
    extra_values = {}
    for name, allowed in extras.items():
        if name in table:
            v = table[name]
            if not isinstance(v, str) or (allowed is not None and v not in allowed):
                what = f"one of {', '.join(repr(a) for a in allowed)}" if allowed else "a string"
                raise _error(source, f"{key}.{name}", f"{what}, got {v!r}")
            extra_values[name] = v
    q = Quantity(key, point, low, high, dist, lower, upper)
    return q, extra_values


def _describe(dist: Mapping) -> str:
    """'beta, mean 0.9, sd 0.05' for messages."""
    return ", ".join([dist["dist"], *(f"{k} {v:g}" for k, v in dist.items() if k != "dist")])


def _check_point_in_range(source: str, key: str, q: Quantity) -> None:
    """Refuse a point, low or high value outside the range of the quantity's distribution.

    Without uncertainty the sentence and the savings use the point value; with it the savings
    come from the distribution while the sentence still quotes the point as the source's
    figure. A point of 0.16 beside a distribution around 0.9 would make them disagree.
    """
    if q.dist is None:
        return
    lo, hi = q.uncertainty_range(POINT_RANGE_PROB)
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)  # values written to the bounds of a uniform
    if q.dist["dist"] in ("uniform", "triangular"):
        where = f"within the range of {key}.uncertainty ({_describe(q.dist)})"
    else:
        where = (
            f"inside the central {POINT_RANGE_PROB:.0%} range of {key}.uncertainty "
            f"({_describe(q.dist)}: {lo:.4g} to {hi:.4g})"
        )
    for name in ("point", "low", "high"):
        value = getattr(q, name)
        if not lo - slack <= value <= hi + slack:
            why = (
                "the sentence quotes the point value and the savings are drawn from the distribution, "
                "so the two must agree"
                if name == "point"
                else "the source's low and high cases must lie within the uncertainty given for them"
            )
            raise _error(source, f"{key}.{name}", f"a value {where}, got {value:g}; {why}")


def _check_at_most(source: str, key: str, q: Quantity, maximum: float, what: str, money: bool = False) -> None:
    """Refuse values of `q` (point, low, high, upper end of its range) above `maximum` `what`."""
    limit = f"£{maximum:,.10g} {what}" if money else f"{maximum:,.10g} {what}"
    for name in ("point", "low", "high"):
        value = getattr(q, name)
        if value > maximum:
            raise _error(source, f"{key}.{name}", f"at most {limit}, got {value:,.10g}")
    if q.dist is not None:
        top = q.uncertainty_range(POINT_RANGE_PROB)[1]
        if top > maximum:
            raise _error(
                source,
                f"{key}.uncertainty",
                f"a distribution whose central {POINT_RANGE_PROB:.0%} range stays at or below {limit}, "
                f"got {_describe(q.dist)}, whose range reaches {top:,.4g}",
            )


def _check_plausible(
    source: str, q: Mapping[str, Quantity], effect_per: str, unit_cost_per: str, duration_unit: str | None
) -> None:
    """Refuse inputs beyond the plausible bounds set at the top of this module."""
    _check_at_most(
        source,
        "reach",
        q["reach"],
        MAX_REACH,
        "participants a year (more than the children of any English local authority)",
    )
    if "at_risk" in q:
        _check_at_most(
            source, "at_risk", q["at_risk"], MAX_OUTCOMES_PER_PARTICIPANT, "outcomes expected per participant a year"
        )
    if effect_per == "participant" and "at_risk" not in q:
        _check_at_most(
            source, "effect", q["effect"], MAX_OUTCOMES_PER_PARTICIPANT, "outcomes prevented per participant a year"
        )
    elif effect_per == "year":
        reach_top = max(q["reach"].high, q["reach"].uncertainty_range(POINT_RANGE_PROB)[1])
        _check_at_most(
            source,
            "effect",
            q["effect"],
            MAX_OUTCOMES_PER_PARTICIPANT * reach_top,
            f"outcomes prevented a year ({MAX_OUTCOMES_PER_PARTICIPANT} per participant for up to "
            f"{reach_top:,.10g} participants)",
        )
    if "duration" in q and duration_unit in MAX_DURATION:
        _check_at_most(
            source,
            "duration",
            q["duration"],
            MAX_DURATION[duration_unit],
            f"{duration_unit} (a child leaves care at 18 at the latest)",
        )
    pence = "(a figure in pence, or a total rather than a unit cost?)"
    _check_at_most(
        source, "cost_per_participant", q["cost_per_participant"], MAX_POUNDS, f"per participant {pence}", money=True
    )
    _check_at_most(source, "unit_cost", q["unit_cost"], MAX_POUNDS, f"per {unit_cost_per} {pence}", money=True)


def _string(source: str, data: Mapping, key: str, default: str | None = None) -> str:
    if key not in data:
        if default is None:
            raise _error(source, key, "a string (required)")
        return default
    v = data[key]
    if not isinstance(v, str) or not v.strip():
        raise _error(source, key, f"a non-empty string, got {v!r}")
    return v.strip()


def intervention_from_dict(data: Mapping, source: str = "<dict>") -> InterventionSpec:
    """Validate an intervention given as a mapping (the parsed TOML).

    Parameters
    ----------
    data
        Keys as in the module docstring.
    source
        Name used in error messages (the file path when loading a file).

    Raises
    ------
    InputFileError
        Naming `source`, the key and what was expected.
    """
    if not isinstance(data, Mapping):
        raise InputFileError(f"{source}: expected a table of keys, got {type(data).__name__}")
    _check_keys(source, "", data, _TOP_KEYS)
    for key in _REQUIRED_TOP:
        if key not in data:
            raise _error(source, key, "a value: this key is required (see models/interventions/edge_of_care.toml)")

    outcome = data["outcome"]
    if not isinstance(outcome, Mapping):
        raise _error(source, "outcome", 'a table: [outcome] name = "children kept out of care", unit = "children"')
    _check_keys(source, "outcome", outcome, {"name", "unit"})
    outcome_name = _string(source, outcome, "name") if "name" in outcome else None
    if outcome_name is None:
        raise _error(source, "outcome.name", 'a string, e.g. "children kept out of care"')
    if "unit" not in outcome:
        raise _error(source, "outcome.unit", 'a plural noun, e.g. "children" or "incidents"')
    outcome_unit = _string(source, outcome, "unit")

    quantities: dict[str, Quantity] = {}
    extras: dict[str, dict] = {}
    bounds = {
        "reach": (0.0, math.inf, True),
        "cost_per_participant": (0.0, math.inf, True),  # a free service would "save" for certain
        "effect": (0.0, math.inf, False),
        "at_risk": (0.0, math.inf, True),
        "duration": (0.0, math.inf, True),
        "unit_cost": (0.0, math.inf, True),
        "cashable_share": (0.0, 1.0, False),
        "no_effect_probability": (0.0, 1.0, False),
        "deadweight": (0.0, 1.0, False),
        "delayed_share": (0.0, 1.0, False),
        "delay": (0.0, math.inf, False),
    }
    if "at_risk" in data:
        bounds["effect"] = (0.0, 1.0, False)  # then effect is a share of the at-risk outcomes
    for key, (lo, hi, open_lo) in bounds.items():
        if key in data:
            quantities[key], extras[key] = _parse_quantity(source, data, key, lo, hi, open_lower=open_lo)

    effect_per = extras["effect"].get("per", "participant")
    if "at_risk" in quantities and effect_per != "participant":
        raise _error(source, "effect.per", "'participant' when [at_risk] is given (the effect is then a share)")
    unit_cost_per = extras["unit_cost"].get("per")
    if unit_cost_per is None:
        raise _error(source, "unit_cost.per", "'week', 'year' or 'outcome': what the £ figure is per")
    duration_unit = extras.get("duration", {}).get("unit")
    if unit_cost_per == "outcome":
        if "duration" in quantities:
            raise _error(source, "duration", "no [duration] when unit_cost is per outcome (the cost already covers it)")
    else:
        if "duration" not in quantities:
            raise _error(source, "duration", f"a [duration] in {unit_cost_per}s: unit_cost is £ per {unit_cost_per}")
        if duration_unit is None:
            raise _error(source, "duration.unit", "'weeks' or 'years'")
        if duration_unit != unit_cost_per + "s":
            raise _error(
                source,
                "duration.unit",
                f"'{unit_cost_per}s' to match unit_cost per '{unit_cost_per}', got '{duration_unit}' "
                "(give both per week or both per year)",
            )

    if ("delayed_share" in quantities) != ("delay" in quantities):
        raise _error(
            source, "delay", "both [delayed_share] and [delay] (how long a delayed entry is put off), or neither"
        )
    if "delay" in quantities and unit_cost_per == "outcome":
        raise _error(source, "delay", "no [delay] when unit_cost is per outcome (there is no time in care to shorten)")
    evidence = data.get("evidence", [])
    if not isinstance(evidence, list) or not all(isinstance(e, str) and e.strip() for e in evidence):
        raise _error(source, "evidence", "a list of citations (strings)")
    price_year = data.get("price_year")
    if price_year is not None and (
        isinstance(price_year, bool) or not isinstance(price_year, int) or not 1990 <= price_year <= 2100
    ):
        raise _error(source, "price_year", f"a financial year ending 31 March, e.g. 2017, got {price_year!r}")

    for key, q in quantities.items():
        _check_point_in_range(source, key, q)
    _check_plausible(source, quantities, effect_per, unit_cost_per, duration_unit)

    assumptions = data.get("assumptions", [])
    if not isinstance(assumptions, list) or not all(isinstance(a, str) for a in assumptions):
        raise _error(source, "assumptions", "a list of strings")
    years = data.get("years", 1)
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= MAX_YEARS:
        raise _error(source, "years", f"a whole number of years from 1 to {MAX_YEARS}, got {years!r}")
    discount_rate = _number(source, "discount_rate", data.get("discount_rate", 0.0), 0.0, 1.0)

    reach_extra = extras["reach"]
    if "unit" not in reach_extra:
        raise _error(source, "reach.unit", 'a plural noun for participants, e.g. "families"')
    return InterventionSpec(
        name=_string(source, data, "name"),
        source=_string(source, data, "source"),
        description=_string(source, data, "description", default=""),
        outcome_name=outcome_name,
        outcome_unit=outcome_unit,
        participant_unit=reach_extra["unit"],
        participant_unit_singular=reach_extra.get("unit_singular", reach_extra["unit"]),
        effect_per=effect_per,
        unit_cost_per=unit_cost_per,
        duration_unit=duration_unit,
        cashable_basis=extras.get("cashable_share", {}).get("basis", "gross"),
        quantities=quantities,
        assumptions=tuple(a.strip() for a in assumptions),
        years=years,
        discount_rate=discount_rate,
        path=source,
        evidence=tuple(e.strip() for e in evidence),
        price_year=price_year,
    )


def bundled_interventions() -> list[str]:
    """Names of the intervention files shipped in ``models/interventions``."""
    return sorted(p.stem for p in INTERVENTIONS_DIR.glob("*.toml"))


def load_intervention(path) -> InterventionSpec:
    """Read and validate an intervention file (TOML).

    Parameters
    ----------
    path
        A file path, or the name of a shipped file (e.g. ``"edge_of_care"``).
    """
    p = Path(path)
    if not p.exists() and p.suffix == "" and (INTERVENTIONS_DIR / f"{p.name}.toml").exists():
        p = INTERVENTIONS_DIR / f"{p.name}.toml"
    if not p.is_file():
        shipped = ", ".join(bundled_interventions()) or "none"
        raise InputFileError(f"{path}: no such intervention file (shipped: {shipped})")
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise InputFileError(f"{p}: not valid TOML: {err}") from err
    except UnicodeDecodeError as err:
        raise InputFileError(f"{p}: not a UTF-8 text file: {err}") from err
    return intervention_from_dict(data, source=str(p))


@dataclass(frozen=True)
class InterventionResult:
    """Draws of an intervention's costs and savings.

    Attributes
    ----------
    spec
        The intervention evaluated.
    draws
        Dataset with dimension ``draw`` (length 1 when `uncertainty` is False) and variables
        participants (over the horizon), programme_cost, gross_saving, net_saving,
        cashable_saving (£, over the horizon; cashable only if the file gives a share),
        outcomes_prevented (in ``spec.outcome_unit``), saving_per_pound (£ saved per £1
        spent) and break_even_effect (in ``spec.effect_unit``).
    uncertainty
        Whether inputs were drawn from their distributions.
    scenario
        Which point values fixed quantities took: "central", "low" or "high".
    seed
        Random seed of the draws.
    """

    spec: InterventionSpec
    draws: xr.Dataset = field(repr=False)
    uncertainty: bool
    scenario: str
    seed: int

    @property
    def prob_net_saving(self) -> float:
        """P(net saving > 0): share of draws in which the service saves more than it costs."""
        return float((self.draws["net_saving"] > 0).mean())

    def point(self, quantity: str) -> float:
        """The value of `quantity` when evaluated without uncertainty (single draw)."""
        if self.draws.sizes["draw"] != 1:
            raise ValueError("point() is for results evaluated with uncertainty=False")
        return float(self.draws[quantity].item())


def round_half_up(x: float, ndigits: int = 0) -> float:
    """Round as a spreadsheet does (halves away from zero): how council papers round."""
    q = Decimal(1).scaleb(-ndigits)
    return float(Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP))


def evaluate_intervention(
    spec: InterventionSpec | str | Path,
    draws: int = 4000,
    seed: int = 0,
    uncertainty: bool = True,
    scenario: str = "central",
) -> InterventionResult:
    """Costs and savings of an intervention, by Monte Carlo over its uncertain inputs.

    Parameters
    ----------
    spec
        A validated spec, or a path / shipped name for `load_intervention`.
    draws
        Monte Carlo draws when `uncertainty` is on (ignored when off: one draw).
    seed
        Random seed.
    uncertainty
        Draw uncertain inputs from their distributions; when False every input takes its
        point value (``scenario`` selects the source's central, low or high case), which
        reproduces the source's arithmetic.
    scenario
        "central", "low" or "high": the point values used for fixed inputs.

    Returns
    -------
    InterventionResult
    """
    if not isinstance(spec, InterventionSpec):
        spec = load_intervention(spec)
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    if uncertainty and (isinstance(draws, bool) or not isinstance(draws, int) or draws < 2):
        raise ValueError(f"draws must be a whole number of at least 2, got {draws!r}")
    n = draws if uncertainty else 1
    rng = np.random.default_rng(seed)
    q = spec.quantities

    def get(key: str, default: float = 1.0) -> np.ndarray:
        if key not in q:
            return np.full(n, default)
        if uncertainty:
            return q[key].sample(rng, n, scenario)
        return np.full(n, q[key].value(scenario))

    # Fixed draw order, so adding an input later does not reshuffle the others' draws.
    reach = get("reach")
    cost_pp = get("cost_per_participant")
    effect = get("effect")
    at_risk = get("at_risk")
    duration = get("duration")
    unit_cost = get("unit_cost")
    share = get("cashable_share", default=np.nan)
    # Drawn after the original inputs, so files without them keep their draws.
    no_effect = get("no_effect_probability", default=0.0)
    deadweight = get("deadweight", default=0.0)
    delayed = get("delayed_share", default=0.0)
    delay = get("delay", default=0.0)
    if uncertainty:
        works = (rng.random(n) >= no_effect).astype(float)
    else:
        works = 1.0 - no_effect  # the expected value: a point case has no draws to switch off
    effect = effect * works * (1.0 - deadweight)

    annuity = sum((1 + spec.discount_rate) ** -t for t in range(spec.years))
    if spec.effect_per == "year":
        prevented_per_year = effect
    else:
        prevented_per_year = reach * at_risk * effect
    if spec.unit_cost_per == "outcome":
        saving_per_outcome = unit_cost
    else:
        saving_per_outcome = unit_cost * ((1.0 - delayed) * duration + delayed * np.minimum(delay, duration))
    cost = reach * cost_pp * annuity
    gross = prevented_per_year * saving_per_outcome * annuity
    net = gross - cost
    with np.errstate(divide="ignore", invalid="ignore"):
        # The effect that makes gross equal cost; it does not depend on the horizon.
        # Given that the service works: deadweight scales the effect that counts.
        if spec.effect_per == "year":
            break_even = reach * cost_pp / (saving_per_outcome * (1.0 - deadweight))
        else:
            break_even = cost_pp / (at_risk * saving_per_outcome * (1.0 - deadweight))
        per_pound = gross / cost
    variables = {
        "participants": reach * spec.years,
        "programme_cost": cost,
        "outcomes_prevented": prevented_per_year * spec.years,
        "gross_saving": gross,
        "net_saving": net,
        "saving_per_pound": per_pound,
        "break_even_effect": break_even,
        # not in the tables: the draws `evaluate_through_flows` prices the flows with
        "saving_per_outcome": np.broadcast_to(saving_per_outcome, (n,)),
        "unit_cost": np.broadcast_to(unit_cost, (n,)),
        "delayed_share": np.broadcast_to(delayed, (n,)),
        "delay": np.broadcast_to(delay, (n,)),
        "cashable_share": np.broadcast_to(share, (n,)),
    }
    if "cashable_share" in q:
        variables["cashable_saving"] = share * (net if spec.cashable_basis == "net" else gross)
    ds = xr.Dataset(
        {k: ("draw", np.asarray(v, dtype=float)) for k, v in variables.items()},
        coords={"draw": np.arange(n)},
        attrs={
            "intervention": spec.name,
            "source_file": spec.path,
            "uncertainty": str(uncertainty).lower(),
            "scenario": scenario,
            "seed": seed,
        },
    )
    return InterventionResult(spec=spec, draws=ds, uncertainty=uncertainty, scenario=scenario, seed=seed)


def evaluate_through_flows(
    spec: InterventionSpec | str | Path,
    run,
    la: str | None = None,
    horizon: int = 10,
    seed: int = 0,
) -> InterventionResult:
    """An intervention that prevents entries to care, its savings from the flows forecast.

    `evaluate_intervention` prices each child kept out of care at ``duration x unit_cost``.
    Here the entries prevented each year (its ``outcomes_prevented`` per year, with the
    no-effect probability and deadweight, per draw) act on the flows model's lever instead:
    they are taken off the authority's entries in each year the service runs, and the children
    looked after averted follow from the forecast exit probability of each posterior draw of the
    flows run (`bayes_lac.analysis.flows_forecast.flows_forecast`, scenario ``trend``) by the
    stock identity, ``averted[t] = (averted[t-1] + prevented[t]) x (1 - exit probability[t])``.
    The care averted in year ``t`` is the mean of the averted stock at its start and end
    (entries spread over the year), priced at the file's unit cost per year of care (per week x
    365.25 / 7) and discounted like the service's cost (year ``t`` from the service's start at
    ``(1 + discount_rate) ** -t``). A delayed share of prevented entries (``delayed_share``)
    enters care ``delay`` later instead (each draw's delay; a re-entry between two years is
    split between them by the fraction), and the care it would have had from then on is not
    averted. Savings after `horizon` years
    are not counted; the draws are the flows run's.

    The result has the quantities of `evaluate_intervention`, with ``gross_saving``,
    ``net_saving``, ``saving_per_pound``, ``cashable_saving`` and ``break_even_effect`` from the
    flows; ``saving_per_outcome`` is the saving per entry prevented in the service's years.

    Raises
    ------
    UsageError
        The file prices an outcome (``unit_cost`` per outcome) rather than time in care, or a
        horizon shorter than the service runs.
    """
    from bayes_lac.analysis.flows_forecast import flows_forecast
    from bayes_lac.errors import UsageError

    if not isinstance(spec, InterventionSpec):
        spec = load_intervention(spec)
    if spec.unit_cost_per == "outcome":
        raise UsageError(
            f"{spec.path}: the unit cost is per outcome; acting through the flows needs a unit cost per week or "
            "year of care (the care averted is what the flows give)"
        )
    if int(horizon) < spec.years:
        raise UsageError(f"--horizon {horizon}: shorter than the {spec.years} years the service runs")
    fc = flows_forecast(run, la=la, horizon=int(horizon), scenarios=("trend",), seed=seed)
    exit_p = fc.data["exit_probability"].sel(scenario="trend").transpose("draw", "year").values
    n, h = exit_p.shape
    base = evaluate_intervention(spec, draws=n, seed=seed)
    d = base.draws
    per_year = d["outcomes_prevented"].values / spec.years
    delayed = d["delayed_share"].values
    # each draw's delay in years, its re-entry split between the two years it falls between
    delay_years = d["delay"].values * (1.0 if spec.duration_unit == "years" else 7 / 365.25)
    first = np.floor(delay_years).astype(int)
    late = delay_years - first
    rows = np.arange(n)
    unit = d["unit_cost"].values
    per_care_year = unit if spec.unit_cost_per == "year" else unit * 365.25 / 7
    discount = (1 + spec.discount_rate) ** -np.arange(h)

    def saving(prevented_per_year: np.ndarray) -> np.ndarray:
        entries = np.zeros((n, h))
        entries[:, : spec.years] = prevented_per_year[:, None]
        back = delayed * prevented_per_year
        for t in range(spec.years):
            for offset, weight in ((first, 1 - late), (first + 1, late)):
                year = t + offset
                inside = year < h
                np.add.at(entries, (rows[inside], year[inside]), -(back * weight)[inside])
        averted, start, years_of_care = np.zeros(n), np.zeros(n), np.zeros((n, h))
        for t in range(h):
            averted = (start + entries[:, t]) * (1 - exit_p[:, t])
            years_of_care[:, t] = (start + averted) / 2
            start = averted
        return (years_of_care * discount).sum(axis=1) * per_care_year

    gross = saving(per_year)
    annuity = sum((1 + spec.discount_rate) ** -t for t in range(spec.years))
    per_entry = saving(np.ones(n)) / annuity
    cost = d["programme_cost"].values
    with np.errstate(divide="ignore", invalid="ignore"):
        break_even = d["break_even_effect"].values * d["saving_per_outcome"].values / per_entry
    out = d.copy()
    out["gross_saving"] = ("draw", gross)
    out["net_saving"] = ("draw", gross - cost)
    out["saving_per_pound"] = ("draw", gross / cost)
    out["break_even_effect"] = ("draw", break_even)
    out["saving_per_outcome"] = ("draw", per_entry)
    if "cashable_saving" in out:
        share = d["cashable_share"].values
        out["cashable_saving"] = ("draw", share * (gross - cost if spec.cashable_basis == "net" else gross))
    note = (
        f"Savings from the flows forecast of {fc.la_name}, in place of the file's duration of care: each entry "
        "prevented averts the care its forecast chance "
        f"of leaving implies, over {h} years from {fc.last_year + 1} (later years not counted)."
    )
    out.attrs.update(flows_note=note, flows_run_last_year=fc.last_year)
    spec = replace(spec, assumptions=(*spec.assumptions, note))
    return InterventionResult(spec=spec, draws=out, uncertainty=True, scenario="central", seed=seed)


#: Table rows in order; cashable_saving is omitted when the file gives no cashable share.
TABLE_QUANTITIES: tuple[str, ...] = (
    "participants",
    "programme_cost",
    "outcomes_prevented",
    "gross_saving",
    "net_saving",
    "cashable_saving",
    "saving_per_pound",
    "break_even_effect",
)


def _units(spec: InterventionSpec) -> dict[str, str]:
    money = f"£ {spec.period}, {spec.prices}"
    if spec.years > 1 and spec.discount_rate > 0:
        money += f", discounted at {spec.discount_rate:.1%} a year"
    return {
        "participants": f"{spec.participant_unit} {spec.period}",
        "programme_cost": money,
        "outcomes_prevented": f"{spec.outcome_unit} {spec.period}",
        "gross_saving": money,
        "net_saving": money,
        "cashable_saving": money + f" ({spec.cashable_basis} basis)",
        "saving_per_pound": "£ saved per £1 spent",
        "break_even_effect": spec.effect_unit,
        "prob_net_saving": "probability",
    }


def intervention_table(result: InterventionResult, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Summary of an intervention's draws: the numbers behind its sentence and chart.

    Parameters
    ----------
    result
        From `evaluate_intervention`.
    ci_prob
        Probability of the equal-tailed credible interval.

    Returns
    -------
    DataFrame with one row per quantity (participants, programme_cost, outcomes_prevented,
    gross_saving, net_saving, cashable_saving if given, saving_per_pound, break_even_effect,
    prob_net_saving) and columns ``quantity, mean, median, lower, upper, ci_prob, unit``.
    Without uncertainty all four statistics equal the point value. ``prob_net_saving`` has
    only ``mean`` (P(net saving > 0)).
    """
    units = _units(result.spec)
    rows = []
    for name in TABLE_QUANTITIES:
        if name not in result.draws:
            continue
        row = summarise_draws(result.draws[name], sample_dims=("draw",), ci_prob=ci_prob)
        row.insert(0, "quantity", name)
        rows.append(row)
    prob = pd.DataFrame(
        {
            "quantity": ["prob_net_saving"],
            "mean": [result.prob_net_saving],
            "median": [np.nan],
            "lower": [np.nan],
            "upper": [np.nan],
            "ci_prob": [ci_prob],
        }
    )
    table = pd.concat(rows + [prob], ignore_index=True)
    table["unit"] = table["quantity"].map(units)
    return table


def _pounds(x: float) -> str:
    """Whole pounds, rounded as the source report rounds: the point case is shown exactly."""
    x = round_half_up(x)
    return f"-£{-x:,.0f}" if x < 0 else f"£{x:,.0f}"


def _count(x: float) -> str:
    """Outcomes to one decimal place, without a trailing '.0' (21.7 children, 19 incidents)."""
    text = f"{round_half_up(x, 1):,.1f}"
    return text[:-2] if text.endswith(".0") else text


def _range(lower: float, upper: float, formatter, ci_prob: float) -> str:
    return f"{formatter(lower)} to {formatter(upper)}, {format_percent(ci_prob)} credible interval"


def _effect(x: float) -> str:
    """An effect to two significant figures, never in scientific notation (0.048, 2.8, 140)."""
    if not np.isfinite(x):
        return "not defined"
    return np.format_float_positional(float(f"{x:.2g}"), trim="-")


def break_even_words(result: InterventionResult, ci_prob: float | None = CI_PROB) -> str:
    """'It breaks even at 0.048 children prevented per family (0.027 to 0.092, 90% credible
    interval), against the source's 0.16': the break-even effect (median; with its interval unless
    `ci_prob` is None) against the effect the source assumed (its low to high case where it gives
    both)."""
    spec = result.spec
    be = result.draws["break_even_effect"].values
    text = f"It breaks even at {_effect(float(np.median(be)))} {spec.effect_unit}"
    if ci_prob is not None:
        lo, hi = np.quantile(be, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
        text += f" ({_range(lo, hi, _effect, ci_prob)})"
    effect = spec.quantities["effect"]
    assumed = f"{_effect(effect.low)} to {_effect(effect.high)}" if effect.low != effect.high else _effect(effect.point)
    return f"{text}, against the source's {assumed}"


def intervention_finding(result: InterventionResult, ci_prob: float = CI_PROB) -> Finding:
    """The board sentence for an intervention, with its table and the file's assumptions.

    With uncertainty: cost, chance of a net saving, the net (and cashable) saving as a credible
    interval, and the break-even effect against the source's point effect. Without: the
    source's point figures to the pound, marked as having no allowance for uncertainty.
    """
    spec = result.spec
    table = intervention_table(result, ci_prob=ci_prob).set_index("quantity")
    period = spec.period
    caveats = tuple(f"Assumption: {a}" for a in spec.assumptions) + tuple(f"Evidence: {e}" for e in spec.evidence)
    title = f"Invest to save: {spec.name}"
    if not result.uncertainty:
        sentence = (
            f"{spec.name} would cost {_pounds(table.at['programme_cost', 'mean'])} {period} ({spec.prices}), "
            f"prevent {_count(table.at['outcomes_prevented', 'mean'])} {spec.outcome_unit} and save "
            f"{_pounds(table.at['gross_saving', 'mean'])} gross, a net saving of "
            f"{_pounds(table.at['net_saving', 'mean'])}"
        )
        if "cashable_saving" in table.index:
            sentence += f" ({_pounds(table.at['cashable_saving', 'mean'])} directly cashable)"
        if result.scenario == "central":
            scen = ""
        elif any(q.value(result.scenario) != q.point for q in spec.quantities.values()):
            scen = f" (the source's {result.scenario} case)"
        else:
            scen = f" (the source gives no separate {result.scenario} case, so central values)"
        sentence += f". These are point values{scen}, with no allowance for uncertainty."
        return Finding(title=title, sentence=sentence, table=table.reset_index(), ci_prob=ci_prob, caveats=caveats)

    cost = table.loc["programme_cost"]
    if math.isclose(cost["lower"], cost["upper"], rel_tol=1e-12):
        cost_text = f"would cost {format_money(cost['median'])} {period} in {spec.prices}"
    else:
        cost_text = (
            f"would cost about {format_money(cost['median'])} {period} in {spec.prices} "
            f"({_range(cost['lower'], cost['upper'], format_money, ci_prob)})"
        )
    net = table.loc["net_saving"]
    sentence = (
        f"{spec.name} {cost_text}; there is {format_chance(result.prob_net_saving)} it saves more than "
        f"it costs; net saving {format_interval(net['lower'], net['upper'], format_money, ci_prob)}"
    )
    if "cashable_saving" in table.index:
        c = table.loc["cashable_saving"]
        sentence += f", of which {format_money(c['lower'])} to {format_money(c['upper'])} directly cashable"
    sentence += f". {break_even_words(result, ci_prob)}."
    return Finding(title=title, sentence=sentence, table=table.reset_index(), ci_prob=ci_prob, caveats=caveats)


def plot_intervention(result: InterventionResult, *, ax=None, ci_prob: float = CI_PROB):
    """Distribution of the net saving, with zero and the credible interval marked.

    The numbers drawn are in `intervention_table` (row ``net_saving`` and
    ``prob_net_saving``). Without uncertainty the single point value is drawn as a line.

    Returns
    -------
    matplotlib Figure
    """
    from bayes_lac.style import (
        BAND_ALPHA,
        NEIGHBOURS_COLOUR,
        PALETTE,
        TARGET_COLOUR,
        get_axes,
    )

    fig, ax = get_axes(ax)
    spec = result.spec
    net = result.draws["net_saving"].values
    row = intervention_table(result, ci_prob=ci_prob).set_index("quantity").loc["net_saving"]
    scale, label = (1e3, "£ thousand") if np.nanmax(np.abs(net)) < 2e6 else (1e6, "£ million")
    if result.uncertainty:
        ax.hist(net / scale, bins=60, color=PALETTE[2], label="draws of net saving")
        ax.axvspan(
            row["lower"] / scale,
            row["upper"] / scale,
            color=NEIGHBOURS_COLOUR,
            alpha=BAND_ALPHA,
            zorder=0,
            label=f"{format_percent(ci_prob)} credible interval",
        )
        ax.axvline(row["median"] / scale, color=TARGET_COLOUR, linestyle="-", label="median")
        ax.set_ylabel("Number of draws")
        p = result.prob_net_saving
        shown = "> 99%" if p > 0.99 else "< 1%" if p < 0.01 else f"= {format_percent(p)}"
        subtitle = f"P(net saving > 0) {shown}"
    else:
        ax.axvline(row["mean"] / scale, color=TARGET_COLOUR, linestyle="-", linewidth=2, label="point value")
        ax.set_yticks([])
        v = row["mean"] / scale
        pad = 0.15 * max(abs(v), 1.0)
        ax.set_xlim(min(0.0, v) - pad, max(0.0, v) + pad)
        subtitle = "point values, no uncertainty"
    ax.axvline(0, color=TARGET_COLOUR, linestyle="--", linewidth=1, label="break even (zero)")
    ax.set_xlabel(f"Net saving ({label} {spec.period})")
    ax.set_title(f"{spec.name}: net saving\n{subtitle}")
    ax.legend(frameon=False, fontsize="small")
    return fig


def _scaled(q: Quantity, factor: float) -> Quantity:
    """`q` with its values and distribution multiplied by `factor` (> 0): same relative spread."""
    dist = None
    if q.dist is not None:
        dist = {k: (v * factor if k in ("mean", "sd", "lower", "upper", "mode") else v) for k, v in q.dist.items()}
    return replace(q, point=q.point * factor, low=q.low * factor, high=q.high * factor, dist=dist)


def rebase_intervention(
    spec: InterventionSpec, panel: pd.DataFrame, la_code: str, year: int | None = None, prices=None
) -> InterventionSpec:
    """The intervention in the prices and unit costs of `year`, from the data.

    The service's cost per participant moves from the file's ``price_year`` to cash prices of
    `year` with the deflator (`bayes_lac.data.prices`; default the bundled UK GDP deflator).
    The unit cost of care (per year or per week) becomes the authority's own unit cost in `year`,
    as the cost section reads it (`bayes_lac.analysis.costs.unit_cost_history`: the published
    weekly unit cost, or s251 spend per child looked after at 31 March / 52.18), its uncertainty
    keeping the file's relative spread. That is the average cost of a child in care, not the
    cost of the children a service would keep out. A unit cost per outcome (e.g. per incident)
    is deflated like the service's cost.

    Parameters
    ----------
    spec
        A validated intervention with ``price_year``.
    panel
        Panel with the authority's unit cost (``weekly_cost_per_child``, or
        ``spend_looked_after`` with ``looked_after``).
    la_code
        The authority.
    year
        Financial year ending 31 March of the analysis (e.g. 2025 for 2024-25). Default: the
        latest year in which the panel gives the authority a unit cost.
    prices
        A `bayes_lac.data.prices.PriceIndex` (default the bundled UK GDP deflator).

    Returns
    -------
    InterventionSpec with ``price_year`` = `year` and an assumption saying what was rebased.

    Raises
    ------
    InputFileError
        The file has no ``price_year``, or the panel no unit cost for the authority in `year`.
    PanelError
        The panel has no unit cost for the authority at all (`unit_cost_history`).
    """
    from bayes_lac.analysis.costs import WEEKS_PER_YEAR, unit_cost_history
    from bayes_lac.data.prices import price_index

    if spec.price_year is None:
        raise InputFileError(
            f"{spec.path}: price_year is needed to move the £ figures to another year's prices "
            "(add e.g. price_year = 2017 for figures in 2016-17 prices)"
        )
    history = unit_cost_history(panel, la_code)
    year = int(history["year"].max()) if year is None else int(year)
    row = history[history["year"] == year]
    if row.empty:
        have = ", ".join(str(y) for y in history["year"])
        raise InputFileError(
            f"the panel has no unit cost for {la_code} in {year} (weekly_cost_per_child, or spend_looked_after "
            f"and looked_after; it has {have}), so the unit cost of {spec.name} cannot be taken from the data"
        )
    weekly = float(row["weekly_cost_per_child"].iloc[0])
    index = prices if prices is not None else price_index()
    factor = float(index.factor([spec.price_year], year)[0])
    q = dict(spec.quantities)
    q["cost_per_participant"] = _scaled(q["cost_per_participant"], factor)
    old_unit = q["unit_cost"].point
    if spec.unit_cost_per == "outcome":
        q["unit_cost"] = _scaled(q["unit_cost"], factor)
        what = f"the saving per outcome prevented is deflated like the service's cost (x {factor:.3f})"
    else:
        new_unit = weekly * WEEKS_PER_YEAR if spec.unit_cost_per == "year" else weekly
        q["unit_cost"] = _scaled(q["unit_cost"], new_unit / old_unit)
        names = panel.loc[panel["la_code"] == la_code].sort_values("year")["la_name"] if "la_name" in panel else []
        who = str(names.iloc[-1]) if len(names) else la_code
        what = (
            f"the unit cost of care is {who}'s own in {format_financial_year(year)}, £{new_unit:,.0f} a "
            f"{spec.unit_cost_per} (source: {row['source'].iloc[0]}), in place of the file's "
            f"£{old_unit:,.0f} in {format_financial_year(spec.price_year)} prices, with the file's relative uncertainty; "
            "it is the average cost of a child in care, not the cost of the children the service would keep out"
        )
    note = (
        f"Rebased to cash prices of {format_financial_year(year)}: the service's cost moved from "
        f"{format_financial_year(spec.price_year)} prices with {index.source} (x {factor:.3f}); {what}."
    )
    return replace(spec, quantities=q, price_year=year, assumptions=(*spec.assumptions, note))
