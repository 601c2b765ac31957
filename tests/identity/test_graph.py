"""Identity resolution: ownership of anonymous ids and emails, alias merges, components."""

from __future__ import annotations

import pytest

from journeymap.identity import (
    ACCOUNT,
    ANONYMOUS,
    EMAIL,
    USER,
    IdentityGraphError,
    edges_from_events,
    resolve,
)
from tests.identity.calls import (
    WORKED_EXAMPLE,
    alias,
    edges_table,
    events_table,
    identify,
    identify_link,
    link,
    people_of,
    sorted_frame,
    track,
)


def chain(length: int) -> list[dict[str, object]]:
    """Return alias links u1 - u2 - ... - u<length>, with the smallest id at one end."""
    return [link(f"u{n + 1}", USER, f"u{n}", USER, at=n) for n in range(1, length)]


def test_worked_example_gives_two_people() -> None:
    identities = resolve(edges_from_events(events_table(WORKED_EXAMPLE)))

    assert people_of(identities) == {
        "alice": {"alice", "anon_a1", "anon_a2"},
        "bob": {"bob", "anon_b1"},
    }


def test_result_columns_and_kinds() -> None:
    identities = resolve(edges_from_events(events_table(WORKED_EXAMPLE)))
    frame = sorted_frame(identities, ["id"])

    assert list(frame.columns) == ["id", "kind", "person_id"]
    assert dict(zip(frame.id, frame.kind, strict=True)) == {
        "alice": USER,
        "anon_a1": ANONYMOUS,
        "anon_a2": ANONYMOUS,
        "anon_b1": ANONYMOUS,
        "bob": USER,
    }


def test_user_keeps_many_anonymous_ids() -> None:
    edges = edges_table([identify_link(f"a{n}", "alice", at=n) for n in range(4)])

    assert people_of(resolve(edges)) == {"alice": {"alice", "a0", "a1", "a2", "a3"}}


def test_shared_anonymous_id_never_merges_users() -> None:
    edges = edges_table(
        [
            identify_link("device", "zed", at=1),
            identify_link("device", "amy", at=2),
            identify_link("device", "bea", at=3),
        ]
    )

    assert people_of(resolve(edges)) == {"zed": {"zed", "device"}, "amy": {"amy"}, "bea": {"bea"}}


def test_anonymous_owner_tie_goes_to_smaller_user() -> None:
    edges = edges_table(
        [identify_link("device", "zed", at=5), identify_link("device", "amy", at=5)]
    )

    assert people_of(resolve(edges)) == {"amy": {"amy", "device"}, "zed": {"zed"}}


def test_untimed_edge_loses_to_timed_edge() -> None:
    edges = edges_table(
        [link("device", ANONYMOUS, "amy", USER, at=None), identify_link("device", "zed", at=9)]
    )

    assert people_of(resolve(edges)) == {"zed": {"zed", "device"}, "amy": {"amy"}}


def test_owner_edge_direction_does_not_matter() -> None:
    edges = edges_table(
        [link("bob", USER, "device", ANONYMOUS, at=1), identify_link("device", "alice", at=2)]
    )

    assert people_of(resolve(edges)) == {"bob": {"bob", "device"}, "alice": {"alice"}}


def test_alias_merges_two_users() -> None:
    calls = [
        identify("old_bob", "b1"),
        identify("bob", "b2"),
        alias("old_bob", "bob"),
    ]

    identities = resolve(edges_from_events(events_table(calls)))

    assert people_of(identities) == {"bob": {"bob", "old_bob", "b1", "b2"}}


def test_alias_anonymous_to_user() -> None:
    calls = [track("Page Viewed", anonymous="a1"), alias("a1", "alice")]

    identities = resolve(edges_from_events(events_table(calls)))

    assert people_of(identities) == {"alice": {"alice", "a1"}}


def test_anonymous_alias_merges_anonymous_ids() -> None:
    edges = edges_table(
        [link("a2", ANONYMOUS, "a1", ANONYMOUS), link("a3", ANONYMOUS, "a2", ANONYMOUS)]
    )

    assert people_of(resolve(edges)) == {"a1": {"a1", "a2", "a3"}}


def test_anonymous_alias_joins_owners() -> None:
    edges = edges_table(
        [
            identify_link("a1", "alice", at=1),
            identify_link("a2", "bob", at=2),
            link("a2", ANONYMOUS, "a1", ANONYMOUS, at=3),
        ]
    )

    assert people_of(resolve(edges)) == {"alice": {"alice", "bob", "a1", "a2"}}


def test_email_joins_its_earliest_user() -> None:
    edges = edges_table(
        [
            link("zed", USER, "hash1", EMAIL, at=1),
            link("amy", USER, "hash1", EMAIL, at=2),
        ]
    )

    assert people_of(resolve(edges)) == {"zed": {"zed", "hash1"}, "amy": {"amy"}}


def test_account_edges_merge_nothing() -> None:
    edges = edges_table(
        [
            link("alice", USER, "acme", ACCOUNT),
            link("bob", USER, "acme", ACCOUNT),
            link("a1", ANONYMOUS, "acme", ACCOUNT),
        ]
    )

    assert people_of(resolve(edges)) == {"alice": {"alice"}, "bob": {"bob"}, "a1": {"a1"}}


def test_person_without_user_takes_smallest_id() -> None:
    edges = edges_table(
        [link("b7", ANONYMOUS, "a9", ANONYMOUS), link("a9", ANONYMOUS, "c1", ANONYMOUS)]
    )

    assert people_of(resolve(edges)) == {"a9": {"a9", "b7", "c1"}}


def test_person_id_prefers_user_over_smaller_id() -> None:
    edges = edges_table([identify_link("0000-device", "zed")])

    assert people_of(resolve(edges)) == {"zed": {"zed", "0000-device"}}


def test_long_chain_resolves_to_one_person() -> None:
    identities = resolve(edges_table(chain(6)))

    assert people_of(identities) == {"u1": {"u1", "u2", "u3", "u4", "u5", "u6"}}


def test_chain_needs_one_round_per_link() -> None:
    edges = edges_table(chain(6))

    # Five rounds move u1's label to u6, and a sixth finds nothing left to change.
    assert people_of(resolve(edges, max_iterations=6)) == {
        "u1": {"u1", "u2", "u3", "u4", "u5", "u6"}
    }
    with pytest.raises(IdentityGraphError, match="did not converge in 5 rounds"):
        resolve(edges, max_iterations=5)


def test_max_iterations_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_iterations"):
        resolve(edges_table(chain(2)), max_iterations=0)


def test_resolve_is_deterministic() -> None:
    links = [
        *chain(4),
        identify_link("device", "u4", at=2),
        identify_link("device", "zed", at=2),
        identify_link("other", "zed", at=1),
        link("zed", USER, "hash", EMAIL, at=0),
        link("amy", USER, "hash", EMAIL, at=0),
    ]

    first = sorted_frame(resolve(edges_table(links)), ["id", "kind"])
    second = sorted_frame(resolve(edges_table(links)), ["id", "kind"])
    reversed_rows = sorted_frame(resolve(edges_table(links[::-1])), ["id", "kind"])

    assert first.equals(second)
    assert first.equals(reversed_rows)
    assert dict(zip(first.id, first.person_id, strict=True)) == {
        "u1": "u1",
        "u2": "u1",
        "u3": "u1",
        "u4": "u1",
        "device": "u1",
        "zed": "zed",
        "other": "zed",
        "hash": "amy",
        "amy": "amy",
    }


def test_empty_edges_give_no_identities() -> None:
    assert resolve(edges_table([])).to_pandas().empty
