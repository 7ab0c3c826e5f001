"""Load a price panel in one currency from the store, falling back to the offline snapshot.

This is the one place the library turns stored bars into the ``prices`` frame the computation modules use:
adjusted closes, converted to the base currency with same-day FX, on the union of the listings' trading
days (a day a listing did not trade stays missing for it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from screener.data.calendar import union_panel
from screener.data.fx import to_base_currency
from screener.data.snapshot import SnapshotProvider
from screener.data.store import STALE_AFTER_DAYS, Store
from screener.exceptions import DataError, SnapshotError
from screener.markets import currency_unit, exchange_of, fx_route
from screener.paths import snapshot_dir

FIELDS = ("open", "high", "low", "close", "adj_close", "volume")


@dataclass
class PriceData:
    """A price panel and where each column came from.

    Attributes
    ----------
    prices : DataFrame of shape (n_dates, n_tickers)
        ``field`` in ``currency`` on the union of trading days; columns in the requested order, tickers
        without data omitted.
    local : DataFrame of shape (n_dates, n_tickers)
        The same field in each listing's trading currency.
    currency : str
        The base currency.
    currencies : dict of str to str
        Trading currency of each column.
    sources : dict of str to str
        ``"store"`` or ``"snapshot"`` per column.
    missing : dict of str to str
        Requested tickers without data, and why.
    stale : list of str
        Columns whose last bar is more than `STALE_AFTER_DAYS` old.
    notes : list of str
        Problems met on the way (corrupt files set aside, FX gaps), for the user.
    """

    prices: pd.DataFrame
    local: pd.DataFrame
    currency: str
    currencies: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_currency(ticker: str) -> str:
    """Trading currency of a Yahoo symbol inferred from its exchange suffix."""
    return exchange_of(ticker).currency or "USD"


def _resolve_snapshot(snapshot: str | Path | SnapshotProvider | bool | None) -> SnapshotProvider | None:
    if snapshot is False:
        return None
    if isinstance(snapshot, SnapshotProvider):
        return snapshot
    directory = Path(snapshot) if snapshot not in (None, True) else snapshot_dir()
    if directory is None:
        return None
    try:
        return SnapshotProvider(directory)
    except SnapshotError as exc:
        warnings.warn(f"snapshot not used: {exc}", UserWarning, stacklevel=3)
        return None


def load_bars(
    tickers: Sequence[str],
    *,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, str], dict[str, str]]:
    """Bars per ticker from the store, else from the snapshot.

    Returns
    -------
    bars, sources, missing
        Bars by ticker; ``"store"``/``"snapshot"`` by ticker; reason by ticker that has no data anywhere.
    """
    store = store if store is not None else Store()
    found, problems = store.read_many(list(dict.fromkeys(tickers)))
    sources = dict.fromkeys(found, "store")
    missing = dict(problems)
    provider = _resolve_snapshot(snapshot) if missing else None
    if provider is not None:
        result = provider.fetch(list(missing))
        for t, bars in result.bars.items():
            found[t] = bars
            sources[t] = "snapshot"
            reason = missing.pop(t)
            if reason != "not in the store":
                sources[t] = f"snapshot ({reason})"
        for t, err in result.errors.items():
            missing[t] = f"{missing[t]}; snapshot file unusable: {err}"
        for t in result.empty:
            missing[t] = f"{missing[t]}; not in the snapshot {provider.directory}"
    return found, sources, missing


@dataclass
class MarketData:
    """Several bar fields of the same tickers on one calendar (see `load_market_data`).

    Attributes
    ----------
    base : dict of str to DataFrame
        Field -> date x ticker frame in ``currency`` (``volume`` stays in shares).
    local : dict of str to DataFrame
        Field -> the same frame in each listing's trading currency.
    currency, currencies, sources, missing, stale, notes
        As in `PriceData`.
    """

    base: dict[str, pd.DataFrame]
    local: dict[str, pd.DataFrame]
    currency: str
    currencies: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tickers(self) -> list[str]:
        """Tickers with data, in the requested order."""
        first = next(iter(self.base.values()))
        return list(first.columns)


def load_market_data(
    tickers: Sequence[str],
    *,
    fields: Sequence[str] = ("adj_close", "close", "volume"),
    currency: str = "USD",
    start: date | str | None = None,
    end: date | str | None = None,
    currencies: Mapping[str, str] | None = None,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
    as_of: date | None = None,
) -> MarketData:
    """Load several bar fields at once (bars are read once); see `load_prices` for the parameters.

    The columns kept are the tickers with at least one value of the first field in the date range.
    """
    fields = list(dict.fromkeys(fields))
    for f in fields:
        if f not in FIELDS:
            raise ValueError(f"`fields` must be among {', '.join(FIELDS)}, got {f!r}")
    if not fields:
        raise ValueError("`fields` must name at least one bar column")
    currency_unit(currency)
    tickers = list(dict.fromkeys(tickers))
    currencies = {t: (currencies or {}).get(t) or default_currency(t) for t in tickers}
    bars, sources, missing = load_bars(tickers, store=store, snapshot=snapshot)
    main = fields[0]
    present = [t for t in tickers if t in bars and bars[t][main].notna().any()]
    for t in tickers:
        if t in bars and t not in present:
            missing[t] = f"no {main} values"
    notes = [f"{t}: {why}" for t, why in missing.items() if why != "not in the store"]
    notes += [f"{t}: served from the {src}" for t, src in sources.items() if src.startswith("snapshot (")]

    fx_symbols: list[str] = []
    for t in present:
        try:
            fx_symbols += [s for s, _ in fx_route(currencies[t], currency)]
        except DataError as exc:
            missing[t] = str(exc)
    present = [t for t in present if t not in missing]
    fx_bars, _, fx_missing = load_bars(list(dict.fromkeys(fx_symbols)), store=store, snapshot=snapshot)
    fx_closes = {s: b["close"].dropna() for s, b in fx_bars.items()}
    for t in list(present):
        lacking = [s for s, _ in fx_route(currencies[t], currency) if s in fx_missing]
        if lacking:
            missing[t] = f"no FX data to convert {currencies[t]} to {currency}: {', '.join(lacking)} missing"
            present.remove(t)

    lo = pd.Timestamp(start) if start is not None else None
    hi = pd.Timestamp(end) if end is not None else None
    local: dict[str, pd.DataFrame] = {}
    base: dict[str, pd.DataFrame] = {}
    for f in fields:
        frame = union_panel({t: bars[t][f] for t in present})
        if f == "volume":
            converted = frame
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                converted = to_base_currency(frame, {t: currencies[t] for t in present}, fx_closes, base=currency)
            notes += [str(w.message) for w in caught if str(w.message) not in notes]
        local[f] = frame.loc[lo:hi]
        base[f] = converted.loc[lo:hi]
    first = base[main]
    keep = first.notna().any(axis=0) if len(first) else pd.Series(False, index=first.columns)
    for t in first.columns[~keep.to_numpy()]:
        missing[t] = "no data in the requested date range"
    cols = [t for t in first.columns if keep[t]]
    as_of = as_of or date.today()
    stale = [t for t in cols if as_of - bars[t].index[-1].date() > timedelta(days=STALE_AFTER_DAYS)]
    return MarketData(
        base={f: v[cols] for f, v in base.items()},
        local={f: v[cols] for f, v in local.items()},
        currency=currency,
        currencies={t: currencies[t] for t in cols},
        sources={t: sources[t] for t in cols},
        missing={t: missing[t] for t in tickers if t in missing},
        stale=stale,
        notes=notes,
    )


def load_prices(
    tickers: Sequence[str],
    *,
    currency: str = "USD",
    start: date | str | None = None,
    end: date | str | None = None,
    field: str = "adj_close",
    currencies: Mapping[str, str] | None = None,
    store: Store | None = None,
    snapshot: str | Path | SnapshotProvider | bool | None = None,
    as_of: date | None = None,
) -> PriceData:
    """Load a panel of ``field`` for ``tickers`` in ``currency``.

    Parameters
    ----------
    tickers : sequence of str
        Yahoo symbols, in the column order wanted.
    currency : str
        Base currency (``"USD"``, ``"AUD"``, ...).
    start, end : date or ISO str, optional
        Inclusive date range of the result.
    field : str
        Bar column; ``"adj_close"`` (default) for returns.
    currencies : mapping, optional
        Trading currency per ticker (e.g. from the universe); default inferred from the symbol's exchange.
    store : Store, optional
        Default: the user's store.
    snapshot : path, SnapshotProvider, bool or None
        Fallback for tickers the store lacks; None or True uses ``$SCREENER_SNAPSHOT``; False disables it.
    as_of : date, optional
        Date against which staleness is judged (default today).

    Returns
    -------
    PriceData
    """
    if field not in FIELDS:
        raise ValueError(f"`field` must be one of {', '.join(FIELDS)}, got {field!r}")
    data = load_market_data(tickers, fields=(field,), currency=currency, start=start, end=end,
                            currencies=currencies, store=store, snapshot=snapshot, as_of=as_of)
    return PriceData(
        prices=data.base[field],
        local=data.local[field],
        currency=data.currency,
        currencies=data.currencies,
        sources=data.sources,
        missing=data.missing,
        stale=data.stale,
        notes=data.notes,
    )
