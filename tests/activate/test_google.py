"""The Google Ads adapters (uploadClickConversions and Data Manager), sent through httpx to
the local receiver."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from journeymap.activate.adapters import GoogleClickAdapter, GoogleDataManagerAdapter
from journeymap.activate.base import Outcome, SendRow
from journeymap.common import identifiers
from journeymap.common.errors import ConfigError
from tests.activate.receiver import CREDENTIALS, Fault, Receiver, send
from tests.activate.samples import (
    BERLIN_E164,
    BERLIN_PHONE,
    EMAIL_PLAIN,
    GMAIL_GOOGLE,
    GMAIL_WITH_DOTS,
    MIXED_CASE_EMAIL,
    NOW,
    PHONE_E164,
    PREHASHED,
    US_PHONE,
    destination,
    row,
)

CLICKS = GoogleClickAdapter()
DATA_MANAGER = GoogleDataManagerAdapter()


@pytest.fixture
def google(receiver: Receiver) -> Receiver:
    receiver.now = NOW
    return receiver


def sent_conversions(receiver: Receiver, rows: list[SendRow], **fields: Any) -> list[dict]:
    """Send ``rows`` with the click adapter; return the conversions of the last request."""
    target = destination("google", receiver, **fields)
    for request in CLICKS.requests(rows, target, CREDENTIALS):
        outcomes = send(CLICKS, request)
        assert [outcome.status for outcome in outcomes] == ["sent"] * len(request.event_ids)
    assert receiver.problems() == []
    return receiver.requests[-1].body["conversions"]


def test_google_request_fields(google: Receiver) -> None:
    credentials = {**CREDENTIALS, "login_customer_id": "111-222-3333"}
    target = destination("google", google)
    [request] = CLICKS.requests([row("google")], target, credentials)

    [outcome] = send(CLICKS, request)

    received = google.requests[-1]
    assert outcome.status == "sent"
    assert received.problems == []
    assert received.path == "/v21/customers/1234567890:uploadClickConversions"
    assert received.headers["developer-token"] == CREDENTIALS["developer_token"]
    assert received.headers["login-customer-id"] == "1112223333"
    assert received.body["partialFailure"] is True
    [conversion] = received.body["conversions"]
    assert conversion == {
        "conversionAction": "customers/1234567890/conversionActions/987654321",
        "conversionDateTime": "2026-11-20 10:00:00+00:00",
        "orderId": "evt-1",
        "gclid": "Cj0KCQiA-test-gclid",
        "conversionValue": 1250.0,
        "currencyCode": "USD",
    }


@pytest.mark.parametrize(
    ("zone", "occurred_at", "expected"),
    [
        ("America/New_York", datetime(2026, 7, 1, 16, 30, tzinfo=UTC), "2026-07-01 12:30:00-04:00"),
        (
            "America/New_York",
            datetime(2026, 1, 15, 17, 30, tzinfo=UTC),
            "2026-01-15 12:30:00-05:00",
        ),
        ("Europe/Berlin", datetime(2026, 7, 1, 10, 30, tzinfo=UTC), "2026-07-01 12:30:00+02:00"),
        ("Europe/Berlin", datetime(2026, 1, 15, 11, 30, tzinfo=UTC), "2026-01-15 12:30:00+01:00"),
        ("UTC", datetime(2026, 1, 15, 11, 30, tzinfo=UTC), "2026-01-15 11:30:00+00:00"),
    ],
    ids=["new-york-summer", "new-york-winter", "berlin-summer", "berlin-winter", "utc"],
)
def test_google_conversion_time_in_account_zone(
    google: Receiver, zone: str, occurred_at: datetime, expected: str
) -> None:
    google.now = occurred_at + timedelta(days=1)
    sample = row("google", occurred_at=occurred_at)

    [conversion] = sent_conversions(google, [sample], time_zone=zone)

    assert conversion["conversionDateTime"] == expected


def test_google_email_normalised_for_google(google: Receiver) -> None:
    rows = [
        row("google", "evt-1", keys={"email": MIXED_CASE_EMAIL}),
        row("google", "evt-2", keys={"email": GMAIL_WITH_DOTS}),
    ]

    conversions = sent_conversions(google, rows)

    assert conversions[0]["userIdentifiers"] == [{"hashedEmail": EMAIL_PLAIN}]
    assert conversions[1]["userIdentifiers"] == [{"hashedEmail": GMAIL_GOOGLE}]


def test_google_phone_hashed_as_e164(google: Receiver) -> None:
    rows = [row("google", "evt-1", keys={"phone": US_PHONE})]
    [conversion] = sent_conversions(google, rows)
    assert conversion["userIdentifiers"] == [{"hashedPhoneNumber": PHONE_E164}]

    rows = [row("google", "evt-2", keys={"phone": BERLIN_PHONE})]
    [conversion] = sent_conversions(google, rows, phone_region="DE")
    assert conversion["userIdentifiers"] == [{"hashedPhoneNumber": BERLIN_E164}]


def test_google_prehashed_keys_pass_through(google: Receiver) -> None:
    keys = {identifiers.EMAIL_GOOGLE: PREHASHED, identifiers.PHONE_E164: PREHASHED}

    [conversion] = sent_conversions(google, [row("google", keys=keys)])

    assert conversion["userIdentifiers"] == [
        {"hashedEmail": PREHASHED},
        {"hashedPhoneNumber": PREHASHED},
    ]


def test_google_one_click_id_sent(google: Receiver) -> None:
    rows = [
        row("google", "evt-1", keys={"gclid": "G1", "gbraid": "B1", "email": GMAIL_WITH_DOTS}),
        row("google", "evt-2", keys={"gbraid": "B2", "wbraid": "W2"}),
        row("google", "evt-3", keys={"wbraid": "W3"}),
    ]

    conversions = sent_conversions(google, rows)

    assert [
        {key: c[key] for key in ("gclid", "gbraid", "wbraid", "userIdentifiers") if key in c}
        for c in conversions
    ] == [{"gclid": "G1"}, {"gbraid": "B2"}, {"wbraid": "W3"}]


def test_google_check_window_from_click() -> None:
    target = destination("google")
    old_click = row("google", clicked_at=NOW - timedelta(days=91))
    recent_click = row("google", clicked_at=NOW - timedelta(days=89))

    outcome = CLICKS.check(old_click, target, NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "outside_window"
    assert outcome.message is not None
    assert "click is 91.0 days old" in outcome.message
    assert CLICKS.check(recent_click, target, NOW) is None


def test_google_check_window_days_setting() -> None:
    target = destination("google", window_days=30)
    sample = row("google", clicked_at=NOW - timedelta(days=31))

    outcome = CLICKS.check(sample, target, NOW)

    assert outcome is not None
    assert outcome.status == "skipped"


def test_google_check_without_click_uses_conversion_time() -> None:
    sample = row("google", occurred_at=NOW - timedelta(days=95), keys={"email": GMAIL_WITH_DOTS})

    outcome = CLICKS.check(sample, destination("google"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"


def test_google_check_rejects_conversion_before_click() -> None:
    sample = row("google", clicked_at=NOW)

    outcome = CLICKS.check(sample, destination("google"), NOW)

    assert outcome is not None
    assert outcome.status == "rejected"
    assert outcome.code == "CONVERSION_PRECEDES_EVENT"


def test_google_check_skips_row_without_match_key() -> None:
    outcome = CLICKS.check(
        row("google", keys={"email": "not an address"}), destination("google"), NOW
    )

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "no_match_key"


def test_google_check_unknown_time_zone_raises() -> None:
    with pytest.raises(ConfigError, match=r"google-test\.time_zone.*Mars/Olympus"):
        CLICKS.check(row("google"), destination("google", time_zone="Mars/Olympus"), NOW)


def test_google_missing_developer_token_raises() -> None:
    credentials = {"access_token": "token"}

    with pytest.raises(ConfigError, match="developer_token"):
        CLICKS.requests([row("google")], destination("google"), credentials)


def test_google_batches_at_limit(google: Receiver) -> None:
    rows = [row("google", f"evt-{index}") for index in range(CLICKS.max_batch + 1)]
    requests = CLICKS.requests(rows, destination("google", google), CREDENTIALS)

    for request in requests:
        assert {outcome.status for outcome in send(CLICKS, request)} == {"sent"}

    assert [len(request.event_ids) for request in requests] == [2000, 1]
    assert google.problems() == []
    assert len(google.events("google")) == 2001


def click_outcomes(google: Receiver, fault: Fault, count: int = 4) -> list[Outcome]:
    google.fail("google", fault)
    rows = [row("google", f"evt-{index}") for index in range(count)]
    [request] = CLICKS.requests(rows, destination("google", google), CREDENTIALS)
    return send(CLICKS, request)


def test_google_partial_failure_by_operation_index(google: Receiver) -> None:
    fault = Fault(
        rows={0: "CLICK_NOT_FOUND", 1: "TOO_RECENT_EVENT", 2: "CLICK_CONVERSION_ALREADY_EXISTS"}
    )

    outcomes = click_outcomes(google, fault)

    assert [outcome.status for outcome in outcomes] == ["rejected", "retry", "sent", "sent"]
    assert [outcome.code for outcome in outcomes] == [
        "CLICK_NOT_FOUND",
        "TOO_RECENT_EVENT",
        "CLICK_CONVERSION_ALREADY_EXISTS",
        None,
    ]
    assert outcomes[1].retry_after == 6 * 3600
    assert outcomes[0].message == "conversion 0 failed: CLICK_NOT_FOUND"


@pytest.mark.parametrize("code", ["EXPIRED_EVENT", "UNPARSEABLE_GCLID"])
def test_google_permanent_row_errors_rejected(google: Receiver, code: str) -> None:
    outcomes = click_outcomes(google, Fault(rows={0: code}), count=1)

    assert outcomes == [
        Outcome("evt-0", "rejected", code=code, message=f"conversion 0 failed: {code}")
    ]


def test_google_order_sent_twice_is_one_event(google: Receiver) -> None:
    target = destination("google", google)
    [request] = CLICKS.requests([row("google", "evt-1")], target, CREDENTIALS)
    first = send(CLICKS, request)
    again = send(CLICKS, request)
    [twin] = CLICKS.requests([row("google", "evt-2")], target, CREDENTIALS)
    other = send(CLICKS, twin)

    assert [first[0].status, again[0].status, other[0].status] == ["sent", "sent", "sent"]
    assert again[0].code == "ORDER_ID_ALREADY_IN_USE"
    assert [event["orderId"] for event in google.events("google")] == ["evt-1", "evt-2"]


def test_google_429_retries_after_delay(google: Receiver) -> None:
    outcomes = click_outcomes(google, Fault(status=429, retry_after="30"))

    assert {outcome.status for outcome in outcomes} == {"retry"}
    assert outcomes[0].retry_after == 30.0
    assert outcomes[0].code == "RESOURCE_EXHAUSTED"


def test_google_500_retries(google: Receiver) -> None:
    outcomes = click_outcomes(google, Fault(status=500))

    assert {outcome.status for outcome in outcomes} == {"retry"}


def test_google_invalid_developer_token_is_auth_error(google: Receiver) -> None:
    google.credentials["developer_token"] = "another"

    outcomes = click_outcomes(google, Fault())

    assert {outcome.status for outcome in outcomes} == {"auth_error"}
    assert outcomes[0].code == "DEVELOPER_TOKEN_INVALID"


def ingest(receiver: Receiver, rows: list[SendRow], **fields: Any) -> list[list[Outcome]]:
    target = destination("google_data_manager", receiver, **fields)
    return [
        send(DATA_MANAGER, request) for request in DATA_MANAGER.requests(rows, target, CREDENTIALS)
    ]


def test_data_manager_request_fields(google: Receiver) -> None:
    keys = {"gclid": "Cj0KCQiA-test-gclid", "email": GMAIL_WITH_DOTS, "phone": US_PHONE}
    sample = row(
        "google_data_manager", occurred_at=datetime(2026, 7, 1, 16, 30, tzinfo=UTC), keys=keys
    )
    google.now = datetime(2026, 7, 2, tzinfo=UTC)

    [[outcome]] = ingest(google, [sample], time_zone="America/New_York")

    received = google.requests[-1]
    assert outcome.status == "sent"
    assert outcome.message is not None
    assert outcome.message.startswith("Data Manager request ")
    assert received.problems == []
    assert received.path == "/v1/events:ingest"
    assert "developer-token" not in received.headers
    assert received.body["encoding"] == "HEX"
    assert received.body["destinations"] == [
        {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "productDestinationId": "987654321",
        }
    ]
    assert received.body["events"] == [
        {
            "transactionId": "evt-1",
            "eventTimestamp": "2026-07-01T12:30:00-04:00",
            "eventSource": "OTHER",
            "userData": {
                "userIdentifiers": [{"emailAddress": GMAIL_GOOGLE}, {"phoneNumber": PHONE_E164}]
            },
            "adIdentifiers": {"gclid": "Cj0KCQiA-test-gclid"},
            "conversionValue": 1250.0,
            "currency": "USD",
        }
    ]


def test_data_manager_event_source_setting(google: Receiver) -> None:
    ingest(google, [row("google_data_manager")], event_source="PHONE")

    assert google.requests[-1].body["events"][0]["eventSource"] == "PHONE"
    assert google.problems() == []


def test_data_manager_winter_offset(google: Receiver) -> None:
    sample = row("google_data_manager", occurred_at=datetime(2026, 1, 15, 11, 30, tzinfo=UTC))
    google.now = datetime(2026, 1, 16, tzinfo=UTC)

    ingest(google, [sample], time_zone="Europe/Berlin")

    assert google.requests[-1].body["events"][0]["eventTimestamp"] == "2026-01-15T12:30:00+01:00"


def test_data_manager_one_request_per_action(google: Receiver) -> None:
    rows = [
        row("google_data_manager", "evt-1"),
        replace(row("google_data_manager", "evt-2"), action="111"),
        row("google_data_manager", "evt-3"),
    ]

    ingest(google, rows)

    assert [r.body["destinations"][0]["productDestinationId"] for r in google.requests] == [
        "987654321",
        "111",
    ]
    assert [len(r.body["events"]) for r in google.requests] == [2, 1]
    assert google.problems() == []


def test_data_manager_login_account(google: Receiver) -> None:
    credentials = {"access_token": CREDENTIALS["access_token"], "login_customer_id": "111-222-3333"}
    target = destination("google_data_manager", google)
    [request] = DATA_MANAGER.requests([row("google_data_manager")], target, credentials)

    send(DATA_MANAGER, request)

    login = google.requests[-1].body["destinations"][0]["loginAccount"]
    assert login == {"accountType": "GOOGLE_ADS", "accountId": "1112223333"}
    assert google.problems() == []


def test_data_manager_invalid_event_fails_request(google: Receiver) -> None:
    google.fail("google_data_manager", Fault(rows={1: "invalid gclid"}))
    rows = [row("google_data_manager", f"evt-{index}") for index in range(3)]

    [outcomes] = ingest(google, rows)

    assert [outcome.status for outcome in outcomes] == ["retry", "rejected", "retry"]
    assert outcomes[1].code == "events[1]"
    assert outcomes[1].message == "invalid gclid"
    assert google.events("google_data_manager") == []


def test_data_manager_batches_at_limit(google: Receiver) -> None:
    rows = [row("google_data_manager", f"evt-{index}") for index in range(2001)]

    results = ingest(google, rows)

    assert [len(outcomes) for outcomes in results] == [2000, 1]
    assert google.problems() == []
    assert len(google.events("google_data_manager")) == 2001


def test_data_manager_transaction_sent_twice_is_one_event(google: Receiver) -> None:
    ingest(google, [row("google_data_manager", "evt-1")])
    ingest(google, [row("google_data_manager", "evt-1")])
    ingest(google, [row("google_data_manager", "evt-2")])

    assert google.received("google_data_manager") == 3
    assert len(google.events("google_data_manager")) == 2


@pytest.mark.parametrize(
    ("status", "expected"), [(429, "retry"), (500, "retry"), (403, "auth_error"), (400, "rejected")]
)
def test_data_manager_error_statuses(google: Receiver, status: int, expected: str) -> None:
    google.fail("google_data_manager", Fault(status=status, retry_after="5"))

    [outcomes] = ingest(google, [row("google_data_manager")])

    assert [outcome.status for outcome in outcomes] == [expected]


def test_google_stale_click_with_email_sent_without_click(google: Receiver) -> None:
    stale = row(
        "google",
        clicked_at=NOW - timedelta(days=120),
        keys={"gclid": "Cj0KCQiA-old-gclid", "email": GMAIL_WITH_DOTS},
    )
    target = destination("google", google)

    outcome = CLICKS.check(stale, target, NOW)
    prepared = CLICKS.prepare(stale, target, NOW)
    [conversion] = sent_conversions(google, [prepared])

    assert outcome is None
    assert prepared.clicked_at is None
    assert "gclid" not in prepared.keys
    assert "gclid" not in conversion
    assert conversion["userIdentifiers"] == [{"hashedEmail": GMAIL_GOOGLE}]


def test_google_stale_click_without_email_skipped() -> None:
    stale = row("google", clicked_at=NOW - timedelta(days=120))

    outcome = CLICKS.check(stale, destination("google"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "outside_window"
    assert CLICKS.prepare(stale, destination("google"), NOW) == stale


def test_google_recent_click_kept_by_prepare() -> None:
    recent = row(
        "google", clicked_at=NOW - timedelta(days=10), keys={"gclid": "G", "email": "a@b.co"}
    )

    assert CLICKS.prepare(recent, destination("google"), NOW) == recent


def test_data_manager_stale_click_sent_as_user_data() -> None:
    stale = row(
        "google_data_manager",
        clicked_at=NOW - timedelta(days=120),
        keys={"gclid": "G-old", "phone": US_PHONE},
    )
    target = destination("google_data_manager")

    prepared = DATA_MANAGER.prepare(stale, target, NOW)
    event = DATA_MANAGER.event(prepared, target)

    assert DATA_MANAGER.check(stale, target, NOW) is None
    assert "adIdentifiers" not in event
    assert event["userData"] == {"userIdentifiers": [{"phoneNumber": PHONE_E164}]}


def test_google_authorization_error_family_is_auth_error() -> None:
    request = CLICKS.requests([row("google")], destination("google"), CREDENTIALS)[0]
    body = {
        "error": {
            "code": 403,
            "status": "PERMISSION_DENIED",
            "message": "The caller does not have permission",
            "details": [
                {
                    "errors": [
                        {
                            "errorCode": {"authorizationError": "USER_PERMISSION_DENIED"},
                            "message": "User doesn't have permission to access customer.",
                        }
                    ]
                }
            ],
        }
    }

    outcomes = CLICKS.outcomes(request, 403, json.dumps(body).encode(), {})

    assert [outcome.status for outcome in outcomes] == ["auth_error"]
    assert outcomes[0].code == "USER_PERMISSION_DENIED"
