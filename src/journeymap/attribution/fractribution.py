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

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeymap.attribution.aggregate import (
    STATE_SEPARATOR,
    PathSteps,
    journey_keys,
    path_steps,
    path_summary,
)
from journeymap.attribution.base import (
    CREDIT_COLUMNS,
    AttributionModel,
    register,
    unattributed_rows,
)
from journeymap.journeys.build import Journeys


def path_fractions(summary: pd.DataFrame, steps: PathSteps | None = None) -> pd.DataFrame:
    """Return ``kind, key, position, fraction`` for every touch of every converting path.

    ``summary`` has ``kind``, ``key`` (channels joined by the state separator),
    ``conversions`` and ``nulls`` per distinct path; ``steps`` are its paths as steps when
    the caller has them (see :func:`~journeymap.attribution.aggregate.path_steps`).
    """
    steps = steps if steps is not None else PathSteps.from_keys(summary)
    fraction = step_fractions(steps, summary.key.to_numpy(dtype=object))
    converting = steps.conversions[steps.path] > 0
    path = steps.path[converting]
    return pd.DataFrame(
        {
            "kind": summary.kind.to_numpy(dtype=object)[path],
            "key": summary.key.to_numpy(dtype=object)[path],
            "position": steps.position[converting].astype(np.int64),
            "fraction": fraction[converting],
        }
    )


def step_fractions(steps: PathSteps, keys: np.ndarray) -> np.ndarray:
    """Return each step's fraction of its path (0 on the steps of non-converting paths).

    ``keys`` holds each path's key, in the order of ``steps``. The key of a path without
    one of its steps is built for every step of every converting path, and its conversion
    probability looked up among the paths of the same kind, all in compiled code.
    """
    seen = steps.conversions + steps.nulls
    probability = np.divide(steps.conversions, seen, out=np.zeros(len(seen)), where=seen > 0)
    fraction = np.zeros(len(steps.path))
    chosen = np.flatnonzero(steps.conversions[steps.path] > 0)
    if not len(chosen):
        return fraction
    path, length, position = steps.path[chosen], steps.length[chosen], steps.position[chosen]

    # The path without each chosen step: the other steps of its path, in order.
    others = length - 1
    owner = np.repeat(np.arange(len(chosen)), others)
    offsets = np.zeros(len(chosen) + 1, dtype=np.int64)
    np.cumsum(others, out=offsets[1:])
    within = np.arange(int(offsets[-1])) - offsets[:-1][owner]
    element = steps.starts[path][owner] + within + (within >= position[owner] - 1)
    names = pa.array(steps.channels, type=pa.string()).take(pa.array(steps.channel[element]))
    lists = pa.ListArray.from_arrays(pa.array(offsets), names)
    without = np.asarray(
        pc.binary_join(lists, STATE_SEPARATOR).to_numpy(zero_copy_only=False), dtype=object
    )

    shorter = np.zeros(len(chosen))
    for code in range(len(steps.kind_names)):
        of_kind = np.flatnonzero(steps.kinds == code)
        mine = steps.kinds[path] == code
        found = pd.Index(keys[of_kind]).get_indexer(without[mine])
        shorter[mine] = np.where(found >= 0, probability[of_kind][found], 0.0)

    own = probability[path]
    contribution = np.where(length == 1, own, np.maximum(own - shorter, 0.0))
    total = np.bincount(path, contribution, minlength=len(steps.lengths))[path]
    last = np.asarray(position == length, dtype=float)
    fraction[chosen] = np.divide(contribution, total, out=last, where=total > 0)
    return fraction


@register
class Fractribution(AttributionModel):
    """Fractribution's leave-one-out path Shapley: per-path marginal contributions, normalised.

    Assumptions: a path's conversion probability is observed directly; paths never seen
    convert with probability 0. Loops and repeats are separate touches of the path (use the
    ``collapse`` or ``unique`` transform to merge them). Empty paths go to
    ``(unattributed)``. Complexity: one pass over the distinct paths, each touch's shorter
    path looked up once in a hash index.
    """

    name = "fractribution"
    description = "Google Fractribution's leave-one-out path Shapley."

    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return per-touch credits; each conversion's touches add up to it."""
        keyed = journey_keys(journeys)
        summary = path_summary(journeys)
        fractions = path_fractions(summary, path_steps(journeys))
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
        steps = path_steps(journeys)
        return steps.totals(step_fractions(steps, summary.key.to_numpy(dtype=object)))
