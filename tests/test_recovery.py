"""Recovery of known parameters from a simulated panel (slow: a real fit).

The panel is simulated from the model itself (``bayes_lac.model.simulate``) with deprivation and
UASC published every year, so the data the model sees are exactly those the truth used.
Each check asks whether a 90 % credible interval contains the true value."""

from __future__ import annotations

import pytest

from bayes_lac.model.fit import LACModel
from tests.conftest import TEST_SAMPLER
from tests.simulated import recovery_panel

# one worker runs all of this module's tests (make test: --dist loadgroup), and its fit fixtures are
# session-scoped, so each fit is made once (a module-scoped fixture is remade whenever the
# worker's order runs another module's tests in between)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recovery")]


def _interval(da, prob=0.9):
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    q = da.quantile([lo, hi], ("chain", "draw")).values
    return float(q[0]), float(q[1])


#: Widest 90 % interval each check may have (about 1.5 times those measured on this panel, fit
#: and seed): an interval far wider than this has stopped learning from the data even if it
#: still covers the truth. ``dispersion`` is bounded as the ratio of its interval's ends.
MAX_WIDTH = {"deprivation_effect": 0.09, "la_trend": 0.055, "dispersion": 6.0, "persistence": 0.75, "year_effect": 0.15}


#: The fit must pass the package's full convergence gate (R-hat <= 1.01, bulk and tail ESS >= 400,
#: no divergences). 2 x 400 draws did not (R-hat 1.015-1.028, bulk ESS about 150-190); 2 x 1,000
#: draws passed on one machine and failed on another (tail ESS 349: the same seed gives other
#: draws where JAX compiles for another processor), so the fit takes 2 chains x (600 tuning +
#: 1,500 draws).
@pytest.fixture(scope="session")
def recovery():
    panel, truth, codes = recovery_panel()
    run = LACModel(codes[0], neighbours=codes[1:]).fit(
        panel, draws=1500, tune=600, chains=2, cores=1, seed=4, progressbar=False, sampler=TEST_SAMPLER
    )
    return run, truth, codes


def test_recovers_known_parameters(recovery):
    run, truth, codes = recovery
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
    misses, too_wide = [], []
    for name, draws, true in checks:
        lo, hi = _interval(draws)
        if not lo <= true <= hi:
            misses.append(f"{name}: truth {true:.4g} outside [{lo:.4g}, {hi:.4g}]")
        kind = name.split("[")[0]
        width = hi / lo if kind == "dispersion" else hi - lo
        if not width <= MAX_WIDTH[kind]:
            too_wide.append(f"{name}: 90% interval [{lo:.4g}, {hi:.4g}] wider than {MAX_WIDTH[kind]}")
    assert not too_wide, "\n".join(too_wide)
    # 15 checks of 90 % intervals: about 1.5 misses are expected by chance even when the
    # model is right, and the checks are not independent (year effects share the path).
    # Allowing three misses keeps the false-alarm rate near 5 % (binomial(15, 0.1): P(>3) =
    # 0.056); a systematic bias (e.g. deprivation confounded with the authority levels, or
    # a misplaced dispersion) misses most of its checks, which this still catches. The seeds
    # are fixed, so the outcome is reproducible.
    assert len(misses) <= 3, "\n".join(misses)


def test_the_recovery_fit_passes_its_convergence_gate(recovery):
    from bayes_lac.model.results import run_info

    diagnostics = run_info(recovery[0]).diagnostics
    assert diagnostics.converged, "; ".join(diagnostics.problems)
