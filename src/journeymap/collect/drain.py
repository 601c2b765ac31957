"""Drains: move journaled events into the store and into a date-partitioned Parquet dataset.

Each sink remembers how far it has read, in its own storage, and writes that mark in the same
atomic step as the rows, so a drain that dies half-way is simply repeated:

* the store: each drain is one store transaction that appends the events, their ``imports``
  record and the journal range in ``imports.file`` (``journal <id> jseq <start>-<end>``);
* the Parquet dataset: each file holds one run of consecutive journal rows received on one
  UTC day, is written under a temporary name and renamed into
  ``date=YYYY-MM-DD/part-<start>-<end>.parquet``, and the largest ``<end>`` is the mark.

Only the drain writes the store, and only for the length of one transaction, so the CLI and
the analyses can use the store while the server runs (see :func:`try_drain_store`).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from journeymap import __version__
from journeymap.collect import journal
from journeymap.common.errors import StoreError
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

log = logging.getLogger("journeymap.collect")

KIND = "collector"
_RANGE = re.compile(r"^journal (?P<id>\S+) jseq (?P<start>\d+)-(?P<end>\d+)$")
_PART = re.compile(r"^part-(?P<start>\d+)-(?P<end>\d+)\.parquet$")
EVENT_COLUMNS = tuple(c for c in journal.COLUMNS if c != "raw")


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


def events_table(rows: Sequence[tuple[Any, ...]], *, first_seq: int) -> pa.Table:
    """Turn journal rows ``(jseq, *COLUMNS)`` into an Arrow table of the ``events`` schema.

    ``seq`` numbers the rows from ``first_seq`` in journal order.
    """
    schema = RAW_TABLES["events"].to_pyarrow()
    columns = list(zip(*rows, strict=True)) if rows else [()] * (len(journal.COLUMNS) + 1)
    by_name = dict(zip(("jseq", *journal.COLUMNS), columns, strict=True))
    arrays = []
    for field in schema:
        if field.name == "seq":
            arrays.append(pa.array(range(first_seq, first_seq + len(rows)), pa.int64()))
        elif field.name in journal.TIME_COLUMNS:
            arrays.append(pa.array(by_name[field.name], pa.string()).cast(field.type))
        elif field.name in by_name:
            arrays.append(pa.array(by_name[field.name], field.type))
        else:
            arrays.append(pa.nulls(len(rows), field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


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


def drain_store(store: Store, journal_path: str | Path, *, chunk: int = 200_000) -> int:
    """Append every journal row that the store lacks to ``events``; return how many.

    Each chunk is one store transaction with its ``imports`` record, so a crash leaves the
    store with whole chunks only and the next drain continues after the last one.
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
            start, end = int(rows[0][0]), int(rows[-1][0])
            first_seq = store.next_seq()
            table = events_table(rows, first_seq=first_seq)
            import_id = f"{KIND}-{jid}-{end}"
            table = table.set_column(
                table.schema.get_field_index("import_id"),
                "import_id",
                pa.repeat(pa.scalar(import_id), table.num_rows),
            )
            with store.transaction():
                store.append("events", table)
                store.append(
                    "imports",
                    pa.table(
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
                    ),
                )
            journal.set_position(con, "store", end)
            done = end
            total += table.num_rows
    if total:
        log.info("moved %d collected events into the store", total)
    return total


def try_drain_store(store_path: str, journal_path: str | Path) -> int | None:
    """Drain into the store file if no other process holds it; None when it is busy."""
    try:
        store = Store.open(store_path, lock_timeout=0)
    except StoreError:
        return None
    try:
        return drain_store(store, journal_path)
    finally:
        store.close()


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

    A file holds consecutive journal rows received on one UTC day, so each file is a
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
