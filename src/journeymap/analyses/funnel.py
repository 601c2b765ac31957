"""Funnels: ordered event funnels over people, and stage-to-stage conversion by entry cohort.

Both are Ibis expressions built from filters, inequality joins, group-bys and window
functions, so they run on DuckDB and on Spark alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import ibis
import ibis.expr.types as ir

PERIOD_UNITS: dict[str, str] = {"week": "W", "month": "M", "quarter": "Q"}
"""Cohort periods of :func:`stage_funnel` and their Ibis truncation units (weeks start Monday)."""

BY_KEY = "_by"
"""Internal name of the ``by`` column of :func:`stage_funnel`, a constant null without ``by``."""

FUNNEL_COLUMNS = ("cohort", "from_stage", "to_stage", "entered", "converted", "rate", "open")


def ordered_funnel(
    events: ibis.Table,
    steps: Sequence[str],
    *,
    entity: str = "person_id",
    within: timedelta | None = None,
) -> ibis.Table:
    """Count the entities that did ``steps`` in order, one row per step.

    Takes a table with the columns ``entity``, ``event``, ``timestamp`` and ``seq`` (such as
    ``events`` with a ``person_id`` added). Step k counts the entities with events for steps
    1 to k in that order. One event fills at most one step, so the steps ``[a, b, b]`` need
    two distinct ``b`` events after an ``a``. Events are ordered by ``timestamp``, then by
    ``seq``, so of two events with the same timestamp the one that arrived first comes
    first. Events before an entity's first step-1 event count for nothing, and rows with a
    null entity or timestamp are ignored.

    With ``within``, every step must come at most ``within`` after the step-1 event it
    starts from, bound included. Each step-1 event of an entity is then tried as a start,
    because a later start can reach further than an earlier one. Matching the earliest
    qualifying event for each step reaches the furthest step from a given start.

    Returns the columns ``step`` (1-based), ``name``, ``entities``, ``rate_from_previous``
    (entities over those of the step before; 1.0 for step 1) and ``rate_from_first``
    (entities over those of step 1). A rate is null when its denominator is 0.

    Raises:
        ValueError: ``steps`` is empty or ``within`` is negative.
    """
    if not steps:
        raise ValueError("steps is empty. Pass at least one event name")
    if within is not None and within < timedelta(0):
        raise ValueError(f"within must be zero or positive, got {within}")

    candidates = _step_events(events, steps, entity)
    chains = _first_steps(candidates, steps[0], keep_every_start=within is not None)

    levels = [chains]
    for name in steps[1:]:
        chains = _next_step(chains, candidates, name, within)
        levels.append(chains)

    counts = [
        level.aggregate(entities=level.entity.nunique().cast("int64")).mutate(
            step=ibis.literal(number, "int64"), name=ibis.literal(name, "string")
        )
        for number, (name, level) in enumerate(zip(steps, levels, strict=True), start=1)
    ]
    return _with_rates(ibis.union(*counts, distinct=False))


def _step_events(events: ibis.Table, steps: Sequence[str], entity: str) -> ibis.Table:
    """Return the events named in ``steps`` with ``pos``: their 0-based order per entity."""
    rows = events.filter(
        events.event.isin(list(dict.fromkeys(steps))),
        events[entity].notnull(),
        events.timestamp.notnull(),
    ).select(entity=events[entity], event="event", timestamp="timestamp", seq="seq")

    # The event name breaks ties of equal timestamp and seq, so the order is deterministic.
    order = ibis.window(group_by="entity", order_by=["timestamp", "seq", "event"])
    return rows.mutate(pos=ibis.row_number().over(order))


def _first_steps(candidates: ibis.Table, name: str, *, keep_every_start: bool) -> ibis.Table:
    """Return the chains that start at a step-1 event: ``entity, start_ts, start_pos, pos``.

    Without a time limit only an entity's first step-1 event can reach furthest, so it is the
    only start kept.
    """
    starts = candidates.filter(candidates.event == name)
    if keep_every_start:
        return starts.select("entity", start_ts="timestamp", start_pos="pos", pos="pos")
    first = starts.group_by("entity").aggregate(
        start_ts=starts.timestamp.min(), start_pos=starts.pos.min()
    )
    return first.mutate(pos=first.start_pos)


def _next_step(
    chains: ibis.Table, candidates: ibis.Table, name: str, within: timedelta | None
) -> ibis.Table:
    """Extend each chain by the earliest ``name`` event after its last step, or drop it."""
    following = candidates.filter(candidates.event == name).select(
        next_entity="entity", next_ts="timestamp", next_pos="pos"
    )
    conditions = [chains.entity == following.next_entity, following.next_pos > chains.pos]
    if within is not None:
        conditions.append(following.next_ts <= chains.start_ts + ibis.literal(within))

    # NOTE: the join pairs every chain with every later event of the step's name of the same
    # entity, so its size grows with the square of an entity's events of those names.
    joined = chains.inner_join(following, conditions)
    return joined.group_by(["entity", "start_ts", "start_pos"]).aggregate(pos=joined.next_pos.min())


def _with_rates(counts: ibis.Table) -> ibis.Table:
    """Add ``rate_from_previous`` and ``rate_from_first`` to per-step entity counts."""
    ordered = ibis.window(order_by="step")
    previous = counts.entities.lag().over(ordered).fill_null(counts.entities)
    first = ibis.cases((counts.step == 1, counts.entities)).max().over(ibis.window())
    rated = counts.mutate(
        rate_from_previous=_ratio(counts.entities, previous),
        rate_from_first=_ratio(counts.entities, first),
    )
    return rated.select(
        "step", "name", "entities", "rate_from_previous", "rate_from_first"
    ).order_by("step")


def _ratio(numerator: ir.IntegerValue, denominator: ir.IntegerValue) -> ir.FloatingValue:
    """Divide as floats, null when the denominator is 0 (Spark's ANSI mode rejects x / 0)."""
    return numerator.cast("float64") / denominator.nullif(0).cast("float64")


def stage_funnel(
    stays: ibis.Table,
    stages: Sequence[str],
    *,
    period: str = "month",
    window_days: float | None = None,
    as_of: datetime | None = None,
    by: str | None = None,
) -> ibis.Table:
    """Return stage-to-stage conversion by entry cohort, one row per stage pair and cohort.

    Takes a table of stays in stages: ``entity_id`` (or, in a table without it, ``deal_id``,
    so ``deal_stages`` works as it is), ``stage``, ``entered_at`` and ``exited_at``. For each
    pair of consecutive ``stages`` (i, i+1):

    - An entity enters stage i at its first stay in stage i that began at or before
      ``as_of``. It belongs to the cohort of the ``period`` (``week``, starting Monday,
      ``month`` or ``quarter``, in UTC) in which it entered.
    - It converts when it entered stage i+1 at or after entering stage i (the same instant
      counts), within ``window_days`` days when given, and at or before ``as_of``. A
      conversion counts for the entry cohort whenever it happened, even after the cohort's
      period ended, so long sales cycles do not lower the rates of old cohorts.
    - ``open`` is ``entered - converted`` while the cohort's window has not elapsed at
      ``as_of``, and 0 once it has. The window elapses ``window_days`` after the end of the
      cohort's period, when its last entrant's window ends. Without ``window_days`` a
      conversion can come at any time, so no cohort's window ever elapses and ``open`` is
      always ``entered - converted``. A cohort with ``open > 0`` can still gain converters,
      so its rate is not final.

    With ``by``, the name of a column of ``stays`` such as a channel that the caller joined
    in, the counts are also split by its value, and a row exists per cohort, ``by`` value and
    stage pair. An entity's value is taken from its stays in stage i, and when those differ
    the smallest value is used, so each entity counts once. A null value is a group of its
    own.

    ``as_of`` defaults to the current time. Returns the columns ``cohort`` (date of the
    period's first day), the ``by`` column when given, ``from_stage``, ``to_stage``,
    ``entered``, ``converted``, ``rate`` (converted over entered) and ``open``, sorted by
    cohort, then by the ``by`` value (nulls first) and then by stage order.

    Raises:
        ValueError: fewer than two stages, an unknown ``period``, a negative ``window_days``,
            no entity column, or a ``by`` column that is missing or has the name of an output
            column.
    """
    if len(stages) < 2:
        raise ValueError(f"stage_funnel needs at least two stages, got {list(stages)}")
    if period not in PERIOD_UNITS:
        raise ValueError(f"period must be one of {', '.join(PERIOD_UNITS)}, got {period!r}")
    if window_days is not None and window_days < 0:
        raise ValueError(f"window_days must be zero or positive, got {window_days}")

    moment = as_of if as_of is not None else datetime.now(UTC)
    window = None if window_days is None else timedelta(days=window_days)
    _check_by(stays, by)
    entries = _entries_until(stays, moment, by)

    pairs = [
        _pair_cohorts(entries, first, second, PERIOD_UNITS[period], window, moment)
        for first, second in pairwise(stages)
    ]
    table = ibis.union(*pairs, distinct=False)

    stage_order = table.from_stage.cases(*((name, i) for i, name in enumerate(stages)))
    if by is None:
        return table.drop(BY_KEY).order_by([table.cohort, stage_order])
    # By default Spark sorts nulls first and DuckDB last, so the null group's place is fixed.
    table = table.rename({by: BY_KEY}).relocate(by, after="cohort")
    return table.order_by([table.cohort, ibis.asc(table[by], nulls_first=True), stage_order])


def _check_by(stays: ibis.Table, by: str | None) -> None:
    """Reject a ``by`` column that ``stays`` lacks or whose name an output column has."""
    if by is None:
        return
    if by not in stays.schema().names:
        raise ValueError(f"the stays table has no column {by!r} to split by")
    if by in FUNNEL_COLUMNS or by == BY_KEY:
        raise ValueError(
            f"by={by!r} is the name of an output column. Rename the column before splitting by it"
        )


def _entries_until(stays: ibis.Table, as_of: datetime, by: str | None) -> ibis.Table:
    """Return the stays that began at or before ``as_of``: ``entity, stage, entered_at, _by``.

    ``_by`` is the ``by`` column, or a null string without ``by``.
    """
    columns = stays.schema().names
    entity = "entity_id" if "entity_id" in columns else "deal_id"
    if entity not in columns:
        raise ValueError(f"the stays table has no entity_id or deal_id column: {list(columns)}")

    moment = ibis.literal(_as_utc(as_of), "timestamp('UTC')")
    rows = stays.filter(
        stays[entity].notnull(), stays.entered_at.notnull(), stays.entered_at <= moment
    )
    key = ibis.null("string") if by is None else stays[by]
    return rows.select(entity=rows[entity], stage="stage", entered_at="entered_at", _by=key)


def _pair_cohorts(
    entries: ibis.Table,
    first: str,
    second: str,
    unit: str,
    window: timedelta | None,
    as_of: datetime,
) -> ibis.Table:
    """Count the entrants of ``first`` and their conversions to ``second`` per cohort and key."""
    in_first = entries.filter(entries.stage == first)
    starts = in_first.group_by("entity").aggregate(
        started_at=in_first.entered_at.min(), _by=in_first._by.min()
    )
    reached = entries.filter(entries.stage == second).select(
        reached_entity="entity", reached_at="entered_at"
    )

    conditions = [
        starts.entity == reached.reached_entity,
        reached.reached_at >= starts.started_at,
    ]
    if window is not None:
        conditions.append(reached.reached_at <= starts.started_at + ibis.literal(window))
    joined = starts.left_join(reached, conditions)
    per_entity = joined.group_by(["entity", "started_at", BY_KEY]).aggregate(
        converted=joined.reached_at.count() > 0
    )

    per_entity = per_entity.mutate(cohort=per_entity.started_at.truncate(unit).date())
    cohorts = per_entity.group_by(["cohort", BY_KEY]).aggregate(
        entered=per_entity.count().cast("int64"),
        converted=per_entity.converted.cast("int64").sum(),
    )
    return cohorts.select(
        "cohort",
        BY_KEY,
        from_stage=ibis.literal(first, "string"),
        to_stage=ibis.literal(second, "string"),
        entered="entered",
        converted="converted",
        rate=_ratio(cohorts.converted, cohorts.entered),
        open=_open_count(cohorts, unit, window, as_of),
    )


def _open_count(
    cohorts: ibis.Table, unit: str, window: timedelta | None, as_of: datetime
) -> ir.IntegerValue:
    """Return ``entered - converted`` for cohorts whose window has not elapsed, else 0.

    A cohort's window has elapsed when ``as_of - window`` falls in a later period than the
    cohort, which is the same as ``as_of`` being at or after the period's end plus the window.
    """
    unconverted = cohorts.entered - cohorts.converted
    if window is None:
        return unconverted
    last_closed = ibis.literal(_as_utc(as_of) - window, "timestamp('UTC')").truncate(unit).date()
    return ibis.cases((last_closed > cohorts.cohort, 0), else_=unconverted).cast("int64")


def _as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, reading a naive datetime as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
