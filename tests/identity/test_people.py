"""People, accounts and each event's person, from events and resolved identities."""

from __future__ import annotations

from typing import Any

import pandas as pd

from journeymap.common.config import FREE_MAIL_DOMAINS
from journeymap.identity import edges_from_events, people_and_accounts, person_of, resolve
from journeymap.store.schema import RAW_TABLES
from tests.identity.calls import (
    WORKED_EXAMPLE,
    alias,
    events_table,
    group,
    identify,
    minute,
    sorted_frame,
    track,
)


def tables_of(
    calls: list[dict[str, Any]], free_mail: tuple[str, ...] = FREE_MAIL_DOMAINS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = events_table(calls)
    identities = resolve(edges_from_events(events))
    people, accounts = people_and_accounts(events, identities, free_mail_domains=free_mail)
    return sorted_frame(people, ["person_id"]), sorted_frame(accounts, ["account_id"])


def accounts_by_person(calls: list[dict[str, Any]], **options: Any) -> dict[str, str | None]:
    people, _ = tables_of(calls, **options)
    accounts = people.account_id.astype(object).where(people.account_id.notna(), None)
    return dict(zip(people.person_id.astype(str), accounts, strict=True))


def with_email(call: dict[str, Any], domain: str, digest: str = "h") -> dict[str, Any]:
    return call | {"email_hash": f"{digest}-{domain}", "email_domain": domain}


def test_worked_example_events_belong_to_people() -> None:
    events = events_table(WORKED_EXAMPLE)
    identities = resolve(edges_from_events(events))

    frame = sorted_frame(person_of(events, identities), ["seq"])
    tracked = frame[frame.type == "track"]

    assert dict(zip(tracked.event, tracked.person_id, strict=True)) == {
        "Demo Requested": "bob",
        "Pricing Viewed": "alice",
    }
    assert frame.person_id.tolist() == ["alice", "bob", "bob", "alice", "alice", "alice"]


def test_person_of_keeps_event_columns() -> None:
    events = events_table(WORKED_EXAMPLE)
    tagged = person_of(events, resolve(edges_from_events(events)))

    assert tagged.columns == (*RAW_TABLES["events"].names, "person_id")


def test_person_of_unlinked_ids_are_own_people() -> None:
    calls = [track("Page Viewed", anonymous="lonely"), track("Login", user="solo"), track("x")]
    events = events_table(calls)

    frame = sorted_frame(person_of(events, resolve(edges_from_events(events))), ["seq"])

    assert frame.person_id.tolist()[:2] == ["lonely", "solo"]
    assert pd.isna(frame.person_id[2])


def test_person_of_user_id_beats_anonymous_id() -> None:
    calls = [identify("alice", "a1"), identify("bob", "a2"), track("x", anonymous="a1", user="bob")]
    events = events_table(calls)

    frame = sorted_frame(person_of(events, resolve(edges_from_events(events))), ["seq"])

    assert frame.person_id.tolist() == ["alice", "bob", "bob"]


def test_people_tables_have_store_schemas() -> None:
    events = events_table(WORKED_EXAMPLE)
    people, accounts = people_and_accounts(
        events, resolve(edges_from_events(events)), free_mail_domains=FREE_MAIL_DOMAINS
    )

    assert people.schema() == RAW_TABLES["people"]
    assert accounts.schema() == RAW_TABLES["accounts"]


def test_worked_example_people_span_their_events() -> None:
    people, accounts = tables_of(WORKED_EXAMPLE)

    assert people.person_id.tolist() == ["alice", "bob"]
    assert people.first_seen.tolist() == [minute(1), minute(2)]
    assert people.last_seen.tolist() == [minute(6), minute(3)]
    assert people.account_id.isna().all()
    assert people.import_id.isna().all()
    assert accounts.empty


def test_group_call_sets_account() -> None:
    calls = [identify("alice", "a1"), group("acme", anonymous="a1"), track("x", user="alice")]

    people, accounts = tables_of(calls)

    assert people.account_id.tolist() == ["acme"]
    assert accounts.account_id.tolist() == ["acme"]
    assert pd.isna(accounts.domain[0])
    assert accounts.first_seen.tolist() == [minute(1)]
    assert accounts.last_seen.tolist() == [minute(3)]


def test_latest_group_call_wins() -> None:
    calls = [
        group("initech", user="alice"),
        group("acme", user="alice"),
        with_email(identify("alice"), "globex.com"),
    ]

    assert accounts_by_person(calls) == {"alice": "acme"}


def test_group_beats_email_domain() -> None:
    calls = [with_email(identify("alice"), "globex.com"), group("acme", user="alice")]

    people, accounts = tables_of(calls)

    assert people.account_id.tolist() == ["acme"]
    assert people.domain.tolist() == ["globex.com"]
    assert accounts.account_id.tolist() == ["acme"]


def test_email_domain_sets_account() -> None:
    calls = [
        with_email(identify("alice", "a1"), "Acme.com", digest="h1"),
        with_email(identify("bob", "b1"), "acme.com", digest="h2"),
        track("x", anonymous="b1"),
    ]

    people, accounts = tables_of(calls)

    assert people.account_id.tolist() == ["acme.com", "acme.com"]
    assert people.domain.tolist() == ["acme.com", "acme.com"]
    assert people.email_hash.tolist() == ["h1-Acme.com", "h2-acme.com"]
    assert accounts.account_id.tolist() == ["acme.com"]
    assert accounts.domain.tolist() == ["acme.com"]
    assert accounts.first_seen.tolist() == [minute(1)]
    assert accounts.last_seen.tolist() == [minute(3)]
    assert accounts.import_id.isna().all()


def test_free_mail_domain_gives_no_account() -> None:
    calls = [with_email(identify("alice"), "GMail.com"), with_email(identify("bob"), "acme.com")]

    people, accounts = tables_of(calls)

    assert people.account_id.isna().tolist() == [True, False]
    assert people.domain.tolist() == ["gmail.com", "acme.com"]
    assert accounts.account_id.tolist() == ["acme.com"]


def test_free_mail_list_is_configurable() -> None:
    calls = [with_email(identify("alice"), "gmail.com"), with_email(identify("bob"), "acme.com")]

    assert accounts_by_person(calls, free_mail=("ACME.com",)) == {
        "alice": "gmail.com",
        "bob": None,
    }
    assert accounts_by_person(calls, free_mail=()) == {"alice": "gmail.com", "bob": "acme.com"}


def test_latest_email_is_kept() -> None:
    calls = [
        with_email(identify("alice"), "old.com", digest="h1"),
        with_email(identify("alice"), "new.com", digest="h2"),
        track("x", user="alice"),
    ]

    people, _ = tables_of(calls)

    assert people.email_hash.tolist() == ["h2-new.com"]
    assert people.domain.tolist() == ["new.com"]
    assert people.account_id.tolist() == ["new.com"]


def test_aliased_users_share_account() -> None:
    calls = [
        with_email(identify("old_bob", "b1"), "acme.com"),
        alias("old_bob", "bob"),
        group("initech", anonymous="b1"),
    ]

    people, accounts = tables_of(calls)

    assert people.person_id.tolist() == ["bob"]
    assert people.account_id.tolist() == ["initech"]
    assert accounts.account_id.tolist() == ["initech"]
