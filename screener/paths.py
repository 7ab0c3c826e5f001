"""Where things live: shipped resources, the user's store and the optional snapshot."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent


def _resource_dir(name: str) -> Path:
    # A wheel ships resources inside the package; an editable install reads them from the checkout.
    inside = _PACKAGE / "_resources" / name
    return inside if inside.is_dir() else _REPO / name


def universes_dir() -> Path:
    """Directory of the universe files shipped with the package."""
    return _resource_dir("universes")


def reference_dir() -> Path:
    """Directory of the project's reference data files (elements, countries, events, exposures)."""
    return _resource_dir("reference")


def screener_home() -> Path:
    """Root of the user's data: ``$SCREENER_HOME`` or the platform's user data directory."""
    env = os.environ.get("SCREENER_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("screener", appauthor=False))


def store_dir() -> Path:
    """Directory of the on-disk market-data store."""
    return screener_home() / "store"


def snapshot_dir() -> Path | None:
    """Snapshot directory named by ``$SCREENER_SNAPSHOT`` (format of ``shared/marketdata``), if any."""
    env = os.environ.get("SCREENER_SNAPSHOT")
    return Path(env).expanduser() if env else None
