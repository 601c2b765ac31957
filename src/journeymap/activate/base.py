"""The contract between the outbox, the delivery loop and the platform adapters.

An adapter is pure: it turns outbox rows into HTTP requests and HTTP responses into one
outcome per row. It opens no connection and reads no clock of its own (``now`` is passed
in), so that every adapter can be tested field by field against a local receiver, and the
delivery loop owns retries, timeouts and the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from journeymap.common.config import SyncDestination

Status = Literal["sent", "matched", "rejected", "retry", "skipped", "auth_error"]
"""What became of one row: accepted by the platform (``sent``; ``matched`` when the platform
says it matched a user), refused for good (``rejected``), to be tried again (``retry``),
never sent because a rule ruled it out (``skipped``, such as a conversion older than the
platform's window), or refused because the platform rejected the credentials
(``auth_error``). An ``auth_error`` says nothing about the row itself: the delivery loop
puts the row back in the queue and stops its destination for the run."""


@dataclass(frozen=True)
class SendRow:
    """One conversion to send to one destination: one row of the outbox.

    ``event_id`` is stable across retries and re-runs (the platform's dedup key: Meta
    ``event_id``, Google ``order_id`` / ``transactionId``, LinkedIn ``eventId``).
    ``occurred_at`` is timezone-aware UTC. ``value`` is in ``currency`` (None sends no value).
    ``keys`` contains the match keys: hashed ones named in
    :mod:`journeymap.common.identifiers` and raw click ids and cookies (``gclid``,
    ``gbraid``, ``wbraid``, ``fbc``, ``fbp``, ``li_fat_id``, ``msclkid``, ``lead_id``).
    ``clicked_at`` is the time of the click whose id is in ``keys``, when known.
    """

    event_id: str
    destination: str
    conversion_id: str
    kind: str
    action: str
    occurred_at: datetime
    value: float | None = None
    currency: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    clicked_at: datetime | None = None
    source_url: str | None = None


@dataclass(frozen=True)
class Request:
    """One HTTP request that carries the rows ``event_ids``, in the order of the body.

    The body is ``json`` encoded as JSON, unless ``content`` is set: then ``content`` is sent
    as it is (with the ``Content-Type`` of ``headers``) and ``json`` is None. Credentials travel
    only in ``headers`` or ``content``, never in ``url``, so that the URL can be logged;
    :func:`journeymap.activate.adapters.redact` masks them for printing.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any
    event_ids: tuple[str, ...]
    content: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """What one response (or one check before sending) says of one row.

    ``code`` is the platform's error code or the HTTP status; ``message`` the platform's
    words (never credentials or personal data); ``retry_after`` the delay the platform asked
    for, in seconds.
    """

    event_id: str
    status: Status
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None


class Adapter(Protocol):
    """One ad platform's conversion API."""

    platform: str
    max_batch: int
    """Maximum rows per request, by the platform's documented limit."""
    window: timedelta
    """Oldest conversion the platform accepts, by its documentation."""

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        """Return a ``skipped`` or ``rejected`` outcome when ``row`` cannot be sent, else None."""
        ...

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        """Return ``row`` as it is sent now, such as without a click id too old to match on.

        Called after :meth:`check` passed, before :meth:`requests`.
        """
        ...

    def requests(
        self,
        rows: Sequence[SendRow],
        destination: SyncDestination,
        credentials: Mapping[str, str],
    ) -> list[Request]:
        """Return the requests that send ``rows``, each within the platform's batch limit."""
        ...

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        """Return one outcome per row of ``request`` from the platform's response."""
        ...
