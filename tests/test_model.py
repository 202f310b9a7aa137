"""The model graph without sampling: it compiles, its density is finite, it follows the
contract of ``bayes_lac.model.results``, and only published cells enter the likelihood. Also the
comparison sets and the imputation notices on the bundled panel."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_lac import load_panel
from bayes_lac.config import ENGLAND_CODE, MEASURES
from bayes_lac.errors import UnknownAuthorityError
from bayes_lac.model.data import prepare_data
from bayes_lac.model.fit import LACModel
from bayes_lac.model.simulate import simulate_panel
from tests.conftest import python_evaluation

THURROCK = "E06000034"

#: The contract's posterior variables and their dims (bayes_lac.model.results docstring).
CONTRACT_DIMS = {
    "intercept": ("measure",),
    "la_intercept": ("la", "measure"),
    "la_trend": ("la", "measure"),
    "year_effect": ("measure", "year"),
    "year_sigma": ("measure",),
    "deprivation_effect": ("measure",),
    "dispersion": ("measure",),
    "persistence": ("measure",),
}


def _codes(panel):
    return [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]


@pytest.fixture(scope="module")
def small_panel():
    panel, _ = simulate_panel(n_la=5, years=(2014, 2022), seed=3)
    return panel


@pytest.fixture(scope="module")
def bundled():
    return load_panel()


@pytest.fixture(scope="module")
def built(small_panel):
    codes = _codes(small_panel)
    lac = LACModel(codes[0], neighbours=codes[1:])
    model = lac.build(small_panel)
    return lac, model


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_logp_and_gradient_finite_at_initial_point(built):
    _, model = built
    point = model.initial_point()
    with python_evaluation() as mode:
        logp = model.compile_logp(mode=mode)(point)
        grad = model.compile_dlogp(mode=mode)(point)
    assert np.isfinite(logp)
    assert grad.size > 0 and np.all(np.isfinite(grad))


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_one_measure_builds_with_the_shipped_priors(small_panel):
    # the shipped prior files name all three measures; a one-measure fit keeps its own
    codes = _codes(small_panel)
    lac = LACModel(codes[0], neighbours=codes[1:], measures=("looked_after",))
    model = lac.build(small_panel)
    assert list(model.coords["measure"]) == ["looked_after"]
    point = model.initial_point()
    with python_evaluation() as mode:
        assert np.isfinite(model.compile_logp(mode=mode)(point))
    assert set(lac._priors()[0]["intercept"]["mean"]) == {"looked_after"}


def test_persistence_enters_only_cells_with_a_previous_count(built):
    lac, model = built
    data = lac.data_
    previous, has = data.previous_deviation_data()
    # the first year and each measure's first published year have no previous count
    assert not has[:, :, 0].any()
    m, i, t = data.observed_index()
    assert has[m, i, t].sum() == np.sum(t > 0)
    # changing persistence moves the expected counts of exactly those cells
    (log_expected,) = model.replace_rvs_by_values([model.log_expected])
    point = model.initial_point()
    point2 = dict(point)
    key = next(k for k in point if k.startswith("persistence"))
    point2[key] = point[key] + 0.5
    with python_evaluation() as mode:
        f = model.compile_fn(log_expected, inputs=model.value_vars, on_unused_input="ignore", mode=mode)
        base = f(point)
        moved = ~np.isclose(f(point2), base)
    np.testing.assert_array_equal(moved, has[m, i, t] & (np.abs(previous[m, i, t]) > 0))


def test_variables_and_dims_follow_contract(built):
    lac, model = built
    dims = model.named_vars_to_dims
    for name, expected in CONTRACT_DIMS.items():
        assert name in model.named_vars, f"{name} missing from the model"
        assert tuple(dims[name]) == expected, f"{name} has dims {dims[name]}, contract says {expected}"
    assert list(model.coords["la"]) == lac.data_.la
    assert lac.data_.la[0] == lac.target_la
    assert list(model.coords["measure"]) == list(MEASURES)
    assert list(model.coords["year"]) == list(range(2014, 2023))


def test_only_published_cells_are_observed(built):
    lac, model = built
    data = lac.data_
    n_published = int(np.sum(~np.isnan(data.modelled_count)))
    assert len(model.coords["obs"]) == n_published
    # the simulated panel publishes children in need / child protection from 2013, so with
    # 2014-2022 every cell is published; the observed vector carries those values in order
    observed = model.rvs_to_values[model["modelled_count"]].data
    m, i, t = data.observed_index()
    np.testing.assert_array_equal(observed, data.modelled_count[m, i, t])
    # looked_after is modelled without UASC
    k = data.measures.index("looked_after")
    np.testing.assert_allclose(data.modelled_count[k], data.reported_count[k] - data.uasc)


@pytest.mark.slow  # compiles or samples a model: not in the fast tier
def test_blank_and_unpopulated_cells_leave_the_likelihood(small_panel):
    panel = small_panel.copy()
    codes = _codes(panel)
    row_count = (panel["la_code"] == codes[2]) & (panel["year"] == 2018)
    row_pop = (panel["la_code"] == codes[3]) & (panel["year"] == 2020)
    panel.loc[row_count, "child_protection"] = np.nan
    panel.loc[row_pop, "population_0_17"] = np.nan

    partition = None

    def build(p):
        # the "auto" parameterisation depends on the data; fix it so the graphs compare
        lac = LACModel(codes[0], neighbours=codes[1:], parameterisation=partition or "auto")
        model = lac.build(p)
        return lac, model

    lac, model = build(panel)
    partition = model.partition
    full = 3 * len(codes) * 9
    # one blank count, and three counts whose population is missing
    assert len(model.coords["obs"]) == full - 1 - 3
    assert any("absent from the likelihood" in s for s in lac.data_.imputations)

    # changing the excluded cells' counts changes nothing in the log-density
    changed = panel.copy()
    changed.loc[row_pop, ["looked_after", "children_in_need", "child_protection"]] = [9999, 99999, 9999]
    lac2, model2 = build(changed)
    point = model.initial_point()
    assert model2.initial_point().keys() == point.keys()
    included = (changed["la_code"] == codes[1]) & (changed["year"] == 2016)
    changed_again = changed.copy()
    changed_again.loc[included, "children_in_need"] += 500
    _, model3 = build(changed_again)
    with python_evaluation() as mode:
        logp = model.compile_logp(mode=mode)(point)
        assert logp == pytest.approx(model2.compile_logp(mode=mode)(point), rel=1e-12)
        # ...while changing an included cell does change it
        assert model3.compile_logp(mode=mode)(point) != pytest.approx(logp, rel=1e-9)


def test_chains_run_on_every_cpu_the_process_may_use(monkeypatch):
    """pm.sample's default halves the CPU count, which ran every chain on one core of a 2-core
    machine; a nutpie fit asks for one thread per chain, up to the CPUs available."""
    import os

    import pymc

    from bayes_lac.model import fit as model_fit
    from bayes_lac.model.nuts import default_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("BAYES_LAC_CORES", raising=False)
    assert (default_cores(4), default_cores(1)) == (2, 1)
    monkeypatch.setenv("BAYES_LAC_CORES", "1")  # fits already side by side in processes
    assert default_cores(4) == 1
    monkeypatch.setenv("BAYES_LAC_CORES", "two")
    with pytest.raises(ValueError, match="BAYES_LAC_CORES='two': expected a whole number"):
        default_cores(4)
    monkeypatch.delenv("BAYES_LAC_CORES")
    seen = {}

    def fake_sample(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pymc, "sample", fake_sample)
    for sampler, cores, expected in (("nutpie", None, 2), ("nutpie", 1, 1), ("pymc", None, None)):
        with pytest.raises(RuntimeError, match="stop here"):
            model_fit._sample(
                pymc.Model(),
                draws=10,
                tune=10,
                chains=4,
                cores=cores,
                seed=1,
                progressbar=False,
                sampler=sampler,
                target_accept=0.9,
            )
        assert seen["cores"] == expected


def test_neighbours_2021_on_bundled_panel(bundled):
    data = prepare_data(bundled, THURROCK, "2021")
    assert data.la[0] == THURROCK
    assert len(data.la) == 11 and len(set(data.la)) == 11
    assert data.comparison == "neighbours-2021"
    assert data.la_name[0] == "Thurrock"


def test_comparison_from_list_and_string(small_panel):
    codes = _codes(small_panel)
    data = prepare_data(small_panel, codes[0], codes[1:4])
    assert data.la == codes[:4] and data.comparison == "list"
    data2 = prepare_data(small_panel, codes[0], ",".join(codes[1:4]))
    assert data2.la == data.la


def test_unknown_codes_raise(small_panel):
    codes = _codes(small_panel)
    with pytest.raises(UnknownAuthorityError, match="E06999999"):
        prepare_data(small_panel, codes[0], [codes[1], "E06999999"])
    with pytest.raises(UnknownAuthorityError, match="E06999999"):
        prepare_data(small_panel, "E06999999", codes[1:])


def test_until_drops_later_years(small_panel):
    codes = _codes(small_panel)
    data = prepare_data(small_panel, codes[0], codes[1:], until=2019)
    assert int(data.year[-1]) == 2019 and data.until_year == 2019
    assert data.reference_year == 2019
    assert data.modelled_count.shape[-1] == 2019 - 2014 + 1


def test_imputations_recorded_for_thurrock(bundled):
    data = prepare_data(bundled, THURROCK, "2021")
    const = data.constant_data()
    uasc_imp = const["uasc_imputed"].sel(la=THURROCK).to_series()
    dep_imp = const["deprivation_imputed"].sel(la=THURROCK).to_series()
    assert const["uasc_imputed"].dtype == bool and const["deprivation_imputed"].dtype == bool
    assert bool(uasc_imp[2010]) and not uasc_imp.loc[2011:2025].any()
    assert set(dep_imp[dep_imp].index) == {2010, 2011, 2012, 2013, 2014, 2025}
    attrs = data.attrs()
    import json

    notices = json.loads(attrs["imputations"])
    assert notices == data.imputations
    assert any(s.startswith("UASC") and "2010" in s for s in notices)
    assert any(s.startswith("Deprivation") and "2025" in s and "2010" in s for s in notices)


def test_authority_with_too_few_years_is_left_out_openly(small_panel):
    from bayes_lac.errors import PanelError
    from bayes_lac.model.data import MIN_YEARS

    codes = _codes(small_panel)
    panel = small_panel.copy()
    sparse = (panel["la_code"] == codes[2]) & (panel["year"] > 2014)
    panel.loc[sparse, ["looked_after", "children_in_need", "child_protection"]] = np.nan
    data = prepare_data(panel, codes[0], codes[1:], None, MEASURES, "test.csv")
    assert codes[2] not in data.la and len(data.la) == len(codes) - 1
    assert any(codes[2] in note and "left out" in note for note in data.imputations)
    # the authority of interest is never dropped: it is an error
    with pytest.raises(PanelError, match=f"at least {MIN_YEARS}"):
        prepare_data(panel, codes[2], [c for c in codes if c != codes[2]], None, MEASURES, "test.csv")


def test_prior_predictive_draws_follow_the_prior_file(small_panel):
    """Prior draws (made with pytensor's Python implementations): the intercepts follow the
    shipped prior, and the predictive counts are whole, non-negative and on the observed cells."""
    from bayes_lac.model.priors import load_priors

    codes = _codes(small_panel)
    lac = LACModel(codes[0], neighbours=codes[1:])
    draws = 400
    prior = lac.prior_predictive(small_panel, draws=draws, seed=5)
    file = load_priors("default")["intercept"]
    intercept = prior["prior"]["intercept"]
    for m in MEASURES:
        x = intercept.sel(measure=m).values.ravel()
        assert x.size == draws
        # within 4 standard errors of the prior's mean, and its sd within 20 %
        assert abs(x.mean() - file["mean"][m]) < 4 * file["sd"][m] / np.sqrt(draws), m
        assert abs(x.std() / file["sd"][m] - 1) < 0.2, m
    counts = prior["prior_predictive"]["modelled_count"]
    assert counts.sizes["obs"] == prior["observed_data"]["modelled_count"].sizes["obs"]
    assert (counts.values >= 0).all() and (counts.values == np.round(counts.values)).all()
