"""What every platform adapter shares: batching, the window check, values, match keys, and
the reading of HTTP statuses that mean the same on every platform.

Every adapter maps error statuses the same way. A 429 is ``retry`` after the delay of its
``Retry-After`` header, which contains seconds or an HTTP date (measured against the response's
own ``Date`` header). A 408 or a 5xx is ``retry``, a 401 or a 403 is ``auth_error`` (the
credentials are wrong, not the rows), and any other 4xx is ``rejected`` with the platform's
message. Each platform's module reads its own 2xx responses and its own authentication
error codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journeymap.activate.base import Outcome, Request, SendRow, Status
from journeymap.common import identifiers
from journeymap.common.config import SyncDestination
from journeymap.common.errors import ConfigError

T = TypeVar("T")

MAX_MESSAGE_CHARS = 500
"""Maximum length of a platform message kept in an outcome. Longer messages are cut."""

AUTH_STATUSES = frozenset({401, 403})
"""HTTP statuses of rejected credentials: unauthenticated and forbidden."""

_EMAIL_LIKE = re.compile(r"[^\s@\"'<>()\[\],;:]+@[^\s@\"'<>()\[\],;:]+\.[A-Za-z]{2,}")
_PHONE_LIKE = re.compile(r"\+\d[\d ().-]{6,}\d")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of ``items`` of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_size(limit: int, destination: SyncDestination) -> int:
    """Return the rows per request: the destination's ``batch_size`` capped at ``limit``."""
    if destination.batch_size is None:
        return limit
    return min(destination.batch_size, limit)


def base_url(destination: SyncDestination, default: str) -> str:
    """Return the API's base URL, ``destination.endpoint`` when set, without a trailing ``/``."""
    return (destination.endpoint or default).rstrip("/")


def require_credentials(
    credentials: Mapping[str, str], names: Sequence[str], row: SendRow | None, platform: str
) -> None:
    """Raise when a credential that ``platform`` needs is missing or empty.

    Raises:
        ConfigError: names the destination and the missing credential, never a value.
    """
    missing = [name for name in names if not credentials.get(name)]
    if not missing:
        return
    where = f"sync.destinations.{row.destination}" if row is not None else "sync.destinations"
    raise ConfigError(
        f"the {platform} destination has no credential {', '.join(missing)}",
        location=f"{where}.credentials_env",
        hint="Map each credential name to an environment variable in credentials_env, "
        "or add it to sync.secrets_file",
    )


def zone(destination: SyncDestination, row: SendRow) -> ZoneInfo:
    """Return the destination's time zone (UTC when unset).

    Raises:
        ConfigError: ``time_zone`` is not an IANA time zone name.
    """
    name = destination.time_zone or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}",
            location=f"sync.destinations.{row.destination}.time_zone",
            hint="Use an IANA name such as America/New_York or Europe/Berlin, the time zone "
            "of the ad account",
        ) from exc


def window_outcome(
    row: SendRow,
    destination: SyncDestination,
    now: datetime,
    *,
    default: timedelta,
    platform: str,
    since: datetime | None = None,
) -> Outcome | None:
    """Return a ``skipped`` outcome when ``since`` (the conversion time by default) lies
    further back than the window: ``destination.window_days`` or the platform's ``default``."""
    window = default if destination.window_days is None else timedelta(days=destination.window_days)
    start = row.occurred_at if since is None else since
    age = now - start
    if age <= window:
        return None
    days = window / timedelta(days=1)
    if since is None:
        reason = f"the conversion is {age / timedelta(days=1):.1f} days old, and {platform} "
        reason += f"accepts conversions up to {days:g} days old"
    else:
        reason = f"the click is {age / timedelta(days=1):.1f} days old, and {platform} "
        reason += f"accepts conversions up to {days:g} days after the click"
    return Outcome(row.event_id, "skipped", code="outside_window", message=reason)


def currency_of(row: SendRow, destination: SyncDestination) -> str | None:
    """Return the ISO 4217 code sent with the value: the row's, else the destination's."""
    currency = row.currency or destination.currency
    return currency.strip().upper() if currency else None


def value_outcome(row: SendRow, destination: SyncDestination) -> Outcome | None:
    """Return a ``rejected`` outcome when the row has a value but no currency or a negative
    value, which no platform accepts."""
    if row.value is None:
        return None
    if row.value < 0 or row.value != row.value:
        return Outcome(
            row.event_id,
            "rejected",
            code="invalid_value",
            message=f"the conversion value {row.value} is negative or not a number",
        )
    if currency_of(row, destination) is None:
        return Outcome(
            row.event_id,
            "rejected",
            code="missing_currency",
            message="the conversion has a value but no currency; set currency on the destination",
        )
    return None


def amount_text(value: float) -> str:
    """Return ``value`` with two decimals, rounded half up (``12.345`` -> ``"12.35"``)."""
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def hashed_email(keys: Mapping[str, str], *, google: bool = False) -> str | None:
    """Return the SHA-256 of the row's email, normalised for Google or for everyone else.

    The value comes from the platform's key (:data:`identifiers.EMAIL_GOOGLE` or
    :data:`identifiers.EMAIL`), else from a raw ``email`` key. A digest passes through as it
    is; a raw address is normalised and hashed here; an invalid address gives None.
    """
    value = keys.get(identifiers.EMAIL_GOOGLE if google else identifiers.EMAIL) or keys.get("email")
    if not value or not value.strip():
        return None
    try:
        return identifiers.hash_email(value, google=google)
    except ValueError:
        return None


def hashed_phone(keys: Mapping[str, str], *, plus: bool, region: str) -> str | None:
    """Return the SHA-256 of the row's phone in E.164 form, with its ``+`` when ``plus``.

    The value comes from :data:`identifiers.PHONE_E164` (``plus``) or
    :data:`identifiers.PHONE_DIGITS`, else from a raw ``phone`` key. A digest passes through,
    a raw number is normalised and hashed, and an invalid number gives None.
    """
    value = keys.get(identifiers.PHONE_E164 if plus else identifiers.PHONE_DIGITS) or keys.get(
        "phone"
    )
    if not value or not value.strip():
        return None
    try:
        return identifiers.hash_phone(value, plus=plus, region=region)
    except ValueError:
        return None


def raw_key(keys: Mapping[str, str], name: str) -> str | None:
    """Return the click id or cookie ``name`` stripped, or None when absent or blank."""
    value = keys.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def unix_seconds(moment: datetime) -> int:
    """Return ``moment`` (timezone-aware) as whole Unix epoch seconds."""
    return int(moment.timestamp())


def unix_millis(moment: datetime) -> int:
    """Return ``moment`` (timezone-aware) as whole Unix epoch milliseconds."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(milliseconds=1)


def clean_message(text: object) -> str:
    """Return a platform message fit for an outcome: one line, at most
    :data:`MAX_MESSAGE_CHARS` characters, with anything shaped like an email address or an
    international phone number (``+`` and digits) masked, in case a platform echoes a value."""
    line = " ".join(str(text).split())
    line = _EMAIL_LIKE.sub("[email]", line)
    line = _PHONE_LIKE.sub("[number]", line)
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 3] + "..."
    return line


def parse_json(body: bytes) -> Any:
    """Return the JSON document of ``body``, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Return the value of header ``name``, matched without regard to case."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Return the delay that a ``Retry-After`` header requests, in seconds.

    The header contains seconds or an HTTP date. A date is measured against the response's
    ``Date`` header, so that the adapter reads no clock; without a ``Date`` header it is
    measured against the current time. An unreadable header gives None.
    """
    value = header(headers, "retry-after")
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        until = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    sent = header(headers, "date")
    reference: datetime | None = None
    if sent:
        try:
            reference = parsedate_to_datetime(sent)
        except (TypeError, ValueError):
            reference = None
    if reference is None:
        reference = datetime.now(tz=UTC)
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    return max(0.0, (until - reference).total_seconds())


def each(
    request: Request,
    status: Status,
    *,
    code: str | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> list[Outcome]:
    """Return the same outcome for every row of ``request``."""
    text = clean_message(message) if message else None
    return [
        Outcome(event_id, status, code=code, message=text, retry_after=retry_after)
        for event_id in request.event_ids
    ]


def status_outcomes(
    request: Request,
    status_code: int,
    headers: Mapping[str, str],
    *,
    message: str | None,
    code: str | None = None,
) -> list[Outcome] | None:
    """Return the outcomes that an error status means on every platform, or None for 2xx.

    ``message`` and ``code`` are the platform's own, read from the error body by the caller.
    Without a ``code``, the HTTP status is the code.
    """
    if 200 <= status_code < 300:
        return None
    code = code or str(status_code)
    text = message or f"HTTP {status_code}"
    if status_code == 429:
        return each(
            request, "retry", code=code, message=text, retry_after=retry_after_seconds(headers)
        )
    if status_code == 408 or status_code >= 500:
        return each(
            request, "retry", code=code, message=text, retry_after=retry_after_seconds(headers)
        )
    if status_code in AUTH_STATUSES:
        return each(request, "auth_error", code=code, message=text)
    return each(request, "rejected", code=code, message=text)
