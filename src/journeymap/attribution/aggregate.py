"""Engine-side aggregations that data-driven models solve on: transitions and channel mixes.

Raw touches never reach Python: the engine reduces journeys to state transitions with their
counts (for Markov chains) and to distinct channel mixes with their conversions, value and
nulls (for Shapley values and for spreading channel credit back onto touches).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import scipy.sparse as sp

from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys

STATE_SEPARATOR = "\x1f"
"""Joins the channels of a higher-order Markov state; no channel name contains it."""
START = "(start)"
CONVERSION = "(conversion)"
NULL = "(null)"


def _journey_weights(journeys: Journeys) -> ibis.Table:
    rows = journeys.journeys.filter(journeys.journeys.n_touches > 0)
    return rows.select("journey_id", "conversions", "value", "nulls")


def transitions(journeys: Journeys, order: int = 1, drop_self_loops: bool = True) -> pd.DataFrame:
    """Count the transitions between order-``order`` states over all journeys with touches.

    A state is the tuple of the last ``order`` channels (joined by :data:`STATE_SEPARATOR`);
    a journey shorter than ``order`` is one state made of all its channels. Every journey
    starts in ``(start)`` and ends in ``(conversion)`` (weighted by its conversions, with its
    value) and in ``(null)`` (weighted by its nulls). With ``drop_self_loops``, a state that
    repeats right after itself is counted once.

    Returns a frame with ``source``, ``target``, ``count`` (journeys through the transition)
    and ``value`` (conversion value on transitions into ``(conversion)``, else 0).
    """
    touches = journeys.touches.select("journey_id", "position", "n_touches", "channel")
    touches = touches.inner_join(_journey_weights(journeys), "journey_id")
    in_journey = ibis.window(group_by="journey_id", order_by="position")
    state = touches.channel
    for lag in range(1, order):
        previous = touches.channel.lag(lag).over(in_journey)
        state = ibis.cases(
            (previous.isnull(), state), else_=previous.concat(STATE_SEPARATOR, state)
        )
    states = touches.mutate(state=state)
    first_state = ibis.least(states.n_touches, ibis.literal(order))
    states = states.filter(states.position >= first_state)
    states = states.mutate(source=states.state.lag().over(in_journey).fill_null(START))
    moves = states.filter(states.source != states.state) if drop_self_loops else states

    weight = moves.conversions + moves.nulls
    inner = moves.select(source="source", target="state", count=weight, value=ibis.literal(0.0))
    last = states.filter(states.position == states.n_touches)
    converted = last.filter(last.conversions > 0).select(
        source="state", target=ibis.literal(CONVERSION), count="conversions", value="value"
    )
    lost = last.filter(last.nulls > 0).select(
        source="state", target=ibis.literal(NULL), count="nulls", value=ibis.literal(0.0)
    )
    edges = inner.union(converted).union(lost)
    summed = edges.group_by(["source", "target"]).aggregate(
        count=exact_sum(edges["count"]), value=exact_sum(edges.value)
    )
    frame: pd.DataFrame = summed.order_by(["source", "target"]).to_pandas()
    return frame


@dataclass(frozen=True)
class ChannelMixes:
    """Distinct channel mixes of converting journeys, as a sparse count matrix.

    ``counts[i, j]`` is how many touches of channel ``channels[j]`` mix ``i`` has; ``conversions``,
    ``value`` and ``nulls`` are the totals of the journeys with that mix.
    """

    channels: list[str]
    counts: sp.csr_matrix
    conversions: np.ndarray
    value: np.ndarray
    nulls: np.ndarray


def channel_mixes(journeys: Journeys, *, converting_only: bool = True) -> ChannelMixes:
    """Group journeys with touches by their multiset of channels (order ignored)."""
    touches = journeys.touches
    per_channel = touches.group_by(["journey_id", "channel"]).aggregate(n=touches.count())
    pairs = ibis.struct({"channel": per_channel.channel, "n": per_channel.n})
    mixes = per_channel.group_by("journey_id").aggregate(mix=pairs.collect())
    mixes = mixes.mutate(
        key=mixes.mix.sort()
        .map(lambda item: item.channel.concat(STATE_SEPARATOR, item.n.cast("string")))
        .join("\x1e")
    )
    weights = _journey_weights(journeys)
    if converting_only:
        weights = weights.filter(weights.conversions > 0)
    joined = mixes.inner_join(weights, "journey_id")
    grouped = joined.group_by("key").aggregate(
        conversions=exact_sum(joined.conversions),
        value=exact_sum(joined.value),
        nulls=exact_sum(joined.nulls),
    )
    frame = grouped.order_by("key").to_pandas()
    return _mixes_from_keys(frame)


def _mixes_from_keys(frame: pd.DataFrame) -> ChannelMixes:
    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    for row, key in enumerate(frame.key):
        for item in str(key).split("\x1e"):
            channel, _, count = item.rpartition(STATE_SEPARATOR)
            column = index.setdefault(channel, len(index))
            rows.append(row)
            cols.append(column)
            data.append(float(count))
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(len(frame), len(index)))
    return ChannelMixes(
        channels=list(index),
        counts=matrix,
        conversions=frame.conversions.to_numpy(dtype=float),
        value=frame.value.to_numpy(dtype=float),
        nulls=frame.nulls.to_numpy(dtype=float),
    )
