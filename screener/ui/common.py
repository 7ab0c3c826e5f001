"""Shared pieces of the pages: the universe choice (shipped or uploaded) and how errors are shown."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from screener.exceptions import ScreenerError, UniverseError
from screener.paths import screener_home
from screener.ui import state
from screener.ui.cache import file_token
from screener.universe import Universe, list_universes, load_universe, parse_universe

log = logging.getLogger("screener.ui")

MAX_UPLOAD_BYTES = 256 * 1024
"""Largest universe file accepted for upload (the shipped ones are under 40 KB)."""
UPLOAD_PREFIX = "upload:"
DEFAULT_UNIVERSE = "rare_earths"
UNIVERSE = state.Param("universe", DEFAULT_UNIVERSE)
_LABELS = "_upload_labels"


@dataclass(frozen=True)
class UniverseRef:
    """A universe as the pages use it.

    Attributes
    ----------
    value : str
        What the URL holds: a shipped name or ``upload:<sha>``.
    arg : str
        What `load_universe` and strategy configs take: the name, or the uploaded file's path.
    token : str
        Cache token of the file (size and modification time).
    label : str
        Shown in the selector.
    """

    value: str
    arg: str
    token: str
    label: str

    def load(self) -> Universe:
        """The validated universe."""
        return load_universe(self.arg)

    @property
    def shipped(self) -> bool:
        """True for a universe shipped with the package."""
        return not self.value.startswith(UPLOAD_PREFIX)


def uploads_dir() -> Path:
    """Where uploaded universe files are kept (content-addressed): ``$SCREENER_HOME/uploads``."""
    return screener_home() / "uploads"


def _upload_path(value: str) -> Path:
    return uploads_dir() / f"{value.removeprefix(UPLOAD_PREFIX)}.toml"


def resolve(value: str) -> UniverseRef | None:
    """The universe a URL value names, or None when it is unknown (or the upload is gone)."""
    if value.startswith(UPLOAD_PREFIX):
        sha = value.removeprefix(UPLOAD_PREFIX)
        path = _upload_path(value)
        if not sha.isalnum() or not path.is_file():
            return None
        label = st.session_state.get(_LABELS, {}).get(value) or f"uploaded ({sha[:8]})"
        return UniverseRef(value, str(path), file_token(path), label)
    from screener.paths import universes_dir

    if value not in list_universes():
        return None
    return UniverseRef(value, value, file_token(universes_dir() / f"{value}.toml"), value)


def _options() -> list[str]:
    options = list_universes()
    options += [v for v in st.session_state.get(_LABELS, {}) if v not in options]
    wanted = st.query_params.get(UNIVERSE.name, "")
    if wanted.startswith(UPLOAD_PREFIX) and wanted not in options and resolve(wanted) is not None:
        options.append(wanted)
    return options


def select_universe(container=st.sidebar) -> UniverseRef:
    """The universe selector (sidebar), bound to the ``universe`` URL parameter."""
    options = _options()
    if not options:
        st.error("No universe files found: the package's `universes/` directory is missing.")
        st.stop()
    labels = st.session_state.get(_LABELS, {})
    value = state.choice(container.selectbox, "Universe", UNIVERSE, options,
                         format_func=lambda v: labels.get(v, v if not v.startswith(UPLOAD_PREFIX) else "uploaded"),
                         help="A shipped universe, or one uploaded on the Universe page.")
    ref = resolve(value)
    if ref is None:
        st.error(f"Universe {value!r} is not available on this server; pick another.")
        st.stop()
    return ref


def accept_upload(name: str, data: bytes) -> tuple[str | None, str | None]:
    """Validate an uploaded universe file and keep it; returns ``(url value, None)`` or ``(None, error)``.

    The file must be at most `MAX_UPLOAD_BYTES` and pass `screener.universe.parse_universe` (errors name the
    file, the member and the field).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        return None, (f"{name}: {len(data):,} bytes is over the {MAX_UPLOAD_BYTES // 1024} KB limit for a "
                      "universe file")
    try:
        uni = parse_universe(data, path=name)
    except UniverseError as exc:
        return None, str(exc)
    sha = hashlib.sha256(data).hexdigest()[:16]
    value = UPLOAD_PREFIX + sha
    path = _upload_path(value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    except OSError as exc:
        return None, f"{name}: cannot keep the uploaded file in {path.parent}: {exc}"
    st.session_state.setdefault(_LABELS, {})[value] = f"{uni.name} (uploaded: {name})"
    return value, None


def run_page(render: Callable[[UniverseRef], None], ref: UniverseRef) -> None:
    """Render a page; library errors become one-line messages and anything else a short notice, never a traceback."""
    try:
        render(ref)
    except ScreenerError as exc:
        st.error(str(exc))
        _hint_if_no_data()
    except (ValueError, TypeError, KeyError) as exc:
        log.exception("page error")
        st.error(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # the last line of defence: the user gets a message, the log the traceback
        log.exception("unexpected page error")
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Details are in the server log.")


def _hint_if_no_data() -> None:
    from screener.data.store import Store
    from screener.paths import snapshot_dir

    if snapshot_dir() is None and not Store().tickers():
        st.info("The store is empty and no snapshot is configured: import a snapshot directory on the Data page "
                "(or run `screener data import DIR`), or refresh from Yahoo Finance when it is reachable.")


def show_error(exc: BaseException) -> None:
    """One clear line for an error met while building a part of a page."""
    if isinstance(exc, ScreenerError):
        st.error(str(exc))
        _hint_if_no_data()
    else:
        log.warning("page part failed: %s", exc)
        st.error(f"{type(exc).__name__}: {exc}")
