"""Journeys: the touches of one person (or account) that lead to one conversion.

Takes the ``touchpoints`` and ``conversions`` tables (and ``path_aggregates``) and returns the
``journeys`` and ``journey_touches`` tables of the store schema.

Rules, per entity and conversion kind:

* Touches and conversions are ordered by timestamp, then by ``seq`` (arrival order), and a
  conversion sorts after a touch of the same row, so a touch with the conversion's timestamp
  belongs to that conversion's journey.
* A conversion's journey contains the touches after the previous conversion of the same kind
  and at or before the conversion, no older than the lookback window. Later touches belong to
  the next journey.
* Touches after an entity's last conversion of a kind form one non-converting journey, cut
  to the lookback window before its last touch. Data-driven models need these.
* A conversion with no eligible touch is a journey with no touches: attribution credits it
  to ``(unattributed)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import Config, EntityKind, MilestoneConfig, TransformName
from journeymap.common.epoch import epoch_seconds
from journeymap.journeys.transforms import apply_transform
from journeymap.store.schema import DERIVED_TABLES, NOT_SET, TS
from journeymap.store.store import Store

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class JourneyOptions:
    """Journey settings; see :class:`journeymap.common.config.JourneyConfig`."""

    entity: EntityKind = "person"
    lookback_days: float = 90.0
    transform: TransformName = "none"
    last_n: int | None = None
    conversion_kinds: tuple[str, ...] | None = None
    milestones: MilestoneConfig = field(default_factory=MilestoneConfig)

    @classmethod
    def from_config(cls, config: Config) -> JourneyOptions:
        """Return the options a configuration sets."""
        kinds = config.journeys.conversion_kinds
        return cls(
            entity=config.journeys.entity,
            lookback_days=config.journeys.lookback_days,
            transform=config.journeys.transform,
            last_n=config.journeys.last_n,
            conversion_kinds=tuple(kind.lower() for kind in kinds) if kinds else None,
            milestones=config.milestones,
        )


@dataclass(frozen=True)
class Journeys:
    """The two journey tables, as Ibis expressions.

    ``memo`` keeps what several models derive from the same journeys, so that it is
    computed once per set of journeys: the distinct paths (``summary``, ``steps``), the
    ``kinds``, the ``unattributed`` credit and facts about the touches (``single_repeats``,
    ``no_milestones``, ``timestamps_complete``). A source of journeys may fill it in advance
    with cheaper forms of its tables: ``summary_source`` (a :class:`PathSource`) and
    ``converting_touches`` (the converting journeys' touches with ``kind``, ``conversions``
    and ``value``, keyed by any ``journey_id``).
    """

    journeys: ibis.Table
    touches: ibis.Table
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class PathSource:
    """The tables that distinct paths are counted from, and the columns keying a journey.

    ``touches`` has the ``keys`` columns, ``position`` (from 1, without gaps) and
    ``channel``. ``weights`` has the ``keys`` columns, ``kind``, ``conversions``, ``value``
    and ``nulls``, one row per journey. Without ``weights``, ``touches`` also has ``kind``,
    ``conversions`` and ``value``. A journey's weights are then the sums over its touches,
    and its ``nulls`` is 1 when it has no conversion. With ``channels``, ``touches`` has
    ``channel_code`` (``channels[code - 1]``) in place of ``channel``.
    """

    touches: ibis.Table
    weights: ibis.Table | None
    keys: tuple[str, ...]
    channels: tuple[str, ...] | None = None


def _entity(t: ibis.Table, entity: EntityKind) -> ir.StringValue:
    if entity == "account":
        # People without an account are their own account, so that no conversion is lost.
        return ibis.coalesce(t.account_id, ibis.literal("person:").concat(t.person_id))
    return t.person_id


def _key_at_or_before(
    ts_a: ir.Value, seq_a: ir.Value, ts_b: ir.Value, seq_b: ir.Value
) -> ir.BooleanValue:
    """Return whether (ts_a, seq_a) sorts at or before (ts_b, seq_b)."""
    return (ts_a < ts_b) | ((ts_a == ts_b) & (seq_a <= seq_b))


def classified_touches(
    touchpoints: ibis.Table, classifier: ChannelClassifier, entity: EntityKind
) -> ibis.Table:
    """Return touchpoints with their entity, channel, source/medium, campaign and ad."""
    classified = classifier.classify(touchpoints)
    return classified.select(
        touchpoint_id=classified.touchpoint_id,
        entity_id=_entity(classified, entity),
        occurred_at=classified.occurred_at,
        seq=classified.seq,
        channel=classified.channel,
        source_medium=classified.source_medium,
        campaign=classified.campaign.strip().nullif("").fill_null(NOT_SET),
        ad_id=classified.ad_id.strip().nullif("").fill_null(NOT_SET),
    )


def journeys_from_events(
    touchpoints: ibis.Table,
    conversions: ibis.Table,
    classifier: ChannelClassifier,
    options: JourneyOptions,
) -> Journeys:
    """Cut touchpoints into journeys that end at conversions (and non-converting journeys).

    A journey is keyed by ``(entity_id, kind, idx)`` while it is cut, where ``idx`` counts
    the entity's earlier conversions of the kind. The string ``journey_id``
    (``kind:entity_id:idx``) is built once, when the tables are written.

    The touches cut into journeys are cached in the engine. With the default transform the
    returned ``touches`` expression joins the text columns and milestone flags on every
    query, so a caller that reads it more than once should store it first (:func:`materialize`).
    """
    touches = classified_touches(touchpoints, classifier, options.entity)
    convs = conversions.mutate(
        entity_id=_entity(conversions, options.entity), kind=conversions.kind.lower()
    )
    targets = convs
    if options.conversion_kinds is not None:
        targets = convs.filter(convs.kind.isin(list(options.conversion_kinds)))

    # The cut needs no channel, so it reads the touchpoints without the channel rules.
    moments = touchpoints.select(
        entity_id=_entity(touchpoints, options.entity),
        occurred_at=touchpoints.occurred_at,
        seq=touchpoints.seq,
    )
    ends = _journey_ends(targets)
    cut = _cut_touches(moments, targets, ends, options.lookback_days).cache()
    texts = touches.select("seq", "touchpoint_id", "channel", "source_medium", "campaign", "ad_id")
    if options.transform == "none" and options.last_n is None:
        # Every cut touch is kept, so the journeys count the cut touches, and the text
        # columns join last.
        kept = _positions(cut, options)
        counted = cut
        kept = _mark_milestones(kept, convs, options.milestones).inner_join(texts, "seq")
    else:
        # The transforms read the channel, so the text columns join first. Both tables
        # read the result, so it is cached.
        kept = _positions(cut.inner_join(texts, "seq"), options)
        kept = _mark_milestones(kept, convs, options.milestones).cache()
        counted = kept
    journey_touches = as_schema(kept.mutate(journey_id=_journey_id(kept)), "journey_touches")
    return Journeys(journeys=_journey_rows(ends, counted), touches=journey_touches)


JOURNEY_KEY = ("entity_id", "kind", "idx")


def _journey_id(table: ibis.Table) -> ir.StringValue:
    return table.kind.concat(":", table.entity_id, ":", table.idx.cast("string"))


def _epoch(timestamp: ir.TimestampValue) -> ir.FloatingValue:
    return epoch_seconds(timestamp)


def _journey_ends(targets: ibis.Table) -> ibis.Table:
    """Number each target conversion by the entity's earlier conversions of its kind.

    Returns ``entity_id``, ``kind``, ``idx``, ``seq``, ``conversion_id``, ``value``,
    ``converted_at`` and ``conv_epoch`` (seconds since 1970), one row per conversion.
    """
    earlier = ibis.window(group_by=["entity_id", "kind"], order_by=["occurred_at", "seq"])
    return targets.select(
        entity_id=targets.entity_id,
        kind=targets.kind,
        idx=ibis.row_number().over(earlier).cast("int64"),
        seq=targets.seq,
        conversion_id=targets.conversion_id,
        value=targets.value.fill_null(0.0),
        converted_at=targets.occurred_at,
        conv_epoch=_epoch(targets.occurred_at),
    )


def _cut_touches(
    touches: ibis.Table, targets: ibis.Table, ends: ibis.Table, lookback_days: float
) -> ibis.Table:
    """Give every touch its journey key and keep the touches inside the lookback window.

    ``touches`` needs the columns ``entity_id``, ``occurred_at`` and ``seq``.

    Touches (repeated for every kind) and conversions form one stream in journey order,
    sorted once. A touch's ``idx`` is the number of conversions of the kind before it, so it
    shares ``(entity_id, kind, idx)`` with the conversion that ends its journey, and a join
    on the key gives it that conversion's time. ``touch_no`` numbers the entity's touches of
    the kind in order (from 1).
    """
    kinds = targets.select("kind").distinct()
    touch_rows = touches.cross_join(kinds).select(
        entity_id="entity_id",
        kind="kind",
        occurred_at="occurred_at",
        seq="seq",
        is_conversion=ibis.literal(0, type="int64"),
    )
    conversion_rows = targets.select(
        entity_id="entity_id",
        kind="kind",
        occurred_at="occurred_at",
        seq="seq",
        is_conversion=ibis.literal(1, type="int64"),
    )
    stream = touch_rows.union(conversion_rows)
    # A conversion sorts after a touch of the same row (same occurred_at and seq).
    order = ["occurred_at", "seq", "is_conversion"]
    so_far = ibis.window(group_by=["entity_id", "kind"], order_by=order, rows=(None, 0))
    everything = ibis.window(group_by=["entity_id", "kind"], order_by=order, rows=(None, None))
    epoch = _epoch(stream.occurred_at)
    stream = stream.mutate(
        idx=(stream.is_conversion.sum().over(so_far) - stream.is_conversion).cast("int64"),
        touch_no=(1 - stream.is_conversion).sum().over(so_far).cast("int64"),
        epoch=epoch,
        last_epoch=epoch.max().over(everything),
    )
    open_rows = stream.filter(stream.is_conversion == 0).drop("is_conversion")
    conversion_times = ends.select(*JOURNEY_KEY, "converted_at", "conv_epoch", conv_seq=ends.seq)
    joined = open_rows.left_join(conversion_times, list(JOURNEY_KEY))
    joined = joined.drop([column for column in joined.columns if column.endswith("_right")])

    # Touches after the last conversion look back from their own last touch.
    lookback = lookback_days * SECONDS_PER_DAY
    anchor = ibis.coalesce(joined.conv_epoch, joined.last_epoch)
    cut = joined.filter(joined.epoch >= anchor - lookback)
    return cut.select(
        *JOURNEY_KEY,
        "seq",
        "occurred_at",
        "touch_no",
        "converted_at",
        "conv_seq",
        days_before=(cut.conv_epoch - cut.epoch) / SECONDS_PER_DAY,
    )


def _positions(cut: ibis.Table, options: JourneyOptions) -> ibis.Table:
    """Apply the path transform to the cut touches: ``position``, ``n_touches``, ``repeats``."""
    if options.transform != "none" or options.last_n is not None:
        # The transforms only order by ``rank`` and number the touches they keep, so the
        # touch number, which follows journey order, can stand in for it.
        cut = cut.rename(rank="touch_no")
        return apply_transform(cut, options.transform, options.last_n, journey=JOURNEY_KEY)

    # Every touch is kept: its position counts from the journey's first touch in the window.
    firsts = cut.group_by(list(JOURNEY_KEY)).aggregate(
        _first_no=cut.touch_no.min(), _journey_size=cut.count()
    )
    cut = cut.inner_join(firsts, list(JOURNEY_KEY))
    cut = cut.drop([column for column in cut.columns if column.endswith("_right")])
    cut = cut.mutate(rank=(cut.touch_no - cut._first_no).cast("int64"))
    return apply_transform(cut, journey=JOURNEY_KEY, counts="_journey_size").drop(
        "_first_no", "_journey_size", "touch_no"
    )


def _journey_rows(ends: ibis.Table, kept: ibis.Table) -> ibis.Table:
    """Return one ``journeys`` row per conversion and per non-converting journey.

    ``kept`` contains the kept touches with their journey key and ``conv_seq``.
    """
    counts = kept.group_by([*JOURNEY_KEY, "conv_seq"]).aggregate(n_touches=kept.count())
    converting = ends.left_join(counts, list(JOURNEY_KEY))
    converting = converting.select(
        journey_id=_journey_id(converting),
        entity_id=converting.entity_id,
        kind=converting.kind,
        conversion_id=converting.conversion_id,
        converted_at=converting.converted_at.cast(TS),
        conversions=ibis.literal(1.0),
        value=converting.value,
        nulls=ibis.literal(0.0),
        n_touches=converting.n_touches.fill_null(0).cast("int64"),
    )
    open_ends = counts.filter(counts.conv_seq.isnull())
    non_converting = open_ends.select(
        journey_id=_journey_id(open_ends),
        entity_id="entity_id",
        kind="kind",
        conversion_id=ibis.null(str),
        converted_at=ibis.null(TS),
        conversions=ibis.literal(0.0),
        value=ibis.literal(0.0),
        nulls=ibis.literal(1.0),
        n_touches=open_ends.n_touches.cast("int64"),
    )
    return as_schema(converting.union(non_converting), "journeys")


def as_schema(table: ibis.Table, name: str) -> ibis.Table:
    """Select a derived table's columns and cast them to its schema.

    A cached Spark table reports the types Spark computed (``row_number`` is a 32-bit
    integer there), so the cast makes both engines return the same types.
    """
    schema = DERIVED_TABLES[name]
    return table.select(*schema.names).cast(schema)


def _mark_milestones(
    kept: ibis.Table, conversions: ibis.Table, milestones: MilestoneConfig
) -> ibis.Table:
    """Flag the touch that led to each milestone: the last kept touch at or before it.

    A milestone is the entity's first conversion of the milestone's kinds, and counts only
    when it happens at or before the journey's conversion. Data without any milestone kind
    skips the join.
    """
    names = {
        "lead": [kind.lower() for kind in milestones.lead],
        "opportunity": [kind.lower() for kind in milestones.opportunity],
        "won": [kind.lower() for kind in milestones.closed_won],
    }
    every_kind = sorted({kind for kinds in names.values() for kind in kinds})
    present = conversions.filter(conversions.kind.isin(every_kind)).limit(1).count().execute()
    if not present:
        return kept.mutate(
            is_lead_touch=ibis.literal(False),
            is_opportunity_touch=ibis.literal(False),
            is_won_touch=ibis.literal(False),
        )

    # One row per entity with the time and seq of its first conversion of each milestone.
    firsts = None
    for name, kinds in names.items():
        rows = conversions.filter(conversions.kind.isin(kinds))
        rows = rows.mutate(
            _n=ibis.row_number().over(
                ibis.window(group_by="entity_id", order_by=["occurred_at", "seq"])
            )
        )
        rows = rows.filter(rows._n == 0).select(
            "entity_id", **{f"_{name}_ts": rows.occurred_at, f"_{name}_seq": rows.seq}
        )
        if firsts is None:
            firsts = rows
            continue
        both = firsts.outer_join(rows, "entity_id")
        both = both.mutate(entity_id=ibis.coalesce(both.entity_id, both.entity_id_right))
        firsts = both.drop("entity_id_right")
    assert firsts is not None
    joined = kept.left_join(firsts, "entity_id")
    joined = joined.drop([column for column in joined.columns if column.endswith("_right")])

    reached = {}
    for name in names:
        ts, seq = joined[f"_{name}_ts"], joined[f"_{name}_seq"]
        reached[f"_{name}_reached"] = (
            ts.notnull()
            & joined.converted_at.notnull()
            & _key_at_or_before(joined.occurred_at, joined.seq, ts, seq)
            & _key_at_or_before(ts, seq, joined.converted_at, joined.conv_seq)
        ).fill_null(False)
    joined = joined.mutate(**reached)
    in_journey = ibis.window(group_by=list(JOURNEY_KEY))
    latest = {
        f"_{name}_latest": ibis.cases(
            (joined[f"_{name}_reached"], joined.position), else_=ibis.null("int64")
        )
        .max()
        .over(in_journey)
        for name in names
    }
    joined = joined.mutate(**latest)
    flags = {
        f"is_{name}_touch": (
            joined[f"_{name}_reached"] & (joined.position == joined[f"_{name}_latest"])
        ).fill_null(False)
        for name in names
    }
    helpers = [column for column in joined.columns if column.startswith("_")]
    return joined.mutate(**flags).drop(*helpers)


def journeys_from_paths(path_aggregates: ibis.Table, options: JourneyOptions) -> Journeys:
    """Turn aggregated paths into journeys: one journey row per path, weighted by its counts.

    Paths carry no timestamps and no milestones: ``days_before`` is null and no touch is a
    milestone touch.
    """
    paths = path_aggregates.filter((path_aggregates.conversions > 0) | (path_aggregates.nulls > 0))
    paths = paths.mutate(
        journey_id=ibis.literal("path:").concat(paths.import_id, ":", paths.path_id.cast("string"))
    )
    steps = paths.mutate(step=paths.path.split(paths.separator)).unnest("step", offset="rank")
    steps = steps.mutate(channel=steps.step.strip())
    steps = steps.filter(steps.channel.notnull() & (steps.channel != ""))
    steps = steps.select(
        journey_id="journey_id",
        rank="rank",
        channel="channel",
        touchpoint_id=ibis.null(str),
        occurred_at=ibis.null(TS),
        days_before=ibis.null(float),
        source_medium=ibis.literal(NOT_SET),
        campaign=ibis.literal(NOT_SET),
        ad_id=ibis.literal(NOT_SET),
        is_lead_touch=ibis.literal(False),
        is_opportunity_touch=ibis.literal(False),
        is_won_touch=ibis.literal(False),
    )
    kept = apply_transform(steps, options.transform, options.last_n)
    journey_touches = kept.select(*DERIVED_TABLES["journey_touches"].names)
    counts = journey_touches.group_by("journey_id").aggregate(n_touches=journey_touches.count())
    journeys = paths.left_join(counts, "journey_id")
    journeys = journeys.select(
        journey_id=journeys.journey_id,
        entity_id=ibis.null(str),
        kind=ibis.literal("conversion"),
        conversion_id=ibis.null(str),
        converted_at=ibis.null(TS),
        conversions=journeys.conversions,
        value=journeys.value,
        nulls=journeys.nulls,
        n_touches=journeys.n_touches.fill_null(0).cast("int64"),
    )
    return Journeys(journeys=journeys, touches=journey_touches)


def build_journeys(
    store: Store,
    classifier: ChannelClassifier,
    options: JourneyOptions,
    *,
    events: tuple[ibis.Table, ibis.Table] | None = None,
) -> Journeys:
    """Build journeys from everything in the store: touchpoint events and aggregated paths.

    ``events`` replaces the stored touchpoints and conversions, for example with the
    collected ones added (see :func:`journeymap.journeys.collected.with_collected`).
    """
    parts: list[Journeys] = []
    if events is not None:
        parts.append(journeys_from_events(events[0], events[1], classifier, options))
    elif store.has_rows("conversions") or store.has_rows("touchpoints"):
        parts.append(
            journeys_from_events(
                store.table("touchpoints"), store.table("conversions"), classifier, options
            )
        )
    if store.has_rows("path_aggregates"):
        parts.append(journeys_from_paths(store.table("path_aggregates"), options))
    if not parts:
        return Journeys(journeys=_empty("journeys"), touches=_empty("journey_touches"))
    journeys = parts[0].journeys
    touches = parts[0].touches
    for part in parts[1:]:
        journeys = journeys.union(part.journeys)
        touches = touches.union(part.touches)
    return Journeys(journeys=journeys, touches=touches)


def _empty(name: str) -> ibis.Table:
    import pyarrow as pa

    schema = DERIVED_TABLES[name]
    return ibis.memtable(pa.Table.from_pylist([], schema=schema.to_pyarrow()))


def materialize(store: Store, journeys: Journeys) -> Journeys:
    """Store both journey tables and return them as stored tables."""
    stored_journeys = store.write("journeys", journeys.journeys)
    stored_touches = store.write("journey_touches", journeys.touches)
    return Journeys(journeys=stored_journeys, touches=stored_touches)
