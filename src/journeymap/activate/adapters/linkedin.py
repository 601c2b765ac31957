"""LinkedIn Conversions API: conversion events sent to a conversion rule in batches.

Request: ``POST {endpoint}/rest/conversionEvents`` (``endpoint`` defaults to
``https://api.linkedin.com``) with the headers ``Authorization: Bearer``, ``LinkedIn-Version``
(:data:`DEFAULT_VERSION` unless ``api_version`` is set), ``X-Restli-Protocol-Version: 2.0.0``
and ``X-RestLi-Method: BATCH_CREATE``, and the body ``{"elements": [event, ...]}`` of at most
:data:`MAX_EVENTS` events.

Credentials: ``access_token`` (OAuth 2.0 with the ``rw_conversions`` scope, of a member with
a role on the ad account).

Event fields: ``conversion`` is ``urn:lla:llaPartnerConversion:{rule id}`` (the row's action
is the rule id, or the whole URN); ``conversionHappenedAt`` is Unix epoch milliseconds;
``conversionValue`` is ``{"currencyCode", "amount"}`` with the amount as a string with two
decimals; ``eventId`` is the row's event id (LinkedIn's deduplication key);
``user.userIds`` holds ``SHA256_EMAIL`` (SHA-256 of the trimmed, lowercased email) and
``LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID`` (the raw ``li_fat_id``). A row with neither has
no id to match on and is skipped.

Window: 90 days from the conversion.

Responses: a 2xx response lists one status per element in request order; 201 is ``sent``,
429 and 5xx are ``retry``, any other status is ``rejected`` with the element's message. A
401 or 403 response (an invalid or expired token, a missing scope) is ``auth_error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from journeymap.activate.adapters.common import (
    amount_text,
    base_url,
    batch_size,
    chunks,
    clean_message,
    currency_of,
    each,
    hashed_email,
    parse_json,
    raw_key,
    require_credentials,
    status_outcomes,
    unix_millis,
    value_outcome,
    window_outcome,
)
from journeymap.activate.base import Outcome, Request, SendRow
from journeymap.common.config import SyncDestination

DEFAULT_ENDPOINT = "https://api.linkedin.com"
DEFAULT_VERSION = "202610"
"""``LinkedIn-Version`` sent when the destination sets no ``api_version`` (YYYYMM).
NOTE: LinkedIn retires each monthly version about a year after its release; set
``api_version`` to a current one when this one is gone."""
MAX_EVENTS = 5000
"""Maximum events per ``BATCH_CREATE`` request. NOTE: the limit that third-party connectors
quote, which LinkedIn's own pages do not state."""
WINDOW = timedelta(days=90)
CREDENTIALS = ("access_token",)
RULE_URN = "urn:lla:llaPartnerConversion:"


class LinkedInAdapter:
    """LinkedIn Conversions API (see the module docstring)."""

    platform = "linkedin"
    max_batch = MAX_EVENTS
    window = WINDOW
    required_credentials = CREDENTIALS

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        """Skip a row older than the window or with no email or ``li_fat_id``; reject a
        value without a currency or a rule id that is not a number."""
        too_old = window_outcome(row, destination, now, default=self.window, platform="LinkedIn")
        if too_old is not None:
            return too_old
        bad_value = value_outcome(row, destination)
        if bad_value is not None:
            return bad_value
        if not rule_urn(row.action).removeprefix(RULE_URN).isdigit():
            return Outcome(
                row.event_id,
                "rejected",
                code="invalid_action",
                message=f"the conversion rule {row.action!r} is not a rule id; map the kind to "
                "the id of a LinkedIn conversion rule",
            )
        if not user_ids(row):
            return Outcome(
                row.event_id,
                "skipped",
                code="no_match_key",
                message="no email or li_fat_id to match on",
            )
        return None

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        """Return ``row`` unchanged: the window counts from the conversion, not the click."""
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
        require_credentials(credentials, CREDENTIALS, rows[0], "LinkedIn")

        url = f"{base_url(destination, DEFAULT_ENDPOINT)}/rest/conversionEvents"
        headers = {
            "Authorization": f"Bearer {credentials['access_token']}",
            "LinkedIn-Version": destination.api_version or DEFAULT_VERSION,
            "X-Restli-Protocol-Version": "2.0.0",
            "X-RestLi-Method": "BATCH_CREATE",
            "Content-Type": "application/json",
        }
        requests = []
        for batch in chunks(rows, batch_size(MAX_EVENTS, destination)):
            body = {"elements": [conversion_event(row, destination) for row in batch]}
            requests.append(Request("POST", url, headers, body, tuple(r.event_id for r in batch)))
        return requests

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        """Return one outcome per event of ``request`` from the per-element statuses."""
        document = parse_json(body)
        if not 200 <= status_code < 300:
            message = code = None
            if isinstance(document, dict):
                message = str(document.get("message") or "") or None
                code = str(document.get("code") or document.get("serviceErrorCode") or "") or None
            failed = status_outcomes(request, status_code, headers, message=message, code=code)
            assert failed is not None  # statuses outside 2xx
            return failed

        elements = document.get("elements") if isinstance(document, dict) else None
        if not isinstance(elements, list):
            return each(request, "retry", message="LinkedIn's response lists no element statuses")

        outcomes = []
        for position, event_id in enumerate(request.event_ids):
            element = elements[position] if position < len(elements) else None
            outcomes.append(_element_outcome(event_id, element))
        return outcomes


def rule_urn(action: str) -> str:
    """Return the conversion rule URN of ``action``: a rule id, or already a URN."""
    action = action.strip()
    return action if action.startswith(RULE_URN) else f"{RULE_URN}{action}"


def user_ids(row: SendRow) -> list[dict[str, str]]:
    """Return the ``user.userIds`` of ``row``: the hashed email and the ``li_fat_id``."""
    ids = []
    email = hashed_email(row.keys)
    if email:
        ids.append({"idType": "SHA256_EMAIL", "idValue": email})
    tracking = raw_key(row.keys, "li_fat_id")
    if tracking:
        ids.append({"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": tracking})
    return ids


def conversion_event(row: SendRow, destination: SyncDestination) -> dict[str, Any]:
    """Return the conversion event of ``row`` (one element of the request)."""
    event: dict[str, Any] = {
        "conversion": rule_urn(row.action),
        "conversionHappenedAt": unix_millis(row.occurred_at),
        "eventId": row.event_id,
        "user": {"userIds": user_ids(row)},
    }
    currency = currency_of(row, destination)
    if row.value is not None and currency:
        event["conversionValue"] = {"currencyCode": currency, "amount": amount_text(row.value)}
    return event


def _element_outcome(event_id: str, element: object) -> Outcome:
    """Map one element of a ``BATCH_CREATE`` response to its outcome."""
    if not isinstance(element, dict) or not isinstance(element.get("status"), int):
        return Outcome(event_id, "retry", message="LinkedIn returned no status for this event")
    status = element["status"]
    if status in (200, 201):
        return Outcome(event_id, "sent")
    error = element.get("error")
    message = None
    if isinstance(error, dict):
        message = error.get("message")
    text = clean_message(message) if message else f"HTTP {status}"
    if status == 429 or status >= 500:
        return Outcome(event_id, "retry", code=str(status), message=text)
    return Outcome(event_id, "rejected", code=str(status), message=text)
