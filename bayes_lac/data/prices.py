"""Price bases: cash prices and real terms, with a GDP deflator.

Every £ figure the package prints is on one of two bases:

``cash``
    Cash prices of each year (what was, or will be, spent that year).
``real``
    Prices of one base year: cash / deflator(year) x deflator(base year).

The deflator is the UK GDP implicit deflator (calendar years, 2020 = 100; the bundled
``data/uk_gdp_deflator.csv``, from the IMF World Economic Outlook as republished by knoema,
itself from ONS national accounts; see data/README.md) or a user's file with the same columns
(``year``, ``gdp_deflator_index``; any base). Financial year Y (April Y-1 to March Y) gets
0.75 x index(Y-1) + 0.25 x index(Y): nine of its months fall in calendar year Y-1. Years after
the file's last year are extended at an assumed annual inflation rate (default 2 %, the Bank
of England's target), and `PriceIndex.assumptions` says from which year.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac.config import DATA_DIR
from bayes_lac.errors import InputFileError

#: The bundled deflator (calendar years, 2020 = 100).
BUNDLED_DEFLATOR = DATA_DIR / "uk_gdp_deflator.csv"
DEFLATOR_COLUMNS: tuple[str, str] = ("year", "gdp_deflator_index")
#: Share of a financial year ending 31 March Y that falls in calendar year Y-1.
_FIRST_CALENDAR_SHARE = 0.75
PRICE_BASES: tuple[str, ...] = ("cash", "real")


def load_deflator(path: Path | str | None = None) -> pd.Series:
    """A calendar-year deflator, validated.

    Parameters
    ----------
    path
        CSV with columns ``year`` (calendar year, whole numbers, consecutive, no repeats) and
        ``gdp_deflator_index`` (positive numbers; any base year). None reads the bundled UK
        GDP deflator.

    Returns
    -------
    Series of the index by calendar year (``attrs["source"]`` names the file).

    Raises
    ------
    InputFileError
        Naming the file, the row and column and what was expected.
    """
    path = Path(path) if path is not None else BUNDLED_DEFLATOR
    if not path.is_file():
        raise InputFileError(f"{path}: deflator file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputFileError(f"{path}: not a readable CSV ({err})") from err
    missing = [c for c in DEFLATOR_COLUMNS if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{path}: deflator file lacks column(s) {', '.join(missing)}; expected columns year (calendar "
            "year) and gdp_deflator_index (a positive price index, any base)"
        )
    if frame.empty:
        raise InputFileError(f"{path}: deflator file has no rows")
    years, values = [], []
    for i, row in frame.iterrows():
        line = i + 2  # header is line 1
        text = row["year"].strip()
        if not text.isdigit() or not 1900 <= int(text) <= 2200:
            raise InputFileError(f"{path}, line {line}, column year: {row['year']!r} is not a calendar year")
        try:
            value = float(row["gdp_deflator_index"])
        except ValueError:
            value = np.nan
        if not np.isfinite(value) or value <= 0:
            raise InputFileError(
                f"{path}, line {line}, column gdp_deflator_index: {row['gdp_deflator_index']!r} is not a positive number"
            )
        years.append(int(text))
        values.append(value)
    series = pd.Series(values, index=years, name="gdp_deflator_index").sort_index()
    if series.index.duplicated().any():
        dup = int(series.index[series.index.duplicated()][0])
        raise InputFileError(f"{path}, column year: {dup} appears more than once; expected one row per year")
    gaps = sorted(set(range(series.index.min(), series.index.max() + 1)) - set(series.index))
    if gaps:
        raise InputFileError(f"{path}, column year: no row for {', '.join(map(str, gaps))}; expected consecutive years")
    series.attrs["source"] = str(path)
    return series


@dataclass(frozen=True)
class PriceIndex:
    """Financial-year price index for cash <-> real conversions.

    Attributes
    ----------
    calendar
        Calendar-year deflator (from `load_deflator`).
    inflation
        Annual inflation assumed after the deflator's last year (0.02 = 2 %).
    source
        The deflator file, for notes.
    """

    calendar: pd.Series
    inflation: float = 0.02
    source: str = "the bundled UK GDP deflator"

    def _calendar(self, year: int) -> float:
        first, last = int(self.calendar.index.min()), int(self.calendar.index.max())
        if year < first:
            raise InputFileError(
                f"{self.source}: the deflator starts in {first}; financial year {year - 1}-{str(year)[-2:]} needs {year - 1}"
            )
        if year <= last:
            return float(self.calendar.loc[year])
        return float(self.calendar.loc[last]) * (1 + self.inflation) ** (year - last)

    def financial_year(self, year: int) -> float:
        """Index of the financial year ending 31 March `year`."""
        return _FIRST_CALENDAR_SHARE * self._calendar(year - 1) + (1 - _FIRST_CALENDAR_SHARE) * self._calendar(year)

    def factor(self, years, base_year: int) -> np.ndarray:
        """Multiply cash £ of each of `years` by this to get £ in prices of `base_year`."""
        base = self.financial_year(int(base_year))
        return np.array([base / self.financial_year(int(y)) for y in np.atleast_1d(years)])

    def to_real(self, cash, years, base_year: int) -> np.ndarray:
        """Cash £ (last axis = `years`) in prices of `base_year`."""
        return np.asarray(cash, dtype=float) * self.factor(years, base_year)

    def to_cash(self, real, years, base_year: int) -> np.ndarray:
        """£ in prices of `base_year` (last axis = `years`) in cash prices of each year."""
        return np.asarray(real, dtype=float) / self.factor(years, base_year)

    @property
    def last_year(self) -> int:
        """Last financial year (ending 31 March) fully covered by the deflator's calendar years."""
        return int(self.calendar.index.max())

    def label(self, basis: str, base_year: int) -> str:
        """One phrase naming the price basis, e.g. 'real terms, prices of 2024-25 (UK GDP deflator)'."""
        check_price_basis(basis)
        if basis == "cash":
            return "cash prices of each year"
        return f"real terms, prices of {base_year - 1}-{str(base_year)[-2:]} (GDP deflator)"

    def assumptions(self, base_year: int) -> list[str]:
        return [
            f"Real terms: cash £ deflated to prices of the financial year {base_year - 1}-{str(base_year)[-2:]} with "
            f"{self.source} (financial year = 3/4 of the calendar year it starts in + 1/4 of the "
            f"next), extended at {100 * self.inflation:g}% a year after calendar year {self.last_year}."
        ]


def price_index(path: Path | str | None = None, inflation: float = 0.02) -> PriceIndex:
    """A `PriceIndex` from a deflator file (default the bundled UK GDP deflator)."""
    series = load_deflator(path)
    name = "the bundled UK GDP deflator (IMF WEO)" if path is None else f"the deflator in {path}"
    return PriceIndex(calendar=series, inflation=float(inflation), source=name)


def check_price_basis(basis: str) -> None:
    if basis not in PRICE_BASES:
        raise ValueError(
            f"price basis must be 'cash' (prices of each year) or 'real' (base-year prices), got {basis!r}"
        )
