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

from journeymap.attribution.aggregate import (
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
    fraction = step_fractions(steps)
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


def step_fractions(steps: PathSteps) -> np.ndarray:
    """Return each step's fraction of its path (0 on the steps of non-converting paths).

    For every step of every converting path, the path without that step is looked up among
    the paths of the same kind, and its conversion probability (0 when it never occurs)
    gives the step's marginal contribution.
    """
    seen = steps.conversions + steps.nulls
    probability = np.divide(steps.conversions, seen, out=np.zeros(len(seen)), where=seen > 0)
    fraction = np.zeros(len(steps.path))
    chosen = np.flatnonzero(steps.conversions[steps.path] > 0)
    if not len(chosen):
        return fraction
    path, length, position = steps.path[chosen], steps.length[chosen], steps.position[chosen]

    # Each path as a row of channel codes (0 past its end), and each chosen step's path
    # without that step: the row with the step's column removed.
    matrix = steps.code_matrix()
    columns = np.arange(matrix.shape[1] - 1)
    shifted = columns[np.newaxis, :] + (columns[np.newaxis, :] >= (position - 1)[:, np.newaxis])
    without = np.zeros((len(chosen), matrix.shape[1]), dtype=matrix.dtype)
    without[:, :-1] = matrix[path[:, np.newaxis], shifted]
    found = _find_rows(matrix, steps.kinds, without, steps.kinds[path])
    shorter = np.where(found >= 0, probability[found], 0.0)

    own = probability[path]
    contribution = np.where(length == 1, own, np.maximum(own - shorter, 0.0))
    total = np.bincount(path, contribution, minlength=len(steps.lengths))[path]
    last = np.asarray(position == length, dtype=float)
    fraction[chosen] = np.divide(contribution, total, out=last, where=total > 0)
    return fraction


_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)
"""Odd 64-bit multipliers that mix a row of numbers into one hash (wrapping arithmetic)."""


def _find_rows(
    rows: np.ndarray, kinds: np.ndarray, queries: np.ndarray, query_kinds: np.ndarray
) -> np.ndarray:
    """Return the index of the row (of the same kind) equal to each query row, or -1.

    Rows and queries are hashed into one uint64 each and matched through a hash index.
    Every match is then compared in full, so a hash collision can cost a lookup but never
    return a wrong row. Rows whose hashes are not unique are matched by bytes.
    """
    row_hashes = _row_hashes(rows, kinds)
    index = pd.Index(row_hashes)
    if not index.is_unique:
        keys = pd.Index(_row_bytes(rows, kinds))
        found = np.asarray(keys.get_indexer(pd.Index(_row_bytes(queries, query_kinds))))
    else:
        found = np.asarray(index.get_indexer(_row_hashes(queries, query_kinds)))
    hit = found >= 0
    same = np.zeros(len(found), dtype=bool)
    same[hit] = (rows[found[hit]] == queries[hit]).all(axis=1) & (
        kinds[found[hit]] == query_kinds[hit]
    )
    return np.where(same, found, -1)


def _row_bytes(rows: np.ndarray, kinds: np.ndarray) -> list[bytes]:
    """Return each row with its kind as bytes, an exact key for the rare collision case."""
    wide = np.column_stack([kinds.astype(np.int64), rows.astype(np.int64)])
    return [row.tobytes() for row in wide]


def _row_hashes(rows: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Hash each row of small integers, with its kind, into one uint64 (wrapping)."""
    hashes = kinds.astype(np.uint64) * _MIX[0]
    for column in range(rows.shape[1]):
        hashes = (hashes ^ rows[:, column].astype(np.uint64)) * _MIX[1 + column % 3]
    return np.asarray(hashes)


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
        steps = path_steps(journeys)
        return steps.totals(step_fractions(steps))
