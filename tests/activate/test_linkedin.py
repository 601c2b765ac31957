"""The LinkedIn Conversions API adapter, sent through httpx to the local receiver."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from journeymap.activate.adapters import LinkedInAdapter
from journeymap.activate.base import Outcome, SendRow
from journeymap.common import identifiers
from tests.activate.receiver import CREDENTIALS, Fault, Receiver, send
from tests.activate.samples import (
    EMAIL_PLAIN,
    GMAIL_PLAIN,
    GMAIL_WITH_DOTS,
    MIXED_CASE_EMAIL,
    NOW,
    PREHASHED,
    US_PHONE,
    destination,
    row,
)

ADAPTER = LinkedInAdapter()
LI_FAT_ID = "6f1e8a52-3b1c-4d7e-9a0f-1c2d3e4f5a6b"


@pytest.fixture
def linkedin(receiver: Receiver) -> Receiver:
    receiver.now = NOW
    return receiver


def sent_elements(receiver: Receiver, rows: list[SendRow], **fields: Any) -> list[dict]:
    """Send ``rows`` and return the elements of the last request."""
    target = destination("linkedin", receiver, **fields)
    for request in ADAPTER.requests(rows, target, CREDENTIALS):
        outcomes = send(ADAPTER, request)
        assert [outcome.status for outcome in outcomes] == ["sent"] * len(request.event_ids)
    assert receiver.problems() == []
    return receiver.requests[-1].body["elements"]


def test_linkedin_request_fields_and_units(linkedin: Receiver) -> None:
    sample = row("linkedin", value=1234.5)

    [element] = sent_elements(linkedin, [sample])

    received = linkedin.requests[-1]
    assert received.path == "/rest/conversionEvents"
    assert received.headers["linkedin-version"] == "202610"
    assert received.headers["x-restli-protocol-version"] == "2.0.0"
    assert received.headers["x-restli-method"] == "BATCH_CREATE"
    assert element == {
        "conversion": "urn:lla:llaPartnerConversion:123456",
        "conversionHappenedAt": int(sample.occurred_at.timestamp()) * 1000,
        "eventId": "evt-1",
        "user": {
            "userIds": [{"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": LI_FAT_ID}]
        },
        "conversionValue": {"currencyCode": "USD", "amount": "1234.50"},
    }


def test_linkedin_version_setting(linkedin: Receiver) -> None:
    sent_elements(linkedin, [row("linkedin")], api_version="202701")

    assert linkedin.requests[-1].headers["linkedin-version"] == "202701"


@pytest.mark.parametrize(
    ("value", "amount"), [(0.125, "0.13"), (99.994, "99.99"), (1e6, "1000000.00"), (0, "0.00")]
)
def test_linkedin_amount_has_two_decimals(linkedin: Receiver, value: float, amount: str) -> None:
    [element] = sent_elements(linkedin, [row("linkedin", value=value)])

    assert element["conversionValue"]["amount"] == amount


def test_linkedin_email_trimmed_and_lowercased(linkedin: Receiver) -> None:
    rows = [
        row("linkedin", "evt-1", keys={"email": MIXED_CASE_EMAIL}),
        row("linkedin", "evt-2", keys={"email": GMAIL_WITH_DOTS, "li_fat_id": LI_FAT_ID}),
    ]

    elements = sent_elements(linkedin, rows)

    assert elements[0]["user"]["userIds"] == [{"idType": "SHA256_EMAIL", "idValue": EMAIL_PLAIN}]
    assert elements[1]["user"]["userIds"] == [
        {"idType": "SHA256_EMAIL", "idValue": GMAIL_PLAIN},
        {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": LI_FAT_ID},
    ]


def test_linkedin_prehashed_email_passes_through(linkedin: Receiver) -> None:
    [element] = sent_elements(linkedin, [row("linkedin", keys={identifiers.EMAIL: PREHASHED})])

    assert element["user"]["userIds"] == [{"idType": "SHA256_EMAIL", "idValue": PREHASHED}]


def test_linkedin_time_in_epoch_millis_from_summer_time(linkedin: Receiver) -> None:
    local = datetime(2026, 7, 1, 14, 30, 15, 250000, tzinfo=ZoneInfo("Europe/Berlin"))
    linkedin.now = local + timedelta(days=1)

    [element] = sent_elements(linkedin, [row("linkedin", occurred_at=local)])

    # 2026-07-01T12:30:15.250Z: days since 1970 x 86,400,000 plus the time of day.
    days = (datetime(2026, 7, 1) - datetime(1970, 1, 1)).days
    expected = days * 86_400_000 + (12 * 3600 + 30 * 60 + 15) * 1000 + 250
    assert element["conversionHappenedAt"] == expected


def test_linkedin_check_skips_row_without_ids() -> None:
    sample = row("linkedin", keys={"phone": US_PHONE, "gclid": "G1"})

    outcome = ADAPTER.check(sample, destination("linkedin"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "no_match_key"
    assert outcome.message == "no email or li_fat_id to match on"


def test_linkedin_check_skips_older_than_90_days() -> None:
    sample = row("linkedin", occurred_at=NOW - timedelta(days=90, hours=1))

    outcome = ADAPTER.check(sample, destination("linkedin"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.message is not None
    assert "up to 90 days" in outcome.message
    assert ADAPTER.check(row("linkedin"), destination("linkedin"), NOW) is None


def test_linkedin_check_rejects_rule_that_is_no_id() -> None:
    target = destination("linkedin", actions={"closed_won": "Closed won"})
    sample = replace(row("linkedin"), action="Closed won")

    outcome = ADAPTER.check(sample, target, NOW)

    assert outcome is not None
    assert outcome.status == "rejected"
    assert outcome.code == "invalid_action"


def test_linkedin_batches_at_limit(linkedin: Receiver) -> None:
    rows = [row("linkedin", f"evt-{index}") for index in range(ADAPTER.max_batch + 1)]
    requests = ADAPTER.requests(rows, destination("linkedin", linkedin), CREDENTIALS)

    for request in requests:
        assert {outcome.status for outcome in send(ADAPTER, request)} == {"sent"}

    assert [len(request.event_ids) for request in requests] == [5000, 1]
    assert linkedin.problems() == []
    assert len(linkedin.events("linkedin")) == 5001


def element_outcomes(linkedin: Receiver, fault: Fault, count: int = 3) -> list[Outcome]:
    linkedin.fail("linkedin", fault)
    rows = [row("linkedin", f"evt-{index}") for index in range(count)]
    [request] = ADAPTER.requests(rows, destination("linkedin", linkedin), CREDENTIALS)
    return send(ADAPTER, request)


def test_linkedin_element_statuses(linkedin: Receiver) -> None:
    outcomes = element_outcomes(linkedin, Fault(rows={0: "invalid user id", 2: 503}))

    assert [outcome.status for outcome in outcomes] == ["rejected", "sent", "retry"]
    assert outcomes[0] == Outcome(
        "evt-0", "rejected", code="400", message="event 0: invalid user id"
    )
    assert outcomes[2].code == "503"
    assert [event["eventId"] for event in linkedin.events("linkedin")] == ["evt-1"]


def test_linkedin_429_retries_after_delay(linkedin: Receiver) -> None:
    outcomes = element_outcomes(linkedin, Fault(status=429, retry_after="12"))

    assert {outcome.status for outcome in outcomes} == {"retry"}
    assert outcomes[0].retry_after == 12.0


def test_linkedin_500_retries(linkedin: Receiver) -> None:
    outcomes = element_outcomes(linkedin, Fault(status=500))

    assert {outcome.status for outcome in outcomes} == {"retry"}


def test_linkedin_invalid_token_is_auth_error(linkedin: Receiver) -> None:
    linkedin.credentials["access_token"] = "another"

    outcomes = element_outcomes(linkedin, Fault())

    assert {outcome.status for outcome in outcomes} == {"auth_error"}
    assert outcomes[0].code == "INVALID_ACCESS_TOKEN"
    assert outcomes[0].message == "Invalid access token"


def test_linkedin_event_sent_twice_is_one_event(linkedin: Receiver) -> None:
    target = destination("linkedin", linkedin)
    [request] = ADAPTER.requests([row("linkedin", "evt-1")], target, CREDENTIALS)
    send(ADAPTER, request)
    send(ADAPTER, request)
    [twin] = ADAPTER.requests([row("linkedin", "evt-2")], target, CREDENTIALS)
    send(ADAPTER, twin)

    assert linkedin.received("linkedin") == 3
    assert [event["eventId"] for event in linkedin.events("linkedin")] == ["evt-1", "evt-2"]
