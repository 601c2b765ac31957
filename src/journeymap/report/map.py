"""The journey map as data: one column per stage, qualitative rows beside measured ones.

:func:`journey_map` measures the configured stages on the store and returns a frozen
:class:`JourneyMap`. Its :meth:`JourneyMap.to_dict` is the JSON contract that the exports, the
snapshots, the dashboard and the REST API share; ``docs/map.md`` lists every key.

What each figure means (the measurements are in :mod:`journeymap.report.map_measures`):

- Stage figures are by **entry cohort**: the entities (people or accounts) that entered the
  stage within the date range, followed up to ``as_of``, the end of the range or the last stage
  entry in the data, whichever is earlier. An entity has ``moved_on`` when it reached any later
  stage by ``as_of``. Stages may be skipped, so Awareness to Decision counts as moving on.
  ``conversion_rate`` is moved-on over entered, and ``dropoff_rate`` is its complement. Both are
  null for a stage that no later stage in the data follows, and for one that nobody entered.
- ``median_days`` covers completed stays (left for a later stage by ``as_of``). ``stalled``
  counts the entrants still in the stage at ``as_of`` after more than the stall threshold: the
  stage's ``stall_days`` when configured, else the 75th percentile of its completed stays.
- Touchpoints met are the channels of the touches of winning journeys (converting journeys of
  the won kind), placed in the stage the entity was in when the touch happened.
- Attributed pipeline and revenue are the value credit, under the chosen model, of those
  placed touches in the opportunity kind and the won kind.
- Drop-off points rank stages by ``revenue_impact``: the entrants that did not move on, times
  the won value per entrant that did move on (won conversions after entering the stage).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd

from journeymap import __version__
from journeymap.common.config import Config, StageConfig
from journeymap.common.errors import ConfigError
from journeymap.common.timeutil import utc_now
from journeymap.store.store import Store

MAP_FORMAT = "journeymap.map/1"
"""Name and version of the :meth:`JourneyMap.to_dict` layout. Renaming or removing a key
bumps the version; new keys may be added within one."""

QUALITATIVE_ROWS: tuple[tuple[str, str], ...] = (
    ("doing", "Doing"),
    ("thinking", "Thinking"),
    ("feeling", "Feeling"),
    ("pain_points", "Pain points"),
    ("opportunities", "Opportunities"),
    ("expected_touchpoints", "Expected touchpoints"),
)
"""The qualitative rows configured per stage in YAML: the field and its row label."""

TOP_CHANNELS = 5
"""Channels listed per stage under touchpoints met."""

TOP_SEQUENCES = 5
"""Touch sequences of winning customers listed, before the ``(other paths)`` row."""

TOP_DROPOFF_POINTS = 3
"""Drop-off points listed, largest revenue impact first."""

DEFAULT_MODEL = "markov"
"""Model of the attributed figures when the configuration lists ``all`` models."""

CellKind = Literal["owner", "texts", "channels", "count", "rate", "days", "money"]


@dataclass(frozen=True)
class GridRow:
    """One row of the stage grid that every export draws: a stage field and how to show it."""

    key: str
    label: str
    group: str
    """Heading the row sits under: ``Stage``, ``Customer``, ``Measured``, ``Friction`` or
    ``Owner metrics``."""
    kind: CellKind


GRID_ROWS: tuple[GridRow, ...] = (
    GridRow("owner", "Owner", "Stage", "owner"),
    GridRow("doing", "Doing", "Customer", "texts"),
    GridRow("thinking", "Thinking", "Customer", "texts"),
    GridRow("feeling", "Feeling", "Customer", "texts"),
    GridRow("expected_touchpoints", "Expected touchpoints", "Customer", "texts"),
    GridRow("touchpoints", "Touchpoints met (share of winning touches)", "Measured", "channels"),
    GridRow("pain_points", "Pain points", "Friction", "texts"),
    GridRow("dropoff_rate", "Drop-off to a later stage", "Friction", "rate"),
    GridRow("stalled", "Stalled", "Friction", "count"),
    GridRow("opportunities", "Opportunities", "Friction", "texts"),
    GridRow("entered", "Entered", "Owner metrics", "count"),
    GridRow("conversion_rate", "Conversion to a later stage", "Owner metrics", "rate"),
    GridRow("median_days", "Median days in stage", "Owner metrics", "days"),
    GridRow("attributed_pipeline", "Attributed pipeline", "Owner metrics", "money"),
    GridRow("attributed_revenue", "Attributed revenue", "Owner metrics", "money"),
)
"""Rows of the stage grid in display order. Keys name a :class:`MapStage` or
:class:`StageFigures` field."""


@dataclass(frozen=True)
class ChannelShare:
    """A channel met in a stage: its touches in winning journeys and their share of the stage's."""

    channel: str
    touches: int
    share: float


@dataclass(frozen=True)
class StageFigures:
    """The measured figures of one stage; money is in the map's currency, days are float days."""

    entered: int
    """Entities that entered the stage within the date range."""
    moved_on: int
    """Of those, the ones that reached a later stage by ``as_of``."""
    in_stage: int
    """Of those, the ones still in the stage at ``as_of`` (``entered - moved_on``)."""
    conversion_rate: float | None
    dropoff_rate: float | None
    completed_stays: int
    median_days: float | None
    stalled: int | None
    """Entrants in the stage for longer than the threshold at ``as_of``; None without one."""
    stall_threshold_days: float | None
    stall_threshold_source: Literal["configured", "p75"] | None
    attributed_pipeline: float | None
    """Value credit of opportunity conversions on touches in the stage; None without the kind."""
    attributed_revenue: float | None
    """Value credit of won conversions on touches in the stage; None without the kind."""
    attributed_wins: float | None
    """Won conversions credited to touches in the stage (fractional under most models)."""


@dataclass(frozen=True)
class MapStage:
    """One column of the map: the configured stage and what was measured in it."""

    name: str
    position: int
    owner: str
    stall_days: float | None
    doing: tuple[str, ...]
    thinking: tuple[str, ...]
    feeling: tuple[str, ...]
    pain_points: tuple[str, ...]
    opportunities: tuple[str, ...]
    expected_touchpoints: tuple[str, ...]
    touchpoints: tuple[ChannelShare, ...]
    figures: StageFigures

    def value(self, key: str) -> Any:
        """Return a grid row's value: a stage field, else a :class:`StageFigures` field."""
        if key in {item.name for item in fields(MapStage)}:
            return getattr(self, key)
        return getattr(self.figures, key)


@dataclass(frozen=True)
class PathRow:
    """A touch sequence of winning customers.

    See :func:`~journeymap.analyses.converting_paths.paths_before` for the columns.
    """

    path: str
    converters: int
    share: float
    converting_journeys: int
    non_converting_journeys: int
    conversion_rate: float | None


@dataclass(frozen=True)
class DropoffPoint:
    """A stage where entrants stop, with the won value they stand to lose."""

    rank: int
    stage: str
    entered: int
    moved_on: int
    dropped: int
    """Entrants that had not moved on by ``as_of`` (``entered - moved_on``)."""
    dropoff_rate: float
    value_per_mover: float
    """Won value after entering the stage, per entrant that moved on."""
    revenue_impact: float
    """``dropped * value_per_mover``, in the map's currency."""


@dataclass(frozen=True)
class ChannelCredit:
    """One channel's credit for the won conversions in range, under the chosen model."""

    channel: str
    conversions: float
    value: float
    share: float
    """The channel's credited conversions over all credited won conversions."""


@dataclass(frozen=True)
class MapFilters:
    """The filters and settings that produced a map."""

    start: date | None
    """First day of the range (UTC, inclusive); None for the start of the data."""
    end: date | None
    """Last day of the range (UTC, inclusive); None for the end of the data."""
    segment: tuple[str, str] | None
    """Account column and value, such as ``("industry", "Software")``; None for everyone."""
    model: str
    lookback_days: float
    entity: str
    """Whose stage timeline the figures count: ``person`` or ``account``."""
    as_of: datetime | None
    """Moment the figures are taken at; None when the store has no stage entries."""


@dataclass(frozen=True)
class JourneyMap:
    """The journey map: stages as columns, plus the report tables a go-to-market team reviews."""

    generated_at: datetime
    package_version: str
    filters: MapFilters
    won_kind: str | None
    pipeline_kind: str | None
    currency: str
    data_first: datetime | None
    """First stage entry in the store (any segment, any date)."""
    data_last: datetime | None
    stages: tuple[MapStage, ...]
    top_sequences: tuple[PathRow, ...]
    dropoff_points: tuple[DropoffPoint, ...]
    channel_credit: tuple[ChannelCredit, ...]
    unplaced_revenue: float | None
    """Won value credit not placed in any stage: unattributed conversions, or touches of an
    entity without a stay at that moment."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def stage(self, name: str) -> MapStage:
        """Return the stage called ``name``.

        Raises:
            ConfigError: no stage has that name; the message lists the stages.
        """
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(
            f"no stage {name!r} in the journey map",
            hint=f"Stages: {', '.join(stage.name for stage in self.stages)}",
        )

    def __iter__(self) -> Iterator[MapStage]:
        return iter(self.stages)

    def to_dict(self) -> dict[str, Any]:
        """Return the map as JSON-ready data: numbers as numbers, NaN as None, dates ISO 8601."""
        return {
            "format": MAP_FORMAT,
            "generated_at": _iso(self.generated_at),
            "package_version": self.package_version,
            "filters": {
                "start": _iso(self.filters.start),
                "end": _iso(self.filters.end),
                "segment": (
                    None
                    if self.filters.segment is None
                    else {"column": self.filters.segment[0], "value": self.filters.segment[1]}
                ),
                "model": self.filters.model,
                "lookback_days": self.filters.lookback_days,
                "entity": self.filters.entity,
                "as_of": _iso(self.filters.as_of),
            },
            "kinds": {"won": self.won_kind, "pipeline": self.pipeline_kind},
            "currency": self.currency,
            "data_range": {"first": _iso(self.data_first), "last": _iso(self.data_last)},
            "stages": [_stage_dict(stage) for stage in self.stages],
            "top_sequences": [_plain(row) for row in self.top_sequences],
            "dropoff_points": [_plain(row) for row in self.dropoff_points],
            "channel_credit": [_plain(row) for row in self.channel_credit],
            "unplaced_revenue": _number(self.unplaced_revenue),
            "notes": list(self.notes),
        }


def _stage_dict(stage: MapStage) -> dict[str, Any]:
    return {
        "name": stage.name,
        "position": stage.position,
        "owner": stage.owner,
        "stall_days": _number(stage.stall_days),
        "qualitative": {key: list(getattr(stage, key)) for key, _ in QUALITATIVE_ROWS},
        "touchpoints": [_plain(share) for share in stage.touchpoints],
        "figures": _plain(stage.figures),
    }


def _plain(item: Any) -> dict[str, Any]:
    return {spec.name: _number(getattr(item, spec.name)) for spec in fields(item)}


def _number(value: Any) -> Any:
    """Return ``value`` with NaN as None and numpy scalars as Python numbers."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):
        return _number(value.item())
    return value


def _iso(moment: date | datetime | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return pd.Timestamp(moment).isoformat()
    return moment.isoformat()


def choose_model(config: Config, model: str | None) -> str:
    """Return the model of the attributed figures: ``model``, the first configured, or Markov.

    Raises:
        ModelError: the name is not a registered model.
    """
    from journeymap.attribution.base import create_model

    if model is None:
        configured = [
            part.strip().lower()
            for name in config.attribution.models
            for part in name.split(",")
            if part.strip()
        ]
        model = configured[0] if configured and configured[0] != "all" else DEFAULT_MODEL
    create_model(model, config.attribution.parameters.get(model))
    return model


def parse_day(value: date | str | None, *, location: str) -> date | None:
    """Return ``value`` as a date; strings are ``YYYY-MM-DD``.

    Raises:
        ConfigError: the string is not a date.
    """
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"{value!r} is not a date",
            location=location,
            hint="Write it as YYYY-MM-DD, for example 2026-03-31",
        ) from None


def parse_segment(segment: str | tuple[str, str] | None) -> tuple[str, str] | None:
    """Return a ``COLUMN=VALUE`` segment as ``(column, value)``.

    Raises:
        ConfigError: the text has no ``=``, or an empty column or value.
    """
    if segment is None or isinstance(segment, tuple):
        return segment
    column, sign, value = segment.partition("=")
    if not sign or not column.strip() or not value.strip():
        raise ConfigError(
            f"segment {segment!r} is not COLUMN=VALUE",
            location="--segment",
            hint="Name an account column and a value, for example industry=Software",
        )
    return column.strip(), value.strip()


def journey_map(
    store: Store,
    config: Config | None = None,
    *,
    start: date | str | None = None,
    end: date | str | None = None,
    segment: str | tuple[str, str] | None = None,
    model: str | None = None,
    lookback: float | None = None,
    entity: str | None = None,
) -> JourneyMap:
    """Measure the configured stages on ``store`` and return the journey map.

    ``start`` and ``end`` are UTC days, both inclusive. ``segment`` is an account column and a
    value (``"industry=Software"`` or a pair); the columns are ``industry``, ``size_band``,
    ``region`` and ``plan``. ``model`` defaults to the first configured model, or Markov when
    the configuration lists ``all``. ``lookback`` (days) defaults to the last build's; another
    value builds the journeys again in memory. ``entity`` defaults to ``account`` when the
    store has deal stages (they reach accounts only), else to the journeys' entity. Nothing is
    written to the store: stored credits are used when they match the model and lookback,
    and are computed in memory otherwise.

    Raises:
        StoreError: nothing was imported.
        ConfigError: an invalid date, segment, entity or lookback, or a range that ends
            before it starts.
        ModelError: an unknown model.
    """
    from journeymap.report.map_measures import measure_map

    config = config or Config()
    first_day = parse_day(start, location="--start")
    last_day = parse_day(end, location="--end")
    if first_day is not None and last_day is not None and last_day < first_day:
        raise ConfigError(
            f"the range ends ({last_day}) before it starts ({first_day})",
            location="--end",
            hint="Give an end date on or after the start date",
        )
    if lookback is not None and not lookback > 0:
        raise ConfigError(
            f"lookback {lookback:g} is not above 0",
            location="--lookback-days",
            hint="Give the lookback window in days, such as 90",
        )
    if entity is not None and entity not in ("person", "account"):
        raise ConfigError(
            f"unknown entity {entity!r}", location="--entity", hint="Use person or account"
        )
    measured = measure_map(
        store,
        config,
        start=first_day,
        end=last_day,
        segment=parse_segment(segment),
        model=choose_model(config, model),
        lookback=lookback,
        entity=entity,
    )
    stages = tuple(
        _map_stage(index, stage, measured.figures[stage.name], measured.channels[stage.name])
        for index, stage in enumerate(config.stages)
    )
    return JourneyMap(
        generated_at=utc_now(),
        package_version=__version__,
        filters=measured.filters,
        won_kind=measured.won_kind,
        pipeline_kind=measured.pipeline_kind,
        currency=config.currency,
        data_first=measured.data_first,
        data_last=measured.data_last,
        stages=stages,
        top_sequences=measured.top_sequences,
        dropoff_points=measured.dropoff_points,
        channel_credit=measured.channel_credit,
        unplaced_revenue=measured.unplaced_revenue,
        notes=tuple(measured.notes),
    )


def _map_stage(
    index: int, stage: StageConfig, figures: StageFigures, channels: tuple[ChannelShare, ...]
) -> MapStage:
    return MapStage(
        name=stage.name,
        position=index,
        owner=stage.owner,
        stall_days=stage.stall_days,
        touchpoints=channels,
        figures=figures,
        **{key: tuple(getattr(stage, key)) for key, _ in QUALITATIVE_ROWS},
    )
