"""The collector's HTTP routes: the Segment tracking API, health, readiness and metrics.

``create_app`` builds one FastAPI app. A request gets its 200 response only after its messages are
committed to the journal (see :mod:`journeymap.collect.journal`); a background task drains the
journal into the store (and the Parquet dataset when configured) every few seconds.

Status codes: 401 for a missing or unknown write key, 400 for a body that is not JSON or a
message that lacks what its type needs (the reason names the message and the field), 413 for a
message or batch above the limits, 503 when the journal cannot be written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import ClientDisconnect

from journeymap import __version__
from journeymap.collect import drain, keys
from journeymap.collect.journal import GroupCommitter, default_journal_path
from journeymap.collect.messages import TYPES, Accepted, RejectedError, accept, now
from journeymap.collect.openapi import RESPONSES, batch_body, message_body
from journeymap.collect.tag import tag_router
from journeymap.common.config import Config

log = logging.getLogger("journeymap.collect")


@dataclass
class Metrics:
    """The Prometheus metrics of one app, in a registry of its own."""

    registry: CollectorRegistry
    events: Counter
    stored: Counter
    duplicates: Counter
    rejected: Counter
    commit_seconds: Histogram
    drained: Counter
    backlog: Gauge

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            events=Counter(
                "journeymap_events_received",
                "Messages accepted, retries included",
                ["source", "type"],
                registry=registry,
            ),
            stored=Counter(
                "journeymap_events_stored",
                "Messages committed as new events",
                ["source"],
                registry=registry,
            ),
            duplicates=Counter(
                "journeymap_events_duplicate",
                "Messages acknowledged without storing: a retry of a stored messageId",
                ["source"],
                registry=registry,
            ),
            rejected=Counter(
                "journeymap_requests_rejected", "Requests refused", ["status"], registry=registry
            ),
            commit_seconds=Histogram(
                "journeymap_request_commit_seconds",
                "Time from receiving a request to its commit",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                registry=registry,
            ),
            backlog=Gauge(
                "journeymap_journal_backlog",
                "Journaled events that a sink has not received yet",
                ["sink"],
                registry=registry,
            ),
            drained=Counter(
                "journeymap_events_drained",
                "Events moved from the journal",
                ["sink"],
                registry=registry,
            ),
        )


class Collector:
    """The state behind the routes: settings, keys, the journal writer and the metrics."""

    def __init__(
        self, config: Config, *, journal_path: Path, store_path: str | None, drain_every: float
    ) -> None:
        self.config = config
        self.settings = config.collector
        self.journal_path = journal_path
        self.store_path = store_path
        self.drain_every = drain_every
        self.keys = keys.write_keys(self.settings, journal_path)
        self.message_limit = int(self.settings.message_limit_kb * 1024)
        self.batch_limit = int(self.settings.batch_limit_kb * 1024)
        self.metrics = Metrics.create()
        self.committer: GroupCommitter | None = None
        self.supervisor: DrainSupervisor | None = None
        self.sinks = drain.Sinks(
            journal=str(journal_path),
            store=store_path,
            parquet_dir=self.settings.parquet_dir,
            retention_days=self.settings.raw_retention_days,
            phone_region=self.settings.phone_region,
        )

    def start(self) -> None:
        self.committer = GroupCommitter(self.journal_path)

    def stop(self) -> None:
        if self.committer is not None:
            self.committer.close()
            self.committer = None

    def drain_once(self) -> None:
        """Move journaled events to every sink; a busy store is retried on the next round."""
        for sink, moved in drain.drain_all(self.sinks).items():
            self.metrics.drained.labels(sink).inc(moved)

    async def ingest(self, request: Request, implied_type: str | None) -> Response:
        """Authenticate, read, validate and commit one request, and respond once it is on disk."""
        started = time.perf_counter()
        received_at = now()
        try:
            header_key = keys.basic_auth_key(request.headers.get("authorization"))
            if header_key is not None and keys.source_of(self.keys, header_key) is None:
                raise RejectedError(401, "unknown write key")
            limit = self.batch_limit if implied_type is None else self.message_limit
            body = await read_body(request, limit)
            document = parse_json(body)
            source = keys.source_of(self.keys, header_key or _text(document.get("writeKey")))
            if source is None:
                raise RejectedError(
                    401,
                    "missing or unknown write key: send it as the HTTP Basic user name "
                    "or as 'writeKey' in the body",
                )
            cookie_id = request.cookies.get(self.settings.cookie_name) or None
            rows = rows_of(
                document,
                implied_type=implied_type,
                source=source,
                received_at=received_at,
                cookie_id=cookie_id,
                message_limit=self.message_limit,
            )
        except RejectedError as rejected:
            self.metrics.rejected.labels(str(rejected.status)).inc()
            return JSONResponse(
                {"success": False, "code": rejected.status, "message": rejected.reason},
                status_code=rejected.status,
            )

        if self.committer is None or not self.committer.alive:
            return JSONResponse({"success": False, "message": "journal unavailable"}, 503)
        try:
            result = await asyncio.wrap_future(self.committer.submit(rows))
        except Exception:
            log.exception("could not commit a request to the journal")
            self.metrics.rejected.labels("503").inc()
            return JSONResponse(
                {"success": False, "message": "the journal could not be written; retry"}, 503
            )
        for kind, count in collections.Counter(row.type for row in rows).items():
            self.metrics.events.labels(source, kind).inc(count)
        self.metrics.stored.labels(source).inc(result.stored)
        if result.duplicates:
            self.metrics.duplicates.labels(source).inc(result.duplicates)
        self.metrics.commit_seconds.observe(time.perf_counter() - started)

        response = JSONResponse(
            {"success": True, "stored": result.stored, "duplicates": result.duplicates}
        )
        self._set_cookie(
            request, response, _first_anonymous_id(document, implied_type) or cookie_id
        )
        return response

    def _set_cookie(self, request: Request, response: Response, anonymous_id: str | None) -> None:
        """Keep the browser's anonymous id in a first-party cookie set by the server."""
        if anonymous_id is None or "origin" not in request.headers:
            return
        secure = (
            request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "").lower() == "https"
        )
        response.set_cookie(
            self.settings.cookie_name,
            anonymous_id,
            max_age=self.settings.cookie_days * 86_400,
            path="/",
            domain=self.settings.cookie_domain,
            samesite="lax",
            secure=secure,
        )


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, decompressing gzip, and refuse it above ``limit`` bytes.

    Raises:
        RejectedError: 413 above the limit (before or after decompression), 400 for a gzip body
            that does not decompress or an encoding other than gzip and identity.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RejectedError(413, f"the body is {declared} bytes, above the limit of {limit}")
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RejectedError(413, f"the body is above the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise RejectedError(400, "the client disconnected before the body was complete") from None
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise RejectedError(400, f"content encoding {encoding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise RejectedError(400, "the gzip body does not decompress") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise RejectedError(413, f"the decompressed body is above the limit of {limit} bytes")
    return data


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body (sent as application/json or, from browsers, text/plain).

    ``NaN``, ``Infinity`` and numbers beyond a double's range are invalid, as the JSON
    standard requires.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RejectedError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RejectedError(400, "the body must be a JSON object")
    return document


def rows_of(
    document: dict[str, Any],
    *,
    implied_type: str | None,
    source: str,
    received_at: datetime,
    cookie_id: str | None,
    message_limit: int,
) -> list[Accepted]:
    """Return the journal rows of a single call or of a batch envelope."""
    if implied_type is not None:
        return accept(
            [document],
            source=source,
            received_at=received_at,
            implied_type=implied_type,
            cookie_id=cookie_id,
            message_limit=message_limit,
        )
    batch = document.get("batch")
    if not isinstance(batch, list) or not batch:
        raise RejectedError(400, "field 'batch' must be a non-empty list of messages")
    context = document.get("context")
    return accept(
        batch,
        source=source,
        received_at=received_at,
        batch_sent_at=document.get("sentAt"),
        batch_context=context if isinstance(context, dict) else None,
        cookie_id=cookie_id,
        message_limit=message_limit,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_anonymous_id(document: dict[str, Any], implied_type: str | None) -> str | None:
    """Return the ``anonymousId`` of a request's first message, if it is a string."""
    first = document if implied_type is not None else document["batch"][0]
    return _text(first.get("anonymousId"))


def create_app(
    config: Config | None = None,
    *,
    journal_path: str | Path | None = None,
    store_path: str | None = "",
    drain_every: float | None = None,
    drain_process: bool = False,
) -> FastAPI:
    """Build the collector app.

    Args:
        config: the configuration; the defaults when None.
        journal_path: the SQLite journal; default ``collector.journal`` or the store's path
            plus ``.journal``.
        store_path: the DuckDB store to drain into; ``""`` means the configured store and
            None means no store (only the journal and the Parquet dataset).
        drain_every: seconds between drains; default ``collector.drain_seconds``.
        drain_process: drain in a process of its own rather than in a thread of the server,
            so that the drain's work does not slow the responses (``journeymap serve`` does).
    """
    config = config or Config()
    if store_path == "":
        store_path = None if config.store == ":memory:" else config.store
    path = Path(journal_path or config.collector.journal or default_journal_path(config.store))
    collector = Collector(
        config,
        journal_path=path,
        store_path=store_path,
        drain_every=drain_every or config.collector.drain_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        collector.start()
        if drain_process:
            collector.supervisor = DrainSupervisor(collector)
            collector.supervisor.start()
            task = asyncio.create_task(_supervise(collector.supervisor, collector.drain_every))
        else:
            task = asyncio.create_task(_drain_loop(collector))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            collector.stop()
            if collector.supervisor is not None:
                await asyncio.to_thread(collector.supervisor.stop)
            # One last drain here as well: a drain process stopped while it was starting up
            # has not drained, and the journal's own marks make a second drain a no-op.
            await asyncio.to_thread(_drain_quietly, collector)

    app = FastAPI(
        title="journeymap collector",
        version=__version__,
        description="Segment-compatible tracking API, health and metrics.",
        lifespan=lifespan,
    )
    app.state.collector = collector
    if config.collector.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.collector.allowed_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "Content-Encoding"],
        )
    _add_tracking_routes(app, collector)
    app.include_router(tag_router())
    _add_service_routes(app, collector)
    return app


def _add_tracking_routes(app: FastAPI, collector: Collector) -> None:
    for kind in TYPES:
        app.add_api_route(
            f"/v1/{kind}",
            _single_handler(collector, kind),
            methods=["POST"],
            name=kind,
            summary=f"Record one {kind} call",
            tags=["tracking"],
            responses=RESPONSES,
            openapi_extra={"requestBody": message_body(kind)},
        )
    app.add_api_route(
        "/v1/batch",
        _single_handler(collector, None),
        methods=["POST"],
        name="batch",
        summary="Record a batch of calls of any type",
        tags=["tracking"],
        responses=RESPONSES,
        openapi_extra={"requestBody": batch_body()},
    )


def _single_handler(collector: Collector, kind: str | None) -> Any:
    async def handler(request: Request) -> Response:
        return await collector.ingest(request, kind)

    handler.__name__ = f"record_{kind or 'batch'}"
    return handler


def _add_service_routes(app: FastAPI, collector: Collector) -> None:
    @app.get("/health", tags=["service"], summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["service"],
        summary="Readiness: the journal writer and the drain run",
        responses={503: {"description": "The journal writer or the drain is not running"}},
    )
    async def ready() -> JSONResponse:
        committer = collector.committer
        if committer is None or not committer.alive:
            return JSONResponse({"status": "not ready"}, status_code=503)
        supervisor = collector.supervisor
        if supervisor is not None and not supervisor.alive:
            return JSONResponse({"status": "drain not running"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def metrics() -> Response:
        waiting = await asyncio.to_thread(
            drain.backlog, collector.journal_path, collector.sinks.readers
        )
        for reader, count in waiting.items():
            collector.metrics.backlog.labels(reader).set(count)
        return Response(generate_latest(collector.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class DrainSupervisor:
    """The server's drain process: started with the server, restarted if it dies.

    It is stopped with SIGTERM, on which it drains once more and exits; a process that does
    not exit within a minute is killed.
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.context = multiprocessing.get_context("spawn")
        self.process: multiprocessing.process.BaseProcess | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process = self.context.Process(
            target=drain.drain_forever,
            args=(self.collector.sinks, self.collector.drain_every, os.getpid()),
            name="journeymap-drain",
            daemon=True,
        )
        self.process.start()

    @property
    def alive(self) -> bool:
        """Whether the drain process runs."""
        return self.process is not None and self.process.is_alive()

    def check(self) -> None:
        """Restart the drain process if it has died."""
        if self.process is None or self.alive:
            return
        log.error(
            "the drain process exited with code %s; starting a new one", self.process.exitcode
        )
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        self.process.join(timeout=60)
        if self.process.is_alive():
            log.error("the drain process did not stop within 60 s; killing it")
            self.process.kill()
            self.process.join()


async def _supervise(supervisor: DrainSupervisor, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        supervisor.check()


async def _drain_loop(collector: Collector) -> None:
    while True:
        await asyncio.sleep(collector.drain_every)
        await asyncio.to_thread(_drain_quietly, collector)


def _drain_quietly(collector: Collector) -> None:
    try:
        collector.drain_once()
    except Exception:
        # The events stay in the journal; the next round tries again.
        log.exception("draining the journal failed; the events stay in the journal")
