"""Flows analyses: the reconciliation of stock and flows, and what drove a change in the stock.

* `reconciliation_table` (panel only): for each authority and year, the change in the
  published stock against ``started - ceased``. DfE counts children, not episodes, so the two
  differ; the gap is shown, never removed.
* `flows_split` (a flows run from `bayes_lac.model.flows`): the change in the stock between
  two years split, per posterior draw, into **entries** (the entry rate per 10,000 children
  moving away from its first-year level) and **exits** (the exit probability moving), with
  exits split further by route, for the authority, its comparison set and England.
* `exit_trends` (a flows run): exit probability and each route's share of exits by year, for
  the authority, its comparison set (pooled) and England.

The split is a Shapley split of the stock recursion ``S[t] = S[t-1] + E[t] - X[t]``, with
``E[t] = population[t] / 10,000 * entry_rate[t]`` and ``X[t] = (S[t-1] + E[t]) * sum_r
p_r[t]``, where ``p_r = exit_probability * share_r`` is the probability of leaving by route
``r`` ("other" takes the rest of the exit probability). The players are the entry rate and
the five route probabilities; each is either held at its level in the first year or follows
its posterior path. Their values add up to ``S_modelled[Y1] - S_held[Y1]``, where ``S_held``
holds every player at the first year's level (with the actual population): that path's change
is reported as ``baseline`` (where the stock was heading at the first year's rates, with the
actual child population), so that ``baseline + entries + exits`` is the modelled change. The
published change and the difference between the two (``published_minus_modelled``: the
children-versus-episodes gap plus the year-to-year noise the rates do not carry) are reported
beside it.

England is not in the flows model: its rates are drawn from the published counts
(entry rate ``Gamma(started + 1/2, population / 10,000)``, probabilities
``Beta(count + 1/2, at risk - count + 1/2)``, independently by year; England's counts are
tens of thousands, so these intervals are narrow), and its exits are split by route only
when every year of the span has every route published.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.config import CI_PROB, ENGLAND_CODE, RATE_PER
from bayes_lac.data.panel import FLOW_COLUMNS, ROUTE_COLUMNS, is_authority
from bayes_lac.errors import PanelError, UsageError
from bayes_lac.model.flows import ROUTES, flows_run_info
from bayes_lac.summaries import Finding, format_count, format_percent, summarise_draws

#: Columns of `reconciliation_table`.
RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "la_code",
    "la_name",
    "year",
    "looked_after_start",
    "started",
    "ceased",
    "looked_after_end",
    "stock_change",
    "started_minus_ceased",
    "gap",
    "gap_share_of_start",
    "note",
)
#: Components of `flows_split`, in table order.
COMPONENTS: tuple[str, ...] = (
    "published_change",
    "modelled_change",
    "baseline",
    "entries",
    "exits",
    *(f"exits_{r}" for r in (*ROUTES, "other")),
    "published_minus_modelled",
)
_PLAYERS: tuple[str, ...] = ("entries", *ROUTES, "other")


# -- reconciliation (panel only) ------------------------------------------------------------


def reconciliation_table(panel: pd.DataFrame, codes: list[str] | None = None) -> pd.DataFrame:
    """Stock change against started minus ceased, per area and year.

    Parameters
    ----------
    panel
        A validated panel with ``started`` and ``ceased``.
    codes
        Areas to show (default: every area of the panel, England and regions included).

    Returns
    -------
    DataFrame with `RECONCILIATION_COLUMNS`, one row per area and year (children):
    ``stock_change = looked_after_end - looked_after_start`` (31 March of the year before to 31
    March of the year), ``gap = stock_change - (started - ceased)`` and ``gap_share_of_start =
    gap / looked_after_start``. A row whose figures are not all published keeps the others and
    a note naming what is missing; nothing is filled in.
    """
    missing = [c for c in FLOW_COLUMNS if c not in panel.columns]
    if missing:
        raise PanelError(f"the panel has no {' or '.join(missing)} column: the reconciliation needs started and ceased")
    frame = panel[["la_code", "la_name", "year", "looked_after", "started", "ceased"]].copy()
    frame["la_code"] = frame["la_code"].astype(str)
    if codes is not None:
        unknown = [c for c in codes if c not in set(frame["la_code"])]
        if unknown:
            raise PanelError(f"areas not in the panel: {', '.join(unknown)}")
        frame = frame[frame["la_code"].isin(codes)]
    frame = frame.sort_values(["la_code", "year"])
    previous = frame.groupby("la_code")[["year", "looked_after"]].shift()
    consecutive = previous["year"] == frame["year"] - 1
    start = previous["looked_after"].where(consecutive)
    out = pd.DataFrame(
        {
            "la_code": frame["la_code"],
            "la_name": frame["la_name"],
            "year": frame["year"].astype(int),
            "looked_after_start": start.astype(float),
            "started": frame["started"].astype(float),
            "ceased": frame["ceased"].astype(float),
            "looked_after_end": frame["looked_after"].astype(float),
        }
    )
    out["stock_change"] = out["looked_after_end"] - out["looked_after_start"]
    out["started_minus_ceased"] = out["started"] - out["ceased"]
    out["gap"] = out["stock_change"] - out["started_minus_ceased"]
    out["gap_share_of_start"] = out["gap"] / out["looked_after_start"]
    names = {
        "looked_after_start": "looked_after of the year before",
        "started": "started",
        "ceased": "ceased",
        "looked_after_end": "looked_after",
    }
    notes = []
    for row in out[list(names)].itertuples(index=False):
        absent = [label for label, v in zip(names.values(), row) if not np.isfinite(v)]
        notes.append(f"not published: {', '.join(absent)}" if absent else "")
    out["note"] = notes
    return out[list(RECONCILIATION_COLUMNS)].reset_index(drop=True)


def reconciliation_finding(table: pd.DataFrame, la: str) -> Finding:
    """A sentence on the reconciliation gap of one area (children and % of the stock)."""
    rows = table[(table["la_code"] == la) & table["gap"].notna()]
    if rows.empty:
        return Finding("Stock and flows", f"{la}: no year has the stock and both flows published.", rows)
    name = rows["la_name"].iloc[0]
    total = rows["gap"].abs().sum()
    typical = rows["gap_share_of_start"].abs().median()
    worst = rows.loc[rows["gap"].abs().idxmax()]
    sentence = (
        f"In {name}, the published stock moved by {format_count(rows['stock_change'].sum())} children over "
        f"{len(rows)} years while started minus ceased came to {format_count(rows['started_minus_ceased'].sum())}; "
        f"the yearly gaps (DfE counts children, not episodes) were typically {100 * typical:.1f}% of the stock, "
        f"largest {format_count(worst['gap'])} in {int(worst['year'])} ({format_count(total)} children in absolute "
        "value over all years). The flows model keeps the stock identity and reports this gap beside its results."
    )
    return Finding("Stock and flows", sentence, rows)


# -- the stock recursion and its Shapley split ----------------------------------------------


def stock_path(stock0, population, entry_rate, exit_probability) -> np.ndarray:
    """Stock at 31 March of each year from ``stock0`` by ``S[t] = (S[t-1] + E[t]) (1 - p[t])``.

    Parameters
    ----------
    stock0
        Stock at the start (children), shape ``batch``.
    population, entry_rate, exit_probability
        Arrays of shape ``batch + (year,)``: children aged 0-17, entries per 10,000 children,
        probability of leaving per child at risk.

    Returns
    -------
    Stock after each year, shape ``batch + (year,)`` (children; expected values, no noise).
    """
    population, entry_rate, exit_probability = np.broadcast_arrays(population, entry_rate, exit_probability)
    out = np.empty(entry_rate.shape)
    stock = np.asarray(stock0, float)
    for t in range(entry_rate.shape[-1]):
        entries = population[..., t] * entry_rate[..., t] / RATE_PER
        stock = (stock + entries) * (1 - exit_probability[..., t])
        out[..., t] = stock
    return out


def shapley_flows(stock0, population, entry_rate, route_probability) -> dict[str, np.ndarray]:
    """Shapley split of the change in the stock over a span between entries and exit routes.

    Parameters
    ----------
    stock0
        Stock at 31 March of the first year of the span, shape ``batch``.
    population, entry_rate
        Shape ``batch + (year,)``, years of the span (the first year included: it sets the
        held level).
    route_probability
        Shape ``batch + (player, year)``: the probability of leaving by each route (the last
        being "other"); they sum to the exit probability.

    Returns
    -------
    ``{"entries": ..., <route>: ..., "baseline": ..., "modelled_change": ...}``, each shape
    ``batch`` (children). Players' values add up to ``modelled_change - baseline``.
    """
    population = np.broadcast_to(population, np.shape(entry_rate))
    steps = slice(1, None)
    n_routes = route_probability.shape[-2]
    players = 1 + n_routes

    def held(x):
        return np.broadcast_to(x[..., :1], x[..., steps].shape)

    cache: dict[frozenset, np.ndarray] = {}

    def value(active: frozenset) -> np.ndarray:
        if active not in cache:
            lam = entry_rate[..., steps] if 0 in active else held(entry_rate)
            probs = [
                route_probability[..., r, steps] if (r + 1) in active else held(route_probability[..., r, :])
                for r in range(n_routes)
            ]
            cache[active] = stock_path(stock0, population[..., steps], lam, sum(probs))[..., -1]
        return cache[active]

    result: dict[str, np.ndarray] = {}
    everyone = set(range(players))
    for k in range(players):
        others = everyone - {k}
        total = 0.0
        for size in range(players):
            weight = math.factorial(size) * math.factorial(players - size - 1) / math.factorial(players)
            for subset in itertools.combinations(sorted(others), size):
                s = frozenset(subset)
                total = total + weight * (value(s | {k}) - value(s))
        result[_PLAYERS[k] if n_routes == len(ROUTES) + 1 else ("entries" if k == 0 else "exits")] = total
    stock0 = np.asarray(stock0, float)
    result["baseline"] = value(frozenset()) - stock0
    result["modelled_change"] = value(frozenset(everyone)) - stock0
    return result


# -- reading a flows run --------------------------------------------------------------------


def la_names(data: xr.Dataset) -> list[str]:
    """Names of the run's authorities, in ``la`` order (from the ``flows_data`` group)."""
    if "la_names" in data.attrs:
        return [str(n) for n in json.loads(data.attrs["la_names"])]
    return [str(n) for n in data["la_name"].values]  # runs written before names moved to attrs


def _stacked(da: xr.DataArray) -> xr.DataArray:
    return da.stack(sample=("chain", "draw")).transpose("sample", ...)


def _route_probabilities(exit_p: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(sample, la, year) and (sample, route, la, year) -> (sample, la, player, year)."""
    by_route = exit_p[:, None] * shares
    other = exit_p - by_route.sum(axis=1)
    return np.concatenate([by_route, other[:, None]], axis=1).transpose(0, 2, 1, 3)


def _england_draws(data: xr.Dataset, years: np.ndarray, n: int, rng) -> dict | None:
    """Draws of England's rates over `years` from its published counts (None if incomplete)."""
    if "england_started" not in data:
        return None
    e = data.sel(year=years)
    pop = e["england_population_0_17"].values
    started, ceased, stock = e["england_started"].values, e["england_ceased"].values, e["england_looked_after"].values
    before = np.concatenate([[float(data["england_looked_after_before"])], data["england_looked_after"].values[:-1]])
    before = pd.Series(before, index=data["year"].values).reindex(years).to_numpy()
    at_risk = before + started
    if not np.isfinite(np.concatenate([pop, started, ceased, stock, at_risk])).all():
        return None
    lam = rng.gamma(started + 0.5, 1.0, size=(n, len(years))) / (pop / RATE_PER)
    p = rng.beta(ceased + 0.5, at_risk - ceased + 0.5, size=(n, len(years)))
    routes = e["england_ceased_by_route"].values
    shares = None
    if np.isfinite(routes).all():
        shares = rng.beta(routes + 0.5, ceased - routes + 0.5, size=(n, *routes.shape))
    return {"population": pop, "entry_rate": lam, "exit_probability": p, "shares": shares, "stock": stock}


@dataclass(frozen=True)
class FlowsSplit:
    """The result of `flows_split`: a table and one finding per area."""

    table: pd.DataFrame
    findings: tuple[Finding, ...]
    caveats: tuple[str, ...]


def flows_split(
    run: xr.DataTree,
    la: str | None = None,
    from_year: int | None = None,
    to_year: int | None = None,
    ci_prob: float = CI_PROB,
    seed: int = 0,
) -> FlowsSplit:
    """Split the change in the stock from `from_year` to `to_year` into entries and exits.

    Parameters
    ----------
    run
        A flows run (`bayes_lac.model.flows.load_flows_run`).
    la
        Authority (default: the run's target). Must be one of the run's authorities.
    from_year, to_year
        31 March years; ``from_year < to_year``, both in the run.
    ci_prob
        Probability of the equal-tailed credible intervals.
    seed
        Seed of England's draws (from its published counts).

    Returns
    -------
    FlowsSplit whose table has one row per area (``la``, ``neighbours`` = the sum over the
    other authorities of the run, ``england``) and component (`COMPONENTS`), with ``mean,
    median, lower, upper, ci_prob`` in children.

    Raises
    ------
    UsageError
        An authority or year outside the run, or years in the wrong order.
    """
    data = run["flows_data"].to_dataset()
    post = run["posterior"].to_dataset()
    target = flows_run_info(run).authority(la)
    authorities = [str(c) for c in data["la"].values]
    years = data["year"].values.astype(int)
    from_year = int(years[0]) if from_year is None else int(from_year)
    to_year = int(years[-1]) if to_year is None else int(to_year)
    if from_year >= to_year:
        raise UsageError(f"--from {from_year} --to {to_year}: expected --from before --to")
    if from_year < years[0] or to_year > years[-1]:
        raise UsageError(f"--from/--to: the run covers {years[0]}-{years[-1]}; got {from_year}-{to_year}")
    span = (years >= from_year) & (years <= to_year)
    span_years = years[span]
    lam = _stacked(post["entry_rate"]).sel(year=span_years).transpose("sample", "la", "year").values
    exit_p = _stacked(post["exit_probability"]).sel(year=span_years).transpose("sample", "la", "year").values
    shares = _stacked(post["route_share"]).sel(year=span_years).transpose("sample", "route", "la", "year").values
    probs = _route_probabilities(exit_p, shares)
    pop = data["population_0_17"].sel(year=span_years).values
    stock = data["looked_after"].sel(year=span_years).values
    caveats: list[str] = []
    bad_pop = ~np.isfinite(pop).all(axis=1)
    bad_stock = ~np.isfinite(stock[:, [0, -1]]).all(axis=1)
    usable = ~(bad_pop | bad_stock)
    names = dict(zip(authorities, la_names(data)))
    t_index = authorities.index(target)
    if not usable[t_index]:
        raise UsageError(
            f"--la {target}: the population or the published stock of {from_year} or {to_year} is blank; "
            "the split needs both"
        )
    dropped = [names[c] for c, ok in zip(authorities, usable) if not ok]
    if dropped:
        caveats.append(
            f"Left out of the neighbours' total (population or stock of {from_year}/{to_year} not published): "
            + ", ".join(dropped)
            + "."
        )
    parts = shapley_flows(stock[:, 0][None], pop[None], lam, probs)
    published = stock[:, -1] - stock[:, 0]
    per_la = _named(parts)
    per_la["published_change"] = np.broadcast_to(published, per_la["entries"].shape)
    per_la["published_minus_modelled"] = per_la["published_change"] - per_la["modelled_change"]
    neighbours = [i for i, c in enumerate(authorities) if c != target and usable[i]]
    areas: dict[str, dict[str, np.ndarray]] = {
        "la": {k: v[:, t_index] for k, v in per_la.items()},
    }
    if neighbours:
        areas["neighbours"] = {k: v[:, neighbours].sum(axis=1) for k, v in per_la.items()}
    n = lam.shape[0]
    england = _england_draws(data, span_years, n, np.random.default_rng(seed))
    if england is not None:
        if england["shares"] is not None:
            e_probs = _route_probabilities(england["exit_probability"][:, None], england["shares"][:, :, None])[:, 0]
            e = _named(shapley_flows(england["stock"][0], england["population"], england["entry_rate"], e_probs))
        else:
            e = shapley_flows(
                england["stock"][0],
                england["population"],
                england["entry_rate"],
                england["exit_probability"][:, None, :],
            )
            caveats.append(
                f"England's exits are not split by route: some route is not published in a year of {from_year}-{to_year}."
            )
        e["published_change"] = np.full(n, england["stock"][-1] - england["stock"][0])
        e["published_minus_modelled"] = e["published_change"] - e["modelled_change"]
        areas["england"] = e
    else:
        caveats.append("England is not shown: the run has no complete England flows for this span.")
    rows = []
    for area, comps in areas.items():
        for comp in COMPONENTS:
            if comp not in comps:
                continue
            da = xr.DataArray(np.asarray(comps[comp], float), dims=("draw",))
            s = summarise_draws(da, sample_dims=("draw",), ci_prob=ci_prob)
            rows.append({"area": area, "component": comp, **s.iloc[0].to_dict()})
    table = pd.DataFrame(rows)
    table.insert(1, "la_code", table["area"].map({"la": target, "neighbours": "neighbours", "england": ENGLAND_CODE}))
    table.insert(2, "from_year", from_year)
    table.insert(3, "to_year", to_year)
    labels = {"la": names[target], "neighbours": "its comparison authorities together", "england": "England"}
    findings = tuple(_split_finding(table[table["area"] == a], labels[a], from_year, to_year, ci_prob) for a in areas)
    if (shares.sum(axis=1) > 1).any():
        caveats.append(
            "In some draws the four routes' shares add up to more than all exits (they are modelled one by one); "
            "'other' is then negative in those draws."
        )
    caveats.append(
        "Routes overlap a little: a child who ceased aged 18 or over may also have returned home; each is counted "
        "in both routes' shares."
    )
    return FlowsSplit(table=table, findings=findings, caveats=tuple(caveats))


def _named(parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Shapley values keyed by component name: routes as ``exits_<route>``, their sum as ``exits``."""
    routes = (*ROUTES, "other")
    out = {k: v for k, v in parts.items() if k not in routes}
    out.update({f"exits_{r}": parts[r] for r in routes})
    out["exits"] = sum(parts[r] for r in routes)
    return out


_ROUTE_WORDS = {
    "returned_home": "returns home",
    "adopted": "adoption",
    "special_guardianship": "special guardianship",
    "age_18": "leaving at 18 or over",
    "other": "other routes",
}


def _split_finding(rows: pd.DataFrame, name: str, y0: int, y1: int, ci_prob: float) -> Finding:
    r = rows.set_index("component")

    def interval(comp: str) -> str:
        lo, hi = r.loc[comp, "lower"], r.loc[comp, "upper"]
        return f"{format_percent(ci_prob)} credible interval {signed(lo)} to {signed(hi)}"

    def signed(x: float) -> str:
        return ("+" if x >= 0 else "-") + format_count(abs(x))

    entries, exits = r.loc["entries", "median"], r.loc["exits", "median"]
    lead = "entries" if abs(entries) >= abs(exits) else "exits"
    routes = [c for c in r.index if c.startswith("exits_")]
    top = max(routes, key=lambda c: abs(r.loc[c, "median"])) if routes else None
    route_text = (
        f" The route that moved the stock most was {_ROUTE_WORDS[top.removeprefix('exits_')]} "
        f"({signed(r.loc[top, 'median'])}, {interval(top)})."
        if top
        else ""
    )
    sentence = (
        f"From {y0} to {y1} the published number of looked-after children in {name} changed by "
        f"{signed(r.loc['published_change', 'median'])}. Changes in the rate of entering care account for "
        f"{signed(entries)} children ({interval('entries')}) and changes in how quickly children leave for "
        f"{signed(exits)} ({interval('exits')}); at {y0}'s rates the stock would have moved by "
        f"{signed(r.loc['baseline', 'median'])} ({interval('baseline')}).{route_text} The published change differs "
        f"from the modelled one by {signed(r.loc['published_minus_modelled', 'median'])} "
        f"({interval('published_minus_modelled')}): chance variation from year to year, and DfE counting children "
        f"rather than episodes. The larger driver is {lead}."
    )
    return Finding(f"Entering and leaving care: {name}, {y0}-{y1}", sentence, rows.reset_index(drop=True), ci_prob)


# -- exit probability and route shares over time --------------------------------------------


def exit_trends(run: xr.DataTree, la: str | None = None, ci_prob: float = CI_PROB, seed: int = 0) -> pd.DataFrame:
    """Exit probability and each route's share of exits by year: authority, neighbours, England.

    Returns
    -------
    DataFrame with ``area`` (``la``, ``neighbours``, ``england``), ``measure``
    (``exit_probability`` or ``share_<route>``), ``year``, ``mean, median, lower, upper,
    ci_prob`` (probabilities, 0-1) and ``observed`` (the published ratio where the counts
    exist, else NaN). The neighbours' value pools their children: exits / at risk and route
    exits / exits, weighting each authority's modelled probability by its published
    children at risk (or exits); its ``observed`` pools the authorities with both counts
    published that year, so in years with suppressed or missing counts the two pool different
    authorities. England's come from its published counts (Beta draws).
    """
    data = run["flows_data"].to_dataset()
    post = run["posterior"].to_dataset()
    target = flows_run_info(run).authority(la)
    authorities = [str(c) for c in data["la"].values]
    years = data["year"].values.astype(int)
    ceased = data["ceased"].values
    stock = data["looked_after"].values
    before = np.concatenate([data["looked_after_before"].values[:, None], stock[:, :-1]], axis=1)
    at_risk = before + data["started"].values
    routes = data["ceased_by_route"].values
    exit_p = _stacked(post["exit_probability"]).transpose("sample", "la", "year").values
    shares = _stacked(post["route_share"]).transpose("sample", "route", "la", "year").values
    t = authorities.index(target)
    others = [i for i in range(len(authorities)) if i != t]
    rows = []

    def add(area: str, measure: str, draws: np.ndarray, observed: np.ndarray) -> None:
        da = xr.DataArray(draws, dims=("draw", "year"), coords={"year": years})
        with warnings.catch_warnings():
            # a year without England's counts has no draws: it summarises to NaN, said below
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            s = summarise_draws(da, sample_dims=("draw",), ci_prob=ci_prob)
        s.insert(0, "measure", measure)
        s.insert(0, "area", area)
        s["observed"] = observed
        rows.append(s)

    with np.errstate(invalid="ignore", divide="ignore"):
        add("la", "exit_probability", exit_p[:, t], ceased[t] / at_risk[t])
        w = np.where(np.isfinite(at_risk[others]), at_risk[others], 0.0)
        pooled = (exit_p[:, others] * w).sum(axis=1) / w.sum(axis=0)
        both = np.isfinite(at_risk[others]) & np.isfinite(ceased[others])
        obs = np.where(both, ceased[others], 0.0).sum(axis=0) / np.where(both, at_risk[others], 0.0).sum(axis=0)
        add("neighbours", "exit_probability", pooled, obs)
        for r, route in enumerate(ROUTES):
            add("la", f"share_{route}", shares[:, r, t], routes[r, t] / ceased[t])
            wx = np.where(np.isfinite(ceased[others]), ceased[others], 0.0)
            pooled = (shares[:, r][:, others] * wx).sum(axis=1) / wx.sum(axis=0)
            # published ratio pooled over the authorities with both counts published that year
            both = np.isfinite(routes[r, others]) & np.isfinite(ceased[others])
            with_counts = np.where(both, ceased[others], 0.0).sum(axis=0)
            obs = np.where(both, routes[r, others], 0.0).sum(axis=0) / np.where(with_counts > 0, with_counts, np.nan)
            add("neighbours", f"share_{route}", pooled, obs)
        if "england_ceased" in data:
            rng = np.random.default_rng(seed)
            e_before = np.concatenate(
                [[float(data["england_looked_after_before"])], data["england_looked_after"].values[:-1]]
            )
            e_risk = e_before + data["england_started"].values
            e_ceased = data["england_ceased"].values
            n = exit_p.shape[0]
            ok = np.isfinite(e_risk) & np.isfinite(e_ceased)
            draws = np.full((n, len(years)), np.nan)
            draws[:, ok] = rng.beta(e_ceased[ok] + 0.5, e_risk[ok] - e_ceased[ok] + 0.5, size=(n, ok.sum()))
            add("england", "exit_probability", draws, e_ceased / e_risk)
            e_routes = data["england_ceased_by_route"].values
            for r, route in enumerate(ROUTES):
                ok = np.isfinite(e_routes[r]) & np.isfinite(e_ceased)
                draws = np.full((n, len(years)), np.nan)
                draws[:, ok] = rng.beta(e_routes[r, ok] + 0.5, e_ceased[ok] - e_routes[r, ok] + 0.5, size=(n, ok.sum()))
                add("england", f"share_{route}", draws, e_routes[r] / e_ceased)
    table = pd.concat(rows, ignore_index=True)
    # years without England's counts summarise to NaN: say so rather than show a number
    return table


def returns_home_finding(trends: pd.DataFrame, name: str, years: tuple[int, int], ci_prob: float = CI_PROB) -> Finding:
    """Whether the authority's returns-home share fell between two years, against its neighbours."""
    y0, y1 = years
    share = trends[trends["measure"] == "share_returned_home"].set_index(["area", "year"])

    def text(area: str, year: int) -> str:
        row = share.loc[(area, year)]
        if not np.isfinite(row["median"]):
            return "not published"
        return (
            f"{format_percent(row['median'])} ({format_percent(ci_prob)} credible interval "
            f"{format_percent(row['lower'])} to {format_percent(row['upper'])})"
        )

    def points(area: str) -> str:
        if (area, y0) not in share.index or not np.isfinite(share.loc[(area, y1), "median"]):
            return ""
        drop = 100 * (share.loc[(area, y0), "median"] - share.loc[(area, y1), "median"])
        return f"{drop:.0f} percentage points"

    compared = ", ".join(
        f"{label} {points(area)}"
        for area, label in (("neighbours", "its comparison authorities"), ("england", "England"))
        if points(area)
    )
    la0, la1 = share.loc[("la", y0)], share.loc[("la", y1)]
    fell = la1["upper"] < la0["lower"]
    sentence = (
        f"Share of children leaving care who returned home in {name}: {text('la', y0)} in {y0} and "
        f"{text('la', y1)} in {y1}; its comparison authorities together {text('neighbours', y0)} and "
        f"{text('neighbours', y1)}"
        + (f"; England {text('england', y0)} and {text('england', y1)}" if ("england", y0) in share.index else "")
        + ". "
        + (
            f"The intervals do not overlap: the data support a fall in returns home in {name}"
            if fell
            else f"The intervals overlap: the data do not show a clear fall in returns home in {name}"
        )
        + (f" (a fall of {points('la')}, against {compared})." if compared and points("la") else ".")
    )
    return Finding(f"Returns home: {name}", sentence, trends[trends["measure"] == "share_returned_home"], ci_prob)


def flows_areas(panel: pd.DataFrame) -> list[str]:
    """Authority codes of a panel that have any published flows (for reconciliation output)."""
    has = panel[["started", "ceased"]].notna().any(axis=1)
    return sorted({c for c in panel.loc[has, "la_code"].astype(str) if is_authority(c) or c == ENGLAND_CODE})


__all__ = [
    "COMPONENTS",
    "RECONCILIATION_COLUMNS",
    "ROUTE_COLUMNS",
    "FlowsSplit",
    "exit_trends",
    "flows_split",
    "reconciliation_finding",
    "reconciliation_table",
    "returns_home_finding",
    "shapley_flows",
    "stock_path",
]


_AREA_LABELS = {"neighbours": "comparison authorities", "england": "England"}


def plot_exit_trends(trends: pd.DataFrame, *, la_name: str = "authority", measures=None, ax=None):
    """Chart of `exit_trends`: each measure by year with its credible band, per area.

    Parameters
    ----------
    trends
        The table from `exit_trends`.
    la_name
        Label of the ``la`` area.
    measures
        Measures to draw, one panel each (default ``exit_probability`` and
        ``share_returned_home``).
    ax
        Axes to draw on (one per measure); new ones if None.

    Returns
    -------
    (figure, axes)
    """
    import matplotlib.pyplot as plt

    measures = list(measures or ("exit_probability", "share_returned_home"))
    if ax is None:
        fig, axes = plt.subplots(1, len(measures), figsize=(5 * len(measures), 3.6), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(ax))
        fig = axes[0].figure
    titles = {"exit_probability": "Exit probability per child at risk"}
    for a, measure in zip(axes, measures):
        for area, colour in (("la", "C3"), ("neighbours", "C0"), ("england", "0.4")):
            rows = trends[(trends["measure"] == measure) & (trends["area"] == area)]
            if rows.empty or rows["median"].isna().all():
                continue
            label = la_name if area == "la" else _AREA_LABELS[area]
            a.plot(rows["year"], 100 * rows["median"], color=colour, label=label)
            a.fill_between(rows["year"], 100 * rows["lower"], 100 * rows["upper"], color=colour, alpha=0.2, lw=0)
            a.plot(rows["year"], 100 * rows["observed"], "o", color=colour, ms=3)
        a.set_title(titles.get(measure, f"Share of exits: {measure.removeprefix('share_').replace('_', ' ')}"))
        a.set_ylabel("%")
        a.legend(fontsize=8)
    return fig, axes
