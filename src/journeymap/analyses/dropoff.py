"""Stage-to-stage drop-off per segment, ranked by the revenue it costs.

The stays carry a segment column that the caller joined in, such as a first-touch channel,
campaign or source. For each pair of consecutive stages (i, i+1) and each segment, every
entity that entered stage i is in exactly one of three states at ``as_of``:

- ``converted``: it entered stage i+1 at or after its first entry into stage i, as in
  :func:`~journeymap.analyses.funnel.stage_funnel` without a window.
- ``open``: it did not convert and one of its stays in stage i is still running at
  ``as_of`` (no ``exited_at``, or an ``exited_at`` after ``as_of``).
- ``lost``: it did not convert and every one of its stays in stage i has exited by
  ``as_of``, so it left stage i for somewhere other than stage i+1. The deals importer ends
  a deal's last stay when the deal moves to a lost stage, so closed-lost deals are lost.

NOTE: a source that never ends the stay of an entity that did not convert leaves that
entity open for good. The Olist leads export is one, so its drop-off has almost no lost
leads and its ranking rests on a handful of entities.

So ``lost + open + converted = entered`` on every row.

Money: ``revenue_impact = lost * deal_value``, where ``deal_value`` is the average
``amount`` of all won deals in ``deals`` (all segments together). One overall average is used
rather than one per segment because a lost entity has no deal value of its own, and the
average of a small segment (a handful of wins, or none) would swing the ranking on noise.
Without ``deals``, ``deal_value`` is 1, so the impact columns count entities.

``excess_lost`` is the loss beyond what the stage pair's overall loss rate predicts for the
segment's size: ``lost - entered * overall_loss_rate``, where ``overall_loss_rate`` is the
lost over the entered of all segments of the pair. It is negative for a segment that loses
less than the average. ``excess_impact = excess_lost * deal_value``. Rows are ranked by
``excess_impact``, so a large segment with an ordinary loss rate does not come first merely
because of its volume.

The counts are one Ibis expression (:func:`dropoff_counts`) that runs on DuckDB and Spark.
The ranking runs in pandas on the small table of per-segment counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise

import ibis
import ibis.expr.types as ir
import pandas as pd

BY_KEY = "_by"
"""Internal name of the segment column inside the expressions."""

COUNT_COLUMNS = ("from_stage", "to_stage", "entered", "converted", "lost", "open")
"""Columns of :func:`dropoff_counts` after the segment column."""

RANKED_COLUMNS = (
    "rate",
    "loss_rate",
    "overall_loss_rate",
    "expected_lost",
    "excess_lost",
    "deal_value",
    "revenue_impact",
    "excess_impact",
    "rank",
    "top",
)
"""Columns that :func:`dropoff` adds to the counts."""


def dropoff(
    stays: ibis.Table,
    stages: Sequence[str],
    *,
    by: str,
    deals: ibis.Table | None = None,
    as_of: datetime | None = None,
    top: int = 3,
) -> pd.DataFrame:
    """Rank the segments of each stage pair by the revenue lost beyond the overall loss rate.

    Takes stays as :func:`~journeymap.analyses.funnel.stage_funnel` does (``entity_id`` or
    ``deal_id``, ``stage``, ``entered_at``, ``exited_at``) plus the segment column ``by``.
    ``deals`` supplies the won-deal amounts (columns ``is_won`` and ``amount``), and must
    hold one currency. ``as_of`` defaults to now, and a naive value is read as UTC. The
    states and money columns are defined in the module docstring.

    Returns one row per stage pair and segment. The columns are the ``by`` column,
    ``from_stage``, ``to_stage``, ``entered``, ``converted``, ``lost`` and ``open``, then
    ``rate`` (converted over entered), ``loss_rate`` (lost over entered),
    ``overall_loss_rate``, ``expected_lost`` and ``excess_lost``. Then come ``deal_value``
    (in the deals' currency, or 1 without ``deals``), ``revenue_impact`` and
    ``excess_impact``. Last are ``rank`` (1 for the largest ``excess_impact``) and ``top``
    (true for ranks 1 to ``top`` with a positive ``excess_impact``). Rows are sorted by
    rank. Ties are broken by ``revenue_impact`` (larger first), then stage order, then
    segment (null first).

    Raises:
        ValueError: fewer than two stages, a ``top`` below 0, a missing or clashing ``by``
            column, no entity column, won deals in more than one currency, or ``deals``
            without any won deal that has an amount.
    """
    if top < 0:
        raise ValueError(f"top must be 0 or more, got {top}")

    counts = dropoff_counts(stays, stages, by=by, as_of=as_of).to_pandas()
    value = 1.0 if deals is None else average_won_value(deals)

    ranked = _with_money(counts, value)
    return _ranked(ranked, by, stages, top)


def dropoff_counts(
    stays: ibis.Table, stages: Sequence[str], *, by: str, as_of: datetime | None = None
) -> ibis.Table:
    """Count the entered, converted, lost and open entities per stage pair and segment.

    An entity's segment is the smallest ``by`` value of its stays in stage i, so it counts
    once, and a null value is a segment of its own. Only stays that entered at or before
    ``as_of`` count. Returns the ``by`` column followed by :data:`COUNT_COLUMNS`, sorted by
    stage order and then by segment (null first).

    Raises:
        ValueError: see :func:`dropoff`.
    """
    if len(stages) < 2:
        raise ValueError(f"dropoff needs at least two stages, got {list(stages)}")
    _check_by(stays, by)

    moment = ibis.literal(_as_utc(as_of or datetime.now(UTC)), "timestamp('UTC')")
    entries = _entries_until(stays, moment, by)

    pairs = [_pair_states(entries, first, second, moment) for first, second in pairwise(stages)]
    table = ibis.union(*pairs, distinct=False)

    stage_order = table.from_stage.cases(*((name, i) for i, name in enumerate(stages)))
    table = table.order_by([stage_order, ibis.asc(table[BY_KEY], nulls_first=True)])
    return table.rename({by: BY_KEY})


def average_won_value(deals: ibis.Table) -> float:
    """Return the mean ``amount`` of the won deals that have one, in their currency.

    Raises:
        ValueError: the won deals have more than one currency, or none has an amount.
    """
    won = deals.filter(deals.is_won.fill_null(False), deals.amount.notnull())
    summary = won.aggregate(
        value=won.amount.mean(), currencies=won.currency.nunique(), deals=won.count()
    ).to_pandas()

    row = summary.iloc[0]
    if int(row["deals"]) == 0:
        raise ValueError("deals has no won deal with an amount. Pass deals=None to count entities")
    if int(row["currencies"]) > 1:
        raise ValueError(
            "the won deals have more than one currency. Filter deals to one currency first"
        )
    return float(row["value"])


def _check_by(stays: ibis.Table, by: str) -> None:
    """Reject a ``by`` column that ``stays`` lacks or whose name an output column has."""
    if by not in stays.schema().names:
        raise ValueError(f"the stays table has no column {by!r} to split by")
    if by in COUNT_COLUMNS or by in RANKED_COLUMNS or by == BY_KEY:
        raise ValueError(
            f"by={by!r} is the name of an output column. Rename the column before splitting by it"
        )


def _entries_until(stays: ibis.Table, moment: ir.TimestampScalar, by: str) -> ibis.Table:
    """Return the stays that began by ``moment``: ``entity, stage, entered_at, exited_at, _by``."""
    columns = stays.schema().names
    entity = "entity_id" if "entity_id" in columns else "deal_id"
    if entity not in columns:
        raise ValueError(f"the stays table has no entity_id or deal_id column: {list(columns)}")

    rows = stays.filter(
        stays[entity].notnull(), stays.entered_at.notnull(), stays.entered_at <= moment
    )
    return rows.select(
        entity=rows[entity],
        stage="stage",
        entered_at="entered_at",
        exited_at="exited_at",
        _by=rows[by],
    )


def _pair_states(
    entries: ibis.Table, first: str, second: str, moment: ir.TimestampScalar
) -> ibis.Table:
    """Count the entrants of ``first`` per segment by their state towards ``second``."""
    in_first = entries.filter(entries.stage == first)
    running = in_first.exited_at.isnull() | (in_first.exited_at > moment)
    starts = in_first.group_by("entity").aggregate(
        started_at=in_first.entered_at.min(),
        _by=in_first._by.min(),
        still_in=running.cast("int64").max(),
    )

    reached = entries.filter(entries.stage == second).select(
        reached_entity="entity", reached_at="entered_at"
    )
    joined = starts.left_join(
        reached,
        [starts.entity == reached.reached_entity, reached.reached_at >= starts.started_at],
    )
    per_entity = joined.group_by(["entity", BY_KEY, "still_in"]).aggregate(
        converted=(joined.reached_at.count() > 0).cast("int64")
    )

    is_open = ((1 - per_entity.converted) * per_entity.still_in).cast("int64")
    is_lost = ((1 - per_entity.converted) * (1 - per_entity.still_in)).cast("int64")
    segments = per_entity.group_by(BY_KEY).aggregate(
        entered=per_entity.count().cast("int64"),
        converted=per_entity.converted.sum().cast("int64"),
        lost=is_lost.sum().cast("int64"),
        open=is_open.sum().cast("int64"),
    )
    return segments.select(
        BY_KEY,
        from_stage=ibis.literal(first, "string"),
        to_stage=ibis.literal(second, "string"),
        entered="entered",
        converted="converted",
        lost="lost",
        open="open",
    )


def _with_money(counts: pd.DataFrame, value: float) -> pd.DataFrame:
    """Add the rates, the expected and excess loss, and their value in ``value`` per entity."""
    frame = counts.copy()
    entered = frame["entered"].astype("float64")
    frame["rate"] = frame["converted"] / entered
    frame["loss_rate"] = frame["lost"] / entered

    pair = frame.groupby(["from_stage", "to_stage"], sort=False)
    overall = pair["lost"].transform("sum") / pair["entered"].transform("sum")
    frame["overall_loss_rate"] = overall.astype("float64")
    frame["expected_lost"] = entered * frame["overall_loss_rate"]
    frame["excess_lost"] = frame["lost"] - frame["expected_lost"]

    frame["deal_value"] = float(value)
    frame["revenue_impact"] = frame["lost"] * frame["deal_value"]
    frame["excess_impact"] = frame["excess_lost"] * frame["deal_value"]
    return frame


def _ranked(frame: pd.DataFrame, by: str, stages: Sequence[str], top: int) -> pd.DataFrame:
    """Sort by ``excess_impact`` with deterministic ties, and add ``rank`` and ``top``."""
    order = {name: i for i, name in enumerate(stages)}
    keyed = frame.assign(_stage=frame["from_stage"].map(order))

    # Exact float ties are possible (equal segments), so the sort keys end with the segment.
    # Only the segment can be null, so na_position applies to it alone.
    keyed = keyed.sort_values(
        ["excess_impact", "revenue_impact", "_stage", by],
        ascending=[False, False, True, True],
        kind="mergesort",
        na_position="first",
    )
    ranked = keyed.drop(columns=["_stage"]).reset_index(drop=True)

    ranked["rank"] = pd.Series(range(1, len(ranked) + 1), dtype="int64")
    # A segment that loses less than the average is never a top problem, whatever its rank.
    ranked["top"] = (ranked["rank"] <= top) & (ranked["excess_impact"] > 0)
    return ranked[[by, *COUNT_COLUMNS, *RANKED_COLUMNS]]


def _as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, reading a naive datetime as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
