"""Views whose analysis lives in other parts of journeymap: recommendations and the
conversion-sync audit.

Each imports its analysis when called. While the analysis is not part of the installed
journeymap, the view raises :class:`NoDataError` saying so, and the page shows that state.
"""

from __future__ import annotations

import importlib
from typing import Any

from journeymap.common.config import Config
from journeymap.store.store import Store
from journeymap.web.filters import Filters
from journeymap.web.views.base import NoDataError, json_value, records, require_journeys


def _function(module: str, name: str, what: str) -> Any:
    """Return ``module.name``, or raise :class:`NoDataError` when this version lacks it."""
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise NoDataError(f"{what} is not available in this version of journeymap yet") from None
    return found


def recommendations(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the recommendations of :func:`journeymap.analyses.recommend.recommendations`.

    Shape: ``recommendations``: rows of ``title, severity, why, action`` and the rest of
    each recommendation's ``to_dict()`` (``evidence`` as a list), ``skipped``: rules that
    could not run and why.
    """
    run = _function("journeymap.analyses.recommend", "recommendations", "Recommendations")
    require_journeys(store)
    data: dict[str, Any] = json_value(run(store, config).to_dict())
    notes = [f"Not checked: {reason}" for reason in data.get("skipped", [])]
    if filters.start is not None or filters.end is not None or filters.segment is not None:
        notes.append("The date and segment filters do not apply to the recommendations.")
    data["notes"] = notes
    return data


def sync_audit(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the conversion-sync audit of :func:`journeymap.activate.status.sync_status`.

    Shape: ``destinations``: rows of ``destination, platform, action``, a count per status,
    ``total`` and ``top_reasons``.
    """
    status = _function("journeymap.activate.status", "sync_status", "The conversion-sync audit")
    if not store.has_rows("sync_outbox"):
        raise NoDataError(
            "No conversion was queued for an ad platform yet. Configure sync.destinations "
            "in journeymap.yaml, then run the sync",
            "journeymap sync --dry-run  (then: journeymap sync)",
        )
    return {"destinations": records(status(store)), "notes": []}
