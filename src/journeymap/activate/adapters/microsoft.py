"""Microsoft Advertising offline conversions: the SOAP operation ``ApplyOfflineConversions``
of the Campaign Management service (API version 13).

Request: ``POST {endpoint}/Api/Advertiser/CampaignManagement/v13/CampaignManagementService.svc``
(``endpoint`` defaults to ``https://campaign.api.bingads.microsoft.com``) with
``Content-Type: text/xml; charset=utf-8``, ``SOAPAction: ApplyOfflineConversions`` and a SOAP
1.1 envelope in :attr:`Request.content` (``Request.json`` is None). The SOAP header contains
``AuthenticationToken``, ``CustomerAccountId`` (the destination's ``account``), ``CustomerId``
and ``DeveloperToken``. The body contains at most :data:`MAX_CONVERSIONS`
``OfflineConversion`` elements.

Credentials: ``access_token`` (the OAuth access token, sent as ``AuthenticationToken``),
``developer_token`` and ``customer_id`` (the customer that owns the account).

Each ``OfflineConversion`` contains, in the order of the service's schema (which WCF enforces):
``ConversionCurrencyCode``, ``ConversionName`` (the row's action: the name of an offline
conversion goal), ``ConversionTime`` (UTC, ``yyyy-mm-ddThh:mm:ssZ``), ``ConversionValue``,
``HashedEmailAddress`` (SHA-256 of the trimmed, lowercased email), ``HashedPhoneNumber``
(SHA-256 of the E.164 number) and ``MicrosoftClickId`` (the ``msclkid``; a row without one is
skipped, since the operation requires it).

Window: 90 days from the conversion and 90 days from the click; the conversion must also
come after the click. The ``msclkid`` is the only key the operation matches on, so a row
whose click is older than the window is skipped even when it has a hashed email or phone.
NOTE: the 90 days from the click follow the longest conversion window that Microsoft
Advertising's goal settings offer; its pages on offline conversions were not checked for an
upload limit of their own.

Responses: ``PartialErrors`` lists the failed conversions by ``Index``: those are
``rejected`` with the error's message and the rest ``sent``; an empty list means all were
applied. A SOAP fault (HTTP 500) carries ``OperationErrors`` or ``BatchErrors``: internal
errors and the call rate limit are ``retry``; authentication errors (:data:`AUTH_CODES`,
such as 105 ``InvalidCredentials``) are ``auth_error``; batch errors reject the conversions
they name and leave the rest to ``retry`` (the service applied none); other operation errors
reject every row. A 500 without a readable fault is ``retry``.

Responses are parsed with :mod:`xml.etree.ElementTree`; its expat (2.4.1 or later in the
Python versions journeymap supports) limits entity expansion.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from journeymap.activate.adapters.common import (
    base_url,
    batch_size,
    chunks,
    clean_message,
    currency_of,
    each,
    hashed_email,
    hashed_phone,
    raw_key,
    require_credentials,
    status_outcomes,
    value_outcome,
    window_outcome,
)
from journeymap.activate.base import Outcome, Request, SendRow
from journeymap.common.config import SyncDestination

DEFAULT_ENDPOINT = "https://campaign.api.bingads.microsoft.com"
DEFAULT_VERSION = "v13"
SERVICE_PATH = "/Api/Advertiser/CampaignManagement/{version}/CampaignManagementService.svc"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE_NS = "https://bingads.microsoft.com/CampaignManagement/{version}"
MAX_CONVERSIONS = 1000
WINDOW = timedelta(days=90)
CREDENTIALS = ("access_token", "developer_token", "customer_id")
TRANSIENT_CODES = frozenset({"0", "117"})
"""Microsoft Advertising error codes worth a retry: 0 is an internal error and 117 the call
rate limit (``CallRateExceeded``)."""
AUTH_CODES = frozenset({"105", "106", "109"})
"""Microsoft Advertising error codes of rejected credentials: 105 ``InvalidCredentials``, 106
``UserIsNotAuthorized`` and 109 (an expired password or token). Error names that contain
``Credentials``, ``Authentication``, ``NotAuthorized`` or ``DeveloperToken`` count too.
NOTE: 106 and 109 are recalled from the service's error code list, not checked against it
or seen in a response."""
_AUTH_NAME_PARTS = ("Credentials", "Authentication", "NotAuthorized", "DeveloperToken")


class MicrosoftAdapter:
    """Microsoft Advertising ``ApplyOfflineConversions`` (see the module docstring)."""

    platform = "microsoft"
    max_batch = MAX_CONVERSIONS
    window = WINDOW
    required_credentials = CREDENTIALS

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        """Skip a row or its click older than the window, or a row without an ``msclkid``;
        reject a conversion before its click or a value without a currency."""
        too_old = window_outcome(
            row, destination, now, default=self.window, platform="Microsoft Advertising"
        )
        if too_old is not None:
            return too_old
        stale_click = window_outcome(
            row,
            destination,
            now,
            default=self.window,
            platform="Microsoft Advertising",
            since=row.clicked_at,
        )
        if stale_click is not None:
            return stale_click
        bad_value = value_outcome(row, destination)
        if bad_value is not None:
            return bad_value
        if raw_key(row.keys, "msclkid") is None:
            return Outcome(
                row.event_id,
                "skipped",
                code="no_click_id",
                message="no msclkid: Microsoft Advertising takes offline conversions only for "
                "a click",
            )
        if row.clicked_at is not None and row.occurred_at < row.clicked_at:
            return Outcome(
                row.event_id,
                "rejected",
                code="conversion_before_click",
                message="the conversion happened before the click",
            )
        return None

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        """Return ``row`` unchanged: without its ``msclkid`` nothing could match it."""
        return row

    def requests(
        self,
        rows: Sequence[SendRow],
        destination: SyncDestination,
        credentials: Mapping[str, str],
    ) -> list[Request]:
        """Return one request per :data:`MAX_CONVERSIONS` rows (or ``batch_size``).

        Raises:
            ConfigError: a credential is missing.
        """
        if not rows:
            return []
        require_credentials(credentials, CREDENTIALS, rows[0], "Microsoft Advertising")

        version = destination.api_version or DEFAULT_VERSION
        if not version.startswith("v"):
            version = f"v{version}"
        url = base_url(destination, DEFAULT_ENDPOINT) + SERVICE_PATH.format(version=version)
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": "ApplyOfflineConversions",
        }
        requests = []
        for batch in chunks(rows, batch_size(MAX_CONVERSIONS, destination)):
            content = envelope(batch, destination, credentials, version)
            event_ids = tuple(row.event_id for row in batch)
            requests.append(Request("POST", url, headers, None, event_ids, content=content))
        return requests

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        """Return one outcome per conversion of ``request`` from the SOAP response."""
        root = _parse(body)

        if 200 <= status_code < 300:
            if root is None or _first(root, "ApplyOfflineConversionsResponse") is None:
                return each(request, "retry", message="Microsoft's response is not a SOAP envelope")
            failed = _batch_errors(root)
            return [
                _rejected(event_id, failed[position])
                if position in failed
                else Outcome(event_id, "sent")
                for position, event_id in enumerate(request.event_ids)
            ]

        fault = _first(root, "Fault") if root is not None else None
        if fault is None:
            failed_status = status_outcomes(request, status_code, headers, message=None)
            assert failed_status is not None  # statuses outside 2xx
            return failed_status

        operation_errors = [_error_fields(error) for error in _all(fault, "OperationError")]
        batch_errors = _batch_errors(fault)
        faultstring = _text(fault, "faultstring") or f"HTTP {status_code}"

        auth = [error for error in operation_errors if _is_auth_error(error)]
        if auth:
            code, error_code, message = auth[0]
            text = message or faultstring
            return each(request, "auth_error", code=error_code or code, message=text)

        transient = [error for error in operation_errors if error[0] in TRANSIENT_CODES]
        if transient or not (operation_errors or batch_errors):
            code, _, message = transient[0] if transient else (str(status_code), "", faultstring)
            return each(request, "retry", code=code, message=message or faultstring)

        if batch_errors:
            return [
                _rejected(event_id, batch_errors[position])
                if position in batch_errors
                else Outcome(
                    event_id,
                    "retry",
                    code="not_applied",
                    message="another conversion of the request was invalid",
                )
                for position, event_id in enumerate(request.event_ids)
            ]

        code, error_code, message = operation_errors[0]
        return each(request, "rejected", code=error_code or code, message=message or faultstring)


def envelope(
    rows: Sequence[SendRow],
    destination: SyncDestination,
    credentials: Mapping[str, str],
    version: str = DEFAULT_VERSION,
) -> bytes:
    """Return the SOAP 1.1 envelope of ``ApplyOfflineConversions`` for ``rows``, UTF-8."""
    service = SERVICE_NS.format(version=version)
    root = ET.Element("s:Envelope", {"xmlns:s": SOAP_NS})

    header = ET.SubElement(root, "s:Header", {"xmlns": service})
    ET.SubElement(header, "Action", {"mustUnderstand": "1"}).text = "ApplyOfflineConversions"
    ET.SubElement(header, "AuthenticationToken").text = credentials["access_token"]
    ET.SubElement(header, "CustomerAccountId").text = destination.account.strip()
    ET.SubElement(header, "CustomerId").text = credentials["customer_id"].strip()
    ET.SubElement(header, "DeveloperToken").text = credentials["developer_token"]

    body = ET.SubElement(root, "s:Body")
    operation = ET.SubElement(body, "ApplyOfflineConversionsRequest", {"xmlns": service})
    conversions = ET.SubElement(operation, "OfflineConversions")
    for row in rows:
        conversion = ET.SubElement(conversions, "OfflineConversion")
        for name, value in offline_conversion(row, destination):
            ET.SubElement(conversion, name).text = value

    content: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return content


def offline_conversion(row: SendRow, destination: SyncDestination) -> list[tuple[str, str]]:
    """Return the (element, text) pairs of one ``OfflineConversion``, in schema order."""
    fields: list[tuple[str, str]] = []
    currency = currency_of(row, destination)
    if row.value is not None and currency:
        fields.append(("ConversionCurrencyCode", currency))
    fields.append(("ConversionName", row.action))
    utc = row.occurred_at.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    fields.append(("ConversionTime", utc.isoformat() + "Z"))
    if row.value is not None:
        fields.append(("ConversionValue", repr(float(row.value))))
    email = hashed_email(row.keys)
    if email:
        fields.append(("HashedEmailAddress", email))
    phone = hashed_phone(row.keys, plus=True, region=destination.phone_region)
    if phone:
        fields.append(("HashedPhoneNumber", phone))
    fields.append(("MicrosoftClickId", raw_key(row.keys, "msclkid") or ""))
    return fields


def _parse(body: bytes) -> ET.Element | None:
    if not body:
        return None
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _first(element: ET.Element, name: str) -> ET.Element | None:
    """Return the first descendant (or ``element`` itself) named ``name`` in any namespace."""
    for found in element.iter():
        if _local(found.tag) == name:
            return found
    return None


def _all(element: ET.Element, name: str) -> list[ET.Element]:
    return [found for found in element.iter() if _local(found.tag) == name]


def _text(element: ET.Element, name: str) -> str:
    """Return the text of the first child of ``element`` named ``name``, or ``""``."""
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _error_fields(error: ET.Element) -> tuple[str, str, str]:
    """Return (Code, ErrorCode, Message) of a ``BatchError`` or ``OperationError``."""
    return _text(error, "Code"), _text(error, "ErrorCode"), _text(error, "Message")


def _batch_errors(element: ET.Element) -> dict[int, tuple[str, str, str]]:
    """Return index -> (Code, ErrorCode, Message) of the ``BatchError`` elements."""
    found: dict[int, tuple[str, str, str]] = {}
    for error in _all(element, "BatchError"):
        index = _text(error, "Index")
        if index.isdigit():
            found.setdefault(int(index), _error_fields(error))
    return found


def _is_auth_error(error: tuple[str, str, str]) -> bool:
    """Return whether an operation error (Code, ErrorCode, Message) rejects the credentials."""
    code, error_code, _ = error
    return code in AUTH_CODES or any(part in error_code for part in _AUTH_NAME_PARTS)


def _rejected(event_id: str, error: tuple[str, str, str]) -> Outcome:
    code, error_code, message = error
    return Outcome(
        event_id,
        "rejected",
        code=error_code or code or None,
        message=clean_message(message) if message else None,
    )
