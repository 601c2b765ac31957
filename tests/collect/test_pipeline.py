"""Collected events end to end: collector, journal, store, identities, journeys and credits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from journeymap import api
from journeymap.collect.app import create_app
from journeymap.common.config import Config, parse_config
from journeymap.store.store import Store

KEY = "pipeline-key"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(
        {
            "store": str(tmp_path / "store.duckdb"),
            "collector": {"sources": {"web": {"write_key": KEY}}},
            "sessions": {"own_domains": ["example.com"]},
        }
    )


def collect(config: Config, messages: list[dict[str, Any]]) -> None:
    """Send the messages as one batch; leaving the client drains the journal into the store."""
    app = create_app(config, drain_every=3600)
    with TestClient(app) as client:
        answer = client.post("/v1/batch", json={"batch": messages}, auth=(KEY, ""))
        assert answer.status_code == 200, answer.text


def page(anonymous_id: str, at: str, url: str, referrer: str | None = None) -> dict[str, Any]:
    return {
        "type": "page",
        "anonymousId": anonymous_id,
        "timestamp": at,
        "context": {"page": {"url": url, "referrer": referrer}},
    }


def track(at: str, event: str, **ids: str) -> dict[str, Any]:
    return {"type": "track", "event": event, "timestamp": at, **ids}


def identify(at: str, user_id: str, anonymous_id: str) -> dict[str, Any]:
    return {"type": "identify", "userId": user_id, "anonymousId": anonymous_id, "timestamp": at}


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = Store.open(config.store)
    yield opened
    opened.close()


def test_fbclid_landing_organic_social_everywhere(config: Config) -> None:
    collect(
        config,
        [
            page(
                "anon-1",
                "2026-03-01T10:00:00Z",
                "https://www.example.com/?fbclid=F1",
                "https://l.facebook.com/",
            ),
            track("2026-03-01T10:05:00Z", "Demo Requested", anonymousId="anon-1"),
        ],
    )
    store = Store.open(config.store)
    try:
        journeys = api.build(store, config)
        touches = journeys.touches.to_pandas()
        run = api.attribute(store, journeys, models=["first_touch", "last_touch"], config=config)
        credits = api.credit_table(run.credits, by="channel")
    finally:
        store.close()
    assert touches.channel.tolist() == ["Organic Social"]
    assert set(credits.channel) == {"Organic Social"}
    assert credits.conversions.tolist() == [1.0, 1.0]


def test_identity_example_gives_conversion_to_bob(config: Config) -> None:
    collect(
        config,
        [
            identify("2026-03-01T10:00:00Z", "alice", "anon_a1"),
            identify("2026-03-01T10:01:00Z", "bob", "anon_b1"),
            page(
                "anon_b1",
                "2026-03-01T10:01:30Z",
                "https://www.example.com/?utm_source=google&utm_medium=cpc",
            ),
            track("2026-03-01T10:02:00Z", "Demo Requested", anonymousId="anon_b1"),
            identify("2026-03-01T10:03:00Z", "alice", "anon_b1"),
            track("2026-03-01T10:04:00Z", "Pricing Viewed", anonymousId="anon_a2"),
            identify("2026-03-01T10:05:00Z", "alice", "anon_a2"),
        ],
    )
    store = Store.open(config.store)
    try:
        journeys = api.build(store, config).journeys.to_pandas()
        identities = store.table("identities").to_pandas()
        conversions = store.table("collected_conversions").to_pandas()
    finally:
        store.close()
    people = identities.groupby("person_id").id.apply(set).to_dict()
    assert people == {"alice": {"alice", "anon_a1", "anon_a2"}, "bob": {"bob", "anon_b1"}}
    assert conversions.person_id.tolist() == ["bob"]
    converted = journeys[journeys.conversions > 0]
    assert converted.entity_id.tolist() == ["bob"]
    assert converted.n_touches.tolist() == [1]


def test_own_domain_referral_is_no_touch(config: Config) -> None:
    collect(
        config,
        [
            page(
                "a", "2026-03-01T10:00:00Z", "https://example.com/?utm_source=news&utm_medium=email"
            ),
            page(
                "a",
                "2026-03-01T12:00:00Z",
                "https://example.com/pricing",
                "https://blog.example.com/",
            ),
            track("2026-03-01T12:01:00Z", "Signed Up", anonymousId="a"),
        ],
    )
    store = Store.open(config.store)
    try:
        touches = api.build(store, config).touches.to_pandas()
    finally:
        store.close()
    assert touches.channel.tolist() == ["Email"]


def test_build_drains_leftover_journal(config: Config) -> None:
    app = create_app(config, store_path=None, drain_every=3600)
    with TestClient(app) as client:
        client.post(
            "/v1/batch",
            json={"batch": [track("2026-03-01T10:00:00Z", "Signed Up", userId="u")]},
            auth=(KEY, ""),
        )
    store = Store.open(config.store)
    try:
        journeys = api.build(store, config).journeys.to_pandas()
    finally:
        store.close()
    assert journeys.conversions.sum() == 1


def test_account_comes_from_company_email(config: Config) -> None:
    collect(
        config,
        [
            {
                "type": "identify",
                "userId": "u1",
                "anonymousId": "a1",
                "traits": {"email": "ann@acme.io"},
                "timestamp": "2026-03-01T09:00:00Z",
            },
            page(
                "a1",
                "2026-03-01T10:00:00Z",
                "https://example.com/?utm_source=google&utm_medium=cpc",
            ),
            track("2026-03-01T10:05:00Z", "Trial Started", userId="u1"),
        ],
    )
    store = Store.open(config.store)
    try:
        api.build(store, config)
        touches = store.table("collected_touchpoints").to_pandas()
        conversions = store.table("collected_conversions").to_pandas()
    finally:
        store.close()
    assert touches.account_id.tolist() == ["acme.io"]
    assert conversions.account_id.tolist() == ["acme.io"]
    assert pd.notna(conversions.occurred_at).all()


def test_build_works_before_the_first_drain(config: Config) -> None:
    from typer.testing import CliRunner

    from journeymap.cli import app as cli

    app = create_app(config, store_path=None, drain_every=3600)
    with TestClient(app) as client:
        body = {"batch": [track("2026-03-01T10:00:00Z", "Signed Up", userId="u")]}
        assert client.post("/v1/batch", json=body, auth=(KEY, "")).status_code == 200
    assert not Path(config.store).exists()
    result = CliRunner().invoke(cli, ["build", "--store", config.store])
    assert result.exit_code == 0, result.output


def test_crm_contact_joins_the_visitor_with_the_same_email(
    config: Config, tmp_path: Path
) -> None:
    # The visitor clicks a Google ad, then signs up as app user u-9 with her email. The CRM
    # knows her as contact 501 with the same address, and records her closed-won deal.
    collect(
        config,
        [
            page(
                "anon_c1",
                "2026-03-01T10:00:00Z",
                "https://www.example.com/?gclid=Cj0KCQ-test-click",
            ),
            {
                "type": "identify",
                "userId": "u-9",
                "anonymousId": "anon_c1",
                "timestamp": "2026-03-01T10:05:00Z",
                "traits": {"email": "Ana.Lima@Acme.com"},
            },
        ],
    )
    contacts = tmp_path / "contacts.csv"
    pd.DataFrame(
        {"hs_object_id": ["501"], "email": ["ana.lima@acme.com"], "createdate": ["2026-02-20"]}
    ).to_csv(contacts, index=False)
    won = tmp_path / "won.csv"
    pd.DataFrame(
        {
            "person_id": ["501"],
            "timestamp": ["2026-04-01T00:00:00Z"],
            "conversion": [1],
            "kind": ["closed_won"],
            "value": [12000.0],
        }
    ).to_csv(won, index=False)
    store = Store.open(config.store)
    try:
        api.import_file(store, contacts, input_format="contacts", config=config)
        api.import_file(store, won, input_format="touchpoints", config=config)
        journeys = api.build(store, config)
        converted = journeys.journeys.filter(journeys.journeys.kind == "closed_won").to_pandas()
        touches = journeys.touches.to_pandas()
        identities = store.table("identities").to_pandas()
        from journeymap.identity.match_keys import person_match_keys

        keys = person_match_keys(store).to_pandas()
    finally:
        store.close()

    people = identities.groupby("person_id").id.apply(set).to_dict()
    assert people["u-9"] >= {"u-9", "anon_c1", "501"}
    assert converted.entity_id.tolist() == ["u-9"]
    journey_touches = touches[touches.journey_id == converted.journey_id.iloc[0]]
    assert journey_touches.channel.tolist() == ["Paid Search"]
    assert set(keys[keys.person_id == "u-9"].key) >= {"email_sha256"}
