"""Market data: providers (Yahoo, snapshot), the on-disk store, FX, calendars and quality checks."""
