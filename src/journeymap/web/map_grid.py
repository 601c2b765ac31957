"""The journey map page's grid: one column per stage, one row per :data:`GRID_ROWS` entry.

:func:`map_grid` turns the map view's data (``JourneyMap.to_dict()``) into the cells that the
template draws. Rows written in ``journeymap.yaml`` become text lines, and the touchpoints met
become channels with their shares. A measured figure gets its value and the counts behind it,
such as ``310 of 362 entrants`` under a drop-off rate.
"""

from __future__ import annotations

from typing import Any

from journeymap.report.map import GRID_ROWS, GridRow

MEASURED_KINDS = ("channels", "count", "rate", "days", "money")
"""Kinds of the grid rows that journeymap measures; the others come from the configuration."""


def map_grid(data: dict[str, Any]) -> dict[str, Any]:
    """Return the grid of the map ``data``.

    Shape: ``stages`` (the names, in journey order) and ``rows``: ``key``, ``label``,
    ``group``, ``group_start`` (whether the row opens a group), ``kind``, ``measured`` and
    ``cells``: one per stage with ``stage``, ``lines`` (texts), ``channels`` (``channel``,
    ``share``, ``percent`` as text), ``text`` (a measured value as text, an en dash when
    missing) and ``detail`` (the counts behind it, or None).
    """
    stages = data["stages"]
    currency = data["currency"]
    rows = []
    group = None
    for row in GRID_ROWS:
        rows.append(
            {
                "key": row.key,
                "label": row.label,
                "group": row.group,
                "group_start": row.group != group,
                "kind": row.kind,
                "measured": row.kind in MEASURED_KINDS,
                "cells": [_cell(row, stage, currency) for stage in stages],
            }
        )
        group = row.group
    return {"stages": [stage["name"] for stage in stages], "rows": rows}


def _cell(row: GridRow, stage: dict[str, Any], currency: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"stage": stage["name"], "lines": [], "channels": [], "text": None}
    cell["detail"] = None
    if row.kind == "owner":
        cell["lines"] = [stage["owner"]] if stage["owner"] else []
        return cell
    if row.kind == "texts":
        cell["lines"] = list(stage["qualitative"].get(row.key, []))
        return cell
    if row.kind == "channels":
        cell["channels"] = [
            {
                "channel": share["channel"],
                "share": share["share"],
                "percent": format_value("rate", share["share"], currency, digits=0),
            }
            for share in stage["touchpoints"]
        ]
        return cell
    figures = stage["figures"]
    cell["text"] = format_value(row.kind, figures.get(row.key), currency)
    cell["detail"] = _detail(row.key, figures)
    return cell


def format_value(kind: str, value: Any, currency: str, *, digits: int = 1) -> str:
    """Write a measured value of the grid row kind ``kind``; a missing value is an en dash.

    Counts get thousands separators, rates are percent with ``digits`` decimals, days have
    one decimal and money is whole units followed by the currency code.
    """
    if value is None:
        return "–"
    if kind == "rate":
        return f"{float(value):.{digits}%}"
    if kind == "days":
        return f"{float(value):,.1f}"
    if kind == "money":
        return f"{float(value):,.0f} {currency}"
    return f"{int(value):,}"


def _detail(key: str, figures: dict[str, Any]) -> str | None:
    """Return the counts behind a measured figure, or None when there are none to show."""
    entered = figures["entered"]
    if key in ("dropoff_rate", "conversion_rate") and figures[key] is not None:
        if key == "dropoff_rate":
            return f"{entered - figures['moved_on']:,} of {entered:,} entrants did not move on"
        return f"{figures['moved_on']:,} of {entered:,} entrants moved on"
    if key == "stalled" and figures["stall_threshold_days"] is not None:
        source = figures["stall_threshold_source"]
        why = "configured" if source == "configured" else "75th percentile of completed stays"
        return f"over {figures['stall_threshold_days']:,.1f} days in stage ({why})"
    if key == "median_days" and figures["completed_stays"]:
        return f"of {figures['completed_stays']:,} completed stays"
    if key == "attributed_revenue" and figures["attributed_wins"] is not None:
        return f"{figures['attributed_wins']:,.1f} wins credited"
    return None
