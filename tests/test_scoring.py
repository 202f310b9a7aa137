"""Scorers on known distributions: fair CRPS, randomised PIT, coverage, the bootstrap over origins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_lac.errors import UnknownAuthorityError
from bayes_lac.studies import scoring as S


def normal_crps(mu, sd, y):
    """CRPS of Normal(mu, sd) at y in closed form (Gneiting & Raftery 2007)."""
    z = (y - mu) / sd
    return sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


# -- fair CRPS -----------------------------------------------------------------------------


def test_fair_crps_equals_the_pairwise_fair_estimator():
    scoringrules = S._scoringrules()
    rng = np.random.default_rng(0)
    x = rng.gamma(3.0, 20.0, size=(40, 30))
    y = rng.gamma(3.0, 20.0, size=40)
    m = x.shape[1]
    pairwise = np.abs(x - y[:, None]).mean(axis=1) - np.abs(x[:, :, None] - x[:, None, :]).sum(axis=(1, 2)) / (
        2 * m * (m - 1)
    )
    assert S.fair_crps(x, y) == pytest.approx(pairwise, abs=1e-9)
    assert S.fair_crps(x, y) == pytest.approx(
        scoringrules.crps_ensemble(y, x, estimator="fair", backend="numpy"), abs=1e-9
    )


def test_scoring_compiles_no_numba_kernel_and_leaves_numba_importable():
    # scoringrules compiles its numba gufuncs when imported (7 s in every scoring process);
    # the numpy backend needs none of them
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from bayes_lac.studies import scoring as S; "
        "print(S.fair_crps(np.array([[1.0, 2.0, 4.0]]), np.array([2.0]))[0]); "
        "print(any(m.startswith('numba') for m in sys.modules if sys.modules[m] is not None)); "
        "print(sys.modules.get('scoringrules.core.crps._gufuncs')); "
        "import numba; print(numba.guvectorize.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    # mean |x - y| = 1, minus sum |xi - xj| / (2 m (m - 1)) = 12 / 12
    assert float(out[0]) == pytest.approx(0.0) and out[1:] == ["False", "None", "guvectorize"]


def test_fair_crps_matches_the_normal_closed_form():
    rng = np.random.default_rng(1)
    mu, sd = np.array([100.0, 200.0]), np.array([10.0, 20.0])
    y = np.array([100.0, 240.0])
    x = mu[:, None] + sd[:, None] * rng.standard_normal((2, 40_000))
    assert S.fair_crps(x, y) == pytest.approx(normal_crps(mu, sd, y), rel=0.01)


def test_fair_crps_is_unbiased_with_few_draws():
    # With 4 draws the plain ensemble CRPS overstates the CRPS by E|X - X'| / (2m); the fair one does not.
    rng = np.random.default_rng(2)
    n, m = 200_000, 4
    x = rng.standard_normal((n, m))
    y = rng.standard_normal(n)
    exact = np.mean(normal_crps(0.0, 1.0, y))
    fair = S.fair_crps(x, y).mean()
    assert fair == pytest.approx(exact, abs=0.005)
    plain = np.abs(x - y[:, None]).mean(axis=1) - np.abs(x[:, :, None] - x[:, None, :]).mean(axis=(1, 2)) / 2
    assert plain.mean() - exact == pytest.approx(2 / np.sqrt(np.pi) / (2 * m), abs=0.01)  # E|X - X'| / (2m)


# -- a correctly specified forecaster against a biased one ------------------------------------


def forecast_table(samples, observed, method="model", n_origins=8):
    n = len(observed)
    scores = S.score_samples(samples, observed, seed=3)
    index = pd.DataFrame(
        {
            "method": method,
            "measure": "looked_after",
            "la_code": [f"E06{i % 50:06d}" for i in range(n)],
            "origin": 2014 + np.arange(n) % n_origins,
            "horizon": 1 + (np.arange(n) // n_origins) % 2,
            "observed": observed,
        }
    )
    return pd.concat([index, scores], axis=1)


def lognormal_cells(n, rng, shift=0.0, scale=1.0):
    """Draws from LogNormal(mu, s) per cell and an outcome from the same (or a shifted/narrowed) one."""
    mu = np.log(rng.uniform(50, 500, n))
    s = rng.uniform(0.05, 0.3, n)
    samples = np.exp(mu[:, None] + shift * s[:, None] + scale * s[:, None] * rng.standard_normal((n, 2000)))
    observed = np.exp(mu + s * rng.standard_normal(n))
    return samples, observed


def test_a_correctly_specified_forecaster_covers_at_nominal_rates_and_has_pit_mean_half():
    rng = np.random.default_rng(4)
    n = 4000
    table = forecast_table(*lognormal_cells(n, rng))
    summary = S.summarise_backtest(table, by=("method",))
    for level in S.LEVELS:
        binomial_se = np.sqrt(level * (1 - level) / n)
        assert abs(summary[f"coverage_{S.level_name(level)}"].iloc[0] - level) < 3 * binomial_se
    assert abs(summary["pit_mean"].iloc[0] - 0.5) < 3 * np.sqrt(1 / 12 / n)
    hist = S.pit_histograms(table, by=("method",))
    assert len(hist) == 10 and hist["count"].sum() == n
    expected = n / 10
    chi2 = (((hist["count"] - expected) ** 2) / expected).sum()
    assert chi2 < stats.chi2.ppf(0.999, 9)


def test_a_biased_or_overconfident_forecaster_fails_the_same_checks():
    rng = np.random.default_rng(5)
    n = 4000
    low = S.summarise_backtest(forecast_table(*lognormal_cells(n, rng, shift=-0.5)), by=("method",)).iloc[0]
    # forecasts too low: outcomes fall high in the predictive distribution
    assert low["pit_mean"] > 0.5 + 5 * np.sqrt(1 / 12 / n)
    assert low["bias"] < 0
    narrow = S.summarise_backtest(forecast_table(*lognormal_cells(n, rng, scale=0.5)), by=("method",)).iloc[0]
    for level in S.LEVELS:
        assert narrow[f"coverage_{S.level_name(level)}"] < level - 5 * np.sqrt(level * (1 - level) / n)
    hist = S.pit_histograms(forecast_table(*lognormal_cells(n, rng, scale=0.5)), by=("method",))
    assert hist["share"].iloc[0] > 0.15 and hist["share"].iloc[-1] > 0.15  # the U of intervals too narrow


def test_randomised_pit_is_uniform_for_small_counts_with_many_ties():
    rng = np.random.default_rng(6)
    n = 6000
    lam = rng.uniform(0.5, 4.0, n)
    samples = rng.poisson(lam[:, None], size=(n, 1000)).astype(float)
    observed = rng.poisson(lam).astype(float)
    pit = S.score_samples(samples, observed, seed=1)["pit"]
    assert pit.between(0, 1).all()
    assert abs(pit.mean() - 0.5) < 3 * np.sqrt(1 / 12 / n)
    counts, _ = np.histogram(pit, bins=10, range=(0, 1))
    assert (((counts - n / 10) ** 2) / (n / 10)).sum() < stats.chi2.ppf(0.999, 9)


def test_rows_without_a_forecast_or_an_outcome_get_no_scores():
    samples = np.vstack([np.full(10, np.nan), np.arange(10.0), np.arange(10.0)])
    scores = S.score_samples(samples, np.array([5.0, 5.0, np.nan]))
    assert scores.iloc[0].isna().all()
    assert scores.iloc[1].notna().all()
    assert np.isnan(scores.loc[2, "crps"]) and np.isnan(scores.loc[2, "pit"]) and scores.loc[2, "median"] == 4.5


def test_summary_counts_missing_cells_and_reports_mae_and_bias_of_the_median():
    samples = np.array([[9.0, 10.0, 11.0], [19.0, 20.0, 21.0], [np.nan] * 3])
    table = forecast_table(samples, np.array([12.0, 18.0, 5.0]), n_origins=1)
    table["horizon"] = 1
    row = S.summarise_backtest(table).iloc[0]
    assert (row["n_forecasts"], row["n_scored"], row["n_missing"]) == (3, 2, 1)
    assert row["mae"] == pytest.approx((2 + 2) / 2)
    assert row["bias"] == pytest.approx(((10 - 12) + (20 - 18)) / 2)
    with pytest.raises(UnknownAuthorityError):
        S.summarise_backtest(table, la="E09999999")


# -- paired ratios and the bootstrap over origins --------------------------------------------


def paired_table(crps_model: dict, crps_base: dict) -> pd.DataFrame:
    """Rows for two methods: {(origin, la): crps}."""
    rows = []
    for method, values in (("model", crps_model), ("pooled_growth", crps_base)):
        for (origin, la), crps in values.items():
            rows.append(
                {
                    "method": method,
                    "measure": "looked_after",
                    "la_code": la,
                    "origin": origin,
                    "horizon": 1,
                    "crps": crps,
                }
            )
    return pd.DataFrame(rows)


def test_bootstrap_resamples_whole_origins():
    # Origin A: the model's CRPS is half the baseline's; origin B: one and a half times. Each
    # origin holds 200 cells, so a bootstrap over cells would give a narrow interval around 1;
    # over origins the resampled ratio is 0.5, 1.0 or 1.5 with probabilities 1/4, 1/2, 1/4.
    model = {(2014, f"E06{i:06d}"): 1.0 for i in range(200)} | {(2015, f"E06{i:06d}"): 3.0 for i in range(200)}
    base = {(o, la): 2.0 for (o, la) in model}
    ratios = S.crps_ratios(paired_table(model, base), reference="model", n_boot=4000)
    row = ratios.iloc[0]
    assert row["ratio"] == pytest.approx(1.0)
    assert (row["n_pairs"], row["n_origins"]) == (400, 2)
    assert row["lower"] == pytest.approx(0.5) and row["upper"] == pytest.approx(1.5)


def test_bootstrap_interval_is_a_point_when_every_origin_agrees_and_absent_with_one_origin():
    ratio, low, high = S.bootstrap_ratio(np.array([1.0, 2.0, 4.0]), np.array([2.0, 4.0, 8.0]))
    assert (ratio, low, high) == pytest.approx((0.5, 0.5, 0.5))
    ratio, low, high = S.bootstrap_ratio(np.array([3.0]), np.array([4.0]))
    assert ratio == 0.75 and np.isnan(low) and np.isnan(high)


def test_bootstrap_interval_matches_the_exact_resampling_distribution():
    ref, other = np.array([1.0, 2.0, 6.0]), np.array([2.0, 2.0, 3.0])
    # all 27 equally likely resamples of 3 origins
    idx = np.array(np.meshgrid(*[range(3)] * 3, indexing="ij")).reshape(3, -1).T
    exact = ref[idx].sum(axis=1) / other[idx].sum(axis=1)
    _, low, high = S.bootstrap_ratio(ref, other, n_boot=200_000, ci_prob=0.8, rng=np.random.default_rng(7))

    def below(v, strict=False):  # share of the exact resampling distribution below v
        return np.mean(exact < v - 1e-12) if strict else np.mean(exact <= v + 1e-12)

    # low and high are the 10 % and 90 % quantiles of the exact distribution (to Monte Carlo error)
    assert below(low) >= 0.1 - 0.01 and below(low, strict=True) <= 0.1 + 0.01
    assert below(high) >= 0.9 - 0.01 and below(high, strict=True) <= 0.9 + 0.01


def test_ratios_use_only_cells_both_methods_scored():
    model = {(2014, "A"): 1.0, (2014, "B"): 2.0, (2015, "A"): 3.0}
    base = {(2014, "A"): 2.0, (2014, "B"): np.nan, (2015, "A"): 3.0, (2016, "A"): 100.0}
    row = S.crps_ratios(paired_table(model, base), n_boot=100).iloc[0]
    assert row["n_pairs"] == 2 and row["n_origins"] == 2
    assert row["ratio"] == pytest.approx((1.0 + 3.0) / (2.0 + 3.0))
    assert row["crps_reference"] == pytest.approx(2.0) and row["crps_baseline"] == pytest.approx(2.5)


def test_first_release_view_scores_only_rows_with_a_first_release():
    table = pd.DataFrame(
        {
            "method": "model",
            "measure": "looked_after",
            "la_code": ["A", "B"],
            "origin": 2014,
            "horizon": 1,
            "observed": [10.0, 20.0],
            "pit": [0.1, 0.2],
            "crps": [1.0, 2.0],
            "observed_first_release": [11.0, np.nan],
            "pit_first_release": [0.3, np.nan],
            "crps_first_release": [1.5, np.nan],
        }
    )
    view = S.outcome_view(table, "first_release")
    assert list(view["la_code"]) == ["A"]
    assert view[["observed", "pit", "crps"]].iloc[0].tolist() == [11.0, 0.3, 1.5]
