"""Plotly figures for the report: credit by model, top paths, channel roles, spend and ROAS.

Every builder returns a ``plotly.graph_objects.Figure``, so a caller can embed it in HTML or
export it (``fig.write_image``, ``fig.write_json``). An empty input frame gives a figure with
no traces and a centred annotation that names what is missing (for example "No spend loaded"),
never ``None``, so callers need no special case. :func:`is_empty_figure` tells such a
figure apart.

Colours follow the model, not the figure: :func:`model_colors` gives each registered model a
fixed colour (by registry order), so ``linear`` has the same colour in every figure and every
report. Labels taken from the data are HTML-escaped before they reach Plotly, because Plotly
renders a subset of HTML tags in text, such as ``<b>`` and ``<a href>``. The escaped text
still displays as the original characters.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from journeymap.attribution import model_names
from journeymap.store.schema import UNATTRIBUTED

MODEL_PALETTE: tuple[str, ...] = tuple(qualitative.Safe) + tuple(qualitative.Bold[:6])
"""Plotly's qualitative ``Safe`` sequence (from CARTO's CartoColors, 11 colours), then six
colours of its ``Bold`` sequence, so that every registered model has its own colour."""

ROLE_COLORS: dict[str, str] = {"first": "#4C78A8", "middle": "#B8B8B8", "last": "#E45756"}
COST_COLOR = "#5F6B73"
ROAS_COLOR = "#222222"
EMPTY_FIGURE_META = "journeymap-empty"
"""``layout.meta`` value that marks a figure built for an empty frame."""

MAX_PATH_LABEL = 60
"""Characters of a path shown on the axis. The hover text shows the whole path."""

_BASE_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
    "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
    "hoverlabel": {"align": "left"},
}


def model_colors(models: Iterable[str]) -> dict[str, str]:
    """Map each model name to its colour.

    Registered models take the palette colour at their registry position, and other names
    take the following colours in the order given. The palette repeats past 17 models.
    """
    registered = model_names()
    colors: dict[str, str] = {}
    next_index = len(registered)
    for name in models:
        if name in colors:
            continue
        if name in registered:
            index = registered.index(name)
        else:
            index = next_index
            next_index += 1
        colors[name] = MODEL_PALETTE[index % len(MODEL_PALETTE)]
    return colors


def registry_order(models: Iterable[str]) -> list[str]:
    """Order model names as the registry lists them, with unregistered names after, as given."""
    registered = model_names()
    names = list(dict.fromkeys(models))
    known = sorted((name for name in names if name in registered), key=registered.index)
    return known + [name for name in names if name not in registered]


def empty_figure(message: str, title: str | None = None) -> go.Figure:
    """Build a figure with no data and ``message`` in the middle of the plot area."""
    fig = go.Figure()
    fig.update_layout(
        **_BASE_LAYOUT,
        title=title,
        height=260,
        meta=EMPTY_FIGURE_META,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": html.escape(message, quote=False),
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 16, "color": "#666666"},
            }
        ],
    )
    return fig


def is_empty_figure(fig: go.Figure) -> bool:
    """Return whether ``fig`` was built by :func:`empty_figure`."""
    return bool(fig.layout.meta == EMPTY_FIGURE_META)


def credit_by_model_figure(
    credit: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    currency: str = "",
) -> go.Figure:
    """Build grouped bars of each model's credit per channel, with a conversions/value toggle.

    ``credit`` has the columns ``model, channel, conversions, value``. Channels run along the
    x axis, largest mean credit first and ``(unattributed)`` last, with one bar per model.
    Bars and legend entries follow ``models``, the order in which the models ran. Models of
    ``credit`` that ``models`` leaves out come after them in :func:`registry_order`, which
    orders all models when ``models`` is None.
    Buttons above the plot switch between conversions (shown first, and in static exports)
    and value. A model missing from ``colors`` gets its colour from :func:`model_colors`.
    """
    if credit.empty:
        return empty_figure("No attributed conversions", "Credit by model")

    in_frame = list(dict.fromkeys(str(name) for name in credit["model"]))
    listed = [name for name in (models or []) if name in in_frame]
    order = list(dict.fromkeys(listed + registry_order(in_frame)))
    palette = {**model_colors(order), **(colors or {})}
    channels = channel_order(credit)
    currency = _label(currency)
    value_label = f"Value ({currency})" if currency else "Value"

    fig = go.Figure()
    for measure, unit, visible in (
        ("conversions", "conversions", True),
        ("value", currency or "value", False),
    ):
        table = credit.pivot_table(index="channel", columns="model", values=measure, aggfunc="sum")
        table = table.reindex(index=channels, columns=order).fillna(0.0)
        for model in order:
            name = _label(model)
            fig.add_trace(
                go.Bar(
                    name=name,
                    legendgroup=model,
                    x=[_label(channel) for channel in channels],
                    y=table[model].tolist(),
                    marker_color=palette[model],
                    visible=visible,
                    showlegend=visible,
                    hovertemplate=f"%{{x}}<br>{name}: %{{y:,.2f}} {unit}<extra></extra>",
                )
            )

    count = len(order)
    buttons = [
        {
            "label": "Conversions",
            "method": "update",
            "args": [
                {
                    "visible": [True] * count + [False] * count,
                    "showlegend": [True] * count + [False] * count,
                },
                {"yaxis.title.text": "Conversions"},
            ],
        },
        {
            "label": "Value",
            "method": "update",
            "args": [
                {
                    "visible": [False] * count + [True] * count,
                    "showlegend": [False] * count + [True] * count,
                },
                {"yaxis.title.text": value_label},
            ],
        },
    ]
    # The top margin leaves room for the title and, below it, the toggle buttons.
    fig.update_layout(
        **{**_BASE_LAYOUT, "margin": {**_BASE_LAYOUT["margin"], "t": 100}},
        title={"text": "Credit by model", "x": 0, "xanchor": "left", "y": 0.97, "yanchor": "top"},
        barmode="group",
        bargap=0.2,
        bargroupgap=0.05,
        height=520,
        # A vertical legend on the right stays clear of long, angled channel labels.
        legend={"title": {"text": "Model"}, "tracegroupgap": 2},
        xaxis={
            "title": {"text": "Channel"},
            "tickangle": -30 if len(channels) > 6 else 0,
            "automargin": True,
        },
        yaxis={"title": {"text": "Conversions"}, "rangemode": "tozero", "separatethousands": True},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "buttons": buttons,
                "showactive": True,
                "x": 0,
                "xanchor": "left",
                "y": 1.02,
                "yanchor": "bottom",
                "pad": {"b": 4},
            }
        ],
    )
    return fig


def top_paths_figure(top_paths: pd.DataFrame) -> go.Figure:
    """Build horizontal bars of each path's share of conversions, the top path at the top.

    ``top_paths`` has the columns ``path, conversions, value, nulls, share, conversion_rate``.
    Axis labels carry the rank and are cut to :data:`MAX_PATH_LABEL` characters, and the hover
    text shows the whole path with its conversions and conversion rate.
    """
    if top_paths.empty:
        return empty_figure("No converting paths", "Top converting paths")

    labels = [_path_label(rank, path) for rank, path in enumerate(top_paths["path"], start=1)]
    hover = [
        f"{_label(path)}<br>Share: {share:.1%}<br>Conversions: {conversions:,.2f}"
        f"<br>Conversion rate: {_percent_or_dash(rate)}"
        for path, share, conversions, rate in zip(
            top_paths["path"],
            top_paths["share"],
            top_paths["conversions"],
            top_paths["conversion_rate"],
            strict=True,
        )
    ]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            x=top_paths["share"].tolist(),
            y=labels,
            text=[f"{share:.1%}" for share in top_paths["share"]],
            textposition="auto",
            marker_color=ROLE_COLORS["first"],
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.update_layout(
        **_BASE_LAYOUT,
        title={"text": "Top converting paths", "x": 0, "xanchor": "left"},
        height=_bar_height(len(labels)),
        showlegend=False,
        xaxis={
            "title": {"text": "Share of conversions"},
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
    )
    return fig


def channel_roles_figure(channel_roles: pd.DataFrame) -> go.Figure:
    """Build 100% stacked horizontal bars of each channel's first, middle and last shares.

    ``channel_roles`` has the columns ``channel, first, middle, last, first_share,
    middle_share, last_share, role``. Channels keep the frame's order from the top down.
    """
    if channel_roles.empty:
        return empty_figure("No converting journeys with touches", "Channel roles")

    channels = [_label(channel) for channel in channel_roles["channel"]]
    roles = [_label(role) for role in channel_roles["role"]]
    fig = go.Figure()
    for position, name in (
        ("first", "First touch"),
        ("middle", "Middle touch"),
        ("last", "Last touch"),
    ):
        shares = channel_roles[f"{position}_share"].fillna(0.0).tolist()
        fig.add_trace(
            go.Bar(
                orientation="h",
                name=name,
                x=shares,
                y=channels,
                customdata=list(zip(channel_roles[position].tolist(), roles, strict=True)),
                marker_color=ROLE_COLORS[position],
                text=[f"{share:.0%}" if share >= 0.08 else "" for share in shares],
                textposition="inside",
                insidetextanchor="middle",
                hovertemplate=(
                    f"%{{y}} (%{{customdata[1]}})<br>{name}: %{{x:.1%}}"
                    "<br>Weighted touches: %{customdata[0]:,.2f}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        **_BASE_LAYOUT,
        title={"text": "Channel roles", "x": 0, "xanchor": "left"},
        barmode="stack",
        height=_bar_height(len(channels)),
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        xaxis={
            "title": {"text": "Share of the channel's touches in converting journeys"},
            "tickformat": ".0%",
            "range": [0, 1],
        },
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
    )
    return fig


def spend_roas_figure(
    spend: pd.DataFrame,
    model: str | None = None,
    *,
    colors: Mapping[str, str] | None = None,
    currency: str = "",
    grain: str = "channel",
) -> go.Figure:
    """Build bars of spend and attributed value per channel, with ROAS markers on a right axis.

    ``spend`` has the columns ``model, <grain>, conversions, value, cost, roas,
    cost_per_conversion`` (``grain`` is ``channel`` or ``campaign``). ``model`` picks the
    model whose value is shown, and defaults to the first model in the frame. A dashed line
    marks ROAS 1, where attributed value equals spend.

    Raises:
        ValueError: ``model`` has no rows in a non-empty ``spend``.
    """
    if spend.empty:
        return empty_figure("No spend loaded", "Spend and ROAS")

    known = list(dict.fromkeys(spend["model"]))
    chosen = known[0] if model is None else model
    if chosen not in known:
        raise ValueError(
            f"model {chosen!r} not found in the spend rows. Pass one of: {', '.join(known)}"
        )

    rows = spend[spend["model"] == chosen].sort_values("cost", ascending=False, kind="stable")
    labels = [_label(item) for item in rows[grain]]
    color = {**model_colors([chosen]), **(colors or {})}[chosen]
    money = f" ({_label(currency)})" if currency else ""
    chosen_text = _label(chosen)
    roas = rows["roas"].astype("float64")

    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            name="Spend",
            x=labels,
            y=rows["cost"].tolist(),
            marker_color=COST_COLOR,
            hovertemplate=f"%{{x}}<br>Spend: %{{y:,.2f}}{money}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            name=f"Attributed value ({chosen_text})",
            x=labels,
            y=rows["value"].tolist(),
            marker_color=color,
            hovertemplate=f"%{{x}}<br>Value ({chosen_text}): %{{y:,.2f}}{money}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            name="ROAS (value / spend)",
            x=labels,
            # Plotly skips None, which leaves no marker where ROAS is undefined (spend 0).
            y=[None if pd.isna(ratio) else float(ratio) for ratio in roas],
            yaxis="y2",
            mode="markers",
            marker={
                "symbol": "diamond",
                "size": 11,
                "color": ROAS_COLOR,
                "line": {"width": 1, "color": "white"},
            },
            hovertemplate="%{x}<br>ROAS: %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        **_BASE_LAYOUT,
        title={"text": f"Spend and ROAS by {grain} ({chosen_text})", "x": 0, "xanchor": "left"},
        barmode="group",
        height=480,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        xaxis={
            "title": {"text": grain.capitalize()},
            "tickangle": -30 if len(labels) > 6 else 0,
            "automargin": True,
        },
        yaxis={
            "title": {"text": f"Spend and value{money}"},
            "rangemode": "tozero",
            "separatethousands": True,
        },
        yaxis2={
            "title": {"text": "ROAS"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickmode": "auto",
            "tickformat": ".2f",
        },
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y2",
                "y0": 1,
                "y1": 1,
                "line": {"dash": "dash", "width": 1, "color": ROAS_COLOR},
                "label": {"text": "ROAS 1", "textposition": "end", "font": {"size": 11}},
            }
        ],
    )
    return fig


def channel_order(credit: pd.DataFrame) -> list[str]:
    """Order channels by mean conversions over models, largest first, ``(unattributed)`` last."""
    means = credit.groupby("channel", sort=False)["conversions"].sum() / credit["model"].nunique()
    ordered = sorted(
        means.index, key=lambda channel: (channel == UNATTRIBUTED, -means[channel], channel)
    )
    return [str(channel) for channel in ordered]


def _bar_height(bars: int) -> int:
    """Return a figure height that gives each horizontal bar about 30 pixels."""
    return max(280, 140 + 30 * bars)


def _label(text: object) -> str:
    return html.escape(str(text), quote=False)


def _path_label(rank: int, path: str) -> str:
    # The rank keeps labels unique, so two long paths that share a prefix stay two bars.
    text = path if len(path) <= MAX_PATH_LABEL else path[: MAX_PATH_LABEL - 1] + "…"
    return f"{rank}. {_label(text)}"


def _percent_or_dash(ratio: float) -> str:
    return "—" if pd.isna(ratio) else f"{ratio:.1%}"
