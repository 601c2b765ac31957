"""Delivery faults end to end: the real adapters against the receiver that imitates each
platform, failing with 500, 429 and Retry-After, a timeout and a partial failure before it
accepts. Every conversion must arrive exactly once: none lost, none counted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from journeymap.activate.deliver import sync
from journeymap.common.config import parse_config
from journeymap.common.identifiers import match_keys
from journeymap.store.store import Store
from tests.activate.receiver import CREDENTIALS, Fault, Receiver

COUNT = 6
ENVIRON = {
    "JM_ACCESS": CREDENTIALS["access_token"],
    "JM_DEVELOPER": CREDENTIALS["developer_token"],
    "JM_CUSTOMER": CREDENTIALS["customer_id"],
}
DESTINATIONS: dict[str, dict[str, Any]] = {
    "meta": {"account": "123456789", "actions": {"lead": "Lead"}},
    "google": {"account": "1234567890", "actions": {"lead": "555"}, "time_zone": "UTC"},
    "linkedin": {"account": "508123456", "actions": {"lead": "777"}},
    "microsoft": {"account": "149123456", "actions": {"lead": "Lead goal"}},
}
CREDENTIAL_NAMES: dict[str, dict[str, str]] = {
    "meta": {"access_token": "JM_ACCESS"},
    "google": {"access_token": "JM_ACCESS", "developer_token": "JM_DEVELOPER"},
    "linkedin": {"access_token": "JM_ACCESS"},
    "microsoft": {
        "access_token": "JM_ACCESS",
        "developer_token": "JM_DEVELOPER",
        "customer_id": "JM_CUSTOMER",
    },
}
CLICK_PLATFORMS = {"google": "google_ads", "microsoft": "microsoft_ads"}
PARTIAL_FAILURE: dict[str, Fault] = {
    # A retryable failure of one row of the batch, in each platform's own shape.
    "linkedin": Fault(rows={1: 503}),
    "microsoft": Fault(status=500, code="0"),
}


class FakeTime:
    """A clock that the sync's sleeps move forward, so retries cost no real time."""

    def __init__(self) -> None:
        self.now = datetime.now(tz=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def world(platform: str, receiver: Receiver) -> tuple[Store, Any]:
    """Return a store of recent leads with hashed emails and clicks, and its configuration."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    store = Store.open()
    people = [f"p{index}" for index in range(COUNT)]
    store.append(
        "conversions",
        pd.DataFrame(
            {
                "conversion_id": [f"c{index}" for index in range(COUNT)],
                "seq": list(range(100, 100 + COUNT)),
                "person_id": people,
                "occurred_at": [now - timedelta(hours=index + 1) for index in range(COUNT)],
                "kind": ["lead"] * COUNT,
                "value": [100.0 * (index + 1) for index in range(COUNT)],
                "currency": ["USD"] * COUNT,
            }
        ),
    )
    keys = match_keys(email="Ana.Lima@Example.com", phone="+1 415 555 0100")
    store.append(
        "match_keys",
        pd.DataFrame(
            [
                {
                    "id": person,
                    "id_kind": "person",
                    "key": key,
                    "value": value,
                    "observed_at": now - timedelta(days=3),
                }
                for person in people
                for key, value in keys.items()
            ]
        ),
    )
    if platform in CLICK_PLATFORMS:
        store.append(
            "touchpoints",
            pd.DataFrame(
                {
                    "touchpoint_id": [f"t{index}" for index in range(COUNT)],
                    "seq": list(range(1, COUNT + 1)),
                    "person_id": people,
                    "occurred_at": [now - timedelta(days=2)] * COUNT,
                    "click_id": [f"click-{index}-Cj0KCQ" for index in range(COUNT)],
                    "click_platform": [CLICK_PLATFORMS[platform]] * COUNT,
                }
            ),
        )
    destination = {
        "platform": platform,
        "endpoint": receiver.url,
        "credentials_env": CREDENTIAL_NAMES[platform],
        **DESTINATIONS[platform],
    }
    config = parse_config(
        {
            "sync": {
                "destinations": {"dest": destination},
                "timeout_seconds": 1,
                "backoff_seconds": 1,
                "max_attempts": 8,
            }
        }
    )
    return store, config


def delivered_once(store: Store, receiver: Receiver, platform: str) -> None:
    outbox = store.table("sync_outbox").to_pandas()
    assert len(outbox) == COUNT
    assert set(outbox.status) <= {"sent", "matched"}
    events = receiver.events(platform)
    assert len(events) == COUNT


@pytest.mark.parametrize("platform", sorted(DESTINATIONS))
def test_sync_delivers_each_conversion_once_through_500_429_and_a_timeout(
    platform: str, receiver: Receiver
) -> None:
    store, config = world(platform, receiver)
    receiver.fail(platform, Fault(status=500))
    receiver.fail(platform, Fault(status=429, retry_after="7"))
    receiver.fail(platform, Fault(stall=3))
    time = FakeTime()

    sync(store, config, clock=time.clock, sleep=time.sleep, environ=ENVIRON)

    delivered_once(store, receiver, platform)
    assert 7 in time.slept
    # The timed-out request was stored by the platform and sent again: dedup kept one copy.
    assert receiver.received(platform) > COUNT
    attempts = store.table("sync_attempts").to_pandas()
    assert {"retry"} <= set(attempts.outcome)


@pytest.mark.parametrize("platform", sorted(PARTIAL_FAILURE))
def test_sync_retries_the_failed_rows_of_a_partial_failure(
    platform: str, receiver: Receiver
) -> None:
    store, config = world(platform, receiver)
    receiver.fail(platform, PARTIAL_FAILURE[platform])
    time = FakeTime()

    sync(store, config, clock=time.clock, sleep=time.sleep, environ=ENVIRON)

    delivered_once(store, receiver, platform)


@pytest.mark.parametrize("platform", sorted(DESTINATIONS))
def test_sync_run_twice_sends_nothing_new(platform: str, receiver: Receiver) -> None:
    store, config = world(platform, receiver)
    time = FakeTime()
    sync(store, config, clock=time.clock, sleep=time.sleep, environ=ENVIRON)
    requests = len(receiver.requests)

    sync(store, config, clock=time.clock, sleep=time.sleep, environ=ENVIRON)

    delivered_once(store, receiver, platform)
    assert len(receiver.requests) == requests
