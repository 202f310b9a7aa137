"""Priors are data: named prior sets in TOML files, validated into a plain dict.

The shipped sets live in ``models/priors/{default,weak,tight}.toml``; each key is documented
there with its scale (log rate per 10,000 children aged 0-17; trends per year). A user file
may give only the keys it changes: the others come from the set named by its ``base`` key
(``"default"`` if absent).

The loaded priors are a dict ``{section: {key: value}}`` where a per-measure value is a dict
``{measure: float}`` over every measure and the LKJ shape ``lkj_eta`` is a single float. The
dict is JSON-serialisable, so a run records exactly the priors it used.

Prior families are declared once, here (`PRIORS`): for each model variable with a prior the
file sets, its family (`Family`: how PyMC builds it and its log-density in numpy) and which
keys of the file give the family's parameters. The model graph
(``bayes_lac.model.graph``) builds its variables from this table and power-scaling
(``bayes_lac.studies.sensitivity.prior_log_density``) evaluates the same densities from
it, so the two cannot drift apart; ``tests/test_priors.py`` checks that they agree at random
points for every prior of every shipped prior set.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bayes_lac.config import MEASURES, PRIORS_DIR
from bayes_lac.errors import InputFileError

#: Names of the prior sets shipped with the package.
PRIOR_SETS: tuple[str, ...] = ("default", "weak", "tight")

# section -> key -> (kind, per_measure). kind "real" may be any finite number, "positive"
# must be > 0, "unit" strictly between 0 and 1. per_measure keys accept a number or a table by measure.
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "intercept": {"mean": ("real", True), "sd": ("positive", True)},
    "la_intercept": {"sd_scale": ("positive", True), "lkj_eta": ("positive", False)},
    "la_trend": {"sd_scale": ("positive", True), "lkj_eta": ("positive", False)},
    "year_effect": {"step_sd_scale": ("positive", True)},
    "deprivation_effect": {"mean": ("real", True), "sd": ("positive", True)},
    "dispersion": {"cv_scale": ("positive", True)},
    "persistence": {"mean": ("unit", True), "concentration": ("positive", True)},
}


# ---------------------------------------------------------------------------------------
# Prior families, declared once
# ---------------------------------------------------------------------------------------


def _normal_logpdf(x, mu, sigma):
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)


def _half_normal_logpdf(x, sigma):
    return -0.5 * (x / sigma) ** 2 - np.log(sigma) + 0.5 * np.log(2 / np.pi)


def _beta_mean_logpdf(x, mean, concentration):
    from scipy.special import betaln

    a, b = mean * concentration, (1.0 - mean) * concentration
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - betaln(a, b)


def _lkj_logpdf(x, eta):
    # x: correlation matrices (..., n, n); the normalising constant depends on eta and n only
    _, logdet = np.linalg.slogdet(np.asarray(x, float))
    return (eta - 1.0) * logdet


def _beta_from_mean(mean, concentration) -> dict:
    return {"alpha": mean * concentration, "beta": (1.0 - mean) * concentration}


@dataclass(frozen=True)
class Family:
    """A distribution family a prior may take.

    Attributes
    ----------
    name
        Short name, e.g. ``"normal"``.
    parameters
        The family's parameters, as the prior table names them.
    pymc_class
        Name of the PyMC distribution that builds it.
    to_pymc
        The family's parameters -> PyMC's keyword arguments.
    logpdf
        ``logpdf(x, **parameters)``: the log-density in numpy (works on xarray objects too).
    """

    name: str
    parameters: tuple[str, ...]
    pymc_class: str
    to_pymc: Callable[..., dict]
    logpdf: Callable

    def dist(self, parameters: dict, **kwargs):
        """A PyMC distribution of this family (``pm.<class>.dist``); `kwargs` such as ``shape``."""
        import pymc as pm

        return getattr(pm, self.pymc_class).dist(**self.to_pymc(**parameters), **kwargs)

    def variable(self, name: str, parameters: dict, **kwargs):
        """A named PyMC variable of this family, inside a model context; `kwargs` such as ``dims``."""
        import pymc as pm

        return getattr(pm, self.pymc_class)(name, **self.to_pymc(**parameters), **kwargs)


NORMAL = Family("normal", ("mu", "sigma"), "Normal", lambda mu, sigma: {"mu": mu, "sigma": sigma}, _normal_logpdf)
HALF_NORMAL = Family("half_normal", ("sigma",), "HalfNormal", lambda sigma: {"sigma": sigma}, _half_normal_logpdf)
#: Beta given by its mean and concentration (alpha + beta), as the prior files give it.
BETA_MEAN = Family("beta_mean", ("mean", "concentration"), "Beta", _beta_from_mean, _beta_mean_logpdf)
#: LKJ on a correlation matrix (log-density up to a constant in eta and the dimension). PyMC
#: builds it as the Cholesky factor of the matrix (``LKJCorr``; in the model, through
#: ``LKJCholeskyCov``).
LKJ = Family("lkj", ("eta",), "LKJCorr", lambda eta: {"eta": eta}, _lkj_logpdf)


@dataclass(frozen=True)
class Prior:
    """The prior of one model variable: its family and the prior-file keys of its parameters.

    Attributes
    ----------
    section
        Section of the prior file, e.g. ``"intercept"``.
    family
        The `Family`.
    keys
        Family parameter -> key of the section, e.g. ``{"mu": "mean", "sigma": "sd"}``.
    """

    section: str
    family: Family
    keys: dict[str, str]

    def parameters(self, priors: dict, measures: Sequence[str]) -> dict:
        """The family's parameters under `priors`: arrays over `measures` for per-measure
        keys, floats for single values (the LKJ shape)."""
        out = {}
        for parameter, key in self.keys.items():
            value = priors[self.section][key]
            out[parameter] = (
                np.array([value[m] for m in measures], dtype=float) if isinstance(value, dict) else float(value)
            )
        return out


#: Every prior a prior file sets, by the model variable it is the prior of (in the graph;
#: ``dispersion_cv`` is 1 / sqrt(dispersion), the sds and correlations are those of the
#: authority effects across measures).
PRIORS: dict[str, Prior] = {
    "intercept": Prior("intercept", NORMAL, {"mu": "mean", "sigma": "sd"}),
    "deprivation_effect": Prior("deprivation_effect", NORMAL, {"mu": "mean", "sigma": "sd"}),
    "year_sigma": Prior("year_effect", HALF_NORMAL, {"sigma": "step_sd_scale"}),
    "dispersion_cv": Prior("dispersion", HALF_NORMAL, {"sigma": "cv_scale"}),
    "persistence": Prior("persistence", BETA_MEAN, {"mean": "mean", "concentration": "concentration"}),
    "la_intercept_sd": Prior("la_intercept", HALF_NORMAL, {"sigma": "sd_scale"}),
    "la_intercept_corr": Prior("la_intercept", LKJ, {"eta": "lkj_eta"}),
    "la_trend_sd": Prior("la_trend", HALF_NORMAL, {"sigma": "sd_scale"}),
    "la_trend_corr": Prior("la_trend", LKJ, {"eta": "lkj_eta"}),
}


def prior_set_path(name: str) -> Path:
    """The TOML file of a shipped prior set."""
    return PRIORS_DIR / f"{name}.toml"


def _read_toml(path: Path) -> dict:
    if path.is_dir():
        raise InputFileError(f"prior file {path} is a folder; expected a TOML file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(
            f"prior file {path} not found; give a TOML file or one of the prior sets {', '.join(PRIOR_SETS)}"
        ) from None
    except OSError as err:
        raise InputFileError(f"prior file {path} cannot be read: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputFileError(
            f"prior file {path}, line {line}: byte 0x{data[err.start]:02X} is not UTF-8 text; save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputFileError(f"prior file {path} is not valid TOML: {err}") from None


def _number(value, kind: str, where: str) -> float:
    # bool is an int in Python; a prior of `true` is a typo, not 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputFileError(f"{where}: expected a finite number, got {value!r}")
    if kind == "positive" and value <= 0:
        raise InputFileError(f"{where}: expected a number greater than 0, got {value!r}")
    if kind == "unit" and not 0 < value < 1:
        raise InputFileError(f"{where}: expected a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _validate(raw: dict, path: Path, measures: tuple[str, ...]) -> dict:
    """Check a parsed TOML file against SCHEMA; return its values normalised (possibly partial)."""
    out: dict = {}
    for section, body in raw.items():
        if section == "base":
            continue
        if section not in SCHEMA:
            raise InputFileError(f"prior file {path}: unknown section [{section}]; expected one of {', '.join(SCHEMA)}")
        if not isinstance(body, dict):
            raise InputFileError(f"prior file {path}: [{section}] must be a table of keys")
        out[section] = {}
        for key, value in body.items():
            if key not in SCHEMA[section]:
                raise InputFileError(
                    f"prior file {path}: unknown key {key!r} in [{section}]; expected one of "
                    f"{', '.join(SCHEMA[section])}"
                )
            kind, per_measure = SCHEMA[section][key]
            where = f"prior file {path}: [{section}] {key}"
            if isinstance(value, dict):
                if not per_measure:
                    raise InputFileError(f"{where}: expected one number (not a table by measure)")
                unknown = set(value) - set(measures)
                if unknown:
                    raise InputFileError(
                        f"{where}: unknown measure(s) {sorted(unknown)}; expected {', '.join(measures)}"
                    )
                out[section][key] = {m: _number(v, kind, f"{where}.{m}") for m, v in value.items()}
            else:
                number = _number(value, kind, where)
                out[section][key] = {m: number for m in measures} if per_measure else number
    return out


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for section, body in override.items():
        for key, value in body.items():
            if isinstance(value, dict):
                merged[section][key] = {**merged[section][key], **value}
            else:
                merged[section][key] = value
    return merged


def _complete(priors: dict, path: Path, measures: tuple[str, ...]) -> None:
    for section, keys in SCHEMA.items():
        for key, (_, per_measure) in keys.items():
            value = priors.get(section, {}).get(key)
            missing = value is None or (per_measure and set(value) != set(measures))
            if missing:
                raise InputFileError(
                    f"prior file {path}: [{section}] {key} is missing"
                    + (f" (for every measure: {', '.join(measures)})" if per_measure else "")
                )


def load_priors(name_or_path: str | Path = "default", measures: tuple[str, ...] = MEASURES) -> dict:
    """Load and validate a prior set.

    Parameters
    ----------
    name_or_path
        One of the shipped sets ``"default"``, ``"weak"``, ``"tight"``, or the path of a TOML
        file. A file's values override those of the set named by its ``base`` key
        (``"default"`` if absent).
    measures
        The measures to keep. A file is always checked against every measure the package
        models (a table may name any of them), so one file serves a joint fit and a fit of
        one measure.

    Returns
    -------
    dict ``{section: {key: value}}``; per-measure values are ``{measure: float}``. Scales are
    documented in ``models/priors/default.toml`` (log rate per 10,000 children aged 0-17).

    Raises
    ------
    InputFileError
        The file is missing or not TOML, or has an unknown section or key, a value of the
        wrong kind, or (for the shipped sets) a missing key. The message names the file, the
        key and what was expected.
    """
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown}; expected some of {', '.join(MEASURES)}")
    priors = _load_all(name_or_path)
    return {
        section: {key: ({m: v[m] for m in measures} if isinstance(v, dict) else v) for key, v in body.items()}
        for section, body in priors.items()
    }


def _load_all(name_or_path: str | Path = "default") -> dict:
    """The prior set for every measure (see `load_priors`)."""
    measures = MEASURES
    name = str(name_or_path)
    if name in PRIOR_SETS:
        path = prior_set_path(name)
        raw = _read_toml(path)
        base_name = raw.get("base", name)
        if base_name != name:
            base = _load_all(base_name)
            priors = _merge(base, _validate(raw, path, measures))
        else:
            priors = _validate(raw, path, measures)
        _complete(priors, path, measures)
        return priors
    path = Path(name_or_path)
    raw = _read_toml(path)
    base_name = raw.get("base", "default")
    if base_name not in PRIOR_SETS:
        raise InputFileError(f"prior file {path}: base = {base_name!r}; expected one of {', '.join(PRIOR_SETS)}")
    priors = _merge(_load_all(base_name), _validate(raw, path, measures))
    _complete(priors, path, measures)
    return priors


def prior_set_name(name_or_path: str | Path) -> str:
    """The label a run records for a prior set: the set's name, or the file's name.

    Only the name: the run holds the priors themselves (``priors``), and a run shared with
    others should not carry the analyst's folders.
    """
    name = str(name_or_path)
    return name if name in PRIOR_SETS else Path(name).name


def priors_json(priors: dict) -> str:
    """The priors as the JSON a run stores in its ``priors`` attribute."""
    return json.dumps(priors, sort_keys=True)
