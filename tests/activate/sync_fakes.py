"""Test doubles of the conversion sync: a store with conversions, a fake adapter, a clock.

``FakeAdapter`` speaks a small JSON protocol: ``POST {endpoint}/events`` with
``{"data": [{"event_id", "event_name", "value", "keys"}]}``, answered by
``{"results": [{"event_id", "status", "code"?, "message"?}]}``. HTTP 429 and 5xx make every
row a retry (the delivery loop adds the response's Retry-After); another 4xx rejects every
row with the ``error.message`` of the body, except 401 and 403, which are ``auth_error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from journeymap.activate.base import Outcome, Request, SendRow
from journeymap.common.config import Config, SyncDestination, parse_config
from journeymap.store.store import Store

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TOKEN = "tok-SECRET-4242"
RAW_EMAIL = "Jane.Doe@Example.com"
RAW_PHONE = "+1 415 555 0100"
EMAIL_HASH = "a" * 64


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def add_conversions(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append conversions; ``seq`` numbers them in order when a row gives none."""
    frame = pd.DataFrame([{"seq": index + 1, **row} for index, row in enumerate(rows)])
    frame["occurred_at"] = frame["occurred_at"].map(ts)
    store.append("conversions", frame)


class FakeClock:
    """A clock that only moves when the fake sleep is called."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


class FakeAdapter:
    """An adapter of the small JSON protocol of this module."""

    platform = "meta"

    def __init__(self, max_batch: int = 3, window_days: float = 7) -> None:
        self.max_batch = max_batch
        self.window = timedelta(days=window_days)

    def check(self, row: SendRow, destination: SyncDestination, now: datetime) -> Outcome | None:
        if row.occurred_at < now - self.window:
            return Outcome(row.event_id, "skipped", "too_old", "older than the window")
        if not row.keys:
            return Outcome(row.event_id, "skipped", "no_keys", "no match key")
        return None

    def prepare(self, row: SendRow, destination: SyncDestination, now: datetime) -> SendRow:
        return row

    def requests(
        self,
        rows: Sequence[SendRow],
        destination: SyncDestination,
        credentials: Mapping[str, str],
    ) -> list[Request]:
        base = destination.endpoint or "http://127.0.0.1:9"
        result = []
        for start in range(0, len(rows), self.max_batch):
            chunk = rows[start : start + self.max_batch]
            body = {
                "data": [
                    {
                        "event_id": row.event_id,
                        "event_name": row.action,
                        "value": row.value,
                        "keys": dict(row.keys),
                    }
                    for row in chunk
                ]
            }
            result.append(
                Request(
                    method="POST",
                    url=f"{base}/events",
                    headers={"Authorization": f"Bearer {credentials.get('access_token', '')}"},
                    json=body,
                    event_ids=tuple(row.event_id for row in chunk),
                )
            )
        return result

    def outcomes(
        self, request: Request, status_code: int, body: bytes, headers: Mapping[str, str]
    ) -> list[Outcome]:
        if status_code == 429 or status_code >= 500:
            return [Outcome(event_id, "retry", str(status_code)) for event_id in request.event_ids]
        payload = json.loads(body or b"{}")
        if status_code >= 400:
            message = str(payload.get("error", {}).get("message", f"HTTP {status_code}"))
            status = "auth_error" if status_code in (401, 403) else "rejected"
            return [
                Outcome(event_id, status, str(status_code), message)
                for event_id in request.event_ids
            ]
        return [
            Outcome(
                item["event_id"],
                item["status"],
                item.get("code"),
                item.get("message"),
                item.get("retry_after"),
            )
            for item in payload["results"]
        ]


def fake_lookup(adapter: FakeAdapter) -> Any:
    return lambda platform: adapter


def sync_config(**destination: Any) -> Config:
    """Return a configuration with one Meta destination ``fb`` for lead and closed_won."""
    settings: dict[str, Any] = {
        "platform": "meta",
        "account": "123",
        "actions": {"closed_won": "Purchase", "lead": "Lead"},
        "endpoint": "http://127.0.0.1:9",
        "credentials_env": {"access_token": "JM_TEST_META_TOKEN"},
    }
    settings.update(destination)
    return parse_config(
        {
            "sync": {
                "destinations": {"fb": settings},
                "backoff_seconds": 1,
                "max_attempts": 4,
                "retry_within_seconds": 3600,
            }
        }
    )


def outbox(store: Store) -> pd.DataFrame:
    frame: pd.DataFrame = store.table("sync_outbox").to_pandas()
    return frame.sort_values("conversion_id", ignore_index=True)
