"""The journey map view: :func:`journeymap.report.map.journey_map` for the dashboard's filters."""

from __future__ import annotations

from typing import Any

from journeymap.common.config import Config
from journeymap.report.map import journey_map as measure_journey_map
from journeymap.store.store import Store
from journeymap.web.filters import Filters
from journeymap.web.views.base import json_value, require_journeys


def journey_map(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the journey map's :meth:`~journeymap.report.map.JourneyMap.to_dict`.

    The date range bounds the stage entry cohorts and the journeys' conversions; the segment,
    model and lookback pass on to the map. The map picks its won and pipeline kinds itself,
    so the ``kind`` filter does not apply, and a note states this when it is set.
    """
    require_journeys(store)
    measured = measure_journey_map(
        store,
        config,
        start=filters.start,
        end=filters.end,
        segment=filters.segment,
        model=filters.model,
        lookback=filters.lookback,
    )
    data: dict[str, Any] = json_value(measured.to_dict())
    if filters.kind is not None:
        data["notes"] = [
            *data["notes"],
            "The kind filter does not apply to the journey map: it counts the won and "
            "pipeline kinds of the configuration's milestones.",
        ]
    return data
