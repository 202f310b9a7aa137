"""Prior sets: the shipped ones load complete; a user file overrides single values; a bad
file is refused with a message naming the file and the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayes_lac.config import MEASURES
from bayes_lac.errors import InputFileError
from bayes_lac.model.priors import LKJ, PRIOR_SETS, PRIORS, SCHEMA, load_priors, priors_json


@pytest.mark.parametrize("name", PRIOR_SETS)
def test_shipped_sets_load_complete(name):
    priors = load_priors(name)
    for section, keys in SCHEMA.items():
        for key, (kind, per_measure) in keys.items():
            value = priors[section][key]
            if per_measure:
                assert set(value) == set(MEASURES)
                values = list(value.values())
            else:
                values = [value]
            if kind == "positive":
                assert all(v > 0 for v in values), (name, section, key)
    assert json.loads(priors_json(priors)) == priors


def test_sets_differ_where_they_should():
    default, weak, tight = (load_priors(n) for n in ("default", "weak", "tight"))
    assert weak != default and tight != default
    assert weak["la_trend"]["sd_scale"]["looked_after"] >= tight["la_trend"]["sd_scale"]["looked_after"]


def test_user_file_overrides_one_value(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[la_trend]\nsd_scale = { looked_after = 0.01 }\n\n[year_effect]\nstep_sd_scale = 0.07\n")
    default = load_priors("default")
    mine = load_priors(path)
    assert mine["la_trend"]["sd_scale"]["looked_after"] == 0.01
    assert mine["year_effect"]["step_sd_scale"] == {m: 0.07 for m in MEASURES}
    # everything else is the base set's
    mine["la_trend"]["sd_scale"]["looked_after"] = default["la_trend"]["sd_scale"]["looked_after"]
    mine["year_effect"] = default["year_effect"]
    assert mine == default


def test_user_file_with_other_base(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('base = "weak"\n[dispersion]\ncv_scale = 0.3\n')
    weak = load_priors("weak")
    mine = load_priors(path)
    assert mine["dispersion"]["cv_scale"] == {m: 0.3 for m in MEASURES}
    assert mine["intercept"] == weak["intercept"]


@pytest.mark.parametrize(
    "text, key",
    [
        ("[la_trend]\nsd_scal = 0.1\n", "sd_scal"),
        ("[trend]\nsd_scale = 0.1\n", "trend"),
        ("[la_trend]\nsd_scale = -0.1\n", "sd_scale"),
        ('[la_trend]\nsd_scale = "wide"\n', "sd_scale"),
        ("[la_trend]\nsd_scale = true\n", "sd_scale"),
        ("[intercept]\nmean = { looked_afterr = 4.0 }\n", "looked_afterr"),
        ("[la_trend]\nlkj_eta = { looked_after = 2.0 }\n", "lkj_eta"),
        ('base = "nonsense"\n', "base"),
        ("[la_trend\nsd_scale = 0.1\n", "TOML"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputFileError) as err:
        load_priors(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_priors(tmp_path / "nope.toml")


def test_weak_is_wider_and_tight_narrower_than_default():
    default, weak, tight = (load_priors(n) for n in ("default", "weak", "tight"))
    for section, key in [
        ("la_intercept", "sd_scale"),
        ("la_trend", "sd_scale"),
        ("year_effect", "step_sd_scale"),
        ("deprivation_effect", "sd"),
        ("intercept", "sd"),
        ("dispersion", "cv_scale"),
    ]:
        for m in MEASURES:
            assert weak[section][key][m] > default[section][key][m] > tight[section][key][m], (section, key, m)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_priors(tmp_path / "nope.toml")


# -- prior families declared once: the graph and power-scaling agree ----------------------------


def _random_points(family, n: int, rng, size: int):
    """Points in a family's support: reals, positive reals, (0, 1), or Cholesky factors of
    random n x n correlation matrices."""
    if family.name == "normal":
        return rng.normal(0.0, 2.0, size=(size, n))
    if family.name == "half_normal":
        return rng.gamma(2.0, 0.2, size=(size, n))
    if family.name == "beta_mean":
        return rng.uniform(0.02, 0.98, size=(size, n))
    factors = []
    for _ in range(size):
        a = rng.normal(size=(n, n))
        cov = a @ a.T + n * np.eye(n)
        d = np.sqrt(np.diag(cov))
        factors.append(np.linalg.cholesky(cov / np.outer(d, d)))
    return np.array(factors)


@pytest.mark.parametrize("prior_set", PRIOR_SETS)
@pytest.mark.parametrize("name", list(PRIORS))
def test_pymc_and_numpy_densities_agree_for_every_shipped_prior(prior_set, name):
    """The PyMC distribution the graph builds and the numpy density power-scaling uses are the
    same, at random points, for every prior in every shipped prior file."""
    import pymc as pm

    prior = PRIORS[name]
    measures = list(MEASURES)
    parameters = prior.parameters(load_priors(prior_set), measures)
    rng = np.random.default_rng(sum(map(ord, prior_set + name)))
    points = _random_points(prior.family, len(measures), rng, size=6)
    if prior.family is LKJ:
        # PyMC's LKJCorr is a density over the Cholesky factor L of R = L L^T: the LKJ density
        # of R times the Jacobian prod_i L_ii^(n - i). The numpy density is over R, up to a
        # constant, so compare differences between points.
        dist = prior.family.dist(parameters, n=len(measures))
        pymc = np.array([float(pm.logp(dist, L).eval()) for L in points])
        n = len(measures)
        jacobian = np.array([sum((n - i) * np.log(L[i - 1, i - 1]) for i in range(2, n + 1)) for L in points])
        numpy_ = prior.family.logpdf(points @ np.swapaxes(points, 1, 2), **parameters) + jacobian
        np.testing.assert_allclose(pymc - pymc[0], numpy_ - numpy_[0], rtol=1e-8, atol=1e-9)
    else:
        dist = prior.family.dist(parameters, shape=len(measures))
        pymc = np.array([pm.logp(dist, x).eval() for x in points])
        np.testing.assert_allclose(pymc, prior.family.logpdf(points, **parameters), rtol=1e-9)


def test_the_graph_builds_its_priors_from_the_table():
    """In the model graph, each variable with a prior has the table's density (the baseline
    parameterisation samples them directly), and power-scaling's `prior_log_density` gives
    the same number."""
    import pymc as pm
    import xarray as xr

    from bayes_lac.config import ENGLAND_CODE
    from bayes_lac.model.fit import LACModel
    from bayes_lac.model.simulate import simulate_panel
    from bayes_lac.studies.sensitivity import prior_log_density
    from tests.conftest import make_toy_results

    panel, _ = simulate_panel(n_la=4, years=(2016, 2021), seed=3)
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    priors = load_priors("tight")
    model = LACModel(codes[0], neighbours=codes[1:], priors=priors, parameterisation="baseline").build(panel)
    rng = np.random.default_rng(5)
    run = make_toy_results(draws=500)
    run.attrs["priors"] = priors_json(priors)
    post = run["posterior"].to_dataset()
    direct = ["intercept", "deprivation_effect", "year_sigma", "dispersion_cv", "persistence"]
    values = {name: _random_points(PRIORS[name].family, len(MEASURES), rng, size=1)[0] for name in direct}
    post = post.assign(
        {name: (("chain", "draw", "measure"), np.broadcast_to(v, (2, 500, 3)).copy()) for name, v in values.items()}
    )
    run["posterior"] = xr.DataTree(post)
    terms = prior_log_density(run)
    for name in direct:
        graph = pm.logp(model[name], values[name]).eval()
        np.testing.assert_allclose(
            graph, PRIORS[name].family.logpdf(values[name], **PRIORS[name].parameters(priors, MEASURES))
        )
        np.testing.assert_allclose(terms[name].isel(chain=0, draw=0).values, graph, rtol=1e-9)


def test_every_key_of_the_prior_files_feeds_one_prior():
    used = {(p.section, key) for p in PRIORS.values() for key in p.keys.values()}
    declared = {(section, key) for section, keys in SCHEMA.items() for key in keys}
    assert used == declared
