"""Priors are data: named prior sets in TOML files, validated into a plain dict.

The shipped sets live in ``models/priors/{default,weak,tight}.toml``; each key is documented
there with its scale (log rate per 10,000 children aged 0-17; trends per year). A user file
may give only the keys it changes: the others come from the set named by its ``base`` key
(``"default"`` if absent).

The loaded priors are a dict ``{section: {key: value}}`` where a per-measure value is a dict
``{measure: float}`` over every measure and the LKJ shape ``lkj_eta`` is a single float. The
dict is JSON-serialisable, so a run records exactly the priors it used.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from pathlib import Path

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
            f"prior file {path} not found; give a TOML file or one of the prior sets "
            f"{', '.join(PRIOR_SETS)}"
        ) from None
    except OSError as err:
        raise InputFileError(f"prior file {path} cannot be read: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputFileError(
            f"prior file {path}, line {line}: byte 0x{data[err.start]:02X} is not UTF-8 text; "
            "save the file as UTF-8"
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
            raise InputFileError(
                f"prior file {path}: unknown section [{section}]; expected one of "
                f"{', '.join(SCHEMA)}"
            )
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
        raise InputFileError(
            f"prior file {path}: base = {base_name!r}; expected one of {', '.join(PRIOR_SETS)}"
        )
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
