"""Simulated flows panels with known entry rates, exit probabilities and route shares.

`simulate_flows_panel` draws authorities whose stock obeys ``S[t] = S[t-1] + E[t] - X[t]``
exactly, with entries ``E ~ NegativeBinomial(population / 10,000 * entry_rate)`` and exits
``X ~ Binomial(S[t-1] + E[t], exit_probability)`` split into routes by a multinomial draw, so
that a test can check that the flows model and the flows split recover what caused a change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_lac.config import ENGLAND_CODE, RATE_PER
from bayes_lac.data.panel import REQUIRED_COLUMNS, ROUTE_COLUMNS

#: True route shares of exits (returned home, adopted, special guardianship, aged 18+); the
#: rest leave by other routes.
DEFAULT_ROUTE_SHARES: tuple[float, ...] = (0.30, 0.10, 0.10, 0.25)
SCENARIOS: tuple[str, ...] = ("none", "entries", "exits")


def simulate_flows_panel(
    n_la: int = 5,
    years: tuple[int, int] = (2010, 2019),
    scenario: str = "none",
    change: float = 0.4,
    change_from: int = 2014,
    seed: int = 0,
    population: float = 40_000.0,
    entry_rate: float = 25.0,
    exit_probability: float = 0.4,
    route_shares: tuple[float, ...] = DEFAULT_ROUTE_SHARES,
    dispersion: float = 300.0,
    background_walk: float = 0.0,
) -> tuple[pd.DataFrame, dict]:
    """A panel of flows and the truth it was drawn from.

    Parameters
    ----------
    n_la
        Authorities (codes ``E0699xxxx``); the first is the target.
    years
        First and last year with flows (the panel also has the year before, stock only).
    scenario
        ``"entries"``: the target's entry rate rises by `change` (a share) in equal steps from
        `change_from` to the last year, exits unchanged. ``"exits"``: the target's exit
        probability falls by `change` (a share) the same way, entries unchanged. ``"none"``.
    entry_rate
        Typical entry rate per 10,000 children aged 0-17 (authorities vary around it).
    exit_probability
        Typical probability that a child at risk (looked after at the start of the year, or
        started during it) ceases during the year.
    background_walk
        Standard deviation of yearly random-walk steps (log entry rate, logit exit
        probability) of the authorities other than the target, which keeps its scenario
        path: real comparison authorities drift, so a pooled walk scale is not learnt from
        flat neighbours alone.

    Returns
    -------
    panel
        Panel rows (schema columns, ``geographic_level``, ``started``, ``ceased`` and the
        route columns), authorities and England (their sum).
    truth
        ``entry_rate`` and ``exit_probability`` (la, year), ``route_share`` (route, la, year),
        ``stock_before`` (la,), ``population`` (la, year), ``la``, ``year``.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    rng = np.random.default_rng(seed)
    yrs = np.arange(years[0], years[1] + 1)
    n_y = len(yrs)
    codes = [f"E0699{i:04d}" for i in range(n_la)]
    pop = np.round(population * np.exp(rng.normal(0, 0.3, n_la)))[:, None] * np.ones(n_y)
    level_e = rng.normal(0, 0.2, n_la)
    level_x = rng.normal(0, 0.2, n_la)
    lam = entry_rate * np.exp(level_e)[:, None] * np.ones(n_y)
    logit_p = np.log(exit_probability / (1 - exit_probability)) + level_x
    p = (1 / (1 + np.exp(-logit_p)))[:, None] * np.ones(n_y)
    if background_walk > 0:
        drift_e = np.cumsum(rng.normal(0, background_walk, (n_la, n_y)), axis=1)
        drift_x = np.cumsum(rng.normal(0, background_walk, (n_la, n_y)), axis=1)
        drift_e[0] = drift_x[0] = 0.0
        lam = lam * np.exp(drift_e - drift_e[:, :1])
        logit_path = np.log(p / (1 - p)) + drift_x - drift_x[:, :1]
        p = 1 / (1 + np.exp(-logit_path))
    ramp = np.clip((yrs - change_from + 1) / max(yrs[-1] - change_from + 1, 1), 0, 1)
    if scenario == "entries":
        lam[0] *= 1 + change * ramp
    elif scenario == "exits":
        p[0] *= 1 - change * ramp
    shares = np.asarray(route_shares, float)[:, None, None] * np.ones((1, n_la, n_y))

    expected_entries = pop * lam / RATE_PER
    # start each authority at its steady state under the first year's rates
    stock_before = np.round(expected_entries[:, 0] * (1 - p[:, 0]) / p[:, 0])
    stock = np.zeros((n_la, n_y))
    started = np.zeros((n_la, n_y))
    ceased = np.zeros((n_la, n_y))
    routes = np.zeros((len(ROUTE_COLUMNS), n_la, n_y))
    previous = stock_before.copy()
    for t in range(n_y):
        mean = expected_entries[:, t]
        started[:, t] = rng.poisson(rng.gamma(dispersion, mean / dispersion))
        at_risk = previous + started[:, t]
        ceased[:, t] = rng.binomial(at_risk.astype(int), p[:, t])
        for i in range(n_la):
            probs = np.append(shares[:, i, t], 1 - shares[:, i, t].sum())
            routes[:, i, t] = rng.multinomial(int(ceased[i, t]), probs)[:-1]
        stock[:, t] = at_risk - ceased[:, t]
        previous = stock[:, t]

    rows = []
    for i, code in enumerate(codes):
        rows.append(
            {"la_code": code, "la_name": f"Simulated {i}", "year": int(yrs[0] - 1), "looked_after": stock_before[i]}
        )
        for t, year in enumerate(yrs):
            row = {
                "la_code": code,
                "la_name": f"Simulated {i}",
                "year": int(year),
                "looked_after": stock[i, t],
                "started": started[i, t],
                "ceased": ceased[i, t],
            }
            row.update({col: routes[r, i, t] for r, col in enumerate(ROUTE_COLUMNS)})
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["population_0_17"] = frame["la_code"].map(dict(zip(codes, pop[:, 0])))
    frame["geographic_level"] = "Local authority"
    sums = frame.drop(columns=["la_code", "la_name", "geographic_level"]).groupby("year").sum(min_count=1)
    england = sums.reset_index().assign(la_code=ENGLAND_CODE, la_name="England", geographic_level="National")
    panel = pd.concat([frame, england], ignore_index=True)
    for col in REQUIRED_COLUMNS:
        if col not in panel.columns:
            panel[col] = np.nan
    truth = {
        "entry_rate": lam,
        "exit_probability": p,
        "route_share": shares,
        "stock_before": stock_before,
        "population": pop,
        "la": codes,
        "year": yrs,
    }
    return panel, truth
