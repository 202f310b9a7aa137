"""Forecasts of children looked after, in need and on protection plans, under scenarios.

Everything is computed per posterior draw with numpy from a saved run (no re-sampling of the
model), so a 20-year forecast of 4,000 draws takes a fraction of a second.

Method, per draw (see `bayes_lac.model.results` for the model and the names of its scales)
-------------------------------------------------------------------------------------
* The common year effect continues as a random walk: each future step is drawn from
  Normal(0, year_sigma) with that draw's ``year_sigma``; there is no drift, so the comparison
  set's common level is expected to stay where it was in the last fitted year.
* The authority's own trend (``la_trend``) continues in a straight line on the log scale.
* Persistence: the authority's distance from its path in the last fitted year (``deviation``)
  carries into each next year by the share ``persistence``: the count in year T + h has mean
  path * exp(persistence * deviation in year T + h - 1), with each simulated year's own
  distance feeding the next. ``expected`` decays the last distance without noise
  (persistence ** h). This applies to ``trend``, ``population-only`` and the measures a
  ``target`` scenario does not fix; a prescribed rate path (converge, target) has no term.
* Deprivation is held at its value in the last fitted year.
* Children aged 0-17: see `bayes_lac.data.population` (projected per draw from recent growth, or a
  user's file used as given).
* The modelled count (looked_after: excluding UASC) ~ NegBin(expected, dispersion), variance
  expected + expected**2 / dispersion. Looked-after forecasts add the future UASC count: by
  default held at the last observed count; with ``uasc_rate`` it is that share of the child
  population (0.001 is the National Transfer Scheme threshold of 0.1 %). UASC is not modelled,
  so its uncertainty is not in the intervals, unless ``uasc_path="stochastic"`` draws a path
  around that level per draw (`bayes_lac.model.uasc`: past trajectories of the run's
  authorities' published UASC counts, centred so that the median path is the level).

Runs of the latent-state model (`bayes_lac.model.latent_fit`)
-------------------------------------------------------------
The model's part differs (`_latent_part`): each draw's states of the authority in the last
fitted year (its level, and for looked-after children its local trend) are drawn from their
conditional distribution and carried forward with the damped trend and fresh yearly
innovations; the national path continues as a random walk with its estimated drift (with
``national="damped"``, its steps return from the last one towards the drift); deprivation is
held. The states already sit where the counts are (the model's path follows
the data), so there is no persistence term. Counts have Poisson noise with the model's extra
log-scale noise (the likelihood's observation model); ``expected`` is the count at the latent
rate, the median of that noise (its mean is higher by a factor exp(noise**2 / 2), under 1 %
for the noise fitted to English counts). By default (``tails="student"``) the level's yearly
shocks and that extra noise keep the variances the model estimates and take, per measure, the
tails of the fit's standardised one-step-ahead errors (a Student t of unit variance,
`bayes_lac.model.latent.tail_df`), which were measured heavier than normal. Population, UASC and the scenarios are as above.

Scenarios (`Scenario`)
----------------------
``trend``
    The model's own projection, as above.
``population-only``
    Each draw's modelled rate held at its level in the last fitted year; only the child
    population (and the UASC assumption) changes.
``converge-england``
    The rate per 10,000 of the *published* measure (looked_after including UASC) moves from
    each draw's modelled rate in the last fitted year to England's latest published rate
    (the run's ``reference`` group, latest year up to the last fitted year), in equal steps
    on the log-rate scale (equal percentage changes each year) over 5 years, then holds.
``converge-neighbours``
    As ``converge-england`` with, as the target, the neighbours' pooled modelled rate in the
    last fitted year (per draw: sum of expected counts over sum of population).
``uasc-nts``
    ``trend`` with future UASC at the National Transfer Scheme's threshold, 0.1 % of the child
    population (`NTS_SHARE`), instead of the held count.
``target:RATE@YEAR``
    The published looked-after rate moves (log scale, equal steps) from the last fitted year
    to RATE per 10,000 by 31 March YEAR, then holds; the other measures follow ``trend``.

In the converge and target scenarios the published rate is fixed by the scenario, so for
looked_after the non-UASC part is that rate's count minus the assumed UASC count.

Draws of chain x draw are stacked into one ``draw`` dimension. Scenarios share the same
random-walk steps, population paths and negative-binomial over-dispersion (gamma-Poisson
mixing variable) per draw, so per-draw differences between scenarios carry only the
differences that the scenarios make, plus independent Poisson noise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, MEASURE_LABELS, RATE_PER, interval_bounds
from bayes_lac.data.panel import missing_england
from bayes_lac.data.population import project_population, read_population_file
from bayes_lac.errors import BayesLacError, RunFileError, ScenarioError, UnknownAuthorityError
from bayes_lac.model.path import log_rate_path, persist_forward
from bayes_lac.model.results import deviation, run_info
from bayes_lac.summaries import (
    Finding,
    format_chance,
    format_count,
    format_percent,
    format_rate,
    join_words,
    summarise_draws,
)

#: The National Transfer Scheme's threshold for UASC: 0.1 % of an authority's child population
#: (the ``uasc-nts`` scenario: the trend with future UASC at that share).
NTS_SHARE: float = 0.001
#: Years over which the converge scenarios move to their target.
CONVERGE_YEARS: int = 5
#: Longest forecast horizon, in years after the last fitted year.
MAX_HORIZON: int = 20
#: Inner band of fan charts (the outer band is the credible interval, `CI_PROB` by default).
INNER_PROB: float = 0.5

SCENARIO_KINDS: tuple[str, ...] = ("trend", "population-only", "converge-england", "converge-neighbours", "target")
FORECAST_TABLE_COLUMNS: tuple[str, ...] = (
    "la_code",
    "measure",
    "year",
    "scenario",
    "mean",
    "median",
    "lower",
    "upper",
    "ci_prob",
)

_TARGET_PATTERN = re.compile(r"^target:\s*([0-9]*\.?[0-9]+)\s*@\s*([0-9]{4})$")


@dataclass(frozen=True)
class Scenario:
    """A forecast scenario.

    Parameters
    ----------
    kind
        One of ``trend``, ``population-only``, ``converge-england``, ``converge-neighbours``,
        ``target``.
    target_rate
        For ``target``: rate per 10,000 children aged 0-17 of the published `measure`.
    target_year
        For ``target``: the 31 March year by which the target is reached (then held).
    measure
        For ``target``: the measure the target applies to; the others follow ``trend``.
    uasc_rate
        Future UASC as a share of the child population (e.g. 0.001 = 0.1 %) in this scenario;
        None uses the forecast's setting.
    name
        Label in tables and charts; by default derived from the settings.
    """

    kind: str = "trend"
    target_rate: float | None = None
    target_year: int | None = None
    measure: str = "looked_after"
    uasc_rate: float | None = None
    name: str = ""

    def __post_init__(self):
        if self.kind not in SCENARIO_KINDS:
            raise ValueError(f"unknown scenario kind {self.kind!r}; expected one of {', '.join(SCENARIO_KINDS)}")
        if self.kind == "target":
            if self.target_rate is None or self.target_year is None:
                raise ValueError("a target scenario needs target_rate (per 10,000) and target_year")
            if not self.target_rate > 0:
                raise ValueError(f"target_rate must be a positive rate per 10,000, got {self.target_rate}")
        if self.uasc_rate is not None and not 0 <= self.uasc_rate < 1:
            raise ValueError(f"uasc_rate is a share of the child population in [0, 1), got {self.uasc_rate}")
        if not self.name:
            if self.kind == "target":
                name = f"target:{self.target_rate:g}@{int(self.target_year)}"
                if self.measure != "looked_after":
                    name += f" ({self.measure})"
            else:
                name = self.kind
            if self.uasc_rate is not None:
                name += f", UASC {100 * self.uasc_rate:g}%"
            object.__setattr__(self, "name", name)

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """A scenario from its command-line form: a kind, or ``target:RATE@YEAR``."""
        text = text.strip()
        match = _TARGET_PATTERN.match(text)
        if match:
            return cls(kind="target", target_rate=float(match.group(1)), target_year=int(match.group(2)))
        if text in SCENARIO_KINDS and text != "target":
            return cls(kind=text)
        if text == "uasc-nts":
            return cls(kind="trend", uasc_rate=NTS_SHARE, name="uasc-nts")
        raise BayesLacError(
            f"unknown scenario {text!r}; expected trend, population-only, converge-england, "
            "converge-neighbours, uasc-nts or target:RATE@YEAR (e.g. target:70@2030)"
        )


def parse_scenarios(spec: str | Iterable) -> tuple[Scenario, ...]:
    """Scenarios from a comma-separated string or an iterable of names / `Scenario` objects."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        if isinstance(item, Scenario):
            out.append(item)
        elif str(item).strip():
            out.append(Scenario.parse(str(item)))
    if not out:
        raise BayesLacError("no scenarios given")
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise BayesLacError(f"scenario names must be unique, got {', '.join(names)}")
    return tuple(out)


@dataclass(frozen=True)
class Forecast:
    """A forecast for one authority under scenarios, per posterior draw.

    Attributes
    ----------
    data
        Dataset with dims (draw, measure, scenario, year), ``year`` = 31 March years after the
        last fitted year:

        * ``predicted``: predictive count of the published measure (with negative-binomial
          noise; looked_after includes UASC). Intervals on counts come from this.
        * ``expected``: expected modelled count (looked_after excludes UASC), no noise.
        * ``expected_reported``: ``expected`` plus UASC for looked_after.
        * ``rate``: expected rate of the published measure per 10,000 children aged 0-17.
        * ``uasc`` (draw, scenario, year): UASC count assumed.
        * ``population_0_17`` (draw, year): children aged 0-17 assumed.
    la_code, la_name
        The authority.
    base_year
        Last fitted year (31 March); the forecast starts the year after.
    scenarios
        The scenarios, in the order of the ``scenario`` coordinate.
    assumptions
        Sentences stating every assumption made, for tables and reports.
    history
        Published counts and rates of the authority in the fitted years: columns ``measure,
        year, reported_count, population_0_17, reported_rate`` (rate per 10,000 aged 0-17).
    base
        Dataset (draw, measure) of the last fitted year: ``expected_reported`` and ``rate``.
    converged
        Whether the run passed its convergence diagnostics.
    """

    data: xr.Dataset
    la_code: str
    la_name: str
    base_year: int
    scenarios: tuple[Scenario, ...]
    assumptions: tuple[str, ...]
    history: pd.DataFrame = field(repr=False)
    base: xr.Dataset = field(repr=False)
    converged: bool = True

    @property
    def horizon(self) -> int:
        return int(self.data["year"].max()) - self.base_year

    @property
    def scenario_names(self) -> list[str]:
        return [str(s) for s in self.data["scenario"].values]


# --------------------------------------------------------------------------------------------
# Computing the forecast
# --------------------------------------------------------------------------------------------


def _flat(da: xr.DataArray, *dims: str) -> np.ndarray:
    """Values with chain x draw stacked into one leading axis, then `dims` in order."""
    arr = da.transpose("chain", "draw", *dims).values
    return arr.reshape((-1,) + arr.shape[2:])


def _england_rates(results: xr.DataTree, base_year: int, measures: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """England's published rate per 10,000 aged 0-17 in the latest year up to `base_year`."""
    if "reference" not in results.children:
        raise RunFileError("the run has no 'reference' group (England's counts), needed by converge-england")
    ref = results["reference"].to_dataset()
    if ref["population_0_17"].isnull().all() and ref["count"].isnull().all():
        raise missing_england(
            "the forecast scenario converge-england",
            "the panel this run was fitted on",
            hint=", and refit; or choose other scenarios, e.g. --scenario trend,population-only "
            "(the board report always shows converge-england)",
        )
    rates, notes = [], []
    for m in measures:
        count = ref["count"].sel(measure=m)
        pop = ref["population_0_17"]
        ok = (count.notnull() & pop.notnull() & (pop > 0) & (count["year"] <= base_year)).values
        if not ok.any():
            raise RunFileError(
                f"the run's reference group has no England count and population for {m} up to {base_year}"
            )
        year = int(count["year"].values[ok].max())
        r = float(count.sel(year=year)) / float(pop.sel(year=year)) * RATE_PER
        rates.append(r)
        notes.append(f"{MEASURE_LABELS.get(m, m)} {format_rate(r)} ({year})")
    return np.array(rates), notes


def _neighbour_rates(
    results: xr.DataTree, base_year: int, measures: Sequence[str], la_code: str
) -> tuple[np.ndarray, list[str]]:
    """Per draw, the pooled modelled rate of the published measure in `base_year` of the
    authority's neighbours in the run (`bayes_lac.model.results.RunInfo.neighbours_of`)."""
    from bayes_lac.model import results as R

    codes = list(R.run_info(results, allow_latent=True).neighbours_of(la_code))
    if not codes:
        raise BayesLacError(f"converge-neighbours needs the run's neighbours of {la_code}, but the run has none")
    exp = R.expected_reported(results, la=codes).sel(year=base_year)
    pop = results["constant_data"]["population_0_17"].sel(la=codes, year=base_year)
    # an authority without a modelled count of a measure (a latent series not started) is left
    # out of that measure's numerator and denominator alike
    pop = pop.broadcast_like(exp).where(exp.notnull())
    pooled = exp.sum("la") / pop.sum("la") * RATE_PER
    arr = _flat(pooled.sel(measure=list(measures)), "measure")
    return arr, codes


@dataclass(frozen=True)
class _ModelPart:
    """What a forecast takes from the model for one authority, per draw (N draws, M measures,
    H years): the modelled count's log rate in the last fitted year (N, M) and on the model's
    own projection (N, M, H), the share of the last year's distance from the path carried
    forward (N, M) and that distance (N, M; NaN where there is no count), the count's noise
    around its expected value (`noise_factor`: a multiplier per draw, measure and year, drawn
    when called, the count then Poisson around the expected count times it; or `observe`, which,
    called with the generator and the horizon, returns the function of (year index, expected
    counts (N, M, S)) that draws the counts) and the sentences that state the model's part of the
    assumptions."""

    log_rate_last: np.ndarray
    log_rate_trend: np.ndarray
    persistence: np.ndarray
    dev_last: np.ndarray
    noise_factor: object
    assumptions: tuple[str, ...]
    observe: object = None


def _default_part(results, info, la_code: str, measures, years, rng) -> _ModelPart:
    """The default model's part (see the module docstring): its random-walk year effect,
    straight-line own trend, persistence of the last distance and negative-binomial noise."""
    post = results["posterior"].to_dataset()
    base_year = info.last_year
    intercept = _flat(post["intercept"], "measure")
    la_intercept = _flat(post["la_intercept"].sel(la=la_code), "measure")
    la_trend = _flat(post["la_trend"].sel(la=la_code), "measure")
    ye_last = _flat(post["year_effect"].sel(year=base_year), "measure")
    year_sigma = _flat(post["year_sigma"], "measure")
    dep_effect = _flat(post["deprivation_effect"], "measure")
    dispersion = _flat(post["dispersion"], "measure")
    if "persistence" not in post:
        raise RunFileError("the run has no 'persistence' variable: it was made by an older bayes_lac; refit it")
    persistence = _flat(post["persistence"], "measure")
    n_draws = intercept.shape[0]
    dep_last = float(results["constant_data"]["deprivation"].sel(la=la_code, year=base_year))
    reference_year, centre = info.reference_year, info.deprivation_centre
    # distance of the last fitted year's count from the path, per draw (N, M); NaN if blank
    dev_last = _flat(deviation(results, la_code).sel(year=base_year, measure=list(measures)), "measure")
    log_rate_last = log_rate_path(
        intercept, la_intercept, la_trend, ye_last, dep_effect, dep_last, base_year, reference_year, centre
    )["log_rate"]
    horizon = len(years)
    rw_steps = rng.standard_normal((n_draws, len(measures), horizon)) * year_sigma[:, :, None]
    ye_future = ye_last[:, :, None] + np.cumsum(rw_steps, axis=2)
    log_rate_trend = log_rate_path(
        intercept[:, :, None],
        la_intercept[:, :, None],
        la_trend[:, :, None],
        ye_future,
        dep_effect[:, :, None],
        dep_last,
        years,
        reference_year,
        centre,
    )["log_rate"]

    def noise_factor(rng, horizon):
        # negative-binomial noise as a gamma-Poisson mixture
        shape = (n_draws, len(measures), horizon)
        return rng.gamma(shape=dispersion[:, :, None], scale=1.0 / dispersion[:, :, None], size=shape)

    return _ModelPart(
        log_rate_last=log_rate_last,
        log_rate_trend=log_rate_trend,
        persistence=persistence,
        dev_last=dev_last,
        noise_factor=noise_factor,
        assumptions=(
            "The common year effect continues as a random walk without drift (steps drawn with each draw's "
            "year_sigma); the authority's own trend continues on the log scale.",
            "Counts at 31 March have negative-binomial noise around the expected count (the model's dispersion).",
        ),
    )


def _latent_part(results, info, la_code: str, measures, years, rng, start="state", tails="student") -> _ModelPart:
    """The latent-state model's part: the authority's states in the last fitted year (drawn per
    posterior draw, `bayes_lac.model.latent_fit.authority_states`) carried forward with their
    damped local trend and fresh innovations, the national path with its drift, and the
    likelihood's noise (Poisson with the model's extra log-scale noise). With `start`
    ``"published"`` each draw's path is moved to start at the
    published count of the last fitted year (`bayes_lac.model.latent.start_offsets`), with
    ``"state"`` at the model's state; either way nothing is carried as a distance from a
    path. With `tails` ``"student"`` the level's shocks and the extra noise keep the variances
    the model estimates and take, per measure, the tails of the fit's one-step errors
    (`bayes_lac.model.latent_fit.tail_errors`); with ``"normal"`` they are normal."""
    from bayes_lac.model import latent as L
    from bayes_lac.model.latent_fit import authority_states, data_of, forecast_tails

    data = data_of(results)
    if list(data.measures) != list(measures):
        raise RunFileError(f"the latent run's measures {data.measures} differ from its posterior's {measures}")
    draws, states, arrays = authority_states(results, [la_code], data)
    df = forecast_tails(results, tails)
    started = states["started"][:, 0, -1]  # (M,): the series has begun by the last fitted year
    log_rate_last = (states["mean"] + states["level"])[:, :, 0, -1]  # NaN: a series not started
    log_rate_trend = L.forecast_log_rates(data, draws, states, len(years), rng, arrays=arrays, tails=df)[:, :, 0, :]
    j = data.la.index(la_code)
    count_last = data.modelled_count[:, j, -1]
    state_count = np.exp(log_rate_last) * data.population_0_17[j, -1] / RATE_PER  # (N, M)
    offset = L.start_offsets(
        log_rate_last[:, :, None], count_last[:, None], data.population_0_17[[j], -1], measures, start
    )[:, :, 0]
    moved = [m for k, m in enumerate(measures) if (offset[:, k] != 0).any()]
    log_rate_last = log_rate_last + offset
    log_rate_trend = log_rate_trend + offset[:, :, None]
    n_draws = log_rate_last.shape[0]
    noise = draws["noise"]  # (N, M)

    def noise_factor(rng, horizon):
        eps = L.unit_shocks(rng, (n_draws, len(measures), horizon), df[:, None])
        return np.exp(noise[:, :, None] * eps)

    observe = None
    noise_sentence = (
        "Counts at 31 March have Poisson noise around the expected count, with the model's extra "
        "year-to-year noise on the log scale."
    )
    if "count_share" in draws:
        share = draws["count_share"]

        def observe(rng, horizon):
            # one shock per draw, measure and year, shared by the scenarios
            eps = L.unit_shocks(rng, (n_draws, len(measures), horizon), df[:, None])
            return lambda h, mean: L.observed_counts(mean, noise[:, :, None], share[:, :, None], eps[:, :, None, h])

        shared = [MEASURE_LABELS.get(m, m).lower() for m in measures if m in L.COUNT_SHARE_MEASURES]
        noise_sentence = (
            "Counts at 31 March vary around the expected count as in the model's likelihood: on the log scale, "
            "with the variance of a Poisson count"
            + (f" (for {', '.join(shared)}, the share of it the model estimates)" if shared else "")
            + " plus the model's extra year-to-year noise."
        )

    damped = "national_damping" in draws
    national = (
        "The national path's yearly steps continue from the last one back towards its estimated drift"
        if damped
        else "The national path continues as a random walk with its estimated drift"
    )
    if moved:
        gaps = "; ".join(
            f"{MEASURE_LABELS.get(m, m).lower()}{' excluding UASC' if m == 'looked_after' else ''} "
            f"{count_last[k]:,.0f} published against {np.nanmedian(state_count[:, k]):,.0f} modelled"
            for k, m in enumerate(measures)
            if m in moved
        )
        where = (
            f"from the published {info.last_year} count (the model's own state there, which treats part of "
            f"each year's count as noise, is moved to it in every draw: {gaps})"
        )
        others = [m for k, m in enumerate(measures) if started[k] and m not in moved]
        if others:
            where += (
                f"; {join_words([MEASURE_LABELS.get(m, m).lower() for m in others])} from where the model puts "
                "the authority in that year"
            )
    else:
        where = "from where the model puts it in the last fitted year"
    heavy = [
        f"a Student t with {df[k]:g} degrees of freedom for {MEASURE_LABELS.get(m, m).lower()}"
        for k, m in enumerate(measures)
        if np.isfinite(df[k])
    ]
    shocks = (
        "The authority's yearly level shocks and year-to-year noise have the variances the model estimates and "
        "the tails of its one-step-ahead errors in the fitted years: "
        + join_words(heavy)
        + (" (the other measures normal)" if len(heavy) < len(measures) else "")
        + "."
        if heavy
        else "The authority's yearly level shocks and year-to-year noise are normal, as in the model's likelihood."
    )
    assumptions = [
        f"{national}; the authority's own level "
        f"continues {where}, with its damped local trend "
        f"({', '.join(MEASURE_LABELS.get(m, m).lower() for m in json.loads(results.attrs['trend_measures'])) or 'none'}; "
        "the other measures' levels are random walks), with fresh yearly innovations.",
        shocks,
        noise_sentence,
    ]
    absent = [m for j, m in enumerate(measures) if not started[j]]
    if absent:
        assumptions.append(f"No count of {', '.join(absent)} for {la_code} by {info.last_year}: no forecast of it.")
    return _ModelPart(
        log_rate_last=log_rate_last,
        log_rate_trend=log_rate_trend,
        persistence=np.zeros_like(log_rate_last),
        dev_last=np.zeros_like(log_rate_last),
        noise_factor=noise_factor,
        assumptions=tuple(assumptions),
        observe=observe,
    )


def _poisson(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Poisson counts of `mean`; NaN where the mean is NaN (a measure without a forecast)."""
    known = np.isfinite(mean)
    counts = rng.poisson(np.where(known, mean, 0.0)).astype(float)
    return np.where(known, counts, np.nan)


def forecast(
    results: xr.DataTree,
    la: str | None = None,
    horizon: int = 10,
    scenarios=("trend", "population-only", "converge-england"),
    population=None,
    uasc_rate: float | None = None,
    seed: int = 0,
    uasc_path: str = "hold",
    start: str | None = None,
    tails: str | None = None,
) -> Forecast:
    """Forecast counts and rates 1 to `horizon` years after the last fitted year.

    Parameters
    ----------
    results
        A run (see `bayes_lac.model.results`).
    la
        ONS code of the authority; default the run's target authority.
    horizon
        Years ahead, 1 to 20.
    scenarios
        Names (``trend``, ``population-only``, ``converge-england``, ``converge-neighbours``,
        ``uasc-nts``, ``target:RATE@YEAR``), `Scenario` objects, or one comma-separated string.
    population
        Future children aged 0-17: None (projected per draw from the last five years' growth),
        a CSV path (columns ``year, population_0_17[, la_code]``), or a Series indexed by year.
    uasc_rate
        Future UASC as a share of the child population (e.g. 0.001); None holds the UASC
        count at its last observed level.
    seed
        Seed of the predictive draws (random-walk steps, population growth, count noise).
    uasc_path
        ``"hold"`` (default): future UASC are the held count or the `uasc_rate` share, without
        uncertainty; ``"stochastic"``: a path per draw around that (`bayes_lac.model.uasc`: one
        past trajectory of a run's authority's published UASC counts, centred so that the median
        stays at the base), the same path in every scenario.
    start
        Runs of the latent-state model only: where each measure's forecast starts in the last
        fitted year, ``"published"`` (at the published count; the model's own state there
        treats part of each count as noise) or ``"state"`` (where the model puts the
        authority). None: `bayes_lac.model.latent.DEFAULT_FORECAST_START`.
    tails
        Runs of the latent-state model only: ``"student"`` (the level's yearly shocks and the
        year-to-year noise with the model's variances and the tails of its one-step errors) or
        ``"normal"`` (as in the likelihood). None: `bayes_lac.model.latent.DEFAULT_TAILS`.

    Returns
    -------
    Forecast
    """
    if not 1 <= int(horizon) <= MAX_HORIZON:
        raise BayesLacError(f"horizon must be 1 to {MAX_HORIZON} years, got {horizon}")
    horizon = int(horizon)
    if uasc_rate is not None and not 0 <= uasc_rate < 1:
        raise BayesLacError(f"uasc_rate is a share of the child population in [0, 1) (0.001 = 0.1%), got {uasc_rate}")
    if uasc_path not in ("hold", "stochastic"):
        raise BayesLacError(f"uasc_path must be hold or stochastic, got {uasc_path!r}")
    scens = parse_scenarios(scenarios)
    rng = np.random.default_rng(seed)

    info = run_info(results, allow_latent=True)
    post = results["posterior"].to_dataset()
    const = results["constant_data"].to_dataset()
    la_code = la or info.target_la
    if la_code not in info.authorities:
        raise UnknownAuthorityError(f"authority {la_code} is not in this run (it holds {', '.join(info.authorities)})")
    measures = [str(m) for m in post["intercept"]["measure"].values]
    for s in scens:
        if s.kind == "target" and s.measure not in measures:
            raise BayesLacError(f"scenario {s.name}: measure {s.measure!r} is not in this run ({', '.join(measures)})")
    base_year = info.last_year
    years = np.arange(base_year + 1, base_year + horizon + 1)
    steps = np.arange(1, horizon + 1)
    is_lac = np.array([m == "looked_after" for m in measures])
    la_name = info.la_name(la_code)
    assumptions: list[str] = []

    c = const.sel(la=la_code)
    pop_hist = c["population_0_17"].to_series()
    pop_last = float(c["population_0_17"].sel(year=base_year))
    dep_last = float(c["deprivation"].sel(year=base_year))
    uasc_last = float(c["uasc"].sel(year=base_year))
    if not np.isfinite(pop_last) or pop_last <= 0:
        raise RunFileError(f"the run has no child population for {la_code} in {base_year}")
    dep_note = f"Deprivation held at its {base_year} value ({dep_last:g})"
    if "deprivation_imputed" in c and bool(c["deprivation_imputed"].sel(year=base_year)):
        dep_note += ", which was imputed in the run"
    assumptions.append(dep_note + ".")

    if info.latent:
        from bayes_lac.model.latent import DEFAULT_FORECAST_START, DEFAULT_TAILS, FORECAST_STARTS, TAILS

        start = DEFAULT_FORECAST_START if start is None else start
        if start not in FORECAST_STARTS:
            raise BayesLacError(f"start must be one of {', '.join(FORECAST_STARTS)}, got {start!r}")
        tails = DEFAULT_TAILS if tails is None else tails
        if tails not in TAILS:
            raise BayesLacError(f"tails must be one of {', '.join(TAILS)}, got {tails!r}")
        part = _latent_part(results, info, la_code, measures, years, rng, start=start, tails=tails)
    elif start is not None:
        raise BayesLacError(
            "start applies to runs of the latent-state model; this run's model carries the last year's distance "
            "from its path forward by its persistence instead"
        )
    elif tails is not None:
        raise BayesLacError("tails applies to runs of the latent-state model; this run's model has its own noise")
    else:
        part = _default_part(results, info, la_code, measures, years, rng)
    assumptions += part.assumptions
    log_rate_last, log_rate_trend, dev_last = part.log_rate_last, part.log_rate_trend, part.dev_last
    persistence = part.persistence
    n_draws = log_rate_last.shape[0]

    # Future child population, (N, H).
    if population is None:
        pop, note = project_population(pop_hist, horizon, n_draws, rng)
        assumptions.append(note)
    else:
        if isinstance(population, pd.Series):
            series = population.astype(float)
            absent = [int(y) for y in years if y not in series.index]
            if absent:
                raise BayesLacError(f"population series has no value for year(s) {', '.join(map(str, absent))}")
            series = series.loc[years]
            source = "a user-supplied series"
        else:
            series = read_population_file(population, la_code=la_code, years=years)
            source = f"the file {population}"
        pop = np.broadcast_to(series.to_numpy(float), (n_draws, horizon)).copy()
        assumptions.append(f"Child population (0-17) taken from {source}, without uncertainty.")

    # UASC per scenario, (N, H): held or a share of the population, and with `uasc_path`
    # "stochastic" one path of multipliers per draw around it, shared by the scenarios.
    factors = None
    if uasc_path == "stochastic":
        from bayes_lac.model import uasc as U

        past = const.sel(year=const["year"] <= base_year)
        try:
            ratios = U.donor_ratios(
                past["uasc"].transpose("la", "year").values,
                past["uasc_imputed"].transpose("la", "year").values.astype(bool),
                horizon,
            )
        except ValueError as err:
            raise BayesLacError(f"uasc_path='stochastic': {err}") from None
        # its own stream: the other draws (and measures) stay those of uasc_path="hold"
        factors = U.stochastic_factors(ratios, (n_draws,), np.random.default_rng([int(seed), 20]))

    def uasc_for(share):
        base = np.full((n_draws, horizon), uasc_last) if share is None else share * pop
        return base if factors is None else U.around(base, factors)

    spread = (
        "its uncertainty is not modelled"
        if factors is None
        else "with a stochastic path around it per draw: a past trajectory of one of the run's authorities' "
        "published UASC counts, centred so that the median path stays at that level in every year"
    )
    if uasc_rate is None:
        assumptions.append(f"Future UASC looked after held at the {base_year} count ({uasc_last:g}); {spread}.")
    else:
        assumptions.append(f"Future UASC looked after = {100 * uasc_rate:g}% of the child population; {spread}.")

    rate_last = (np.exp(log_rate_last) * pop_last / RATE_PER + is_lac * uasc_last) / pop_last * RATE_PER
    targets_needed = {s.kind for s in scens}
    england = neighbours = None
    if "converge-england" in targets_needed:
        england, notes = _england_rates(results, base_year, measures)
        assumptions.append(
            f"converge-england: rates move to England's latest published rate per 10,000 ({'; '.join(notes)}) "
            f"in equal steps on the log scale over {CONVERGE_YEARS} years, then hold."
        )
    if "converge-neighbours" in targets_needed:
        neighbours, codes = _neighbour_rates(results, base_year, measures, la_code)
        assumptions.append(
            f"converge-neighbours: rates move to the neighbours' pooled modelled {base_year} rate "
            f"({len(codes)} authorities, per draw) in equal steps on the log scale over {CONVERGE_YEARS} years, then hold."
        )

    def converge_path(target, years_to_target):
        """Published rate path (N, M, H) from `rate_last` to `target` (N or 1, M)."""
        frac = np.minimum(steps / years_to_target, 1.0)
        lo, lt = np.log(rate_last), np.log(target)
        return np.exp(lo[:, :, None] + (lt - lo)[:, :, None] * frac)

    shape = (n_draws, len(measures), len(scens), horizon)
    # where the persistence term applies: the model's own projections (not a rate path the
    # scenario prescribes), (M, S)
    follows_model = np.ones((len(measures), len(scens)), bool)
    path_counts = np.empty(shape)  # expected counts on each scenario's path (deviation 0)
    uasc_arr = np.empty((n_draws, len(scens), horizon))
    pop_scale = pop[:, None, :] / RATE_PER
    for k, s in enumerate(scens):
        share = s.uasc_rate if s.uasc_rate is not None else uasc_rate
        uasc = uasc_for(share)
        if s.uasc_rate is not None:
            assumptions.append(f"{s.name}: future UASC = {100 * s.uasc_rate:g}% of the child population.")
        uasc_arr[:, k] = uasc
        lac_uasc = is_lac[None, :, None] * uasc[:, None, :]
        if s.kind == "trend":
            modelled = np.exp(log_rate_trend) * pop_scale
        elif s.kind == "population-only":
            modelled = np.exp(log_rate_last)[:, :, None] * pop_scale
        else:
            if s.kind == "converge-england":
                path = converge_path(england[None, :], CONVERGE_YEARS)
            elif s.kind == "converge-neighbours":
                path = converge_path(neighbours, CONVERGE_YEARS)
            else:
                years_to = int(s.target_year) - base_year
                if years_to < 1:
                    raise BayesLacError(
                        f"scenario {s.name}: the target year must be after the last fitted year {base_year}"
                    )
                target = rate_last.copy()
                j = measures.index(s.measure)
                target[:, j] = s.target_rate
                path = converge_path(target, years_to)
                assumptions.append(
                    f"{s.name}: the published {MEASURE_LABELS.get(s.measure, s.measure).lower()} rate moves to "
                    f"{format_rate(s.target_rate)} per 10,000 by 31 March {int(s.target_year)} in equal steps on the "
                    "log scale, then holds; other measures follow the trend."
                )
            modelled = path * pop_scale - lac_uasc
            follows_model[:, k] = False
            if s.kind == "target":
                trend_part = np.exp(log_rate_trend) * pop_scale
                keep = np.array([m != s.measure for m in measures])
                modelled = np.where(keep[None, :, None], trend_part, modelled)
                follows_model[:, k] = keep
            if (modelled <= 0).any():
                raise ScenarioError(
                    s.name,
                    f"scenario {s.name}: the assumed UASC count exceeds the scenario's looked-after count in some "
                    "draws; lower the UASC assumption or raise the target rate",
                )
        path_counts[:, :, k] = modelled

    # Persistence: the authority's distance from its path in the last fitted year carries
    # into the next year by the share `persistence`, and so on (each simulated year's
    # distance feeds the next). The expected path decays the last distance deterministically.
    phi = np.where(follows_model[None, :, :], persistence[:, :, None], 0.0)  # (N, M, S)
    missing_dev = ~np.isfinite(dev_last)
    if missing_dev.any():
        absent = [m for j, m in enumerate(measures) if missing_dev[:, j].all()]
        assumptions.append(
            f"No modelled {base_year} count for {', '.join(absent)}: those forecasts start on the modelled path."
        )
    dev0 = np.where(missing_dev, 0.0, dev_last)[:, :, None]  # (N, M, 1)
    if follows_model.any() and not info.latent:
        assumptions.append(
            f"The authority's {base_year} distance from its modelled path fades by the model's persistence each year "
            f"(posterior median {', '.join(f'{m} {np.median(persistence[:, j]):.2f}' for j, m in enumerate(measures))})."
        )
    decay = phi[..., None] ** steps  # (N, M, S, H)
    expected_arr = path_counts * np.exp(decay * dev0[..., None])
    expected_rep = expected_arr + is_lac[None, :, None, None] * uasc_arr[:, None, :, :]

    # The count's noise around its expected value: one factor per draw, measure and year shared
    # by the scenarios (common random numbers) so per-draw differences are not swamped by noise.
    if part.observe is not None:
        draw_counts = part.observe(rng, horizon)
    else:
        factor = part.noise_factor(rng, horizon)  # (N, M, H)

        def draw_counts(h, mean):
            return _poisson(rng, mean * factor[:, :, None, h])

    predicted = persist_forward(path_counts, phi, draw_counts, deviation=dev0)
    predicted += is_lac[None, :, None, None] * uasc_arr[:, None, :, :]

    coords = {"draw": np.arange(n_draws), "measure": measures, "scenario": [s.name for s in scens], "year": years}
    dims = ("draw", "measure", "scenario", "year")
    data = xr.Dataset(
        {
            "predicted": (dims, predicted),
            "expected": (dims, expected_arr),
            "expected_reported": (dims, expected_rep),
            "rate": (dims, expected_rep / pop[:, None, None, :] * RATE_PER),
            "uasc": (("draw", "scenario", "year"), uasc_arr),
            "population_0_17": (("draw", "year"), pop),
        },
        coords=coords,
    )
    data["predicted"].attrs["units"] = "children (count at 31 March)"
    data["rate"].attrs["units"] = "per 10,000 children aged 0-17"
    base = xr.Dataset(
        {
            "expected_reported": (("draw", "measure"), rate_last * pop_last / RATE_PER),
            "rate": (("draw", "measure"), rate_last),
        },
        coords={"draw": np.arange(n_draws), "measure": measures},
    )
    return Forecast(
        data=data,
        la_code=str(la_code),
        la_name=la_name,
        base_year=base_year,
        scenarios=scens,
        assumptions=tuple(assumptions),
        history=_history(results, la_code, measures),
        base=base,
        converged=info.converged,
    )


def _history(results: xr.DataTree, la_code: str, measures: Sequence[str]) -> pd.DataFrame:
    const = results["constant_data"].to_dataset().sel(la=la_code)
    pop = const["population_0_17"].to_series()
    rows = []
    if "observed_data" in results.children and "reported_count" in results["observed_data"].dataset:
        rep = results["observed_data"]["reported_count"].sel(la=la_code)
        for m in measures:
            counts = rep.sel(measure=m).to_series()
            for year, count in counts.items():
                p = pop.get(year, np.nan)
                rows.append((m, int(year), float(count), float(p), float(count) / float(p) * RATE_PER))
    return pd.DataFrame(rows, columns=["measure", "year", "reported_count", "population_0_17", "reported_rate"])


# --------------------------------------------------------------------------------------------
# Tables, probabilities, sentences
# --------------------------------------------------------------------------------------------

_SCALES = {"count": "predicted", "rate": "rate", "expected": "expected_reported"}


def _variable(forecast: Forecast, scale: str) -> xr.DataArray:
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {', '.join(_SCALES)}, got {scale!r}")
    return forecast.data[_SCALES[scale]]


def _check_names(forecast: Forecast, measures=None, scenarios=None):
    if measures is not None:
        bad = [m for m in measures if m not in forecast.data["measure"].values]
        if bad:
            raise ValueError(f"measure(s) {', '.join(bad)} not in the forecast")
    if scenarios is not None:
        bad = [s for s in scenarios if s not in forecast.scenario_names]
        if bad:
            raise ValueError(f"scenario(s) {', '.join(bad)} not in the forecast ({', '.join(forecast.scenario_names)})")


def forecast_table(
    forecast: Forecast,
    ci_prob: float = CI_PROB,
    measures: Sequence[str] | None = None,
    scenarios: Sequence[str] | None = None,
    scale: str = "count",
) -> pd.DataFrame:
    """Forecast summary: one row per measure, year and scenario.

    Parameters
    ----------
    scale
        ``count``: predictive count of the published measure at 31 March (children);
        ``rate``: expected rate per 10,000 children aged 0-17; ``expected``: expected count
        (no sampling noise).

    Returns
    -------
    DataFrame with columns ``la_code, measure, year, scenario, mean, median, lower, upper,
    ci_prob`` in the units of `scale`.
    """
    measures = list(measures) if measures is not None else None
    scenarios = list(scenarios) if scenarios is not None else None
    _check_names(forecast, measures, scenarios)
    da = _variable(forecast, scale)
    if measures is not None:
        da = da.sel(measure=measures)
    if scenarios is not None:
        da = da.sel(scenario=scenarios)
    table = summarise_draws(da, sample_dims=("draw",), ci_prob=ci_prob)
    table.insert(0, "la_code", forecast.la_code)
    table = table[list(FORECAST_TABLE_COLUMNS)]
    table["year"] = table["year"].astype(int)
    return table.sort_values(["measure", "scenario", "year"], kind="stable").reset_index(drop=True)


def fan_chart_table(
    forecast: Forecast,
    measure: str = "looked_after",
    scenarios: Sequence[str] | None = None,
    scale: str = "count",
    ci_prob: float = CI_PROB,
    inner_prob: float = INNER_PROB,
    checked_horizon: int | None = None,
) -> pd.DataFrame:
    """The numbers `plot_forecast` draws: published history and per-scenario forecast bands.

    Parameters
    ----------
    checked_horizon
        Years ahead up to which forecasts of `measure` have been checked against what happened
        (a backtest; 0 if none). Given, a column ``backtested`` says "yes" or "no" per forecast
        row.

    Returns
    -------
    DataFrame with columns ``la_code, measure, scenario, year, observed, median, lower_inner,
    upper_inner, lower, upper, inner_prob, ci_prob`` (and ``backtested``). History rows have
    ``scenario`` "observed" and only ``observed`` filled (published count, or published rate per
    10,000 aged 0-17).
    """
    scenarios = list(scenarios) if scenarios is not None else forecast.scenario_names
    _check_names(forecast, [measure], scenarios)
    da = _variable(forecast, scale).sel(measure=measure, scenario=scenarios)
    lo, hi = interval_bounds(ci_prob)
    ilo, ihi = interval_bounds(inner_prob)
    q = da.quantile([lo, ilo, 0.5, ihi, hi], dim="draw")
    rows = []
    hist = forecast.history[forecast.history["measure"] == measure].dropna(subset=["reported_count"])
    obs_col = "reported_count" if scale in ("count", "expected") else "reported_rate"
    for _, r in hist.iterrows():
        rows.append({"scenario": "observed", "year": int(r["year"]), "observed": r[obs_col]})
    for s in scenarios:
        for y in da["year"].values:
            v = q.sel(scenario=s, year=y).values
            rows.append(
                {
                    "scenario": s,
                    "year": int(y),
                    "observed": np.nan,
                    "median": v[2],
                    "lower_inner": v[1],
                    "upper_inner": v[3],
                    "lower": v[0],
                    "upper": v[4],
                }
            )
    table = pd.DataFrame(
        rows, columns=["scenario", "year", "observed", "median", "lower_inner", "upper_inner", "lower", "upper"]
    )
    table.insert(0, "measure", measure)
    table.insert(0, "la_code", forecast.la_code)
    table["inner_prob"] = inner_prob
    table["ci_prob"] = ci_prob
    if checked_horizon is not None:
        ahead = table["year"] - forecast.base_year
        table["backtested"] = np.where(ahead <= int(checked_horizon), "yes", "no")
        table.loc[table["scenario"] == "observed", "backtested"] = None
    return table


def plot_forecast(
    forecast: Forecast,
    *,
    measure: str = "looked_after",
    scenarios: Sequence[str] | None = None,
    scale: str = "count",
    ci_prob: float = CI_PROB,
    inner_prob: float = INNER_PROB,
    checked_horizon: int | None = None,
    ax=None,
):
    """Fan chart: published history, and per scenario the median with inner and outer bands.

    With `checked_horizon` (years ahead a backtest has checked; 0 if none), the years beyond
    it are shaded and labelled as not checked. The numbers drawn are `fan_chart_table` with the
    same arguments. Returns the figure.
    """
    from matplotlib.ticker import MaxNLocator

    from bayes_lac.style import BAND_ALPHA, TARGET_COLOUR, get_axes, series_style

    table = fan_chart_table(
        forecast,
        measure=measure,
        scenarios=scenarios,
        scale=scale,
        ci_prob=ci_prob,
        inner_prob=inner_prob,
        checked_horizon=checked_horizon,
    )
    fig, ax = get_axes(ax)
    end = forecast.base_year + forecast.horizon
    if checked_horizon is not None and checked_horizon < forecast.horizon:
        ax.axvspan(
            forecast.base_year + checked_horizon + 0.5,
            end + 0.5,
            color="0.5",
            alpha=0.12,
            linewidth=0,
            label="not checked by the backtest"
            if checked_horizon == 0
            else f"beyond {checked_horizon} year{'s' if checked_horizon > 1 else ''} ahead: not checked by the backtest",
        )
    obs = table[table["scenario"] == "observed"]
    if not obs.empty:
        ax.plot(obs["year"], obs["observed"], color=TARGET_COLOUR, marker="o", linestyle="-", label="Published")
    for i, s in enumerate(s for s in table["scenario"].unique() if s != "observed"):
        t = table[table["scenario"] == s]
        style = series_style(i + 1)
        ax.fill_between(t["year"], t["lower"], t["upper"], color=style["color"], alpha=BAND_ALPHA * 0.6, linewidth=0)
        ax.fill_between(
            t["year"], t["lower_inner"], t["upper_inner"], color=style["color"], alpha=BAND_ALPHA, linewidth=0
        )
        ax.plot(
            t["year"],
            t["median"],
            **style,
            markersize=3,
            label=f"{s} (median)",
        )
    label = MEASURE_LABELS.get(measure, measure)
    ax.set_title(f"{forecast.la_name}: {label.lower()}, forecast from {forecast.base_year}")
    ax.set_xlabel("Year (31 March)")
    ax.set_ylabel("Children at 31 March" if scale != "rate" else "Rate per 10,000 children aged 0-17")
    ax.legend(title=f"Bands: {format_percent(inner_prob)} and {format_percent(ci_prob)}", fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig


def prob_exceeds(
    forecast: Forecast,
    threshold: float,
    year: int,
    measure: str = "looked_after",
    scenario: str = "trend",
    scale: str = "count",
) -> float:
    """Posterior predictive probability that `measure` exceeds `threshold` at 31 March `year`.

    `threshold` is in the units of `scale` (``count``: children; ``rate``: per 10,000 aged 0-17).
    """
    _check_names(forecast, [measure], [scenario])
    if year not in forecast.data["year"].values:
        raise ValueError(
            f"year {year} is not in the forecast ({forecast.base_year + 1}-{forecast.base_year + forecast.horizon})"
        )
    da = _variable(forecast, scale).sel(measure=measure, scenario=scenario, year=year)
    return float((da > threshold).mean())


def exceedance_finding(
    forecast: Forecast,
    threshold: float,
    year: int,
    measure: str = "looked_after",
    scenario: str = "trend",
    ci_prob: float = CI_PROB,
) -> Finding:
    """A sentence such as 'a 70% chance that numbers exceed 320 by March 2028', with the interval."""
    p = prob_exceeds(forecast, threshold, year, measure=measure, scenario=scenario)
    row = forecast_table(forecast, ci_prob=ci_prob, measures=[measure], scenarios=[scenario])
    row = row[row["year"] == year].reset_index(drop=True)
    row["threshold"] = threshold
    row["prob_exceeds"] = p
    noun = MEASURE_LABELS.get(measure, measure).lower()
    sentence = (
        f"Under the {scenario} scenario there is {format_chance(p)} that the number of {noun} in "
        f"{forecast.la_name} exceeds {format_count(threshold)} by March {year} (central forecast "
        f"{format_count(row.loc[0, 'median'])}; {format_percent(ci_prob)} credible interval "
        f"{format_count(row.loc[0, 'lower'])} to {format_count(row.loc[0, 'upper'])})."
    )
    return Finding(
        title=f"Chance of more than {format_count(threshold)} {noun} in March {year}",
        sentence=sentence,
        table=row,
        ci_prob=ci_prob,
        caveats=scenario_assumptions(forecast, scenario),
    )


def scenario_assumptions(forecast: Forecast, scenario: str) -> tuple[str, ...]:
    """The forecast's assumptions that apply to `scenario` (drops other scenarios' notes)."""
    others = [f"{s}:" for s in forecast.scenario_names if s != scenario]
    return tuple(a for a in forecast.assumptions if not any(a.startswith(o) for o in others))


def scenario_difference(
    forecast: Forecast,
    scenario: str,
    baseline: str = "trend",
    measure: str = "looked_after",
    ci_prob: float = CI_PROB,
    scale: str = "count",
) -> pd.DataFrame:
    """Per-draw difference `scenario` minus `baseline`, summarised by year.

    Returns
    -------
    DataFrame with columns ``la_code, measure, year, scenario, baseline, mean, median, lower,
    upper, ci_prob, prob_higher`` (difference in the units of `scale`; ``prob_higher`` is the
    probability that `scenario` is above `baseline`).
    """
    _check_names(forecast, [measure], [scenario, baseline])
    da = _variable(forecast, scale).sel(measure=measure)
    diff = da.sel(scenario=scenario) - da.sel(scenario=baseline)
    diff = diff.drop_vars([c for c in diff.coords if c not in diff.dims])
    table = summarise_draws(diff, sample_dims=("draw",), ci_prob=ci_prob)
    table.insert(0, "baseline", baseline)
    table.insert(0, "scenario", scenario)
    table.insert(0, "measure", measure)
    table.insert(0, "la_code", forecast.la_code)
    table["prob_higher"] = (diff > 0).mean("draw").values
    return table[
        [
            "la_code",
            "measure",
            "year",
            "scenario",
            "baseline",
            "mean",
            "median",
            "lower",
            "upper",
            "ci_prob",
            "prob_higher",
        ]
    ]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def load_checked_run(path, allow_unconverged: bool = False, allow_latent: bool = False) -> xr.DataTree:
    """Load a run; refuse it if it failed its diagnostics, unless allowed (then print the
    loud convergence warning to standard error). A latent-state model's run is read only with
    `allow_latent` (the commands ported to it)."""
    import sys

    from bayes_lac.model.diagnostics import convergence_warning, require_converged
    from bayes_lac.model.results import ANALYSIS_GROUPS, load_run

    run = load_run(path, groups=ANALYSIS_GROUPS, allow_latent=allow_latent)
    diag = require_converged(run, allow_unconverged=allow_unconverged, allow_latent=allow_latent)
    if not diag.converged:
        print(convergence_warning(diag), file=sys.stderr)
    return run
