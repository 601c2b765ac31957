"""The dashboard's views: JSON data computed from the store, shared by the pages and the API.

:data:`VIEWS` maps each view's name to its function ``(store, config, filters) -> dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from journeymap.common.config import Config
from journeymap.store.store import Store
from journeymap.web.filters import Filters
from journeymap.web.views.attribution import attribution
from journeymap.web.views.base import NoDataError, NotFoundError, store_summary
from journeymap.web.views.journey import funnel, icp, velocity
from journeymap.web.views.journey_map import journey_map
from journeymap.web.views.paths import blind_spots, paths
from journeymap.web.views.pending import recommendations, sync_audit
from journeymap.web.views.timeline import entities, timeline

View = Callable[[Store, Config, Filters], dict[str, Any]]

VIEWS: dict[str, View] = {
    "map": journey_map,
    "attribution": attribution,
    "funnel": funnel,
    "velocity": velocity,
    "paths": paths,
    "blind-spots": blind_spots,
    "icp": icp,
    "entities": entities,
    "recommendations": recommendations,
    "sync": sync_audit,
}

__all__ = ["VIEWS", "NoDataError", "NotFoundError", "View", "store_summary", "timeline"]
