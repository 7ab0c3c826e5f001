"""Point-in-time supply-risk factors from the reference data (pure functions, no I/O).

Definitions, formulas, sources and caveats: ``docs/factors.md`` (section "Supply-risk factors").

Point in time. Every fact is invisible before its ``published`` date, company facts also outside
``[valid_from, valid_to)``; an event is active from its ``announced`` date (``event_date="effective"``: from
the later of announcement and effective date) until its ``ended`` date, exclusive. A date ``t`` sees the facts
published on or before ``t``. ``backfill=True`` (off by default) is LOOK-AHEAD: it lets slow-moving data
(production concentration and shares, refining shares, governance) be used before publication, taking their
earliest vintage; it never applies to events, critical lists or company facts.

Long output of `supply_factors`, one row per (date, ticker)::

                          supply_risk_exposure  china_dependency  jurisdiction_risk  integration   stage  status  reason
    date       ticker
    2025-06-30 MP                     0.583       0.0               0.301             1.0          magnet  producing
               LYC.AX                 ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from screener.reference import WGI_INDICATORS, Reference
from screener.universe import ELEMENTS, STAGES, STATUSES, Universe

__all__ = [
    "COMPONENT_WEIGHTS",
    "CORE_STAGES",
    "EASING_SEVERITY",
    "EVENT_SEVERITY",
    "FACTOR_COLUMNS",
    "RESTRICTIVE_SEVERITY",
    "SUPPORT_SEVERITY",
    "china_dependency",
    "country_risk",
    "criticality_components",
    "element_criticality",
    "explain_supply",
    "integration",
    "jurisdiction_risk",
    "supply_factors",
    "supply_risk_exposure",
]

EventDate = Literal["announced", "effective"]

#: Weights of the element-criticality components (they sum to 1; unknown components are left out and the
#: rest renormalised).
COMPONENT_WEIGHTS: Mapping[str, float] = {
    "concentration": 0.20,   # HHI of mine production / 10,000
    "china_mining": 0.20,    # China's share of mine production
    "china_refining": 0.20,  # China's share of refining / separation
    "lists": 0.15,           # mean membership of the EU critical, EU strategic and US critical lists
    "events": 0.25,          # restrictive events active at t (saturating, see EVENT_SEVERITY)
}

#: Severity of an active restrictive event by ``event_type``: direct trade measures on the material 0.5,
#: indirect measures (technology bans, regulation, border closures, supply shocks) 0.2. The events component
#: is ``1 - prod(1 - severity)`` over active restrictive events covering the element.
EVENT_SEVERITY: Mapping[str, float] = {
    "export_quota_cut": 0.5,
    "informal_embargo": 0.5,
    "export_licensing": 0.5,
    "export_licensing_expansion": 0.5,
    "export_ban": 0.5,
    "technology_export_ban": 0.2,
    "regulation": 0.2,
    "legal_framework": 0.2,
    "border_closure": 0.2,
    "supply_shock": 0.2,
}
#: Severity of a restrictive event whose type is not in `EVENT_SEVERITY`.
RESTRICTIVE_SEVERITY: float = 0.2
#: With ``easing=True``: each active easing event multiplies the events component by ``1 - 0.5``, each active
#: support event by ``1 - 0.2``.
EASING_SEVERITY: float = 0.5
SUPPORT_SEVERITY: float = 0.2

#: The value chain `integration` counts, upstream to downstream.
CORE_STAGES: tuple[str, ...] = ("mining", "separation", "metal", "magnet")

#: Columns of `supply_factors` (plus ``reason``).
FACTOR_COLUMNS: tuple[str, ...] = (
    "supply_risk_exposure", "china_dependency", "jurisdiction_risk", "integration", "stage", "status",
)

_STRUCTURAL: Mapping[str, str] = {
    "concentration": "hhi_mine_production",
    "china_mining": "china_share_mine_production_pct",
    "china_refining": "china_share_refining_pct",
}
_SCALE: Mapping[str, float] = {"concentration": 10_000.0, "china_mining": 100.0, "china_refining": 100.0}
_LISTS: tuple[str, ...] = ("eu_critical", "eu_strategic", "us_critical")
_OPEN = np.datetime64("2262-01-01", "D")
_ELEMENT_ORDER = {e: i for i, e in enumerate(ELEMENTS)}
# Most downstream stage first; recycling and end_use only name a member that has none of the core stages.
_STAGE_RANK: tuple[str, ...] = ("magnet", "metal", "separation", "mining", "recycling", "end_use")


# ---------------------------------------------------------------------------------------------------------
# Argument handling
# ---------------------------------------------------------------------------------------------------------


def _as_days(dates: Any) -> tuple[pd.DatetimeIndex, np.ndarray]:
    if isinstance(dates, str | pd.Timestamp) or not isinstance(dates, Iterable):
        raise TypeError(f"`dates` must be a list-like of dates, got {type(dates).__name__}")
    try:
        index = pd.DatetimeIndex(dates)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`dates` must hold dates: {exc}") from None
    if index.tz is not None:
        raise ValueError(f"`dates` must be tz-naive, got tz={index.tz}")
    if index.hasnans:
        raise ValueError("`dates` contains NaT")
    if not index.is_unique:
        raise ValueError(f"`dates` must be unique, got {int(index.duplicated().sum())} duplicate(s)")
    index = index.normalize()
    return pd.DatetimeIndex(index, name="date"), index.to_numpy().astype("datetime64[D]")


def _check_options(event_date: str, min_coverage: float | None = None) -> None:
    if event_date not in ("announced", "effective"):
        raise ValueError(f"`event_date` must be 'announced' or 'effective', got {event_date!r}")
    if min_coverage is not None and not 0 <= min_coverage <= 1:
        raise ValueError(f"`min_coverage` must be in [0, 1], got {min_coverage}")


def _days(values: pd.Series) -> np.ndarray:
    return values.to_numpy().astype("datetime64[D]")


def _members(universe: Universe | pd.DataFrame) -> pd.DataFrame:
    """Return a frame indexed by ticker with columns ``stages`` (tuple) and ``status``."""
    if isinstance(universe, Universe):
        return pd.DataFrame(
            {"stages": [m.stages for m in universe.members], "status": [m.status for m in universe.members]},
            index=pd.Index(list(universe.tickers), name="ticker"),
        )
    if isinstance(universe, pd.DataFrame):
        missing = [c for c in ("stages", "status") if c not in universe.columns]
        if missing:
            raise ValueError(f"`universe` frame lacks column(s) {', '.join(missing)} (see Universe.to_frame)")
        if not universe.index.is_unique:
            raise ValueError("`universe` frame must have unique tickers as index")
        frame = universe[["stages", "status"]].copy()
        frame.index = pd.Index([str(t) for t in universe.index], name="ticker")
        frame["stages"] = [tuple(s) if not isinstance(s, str) else (s,) for s in frame["stages"]]
        return frame
    raise TypeError(f"`universe` must be a Universe or a DataFrame like Universe.to_frame(), got "
                    f"{type(universe).__name__}")


def _iso(day: Any) -> str | None:
    if day is None or pd.isna(day):
        return None
    return str(pd.Timestamp(day).date())


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# ---------------------------------------------------------------------------------------------------------
# Element criticality
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Criticality:
    elements: tuple[str, ...]
    components: dict[str, np.ndarray]      # name -> (T, E) values in [0, 1], NaN unknown
    rows: dict[str, np.ndarray]            # structural/list metric -> (T, E) row index into reference.elements
    coverage: np.ndarray                   # (T, E)
    criticality: np.ndarray                # (T, E)
    event_ids: tuple[str, ...]             # restrictive (and easing/support) events considered
    event_active: np.ndarray               # (T, K) bool
    event_members: np.ndarray              # (K, E) bool
    with_facts: frozenset[str]             # elements with any structural or list fact, in any vintage


def _subjects(reference: Reference) -> dict[str, list[str]]:
    """Candidate fact subjects of each element, most specific first: itself, then its groups."""
    groups = reference.element_groups.sort_values("specificity", kind="stable")
    out: dict[str, list[str]] = {}
    for group, element in zip(groups["group"], groups["element"], strict=True):
        out.setdefault(element, [element]).append(group)
    return out


def _criticality_elements(
    reference: Reference, subjects: Mapping[str, list[str]],
) -> tuple[tuple[str, ...], frozenset[str]]:
    """Output elements (with facts, or in an exposure), periodic-table order, and those with facts."""
    metrics = {*_STRUCTURAL.values(), *_LISTS}
    facts = reference.elements
    subjects_with_facts = set(facts.loc[facts["metric"].isin(metrics) & facts["value"].notna(), "element"])
    with_facts = frozenset(e for e in ELEMENTS if any(s in subjects_with_facts for s in subjects.get(e, [e])))
    symbols = with_facts | set(reference.exposures["element"])
    return tuple(sorted(symbols, key=_ELEMENT_ORDER.__getitem__)), with_facts


def _fact_index(facts: pd.DataFrame, metrics: Iterable[str]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Facts with a value, grouped by (metric, subject), each group sorted by (published, year).

    Returns ``{(metric, subject): (published days, row positions in facts)}``.
    """
    wanted = set(metrics)
    metric = facts["metric"].to_numpy(dtype=object)
    subject = facts["element"].to_numpy(dtype=object)
    keep = np.isin(metric, list(wanted)) & ~np.isnan(facts["value"].to_numpy(dtype=float))
    pub = _days(facts["published"])
    order = np.lexsort((facts["year"].to_numpy(), pub))
    order = order[keep[order]]
    grouped: dict[tuple[str, str], list[int]] = {}
    for i in order:
        grouped.setdefault((metric[i], subject[i]), []).append(int(i))
    return {key: (pub[rows], np.asarray(rows, dtype=np.int64)) for key, rows in grouped.items()}


def _resolve(
    facts: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]], metric: str, elements: Sequence[str],
    subjects: Mapping[str, list[str]], days: np.ndarray, backfill: bool,
) -> np.ndarray:
    """Row position (in reference.elements) of the fact used for each (date, element), -1 when none.

    The most specific subject with a fact published on or before the date wins; within a subject the
    latest vintage (``published``), then the latest ``year``. With `backfill`, a date before any publication
    takes the earliest vintage and, within it, the earliest year (the first row of the sorted group).
    """
    out = np.full((len(days), len(elements)), -1, dtype=np.int64)
    for j, element in enumerate(elements):
        col = out[:, j]
        candidates = [facts[(metric, s)] for s in subjects.get(element, [element]) if (metric, s) in facts]
        for pub, index in candidates:
            k = np.searchsorted(pub, days, side="right") - 1
            take = (col < 0) & (k >= 0)
            col[take] = index[k[take]]
        if backfill and candidates:
            col[col < 0] = candidates[0][1][0]
    return out


def _event_window(events: pd.DataFrame, event_date: str) -> tuple[np.ndarray, np.ndarray]:
    start = _days(events["announced"])
    if event_date == "effective":
        effective = _days(events["effective"])
        start = np.where(np.isnat(effective), start, np.maximum(start, effective))
    end = _days(events["ended"])
    end = np.where(np.isnat(end), _OPEN, end)
    return start, end


def _compute_criticality(
    reference: Reference, days: np.ndarray, event_date: str, backfill: bool, easing: bool,
) -> _Criticality:
    subjects = _subjects(reference)
    elements, with_facts = _criticality_elements(reference, subjects)
    facts = reference.elements
    # One NaN appended so that the row index -1 ("no fact") reads NaN, even from an empty table.
    values = np.append(facts["value"].to_numpy(dtype=float), np.nan)
    components: dict[str, np.ndarray] = {}
    rows: dict[str, np.ndarray] = {}
    grouped = _fact_index(facts, (*_STRUCTURAL.values(), *_LISTS))
    for name, metric in _STRUCTURAL.items():
        idx = _resolve(grouped, metric, elements, subjects, days, backfill)
        rows[name] = idx
        components[name] = values[idx] / _SCALE[name]
    list_sum = np.zeros((len(days), len(elements)))
    list_count = np.zeros((len(days), len(elements)))
    for metric in _LISTS:
        idx = _resolve(grouped, metric, elements, subjects, days, backfill=False)  # lists are never backfilled
        rows[metric] = idx
        known = idx >= 0
        list_sum += np.where(known, values[idx], 0.0)
        list_count += known
    with np.errstate(invalid="ignore", divide="ignore"):
        components["lists"] = np.where(list_count > 0, list_sum / list_count, np.nan)

    # Events: log-survival sums over active events; 1 - prod(1 - s) = 1 - exp(sum(log(1 - s))).
    events = reference.events
    kinds = ("restrictive", "easing", "support") if easing else ("restrictive",)
    chosen = events.loc[events["direction"].isin(kinds)]
    start, end = _event_window(chosen, event_date)
    active = (start[None, :] <= days[:, None]) & (days[:, None] < end[None, :])
    position = {e: j for j, e in enumerate(elements)}
    member = np.zeros((len(chosen), len(elements)), dtype=bool)
    for k, symbols in enumerate(chosen["elements"]):
        for symbol in symbols:
            if symbol in position:
                member[k, position[symbol]] = True
    direction = chosen["direction"].to_numpy(dtype=object)
    severity = np.array([
        EVENT_SEVERITY.get(t, RESTRICTIVE_SEVERITY) if d == "restrictive"
        else EASING_SEVERITY if d == "easing" else SUPPORT_SEVERITY
        for t, d in zip(chosen["event_type"], direction, strict=True)
    ], dtype=float)
    log_keep = np.log1p(-severity)
    restrictive = direction == "restrictive"
    act = active.astype(float)
    pressure = 1.0 - np.exp(act[:, restrictive] @ (member[restrictive] * log_keep[restrictive, None]))
    if easing and (~restrictive).any():
        pressure = pressure * np.exp(act[:, ~restrictive] @ (member[~restrictive] * log_keep[~restrictive, None]))
    structural = np.zeros((len(days), len(elements)), dtype=bool)
    for name in (*_STRUCTURAL, "lists"):
        structural |= ~np.isnan(components[name])
    # The absence of an event says something only about an element the reference otherwise knows at t.
    components["events"] = np.where(structural, pressure, np.nan)

    numerator = np.zeros((len(days), len(elements)))
    coverage = np.zeros((len(days), len(elements)))
    for name, weight in COMPONENT_WEIGHTS.items():
        known = ~np.isnan(components[name])
        numerator += np.where(known, components[name] * weight, 0.0)
        coverage += known * weight
    with np.errstate(invalid="ignore", divide="ignore"):
        criticality = np.where(coverage > 0, numerator / coverage, np.nan)
    return _Criticality(
        elements=elements, components=components, rows=rows, coverage=coverage, criticality=criticality,
        event_ids=tuple(chosen["event_id"]), event_active=active, event_members=member, with_facts=with_facts,
    )


def criticality_components(
    reference: Reference, dates: Any, *, event_date: EventDate = "announced", backfill: bool = False,
    easing: bool = False,
) -> pd.DataFrame:
    """Return each element's criticality components, coverage and criticality at each date.

    Parameters
    ----------
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates (tz-naive, unique; times of day are dropped).
    event_date : {"announced", "effective"}, default "announced"
        When an event becomes active: on announcement, or on the later of announcement and effective date.
    backfill : bool, default False
        LOOK-AHEAD: use the earliest vintage of production concentration and China shares before their
        publication. Never applies to lists or events.
    easing : bool, default False
        Let active easing and support events lower the events component (see `EASING_SEVERITY`).

    Returns
    -------
    DataFrame of shape (n_dates * n_elements, 7)
        Index (date, element); columns ``concentration``, ``china_mining``, ``china_refining``, ``lists``,
        ``events`` (each in [0, 1], NaN when unknown at the date), ``coverage`` (sum of the weights of the
        known components, 0..1) and ``criticality``.
    """
    _check_options(event_date)
    index, days = _as_days(dates)
    crit = _compute_criticality(reference, days, event_date, backfill, easing)
    n_d, n_e = len(days), len(crit.elements)
    data = {name: crit.components[name].ravel() for name in COMPONENT_WEIGHTS}
    data["coverage"] = crit.coverage.ravel()
    data["criticality"] = crit.criticality.ravel()
    rows = pd.MultiIndex.from_arrays(
        [index.repeat(n_e), np.tile(np.array(crit.elements, dtype=object), n_d)], names=["date", "element"])
    return pd.DataFrame(data, index=rows)


def element_criticality(
    reference: Reference, dates: Any, *, event_date: EventDate = "announced", backfill: bool = False,
    easing: bool = False,
) -> pd.DataFrame:
    """Return the supply criticality of each element at each date, in [0, 1].

    ``criticality = sum(w_i * c_i) / sum(w_i)`` over the components ``c_i`` known at the date, with the
    weights `COMPONENT_WEIGHTS`: mine-production concentration (HHI / 10,000), China's share of mining and of
    refining, critical-list membership, and restrictive events active at the date. An element with no known
    component is NaN; `criticality_components` gives the components and their coverage.

    Parameters
    ----------
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates.
    event_date : {"announced", "effective"}, default "announced"
        See `criticality_components`.
    backfill : bool, default False
        LOOK-AHEAD; see `criticality_components`.
    easing : bool, default False
        See `criticality_components`.

    Returns
    -------
    DataFrame of shape (n_dates, n_elements)
        Index ``date``; columns element symbols (those with any fact, or in an exposure) in periodic-table
        order, named ``element``.
    """
    _check_options(event_date)
    index, days = _as_days(dates)
    crit = _compute_criticality(reference, days, event_date, backfill, easing)
    return pd.DataFrame(crit.criticality, index=index, columns=pd.Index(list(crit.elements), name="element"))


# ---------------------------------------------------------------------------------------------------------
# Countries
# ---------------------------------------------------------------------------------------------------------


def _country_risk(reference: Reference, days: np.ndarray, backfill: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Country names, (T, C) risk in [0, 1] (NaN unknown) and (T, C) row position in reference.countries."""
    frame = reference.countries
    country = frame["country"].to_numpy(dtype=object)
    names = list(dict.fromkeys(country))
    wgi = frame[list(WGI_INDICATORS)].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(wgi, axis=1) / (~np.isnan(wgi)).sum(axis=1)  # NaN when a row has no estimate
    risk_row = np.clip((2.5 - mean) / 5.0, 0.0, 1.0)
    risk = np.full((len(days), len(names)), np.nan)
    rows = np.full((len(days), len(names)), -1, dtype=np.int64)
    pub = _days(frame["published"])
    order = np.lexsort((frame["year"].to_numpy(), pub))
    for j, name in enumerate(names):
        mine = order[country[order] == name]
        k = np.searchsorted(pub[mine], days, side="right") - 1
        if backfill:
            k = np.maximum(k, 0)
        ok = k >= 0
        rows[ok, j] = mine[k[ok]]
    ok = rows >= 0
    risk[ok] = risk_row[rows[ok]]
    return names, risk, rows


def country_risk(reference: Reference, dates: Any, *, backfill: bool = False) -> pd.DataFrame:
    """Return each country's governance risk at each date, in [0, 1] (higher = riskier).

    ``risk = clip((2.5 - mean WGI estimate) / 5, 0, 1)``: the mean of the six WGI estimates (about -2.5 weak
    to +2.5 strong) mapped linearly so that -2.5 gives 1 and +2.5 gives 0.

    Parameters
    ----------
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates.
    backfill : bool, default False
        LOOK-AHEAD: use the earliest WGI vintage before its publication.

    Returns
    -------
    DataFrame of shape (n_dates, n_countries)
        NaN where no WGI vintage is published by the date.
    """
    index, days = _as_days(dates)
    names, risk, _ = _country_risk(reference, days, backfill)
    return pd.DataFrame(risk, index=index, columns=pd.Index(names, name="country"))


# ---------------------------------------------------------------------------------------------------------
# Member factors
# ---------------------------------------------------------------------------------------------------------

# Reason codes (0 = value present).
_NO_ROWS, _NOT_YET, _NO_VALUE, _LOW_COVERAGE = 1, 2, 3, 4


@dataclass(frozen=True)
class _Factors:
    tickers: tuple[str, ...]
    values: dict[str, np.ndarray]     # factor -> (T, N)
    codes: dict[str, np.ndarray]      # exposure / chain / jurisdiction -> (T, N) reason codes
    stage: np.ndarray                 # (T, N) object (stage name or None)
    status: np.ndarray                # (N,)
    reasons: np.ndarray               # (T, N) object


def _onehot(index: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(index), n))
    out[np.arange(len(index)), index] = 1.0
    return out


def _compute_factors(
    members: pd.DataFrame, reference: Reference, days: np.ndarray, crit: _Criticality, backfill: bool,
    min_coverage: float,
) -> _Factors:
    tickers = tuple(members.index)
    n, t = len(tickers), len(days)
    position = {tk: i for i, tk in enumerate(tickers)}
    with np.errstate(invalid="ignore", divide="ignore"):
        # --- exposures -------------------------------------------------------------------------------
        exp = reference.exposures.loc[reference.exposures["ticker"].isin(position)]
        e_pos = {e: j for j, e in enumerate(crit.elements)}
        onehot = _onehot(exp["ticker"].map(position).to_numpy(dtype=np.int64), n)
        weight = exp["weight"].to_numpy(dtype=float)
        visible = _days(exp["published"])[None, :] <= days[:, None]
        value = crit.criticality[:, exp["element"].map(e_pos).to_numpy(dtype=np.int64)]
        known = ~np.isnan(value)
        w_vis = (visible * weight) @ onehot
        w_known = (visible * known * weight) @ onehot
        numerator = (visible * weight * np.where(known, value, 0.0)) @ onehot
        share = np.where(w_vis > 0, w_known / w_vis, 0.0)
        enough = (w_known > 0) & (share >= min_coverage - 1e-12)
        exposure = np.where(enough, numerator / np.where(w_known > 0, w_known, 1.0), np.nan)
        has_rows = onehot.sum(axis=0) > 0
        code_exp = np.where(~has_rows[None, :], _NO_ROWS, np.where(w_vis <= 0, _NOT_YET,
                            np.where(w_known <= 0, _NO_VALUE, np.where(~enough, _LOW_COVERAGE, 0))))

        # --- chain -------------------------------------------------------------------------------------
        chain = reference.chain.loc[reference.chain["ticker"].isin(position)]
        c_onehot = _onehot(chain["ticker"].map(position).to_numpy(dtype=np.int64), n)
        c_weight = chain["weight"].to_numpy(dtype=float)
        start = _days(chain["valid_from"])
        end = _days(chain["valid_to"])
        end = np.where(np.isnat(end), _OPEN, end)
        active = ((_days(chain["published"])[None, :] <= days[:, None]) & (start[None, :] <= days[:, None])
                  & (days[:, None] < end[None, :]))
        china = (chain["country"].to_numpy(dtype=object) == "China") | chain["china_linked"].to_numpy(dtype=bool)
        w_act = active * c_weight
        total = w_act @ c_onehot
        has_chain = c_onehot.sum(axis=0) > 0
        present = total > 0
        dependency = np.where(present, (w_act * china) @ c_onehot / np.where(present, total, 1.0), np.nan)
        stage_names = chain["stage"].to_numpy(dtype=object)
        covered = np.zeros((t, n))
        for s in CORE_STAGES:
            covered += ((active & (stage_names == s)[None, :] & ~china[None, :]) @ c_onehot) > 0
        integ = np.where(present, covered / len(CORE_STAGES), np.nan)
        code_chain = np.where(~has_chain[None, :], _NO_ROWS, np.where(present, 0, _NOT_YET))

        # --- jurisdiction -----------------------------------------------------------------------------
        names, risk, _ = _country_risk(reference, days, backfill)
        c_pos = {c: j for j, c in enumerate(names)}
        col = np.array([c_pos.get(c, -1) for c in chain["country"]], dtype=np.int64)
        if names:
            row_risk = np.where(col[None, :] >= 0, risk[:, np.maximum(col, 0)], np.nan)
        else:
            row_risk = np.full((t, len(col)), np.nan)
        r_known = ~np.isnan(row_risk)
        w_rknown = (w_act * r_known) @ c_onehot
        r_num = (w_act * np.where(r_known, row_risk, 0.0)) @ c_onehot
        r_share = np.where(present, w_rknown / np.where(present, total, 1.0), 0.0)
        r_enough = present & (w_rknown > 0) & (r_share >= min_coverage - 1e-12)
        jurisdiction = np.where(r_enough, r_num / np.where(w_rknown > 0, w_rknown, 1.0), np.nan)
        code_jur = np.where(code_chain != 0, code_chain,
                            np.where(w_rknown <= 0, _NO_VALUE, np.where(~r_enough, _LOW_COVERAGE, 0)))

    # --- stage (most downstream active stage) and status -----------------------------------------------
    stage = np.full((t, n), None, dtype=object)
    for s in reversed(_STAGE_RANK):
        has = ((active & (stage_names == s)[None, :]) @ c_onehot) > 0
        stage[has] = s
    # Without an active chain row the universe file's stages name the member (current, like `status`).
    for i, tk in enumerate(tickers):
        listed = members.at[tk, "stages"]
        rank = [s for s in _STAGE_RANK if s in listed]
        stage[~present[:, i], i] = rank[0] if rank else None
    status = members["status"].to_numpy(dtype=object)

    codes = {"exposure": code_exp, "chain": code_chain, "jurisdiction": code_jur}
    reasons = _reasons(tickers, members, reference, codes, min_coverage, crit.with_facts)
    values = {"supply_risk_exposure": exposure, "china_dependency": dependency, "jurisdiction_risk": jurisdiction,
              "integration": integ}
    return _Factors(tickers=tickers, values=values, codes=codes, stage=stage, status=status, reasons=reasons)


def _reasons(
    tickers: Sequence[str], members: pd.DataFrame, reference: Reference, codes: Mapping[str, np.ndarray],
    min_coverage: float, with_facts: frozenset[str],
) -> np.ndarray:
    """Reason text per (date, ticker), ``""`` when every factor has a value."""
    exp_first: dict[str, Any] = {}
    exp_elements: dict[str, list[str]] = {}
    for tk, element, pub in zip(reference.exposures["ticker"], reference.exposures["element"],
                                reference.exposures["published"], strict=True):
        exp_elements.setdefault(tk, []).append(element)
        exp_first[tk] = min(exp_first.get(tk, pub), pub)
    chain_first: dict[str, Any] = {}
    chain_countries: dict[str, list[str]] = {}
    for tk, country, pub in zip(reference.chain["ticker"], reference.chain["country"], reference.chain["published"],
                                strict=True):
        if country not in chain_countries.setdefault(tk, []):
            chain_countries[tk].append(country)
        chain_first[tk] = min(chain_first.get(tk, pub), pub)
    wgi = set(reference.countries["country"])
    wgi_first = reference.countries["published"].min() if len(reference.countries) else None
    pct = f"{min_coverage:.0%}"
    # Combine the three codes into one integer per cell and build each distinct text once.
    combo = codes["exposure"] * 25 + codes["chain"] * 5 + codes["jurisdiction"]
    out = np.empty(combo.shape, dtype=object)
    for i, tk in enumerate(tickers):
        column = combo[:, i]
        texts: dict[int, str] = {}
        for value in np.unique(column):
            ce, cc, cj = int(value) // 25, (int(value) // 5) % 5, int(value) % 5
            parts = []
            demand = tuple(members.at[tk, "stages"]) == ("end_use",)
            if ce == _NO_ROWS:
                extra = " (end_use member: exposure qualitative only)" if demand else ""
                parts.append(f"supply_risk_exposure: no exposure data for {tk} in reference/exposures.csv{extra}")
            elif ce == _NOT_YET:
                parts.append(f"supply_risk_exposure: no exposure data for {tk} published by this date "
                             f"(first published {_iso(exp_first.get(tk))})")
            elif ce in (_NO_VALUE, _LOW_COVERAGE):
                els = exp_elements.get(tk, [])
                never = [e for e in els if e not in with_facts]
                detail = f"; no reference facts at all for {', '.join(never)}" if never else ""
                if ce == _NO_VALUE:
                    parts.append(f"supply_risk_exposure: no criticality known at this date for any of {tk}'s "
                                 f"elements ({', '.join(els)}){detail}")
                else:
                    parts.append(f"supply_risk_exposure: criticality known for less than min_coverage ({pct}) of "
                                 f"{tk}'s exposure weight at this date (elements {', '.join(els)}){detail}")
            if cc == _NO_ROWS:
                extra = " (end_use member)" if demand else ""
                parts.append(f"china_dependency, jurisdiction_risk, integration: no chain data for {tk} in "
                             f"reference/chain.csv{extra}")
            elif cc == _NOT_YET:
                parts.append(f"china_dependency, jurisdiction_risk, integration: no chain data for {tk} published "
                             f"and valid at this date (first published {_iso(chain_first.get(tk))})")
            elif cj == _NO_VALUE:
                lacking = [c for c in chain_countries.get(tk, ()) if c not in wgi]
                if lacking and len(lacking) == len(chain_countries.get(tk, ())):
                    parts.append(f"jurisdiction_risk: no WGI data in reference/countries.csv for "
                                 f"{', '.join(lacking)}")
                else:
                    parts.append(f"jurisdiction_risk: no WGI data published by this date (first published "
                                 f"{_iso(wgi_first)}; backfill=True uses it earlier, with look-ahead)")
            elif cj == _LOW_COVERAGE:
                lacking = [c for c in chain_countries.get(tk, ()) if c not in wgi]
                parts.append(f"jurisdiction_risk: WGI data cover less than min_coverage ({pct}) of {tk}'s chain "
                             f"weight (no WGI data for {', '.join(lacking) or 'some countries'})")
            texts[int(value)] = "; ".join(parts)
        out[:, i] = [texts[int(v)] for v in column]
    return out


def _wide(factors: _Factors, name: str, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame(factors.values[name], index=index, columns=pd.Index(list(factors.tickers), name="ticker"))


def _run(
    universe: Universe | pd.DataFrame, reference: Reference, dates: Any, event_date: str, backfill: bool,
    easing: bool, min_coverage: float,
) -> tuple[pd.DatetimeIndex, _Criticality, _Factors]:
    _check_options(event_date, min_coverage)
    members = _members(universe)
    index, days = _as_days(dates)
    crit = _compute_criticality(reference, days, event_date, backfill, easing)
    return index, crit, _compute_factors(members, reference, days, crit, backfill, min_coverage)


def supply_risk_exposure(
    universe: Universe | pd.DataFrame, reference: Reference, dates: Any, *, event_date: EventDate = "announced",
    backfill: bool = False, easing: bool = False, min_coverage: float = 0.5,
) -> pd.DataFrame:
    """Return each member's exposure-weighted element criticality, in [0, 1] (higher = riskier).

    ``sum(w_e * criticality_e) / sum(w_e)`` over the member's exposure rows published by the date whose
    element criticality is known; NaN when that known weight is below `min_coverage` of the visible weight.

    Parameters
    ----------
    universe : Universe or DataFrame
        Members (a `Universe` or `Universe.to_frame()`: index ticker, columns ``stages``, ``status``).
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates.
    event_date : {"announced", "effective"}, default "announced"
        See `criticality_components`.
    backfill : bool, default False
        LOOK-AHEAD; see `criticality_components`.
    easing : bool, default False
        See `criticality_components`.
    min_coverage : float, default 0.5
        Minimum share of the visible exposure weight whose criticality must be known.

    Returns
    -------
    DataFrame of shape (n_dates, n_members)
        Index ``date``, columns tickers in the universe's order.
    """
    index, _, factors = _run(universe, reference, dates, event_date, backfill, easing, min_coverage)
    return _wide(factors, "supply_risk_exposure", index)


def china_dependency(universe: Universe | pd.DataFrame, reference: Reference, dates: Any) -> pd.DataFrame:
    """Return the share of each member's value chain that passes through China, in [0, 1].

    ``sum(w_s * [country_s == China or china_linked_s]) / sum(w_s)`` over the chain rows published and valid
    at the date (``reference/chain.csv``); NaN when none.

    Parameters
    ----------
    universe : Universe or DataFrame
        Members, see `supply_risk_exposure`.
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates.

    Returns
    -------
    DataFrame of shape (n_dates, n_members)
    """
    index, _, factors = _run(universe, reference, dates, "announced", False, False, 0.5)
    return _wide(factors, "china_dependency", index)


def jurisdiction_risk(
    universe: Universe | pd.DataFrame, reference: Reference, dates: Any, *, backfill: bool = False,
    min_coverage: float = 0.5,
) -> pd.DataFrame:
    """Return the chain-weighted governance risk of each member's countries, in [0, 1] (higher = riskier).

    ``sum(w_s * risk(country_s)) / sum(w_s)`` over active chain rows whose country has WGI data by the date,
    with `country_risk`; NaN when those rows carry less than `min_coverage` of the chain weight.

    Parameters
    ----------
    universe : Universe or DataFrame
        Members, see `supply_risk_exposure`.
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates.
    backfill : bool, default False
        LOOK-AHEAD: use the earliest WGI vintage before its publication.
    min_coverage : float, default 0.5
        Minimum share of the active chain weight with WGI data.

    Returns
    -------
    DataFrame of shape (n_dates, n_members)
    """
    index, _, factors = _run(universe, reference, dates, "announced", backfill, False, min_coverage)
    return _wide(factors, "jurisdiction_risk", index)


def integration(universe: Universe | pd.DataFrame, reference: Reference, dates: Any) -> pd.DataFrame:
    """Return the share of the stages mining, separation, metal, magnet each member covers outside China.

    A stage counts when an active chain row has it in a country other than China and not ``china_linked``;
    the result is the count over 4, in {0, 0.25, 0.5, 0.75, 1} (higher = more ex-China integration, lower
    risk). NaN when the member has no active chain rows.

    Parameters
    ----------
    universe : Universe or DataFrame
        Members, see `supply_risk_exposure`.
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates.

    Returns
    -------
    DataFrame of shape (n_dates, n_members)
    """
    index, _, factors = _run(universe, reference, dates, "announced", False, False, 0.5)
    return _wide(factors, "integration", index)


def supply_factors(
    universe: Universe | pd.DataFrame, reference: Reference, dates: Any, *, event_date: EventDate = "announced",
    backfill: bool = False, easing: bool = False, min_coverage: float = 0.5,
) -> pd.DataFrame:
    """Return all supply-risk factors per (date, member), point in time.

    Parameters
    ----------
    universe : Universe or DataFrame
        Members (a `Universe` or `Universe.to_frame()`: index ticker, columns ``stages``, ``status``).
    reference : Reference
        From `screener.reference.load_reference`.
    dates : list-like of dates
        Evaluation dates (tz-naive, unique; kept in the given order).
    event_date : {"announced", "effective"}, default "announced"
        When an event becomes active.
    backfill : bool, default False
        LOOK-AHEAD: slow-moving data (production shares, refining shares, governance) used before
        publication with their earliest vintage; never events, lists or company facts.
    easing : bool, default False
        Let easing and support events lower element criticality.
    min_coverage : float, default 0.5
        Minimum known share of the exposure weight (`supply_risk_exposure`) and of the chain weight
        (`jurisdiction_risk`) for a value.

    Returns
    -------
    DataFrame of shape (n_dates * n_members, 7)
        Index (``date``, ``ticker``), dates outer in the given order, members in the universe's order.
        Columns `FACTOR_COLUMNS` (four floats in [0, 1]; ``stage`` and ``status`` categorical) and
        ``reason`` (str): why factors are NaN, ``""`` when none is.
    """
    index, _, factors = _run(universe, reference, dates, event_date, backfill, easing, min_coverage)
    n_d, n_m = len(index), len(factors.tickers)
    rows = pd.MultiIndex.from_arrays(
        [index.repeat(n_m), np.tile(np.array(factors.tickers, dtype=object), n_d)], names=["date", "ticker"])
    data: dict[str, Any] = {name: factors.values[name].ravel() for name in FACTOR_COLUMNS[:4]}
    data["stage"] = pd.Categorical(factors.stage.ravel(), categories=list(STAGES))
    data["status"] = pd.Categorical(np.tile(factors.status, n_d), categories=list(STATUSES))
    data["reason"] = pd.array(factors.reasons.ravel().astype(str), dtype="str")
    return pd.DataFrame(data, index=rows)


# ---------------------------------------------------------------------------------------------------------
# Explanation
# ---------------------------------------------------------------------------------------------------------


def _fact(reference: Reference, row: int, element: str) -> dict[str, Any] | None:
    if row < 0:
        return None
    r = reference.elements.iloc[row]
    return {
        "subject": r["element"], "proxy": r["element"] != element, "metric": r["metric"], "country": r["country"],
        "year": int(r["year"]), "value": _float(r["value"]), "unit": r["unit"], "published": _iso(r["published"]),
        "source": r["source"], "source_url": r["source_url"] or None, "confidence": r["confidence"],
        "note": r["note"] or None,
    }


def explain_supply(
    ticker: str, date: Any, reference: Reference, universe: Universe | pd.DataFrame, *,
    event_date: EventDate = "announced", backfill: bool = False, easing: bool = False, min_coverage: float = 0.5,
) -> dict[str, Any]:
    """Return how each supply-risk factor of one member at one date is made up (JSON-ready).

    Parameters
    ----------
    ticker : str
        A member of `universe`.
    date : date-like
        Evaluation date.
    reference : Reference
        From `screener.reference.load_reference`.
    universe : Universe or DataFrame
        Members, see `supply_factors`.
    event_date, backfill, easing, min_coverage
        As in `supply_factors`.

    Returns
    -------
    dict
        Keys ``ticker``, ``date``, ``options``, ``factors`` (the `supply_factors` row), ``reason``,
        ``exposure`` (per element: weight, visibility, criticality, coverage and each component with its
        fact: subject, proxy flag, value, year, published, source, confidence), ``events`` (active events
        touching the member's elements: ID, dates, direction, severity, elements, source), ``chain`` (rows
        active at the date with their China link), ``stages_outside_china`` and ``countries`` (chain weight,
        WGI estimates, risk, published, source).

    Raises
    ------
    KeyError
        When `ticker` is not a member of `universe`.
    """
    members = _members(universe)
    if ticker not in members.index:
        raise KeyError(f"`ticker` {ticker!r} is not a member of the universe; members: {', '.join(members.index)}")
    _check_options(event_date, min_coverage)
    index, days = _as_days([date])
    crit = _compute_criticality(reference, days, event_date, backfill, easing)
    factors = _compute_factors(members.loc[[ticker]], reference, days, crit, backfill, min_coverage)
    day = days[0]
    e_pos = {e: j for j, e in enumerate(crit.elements)}

    exposure_rows = reference.exposures.loc[reference.exposures["ticker"] == ticker]
    visible_weight = float(exposure_rows.loc[_days(exposure_rows["published"]) <= day, "weight"].sum())
    elements_out = []
    for _, r in exposure_rows.iterrows():
        element = r["element"]
        j = e_pos[element]
        visible = bool(_days(pd.Series([r["published"]]))[0] <= day)
        components = {}
        for name, weight in COMPONENT_WEIGHTS.items():
            value = crit.components[name][0, j]
            entry: dict[str, Any] = {"value": _float(value), "weight": weight}
            if name in _STRUCTURAL:
                entry["fact"] = _fact(reference, int(crit.rows[name][0, j]), element)
            elif name == "lists":
                entry["facts"] = {m: _fact(reference, int(crit.rows[m][0, j]), element) for m in _LISTS}
            else:
                entry["event_ids"] = [crit.event_ids[k] for k in np.flatnonzero(
                    crit.event_active[0] & crit.event_members[:, j])]
            components[name] = entry
        elements_out.append({
            "element": element, "weight": float(r["weight"]), "visible": visible,
            "weight_used": float(r["weight"]) / visible_weight if visible and visible_weight > 0 else 0.0,
            "published": _iso(r["published"]), "published_rule": r["published_rule"], "basis": r["basis"],
            "source": r["source"], "confidence": r["confidence"],
            "criticality": _float(crit.criticality[0, j]), "coverage": float(crit.coverage[0, j]),
            "components": components,
        })

    member_elements = {e_pos[e] for e in exposure_rows["element"]}
    events_out = []
    ev = reference.events.set_index("event_id")
    for k in np.flatnonzero(crit.event_active[0]):
        touched = [crit.elements[j] for j in np.flatnonzero(crit.event_members[k]) if j in member_elements]
        if not touched:
            continue
        r = ev.loc[crit.event_ids[k]]
        d = r["direction"]
        severity = (EVENT_SEVERITY.get(r["event_type"], RESTRICTIVE_SEVERITY) if d == "restrictive"
                    else EASING_SEVERITY if d == "easing" else SUPPORT_SEVERITY)
        events_out.append({
            "event_id": crit.event_ids[k], "announced": _iso(r["announced"]), "effective": _iso(r["effective"]),
            "ended": _iso(r["ended"]), "direction": d, "event_type": r["event_type"], "severity": severity,
            "member_elements": touched, "description": r["description"], "date_confidence": r["date_confidence"],
            "source": r["source"], "source_url": r["source_url"] or None,
        })

    chain = reference.chain.loc[reference.chain["ticker"] == ticker]
    end = _days(chain["valid_to"])
    end = np.where(np.isnat(end), _OPEN, end)
    active = (_days(chain["published"]) <= day) & (_days(chain["valid_from"]) <= day) & (day < end)
    names, risk, wgi_rows = _country_risk(reference, days, backfill)
    c_pos = {c: j for j, c in enumerate(names)}
    chain_out, by_country = [], {}
    for (_, r), on in zip(chain.iterrows(), active, strict=True):
        if not on:
            continue
        in_china = r["country"] == "China" or bool(r["china_linked"])
        chain_out.append({
            "stage": r["stage"], "country": r["country"], "china_linked": bool(r["china_linked"]),
            "in_china": in_china, "weight": float(r["weight"]), "valid_from": _iso(r["valid_from"]),
            "valid_to": _iso(r["valid_to"]), "published": _iso(r["published"]),
            "published_rule": r["published_rule"], "source": r["source"], "confidence": r["confidence"],
            "note": r["note"] or None,
        })
        by_country[r["country"]] = by_country.get(r["country"], 0.0) + float(r["weight"])
    countries_out = []
    for country, weight in by_country.items():
        j = c_pos.get(country)
        row = int(wgi_rows[0, j]) if j is not None else -1
        entry = {"country": country, "chain_weight": weight, "risk": _float(risk[0, j]) if j is not None else None}
        if row >= 0:
            w = reference.countries.iloc[row]
            entry.update({
                "wgi_year": int(w["year"]), "wgi": {k: _float(w[k]) for k in WGI_INDICATORS},
                "wgi_mean": _float(pd.Series([w[k] for k in WGI_INDICATORS], dtype=float).mean()),
                "published": _iso(w["published"]),
                "source": w["source"], "confidence": w["confidence"],
            })
        else:
            entry["wgi"] = None
        countries_out.append(entry)
    outside = sorted({c["stage"] for c in chain_out if not c["in_china"] and c["stage"] in CORE_STAGES},
                     key=CORE_STAGES.index)

    values = {name: _float(factors.values[name][0, 0]) for name in FACTOR_COLUMNS[:4]}
    values["stage"] = factors.stage[0, 0]
    values["status"] = factors.status[0]
    return {
        "ticker": ticker,
        "date": _iso(index[0]),
        "options": {"event_date": event_date, "backfill": backfill, "easing": easing, "min_coverage": min_coverage},
        "factors": values,
        "reason": str(factors.reasons[0, 0]),
        "exposure": {"visible_weight": visible_weight, "elements": elements_out},
        "events": events_out,
        "chain": chain_out,
        "stages_outside_china": outside,
        "countries": countries_out,
    }
