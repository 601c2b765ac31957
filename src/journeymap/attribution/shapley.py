"""Shapley value attribution: the coalition form and the ordered (position-aware) form.

Coalition form (Shapley 1953, as simplified by Zhao, Mahboobi and Bagheri, "Shapley Value
Methods for Attribution Modeling in Online Advertising", arXiv:1804.05327, 2018): the players
are channels, and the worth of a coalition S is what the journeys whose channel set lies
inside S achieved, ``v(S) = sum over T inside S of w(T)``, where ``w(T)`` is the conversions
(``metric="conversions"``) or the conversion rate (``metric="conversion_rate"``) of the
journeys whose channel set is exactly T. For such a game the Shapley value has a closed form,
``phi_i = sum over T containing i of w(T) / |T|``, so it is exact for any number of channels
and costs one pass over the channel sets that occur in the data; no subset enumeration.
With conversions, the values add up to the conversions (efficiency). With conversion rates
they add up to the sum of the rates, and are scaled to the conversions; the rate weighs every
channel set equally however many journeys it has, so it rewards channels that lift rates.

Ordered form (Zhao et al. 2018): a coalition is the ordered sequence of distinct channels of a
journey, and ``w(S) / |S|`` goes to each channel at its position in S, so credit can be read by
channel and position (introducers, closers).

Journeys without touches go to ``(unattributed)``. Repeats of a channel in a journey count
once (a coalition is a set); its share is split evenly over its touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from journeymap.attribution.aggregate import (
    STATE_SEPARATOR,
    journey_keys,
    path_steps,
    path_summary,
)
from journeymap.attribution.allocate import spread_channel_credit
from journeymap.attribution.base import (
    CREDIT_COLUMNS,
    TOTAL_COLUMNS,
    AttributionModel,
    ModelParameters,
    journeys_of_kind,
    register,
    unattributed_rows,
)
from journeymap.journeys.build import Journeys

Metric = Literal["conversions", "conversion_rate"]


class ShapleyParameters(ModelParameters):
    metric: Metric = Field(
        "conversions", description="What a channel set is worth: conversions or conversion rate."
    )
    method: Literal["exact", "sampled"] = Field(
        "exact", description="Exact closed form, or an estimate from random channel orders."
    )
    max_exact_channels: int = Field(
        1000, ge=1, description="Above this many channels, estimate by sampling instead of exactly."
    )
    samples: int = Field(
        2000, ge=10, description="Random channel orders drawn by the sampled method."
    )
    seed: int = Field(0, description="Seed of the sampled method, so that estimates repeat.")


@dataclass(frozen=True)
class ShapleyResult:
    """Channel values of one fit: ``channel, shapley, conversions, value, standard_error``.

    ``shapley`` is the Shapley value before scaling; ``conversions`` and ``value`` are the
    credited amounts. ``standard_error`` is 0 for exact values. ``by_position`` (ordered form
    only) has ``channel, position, conversions, value``.
    """

    metric: str
    method: str
    values: pd.DataFrame
    by_position: pd.DataFrame = field(default_factory=pd.DataFrame)


def _dividends(coalitions: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Add ``worth`` (conversions credited) and ``value_worth`` to each coalition of one kind.

    With conversions, a coalition's worth is its conversions and value. With conversion
    rates, worth is the rate scaled so that all coalitions add up to the conversions, and
    value worth the rate scaled to the value.
    """
    frame = coalitions.copy()
    if metric == "conversions":
        frame["worth"] = frame.conversions
        frame["value_worth"] = frame.value
        return frame
    journeys = frame.conversions + frame.nulls
    rate = np.divide(frame.conversions, journeys, out=np.zeros(len(frame)), where=journeys > 0)
    total_rate = rate.sum()
    frame["worth"] = rate / total_rate * frame.conversions.sum() if total_rate > 0 else 0.0
    frame["value_worth"] = rate / total_rate * frame.value.sum() if total_rate > 0 else 0.0
    return frame


@dataclass(frozen=True)
class Members:
    """The members of coalitions given as keys (channels joined by the state separator).

    ``coalition``, ``position`` and ``channel`` have one entry per member, in the order of
    the keys. They are the coalition's index, the member's 1-based position in it, and an
    index into ``channels``, the distinct names in order of appearance. ``sizes`` has one
    entry per coalition.
    """

    coalition: np.ndarray
    position: np.ndarray
    channel: np.ndarray
    channels: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, keys: pd.Series) -> Members:
        """Split the keys in Arrow, with no loop over them in Python."""
        lists = pc.split_pattern(
            pa.array(keys.astype(str), type=pa.large_string()), STATE_SEPARATOR
        )
        offsets = lists.offsets.to_numpy()
        sizes = np.diff(offsets)
        coalition = np.repeat(np.arange(len(sizes)), sizes)
        position = np.arange(len(coalition)) - offsets[coalition] + 1
        channel, channels = pd.factorize(lists.flatten().to_numpy(zero_copy_only=False))
        return cls(
            coalition=coalition,
            position=position,
            channel=np.asarray(channel, dtype=np.int64),
            channels=np.asarray(channels, dtype=object),
            sizes=sizes,
        )

    def by_name(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the channel names sorted, and each member's index among those names."""
        order = np.argsort(self.channels)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return self.channels[order], rank[self.channel]


def sampled_shapley(
    coalitions: pd.DataFrame, samples: int, seed: int, members: Members | None = None
) -> pd.DataFrame:
    """Estimate Shapley values from random channel orders, with standard errors.

    In a random order, the worth of coalition T goes to the member of T that comes last
    (the one that completes it), so each order gives an unbiased draw of every channel's
    value. Returns ``channel, shapley, standard_error`` for the ``worth`` column.
    ``members`` are those of ``coalitions.key`` when the caller has split the keys already.
    """
    members = members or Members.of(coalitions.key)
    channels, flat = members.by_name()
    starts = np.cumsum(members.sizes) - members.sizes
    worth = coalitions.worth.to_numpy(dtype=float)
    n = len(channels)
    rng = np.random.default_rng(seed)
    draws = np.zeros((samples, n))
    # Whole batches of orders at once: a row of `ranks` is one random order of the channels.
    batch = max(1, min(samples, 10_000_000 // max(len(flat), 1)))
    for first in range(0, samples, batch):
        size = min(batch, samples - first)
        ranks = rng.random((size, n)).argsort(axis=1).argsort(axis=1)
        top = np.maximum.reduceat(ranks[:, flat], starts, axis=1)
        by_rank = ranks.argsort(axis=1)
        winners = np.take_along_axis(by_rank, top, axis=1)
        cells = (np.arange(size)[:, None] * n + winners).ravel()
        weights = np.broadcast_to(worth, winners.shape).ravel()
        draws[first : first + size] = np.bincount(
            cells, weights=weights, minlength=size * n
        ).reshape(size, n)
    estimate = draws.mean(axis=0)
    error = draws.std(axis=0, ddof=1) / np.sqrt(samples)
    return pd.DataFrame({"channel": list(channels), "shapley": estimate, "standard_error": error})


class _ShapleyBase(AttributionModel):
    ordered = False

    def __init__(self, **parameters: object) -> None:
        super().__init__(**parameters)
        self.results: dict[str, ShapleyResult] = {}

    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return per-touch credits: each coalition's worth split over its channels' touches."""
        summary, exact, sampled = self._fit(journeys)
        parts = [unattributed_rows(self.name, journeys.journeys).select(*CREDIT_COLUMNS)]
        for kind, estimate in sampled.items():
            parts.append(self._spread_estimate(journeys, kind, estimate))
        if exact:
            keyed = summary.assign(key=path_summary(journeys).key.to_numpy())
            parts.append(self._exact(journeys, keyed, pd.concat(exact, ignore_index=True)))
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.union(part)
        return combined

    def channel_totals(self, journeys: Journeys) -> pd.DataFrame:
        """Return the Shapley value of each kind and channel, in conversions and value."""
        self._fit(journeys)
        frames = [
            result.values.assign(kind=kind)[TOTAL_COLUMNS]
            for kind, result in sorted(self.results.items())
            if not result.values.empty
        ]
        if not frames:
            return pd.DataFrame(columns=TOTAL_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    def _fit(
        self, journeys: Journeys
    ) -> tuple[pd.DataFrame, list[pd.DataFrame], dict[str, pd.DataFrame]]:
        """Compute every kind's coalition worths and record the channel values in ``results``.

        Returns the distinct paths (``kind``, weights and ``coalition``, in the order of
        :func:`path_summary`), the worth frames of the kinds solved exactly, and the sampled
        estimates of the other kinds by kind.
        """
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        self.results = {}
        steps = path_steps(journeys)
        kind_names = np.array(steps.kind_names, dtype=object)
        numbers, names = steps.coalition_codes(ordered=self.ordered)
        summary = pd.DataFrame(
            {
                "kind": kind_names[steps.kinds],
                "conversions": steps.conversions,
                "value": steps.value,
                "nulls": steps.nulls,
                "coalition": names[numbers],
            }
        )
        # Grouped by numbers, which is faster than by strings, then ordered by the strings.
        weights = pd.DataFrame(
            {
                "_kind": steps.kinds,
                "_number": numbers,
                "conversions": steps.conversions,
                "value": steps.value,
                "nulls": steps.nulls,
            }
        )
        coalitions = weights.groupby(["_kind", "_number"], sort=False).sum().reset_index()
        coalitions.insert(0, "kind", kind_names[coalitions["_kind"].to_numpy()])
        coalitions.insert(1, "key", names[coalitions["_number"].to_numpy()])
        coalitions = coalitions.drop(columns=["_kind", "_number"])
        coalitions = coalitions.sort_values(["kind", "key"], ignore_index=True)
        exact: list[pd.DataFrame] = []
        sampled: dict[str, pd.DataFrame] = {}
        for kind, of_kind in coalitions.groupby("kind", sort=True):
            worth = _dividends(of_kind.reset_index(drop=True), p.metric)
            members = Members.of(worth.key)
            worth["size"] = members.sizes
            if p.method == "sampled" or len(members.channels) > p.max_exact_channels:
                sampled[str(kind)] = self._estimate(str(kind), worth, members)
                continue
            self._record(str(kind), worth, members)
            exact.append(worth)
        return summary, exact, sampled

    def _exact(self, journeys: Journeys, summary: pd.DataFrame, worth: pd.DataFrame) -> ibis.Table:
        """Split each coalition's worth evenly over its channels, then over their touches.

        A journey gets its coalition's worth in proportion to its conversions (and value),
        each of the coalition's channels an equal part, and each touch of a channel an equal
        part of the channel's.
        """
        per = worth.set_index(["kind", "key"])
        per_conversion = np.divide(
            per.worth, per.conversions, out=np.zeros(len(per)), where=per.conversions > 0
        )
        per_value = np.divide(
            per.value_worth, per.value, out=np.zeros(len(per)), where=per.value > 0
        )
        factors = dict(zip(per.index, zip(per_conversion, per_value, strict=True), strict=True))
        rows: list[tuple[str, str, str, float, float]] = []
        for kind, key, coalition in zip(summary.kind, summary.key, summary.coalition, strict=True):
            factor = factors.get((kind, coalition))
            if factor is None or (factor[0] == 0 and factor[1] == 0):
                continue
            path = str(key).split(STATE_SEPARATOR)
            copies: dict[str, int] = {}
            for channel in path:
                copies[channel] = copies.get(channel, 0) + 1
            size = len(copies)
            for channel, count in copies.items():
                rows.append(
                    (kind, key, channel, factor[0] / size / count, factor[1] / size / count)
                )
        shares = ibis.memtable(
            pd.DataFrame(rows, columns=["kind", "key", "channel", "_share", "_value_share"]),
            schema={
                "kind": "string",
                "key": "string",
                "channel": "string",
                "_share": "float64",
                "_value_share": "float64",
            },
        )
        keyed = journey_keys(journeys)
        converting = keyed.filter(keyed.conversions > 0).select(
            "journey_id", "kind", "key", "conversions", "value"
        )
        ids = journeys.journeys.select("journey_id", "conversion_id")
        rows_table = (
            journeys.touches.inner_join(converting, "journey_id")
            .inner_join(ids, "journey_id")
            .inner_join(shares, ["kind", "key", "channel"])
        )
        credited = rows_table.select(
            model=ibis.literal(self.name),
            journey_id=rows_table.journey_id,
            conversion_id=rows_table.conversion_id,
            kind=rows_table.kind,
            touchpoint_id=rows_table.touchpoint_id,
            position=rows_table.position,
            channel=rows_table.channel,
            source_medium=rows_table.source_medium,
            campaign=rows_table.campaign,
            ad_id=rows_table.ad_id,
            credit=rows_table._share * rows_table.conversions,
            value_credit=rows_table._value_share * rows_table.value,
        )
        nonzero = credited.filter((credited.credit != 0) | (credited.value_credit != 0))
        return nonzero.select(*CREDIT_COLUMNS)

    def _record(self, kind: str, worth: pd.DataFrame, members: Members) -> None:
        """Give each coalition's worth (and value worth) in equal parts to its members.

        Each channel's parts are added in the order of the coalitions, as a loop over them
        would add them, so the sums do not depend on how the arithmetic is vectorised.
        """
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        amount = worth.worth.to_numpy(dtype=float)
        value = worth.value_worth.to_numpy(dtype=float)
        sizes = members.sizes.astype(float)
        # Coalitions that are worth nothing name no channel.
        counted = ((amount != 0) | (value != 0))[members.coalition]
        coalition, channel = members.coalition[counted], members.channel[counted]
        share, value_share = (amount / sizes)[coalition], (value / sizes)[coalition]
        width = len(members.channels)
        found = np.bincount(channel, minlength=width) > 0
        frame = pd.DataFrame(
            {
                "channel": members.channels[found],
                "shapley": np.bincount(channel, share, minlength=width)[found],
                "value": np.bincount(channel, value_share, minlength=width)[found],
                "standard_error": 0.0,
            }
        )
        frame.insert(2, "conversions", frame.shapley)
        frame = frame.sort_values(["conversions", "channel"], ascending=[False, True])
        by_position = pd.DataFrame(columns=["channel", "position", "conversions", "value"])
        if self.ordered and len(coalition):
            # One cell per channel (by name) and position.
            longest = int(members.position.max(initial=0))
            names, ranks = members.by_name()
            cells = ranks[counted] * longest + members.position[counted] - 1
            size = width * longest
            used = np.bincount(cells, minlength=size) > 0
            name, position = np.divmod(np.arange(size)[used], longest)
            by_position = pd.DataFrame(
                {
                    "channel": names[name],
                    "position": position + 1,
                    "conversions": np.bincount(cells, share, minlength=size)[used],
                    "value": np.bincount(cells, value_share, minlength=size)[used],
                }
            )
        self.results[kind] = ShapleyResult(
            metric=p.metric,
            method="exact",
            values=frame.reset_index(drop=True),
            by_position=by_position,
        )

    def _estimate(self, kind: str, worth: pd.DataFrame, members: Members) -> pd.DataFrame:
        """Estimate channel values by sampling, scaled to the kind's conversions and value."""
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        estimate = sampled_shapley(worth, p.samples, p.seed, members)
        total = float(estimate.shapley.sum())
        conversions_scale = float(worth.worth.sum()) / total if total > 0 else 0.0
        value_scale = float(worth.value_worth.sum()) / total if total > 0 else 0.0
        estimate["conversions"] = estimate.shapley * conversions_scale
        estimate["value"] = estimate.shapley * value_scale
        columns = ["channel", "shapley", "conversions", "value", "standard_error"]
        self.results[kind] = ShapleyResult(
            metric=p.metric, method="sampled", values=estimate[columns]
        )
        return estimate

    def _spread_estimate(self, journeys: Journeys, kind: str, estimate: pd.DataFrame) -> ibis.Table:
        """Spread a kind's sampled channel values over the channels' touches."""
        of_kind = journeys_of_kind(journeys, kind)
        conversions = dict(zip(estimate.channel, estimate.conversions, strict=True))
        value = dict(zip(estimate.channel, estimate.value, strict=True))
        return spread_channel_credit(
            self.name, of_kind, conversions, value, kind, include_unattributed=False
        )


@register
class Shapley(_ShapleyBase):
    """Shapley values of channels in the coalition form (exact closed form, or sampled)."""

    name = "shapley"
    Parameters = ShapleyParameters
    description = "Each channel's average marginal contribution over coalitions of channels."


@register
class OrderedShapley(_ShapleyBase):
    """Position-aware Shapley values: credit by channel and by the channel's place in the path."""

    name = "shapley_ordered"
    Parameters = ShapleyParameters
    description = "Shapley values over ordered channel sequences, readable by position."
    ordered = True
