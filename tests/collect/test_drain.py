"""Drains from the journal: into the store and into the Parquet dataset, each exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pyarrow.dataset as ds
import pytest

from journeymap.collect import drain, journal
from journeymap.collect.messages import accept
from journeymap.store.store import Store


def write_journal(path: Path, count: int, *, start: int = 0, day: int = 1) -> None:
    received = datetime(2026, 3, day, 23, 59, tzinfo=UTC)
    messages = [
        {"type": "track", "event": "Viewed", "userId": f"u{i}", "messageId": f"m{i}"}
        for i in range(start, start + count)
    ]
    rows = accept(messages, source="web", received_at=received, message_limit=32_768)
    con = journal.connect(path)
    try:
        journal.append(con, rows)
    finally:
        con.close()


def test_drain_store_moves_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 3)
    store = Store.open(tmp_path / "store.duckdb")
    assert drain.drain_store(store, path) == 3
    assert drain.drain_store(store, path) == 0
    write_journal(path, 2, start=3)
    assert drain.drain_store(store, path) == 2
    events = store.table("events").order_by("seq").to_pandas()
    assert events.message_id.tolist() == ["m0", "m1", "m2", "m3", "m4"]
    assert events.seq.tolist() == [1, 2, 3, 4, 5]
    imports = store.table("imports").to_pandas()
    assert imports.kind.tolist() == ["collector", "collector"]
    store.close()


def test_drain_store_failure_leaves_store_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 3)
    store = Store.open(tmp_path / "store.duckdb")
    original = store.append

    def fail_on_imports(name: str, frame: object) -> int:
        if name == "imports":
            raise OSError("disk full")
        return original(name, frame)  # type: ignore[arg-type]

    failing = mock.patch.object(store, "append", side_effect=fail_on_imports)
    with failing, pytest.raises(OSError, match="disk full"):
        drain.drain_store(store, path)
    assert store.table("events").count().execute() == 0
    assert drain.drain_store(store, path) == 3
    store.close()


def test_try_drain_store_skips_a_busy_store(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 1)
    store_path = tmp_path / "store.duckdb"
    holder = Store.open(store_path)
    with mock.patch.object(Store, "open", side_effect=drain.StoreError("busy")) as opened:
        assert drain.try_drain_store(str(store_path), path) is None
    assert opened.call_args.kwargs == {"lock_timeout": 0}
    holder.close()
    assert drain.try_drain_store(str(store_path), path) == 1


def test_drain_parquet_partitions_by_day_atomically(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 2, day=1)
    write_journal(path, 3, start=2, day=2)
    folder = tmp_path / "dataset"
    assert drain.drain_parquet(folder, path) == 5
    assert drain.drain_parquet(folder, path) == 0
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        "date=2026-03-01/part-000000000001-000000000002.parquet",
        "date=2026-03-02/part-000000000003-000000000005.parquet",
    ]
    table = ds.dataset(folder, partitioning="hive").to_table()
    assert sorted(table["message_id"].to_pylist()) == ["m0", "m1", "m2", "m3", "m4"]


def test_drain_parquet_resumes_after_the_last_file(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 2)
    folder = tmp_path / "dataset"
    drain.drain_parquet(folder, path)
    write_journal(path, 1, start=2)
    assert drain.drain_parquet(folder, path) == 1
    assert drain.parquet_position(folder) == 3


def test_prune_keeps_message_ids_for_deduplication(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 2)
    store = Store.open(tmp_path / "store.duckdb")
    drain.drain_store(store, path)
    with mock.patch.object(drain, "datetime") as clock:
        clock.now.return_value = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=40)
        assert drain.prune_journal(path, readers=["store"], days=30) == 2
    con = journal.connect(path)
    try:
        kept = con.execute("SELECT message_id, raw, sent_at FROM journal").fetchall()
        write_again = journal.append(
            con,
            accept(
                [{"type": "track", "event": "Viewed", "userId": "u0", "messageId": "m0"}],
                source="web",
                received_at=datetime(2026, 4, 10, tzinfo=UTC),
                message_limit=32_768,
            ),
        )
    finally:
        con.close()
    assert kept == [("m0", None, None), ("m1", None, None)]
    assert write_again.duplicates == 1
    assert store.table("events").count().execute() == 2
    store.close()


def test_prune_waits_for_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 2)
    store = Store.open(tmp_path / "store.duckdb")
    drain.drain_store(store, path)
    store.close()
    assert drain.prune_journal(path, readers=["store", "parquet:x"], days=0) == 0


def test_drain_process_moves_events_into_store(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from journeymap.collect.app import create_app
    from journeymap.common.config import parse_config

    config = parse_config(
        {
            "store": str(tmp_path / "store.duckdb"),
            "collector": {"sources": {"web": {"write_key": "k"}}},
        }
    )
    app = create_app(config, drain_every=3600, drain_process=True)
    message = {"event": "Signed Up", "userId": "u", "messageId": "m1"}
    with TestClient(app) as client:
        assert client.post("/v1/track", json=message, auth=("k", "")).status_code == 200
        metrics = client.get("/metrics").text
    assert 'journeymap_journal_backlog{sink="store"} 1.0' in metrics
    store = Store.open(tmp_path / "store.duckdb")
    try:
        assert store.table("events").message_id.to_pyarrow().to_pylist() == ["m1"]
    finally:
        store.close()


def test_try_drain_store_trusts_store_over_stale_mark(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, 3)
    store_path = tmp_path / "store.duckdb"
    assert drain.try_drain_store(str(store_path), path) == 3
    con = journal.connect(path)
    try:
        journal.set_position(con, "store", 0)
    finally:
        con.close()
    write_journal(path, 1, start=3)
    assert drain.try_drain_store(str(store_path), path) == 1
    store = Store.open(store_path)
    try:
        ids = store.table("events").order_by("seq").message_id.to_pyarrow().to_pylist()
    finally:
        store.close()
    assert ids == ["m0", "m1", "m2", "m3"]


def test_drain_supervisor_restarts_a_dead_drain(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from journeymap.collect.app import create_app
    from journeymap.common.config import parse_config

    config = parse_config(
        {
            "store": str(tmp_path / "store.duckdb"),
            "collector": {"sources": {"web": {"write_key": "k"}}},
        }
    )
    app = create_app(config, drain_every=3600, drain_process=True)
    with TestClient(app) as client:
        supervisor = app.state.collector.supervisor
        first = supervisor.process
        first.kill()
        first.join()
        assert client.get("/ready").status_code == 503
        supervisor.check()
        assert supervisor.alive
        assert supervisor.process is not first
        assert client.get("/ready").status_code == 200
