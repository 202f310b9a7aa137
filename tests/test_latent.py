"""The latent-state model's likelihood and state draws against the exact Gaussian they stand for.

No sampling: the Kalman filter's log-likelihood must equal the multivariate normal density of
each series with its states integrated out (built densely from the state loadings), the scan
used in the PyMC graph must equal the filter, and the backward-sampled states must follow their
exact conditional distribution given the data.
"""

import numpy as np
import pytest
from scipy import stats

from bayes_lac.model import latent as L
from tests.conftest import python_evaluation

N_T = 9


def dense_cov(level_start_var, trend_start_var, level_var, trend_var, damping, obs_var):
    """Covariance of a series that starts in the first of the years of `obs_var`."""
    g, k_level, k_trend = L._state_loadings(len(obs_var), damping)
    cov = level_start_var + trend_start_var * np.outer(g, g) + level_var * k_level + trend_var * k_trend
    return cov + np.diag(obs_var)


def random_series(rng, n_series=6):
    params = dict(
        level_start_var=rng.uniform(0.05, 0.3, n_series),
        trend_start_var=rng.uniform(0.001, 0.01, n_series),
        level_var=rng.uniform(1e-4, 0.01, n_series),
        trend_var=rng.uniform(1e-4, 0.005, n_series),
        damping=rng.uniform(0.3, 0.95, n_series),
    )
    obs_var = rng.uniform(0.001, 0.05, (n_series, N_T))
    observed = rng.uniform(size=(n_series, N_T)) > 0.25
    observed[0, :4] = False  # an authority that starts late: nothing before its first year
    observed[1, -3:] = False  # a series that stops (suppressed or after `until`)
    resid = rng.normal(0, 0.4, (n_series, N_T))
    return params, obs_var, observed, resid


def exact_loglik(params, obs_var, observed, resid):
    """Each series' density, the series starting at its first observed year."""
    out = []
    for i in range(resid.shape[0]):
        start = int(np.argmax(observed[i])) if observed[i].any() else 0
        cov = dense_cov(
            *(params[k][i] for k in ("level_start_var", "trend_start_var", "level_var", "trend_var", "damping")),
            obs_var[i, start:],
        )
        keep = observed[i, start:]
        out.append(
            stats.multivariate_normal(np.zeros(keep.sum()), cov[np.ix_(keep, keep)]).logpdf(resid[i, start:][keep])
            if keep.any()
            else 0.0
        )
    return np.array(out)


def test_kalman_filter_equals_the_dense_gaussian_likelihood():
    rng = np.random.default_rng(1)
    params, obs_var, observed, resid = random_series(rng)
    got = L.kalman_loglik(resid, obs_var, observed, **params)
    np.testing.assert_allclose(got, exact_loglik(params, obs_var, observed, resid), rtol=1e-9, atol=1e-9)


def test_years_before_a_series_starts_do_not_change_its_likelihood():
    # an authority created in a later year (or a measure first published later) starts there:
    # laying its series on a longer grid, with empty years in front, gives the same likelihood
    rng = np.random.default_rng(5)
    params, obs_var, observed, resid = random_series(rng)
    pad = 5
    longer = (
        np.concatenate([np.zeros((6, pad)), resid], axis=1),
        np.concatenate([np.full((6, pad), 0.01), obs_var], axis=1),
        np.concatenate([np.zeros((6, pad), bool), observed], axis=1),
    )
    np.testing.assert_allclose(
        L.kalman_loglik(*longer, **params), L.kalman_loglik(resid, obs_var, observed, **params), rtol=1e-12
    )


def test_a_wrong_damping_changes_the_likelihood():
    # the comparison above can fail: the same data under another damping give another value
    rng = np.random.default_rng(2)
    params, obs_var, observed, resid = random_series(rng)
    other = dict(params, damping=params["damping"] * 0.5)
    assert not np.allclose(
        L.kalman_loglik(resid, obs_var, observed, **other), exact_loglik(params, obs_var, observed, resid)
    )


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_the_graphs_scan_equals_the_filter():
    import pytensor.tensor as pt

    rng = np.random.default_rng(3)
    params, obs_var, observed, resid = random_series(rng)
    scan = L.kalman_loglik_scan(
        pt.as_tensor(resid), pt.as_tensor(obs_var), observed, **{k: pt.as_tensor(v) for k, v in params.items()}
    ).eval()
    np.testing.assert_allclose(scan, L.kalman_loglik(resid, obs_var, observed, **params), rtol=1e-10)


#: Hyper-parameters of the state-draw checks: level_start_sd, trend_start_sd, level_sd, trend_sd,
#: damping, noise.
STATE_CHECK = (0.4, 0.08, 0.05, 0.03, 0.7, 0.05)


def one_series(counts, n_draws):
    """Data of one children-in-need series (`counts` on the N_T-year grid) and `n_draws`
    identical posterior draws: `STATE_CHECK`, intercept 3, no national path or deprivation."""
    from types import SimpleNamespace

    data = SimpleNamespace(
        modelled_count=np.asarray(counts, float)[None, None],
        population_0_17=np.full((1, N_T), 50_000.0),
        measures=("children_in_need",),
        uasc_imputed=np.zeros((1, N_T), bool),
        deprivation=np.full((1, N_T), np.nan),
        year=np.arange(2010, 2010 + N_T),
    )
    one = lambda v: np.full((n_draws, 1), v)  # noqa: E731
    names = ("level_start_sd", "trend_start_sd", "level_sd", "trend_sd", "damping", "noise")
    draws = {
        **{k: one(0.0) for k in ("deprivation_between", "deprivation_within", "drift", "national_sd")},
        **{k: one(v) for k, v in zip(names, STATE_CHECK, strict=True)},
        "intercept": one(3.0),
        "national": np.zeros((n_draws, 1, N_T)),
    }
    return data, draws


def test_backward_sampled_states_follow_their_exact_conditional_distribution():
    """Level at the last and a middle year: FFBS draws against the dense Gaussian conditional."""
    rng = np.random.default_rng(4)
    n_draws = 4000
    level_start_sd, trend_start_sd, level_sd, trend_sd, damping, noise = STATE_CHECK
    data, draws = one_series([120, 130, 150, 160, np.nan, 190, 200, 230, 240], n_draws)
    arrays = L.series_arrays(data)
    states = L.draw_states(data, draws, rng)
    level = states["level"][:, 0, 0, :]
    # exact conditional of the level path given the observed cells
    g, k_level, k_trend = L._state_loadings(N_T, damping)
    prior = level_start_sd**2 + trend_start_sd**2 * np.outer(g, g) + level_sd**2 * k_level + trend_sd**2 * k_trend
    keep = arrays["observed"][0, 0]
    obs_cov = prior[np.ix_(keep, keep)] + np.diag(arrays["count_var"][0, 0, keep] + noise**2)
    resid = arrays["y"][0, 0, keep] - 3.0
    cross = prior[:, keep]
    mean = cross @ np.linalg.solve(obs_cov, resid)
    cov = prior - cross @ np.linalg.solve(obs_cov, cross.T)
    for t in (N_T - 1, 4):  # the last year, and a year with no count
        sd = np.sqrt(cov[t, t])
        assert abs(level[:, t].mean() - mean[t]) < 4 * sd / np.sqrt(n_draws)
        assert level[:, t].std() == pytest.approx(sd, rel=0.06)


def test_a_series_that_starts_late_has_its_start_spread_in_its_first_year():
    """A series first observed in year 3: FFBS draws of its level there and in the last year
    against the dense conditional of a series that starts in year 3 (no innovations before)."""
    rng = np.random.default_rng(6)
    n_draws, start = 4000, 3
    level_start_sd, trend_start_sd, level_sd, trend_sd, damping, noise = STATE_CHECK
    data, draws = one_series([np.nan] * start + [120, 130, 150, 160, 190, 200], n_draws)
    arrays = L.series_arrays(data)
    states = L.draw_states(data, draws, rng)
    assert states["started"][0, 0].tolist() == [False] * start + [True] * (N_T - start)
    # before its start a series has no path: the draws there repeat the first year's
    every = states["level"][:, 0, 0, :]
    np.testing.assert_allclose(every[:, :start], np.repeat(every[:, [start]], start, axis=1), atol=1e-4)
    level = states["level"][:, 0, 0, start:]
    n = N_T - start
    g, k_level, k_trend = L._state_loadings(n, damping)
    prior = level_start_sd**2 + trend_start_sd**2 * np.outer(g, g) + level_sd**2 * k_level + trend_sd**2 * k_trend
    obs_cov = prior + np.diag(arrays["count_var"][0, 0, start:] + noise**2)
    mean = prior @ np.linalg.solve(obs_cov, arrays["y"][0, 0, start:] - 3.0)
    cov = prior - prior @ np.linalg.solve(obs_cov, prior)
    for t in (0, n - 1):
        sd = np.sqrt(cov[t, t])
        assert abs(level[:, t].mean() - mean[t]) < 4 * sd / np.sqrt(n_draws)
        assert level[:, t].std() == pytest.approx(sd, rel=0.06)


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_the_models_log_density_and_gradient_are_finite(tmp_path):
    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=5, years=(2013, 2020), seed=3)
    code = panel.loc[panel.la_code.str.startswith("E0"), "la_code"].iloc[0]
    data = prepare_data(panel, code, neighbours="all")
    model = L.build_latent_model(data)
    point = model.initial_point()
    with python_evaluation() as mode:
        assert np.isfinite(model.compile_logp(mode=mode)(point))
        assert np.all(np.isfinite(model.compile_dlogp(mode=mode)(point)))


def test_a_series_without_local_trend_is_a_random_walk_level():
    """Zero trend variances (a measure left out of `trend_measures`): the filter's likelihood is
    that of a random-walk level (covariance start + level_var * min(s, t) + observation noise)."""
    rng = np.random.default_rng(5)
    params, obs_var, observed, resid = random_series(rng)
    no_trend = dict(params, trend_start_var=0.0 * params["trend_start_var"], trend_var=0.0 * params["trend_var"])
    want = []
    for i in range(resid.shape[0]):
        start = int(np.argmax(observed[i]))  # the series starts at its first observed year
        t = np.arange(N_T - start)
        cov = (
            params["level_start_var"][i] + params["level_var"][i] * np.minimum.outer(t, t) + np.diag(obs_var[i, start:])
        )
        keep = observed[i, start:]
        want.append(
            stats.multivariate_normal(np.zeros(keep.sum()), cov[np.ix_(keep, keep)]).logpdf(resid[i, start:][keep])
        )
    got = L.kalman_loglik(resid, obs_var, observed, **no_trend)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # and it differs from the same series with their trends
    assert not np.allclose(L.kalman_loglik(resid, obs_var, observed, **params), want)


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_trend_measures_give_the_other_measures_no_local_trend():
    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=5, years=(2013, 2020), seed=3)
    code = panel.loc[panel.la_code.str.startswith("E0"), "la_code"].iloc[0]
    data = prepare_data(panel, code, neighbours="all")
    others = tuple(m for m in data.measures if m != "looked_after")
    model = L.build_latent_model(data, trend_measures=others)
    import pymc as pm

    point = model.initial_point()
    sds = pm.draw([model["trend_sd"], model["trend_start_sd"]], random_seed=1)
    k = list(data.measures).index("looked_after")
    for sd in sds:
        assert sd[k] == 0.0
        assert all(sd[j] > 0 for j in range(len(data.measures)) if j != k)
    with python_evaluation() as mode:
        assert np.all(np.isfinite(model.compile_dlogp(mode=mode)(point)))


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_a_damped_national_paths_steps_are_an_ar1_around_the_drift():
    import pymc as pm

    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=4, years=(2012, 2019), seed=2)
    code = panel.loc[panel.la_code.str.startswith("E0"), "la_code"].iloc[0]
    data = prepare_data(panel, code, neighbours="all")
    model = L.build_latent_model(data, national="damped")
    names = ["national", "drift", "national_damping", "national_sd", "national_z"]
    national, drift, phi, sd, z = pm.draw([model[n] for n in names], random_seed=7)
    first = {m: int(np.argmax(np.isfinite(data.modelled_count[k]).any(axis=0))) for k, m in enumerate(data.measures)}
    for k, m in enumerate(data.measures):
        previous, path = drift[k], [0.0]
        for t in range(1, len(data.year)):
            if t <= first[m]:
                path.append(0.0)
                continue
            step = drift[k] + phi[k] * (previous - drift[k]) + sd[k] * z[k, t]
            path.append(path[-1] + step)
            previous = step
        np.testing.assert_allclose(national[k], path, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="national must be one of"):
        L.build_latent_model(data, national="wiggly")
    with pytest.raises(ValueError, match="trend_measures: looked_afer not among"):
        L.build_latent_model(data, trend_measures=("looked_afer",))
    with pytest.raises(ValueError, match="variance must be one of split, separate; got 'pooled'"):
        L.build_latent_model(data, variance="pooled")
    with pytest.raises(ValueError, match="national_steps must be one of"):
        L.build_latent_model(data, national_steps="sideways")
    with pytest.raises(ValueError, match="national_steps='centred' is a design of the random-walk"):
        L.build_latent_model(data, national="damped", national_steps="centred")


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_the_split_variance_design_shares_one_series_sd_between_level_and_noise():
    import pymc as pm

    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=4, years=(2012, 2019), seed=2)
    code = panel.loc[panel.la_code.str.startswith("E0"), "la_code"].iloc[0]
    data = prepare_data(panel, code, neighbours="all")
    model = L.build_latent_model(data)  # the default design
    free = {rv.name for rv in model.free_RVs}
    assert {"series_sd", "level_share"} <= free and not {"level_sd", "noise"} & free
    total, share, level_sd, noise = pm.draw(
        [model[n] for n in ("series_sd", "level_share", "level_sd", "noise")], random_seed=3
    )
    np.testing.assert_allclose(level_sd, total * np.sqrt(share), rtol=1e-12)
    np.testing.assert_allclose(level_sd**2 + noise**2, total**2, rtol=1e-12)
    # the prior of the total is the half-normal whose scale combines the file's two scales
    scale = np.sqrt(L.LATENT_PRIORS["level_sd"] ** 2 + L.LATENT_PRIORS["noise"] ** 2)
    draws = pm.draw(model["series_sd"], draws=4000, random_seed=4)
    assert np.median(draws) == pytest.approx(scale * 0.6745, rel=0.05)
    separate = L.build_latent_model(data, variance="separate")
    assert {"level_sd", "noise"} <= {rv.name for rv in separate.free_RVs}


def test_a_damped_national_forecast_returns_from_the_last_step_to_the_drift():
    """No noise anywhere: the national part of the forecast moves by drift + phi**h (last step - drift)."""
    from types import SimpleNamespace

    n_draws, n_m, n_la, n_t = 3, 1, 2, 5
    data = SimpleNamespace(
        modelled_count=np.full((n_m, n_la, n_t), 50.0),
        population_0_17=np.full((n_la, n_t), 10_000.0),
        year=np.arange(2015, 2015 + n_t),
        measures=("child_protection",),
        deprivation=np.full((n_la, n_t), 15.0),
        uasc_imputed=np.zeros((n_la, n_t), bool),
    )
    zero = np.zeros((n_draws, n_m))
    national = np.tile(np.array([0.0, 0.01, 0.02, 0.05, 0.10]), (n_draws, n_m, 1))  # last step 0.05
    draws = {
        "intercept": zero + 3.0,
        "deprivation_between": zero,
        "deprivation_within": zero,
        "level_sd": zero,
        "trend_sd": zero,
        "national_sd": zero,
        "damping": zero + 0.5,
        "drift": zero + 0.01,
        "national_damping": zero + 0.6,
        "national": national,
    }
    states = {"level": np.zeros((n_draws, n_m, n_la, n_t)), "trend": np.zeros((n_draws, n_m, n_la, n_t))}
    out = L.forecast_log_rates(data, draws, states, 4, np.random.default_rng(0))
    steps = 0.01 + 0.6 ** np.arange(1, 5) * (0.05 - 0.01)
    np.testing.assert_allclose(out[0, 0, 0], 3.0 + 0.10 + np.cumsum(steps))
    # the same draws without the damping: a random walk with the drift alone
    plain = {k: v for k, v in draws.items() if k != "national_damping"}
    out = L.forecast_log_rates(data, plain, states, 4, np.random.default_rng(0))
    np.testing.assert_allclose(out[0, 0, 0], 3.0 + 0.10 + 0.01 * np.arange(1, 5))


def test_the_latent_priors_come_from_their_file_with_sources(tmp_path):
    from bayes_lac.errors import InputFileError

    text = L.LATENT_PRIORS_FILE.read_text()
    assert "Bennett et al. (2022)" in text and "95 % CI 2-8" in text  # the within-authority source
    within = L.LATENT_PRIORS["deprivation_within"]
    assert within[0]["looked_after"] == 0.17 and within[1]["looked_after"] == 0.10
    means, sds = L._by_measure(within, ("looked_after", "child_protection"))
    np.testing.assert_array_equal(means, [0.17, 0.0])
    np.testing.assert_array_equal(sds, [0.10, 0.5])
    assert L._by_measure(0.05, ("a", "b")).tolist() == [0.05, 0.05]
    bad = tmp_path / "p.toml"
    for text, message in (
        ('[noise]\nfamily = "half_normal"\n', r"p.toml \[noise\]: missing 'scale'"),
        ('[noise]\nfamily = "cauchy"\nscale = 1\n', r"\[noise\]: family must be one of"),
        ('[drift]\nfamily = "normal"\nmean = "zero"\nsd = 1\n', r"\[drift\] mean: expected a finite number"),
        ('[noise]\nfamily = "half_normal"\nscale = -1\n', r"\[noise\] scale: must be positive"),
        ('[noise]\nfamily = "half_normal"\nscale = 1\nsd = 2\n', r"unknown key\(s\) sd"),
        ('[drift]\nfamily = "normal"\nmean = { looked_afer = 0.1 }\nsd = 1\n', r"unknown measure\(s\) looked_afer"),
        ('[drift]\nfamily = "normal"\nmean = nan\nsd = 1\n', "expected a finite number"),
    ):
        bad.write_text(text)
        with pytest.raises(InputFileError, match=message):
            L.load_latent_priors(bad)
    with pytest.raises(InputFileError, match="gives no value for child_protection"):
        L._by_measure({"looked_after": 1.0}, ("looked_after", "child_protection"))


def test_the_looked_after_drift_prior_is_englands_mean_yearly_change_1994_2009():
    """The prior file's arithmetic, redone from the published national series (when present)."""
    import pandas as pd

    from bayes_lac.data.official import DEFAULT_OFFICIAL_SOURCE

    path = (
        DEFAULT_OFFICIAL_SOURCE
        / "BenGoodair_childrens_social_care_data/post_2017_updated25/data/cla_time_series_1994_2024.csv"
    )
    if not path.is_file():
        pytest.skip(f"{path} not present")
    series = pd.read_csv(path, encoding="utf-8-sig")
    lac = series[series["population_count"] == "Children looked after at 31 March"]
    count = lac.set_index("time_period")["number"].astype(float)
    mean, sd = L.LATENT_PRIORS["drift"]
    assert mean["looked_after"] == pytest.approx(np.log(count[2009] / count[1994]) / 15, abs=5e-5)
    eras = [np.log(count[b] / count[a]) / 5 for a, b in ((1994, 1999), (1999, 2004), (2004, 2009))]
    # the sd covers the eras' spread with room for what the counts leave out
    assert np.std(eras, ddof=1) < sd["looked_after"]


def test_each_shipped_latent_prior_set_is_a_different_belief_about_the_defaults_entries():
    """models/latent_prior_sets/: each file replaces some of the default's entries (same family),
    says the belief it stands for, and is named by a variant of the refit study."""
    import tomllib

    from bayes_lac.config import LATENT_PRIOR_SETS_DIR
    from bayes_lac.studies import latent_sensitivity as LS

    files = sorted(LATENT_PRIOR_SETS_DIR.glob("*.toml"))
    assert {p.stem for p in files} == {"national", "local", "no-deprivation", "vague-deprivation"}
    defaults = tomllib.loads(L.LATENT_PRIORS_FILE.read_text())
    named = {v.prior_set for v in LS.VARIANTS.values() if v.prior_set}
    for path in files:
        raw = tomllib.loads(path.read_text())
        assert set(raw) <= set(defaults), path.name
        assert all(raw[k]["family"] == defaults[k]["family"] for k in raw), path.name
        loaded = L.load_latent_priors(path)
        # every entry it gives differs from the default's: a set that repeats the default says nothing
        assert all(loaded[k] != L.LATENT_PRIORS[k] for k in loaded), path.name
        assert path.read_text().startswith(f'# Latent prior set "{path.stem}": '), path.name
        assert path.stem in named
    # the two beliefs about change pull the same entries in opposite directions from the default
    national, local = (L.load_latent_priors(LATENT_PRIOR_SETS_DIR / f"{n}.toml") for n in ("national", "local"))
    mean = lambda ab: ab[0] / (ab[0] + ab[1])  # noqa: E731
    assert mean(national["damping"]) < mean(L.LATENT_PRIORS["damping"]) < mean(local["damping"])
    assert national["trend_sd"] < L.LATENT_PRIORS["trend_sd"] < local["trend_sd"]
    assert national["national_sd"] > L.LATENT_PRIORS["national_sd"] > local["national_sd"]


def test_a_prior_set_is_a_shipped_name_or_a_toml_file(tmp_path):
    from bayes_lac.errors import InputFileError, UsageError
    from bayes_lac.studies import latent_sensitivity as LS

    assert LS.prior_set_variant("local").key == "local-change"
    own = tmp_path / "mine.toml"
    own.write_text('[damping]\nfamily = "beta"\nalpha = 1.0\nbeta = 9.0\n')
    variant = LS.prior_set_variant(str(own))
    assert variant.key == "mine" and variant.refits and variant.kind == "priors"
    with pytest.raises(InputFileError, match="not a shipped set .*local, national.*no such file"):
        LS.prior_set_variant(str(tmp_path / "missing.toml"))
    (tmp_path / "mine.txt").write_text("")
    with pytest.raises(InputFileError, match="a .toml file is expected"):
        LS.prior_set_variant(str(tmp_path / "mine.txt"))
    with pytest.raises(UsageError, match="unknown refit 'wider'.*goes to --prior-sets"):
        LS.applicable(None, ["wider"])
    # a file that names a prior the model does not have, or gives one another family, is refused
    # with the file and the entry named (before any fit: `latent_refits` loads every set first)
    typo = tmp_path / "typo.toml"
    typo.write_text('[dampng]\nfamily = "beta"\nalpha = 1.0\nbeta = 9.0\n')
    with pytest.raises(InputFileError, match=r"typo.toml \[dampng\]: not a prior of the latent model"):
        LS.load_prior_set(str(typo))
    family = tmp_path / "family.toml"
    family.write_text('[damping]\nfamily = "normal"\nmean = 0.5\nsd = 0.1\n')
    with pytest.raises(InputFileError, match=r"\[damping\]: family 'normal', but the model's damping has a beta"):
        LS.load_prior_set(str(family))
    assert LS.load_prior_set(str(own)) == {"damping": (1.0, 9.0)}
    # "all" stands for every shipped refit, each once; two files of one name are refused
    keys = [v.key for v in LS._variants(["no-trend", "all"])]
    assert sorted(keys) == sorted(LS.VARIANTS) and keys[0] == "no-trend"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.toml").write_text(own.read_text())
    with pytest.raises(UsageError, match="two refits are both called 'mine'"):
        LS._variants([LS.prior_set_variant(str(own)), LS.prior_set_variant(str(tmp_path / "b" / "mine.toml"))])


def test_observed_counts_follow_the_likelihoods_observation_model():
    """log(count + 0.5) has the variance share / (expected + 0.5) + noise**2, around the expected
    count's; counts are whole and at least 0, and a NaN expectation stays NaN."""
    rng = np.random.default_rng(11)
    eps = rng.standard_normal(200_000)
    for expected, share, noise in ((400.0, 0.25, 0.0), (400.0, 1.0, 0.05), (60.0, 0.5, 0.02)):
        counts = L.observed_counts(np.full(eps.shape, expected), noise, share, eps)
        assert np.array_equal(counts, np.rint(counts)) and counts.min() >= 0
        logs = np.log(counts + 0.5)
        want = share / (expected + 0.5) + noise**2
        assert np.var(logs) == pytest.approx(want, rel=0.05)
        # centred as the likelihood: log(count + 0.5) around log(expected)
        assert np.median(logs) == pytest.approx(np.log(expected), abs=0.1 * np.sqrt(want))
    # a smaller share, narrower counts: the share is not ignored
    narrow = L.observed_counts(np.full(eps.shape, 400.0), 0.0, 0.1, eps)
    wide = L.observed_counts(np.full(eps.shape, 400.0), 0.0, 1.0, eps)
    assert np.std(narrow) < 0.4 * np.std(wide)
    assert np.isnan(L.observed_counts(np.array([np.nan, 5.0]), 0.0, 1.0, np.zeros(2))[0])
    # the predictive draws of a run without a count share stay Poisson (its earlier design)
    rate = np.log(np.full((4000, 1), 80.0))
    poisson = L.predictive_counts(rate, np.array([50_000.0]), np.zeros((4000, 1)), np.random.default_rng(1))
    assert np.var(poisson) == pytest.approx(400.0, rel=0.1)


@pytest.mark.slow  # compiles a model: not in the fast tier
def test_the_models_likelihood_uses_the_count_share_of_looked_after_counts():
    """The graph's series log-likelihood at a point equals the filter's with the observation
    variance count_share / count + noise**2 (count_share sampled for looked-after children, 1
    for the others), and differs from the one with the whole Poisson variance."""
    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.latent_fit import _series_loglik
    from bayes_lac.model.simulate import simulate_panel

    panel, _ = simulate_panel(n_la=4, years=(2012, 2019), seed=2)
    code = panel.loc[panel.la_code.str.startswith("E0"), "la_code"].iloc[0]
    data = prepare_data(panel, code, neighbours="all")
    model = L.build_latent_model(data, count_noise="share")
    assert "count_share_raw" in {rv.name for rv in model.free_RVs}
    names = (*L.HYPER, "national", "count_share")
    point = model.initial_point()
    point["count_share_raw_logodds__"] = np.array([-1.5, 0.7, 0.3])  # looked-after share 0.18
    outputs = model.replace_rvs_by_values([model.potentials[0], *(model[n] for n in names)])
    fn = model.compile_fn(outputs, inputs=model.value_vars, point_fn=False, on_unused_input="ignore")
    loglik, *values = fn(**{v.name: point[v.name] for v in model.value_vars})
    draws = {n: np.asarray(v)[None] for n, v in zip(names, values, strict=True)}
    k = list(data.measures).index("looked_after")
    share = draws["count_share"][0]
    assert share[k] == pytest.approx(1 / (1 + np.exp(1.5))) and np.all(np.delete(share, k) == 1.0)
    arrays = L.series_arrays(data)
    assert float(loglik) == pytest.approx(_series_loglik(draws, arrays).sum(), rel=1e-9)
    whole = dict(draws, count_share=np.ones_like(draws["count_share"]))
    assert abs(float(loglik) - _series_loglik(whole, arrays).sum()) > 1.0
    poisson = L.build_latent_model(data)  # the default design
    assert not {"count_share_raw", "count_share"} & {v.name for v in (*poisson.free_RVs, *poisson.deterministics)}
    # the share applies to the count's own variance: the same draws with a share of 1 are the
    # default design's likelihood
    poisson_draws = {n: v for n, v in draws.items() if n != "count_share"}
    np.testing.assert_allclose(_series_loglik(whole, arrays), _series_loglik(poisson_draws, arrays), rtol=1e-12)
    with pytest.raises(ValueError, match="count_noise must be one of share, poisson"):
        L.build_latent_model(data, count_noise="negbin")


def test_a_forecast_started_at_the_published_count_moves_each_draw_onto_it():
    measures = ("looked_after", "children_in_need")
    rng = np.random.default_rng(3)
    log_rate = rng.normal(4.0, 0.1, size=(50, 2, 3))  # (draw, measure, la)
    count = np.array([[244.0, np.nan, 0.0], [1404.0, 900.0, 12.0]])
    population = np.array([40_000.0, 30_000.0, 20_000.0])
    moved = L.start_offsets(log_rate, count, population, measures, "published")
    started = log_rate + moved
    # every draw now sits at the published rate per 10,000, a 0 taken as 0.5
    np.testing.assert_allclose(np.exp(started[:, 0, 0]) * 4, 244.0)
    np.testing.assert_allclose(np.exp(started[:, 1, 1]) * 3, 900.0)
    np.testing.assert_allclose(np.exp(started[:, 0, 2]) * 2, 0.5)
    # no count: the draw keeps its modelled state
    np.testing.assert_array_equal(moved[:, 0, 1], 0.0)
    # "state" moves nothing; a measure named is moved alone
    np.testing.assert_array_equal(L.start_offsets(log_rate, count, population, measures, "state"), 0.0)
    only = L.start_offsets(log_rate, count, population, measures, ("children_in_need",))
    np.testing.assert_array_equal(only[:, 0], 0.0)
    np.testing.assert_array_equal(only[:, 1], moved[:, 1])
    with pytest.raises(ValueError, match="start must be one of state, published"):
        L.start_offsets(log_rate, count, population, measures, "latest")
    with pytest.raises(ValueError, match="child_protection"):
        L.start_offsets(log_rate, count, population, measures, ("child_protection",))


def test_one_step_errors_are_each_years_error_given_the_earlier_years_standardised():
    """The filter's standardised one-step errors equal, year by year, the dense Gaussian's
    conditional error given the series' earlier observed years over its conditional sd; NaN in
    a series' first year and where nothing is observed."""
    rng = np.random.default_rng(12)
    params, obs_var, observed, resid = random_series(rng)
    got = L.kalman_loglik(resid, obs_var, observed, errors=True, **params)
    assert got.shape == resid.shape
    checked = 0
    for i in range(resid.shape[0]):
        if not observed[i].any():
            assert np.isnan(got[i]).all()
            continue
        start = int(np.argmax(observed[i]))
        cov = dense_cov(
            *(params[k][i] for k in ("level_start_var", "trend_start_var", "level_var", "trend_var", "damping")),
            obs_var[i, start:],
        )
        seen = np.flatnonzero(observed[i, start:])
        assert np.isnan(got[i, : start + 1]).all()
        assert np.isnan(got[i][~observed[i]]).all()
        for n, j in enumerate(seen[1:], start=1):
            prev = seen[:n]
            weights = np.linalg.solve(cov[np.ix_(prev, prev)], cov[prev, j])
            mean = weights @ resid[i, start + prev]
            var = cov[j, j] - weights @ cov[prev, j]
            np.testing.assert_allclose(got[i, start + j], (resid[i, start + j] - mean) / np.sqrt(var), rtol=1e-8)
            checked += 1
    assert checked > 20


def test_the_tails_of_one_step_errors_are_told_apart():
    """Normal errors get the normal (or a t as good as normal); errors from a Student t of 4
    degrees of freedom with unit variance get 4 or a neighbour on the grid."""
    rng = np.random.default_rng(3)
    shape = (2, 1, 2_000, 10)  # (draw, measure, la, year)
    normal = rng.standard_normal(shape)
    heavy = rng.standard_t(4, shape) * np.sqrt(2 / 4)
    errors = np.concatenate([normal, heavy], axis=1)
    errors[:, :, :, 0] = np.nan  # a series' first year has none
    df = L.tail_df(errors)
    assert df[0] >= 20
    assert df[1] in (3.0, 4.0, 5.0)
    assert np.isinf(L.tail_df(np.full((1, 1, 3, 4), np.nan)))[0]


def test_unit_shocks_keep_the_variance_and_give_the_tails():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(L.unit_shocks(rng_a, (4, 3), np.inf), rng_b.standard_normal((4, 3)))
    draws = L.unit_shocks(np.random.default_rng(6), (400_000, 2), np.array([np.inf, 6.0]))
    np.testing.assert_allclose(draws.var(axis=0), [1.0, 1.0], atol=0.02)
    beyond = (np.abs(draws) > 3).mean(axis=0)
    # normal: 0.27 %; a unit-variance t of 6 degrees of freedom: about 1.0 %
    assert 0.002 < beyond[0] < 0.0035
    assert 0.008 < beyond[1] < 0.013
    with pytest.raises(ValueError, match="more than 2 degrees of freedom"):
        L.unit_shocks(np.random.default_rng(0), (3,), 2.0)
    with pytest.raises(ValueError, match="NaN"):
        L.unit_shocks(np.random.default_rng(0), (3,), np.nan)
    params, obs_var, observed, resid = random_series(np.random.default_rng(1))
    with pytest.raises(ValueError, match="not both"):
        L.kalman_loglik(resid, obs_var, observed, per_year=True, errors=True, **params)
