"""Short-lived store connections and a result cache keyed by the store's version.

DuckDB lets one process at a time open a store file, and the collector's drain process opens it
every few seconds, so the dashboard never keeps the store open: :meth:`StoreAccess.run` opens it,
runs one computation and closes it. Results are cached per (store version, view, filters).

The store version is a fingerprint of what the views read: the imports, the last journey build
and the last attribution run, and the row count of ``stage_timeline``. Reading it needs the
store open, so it is kept for as long as the file's size and modification time stay the same.
Collected events change the file without changing the version, because the views read journeys,
which only ``journeymap build`` rewrites.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from journeymap.store.store import MEMORY, Store

log = logging.getLogger("journeymap.web")

T = TypeVar("T")

CACHE_ENTRIES = 256
"""Results kept in the cache; the oldest used entry goes first."""


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
        self._lock = threading.RLock()
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._stamp: tuple[float, int, float, int] | None = None
        self._version: tuple[Any, ...] | None = None

    @property
    def exists(self) -> bool:
        """Whether there is a store to read: an open one, or a file at ``path``."""
        return self._store is not None or (self.path != MEMORY and Path(self.path).is_file())

    def run(self, compute: Callable[[Store], T]) -> T:
        """Open the store, run ``compute`` on it and close it again.

        Raises:
            StoreError: the store cannot be opened within ``lock_timeout`` seconds.
        """
        with self._lock:
            if self._store is not None:
                return compute(self._store)
            store = Store.open(self.path, lock_timeout=self.lock_timeout)
            try:
                return compute(store)
            finally:
                store.close()

    def version(self) -> tuple[Any, ...]:
        """Return the store's version; it changes when an import, build or run changes it."""
        with self._lock:
            stamp = self._file_stamp()
            if self._version is not None and stamp is not None and stamp == self._stamp:
                return self._version
            self._version = self.run(store_version)
            self._stamp = stamp
            return self._version

    def cached(self, key: Hashable, compute: Callable[[Store], T]) -> T:
        """Return the cached result of ``key`` for the current store version, computing it once.

        Errors are not cached, so a view whose data is missing recovers after an import.
        """
        with self._lock:
            full_key = (self.version(), key)
            if full_key in self._cache:
                self._cache.move_to_end(full_key)
                found: T = self._cache[full_key]
                return found
            started = time.perf_counter()
            result = self.run(compute)
            log.info("computed %s in %.0f ms", key, (time.perf_counter() - started) * 1000)
            self._cache[full_key] = result
            while len(self._cache) > self.entries:
                self._cache.popitem(last=False)
            return result

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Return the cached result of ``key`` for the current store version, without the store.

        For work derived from a view's result, such as a page's figures.
        """
        with self._lock:
            full_key = (self.version(), "memo", key)
            if full_key in self._cache:
                self._cache.move_to_end(full_key)
                found: T = self._cache[full_key]
                return found
        result = compute()
        with self._lock:
            self._cache[full_key] = result
            while len(self._cache) > self.entries:
                self._cache.popitem(last=False)
        return result

    def _file_stamp(self) -> tuple[float, int, float, int] | None:
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
        return (time.monotonic(),)
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
