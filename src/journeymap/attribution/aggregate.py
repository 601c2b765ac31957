"""Engine-side aggregations that data-driven models solve on: transitions and channel mixes.

Raw touches never reach Python: the engine reduces journeys to their distinct paths with
conversions, value and nulls, and the models count transitions (Markov chains), coalitions
(Shapley values) and leave-one-out paths (Fractribution) over those.
"""

from __future__ import annotations

import ibis
import pandas as pd

from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys

STATE_SEPARATOR = "\x1f"
"""Joins the channels of a higher-order Markov state; no channel name contains it."""
START = "(start)"
CONVERSION = "(conversion)"
NULL = "(null)"


def journey_keys(journeys: Journeys) -> ibis.Table:
    """Return each journey with touches and its channel sequence (an expression, memoised).

    Columns: ``journey_id``, ``kind``, ``key`` (channels in position order, joined by
    :data:`STATE_SEPARATOR`), ``conversions``, ``value``, ``nulls``.
    """
    if "keys" not in journeys.memo:
        touches = journeys.touches
        pairs = ibis.struct({"position": touches.position, "channel": touches.channel})
        keys = touches.group_by("journey_id").aggregate(_steps=pairs.collect())
        keys = keys.select(
            "journey_id",
            key=keys._steps.sort().map(lambda step: step.channel).join(STATE_SEPARATOR),
        )
        weights = journeys.journeys.select("journey_id", "kind", "conversions", "value", "nulls")
        journeys.memo["keys"] = keys.inner_join(weights, "journey_id")
    table: ibis.Table = journeys.memo["keys"]
    return table


def path_summary(journeys: Journeys) -> pd.DataFrame:
    """Return the distinct paths of each kind: ``kind, key, conversions, value, nulls``."""
    if "summary" not in journeys.memo:
        keyed = journey_keys(journeys)
        grouped = keyed.group_by(["kind", "key"]).aggregate(
            conversions=exact_sum(keyed.conversions),
            value=exact_sum(keyed.value),
            nulls=exact_sum(keyed.nulls),
        )
        journeys.memo["summary"] = grouped.order_by(["kind", "key"]).to_pandas()
    frame: pd.DataFrame = journeys.memo["summary"]
    return frame


def transitions(journeys: Journeys, order: int = 1, drop_self_loops: bool = True) -> pd.DataFrame:
    """Count the transitions between order-``order`` states over all journeys with touches.

    A state is the tuple of the last ``order`` channels (joined by :data:`STATE_SEPARATOR`);
    a journey shorter than ``order`` is one state made of all its channels. Every journey
    starts in ``(start)`` and ends in ``(conversion)`` (weighted by its conversions, with its
    value) and in ``(null)`` (weighted by its nulls). With ``drop_self_loops``, a state that
    repeats right after itself is counted once. Counting runs over distinct paths.

    Returns a frame with ``source``, ``target``, ``count`` (journeys through the transition)
    and ``value`` (conversion value on transitions into ``(conversion)``, else 0).
    """
    summary = path_summary(journeys)
    return transitions_of_paths(summary, order, drop_self_loops)


def transitions_of_paths(summary: pd.DataFrame, order: int, drop_self_loops: bool) -> pd.DataFrame:
    """Count transitions from distinct paths (``key``, ``conversions``, ``value``, ``nulls``)."""
    counts: dict[tuple[str, str], float] = {}
    values: dict[tuple[str, str], float] = {}
    for key, conversions, value, nulls in zip(
        summary.key.tolist(),
        summary.conversions.tolist(),
        summary.value.tolist(),
        summary.nulls.tolist(),
        strict=True,
    ):
        channels = key.split(STATE_SEPARATOR)
        if order == 1:
            states = channels
        elif len(channels) <= order:
            states = [key]
        else:
            states = [
                STATE_SEPARATOR.join(channels[start : start + order])
                for start in range(len(channels) - order + 1)
            ]
        weight = conversions + nulls
        previous = START
        for state in states:
            if drop_self_loops and state == previous:
                continue
            edge = (previous, state)
            counts[edge] = counts.get(edge, 0.0) + weight
            previous = state
        if conversions > 0:
            edge = (previous, CONVERSION)
            counts[edge] = counts.get(edge, 0.0) + conversions
            values[edge] = values.get(edge, 0.0) + value
        if nulls > 0:
            edge = (previous, NULL)
            counts[edge] = counts.get(edge, 0.0) + nulls
    frame = pd.DataFrame(
        {
            "source": [source for source, _ in counts],
            "target": [target for _, target in counts],
            "count": list(counts.values()),
            "value": [values.get(edge, 0.0) for edge in counts],
        }
    )
    frame = frame.astype({"source": str, "target": str, "count": float, "value": float})
    return frame.sort_values(["source", "target"], ignore_index=True)
