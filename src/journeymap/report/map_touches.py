"""Measure the touches of the journey map: channels met per stage, credit per stage, paths.

Each touch of a converting journey is placed in the stage that its entity (person or account)
was in when the touch happened: the stay with ``entered_at <= occurred_at`` and no exit or an
exit after it. Touches without a timestamp (aggregated paths) or without such a stay stay
unplaced. The journeys and credits are the stored ones when they match the requested lookback
and model; otherwise they are computed in memory and the store is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import pandas as pd

from journeymap.analyses.converting_paths import paths_before
from journeymap.attribution import attribute, resolve_models
from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import Config
from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys
from journeymap.journeys.stages import timeline_inputs
from journeymap.report.map import TOP_CHANNELS, TOP_SEQUENCES, ChannelCredit, ChannelShare, PathRow
from journeymap.report.map_measures import in_range
from journeymap.store.store import Store

WON = "won"
PIPELINE = "pipeline"


@dataclass
class JourneySource:
    """The journeys the map reads: the stored build, or one built in memory."""

    journeys: Journeys
    entity: str
    """Whose journeys they are: ``person`` or ``account``."""
    lookback_days: float
    stored: bool
    notes: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Drop the engine's cached copies of journeys built in memory."""
        if not self.stored:
            self.journeys.journeys.release()
            self.journeys.touches.release()


@dataclass
class TouchFigures:
    """The map's figures that come from journeys, touches and credits."""

    won_kind: str | None
    pipeline_kind: str | None
    channels: dict[str, tuple[ChannelShare, ...]]
    credit: dict[str, dict[str, tuple[float, float]]]
    """``won`` and ``pipeline`` (when the kind exists) -> stage -> (conversions, value)."""
    channel_credit: tuple[ChannelCredit, ...]
    top_sequences: tuple[PathRow, ...]
    unplaced_revenue: float | None
    notes: list[str] = field(default_factory=list)


def journey_source(store: Store, config: Config, lookback: float | None) -> JourneySource:
    """Return the stored journeys when they have ``lookback``, else journeys built in memory.

    ``lookback`` None takes the stored build's lookback, or the configured one before any build.
    """
    from journeymap import api
    from journeymap.report.gather import stored_build_settings

    built = stored_build_settings(store)
    if built is not None and (lookback is None or float(lookback) == float(built["lookback_days"])):
        stored = Journeys(journeys=store.table("journeys"), touches=store.table("journey_touches"))
        return JourneySource(stored, str(built["entity"]), float(built["lookback_days"]), True)

    chosen = api.with_overrides(config, lookback_days=lookback)
    options = JourneyOptions.from_config(chosen)
    inputs = timeline_inputs(store)
    events = None
    collected = store.has_rows("collected_touchpoints") or store.has_rows("collected_conversions")
    if collected and "touchpoints" in inputs and "conversions" in inputs:
        events = (inputs["touchpoints"], inputs["conversions"])
    classifier = ChannelClassifier.from_config(chosen.channels)
    built_now = build_journeys(store, classifier, options, events=events)
    journeys = Journeys(journeys=built_now.journeys.cache(), touches=built_now.touches.cache())
    reason = "no journeys are stored" if built is None else "the stored ones have another lookback"
    note = (
        f"Journeys were built in memory with a {options.lookback_days:g}-day lookback, "
        f"because {reason}."
    )
    return JourneySource(journeys, options.entity, options.lookback_days, False, [note])


def won_and_pipeline_kinds(journeys: ibis.Table, config: Config) -> tuple[str | None, str | None]:
    """Return the won kind and the pipeline kind of the converting journeys.

    The won kind is the first ``milestones.closed_won`` kind present, else the kind with the
    most value, then the most conversions. The pipeline kind is the first
    ``milestones.opportunity`` kind present; None when there is none.
    """
    converting = journeys.filter(journeys.conversions > 0)
    kinds = (
        converting.group_by("kind")
        .aggregate(value=converting.value.sum(), conversions=converting.conversions.sum())
        .to_pandas()
    )
    if kinds.empty:
        return None, None
    present = [str(kind) for kind in kinds.kind]
    won = next((k.lower() for k in config.milestones.closed_won if k.lower() in present), None)
    if won is None:
        ranked = kinds.sort_values(["value", "conversions", "kind"], ascending=[False, False, True])
        won = str(ranked.kind.iloc[0])
    pipeline = next(
        (k.lower() for k in config.milestones.opportunity if k.lower() in present and k != won),
        None,
    )
    return won, pipeline


def scoped_journeys(
    journeys: Journeys,
    members: ibis.Table | None,
    *,
    start_at: datetime | None,
    as_of: datetime | None,
) -> ibis.Table:
    """Return the journeys in range and segment, in the ``journeys`` schema.

    A journey's moment is its conversion, or its last touch when it did not convert.
    """
    table, touches = journeys.journeys, journeys.touches
    last = touches.group_by(last_journey="journey_id").aggregate(
        last_touch=touches.occurred_at.max()
    )
    joined = table.left_join(last, table.journey_id == last.last_journey)
    moment = ibis.coalesce(joined.converted_at, joined.last_touch)
    scoped = joined.filter(in_range(moment, start_at, as_of)).select(*table.columns)
    if members is not None:
        scoped = scoped.semi_join(members, "entity_id")
    return scoped


def placed_touches(
    store: Store,
    journeys: ibis.Table,
    touches: ibis.Table,
    stays: ibis.Table,
    *,
    journey_entity: str,
    entity_kind: str,
) -> ibis.Table:
    """Return ``journey_id, position, kind, channel, stage`` of each touch placed in a stay."""
    rows = touches.inner_join(
        journeys.select("journey_id", "kind", journey_entity_id="entity_id"), "journey_id"
    )
    if journey_entity == entity_kind:
        rows = rows.mutate(stay_entity=rows.journey_entity_id)
    else:
        column = "person_id" if entity_kind == "person" else "account_id"
        source = timeline_inputs(store).get("touchpoints")
        if source is None:
            return rows.select(
                "journey_id", "position", "kind", "channel", stage=ibis.null("string")
            ).limit(0)
        owners = source.select(owner_touch=source.touchpoint_id, stay_entity=source[column])
        rows = rows.inner_join(owners, rows.touchpoint_id == owners.owner_touch)
    spans = stays.select(
        span_entity="entity_id", stage="stage", span_start="entered_at", span_end="exited_at"
    )
    placed = rows.inner_join(
        spans,
        [
            rows.stay_entity == spans.span_entity,
            spans.span_start <= rows.occurred_at,
            spans.span_end.isnull() | (rows.occurred_at < spans.span_end),
        ],
    )
    return placed.select("journey_id", "position", "kind", "channel", "stage")


def model_credits(
    store: Store, config: Config, source: JourneySource, model: str, kinds: list[str]
) -> tuple[ibis.Table, str | None]:
    """Return the credit rows of ``model`` for ``kinds``, and a note when they were computed.

    Stored credits are used when the journeys are the stored ones and the last attribution run
    included ``model``.
    """
    if source.stored and "credits" in store.con.list_tables():
        credits = store.table("credits")
        rows = credits.filter(credits.model == model, credits.kind.isin(kinds))
        if int(credits.filter(credits.model == model).limit(1).count().execute()) > 0:
            return rows, None
    table = source.journeys.journeys
    of_kinds = table.filter(table.kind.isin(kinds))
    subset = Journeys(
        journeys=of_kinds, touches=source.journeys.touches.semi_join(of_kinds, "journey_id")
    )
    models = resolve_models([model], {model: config.attribution.parameters.get(model, {})})
    reason = "the store has none for it" if source.stored else "the journeys were built in memory"
    note = f"Credits of {model} were computed in memory, because {reason}."
    return attribute(subset, models), note


def measure_touches(
    store: Store,
    config: Config,
    source: JourneySource,
    stays: ibis.Table,
    *,
    model: str,
    entity_kind: str,
    members: ibis.Table | None,
    start_at: datetime | None,
    as_of: datetime | None,
) -> TouchFigures:
    """Measure channels met, credit by stage and channel, and the paths of winning customers."""
    won, pipeline = won_and_pipeline_kinds(source.journeys.journeys, config)
    if won is None:
        empty = "No journey converted, so the map has no touchpoints, credit or paths."
        return TouchFigures(None, None, {}, {}, (), (), None, [empty])

    scope = scoped_journeys(source.journeys, members, start_at=start_at, as_of=as_of)
    touches = source.journeys.touches
    kinds = [kind for kind in (won, pipeline) if kind is not None]
    converting = scope.filter(scope.conversions > 0, scope.kind.isin(kinds))
    placed = placed_touches(
        store,
        converting,
        touches.semi_join(converting, "journey_id"),
        stays,
        journey_entity=source.entity,
        entity_kind=entity_kind,
    ).cache()
    try:
        channels = channels_met(placed.filter(placed.kind == won))
        model_rows, note = model_credits(store, config, source, model, kinds)
        credits = model_rows.semi_join(converting, "journey_id")
        credit, unplaced = credit_by_stage(credits, placed, won=won, pipeline=pipeline)
        by_channel = channel_credit(credits.filter(credits.kind == won))
    finally:
        placed.release()

    paths = paths_before(scope, touches, kind=won, top=TOP_SEQUENCES)
    records: list[dict[str, Any]] = [
        {str(key): value for key, value in row.items()} for row in paths.to_dict("records")
    ]
    return TouchFigures(
        won_kind=won,
        pipeline_kind=pipeline,
        channels=channels,
        credit=credit,
        channel_credit=by_channel,
        top_sequences=tuple(_path_row(row) for row in records),
        unplaced_revenue=unplaced,
        notes=[note] if note else [],
    )


def channels_met(placed: ibis.Table) -> dict[str, tuple[ChannelShare, ...]]:
    """Return per stage its :data:`TOP_CHANNELS` most frequent channels and their shares.

    Ties go to the channel name that sorts first. Shares are of all the stage's placed touches.
    """
    counts = placed.group_by(["stage", "channel"]).aggregate(touches=placed.count()).to_pandas()
    result: dict[str, tuple[ChannelShare, ...]] = {}
    for stage, rows in counts.groupby("stage"):
        total = int(rows.touches.sum())
        ranked = rows.sort_values(["touches", "channel"], ascending=[False, True]).head(
            TOP_CHANNELS
        )
        result[str(stage)] = tuple(
            ChannelShare(
                channel=str(row.channel), touches=int(row.touches), share=row.touches / total
            )
            for row in ranked.itertuples()
        )
    return result


def credit_by_stage(
    credits: ibis.Table, placed: ibis.Table, *, won: str, pipeline: str | None
) -> tuple[dict[str, dict[str, tuple[float, float]]], float]:
    """Sum credit per stage for the won and pipeline kinds; return it and the unplaced won value."""
    spots = placed.select(spot_journey="journey_id", spot_position="position", stage="stage")
    joined = credits.left_join(
        spots,
        [credits.journey_id == spots.spot_journey, credits.position == spots.spot_position],
    )
    summed = (
        joined.group_by(["kind", "stage"])
        .aggregate(conversions=exact_sum(joined.credit), value=exact_sum(joined.value_credit))
        .to_pandas()
    )
    result: dict[str, dict[str, tuple[float, float]]] = {WON: {}}
    if pipeline is not None:
        result[PIPELINE] = {}
    unplaced = 0.0
    for row in summed.itertuples():
        role = WON if row.kind == won else PIPELINE
        if row.stage is None or pd.isna(row.stage):
            unplaced += float(row.value) if role == WON else 0.0
            continue
        result[role][str(row.stage)] = (float(row.conversions), float(row.value))
    return result, unplaced


def channel_credit(credits: ibis.Table) -> tuple[ChannelCredit, ...]:
    """Return each channel's won conversions and value credit, most conversions first."""
    summed = (
        credits.group_by("channel")
        .aggregate(conversions=exact_sum(credits.credit), value=exact_sum(credits.value_credit))
        .to_pandas()
        .sort_values(["conversions", "channel"], ascending=[False, True])
    )
    total = float(summed.conversions.sum())
    return tuple(
        ChannelCredit(
            channel=str(row.channel),
            conversions=float(row.conversions),
            value=float(row.value),
            share=float(row.conversions) / total if total > 0 else 0.0,
        )
        for row in summed.itertuples()
    )


def _path_row(row: dict[str, Any]) -> PathRow:
    rate = row["conversion_rate"]
    return PathRow(
        path=str(row["path"]),
        converters=int(row["converters"]),
        share=float(row["share"]),
        converting_journeys=int(row["converting_journeys"]),
        non_converting_journeys=int(row["non_converting_journeys"]),
        conversion_rate=None if rate is None or pd.isna(rate) else float(rate),
    )
