"""Identity edges from events: identify, alias, group and email links."""

from __future__ import annotations

from typing import Any

import pandas as pd

from journeymap.identity import ACCOUNT, ANONYMOUS, EMAIL, USER, edges_from_events
from journeymap.store.schema import RAW_TABLES
from tests.identity.calls import alias, events_table, group, identify, minute, track

Edge = tuple[str, str, str, str]


def edge_rows(calls: list[dict[str, Any]]) -> pd.DataFrame:
    frame: pd.DataFrame = edges_from_events(events_table(calls)).to_pandas()
    return frame.sort_values(["from_id", "to_id"]).reset_index(drop=True)


def edge_set(calls: list[dict[str, Any]]) -> set[Edge]:
    frame = edge_rows(calls)
    return set(zip(frame.from_id, frame.from_kind, frame.to_id, frame.to_kind, strict=True))


def test_edges_have_identity_edges_schema() -> None:
    table = edges_from_events(events_table([identify("alice", "a1")]))

    assert table.schema() == RAW_TABLES["identity_edges"]


def test_identify_links_anonymous_to_user() -> None:
    assert edge_set([identify("alice", "a1")]) == {("a1", ANONYMOUS, "alice", USER)}


def test_any_event_with_both_ids_links_them() -> None:
    calls = [track("Page Viewed", anonymous="a1", user="alice"), track("Other", anonymous="a2")]

    assert edge_set(calls) == {("a1", ANONYMOUS, "alice", USER)}


def test_repeated_link_keeps_earliest_time() -> None:
    calls = [
        identify("alice", "a1"),
        track("Page Viewed", anonymous="a1", user="alice"),
        track("Page Viewed", anonymous="a1", user="alice"),
    ]

    frame = edge_rows(calls)

    assert len(frame) == 1
    assert frame.observed_at[0] == minute(1)


def test_alias_previous_anonymous_id() -> None:
    assert edge_set([alias("a1", "alice")]) == {("a1", ANONYMOUS, "alice", USER)}


def test_alias_previous_user_id() -> None:
    calls = [identify("old_alice", "a1"), alias("old_alice", "alice")]

    assert edge_set(calls) == {
        ("a1", ANONYMOUS, "old_alice", USER),
        ("old_alice", USER, "alice", USER),
    }


def test_alias_previous_user_id_seen_later() -> None:
    calls = [alias("old_alice", "alice"), track("Login", user="old_alice")]

    assert edge_set(calls) == {("old_alice", USER, "alice", USER)}


def test_alias_to_same_id_adds_nothing() -> None:
    assert edge_set([alias("alice", "alice")]) == set()


def test_group_links_user_to_account() -> None:
    calls = [group("acme", user="alice", anonymous="a1")]

    assert edge_set(calls) == {
        ("a1", ANONYMOUS, "alice", USER),
        ("alice", USER, "acme", ACCOUNT),
    }


def test_group_without_user_links_anonymous() -> None:
    assert edge_set([group("acme", anonymous="a1")]) == {("a1", ANONYMOUS, "acme", ACCOUNT)}


def test_user_with_email_hash_links_email() -> None:
    calls = [
        identify("alice", email_hash="h1", email_domain="acme.com"),
        track("Page Viewed", anonymous="a9") | {"email_hash": "h2"},
    ]

    assert edge_set(calls) == {("alice", USER, "h1", EMAIL)}


def test_empty_ids_link_nothing() -> None:
    calls = [identify("alice", ""), identify("", "a1"), alias("", "alice"), group("", user="bob")]

    assert edge_set(calls) == set()


def test_source_defaults_to_collector() -> None:
    calls = [identify("alice", "a1"), identify("bob", "b1") | {"source": "web"}]

    frame = edge_rows(calls)

    assert dict(zip(frame.to_id, frame.source, strict=True)) == {
        "alice": "collector",
        "bob": "web",
    }


def test_import_id_carries_over() -> None:
    frame = edge_rows([identify("alice", "a1") | {"import_id": "imp-1"}])

    assert frame.import_id.tolist() == ["imp-1"]
