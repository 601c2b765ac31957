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
from pydantic import Field

from journeymap.attribution.aggregate import STATE_SEPARATOR
from journeymap.attribution.allocate import spread_channel_credit
from journeymap.attribution.base import (
    CREDIT_COLUMNS,
    AttributionModel,
    ModelParameters,
    journeys_of_kind,
    register,
    unattributed_rows,
)
from journeymap.common.numbers import exact_sum
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


def _coalitions(journeys: Journeys, *, ordered: bool) -> tuple[ibis.Table, ibis.Table]:
    """Return first touches of each channel with their journey's coalition key, and the coalitions.

    The first table has the touch columns plus ``key`` (the coalition), ``size`` (distinct
    channels), ``rank`` (the channel's order of first appearance, 1-based) and ``copies``
    (touches of the channel in the journey). The second has ``key``, ``size``,
    ``conversions``, ``value`` and ``nulls`` per coalition.
    """
    touches = journeys.touches
    in_channel = ibis.window(group_by=["journey_id", "channel"], order_by="position")
    marked = touches.mutate(
        _nth=ibis.row_number().over(in_channel),
        copies=touches.count().over(ibis.window(group_by=["journey_id", "channel"])),
    )
    firsts = marked.filter(marked._nth == 0).drop("_nth")
    firsts = firsts.mutate(
        rank=(ibis.row_number().over(ibis.window(group_by="journey_id", order_by="position")) + 1)
    )
    if ordered:
        member = ibis.struct({"order": firsts.rank, "channel": firsts.channel})
    else:
        member = ibis.struct({"order": ibis.literal(0), "channel": firsts.channel})
    keys = firsts.group_by("journey_id").aggregate(_members=member.collect(), size=firsts.count())
    keys = keys.mutate(
        key=keys._members.sort().map(lambda item: item.channel).join(STATE_SEPARATOR)
    ).drop("_members")
    weights = journeys.journeys.select("journey_id", "kind", "conversions", "value", "nulls")
    keyed = keys.inner_join(weights, "journey_id")
    coalitions = keyed.group_by(["kind", "key", "size"]).aggregate(
        conversions=exact_sum(keyed.conversions),
        value=exact_sum(keyed.value),
        nulls=exact_sum(keyed.nulls),
    )
    touches_with_key = firsts.inner_join(keys.select("journey_id", "key", "size"), "journey_id")
    return touches_with_key, coalitions


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


def sampled_shapley(coalitions: pd.DataFrame, samples: int, seed: int) -> pd.DataFrame:
    """Estimate Shapley values from random channel orders, with standard errors.

    In a random order, the worth of coalition T goes to the member of T that comes last
    (the one that completes it), so each order gives an unbiased draw of every channel's
    value. Returns ``channel, shapley, standard_error`` for the ``worth`` column.
    """
    members = [str(key).split(STATE_SEPARATOR) for key in coalitions.key]
    channels = sorted({channel for group in members for channel in group})
    index = {channel: number for number, channel in enumerate(channels)}
    starts = np.cumsum([0] + [len(group) for group in members[:-1]])
    flat = np.array([index[channel] for group in members for channel in group], dtype=np.int64)
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
    return pd.DataFrame({"channel": channels, "shapley": estimate, "standard_error": error})


class _ShapleyBase(AttributionModel):
    ordered = False

    def __init__(self, **parameters: object) -> None:
        super().__init__(**parameters)
        self.results: dict[str, ShapleyResult] = {}

    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return per-touch credits: each coalition's worth split over its channels' touches."""
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        touches, coalitions = _coalitions(journeys, ordered=self.ordered)
        frame = coalitions.to_pandas()
        parts = [unattributed_rows(self.name, journeys.journeys).select(*CREDIT_COLUMNS)]
        weighted = []
        for kind, of_kind in frame.groupby("kind", sort=True):
            worth = _dividends(of_kind, p.metric)
            channels = {channel for key in worth.key for channel in str(key).split(STATE_SEPARATOR)}
            if p.method == "sampled" or len(channels) > p.max_exact_channels:
                parts.append(self._sampled(journeys, str(kind), worth))
                continue
            weighted.append(worth)
        if weighted:
            parts.append(self._exact(journeys, touches, pd.concat(weighted, ignore_index=True)))
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.union(part)
        return combined

    def _exact(self, journeys: Journeys, touches: ibis.Table, worth: pd.DataFrame) -> ibis.Table:
        """Split each coalition's worth evenly over its channels, then over journeys and touches."""
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        factors = worth.assign(
            _per_conversion=np.divide(
                worth.worth,
                worth.conversions,
                out=np.zeros(len(worth)),
                where=worth.conversions > 0,
            ),
            _per_value=np.divide(
                worth.value_worth, worth.value, out=np.zeros(len(worth)), where=worth.value > 0
            ),
        )[["kind", "key", "_per_conversion", "_per_value"]]
        table = ibis.memtable(
            factors,
            schema={
                "kind": "string",
                "key": "string",
                "_per_conversion": "float64",
                "_per_value": "float64",
            },
        )
        converting = journeys.journeys.filter(journeys.journeys.conversions > 0).select(
            "journey_id", "conversion_id", "kind", "conversions", "value"
        )
        rows = touches.inner_join(converting, "journey_id").inner_join(table, ["kind", "key"])
        share = 1.0 / rows.size.cast("float64")
        # The channel's first touch carries the key; spread its share over all its touches.
        first = rows.mutate(
            _credit=rows._per_conversion * rows.conversions * share,
            _value=rows._per_value * rows.value * share,
        )
        all_touches = journeys.touches.inner_join(
            first.select("journey_id", "channel", "copies", "_credit", "_value"),
            ["journey_id", "channel"],
        )
        all_touches = all_touches.inner_join(
            converting.select("journey_id", "conversion_id", "kind"), "journey_id"
        )
        copies = all_touches.copies.cast("float64")
        credited = all_touches.select(
            model=ibis.literal(self.name),
            journey_id=all_touches.journey_id,
            conversion_id=all_touches.conversion_id,
            kind=all_touches.kind,
            touchpoint_id=all_touches.touchpoint_id,
            position=all_touches.position,
            channel=all_touches.channel,
            source_medium=all_touches.source_medium,
            campaign=all_touches.campaign,
            ad_id=all_touches.ad_id,
            credit=all_touches._credit / copies,
            value_credit=all_touches._value / copies,
        )
        self._record(worth, credited, touches)
        return credited.filter((credited.credit != 0) | (credited.value_credit != 0)).select(
            *CREDIT_COLUMNS
        )

    def _record(self, worth: pd.DataFrame, credited: ibis.Table, touches: ibis.Table) -> None:
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        for kind, of_kind in worth.groupby("kind", sort=True):
            values: dict[str, list[float]] = {}
            for key, amount, value, size in zip(
                of_kind.key, of_kind.worth, of_kind.value_worth, of_kind["size"], strict=True
            ):
                for channel in str(key).split(STATE_SEPARATOR):
                    entry = values.setdefault(channel, [0.0, 0.0])
                    entry[0] += float(amount) / float(size)
                    entry[1] += float(value) / float(size)
            frame = pd.DataFrame(
                [
                    (channel, amount, amount, value, 0.0)
                    for channel, (amount, value) in values.items()
                ],
                columns=["channel", "shapley", "conversions", "value", "standard_error"],
            ).sort_values(["conversions", "channel"], ascending=[False, True], ignore_index=True)
            by_position = pd.DataFrame()
            if self.ordered:
                by_position = self._by_position(of_kind)
            self.results[str(kind)] = ShapleyResult(
                metric=p.metric, method="exact", values=frame, by_position=by_position
            )

    @staticmethod
    def _by_position(worth: pd.DataFrame) -> pd.DataFrame:
        rows: dict[tuple[str, int], list[float]] = {}
        for key, amount, value, size in zip(
            worth.key, worth.worth, worth.value_worth, worth["size"], strict=True
        ):
            for position, channel in enumerate(str(key).split(STATE_SEPARATOR), start=1):
                entry = rows.setdefault((channel, position), [0.0, 0.0])
                entry[0] += float(amount) / float(size)
                entry[1] += float(value) / float(size)
        return pd.DataFrame(
            [
                (channel, position, amount, value)
                for (channel, position), (amount, value) in sorted(rows.items())
            ],
            columns=["channel", "position", "conversions", "value"],
        )

    def _sampled(self, journeys: Journeys, kind: str, worth: pd.DataFrame) -> ibis.Table:
        """Estimate channel values by sampling and spread them over the channels' touches."""
        p = self.parameters
        assert isinstance(p, ShapleyParameters)
        estimate = sampled_shapley(worth, p.samples, p.seed)
        total = float(worth.worth.sum())
        value_total = float(worth.value_worth.sum())
        scale = total / estimate.shapley.sum() if estimate.shapley.sum() > 0 else 0.0
        estimate["conversions"] = estimate.shapley * scale
        estimate["value"] = estimate.shapley * (
            value_total / estimate.shapley.sum() if estimate.shapley.sum() > 0 else 0.0
        )
        self.results[kind] = ShapleyResult(
            metric=p.metric,
            method="sampled",
            values=estimate[["channel", "shapley", "conversions", "value", "standard_error"]],
        )
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
