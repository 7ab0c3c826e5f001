"""The view's state lives in the URL: every widget is seeded from ``st.query_params`` and writes its value back.

A link therefore reproduces a view. The URL is the source of truth across pages: a page reads another page's
settings (the backtest reads the screen built on the Factors page) from the query parameters even when that
page's widgets are not on screen. Values that cannot be parsed, or are not among a widget's options, fall back
to the default (and are noted on the page), never an exception.

Encodings (all plain text):

- dates ``YYYY-MM-DD`` (empty: none), numbers as Python prints them, booleans ``1``/``0``;
- lists comma-separated (``bt_bench=REMX,SPY``);
- screen filters ``factor|op|value`` joined by ``~``, a list value joined by ``;``
  (``filters=adv_60d|>=|1000000~stage|in|mining;separation``; empty: no filter);
- score weights ``factor:weight`` comma-separated (``score=supply_risk_exposure:-1,momentum_12_1:0.5``).

A parameter present with an empty value means "none" (no filter, no score), which differs from an absent
parameter (the default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import streamlit as st

from screener.config import NUMERIC_FACTORS, SET_OPS, Filter

WIDGET_PREFIX = "w_"
_NOTES_KEY = "_url_notes"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Param:
    """One query parameter: its name, default and text codec.

    ``parse`` raises ``ValueError`` on text it cannot read; ``dump`` writes the value back as text.
    """

    name: str
    default: Any
    parse: Callable[[str], Any] = str
    dump: Callable[[Any], str] = _text
    choices: Sequence[Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """Session-state key of the widget bound to this parameter."""
        return WIDGET_PREFIX + self.name


# -- codecs ---------------------------------------------------------------------------------------------------
def parse_date(text: str) -> date | None:
    """``YYYY-MM-DD`` or empty (None)."""
    return date.fromisoformat(text) if text else None


def dump_date(value: date | None) -> str:
    """ISO date or empty."""
    return value.isoformat() if value else ""


def parse_bool(text: str) -> bool:
    """``1``/``true``/``yes`` or ``0``/``false``/``no``."""
    folded = text.strip().lower()
    if folded in ("1", "true", "yes", "on"):
        return True
    if folded in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def dump_bool(value: bool) -> str:
    """``1`` or ``0``."""
    return "1" if value else "0"


def parse_list(text: str) -> list[str]:
    """Comma-separated items (empty: no items)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def dump_list(value: Sequence[str]) -> str:
    """Comma-joined items."""
    return ",".join(value)


def parse_optional_float(text: str) -> float | None:
    """A number or empty (None)."""
    return float(text) if text.strip() else None


def parse_optional_int(text: str) -> int | None:
    """A whole number or empty (None)."""
    return int(text) if text.strip() else None


def parse_int_pair(text: str) -> tuple[int, int]:
    """Two comma-separated whole numbers, e.g. ``-5,20``."""
    lo, hi = (int(v) for v in text.split(","))
    return lo, hi


def dump_pair(value: Sequence[Any]) -> str:
    """``lo,hi``."""
    return f"{value[0]},{value[1]}"


def parse_filter(text: str) -> Filter:
    """``factor|op|value`` (a list value joined by ``;``) as a `Filter` (checked when the config is built)."""
    factor, op, raw = text.split("|", 2)
    if op in SET_OPS or factor not in NUMERIC_FACTORS:
        return Filter(factor, op, tuple(v for v in raw.split(";") if v))
    return Filter(factor, op, float(raw))


def dump_filter(f: Filter) -> str:
    """Inverse of `parse_filter`."""
    value = ";".join(f.value) if isinstance(f.value, tuple) else repr(float(f.value))
    return f"{f.factor}|{f.op}|{value}"


def parse_filters(text: str) -> list[Filter]:
    """Filters joined by ``~`` (empty: none)."""
    return [parse_filter(t) for t in text.split("~") if t.strip()]


def dump_filters(value: Sequence[Filter]) -> str:
    """Inverse of `parse_filters`."""
    return "~".join(dump_filter(f) for f in value)


def parse_score(text: str) -> dict[str, float]:
    """``factor:weight`` pairs, comma-separated, in order."""
    out: dict[str, float] = {}
    for item in parse_list(text):
        factor, weight = item.split(":")
        out[factor.strip()] = float(weight)
    return out


def dump_score(value: dict[str, float]) -> str:
    """Inverse of `parse_score`."""
    return ",".join(f"{k}:{float(v):g}" for k, v in value.items())


# -- reading and writing ---------------------------------------------------------------------------------------
def _note(message: str) -> None:
    notes = st.session_state.setdefault(_NOTES_KEY, [])
    if message not in notes:
        notes.append(message)


def url_notes() -> list[str]:
    """Messages about URL parameters that were ignored in this session (shown once by the page)."""
    return st.session_state.pop(_NOTES_KEY, [])


def from_url(param: Param) -> Any:
    """The parameter's value from the URL (default when absent or unreadable)."""
    if param.name not in st.query_params:
        return param.default
    try:
        value = param.parse(st.query_params[param.name])
    except (ValueError, TypeError, KeyError) as exc:
        _note(f"URL parameter `{param.name}` ignored ({exc}); using the default")
        return param.default
    if param.choices is not None and value not in param.choices:
        _note(f"URL parameter `{param.name}={st.query_params[param.name]}` is not one of "
              f"{', '.join(map(str, param.choices))}; using the default")
        return param.default
    return value


def current(param: Param) -> Any:
    """The live value: the bound widget's state when it is on screen, else the URL's value."""
    if param.key in st.session_state:
        return st.session_state[param.key]
    return from_url(param)


def write(param: Param, value: Any) -> None:
    """Mirror a value into the URL (only when the text changes)."""
    text = param.dump(value)
    if st.query_params.get(param.name) != text:
        st.query_params[param.name] = text


def seed(param: Param, valid: Callable[[Any], bool] | None = None, fallback: Any = None) -> None:
    """Put the URL's value in the widget's state before the widget is created (once per appearance).

    ``valid`` checks the value against the widget's options; an invalid value becomes ``fallback`` (default:
    the parameter's default). A value already in the state that is no longer valid (the options changed)
    is replaced too.
    """
    fallback = param.default if fallback is None else fallback
    if param.key not in st.session_state:
        value = from_url(param)
        if valid is not None and not valid(value):
            if param.name in st.query_params:
                _note(f"URL parameter `{param.name}={st.query_params[param.name]}` does not fit the options; "
                      "using the default")
            value = fallback
        st.session_state[param.key] = value
    elif valid is not None and not valid(st.session_state[param.key]):
        st.session_state[param.key] = fallback


def bind(widget: Callable[..., Any], label: str, param: Param, *args: Any,
         valid: Callable[[Any], bool] | None = None, fallback: Any = None, **kwargs: Any) -> Any:
    """Create ``widget(label, *args, key=param.key, **kwargs)`` seeded from the URL; write its value back."""
    seed(param, valid, fallback)
    value = widget(label, *args, key=param.key, **kwargs)
    write(param, value)
    return value


def choice(widget: Callable[..., Any], label: str, param: Param, options: Sequence[Any], **kwargs: Any) -> Any:
    """A selectbox or radio over ``options`` bound to ``param`` (an unknown value falls back)."""
    options = list(options)
    fallback = param.default if param.default in options else (options[0] if options else None)
    return bind(widget, label, param, options, valid=lambda v: v in options, fallback=fallback, **kwargs)


def many(widget: Callable[..., Any], label: str, param: Param, options: Sequence[Any], **kwargs: Any) -> list[Any]:
    """A multiselect over ``options`` bound to ``param`` (values not among the options are dropped)."""
    options = list(options)
    if param.key in st.session_state:
        kept = [v for v in st.session_state[param.key] if v in options]
        if kept != list(st.session_state[param.key]):
            st.session_state[param.key] = kept
    else:
        wanted = from_url(param)
        st.session_state[param.key] = [v for v in wanted if v in options]
    value = widget(label, options, key=param.key, **kwargs)
    write(param, value)
    return value


def clamp(lo: Any, hi: Any) -> Callable[[Any], bool]:
    """Validator: a value within ``[lo, hi]`` (None passes)."""
    def ok(value: Any) -> bool:
        return value is None or lo <= value <= hi
    return ok
