"""Cache warm-up: compute every page's default view in a background thread.

A view's first computation takes seconds on a large store (see docs/benchmarks.md), and the
cache is per store version, so without warm-up the first visitor after a start, an import, a
build or an attribution run waits for it. :class:`CacheWarmer` runs a list of tasks (one per
page and tab, built by :func:`journeymap.web.pages.warm_tasks`) when the server starts, then
checks the store's version every ``poll_seconds`` and runs them again when it changed.

The tasks go through the same cache as requests. So a request for a view that the warmer is
computing waits for that computation. A request for another view goes first, because
background work waits while a request waits for the store
(:class:`~journeymap.web.access.StoreAccess`).
Between two computations the warmer pauses ``pause_seconds`` with the store closed, so that
the collector's drain and other journeymap commands can open it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from journeymap.common.timeutil import utc_now
from journeymap.web.access import UNVERSIONED, StoreAccess

log = logging.getLogger("journeymap.web")

POLL_SECONDS = 2.0
"""Seconds between two checks of the store's version."""

PAUSE_SECONDS = 0.25
"""Seconds the store stays closed between two background computations; longer than the
0.1 s between the attempts of another journeymap process to open it."""

STOP_SECONDS = 30.0
"""Maximum wait for the running computation when the server stops, in seconds."""

Task = tuple[str, Callable[[], Any]]
"""A named unit of warm-up work, such as computing one page's view and figures."""


class CacheWarmer:
    """Run the warm-up tasks in a daemon thread at start and after each store version change.

    ``tasks`` returns the tasks to run. It is called for every round.
    """

    def __init__(
        self,
        access: StoreAccess,
        tasks: Callable[[], Sequence[Task]],
        *,
        poll_seconds: float | None = None,
        pause_seconds: float | None = None,
    ) -> None:
        self.access = access
        self.tasks = tasks
        self.poll_seconds = POLL_SECONDS if poll_seconds is None else poll_seconds
        self.pause_seconds = PAUSE_SECONDS if pause_seconds is None else pause_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warmed: tuple[Any, ...] | None = None
        self._state = "stopped"
        self._rounds = 0
        self._failures = 0
        self._last: dict[str, Any] = {}
        self.done = threading.Event()
        """Set when a round has finished and the store has not changed since."""

    def start(self) -> None:
        """Start the thread; the first round begins at once."""
        self._stop.clear()
        self._state = "starting"
        self._thread = threading.Thread(target=self._loop, name="journeymap-warm-up", daemon=True)
        self._thread.start()
        log.info("cache warm-up started")

    def stop(self) -> None:
        """Stop the thread after its current computation, waiting up to ``STOP_SECONDS``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
            if self._thread.is_alive():
                log.warning(
                    "cache warm-up still computing after %.0f s; leaving it to end", STOP_SECONDS
                )
        self._state = "stopped"
        log.info("cache warm-up stopped")

    def status(self) -> dict[str, Any]:
        """Return the state (``starting``, ``warming``, ``ready``, ``off`` or ``stopped``),
        the rounds finished, the tasks that failed, and the last round's tasks, seconds and
        end time."""
        return {
            "state": self._state,
            "rounds": self._rounds,
            "failures": self._failures,
            **self._last,
        }

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._check()
            except Exception:
                # The next poll tries again; a locked store, for example, frees up.
                log.exception("cache warm-up could not read the store's version")
            self._stop.wait(self.poll_seconds)

    def _check(self) -> None:
        """Run a round when the store exists and its version differs from the last warmed."""
        if not self.access.exists:
            self._state = "ready"
            self.done.set()
            return
        version = self.access.version()
        if version[:1] == (UNVERSIONED,):
            # Without a version every request recomputes, so there is nothing to keep warm.
            self._state = "off"
            self.done.set()
            return
        if version == self._warmed:
            return
        self.done.clear()
        self._state = "warming"
        self._round()
        if not self._stop.is_set():
            self._warmed = version
            self._state = "ready"
            self.done.set()

    def _round(self) -> None:
        """Run every task once, pausing with the store closed after each that opened it."""
        started = time.perf_counter()
        tasks = list(self.tasks())
        for name, task in tasks:
            if self._stop.is_set():
                return
            sessions = self.access.sessions
            try:
                task()
            except Exception:
                self._failures += 1
                log.exception("cache warm-up of %s failed", name)
            if self.access.sessions != sessions:
                self._stop.wait(self.pause_seconds)
        seconds = time.perf_counter() - started
        self._rounds += 1
        self._last = {
            "tasks": len(tasks),
            "seconds": round(seconds, 3),
            "finished_at": utc_now().isoformat(),
        }
        log.info("cache warm-up computed %s tasks in %.1f s", len(tasks), seconds)
