"""Future child population (aged 0-17): a projection with uncertainty, or a user's file.

Forecasts need the number of children aged 0-17 in each future year, because counts are
rate x population. Two sources:

* `project_population`: the default. Each posterior draw gets its own annual growth rate,
  drawn from a normal distribution with the mean and standard deviation of the authority's
  last five annual log growth rates; the population then grows at that rate from the last
  fitted year. Using the year-to-year spread as the uncertainty of the long-run rate is
  deliberately cautious: the band widens in proportion to the horizon.
* `read_population_file`: a CSV of projections (e.g. ONS subnational population projections
  summed over ages 0-17) with columns ``year, population_0_17`` and optionally ``la_code``.
  Values from a file are used as given, without uncertainty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.errors import InputFileError

#: Number of most recent annual growth rates the default projection learns from.
GROWTH_WINDOW: int = 5

POPULATION_FILE_COLUMNS: tuple[str, ...] = ("year", "population_0_17")


def read_population_file(path, la_code: str | None = None, years=None) -> pd.Series:
    """Projected children aged 0-17 by year from a CSV file.

    Parameters
    ----------
    path
        CSV with a header row and the columns ``year`` (31 March year, integer) and
        ``population_0_17`` (children aged 0-17, a positive number); an optional ``la_code``
        column (ONS code) lets one file hold several authorities.
    la_code
        Authority to read when the file has an ``la_code`` column.
    years
        Years the forecast needs; every one must be in the file (extra years are ignored).

    Returns
    -------
    Series of children aged 0-17 indexed by year (int), named ``population_0_17``.

    Raises
    ------
    InputFileError
        Naming the file, the line (the header is line 1), the column and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"population file {path}: no such file")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputFileError(f"population file {path}: not a readable CSV file ({err})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in POPULATION_FILE_COLUMNS if c not in raw.columns]
    if missing:
        raise InputFileError(
            f"population file {path}: missing column(s) {', '.join(missing)}; expected a header "
            f"with year, population_0_17 and optionally la_code (found: {', '.join(raw.columns)})"
        )
    if raw.empty:
        raise InputFileError(f"population file {path}: no data rows below the header")
    raw["_line"] = np.arange(2, len(raw) + 2)

    if "la_code" in raw.columns:
        codes = raw["la_code"].str.strip()
        if la_code is None:
            raise InputFileError(
                f"population file {path}: the file has an la_code column, so say which authority to read"
            )
        raw = raw[codes == la_code]
        if raw.empty:
            found = sorted(set(codes))
            shown = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "")
            raise InputFileError(
                f"population file {path}: no rows with la_code {la_code} (column la_code holds {shown})"
            )

    rows = []
    for line, year_text, pop_text in zip(raw["_line"], raw["year"], raw["population_0_17"]):
        year_text, pop_text = year_text.strip(), pop_text.strip().replace(",", "")
        try:
            year = int(year_text)
        except ValueError:
            raise InputFileError(
                f"population file {path}, line {line}, column year: {year_text!r} is not a whole year (e.g. 2030)"
            ) from None
        try:
            pop = float(pop_text)
        except ValueError:
            raise InputFileError(
                f"population file {path}, line {line}, column population_0_17: {pop_text!r} is not a number"
            ) from None
        if not np.isfinite(pop) or pop <= 0:
            raise InputFileError(
                f"population file {path}, line {line}, column population_0_17: {pop_text!r}; "
                "expected a positive number of children"
            )
        rows.append((line, year, pop))

    table = pd.DataFrame(rows, columns=["line", "year", "population_0_17"])
    dup = table[table["year"].duplicated(keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        lines = ", ".join(str(x) for x in dup.loc[dup["year"] == first["year"], "line"])
        raise InputFileError(
            f"population file {path}, lines {lines}, column year: year {int(first['year'])} appears more than "
            "once" + (f" for {la_code}" if la_code else "") + "; expected one row per year"
        )
    series = table.set_index("year")["population_0_17"].sort_index()
    if years is not None:
        needed = [int(y) for y in years]
        absent = [y for y in needed if y not in series.index]
        if absent:
            raise InputFileError(
                f"population file {path}: no population_0_17 for year(s) {', '.join(map(str, absent))}"
                + (f" for {la_code}" if la_code else "")
                + f"; the forecast needs every year {needed[0]}-{needed[-1]}"
            )
        series = series.loc[needed]
    series.index = series.index.astype(int)
    return series.rename("population_0_17")


def growth_summary(history: pd.Series, window: int = GROWTH_WINDOW) -> tuple[float, float, int]:
    """Mean and standard deviation of the last `window` annual log growth rates of `history`.

    `history` is children aged 0-17 indexed by year. Gaps between years are annualised (the
    log change divided by the number of years). Returns (mean, sd, number of growth rates);
    the sd is 0 when only one growth rate is available.
    """
    h = history.dropna().sort_index()
    h = h[h > 0]
    if len(h) < 2:
        raise ValueError("at least two years of population are needed to project growth")
    h = h.iloc[-(window + 1) :]
    years = np.asarray(h.index, float)
    growth = np.diff(np.log(h.to_numpy(float))) / np.diff(years)
    sd = float(np.std(growth, ddof=1)) if len(growth) > 1 else 0.0
    return float(np.mean(growth)), sd, len(growth)


def project_population(
    history: pd.Series,
    horizon: int,
    n_draws: int,
    rng: np.random.Generator,
    window: int = GROWTH_WINDOW,
) -> tuple[np.ndarray, str]:
    """Per-draw projection of children aged 0-17, 1 to `horizon` years after the last year.

    Each draw's growth rate g ~ Normal(mean, sd) of the last `window` annual log growth
    rates, and population[h] = population[last year] * exp(g * h).

    Returns
    -------
    (array of shape (n_draws, horizon), one sentence describing the assumption)
    """
    mean, sd, n = growth_summary(history, window)
    last_year = int(history.dropna().index.max())
    base = float(history.loc[last_year])
    growth = mean + sd * rng.standard_normal(n_draws)
    steps = np.arange(1, horizon + 1)
    pop = base * np.exp(growth[:, None] * steps[None, :])
    note = (
        f"Child population (0-17) projected from {last_year} ({base:,.0f}) with a growth rate per draw "
        f"drawn from the mean ({100 * mean:+.2f}% a year) and spread (sd {100 * sd:.2f} points) of the "
        f"last {n} annual growth rates."
    )
    return pop, note
