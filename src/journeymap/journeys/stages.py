"""Journey stages: check the configured entry rules against the data, and derive stage stays.

The ``stages`` section of the configuration lists the stages in journey order, each with the
conditions that enter it (see :class:`journeymap.common.config.StageConfig`). This module
turns the store's rows into ``stage_timeline`` rows, one per stay of a person or an account
in a stage:

- Entry signals are touches (``touchpoints``), conversions (by ``kind``), deal stage entries
  (``deal_stages`` joined to the deal's account, so for accounts only), CRM lifecycle stage
  entries (``lifecycle_stages``) and tracked events (``events`` by name). Each signal that
  matches a condition carries that condition's stage and, as ``reason``, the condition's
  text, such as ``deal_stage Proposal Sent``.
- Journeys only move forward. A stay starts at the first signal of a stage that is later in
  the configured order than every stage the entity reached before. A later signal of an
  earlier or the same stage changes nothing, so an entity in Expansion does not go back to
  Retention at a renewal.
- Of several signals at the same instant, the one of the latest stage wins, and of two
  conditions of that stage the reason that sorts first.
- ``exited_at`` is the ``entered_at`` of the entity's next stay, and null for its current
  stay. So an entity is in at most one stage at a time from its first signal on.
- A stage's exit conditions (``exit_when``) end a stay early: the first exit signal of the
  stage at or after the stay's start, and before the next stay, sets ``exited_at`` and
  ``exit_reason``. The entity is then in no stage until a signal of a later stage than any
  it reached, so a lost deal leaves Decision and does not return to it.

Everything is computed with filters, joins and window functions, so it runs on DuckDB and
Spark alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from journeymap.common.config import StageConfig, normalize_name
from journeymap.common.errors import ConfigError
from journeymap.identity import person_of
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

ENTITY_COLUMNS: dict[str, str] = {"person": "person_id", "account": "account_id"}
"""Column of each input table that names the entity of a ``stage_timeline`` row."""

CONDITION_NOUNS: dict[str, str] = {
    "conversion": "conversion kind",
    "deal_stage": "deal stage",
    "event": "event",
    "lifecycle_stage": "lifecycle stage",
}
"""Words for the names each condition kind is checked against, for error messages."""

MAX_LISTED_NAMES = 12
"""Known names listed in a check message at most."""

TIMELINE_SCHEMA = RAW_TABLES["stage_timeline"]


def check_stages(stages: Sequence[StageConfig], store: Store, *, strict: bool = True) -> list[str]:
    """Check that every condition of ``stages`` names a value that occurs in ``store``.

    A ``conversion`` is checked against the conversion kinds, a ``deal_stage`` against the
    stages of ``deal_stages`` and ``deals``, and an ``event`` against the event names, after
    trimming and lowercasing both sides. A kind with no rows in the store cannot be checked,
    and the returned list contains one warning for it, as it does for a ``touch`` condition
    when the store has no touches.

    With ``strict`` False, an unknown name is a warning too, because the default stages name
    values of several CRMs and no store contains all of them.

    Raises:
        ConfigError: with ``strict``, the first condition that names an unknown value, with
            its key path (``stages[2].enter_when[1].deal_stage``) and the nearest known names.
    """
    known = _known_names(store)
    warnings: list[str] = []
    unchecked: set[str] = set()

    conditions = [
        (f"stages[{index}].{field}[{position}]", condition)
        for index, stage in enumerate(stages)
        for field in ("enter_when", "exit_when")
        for position, condition in enumerate(getattr(stage, field))
    ]
    for where, condition in conditions:
        kind, value = next(iter(condition.model_dump(exclude_none=True).items()))
        path = f"{where}.{kind}"

        if kind == "touch":
            if not store.has_rows("touchpoints"):
                unchecked.add("touch conditions: the store has no touchpoints")
            continue

        names = known[kind]
        if not names:
            unchecked.add(f"{CONDITION_NOUNS[kind]} conditions: the store has none")
            continue
        if normalize_name(str(value)) in {normalize_name(name) for name in names}:
            continue

        problem = _unknown_name(kind, str(value), names, path)
        if strict:
            raise problem
        warnings.append(str(problem))

    warnings.extend(f"not checked: {reason}" for reason in sorted(unchecked))
    return warnings


def _known_names(store: Store) -> dict[str, list[str]]:
    """Return the distinct conversion kinds, deal stages and event names of ``store``."""
    sources = {
        "conversion": [("conversions", "kind"), ("collected_conversions", "kind")],
        "deal_stage": [("deal_stages", "stage"), ("deals", "stage")],
        "event": [("events", "event")],
        "lifecycle_stage": [("lifecycle_stages", "stage")],
    }
    known: dict[str, list[str]] = {}
    for kind, columns in sources.items():
        values: set[str] = set()
        for table_name, column in columns:
            if store.has_rows(table_name):
                table = store.table(table_name)
                distinct = table.select(name=table[column]).filter(ibis._.name.notnull()).distinct()
                values.update(str(name) for name in distinct.to_pandas()["name"])
        known[kind] = sorted(values)
    return known


def _unknown_name(kind: str, value: str, names: list[str], path: str) -> ConfigError:
    """Return the error for a condition value that is not among the known ``names``."""
    noun = CONDITION_NOUNS[kind]
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.5)
    if not close:
        lowered = {normalize_name(name): name for name in names}
        matches = difflib.get_close_matches(normalize_name(value), list(lowered), n=3, cutoff=0.5)
        close = [lowered[match] for match in matches]

    listed = ", ".join(repr(name) for name in names[:MAX_LISTED_NAMES])
    if len(names) > MAX_LISTED_NAMES:
        listed += f" and {len(names) - MAX_LISTED_NAMES:,} more"
    suggestion = f"Did you mean {' or '.join(repr(name) for name in close)}? " if close else ""
    return ConfigError(
        f"{noun} {value!r} never occurs in the store",
        location=path,
        hint=f"{suggestion}Known {noun}s: {listed}",
    )


def stage_position(stages: Sequence[StageConfig], name: str, *, location: str = "stage") -> int:
    """Return the 0-based position of the stage called ``name`` (compared lowercased).

    Raises:
        ConfigError: no stage has that name; the message names ``location`` and the nearest
            stage names.
    """
    names = [stage.name for stage in stages]
    for position, known in enumerate(names):
        if normalize_name(known) == normalize_name(name):
            return position

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    suggestion = f"Did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"unknown stage {name!r}",
        location=location,
        hint=f"{suggestion}Configured stages: {', '.join(names)}",
    )


def timeline_inputs(store: Store) -> dict[str, ibis.Table]:
    """Return the store's tables that :func:`stage_timeline` reads, by name.

    Touches and conversions derived from collected events are added when they were built.
    Events get ``person_id`` from the ``identities`` table when it was built (else the user
    id, then the anonymous id) and ``account_id`` from the group id of a group call.
    """
    tables: dict[str, ibis.Table] = {}
    for name in ("touchpoints", "conversions"):
        parts = [
            store.table(table_name)
            for table_name in (name, f"collected_{name}")
            if store.has_rows(table_name)
        ]
        if parts:
            columns = RAW_TABLES[name].names
            tables[name] = ibis.union(*(part.select(*columns) for part in parts), distinct=False)

    for name in ("deals", "deal_stages", "lifecycle_stages"):
        if store.has_rows(name):
            tables[name] = store.table(name)

    if store.has_rows("events"):
        events = store.table("events")
        if store.has_rows("identities"):
            events = person_of(events, store.table("identities"))
        else:
            events = events.mutate(
                person_id=ibis.coalesce(events.user_id.nullif(""), events.anonymous_id.nullif(""))
            )
        # NOTE: an event without a group call has no account, even when its person has one.
        tables["events"] = events.mutate(account_id=events.group_id.nullif(""))
    return tables


def stage_timeline(
    source: Store | Mapping[str, ibis.Table],
    stages: Sequence[StageConfig],
    *,
    entity_kind: str = "person",
) -> ibis.Table:
    """Return the stays of every person or account in the configured stages.

    ``source`` is a store, or a mapping of table name to Ibis table with any of
    ``touchpoints``, ``conversions``, ``deals`` with ``deal_stages``, and ``events``. In a
    mapping, ``events`` must have the entity's ``person_id`` or ``account_id`` column. A
    missing table gives no signals. The rules are in the module docstring. Rows with a null
    entity or timestamp are ignored. Returns an unsorted table in the ``stage_timeline``
    schema.

    Raises:
        ValueError: ``entity_kind`` is neither ``person`` nor ``account``.
    """
    if entity_kind not in ENTITY_COLUMNS:
        raise ValueError(f"entity_kind must be person or account, got {entity_kind!r}")

    tables = timeline_inputs(source) if isinstance(source, Store) else dict(source)
    signals = entry_signals(tables, stages, entity_kind=entity_kind)
    if signals is None:
        return _empty_timeline()
    names = [stage.name for stage in stages]
    stays = stays_from_signals(signals, names, entity_kind=entity_kind)
    exits = exit_signals(tables, stages, entity_kind=entity_kind)
    if exits is None:
        return stays
    return with_exits(stays, exits, names)


def exit_signals(
    tables: Mapping[str, ibis.Table], stages: Sequence[StageConfig], *, entity_kind: str
) -> ibis.Table | None:
    """Return the signals of every stage's exit conditions, like :func:`entry_signals`.

    Several stages may exit on the same value (a lost deal ends Consideration and Decision
    alike), so the signals are gathered stage by stage.
    """
    parts = []
    for index, stage in enumerate(stages):
        if not stage.exit_when:
            continue
        alone = [
            other if position == index else other.model_copy(update={"exit_when": []})
            for position, other in enumerate(stages)
        ]
        part = entry_signals(tables, alone, entity_kind=entity_kind, field="exit_when")
        if part is not None:
            parts.append(part)
    return ibis.union(*parts, distinct=False) if parts else None


def entry_signals(
    tables: Mapping[str, ibis.Table],
    stages: Sequence[StageConfig],
    *,
    entity_kind: str,
    field: str = "enter_when",
) -> ibis.Table | None:
    """Return every entry signal as ``entity_id, at, stage_index, reason``, or None if none.

    ``stage_index`` is the 0-based position of the stage in ``stages``. With ``field``
    ``exit_when``, the signals are those of the stages' exit conditions instead.
    """
    entity = ENTITY_COLUMNS[entity_kind]
    rules = _rules_by_kind(stages, field)
    parts: list[ibis.Table] = []

    touchpoints = tables.get("touchpoints")
    if touchpoints is not None and rules["touch"]:
        ((stage_index, reason),) = rules["touch"].values()
        parts.append(
            touchpoints.select(
                entity_id=touchpoints[entity],
                at=touchpoints.occurred_at,
                stage_index=ibis.literal(stage_index, "int64"),
                reason=ibis.literal(reason, "string"),
            )
        )

    conversions = tables.get("conversions")
    if conversions is not None and rules["conversion"]:
        parts.append(
            _matched(
                conversions,
                conversions[entity],
                conversions.occurred_at,
                conversions.kind,
                rules["conversion"],
            )
        )

    # NOTE: deals name an account and no person, so deal stage conditions give no signals
    # for a person timeline.
    deals, deal_stages = tables.get("deals"), tables.get("deal_stages")
    if entity_kind == "account" and deals is not None and deal_stages is not None:
        parts.extend(_deal_stage_signals(deals, deal_stages, rules["deal_stage"]))

    lifecycle = tables.get("lifecycle_stages")
    if lifecycle is not None and rules["lifecycle_stage"]:
        parts.append(
            _matched(
                lifecycle,
                lifecycle[entity],
                lifecycle.entered_at,
                lifecycle.stage,
                rules["lifecycle_stage"],
            )
        )

    events = tables.get("events")
    if events is not None and rules["event"]:
        parts.append(
            _matched(events, events[entity], events.timestamp, events.event, rules["event"])
        )

    if not parts:
        return None
    signals = ibis.union(*(_typed_signal(part) for part in parts), distinct=False)
    return signals.filter(signals.entity_id.notnull(), signals.at.notnull())


def _rules_by_kind(
    stages: Sequence[StageConfig], field: str = "enter_when"
) -> dict[str, dict[str, tuple[int, str]]]:
    """Return, per condition kind, each lowercased value's stage position and reason text.

    ``field`` names the conditions read: ``enter_when`` or ``exit_when``.
    """
    rules: dict[str, dict[str, tuple[int, str]]] = {
        "touch": {},
        "conversion": {},
        "deal_stage": {},
        "event": {},
        "lifecycle_stage": {},
    }
    for index, stage in enumerate(stages):
        for condition in getattr(stage, field):
            kind, value = condition.key()
            rules[kind][value] = (index, condition.label())
    return rules


def _matched(
    table: ibis.Table,
    entity: ir.Column,
    at: ir.Column,
    name: ir.StringColumn,
    rules: Mapping[str, tuple[int, str]],
) -> ibis.Table:
    """Return the rows of ``table`` whose ``name`` is one of ``rules``, as entry signals."""
    key = name.strip().lower()
    stage_index = key.cases(
        *((value, ibis.literal(index, "int64")) for value, (index, _) in rules.items())
    )
    reason = key.cases(
        *((value, ibis.literal(label, "string")) for value, (_, label) in rules.items())
    )
    signals = table.select(entity_id=entity, at=at, stage_index=stage_index, reason=reason)
    return signals.filter(signals.stage_index.notnull())


def _deal_stage_signals(
    deals: ibis.Table, deal_stages: ibis.Table, rules: Mapping[str, tuple[int, str]]
) -> list[ibis.Table]:
    """Return the deal stage entries that match ``rules``, as signals of the deal's account."""
    if not rules:
        return []
    accounts = deals.select(account_deal_id=deals.deal_id, deal_account=deals.account_id)
    joined = deal_stages.inner_join(accounts, deal_stages.deal_id == accounts.account_deal_id)
    return [_matched(joined, joined.deal_account, joined.entered_at, joined.stage, rules)]


def _typed_signal(signals: ibis.Table) -> ibis.Table:
    """Cast a signal table to the common column types, so that the parts can be unioned."""
    return signals.select(
        entity_id=signals.entity_id.cast("string"),
        at=signals.at.cast(TIMELINE_SCHEMA["entered_at"]),
        stage_index=signals.stage_index.cast("int64"),
        reason=signals.reason.cast("string"),
    )


def stays_from_signals(
    signals: ibis.Table, stage_names: Sequence[str], *, entity_kind: str
) -> ibis.Table:
    """Return ``stage_timeline`` rows from entry signals (``entity_id, at, stage_index, reason``).

    First one signal per entity and instant is kept: the latest stage, then the first reason.
    An instant then starts a stay only when its stage is later than the maximum stage of the
    entity's earlier instants. Each stay ends where the entity's next stay starts.
    """
    per_instant = ibis.window(
        group_by=["entity_id", "at"], order_by=[ibis.desc("stage_index"), "reason"]
    )
    ranked = signals.mutate(rank=ibis.row_number().over(per_instant))
    instants = ranked.filter(ranked.rank == 0).drop("rank")

    earlier = ibis.window(group_by="entity_id", order_by="at", rows=(None, -1))
    marked = instants.mutate(reached=instants.stage_index.max().over(earlier))
    advances = marked.filter(marked.reached.isnull() | (marked.stage_index > marked.reached))

    following = ibis.window(group_by="entity_id", order_by="at")
    stays = advances.mutate(exited_at=advances.at.lead().over(following))
    stage = stays.stage_index.cases(
        *((index, ibis.literal(name, "string")) for index, name in enumerate(stage_names))
    )
    return stays.select(
        entity_kind=ibis.literal(entity_kind, "string"),
        entity_id=stays.entity_id,
        stage=stage,
        entered_at=stays.at,
        exited_at=stays.exited_at.cast(TIMELINE_SCHEMA["exited_at"]),
        reason=stays.reason,
        exit_reason=ibis.null("string"),
    )


def with_exits(stays: ibis.Table, exits: ibis.Table, stage_names: Sequence[str]) -> ibis.Table:
    """End stays at the first exit signal of their stage, with the signal's ``exit_reason``.

    ``exits`` has ``entity_id, at, stage_index, reason``. A signal ends a stay of the same
    entity and stage when it comes at or after ``entered_at`` and before ``exited_at`` (any
    time for the current stay). Of signals at the same instant, the reason that sorts first
    wins.
    """
    stage = exits.stage_index.cases(
        *((index, ibis.literal(name, "string")) for index, name in enumerate(stage_names))
    )
    signals = exits.select(_entity=exits.entity_id, _stage=stage, _at=exits.at, _why=exits.reason)
    inside = (signals._at >= stays.entered_at) & (
        stays.exited_at.isnull() | (signals._at < stays.exited_at)
    )
    joined = stays.inner_join(
        signals, [stays.entity_id == signals._entity, stays.stage == signals._stage, inside]
    )
    first = ibis.window(group_by=["entity_id", "stage", "entered_at"], order_by=["_at", "_why"])
    ranked = joined.mutate(_n=ibis.row_number().over(first))
    ended = ranked.filter(ranked._n == 0).select(
        _e_entity="entity_id", _e_stage="stage", _e_entered="entered_at", _e_at="_at", _e_why="_why"
    )
    merged = stays.left_join(
        ended,
        [
            stays.entity_id == ended._e_entity,
            stays.stage == ended._e_stage,
            stays.entered_at == ended._e_entered,
        ],
    )
    exited_at = ibis.coalesce(merged._e_at.cast(TIMELINE_SCHEMA["exited_at"]), merged.exited_at)
    return merged.select(
        entity_kind=merged.entity_kind,
        entity_id=merged.entity_id,
        stage=merged.stage,
        entered_at=merged.entered_at,
        exited_at=exited_at,
        reason=merged.reason,
        exit_reason=merged._e_why,
    )


def _empty_timeline() -> ibis.Table:
    """Return a ``stage_timeline`` table without rows."""
    frame = pd.DataFrame({name: pd.Series(dtype="object") for name in TIMELINE_SCHEMA.names})
    return ibis.memtable(frame, schema=TIMELINE_SCHEMA)
