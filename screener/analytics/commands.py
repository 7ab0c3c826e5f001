"""Handlers of ``screener regress`` and ``screener events``: load the data, call the pure analytics, return JSON.

This module is an edge: it reads universes, strategy configs, reference events and prices (store, else
snapshot). The computations are `screener.analytics.regression` and `screener.analytics.events`; the outputs
are lists of JSON-ready dicts (plain numbers, ISO dates, ``None`` for undefined values).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from screener.analytics.events import DEFAULT_ESTIMATION, DEFAULT_WINDOW, MODELS, event_study
from screener.analytics.regression import FREQS, equal_weight_basket, factor_regression
from screener.data.calendar import listing_returns
from screener.data.panel import default_currency, load_prices
from screener.exceptions import ConfigError, DataError, MissingDataError
from screener.markets import currency_unit, load_markets
from screener.universe import Universe, load_universe

__all__ = [
    "BASKET",
    "DEFAULT_MARKET",
    "MARKET_BY_EXCHANGE",
    "events_command",
    "load_events",
    "regress_command",
]

BASKET = "basket"
"""Factor name of the equal-weight basket (of the config's universe, or of the tickers regressed);
``basket:<universe>`` names the basket of another universe."""
DEFAULT_MARKET = "SPY"
"""Market series of members whose exchange has none in `MARKET_BY_EXCHANGE`."""
MARKET_BY_EXCHANGE = {"ASX": "STW.AX"}
"""Local market series per exchange code (``universes/_markets.toml``)."""
BASE_CURRENCY = "USD"
# Calendar days of prices loaded beyond the session windows: ~7/5 calendar days per session plus holidays.
_CALENDAR_PER_SESSION = 1.5
_PAD_DAYS = 20
MAX_GAP_DAYS = 10
"""In event studies, a return following more than this many calendar days without a price (a halt) is left out,
and a member whose event window spans such a gap is left out of that event."""
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RAW_ANNOUNCED = re.compile(r"announced given as '([^']*)'")


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _iso(x: Any) -> str | None:
    return None if x is None or pd.isna(x) else pd.Timestamp(x).date().isoformat()


# -- factor regression ------------------------------------------------------------------------------------------


def _basket_members(spec: str, fallback: Sequence[str]) -> list[str]:
    if spec == BASKET:
        return list(fallback)
    return list(load_universe(spec.split(":", 1)[1]).tickers)


def regress_command(
    config: str | None,
    tickers: list[str] | None,
    factors: list[str],
    freq: str = "D",
    start: str | None = None,
    end: str | None = None,
    hac_lags: int | None = None,
    snapshot: str | Path | None = None,
) -> list[dict]:
    """Regress a strategy's returns, or each ticker's, on factor returns (``screener regress``).

    Parameters
    ----------
    config : str or None
        Path of a strategy TOML: the backtest is run and its ``strategy`` returns are regressed (in the config's
        base currency). Exactly one of `config` and `tickers`.
    tickers : list of str or None
        Yahoo symbols to regress one by one, in USD.
    factors : list of str
        Factor return series: Yahoo symbols (``SPY``, ``REMX``, ``URA``, ``LIT``, ``AUDUSD=X``...), ``"basket"``
        (equal-weight basket of the config's universe, or of `tickers`) or ``"basket:<universe>"``.
    freq : {"D", "W", "M"}, default "D"
        Daily, weekly (Friday) or monthly compounding before the regression.
    start, end : str, optional
        ISO dates limiting the regression (default: the backtest's span, or all the data).
    hac_lags : int, optional
        Newey-West lags (default ``floor(4 (n/100)^(2/9))``).
    snapshot : str or Path, optional
        Snapshot directory used when the store lacks a ticker.

    Returns
    -------
    list of dict
        One per target: ``target, factors, freq, currency, start, end, n_dropped`` and the keys of
        `RegressionResult.to_dict` (``coefficients, r2, adj_r2, n, durbin_watson, hac_lags``). A ticker that
        cannot be regressed gives ``{"target", "error"}`` instead.

    Raises
    ------
    ConfigError
        When both or neither of `config` and `tickers` are given, `factors` is empty, or an option is invalid
        (a `ValueError` too).
    MissingDataError
        When a factor has no prices.
    DataError
        When no target could be regressed.
    """
    if (config is None) == (not tickers):
        raise ConfigError("give exactly one of `config` (a strategy file) and `tickers`")
    factors = [str(f) for f in (factors or [])]
    if not factors:
        raise ConfigError("`factors` must name at least one factor, e.g. SPY,REMX")
    if freq not in FREQS:
        raise ConfigError(f"`freq` must be one of {', '.join(FREQS)}, got {freq!r}")
    lo = pd.Timestamp(start) if start else None
    hi = pd.Timestamp(end) if end else None

    if config is not None:
        from screener.pipeline import STRATEGY, run_backtest

        run = run_backtest(config, snapshot=snapshot)
        currency = run.config.base_currency
        targets = run.returns[[STRATEGY]].loc[lo:hi]
        universe_members = list(run.weights.columns)
        label = {STRATEGY: f"{STRATEGY} ({run.config.name})"}
    else:
        currency = BASE_CURRENCY
        targets = None
        universe_members = list(dict.fromkeys(tickers or []))
        label = {}
    baskets = {f: _basket_members(f, universe_members) for f in factors if f == BASKET or f.startswith(BASKET + ":")}
    plain = [f for f in factors if f not in baskets]
    own = universe_members if config is None else []
    needed = list(dict.fromkeys([*own, *plain, *(t for m in baskets.values() for t in m)]))
    if targets is not None and len(targets):
        lo = lo or targets.index[0]
        hi = hi or targets.index[-1]
    # A few days more before `start` so that the first return in the window is defined.
    data = load_prices(needed, currency=currency, start=(lo - timedelta(days=10)) if lo is not None else None,
                       end=hi, snapshot=snapshot)
    returns = listing_returns(data.prices).loc[lo:hi]
    missing_factors = [f for f in plain if f not in returns.columns]
    if missing_factors:
        raise MissingDataError(
            "factors without prices: " + "; ".join(f"{f}: {data.missing.get(f, 'no data')}" for f in missing_factors))
    factor_frame = pd.DataFrame({f: returns[f] for f in plain}, index=returns.index)
    for name, members in baskets.items():
        present = [t for t in members if t in returns.columns]
        if not present:
            raise MissingDataError(f"factor {name!r}: none of its {len(members)} members has prices")
        factor_frame[name] = equal_weight_basket(returns[present], name=name)
    factor_frame = factor_frame[factors]

    if targets is None:
        targets = pd.DataFrame({t: returns[t] for t in universe_members if t in returns.columns}, index=returns.index)
    out: list[dict] = []
    for t in (tickers if config is None else list(targets.columns)):
        name = label.get(t, t)
        if t not in targets.columns:
            out.append({"target": name, "error": f"no prices: {data.missing.get(t, 'not found')}"})
            continue
        try:
            res = factor_regression(targets[t].rename(name), factor_frame, freq=freq, hac_lags=hac_lags)
        except (TypeError, ValueError, KeyError) as exc:
            # A bad option (`hac_lags`...): a user error the CLI reports in one line.
            raise ConfigError(str(exc).strip("'\"")) from None
        except DataError as exc:
            out.append({"target": name, "error": str(exc)})
            continue
        out.append({"target": name, "factors": list(factors), "freq": freq, "currency": currency,
                    "start": _iso(res.start), "end": _iso(res.end), "n_dropped": res.n_dropped, **res.to_dict()})
    if out and all("error" in d for d in out):
        raise DataError("no target could be regressed: " + "; ".join(f"{d['target']}: {d['error']}" for d in out))
    return out


# -- events -----------------------------------------------------------------------------------------------------


def load_events() -> pd.DataFrame:
    """Return the reference events (`screener.reference.load_reference`) with their day of announcement.

    ``reference/events.csv`` stores a month-only date as the month's last day (so that factors never use it
    early) and keeps the source's text in the row's note ("announced given as '2010-07' (month only)"). An
    event study needs the day, so such events get no ``announced`` here.

    Returns
    -------
    DataFrame
        One row per event, in file order: ``event_id``, ``announced`` (Timestamp, NaT when the source gives
        only a month), ``announced_text`` (the date as the source gives it), ``event_type``, ``direction``,
        ``description``, ``date_confidence``.
    """
    from screener.reference import load_reference

    events = load_reference().events
    rows = []
    for r in events.itertuples(index=False):
        stamp = pd.Timestamp(r.announced) if not pd.isna(r.announced) else pd.NaT
        raw = _RAW_ANNOUNCED.search(r.note) if isinstance(r.note, str) else None
        text = raw.group(1) if raw else (_iso(stamp) or "")
        rows.append((r.event_id, stamp if _ISO_DAY.match(text) else pd.NaT, text, r.event_type, r.direction,
                     r.description, r.date_confidence))
    return pd.DataFrame(rows, columns=["event_id", "announced", "announced_text", "event_type", "direction",
                                       "description", "date_confidence"])


def _resolve_universe(universe_or_config: str) -> Universe:
    path = Path(universe_or_config)
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        if "members" not in raw and "universe" in raw:
            from screener.config import load_config

            name = load_config(path).universe
            beside = path.resolve().parent / name
            return load_universe(str(beside) if (name.endswith(".toml") and beside.exists()) else name)
    return load_universe(universe_or_config)


def _market_currency(ticker: str) -> str:
    bench = load_markets().benchmarks.get(ticker)
    return bench.currency if bench is not None else default_currency(ticker)


def _check_pair(value: Any, name: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"`{name}` must be two integers (start, end), got {value!r}") from None
    return lo, hi


def events_command(
    universe_or_config: str,
    event_id: str | None = None,
    date: str | None = None,
    window: tuple[int, int] = DEFAULT_WINDOW,
    estimation: tuple[int, int] = DEFAULT_ESTIMATION,
    model: str = "market",
    market: str | None = None,
    snapshot: str | Path | None = None,
) -> list[dict]:
    """Event study of a universe's members around reference events or a given date (``screener events``).

    Parameters
    ----------
    universe_or_config : str
        A universe name or file, or a strategy TOML (its universe is used).
    event_id : str, optional
        A reference event (``E09``); with neither `event_id` nor `date`, every event dated to the day.
    date : str, optional
        An ISO date to study instead of a reference event (labelled `event_id`, default ``"custom <date>"``).
    window, estimation : tuple of int
        Event and estimation windows in sessions relative to day 0 (defaults ``(-5, 20)`` and ``(-250, -11)``).
    model : {"market", "market_adjusted", "mean"}, default "market"
    market : str, optional
        One market series for every member (returns of both in USD unless they share a currency); default per
        exchange: `MARKET_BY_EXCHANGE` (``STW.AX`` for ASX members, in AUD) else `DEFAULT_MARKET` (SPY, USD).
    snapshot : str or Path, optional
        Snapshot directory used when the store lacks a ticker.

    Returns
    -------
    list of dict
        One per event: ``event_id, announced, description, model, window, estimation, members`` (list of
        ``ticker, market, currency, event_day, car, t_stat, p_value, n_est``), ``portfolio`` and
        ``cross_sectional`` (``car, t_stat, p_value, n_members, method``), ``car_path`` (list of ``rel_day,
        mean_car, lower, upper``, band from the portfolio test), ``excluded`` (list of ``ticker, reason``) and
        ``notes`` (returns left out after trading halts longer than `MAX_GAP_DAYS`).
        When every event is studied, an event that cannot be gives ``{"event_id", "announced", "error"}``.

    Raises
    ------
    DataError
        Unknown event id (the message lists the valid ones), an event without a day-precise date, or no
        member with enough data around the event.
    ConfigError
        On invalid windows, model or date (a `ValueError` too).
    """
    if model not in MODELS:
        raise ConfigError(f"`model` must be one of {', '.join(MODELS)}, got {model!r}")
    window, estimation = _check_pair(window, "window"), _check_pair(estimation, "estimation")
    uni = _resolve_universe(universe_or_config)

    info: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    if date is not None:
        if not _ISO_DAY.match(str(date).strip()):
            raise ConfigError(f"`date` must be a day (YYYY-MM-DD), got {date!r}")
        eid = event_id or f"custom {date}"
        info[eid] = {"announced": pd.Timestamp(str(date).strip()), "announced_text": date,
                     "description": "date given on the command line"}
    else:
        events = load_events()
        if event_id is not None:
            if event_id not in set(events["event_id"]):
                raise DataError(f"unknown event id {event_id!r}; valid ids: {', '.join(events['event_id'])}")
            events = events[events["event_id"] == event_id]
        for r in events.itertuples(index=False):
            info[r.event_id] = {"announced": r.announced, "announced_text": r.announced_text,
                                "description": r.description}
            if pd.isna(r.announced):
                problems[r.event_id] = (f"event {r.event_id} has no day-precise announcement date (source: "
                                        f"{r.announced_text!r}); pass `date` to study it on a chosen day")
        if event_id is not None and event_id in problems:
            raise DataError(problems[event_id])
    dated = {eid: v["announced"] for eid, v in info.items() if eid not in problems}

    members = list(uni.members)
    market_of = {m.ticker: market or MARKET_BY_EXCHANGE.get(m.exchange, DEFAULT_MARKET) for m in members}
    currencies = dict(uni.currencies)
    for mk in set(market_of.values()):
        currencies.setdefault(mk, _market_currency(mk))
    results: dict[str, dict[str, Any]] = {}
    if dated:
        first, last = min(dated.values()), max(dated.values())
        lo = first - timedelta(days=math.ceil(abs(min(estimation[0], 0)) * _CALENDAR_PER_SESSION) + _PAD_DAYS)
        hi = last + timedelta(days=math.ceil(max(window[1], 0) * _CALENDAR_PER_SESSION) + _PAD_DAYS)
        tickers = list(dict.fromkeys([*market_of, *market_of.values()]))
        data = load_prices(tickers, currency=BASE_CURRENCY, start=lo, end=hi, currencies=currencies,
                           snapshot=snapshot)
        local, usd = data.local.copy(), data.prices.copy()
        for m in members:
            # Rows before the first day as this company (a SPAC shell, a pre-split line) are not its returns.
            if m.first_trade_date is not None and m.ticker in local.columns:
                early = local.index < pd.Timestamp(m.first_trade_date)
                local.loc[early, m.ticker] = np.nan
                usd.loc[early, m.ticker] = np.nan
        r_local, r_usd = listing_returns(local), listing_returns(usd)
        notes = []
        for t in r_local.columns:
            # A return across a long halt carries weeks of news into one "session": leave it out.
            seen = local[t].dropna().index.to_series()
            after_gap = seen.index[(seen - seen.shift(1)) > pd.Timedelta(days=MAX_GAP_DAYS)]
            if len(after_gap):
                r_local.loc[after_gap, t] = np.nan
                r_usd.loc[after_gap, t] = np.nan
                notes.append(f"{t}: {len(after_gap)} return(s) after a gap of more than {MAX_GAP_DAYS} days "
                             f"without prices left out (first {after_gap[0].date()})")

        member_cols: dict[str, pd.Series] = {}
        market_cols: dict[str, pd.Series] = {}
        market_for: dict[str, str] = {}
        pair_currency: dict[str, str] = {}
        no_data: dict[str, str] = {}
        for m in members:
            t, mk = m.ticker, market_of[m.ticker]
            if t not in r_local.columns:
                no_data[t] = f"no prices: {data.missing.get(t, 'not found')}"
                continue
            if mk not in r_local.columns:
                no_data[t] = f"no prices for its market {mk}: {data.missing.get(mk, 'not found')}"
                continue
            if r_local[t].notna().sum() == 0:
                since = f" (trades as this company from {m.first_trade_date})" if m.first_trade_date else ""
                no_data[t] = f"no returns between {lo.date()} and {hi.date()}{since}"
                continue
            same = currency_unit(data.currencies[t])[0] == currency_unit(data.currencies[mk])[0]
            ccy = currency_unit(data.currencies[t])[0] if same else BASE_CURRENCY
            key = mk if same else f"{mk} in {BASE_CURRENCY}"
            member_cols[t] = (r_local if same else r_usd)[t]
            market_cols[key] = (r_local if same else r_usd)[mk]
            market_for[t] = key
            pair_currency[t] = ccy
        if member_cols:
            try:
                study = event_study(pd.DataFrame(member_cols), pd.DataFrame(market_cols), dated,
                                    estimation=estimation, window=window, model=model, market_for=market_for,
                                    max_gap_days=MAX_GAP_DAYS)
            except (TypeError, ValueError) as exc:  # overlapping or malformed windows
                raise ConfigError(str(exc)) from None
        for eid in dated:
            rows = study.members[study.members["event_id"] == eid] if member_cols else pd.DataFrame()
            excluded = [{"ticker": t, "reason": why} for t, why in no_data.items()]
            if member_cols:
                ex = study.excluded[study.excluded["event_id"] == eid]
                excluded += [{"ticker": r.ticker, "reason": r.reason} for r in ex.itertuples()]
            if rows.empty:
                with_data = [e for e in excluded if e["ticker"] not in no_data]
                reasons = "; ".join(f"{e['ticker']}: {e['reason']}" for e in with_data[:5])
                if len(with_data) > 5:
                    reasons += f"; and {len(with_data) - 5} more"
                if no_data:
                    reasons += ("; " if reasons else "") + f"{len(no_data)} members without usable prices"
                problems[eid] = (f"event {eid} ({dated[eid].date()}): no member of {uni.name!r} has a complete "
                                 f"event window {list(window)} and enough estimation sessions in "
                                 f"{list(estimation)}; {reasons}")
                continue
            tests = study.portfolio[study.portfolio["event_id"] == eid].set_index("method")
            path = study.car_path[study.car_path["event_id"] == eid]
            results[eid] = {
                "event_id": eid,
                "announced": _iso(dated[eid]),
                "description": info[eid]["description"],
                "model": model,
                "window": list(window),
                "estimation": list(estimation),
                "members": [{"ticker": r.ticker, "market": r.market.removesuffix(f" in {BASE_CURRENCY}"),
                             "currency": pair_currency[r.ticker], "event_day": _iso(r.event_day),
                             "car": _num(r.car), "t_stat": _num(r.t_stat), "p_value": _num(r.p_value),
                             "n_est": int(r.n_est)} for r in rows.itertuples()],
                "portfolio": _test_dict(tests, "portfolio"),
                "cross_sectional": _test_dict(tests, "cross_sectional"),
                "car_path": [{"rel_day": int(p.rel_day), "mean_car": _num(p.mean_car), "lower": _num(p.lower),
                              "upper": _num(p.upper)} for p in path.itertuples()],
                "excluded": excluded,
                "notes": [n for n in notes if n.split(":")[0] in {r.ticker for r in rows.itertuples()}],
            }
    if event_id is not None or date is not None:
        only = next(iter(info))
        if only in problems:
            raise DataError(problems[only])
    out = []
    for eid, v in info.items():
        if eid in results:
            out.append(results[eid])
        else:
            out.append({"event_id": eid, "announced": v["announced_text"] if pd.isna(v["announced"])
                        else _iso(v["announced"]), "error": problems[eid]})
    return out


def _test_dict(tests: pd.DataFrame, method: str) -> dict[str, Any]:
    row = tests.loc[method]
    return {"car": _num(row["car"]), "t_stat": _num(row["t_stat"]), "p_value": _num(row["p_value"]),
            "n_members": int(row["n_members"]), "method": method}
