"""The collector's routes: authentication, limits, clock skew, deduplication and responses."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient

from journeymap.collect import app as collector_app
from journeymap.collect.drain import journal_events
from journeymap.collect.keys import key_file
from journeymap.common.config import Config, parse_config

KEY = "test-key"
RECEIVED = datetime(2026, 3, 1, 12, 10, 5, tzinfo=UTC)


def settings(tmp_path: Path, **collector: Any) -> Config:
    return parse_config(
        {
            "store": str(tmp_path / "store.duckdb"),
            "collector": {"sources": {"web": {"write_key": KEY}}, **collector},
        }
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = collector_app.create_app(settings(tmp_path), store_path=None, drain_every=3600)
    with mock.patch.object(collector_app, "now", return_value=RECEIVED), TestClient(app) as test:
        yield test


def journal_rows(tmp_path: Path, columns: str) -> list[tuple[Any, ...]]:
    """Return the named event columns of every journaled message; times as ISO text."""
    events = journal_events(tmp_path / "store.duckdb.journal").to_pylist()
    names = [name.strip() for name in columns.split(",")]
    return [
        tuple(
            event[name].isoformat(timespec="microseconds")
            if isinstance(event[name], datetime)
            else event[name]
            for name in names
        )
        for event in events
    ]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_batch_with_sent_at_corrects_clock_skew(client: TestClient, tmp_path: Path) -> None:
    body = {
        "writeKey": KEY,
        "sentAt": "2026-03-01T12:00:05.000Z",
        "batch": [
            {"type": "track", "event": "A", "userId": "u", "timestamp": "2026-03-01T11:59:00.000Z"},
            {"type": "track", "event": "B", "userId": "u", "timestamp": "2026-03-01T12:00:04.500Z"},
        ],
    }
    answer = client.post("/v1/batch", json=body)
    assert answer.status_code == 200, answer.text
    rows = journal_rows(tmp_path, "event, timestamp, original_timestamp")
    assert rows == [
        ("A", "2026-03-01T12:09:00.000000+00:00", "2026-03-01T11:59:00.000000+00:00"),
        ("B", "2026-03-01T12:10:04.500000+00:00", "2026-03-01T12:00:04.500000+00:00"),
    ]


def test_batch_without_sent_at_is_stored_as_stamped(client: TestClient, tmp_path: Path) -> None:
    body = {
        "writeKey": KEY,
        "batch": [
            {"type": "track", "event": "A", "userId": "u", "timestamp": "2026-03-01T11:59:00.000Z"}
        ],
    }
    assert client.post("/v1/batch", json=body).status_code == 200
    assert journal_rows(tmp_path, "timestamp") == [("2026-03-01T11:59:00.000000+00:00",)]


def test_message_without_stamp_happens_when_received(client: TestClient, tmp_path: Path) -> None:
    answer = client.post("/v1/track", json={"event": "A", "userId": "u"}, headers=basic(KEY))
    assert answer.is_success
    assert journal_rows(tmp_path, "timestamp") == [("2026-03-01T12:10:05.000000+00:00",)]


def test_same_message_id_is_stored_once(client: TestClient, tmp_path: Path) -> None:
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u",
        "messageId": "m-1",
        "properties": {"revenue": 100},
    }
    first = client.post("/v1/batch", json={"writeKey": KEY, "batch": [message]})
    retry = client.post("/v1/batch", json={"writeKey": KEY, "batch": [message]})
    fresh = client.post(
        "/v1/batch", json={"writeKey": KEY, "batch": [{**message, "messageId": "m-2"}]}
    )
    assert first.json()["stored"] == 1
    assert retry.status_code == 200
    assert retry.json() == {
        "success": True,
        "stored": 0,
        "duplicates": 1,
    }
    assert fresh.json()["stored"] == 1
    rows = journal_rows(tmp_path, "message_id, revenue")
    assert rows == [("m-1", 100.0), ("m-2", 100.0)]
    assert sum(revenue for _, revenue in rows) == 200


def test_message_id_is_deduplicated_per_source(tmp_path: Path) -> None:
    config = parse_config(
        {
            "store": str(tmp_path / "store.duckdb"),
            "collector": {
                "sources": {"web": {"write_key": "k-web"}, "server": {"write_key": "k-server"}}
            },
        }
    )
    app = collector_app.create_app(config, store_path=None, drain_every=3600)
    message = {"event": "A", "userId": "u", "messageId": "same"}
    with TestClient(app) as test:
        assert test.post("/v1/track", json=message, headers=basic("k-web")).json()["stored"] == 1
        assert test.post("/v1/track", json=message, headers=basic("k-server")).json()["stored"] == 1
    assert journal_rows(tmp_path, "source") == [("web",), ("server",)]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, {"event": "A", "userId": "u"}),
        (basic("wrong"), {"event": "A", "userId": "u"}),
        ({}, {"event": "A", "userId": "u", "writeKey": "wrong"}),
        ({"Authorization": "Basic !!!"}, {"event": "A", "userId": "u"}),
    ],
    ids=["none", "unknown-basic", "unknown-body", "garbled-basic"],
)
def test_write_key_missing_or_unknown_is_401(
    client: TestClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    answer = client.post("/v1/track", json=body, headers=headers)
    assert answer.status_code == 401
    assert "write key" in answer.json()["message"]


def test_write_key_in_body_is_accepted(client: TestClient) -> None:
    answer = client.post("/v1/identify", json={"userId": "u", "writeKey": KEY})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "reason"),
    [
        ("/v1/track", {"userId": "u"}, "'event'"),
        ("/v1/track", {"event": "A"}, "'userId' or 'anonymousId'"),
        ("/v1/alias", {"userId": "u"}, "'previousId'"),
        ("/v1/group", {"userId": "u"}, "'groupId'"),
        ("/v1/track", {"event": "A", "userId": "u", "timestamp": "yesterday"}, "'timestamp'"),
        ("/v1/track", {"event": "A", "userId": {"id": 1}}, "'userId'"),
        ("/v1/track", {"event": "A", "userId": "u", "context": []}, "'context'"),
        ("/v1/batch", {"batch": []}, "'batch'"),
        ("/v1/batch", {"batch": [{"type": "click", "userId": "u"}]}, "message 0: field 'type'"),
        (
            "/v1/batch",
            {"batch": [{"type": "track", "event": "A", "userId": "u"}, {"type": "track"}]},
            "message 1 (track)",
        ),
    ],
)
def test_invalid_message_is_400_naming_message_and_field(
    client: TestClient, route: str, body: dict[str, Any], reason: str
) -> None:
    answer = client.post(route, json=body, headers=basic(KEY))
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["message"]


def test_invalid_batch_stores_nothing(client: TestClient, tmp_path: Path) -> None:
    body = {"batch": [{"type": "track", "event": "A", "userId": "u"}, {"type": "track"}]}
    assert client.post("/v1/batch", json=body, headers=basic(KEY)).status_code == 400
    assert journal_rows(tmp_path, "message_id") == []


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"event": "A", "userId": NaN}'], ids=str
)
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    answer = client.post("/v1/track", content=body, headers=basic(KEY))
    assert answer.status_code == 400


def test_message_above_32kb_is_413(client: TestClient) -> None:
    body = {"event": "A", "userId": "u", "properties": {"text": "x" * 33_000}}
    assert client.post("/v1/track", json=body, headers=basic(KEY)).status_code == 413


def test_batch_above_500kb_is_413(client: TestClient) -> None:
    message = {"type": "track", "event": "A", "userId": "u", "properties": {"text": "x" * 20_000}}
    body = {"batch": [message] * 30}
    assert client.post("/v1/batch", json=body, headers=basic(KEY)).status_code == 413


def test_higher_batch_limit_accepts_large_batches(tmp_path: Path) -> None:
    config = settings(tmp_path, batch_limit_kb=4000)
    app = collector_app.create_app(config, store_path=None, drain_every=3600)
    message = {"type": "track", "event": "A", "userId": "u", "properties": {"text": "x" * 20_000}}
    with TestClient(app) as test:
        answer = test.post("/v1/batch", json={"batch": [message] * 30}, headers=basic(KEY))
    assert answer.status_code == 200
    assert answer.json()["stored"] == 30


def test_gzip_body_is_accepted(client: TestClient, tmp_path: Path) -> None:
    body = gzip.compress(json.dumps({"event": "A", "anonymousId": "a"}).encode())
    headers = {**basic(KEY), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/v1/track", content=body, headers=headers).status_code == 200
    assert journal_rows(tmp_path, "event, anonymous_id") == [("A", "a")]


def test_gzip_bomb_is_413(client: TestClient) -> None:
    body = gzip.compress(b'{"event": "A", "userId": "u", "p": "' + b"x" * 2_000_000 + b'"}')
    headers = {**basic(KEY), "Content-Encoding": "gzip"}
    assert client.post("/v1/batch", content=body, headers=headers).status_code == 413


def test_broken_gzip_is_400(client: TestClient) -> None:
    headers = {**basic(KEY), "Content-Encoding": "gzip"}
    assert client.post("/v1/track", content=b"not gzip", headers=headers).status_code == 400


def test_text_plain_body_from_browser_is_accepted(client: TestClient) -> None:
    body = json.dumps({"event": "A", "anonymousId": "a", "writeKey": KEY})
    answer = client.post("/v1/track", content=body, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 200


def test_fields_of_a_landing_page(client: TestClient, tmp_path: Path) -> None:
    message = {
        "anonymousId": "a",
        "context": {
            "page": {
                "url": "https://www.example.com/?utm_source=Google&utm_medium=CPC&gclid=X",
                "referrer": "https://www.google.com/",
            },
            "userAgent": "Mozilla/5.0",
        },
    }
    assert client.post("/v1/page", json=message, headers=basic(KEY)).status_code == 200
    assert journal_rows(
        tmp_path,
        "type, page_host, referrer_host, utm_source, utm_medium, click_id, click_platform",
    ) == [("page", "example.com", "google.com", "Google", "CPC", "X", "google_ads")]


def test_context_campaign_wins_over_url(client: TestClient, tmp_path: Path) -> None:
    message = {
        "anonymousId": "a",
        "context": {
            "campaign": {"source": "linkedin", "medium": "paid_social", "name": "q1"},
            "clickIds": {"li_fat_id": "L"},
            "page": {"url": "https://example.com/?utm_source=other"},
        },
    }
    assert client.post("/v1/page", json=message, headers=basic(KEY)).status_code == 200
    assert journal_rows(
        tmp_path, "utm_source, utm_medium, utm_campaign, click_id, click_platform"
    ) == [("linkedin", "paid_social", "q1", "L", "linkedin_ads")]


def test_email_is_hashed_and_not_stored_raw(client: TestClient, tmp_path: Path) -> None:
    message = {"userId": "u", "traits": {"email": " Alice@Example.COM ", "plan": "pro"}}
    assert client.post("/v1/identify", json=message, headers=basic(KEY)).status_code == 200
    [(email_hash, domain, traits)] = journal_rows(tmp_path, "email_hash, email_domain, traits")
    assert email_hash == "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"
    assert domain == "example.com"
    assert json.loads(traits) == {"plan": "pro"}


def test_cookie_fills_anonymous_id_and_is_set(client: TestClient, tmp_path: Path) -> None:
    client.cookies.set("jm_aid", "cookie-id")
    headers = {**basic(KEY), "Origin": "https://www.example.com"}
    answer = client.post("/v1/page", json={"userId": "u"}, headers=headers)
    client.cookies.clear()
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("jm_aid=cookie-id;")
    assert "Max-Age=34128000" in cookie
    assert "SameSite=lax" in cookie
    assert journal_rows(tmp_path, "anonymous_id, user_id") == [("cookie-id", "u")]


def test_server_clients_get_no_cookie(client: TestClient) -> None:
    answer = client.post("/v1/page", json={"anonymousId": "a"}, headers=basic(KEY))
    assert "set-cookie" not in answer.headers


def test_cors_allows_configured_origins_only(tmp_path: Path) -> None:
    config = settings(tmp_path, allowed_origins=["https://www.example.com"])
    app = collector_app.create_app(config, store_path=None, drain_every=3600)
    with TestClient(app) as test:
        allowed = test.options(
            "/v1/track",
            headers={
                "Origin": "https://www.example.com",
                "Access-Control-Request-Method": "POST",
            },
        )
        other = test.options(
            "/v1/track",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://www.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in other.headers


def test_health_ready_and_metrics(client: TestClient) -> None:
    message = {"event": "A", "userId": "u", "messageId": "1"}
    client.post("/v1/track", json=message, headers=basic(KEY))
    client.post("/v1/track", json=message, headers=basic(KEY))
    client.post("/v1/track", json={"event": "A"}, headers=basic(KEY))
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    metrics = client.get("/metrics").text
    assert 'journeymap_events_received_total{source="web",type="track"} 2.0' in metrics
    assert 'journeymap_events_stored_total{source="web"} 1.0' in metrics
    assert 'journeymap_events_duplicate_total{source="web"} 1.0' in metrics
    assert 'journeymap_requests_rejected_total{status="400"} 1.0' in metrics


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for kind in ("track", "identify", "page", "screen", "group", "alias", "batch"):
        operation = paths[f"/v1/{kind}"]["post"]
        assert "requestBody" in operation
        assert {"200", "400", "401", "413"} <= set(operation["responses"])
    assert {"/health", "/ready", "/metrics"} <= set(paths)


def test_default_source_key_file_is_private(tmp_path: Path) -> None:
    config = parse_config({"store": str(tmp_path / "store.duckdb")})
    app = collector_app.create_app(config, store_path=None, drain_every=3600)
    journal = tmp_path / "store.duckdb.journal"
    path = key_file(journal)
    key = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o600
    with TestClient(app) as test:
        answer = test.post("/v1/track", json={"event": "A", "userId": "u"}, headers=basic(key))
    assert answer.status_code == 200
    assert journal_rows(tmp_path, "source") == [("default",)]


def test_revenue_above_limit_is_400(client: TestClient) -> None:
    body = {"event": "Order Completed", "userId": "u", "properties": {"revenue": 1e20}}
    answer = client.post("/v1/track", json=body, headers=basic(KEY))
    assert answer.status_code == 400
    assert "properties.revenue" in answer.json()["message"]


def test_lowercase_z_offset_is_utc(client: TestClient, tmp_path: Path) -> None:
    body = {"event": "A", "userId": "u", "timestamp": "2026-03-01T10:00:00z"}
    assert client.post("/v1/track", json=body, headers=basic(KEY)).status_code == 200
    assert journal_rows(tmp_path, "timestamp") == [("2026-03-01T10:00:00.000000+00:00",)]


def test_write_key_not_kept_in_journal(client: TestClient, tmp_path: Path) -> None:
    assert client.post("/v1/track", json={"event": "A", "userId": "u", "writeKey": KEY}).is_success
    con = sqlite3.connect(tmp_path / "store.duckdb.journal")
    try:
        [(raw,)] = con.execute("SELECT raw FROM journal").fetchall()
    finally:
        con.close()
    assert KEY.encode() not in raw


def test_journal_is_private_to_owner(client: TestClient, tmp_path: Path) -> None:
    assert (tmp_path / "store.duckdb.journal").stat().st_mode & 0o777 == 0o600


def test_personal_data_kept_out_of_events(client: TestClient, tmp_path: Path) -> None:
    message = {
        "event": "Form Submitted",
        "anonymousId": "a",
        "properties": {"Email": "Ann@Acme.io", "form": "demo"},
        "context": {
            "ip": "203.0.113.7",
            "page": {"url": "https://example.com/thanks?email=ann%40acme.io&utm_source=x"},
        },
    }
    assert client.post("/v1/track", json=message, headers=basic(KEY)).status_code == 200
    [(email_hash, properties, context, page_url)] = journal_rows(
        tmp_path, "email_hash, properties, context, page_url"
    )
    assert email_hash == hashlib.sha256(b"ann@acme.io").hexdigest()
    assert json.loads(properties) == {"form": "demo"}
    assert "203.0.113.7" not in context
    assert "acme" not in context
    assert page_url == "https://example.com/thanks?email=redacted&utm_source=x"
