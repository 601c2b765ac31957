"""Google Fractribution's path-level Shapley model, for teams that migrate from it.

For each converting path (after the path transform), the path's conversion probability is
its conversions over its conversions plus non-conversions. Each touch's marginal
contribution is that probability minus the probability of the same path without that one
touch (0 for a path that never occurs), floored at 0; a single-touch path's touch gets the
path's probability. The contributions are normalised within the path, and the last touch
takes everything when they are all 0. A path's conversions and value are then shared by
those fractions. This is a leave-one-out approximation, not the coalition Shapley value: see
:mod:`journeymap.attribution.shapley` for that.

Reference: google/fractribution, ``py/fractribution.py`` (``run_shapley_attribution``).
"""

from __future__ import annotations

from collections.abc import Iterator

import ibis
import pandas as pd

from journeymap.attribution.aggregate import STATE_SEPARATOR, journey_keys, path_summary
from journeymap.attribution.base import (
    CREDIT_COLUMNS,
    TOTAL_COLUMNS,
    AttributionModel,
    register,
    unattributed_rows,
)
from journeymap.journeys.build import Journeys


def path_fractions(summary: pd.DataFrame) -> pd.DataFrame:
    """Return ``kind, key, position, fraction`` for every touch of every converting path.

    ``summary`` has ``kind``, ``key`` (channels joined by the state separator),
    ``conversions`` and ``nulls`` per distinct path.
    """
    rows = [
        (kind, key, position, fraction)
        for kind, key, _, fractions in converting_path_fractions(summary)
        for position, fraction in enumerate(fractions, start=1)
    ]
    return pd.DataFrame(rows, columns=["kind", "key", "position", "fraction"])


def converting_path_fractions(
    summary: pd.DataFrame,
) -> Iterator[tuple[str, str, list[str], list[float]]]:
    """Yield ``kind, key, channels, fractions`` for each converting path of ``summary``."""
    for kind, of_kind in summary.groupby("kind", sort=True):
        seen = of_kind.conversions + of_kind.nulls
        probability = dict(
            zip(of_kind.key, (of_kind.conversions / seen.where(seen > 0)).fillna(0.0), strict=True)
        )
        converting = of_kind[of_kind.conversions > 0]
        for key in converting.key:
            path = str(key).split(STATE_SEPARATOR)
            own = probability[key]
            if len(path) == 1:
                contributions = [own]
            else:
                contributions = []
                for position in range(len(path)):
                    without = STATE_SEPARATOR.join(path[:position] + path[position + 1 :])
                    contributions.append(max(own - probability.get(without, 0.0), 0.0))
            total = sum(contributions)
            if total > 0:
                fractions = [contribution / total for contribution in contributions]
            else:
                fractions = [0.0] * (len(path) - 1) + [1.0]
            yield str(kind), str(key), path, fractions


@register
class Fractribution(AttributionModel):
    """Fractribution's leave-one-out path Shapley: per-path marginal contributions, normalised.

    Assumptions: a path's conversion probability is observed directly; paths never seen
    convert with probability 0. Loops and repeats are separate touches of the path (use the
    ``collapse`` or ``unique`` transform to merge them). Empty paths go to
    ``(unattributed)``. Complexity: one pass over the distinct paths, each touch looked up
    once in a dictionary.
    """

    name = "fractribution"
    description = "Google Fractribution's leave-one-out path Shapley."

    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return per-touch credits; each conversion's touches add up to it."""
        keyed = journey_keys(journeys)
        summary = path_summary(journeys)
        fractions = path_fractions(summary)
        table = ibis.memtable(
            fractions,
            schema={"kind": "string", "key": "string", "position": "int64", "fraction": "float64"},
        )
        converting = keyed.filter(keyed.conversions > 0).select(
            "journey_id", "kind", "key", "conversions", "value"
        )
        ids = journeys.journeys.select("journey_id", "conversion_id")
        rows = (
            journeys.touches.inner_join(converting, "journey_id")
            .inner_join(ids, "journey_id")
            .inner_join(table, ["kind", "key", "position"])
        )
        credited = rows.select(
            model=ibis.literal(self.name),
            journey_id=rows.journey_id,
            conversion_id=rows.conversion_id,
            kind=rows.kind,
            touchpoint_id=rows.touchpoint_id,
            position=rows.position,
            channel=rows.channel,
            source_medium=rows.source_medium,
            campaign=rows.campaign,
            ad_id=rows.ad_id,
            credit=rows.fraction * rows.conversions,
            value_credit=rows.fraction * rows.value,
        )
        credited = credited.filter((credited.credit != 0) | (credited.value_credit != 0))
        return credited.union(unattributed_rows(self.name, journeys.journeys)).select(
            *CREDIT_COLUMNS
        )

    def channel_totals(self, journeys: Journeys) -> pd.DataFrame:
        """Return each kind's credit by channel, summed over the distinct paths."""
        summary = path_summary(journeys)
        converting = summary[summary.conversions > 0]
        weights = dict(
            zip(
                zip(converting.kind, converting.key, strict=True),
                zip(converting.conversions, converting.value, strict=True),
                strict=True,
            )
        )
        totals: dict[tuple[str, str], list[float]] = {}
        for kind, key, path, fractions in converting_path_fractions(summary):
            conversions, value = weights[(kind, key)]
            for channel, fraction in zip(path, fractions, strict=True):
                entry = totals.setdefault((kind, channel), [0.0, 0.0])
                entry[0] += fraction * conversions
                entry[1] += fraction * value
        rows = [
            (kind, channel, conversions, value)
            for (kind, channel), (conversions, value) in sorted(totals.items())
            if conversions != 0 or value != 0
        ]
        return pd.DataFrame(rows, columns=TOTAL_COLUMNS)
