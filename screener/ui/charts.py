"""Plotly figures of the app (no pyplot): each takes library outputs and only draws them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from screener.analytics.metrics import drawdown_series

_HEIGHT = 380
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend": {"orientation": "h", "y": -0.15},
           "hovermode": "x unified"}


def _figure(title: str, height: int = _HEIGHT) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, height=height, **_LAYOUT)
    return fig


def membership_matrix(members: Mapping[str, Sequence[str]], rows: Sequence[str], title: str) -> go.Figure:
    """Heatmap with one column per member and one row per category (1 where the member has it)."""
    tickers = list(members)
    used = [r for r in rows if any(r in members[t] for t in tickers)]
    z = [[1 if r in members[t] else 0 for t in tickers] for r in used]
    fig = _figure(title, height=max(220, 60 + 28 * len(used)))
    fig.add_trace(go.Heatmap(z=z, x=tickers, y=used, colorscale=[[0, "#f4f4f6"], [1, "#1f77b4"]], showscale=False,
                             xgap=2, ygap=2, hovertemplate="%{x} · %{y}: %{z}<extra></extra>"))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(dtick=1, tickangle=-60, tickfont={"size": 10})
    fig.update_yaxes(autorange="reversed")
    return fig


def exposure_heatmap(weights: pd.DataFrame, title: str) -> go.Figure:
    """Element x member heatmap of exposure weights (``weights``: rows elements, columns tickers)."""
    fig = _figure(title, height=max(260, 60 + 22 * len(weights.index)))
    fig.add_trace(go.Heatmap(z=weights.to_numpy(), x=list(weights.columns), y=list(weights.index),
                             colorscale="Blues", zmin=0, zmax=1, xgap=1, ygap=1, colorbar={"title": "weight"},
                             hovertemplate="%{x} · %{y}: %{z:.2f}<extra></extra>"))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(dtick=1, tickangle=-60, tickfont={"size": 10})
    fig.update_yaxes(autorange="reversed", dtick=1)
    return fig


def score_breakdown(contrib: pd.DataFrame, title: str) -> go.Figure:
    """Stacked horizontal bars: each selected-or-passed name's score as the sum of its factor contributions."""
    fig = _figure(title, height=max(260, 80 + 24 * len(contrib)))
    for col in contrib.columns:
        fig.add_trace(go.Bar(y=list(contrib.index), x=contrib[col].to_numpy(), name=col, orientation="h"))
    fig.update_layout(barmode="relative", hovermode="y unified")
    fig.update_yaxes(autorange="reversed")
    return fig


def equity_curves(equity: pd.DataFrame, log_scale: bool, title: str = "Growth of 1") -> go.Figure:
    """Equity curves of the strategy and its benchmarks (all from 1.0)."""
    fig = _figure(title, height=420)
    for col in equity.columns:
        s = equity[col].dropna()
        fig.add_trace(go.Scatter(x=s.index, y=s.to_numpy(), name=str(col), mode="lines",
                                 line={"width": 2.5 if col == equity.columns[0] else 1.5}))
    fig.update_yaxes(type="log" if log_scale else "linear", title="value (log)" if log_scale else "value")
    return fig


def drawdowns(equity: pd.DataFrame, title: str = "Drawdown from the running peak") -> go.Figure:
    """Underwater curves: each equity curve against its running peak.

    The series comes from `screener.analytics.metrics.drawdown_series`.
    """
    fig = _figure(title, height=300)
    for col in equity.columns:
        s = equity[col].dropna()
        fig.add_trace(go.Scatter(x=s.index, y=drawdown_series(s).to_numpy(), name=str(col), mode="lines",
                                 fill="tozeroy" if col == equity.columns[0] else None))
    fig.update_yaxes(tickformat=".0%")
    return fig


def weights_area(weights: pd.DataFrame, title: str = "Weights over time (drifted, daily)") -> go.Figure:
    """Stacked areas of the daily holdings weights; what is left to 100% is cash."""
    fig = _figure(title, height=420)
    held = weights.loc[:, weights.fillna(0).abs().sum() > 0]
    for col in held.columns:
        fig.add_trace(go.Scatter(x=held.index, y=held[col].fillna(0).to_numpy(), name=str(col), mode="lines",
                                 stackgroup="w", line={"width": 0.5}))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig


def turnover_bars(turnover: pd.Series, title: str = "Turnover per rebalance") -> go.Figure:
    """One bar per trade date: traded value / 2 / portfolio value."""
    fig = _figure(title, height=280)
    fig.add_trace(go.Bar(x=turnover.index, y=turnover.to_numpy(), name="turnover"))
    fig.update_yaxes(tickformat=".0%")
    return fig


def coefficients(table: pd.DataFrame, title: str) -> go.Figure:
    """Coefficients with their confidence intervals (HAC standard errors)."""
    fig = _figure(title, height=300)
    fig.add_trace(go.Scatter(
        x=table["term"], y=table["coef"], mode="markers", marker={"size": 10}, name="coef",
        error_y={"type": "data", "symmetric": False, "array": (table["ci_high"] - table["coef"]).to_numpy(),
                 "arrayminus": (table["coef"] - table["ci_low"]).to_numpy()}))
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(hovermode="closest")
    return fig


def rolling_betas(betas: pd.DataFrame, title: str) -> go.Figure:
    """Rolling OLS slopes, one line per factor."""
    fig = _figure(title, height=340)
    for col in betas.columns:
        s = betas[col].dropna()
        fig.add_trace(go.Scatter(x=s.index, y=s.to_numpy(), name=str(col), mode="lines"))
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    return fig


def car_path(path: pd.DataFrame, title: str) -> go.Figure:
    """Mean cumulative abnormal return by event day with its confidence band."""
    fig = _figure(title, height=400)
    x = path["rel_day"].to_numpy()
    fig.add_trace(go.Scatter(x=x, y=path["upper"].to_numpy(), mode="lines", line={"width": 0}, name="upper",
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=path["lower"].to_numpy(), mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(31,119,180,0.2)", name="95% band"))
    fig.add_trace(go.Scatter(x=x, y=path["mean_car"].to_numpy(), mode="lines+markers", name="mean CAR",
                             line={"color": "#1f77b4", "width": 2.5}))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.add_hline(y=0, line_color="grey", line_width=1)
    fig.update_xaxes(title="trading days relative to the event")
    fig.update_yaxes(tickformat=".1%")
    return fig


def coverage(status: pd.DataFrame, title: str = "Coverage in the store") -> go.Figure:
    """One bar per ticker from its first to its last stored date (red when stale or with problems)."""
    ok = status.dropna(subset=["first_date", "last_date"])
    start = pd.to_datetime(ok["first_date"])
    end = pd.to_datetime(ok["last_date"])
    colors = ["#d62728" if (s or p) else "#1f77b4" for s, p in zip(ok["stale"], ok["problems"], strict=True)]
    fig = _figure(title, height=max(260, 40 + 18 * len(ok)))
    fig.add_trace(go.Bar(y=list(ok.index), x=(end - start).dt.days * 86_400_000, base=start, orientation="h",
                         marker_color=colors, hovertext=[f"{a.date()} to {b.date()}" for a, b in zip(start, end,
                                                                                                      strict=True)],
                         hoverinfo="y+text", name="stored"))
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest", showlegend=False)
    return fig
