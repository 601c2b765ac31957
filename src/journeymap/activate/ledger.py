"""The outbox's state changes: claim rows, record what the platform answered, release leases.

A row moves ``queued -> sending -> sent | matched | rejected | skipped | failed``, or back
to ``queued`` with a later ``next_attempt_at`` when it is to be retried. Each change is one
store transaction, committed before the next request goes out:

* :func:`claim` marks the rows of one batch ``sending`` with a lease (``lease_until``) and
  commits before the request is sent;
* :func:`record_request` writes one ``sync_attempts`` row per row of the request and the
  rows' new states in one transaction after the response;
* :func:`release_expired` returns ``sending`` rows whose lease ended (the process that
  claimed them died) to ``queued``, so they are sent again with the same event ids.
* :func:`return_to_queue` returns the rows of a request whose credentials the platform
  rejected to ``queued``, and :func:`requeue_rows` returns ``rejected`` or ``failed`` rows to
  ``queued`` on request (``journeymap sync requeue``), each with its ``sync_attempts`` rows.

A crash therefore loses at most the answer to the request in flight. That request is sent
again after its lease, and the platform's dedup on the event id keeps it one conversion; the
outbox records each row's final state once, because a row leaves ``sending`` only in the
transaction that writes its outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from journeymap.activate.base import Outcome, SendRow
from journeymap.activate.outbox import _as_utc, as_mapping
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

FINAL_STATUSES = ("sent", "matched", "rejected", "skipped", "failed")
OPEN_STATUSES = ("queued", "sending")

_ROW_COLUMNS = (
    "event_id, destination, conversion_id, kind, action, occurred_at, value, currency, keys, "
    "clicked_at, attempts, send_alone"
)


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row to send: the adapter's :class:`SendRow` and the row's attempt count."""

    row: SendRow
    attempts: int
    send_alone: bool


@dataclass(frozen=True)
class Change:
    """The new state of one outbox row after an outcome."""

    event_id: str
    status: str
    code: str | None
    message: str | None
    next_attempt_at: datetime | None = None
    send_alone: bool = False


def _raw(store: Store) -> Any:
    return store.con.con


def release_expired(store: Store, now: datetime) -> list[str]:
    """Return ``sending`` rows whose lease ended to ``queued``; return their event ids."""
    with store.transaction():
        found = (
            _raw(store)
            .execute(
                "UPDATE sync_outbox SET status = 'queued', lease_until = NULL, "
                "next_attempt_at = ?, updated_at = ? "
                "WHERE status = 'sending' AND lease_until <= ? RETURNING event_id",
                [now, now, now],
            )
            .fetchall()
        )
    return sorted(str(row[0]) for row in found)


def due_rows(store: Store, destination: str, now: datetime, limit: int) -> list[OutboxRow]:
    """Return the rows of ``destination`` that are due, oldest conversion first.

    A due row that must go alone (a partial failure hit it) is returned by itself; the
    others come up to ``limit`` at a time.
    """
    raw = _raw(store)
    where = "destination = ? AND status = 'queued' AND next_attempt_at <= ?"
    order = "ORDER BY next_attempt_at, occurred_at, event_id"
    alone = raw.execute(
        f"SELECT {_ROW_COLUMNS} FROM sync_outbox WHERE {where} AND send_alone {order} LIMIT 1",
        [destination, now],
    ).fetchall()
    if alone:
        return [_outbox_row(record) for record in alone]
    found = raw.execute(
        f"SELECT {_ROW_COLUMNS} FROM sync_outbox WHERE {where} AND NOT send_alone {order} LIMIT ?",
        [destination, now, limit],
    ).fetchall()
    return [_outbox_row(record) for record in found]


def queued_rows(store: Store, destination: str) -> list[OutboxRow]:
    """Return every ``queued`` row of ``destination``, due or not (for a dry run)."""
    found = (
        _raw(store)
        .execute(
            f"SELECT {_ROW_COLUMNS} FROM sync_outbox WHERE destination = ? AND status = 'queued' "
            "ORDER BY occurred_at, event_id",
            [destination],
        )
        .fetchall()
    )
    return [_outbox_row(record) for record in found]


def _outbox_row(record: Sequence[Any]) -> OutboxRow:
    (
        event_id,
        destination,
        conversion_id,
        kind,
        action,
        occurred_at,
        value,
        currency,
        keys,
        clicked_at,
        attempts,
        send_alone,
    ) = record
    row = SendRow(
        event_id=event_id,
        destination=destination,
        conversion_id=conversion_id,
        kind=kind,
        action=action,
        occurred_at=_as_utc(occurred_at),
        value=None if value is None else float(value),
        currency=currency,
        keys=as_mapping(keys),
        clicked_at=None if clicked_at is None else _as_utc(clicked_at),
    )
    return OutboxRow(row=row, attempts=int(attempts or 0), send_alone=bool(send_alone))


def claim(store: Store, event_ids: Sequence[str], now: datetime, lease_until: datetime) -> set[str]:
    """Mark queued rows ``sending`` until ``lease_until`` and count the attempt; commit.

    Returns the event ids claimed: a row that another run claimed or finished meanwhile is
    left out.
    """
    if not event_ids:
        return set()
    marks = ", ".join("?" for _ in event_ids)
    with store.transaction():
        found = (
            _raw(store)
            .execute(
                "UPDATE sync_outbox SET status = 'sending', lease_until = ?, "
                "attempts = attempts + 1, updated_at = ? "
                f"WHERE status = 'queued' AND event_id IN ({marks}) RETURNING event_id",
                [lease_until, now, *event_ids],
            )
            .fetchall()
        )
    return {str(row[0]) for row in found}


def unclaim(store: Store, event_ids: Sequence[str], now: datetime) -> None:
    """Return claimed rows to ``queued`` without counting the attempt (nothing was sent)."""
    if not event_ids:
        return
    marks = ", ".join("?" for _ in event_ids)
    with store.transaction():
        _raw(store).execute(
            "UPDATE sync_outbox SET status = 'queued', lease_until = NULL, "
            "attempts = attempts - 1, updated_at = ? "
            f"WHERE status = 'sending' AND event_id IN ({marks})",
            [now, *event_ids],
        )


def record_changes(
    store: Store,
    changes: Sequence[Change],
    now: datetime,
    attempts: pa.Table | None = None,
) -> None:
    """Write the new states of rows, and the request's attempt rows, in one transaction.

    Rows in a final state get ``sent_at`` = ``now`` when sent or matched; every changed row
    loses its lease.
    """
    if not changes:
        return
    table = pa.table(
        {
            "event_id": [change.event_id for change in changes],
            "status": [change.status for change in changes],
            "code": [change.code for change in changes],
            "message": [change.message for change in changes],
            "next_attempt_at": pa.array(
                [change.next_attempt_at for change in changes], pa.timestamp("us", tz="UTC")
            ),
            "send_alone": [change.send_alone for change in changes],
        }
    )
    raw = _raw(store)
    view = f"_changes_{uuid.uuid4().hex}"
    raw.register(view, table)
    try:
        with store.transaction():
            if attempts is not None and attempts.num_rows:
                _append_attempts(raw, attempts)
            raw.execute(
                f"UPDATE sync_outbox SET status = c.status, last_code = c.code, "
                f"last_message = c.message, "
                f"next_attempt_at = coalesce(c.next_attempt_at, sync_outbox.next_attempt_at), "
                f"send_alone = c.send_alone, lease_until = NULL, updated_at = ?, "
                f"sent_at = CASE WHEN c.status IN ('sent', 'matched') THEN ? "
                f"ELSE sync_outbox.sent_at END "
                f'FROM "{view}" AS c WHERE sync_outbox.event_id = c.event_id',
                [now, now],
            )
    finally:
        raw.unregister(view)


def _append_attempts(raw: Any, attempts: pa.Table) -> None:
    view = f"_attempts_{uuid.uuid4().hex}"
    columns = ", ".join(f'"{name}"' for name in RAW_TABLES["sync_attempts"].names)
    raw.register(view, attempts)
    try:
        raw.execute(f'INSERT INTO sync_attempts ({columns}) SELECT {columns} FROM "{view}"')
    finally:
        raw.unregister(view)


def attempt_rows(
    outcomes: Sequence[Outcome],
    attempts: dict[str, int],
    *,
    at: datetime,
    http_status: int | None,
    duration_ms: float,
) -> pa.Table:
    """Return one ``sync_attempts`` row per outcome of one HTTP request."""
    schema = RAW_TABLES["sync_attempts"].to_pyarrow()
    return pa.Table.from_pylist(
        [
            {
                "event_id": outcome.event_id,
                "attempt": attempts.get(outcome.event_id, 0),
                "at": at,
                "http_status": http_status,
                "outcome": outcome.status,
                "code": outcome.code,
                "message": outcome.message,
                "duration_ms": duration_ms,
            }
            for outcome in outcomes
        ],
        schema=schema,
    )


def next_due_of(store: Store, destination: str) -> datetime | None:
    """Return the earliest ``next_attempt_at`` of ``destination``'s queued rows, or None."""
    found = (
        _raw(store)
        .execute(
            "SELECT min(next_attempt_at) FROM sync_outbox "
            "WHERE destination = ? AND status = 'queued'",
            [destination],
        )
        .fetchone()
    )
    return None if not found or found[0] is None else _as_utc(found[0])


def rows_of_table(table: pa.Table) -> list[OutboxRow]:
    """Return the ``queued`` rows of an Arrow table of ``sync_outbox`` rows."""
    columns = [name.strip() for name in _ROW_COLUMNS.split(",")]
    queued = table.filter(pc.equal(table.column("status"), "queued"))
    records = queued.select(columns).to_pylist()
    return [_outbox_row([record[name] for name in columns]) for record in records]


def return_to_queue(
    store: Store,
    event_ids: Sequence[str],
    now: datetime,
    attempts: pa.Table,
    code: str | None,
    message: str | None,
) -> None:
    """Return sent rows to ``queued`` without using an attempt, and write the attempt rows.

    For a request whose credentials the platform rejected: the rows were not at fault, so
    the attempt does not count towards ``max_attempts``. The platform's code and message
    stay on the rows and in the attempt rows, in one transaction.
    """
    if not event_ids:
        return
    marks = ", ".join("?" for _ in event_ids)
    raw = _raw(store)
    with store.transaction():
        if attempts.num_rows:
            _append_attempts(raw, attempts)
        raw.execute(
            "UPDATE sync_outbox SET status = 'queued', lease_until = NULL, "
            "attempts = greatest(attempts - 1, 0), last_code = ?, last_message = ?, "
            f"updated_at = ? WHERE status = 'sending' AND event_id IN ({marks})",
            [code, message, now, *event_ids],
        )


REQUEUE_STATUSES = ("rejected", "failed")
"""Final statuses that :func:`requeue_rows` takes rows out of."""


def requeue_rows(
    store: Store,
    now: datetime,
    *,
    status: str = "rejected",
    destinations: Sequence[str] | None = None,
    code: str | None = None,
) -> list[str]:
    """Put ``status`` rows back in the queue, due now, with a fresh attempt count.

    ``destinations`` and ``code`` (the row's ``last_code``) narrow the rows. Each row gets a
    ``sync_attempts`` row with outcome ``requeued`` that keeps its former status, code and
    message, in the same transaction. Returns the event ids requeued, sorted.

    Raises:
        ValueError: ``status`` is not one of :data:`REQUEUE_STATUSES`.
    """
    if status not in REQUEUE_STATUSES:
        raise ValueError(f"status {status!r} cannot be requeued; use one of {REQUEUE_STATUSES}")
    where = ["status = ?"]
    parameters: list[Any] = [status]
    if destinations:
        where.append(f"destination IN ({', '.join('?' for _ in destinations)})")
        parameters.extend(destinations)
    if code is not None:
        where.append("last_code = ?")
        parameters.append(code)
    condition = " AND ".join(where)

    raw = _raw(store)
    with store.transaction():
        found = raw.execute(
            f"SELECT event_id, attempts, last_code, last_message FROM sync_outbox "
            f"WHERE {condition} ORDER BY event_id",
            parameters,
        ).fetchall()
        if not found:
            return []
        trail = pa.Table.from_pylist(
            [
                {
                    "event_id": event,
                    "attempt": int(attempts or 0),
                    "at": now,
                    "http_status": None,
                    "outcome": "requeued",
                    "code": last_code,
                    "message": f"requeued from {status}: {last_message or last_code or '-'}",
                    "duration_ms": 0.0,
                }
                for event, attempts, last_code, last_message in found
            ],
            schema=RAW_TABLES["sync_attempts"].to_pyarrow(),
        )
        _append_attempts(raw, trail)
        raw.execute(
            "UPDATE sync_outbox SET status = 'queued', attempts = 0, next_attempt_at = ?, "
            "lease_until = NULL, send_alone = FALSE, last_code = NULL, last_message = NULL, "
            f"updated_at = ? WHERE {condition}",
            [now, now, *parameters],
        )
    return sorted(str(row[0]) for row in found)
