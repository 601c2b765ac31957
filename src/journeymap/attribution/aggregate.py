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

    The order is that of :func:`path_steps`, the same on every run. Journeys without touches
    have no path and are left out. The text keys are built on first use and memoised.
    """
    if "summary" not in journeys.memo:
        steps = path_steps(journeys)
        journeys.memo["summary"] = pd.DataFrame(
            {
                "kind": np.array(steps.kind_names, dtype=object)[steps.kinds],
                "key": steps.keys(),
                "conversions": steps.conversions,
                "value": steps.value,
                "nulls": steps.nulls,
            }
        )
    frame: pd.DataFrame = journeys.memo["summary"]
    return frame


def path_steps(journeys: Journeys) -> PathSteps:
    """Return the distinct paths of the journeys as steps, counted in the engine (memoised)."""
    if "steps" not in journeys.memo:
        source = journeys.memo.get("summary_source")
        if source is None:
            weights = journeys.journeys.select(
                "journey_id", "kind", "conversions", "value", "nulls"
            )
            source = PathSource(journeys.touches, weights, ("journey_id",))
        journeys.memo["steps"] = summarise_paths(source)
    steps: PathSteps = journeys.memo["steps"]
    return steps


def summarise_paths(source: PathSource) -> PathSteps:
    """Group journeys by their channel sequence and sum their weights, in the engine.

    Each channel gets a small integer code, and a path becomes a few int64 numbers with the
    code of position ``p`` in bits ``bits * p`` onwards: sums of shifted codes, which any
    engine groups faster than ordered lists of text. The distinct paths are decoded here
    into steps.
    """
    touches = source.touches
    if source.channels is not None:
        channels = list(source.channels)
    else:
        found = touches.select("channel").distinct().to_pandas().channel.dropna()
        channels = sorted(str(name) for name in found)
    longest = touches.position.max().execute() if channels else None
    if longest is None or pd.isna(longest):
        empty = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in SUMMARY_DTYPES.items()})
        return PathSteps.from_codes(np.zeros((0, 0), dtype=np.int64), [], empty)
    longest = int(longest)
    codes = {name: number for number, name in enumerate(channels, start=1)}
    bits = len(channels).bit_length()
    per_part = 63 // bits
    parts = [f"_part{number}" for number in range(-(-longest // per_part))]

    if source.channels is not None:
        code = touches.channel_code.cast("int64")
    else:
        code = touches.channel.substitute(codes, else_=0).cast("int64")
    offset = touches.position - 1
    # The slot is in range on every row, so no engine gets a negative or too wide shift.
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

    # Decode each position's code (0 past the path's end).
    mask = (1 << bits) - 1
    numbers = [frame[name].to_numpy() for name in parts]
    # One small integer per path and position: the matrix is paths × longest path.
    codes_at = np.empty((len(frame), longest), dtype=np.min_scalar_type(len(channels)))
    for at in range(longest):
        codes_at[:, at] = (numbers[at // per_part] >> ((at % per_part) * bits)) & mask
    weights = pd.DataFrame(
        {
            "kind": frame["kind"].to_numpy(zero_copy_only=False),
            "conversions": frame["conversions"].to_numpy(),
            "value": frame["value"].to_numpy(),
            "nulls": frame["nulls"].to_numpy(),
        }
    )
    return PathSteps.from_codes(codes_at, channels, weights)


SUMMARY_DTYPES = {
    "kind": "object",
    "key": "object",
    "conversions": "float64",
    "value": "float64",
    "nulls": "float64",
}


def transitions(
    journeys: Journeys, order: int = 1, drop_self_loops: bool = True, kind: str | None = None
) -> pd.DataFrame:
    """Count the transitions between order-``order`` states over all journeys with touches.

    A state is the tuple of the last ``order`` channels (joined by :data:`STATE_SEPARATOR`);
    a journey shorter than ``order`` is one state made of all its channels. Every journey
    starts in ``(start)`` and ends in ``(conversion)`` (weighted by its conversions, with its
    value) and in ``(null)`` (weighted by its nulls). With ``drop_self_loops``, a state that
    repeats right after itself is counted once. Counting runs over distinct paths, of one
    ``kind`` when given.

    Returns a frame with ``source``, ``target``, ``count`` (journeys through the transition)
    and ``value`` (conversion value on transitions into ``(conversion)``, else 0), sorted by
    source and target.
    """
    return transitions_of_steps(path_steps(journeys), order, drop_self_loops, kind)


START_ID, CONVERSION_ID, NULL_ID = -1, -2, -3
"""State numbers of the start and the two absorbing states; channel states are positive."""


def transitions_of_steps(
    steps: PathSteps, order: int, drop_self_loops: bool, kind: str | None = None
) -> pd.DataFrame:
    """Count the transitions of :func:`transitions` over path steps, vectorised.

    A state is a number: the codes (channel index + 1) of its channels as digits in base
    ``len(channels) + 1``, the oldest channel first, so that states of different lengths
    differ too.
    """
    path, position, length, code = steps.path, steps.position, steps.length, steps.channel + 1
    chosen = steps.kind_mask(kind)[steps.path]
    if not chosen.all():
        path, position, length, code = path[chosen], position[chosen], length[chosen], code[chosen]
    base = len(steps.channels) + 1

    # Each step's state: its own code and up to order - 1 earlier ones of the same path.
    state = code.astype(np.int64, copy=order > 1)
    for back in range(1, order):
        earlier = np.roll(code, back)
        state += np.where(back < position, earlier * base**back, 0)
    if order > 1:
        is_state = (position >= order) | ((length < order) & (position == length))
        state, path = state[is_state], path[is_state]
    if drop_self_loops and len(state):
        repeat = np.zeros(len(state), dtype=bool)
        repeat[1:] = (path[1:] == path[:-1]) & (state[1:] == state[:-1])
        state, path = state[~repeat], path[~repeat]

    first = np.ones(len(state), dtype=bool)
    first[1:] = path[1:] != path[:-1]
    last = np.ones(len(state), dtype=bool)
    last[:-1] = path[1:] != path[:-1]
    # Moves between states, summed apart from the few edges that end paths, so that no
    # array with one entry per step is copied into a longer one.
    before = np.roll(state, 1)
    before[first] = START_ID
    moves = _sum_edges(before, state, (steps.conversions + steps.nulls)[path])
    del before
    ends = path[last]
    conversions, value, nulls = steps.conversions[ends], steps.value[ends], steps.nulls[ends]
    converting, dropping = conversions > 0, nulls > 0
    end_states = state[last]
    endings = _sum_edges(
        np.concatenate([end_states[converting], end_states[dropping]]),
        np.concatenate(
            [
                np.full(int(converting.sum()), CONVERSION_ID),
                np.full(int(dropping.sum()), NULL_ID),
            ]
        ),
        np.concatenate([conversions[converting], nulls[dropping]]),
        np.concatenate([value[converting], np.zeros(int(dropping.sum()))]),
    )
    # The two sets of edges are disjoint: moves never end in the conversion or null state.
    summed = pd.concat([moves, endings], ignore_index=True)
    numbers = np.unique(np.concatenate([summed.source, summed.target]))
    names = {number: _state_name(int(number), steps.channels, base) for number in numbers}
    frame = pd.DataFrame(
        {
            "source": summed.source.map(names).astype(str),
            "target": summed.target.map(names).astype(str),
            "count": summed["count"].astype(float),
            "value": summed["value"].astype(float),
        }
    )
    return frame.sort_values(["source", "target"], ignore_index=True)


def _sum_edges(
    sources: np.ndarray, targets: np.ndarray, counts: np.ndarray, values: np.ndarray | None = None
) -> pd.DataFrame:
    """Sum counts and values per (source, target) edge, adding in the input's order.

    ``values`` None is a value of 0 on every edge.

    Each edge becomes one int64 number when the state numbers allow it, so that hashing
    replaces a sort. Larger state numbers fall back to a group-by on both columns.
    """
    offset = -NULL_ID
    width = int(max(sources.max(initial=0), targets.max(initial=0))) + offset + 1
    if width * width >= 2**62:
        edges = pd.DataFrame({"source": sources, "target": targets, "count": counts})
        edges["value"] = 0.0 if values is None else values
        return edges.groupby(["source", "target"], sort=False).sum().reset_index()
    combined = sources + offset
    combined *= width
    combined += targets
    combined += offset
    codes, unique = pd.factorize(combined, sort=False)
    del combined
    return pd.DataFrame(
        {
            "source": unique // width - offset,
            "target": unique % width - offset,
            "count": np.bincount(codes, counts, minlength=len(unique)),
            "value": (
                np.zeros(len(unique))
                if values is None
                else np.bincount(codes, values, minlength=len(unique))
            ),
        }
    )


def _state_name(number: int, channels: list[str], base: int) -> str:
    """Return the name of a state number (see :func:`transitions_of_steps`)."""
    special = {START_ID: START, CONVERSION_ID: CONVERSION, NULL_ID: NULL}
    if number in special:
        return special[number]
    names = []
    while number:
        number, digit = divmod(number, base)
        names.append(channels[digit - 1])
    return STATE_SEPARATOR.join(reversed(names))


@dataclass(frozen=True)
class PathSteps:
    """The distinct paths of some journeys, one entry per step, in a fixed order.

    Steps of one path are contiguous and in position order. ``path`` indexes the path of a
    step, ``position`` counts from 1 and ``length`` is the path's length; ``channel`` codes
    index ``channels``. Per path: ``kinds`` (codes into ``kind_names``), ``conversions``,
    ``value``, ``nulls``, ``starts`` (the index of its first step) and ``lengths``.
    """

    path: np.ndarray
    position: np.ndarray
    length: np.ndarray
    channel: np.ndarray
    channels: list[str]
    starts: np.ndarray
    lengths: np.ndarray
    kinds: np.ndarray
    kind_names: list[str]
    conversions: np.ndarray
    value: np.ndarray
    nulls: np.ndarray

    @classmethod
    def from_codes(cls, codes: np.ndarray, channels: list[str], summary: pd.DataFrame) -> PathSteps:
        """Build steps from a paths-by-positions array of channel codes (0 past the end).

        Code ``c`` is ``channels[c - 1]``; ``summary`` has the paths' kinds and weights
        (a missing ``value`` column counts as 0).
        """
        lengths = (codes > 0).sum(axis=1).astype(np.int64)
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        path = np.repeat(np.arange(len(lengths)), lengths)
        # Codes fill each row from the left, so the non-zero codes in row order are the steps.
        channel = codes[codes > 0].astype(np.int64) - 1
        kinds, kind_names = pd.factorize(summary.kind.astype(str), sort=True)
        return cls(
            path=path,
            position=np.arange(len(path)) - starts[path] + 1,
            length=lengths[path],
            channel=channel,
            channels=list(channels),
            starts=starts,
            lengths=lengths,
            kinds=kinds.astype(np.int64),
            kind_names=[str(name) for name in kind_names],
            conversions=summary.conversions.to_numpy(dtype=float),
            value=(
                summary.value.to_numpy(dtype=float)
                if "value" in summary
                else np.zeros(len(summary))
            ),
            nulls=summary.nulls.to_numpy(dtype=float),
        )

    @classmethod
    def from_keys(cls, summary: pd.DataFrame) -> PathSteps:
        """Build steps from a summary's text keys (for summaries made without the engine)."""
        split = [str(key).split(STATE_SEPARATOR) for key in summary.key]
        channels = sorted({channel for path in split for channel in path})
        number = {channel: code for code, channel in enumerate(channels, start=1)}
        codes = np.zeros((len(split), max((len(path) for path in split), default=0)), np.int64)
        for row, path in enumerate(split):
            codes[row, : len(path)] = [number[channel] for channel in path]
        return cls.from_codes(codes, channels, summary)

    def code_matrix(self) -> np.ndarray:
        """Return the paths as rows of channel codes (index + 1), 0 past each path's end."""
        width = int(self.lengths.max(initial=0))
        matrix = np.zeros((len(self.lengths), width), dtype=np.min_scalar_type(len(self.channels)))
        matrix[self.path, self.position - 1] = self.channel + 1
        return matrix

    def keys(self) -> np.ndarray:
        """Return each path's channels joined by :data:`STATE_SEPARATOR` (the summary key)."""
        offsets = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        names = pa.array(self.channels, type=pa.string()).take(pa.array(self.channel))
        joined = pc.binary_join(
            pa.LargeListArray.from_arrays(pa.array(offsets), names), STATE_SEPARATOR
        )
        return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)

    def kind_mask(self, kind: str | None) -> np.ndarray:
        """Return which paths are of ``kind`` (every path for None)."""
        if kind is None:
            return np.ones(len(self.lengths), dtype=bool)
        if kind not in self.kind_names:
            return np.zeros(len(self.lengths), dtype=bool)
        return np.asarray(self.kinds == self.kind_names.index(kind))

    def path_sum(self, values: np.ndarray) -> np.ndarray:
        """Return the sum of ``values`` (one per step) over each step's path, per step."""
        sums = np.bincount(self.path, values, minlength=len(self.lengths))
        return np.asarray(sums[self.path])

    def path_max(self, values: np.ndarray) -> np.ndarray:
        """Return the largest of ``values`` (integers, one per step) in each step's path."""
        largest = np.full(len(self.lengths), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(largest, self.path, values.astype(np.int64))
        return np.asarray(largest[self.path])

    def coalitions(self, *, ordered: bool) -> np.ndarray:
        """Return each path's distinct channels joined by :data:`STATE_SEPARATOR`.

        Sorted by name, or with ``ordered`` in the order of their first touch. Paths share
        the string of their coalition, which is built once per distinct coalition.
        """
        codes, names = self.coalition_codes(ordered=ordered)
        return np.asarray(names[codes], dtype=object)

    def coalition_codes(self, *, ordered: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return each path's coalition as a number, and the coalitions' strings by number.

        The strings are those of :meth:`coalitions`; numbers follow first appearance.
        """
        if not len(self.path):
            return np.zeros(len(self.lengths), dtype=np.int64), np.array([""], dtype=object)
        width = len(self.channels)
        # A step is a member when its channel has not occurred earlier in its path.
        first = ~pd.Series(self.path * width + self.channel).duplicated().to_numpy()
        path, channel = self.path[first], self.channel[first]
        if not ordered:
            # Codes follow the channels' sorted names.
            by_name = np.lexsort((channel, path))
            path, channel = path[by_name], channel[by_name]
        counts = np.bincount(path, minlength=len(self.lengths))
        slot = np.arange(len(path)) - (np.cumsum(counts) - counts)[path]

        # A coalition fits in one int64 as its members' codes (index + 1) in fixed-width
        # slots; the distinct numbers are then decoded into strings.
        bits = len(self.channels).bit_length()
        if len(self.channels) * bits > 63:
            joined = self._join_members(path, channel, counts)
            codes, distinct_names = pd.factorize(joined, sort=False)
            return np.asarray(codes), np.asarray(distinct_names, dtype=object)
        # Members are contiguous per path and every path has one, so sums run per block.
        packed = (channel + 1).astype(np.int64) << (slot * bits)
        numbers = np.add.reduceat(packed, np.cumsum(counts) - counts) if len(packed) else packed
        codes, distinct = pd.factorize(numbers, sort=False)
        mask = (1 << bits) - 1
        slots = np.stack(
            [(distinct >> (at * bits)) & mask for at in range(len(self.channels))], axis=1
        )
        present = slots > 0
        sizes = present.sum(axis=1)
        offsets = np.zeros(len(distinct) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        names = pa.array(self.channels, type=pa.string()).take(pa.array(slots[present] - 1))
        lists = pa.LargeListArray.from_arrays(pa.array(offsets), names)
        joined = pc.binary_join(lists, STATE_SEPARATOR).to_numpy(zero_copy_only=False)
        return np.asarray(codes), np.asarray(joined, dtype=object)

    def _join_members(
        self, path: np.ndarray, channel: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        """Join each path's member channels (``counts`` per path) into a string, in Arrow."""
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        names = pa.array(self.channels, type=pa.string()).take(pa.array(channel))
        lists = pa.LargeListArray.from_arrays(pa.array(offsets), names)
        joined = pc.binary_join(lists, STATE_SEPARATOR)
        return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)

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
