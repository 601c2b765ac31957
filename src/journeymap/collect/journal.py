"""The journal: the durable, deduplicating landing table of the collector.

The collector never writes the DuckDB store while it handles requests. It appends each
accepted message to a SQLite journal in WAL mode with ``synchronous=FULL``, so a commit is on
disk when it returns, and other processes can read the journal while the server writes it. A
drain (:mod:`journeymap.collect.drain`) later moves journaled rows into the store and the
Parquet dataset, each of which remembers how far it has read.

A journal row is the validated message as received (``raw``, JSON) with its source, message
id, type, receive time, send time and cookie id; the drain derives the event columns from it,
so the work done while a sender waits stays small. ``(source, message_id)`` is unique: a
retry of a stored message changes nothing. Rows are numbered by ``jseq`` in commit order, and
rows are never deleted (pruning clears their fields), so numbers are never reused.

:class:`GroupCommitter` runs the writes on one thread. Requests that arrive while a commit is
running wait for the next one, and that commit takes all of them, so that many concurrent
requests share one disk flush.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from journeymap.collect.messages import Accepted

log = logging.getLogger("journeymap.collect")

# The journal's columns after ``jseq``: what :class:`Accepted` holds.
COLUMNS = ("source", "message_id", "type", "received_at", "sent_at", "cookie_id", "raw")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    jseq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    received_at TEXT NOT NULL,
    sent_at TEXT,
    cookie_id TEXT,
    raw BLOB,
    UNIQUE (source, message_id)
);
CREATE TABLE IF NOT EXISTS positions (
    reader TEXT PRIMARY KEY,
    jseq INTEGER NOT NULL
);
"""
_INSERT = (
    f"INSERT OR IGNORE INTO journal ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def default_journal_path(store: str) -> Path:
    """Return the journal that belongs to a store file: the store's path plus ``.journal``."""
    if store == ":memory:":
        return Path("journeymap.journal")
    return Path(f"{store}.journal")


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the journal, creating it and its tables unless ``readonly``."""
    if readonly:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The journal contains raw messages (personal data), so only its owner may read it;
        # SQLite gives the -wal and -shm files the same permissions.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        con = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        # Checkpoints run in the drain (see ``checkpoint``), not in the commits that a
        # sender waits for.
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.executescript(_SCHEMA)
    return con


def _values(row: Accepted) -> tuple[Any, ...]:
    return (
        row.source,
        row.message_id,
        row.type,
        row.received_at,
        row.sent_at,
        row.cookie_id,
        row.raw,
    )


@dataclass(frozen=True)
class Stored:
    """The outcome of one commit for one request's messages."""

    stored: int
    duplicates: int


def append(con: sqlite3.Connection, rows: Sequence[Accepted]) -> Stored:
    """Insert rows in one transaction and return how many were new; duplicates are ignored."""
    with con:
        before = con.total_changes
        con.executemany(_INSERT, [_values(row) for row in rows])
        stored = con.total_changes - before
    return Stored(stored=stored, duplicates=len(rows) - stored)


class GroupCommitter:
    """One writer thread that commits the rows of many requests together.

    :meth:`submit` returns a future that resolves once the rows are on disk (or fails with the
    database error). The thread takes every request waiting in the queue into one SQLite
    transaction, up to ``max_rows`` rows, so throughput grows with concurrency while each
    acknowledgement still waits for its own fsync.
    """

    def __init__(self, path: str | Path, *, max_rows: int = 20_000) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self.commits = 0
        self._queue: queue.Queue[tuple[Sequence[Accepted], Future[Stored]] | None] = queue.Queue()
        self._con = connect(self.path)
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs."""
        return self._thread.is_alive()

    def submit(self, rows: Sequence[Accepted]) -> Future[Stored]:
        """Queue rows for the next commit."""
        future: Future[Stored] = Future()
        if not self.alive:
            future.set_exception(RuntimeError("the journal writer has stopped"))
            return future
        self._queue.put((rows, future))
        return future

    def close(self) -> None:
        """Commit what is queued, then stop the thread and close the journal."""
        self._queue.put(None)
        self._thread.join()
        self._con.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            size = len(first[0])
            while size < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
                size += len(item[0])
            self._commit(group)

    def _commit(self, group: list[tuple[Sequence[Accepted], Future[Stored]]]) -> None:
        results = []
        try:
            with self._con:
                for rows, _ in group:
                    before = self._con.total_changes
                    self._con.executemany(_INSERT, [_values(row) for row in rows])
                    stored = self._con.total_changes - before
                    results.append(Stored(stored=stored, duplicates=len(rows) - stored))
        except sqlite3.Error as exc:
            log.error("journal commit failed: %s", exc)
            for _, future in group:
                future.set_exception(exc)
            return
        self.commits += 1
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)


def position(con: sqlite3.Connection, reader: str) -> int:
    """Return the last ``jseq`` that ``reader`` has taken (0 when it has taken nothing)."""
    found = con.execute("SELECT jseq FROM positions WHERE reader = ?", (reader,)).fetchone()
    return int(found[0]) if found else 0


def set_position(con: sqlite3.Connection, reader: str, jseq: int) -> None:
    """Record that ``reader`` has taken every row up to ``jseq``."""
    with con:
        con.execute(
            "INSERT INTO positions (reader, jseq) VALUES (?, ?) "
            "ON CONFLICT (reader) DO UPDATE SET jseq = excluded.jseq",
            (reader, jseq),
        )


def rows_after(
    con: sqlite3.Connection, jseq: int, *, limit: int = 200_000
) -> Iterator[tuple[Any, ...]]:
    """Yield ``(jseq, *COLUMNS)`` of the rows after ``jseq``, in order, at most ``limit``."""
    cursor = con.execute(
        f"SELECT jseq, {', '.join(COLUMNS)} FROM journal WHERE jseq > ? ORDER BY jseq LIMIT ?",
        (jseq, limit),
    )
    yield from cursor


def prune(con: sqlite3.Connection, *, upto: int, older_than: datetime) -> int:
    """Forget the raw messages of drained rows received before ``older_than``.

    The row's source, message id, type and receive time stay, so that a late retry is still
    recognised.
    Returns how many rows were pruned.
    """
    with con:
        cursor = con.execute(
            "UPDATE journal SET raw = NULL, sent_at = NULL, cookie_id = NULL "
            "WHERE jseq <= ? AND received_at < ? AND raw IS NOT NULL",
            (upto, older_than.isoformat(timespec="microseconds")),
        )
    return cursor.rowcount


def checkpoint(con: sqlite3.Connection) -> None:
    """Copy committed pages from the write-ahead log into the database, without blocking."""
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")


@contextmanager
def opened(path: str | Path) -> Iterator[sqlite3.Connection]:
    """Open the journal for the length of a ``with`` block."""
    con = connect(path)
    try:
        yield con
    finally:
        con.close()


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Return the receive time before which drained rows are pruned."""
    return now - timedelta(days=days)
