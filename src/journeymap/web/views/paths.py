"""The paths view (top converting paths and their Sankey diagram) and the blind-spots view."""

from __future__ import annotations

import itertools
from typing import Any

from journeymap import api
from journeymap.analyses.converting_paths import paths_before
from journeymap.analyses.paths import PATH_SEPARATOR
from journeymap.common.config import Config
from journeymap.store.store import Store
from journeymap.web.filters import Filters
from journeymap.web.views.base import (
    NoDataError,
    chosen_kind,
    filtered_journeys,
    journey_kinds,
    records,
    require_journeys,
)

TOP_PATHS = 15
"""Paths listed and drawn; the rest are summed in one ``(other paths)`` row."""

SANKEY_STEPS = 6
"""Steps of a path the Sankey diagram draws; longer paths end in a ``…`` node."""


def paths(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the top channel paths of the converting entities and a Sankey diagram of them.

    Shape: ``kind``, ``paths``: rows of ``path, converters, share, converting_journeys,
    non_converting_journeys, conversion_rate`` (the last row sums the other paths), and
    ``sankey``: ``nodes`` (labels, ``step N: channel``) and ``links`` (``source`` and
    ``target`` node indexes, ``value`` in converters) of the listed paths.
    """
    require_journeys(store)
    kind = chosen_kind(store, config, filters)
    if kind is None:
        raise NoDataError("No journey has a conversion yet", "journeymap import touchpoints FILE")
    journeys = filtered_journeys(store, filters, kind)
    touches = store.table("journey_touches").semi_join(journeys.select("journey_id"), "journey_id")
    frame = paths_before(journeys, touches, kind=kind, top=TOP_PATHS, collapse=True)
    notes = ["Consecutive touches of one channel count as one step."]
    return {
        "kind": kind,
        "kinds": journey_kinds(store),
        "paths": records(frame),
        "sankey": sankey(records(frame)),
        "notes": notes,
    }


def sankey(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the nodes and links of a Sankey diagram of ``path`` rows weighted by converters.

    Each step position gets its own node per channel, so a path reads left to right; every
    path ends in a ``converted`` node. The ``(other paths)`` row is left out.
    """
    nodes: list[str] = []
    index: dict[str, int] = {}
    weights: dict[tuple[int, int], float] = {}

    def node(label: str) -> int:
        if label not in index:
            index[label] = len(nodes)
            nodes.append(label)
        return index[label]

    for row in rows:
        path = str(row["path"])
        if path.startswith("(") or not row.get("converters"):
            continue
        steps = path.split(PATH_SEPARATOR)
        if len(steps) > SANKEY_STEPS:
            steps = [*steps[: SANKEY_STEPS - 1], "…"]
        labels = [f"{number}: {step}" for number, step in enumerate(steps, start=1)]
        labels.append("converted")
        for source, target in itertools.pairwise(labels):
            pair = (node(source), node(target))
            weights[pair] = weights.get(pair, 0.0) + float(row["converters"])
    links = [
        {"source": source, "target": target, "value": value}
        for (source, target), value in weights.items()
    ]
    return {"nodes": nodes, "links": links}


def blind_spots(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the tracking-health tables of :func:`journeymap.api.blind_spots`.

    Shape: ``by_kind`` (conversions without a touch or with direct touches only, per kind),
    ``click_ids`` (click ids per platform without matching spend), ``agreement`` (self-reported
    against tracked first-touch channels), ``undercount`` and ``notes``.
    """
    require_journeys(store)
    report = api.blind_spots(store, config)
    agreement = report.agreement.reset_index()
    agreement.columns = [str(column) for column in agreement.columns]
    notes = list(report.notes)
    if filters.start is not None or filters.end is not None or filters.segment is not None:
        notes.append("The date and segment filters do not apply to the blind spots.")
    return {
        "by_kind": records(report.by_kind),
        "click_ids": records(report.click_ids),
        "agreement": records(agreement),
        "undercount": records(report.undercount),
        "notes": notes,
    }
