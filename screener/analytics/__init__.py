"""Analytics: performance metrics, factor regressions, event studies (pure functions over returns)."""
