"""Path analyses: the touch sequences before conversions, and each channel's role in them."""

from __future__ import annotations

import ibis

PATH_SEPARATOR = " > "


def journey_paths(touches: ibis.Table) -> ibis.Table:
    """Return each journey's channel sequence as text.

    Takes ``journey_touches``; returns ``journey_id`` and ``path``: channels joined by
    ``" > "`` in position order, where a touch that stands for repeats (under the
    ``frequency`` transform) reads ``channel(count)``. The sequence is built by sorting an
    unordered collection of (position, channel) pairs, which every engine supports, unlike an
    ordered aggregate.
    """
    label = ibis.cases(
        (touches.repeats > 1, touches.channel.concat("(", touches.repeats.cast("string"), ")")),
        else_=touches.channel,
    )
    pairs = ibis.struct({"position": touches.position, "channel": label})
    collected = touches.group_by("journey_id").aggregate(steps=pairs.collect())
    return collected.select(
        "journey_id",
        path=collected.steps.sort().map(lambda step: step.channel).join(PATH_SEPARATOR),
    )


def top_paths(
    journeys: ibis.Table, touches: ibis.Table, *, limit: int = 10, kind: str | None = None
) -> ibis.Table:
    """Return the paths with the most conversions.

    Columns: ``path``, ``conversions``, ``value``, ``nulls`` (non-converting journeys with
    the same path), ``share`` (of all conversions, including unattributed ones, so the shares
    of every path add up to 1) and ``conversion_rate`` (conversions over conversions plus
    nulls). Journeys without touches have the path ``(unattributed)``.
    """
    rows = journeys if kind is None else journeys.filter(journeys.kind == kind)
    with_paths = rows.left_join(journey_paths(touches), "journey_id")
    with_paths = with_paths.mutate(path=with_paths.path.fill_null("(unattributed)"))
    grouped = with_paths.group_by("path").aggregate(
        conversions=with_paths.conversions.sum(),
        value=with_paths.value.sum(),
        nulls=with_paths.nulls.sum(),
    )
    grouped = grouped.filter(grouped.conversions > 0)
    total = grouped.conversions.sum().over(ibis.window())
    grouped = grouped.mutate(
        share=grouped.conversions / total,
        conversion_rate=grouped.conversions / (grouped.conversions + grouped.nulls),
    )
    return grouped.order_by([ibis.desc("conversions"), "path"]).limit(limit)


def channel_roles(
    journeys: ibis.Table, touches: ibis.Table, *, kind: str | None = None
) -> ibis.Table:
    """Return how often each channel opens, sits in the middle of, or closes a converting journey.

    Counts are weighted by the journey's conversions. A single-touch journey counts as both
    first and last. Columns: ``channel``, ``first``, ``middle``, ``last``, their shares
    ``first_share``, ``middle_share``, ``last_share`` (of the channel's three counts), and
    ``role``: introducer, influencer or closer, whichever share is largest.
    """
    converting = journeys.filter(journeys.conversions > 0)
    if kind is not None:
        converting = converting.filter(converting.kind == kind)
    rows = touches.inner_join(converting.select("journey_id", weight="conversions"), "journey_id")
    is_first = rows.position == 1
    is_last = rows.position == rows.n_touches
    counted = rows.group_by("channel").aggregate(
        first=ibis.cases((is_first, rows.weight), else_=0.0).sum(),
        middle=ibis.cases((~is_first & ~is_last, rows.weight), else_=0.0).sum(),
        last=ibis.cases((is_last, rows.weight), else_=0.0).sum(),
    )
    total = counted["first"] + counted.middle + counted["last"]
    counted = counted.mutate(
        first_share=counted["first"] / total,
        middle_share=counted.middle / total,
        last_share=counted["last"] / total,
    )
    role = ibis.cases(
        (
            (counted.first_share >= counted.middle_share)
            & (counted.first_share >= counted.last_share),
            "introducer",
        ),
        (counted.last_share >= counted.middle_share, "closer"),
        else_="influencer",
    )
    return counted.mutate(role=role).order_by([ibis.desc(total), "channel"])
