"""A local receiver that imitates the four ad platforms' conversion APIs, for tests.

It serves, on one ``127.0.0.1`` port, the paths the adapters send to when a destination's
``endpoint`` is :attr:`Receiver.url`:

- ``POST /{version}/{pixel}/events`` (Meta),
- ``POST /{version}/customers/{id}:uploadClickConversions`` (Google Ads),
- ``POST /v1/events:ingest`` (Google Data Manager),
- ``POST /rest/conversionEvents`` (LinkedIn),
- ``POST /Api/Advertiser/CampaignManagement/v13/CampaignManagementService.svc`` (Microsoft).

Each request is checked field by field (path, headers, credentials, types, units, hash
shapes, time formats, batch limits; see :mod:`tests.activate.formats`) and answered in the
platform's own shape: success, a per-row failure, or a request-level error. A request with
format problems gets the platform's "invalid request" answer.

API (the ``receiver`` fixture of ``tests/activate/conftest.py`` yields a running one):

- ``receiver.url``: the base URL, to set as ``SyncDestination.endpoint``.
- ``receiver.credentials``: the credentials it accepts (pass them to ``Adapter.requests``);
  other values get the platform's authentication error.
- ``receiver.requests``: every :class:`Received` request in arrival order, with its
  ``platform``, ``path``, ``headers`` (lower-case names), ``body`` (parsed JSON, or the XML
  text), ``problems`` (empty when the request was valid) and the ``status`` answered.
- ``receiver.fail(platform, Fault(...), times=1)``: answer the next ``times`` requests of
  ``platform`` (or ``"*"``: any platform) with a fault: ``Fault(status=500)``,
  ``Fault(status=429, retry_after="7")`` (seconds or an HTTP date), an error code of the
  platform (``Fault(status=400, code="17")`` is a Meta throttling error), ``Fault(stall=30)``
  (process the request, then wait 30 s before answering, so that the client times out or
  is killed while the events are already stored), or ``Fault(rows={1: "CLICK_NOT_FOUND"})``
  (fail rows 1 of the next batch in the platform's partial-failure shape; for LinkedIn a
  number is the element's HTTP status).
- ``receiver.events(platform)``: the distinct events stored after deduplication, and
  ``receiver.received(platform)``: every event accepted, duplicates included. The dedup
  keys: Meta event_name + event_id; Google conversion action + order id; Data Manager
  product destination + transaction id; LinkedIn conversion rule + eventId; Microsoft
  goal name + msclkid + conversion time.
- ``receiver.now``: the time the window checks use; None (the default) is the real time.
- ``receiver.reset()``: forget requests, events and queued faults.
- ``send(adapter, request)``: send one adapter request with httpx and return the adapter's
  outcomes of the answer.

The receiver is thread-safe: it runs on its own event loop thread while tests read it.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from journeymap.activate.base import Adapter, Outcome
from journeymap.activate.base import Request as AdapterRequest
from tests.activate import formats
from tests.collect.server import running

PLATFORMS = ("meta", "google", "google_data_manager", "linkedin", "microsoft")
LIMITS = {
    "meta": 1000,
    "google": 2000,
    "google_data_manager": 2000,
    "linkedin": 5000,
    "microsoft": 1000,
}
CREDENTIALS = {
    "access_token": "test-access-token",
    "developer_token": "test-developer-token",
    "customer_id": "9876543",
}
"""The credentials a receiver accepts unless a test changes ``receiver.credentials``."""

_ROUTES = (
    ("meta", re.compile(r"^/(?P<version>[^/]+)/(?P<pixel>[^/]+)/events$")),
    (
        "google",
        re.compile(r"^/(?P<version>v\d+)/customers/(?P<customer>[^/:]+):uploadClickConversions$"),
    ),
    ("google_data_manager", re.compile(r"^/v1/events:ingest$")),
    ("linkedin", re.compile(r"^/rest/conversionEvents$")),
    (
        "microsoft",
        re.compile(r"^/Api/Advertiser/CampaignManagement/v13/CampaignManagementService\.svc$"),
    ),
)
MICROSOFT_ERRORS = {"0": "InternalError", "105": "InvalidCredentials", "117": "CallRateExceeded"}
GOOGLE_FAILURE = "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure"


@dataclass(frozen=True)
class Fault:
    """How to fail one request (see the module docstring)."""

    status: int | None = None
    retry_after: str | None = None
    code: str | None = None
    message: str | None = None
    stall: float | None = None
    rows: dict[int, str | int] = field(default_factory=dict)


@dataclass
class Received:
    """One request as the receiver read it, and the status it returned."""

    platform: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any
    problems: list[str] = field(default_factory=list)
    status: int = 0


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, document: Any, **headers: str) -> _Answer:
    return _Answer(status, json.dumps(document).encode(), headers=dict(headers))


class Receiver:
    """The imitation of the platforms (see the module docstring)."""

    def __init__(self) -> None:
        self.url = ""
        self.now: datetime | None = None
        self.credentials = dict(CREDENTIALS)
        self.requests: list[Received] = []
        self._faults: dict[str, list[Fault]] = {}
        self._events: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self._received: dict[str, int] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        """Serve on a free loopback port until the block ends; stalled requests are let go."""
        self._released.clear()
        with running(self.app) as url:
            self.url = url
            try:
                yield self
            finally:
                self._released.set()

    def fail(self, platform: str, fault: Fault, *, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``platform`` (``"*"``: any) with ``fault``."""
        if platform != "*" and platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; use one of {PLATFORMS} or '*'")
        with self._lock:
            self._faults.setdefault(platform, []).extend([fault] * times)

    def events(self, platform: str) -> list[dict[str, Any]]:
        """Return the distinct events of ``platform`` stored so far, in arrival order."""
        with self._lock:
            return list(self._events.get(platform, {}).values())

    def received(self, platform: str) -> int:
        """Return how many events of ``platform`` were accepted, duplicates included."""
        with self._lock:
            return self._received.get(platform, 0)

    def problems(self) -> list[str]:
        """Return the format problems of every request received so far."""
        with self._lock:
            return [problem for request in self.requests for problem in request.problems]

    def reset(self) -> None:
        """Forget every request, event and queued fault."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._events.clear()
            self._received.clear()

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        path = request.url.path
        platform, match = next(
            ((name, found) for name, pattern in _ROUTES if (found := pattern.match(path))),
            (None, None),
        )
        if platform is None or match is None or request.method != "POST":
            return Response(b'{"error": "not found"}', 404, media_type="application/json")

        headers = {name.lower(): value for name, value in request.headers.items()}
        record = Received(
            platform, request.method, path, dict(request.query_params), headers, raw, None
        )
        with self._lock:
            fault = self._next_fault(platform)
            if fault is not None and fault.status is not None:
                answer = _status_fault(platform, fault)
                record.body = _parse_body(platform, raw)
            else:
                answer = self._process(platform, match.groupdict(), record, fault)
            record.status = answer.status
            self.requests.append(record)

        if fault is not None and fault.stall:
            await self._stall(fault.stall)
        return Response(
            answer.body, answer.status, headers=answer.headers, media_type=answer.content_type
        )

    def _next_fault(self, platform: str) -> Fault | None:
        for key in (platform, "*"):
            queue = self._faults.get(key)
            if queue:
                return queue.pop(0)
        return None

    async def _stall(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._released.is_set():
            await asyncio.sleep(0.02)

    def _clock(self) -> datetime:
        return self.now or datetime.now(tz=UTC)

    def _token_ok(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.credentials['access_token']}"

    def _store(self, platform: str, events: formats.Events, skip: set[int]) -> set[int]:
        """Store the events not in ``skip``; return the indexes that were duplicates."""
        stored = self._events.setdefault(platform, {})
        duplicates = set()
        for index, (key, event) in enumerate(events):
            if index in skip:
                continue
            self._received[platform] = self._received.get(platform, 0) + 1
            if key in stored:
                duplicates.add(index)
            else:
                stored[key] = event
        return duplicates

    def _process(
        self, platform: str, params: dict[str, str], record: Received, fault: Fault | None
    ) -> _Answer:
        rows = fault.rows if fault is not None else {}
        handler = {
            "meta": self._meta,
            "google": self._google,
            "google_data_manager": self._data_manager,
            "linkedin": self._linkedin,
            "microsoft": self._microsoft,
        }[platform]
        return handler(params, record, rows)

    def _meta(
        self, params: dict[str, str], record: Received, rows: dict[int, str | int]
    ) -> _Answer:
        headers, query = record.headers, record.query
        if "access_token" in query:
            record.problems.append("url: the access token is in the query string")
        if not (
            self._token_ok(headers) or query.get("access_token") == self.credentials["access_token"]
        ):
            return _meta_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        if not re.fullmatch(r"v\d+\.\d+", params["version"]):
            record.problems.append(f"path: version {params['version']!r} is not vNN.N")
        if not params["pixel"].isdigit():
            record.problems.append(f"path: pixel id {params['pixel']!r} is not digits")
        record.body = _parse_json(record, headers)
        problems, events = formats.check_meta(record.body, self._clock(), LIMITS["meta"])
        record.problems += problems
        if record.problems:
            return _meta_error(400, 100, "Invalid parameter", "; ".join(record.problems))
        if rows:
            # Meta refuses a request as a whole when one of its events is invalid.
            index, code = next(iter(sorted(rows.items())))
            return _meta_error(400, 100, "Invalid parameter", f"data[{index}]: {code}")
        self._store("meta", events, set())
        return _json(200, {"events_received": len(events), "messages": [], "fbtrace_id": "AbCdEf"})

    def _google(
        self, params: dict[str, str], record: Received, rows: dict[int, str | int]
    ) -> _Answer:
        headers = record.headers
        if not self._token_ok(headers):
            return _google_error(
                401,
                "UNAUTHENTICATED",
                "authenticationError",
                "NOT_AUTHORIZED",
                "invalid OAuth token",
            )
        if headers.get("developer-token") != self.credentials["developer_token"]:
            return _google_error(
                401,
                "UNAUTHENTICATED",
                "authenticationError",
                "DEVELOPER_TOKEN_INVALID",
                "invalid developer token",
            )
        customer = params["customer"]
        if not re.fullmatch(r"\d{10}", customer):
            record.problems.append(f"path: customer id {customer!r} is not 10 digits")
        login = headers.get("login-customer-id")
        if login is not None and not re.fullmatch(r"\d{10}", login):
            record.problems.append(f"headers: login-customer-id {login!r} is not 10 digits")
        record.body = _parse_json(record, headers)
        problems, events = formats.check_google_click(
            record.body, customer, self._clock(), LIMITS["google"]
        )
        record.problems += problems
        if record.problems:
            return _google_error(
                400, "INVALID_ARGUMENT", "requestError", "INVALID_INPUT", "; ".join(record.problems)
            )

        injected = {index for index in rows if index < len(events)}
        errors: dict[int, str] = {index: str(rows[index]) for index in injected}
        seen: set[tuple[Any, ...]] = set()
        stored = self._events.get("google", {})
        for index, (key, _) in enumerate(events):
            if index in errors:
                continue
            if key in seen:
                errors[index] = "DUPLICATE_ORDER_ID"
            elif key in stored:
                errors[index] = "ORDER_ID_ALREADY_IN_USE"
            seen.add(key)
        self._store("google", events, injected)

        results = []
        for index, (_, conversion) in enumerate(events):
            if index in errors:
                results.append({})
            else:
                results.append(
                    {
                        key: conversion[key]
                        for key in (
                            "gclid",
                            "gbraid",
                            "wbraid",
                            "conversionAction",
                            "conversionDateTime",
                        )
                        if key in conversion
                    }
                )
        document: dict[str, Any] = {"results": results, "jobId": "4242"}
        if errors:
            document["partialFailureError"] = {
                "code": 3,
                "message": f"{len(errors)} conversions failed",
                "details": [
                    {
                        "@type": GOOGLE_FAILURE,
                        "errors": [
                            {
                                "errorCode": {"conversionUploadError": code},
                                "message": f"conversion {index} failed: {code}",
                                "location": {
                                    "fieldPathElements": [
                                        {"fieldName": "conversions", "index": index},
                                    ]
                                },
                            }
                            for index, code in sorted(errors.items())
                        ],
                        "requestId": "req-1",
                    }
                ],
            }
        return _json(200, document)

    def _data_manager(
        self, params: dict[str, str], record: Received, rows: dict[int, str | int]
    ) -> _Answer:
        headers = record.headers
        if not self._token_ok(headers):
            return _json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "invalid credentials",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        record.body = _parse_json(record, headers)
        problems, events = formats.check_data_manager(
            record.body, self._clock(), LIMITS["google_data_manager"]
        )
        record.problems += problems
        if record.problems:
            return _json(
                400,
                {
                    "error": {
                        "code": 400,
                        "message": "; ".join(record.problems),
                        "status": "INVALID_ARGUMENT",
                    }
                },
            )
        if rows:
            violations = [
                {"field": f"events[{index}]", "description": str(code)}
                for index, code in sorted(rows.items())
            ]
            return _json(
                400,
                {
                    "error": {
                        "code": 400,
                        "message": "Request contains an invalid argument.",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.BadRequest",
                                "fieldViolations": violations,
                            }
                        ],
                    }
                },
            )
        self._store("google_data_manager", events, set())
        return _json(200, {"requestId": str(uuid.uuid4())})

    def _linkedin(
        self, params: dict[str, str], record: Received, rows: dict[int, str | int]
    ) -> _Answer:
        headers = record.headers
        if not self._token_ok(headers):
            return _json(
                401,
                {
                    "status": 401,
                    "serviceErrorCode": 65600,
                    "code": "INVALID_ACCESS_TOKEN",
                    "message": "Invalid access token",
                },
            )
        if not re.fullmatch(r"\d{6}", headers.get("linkedin-version", "")):
            record.problems.append(
                f"headers: LinkedIn-Version {headers.get('linkedin-version')!r} is not YYYYMM"
            )
        if headers.get("x-restli-protocol-version") != "2.0.0":
            record.problems.append("headers: X-Restli-Protocol-Version is not 2.0.0")
        if headers.get("x-restli-method") != "BATCH_CREATE":
            record.problems.append("headers: X-RestLi-Method is not BATCH_CREATE")
        record.body = _parse_json(record, headers)
        problems, events = formats.check_linkedin(record.body, self._clock(), LIMITS["linkedin"])
        record.problems += problems
        if record.problems:
            return _json(
                400,
                {"status": 400, "code": "INVALID_REQUEST", "message": "; ".join(record.problems)},
            )

        failed = {index for index in rows if index < len(events)}
        self._store("linkedin", events, failed)
        elements = []
        for index in range(len(events)):
            if index not in failed:
                elements.append({"status": 201})
                continue
            code = rows[index]
            status = code if isinstance(code, int) else 400
            elements.append(
                {"status": status, "error": {"status": status, "message": f"event {index}: {code}"}}
            )
        return _json(200, {"elements": elements})

    def _microsoft(
        self, params: dict[str, str], record: Received, rows: dict[int, str | int]
    ) -> _Answer:
        headers = record.headers
        if not headers.get("content-type", "").startswith("text/xml"):
            record.problems.append(
                f"headers: Content-Type {headers.get('content-type')!r} is not text/xml"
            )
        if headers.get("soapaction", "").strip('"') != "ApplyOfflineConversions":
            record.problems.append(f"headers: SOAPAction {headers.get('soapaction')!r}")
        record.body = record.raw.decode("utf-8", errors="replace")
        try:
            root = ET.fromstring(record.raw)
        except ET.ParseError as exc:
            record.problems.append(f"body: not well-formed XML: {exc}")
            return _soap_fault("0", "InternalError", "; ".join(record.problems))
        problems, soap_headers, events = formats.check_microsoft(
            root, self._clock(), LIMITS["microsoft"]
        )
        if (
            soap_headers.get("AuthenticationToken") != self.credentials["access_token"]
            or soap_headers.get("DeveloperToken") != self.credentials["developer_token"]
            or soap_headers.get("CustomerId") != self.credentials["customer_id"]
        ):
            return _soap_fault("105", "InvalidCredentials", "Authentication failed.")
        record.problems += problems
        if record.problems:
            return _soap_fault("1001", "InvalidRequest", "; ".join(record.problems))

        failed = {index for index in rows if index < len(events)}
        self._store("microsoft", events, failed)
        errors = "".join(
            "<BatchError>"
            f"<Code>3000</Code><ErrorCode>{escape(str(rows[index]))}</ErrorCode>"
            f"<Index>{index}</Index>"
            f"<Message>conversion {index}: {escape(str(rows[index]))}</Message>"
            "</BatchError>"
            for index in sorted(failed)
        )
        return _soap(
            '<ApplyOfflineConversionsResponse xmlns="https://bingads.microsoft.com/CampaignManagement/v13">'
            f"<PartialErrors>{errors}</PartialErrors></ApplyOfflineConversionsResponse>",
            200,
        )


def _parse_json(record: Received, headers: dict[str, str]) -> Any:
    if not headers.get("content-type", "").startswith("application/json"):
        record.problems.append(f"headers: Content-Type {headers.get('content-type')!r} is not JSON")
    try:
        return json.loads(record.raw)
    except ValueError:
        record.problems.append("body: not JSON")
        return None


def _parse_body(platform: str, raw: bytes) -> Any:
    if platform == "microsoft":
        return raw.decode("utf-8", errors="replace")
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _meta_error(status: int, code: int, message: str, detail: str | None = None) -> _Answer:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if detail:
        error["error_user_msg"] = detail
    return _json(status, {"error": error})


def _google_error(status: int, name: str, kind: str, code: str, message: str) -> _Answer:
    failure = {
        "@type": GOOGLE_FAILURE,
        "errors": [{"errorCode": {kind: code}, "message": message}],
        "requestId": "req-1",
    }
    return _json(
        status,
        {"error": {"code": status, "message": message, "status": name, "details": [failure]}},
    )


def _soap(inner: str, status: int) -> _Answer:
    text = (
        f'<s:Envelope xmlns:s="{formats.SOAP_NS}">'
        '<s:Header><TrackingId xmlns="https://bingads.microsoft.com/CampaignManagement/v13">t-1</TrackingId></s:Header>'
        f"<s:Body>{inner}</s:Body></s:Envelope>"
    )
    return _Answer(status, text.encode(), content_type="text/xml; charset=utf-8")


def _soap_fault(code: str, error_code: str, message: str) -> _Answer:
    return _soap(
        "<s:Fault><faultcode>s:Server</faultcode>"
        "<faultstring>Invalid client data. Check the SOAP fault details.</faultstring>"
        '<detail><ApiFaultDetail xmlns="https://bingads.microsoft.com/CampaignManagement/v13"><OperationErrors><OperationError>'
        f"<Code>{escape(code)}</Code><ErrorCode>{escape(error_code)}</ErrorCode><Message>{escape(message)}</Message>"
        "</OperationError></OperationErrors></ApiFaultDetail></detail></s:Fault>",
        500,
    )


def _status_fault(platform: str, fault: Fault) -> _Answer:
    """Return the answer of an injected error status, in the platform's shape."""
    status = fault.status or 500
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    headers["Date"] = format_datetime(datetime.now(tz=UTC), usegmt=True)
    message = fault.message or ("rate limit reached" if status == 429 else "backend error")

    if platform == "meta":
        code = 4 if status == 429 else 2
        if fault.code:
            code = int(fault.code)
        answer = _meta_error(status, code, message)
    elif platform == "google":
        kind = "quotaError" if status == 429 else "internalError"
        name = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
        answer = _google_error(status, name, kind, fault.code or name, message)
    elif platform == "google_data_manager":
        name = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
        answer = _json(
            status, {"error": {"code": status, "message": message, "status": fault.code or name}}
        )
    elif platform == "linkedin":
        answer = _json(
            status, {"status": status, "code": fault.code or "SERVER_ERROR", "message": message}
        )
    elif status >= 500:
        code = fault.code or "0"
        answer = _soap_fault(code, MICROSOFT_ERRORS.get(code, "Error"), message)
    else:
        answer = _Answer(status, b"", content_type="text/plain")
    answer.headers.update(headers)
    return answer


def send(adapter: Adapter, request: AdapterRequest, *, timeout: float = 5.0) -> list[Outcome]:
    """Send ``request`` with httpx and return ``adapter``'s outcomes of the response."""
    response = _client().request(
        request.method,
        request.url,
        headers=dict(request.headers),
        json=request.json if request.content is None else None,
        content=request.content,
        timeout=timeout,
    )
    return adapter.outcomes(request, response.status_code, response.content, response.headers)


@functools.cache
def _client() -> httpx.Client:
    """Return one client for every test: building one costs about 0.1 s (its SSL context)."""
    client = httpx.Client()
    atexit.register(client.close)
    return client
