"""The journey map as one self-contained HTML page that opens offline.

The Plotly bundle is inlined once, then each figure as a ``<div>`` and its drawing script.
Nothing is loaded from a URL, so the page renders its charts with the network disabled.
Figure ids are fixed, so the same map renders to the same text.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader, StrictUndefined
from plotly.offline import get_plotlyjs

from journeymap.report.exports import format_cell, map_tables, settings_rows
from journeymap.report.html import PLOTLY_CONFIG
from journeymap.report.map import GRID_ROWS, JourneyMap

log = logging.getLogger("journeymap")

TEMPLATE_NAME = "map.html.j2"
ENTERED_COLOR = "#9db4cc"
MOVED_ON_COLOR = "#2f5d8a"
PIPELINE_COLOR = "#c9a227"
REVENUE_COLOR = "#3b8a5a"


def render_map_html(journey_map: JourneyMap, *, title: str = "Journey map") -> str:
    """Return the page of the map: the stage grid, charts and the report tables."""
    tables = map_tables(journey_map)
    grid = [
        {
            "label": row.label,
            "group": row.group,
            "numeric": row.kind in ("count", "rate", "days", "money"),
            "cells": [
                format_cell(row, stage.value(row.key), journey_map.currency)
                for stage in journey_map.stages
            ],
        }
        for row in GRID_ROWS
    ]
    context = {
        "title": title,
        "settings": settings_rows(journey_map),
        "stages": [stage.name for stage in journey_map.stages],
        "grid": grid,
        "dropoff_points": _rows(tables["dropoff_points"]),
        "top_sequences": _rows(tables["top_sequences"]),
        "channel_credit": _rows(tables["channel_credit"]),
        "notes": list(journey_map.notes),
        "figures": [
            _figure_html(stage_flow_figure(journey_map), "journeymap-map-flow"),
            _figure_html(stage_value_figure(journey_map), "journeymap-map-value"),
        ],
        "plotly_js": get_plotlyjs(),
        "version": journey_map.package_version,
    }
    return _environment().get_template(TEMPLATE_NAME).render(**context)


def write_map_html(journey_map: JourneyMap, path: Path) -> Path:
    """Write :func:`render_map_html` to ``path`` as UTF-8 and return the path."""
    path.write_text(render_map_html(journey_map), encoding="utf-8")
    log.info("wrote the journey map page %s", path)
    return path


def stage_flow_figure(journey_map: JourneyMap) -> go.Figure:
    """Return bars of the entities that entered each stage and of those that moved on."""
    names = [stage.name for stage in journey_map.stages]
    figure = go.Figure()
    figure.add_bar(
        name="entered",
        x=names,
        y=[stage.figures.entered for stage in journey_map.stages],
        marker_color=ENTERED_COLOR,
    )
    figure.add_bar(
        name="moved on",
        x=names,
        y=[stage.figures.moved_on for stage in journey_map.stages],
        marker_color=MOVED_ON_COLOR,
    )
    figure.update_layout(
        title="Entered and moved on, by stage", barmode="group", height=360, template="plotly_white"
    )
    return figure


def stage_value_figure(journey_map: JourneyMap) -> go.Figure:
    """Return bars of the attributed pipeline and revenue of each stage's touches."""
    names = [stage.name for stage in journey_map.stages]
    figure = go.Figure()
    if journey_map.pipeline_kind is not None:
        figure.add_bar(
            name="attributed pipeline",
            x=names,
            y=[stage.figures.attributed_pipeline or 0.0 for stage in journey_map.stages],
            marker_color=PIPELINE_COLOR,
        )
    figure.add_bar(
        name="attributed revenue",
        x=names,
        y=[stage.figures.attributed_revenue or 0.0 for stage in journey_map.stages],
        marker_color=REVENUE_COLOR,
    )
    figure.update_layout(
        title=f"Attributed value by stage ({journey_map.filters.model}, {journey_map.currency})",
        barmode="group",
        height=360,
        template="plotly_white",
    )
    return figure


def _figure_html(figure: go.Figure, div_id: str) -> str:
    fragment: str = pio.to_html(
        figure, full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG
    )
    return fragment


def _rows(frame: Any) -> dict[str, Any]:
    from journeymap.report.exports import _markdown_value

    return {
        "columns": [str(column) for column in frame.columns],
        "rows": [
            [
                _markdown_value(str(column), value).replace("\\|", "|")
                for column, value in record.items()
            ]
            for record in frame.to_dict("records")
        ],
    }


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("journeymap", "report/templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
