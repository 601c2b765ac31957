"""The delivery loop against a local endpoint with scripted faults."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeymap.activate import ledger
from journeymap.activate.deliver import retry_after_seconds, sync
from journeymap.activate.outbox import event_id, queue_conversions
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError
from journeymap.common.identifiers import match_keys
from journeymap.store.store import Store
from tests.activate.sync_fakes import (
    NOW,
    RAW_EMAIL,
    RAW_PHONE,
    TOKEN,
    FakeAdapter,
    FakeClock,
    add_conversions,
    fake_lookup,
    outbox,
    sync_config,
    ts,
)
from tests.activate.sync_server import Endpoint, running_endpoint

ENV = {"JM_TEST_META_TOKEN": TOKEN}


class FixedDice(random.Random):
    """A random source whose ``random()`` always returns ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with running_endpoint() as running:
        yield running


def _people(store: Store, count: int) -> list[str]:
    """Add ``count`` lead conversions a day before NOW, each of a person with hashed keys."""
    rows = [
        {
            "conversion_id": f"c{index}",
            "person_id": f"p{index}",
            "occurred_at": "2026-03-09",
            "kind": "lead",
            "value": 10.0 * index,
            "currency": "USD",
        }
        for index in range(1, count + 1)
    ]
    add_conversions(store, rows)
    keys = match_keys(email=RAW_EMAIL, phone=RAW_PHONE)
    store.append(
        "match_keys",
        pd.DataFrame(
            [
                {
                    "id": f"p{index}",
                    "id_kind": "person",
                    "key": key,
                    "value": value,
                    "observed_at": ts("2026-01-01"),
                }
                for index in range(1, count + 1)
                for key, value in keys.items()
            ]
        ),
    )
    return [event_id("fb", row["conversion_id"]) for row in rows]


def _run(
    store: Store,
    config: Config,
    clock: FakeClock,
    *,
    dice: float = 0.5,
    environ: dict[str, str] | None = None,
    adapter: FakeAdapter | None = None,
) -> Any:
    return sync(
        store,
        config,
        adapters=fake_lookup(adapter or FakeAdapter()),
        clock=clock,
        sleep=clock.sleep,
        rng=FixedDice(dice),
        environ=ENV if environ is None else environ,
    )


def _attempts(store: Store) -> pd.DataFrame:
    frame: pd.DataFrame = store.table("sync_attempts").to_pandas()
    return frame.sort_values(["at", "event_id"], ignore_index=True)


def test_sync_sends_every_due_row_once(store: Store, endpoint: Endpoint) -> None:
    ids = _people(store, 3)
    clock = FakeClock()

    report = _run(store, sync_config(endpoint=endpoint.url), clock)
    again = _run(store, sync_config(endpoint=endpoint.url), clock)

    rows = outbox(store)
    assert report.counts["fb"]["sent"] == 3
    assert report.counts["fb"]["requests"] == 1
    assert again.counts == {}
    assert len(endpoint.requests) == 1
    assert {event for _, event in endpoint.unique} == set(ids)
    assert list(rows.status) == ["sent"] * 3
    assert list(rows.attempts) == [1, 1, 1]
    assert rows.sent_at.notna().all()
    assert len(_attempts(store)) == 3
    assert endpoint.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_sync_retries_500_then_succeeds(store: Store, endpoint: Endpoint) -> None:
    _people(store, 1)
    endpoint.script = [("status", 500)]
    clock = FakeClock()

    report = _run(store, sync_config(endpoint=endpoint.url), clock, dice=0.5)

    rows = outbox(store)
    attempts = _attempts(store)
    # Full jitter: half of the first delay's cap (backoff_seconds = 1).
    assert clock.sleeps == [0.5]
    assert report.counts["fb"]["retry"] == 1
    assert list(rows.status) == ["sent"]
    assert list(rows.attempts) == [2]
    assert list(attempts.http_status) == [500, 200]
    assert list(attempts.outcome) == ["retry", "sent"]
    assert list(attempts.attempt) == [1, 2]


def test_sync_backoff_doubles_per_attempt(store: Store, endpoint: Endpoint) -> None:
    _people(store, 1)
    endpoint.script = [("status", 503), ("status", 503), ("status", 503)]
    clock = FakeClock()

    _run(store, sync_config(endpoint=endpoint.url), clock, dice=1.0)

    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert list(outbox(store).status) == ["sent"]


def test_sync_honours_retry_after_of_429(store: Store, endpoint: Endpoint) -> None:
    _people(store, 1)
    endpoint.script = [("status", 429, "30")]
    clock = FakeClock()

    _run(store, sync_config(endpoint=endpoint.url), clock, dice=0.0)

    attempts = _attempts(store)
    assert clock.sleeps == [30.0]
    assert list(attempts.http_status) == [429, 200]
    assert attempts["at"][1] - attempts["at"][0] >= timedelta(seconds=30)
    assert list(outbox(store).status) == ["sent"]


def test_sync_429_pauses_whole_destination(store: Store, endpoint: Endpoint) -> None:
    _people(store, 4)
    endpoint.script = [("status", 429, "30")]
    clock = FakeClock()

    _run(store, sync_config(endpoint=endpoint.url), clock, dice=0.0, adapter=FakeAdapter(2))

    attempts = _attempts(store)
    first = {item["event_id"] for item in endpoint.requests[0]["body"]["data"]}
    later = attempts[~attempts.event_id.isin(first)]
    # The second batch was due at once, but waited for the 429's Retry-After too.
    assert clock.sleeps == [30.0]
    assert (later["at"] >= NOW + timedelta(seconds=30)).all()
    assert list(outbox(store).status) == ["sent"] * 4


def test_sync_timeout_resent_counts_once(store: Store, endpoint: Endpoint) -> None:
    ids = _people(store, 2)
    endpoint.script = [("stall", 1.0)]
    config = sync_config(endpoint=endpoint.url)
    config = config.model_copy(
        update={"sync": config.sync.model_copy(update={"timeout_seconds": 0.2})}
    )
    clock = FakeClock()

    _run(store, config, clock)

    attempts = _attempts(store)
    assert list(attempts.code[:2]) == ["timeout", "timeout"]
    assert list(outbox(store).status) == ["sent", "sent"]
    # The endpoint had the events from the stalled request: the resend is deduplicated.
    assert sum(endpoint.received.values()) == 4
    assert {event for _, event in endpoint.unique} == set(ids)


def test_sync_partial_failure_retried_row_by_row(store: Store, endpoint: Endpoint) -> None:
    ids = _people(store, 3)
    endpoint.script = [("partial", {ids[1]: "retry"})]
    clock = FakeClock()

    _run(store, sync_config(endpoint=endpoint.url), clock)

    rows = outbox(store)
    sizes = [len(request["body"]["data"]) for request in endpoint.requests]
    assert sizes == [3, 1]
    assert [item["event_id"] for item in endpoint.requests[1]["body"]["data"]] == [ids[1]]
    assert list(rows.status) == ["sent"] * 3
    assert list(rows.attempts) == [1, 2, 1]


def test_sync_partial_rejection_keeps_other_rows(store: Store, endpoint: Endpoint) -> None:
    ids = _people(store, 3)
    endpoint.script = [("partial", {ids[0]: "rejected"})]
    clock = FakeClock()

    _run(store, sync_config(endpoint=endpoint.url), clock)

    rows = outbox(store)
    assert list(rows.status) == ["rejected", "sent", "sent"]
    assert rows.last_code[0] == "ROW_ERROR"
    assert len(endpoint.requests) == 1


def test_sync_permanent_error_recorded_with_message(store: Store, endpoint: Endpoint) -> None:
    _people(store, 2)
    endpoint.script = [("reject", 400, "Invalid parameter: event_name is unknown")]
    clock = FakeClock()

    report = _run(store, sync_config(endpoint=endpoint.url), clock)

    rows = outbox(store)
    assert report.counts["fb"]["rejected"] == 2
    assert clock.sleeps == []
    assert len(endpoint.requests) == 1
    assert list(rows.status) == ["rejected", "rejected"]
    assert list(rows.last_code) == ["400", "400"]
    assert list(rows.last_message) == ["Invalid parameter: event_name is unknown"] * 2


def test_sync_gives_up_after_max_attempts(store: Store, endpoint: Endpoint) -> None:
    _people(store, 1)
    endpoint.script = [("status", 500)] * 4
    clock = FakeClock()

    report = _run(store, sync_config(endpoint=endpoint.url), clock)

    rows = outbox(store)
    assert report.counts["fb"]["failed"] == 1
    assert len(endpoint.requests) == 4
    assert list(rows.status) == ["failed"]
    assert list(rows.attempts) == [4]
    assert rows.last_message[0].startswith("gave up after 4 attempts")


def test_sync_later_retry_waits_for_next_run(store: Store, endpoint: Endpoint) -> None:
    _people(store, 1)
    endpoint.script = [("status", 500)]
    config = sync_config(endpoint=endpoint.url)
    config = config.model_copy(
        update={"sync": config.sync.model_copy(update={"retry_within_seconds": 0})}
    )
    clock = FakeClock()

    _run(store, config, clock)
    first = list(outbox(store).status)
    clock.now += timedelta(minutes=5)
    _run(store, config, clock)

    assert first == ["queued"]
    assert clock.sleeps == []
    assert list(outbox(store).status) == ["sent"]


def test_sync_check_skips_rows_without_sending(store: Store, endpoint: Endpoint) -> None:
    add_conversions(
        store,
        [
            {
                "conversion_id": "c1",
                "person_id": "nobody",
                "occurred_at": "2026-03-09",
                "kind": "lead",
            }
        ],
    )
    clock = FakeClock()

    report = _run(store, sync_config(endpoint=endpoint.url), clock)

    rows = outbox(store)
    assert report.counts["fb"]["skipped"] == 1
    assert endpoint.requests == []
    assert list(rows.status) == ["skipped"]
    assert list(rows.last_code) == ["no_keys"]
    assert list(rows.attempts) == [0]


def test_sync_resends_rows_of_expired_lease(store: Store, endpoint: Endpoint) -> None:
    ids = _people(store, 2)
    config = sync_config(endpoint=endpoint.url)
    queue_conversions(store, config, now=NOW, adapters=fake_lookup(FakeAdapter()))
    ledger.claim(store, ids, NOW, NOW + timedelta(seconds=50))
    clock = FakeClock(NOW + timedelta(seconds=60))

    report = _run(store, config, clock)

    assert report.released == 2
    assert sorted(item["event_id"] for item in endpoint.requests[0]["body"]["data"]) == sorted(ids)
    assert list(outbox(store).status) == ["sent", "sent"]
    assert list(outbox(store).attempts) == [2, 2]


def test_sync_leaves_rows_of_live_lease(store: Store, endpoint: Endpoint) -> None:
    ids = _people(store, 1)
    config = sync_config(endpoint=endpoint.url)
    queue_conversions(store, config, now=NOW, adapters=fake_lookup(FakeAdapter()))
    ledger.claim(store, ids, NOW, NOW + timedelta(seconds=50))

    report = _run(store, config, FakeClock(NOW + timedelta(seconds=10)))

    assert report.released == 0
    assert endpoint.requests == []
    assert list(outbox(store).status) == ["sending"]


def test_sync_identical_conversions_with_new_id_count_twice(
    store: Store, endpoint: Endpoint
) -> None:
    same = {"person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead", "value": 5.0}
    add_conversions(store, [{"conversion_id": "a", **same}, {"conversion_id": "b", **same}])
    store.append(
        "match_keys",
        pd.DataFrame(
            {
                "id": ["p1"],
                "id_kind": ["person"],
                "key": ["email_sha256"],
                "value": ["f" * 64],
                "observed_at": [ts("2026-01-01")],
            }
        ),
    )

    _run(store, sync_config(endpoint=endpoint.url), FakeClock())

    assert len(endpoint.unique) == 2


def test_sync_missing_credential_names_destination_and_variable(
    store: Store, endpoint: Endpoint
) -> None:
    _people(store, 1)

    with pytest.raises(ConfigError) as raised:
        _run(store, sync_config(endpoint=endpoint.url), FakeClock(), environ={})

    message = str(raised.value)
    assert "'fb'" in message
    assert "JM_TEST_META_TOKEN" in message
    assert "access_token" in message
    assert endpoint.requests == []
    assert outbox(store).empty


def test_sync_reads_secrets_file(store: Store, endpoint: Endpoint, tmp_path: Path) -> None:
    _people(store, 1)
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"JM_TEST_META_TOKEN: {TOKEN}\n", encoding="utf-8")
    config = sync_config(endpoint=endpoint.url)
    config = config.model_copy(
        update={"sync": config.sync.model_copy(update={"secrets_file": secrets})}
    )

    _run(store, config, FakeClock(), environ={})

    assert endpoint.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert list(outbox(store).status) == ["sent"]


def test_sync_unknown_destination_rejected(store: Store) -> None:
    with pytest.raises(ConfigError, match="unknown destination 'nope'"):
        sync(store, sync_config(), destinations=["nope"], environ=ENV)


def test_sync_keeps_secrets_and_raw_contacts_out(
    store: Store, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    _people(store, 2)
    # A platform that echoes the token in its error message.
    endpoint.script = [("reject", 401, f"Invalid OAuth access token {TOKEN}")]
    caplog.set_level(logging.DEBUG)

    _run(store, sync_config(endpoint=endpoint.url), FakeClock())

    tables = pd.concat([outbox(store).astype(str), _attempts(store).astype(str)], ignore_index=True)
    text = tables.to_csv(index=False) + caplog.text
    assert "Invalid OAuth access token ****" in text
    for secret in (TOKEN, RAW_EMAIL, RAW_EMAIL.lower(), RAW_PHONE, "4155550100"):
        assert secret not in text


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param("Tue, 10 Mar 2026 12:01:00 GMT", 60.0, id="http-date"),
        pytest.param("soon", None, id="invalid"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_retry_after_seconds_forms(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_sync_auth_error_stops_destination_rows_stay_queued(
    store: Store, endpoint: Endpoint
) -> None:
    _people(store, 4)
    endpoint.script = [("reject", 401, "Invalid OAuth access token")]
    clock = FakeClock()

    report = _run(store, sync_config(endpoint=endpoint.url), clock, adapter=FakeAdapter(2))

    rows = outbox(store)
    attempts = _attempts(store)
    assert len(endpoint.requests) == 1  # the second batch was not sent
    assert list(rows.status) == ["queued"] * 4
    assert list(rows.attempts) == [0] * 4
    assert set(rows.last_code.dropna()) == {"401"}
    assert list(attempts.outcome) == ["auth_error", "auth_error"]
    assert clock.sleeps == []
    assert "'fb'" in report.stopped["fb"]
    assert "Invalid OAuth access token" in report.stopped["fb"]
    assert TOKEN not in report.stopped["fb"]
    assert report.counts["fb"]["rejected"] == 0


def test_sync_auth_error_rows_sent_by_next_run(store: Store, endpoint: Endpoint) -> None:
    _people(store, 2)
    endpoint.script = [("reject", 403, "Permissions error")]
    clock = FakeClock()

    first = _run(store, sync_config(endpoint=endpoint.url), clock)
    second = _run(store, sync_config(endpoint=endpoint.url), clock)

    assert list(first.stopped) == ["fb"]
    assert second.stopped == {}
    assert list(outbox(store).status) == ["sent", "sent"]
    assert list(outbox(store).attempts) == [1, 1]


def test_sync_failed_batch_retried_as_one_request(store: Store, endpoint: Endpoint) -> None:
    _people(store, 40)
    endpoint.script = [("status", 500)]
    clock = FakeClock()

    sync(
        store,
        sync_config(endpoint=endpoint.url),
        adapters=fake_lookup(FakeAdapter(max_batch=40)),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        environ=ENV,
    )

    assert len(endpoint.requests) == 2
    assert len(endpoint.requests[1]["body"]["data"]) == 40
    assert len(clock.sleeps) == 1
    assert list(outbox(store).status) == ["sent"] * 40


def test_sync_retry_after_of_503_pauses_whole_destination(store: Store, endpoint: Endpoint) -> None:
    _people(store, 4)
    endpoint.script = [("status", 503, "30")]
    clock = FakeClock()

    _run(store, sync_config(endpoint=endpoint.url), clock, dice=0.0, adapter=FakeAdapter(2))

    attempts = _attempts(store)
    first = {item["event_id"] for item in endpoint.requests[0]["body"]["data"]}
    later = attempts[~attempts.event_id.isin(first)]
    assert clock.sleeps == [30.0]
    assert (later["at"] >= NOW + timedelta(seconds=30)).all()
    assert list(outbox(store).status) == ["sent"] * 4


def test_requeue_rows_rejected_back_to_queue(store: Store, endpoint: Endpoint) -> None:
    _people(store, 2)
    endpoint.script = [("reject", 400, "Invalid parameter")]
    clock = FakeClock()
    _run(store, sync_config(endpoint=endpoint.url), clock)

    requeued = ledger.requeue_rows(store, NOW, status="rejected", code="400")
    rows = outbox(store)
    attempts = _attempts(store)

    assert len(requeued) == 2
    assert list(rows.status) == ["queued", "queued"]
    assert list(rows.attempts) == [0, 0]
    assert sorted(attempts.outcome) == ["rejected", "rejected", "requeued", "requeued"]
    assert set(attempts[attempts.outcome == "requeued"].code) == {"400"}
    assert ledger.requeue_rows(store, NOW, status="rejected") == []
    _run(store, sync_config(endpoint=endpoint.url), clock)
    assert list(outbox(store).status) == ["sent", "sent"]


def test_requeue_rows_filters_by_code_and_destination(store: Store, endpoint: Endpoint) -> None:
    _people(store, 2)
    endpoint.script = [("reject", 400, "Invalid parameter")]
    _run(store, sync_config(endpoint=endpoint.url), FakeClock())

    assert ledger.requeue_rows(store, NOW, code="another") == []
    assert ledger.requeue_rows(store, NOW, destinations=["other"]) == []
    assert ledger.requeue_rows(store, NOW, status="failed") == []
    with pytest.raises(ValueError, match="cannot be requeued"):
        ledger.requeue_rows(store, NOW, status="sent")
