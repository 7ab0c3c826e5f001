"""Domain exceptions: every error the library raises on bad input or bad data derives from `ScreenerError`."""

from __future__ import annotations


class ScreenerError(Exception):
    """Base class for errors a user can act on (shown as one line by the CLI and the app)."""


class UniverseError(ScreenerError, ValueError):
    """A universe file is missing, unreadable or does not follow the schema."""


class ConfigError(ScreenerError, ValueError):
    """A strategy config is missing, unreadable or invalid."""


class DataError(ScreenerError):
    """Market data is missing, unusable or inconsistent."""


class ProviderError(DataError):
    """A data provider failed to deliver (network, service or parse failure)."""


class RateLimitError(ProviderError):
    """The data source refused the request because of rate limiting, even after retries."""


class OfflineError(ProviderError):
    """The data source cannot be reached."""


class SnapshotError(DataError):
    """A snapshot directory or one of its files does not follow the snapshot format."""


class StoreError(DataError):
    """The on-disk store cannot be read or written."""


class CorruptFileError(StoreError):
    """A stored file is truncated or corrupt; it has been set aside and is not used."""


class MissingDataError(DataError, KeyError):
    """Requested tickers have no data in any available source."""

    def __str__(self) -> str:
        # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""
