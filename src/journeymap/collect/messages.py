"""Segment tracking-API messages: validation and the event row that the journal stores.

A message is one JSON object of the Segment spec (``identify``, ``track``, ``page``, ``screen``,
``group`` or ``alias``). :func:`event_rows` checks every message of a request and turns each
into a flat row with the columns of the ``events`` table, so that the journal, the store and
the Parquet sink share one shape. It raises :class:`RejectedError` with the HTTP status and a reason
that names the message (its position in the batch) and the field.

Timestamps follow Segment's clock-skew rule: with ``sentAt`` (on the message or the batch),
``timestamp = receivedAt - (sentAt - originalTimestamp)``, where ``originalTimestamp`` is the
message's ``originalTimestamp`` or else its ``timestamp``; the device's stamp is kept in
``original_timestamp``. Without ``sentAt`` the stamp is stored as it is, and a message with no
stamp at all happens at ``receivedAt``.

Email addresses in ``traits`` (or ``context.traits``) are replaced by their SHA-256 hash
(``email_hash``, of the trimmed, lowercased address) and their domain (``email_domain``),
so that the events table holds no raw address. Phone fields of ``traits`` and ``properties``
are dropped (see :mod:`journeymap.collect.identifiers`, which turns both into match keys).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from journeymap.collect.identifiers import without_phones
from journeymap.common.numbers import MAX_AMOUNT
from journeymap.sources.touchpoints import CLICK_IDS

TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_MESSAGE_ID = 100

# Click-id parameters in order of precedence, with the platform that the channel rules expect:
# the same list as the touchpoint importer's.
CLICK_NAMES = tuple(name for name, _ in CLICK_IDS)
CAMPAIGN_FIELDS = (
    ("utm_source", "source"),
    ("utm_medium", "medium"),
    ("utm_campaign", "name"),
    ("utm_content", "content"),
    ("utm_term", "term"),
)
REVENUE_KEYS = ("revenue", "value", "total")
OBJECT_FIELDS = ("context", "properties", "traits")

Row = dict[str, Any]


class RejectedError(Exception):
    """A request that the collector refuses, with its HTTP status and a reason for the sender."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Accepted:
    """One validated message as the journal stores it: its keys, times and raw JSON."""

    source: str
    message_id: str
    type: str
    received_at: str
    sent_at: str | None
    cookie_id: str | None
    raw: bytes


def accept(
    messages: list[Any],
    *,
    source: str,
    received_at: datetime,
    batch_sent_at: Any = None,
    batch_context: Mapping[str, Any] | None = None,
    implied_type: str | None = None,
    cookie_id: str | None = None,
    message_limit: int,
) -> list[Accepted]:
    """Validate ``messages`` and return each as the journal stores it.

    Validation is complete here, so that :func:`event_row` can later derive the event
    columns from the journal's contents without failing. It is also cheap, because it runs
    while the sender waits: URLs, campaigns and emails are read later, by the drain.

    Args:
        messages: the parsed JSON messages, in request order.
        source: the collector source that the write key belongs to.
        received_at: when the server received the request (UTC).
        batch_sent_at: the batch envelope's ``sentAt``, used when a message has none.
        batch_context: the batch envelope's ``context``, merged under each message's own.
        implied_type: the type named by a single-call endpoint such as ``/v1/track``.
        cookie_id: the first-party anonymous-id cookie, used when a message has no
            ``anonymousId``.
        message_limit: the largest accepted serialised message, in bytes.

    Raises:
        RejectedError: 400 for a message that is not an object, lacks a field its type needs,
            or has an unreadable timestamp; 413 for a message above ``message_limit``.
    """
    received_text = received_at.isoformat(timespec="microseconds")
    batch_sent = _parse_time(batch_sent_at, "sentAt", "the batch")
    accepted = []
    for index, message in enumerate(messages):
        where = f"message {index}" if implied_type is None else "the message"
        if not isinstance(message, dict):
            raise RejectedError(400, f"{where} is not a JSON object")
        kind, message_id, sent_at = _check(
            message,
            where=where,
            received_at=received_at,
            batch_sent=batch_sent,
            implied_type=implied_type,
            has_cookie=cookie_id is not None,
        )

        # The journal keeps the message as the drain must read it: with its type, without
        # the write key (a secret), and with the batch's context merged under its own.
        if message.get("type") != kind:
            message = {**message, "type": kind}
        if "writeKey" in message:
            message = {key: value for key, value in message.items() if key != "writeKey"}
        if batch_context:
            own = message.get("context") or {}
            message = {**message, "context": {**batch_context, **own}}
        raw = orjson.dumps(message)
        if len(raw) > message_limit:
            raise RejectedError(
                413, f"{where} is {len(raw)} bytes, above the limit of {message_limit}"
            )
        accepted.append(
            Accepted(
                source=source,
                message_id=message_id,
                type=kind,
                received_at=received_text,
                sent_at=None if sent_at is None else sent_at.isoformat(timespec="microseconds"),
                cookie_id=cookie_id,
                raw=raw,
            )
        )
    return accepted


def _check(
    message: dict[str, Any],
    *,
    where: str,
    received_at: datetime,
    batch_sent: datetime | None,
    implied_type: str | None,
    has_cookie: bool,
) -> tuple[str, str, datetime | None]:
    """Validate one message; return its type, its message id and when it was sent."""
    kind = implied_type if implied_type is not None else message.get("type")
    if kind not in TYPES:
        raise RejectedError(
            400, f"{where}: field 'type' is {kind!r}; use one of {', '.join(TYPES)}"
        )

    # Identity: the ids that the message's type needs.
    user_id = _id(message, "userId", where)
    anonymous_id = _id(message, "anonymousId", where)
    if kind != "alias" and user_id is None and anonymous_id is None and not has_cookie:
        raise RejectedError(400, f"{where} ({kind}): needs field 'userId' or 'anonymousId'")
    previous_id = _id(message, "previousId", where)
    if kind == "alias" and (previous_id is None or user_id is None):
        raise RejectedError(400, f"{where} (alias): needs fields 'previousId' and 'userId'")
    if kind == "group" and _id(message, "groupId", where) is None:
        raise RejectedError(400, f"{where} (group): needs field 'groupId'")
    if kind == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event.strip():
            raise RejectedError(400, f"{where} (track): needs field 'event', the event name")
    message_id = _id(message, "messageId", where) or str(uuid.uuid4())
    if len(message_id) > MAX_MESSAGE_ID:
        raise RejectedError(400, f"{where}: field 'messageId' is longer than {MAX_MESSAGE_ID}")
    for field in OBJECT_FIELDS:
        value = message.get(field)
        if value is not None and not isinstance(value, dict):
            raise RejectedError(400, f"{where}: field {field!r} must be a JSON object")
    properties = message.get("properties") or {}
    for key in REVENUE_KEYS:
        amount = _number(properties.get(key))
        if amount is not None and abs(amount) > MAX_AMOUNT:
            raise RejectedError(
                400,
                f"{where}: field 'properties.{key}' is {amount:g}, above {MAX_AMOUNT:g}; "
                "check its unit",
            )

    # Time: the stamps must parse, and Segment's correction must stay within the calendar.
    stamp = _time(message, "originalTimestamp", where) or _time(message, "timestamp", where)
    sent_at = _time(message, "sentAt", where) or batch_sent
    if stamp is not None and sent_at is not None:
        try:
            received_at - (sent_at - stamp)
        except OverflowError:
            raise RejectedError(
                400, f"{where}: fields 'sentAt' and 'timestamp' are too far apart to correct"
            ) from None
    return kind, message_id, sent_at


def event_row(
    message: dict[str, Any],
    *,
    source: str,
    message_id: str,
    received_at: datetime,
    sent_at: datetime | None,
    cookie_id: str | None,
) -> Row:
    """Return the events-table columns of a message that :func:`accept` validated.

    Time follows Segment's clock-skew rule (see the module's docstring). The page, the
    campaign, the click id, the revenue and the hashed email are read from the context,
    properties and traits.
    """
    kind = str(message.get("type"))
    stamp = _loose_time(message.get("originalTimestamp")) or _loose_time(message.get("timestamp"))
    if stamp is None:
        timestamp = received_at
    elif sent_at is None:
        timestamp = stamp
    else:
        timestamp = received_at - (sent_at - stamp)

    context = _private(_as_object(message.get("context")))
    properties = _as_object(message.get("properties"))
    traits = _as_object(message.get("traits")) or _as_object(context.get("traits"))
    page = _as_object(context.get("page"))
    page_url = _redacted(_text(page.get("url")) or _text(properties.get("url")))
    referrer = _redacted(_text(page.get("referrer")) or _text(properties.get("referrer")))
    query = _query(page_url, _text(page.get("search")))
    campaign = _as_object(context.get("campaign"))
    utm = {
        column: _text(campaign.get(key)) or _first(query.get(column))
        for column, key in CAMPAIGN_FIELDS
    }
    click_id, click_platform = _click(_as_object(context.get("clickIds")), campaign, query)
    email_hash, email_domain, traits = _hashed_email(without_phones(traits))
    property_hash, property_domain, properties = _hashed_email(without_phones(properties))
    email_hash = email_hash or property_hash
    email_domain = email_domain or property_domain
    event = message.get("event") if kind == "track" else message.get("name")

    return {
        "message_id": message_id,
        "source": source,
        "type": kind,
        "event": _text(event),
        "anonymous_id": _loose_id(message.get("anonymousId")) or cookie_id,
        "user_id": _loose_id(message.get("userId")),
        "group_id": _loose_id(message.get("groupId")),
        "previous_id": _loose_id(message.get("previousId")),
        "email_hash": email_hash,
        "email_domain": email_domain,
        "timestamp": timestamp,
        "original_timestamp": stamp,
        "sent_at": sent_at,
        "received_at": received_at,
        "page_url": page_url,
        "page_host": _host(page_url),
        "referrer_host": _host(referrer),
        **utm,
        "click_id": click_id,
        "click_platform": click_platform,
        "revenue": _revenue(properties),
        "user_agent": _text(context.get("userAgent")),
        "context": _dump({k: v for k, v in context.items() if k != "traits"}),
        "properties": _dump(properties),
        "traits": _dump(traits),
    }


def _loose_id(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    return str(value)


def _loose_time(value: Any) -> datetime | None:
    try:
        return _parse_time(value, "", "")
    except RejectedError:
        return None


def _id(message: Mapping[str, Any], field: str, where: str) -> str | None:
    value = message.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RejectedError(400, f"{where}: field {field!r} must be a string")
    return str(value)


def _time(message: Mapping[str, Any], field: str, where: str) -> datetime | None:
    return _parse_time(message.get(field), field, where)


def _parse_time(value: Any, field: str, where: str) -> datetime | None:
    """Parse an ISO-8601 timestamp; one without an offset is read as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RejectedError(400, f"{where}: field {field!r} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
    except ValueError:
        raise RejectedError(
            400,
            f"{where}: field {field!r} is {value[:40]!r}, not an ISO-8601 time such as "
            "2026-03-01T12:00:00.000Z",
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise RejectedError(
            400, f"{where}: field {field!r} is {value[:40]!r}, outside the years 1 to 9999 in UTC"
        ) from None


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _first(values: list[str] | None) -> str | None:
    return _text(values[0]) if values else None


def _query(url: str | None, search: str | None) -> dict[str, list[str]]:
    """Return the query parameters of the page URL, or of ``context.page.search``."""
    query = search
    if url and "?" in url:
        query = url.split("?", 1)[1].split("#", 1)[0]
    if not query or ("utm_" not in query and not any(name in query for name in CLICK_NAMES)):
        return {}
    return parse_qs(query.lstrip("?"))


def _host(url: str | None) -> str | None:
    """Return the lowercased host of a URL without ``www.``."""
    if not url:
        return None
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:  # an unclosed IPv6 bracket, for example
        return None
    if not host:
        return None
    return host.removeprefix("www.")


def _click(
    click_ids: Mapping[str, Any], campaign: Mapping[str, Any], query: Mapping[str, list[str]]
) -> tuple[str | None, str | None]:
    """Return the strongest click id and its platform, from the tag, the campaign or the URL."""
    for parameter, platform in CLICK_IDS:
        value = (
            _text(click_ids.get(parameter))
            or _text(campaign.get(parameter))
            or _first(query.get(parameter))
        )
        if value:
            return value, platform
    return None, None


def _hashed_email(fields: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    """Return the hash and domain of an ``email`` field (any case) and the fields without it.

    Only the top level is searched; a nested address stays as sent.
    """
    keys = [key for key in fields if key.lower() == "email"]
    emails = [fields[key] for key in keys if isinstance(fields[key], str) and "@" in fields[key]]
    if not emails:
        return None, None, fields
    normal = emails[0].strip().lower()
    rest = {key: value for key, value in fields.items() if key not in keys}
    return hashlib.sha256(normal.encode()).hexdigest(), normal.rsplit("@", 1)[1], rest


def _private(context: dict[str, Any]) -> dict[str, Any]:
    """Return the context without the client's IP address and with URLs redacted."""
    kept = {key: value for key, value in context.items() if key != "ip"}
    page = kept.get("page")
    if isinstance(page, dict):
        kept["page"] = {
            key: _redacted(value) if key in ("url", "referrer", "search") else value
            for key, value in page.items()
        }
    return kept


_EMAIL_IN_QUERY = re.compile(r"(?<=[=])[^&#=]*(?:@|%40)[^&#]*", re.IGNORECASE)


def _redacted(url: Any) -> Any:
    """Replace query values that look like email addresses with ``redacted``."""
    if not isinstance(url, str) or ("@" not in url and "%40" not in url.lower()):
        return url
    return _EMAIL_IN_QUERY.sub("redacted", url)


def _number(value: Any) -> float | None:
    """Return a JSON number or numeric string as float, or None."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _revenue(properties: Mapping[str, Any]) -> float | None:
    for key in REVENUE_KEYS:
        value = properties.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        try:
            number = float(value)
        except (ValueError, OverflowError):
            continue
        if math.isfinite(number) and abs(number) <= MAX_AMOUNT:
            return number
    return None


def _dump(value: Mapping[str, Any]) -> str | None:
    if not value:
        return None
    return orjson.dumps(value).decode()


def now() -> datetime:
    """Return the current time in UTC; the receive time of a request."""
    return datetime.now(UTC)
