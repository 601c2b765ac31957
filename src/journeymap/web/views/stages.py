"""The stays that the funnel and velocity views read: CRM deal stages, else journey stages.

With ``deal_stages`` rows in the store, the views follow deals through the CRM's stages in
the order deals first entered them (lost stages left out). Without them they follow people
(or accounts, as the journeys were built) through the configured journey stages: the stored
``stage_timeline`` when ``journeymap stages`` wrote one, else the timeline computed from the
touches and conversions into a temporary table.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis

from journeymap.common.config import Config
from journeymap.journeys.stages import stage_timeline
from journeymap.report.gather import stored_build_settings
from journeymap.report.journey import deal_stage_order
from journeymap.store.store import Store
from journeymap.web.views.base import NoDataError


@dataclass(frozen=True)
class Stays:
    """Stays in stages with ``entity_id``, ``stage``, ``entered_at`` and ``exited_at``.

    ``source`` is ``deal`` (CRM deal stages; ``entity_id`` is the deal) or ``journey``
    (configured stages; ``entity_id`` is the person or account of ``entity_kind``).
    """

    table: ibis.Table
    stages: list[str]
    source: str
    entity_kind: str


def stage_stays(store: Store, config: Config) -> Stays:
    """Return the stays the stage views read.

    Raises:
        NoDataError: the store has neither deal stages nor touches or conversions.
    """
    if store.has_rows("deal_stages"):
        stays = store.table("deal_stages")
        table = stays.select("stage", "entered_at", "exited_at", entity_id=stays.deal_id)
        return Stays(table, deal_stage_order(stays), "deal", "deal")

    names = [stage.name for stage in config.stages]
    if store.has_rows("stage_timeline"):
        timeline = store.table("stage_timeline")
        kind = str(timeline.entity_kind.arbitrary().execute() or "person")
        return Stays(timeline, names, "journey", kind)

    if not (store.has_rows("touchpoints") or store.has_rows("conversions")):
        raise NoDataError(
            "The store has no deal stages, touches or conversions to place in stages",
            "journeymap import deals FILE  (or: journeymap import touchpoints FILE)",
        )
    kind = (stored_build_settings(store) or {}).get("entity", config.journeys.entity)
    computed = stage_timeline(store, config.stages, entity_kind=kind)
    table = store.con.create_table("_web_stage_timeline", computed, temp=True, overwrite=True)
    return Stays(table, names, "journey", kind)


def first_channels(store: Store, stays: Stays) -> ibis.Table:
    """Return ``entity_id, channel``: the channel of each entity's first touch.

    Deals get the first touch of their lead (the person whose id is the deal id, as lead
    imports write them); people and accounts the first touch of their journeys.
    """
    if stays.source == "deal":
        touches = store.table("touchpoints")
        touches = touches.filter(touches.person_id.notnull(), touches.occurred_at.notnull())
        keyed = touches.select("occurred_at", "seq", "channel", entity_id=touches.person_id)
    else:
        journeys = store.table("journeys").select("journey_id", "entity_id")
        touches = store.table("journey_touches")
        joined = touches.inner_join(journeys, "journey_id")
        keyed = joined.select(
            "entity_id", "occurred_at", "channel", seq=joined.position.cast("int64")
        )
    order = ibis.window(group_by="entity_id", order_by=["occurred_at", "seq"])
    ranked = keyed.mutate(_rank=ibis.row_number().over(order))
    return ranked.filter(ranked._rank == 0).select("entity_id", "channel")
