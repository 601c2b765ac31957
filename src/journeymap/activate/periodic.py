"""The periodic conversion sync of ``journeymap serve``: one round every interval, in a thread.

Each round opens the store file, queues new conversions and sends what is due, then closes
the store, so that the collector's drain process can write between rounds. A round does not
wait for retries, because the next round sends them. An error of one round is logged and
the next round tries again. The same error is logged once until another one occurs.
"""

from __future__ import annotations

import logging
import threading

from journeymap.activate.deliver import sync
from journeymap.common.config import Config
from journeymap.common.errors import JourneymapError
from journeymap.store.store import Store

log = logging.getLogger("journeymap.activate")

LOCK_TIMEOUT_SECONDS = 60.0
"""How long a round waits for the store while another process has it open."""


class PeriodicSync:
    """Sync the store file ``store_path`` every ``config.sync.interval_seconds`` seconds."""

    def __init__(self, store_path: str, config: Config) -> None:
        self.store_path = store_path
        self.config = config
        self.every = config.sync.interval_seconds
        self.rounds = 0
        self._stop = threading.Event()
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="journeymap-sync", daemon=True)

    def start(self) -> None:
        """Start the thread; the first round runs after one interval."""
        log.info(
            "conversion sync of %d destinations every %g s",
            len(self.config.sync.destinations),
            self.every,
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after its current round and wait up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        log.info("conversion sync stopped after %d rounds", self.rounds)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()

    def run_once(self) -> None:
        """Run one round, logging its counts or its error."""
        self.rounds += 1
        try:
            store = Store.open(self.store_path, lock_timeout=LOCK_TIMEOUT_SECONDS)
            try:
                report = sync(store, self.config, wait=False)
            finally:
                store.close()
        except JourneymapError as exc:
            self._log_error(str(exc))
            return
        except Exception as exc:
            # Any other failure (a broken connection, a store error of DuckDB) must not end
            # the thread: the rows stay in the outbox and the next round tries again.
            self._log_error(f"{type(exc).__name__}: {exc}", traceback=True)
            return
        self._last_error = None
        for name, counts in report.counts.items():
            log.info("conversion sync round %d, %s: %s", self.rounds, name, dict(counts))

    def _log_error(self, message: str, *, traceback: bool = False) -> None:
        if message == self._last_error:
            log.debug("conversion sync round %d failed again: %s", self.rounds, message)
            return
        self._last_error = message
        log.error(
            "conversion sync round %d failed; the next round tries again: %s",
            self.rounds,
            message,
            exc_info=traceback,
        )


def start_periodic_sync(config: Config) -> PeriodicSync | None:
    """Start the periodic sync of the configured store, or return None without destinations."""
    if not config.sync.destinations or config.store == ":memory:":
        return None
    periodic = PeriodicSync(config.store, config)
    periodic.start()
    return periodic
