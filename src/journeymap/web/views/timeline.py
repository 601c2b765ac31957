"""The timeline of one person or account: touches, conversions, deals and stages in time order."""

from __future__ import annotations

from typing import Any

import ibis

from journeymap.common.config import Config
from journeymap.journeys.stages import stage_timeline
from journeymap.store.store import Store
from journeymap.web.filters import Filters
from journeymap.web.views.base import NoDataError, NotFoundError, records

ENTITY_KINDS = ("person", "account")

ENTITY_ROWS = 50
"""Entities the picker lists: those with the most recent conversions first."""


def entities(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return people and accounts to open a timeline of: the latest converters first.

    Shape: ``people`` and ``accounts``: rows of ``id, touches, conversions, last_at``.
    """
    if not (store.has_rows("touchpoints") or store.has_rows("conversions")):
        raise NoDataError(
            "The store has no touches or conversions of any person yet",
            "journeymap import touchpoints FILE  (or: journeymap demo)",
        )
    found = {}
    for kind, column in (("people", "person_id"), ("accounts", "account_id")):
        touches = store.table("touchpoints")
        touches = touches.filter(touches[column].notnull())
        touch_counts = touches.group_by(id=touches[column]).aggregate(
            touches=touches.count(), last_touch=touches.occurred_at.max()
        )
        conversions = store.table("conversions")
        conversions = conversions.filter(conversions[column].notnull())
        converted = conversions.group_by(id=conversions[column]).aggregate(
            conversions=conversions.count(), last_at=conversions.occurred_at.max()
        )
        joined = touch_counts.outer_join(converted, "id")
        rows = joined.select(
            id=ibis.coalesce(joined.id, joined.id_right),
            touches=joined.touches.fill_null(0),
            conversions=joined.conversions.fill_null(0),
            last_at=ibis.coalesce(joined.last_at, joined.last_touch),
        )
        ordered = rows.order_by([ibis.desc("conversions"), ibis.desc("last_at"), "id"])
        found[kind] = records(ordered.limit(ENTITY_ROWS).to_pandas())
    return {**found, "notes": []}


def timeline(store: Store, config: Config, entity_kind: str, entity_id: str) -> dict[str, Any]:
    """Return everything the store knows about one person or account, oldest first.

    Shape: ``entity_kind``, ``id``, ``touches`` (``occurred_at, channel, source, medium,
    campaign, ad_id, touch_type, touchpoint_id``), ``conversions`` (``occurred_at, kind,
    value, currency, deal_id, conversion_id``), ``deals``, ``deal_stages`` and ``stages`` (the
    entity's stays in the configured journey stages: ``stage, entered_at, exited_at, reason``).

    Raises:
        NotFoundError: the kind is unknown, or no touch, conversion or deal has the id.
    """
    if entity_kind not in ENTITY_KINDS:
        raise NotFoundError(
            f"unknown entity kind {entity_kind!r}",
            location="entity",
            hint=f"Use one of {', '.join(ENTITY_KINDS)}",
        )
    column = f"{entity_kind}_id"
    touches = store.table("touchpoints")
    touches = touches.filter(touches[column] == entity_id)
    conversions = store.table("conversions")
    conversions = conversions.filter(conversions[column] == entity_id)
    deals = store.table("deals")
    if entity_kind == "account":
        deals = deals.filter(deals.account_id == entity_id)
    else:
        deals = deals.filter(deals.deal_id.isin(conversions.deal_id))
    stays = store.table("deal_stages").semi_join(deals.select("deal_id"), "deal_id")

    touch_rows = _touches_with_channel(store, touches).to_pandas()
    conversion_rows = (
        conversions.order_by(["occurred_at", "seq"])
        .select("occurred_at", "kind", "value", "currency", "deal_id", "conversion_id")
        .to_pandas()
    )
    deal_rows = (
        deals.select(
            "deal_id",
            "name",
            "stage",
            "amount",
            "currency",
            "owner",
            "is_won",
            "is_closed",
            "created_at",
            "closed_at",
        )
        .order_by("created_at")
        .to_pandas()
    )
    if touch_rows.empty and conversion_rows.empty and deal_rows.empty:
        raise NotFoundError(
            f"no {entity_kind} {entity_id!r} in the store",
            location="id",
            hint="Pick one from the list on the timeline page, or from GET /api/entities",
        )
    sources = {"touchpoints": touches, "conversions": conversions, "deals": deals}
    sources["deal_stages"] = stays
    stages = stage_timeline(sources, config.stages, entity_kind=entity_kind)
    stage_rows = stages.select("stage", "entered_at", "exited_at", "reason").order_by("entered_at")
    return {
        "entity_kind": entity_kind,
        "id": entity_id,
        "touches": records(touch_rows),
        "conversions": records(conversion_rows),
        "deals": records(deal_rows),
        "deal_stages": records(
            stays.select("deal_id", "stage", "entered_at", "exited_at")
            .order_by("entered_at")
            .to_pandas()
        ),
        "stages": records(stage_rows.to_pandas()),
        "notes": [],
    }


def _touches_with_channel(store: Store, touches: ibis.Table) -> ibis.Table:
    """Return the touches with the channel that the last journey build gave them."""
    channel = touches.channel
    if "journey_touches" in store.con.list_tables():
        built = store.table("journey_touches")
        built = built.semi_join(touches.select("touchpoint_id"), "touchpoint_id")
        built = built.group_by("touchpoint_id").aggregate(built_channel=built.channel.arbitrary())
        touches = touches.left_join(built, "touchpoint_id")
        channel = ibis.coalesce(touches.built_channel, touches.channel)
    ordered = touches.select(
        "occurred_at",
        "source",
        "medium",
        "campaign",
        "ad_id",
        "touch_type",
        "touchpoint_id",
        "seq",
        channel=channel,
    ).order_by(["occurred_at", "seq"])
    return ordered.drop("seq")
