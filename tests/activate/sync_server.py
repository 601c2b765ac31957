"""A small local conversion endpoint for the delivery tests, with scripted faults.

It serves ``POST .../events`` with a JSON body ``{"data": [{"event_id", "event_name",
...}]}`` (the Meta Conversions API shape, which the fake adapter of ``sync_fakes`` also
uses) and keeps Meta's dedup state: one event per ``event_name`` and ``event_id``. A success
answers ``{"events_received": n, "results": [{"event_id", "status": "sent"}, ...]}``.

Faults are a script, one entry per request in order; when the script is empty, requests
succeed:

* ``("status", 500)``: answer 500 with a Graph-style error body, record nothing;
* ``("status", 429, "30")``: answer 429 with ``Retry-After: 30``;
* ``("reject", 400, "message")``: answer that status with ``{"error": {"message"}}``;
* ``("partial", {event_id: "retry" | "rejected"})``: record the other rows, answer the
  listed rows with that status;
* ``("stall", seconds)``: record the rows (the platform has them), then wait ``seconds``
  before answering, like a response lost on the way back.

Every request is kept in ``requests`` (path, headers, body) for the tests to read.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Endpoint:
    """The endpoint's state: the fault script, requests seen and events deduplicated."""

    def __init__(self) -> None:
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.received: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.url = ""

    @property
    def unique(self) -> set[tuple[str, str]]:
        """Return the deduplicated events: ``(event_name, event_id)``."""
        return set(self.received)

    def record(self, events: list[dict[str, Any]], skip: set[str] = frozenset()) -> None:
        with self.lock:
            for event in events:
                if event["event_id"] not in skip:
                    self.received[(str(event.get("event_name")), str(event["event_id"]))] += 1


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def do_POST(self) -> None:
        endpoint = self.server.endpoint
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        events = list(body.get("data", []))
        with endpoint.lock:
            endpoint.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body}
            )
            fault = endpoint.script.pop(0) if endpoint.script else ("ok",)

        kind = fault[0]
        if kind == "status":
            headers = {"Retry-After": fault[2]} if len(fault) > 2 else {}
            error = {"error": {"message": "Service temporarily unavailable", "code": 2}}
            self._answer(fault[1], error, headers)
            return
        if kind == "reject":
            self._answer(fault[1], {"error": {"message": fault[2], "code": 100}})
            return
        if kind == "partial":
            failing: dict[str, str] = fault[1]
            endpoint.record(events, skip=set(failing))
            results = [
                {
                    "event_id": event["event_id"],
                    "status": failing.get(event["event_id"], "sent"),
                    "code": "ROW_ERROR" if event["event_id"] in failing else None,
                    "message": "row failed" if event["event_id"] in failing else None,
                }
                for event in events
            ]
            self._answer(200, {"events_received": len(events), "results": results})
            return

        endpoint.record(events)
        if kind == "stall":
            time.sleep(fault[1])
        results = [{"event_id": event["event_id"], "status": "sent"} for event in events]
        self._answer(200, {"events_received": len(events), "results": results})

    def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout, or a killed process)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: Endpoint


@contextmanager
def running_endpoint() -> Iterator[Endpoint]:
    """Run an :class:`Endpoint` on 127.0.0.1 and a free port; ``url`` is its base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.endpoint = Endpoint()
    server.endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
