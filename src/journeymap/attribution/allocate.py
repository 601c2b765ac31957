"""Spreading channel-level credit onto touches.

Data-driven models (Markov chains, Shapley values) credit channels, not touches. To store
per-touch rows whose channel totals equal the model's channel credit, each channel's credit
is spread over the channel's touches in converting journeys, in proportion to each touch's
linear share (its journey's conversions, or value, over the journey's touches).

The touches of one conversion do not add up to that conversion under these models, and
cannot in general: a channel whose journeys are mostly single-channel journeys can have
more conversions on those journeys than the chain credits it with. Totals per channel, per
model and overall are exact. A channel with credit but no touch to carry it (a Markov chain
can credit a channel seen only in non-converting journeys, or only in conversions without
value) keeps it on one channel-level row without a journey.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import pandas as pd

from journeymap.attribution.base import CREDIT_COLUMNS, unattributed_rows
from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys
from journeymap.store.schema import NOT_SET


def _spread(target: ibis.Value, part: ibis.Value, whole: ibis.Value) -> ibis.Value:
    """Return ``target * part / whole``, or 0 where ``whole`` is 0."""
    return ibis.cases((whole > 0, target * part / whole), else_=0.0)


def spread_channel_credit(
    model: str,
    journeys: Journeys,
    conversion_targets: Mapping[str, float],
    value_targets: Mapping[str, float],
    kind: str | None = None,
    *,
    include_unattributed: bool = True,
) -> ibis.Table:
    """Return per-touch credit rows whose channel totals equal the targets.

    Targets are by channel for the converting journeys that have touches; conversions
    without a touch are credited to ``(unattributed)`` as under every model. A channel
    without a target gets nothing. ``kind`` labels channel-level rows.
    """
    channels = sorted(set(conversion_targets) | set(value_targets))
    targets = ibis.memtable(
        pd.DataFrame(
            {
                "channel": channels,
                "_target": [float(conversion_targets.get(channel, 0.0)) for channel in channels],
                "_target_value": [float(value_targets.get(channel, 0.0)) for channel in channels],
            }
        ),
        schema={"channel": "string", "_target": "float64", "_target_value": "float64"},
    )
    converting = journeys.journeys.filter(
        (journeys.journeys.conversions > 0) & (journeys.journeys.n_touches > 0)
    ).select("journey_id", "conversion_id", "kind", "conversions", "value")
    touches = journeys.touches.inner_join(converting, "journey_id").inner_join(targets, "channel")
    touches = touches.mutate(
        _linear=touches.conversions / touches.n_touches.cast("float64"),
        _linear_value=touches.value / touches.n_touches.cast("float64"),
    )
    in_channel = ibis.window(group_by="channel")
    touches = touches.mutate(
        _channel_linear=exact_sum(touches._linear, in_channel),
        _channel_linear_value=exact_sum(touches._linear_value, in_channel),
    )
    credited = touches.select(
        model=ibis.literal(model),
        journey_id=touches.journey_id,
        conversion_id=touches.conversion_id,
        kind=touches.kind,
        touchpoint_id=touches.touchpoint_id,
        position=touches.position,
        channel=touches.channel,
        source_medium=touches.source_medium,
        campaign=touches.campaign,
        ad_id=touches.ad_id,
        credit=_spread(touches._target, touches._linear, touches._channel_linear),
        value_credit=_spread(
            touches._target_value, touches._linear_value, touches._channel_linear_value
        ),
    )
    credited = credited.filter((credited.credit != 0) | (credited.value_credit != 0))
    carried = (
        touches.group_by("channel")
        .aggregate(conversions=exact_sum(touches._linear), value=exact_sum(touches._linear_value))
        .to_pandas()
    )
    carried_conversions = dict(zip(carried.channel, carried.conversions, strict=True))
    carried_value = dict(zip(carried.channel, carried.value, strict=True))
    leftover = [
        (
            channel,
            0.0
            if carried_conversions.get(channel, 0.0) > 0
            else float(conversion_targets.get(channel, 0.0)),
            0.0 if carried_value.get(channel, 0.0) > 0 else float(value_targets.get(channel, 0.0)),
        )
        for channel in channels
    ]
    leftover = [row for row in leftover if row[1] != 0 or row[2] != 0]
    parts = credited.select(*CREDIT_COLUMNS)
    if include_unattributed:
        parts = parts.union(unattributed_rows(model, journeys.journeys).select(*CREDIT_COLUMNS))
    if leftover:
        parts = parts.union(_channel_rows(model, leftover, kind).select(*CREDIT_COLUMNS))
    return parts


def _channel_rows(model: str, rows: list[tuple[str, float, float]], kind: str | None) -> ibis.Table:
    """Return credit rows for channel credit that no touch carries."""
    frame = pd.DataFrame(rows, columns=["channel", "credit", "value_credit"])
    table = ibis.memtable(
        frame, schema={"channel": "string", "credit": "float64", "value_credit": "float64"}
    )
    return table.select(
        model=ibis.literal(model),
        journey_id=ibis.null(str),
        conversion_id=ibis.null(str),
        kind=ibis.literal(kind, type="string"),
        touchpoint_id=ibis.null(str),
        position=ibis.literal(0, type="int64"),
        channel=table.channel,
        source_medium=ibis.literal(NOT_SET),
        campaign=ibis.literal(NOT_SET),
        ad_id=ibis.literal(NOT_SET),
        credit=table.credit.cast("float64"),
        value_credit=table.value_credit.cast("float64"),
    )
