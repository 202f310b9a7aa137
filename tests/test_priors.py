"""Prior sets: the shipped ones load complete; a user file overrides single values; a bad
file is refused with a message naming the file and the key."""

from __future__ import annotations

import json

import pytest

from bayes_lac.config import MEASURES
from bayes_lac.errors import InputFileError
from bayes_lac.model.priors import PRIOR_SETS, SCHEMA, load_priors, priors_json


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
    path.write_text('[la_trend]\nsd_scale = { looked_after = 0.01 }\n\n[year_effect]\nstep_sd_scale = 0.07\n')
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
    for section, key in [("la_intercept", "sd_scale"), ("la_trend", "sd_scale"), ("year_effect", "step_sd_scale"),
                         ("deprivation_effect", "sd"), ("intercept", "sd"), ("dispersion", "cv_scale")]:
        for m in MEASURES:
            assert weak[section][key][m] > default[section][key][m] > tight[section][key][m], (section, key, m)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_priors(tmp_path / "nope.toml")
