"""Blind spots of the journey stages: stage entries that no tracked touch precedes, and the
touchpoints that a stage expects but the data never shows.

Both read a stage timeline (``stage_timeline`` rows of one entity kind) and the tracked
touches of the same entities (``entity_id``, ``occurred_at``, ``channel``). Self-reported
touches are not tracked, so the caller leaves them out.

1. :func:`untouched_entries`: an entry into a stage counts as untouched when the entity has
   no tracked touch in the lookback window before it (``entered_at - lookback`` up to and
   including ``entered_at``). Such entries are moves that attribution cannot credit to any
   channel: a deal that reached Decision while tracking saw nothing of the buyer.
2. :func:`expected_touchpoint_gaps`: each expected touchpoint of a stage (the stage's
   ``expected_touchpoints`` in the YAML, free text such as "Webinar" or "Paid social") is
   matched to the channels in the data by name (see :func:`matching_channels`), then the
   tracked touches of those channels during stays in the stage are counted. An expected
   touchpoint with no matching channel, or with matching channels but no touch in the
   stage, is a gap: the map promises a touchpoint that nothing measures.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import datetime

import ibis
import pandas as pd

from journeymap.common.config import StageConfig

SECONDS_PER_DAY = 86_400.0
NAME_SIMILARITY = 0.8
"""Smallest difflib ratio between two normalised names that counts as a match."""

NO_CHANNEL = "no matching channel"
NO_TOUCH = "no touch in stage"
MEASURED = "measured"


def untouched_entries(
    timeline: ibis.Table, touches: ibis.Table, *, lookback_days: float
) -> ibis.Table:
    """Count each stage's entries and those with no tracked touch in the lookback before them.

    Returns ``stage``, ``entries``, ``untouched`` and ``untouched_share`` (0 to 1, null
    without entries), one row per stage that has entries, unordered.
    """
    stays = timeline.select("entity_id", "stage", "entered_at")
    seen = touches.select(_entity="entity_id", _at="occurred_at")
    window_start = stays.entered_at - ibis.interval(seconds=int(lookback_days * SECONDS_PER_DAY))
    joined = stays.left_join(
        seen,
        [
            stays.entity_id == seen._entity,
            seen._at >= window_start,
            seen._at <= stays.entered_at,
        ],
    )
    per_entry = joined.group_by(["entity_id", "stage", "entered_at"]).aggregate(
        _touches=joined._at.count()
    )
    summary = per_entry.group_by("stage").aggregate(
        entries=per_entry.count(),
        untouched=(per_entry._touches == 0).cast("int64").sum(),
    )
    return summary.mutate(
        untouched_share=ibis.cases(
            (summary.entries > 0, summary.untouched.cast("float64") / summary.entries),
            else_=ibis.null(float),
        )
    )


def expected_touchpoint_gaps(
    stages: Sequence[StageConfig],
    timeline: ibis.Table,
    touches: ibis.Table,
    *,
    as_of: datetime,
) -> pd.DataFrame:
    """List each stage's expected touchpoints with the tracked touches that measure them.

    A touch counts for a stage when its entity was in the stage at the touch's time
    (``entered_at <= occurred_at``, and before ``exited_at`` or ``as_of`` for an open
    stay). Returns ``stage``, ``expected``, ``channels`` (the matching channel names, joined
    by ``", "``), ``touches`` and ``status`` (``measured``, ``no touch in stage`` or ``no
    matching channel``), in stage order and then in the YAML's order.
    """
    columns = ["stage", "expected", "channels", "touches", "status"]
    expected_items = [(stage.name, text) for stage in stages for text in stage.expected_touchpoints]
    if not expected_items:
        return pd.DataFrame(columns=columns)

    end = ibis.coalesce(timeline.exited_at, ibis.literal(as_of).cast(timeline.entered_at.type()))
    stays = timeline.select("entity_id", "stage", "entered_at", _end=end)
    seen = touches.select(_entity="entity_id", _at="occurred_at", channel="channel")
    joined = stays.inner_join(
        seen,
        [stays.entity_id == seen._entity, seen._at >= stays.entered_at, seen._at < stays._end],
    )
    counts = joined.group_by(["stage", "channel"]).aggregate(touches=joined.count()).to_pandas()
    names = touches.select("channel").distinct().to_pandas().channel.dropna()
    channels = sorted(str(name) for name in names)

    rows = []
    for stage, text in expected_items:
        names = matching_channels(text, channels)
        in_stage = counts[(counts.stage == stage) & counts.channel.isin(names)]
        total = int(in_stage.touches.sum())
        status = MEASURED if total else (NO_TOUCH if names else NO_CHANNEL)
        rows.append((stage, text, ", ".join(names), total, status))
    return pd.DataFrame(rows, columns=columns)


def matching_channels(expected: str, channels: Sequence[str]) -> list[str]:
    """Return the channels whose name matches an expected touchpoint's free text.

    Names compare after lowercasing, reading punctuation as spaces and dropping a plural
    ``s`` from each word. A channel matches when the two names are equal, when every word
    of one is a word of the other ("Email nurture" and "Email"), or when their difflib
    ratio is at least :data:`NAME_SIMILARITY`.
    """
    target = _words(expected)
    found = []
    for channel in channels:
        have = _words(channel)
        if not target or not have:
            continue
        ratio = difflib.SequenceMatcher(None, " ".join(target), " ".join(have)).ratio()
        if set(target) <= set(have) or set(have) <= set(target) or ratio >= NAME_SIMILARITY:
            found.append(channel)
    return found


def _words(name: str) -> list[str]:
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    return [word[:-1] if len(word) > 3 and word.endswith("s") else word for word in words]
