"""The Microsoft Advertising offline conversion adapter, sent through httpx to the local
receiver."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from journeymap.activate.adapters import MicrosoftAdapter, redact
from journeymap.activate.base import Outcome, SendRow
from journeymap.common import identifiers
from tests.activate.receiver import CREDENTIALS, Fault, Receiver, send
from tests.activate.samples import (
    BERLIN_E164,
    BERLIN_PHONE,
    EMAIL_PLAIN,
    GMAIL_PLAIN,
    GMAIL_WITH_DOTS,
    MIXED_CASE_EMAIL,
    NOW,
    PHONE_E164,
    PREHASHED,
    US_PHONE,
    destination,
    row,
)

ADAPTER = MicrosoftAdapter()
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
SERVICE = "{https://bingads.microsoft.com/CampaignManagement/v13}"
MSCLKID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture
def microsoft(receiver: Receiver) -> Receiver:
    receiver.now = NOW
    return receiver


def sent_conversions(receiver: Receiver, rows: list[SendRow], **fields: Any) -> list[dict]:
    """Send ``rows`` and return the conversions of the last request as element -> text."""
    target = destination("microsoft", receiver, **fields)
    for request in ADAPTER.requests(rows, target, CREDENTIALS):
        outcomes = send(ADAPTER, request)
        assert [outcome.status for outcome in outcomes] == ["sent"] * len(request.event_ids)
    assert receiver.problems() == []
    root = ET.fromstring(receiver.requests[-1].raw)
    holder = root.find(
        f"{SOAP}Body/{SERVICE}ApplyOfflineConversionsRequest/{SERVICE}OfflineConversions"
    )
    assert holder is not None
    return [
        {child.tag.removeprefix(SERVICE): child.text for child in conversion}
        for conversion in holder
    ]


def test_microsoft_envelope_fields(microsoft: Receiver) -> None:
    sample = row("microsoft")
    [request] = ADAPTER.requests([sample], destination("microsoft", microsoft), CREDENTIALS)

    [outcome] = send(ADAPTER, request)

    received = microsoft.requests[-1]
    assert outcome.status == "sent"
    assert received.problems == []
    assert request.json is None
    assert received.path == "/Api/Advertiser/CampaignManagement/v13/CampaignManagementService.svc"
    assert received.headers["soapaction"] == "ApplyOfflineConversions"
    assert received.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(received.raw)
    soap_header = root.find(f"{SOAP}Header")
    assert soap_header is not None
    header = {child.tag.removeprefix(SERVICE): child.text for child in soap_header}
    assert header == {
        "Action": "ApplyOfflineConversions",
        "AuthenticationToken": CREDENTIALS["access_token"],
        "CustomerAccountId": "1500123",
        "CustomerId": CREDENTIALS["customer_id"],
        "DeveloperToken": CREDENTIALS["developer_token"],
    }
    [conversion] = sent_conversions(microsoft, [sample])
    assert list(conversion.items()) == [
        ("ConversionCurrencyCode", "USD"),
        ("ConversionName", "Closed won"),
        ("ConversionTime", "2026-11-20T10:00:00Z"),
        ("ConversionValue", "1250.0"),
        ("MicrosoftClickId", MSCLKID),
    ]


def test_microsoft_conversion_time_utc_from_summer_time(microsoft: Receiver) -> None:
    local = datetime(2026, 7, 1, 14, 30, 15, 999999, tzinfo=ZoneInfo("Europe/Berlin"))
    microsoft.now = local + timedelta(days=1)

    [conversion] = sent_conversions(microsoft, [row("microsoft", occurred_at=local)])

    assert conversion["ConversionTime"] == "2026-07-01T12:30:15Z"


def test_microsoft_email_and_phone_hashed(microsoft: Receiver) -> None:
    rows = [
        row(
            "microsoft",
            "evt-1",
            keys={"msclkid": MSCLKID, "email": MIXED_CASE_EMAIL, "phone": US_PHONE},
        ),
        row("microsoft", "evt-2", keys={"msclkid": MSCLKID + "2", "email": GMAIL_WITH_DOTS}),
    ]

    conversions = sent_conversions(microsoft, rows)

    assert conversions[0]["HashedEmailAddress"] == EMAIL_PLAIN
    assert conversions[0]["HashedPhoneNumber"] == PHONE_E164
    assert conversions[1]["HashedEmailAddress"] == GMAIL_PLAIN


def test_microsoft_phone_region_setting(microsoft: Receiver) -> None:
    sample = row("microsoft", keys={"msclkid": MSCLKID, "phone": BERLIN_PHONE})

    [conversion] = sent_conversions(microsoft, [sample], phone_region="DE")

    assert conversion["HashedPhoneNumber"] == BERLIN_E164


def test_microsoft_prehashed_keys_pass_through(microsoft: Receiver) -> None:
    keys = {"msclkid": MSCLKID, identifiers.EMAIL: PREHASHED, identifiers.PHONE_E164: PREHASHED}

    [conversion] = sent_conversions(microsoft, [row("microsoft", keys=keys)])

    assert conversion["HashedEmailAddress"] == PREHASHED
    assert conversion["HashedPhoneNumber"] == PREHASHED


def test_microsoft_text_is_escaped(microsoft: Receiver) -> None:
    target = destination("microsoft", microsoft, actions={"closed_won": "Won <deal> & co"})
    sample = replace(row("microsoft"), action="Won <deal> & co")
    [request] = ADAPTER.requests([sample], target, CREDENTIALS)

    send(ADAPTER, request)

    assert microsoft.problems() == []
    assert microsoft.events("microsoft")[0]["ConversionName"] == "Won <deal> & co"


def test_microsoft_check_skips_row_without_msclkid() -> None:
    sample = row("microsoft", keys={"email": MIXED_CASE_EMAIL, "gclid": "G1"})

    outcome = ADAPTER.check(sample, destination("microsoft"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "no_click_id"


def test_microsoft_check_skips_older_than_90_days() -> None:
    sample = row("microsoft", occurred_at=NOW - timedelta(days=91))

    outcome = ADAPTER.check(sample, destination("microsoft"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "outside_window"


def test_microsoft_check_rejects_conversion_before_click() -> None:
    sample = row("microsoft", clicked_at=NOW)

    outcome = ADAPTER.check(sample, destination("microsoft"), NOW)

    assert outcome is not None
    assert outcome.status == "rejected"


def test_microsoft_redact_masks_soap_credentials() -> None:
    [request] = ADAPTER.requests([row("microsoft")], destination("microsoft"), CREDENTIALS)

    content = redact(request).content

    assert content is not None
    assert CREDENTIALS["access_token"].encode() not in content
    assert CREDENTIALS["developer_token"].encode() not in content
    assert b"<AuthenticationToken>***</AuthenticationToken>" in content
    assert MSCLKID.encode() in content


def test_microsoft_batches_at_limit(microsoft: Receiver) -> None:
    rows = [
        row("microsoft", f"evt-{index}", keys={"msclkid": f"{MSCLKID}-{index}"})
        for index in range(ADAPTER.max_batch + 1)
    ]
    requests = ADAPTER.requests(rows, destination("microsoft", microsoft), CREDENTIALS)

    for request in requests:
        assert {outcome.status for outcome in send(ADAPTER, request)} == {"sent"}

    assert [len(request.event_ids) for request in requests] == [1000, 1]
    assert microsoft.problems() == []
    assert len(microsoft.events("microsoft")) == 1001


def conversion_outcomes(microsoft: Receiver, fault: Fault, count: int = 3) -> list[Outcome]:
    microsoft.fail("microsoft", fault)
    rows = [
        row("microsoft", f"evt-{index}", keys={"msclkid": f"{MSCLKID}-{index}"})
        for index in range(count)
    ]
    [request] = ADAPTER.requests(rows, destination("microsoft", microsoft), CREDENTIALS)
    return send(ADAPTER, request)


def test_microsoft_partial_errors_by_index(microsoft: Receiver) -> None:
    outcomes = conversion_outcomes(
        microsoft, Fault(rows={1: "OfflineConversionMicrosoftClickIdInvalid"})
    )

    assert [outcome.status for outcome in outcomes] == ["sent", "rejected", "sent"]
    assert outcomes[1].code == "OfflineConversionMicrosoftClickIdInvalid"
    assert outcomes[1].message == "conversion 1: OfflineConversionMicrosoftClickIdInvalid"
    assert len(microsoft.events("microsoft")) == 2


@pytest.mark.parametrize(
    ("code", "expected"),
    [("0", "retry"), ("117", "retry"), ("105", "auth_error")],
    ids=["internal-error", "call-rate", "invalid-credentials"],
)
def test_microsoft_soap_fault(microsoft: Receiver, code: str, expected: str) -> None:
    outcomes = conversion_outcomes(microsoft, Fault(status=500, code=code))

    assert {outcome.status for outcome in outcomes} == {expected}
    assert outcomes[0].code in {code, "InvalidCredentials"}


def test_microsoft_invalid_credentials_is_auth_error(microsoft: Receiver) -> None:
    microsoft.credentials["developer_token"] = "another"

    outcomes = conversion_outcomes(microsoft, Fault())

    assert {outcome.status for outcome in outcomes} == {"auth_error"}
    assert outcomes[0].code == "InvalidCredentials"
    assert outcomes[0].message == "Authentication failed."


def test_microsoft_429_retries_after_delay(microsoft: Receiver) -> None:
    outcomes = conversion_outcomes(microsoft, Fault(status=429, retry_after="20"))

    assert {outcome.status for outcome in outcomes} == {"retry"}
    assert outcomes[0].retry_after == 20.0


def test_microsoft_dedup_on_click_time_and_goal(microsoft: Receiver) -> None:
    target = destination("microsoft", microsoft)
    first = row("microsoft", "evt-1")
    later = row("microsoft", "evt-3", occurred_at=first.occurred_at + timedelta(minutes=5))
    for sample in (first, first, later):
        [request] = ADAPTER.requests([sample], target, CREDENTIALS)
        send(ADAPTER, request)

    assert microsoft.received("microsoft") == 3
    assert len(microsoft.events("microsoft")) == 2


def test_microsoft_same_click_and_second_is_one_conversion(microsoft: Receiver) -> None:
    # Microsoft keeps the first conversion of a goal per msclkid and conversion time, so two
    # orders on one click within the same second count once, whatever their event ids.
    target = destination("microsoft", microsoft)
    rows = [row("microsoft", "evt-1"), row("microsoft", "evt-2", value=99.0)]
    [request] = ADAPTER.requests(rows, target, CREDENTIALS)

    outcomes = send(ADAPTER, request)

    assert [outcome.status for outcome in outcomes] == ["sent", "sent"]
    assert len(microsoft.events("microsoft")) == 1


def test_microsoft_check_skips_stale_click_despite_email() -> None:
    sample = row(
        "microsoft",
        clicked_at=NOW - timedelta(days=100),
        keys={"msclkid": MSCLKID, "email": MIXED_CASE_EMAIL},
    )

    outcome = ADAPTER.check(sample, destination("microsoft"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "outside_window"
    assert outcome.message is not None
    assert "click is 100.0 days old" in outcome.message
