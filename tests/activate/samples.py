"""Outbox rows, destinations and hand-computed digests for the adapter tests.

The expected digests are computed here with :mod:`hashlib` from addresses and numbers
normalised by hand, never with :mod:`journeymap.common.identifiers`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from journeymap.activate.base import SendRow
from journeymap.common.config import SyncDestination
from tests.activate.receiver import Receiver

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
"""The time of the tests' checks and of the receiver's window checks."""

MIXED_CASE_EMAIL = "  John.Doe@Example.COM "
GMAIL_WITH_DOTS = "Jane.Q.Public@GMail.com"
US_PHONE = "+1 (415) 555-0132"
BERLIN_PHONE = "030 1234567"
"""A Berlin number written without its country code (region DE)."""


def sha256(text: str) -> str:
    """Return the lowercase hex SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


EMAIL_PLAIN = sha256("john.doe@example.com")
"""Trimmed and lowercased: Meta, LinkedIn, Microsoft and Google (not a Gmail address)."""
GMAIL_PLAIN = sha256("jane.q.public@gmail.com")
"""The Gmail address trimmed and lowercased, dots kept (Meta, LinkedIn, Microsoft)."""
GMAIL_GOOGLE = sha256("janeqpublic@gmail.com")
"""The Gmail address as Google normalises it: no dots before the ``@``."""
PHONE_DIGITS = sha256("14155550132")
"""Meta: the digits with the country code, no ``+``."""
PHONE_E164 = sha256("+14155550132")
"""Google and Microsoft: E.164 with the ``+``."""
BERLIN_E164 = sha256("+49301234567")
PREHASHED = sha256("someone who was hashed upstream")


def destination(platform: str, receiver: Receiver | None = None, **fields: Any) -> SyncDestination:
    """Return a destination of ``platform`` that sends to ``receiver``."""
    accounts = {
        "meta": "123456789012345",
        "google": "123-456-7890",
        "google_data_manager": "1234567890",
        "linkedin": "507001",
        "microsoft": "1500123",
    }
    actions = {
        "meta": {"closed_won": "Purchase"},
        "google": {"closed_won": "987654321"},
        "google_data_manager": {"closed_won": "987654321"},
        "linkedin": {"closed_won": "123456"},
        "microsoft": {"closed_won": "Closed won"},
    }
    values: dict[str, Any] = {
        "platform": platform,
        "account": accounts[platform],
        "actions": actions[platform],
        "currency": "USD",
    }
    if receiver is not None:
        values["endpoint"] = receiver.url
    values.update(fields)
    return SyncDestination(**values)


def row(
    platform: str,
    event_id: str = "evt-1",
    *,
    occurred_at: datetime | None = None,
    keys: dict[str, str] | None = None,
    value: float | None = 1250.0,
    **fields: Any,
) -> SendRow:
    """Return an outbox row of ``platform``'s closed-won action, two hours before :data:`NOW`,
    with the platform's click id unless ``keys`` is given."""
    actions = {
        "meta": "Purchase",
        "google": "987654321",
        "google_data_manager": "987654321",
        "linkedin": "123456",
        "microsoft": "Closed won",
    }
    clicks = {
        "meta": {"fbc": "fb.1.1763200000000.IwAR2abc", "fbp": "fb.1.1763200000000.1234567890"},
        "google": {"gclid": "Cj0KCQiA-test-gclid"},
        "google_data_manager": {"gclid": "Cj0KCQiA-test-gclid"},
        "linkedin": {"li_fat_id": "6f1e8a52-3b1c-4d7e-9a0f-1c2d3e4f5a6b"},
        "microsoft": {"msclkid": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
    }
    return SendRow(
        event_id=event_id,
        destination=f"{platform}-test",
        conversion_id=f"conv-{event_id}",
        kind="closed_won",
        action=actions[platform],
        occurred_at=occurred_at or NOW - timedelta(hours=2),
        value=value,
        keys=clicks[platform] if keys is None else keys,
        **fields,
    )
