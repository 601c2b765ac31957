"""Engine-side aggregations that data-driven models solve on: transitions and channel mixes.

Raw touches never reach Python: the engine reduces journeys to their distinct paths with
conversions, value and nulls, and the models count transitions (Markov chains), coalitions
(Shapley values) and leave-one-out paths (Fractribution) over those.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys, PathSource

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
    """Return the distinct paths of each kind: ``kind, key, conversions, value, nulls``.

    The order is the same on every run. Journeys without touches have no path and are left
    out.
    """
    if "summary" not in journeys.memo:
        source = journeys.memo.get("summary_source")
        if source is None:
            weights = journeys.journeys.select(
                "journey_id", "kind", "conversions", "value", "nulls"
            )
            source = PathSource(journeys.touches, weights, ("journey_id",))
        journeys.memo["summary"] = summarise_paths(source)
    frame: pd.DataFrame = journeys.memo["summary"]
    return frame


def summarise_paths(source: PathSource) -> pd.DataFrame:
    """Group journeys by their channel sequence and sum their weights, in the engine.

    Each channel gets a small integer code, and a path becomes a few int64 numbers with the
    code of position ``p`` in bits ``bits * p`` onwards: sums of shifted codes, which any
    engine groups faster than ordered lists of text. The distinct paths are decoded here.
    """
    touches = source.touches
    channels = sorted(
        str(name) for name in touches.select("channel").distinct().to_pandas().channel.dropna()
    )
    if not channels:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in SUMMARY_DTYPES.items()})
    codes = {name: number for number, name in enumerate(channels, start=1)}
    bits = len(channels).bit_length()
    per_part = 63 // bits
    longest = int(touches.position.max().execute())
    parts = [f"_part{number}" for number in range(-(-longest // per_part))]

    code = touches.channel.substitute(codes, else_=0).cast("int64")
    offset = touches.position - 1
    # The slot is in range on every row, so no engine sees a negative or too wide shift.
    shifted = code << ((offset % per_part) * bits)
    sums = {
        name: ibis.cases((offset // per_part == number, shifted), else_=0).sum()
        for number, name in enumerate(parts)
    }
    if source.weights is None:
        # One pass: the journey's weights are sums over its touches.
        paths = touches.group_by([*source.keys, "kind"]).aggregate(
            **sums, conversions=touches.conversions.sum(), value=touches.value.sum()
        )
        weighted = paths.mutate(nulls=ibis.cases((paths.conversions == 0, 1.0), else_=0.0))
    else:
        paths = touches.group_by(list(source.keys)).aggregate(**sums)
        weighted = paths.inner_join(source.weights, list(source.keys))
    grouped = weighted.group_by(["kind", *parts]).aggregate(
        conversions=exact_sum(weighted.conversions),
        value=exact_sum(weighted.value),
        nulls=exact_sum(weighted.nulls),
    )
    # Sorted by the numbers, so that the models add up paths in the same order every run.
    frame = grouped.order_by(["kind", *parts]).to_pyarrow()

    # Decode each position's code into its channel (null past the path's end), then join
    # the positions with the separator, all in Arrow's compiled kernels.
    names = pa.array([None, *channels], type=pa.string())
    mask = (1 << bits) - 1
    numbers = [frame[name].to_numpy() for name in parts]
    steps = [
        pc.take(names, (numbers[at // per_part] >> ((at % per_part) * bits)) & mask)
        for at in range(longest)
    ]
    keys = pc.binary_join_element_wise(*steps, STATE_SEPARATOR, null_handling="skip")
    table = pa.table(
        {
            "kind": frame["kind"].cast(pa.string()),
            "key": keys,
            "conversions": frame["conversions"],
            "value": frame["value"],
            "nulls": frame["nulls"],
        }
    )
    summary: pd.DataFrame = table.to_pandas()
    return summary


SUMMARY_DTYPES = {
    "kind": "object",
    "key": "object",
    "conversions": "float64",
    "value": "float64",
    "nulls": "float64",
}


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


@dataclass(frozen=True)
class PathSteps:
    """The converting distinct paths, one entry per step, for vectorised rule models.

    Steps of one path are contiguous and in position order. ``path`` indexes the path of a
    step, ``position`` counts from 1 and ``length`` is the path's length; ``channel`` codes
    index ``channels``. Per path: ``kinds`` (codes into ``kind_names``), ``conversions``,
    ``value`` and ``starts`` (the index of its first step).
    """

    path: np.ndarray
    position: np.ndarray
    length: np.ndarray
    channel: np.ndarray
    channels: list[str]
    starts: np.ndarray
    kinds: np.ndarray
    kind_names: list[str]
    conversions: np.ndarray
    value: np.ndarray

    def totals(self, weight: np.ndarray) -> pd.DataFrame:
        """Sum ``weight`` (each step's share of its path) times conversions and value.

        Returns the frame of :meth:`AttributionModel.channel_totals`: ``kind, channel,
        conversions, value``, one row per kind and channel with credit.
        """
        if not self.channels:
            return pd.DataFrame({name: pd.Series(dtype=float) for name in TOTALS})
        cells = self.kinds[self.path] * len(self.channels) + self.channel
        size = len(self.kind_names) * len(self.channels)
        conversions = np.bincount(cells, weight * self.conversions[self.path], minlength=size)
        value = np.bincount(cells, weight * self.value[self.path], minlength=size)
        kind, channel = np.divmod(np.arange(size), len(self.channels))
        frame = pd.DataFrame(
            {
                "kind": np.array(self.kind_names, dtype=object)[kind],
                "channel": np.array(self.channels, dtype=object)[channel],
                "conversions": conversions,
                "value": value,
            }
        )
        frame = frame[(frame.conversions != 0) | (frame.value != 0)]
        return frame.reset_index(drop=True)


TOTALS = ("kind", "channel", "conversions", "value")


def path_steps(journeys: Journeys) -> PathSteps:
    """Return the converting distinct paths as steps (memoised on ``journeys``)."""
    if "steps" not in journeys.memo:
        summary = path_summary(journeys)
        converting = summary[summary.conversions > 0]
        split = [key.split(STATE_SEPARATOR) for key in converting.key.tolist()]
        lengths = np.fromiter((len(path) for path in split), dtype=np.int64, count=len(split))
        flat = [channel for path in split for channel in path]
        codes, channels = pd.factorize(pd.Series(flat, dtype=object), sort=True)
        kinds, kind_names = pd.factorize(converting.kind, sort=True)
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        path = np.repeat(np.arange(len(lengths)), lengths)
        journeys.memo["steps"] = PathSteps(
            path=path,
            position=np.arange(len(path)) - starts[path] + 1,
            length=lengths[path],
            channel=codes.astype(np.int64),
            channels=[str(name) for name in channels],
            starts=starts,
            kinds=kinds.astype(np.int64),
            kind_names=[str(name) for name in kind_names],
            conversions=converting.conversions.to_numpy(dtype=float),
            value=converting.value.to_numpy(dtype=float),
        )
    steps: PathSteps = journeys.memo["steps"]
    return steps
