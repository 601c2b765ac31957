"""Drains: move journaled events into the store and into a date-partitioned Parquet dataset.

Each sink remembers how far it has read, in its own storage, and writes that mark in the same
atomic step as the rows, so a drain that dies half-way is simply repeated:

* the store: each drain is one store transaction that appends the events, their match keys
  (hashed emails and phones, Meta cookies; see :mod:`journeymap.collect.identifiers`), their
  ``imports`` record and the journal range in ``imports.file``
  (``journal <id> jseq <start>-<end>``);
* the Parquet dataset: each file contains one run of consecutive journal rows received on one
  UTC day, is written under a temporary name and renamed into
  ``date=YYYY-MM-DD/part-<start>-<end>.parquet``, and the largest ``<end>`` is the mark.

Only the drain writes the store, and only for the length of one transaction, so the CLI and
the analyses can use the store while the server runs (see :func:`try_drain_store`).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from journeymap import __version__
from journeymap.collect import journal
from journeymap.collect.identifiers import first_per_key, message_match_keys
from journeymap.collect.messages import Row, event_row
from journeymap.common.errors import StoreError
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

log = logging.getLogger("journeymap.collect")

KIND = "collector"
_RANGE = re.compile(r"^journal (?P<id>\S+) jseq (?P<start>\d+)-(?P<end>\d+)$")
_PART = re.compile(r"^part-(?P<start>\d+)-(?P<end>\d+)\.parquet$")


def journal_id(con: sqlite3.Connection) -> str:
    """Return the journal's permanent id, creating it on first use."""
    with con:
        con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        found = con.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
        if found:
            return str(found[0])
        value = uuid.uuid4().hex[:12]
        con.execute("INSERT INTO meta (key, value) VALUES ('journal_id', ?)", (value,))
    return value


def event_rows(rows: Sequence[tuple[Any, ...]]) -> list[Row]:
    """Derive the events-table columns of journal rows ``(jseq, *journal.COLUMNS)``.

    Rows whose raw message was pruned are skipped. A message that cannot be read (which
    validation at ingest should prevent) keeps its keys and times, so that one bad row
    cannot stop every later drain.
    """
    return _derive(rows, phone_region=None)[0]


def _derive(
    rows: Sequence[tuple[Any, ...]], *, phone_region: str | None
) -> tuple[list[Row], list[Row]]:
    """Derive the events rows of journal rows and, unless ``phone_region`` is None, their
    ``match_keys`` rows (one per id, key, value and source, seen first)."""
    events = []
    keys: list[Row] = []
    for _, source, message_id, kind, received, sent, cookie_id, raw in rows:
        if raw is None:
            continue
        received_at = datetime.fromisoformat(received)
        sent_at = None if sent is None else datetime.fromisoformat(sent)
        try:
            message = orjson.loads(raw)
            row = event_row(
                message,
                source=source,
                message_id=message_id,
                received_at=received_at,
                sent_at=sent_at,
                cookie_id=cookie_id,
            )
            if phone_region is not None:
                keys.extend(message_match_keys(message, row, region=phone_region))
        except Exception:
            log.exception("cannot read journaled message %s of source %s", message_id, source)
            row = {
                "message_id": message_id,
                "source": source,
                "type": kind,
                "timestamp": received_at,
                "received_at": received_at,
                "sent_at": sent_at,
            }
        events.append(row)
    return events, first_per_key(keys)


def events_table(rows: Sequence[tuple[Any, ...]], *, first_seq: int) -> pa.Table:
    """Turn journal rows into an Arrow table of the ``events`` schema.

    ``seq`` numbers the events from ``first_seq`` in journal order.
    """
    return _events_arrow(event_rows(rows), first_seq=first_seq)


def store_tables(
    rows: Sequence[tuple[Any, ...]], *, phone_region: str = "US"
) -> tuple[pa.Table, pa.Table]:
    """Return the ``events`` and ``match_keys`` tables of journal rows, as the store drain
    appends them (``seq`` from 1, no ``import_id`` yet)."""
    events, keys = _derive(rows, phone_region=phone_region)
    schema = RAW_TABLES["match_keys"].to_pyarrow()
    columns = [pa.array([key.get(field.name) for key in keys], field.type) for field in schema]
    return _events_arrow(events, first_seq=1), pa.Table.from_arrays(columns, schema=schema)


def _events_arrow(events: list[Row], *, first_seq: int) -> pa.Table:
    schema = RAW_TABLES["events"].to_pyarrow()
    arrays = []
    for field in schema:
        if field.name == "seq":
            arrays.append(pa.array(range(first_seq, first_seq + len(events)), pa.int64()))
        else:
            arrays.append(pa.array([event.get(field.name) for event in events], field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def journal_events(journal_path: str | Path) -> pa.Table:
    """Return every event of the journal whose raw message is kept, as an events table."""
    with journal.opened(journal_path) as con:
        rows = list(journal.rows_after(con, 0, limit=2**62))
    return events_table(rows, first_seq=1)


def store_position(store: Store, jid: str) -> int:
    """Return the last journal row of journal ``jid`` that the store holds."""
    imports = store.table("imports")
    files = (
        imports.filter((imports.kind == KIND) & imports.file.startswith(f"journal {jid} "))
        .select("file")
        .to_pyarrow()
        .column("file")
        .to_pylist()
    )
    ends = [int(m["end"]) for f in files if (m := _RANGE.match(f)) is not None]
    return max(ends, default=0)


def drain_store(
    store: Store, journal_path: str | Path, *, chunk: int = 200_000, phone_region: str = "US"
) -> int:
    """Append every journal row that the store lacks to ``events``; return how many.

    Each chunk is one store transaction with its match keys and its ``imports`` record, so a
    crash leaves the store with whole chunks only and the next drain continues after the last
    one. ``phone_region`` is the country of phone numbers written without a country code.
    """
    if not Path(journal_path).exists():
        return 0
    total = 0
    with journal.opened(journal_path) as con:
        jid = journal_id(con)
        done = store_position(store, jid)
        while True:
            rows = list(journal.rows_after(con, done, limit=chunk))
            if not rows:
                break
            events, keys = store_tables(rows, phone_region=phone_region)
            total += _append_chunk(store, con, jid, rows, events, keys)
            done = int(rows[-1][0])
    if total:
        log.info("moved %d collected events into the store", total)
    return total


def _append_chunk(
    store: Store,
    con: sqlite3.Connection,
    jid: str,
    rows: Sequence[tuple[Any, ...]],
    table: pa.Table,
    keys: pa.Table,
) -> int:
    """Append one chunk's events and match keys with its ``imports`` record, then record
    the position."""
    start, end = int(rows[0][0]), int(rows[-1][0])
    first_seq = store.next_seq()
    import_id = f"{KIND}-{jid}-{end}"
    table = table.set_column(
        table.schema.get_field_index("seq"),
        "seq",
        pa.array(range(first_seq, first_seq + table.num_rows), pa.int64()),
    ).set_column(
        table.schema.get_field_index("import_id"),
        "import_id",
        pa.repeat(pa.scalar(import_id), table.num_rows),
    )
    record = pa.table(
        {
            "import_id": [import_id],
            "kind": [KIND],
            "file": [f"journal {jid} jseq {start}-{end}"],
            "sha256": [None],
            "rows": [table.num_rows],
            "seq_start": [first_seq],
            "seq_end": [first_seq + table.num_rows - 1],
            "imported_at": [datetime.now(UTC)],
            "package_version": [__version__],
        }
    )
    keys = keys.set_column(
        keys.schema.get_field_index("import_id"),
        "import_id",
        pa.repeat(pa.scalar(import_id), keys.num_rows),
    )
    with store.transaction():
        store.append("events", table)
        store.append("match_keys", keys)
        store.append("imports", record)
    journal.set_position(con, "store", end)
    return int(table.num_rows)


def try_drain_store(
    store_path: str, journal_path: str | Path, *, chunk: int = 200_000, phone_region: str = "US"
) -> int | None:
    """Drain one chunk into the store file unless another process has it open; None if it does.

    The chunk's event columns are derived before the store is opened, so that the store is
    held only for the append (the derivation takes about 50 µs per event).
    """
    if not Path(journal_path).exists():
        return 0
    with journal.opened(journal_path) as con:
        jid = journal_id(con)
        expected = journal.position(con, "store")
        rows = list(journal.rows_after(con, expected, limit=chunk))
        if not rows:
            return 0
        table, keys = store_tables(rows, phone_region=phone_region)
        try:
            store = Store.open(store_path, lock_timeout=0)
        except StoreError:
            return None
        try:
            if store_position(store, jid) != expected:
                # The journal's mark is behind the store (a crash between the two writes), or
                # the store was replaced: the store's own record decides.
                return drain_store(store, journal_path, chunk=chunk, phone_region=phone_region)
            moved = _append_chunk(store, con, jid, rows, table, keys)
        finally:
            store.close()
    log.info("moved %d collected events into the store", moved)
    return moved


def parquet_position(folder: str | Path) -> int:
    """Return the last journal row that the Parquet dataset in ``folder`` holds."""
    root = Path(folder)
    if not root.exists():
        return 0
    names = (path.name for path in root.glob("date=*/part-*.parquet"))
    ends = [int(m["end"]) for name in names if (m := _PART.match(name))]
    return max(ends, default=0)


def drain_parquet(folder: str | Path, journal_path: str | Path, *, chunk: int = 200_000) -> int:
    """Write every journal row that the dataset lacks as Parquet files; return how many.

    A file contains consecutive journal rows received on one UTC day, so each file is a
    complete step: it is written under a temporary name and renamed into place.
    """
    if not Path(journal_path).exists():
        return 0
    root = Path(folder)
    total = 0
    with journal.opened(journal_path) as con:
        done = parquet_position(root)
        while True:
            rows = list(journal.rows_after(con, done, limit=chunk))
            if not rows:
                break
            for run in _day_runs(rows):
                table = events_table(run, first_seq=int(run[0][0])).drop_columns(["import_id"])
                day = str(run[0][1 + journal.COLUMNS.index("received_at")])[:10]
                _write_atomic(table, root / f"date={day}", int(run[0][0]), int(run[-1][0]))
                total += table.num_rows
            done = int(rows[-1][0])
            journal.set_position(con, f"parquet:{root}", done)
    if total:
        log.info("wrote %d collected events to the Parquet dataset", total)
    return total


def _day_runs(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Split rows into runs of consecutive rows received on the same UTC day."""
    at = 1 + journal.COLUMNS.index("received_at")
    runs: list[list[tuple[Any, ...]]] = []
    for row in rows:
        day = str(row[at])[:10]
        if runs and str(runs[-1][0][at])[:10] == day:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _write_atomic(table: pa.Table, folder: Path, start: int, end: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"part-{start:012d}-{end:012d}.parquet"
    temporary = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "wb") as handle:
        pq.write_table(table, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def prune_journal(journal_path: str | Path, *, readers: Sequence[str], days: int) -> int:
    """Forget raw bodies that every reader in ``readers`` has taken and that are ``days`` old."""
    with journal.opened(journal_path) as con:
        upto = min((journal.position(con, reader) for reader in readers), default=0)
        if upto == 0:
            return 0
        return journal.prune(
            con, upto=upto, older_than=journal.retention_cutoff(datetime.now(UTC), days)
        )


@dataclass(frozen=True)
class Sinks:
    """The destinations of a drain: the store file and the Parquet dataset."""

    journal: str
    store: str | None
    parquet_dir: str | None
    retention_days: int
    phone_region: str = "US"
    """Country (ISO 3166 alpha-2) of phone numbers written without a country code."""

    @property
    def readers(self) -> list[str]:
        """Return the journal position names of the sinks."""
        names = ["store"] if self.store is not None else []
        if self.parquet_dir is not None:
            names.append(f"parquet:{Path(self.parquet_dir)}")
        return names


def drain_all(sinks: Sinks) -> dict[str, int]:
    """Drain into every sink once, prune and checkpoint the journal; return events per sink.

    A store that another process has open is skipped until the next round.
    """
    moved: dict[str, int] = {}
    # NOTE: with both sinks, each derives the event columns of the same rows on its own
    # (about 50 µs an event), because each keeps its own position in the journal.
    if sinks.store is not None:
        moved["store"] = (
            try_drain_store(sinks.store, sinks.journal, phone_region=sinks.phone_region) or 0
        )
    if sinks.parquet_dir is not None:
        moved["parquet"] = drain_parquet(sinks.parquet_dir, sinks.journal)
    if sinks.readers:
        prune_journal(sinks.journal, readers=sinks.readers, days=sinks.retention_days)
    if Path(sinks.journal).exists():
        with journal.opened(sinks.journal) as con:
            journal.checkpoint(con)
    return moved


def drain_forever(sinks: Sinks, every: float, parent: int) -> None:
    """Drain every ``every`` seconds until SIGTERM or SIGINT, or until ``parent`` is gone.

    This is the body of the server's drain process: it owns the writes to the store, so that
    the process that handles requests spends its time on them. It drains once more before
    it exits, and it exits when its parent process (``parent``, a pid) dies, so that a killed
    server leaves no drain behind.
    """
    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stop.wait(every):
        if os.getppid() != parent:
            log.warning("the server process %d is gone; the drain stops", parent)
            break
        _drain_logged(sinks)
    _drain_logged(sinks)


def _drain_logged(sinks: Sinks) -> None:
    try:
        drain_all(sinks)
    except Exception:
        # The events stay in the journal; the next round tries again.
        log.exception("draining the journal failed; the events stay in the journal")


def backlog(journal_path: str | Path, readers: Sequence[str]) -> dict[str, int]:
    """Return how many journal rows each reader has not taken yet."""
    if not Path(journal_path).exists():
        return {}
    with journal.opened(journal_path) as con:
        top = con.execute("SELECT coalesce(max(jseq), 0) FROM journal").fetchone()[0]
        return {reader: int(top) - journal.position(con, reader) for reader in readers}
