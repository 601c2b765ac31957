"""Measure the journey map on the store: stage cohorts, stall counts, drop-off points.

The stage timeline is computed in the engine (as :func:`journeymap.journeys.stages.stage_timeline`
does for ``journeymap stages``) without writing the store's ``stage_timeline`` table. Counts
and quantiles are Ibis aggregations; only the per-stage results (a few rows) reach pandas.
The touches, credits and paths are measured in :mod:`journeymap.report.map_touches`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import ibis
import pandas as pd

from journeymap.analyses.icp import SIZE_BANDS, _size_band
from journeymap.analyses.velocity import days_between, time_in_stage
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError, StoreError
from journeymap.journeys.stages import stage_timeline, timeline_inputs
from journeymap.report.map import (
    TOP_DROPOFF_POINTS,
    ChannelCredit,
    ChannelShare,
    DropoffPoint,
    MapFilters,
    PathRow,
    StageFigures,
)
from journeymap.store.schema import TS
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

MAX_LISTED_VALUES = 12
"""Segment values listed at most in the error for a value that no account has."""


@dataclass
class MeasuredMap:
    """Everything :func:`measure_map` measures, keyed by stage name where it is per stage."""

    filters: MapFilters
    won_kind: str | None
    pipeline_kind: str | None
    data_first: datetime | None
    data_last: datetime | None
    figures: dict[str, StageFigures]
    channels: dict[str, tuple[ChannelShare, ...]]
    top_sequences: tuple[PathRow, ...]
    dropoff_points: tuple[DropoffPoint, ...]
    channel_credit: tuple[ChannelCredit, ...]
    unplaced_revenue: float | None
    notes: list[str] = field(default_factory=list)


def measure_map(
    store: Store,
    config: Config,
    *,
    start: date | None,
    end: date | None,
    segment: tuple[str, str] | None,
    model: str,
    lookback: float | None,
    entity: str | None,
) -> MeasuredMap:
    """Measure every figure of the map; see :mod:`journeymap.report.map` for the definitions."""
    from journeymap import api
    from journeymap.report import map_touches

    names = [stage.name for stage in config.stages]
    source = None
    if store.has_rows("deal_stages") and not _has_touch_data(store):
        # A CRM-only store: stages come from the deals, and nothing is there to credit.
        entity_kind = entity or "account"
    else:
        api.check_has_data(store)
        source = map_touches.journey_source(store, config, lookback)
        entity_kind = entity or ("account" if store.has_rows("deal_stages") else source.entity)

    timeline = stage_timeline(store, config.stages, entity_kind=entity_kind).cache()
    try:
        span = timeline.aggregate(first=timeline.entered_at.min(), last=timeline.entered_at.max())
        bounds = span.to_pandas().iloc[0]
        data_first, data_last = _moment(bounds["first"]), _moment(bounds["last"])
        start_at = _day_start(start)
        end_at = _day_start(end + timedelta(days=1)) if end is not None else None
        as_of = data_last if end_at is None or data_last is None else min(end_at, data_last)

        members = None
        if segment is not None:
            members = segment_members(store, entity_kind, *segment, config)
        stays = timeline if members is None else timeline.semi_join(members, "entity_id")

        figures = stage_figures(stays, config, start_at=start_at, as_of=as_of)
        won_value = won_value_by_stage(
            store, config, stays, entity_kind, start_at=start_at, as_of=as_of
        )

        touch_members = members
        if segment is not None and source is not None and source.entity != entity_kind:
            touch_members = segment_members(store, source.entity, *segment, config)
        if source is None:
            touches = map_touches.TouchFigures(None, None, {}, {}, (), (), None, [NO_TOUCHES])
        else:
            touches = map_touches.measure_touches(
                store,
                config,
                source,
                stays,
                model=model,
                entity_kind=entity_kind,
                members=touch_members,
                start_at=start_at,
                as_of=as_of,
            )
    finally:
        timeline.release()
        if source is not None:
            source.release()

    by_stage = {name: _figures_of(figures, name, touches.credit) for name in names}
    points = dropoff_points(figures, won_value, names)
    notes = (source.notes if source is not None else []) + touches.notes
    if as_of is None:
        notes.append("No entity entered a stage, so every stage figure is zero.")
    log.info("measured the journey map of %s stages in %s", len(names), store.location)
    return MeasuredMap(
        filters=MapFilters(
            start=start,
            end=end,
            segment=segment,
            model=model,
            lookback_days=(
                source.lookback_days if source is not None else config.journeys.lookback_days
            ),
            entity=entity_kind,
            as_of=as_of,
        ),
        won_kind=touches.won_kind,
        pipeline_kind=touches.pipeline_kind,
        data_first=data_first,
        data_last=data_last,
        figures=by_stage,
        channels={name: touches.channels.get(name, ()) for name in names},
        top_sequences=touches.top_sequences,
        dropoff_points=points,
        channel_credit=touches.channel_credit,
        unplaced_revenue=touches.unplaced_revenue,
        notes=notes,
    )


NO_TOUCHES = (
    "The store has deals but no touches or conversions, so the map has no touchpoints, credit "
    "or paths: import touchpoints or collect events to add them."
)


def _has_touch_data(store: Store) -> bool:
    """Return whether the store has anything to build journeys from."""
    names = ("touchpoints", "conversions", "path_aggregates", "events")
    return any(store.has_rows(name) for name in names)


def _moment(value: Any) -> datetime | None:
    """Return a timestamp of the store as an aware UTC datetime, or None for a null.

    DuckDB returns aware values. Spark returns naive ones in its session time zone, and they
    are read as UTC, so a Spark session needs ``spark.sql.session.timeZone`` set to UTC.
    """
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    moment: datetime = stamp.to_pydatetime()
    return moment


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def in_range(
    moment: ibis.TimestampValue, start_at: datetime | None, as_of: datetime | None
) -> ibis.BooleanValue:
    """Return whether ``moment`` is at or after ``start_at`` and at or before ``as_of``."""
    condition = moment.notnull()
    if start_at is not None:
        condition &= moment >= ibis.literal(start_at, type=TS)
    if as_of is not None:
        condition &= moment <= ibis.literal(as_of, type=TS)
    return condition


ACCOUNT_SEGMENTS = ("industry", "size_band", "region", "plan")
"""Account columns that the map can be filtered by."""

CHANNEL_SEGMENT = "channel"
"""Segment column of the first-touch channel, beside the account columns."""


def channel_members(store: Store, entity_kind: str, channel: str, config: Config) -> ibis.Table:
    """Return the ``entity_id`` of every person or account whose first touch is ``channel``.

    Channels compare trimmed and lowercased; the first touch is that of
    :func:`journeymap.journeys.first_touch.first_touch_channels`, over imported and collected
    touches.

    Raises:
        ConfigError: no entity's first touch is in ``channel``; the message lists the channels.
    """
    from journeymap.channels.rules import ChannelClassifier
    from journeymap.journeys.first_touch import first_touch_channels

    touchpoints = timeline_inputs(store).get("touchpoints")
    if touchpoints is None:
        raise ConfigError(
            f"cannot filter by first-touch channel {channel!r}: the store has no touches",
            location="--segment",
            hint="Import touchpoints or collect events first",
        )
    classifier = ChannelClassifier.from_config(config.channels)
    kind = "account" if entity_kind == "account" else "person"
    firsts = first_touch_channels(touchpoints, classifier, kind)  # type: ignore[arg-type]
    matched = firsts.filter(firsts.channel.strip().lower() == channel.strip().lower())
    if int(matched.count().execute()) == 0:
        known = sorted(
            str(name) for name in firsts.select("channel").distinct().to_pandas().channel
        )
        raise ConfigError(
            f"no {kind}'s first touch is in channel {channel!r}",
            location="--segment",
            hint=f"First-touch channels: {', '.join(known) or 'none'}",
        )
    return matched.select("entity_id").distinct()


def segment_members(
    store: Store, entity_kind: str, column: str, value: str, config: Config | None = None
) -> ibis.Table:
    """Return the ``entity_id`` of every person or account in the segment ``column = value``.

    Accounts come from ``accounts`` and ``collected_accounts``; values are compared trimmed and
    lowercased. A person belongs to the account of their ``people`` row, or else of their
    touches and conversions.

    Raises:
        ConfigError: ``column`` is not a segment column, or no account has ``value``.
        StoreError: the store has no accounts.
    """
    if column == CHANNEL_SEGMENT:
        return channel_members(store, entity_kind, value, config or Config())
    if column not in ACCOUNT_SEGMENTS:
        known = [*ACCOUNT_SEGMENTS, CHANNEL_SEGMENT]
        close = difflib.get_close_matches(column, known, n=1)
        suggestion = f"Did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"cannot filter by {column!r}",
            location="--segment",
            hint=f"{suggestion}Segment columns: {', '.join(known)}",
        )
    parts = [
        store.table(name) for name in ("accounts", "collected_accounts") if store.has_rows(name)
    ]
    if not parts:
        raise StoreError(
            f"the store {store.location} has no accounts to filter by {column}",
            hint="Import deals with their accounts: journeymap import deals FILE --accounts FILE",
        )
    accounts = ibis.union(
        *(part.select("account_id", "employees", "industry", "region", "plan") for part in parts)
    )
    accounts = accounts.mutate(size_band=_size_band(accounts.employees, SIZE_BANDS))
    key = accounts[column].cast("string").strip().lower()
    matched = accounts.filter(key == value.strip().lower()).select(entity_id=accounts.account_id)
    if int(matched.count().execute()) == 0:
        known = sorted(
            str(item)
            for item in accounts.select(v=accounts[column]).distinct().to_pandas().v.dropna()
        )
        listed = ", ".join(known[:MAX_LISTED_VALUES]) + (
            " ..." if len(known) > MAX_LISTED_VALUES else ""
        )
        raise ConfigError(
            f"no account has {column} {value!r}",
            location="--segment",
            hint=f"Values of {column}: {listed or 'none'}",
        )
    if entity_kind == "account":
        return matched.distinct()

    people = []
    for name in ("people", "collected_people"):
        if store.has_rows(name):
            table = store.table(name)
            people.append(table.select("person_id", "account_id"))
    for name, table in timeline_inputs(store).items():
        if name in ("touchpoints", "conversions"):
            people.append(table.select("person_id", "account_id"))
    if not people:
        return matched.filter(ibis.literal(False))
    links = ibis.union(*people).filter(ibis._.person_id.notnull())
    persons = links.semi_join(matched, links.account_id == matched.entity_id)
    return persons.select(entity_id=persons.person_id).distinct()


def cohort_stays(
    stays: ibis.Table, stage_names: Sequence[str], *, start_at: datetime | None, as_of: datetime
) -> ibis.Table:
    """Return the stays entered in range, with ``position``, ``moved_on`` and ``days_so_far``.

    ``moved_on`` is true when the entity entered a later stage at or before ``as_of``.
    ``days_so_far`` runs from entry to ``as_of``, for the stall count.
    """
    position = ibis.literal(-1, "int64")
    for index, name in enumerate(stage_names):
        position = ibis.ifelse(stays.stage == name, ibis.literal(index, "int64"), position)
    placed = stays.mutate(position=position)
    known = placed.filter(in_range(placed.entered_at, None, as_of))
    furthest = known.group_by(furthest_entity="entity_id").aggregate(furthest=known.position.max())
    cohort = known.filter(in_range(known.entered_at, start_at, as_of))
    joined = cohort.inner_join(furthest, cohort.entity_id == furthest.furthest_entity)
    return joined.mutate(
        moved_on=joined.furthest > joined.position,
        days_so_far=days_between(joined.entered_at, ibis.literal(as_of, type=TS)),
    ).drop("furthest_entity", "furthest")


def stage_figures(
    stays: ibis.Table, config: Config, *, start_at: datetime | None, as_of: datetime | None
) -> pd.DataFrame:
    """Return one row per configured stage with the counts, days and stall figures.

    Columns: ``stage``, ``entered``, ``moved_on``, ``ever_entered`` (up to ``as_of``, any
    entry date), ``completed_stays``, ``median_days``, ``stalled``, ``stall_threshold_days``,
    ``stall_threshold_source``, ``conversion_rate`` and ``dropoff_rate``.
    """
    names = [stage.name for stage in config.stages]
    rows = pd.DataFrame({"stage": names})
    if as_of is None:
        return _rates(_zero_figures(rows))

    cohort = cohort_stays(stays, names, start_at=start_at, as_of=as_of)
    counts = (
        cohort.group_by("stage")
        .aggregate(
            entered=cohort.entity_id.nunique(),
            moved_on=cohort.entity_id.nunique(where=cohort.moved_on),
        )
        .to_pandas()
    )
    known = stays.filter(in_range(stays.entered_at, None, as_of))
    ever = known.group_by("stage").aggregate(ever_entered=known.entity_id.nunique()).to_pandas()
    days = time_in_stage(cohort.mutate(deal_id=cohort.entity_id), as_of=as_of).to_pandas()

    rows = rows.merge(counts, on="stage", how="left").merge(ever, on="stage", how="left")
    rows = rows.merge(
        days[["stage", "completed_stays", "median_days", "p75_days"]], on="stage", how="left"
    )
    for column in ("entered", "moved_on", "ever_entered", "completed_stays"):
        rows[column] = rows[column].fillna(0).astype("int64")

    thresholds: dict[str, tuple[float | None, str | None]] = {}
    for stage, p75 in zip(rows.stage, rows.p75_days, strict=True):
        configured = next(item.stall_days for item in config.stages if item.name == stage)
        if configured is not None:
            thresholds[stage] = (float(configured), "configured")
        elif not pd.isna(p75):
            thresholds[stage] = (float(p75), "p75")
        else:
            thresholds[stage] = (None, None)
    rows["stall_threshold_days"] = [thresholds[stage][0] for stage in rows.stage]
    rows["stall_threshold_source"] = [thresholds[stage][1] for stage in rows.stage]
    rows["stalled"] = _stalled_counts(cohort, thresholds)
    return _rates(rows.drop(columns="p75_days"))


def _zero_figures(rows: pd.DataFrame) -> pd.DataFrame:
    for column in ("entered", "moved_on", "ever_entered", "completed_stays"):
        rows[column] = 0
    rows["median_days"] = float("nan")
    rows["stalled"] = None
    rows["stall_threshold_days"] = None
    rows["stall_threshold_source"] = None
    return rows


def _stalled_counts(
    cohort: ibis.Table, thresholds: dict[str, tuple[float | None, str | None]]
) -> list[int | None]:
    """Count per stage the entrants not moved on after more than the stage's threshold."""
    limits = {stage: limit for stage, (limit, _) in thresholds.items() if limit is not None}
    if not limits:
        return [None] * len(thresholds)
    limit = cohort.stage.cases(
        *((stage, ibis.literal(days, "float64")) for stage, days in limits.items())
    )
    flagged = cohort.mutate(_limit=limit)
    stalled = flagged.filter(
        ~flagged.moved_on, flagged._limit.notnull(), flagged.days_so_far > flagged._limit
    )
    counts = stalled.group_by("stage").aggregate(stalled=stalled.entity_id.nunique()).to_pandas()
    found = dict(zip(counts.stage, counts.stalled, strict=True))
    return [int(found.get(stage, 0)) if stage in limits else None for stage in thresholds]


def _rates(rows: pd.DataFrame) -> pd.DataFrame:
    """Add ``conversion_rate`` and ``dropoff_rate``: null with no entrant or no later stage."""
    ever = rows.ever_entered.tolist()
    rates: list[float | None] = []
    for index, (entered, moved_on) in enumerate(zip(rows.entered, rows.moved_on, strict=True)):
        later = any(ever[index + 1 :])
        rates.append(moved_on / entered if entered and later else None)
    rows["conversion_rate"] = pd.array(rates, dtype="Float64")
    rows["dropoff_rate"] = 1 - rows.conversion_rate
    return rows


def won_values(store: Store, config: Config, entity_kind: str) -> ibis.Table | None:
    """Return won value as ``entity_id, won_at, value``, or None when the store has none.

    Won conversions (the ``milestones.closed_won`` kinds) when there are any; otherwise, for
    accounts, the amounts of won deals at their close. Taking one source, not both, keeps a
    CRM whose wins are also conversions from counting them twice.
    """
    column = "person_id" if entity_kind == "person" else "account_id"
    conversions = timeline_inputs(store).get("conversions")
    kinds = [kind.lower() for kind in config.milestones.closed_won]
    if conversions is not None:
        won = conversions.filter(conversions.kind.strip().lower().isin(kinds))
        if int(won.count().execute()) > 0:
            return won.select(
                entity_id=won[column], won_at=won.occurred_at, value=won.value.fill_null(0.0)
            )
    if entity_kind == "account" and store.has_rows("deals"):
        deals = store.table("deals")
        won = deals.filter(deals.is_won.fill_null(False), deals.closed_at.notnull())
        return won.select(
            entity_id=won.account_id, won_at=won.closed_at, value=won.amount.fill_null(0.0)
        )
    return None


def won_value_by_stage(
    store: Store,
    config: Config,
    stays: ibis.Table,
    entity_kind: str,
    *,
    start_at: datetime | None,
    as_of: datetime | None,
) -> dict[str, float]:
    """Return per stage the won value that its moved-on entrants brought after entering it.

    A win counts when it came after the entry into the stage and at or before ``as_of``.
    """
    values = won_values(store, config, entity_kind)
    if values is None or as_of is None:
        return {}
    names = [stage.name for stage in config.stages]
    cohort = cohort_stays(stays, names, start_at=start_at, as_of=as_of)
    movers = cohort.filter(cohort.moved_on)
    joined = movers.inner_join(
        values,
        [
            movers.entity_id == values.entity_id,
            values.won_at > movers.entered_at,
            values.won_at <= ibis.literal(as_of, type=TS),
        ],
    )
    summed = joined.group_by("stage").aggregate(value=joined.value.sum()).to_pandas()
    return {str(row.stage): float(row.value) for row in summed.itertuples()}


def dropoff_points(
    figures: pd.DataFrame, won_value: dict[str, float], names: Sequence[str]
) -> tuple[DropoffPoint, ...]:
    """Rank the stages with a drop-off rate by ``revenue_impact``; keep the top ones above 0.

    Ties go to the stage with more dropped entrants, then to the earlier stage.
    """
    candidates: list[tuple[float, int, int, dict[Any, Any], float]] = []
    for row in figures.to_dict("records"):
        rate, moved_on = row["conversion_rate"], int(row["moved_on"])
        if rate is None or pd.isna(rate) or moved_on == 0:
            continue
        dropped = int(row["entered"]) - moved_on
        per_mover = won_value.get(str(row["stage"]), 0.0) / moved_on
        impact = dropped * per_mover
        if impact <= 0:
            continue
        candidates.append((impact, dropped, names.index(str(row["stage"])), row, per_mover))
    candidates.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return tuple(
        DropoffPoint(
            rank=rank,
            stage=str(row["stage"]),
            entered=int(row["entered"]),
            moved_on=int(row["moved_on"]),
            dropped=dropped,
            dropoff_rate=float(row["dropoff_rate"]),
            value_per_mover=per_mover,
            revenue_impact=impact,
        )
        for rank, (impact, dropped, _, row, per_mover) in enumerate(
            candidates[:TOP_DROPOFF_POINTS], start=1
        )
    )


def _figures_of(
    figures: pd.DataFrame, name: str, credit: dict[str, dict[str, tuple[float, float]]]
) -> StageFigures:
    row: dict[Any, Any] = figures.set_index("stage").loc[name].to_dict()

    def optional(value: Any) -> float | None:
        return None if value is None or pd.isna(value) else float(value)

    def credited(role: str, index: int) -> float | None:
        if role not in credit:
            return None
        return credit[role].get(name, (0.0, 0.0))[index]

    return StageFigures(
        entered=int(row["entered"]),
        moved_on=int(row["moved_on"]),
        in_stage=int(row["entered"]) - int(row["moved_on"]),
        conversion_rate=optional(row["conversion_rate"]),
        dropoff_rate=optional(row["dropoff_rate"]),
        completed_stays=int(row["completed_stays"]),
        median_days=optional(row["median_days"]),
        stalled=None if row["stalled"] is None or pd.isna(row["stalled"]) else int(row["stalled"]),
        stall_threshold_days=optional(row["stall_threshold_days"]),
        stall_threshold_source=row["stall_threshold_source"] or None,
        attributed_pipeline=credited("pipeline", 1),
        attributed_revenue=credited("won", 1),
        attributed_wins=credited("won", 0),
    )
