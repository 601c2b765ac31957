"""Rebuild a :class:`~journeymap.report.map.JourneyMap` from its ``to_dict()`` data.

The dashboard caches the map as JSON data and the snapshots store it as JSON, so the exports
of :mod:`journeymap.report.exports` need the object back. ``map_from_dict(m.to_dict())``
equals ``m`` except that moments come back as timezone-aware ``datetime`` values parsed from
their ISO 8601 text.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any

from journeymap.common.errors import ConfigError
from journeymap.report.map import (
    MAP_FORMAT,
    QUALITATIVE_ROWS,
    ChannelCredit,
    ChannelShare,
    DropoffPoint,
    JourneyMap,
    MapFilters,
    MapStage,
    PathRow,
    StageFigures,
)


def map_from_dict(data: dict[str, Any]) -> JourneyMap:
    """Return the journey map whose :meth:`~JourneyMap.to_dict` is ``data``.

    Raises:
        ConfigError: ``data`` is not of the :data:`~journeymap.report.map.MAP_FORMAT` layout,
            or lacks one of its keys (the message names the key).
    """
    if data.get("format") != MAP_FORMAT:
        raise ConfigError(
            f"not a journey map of format {MAP_FORMAT!r} (got {data.get('format')!r})",
            hint="Pass the data of JourneyMap.to_dict() or the map key of a snapshot",
        )
    try:
        return _journey_map(data)
    except KeyError as exc:
        raise ConfigError(
            f"the journey map data lacks the key {exc.args[0]!r}",
            hint="Pass the whole data of JourneyMap.to_dict()",
        ) from exc


def _journey_map(data: dict[str, Any]) -> JourneyMap:
    settings = data["filters"]
    segment = settings["segment"]
    filters = MapFilters(
        start=_day(settings["start"]),
        end=_day(settings["end"]),
        segment=None if segment is None else (segment["column"], segment["value"]),
        model=settings["model"],
        lookback_days=settings["lookback_days"],
        entity=settings["entity"],
        as_of=_moment(settings["as_of"]),
    )
    generated = _moment(data["generated_at"])
    assert generated is not None, "generated_at is never null in to_dict()"
    return JourneyMap(
        generated_at=generated,
        package_version=data["package_version"],
        filters=filters,
        won_kind=data["kinds"]["won"],
        pipeline_kind=data["kinds"]["pipeline"],
        currency=data["currency"],
        data_first=_moment(data["data_range"]["first"]),
        data_last=_moment(data["data_range"]["last"]),
        stages=tuple(_stage(stage) for stage in data["stages"]),
        top_sequences=tuple(_row(PathRow, row) for row in data["top_sequences"]),
        dropoff_points=tuple(_row(DropoffPoint, row) for row in data["dropoff_points"]),
        channel_credit=tuple(_row(ChannelCredit, row) for row in data["channel_credit"]),
        unplaced_revenue=data["unplaced_revenue"],
        notes=tuple(data["notes"]),
    )


def _stage(data: dict[str, Any]) -> MapStage:
    qualitative = data["qualitative"]
    return MapStage(
        name=data["name"],
        position=data["position"],
        owner=data["owner"],
        stall_days=data["stall_days"],
        touchpoints=tuple(_row(ChannelShare, share) for share in data["touchpoints"]),
        figures=_row(StageFigures, data["figures"]),
        **{key: tuple(qualitative[key]) for key, _ in QUALITATIVE_ROWS},
    )


def _row(kind: type[Any], data: dict[str, Any]) -> Any:
    return kind(**{spec.name: data[spec.name] for spec in fields(kind)})


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
