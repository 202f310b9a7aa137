"""Forecasts of the looked-after stock in flow terms, from a flows run.

`flows_forecast` carries a flows run (`bayes_lac.model.flows`) forward year by year, per
posterior draw, for one authority:

* **Entry rate** (per 10,000 children aged 0-17) and **exit probability** (per child at risk)
  continue as the model has them: the log entry rate and the logit exit probability each take
  a step per year made of the common path's step (scale ``*_year_sigma``) and the authority's
  own walk step (scale ``*_walk_sigma``, with the zero-sum walk's marginal share
  ``(n - 1) / n`` of its variance over ``n`` authorities), from where the authority stands in
  the run's last year. There is no drift: the central path is flat and the fan widens with the
  walks' scales.
* **Children aged 0-17** are projected per draw from recent growth
  (`bayes_lac.data.population.project_population`).
* **Counts.** Each year ``started ~ NegativeBinomial(population / 10,000 x entry rate,
  dispersion)`` and ``ceased ~ Binomial(stock at the start + started, exit probability)``; the
  stock at 31 March is ``stock before + started - ceased + gap``, starting from the published
  stock of the run's last year.
* **The gap.** DfE counts children, not episodes: published stocks change by a little more or
  less than ``started - ceased`` (`bayes_lac.analysis.flows.reconciliation_table`). The
  forecast carries a **measured reconciliation term**: each year's gap is drawn, as a whole
  number, from a normal distribution with the mean and standard deviation of the authority's
  published gaps in the run's years (across the run's authorities, as a share of the stock,
  when the authority has fewer than three). So the forecast is of the published stock, and
  how much of it comes from the gap is in the output (``gap``).

Scenarios (`FlowScenario`, each acting per draw from the first forecast year):

* ``trend``: as above.
* ``entries-10`` / ``entries+5``: the entry rate 10 % lower / 5 % higher than in ``trend``
  (the lever of edge-of-care and pre-birth services).
* ``exits-as-2017``: the exit probability's walk continues from its level in the named year
  (the authority's own, per draw) instead of the last year's.
* ``returns-home-neighbours``: the share of leavers who return home raised (or lowered) to the
  comparison authorities' pooled share, in the latest year whose routes are published, with
  the other routes' exit probabilities unchanged: exit probability ``p x (1 - q) / (1 - q_n)``
  for the authority's share ``q`` and the neighbours' ``q_n`` (the lever of a reunification
  service).

What a forecast does not include: changes in practice beyond the chosen scenario, a new UASC
influx beyond what the entry rate's walk carries (UASC are among the children who start), and
uncertainty in the reconciliation gap's mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.analysis.flows import _stacked, la_names
from bayes_lac.config import CI_PROB, RATE_PER
from bayes_lac.data.population import growth_summary, project_population
from bayes_lac.errors import UsageError
from bayes_lac.model.flows import ROUTES, flows_run_info
from bayes_lac.summaries import Finding, format_count, format_interval, summarise_draws

#: Scenarios `flows_forecast` runs when none are named.
DEFAULT_FLOW_SCENARIOS: tuple[str, ...] = ("trend",)
#: Fewest published gaps of the authority itself for its own reconciliation term.
MIN_GAP_YEARS = 3
_HOME = ROUTES.index("returned_home")


@dataclass(frozen=True)
class FlowScenario:
    """A forecast scenario in flow terms (see the module docstring).

    ``kind`` is ``trend``, ``entries`` (with ``entries_change``, e.g. -0.1 for 10 % fewer),
    ``exits-as`` (with ``exit_year``) or ``returns-home-neighbours``.
    """

    name: str
    kind: str
    entries_change: float = 0.0
    exit_year: int | None = None

    @classmethod
    def parse(cls, text: str) -> FlowScenario:
        """A scenario from its name: ``trend``, ``entries-10``, ``entries+5``, ``exits-as-2017``,
        ``returns-home-neighbours``."""
        name = str(text).strip()
        if name == "trend":
            return cls(name, "trend")
        if name == "returns-home-neighbours":
            return cls(name, "returns-home-neighbours")
        m = re.fullmatch(r"entries([+-])(\d+(?:\.\d+)?)%?", name)
        if m:
            change = float(m.group(2)) / 100 * (1 if m.group(1) == "+" else -1)
            if change <= -1:
                raise UsageError(f"--scenario {name}: entries can fall by less than 100 %")
            return cls(name, "entries", entries_change=change)
        m = re.fullmatch(r"exits-as-(\d{4})", name)
        if m:
            return cls(name, "exits-as", exit_year=int(m.group(1)))
        raise UsageError(
            f"--scenario {name!r}: expected trend, entries-N or entries+N (per cent), exits-as-YEAR "
            "or returns-home-neighbours"
        )

    def describe(self, la_name: str) -> str:
        """The scenario as a condition: "if ..."."""
        if self.kind == "trend":
            return "if the rates of starting and leaving care go on as modelled (no drift)"
        if self.kind == "entries":
            more = "fewer" if self.entries_change < 0 else "more"
            return f"if {abs(self.entries_change):.0%} {more} children start to be looked after than in the trend"
        if self.kind == "exits-as":
            return f"if the chance of leaving care returns to {la_name}'s level of {self.exit_year}"
        return "if as many leavers return home as in the comparison authorities (other routes unchanged)"


@dataclass(frozen=True)
class FlowsForecast:
    """The result of `flows_forecast`.

    ``data`` has dims (scenario, year, draw): ``stock`` (children looked after at 31 March),
    ``started``, ``ceased``, ``gap`` (the reconciliation term), ``entry_rate`` (per 10,000)
    and ``exit_probability``; and ``population_0_17`` (year, draw). ``table`` summarises
    each by scenario and year (median and equal-tailed interval); ``findings`` has one
    sentence per scenario; ``assumptions`` says what the numbers rest on.
    """

    la: str
    la_name: str
    last_year: int
    last_stock: float
    data: xr.Dataset
    table: pd.DataFrame
    findings: tuple[Finding, ...]
    assumptions: tuple[str, ...]


def _gap_model(data: xr.Dataset, t: int) -> tuple[float, float, str]:
    """Mean and sd (children a year) of the authority's reconciliation gap, and a sentence."""
    stock = data["looked_after"].values
    before = np.concatenate([data["looked_after_before"].values[:, None], stock[:, :-1]], axis=1)
    gap = (stock - before) - (data["started"].values - data["ceased"].values)
    own = gap[t][np.isfinite(gap[t])]
    if own.size >= MIN_GAP_YEARS:
        mean, sd = float(own.mean()), float(own.std(ddof=1))
        how = f"the mean ({mean:+.1f}) and spread (sd {sd:.1f}) of its {own.size} published gaps"
        return mean, sd, how
    share = (gap / before)[np.isfinite(gap / before)]
    if share.size < MIN_GAP_YEARS:
        return 0.0, 0.0, "none: too few published gaps in the run to measure it (set to 0)"
    last = float(stock[t][np.isfinite(stock[t])][-1])
    mean, sd = float(share.mean()) * last, float(share.std(ddof=1)) * last
    how = (
        f"its comparison set's published gaps as a share of the stock ({100 * share.mean():+.2f}% a year, "
        f"sd {100 * share.std(ddof=1):.2f} points), the authority having fewer than {MIN_GAP_YEARS} of its own"
    )
    return mean, sd, how


def _last_route_year(data: xr.Dataset, t: int, others: list[int]) -> int | None:
    """Latest year with the returns-home count published for the authority and some neighbour."""
    routes, ceased = data["ceased_by_route"].values[_HOME], data["ceased"].values
    ok_t = np.isfinite(routes[t]) & np.isfinite(ceased[t]) & (ceased[t] > 0)
    ok_n = (np.isfinite(routes[others]) & np.isfinite(ceased[others])).any(axis=0) if others else ok_t & False
    years = data["year"].values.astype(int)[ok_t & ok_n]
    return int(years.max()) if years.size else None


def scenario_problems(run: xr.DataTree, la: str | None, scenarios) -> dict[str, str]:
    """Why each of `scenarios` cannot be forecast for `la` (default the run's target), by
    scenario name, each reason a command-line message (``--la ...: ...`` for what stops every
    scenario, ``--scenario ...: ...`` for one); a scenario that can be forecast is absent.

    Every scenario needs the authority's published stock and child population of the run's
    last year and a population history to project; ``exits-as-YEAR`` needs YEAR in the run;
    ``returns-home-neighbours`` a year with returns home published for the authority and a
    comparison authority.
    """
    target = flows_run_info(run).authority(la)
    chosen = [s if isinstance(s, FlowScenario) else FlowScenario.parse(s) for s in scenarios]
    data = run["flows_data"].to_dataset()
    authorities = [str(c) for c in data["la"].values]
    years = data["year"].values.astype(int)
    t = authorities.index(target)
    pop_hist = pd.Series(data["population_0_17"].values[t], index=years)
    general = None
    if not np.isfinite(data["looked_after"].values[t, -1]) or not np.isfinite(pop_hist.iloc[-1]):
        general = (
            f"--la {target}: the published stock or child population of {years[-1]} is blank; a flows forecast "
            "starts from both"
        )
    else:
        try:
            growth_summary(pop_hist)
        except ValueError as err:
            general = f"--la {target}: its child population cannot be projected ({err})"
    problems = {}
    for s in chosen:
        if general is not None:
            problems[s.name] = general
        elif s.kind == "exits-as" and s.exit_year not in years:
            problems[s.name] = f"--scenario {s.name}: {s.exit_year} is not a year of the run ({years[0]}-{years[-1]})"
        elif s.kind == "returns-home-neighbours" and _last_route_year(data, t, _others(authorities, t)) is None:
            problems[s.name] = (
                f"--scenario {s.name}: no year of the run has returns home published for {la_names(data)[t]} and a "
                "comparison authority"
            )
    return problems


def _others(authorities: list[str], t: int) -> list[int]:
    return [i for i in range(len(authorities)) if i != t]


def flows_forecast(
    run: xr.DataTree,
    la: str | None = None,
    horizon: int = 10,
    scenarios=DEFAULT_FLOW_SCENARIOS,
    ci_prob: float = CI_PROB,
    seed: int = 0,
) -> FlowsForecast:
    """Forecast the authority's looked-after stock from its entries and exits (module docstring).

    Parameters
    ----------
    run
        A flows run (`bayes_lac.model.flows.load_flows_run`).
    la
        Authority (default the run's target); one of the run's authorities.
    horizon
        Years after the run's last year, at least 1.
    scenarios
        Names or `FlowScenario` objects (``trend``, ``entries-10``, ``exits-as-2017``,
        ``returns-home-neighbours``, ...).
    ci_prob
        Probability of the intervals in ``table``.
    seed
        Seed of the random steps, population growth, counts and gaps.

    Raises
    ------
    UsageError
        An authority outside the run, a horizon below 1, a scenario that cannot be read or
        that names a year outside the run, or an authority without the published stock or
        child population of the run's last year.
    """
    info = flows_run_info(run)
    target = info.authority(la)
    if int(horizon) < 1:
        raise UsageError(f"--horizon {horizon}: expected at least 1 year")
    horizon = int(horizon)
    chosen = [s if isinstance(s, FlowScenario) else FlowScenario.parse(s) for s in scenarios]
    if not chosen:
        raise UsageError("--scenario: give at least one scenario")
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        raise UsageError(f"--scenario: each scenario once; got {', '.join(names)}")
    data = run["flows_data"].to_dataset()
    post = run["posterior"].to_dataset()
    authorities = [str(c) for c in data["la"].values]
    years = data["year"].values.astype(int)
    t = authorities.index(target)
    others = _others(authorities, t)
    name = la_names(data)[t]
    last = int(years[-1])
    stock0 = float(data["looked_after"].values[t, -1])
    pop_hist = pd.Series(data["population_0_17"].values[t], index=years)
    problems = scenario_problems(run, target, chosen)
    if problems:
        raise UsageError(next(iter(problems.values())))

    lam = _stacked(post["entry_rate"]).transpose("sample", "la", "year").values[:, t, -1]
    exit_path = _stacked(post["exit_probability"]).transpose("sample", "la", "year").values[:, t]
    p = exit_path[:, -1]
    n = lam.shape[0]

    def scalar(var: str) -> np.ndarray:
        return _stacked(post[var]).values.reshape(n)

    share_walk = np.sqrt((len(authorities) - 1) / len(authorities)) if len(authorities) > 1 else 0.0
    rng = np.random.default_rng(seed)
    # steps shared by every scenario, so scenarios differ only by their lever
    entry_steps = scalar("entry_year_sigma")[:, None] * rng.standard_normal((n, horizon)) + share_walk * scalar(
        "entry_walk_sigma"
    )[:, None] * rng.standard_normal((n, horizon))
    exit_steps = scalar("exit_year_sigma")[:, None] * rng.standard_normal((n, horizon)) + share_walk * scalar(
        "exit_walk_sigma"
    )[:, None] * rng.standard_normal((n, horizon))
    alpha = 1.0 / scalar("entry_inv_sqrt_dispersion") ** 2
    population, pop_note = project_population(pop_hist, horizon, n, rng)
    gap_mean, gap_sd, gap_how = _gap_model(data, t)
    gaps = np.rint(gap_mean + gap_sd * rng.standard_normal((n, horizon)))
    noise_seed = int(rng.integers(2**32))
    assumptions = [
        f"Forecast from {name}'s published stock of {stock0:,.0f} children at 31 March {last}, the flows run's last year.",
        "The entry rate and the exit probability move on from the last year's level each year by steps as large "
        "as the model found for the comparison set and for the authority itself, with no drift.",
        pop_note,
        f"Reconciliation gap (children counted, not episodes) drawn each year from {gap_how}.",
    ]
    home_year = None
    logit = np.log(p / (1 - p))
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("stock", "started", "ceased", "gap", "entry_rate", "exit_probability")
    }
    for s in chosen:
        rate = lam[:, None] * np.exp(np.cumsum(entry_steps, axis=1))
        start_logit = logit
        if s.kind == "entries":
            rate = rate * (1 + s.entries_change)
        if s.kind == "exits-as":
            y = int(np.flatnonzero(years == s.exit_year)[0])
            p_y = exit_path[:, y]
            start_logit = np.log(p_y / (1 - p_y))
        prob = 1 / (1 + np.exp(-(start_logit[:, None] + np.cumsum(exit_steps, axis=1))))
        if s.kind == "returns-home-neighbours":
            home_year = _last_route_year(data, t, others)
            y = int(np.flatnonzero(years == home_year)[0])
            shares = _stacked(post["route_share"]).transpose("sample", "route", "la", "year").values[:, _HOME, :, y]
            weights = np.nan_to_num(data["ceased"].values[others, y])
            q_n = (shares[:, others] * weights).sum(axis=1) / weights.sum()
            q = shares[:, t]
            prob = np.clip(prob * ((1 - q) / (1 - q_n))[:, None], 0.0, 1.0)
        # counts: the same noise stream in every scenario (common random numbers)
        noise = np.random.default_rng(noise_seed)
        stock = np.full(n, stock0)
        paths = {k: np.empty((n, horizon)) for k in ("stock", "started", "ceased")}
        for h in range(horizon):
            mean = population[:, h] / RATE_PER * rate[:, h]
            started = noise.poisson(noise.gamma(alpha, mean / alpha))
            at_risk = np.maximum(np.rint(stock), 0).astype(np.int64) + started
            ceased = noise.binomial(at_risk, prob[:, h])
            stock = np.maximum(stock + started - ceased + gaps[:, h], 0.0)
            paths["stock"][:, h], paths["started"][:, h], paths["ceased"][:, h] = stock, started, ceased
        for k in ("stock", "started", "ceased"):
            out[k].append(paths[k])
        out["gap"].append(gaps)
        out["entry_rate"].append(rate)
        out["exit_probability"].append(prob)
    if home_year is not None:
        assumptions.append(
            f"Returns home at the comparison authorities' share: the shares of leavers returning home in {home_year}, "
            "the latest year with them published; the comparison authorities' share pools their leavers."
        )
    future = np.arange(last + 1, last + horizon + 1)
    coords = {"scenario": names, "year": future, "draw": np.arange(n)}
    ds = xr.Dataset(
        {k: (("scenario", "draw", "year"), np.stack(v)) for k, v in out.items()},
        coords=coords,
    ).transpose("scenario", "year", "draw")
    ds["population_0_17"] = (("year", "draw"), population.T)
    ds.attrs.update(la=target, la_name=name, last_year=last, last_stock=stock0)
    rows = []
    for var in ("stock", "started", "ceased", "gap", "entry_rate", "exit_probability"):
        s = summarise_draws(ds[var], sample_dims=("draw",), ci_prob=ci_prob)
        s.insert(0, "quantity", var)
        rows.append(s)
    table = pd.concat(rows, ignore_index=True)
    table.insert(0, "la_code", target)
    findings = tuple(_finding(ds, s, name, last, stock0, ci_prob) for s in chosen)
    return FlowsForecast(target, name, last, stock0, ds, table, findings, tuple(assumptions))


def _finding(ds: xr.Dataset, s: FlowScenario, name: str, last: int, stock0: float, ci_prob: float) -> Finding:
    """The scenario's stock five years on (or at the horizon, if shorter), in a sentence."""
    years = ds["year"].values
    year = int(years[min(4, len(years) - 1)])
    table = summarise_draws(ds["stock"].sel(scenario=s.name, year=year), sample_dims=("draw",), ci_prob=ci_prob)
    row = table.iloc[0]
    sentence = (
        f"{s.describe(name)[0].upper()}{s.describe(name)[1:]}, {name} would have {format_count(row['median'])} "
        f"children looked after in March {year} ({format_interval(row['lower'], row['upper'], ci_prob=ci_prob)}), "
        f"against {format_count(stock0)} in March {last}."
    )
    return Finding(title=f"{name}: {s.name}, {year}", sentence=sentence, table=table, ci_prob=ci_prob)
