"""Google Ads: offline click conversions through the Google Ads API, or through the Data
Manager API that replaces it for new integrations.

Platform ``google`` (:class:`GoogleClickAdapter`):
``POST {endpoint}/{version}/customers/{customer id}:uploadClickConversions`` with
``{"conversions": [...], "partialFailure": true}``, at most :data:`MAX_CONVERSIONS`
conversions. ``endpoint`` defaults to ``https://googleads.googleapis.com`` and ``version`` to
:data:`DEFAULT_VERSION`; the customer id is the destination's ``account`` (dashes are removed)
and the row's action is the conversion action id. Credentials: ``access_token`` (OAuth 2.0,
sent as ``Authorization: Bearer``), ``developer_token`` (header ``developer-token``) and, when
a manager account makes the call, ``login_customer_id`` (header ``login-customer-id``).

Each conversion carries these fields:

- ``conversionAction``: ``customers/{id}/conversionActions/{action}``;
- ``conversionDateTime``: ``yyyy-mm-dd hh:mm:ss+hh:mm`` in the destination's ``time_zone``,
  with the offset in force on that date (UTC when ``time_zone`` is unset);
- ``orderId``: the row's event id, Google's deduplication key per conversion action;
- ``conversionValue`` and ``currencyCode``;
- one click id: ``gclid``, else ``gbraid``, else ``wbraid`` (Google rejects both of the last
  two together).

A row without a click id is an enhanced conversion for leads. It carries ``userIdentifiers``
instead, at most five, each a ``hashedEmail`` (SHA-256 after Google's normalisation, which
removes the dots of Gmail local parts) or a ``hashedPhoneNumber`` (SHA-256 of the E.164
number).

Responses name failed rows by operation index in ``partialFailureError``. Codes ending in
``_ALREADY_EXISTS``, ``ORDER_ID_ALREADY_IN_USE`` and ``DUPLICATE_ORDER_ID`` mean the
conversion is already there (``sent``); ``TOO_RECENT_*`` is ``retry`` after six hours; any
other code (``EXPIRED_EVENT``, ``UNPARSEABLE_GCLID``, ``CLICK_NOT_FOUND``, ...) is
``rejected``. An error of the ``authenticationError`` or ``authorizationError`` family
(``DEVELOPER_TOKEN_INVALID``, ``NOT_AUTHORIZED``, ...), a status ``UNAUTHENTICATED`` or
``PERMISSION_DENIED``, or HTTP 401 or 403 is ``auth_error`` for every row.

Platform ``google_data_manager`` (:class:`GoogleDataManagerAdapter`):
``POST {endpoint}/v1/events:ingest`` (``endpoint`` defaults to
``https://datamanager.googleapis.com``) with one destination per request (``operatingAccount``
of type ``GOOGLE_ADS`` with the customer id, ``productDestinationId`` = the conversion action
id, and ``loginAccount`` when ``login_customer_id`` is set), ``encoding: HEX`` and at most
:data:`MAX_CONVERSIONS` events. Credentials: ``access_token`` (OAuth 2.0 with the Data Manager
scope; no developer token) and optional ``login_customer_id``. Each event carries
``transactionId`` (the row's event id), ``eventTimestamp`` (RFC 3339 with the offset of the
destination's time zone), ``eventSource`` (the destination's ``event_source``, ``OTHER`` by
default), ``userData.userIdentifiers`` (``emailAddress``, ``phoneNumber``:
hex SHA-256 as above), ``adIdentifiers`` (one click id), ``conversionValue`` and
``currency``. Data Manager checks a request as a whole: a request with an invalid event
ingests nothing, so the events that a field violation names are ``rejected`` and the others
``retry``. A success only means the events were queued: Google reports per-event problems
later, under the request id kept in the outcome's message.

Window of both: 90 days from the click (``clicked_at``, or the conversion time when there is
no click). A row whose click is older than that but whose conversion is recent goes without
its click id, as an enhanced conversion for leads, when it has a hashed email or phone
(:meth:`GoogleClickAdapter.prepare`); it is skipped only when nothing else can match.
NOTE: 90 days is the maximum click-through window of a conversion action that secondary
sources give; Google's help page on windows does not state the maximum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
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
    status_outcomes,
    value_outcome,
    window_outcome,
    zone,
)
from journeymap.activate.base import Outcome, Request, SendRow
from journeymap.common.config import SyncDestination

ADS_ENDPOINT = "https://googleads.googleapis.com"
DEFAULT_VERSION = "v21"
"""Google Ads API version sent when the destination sets no ``api_version``.
NOTE: Google retires each major version about a year after its release; check the current
versions and set ``api_version`` when this one is gone."""
DATA_MANAGER_ENDPOINT = "https://datamanager.googleapis.com"
DATA_MANAGER_VERSION = "v1"
MAX_CONVERSIONS = 2000
"""Maximum conversions (or Data Manager events) per request."""
MAX_USER_IDENTIFIERS = 5
WINDOW = timedelta(days=90)
CLICK_CREDENTIALS = ("access_token", "developer_token")
DATA_MANAGER_CREDENTIALS = ("access_token",)
CLICK_IDS = ("gclid", "gbraid", "wbraid")
"""Click id keys in order of preference; one is sent."""
TOO_RECENT_DELAY = 6 * 3600.0
"""Seconds to wait after a ``TOO_RECENT_*`` error: Google takes clicks and conversion actions
only once they are six hours old."""
ALREADY_THERE = frozenset({"ORDER_ID_ALREADY_IN_USE", "DUPLICATE_ORDER_ID"})
AUTH_ERROR_FAMILIES = frozenset({"authenticationError", "authorizationError"})
"""``GoogleAdsError.errorCode`` keys of rejected credentials or missing account access."""
AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
"""``google.rpc.Status`` names of rejected credentials."""
_OPERATION_INDEX = re.compile(r"^events\[(\d+)\]")


def customer_id(destination: SyncDestination) -> str:
    """Return the destination's Google Ads customer id as digits (``123-456-7890`` ->
    ``1234567890``)."""
    return destination.account.replace("-", "").strip()


def click_id(keys: Mapping[str, str]) -> tuple[str, str] | None:
    """Return the name and value of the click id to send: gclid, else gbraid, else wbraid."""
    for name in CLICK_IDS:
        value = raw_key(keys, name)
        if value:
            return name, value
    return None


def _stale_click(row: SendRow, destination: SyncDestination, now: datetime) -> bool:
    """Return whether the row's click lies further back than the window."""
    if row.clicked_at is None:
        return False
    window = WINDOW if destination.window_days is None else timedelta(days=destination.window_days)
    return now - row.clicked_at > window


def _prepare(row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
    """Return ``row`` without its click ids and click time when the click is too old, so that
    it goes as an enhanced conversion for leads on its hashed email or phone."""
    if not _stale_click(row, destination, now) or not _user_identifiers(row, destination):
        return row
    keys = {name: value for name, value in row.keys.items() if name not in CLICK_IDS}
    return replace(row, keys=keys, clicked_at=None)


def _check(
    row: SendRow, destination: SyncDestination, now: datetime, platform: str
) -> Outcome | None:
    """Check what both Google adapters need: window, value, action id, time zone, match key.

    A click older than the window rules the row out only when the row has no hashed email
    or phone to send in its place.
    """
    too_old = window_outcome(row, destination, now, default=WINDOW, platform=platform)
    if too_old is not None:
        return too_old
    row = _prepare(row, destination, now)
    stale = window_outcome(
        row, destination, now, default=WINDOW, platform=platform, since=row.clicked_at
    )
    if stale is not None:
        return stale
    bad_value = value_outcome(row, destination)
    if bad_value is not None:
        return bad_value
    if not row.action.strip().isdigit():
        return Outcome(
            row.event_id,
            "rejected",
            code="invalid_action",
            message=f"the conversion action id {row.action!r} is not a number; map the kind "
            "to the id of a Google Ads conversion action of type UPLOAD_CLICKS",
        )
    zone(destination, row)
    if row.clicked_at is not None and row.occurred_at < row.clicked_at:
        return Outcome(
            row.event_id,
            "rejected",
            code="CONVERSION_PRECEDES_EVENT",
            message="the conversion happened before the click",
        )
    if click_id(row.keys) is None and not _user_identifiers(row, destination):
        return Outcome(
            row.event_id,
            "skipped",
            code="no_match_key",
            message="no gclid, gbraid, wbraid, email or phone to match on",
        )
    return None


def _user_identifiers(row: SendRow, destination: SyncDestination) -> list[tuple[str, str]]:
    """Return ("email" | "phone", SHA-256 hex) pairs of the row, Google-normalised."""
    found = []
    email = hashed_email(row.keys, google=True)
    if email:
        found.append(("email", email))
    phone = hashed_phone(row.keys, plus=True, region=destination.phone_region)
    if phone:
        found.append(("phone", phone))
    return found[:MAX_USER_IDENTIFIERS]


class GoogleClickAdapter:
    """Google Ads ``UploadClickConversions`` (see the module docstring)."""

    platform = "google"
    max_batch = MAX_CONVERSIONS
    window = WINDOW
    required_credentials = CLICK_CREDENTIALS

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        """Skip a row older than the window, a row whose click is older than the window and
        that has no hashed email or phone, or a row with nothing to match on; reject a
        conversion before its click, a value without a currency, or an action id that is not
        a number.

        Raises:
            ConfigError: the destination's ``time_zone`` is not an IANA name.
        """
        return _check(row, destination, now, "Google Ads")

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        """Return ``row`` without its click id when the click is older than the window and the
        row has a hashed email or phone to match on instead."""
        return _prepare(row, destination, now)

    def requests(
        self,
        rows: Sequence[SendRow],
        destination: SyncDestination,
        credentials: Mapping[str, str],
    ) -> list[Request]:
        """Return one request per :data:`MAX_CONVERSIONS` rows (or ``batch_size``).

        Raises:
            ConfigError: a credential is missing, or ``time_zone`` is not an IANA name.
        """
        if not rows:
            return []
        require_credentials(credentials, CLICK_CREDENTIALS, rows[0], "Google Ads")

        customer = customer_id(destination)
        version = destination.api_version or DEFAULT_VERSION
        if not version.startswith("v"):
            version = f"v{version}"
        url = (
            f"{base_url(destination, ADS_ENDPOINT)}/{version}/customers/{customer}"
            ":uploadClickConversions"
        )
        headers = {
            "Authorization": f"Bearer {credentials['access_token']}",
            "developer-token": credentials["developer_token"],
            "Content-Type": "application/json",
        }
        login = credentials.get("login_customer_id")
        if login:
            headers["login-customer-id"] = login.replace("-", "").strip()

        requests = []
        for batch in chunks(rows, batch_size(MAX_CONVERSIONS, destination)):
            body = {
                "conversions": [click_conversion(row, destination, customer) for row in batch],
                "partialFailure": True,
            }
            requests.append(Request("POST", url, headers, body, tuple(r.event_id for r in batch)))
        return requests

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        """Return one outcome per conversion of ``request``: the row's partial failure, if
        any, else ``sent``."""
        document = parse_json(body)
        if not 200 <= status_code < 300:
            return _error_outcomes(request, status_code, document, headers)
        if not isinstance(document, dict):
            return each(request, "retry", message="Google Ads' response is not JSON")

        by_index: dict[int, tuple[str, str]] = {}
        for index, code, message in _failures(document.get("partialFailureError")):
            if index is None:
                for position in range(len(request.event_ids)):
                    by_index.setdefault(position, (code, message))
            else:
                by_index.setdefault(index, (code, message))

        outcomes = []
        for position, event_id in enumerate(request.event_ids):
            if position not in by_index:
                outcomes.append(Outcome(event_id, "sent"))
                continue
            code, message = by_index[position]
            outcomes.append(_row_outcome(event_id, code, message))
        return outcomes


def click_conversion(row: SendRow, destination: SyncDestination, customer: str) -> dict[str, Any]:
    """Return the ``ClickConversion`` of ``row`` in the API's JSON field names."""
    local = row.occurred_at.astimezone(zone(destination, row))
    conversion: dict[str, Any] = {
        "conversionAction": f"customers/{customer}/conversionActions/{row.action.strip()}",
        "conversionDateTime": local.isoformat(sep=" ", timespec="seconds"),
        "orderId": row.event_id,
    }
    clicked = click_id(row.keys)
    if clicked is not None:
        name, value = clicked
        conversion[name] = value
    else:
        conversion["userIdentifiers"] = [
            {"hashedEmail" if kind == "email" else "hashedPhoneNumber": digest}
            for kind, digest in _user_identifiers(row, destination)
        ]
    if row.value is not None:
        conversion["conversionValue"] = float(row.value)
        currency = currency_of(row, destination)
        if currency:
            conversion["currencyCode"] = currency
    return conversion


def _row_outcome(event_id: str, code: str, message: str) -> Outcome:
    """Map one Google Ads error code of one row to its outcome."""
    if code.endswith("_ALREADY_EXISTS") or code in ALREADY_THERE:
        return Outcome(event_id, "sent", code=code, message=clean_message(message))
    if code.startswith("TOO_RECENT_"):
        return Outcome(
            event_id,
            "retry",
            code=code,
            message=clean_message(message),
            retry_after=TOO_RECENT_DELAY,
        )
    return Outcome(event_id, "rejected", code=code, message=clean_message(message))


def _failures(status: object) -> list[tuple[int | None, str, str]]:
    """Return (operation index or None, error code, message) of each error in a
    ``google.rpc.Status`` whose details hold ``GoogleAdsFailure`` objects."""
    if not isinstance(status, dict):
        return []
    found: list[tuple[int | None, str, str]] = []
    for detail in status.get("details") or []:
        if not isinstance(detail, dict):
            continue
        for error in detail.get("errors") or []:
            if not isinstance(error, dict):
                continue
            found.append(
                (_operation_index(error), _error_code(error), str(error.get("message", "")))
            )
    if not found and (status.get("message") or status.get("code")):
        found.append(
            (None, str(status.get("status") or status.get("code")), str(status.get("message", "")))
        )
    return found


def _is_auth_error(error: object) -> bool:
    """Return whether a ``google.rpc.Status`` reports rejected credentials."""
    if not isinstance(error, dict):
        return False
    if error.get("status") in AUTH_STATUSES:
        return True
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        for item in detail.get("errors") or []:
            code = item.get("errorCode") if isinstance(item, dict) else None
            if isinstance(code, dict) and AUTH_ERROR_FAMILIES.intersection(code):
                return True
    return False


def _error_code(error: Mapping[str, Any]) -> str:
    """Return the enum value of a ``GoogleAdsError``'s ``errorCode`` (a one-key object)."""
    code = error.get("errorCode")
    if isinstance(code, dict) and code:
        return str(next(iter(code.values())))
    return "UNKNOWN"


def _operation_index(error: Mapping[str, Any]) -> int | None:
    """Return the index of the operation (``conversions[i]``) that an error is about."""
    location = error.get("location")
    if not isinstance(location, dict):
        return None
    for element in location.get("fieldPathElements") or []:
        if isinstance(element, dict) and element.get("fieldName") == "conversions":
            index = element.get("index")
            return int(index) if isinstance(index, int | str) and str(index).isdigit() else None
    return None


def _error_outcomes(
    request: Request, status_code: int, document: object, headers: Mapping[str, str]
) -> list[Outcome]:
    """Return the outcomes of a Google error response (a ``google.rpc.Status`` under
    ``error``): the HTTP status decides, the first detailed error names code and message."""
    error = document.get("error") if isinstance(document, dict) else None
    failures = _failures(error)
    code = failures[0][1] if failures else None
    message = failures[0][2] if failures else None
    if isinstance(error, dict) and not message:
        message = str(error.get("message") or "")
    if _is_auth_error(error):
        return each(request, "auth_error", code=code or str(status_code), message=message)
    failed = status_outcomes(request, status_code, headers, message=message or None, code=code)
    assert failed is not None  # only called for statuses outside 2xx
    return failed


class GoogleDataManagerAdapter:
    """Google Data Manager API ``events:ingest`` (see the module docstring)."""

    platform = "google_data_manager"
    max_batch = MAX_CONVERSIONS
    window = WINDOW
    required_credentials = DATA_MANAGER_CREDENTIALS

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        """Apply the same rules as :meth:`GoogleClickAdapter.check`.

        Raises:
            ConfigError: the destination's ``time_zone`` is not an IANA name.
        """
        return _check(row, destination, now, "Google Ads")

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        """Return ``row`` without its click id when the click is older than the window and the
        row has a hashed email or phone to match on instead."""
        return _prepare(row, destination, now)

    def requests(
        self,
        rows: Sequence[SendRow],
        destination: SyncDestination,
        credentials: Mapping[str, str],
    ) -> list[Request]:
        """Return the requests that send ``rows``: one destination (conversion action) per
        request, in the order the actions first appear, each of at most
        :data:`MAX_CONVERSIONS` events (or ``batch_size``).

        Raises:
            ConfigError: ``access_token`` is missing, or ``time_zone`` is not an IANA name.
        """
        if not rows:
            return []
        require_credentials(credentials, DATA_MANAGER_CREDENTIALS, rows[0], "Data Manager")

        customer = customer_id(destination)
        version = destination.api_version or DATA_MANAGER_VERSION
        url = f"{base_url(destination, DATA_MANAGER_ENDPOINT)}/{version}/events:ingest"
        headers = {
            "Authorization": f"Bearer {credentials['access_token']}",
            "Content-Type": "application/json",
        }
        login = (credentials.get("login_customer_id") or "").replace("-", "").strip()

        by_action: dict[str, list[SendRow]] = {}
        for row in rows:
            by_action.setdefault(row.action.strip(), []).append(row)

        requests = []
        for action, action_rows in by_action.items():
            target: dict[str, Any] = {
                "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": customer},
                "productDestinationId": action,
            }
            if login:
                target["loginAccount"] = {"accountType": "GOOGLE_ADS", "accountId": login}
            for batch in chunks(action_rows, batch_size(MAX_CONVERSIONS, destination)):
                body = {
                    "destinations": [target],
                    "encoding": "HEX",
                    "events": [self.event(row, destination) for row in batch],
                }
                event_ids = tuple(row.event_id for row in batch)
                requests.append(Request("POST", url, headers, body, event_ids))
        return requests

    def event(self, row: SendRow, destination: SyncDestination) -> dict[str, Any]:
        """Return the Data Manager ``Event`` of ``row``."""
        local = row.occurred_at.astimezone(zone(destination, row))
        event: dict[str, Any] = {
            "transactionId": row.event_id,
            "eventTimestamp": local.isoformat(timespec="seconds"),
            "eventSource": destination.event_source,
        }
        identifiers = [
            {"emailAddress" if kind == "email" else "phoneNumber": digest}
            for kind, digest in _user_identifiers(row, destination)
        ]
        if identifiers:
            event["userData"] = {"userIdentifiers": identifiers}
        clicked = click_id(row.keys)
        if clicked is not None:
            event["adIdentifiers"] = {clicked[0]: clicked[1]}
        if row.value is not None:
            event["conversionValue"] = float(row.value)
            currency = currency_of(row, destination)
            if currency:
                event["currency"] = currency
        return event

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        """Return one outcome per event of ``request``.

        A 2xx response means every event was queued (``sent``). A 400 whose field violations
        name events (``events[i]...``) rejects those events and marks the rest ``retry``,
        because Data Manager ingested none of them.
        """
        document = parse_json(body)
        if 200 <= status_code < 300:
            request_id = document.get("requestId") if isinstance(document, dict) else None
            note = f"Data Manager request {request_id}" if request_id else None
            return each(request, "sent", message=note)

        error = document.get("error") if isinstance(document, dict) else None
        violations = _field_violations(error)
        if status_code == 400 and violations:
            outcomes = []
            for position, event_id in enumerate(request.event_ids):
                if position in violations:
                    field, description = violations[position]
                    outcomes.append(
                        Outcome(
                            event_id,
                            "rejected",
                            code=field,
                            message=clean_message(description),
                        )
                    )
                else:
                    outcomes.append(
                        Outcome(
                            event_id,
                            "retry",
                            code="NOT_INGESTED",
                            message="another event of the request was invalid",
                        )
                    )
            return outcomes

        message = str(error.get("message") or "") if isinstance(error, dict) else ""
        code = str(error.get("status") or "") if isinstance(error, dict) else ""
        if _is_auth_error(error):
            return each(
                request, "auth_error", code=code or str(status_code), message=message or None
            )
        failed = status_outcomes(
            request, status_code, headers, message=message or None, code=code or None
        )
        assert failed is not None  # 2xx returned above
        return failed


def _field_violations(error: object) -> dict[int, tuple[str, str]]:
    """Return event index -> (field path, description) of a ``google.rpc.BadRequest``."""
    found: dict[int, tuple[str, str]] = {}
    if not isinstance(error, dict):
        return found
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        for violation in detail.get("fieldViolations") or []:
            if not isinstance(violation, dict):
                continue
            field = str(violation.get("field", ""))
            match = _OPERATION_INDEX.match(field)
            if match:
                found.setdefault(
                    int(match.group(1)), (field, str(violation.get("description", "")))
                )
    return found
