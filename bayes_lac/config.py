"""Package-wide constants: measures, the uncertainty vocabulary, file locations.

One credible-interval probability and kind for every table, chart and sentence lives here.
"""

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

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Project root when running from a checkout (editable install).
PROJECT_DIR = _PACKAGE_DIR.parent
DATA_DIR = PROJECT_DIR / "data"
MODELS_DIR = PROJECT_DIR / "models"
PRIORS_DIR = MODELS_DIR / "priors"
INTERVENTIONS_DIR = MODELS_DIR / "interventions"
#: The shipped backtest of the model (see models/backtest/README.md).
BACKTEST_DIR = MODELS_DIR / "backtest"

#: The bundled model-ready panel and neighbour lists (derived by `bayes-lac data build`).
BUNDLED_PANEL = DATA_DIR / "panel.csv"
BUNDLED_NEIGHBOURS = DATA_DIR / "statistical_neighbours.csv"
#: DfE three-digit LA numbers and their ONS codes (derived by `bayes-lac data build`).
BUNDLED_LA_NUMBERS = DATA_DIR / "dfe_la_numbers.csv"

#: Where the official source files live in development and CI (a sibling `shared/` folder).
DEFAULT_OFFICIAL_SOURCE = PROJECT_DIR.parent / "shared" / "data" / "official-raw"


def interval_bounds(ci_prob: float = CI_PROB) -> tuple[float, float]:
    """Lower and upper quantiles of an equal-tailed interval of probability `ci_prob`."""
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be between 0 and 1 (exclusive), got {ci_prob}")
    tail = (1 - ci_prob) / 2
    return tail, 1 - tail
