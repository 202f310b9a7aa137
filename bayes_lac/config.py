"""Package-wide constants: measures, the uncertainty vocabulary, file locations.

One credible-interval probability and kind for every table, chart and sentence lives here.
"""

import importlib.resources
import tomllib
from pathlib import Path

#: Measures modelled, in the analyst's language, with their short labels for charts.
MEASURES: tuple[str, ...] = ("looked_after", "children_in_need", "child_protection")
MEASURE_LABELS: dict[str, str] = {
    "looked_after": "Children looked after",
    "children_in_need": "Children in need",
    "child_protection": "Child protection plans",
}

#: Default credible-interval probability and kind (equal-tailed) used everywhere.
CI_PROB: float = 0.9
CI_KIND: str = "eti"

#: Rates are per this many children aged 0-17.
RATE_PER: int = 10_000

ENGLAND_CODE = "E92000001"
THURROCK_CODE = "E06000034"


def _package_dir() -> Path:
    """The folder of the imported ``bayes_lac`` package, found with `importlib.resources`."""
    root = importlib.resources.files("bayes_lac")
    if isinstance(root, Path):
        return root
    # A zipped install would hand out zip members; the bundled files are read as paths.
    raise ImportError(f"bayes_lac must be installed as files on disk, not inside {root}")


def _is_checkout(folder: Path) -> bool:
    """True if `folder` is a bayes_lac repository: its pyproject.toml names this project."""
    try:
        with open(folder / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh).get("project", {}).get("name") == "bayes_lac"
    except (OSError, tomllib.TOMLDecodeError):
        return False


PACKAGE_DIR = _package_dir()
#: The folder above the package: the repository root when running from a checkout (plain or
#: editable install), ``site-packages`` when installed from a wheel.
PROJECT_DIR = PACKAGE_DIR.parent
#: Whether the package runs from a checkout of the repository rather than an installed wheel.
IN_CHECKOUT: bool = _is_checkout(PROJECT_DIR)
#: Where data/ and models/ are: the repository's own copies in a checkout (the canonical ones,
#: which `bayes-lac data build` rewrites), or the copies a wheel carries in bayes_lac/_bundled/
#: (see [tool.setuptools] in pyproject.toml).
BUNDLE_DIR = PROJECT_DIR if IN_CHECKOUT else PACKAGE_DIR / "_bundled"
DATA_DIR = BUNDLE_DIR / "data"
MODELS_DIR = BUNDLE_DIR / "models"
PRIORS_DIR = MODELS_DIR / "priors"
#: Named prior sets of the latent-state model: each replaces some of models/latent_priors.toml.
LATENT_PRIOR_SETS_DIR = MODELS_DIR / "latent_prior_sets"
INTERVENTIONS_DIR = MODELS_DIR / "interventions"
#: The shipped backtest of the model (see models/backtest/README.md).
BACKTEST_DIR = MODELS_DIR / "backtest"

#: The bundled model-ready panel and neighbour lists (derived by `bayes-lac data build`).
BUNDLED_PANEL = DATA_DIR / "panel.csv"
BUNDLED_NEIGHBOURS = DATA_DIR / "statistical_neighbours.csv"
#: Where the panel's columns, sources and derivation are documented.
DATA_README = DATA_DIR / "README.md"
#: DfE three-digit LA numbers and their ONS codes (derived by `bayes-lac data build`).
BUNDLED_LA_NUMBERS = DATA_DIR / "dfe_la_numbers.csv"

#: Where the official source files live in development and CI (a sibling `shared/` folder).
DEFAULT_OFFICIAL_SOURCE = PROJECT_DIR.parent / "shared" / "data" / "official-raw"


def bundled_name(path: Path) -> str:
    """A bundled file's name as the repository spells it (``data/README.md``), on any install."""
    return Path(path).relative_to(BUNDLE_DIR).as_posix()


def interval_bounds(ci_prob: float = CI_PROB) -> tuple[float, float]:
    """Lower and upper quantiles of an equal-tailed interval of probability `ci_prob`."""
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be between 0 and 1 (exclusive), got {ci_prob}")
    tail = (1 - ci_prob) / 2
    return tail, 1 - tail
