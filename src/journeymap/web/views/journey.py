"""The stage views: funnel with drop-off by source, velocity with stalled entities, and ICP."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import ibis
import pandas as pd

from journeymap import api
from journeymap.analyses import velocity as velocity_analysis
from journeymap.analyses.dropoff import dropoff
from journeymap.analyses.funnel import stage_funnel
from journeymap.common.config import Config
from journeymap.common.timeutil import utc_now
from journeymap.store.store import Store
from journeymap.web.filters import Filters
from journeymap.web.views.base import NoDataError, json_value, records
from journeymap.web.views.stages import first_channels, stage_stays

FUNNEL_PERIOD = "month"
"""Cohort period of the funnel view."""

STALLED_ROWS = 200
"""Longest-stalled entities the velocity view lists."""


def funnel(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the stage funnel by monthly entry cohort and drop-off by first-touch channel.

    Shape: ``source`` (``deal`` or ``journey``), ``entity_kind``, ``stages``, ``steps``: one
    row per stage pair summed over the cohorts (``from_stage, to_stage, entered, converted,
    rate, open``), ``cohorts``: the rows per cohort, and ``dropoff``: one row per stage pair
    and channel (``channel, from_stage, to_stage, entered, converted, lost, open, rate,
    loss_rate, excess_lost, rank``), ranked by lost entrants beyond the average loss rate.
    The date filters bound the entry cohorts; the end date is also the moment of counting.
    """
    stays = stage_stays(store, config)
    if len(stays.stages) < 2:
        raise NoDataError(
            "A funnel needs at least two stages with entries",
            "journeymap import deals FILE",
        )
    as_of = filters.end_before
    table = stays.table
    if filters.start_at is not None:
        table = table.filter(table.entered_at >= filters.start_at)
    cohorts = stage_funnel(table, stays.stages, period=FUNNEL_PERIOD, as_of=as_of).to_pandas()
    steps = _summed_steps(cohorts, stays.stages)

    notes: list[str] = []
    channels = first_channels(store, stays)
    with_channel = table.left_join(channels, "entity_id").select(
        "entity_id",
        "stage",
        "entered_at",
        "exited_at",
        channel=channels.channel.fill_null("(none)"),
    )
    try:
        lost = dropoff(with_channel, stays.stages, by="channel", as_of=as_of, top=3)
    except ValueError as exc:
        notes.append(f"No drop-off by channel: {exc}")
        lost = pd.DataFrame()
    keep = ["channel", "from_stage", "to_stage", "entered", "converted", "lost", "open", "rate"]
    keep += ["loss_rate", "excess_lost", "rank", "top"]
    lost = lost[[column for column in keep if column in lost.columns]]
    if filters.segment is not None:
        notes.append("The segment filter does not apply to the funnel.")
    return {
        "source": stays.source,
        "entity_kind": stays.entity_kind,
        "stages": stays.stages,
        "period": FUNNEL_PERIOD,
        "steps": records(steps),
        "cohorts": records(cohorts),
        "dropoff": records(lost),
        "notes": notes,
    }


def _summed_steps(cohorts: pd.DataFrame, stages: list[str]) -> pd.DataFrame:
    rows = []
    for first, second in itertools.pairwise(stages):
        pair = cohorts[(cohorts.from_stage == first) & (cohorts.to_stage == second)]
        entered = int(pair.entered.sum())
        converted = int(pair.converted.sum())
        rows.append(
            {
                "from_stage": first,
                "to_stage": second,
                "entered": entered,
                "converted": converted,
                "rate": converted / entered if entered else None,
                "open": int(pair.open.sum()),
            }
        )
    return pd.DataFrame(
        rows, columns=["from_stage", "to_stage", "entered", "converted", "rate", "open"]
    )


def velocity(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the days spent in each stage and the entities stalled in their current stage.

    Shape: ``source``, ``entity_kind``, ``as_of``, ``time_in_stage``: rows of ``stage,
    completed_stays, median_days, p75_days, p90_days, open_stays``, and ``stalled``: up to
    :data:`STALLED_ROWS` rows of ``entity_id, stage, entered_at, days_in_stage,
    threshold_days`` (deals add ``owner, amount, currency``), longest first. An open deal or
    entity is stalled when its current stay is longer than the stage's threshold: the
    configured ``stall_days`` of a journey stage, else the stage's 75th percentile.
    """
    stays = stage_stays(store, config)
    as_of = filters.end_before or _data_end(stays.table)
    if stays.source == "deal":
        days = api.velocity(store, as_of=as_of)
        stalled = api.velocity(store, stalled=True, as_of=as_of).rename(
            columns={"deal_id": "entity_id"}
        )
    else:
        table = stays.table.mutate(deal_id=stays.table.entity_id)
        days = velocity_analysis.time_in_stage(table, as_of=as_of).to_pandas()
        stalled = _stalled_entities(stays.table, days, config, as_of)
    order = {name: index for index, name in enumerate(stays.stages)}
    days = days.assign(_order=days.stage.map(order)).sort_values("_order", kind="stable")
    return {
        "source": stays.source,
        "entity_kind": stays.entity_kind,
        "as_of": json_value(as_of),
        "time_in_stage": records(days.drop(columns="_order")),
        "stalled": records(stalled.head(STALLED_ROWS)),
        "stalled_total": len(stalled),
        "notes": [],
    }


def _data_end(table: ibis.Table) -> datetime:
    latest = ibis.greatest(table.entered_at.max(), table.exited_at.max()).execute()
    if latest is None or pd.isna(latest):
        return utc_now()
    moment: datetime = pd.Timestamp(latest).to_pydatetime()
    return moment


def _stalled_entities(
    timeline: ibis.Table, days: pd.DataFrame, config: Config, as_of: datetime
) -> pd.DataFrame:
    """Return the open journey-stage stays longer than their stage's threshold."""
    configured = {stage.name: stage.stall_days for stage in config.stages}
    thresholds = {
        str(row.stage): configured.get(str(row.stage)) or row.p75_days for row in days.itertuples()
    }
    moment = pd.Timestamp(as_of)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
    open_stays = timeline.filter(timeline.exited_at.isnull() & (timeline.entered_at <= moment))
    frame = open_stays.select("entity_id", "stage", "entered_at").to_pandas()
    frame["days_in_stage"] = (moment - frame.entered_at).dt.total_seconds() / 86_400
    frame["threshold_days"] = frame.stage.map(thresholds).astype("float64")
    frame = frame[frame.days_in_stage > frame.threshold_days]
    ordered: pd.DataFrame = frame.sort_values(
        ["days_in_stage", "entity_id"], ascending=[False, True]
    )
    return ordered


def icp(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return the ideal customer profile and each dimension's segments.

    Shape: ``profile``: the ranked rows of :func:`journeymap.api.icp`, ``segments``: per
    dimension the rows of its segments (``closed, won, win_rate, ..., customers, churned,
    retention_rate, ...``), ``note``, ``retention``: whether churn data exist, so that the
    retention columns have values, and ``notes``.
    """
    if not (store.has_rows("deals") and store.has_rows("accounts")):
        raise NoDataError(
            "The ideal customer profile needs deals with their accounts",
            "journeymap import deals FILE --accounts FILE",
        )
    profile, note = api.icp(store)
    segments = {}
    for dimension in api.default_icp_dimensions(store):
        frame, _ = api.icp(store, by=dimension)
        segments[dimension] = records(frame)
    retention = bool(profile["churned"].notna().any())
    notes = [] if retention else [NO_CHURN_NOTE]
    return {
        "profile": records(profile),
        "segments": segments,
        "note": note,
        "retention": retention,
        "notes": notes,
    }


NO_CHURN_NOTE = (
    "No account has a churn date and no closed deal is a renewal, so retention is not shown. "
    "Import an accounts file with a churned_at column to add it."
)
