"""The decomposition recovers known components from a real (small) fit to a simulated panel.

One panel, one fit: each authority carries one scenario with everything else held still, so
the true components are known exactly:

* E06990000 pure population growth (3% a year): supply parts are zero;
* E06990001 a pure UASC influx (10 -> 80 children);
* E06990002 a pure local supply rise (own trend +0.05 a year on the log scale), balanced by
  E06990009 (-0.05 a year) so the trends sum to zero as in the model;
* E06990003 a step rise in deprivation with a known effect;
* the rest stay steady, but their deprivation wiggles so its effect is identified (the first
  three keep theirs constant);
* the common path (year effect) wiggles but is back at its start value at the window's end.

The true components are the Shapley split of the true expected counts (same rule as the
module), and each must lie inside its 95% credible interval. The fit is small (2 chains x 300
draws, about a minute with a warm compile cache), so the module is marked slow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_lac.analysis import decompose as D
from bayes_lac.config import RATE_PER
from tests.conftest import TEST_SAMPLER

# one small real fit shared by the module: about 70 s on 2 busy cores with a warm cache
# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("decompose_recovery")]

YEARS = np.arange(2010, 2020)
FROM, TO = 2011, 2019
N_LA = 10
CODES = [f"E0699{i:04d}" for i in range(N_LA)]
POP_LA, UASC_LA, SUPPLY_LA, DEP_LA, BALANCE_LA = CODES[0], CODES[1], CODES[2], CODES[3], CODES[9]
INTERCEPT = np.array([4.2, 5.8, 3.8])  # log rate per 10,000 children, per measure
DEP_EFFECT = np.array([0.04, 0.02, 0.03])  # per unit of deprivation
DISPERSION = 2_000.0
CI = 0.95
# A common path that wiggles but is back at its 2011 value in 2019, so supply_national's true
# value over the window is exactly zero while the random walk's scale stays away from zero.
YEAR_EFFECT = np.array([0.0, 0.06, 0.14, 0.08, -0.02, 0.05, 0.12, 0.20, 0.10, 0.06])


def _truth(seed: int = 11) -> dict:
    rng = np.random.default_rng(seed)
    n_y = len(YEARS)
    t = YEARS - YEARS[0]
    pop = np.full((N_LA, n_y), 60_000.0) * (1 + 0.005 * t)[None, :]
    pop[0] = 60_000.0 * 1.03**t
    pop = np.round(pop)
    uasc = np.full((N_LA, n_y), 12.0)
    uasc[1] = np.round(np.linspace(10, 80, n_y))
    deprivation = 20 + rng.normal(0, 3, (N_LA, 1)) + rng.normal(0, 1.5, (N_LA, n_y))
    deprivation[:3] = deprivation[:3, :1]  # the pure scenarios keep deprivation still
    deprivation[3] = 18 + np.where(YEARS >= 2015, 8.0, 0.0) + rng.normal(0, 0.3, n_y)
    deprivation = np.round(deprivation, 2)
    la_intercept = rng.normal(0, 0.2, N_LA)
    la_intercept -= la_intercept.mean()
    la_trend = np.zeros(N_LA)
    la_trend[2], la_trend[9] = 0.05, -0.05
    return {
        "pop": pop,
        "uasc": uasc,
        "deprivation": deprivation,
        "la_intercept": la_intercept,
        "la_trend": la_trend,
        "reference_year": int(YEARS[-1]),
        "centre": float(deprivation.mean()),
    }


def _expected(truth: dict) -> np.ndarray:
    """True expected modelled counts, (measure, la, year)."""
    log_rate = (
        INTERCEPT[:, None, None]
        + truth["la_intercept"][None, :, None]
        + truth["la_trend"][None, :, None] * (YEARS - truth["reference_year"])[None, None, :]
        + YEAR_EFFECT[None, None, :]
        + DEP_EFFECT[:, None, None] * (truth["deprivation"] - truth["centre"])[None]
    )
    return np.exp(log_rate) * truth["pop"][None] / RATE_PER


def _panel(truth: dict, seed: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mu = _expected(truth)
    counts = rng.poisson(rng.gamma(DISPERSION, mu / DISPERSION)).astype(int)
    rows = []
    for i, code in enumerate(CODES):
        for j, year in enumerate(YEARS):
            rows.append(
                {
                    "la_code": code,
                    "la_name": f"Scenario {i}",
                    "year": int(year),
                    "population_0_17": int(truth["pop"][i, j]),
                    "looked_after": int(counts[0, i, j] + truth["uasc"][i, j]),
                    "children_in_need": int(counts[1, i, j]),
                    "child_protection": int(counts[2, i, j]),
                    "uasc": int(truth["uasc"][i, j]),
                    "deprivation": float(truth["deprivation"][i, j]),
                }
            )
    england = (
        pd.DataFrame(rows)
        .groupby("year", as_index=False)[
            ["population_0_17", "looked_after", "children_in_need", "child_protection", "uasc"]
        ]
        .sum()
    )
    england["la_code"], england["la_name"], england["deprivation"] = "E92000001", "England", np.nan
    return pd.concat([pd.DataFrame(rows), england], ignore_index=True)


def _true_components(truth: dict, la: int) -> dict[str, float]:
    """Shapley components of the true looked_after change (children), same rule as the module."""
    a, b = int(np.flatnonzero(YEARS == FROM)[0]), int(np.flatnonzero(YEARS == TO)[0])
    mu = _expected(truth)[0, la]
    log_ratios = {
        "population": np.log(truth["pop"][la, b] / truth["pop"][la, a]),
        "deprivation": DEP_EFFECT[0] * (truth["deprivation"][la, b] - truth["deprivation"][la, a]),
        "supply_national": YEAR_EFFECT[b] - YEAR_EFFECT[a],
        "supply_local": truth["la_trend"][la] * (TO - FROM),
    }
    parts = D.shapley_split(xr.DataArray(mu[a]), {k: xr.DataArray(v) for k, v in log_ratios.items()})
    out = {k: float(v) for k, v in parts.items()}
    out["uasc"] = float(truth["uasc"][la, b] - truth["uasc"][la, a])
    out["not_explained"] = out["supply_national"] + out["supply_local"]
    out["total"] = float(mu[b] - mu[a]) + out["uasc"]
    return out


@pytest.fixture(scope="session")
def fitted():
    from bayes_lac.model.fit import LACModel

    truth = _truth()
    panel = _panel(truth)
    # looked_after alone, the measure decomposed; no log-likelihood groups: the decomposition
    # does not need them and they cost ~15 s
    run = LACModel(CODES[0], neighbours=CODES[1:], measures=("looked_after",)).fit(
        panel,
        draws=300,
        sampler=TEST_SAMPLER,
        tune=300,
        chains=2,
        cores=1,
        seed=3,
        progressbar=False,
        target_accept=0.9,
        log_density=False,
    )
    return truth, run


def _check(fitted, la_index: int, must_be_zero: tuple[str, ...], must_contain: tuple[str, ...]):
    truth, run = fitted
    d = D.decompose(
        run, la=CODES[la_index], from_year=FROM, to_year=TO, measures="looked_after", ci_prob=CI, allow_unconverged=True
    )
    table = d.table.set_index("component")
    true = _true_components(truth, la_index)
    for comp in must_contain:
        row = table.loc[comp]
        assert row["lower"] <= true[comp] <= row["upper"], (
            f"{CODES[la_index]} {comp}: truth {true[comp]:.1f}, got {row.to_dict()}"
        )
    for comp in must_be_zero:
        row = table.loc[comp]
        assert row["lower"] <= 0.0 <= row["upper"], f"{CODES[la_index]} {comp} should be near 0, got {row.to_dict()}"
    return d, true


def test_small_fit_is_sane(fitted):
    # 2 x 300 draws is too few for the package's full convergence thresholds (bulk ESS >= 400),
    # so the decompositions below allow an unconverged run; a broken fit must still fail here.
    from bayes_lac.model.diagnostics import require_converged

    diag = require_converged(fitted[1], allow_unconverged=True)
    assert diag.max_rhat < 1.1, diag.summary()
    assert diag.divergences <= 12, diag.summary()


def test_pure_population_growth(fitted):
    d, true = _check(
        fitted,
        0,
        must_be_zero=("supply_local", "supply_national", "not_explained", "deprivation"),
        must_contain=("population", "total"),
    )
    assert true["population"] > 50  # the scenario really moved
    pop_mean = float(d.table.set_index("component").loc["population", "mean"])
    assert pop_mean == pytest.approx(true["population"], rel=0.15)


def test_pure_uasc_influx(fitted):
    d, true = _check(
        fitted, 1, must_be_zero=("supply_local", "supply_national", "deprivation"), must_contain=("total",)
    )
    assert float(d.table.set_index("component").loc["uasc", "mean"]) == pytest.approx(true["uasc"])


def test_pure_local_supply_rise(fitted):
    d, true = _check(
        fitted,
        2,
        must_be_zero=("supply_national", "deprivation"),
        must_contain=("supply_local", "not_explained", "total"),
    )
    assert true["supply_local"] > 100
    row = d.table.set_index("component").loc["supply_local"]
    assert row["lower"] > 0  # a rise the model can see


def test_deprivation_change_with_known_effect(fitted):
    d, true = _check(fitted, 3, must_be_zero=("supply_national",), must_contain=("deprivation", "total"))
    assert true["deprivation"] > 50
    assert float(d.table.set_index("component").loc["deprivation", "lower"]) > 0
