"""Builders for small stores and journeys in tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from journeymap.attribution import attribute, credit_by, resolve_models
from journeymap.channels.rules import ChannelClassifier
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys, materialize
from journeymap.sources.touchpoints import import_touchpoints
from journeymap.store.store import Store

T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def at(days: float = 0.0, minutes: float = 0.0) -> str:
    """Return an ISO timestamp ``days`` and ``minutes`` after 2024-03-01 00:00 UTC."""
    moment = T0 + pd.Timedelta(days=days) + pd.Timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


def write_rows(rows: Sequence[dict[str, Any]], folder: Path, name: str = "touchpoints.csv") -> Path:
    """Write touchpoint rows to a CSV file and return its path."""
    path = folder / name
    pd.DataFrame(list(rows)).to_csv(path, index=False)
    return path


def journeys_of(
    store: Store, rows: Sequence[dict[str, Any]], folder: Path, **options: Any
) -> Journeys:
    """Import rows into ``store`` and return its stored journeys."""
    import_touchpoints(store, write_rows(rows, folder))
    return materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions(**options)))


def channel_credit(
    journeys: Journeys,
    model: str,
    parameters: dict[str, Any] | None = None,
    grain: str = "channel",
) -> dict[str, tuple[float, float]]:
    """Return {grain value: (conversions, value)} credited by one model."""
    models = resolve_models([model], {model: parameters or {}})
    frame = credit_by(attribute(journeys, models), grain).to_pandas()
    return {getattr(row, grain): (row.conversions, row.value) for row in frame.itertuples()}
