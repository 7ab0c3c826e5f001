"""Sampling periods, annualisation factors and the trading-day window lengths the factors use.

Every annualisation and every "one month" / "one year" window in the library goes through this module, so a
bare ``252`` never appears elsewhere. Windows count *trading rows of the listing* (its own observed days),
not calendar days: a year is `TRADING_DAYS_PER_YEAR` observed prices, whatever the exchange's holidays.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ANNUAL",
    "ANNUALIZATION_FACTORS",
    "DAILY",
    "MONTHLY",
    "PERIODS",
    "QUARTERLY",
    "SHORT_WINDOW",
    "TRADING_DAYS_PER_MONTH",
    "TRADING_DAYS_PER_QUARTER",
    "TRADING_DAYS_PER_YEAR",
    "WEEKLY",
    "Period",
    "annualization_factor",
    "trading_days",
]

Period = Literal["daily", "weekly", "monthly", "quarterly", "annual"]
PERIODS: tuple[str, ...] = get_args(Period)

DAILY: Period = "daily"
WEEKLY: Period = "weekly"
MONTHLY: Period = "monthly"
QUARTERLY: Period = "quarterly"
ANNUAL: Period = "annual"

# The usual equity convention: 252 trading days, 52 weeks, 12 months, 4 quarters a year.
TRADING_DAYS_PER_YEAR = 252
TRADING_DAYS_PER_MONTH = TRADING_DAYS_PER_YEAR // 12  # 21
TRADING_DAYS_PER_QUARTER = TRADING_DAYS_PER_YEAR // 4  # 63

# The customary "60-day" window (about three months of trading) of short volatility and average daily value.
SHORT_WINDOW = 60

ANNUALIZATION_FACTORS: dict[str, int] = {
    DAILY: TRADING_DAYS_PER_YEAR,
    WEEKLY: 52,
    MONTHLY: 12,
    QUARTERLY: 4,
    ANNUAL: 1,
}


def annualization_factor(period: str, annualization: float | None = None) -> float:
    """Number of `period` returns in a year.

    Parameters
    ----------
    period : {"daily", "weekly", "monthly", "quarterly", "annual"}
        Sampling period of the returns.
    annualization : float, optional
        Overrides the table (e.g. 365 for a crypto series); must be positive.

    Returns
    -------
    float
        ``annualization`` if given, else ``ANNUALIZATION_FACTORS[period]``.

    Raises
    ------
    ValueError
        If `period` is not one of the choices, or `annualization` is not positive.
    """
    if annualization is not None:
        if not annualization > 0:
            raise ValueError(f"`annualization` must be positive, got {annualization!r}")
        return float(annualization)
    try:
        return float(ANNUALIZATION_FACTORS[period])
    except (KeyError, TypeError):
        raise ValueError(f"`period` must be one of {', '.join(PERIODS)}, got {period!r}") from None


def trading_days(*, months: int = 0, years: int = 0) -> int:
    """Length in trading rows of a window given in months and years.

    Parameters
    ----------
    months, years : int
        Non-negative window length; ``trading_days(months=12) == trading_days(years=1) == 252``.

    Returns
    -------
    int
        ``months * TRADING_DAYS_PER_MONTH + years * TRADING_DAYS_PER_YEAR``.

    Raises
    ------
    ValueError
        If `months` or `years` is negative or not an integer.
    """
    for name, value in (("months", months), ("years", years)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return months * TRADING_DAYS_PER_MONTH + years * TRADING_DAYS_PER_YEAR
