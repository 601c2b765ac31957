"""Meta Conversions API: server events sent to a pixel's ``events`` edge of the Graph API.

Request: ``POST {endpoint}/{version}/{pixel id}/events`` with the JSON body
``{"data": [event, ...], "test_event_code"?}``, at most :data:`MAX_EVENTS` events.
``endpoint`` defaults to ``https://graph.facebook.com`` and ``version`` to
:data:`DEFAULT_VERSION` (``api_version`` overrides it); the pixel id is the destination's
``account``.

Credentials: ``access_token`` (a system user's token with access to the pixel).

The token travels in the ``Authorization: Bearer`` header rather than in the
``access_token`` query parameter, so that no URL that httpx or a proxy logs contains it, and so
that :func:`journeymap.activate.adapters.redact` masks it like every other platform's
credential. NOTE: Meta's Conversions API pages show the query parameter. The Graph API also
reads an OAuth 2.0 bearer header (WhatsApp Cloud API clients on graph.facebook.com send their
token that way), but this module has not been tried against Meta's servers.

Event fields: ``event_name`` is the row's action; ``event_time`` is Unix seconds;
``event_id`` is the row's event id (with ``event_name``, Meta's deduplication key);
``user_data`` contains ``em`` (SHA-256 of the trimmed, lowercased email), ``ph`` (SHA-256 of the
phone's digits with country code, no ``+``), ``external_id``, and unhashed ``fbc``, ``fbp``,
``lead_id`` and ``client_user_agent``; ``custom_data`` contains ``value`` and ``currency``.

``action_source`` is chosen as follows:

- a row with a Meta ``lead_id`` (a lead-ads form lead) is a CRM event of the Conversion Leads
  integration: ``system_generated``, with ``custom_data.event_source = "crm"`` and
  ``lead_event_source`` naming the sender;
- a row with a ``source_url`` and a ``client_user_agent`` key is a website event:
  ``website`` with ``event_source_url``. Meta requires both of those fields for website
  events, so ``fbc`` or ``fbp`` alone do not make a row a website event;
- every other row, such as a CRM stage change matched on a cookie or an email, is
  ``system_generated``. Its ``fbc`` and ``fbp`` are still sent for matching.

Window: 7 days from the conversion. One older event makes Meta refuse the whole request, so
:meth:`MetaAdapter.check` skips such rows before anything is sent.

Responses: 2xx with ``events_received`` means every event was received (``sent``). A Graph
API error body (``{"error": {"message", "type", "code", "error_subcode"}}``) is ``retry`` for
throttling codes, transient errors and 5xx, ``auth_error`` for the OAuth and permission codes
of :data:`AUTH_CODES` (such as 190, an invalid or expired token, which Meta sends with HTTP
400), else ``rejected`` for every row of the request: Meta refuses a request as a whole and
names no event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from journeymap.activate.adapters.common import (
    base_url,
    batch_size,
    chunks,
    clean_message,
    currency_of,
    each,
    hashed_email,
    hashed_phone,
    parse_json,
    raw_key,
    require_credentials,
    retry_after_seconds,
    status_outcomes,
    unix_seconds,
    value_outcome,
    window_outcome,
)
from journeymap.activate.base import Outcome, Request, SendRow
from journeymap.common.config import SyncDestination

DEFAULT_ENDPOINT = "https://graph.facebook.com"
DEFAULT_VERSION = "v23.0"
"""Graph API version sent when the destination sets no ``api_version``. Meta supports a
version for the Conversions API for at least two years after its release."""
MAX_EVENTS = 1000
"""Maximum events per request. NOTE: the widely cited limit, which Meta's Conversions API
pages read for this module do not state. Meta's Python SDK sends 50 per request by default."""
WINDOW = timedelta(days=7)
CREDENTIALS = ("access_token",)
LEAD_EVENT_SOURCE = "journeymap"
"""``custom_data.lead_event_source`` of CRM lead events: the system that sends them."""

THROTTLING_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80000, 80015))
"""Graph API error codes of rate limits (application, user, page, per-call and business use
case limits): the request may be sent again later."""
TRANSIENT_CODES = frozenset({1, 2})
"""Graph API error codes of an unknown error and of a temporarily unavailable service."""
AUTH_CODES = frozenset({10, 102, 190}) | frozenset(range(200, 300))
"""Graph API error codes of rejected credentials: 190 (invalid or expired access token), 102
(session key invalid), 10 and 200-299 (the token lacks a permission). The ``OAuthException``
error type is no sign: Meta gives it to parameter errors too."""


class MetaAdapter:
    """Meta Conversions API (see the module docstring for the fields and their rules)."""

    platform = "meta"
    max_batch = MAX_EVENTS
    window = WINDOW
    required_credentials = CREDENTIALS

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        """Skip a row older than the window or without a match key; reject a value without a
        currency."""
        too_old = window_outcome(row, destination, now, default=self.window, platform="Meta")
        if too_old is not None:
            return too_old
        bad_value = value_outcome(row, destination)
        if bad_value is not None:
            return bad_value
        if not user_data(row, destination):
            return Outcome(
                row.event_id,
                "skipped",
                code="no_match_key",
                message="no email, phone, external id, fbc, fbp or lead id to match on",
            )
        return None

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        """Return ``row`` unchanged: Meta takes an ``fbc`` of any age along with the other keys."""
        return row

    def requests(
        self,
        rows: Sequence[SendRow],
        destination: SyncDestination,
        credentials: Mapping[str, str],
    ) -> list[Request]:
        """Return one request per :data:`MAX_EVENTS` rows (or ``batch_size``).

        Raises:
            ConfigError: the ``access_token`` credential is missing.
        """
        if not rows:
            return []
        require_credentials(credentials, CREDENTIALS, rows[0], "Meta")

        version = destination.api_version or DEFAULT_VERSION
        if not version.startswith("v"):
            version = f"v{version}"
        url = f"{base_url(destination, DEFAULT_ENDPOINT)}/{version}/{destination.account}/events"
        headers = {
            "Authorization": f"Bearer {credentials['access_token']}",
            "Content-Type": "application/json",
        }

        requests = []
        for batch in chunks(rows, batch_size(MAX_EVENTS, destination)):
            body: dict[str, Any] = {"data": [server_event(row, destination) for row in batch]}
            if destination.test_event_code:
                body["test_event_code"] = destination.test_event_code
            event_ids = tuple(row.event_id for row in batch)
            requests.append(Request("POST", url, headers, body, event_ids))
        return requests

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        """Return one outcome per event of ``request`` from Meta's response."""
        document = parse_json(body)
        error = document.get("error") if isinstance(document, dict) else None

        if 200 <= status_code < 300 and isinstance(document, dict) and error is None:
            received = document.get("events_received")
            if isinstance(received, int):
                count = len(request.event_ids)
                note = None if received == count else f"Meta received {received} of {count} events"
                return each(request, "sent", message=note)
            return each(request, "retry", message="Meta's response has no events_received")

        if not isinstance(error, dict):
            failed = status_outcomes(request, status_code, headers, message=None)
            if failed is not None:
                return failed
            return each(request, "retry", message="Meta's response is not a Graph API response")

        code = error.get("code")
        subcode = error.get("error_subcode")
        code_text = f"{code}/{subcode}" if subcode is not None else str(code)
        message = (
            " ".join(
                str(part) for part in (error.get("message"), error.get("error_user_msg")) if part
            )
            or f"HTTP {status_code}"
        )

        if code in AUTH_CODES:
            return each(request, "auth_error", code=code_text, message=message)
        if code in THROTTLING_CODES or code in TRANSIENT_CODES or error.get("is_transient"):
            return each(
                request,
                "retry",
                code=code_text,
                message=message,
                retry_after=retry_after_seconds(headers),
            )
        failed = status_outcomes(request, status_code, headers, message=message, code=code_text)
        if failed is not None:
            return failed
        return each(request, "rejected", code=code_text, message=clean_message(message))


def user_data(row: SendRow, destination: SyncDestination) -> dict[str, Any]:
    """Return the ``user_data`` of ``row``: hashed ``em`` and ``ph``, and the unhashed ids."""
    keys = row.keys
    data: dict[str, Any] = {}

    email = hashed_email(keys)
    if email:
        data["em"] = email
    phone = hashed_phone(keys, plus=False, region=destination.phone_region)
    if phone:
        data["ph"] = phone

    for name in ("external_id", "fbc", "fbp", "client_user_agent"):
        value = raw_key(keys, name)
        if value:
            data[name] = value
    lead_id = raw_key(keys, "lead_id")
    if lead_id:
        data["lead_id"] = int(lead_id) if lead_id.isdigit() else lead_id
    return data


def server_event(row: SendRow, destination: SyncDestination) -> dict[str, Any]:
    """Return the server event of ``row`` (one element of the request's ``data``)."""
    data = user_data(row, destination)
    event: dict[str, Any] = {
        "event_name": row.action,
        "event_time": unix_seconds(row.occurred_at),
        "event_id": row.event_id,
    }

    custom: dict[str, Any] = {}
    if "lead_id" in data:
        event["action_source"] = "system_generated"
        custom["event_source"] = "crm"
        custom["lead_event_source"] = LEAD_EVENT_SOURCE
    elif row.source_url and "client_user_agent" in data:
        event["action_source"] = "website"
        event["event_source_url"] = row.source_url
    else:
        event["action_source"] = "system_generated"
    event["user_data"] = data

    if row.value is not None:
        custom["value"] = row.value
        currency = currency_of(row, destination)
        if currency:
            custom["currency"] = currency
    if custom:
        event["custom_data"] = custom
    return event
