"""The view cache under concurrent requests, and the cache warm-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeymap.store.store import MEMORY, Store
from journeymap.web import warmup
from journeymap.web.access import StoreAccess
from journeymap.web.filters import Filters
from journeymap.web.pages import PAGES, warm_tasks
from journeymap.web.warmup import CacheWarmer
from tests.web.conftest import serve_app

WAIT = 10.0
"""Maximum wait of a test for another thread, in seconds."""


@pytest.fixture
def access() -> Iterator[StoreAccess]:
    store = Store.open(MEMORY)
    try:
        yield StoreAccess(MEMORY, store=store)
    finally:
        store.close()


def new_build(access: StoreAccess) -> None:
    """Change the store's version as a journey build does: add a row to ``builds``."""

    def record(store: Store) -> None:
        con = store.con.con
        con.execute(
            "CREATE TABLE IF NOT EXISTS builds "
            "(created_at TIMESTAMPTZ, package_version VARCHAR, settings VARCHAR)"
        )
        con.execute("INSERT INTO builds VALUES (now(), '0', '{}')")

    access.run(record)


def test_cached_same_key_computes_once(access: StoreAccess) -> None:
    release = threading.Event()
    calls: list[int] = []
    results: list[int] = []

    def compute(store: Store) -> int:
        calls.append(1)
        release.wait(WAIT)
        return 42

    threads = [
        threading.Thread(target=lambda: results.append(access.cached("view", compute)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(WAIT)

    assert calls == [1]
    assert results == [42, 42, 42]


def test_cached_hit_skips_running_computation(access: StoreAccess) -> None:
    access.cached("fast", lambda store: "ready")
    release = threading.Event()
    slow = threading.Thread(target=lambda: access.cached("slow", lambda store: release.wait(WAIT)))
    slow.start()
    time.sleep(0.2)
    try:
        started = time.perf_counter()
        found = access.cached("fast", lambda store: "computed again")
        waited = time.perf_counter() - started
    finally:
        release.set()
        slow.join(WAIT)

    assert found == "ready"
    assert waited < 0.5


def test_background_work_lets_requests_go_first(access: StoreAccess) -> None:
    release = threading.Event()
    order: list[str] = []

    def compute(name: str) -> object:
        def run(store: Store) -> str:
            order.append(name)
            if name == "holder":
                release.wait(WAIT)
            return name

        return run

    holder = threading.Thread(target=lambda: access.cached("holder", compute("holder")))
    holder.start()
    time.sleep(0.2)
    background = threading.Thread(
        target=lambda: access.cached("warm", compute("warm"), background=True)
    )
    background.start()
    time.sleep(0.2)
    request = threading.Thread(target=lambda: access.cached("request", compute("request")))
    request.start()
    time.sleep(0.2)
    release.set()
    for thread in (holder, background, request):
        thread.join(WAIT)

    assert order == ["holder", "request", "warm"]


def test_cached_recomputes_after_new_build(access: StoreAccess) -> None:
    calls: list[int] = []

    def compute(store: Store) -> int:
        calls.append(1)
        return len(calls)

    assert access.cached("view", compute) == 1
    assert access.cached("view", compute) == 1
    new_build(access)

    assert access.cached("view", compute) == 2
    assert access.has("view")


def test_cached_error_is_shared_not_kept(access: StoreAccess) -> None:
    def fail(store: Store) -> int:
        raise ValueError("broken view")

    with pytest.raises(ValueError, match="broken view"):
        access.cached("view", fail)
    assert not access.has("view")


def test_warmer_runs_again_after_new_build(access: StoreAccess) -> None:
    calls: list[int] = []

    def task() -> None:
        access.cached("view", lambda store: calls.append(1), background=True)

    warmer = CacheWarmer(access, lambda: [("view", task)], poll_seconds=0.05, pause_seconds=0)
    warmer.start()
    try:
        assert warmer.done.wait(WAIT)
        assert calls == [1]
        new_build(access)
        deadline = time.monotonic() + WAIT
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warmer.done.wait(WAIT)
    finally:
        warmer.stop()

    assert calls == [1, 1]
    assert warmer.status()["rounds"] == 2
    assert warmer.status()["state"] == "stopped"


def test_warmer_counts_failed_task(access: StoreAccess) -> None:
    def broken() -> None:
        raise RuntimeError("task failed")

    warmer = CacheWarmer(access, lambda: [("broken", broken)], poll_seconds=0.05)
    warmer.start()
    try:
        assert warmer.done.wait(WAIT)
    finally:
        warmer.stop()
    assert warmer.status()["failures"] == 1


def test_warm_tasks_cover_every_page(tmp_path: Path) -> None:
    with serve_app(tmp_path, tmp_path / "none.duckdb", auth="none") as test:
        names = [name for name, _ in warm_tasks(test.app.state.dashboard)]
    assert names[0] == "summary"
    assert {page.path for page in PAGES} <= set(names)
    assert {"/attribution?grain=campaign", "/attribution?grain=ad"} <= set(names)


def test_server_start_warms_default_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup, "PAUSE_SECONDS", 0.0)
    path = tmp_path / "empty.duckdb"
    Store.open(path).close()
    with serve_app(tmp_path, path, auth="none", warm_up=True) as test:
        dashboard = test.app.state.dashboard
        assert dashboard.warmer.done.wait(60)
        status = test.get("/api/status").json()["warm_up"]
        warmed = {
            view: dashboard.access.has((view, Filters().key()))
            for view in ("map", "attribution", "paths", "funnel")
        }

    assert status["state"] == "ready"
    assert status["tasks"] == len(warm_tasks(dashboard))
    assert warmed == {"map": True, "attribution": True, "paths": True, "funnel": True}


def test_server_without_warm_up_reports_off(tmp_path: Path) -> None:
    with serve_app(tmp_path, tmp_path / "none.duckdb", auth="none") as test:
        status = test.get("/api/status").json()["warm_up"]
    assert status == {"state": "off"}
