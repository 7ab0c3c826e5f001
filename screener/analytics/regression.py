"""Factor regressions of returns on factor returns (statsmodels OLS, Newey-West standard errors), as tidy tables.

Conventions
-----------
- Inputs are daily simple returns on a ``DatetimeIndex`` (e.g. from `screener.data.calendar.listing_returns`):
  ``NaN`` on a day a listing did not trade, each return running from the listing's own previous trading day.
- Weekly (``"W"``, weeks ending Friday, ``W-FRI``) and monthly (``"M"``, calendar month ends, ``ME``) returns
  compound the daily ones, ``prod(1 + r) - 1`` over the days in the period that have a return. Skipping the
  ``NaN`` days is exact for listing returns: the move of a closed day is in the next day's return. Each series
  is first cut to the span all of them cover, so a period never compares a partial month of one series with a
  full month of another.
- The dependent variable is an excess return: ``y - rf`` with ``rf`` the per-period risk-free rate,
  ``(1 + rf_annual) ** (1 / periods) - 1`` (252, 52 or 12 periods a year). Factors are used as given unless
  named in ``excess_factors`` (funded returns such as SPY, for a Jensen alpha); zero-cost factors (FX, long-short
  spreads) must not have the risk-free rate taken off.
- Rows (periods) are kept where the target and every factor have a value; the rest are counted in
  ``n_dropped``.
- Standard errors are Newey-West (HAC, Bartlett kernel, no small-sample correction: statsmodels'
  ``cov_type="HAC"`` defaults) with ``hac_lags`` lags, by default ``floor(4 * (n / 100) ** (2 / 9))`` (the
  rule of thumb of Newey and West, 1994). Inference is asymptotic: ``t`` is a z-statistic, ``p`` and the
  confidence interval use the normal distribution, as statsmodels does for robust covariances.
- ``durbin_watson`` is computed on the OLS residuals (about 2 without first-order autocorrelation).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from screener.exceptions import DataError
from screener.periods import ANNUALIZATION_FACTORS, DAILY, MONTHLY, WEEKLY

__all__ = [
    "ALPHA_TERM",
    "FREQS",
    "RegressionResult",
    "compound_returns",
    "equal_weight_basket",
    "factor_regression",
    "newey_west_lags",
    "regression_table",
    "rolling_betas",
]

Freq = Literal["D", "W", "M"]
FREQS: tuple[str, ...] = ("D", "W", "M")
_RULES = {"W": "W-FRI", "M": "ME"}
PERIODS_PER_YEAR = {"D": ANNUALIZATION_FACTORS[DAILY], "W": ANNUALIZATION_FACTORS[WEEKLY],
                    "M": ANNUALIZATION_FACTORS[MONTHLY]}
ALPHA_TERM = "alpha"
"""Name of the intercept in the coefficient table."""
COLUMNS = ("term", "coef", "se", "t", "p", "ci_low", "ci_high")


def newey_west_lags(n: int) -> int:
    """Return the default Newey-West lag for ``n`` observations: ``floor(4 * (n / 100) ** (2 / 9))``.

    The rule of thumb of Newey and West (1994, "Automatic lag selection in covariance matrix estimation");
    it gives 3 lags for 60 months, 4 for five years of weeks and 6 for four years of days.

    Parameters
    ----------
    n : int
        Number of observations in the regression.

    Returns
    -------
    int
        The lag, at least 0.
    """
    if n <= 0:
        return 0
    return math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))


def _check_dates(obj: pd.Series | pd.DataFrame, name: str) -> None:
    if not isinstance(obj.index, pd.DatetimeIndex):
        raise TypeError(f"`{name}` must have a DatetimeIndex, got {type(obj.index).__name__}")
    if obj.index.tz is not None:
        raise ValueError(f"`{name}` must have tz-naive dates, got time zone {obj.index.tz}")
    if obj.index.has_duplicates:
        raise ValueError(f"`{name}` has duplicate dates; deduplicate the index first")


def _check_freq(freq: str) -> None:
    if freq not in FREQS:
        raise ValueError(f"`freq` must be one of {', '.join(FREQS)}, got {freq!r}")


def compound_returns(returns: pd.Series | pd.DataFrame, freq: Freq = "W") -> pd.Series | pd.DataFrame:
    """Compound daily simple returns to weekly (Friday) or monthly (month-end) returns.

    Parameters
    ----------
    returns : Series or DataFrame of shape (n_days,) or (n_days, n_assets)
        Daily simple returns on a ``DatetimeIndex``; ``NaN`` on days without trading.
    freq : {"D", "W", "M"}, default "W"
        ``"D"`` returns a copy; ``"W"`` groups by weeks ending Friday (``W-FRI``), ``"M"`` by calendar month
        (``ME``), each period labelled by its last calendar day.

    Returns
    -------
    Series or DataFrame
        ``prod(1 + r) - 1`` over the days of each period that have a return; ``NaN`` for a period without any.
    """
    if not isinstance(returns, pd.Series | pd.DataFrame):
        raise TypeError(f"`returns` must be a Series or DataFrame, got {type(returns).__name__}")
    _check_dates(returns, "returns")
    _check_freq(freq)
    if freq == "D":
        return returns.copy()
    labels = _period_ends(returns.index, freq)
    # Log-sum rather than a product: the same number, and a grouped sum has a min_count. Grouping on computed
    # period ends is several times faster than `resample`'s binner, which matters in loops over targets.
    logs = np.log1p(returns.astype("float64"))
    out = np.expm1(logs.groupby(labels).sum(min_count=1))
    if len(out):
        # Every period between the first and the last, empty ones NaN (as `resample` gives them).
        first, last = out.index.values[[0, -1]]
        if freq == "W":
            full = np.arange(first, last + np.timedelta64(1, "D"), np.timedelta64(7, "D"))
        else:
            months = np.arange(first.astype("datetime64[M]"), last.astype("datetime64[M]") + 1)
            full = (months + 1).astype("datetime64[D]") - 1
        out = out.reindex(pd.DatetimeIndex(full.astype(out.index.values.dtype)))
    out.index.name = returns.index.name
    return out


def _period_ends(index: pd.DatetimeIndex, freq: str) -> np.ndarray:
    """Last calendar day of each date's week (ending Friday) or month."""
    unit = index.values.dtype  # keep the input's resolution (pandas 3 defaults to microseconds)
    days = index.values.astype("datetime64[D]")
    if freq == "W":
        weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        return (days + ((4 - weekday) % 7)).astype(unit)
    months = days.astype("datetime64[M]")
    return ((months + 1).astype("datetime64[D]") - 1).astype(unit)


def equal_weight_basket(returns: pd.DataFrame, name: str = "basket") -> pd.Series:
    """Return the equal-weight basket of the members that have a return each day.

    Parameters
    ----------
    returns : DataFrame of shape (n_dates, n_assets)
        Member returns; ``NaN`` where a member did not trade.
    name : str, default "basket"
        Name of the returned Series.

    Returns
    -------
    Series of shape (n_dates,)
        Mean of the available member returns per day (rebalanced daily); ``NaN`` when none has one.
    """
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(f"`returns` must be a DataFrame, got {type(returns).__name__}")
    values = returns.to_numpy(dtype="float64")
    values = np.where(np.isfinite(values), values, np.nan)
    count = np.sum(~np.isnan(values), axis=1)
    total = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return pd.Series(mean, index=returns.index.copy(), name=name)


@dataclass(frozen=True)
class RegressionResult:
    """One factor regression, statsmodels-free.

    Attributes
    ----------
    target : str
        Name of the dependent series.
    coefficients : DataFrame of shape (1 + n_factors, 7)
        Columns ``term, coef, se, t, p, ci_low, ci_high``; the intercept is the term ``"alpha"`` (per period).
    r2, adj_r2 : float
        R squared and adjusted R squared.
    n : int
        Observations (periods) in the regression.
    durbin_watson : float
        Durbin-Watson statistic of the residuals.
    hac_lags : int
        Newey-West lags used.
    freq : {"D", "W", "M"}
        Sampling of the regression.
    n_dropped : int
        Periods in which some but not all of the target and factors had a return (left out).
    start, end : Timestamp
        First and last period in the regression.
    residuals : Series of shape (n,)
        OLS residuals, by period.
    """

    target: str
    coefficients: pd.DataFrame
    r2: float
    adj_r2: float
    n: int
    durbin_watson: float
    hac_lags: int
    freq: str
    n_dropped: int
    start: pd.Timestamp
    end: pd.Timestamp
    residuals: pd.Series = field(repr=False, compare=False)

    @property
    def annualised_alpha(self) -> float:
        """Intercept compounded to a year: ``(1 + alpha) ** periods - 1``."""
        a = float(self.coefficients.set_index("term").loc[ALPHA_TERM, "coef"])
        return (1.0 + a) ** PERIODS_PER_YEAR[self.freq] - 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"coefficients": [{term, coef, se, t, p, ci_low, ci_high}, ...], "r2", "adj_r2", "n",
        "durbin_watson", "hac_lags"}`` with plain Python numbers (``None`` for NaN).
        """  # noqa: D205
        rows = [{k: (row[k] if k == "term" else _num(row[k])) for k in COLUMNS}
                for row in self.coefficients.to_dict("records")]
        return {"coefficients": rows, "r2": _num(self.r2), "adj_r2": _num(self.adj_r2), "n": int(self.n),
                "durbin_watson": _num(self.durbin_watson), "hac_lags": int(self.hac_lags)}


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _per_period_rf(risk_free: float | pd.Series, freq: str) -> float | pd.Series:
    periods = PERIODS_PER_YEAR[freq]
    if isinstance(risk_free, pd.Series):
        _check_dates(risk_free, "risk_free")
        annual = risk_free.astype("float64").sort_index()
        if freq != "D":
            annual = annual.resample(_RULES[freq]).mean()
        return (1.0 + annual) ** (1.0 / periods) - 1.0
    if isinstance(risk_free, bool) or not isinstance(risk_free, int | float | np.floating | np.integer):
        raise TypeError(f"`risk_free` must be a number or a Series of annual rates, got {type(risk_free).__name__}")
    if not math.isfinite(risk_free) or risk_free <= -1:
        raise ValueError(f"`risk_free` must be a finite annual rate above -1, got {risk_free!r}")
    return (1.0 + float(risk_free)) ** (1.0 / periods) - 1.0


def _common_span(frame: pd.DataFrame) -> pd.DataFrame:
    firsts = [frame[c].first_valid_index() for c in frame.columns]
    lasts = [frame[c].last_valid_index() for c in frame.columns]
    if any(d is None for d in firsts):
        return frame.iloc[0:0]
    return frame.loc[max(firsts):min(lasts)]


def _sample(y: pd.Series, factors: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, int]:
    """Target and factors at ``freq`` on the periods all have (first column = target), and periods dropped."""
    daily = pd.concat([y, factors], axis=1, sort=True)
    daily = daily.where(np.isfinite(daily))
    available = compound_returns(daily, freq).notna().any(axis=1).sum()
    sampled = compound_returns(_common_span(daily), freq) if freq != "D" else daily
    kept = sampled.dropna(how="any")
    return kept, int(available - len(kept))


def _fit(target: str, data: pd.DataFrame, freq: str, hac_lags: int | None, alpha: float) -> RegressionResult:
    import statsmodels.api as sm
    from statsmodels.stats.stattools import durbin_watson

    endog = data.iloc[:, 0].to_numpy()
    exog_frame = data.iloc[:, 1:]
    n, k = len(data), exog_frame.shape[1] + 1
    if n < k + 2:
        raise DataError(
            f"regression of {target!r} on {', '.join(map(str, exog_frame.columns))} at freq {freq!r}: only {n} "
            f"periods with every series present, need at least {k + 2}; widen the dates or use a finer `freq`"
        )
    exog = np.column_stack([np.ones(n), exog_frame.to_numpy()])
    if np.linalg.matrix_rank(exog) < k:
        raise DataError(
            f"regression of {target!r}: the factors {', '.join(map(str, exog_frame.columns))} (with the "
            f"intercept) are collinear or constant over the {n} periods; drop one"
        )
    lags = newey_west_lags(n) if hac_lags is None else hac_lags
    if lags >= n:
        raise ValueError(f"`hac_lags` must be below the number of observations ({n}), got {lags}")
    res = sm.OLS(endog, exog).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    ci = np.asarray(res.conf_int(alpha=alpha))
    terms = [ALPHA_TERM, *map(str, exog_frame.columns)]
    table = pd.DataFrame({"term": terms, "coef": res.params, "se": res.bse, "t": res.tvalues, "p": res.pvalues,
                          "ci_low": ci[:, 0], "ci_high": ci[:, 1]})
    resid = pd.Series(res.resid, index=data.index.copy(), name=target)
    return RegressionResult(target=target, coefficients=table, r2=float(res.rsquared),
                            adj_r2=float(res.rsquared_adj), n=n, durbin_watson=float(durbin_watson(res.resid)),
                            hac_lags=int(lags), freq=freq, n_dropped=0, start=data.index[0], end=data.index[-1],
                            residuals=resid)


def factor_regression(
    y: pd.Series | pd.DataFrame,
    factors: pd.DataFrame,
    *,
    freq: Freq = "D",
    hac_lags: int | None = None,
    risk_free: float | pd.Series = 0.0,
    excess_factors: Sequence[str] = (),
    alpha: float = 0.05,
) -> RegressionResult | dict[str, RegressionResult]:
    """Regress excess returns on factor returns with Newey-West standard errors.

    ``y_t - rf_t = alpha + sum_k beta_k f_kt + e_t`` by OLS, at the sampling `freq` (conventions in the
    module docstring).

    Parameters
    ----------
    y : Series of shape (n_days,) or DataFrame of shape (n_days, n_targets)
        Daily simple returns of the strategy, a benchmark or members; a DataFrame gives one regression per
        column.
    factors : DataFrame of shape (n_days, n_factors)
        Daily simple factor returns (e.g. SPY, REMX, an `equal_weight_basket`, AUDUSD=X); column names become
        the terms.
    freq : {"D", "W", "M"}, default "D"
        Daily, weekly (compounded to Fridays) or monthly (compounded to month ends).
    hac_lags : int, optional
        Newey-West lags; default `newey_west_lags` of the number of observations.
    risk_free : float or Series, default 0.0
        Annual risk-free rate (a number, or a Series of annual rates by date, averaged over each period).
    excess_factors : sequence of str, default ()
        Factor columns that are funded returns and also get the risk-free rate taken off.
    alpha : float, default 0.05
        Significance level of the confidence intervals (``1 - alpha`` coverage).

    Returns
    -------
    RegressionResult, or dict of str to RegressionResult
        One result for a Series; a dict keyed by column, in column order, for a DataFrame.

    Raises
    ------
    TypeError, ValueError
        On malformed inputs or options (the message names the argument).
    DataError
        When fewer than ``n_factors + 3`` periods have every series, or the factors are collinear.
    """
    if not isinstance(y, pd.Series | pd.DataFrame):
        raise TypeError(f"`y` must be a Series or DataFrame of returns, got {type(y).__name__}")
    if not isinstance(factors, pd.DataFrame):
        raise TypeError(f"`factors` must be a DataFrame of factor returns, got {type(factors).__name__}")
    _check_dates(y, "y")
    _check_dates(factors, "factors")
    if factors.shape[1] == 0:
        raise ValueError("`factors` must have at least one column")
    if factors.columns.has_duplicates:
        dup = sorted(set(map(str, factors.columns[factors.columns.duplicated()])))
        raise ValueError(f"`factors` has duplicate columns: {', '.join(dup)}")
    if ALPHA_TERM in factors.columns:
        raise ValueError(f"`factors` must not have a column named {ALPHA_TERM!r} (the intercept's term)")
    _check_freq(freq)
    if hac_lags is not None and (isinstance(hac_lags, bool) or not isinstance(hac_lags, int | np.integer)
                                 or hac_lags < 0):
        raise ValueError(f"`hac_lags` must be a non-negative integer or None, got {hac_lags!r}")
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    unknown = [c for c in excess_factors if c not in factors.columns]
    if unknown:
        raise KeyError(f"`excess_factors` names columns not in `factors`: {', '.join(map(str, unknown))}")
    rf = _per_period_rf(risk_free, freq)
    factors = factors.astype("float64")

    targets = y.to_frame(name=y.name if y.name is not None else "y") if isinstance(y, pd.Series) else y
    out: dict[str, RegressionResult] = {}
    for col in targets.columns:
        series = targets[col].astype("float64").rename("__y__")
        data, dropped = _sample(series, factors, freq)
        if isinstance(rf, pd.Series):
            rf_here = rf.reindex(data.index, method="ffill") if freq == "D" else rf.reindex(data.index)
            if rf_here.isna().any():
                raise DataError(f"`risk_free` has no rate for {int(rf_here.isna().sum())} of the periods of {col!r}")
            rf_values: float | np.ndarray = rf_here.to_numpy()
        else:
            rf_values = rf
        data = data.copy()
        data["__y__"] = data["__y__"] - rf_values
        for f in excess_factors:
            data[f] = data[f] - rf_values
        result = _fit(str(col), data, freq, None if hac_lags is None else int(hac_lags), float(alpha))
        out[str(col)] = replace(result, n_dropped=dropped)
    if isinstance(y, pd.Series):
        return next(iter(out.values()))
    return out


def regression_table(results: RegressionResult | Mapping[str, RegressionResult]) -> pd.DataFrame:
    """Stack results into one tidy table, one row per (target, term).

    Parameters
    ----------
    results : RegressionResult or mapping of str to RegressionResult

    Returns
    -------
    DataFrame
        Columns ``target, term, coef, se, t, p, ci_low, ci_high, r2, adj_r2, n, durbin_watson, hac_lags, freq``.
    """
    items = [results] if isinstance(results, RegressionResult) else list(results.values())
    frames = [r.coefficients.assign(r2=r.r2, adj_r2=r.adj_r2, n=r.n, durbin_watson=r.durbin_watson,
                                    hac_lags=r.hac_lags, freq=r.freq).assign(target=r.target) for r in items]
    if not frames:
        return pd.DataFrame(columns=["target", *COLUMNS, "r2", "adj_r2", "n", "durbin_watson", "hac_lags", "freq"])
    table = pd.concat(frames, ignore_index=True)
    return table[["target", *COLUMNS, "r2", "adj_r2", "n", "durbin_watson", "hac_lags", "freq"]]


def rolling_betas(
    y: pd.Series,
    factors: pd.DataFrame,
    *,
    window: int = 126,
    min_periods: int | None = None,
) -> pd.DataFrame:
    """Rolling OLS betas of daily returns on factors (with an intercept), by end date of the window.

    Parameters
    ----------
    y : Series of shape (n_days,)
        Daily returns of one target.
    factors : DataFrame of shape (n_days, n_factors)
        Daily factor returns.
    window : int, default 126
        Observations (dates on which `y` and every factor have a return) per regression: about six months.
    min_periods : int, optional
        Fewest observations for an estimate at the start of the sample, where the window grows until it
        reaches `window`; default `window` (no estimate before a full window).

    Returns
    -------
    DataFrame of shape (n_common_dates, n_factors)
        Slope of each factor, on the dates with every series present; ``NaN`` before `min_periods` observations.
    """
    if not isinstance(y, pd.Series):
        raise TypeError(f"`y` must be a Series of returns, got {type(y).__name__}")
    if not isinstance(factors, pd.DataFrame) or factors.shape[1] == 0:
        raise TypeError("`factors` must be a DataFrame with at least one column of factor returns")
    _check_dates(y, "y")
    _check_dates(factors, "factors")
    k = factors.shape[1] + 1
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < k + 1:
        raise ValueError(f"`window` must be an integer of at least {k + 1} (factors + intercept + 1), got {window!r}")
    min_periods = window if min_periods is None else min_periods
    if (isinstance(min_periods, bool) or not isinstance(min_periods, int | np.integer)
            or not k + 1 <= min_periods <= window):
        raise ValueError(f"`min_periods` must be an integer in [{k + 1}, {window}], got {min_periods!r}")
    data = pd.concat([y.astype("float64").rename("__y__"), factors.astype("float64")], axis=1, sort=True)
    data = data.where(np.isfinite(data)).dropna(how="any")
    cols = list(factors.columns)
    if len(data) < min_periods:
        return pd.DataFrame(np.nan, index=data.index, columns=cols)
    from statsmodels.regression.rolling import RollingOLS

    exog = np.column_stack([np.ones(len(data)), data[cols].to_numpy()])
    expanding = min_periods < window
    with warnings.catch_warnings():
        # A window where a factor is constant (a halted listing) gives NaN betas, which is what we want.
        warnings.simplefilter("ignore", RuntimeWarning)
        model = RollingOLS(data["__y__"].to_numpy(), exog, window=int(window),
                          min_nobs=int(min_periods) if expanding else None, expanding=expanding)
        params = model.fit(params_only=True).params
    out = pd.DataFrame(np.asarray(params)[:, 1:], index=data.index.copy(), columns=cols)
    out.columns.name = "factor"
    return out
