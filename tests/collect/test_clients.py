"""The real Segment and RudderStack Python clients deliver to the collector unchanged.

The collector runs under uvicorn on a loopback port. Each client sends one call of every type
through its own background consumer (the way applications use it), is flushed, and the tests
read the SQLite journal to check what was stored. The Segment client (2.4) sends the write
key both in the body and as HTTP Basic user name, uncompressed. The RudderStack client (2.1)
sends it only as Basic user name, and gzips the body by default.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rudderstack.analytics  # type: ignore[import-untyped]
import segment.analytics  # type: ignore[import-untyped]

from journeymap.collect.app import create_app
from journeymap.collect.drain import journal_events
from journeymap.common.config import parse_config
from tests.collect.server import running

WRITE_KEY = "client-test-key"
SOURCE = "backend"
EMAIL = " Ada.Lovelace@Example.COM "
EMAIL_HASH = hashlib.sha256(b"ada.lovelace@example.com").hexdigest()
LANDING_URL = (
    "https://www.example.com/pricing?utm_source=google&utm_medium=cpc"
    "&utm_campaign=spring_launch&utm_term=attribution&gclid=Cj0KCQ-test"
)
CLIENTS = ("segment", "rudderstack")


@dataclass
class Delivery:
    """What one client was asked to send, what it reported, and where the journal is."""

    name: str
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class Run:
    """The deliveries of every client to one collector."""

    journal: Path
    deliveries: dict[str, Delivery]


def make_client(name: str, host: str, on_error: Callable[[Exception, list[Any]], None]) -> Any:
    """Build a client with its defaults except a short upload interval and few retries."""
    options: dict[str, Any] = {
        "host": host,
        "on_error": on_error,
        "upload_interval": 0.05,
        "max_retries": 1,
        "timeout": 10,
    }
    if name == "segment":
        return segment.analytics.Client(WRITE_KEY, **options)
    return rudderstack.analytics.Client(WRITE_KEY, **options)


def send_every_call(client: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """Send one call of each type and return the message each client built, by type."""
    user = f"{prefix}-user-1"
    anonymous = f"{prefix}-anon-1"
    calls: dict[str, Callable[[], tuple[bool, dict[str, Any]]]] = {
        "track": lambda: client.track(
            user_id=user,
            event="Order Completed",
            properties={"revenue": 49.9, "currency": "USD", "order_id": f"{prefix}-order-1"},
        ),
        "identify": lambda: client.identify(
            user_id=user, traits={"email": EMAIL, "name": "Ada", "plan": "pro"}
        ),
        "page": lambda: client.page(
            anonymous_id=anonymous,
            name="Pricing",
            properties={"title": "Pricing"},
            context={
                "page": {
                    "url": LANDING_URL,
                    "referrer": "https://www.google.com/",
                    "path": "/pricing",
                },
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            },
        ),
        "group": lambda: client.group(
            user_id=user, group_id=f"{prefix}-account-1", traits={"name": "Acme", "employees": 40}
        ),
        "alias": lambda: client.alias(previous_id=anonymous, user_id=user),
    }
    sent = {}
    for kind, call in calls.items():
        queued, message = call()
        assert queued, f"the {prefix} client did not queue its {kind} call"
        sent[kind] = message
    return sent


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Start the collector, let both clients send every call type, and flush them."""
    folder = tmp_path_factory.mktemp("clients")
    journal = folder / "collector.journal"
    config = parse_config(
        {
            "store": str(folder / "store.duckdb"),
            "collector": {"sources": {SOURCE: {"write_key": WRITE_KEY}}},
        }
    )
    app = create_app(config, journal_path=journal, store_path=None, drain_every=3600)

    deliveries = {name: Delivery(name) for name in CLIENTS}
    with running(app) as url:
        for name, delivery in deliveries.items():

            def record(error: Exception, batch: list[Any], delivery: Delivery = delivery) -> None:
                delivery.errors.append(f"{error!r} for {len(batch)} messages")

            client = make_client(name, url, record)
            delivery.sent = send_every_call(client, name)
            client.flush()
            client.join()

    return Run(journal=journal, deliveries=deliveries)


def stored(journal: Path, message_id: str) -> list[dict[str, Any]]:
    """Return the event columns of every journaled ``message_id``, with its raw JSON."""
    con = sqlite3.connect(journal)
    try:
        raws = con.execute(
            "SELECT raw FROM journal WHERE message_id = ? ORDER BY jseq", (message_id,)
        ).fetchall()
    finally:
        con.close()
    events = [e for e in journal_events(journal).to_pylist() if e["message_id"] == message_id]
    assert len(events) == len(raws)
    return [{**event, "raw": raw.decode()} for event, (raw,) in zip(events, raws, strict=True)]


def stored_once(run: Run, client: str, kind: str) -> dict[str, Any]:
    """Return the single journal row of the ``kind`` call that ``client`` sent."""
    message = run.deliveries[client].sent[kind]
    rows = stored(run.journal, message["messageId"])
    assert len(rows) == 1, f"{client} {kind} {message['messageId']} is stored {len(rows)} times"
    return rows[0]


@pytest.mark.parametrize("client", CLIENTS)
def test_client_reports_no_errors(run: Run, client: str) -> None:
    assert run.deliveries[client].errors == []


@pytest.mark.parametrize("client", CLIENTS)
def test_client_calls_stored_once_each(run: Run, client: str) -> None:
    delivery = run.deliveries[client]

    rows = [
        (event["message_id"], event["type"])
        for event in journal_events(run.journal).to_pylist()
        if f"{event['user_id']}|{event['anonymous_id']}".count(f"{client}-") > 0
    ]

    expected = {message["messageId"]: kind for kind, message in delivery.sent.items()}
    assert len(rows) == len(expected)
    assert dict(rows) == expected


def test_journal_has_no_duplicate_message(run: Run) -> None:
    con = sqlite3.connect(run.journal)
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT source || '/' || message_id) FROM journal"
        ).fetchone()
    finally:
        con.close()

    assert total == len(CLIENTS) * 5
    assert distinct == total


@pytest.mark.parametrize("client", CLIENTS)
def test_client_calls_belong_to_source(run: Run, client: str) -> None:
    for kind in run.deliveries[client].sent:
        assert stored_once(run, client, kind)["source"] == SOURCE


@pytest.mark.parametrize("client", CLIENTS)
def test_client_track_stores_event_and_revenue(run: Run, client: str) -> None:
    row = stored_once(run, client, "track")

    assert row["type"] == "track"
    assert row["user_id"] == f"{client}-user-1"
    assert row["event"] == "Order Completed"
    assert row["revenue"] == 49.9
    assert json.loads(row["properties"]) == {
        "revenue": 49.9,
        "currency": "USD",
        "order_id": f"{client}-order-1",
    }


@pytest.mark.parametrize("client", CLIENTS)
def test_client_track_timestamp_is_skew_corrected(run: Run, client: str) -> None:
    message = run.deliveries[client].sent["track"]
    row = stored_once(run, client, "track")

    sent_stamp = datetime.fromisoformat(message["timestamp"])
    original = row["original_timestamp"]
    corrected = row["timestamp"]
    received = row["received_at"]
    assert abs(original - sent_stamp) < timedelta(milliseconds=1)
    assert row["sent_at"] is not None
    assert corrected <= received
    assert received - corrected < timedelta(seconds=30)


@pytest.mark.parametrize("client", CLIENTS)
def test_client_identify_stores_email_hash_only(run: Run, client: str) -> None:
    row = stored_once(run, client, "identify")

    assert row["type"] == "identify"
    assert row["user_id"] == f"{client}-user-1"
    assert row["email_hash"] == EMAIL_HASH
    assert row["email_domain"] == "example.com"
    assert json.loads(row["traits"]) == {"name": "Ada", "plan": "pro"}
    assert "lovelace" not in row["traits"].lower()
    assert "lovelace" not in (row["context"] or "").lower()


@pytest.mark.parametrize("client", CLIENTS)
def test_client_page_stores_campaign_and_click_id(run: Run, client: str) -> None:
    row = stored_once(run, client, "page")

    assert row["type"] == "page"
    assert row["anonymous_id"] == f"{client}-anon-1"
    assert row["user_id"] is None
    assert row["event"] == "Pricing"
    assert row["page_url"] == LANDING_URL
    assert row["page_host"] == "example.com"
    assert row["referrer_host"] == "google.com"
    assert row["utm_source"] == "google"
    assert row["utm_medium"] == "cpc"
    assert row["utm_campaign"] == "spring_launch"
    assert row["utm_term"] == "attribution"
    assert row["utm_content"] is None
    assert row["click_id"] == "Cj0KCQ-test"
    assert row["click_platform"] == "google_ads"
    assert row["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"


@pytest.mark.parametrize("client", CLIENTS)
def test_client_group_stores_group_id_and_traits(run: Run, client: str) -> None:
    row = stored_once(run, client, "group")

    assert row["type"] == "group"
    assert row["user_id"] == f"{client}-user-1"
    assert row["group_id"] == f"{client}-account-1"
    assert json.loads(row["traits"]) == {"name": "Acme", "employees": 40}


@pytest.mark.parametrize("client", CLIENTS)
def test_client_alias_stores_both_ids(run: Run, client: str) -> None:
    row = stored_once(run, client, "alias")

    assert row["type"] == "alias"
    assert row["previous_id"] == f"{client}-anon-1"
    assert row["user_id"] == f"{client}-user-1"


@pytest.mark.parametrize("client", CLIENTS)
def test_client_raw_message_matches_sent(run: Run, client: str) -> None:
    """The journal keeps each message as the client built it, apart from the batch's sentAt."""
    for kind, message in run.deliveries[client].sent.items():
        raw = json.loads(stored_once(run, client, kind)["raw"])
        assert raw == message, f"{client} {kind}"


@pytest.mark.parametrize("name", CLIENTS)
def test_client_resend_of_message_id_is_stored_once(tmp_path: Path, name: str) -> None:
    """A client that sends one messageId twice, as after a lost response, stores one row."""
    journal = tmp_path / "collector.journal"
    config = parse_config(
        {
            "store": str(tmp_path / "store.duckdb"),
            "collector": {"sources": {SOURCE: {"write_key": WRITE_KEY}}},
        }
    )
    app = create_app(config, journal_path=journal, store_path=None, drain_every=3600)
    errors: list[str] = []

    with running(app) as url:
        client = make_client(name, url, lambda error, batch: errors.append(repr(error)))
        for _ in range(2):
            client.track(user_id="u-1", event="Signed Up", message_id="resent-1")
            client.flush()
        client.join()

    assert errors == []
    assert len(stored(journal, "resent-1")) == 1
