"""Recovery of known parameters from a simulated panel (slow: a real fit).

The panel is simulated from the model itself (``bayes_lac.model.simulate``) with deprivation and
UASC published every year, so the data the model sees are exactly those the truth used.
Each check asks whether a 90 % credible interval contains the true value."""

from __future__ import annotations

import pytest

from bayes_lac.config import ENGLAND_CODE
from bayes_lac.model.fit import LACModel
from bayes_lac.model.simulate import simulate_panel

pytestmark = pytest.mark.slow


def _interval(da, prob=0.9):
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    q = da.quantile([lo, hi], ("chain", "draw")).values
    return float(q[0]), float(q[1])


def test_recovers_known_parameters():
    panel, truth = simulate_panel(
        n_la=8,
        years=(2012, 2024),
        seed=21,
        deprivation_years=None,
        uasc_gaps=False,
        truth={"persistence": (0.5, 0.4, 0.6)},
    )
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    run = LACModel(codes[0], neighbours=codes[1:]).fit(
        panel, draws=400, tune=400, chains=2, cores=1, seed=4, progressbar=False, sampler="pymc"
    )
    post = run["posterior"]
    assert list(post["la"].values) == truth["la"]
    years = list(truth["year"])
    checks = []
    for k, m in enumerate(truth["measure"]):
        checks.append(
            (f"deprivation_effect[{m}]", post["deprivation_effect"].sel(measure=m), truth["deprivation_effect"][k])
        )
        checks.append(
            (f"la_trend[{codes[0]}, {m}]", post["la_trend"].sel(la=codes[0], measure=m), truth["la_trend"][0, k])
        )
        checks.append((f"dispersion[{m}]", post["dispersion"].sel(measure=m), truth["dispersion"][k]))
        checks.append((f"persistence[{m}]", post["persistence"].sel(measure=m), truth["persistence"][k]))
    for year in (2016, 2020, 2024):
        t = years.index(year)
        checks.append(
            (
                f"year_effect[looked_after, {year}]",
                post["year_effect"].sel(measure="looked_after", year=year),
                truth["year_effect"][0, t],
            )
        )
    misses = []
    for name, draws, true in checks:
        lo, hi = _interval(draws)
        if not lo <= true <= hi:
            misses.append(f"{name}: truth {true:.4g} outside [{lo:.4g}, {hi:.4g}]")
    # 15 checks of 90 % intervals: about 1.5 misses are expected by chance even when the
    # model is right, and the checks are not independent (year effects share the path).
    # Allowing three misses keeps the false-alarm rate near 5 % (binomial(15, 0.1): P(>3) =
    # 0.056); a systematic bias (e.g. deprivation confounded with the authority levels, or
    # a misplaced dispersion) misses most of its checks, which this still catches. The seeds
    # are fixed, so the outcome is reproducible.
    assert len(misses) <= 3, "\n".join(misses)
