"""The Meta Conversions API adapter, sent through httpx to the local receiver."""

from __future__ import annotations

import calendar
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from journeymap.activate.adapters import MetaAdapter
from journeymap.activate.base import Outcome
from journeymap.common import identifiers
from tests.activate.receiver import CREDENTIALS, Fault, Receiver, send
from tests.activate.samples import (
    BERLIN_PHONE,
    EMAIL_PLAIN,
    GMAIL_PLAIN,
    GMAIL_WITH_DOTS,
    MIXED_CASE_EMAIL,
    NOW,
    PHONE_DIGITS,
    PREHASHED,
    US_PHONE,
    destination,
    row,
    sha256,
)

ADAPTER = MetaAdapter()


@pytest.fixture
def meta(receiver: Receiver) -> Receiver:
    receiver.now = NOW
    return receiver


def sent_events(receiver: Receiver, rows: list, **fields: object) -> list[dict]:
    """Send ``rows`` to the receiver and return the events of the last request."""
    target = destination("meta", receiver, **fields)
    for request in ADAPTER.requests(rows, target, CREDENTIALS):
        outcomes = send(ADAPTER, request)
        assert [outcome.status for outcome in outcomes] == ["sent"] * len(request.event_ids)
    assert receiver.problems() == []
    return receiver.requests[-1].body["data"]


def test_meta_request_fields_and_units(meta: Receiver) -> None:
    sample = row("meta")

    [event] = sent_events(meta, [sample])

    received = meta.requests[-1]
    assert received.path == "/v23.0/123456789012345/events"
    assert received.headers["authorization"] == f"Bearer {CREDENTIALS['access_token']}"
    assert CREDENTIALS["access_token"] not in meta.url + received.path + str(received.query)
    assert event["event_name"] == "Purchase"
    assert event["event_id"] == "evt-1"
    assert event["event_time"] == int(sample.occurred_at.timestamp())
    assert event["action_source"] == "system_generated"
    assert event["user_data"] == {
        "fbc": "fb.1.1763200000000.IwAR2abc",
        "fbp": "fb.1.1763200000000.1234567890",
    }
    assert event["custom_data"] == {"value": 1250.0, "currency": "USD"}


def test_meta_email_trimmed_and_lowercased(meta: Receiver) -> None:
    rows = [
        row("meta", "evt-1", keys={"email": MIXED_CASE_EMAIL}),
        row("meta", "evt-2", keys={"email": GMAIL_WITH_DOTS}),
    ]

    events = sent_events(meta, rows)

    assert events[0]["user_data"]["em"] == EMAIL_PLAIN
    assert events[1]["user_data"]["em"] == GMAIL_PLAIN


def test_meta_phone_digits_with_country_code(meta: Receiver) -> None:
    rows = [row("meta", "evt-1", keys={"phone": US_PHONE})]
    events = sent_events(meta, rows)
    assert events[0]["user_data"]["ph"] == PHONE_DIGITS

    rows = [row("meta", "evt-2", keys={"phone": BERLIN_PHONE})]
    events = sent_events(meta, rows, phone_region="DE")
    assert events[0]["user_data"]["ph"] == sha256("49301234567")


def test_meta_prehashed_keys_pass_through(meta: Receiver) -> None:
    keys = {identifiers.EMAIL: PREHASHED, identifiers.PHONE_DIGITS: PREHASHED}

    [event] = sent_events(meta, [row("meta", keys=keys)])

    assert event["user_data"] == {"em": PREHASHED, "ph": PREHASHED}


def test_meta_event_time_from_summer_time(meta: Receiver) -> None:
    berlin = NOW.astimezone(ZoneInfo("Europe/Berlin")) - timedelta(days=1)
    meta.now = berlin + timedelta(hours=1)

    [event] = sent_events(meta, [row("meta", occurred_at=berlin)])

    utc = berlin.astimezone(ZoneInfo("UTC"))
    assert event["event_time"] == calendar.timegm(utc.timetuple())


def test_meta_lead_event_is_crm_event(meta: Receiver) -> None:
    sample = row("meta", keys={"lead_id": "123456789012345", "email": MIXED_CASE_EMAIL})

    [event] = sent_events(meta, [sample])

    assert event["action_source"] == "system_generated"
    assert event["user_data"]["lead_id"] == 123456789012345
    assert event["custom_data"]["event_source"] == "crm"
    assert event["custom_data"]["lead_event_source"] == "journeymap"


def test_meta_website_event_needs_user_agent(meta: Receiver) -> None:
    agent = "Mozilla/5.0 (X11; Linux x86_64)"
    with_agent = row(
        "meta",
        "evt-1",
        keys={"fbp": "fb.1.1763200000000.1234567890", "client_user_agent": agent},
        source_url="https://example.com/demo",
    )
    without_agent = row("meta", "evt-2", source_url="https://example.com/demo")

    events = sent_events(meta, [with_agent, without_agent])

    assert events[0]["action_source"] == "website"
    assert events[0]["event_source_url"] == "https://example.com/demo"
    assert events[0]["user_data"]["client_user_agent"] == agent
    assert events[1]["action_source"] == "system_generated"
    assert "event_source_url" not in events[1]


def test_meta_test_event_code_sent(meta: Receiver) -> None:
    sent_events(meta, [row("meta")], test_event_code="TEST123")

    assert meta.requests[-1].body["test_event_code"] == "TEST123"


def test_meta_check_skips_older_than_seven_days() -> None:
    old = row("meta", occurred_at=NOW - timedelta(days=7, minutes=1))

    outcome = ADAPTER.check(old, destination("meta"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "outside_window"
    assert outcome.message is not None
    assert "up to 7 days" in outcome.message


def test_meta_check_window_days_override() -> None:
    target = destination("meta", window_days=3)

    four_days = ADAPTER.check(row("meta", occurred_at=NOW - timedelta(days=4)), target, NOW)
    two_days = ADAPTER.check(row("meta", occurred_at=NOW - timedelta(days=2)), target, NOW)

    assert four_days is not None
    assert four_days.status == "skipped"
    assert two_days is None


def test_meta_check_skips_row_without_match_key() -> None:
    outcome = ADAPTER.check(row("meta", keys={}), destination("meta"), NOW)

    assert outcome is not None
    assert outcome.status == "skipped"
    assert outcome.code == "no_match_key"


def test_meta_check_rejects_value_without_currency() -> None:
    outcome = ADAPTER.check(row("meta"), destination("meta", currency=None), NOW)

    assert outcome is not None
    assert outcome.status == "rejected"
    assert outcome.code == "missing_currency"


def test_meta_batches_at_limit(meta: Receiver) -> None:
    rows = [row("meta", f"evt-{index}") for index in range(ADAPTER.max_batch + 1)]
    target = destination("meta", meta)

    requests = ADAPTER.requests(rows, target, CREDENTIALS)
    for request in requests:
        assert {outcome.status for outcome in send(ADAPTER, request)} == {"sent"}

    assert [len(request.event_ids) for request in requests] == [1000, 1]
    assert meta.problems() == []
    assert len(meta.events("meta")) == 1001


def test_meta_batch_size_setting() -> None:
    rows = [row("meta", f"evt-{index}") for index in range(25)]

    requests = ADAPTER.requests(rows, destination("meta", batch_size=10), CREDENTIALS)

    assert [len(request.event_ids) for request in requests] == [10, 10, 5]


def outcomes_of(meta: Receiver, fault: Fault, count: int = 2) -> list[Outcome]:
    meta.fail("meta", fault)
    rows = [row("meta", f"evt-{index}") for index in range(count)]
    [request] = ADAPTER.requests(rows, destination("meta", meta), CREDENTIALS)
    return send(ADAPTER, request)


def test_meta_invalid_event_rejects_whole_batch(meta: Receiver) -> None:
    outcomes = outcomes_of(meta, Fault(rows={1: "event_time too old"}))

    assert [outcome.status for outcome in outcomes] == ["rejected", "rejected"]
    assert outcomes[0].code == "100"
    assert outcomes[0].message is not None
    assert "data[1]" in outcomes[0].message
    assert meta.events("meta") == []


def test_meta_429_retries_after_delay(meta: Receiver) -> None:
    outcomes = outcomes_of(meta, Fault(status=429, retry_after="7"))

    assert [outcome.status for outcome in outcomes] == ["retry", "retry"]
    assert outcomes[0].retry_after == 7.0


def test_meta_throttling_code_retries(meta: Receiver) -> None:
    outcomes = outcomes_of(meta, Fault(status=400, code="17", message="User request limit"))

    assert [outcome.status for outcome in outcomes] == ["retry", "retry"]
    assert outcomes[0].code == "17"


def test_meta_500_retries(meta: Receiver) -> None:
    outcomes = outcomes_of(meta, Fault(status=500))

    assert [outcome.status for outcome in outcomes] == ["retry", "retry"]


def test_meta_invalid_token_is_auth_error(meta: Receiver) -> None:
    meta.credentials["access_token"] = "another-token"

    outcomes = outcomes_of(meta, Fault())

    assert [outcome.status for outcome in outcomes] == ["auth_error", "auth_error"]
    assert outcomes[0].code == "190"
    assert all(CREDENTIALS["access_token"] not in (o.message or "") for o in outcomes)


def test_meta_dedup_on_event_name_and_id(meta: Receiver) -> None:
    target = destination("meta", meta)
    [request] = ADAPTER.requests([row("meta", "evt-1")], target, CREDENTIALS)
    send(ADAPTER, request)
    send(ADAPTER, request)
    [twin] = ADAPTER.requests([row("meta", "evt-2")], target, CREDENTIALS)
    send(ADAPTER, twin)

    assert meta.received("meta") == 3
    assert [event["event_id"] for event in meta.events("meta")] == ["evt-1", "evt-2"]
