"""The first-touch channel of each person or account: the channel that introduced them.

Segments by acquisition source ("accounts that came through Paid Search") need one channel per
entity. It is the channel of the entity's earliest touch, ordered by ``occurred_at``, then
``seq`` and ``touchpoint_id`` so that ties resolve the same way on every engine.
"""

from __future__ import annotations

import ibis

from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import EntityKind
from journeymap.journeys.build import classified_touches


def first_touch_channels(
    touchpoints: ibis.Table, classifier: ChannelClassifier, entity: EntityKind
) -> ibis.Table:
    """Return ``entity_id`` and ``channel``: one row per entity with a touch."""
    touches = classified_touches(touchpoints, classifier, entity)
    touches = touches.filter(touches.entity_id.notnull())
    order = ibis.window(group_by="entity_id", order_by=["occurred_at", "seq", "touchpoint_id"])
    ranked = touches.mutate(_rank=ibis.row_number().over(order))
    return ranked.filter(ranked._rank == 0).select("entity_id", "channel")
