"""Short-lived store connections and a result cache keyed by the store's version.

DuckDB lets one process at a time open a store file, and the collector's drain process opens it
every few seconds, so the dashboard never keeps the store open: each computation opens it, runs
and closes it. Results are cached per (store version, view, filters).

Computations run one at a time. Two requests for the same uncomputed key share one
computation: the second waits for the first one's result instead of starting another. A
request for a cached key does not wait for a running computation, because it then uses the
last version read. Only the first version read of a process waits for the store. Background
work (the cache warm-up of :mod:`journeymap.web.warmup`) waits until no request is waiting for
the store.

The store version is a fingerprint of what the views read: the imports, the last journey build
and the last attribution run, and the row count of ``stage_timeline``. Reading it needs the
store open, so it is kept for as long as the file's size and modification time stay the same,
and every computation reads it again in the same session as its result. While a computation
holds the store, requests use the last version read. Collected events change the file without
changing the version, because the views read journeys, which only ``journeymap build``
rewrites.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from journeymap.store.store import MEMORY, Store

log = logging.getLogger("journeymap.web")

T = TypeVar("T")

CACHE_ENTRIES = 256
"""Results kept in the cache; the oldest used entry goes first."""

Stamp = tuple[float, int, float, int]

UNVERSIONED = "unversioned"
"""First item of the version of a store without a cheap fingerprint: every read differs."""


class StoreAccess:
    """Open the store for one computation at a time and cache results by store version.

    ``store`` is an open store to use instead of opening ``path``, which tests and in-memory
    stores need. Computations run one at a time: two queries on two cores already saturate a
    small machine, and DuckDB uses every core for one query.
    """

    def __init__(
        self,
        path: str,
        *,
        store: Store | None = None,
        lock_timeout: float = 10.0,
        entries: int = CACHE_ENTRIES,
    ) -> None:
        self.path = path
        self._store = store
        self.lock_timeout = lock_timeout
        self.entries = entries
        self._lock = threading.Lock()
        """Guards the cache, the pending computations and the known version; held briefly."""
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, Future[Any]] = {}
        self._stamp: Stamp | None = None
        self._version: tuple[Any, ...] | None = None
        self._turn = threading.Condition()
        """Hands the store to one session at a time; requests go before background work."""
        self._busy = False
        self._waiting = 0
        self.sessions = 0
        """Store sessions opened so far, computations and version reads."""

    @property
    def exists(self) -> bool:
        """Whether there is a store to read: an open one, or a file at ``path``."""
        return self._store is not None or (self.path != MEMORY and Path(self.path).is_file())

    def run(self, compute: Callable[[Store], T], *, background: bool = False) -> T:
        """Open the store, run ``compute`` on it and close it again.

        Waits while another computation has the store open. ``background`` work also waits
        until no request is waiting.

        Raises:
            StoreError: the store cannot be opened within ``lock_timeout`` seconds.
        """
        with self._session(background) as store:
            return compute(store)

    def version(self) -> tuple[Any, ...]:
        """Return the store's version; it changes when an import, build or run changes it.

        While a computation has the store open, this returns the last version read rather
        than waiting for the store.
        """
        stamp = self._file_stamp()
        with self._lock:
            known = self._version
            if known is not None and stamp is not None and stamp == self._stamp:
                return known
        with self._turn:
            busy = self._busy
        if known is not None and busy:
            return known
        with self._session(background=False) as store:
            return self._read_version(store, stamp)

    def cached(
        self, key: Hashable, compute: Callable[[Store], T], *, background: bool = False
    ) -> T:
        """Return the cached result of ``key`` for the current store version, computing it once.

        A request for a key that another thread is computing waits for that result. Errors
        are not cached, so a view whose data is missing recovers after an import.
        """
        full_key = (self.version(), key)
        with self._lock:
            if full_key in self._cache:
                self._cache.move_to_end(full_key)
                found: T = self._cache[full_key]
                return found
            pending = self._pending.get(full_key)
            if pending is None:
                future: Future[Any] = Future()
                self._pending[full_key] = future
        if pending is not None:
            shared: T = pending.result()
            return shared

        try:
            result = self._compute(key, compute, background)
        except BaseException as exc:
            self._settle(full_key)
            future.set_exception(exc)
            raise
        self._settle(full_key)
        future.set_result(result)
        return result

    def has(self, key: Hashable) -> bool:
        """Return whether the result of ``key`` for the current store version is cached."""
        full_key = (self.version(), key)
        with self._lock:
            return full_key in self._cache

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Return the cached result of ``key`` for the current store version, without the store.

        For work derived from a view's result, such as a page's figures. Two threads that
        miss at once both compute it.
        """
        full_key = (self.version(), "memo", key)
        with self._lock:
            if full_key in self._cache:
                self._cache.move_to_end(full_key)
                found: T = self._cache[full_key]
                return found
        result = compute()
        self._keep(full_key, result)
        return result

    def _compute(self, key: Hashable, compute: Callable[[Store], T], background: bool) -> T:
        """Run ``compute`` in a session of its own and cache it under the session's version."""
        stamp = self._file_stamp()
        with self._session(background) as store:
            version = self._read_version(store, stamp)
            started = time.perf_counter()
            result = compute(store)
        log.info(
            "computed %s%s in %.0f ms",
            key,
            " in the background" if background else "",
            (time.perf_counter() - started) * 1000,
        )
        self._keep((version, key), result)
        return result

    def _keep(self, full_key: Hashable, result: Any) -> None:
        with self._lock:
            self._cache[full_key] = result
            self._cache.move_to_end(full_key)
            while len(self._cache) > self.entries:
                self._cache.popitem(last=False)

    def _settle(self, full_key: Hashable) -> None:
        with self._lock:
            self._pending.pop(full_key, None)

    def _read_version(self, store: Store, stamp: Stamp | None) -> tuple[Any, ...]:
        """Read the version in an open session and remember it with the file stamp before it."""
        version = store_version(store)
        with self._lock:
            self._version = version
            self._stamp = stamp
        return version

    @contextmanager
    def _session(self, background: bool) -> Iterator[Store]:
        """Wait for the store's turn, then yield it open; close it afterwards."""
        with self._turn:
            if not background:
                self._waiting += 1
            try:
                self._turn.wait_for(
                    lambda: not self._busy and (not background or self._waiting == 0)
                )
            finally:
                if not background:
                    self._waiting -= 1
            self._busy = True
            self.sessions += 1
        try:
            if self._store is not None:
                yield self._store
            else:
                store = Store.open(self.path, lock_timeout=self.lock_timeout)
                try:
                    yield store
                finally:
                    store.close()
        finally:
            with self._turn:
                self._busy = False
                self._turn.notify_all()

    def _file_stamp(self) -> Stamp | None:
        """Return the size and modification time of the file and its WAL; None in memory."""
        if self._store is not None:
            return None
        parts: list[float] = []
        for suffix in ("", ".wal"):
            try:
                status = Path(self.path + suffix).stat()
            except FileNotFoundError:
                parts.extend((0.0, 0))
            else:
                parts.extend((status.st_mtime, status.st_size))
        return (parts[0], int(parts[1]), parts[2], int(parts[3]))


def store_version(store: Store) -> tuple[Any, ...]:
    """Return the fingerprint of what the dashboard reads from ``store``."""
    con = store.con.con if store.engine == "duckdb" else None
    if con is None:
        # Other backends have no cheap fingerprint: every request recomputes.
        return (UNVERSIONED, time.monotonic())
    tables = set(store.con.list_tables())
    parts: list[Any] = []
    queries = {
        "imports": "SELECT count(*), max(seq_end) FROM imports",
        "builds": "SELECT count(*), max(created_at) FROM builds",
        "runs": "SELECT count(*), max(created_at) FROM runs",
        "stage_timeline": "SELECT count(*) FROM stage_timeline",
    }
    for name, query in queries.items():
        parts.append(tuple(con.execute(query).fetchone()) if name in tables else None)
    return tuple(parts)
