"""Path transforms: which touches of a journey the models see.

Every transform takes journey touches with the columns ``journey_id``, ``rank`` (the
touch's 0-based order in its journey, consecutive within it) and ``channel``. It returns
the kept touches with ``position`` (1-based), ``n_touches`` and ``repeats`` (how many
touches of the same channel the kept touch stands for: 1 unless the transform merged
repeats).

==========  ==============================================================================
none        every touch
collapse    consecutive touches of the same channel become one (the first of the run)
unique      each channel once, at its first touch
first       the same touches as ``unique`` (the name Google's Fractribution uses)
frequency   each channel once at its first touch, with ``repeats`` counting all its touches
==========  ==============================================================================

``last_n`` then keeps the last N touches; it applies after the transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis

from journeymap.common.config import TransformName
from journeymap.common.errors import ConfigError

TRANSFORMS: tuple[str, ...] = ("none", "collapse", "unique", "first", "frequency")


def apply_transform(
    touches: ibis.Table,
    transform: TransformName | str = "none",
    last_n: int | None = None,
    *,
    journey: Sequence[str] = ("journey_id",),
    counts: str | None = None,
) -> ibis.Table:
    """Return the touches that ``transform`` keeps, numbered by ``position`` within each journey.

    ``journey`` names the columns that identify a journey. ``counts`` may name a column that
    already contains each journey's number of touches; it saves a window pass when the
    transform keeps every touch.
    """
    if transform not in TRANSFORMS:
        raise ConfigError(
            f"unknown path transform {transform!r}",
            location="--transform",
            hint=f"Use one of {', '.join(TRANSFORMS)}",
        )
    keys = list(journey)
    in_journey = ibis.window(group_by=keys, order_by="rank")
    in_channel_run = ibis.window(group_by=[*keys, "channel"], order_by="rank")
    by_channel = ibis.window(group_by=[*keys, "channel"])

    kept = touches
    if transform == "collapse":
        previous = touches.channel.lag().over(in_journey)
        kept = touches.mutate(_keep=previous.isnull() | (previous != touches.channel))
        kept = kept.filter(kept._keep).drop("_keep")
        kept = kept.mutate(repeats=ibis.literal(1, type="int64"))
    elif transform in ("unique", "first", "frequency"):
        marked = touches.mutate(
            _nth=ibis.row_number().over(in_channel_run),
            _count=touches.count().over(by_channel),
        )
        kept = marked.filter(marked._nth == 0)
        repeats = (
            kept._count.cast("int64") if transform == "frequency" else ibis.literal(1, type="int64")
        )
        kept = kept.mutate(repeats=repeats).drop("_nth", "_count")
    else:
        kept = touches.mutate(repeats=ibis.literal(1, type="int64"))

    if last_n is not None:
        if last_n < 1:
            raise ConfigError(f"last_n must be 1 or more, got {last_n}", location="--last-n")
        from_end = ibis.row_number().over(ibis.window(group_by=keys, order_by=ibis.desc("rank")))
        kept = kept.mutate(_from_end=from_end)
        kept = kept.filter(kept._from_end < last_n).drop("_from_end")

    whole_journey = ibis.window(group_by=keys)
    if transform == "none" and last_n is None:
        # Nothing was dropped, so the rank is the position already: one window pass less.
        size = kept[counts] if counts is not None else kept.count().over(whole_journey)
        return kept.mutate(position=(kept["rank"] + 1).cast("int64"), n_touches=size.cast("int64"))
    ordered = ibis.window(group_by=keys, order_by="rank")
    return kept.mutate(
        position=(ibis.row_number().over(ordered) + 1).cast("int64"),
        n_touches=kept.count().over(whole_journey).cast("int64"),
    )
