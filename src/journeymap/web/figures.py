"""Plotly figures of the dashboard pages, built from the views' JSON data.

Each builder returns a list of ``(element id, figure JSON)``; the page draws them with the Plotly
bundle that the app serves, and Plotly's mode bar downloads each as a PNG. A view without rows
for a figure gets no figure, and the page shows its table or empty state instead.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from journeymap.report import charts, map_html
from journeymap.report.map_json import map_from_dict

Figures = list[tuple[str, str]]

_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
    "font": {"family": "system-ui, sans-serif", "size": 12},
}


def _json(fig: go.Figure) -> str:
    text: str = fig.to_json()
    return text


def journey_map(data: dict[str, Any]) -> Figures:
    """Return the journey map export's two charts: entered and moved on, and attributed value."""
    if not data["stages"]:
        return []
    measured = map_from_dict(data)
    return [
        ("figure-map-flow", _json(map_html.stage_flow_figure(measured))),
        ("figure-map-value", _json(map_html.stage_value_figure(measured))),
    ]


def attribution(data: dict[str, Any], grain: str) -> Figures:
    """Return credit by model for ``grain`` and, for channels and campaigns, spend and ROAS."""
    figures: Figures = []
    credit = pd.DataFrame(data["credit"][grain])
    if not credit.empty:
        frame = credit.rename(columns={"key": "channel"})
        if grain != "channel":
            top = frame.groupby("channel").conversions.sum().nlargest(15).index
            frame = frame[frame.channel.isin(top)]
        fig = charts.credit_by_model_figure(frame, models=data["models"], currency=data["currency"])
        fig.update_layout(title=f"Credit by model and {grain}")
        figures.append(("figure-credit", _json(fig)))
    spend = pd.DataFrame(data["spend"][grain])
    if not spend.empty and grain in ("channel", "campaign"):
        frame = spend.rename(columns={"key": grain}).assign(model=data["model"])
        fig = charts.spend_roas_figure(frame, data["model"], currency=data["currency"], grain=grain)
        figures.append(("figure-spend", _json(fig)))
    return figures


def funnel(data: dict[str, Any]) -> Figures:
    """Return the funnel of entrants from the first stage through the last."""
    steps = data["steps"]
    if not steps or not steps[0]["entered"]:
        return []
    stages = [steps[0]["from_stage"], *(step["to_stage"] for step in steps)]
    counts = [steps[0]["entered"], *(step["converted"] for step in steps)]
    fig = go.Figure(go.Funnel(y=stages, x=counts, textinfo="value+percent initial"))
    fig.update_layout(_LAYOUT, title="Entrants reaching each stage (conversions counted per pair)")
    return [("figure-funnel", _json(fig))]


def velocity(data: dict[str, Any]) -> Figures:
    """Return the median and 75th-percentile days in each stage."""
    rows = [row for row in data["time_in_stage"] if row.get("median_days") is not None]
    if not rows:
        return []
    stages = [row["stage"] for row in rows]
    fig = go.Figure(
        [
            go.Bar(name="median days", x=stages, y=[row["median_days"] for row in rows]),
            go.Bar(name="75th percentile", x=stages, y=[row["p75_days"] for row in rows]),
        ]
    )
    fig.update_layout(_LAYOUT, title="Days in stage (completed stays)", barmode="group")
    return [("figure-velocity", _json(fig))]


def paths(data: dict[str, Any]) -> Figures:
    """Return the Sankey diagram of the top converting paths."""
    sankey = data["sankey"]
    if not sankey["links"]:
        return []
    fig = go.Figure(
        go.Sankey(
            node={"label": sankey["nodes"], "pad": 12, "thickness": 14},
            link={
                "source": [link["source"] for link in sankey["links"]],
                "target": [link["target"] for link in sankey["links"]],
                "value": [link["value"] for link in sankey["links"]],
            },
        )
    )
    fig.update_layout(_LAYOUT, title="Top converting paths, step by step (converters)", height=520)
    return [("figure-sankey", _json(fig))]


def blind_spots(data: dict[str, Any]) -> Figures:
    """Return the share of conversions without a tracked touch, per kind."""
    rows = data["by_kind"]
    if not rows:
        return []
    kinds = [row["kind"] for row in rows]
    fig = go.Figure(
        [
            go.Bar(name="no touch", x=kinds, y=[row["no_touch_share"] for row in rows]),
            go.Bar(name="direct only", x=kinds, y=[row["direct_only_share"] for row in rows]),
        ]
    )
    fig.update_layout(_LAYOUT, title="Conversions the tracking misses", barmode="group")
    fig.update_yaxes(tickformat=".0%")
    return [("figure-blind-spots", _json(fig))]


def icp(data: dict[str, Any]) -> Figures:
    """Return the win rate of each industry and, when churn data exist, its retention."""
    segments = data["segments"].get("industry", [])
    figures: Figures = []
    rows = [row for row in segments if row.get("win_rate") is not None]
    if rows:
        fig = go.Figure(
            go.Bar(x=[row["industry"] for row in rows], y=[row["win_rate"] for row in rows])
        )
        fig.update_layout(_LAYOUT, title="Win rate by industry")
        fig.update_yaxes(tickformat=".0%")
        figures.append(("figure-icp", _json(fig)))
    with_retention = [row for row in segments if row.get("retention_rate") is not None]
    if data.get("retention") and with_retention:
        fig = go.Figure(
            go.Bar(
                x=[row["industry"] for row in with_retention],
                y=[row["retention_rate"] for row in with_retention],
                text=[f"{row['customers']} customers" for row in with_retention],
            )
        )
        fig.update_layout(_LAYOUT, title="Retention by industry (customers not churned)")
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
        figures.append(("figure-icp-retention", _json(fig)))
    return figures


def timeline(data: dict[str, Any]) -> Figures:
    """Return the touches and conversions on a time axis, with stage stays as bands."""
    touches = data["touches"]
    conversions = data["conversions"]
    if not touches and not conversions:
        return []
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            name="touches",
            mode="markers",
            x=[row["occurred_at"] for row in touches],
            y=[row["channel"] or "(no channel)" for row in touches],
            text=[row["campaign"] or "" for row in touches],
            marker={"size": 10},
        )
    )
    fig.add_trace(
        go.Scatter(
            name="conversions",
            mode="markers",
            x=[row["occurred_at"] for row in conversions],
            y=[f"conversion: {row['kind']}" for row in conversions],
            marker={"size": 14, "symbol": "diamond"},
        )
    )
    for number, stay in enumerate(data["stages"]):
        fig.add_vrect(
            x0=stay["entered_at"],
            x1=stay["exited_at"]
            or max([row["occurred_at"] for row in touches + conversions] + [stay["entered_at"]]),
            fillcolor=("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#9D755D", "#E45756")[
                number % 6
            ],
            opacity=0.08,
            line_width=0,
            annotation_text=stay["stage"],
            annotation_position="top left",
        )
    fig.update_layout(_LAYOUT, title="Timeline", height=420)
    return [("figure-timeline", _json(fig))]
