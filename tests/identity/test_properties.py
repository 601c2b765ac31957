"""Properties of identity resolution on random edge lists, against a plain-Python reference."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymap.identity import ACCOUNT, ANONYMOUS, EMAIL, USER, resolve
from tests.identity.calls import edges_table, link

Node = tuple[str, str]

POOLS = {
    USER: ["u0", "u1", "u2", "u3", "u4"],
    ANONYMOUS: ["a0", "a1", "a2", "a3", "a4", "u1"],
    EMAIL: ["e0", "e1", "e2"],
    ACCOUNT: ["acme", "initech"],
}
# The anonymous pool reuses a user id, so that an id of two kinds stays two ids.

KIND_PAIRS = [
    (ANONYMOUS, USER),
    (USER, ANONYMOUS),
    (USER, EMAIL),
    (USER, USER),
    (ANONYMOUS, ANONYMOUS),
    (USER, ACCOUNT),
    (ANONYMOUS, ACCOUNT),
    (ANONYMOUS, EMAIL),
]
OWNED_KINDS = (ANONYMOUS, EMAIL)


@st.composite
def edge(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    from_kind, to_kind = draw(st.sampled_from(pairs))
    at = draw(st.none() | st.integers(min_value=0, max_value=5))
    return link(
        draw(st.sampled_from(POOLS[from_kind])),
        from_kind,
        draw(st.sampled_from(POOLS[to_kind])),
        to_kind,
        at=at,
    )


class Components:
    """Union-find over (id, kind) nodes."""

    def __init__(self) -> None:
        self.parent: dict[Node, Node] = {}

    def add(self, node: Node) -> None:
        self.parent.setdefault(node, node)

    def find(self, node: Node) -> Node:
        while self.parent[node] != node:
            node = self.parent[node]
        return node

    def union(self, a: Node, b: Node) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[set[Node]]:
        found: dict[Node, set[Node]] = {}
        for node in self.parent:
            found.setdefault(self.find(node), set()).add(node)
        return list(found.values())


def reference(edges: Iterable[dict[str, Any]]) -> dict[Node, str]:
    """Return {(id, kind): person_id} by the documented rules, computed in plain Python."""
    components = Components()
    owners: dict[Node, tuple[bool, Any, str]] = {}
    for item in edges:
        ends = [(item["from_id"], item["from_kind"]), (item["to_id"], item["to_kind"])]
        for node in ends:
            if node[1] != ACCOUNT:
                components.add(node)
        from_node, to_node = ends
        if from_node[1] == to_node[1] and from_node[1] in (USER, ANONYMOUS):
            components.union(from_node, to_node)
        for (owned, owned_kind), (user, user_kind) in (ends, ends[::-1]):
            if owned_kind in OWNED_KINDS and user_kind == USER:
                at = item["observed_at"]
                key = (at is None, at, user)
                node = (owned, owned_kind)
                if node not in owners or key < owners[node]:
                    owners[node] = key
    for node, (_, _, user) in owners.items():
        components.union(node, (user, USER))

    result: dict[Node, str] = {}
    for group in components.groups():
        users = [node_id for node_id, kind in group if kind == USER]
        person = min(users) if users else min(node_id for node_id, _ in group)
        for node in group:
            result[node] = person
    return result


def resolved(edges: list[dict[str, Any]]) -> dict[Node, str]:
    frame = resolve(edges_table(edges)).to_pandas()
    nodes = list(zip(frame.id, frame.kind, strict=True))
    assert len(nodes) == len(set(nodes)), "an id has more than one row"
    return dict(zip(nodes, frame.person_id, strict=True))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edges=st.lists(edge(KIND_PAIRS), min_size=0, max_size=14))
def test_resolve_matches_reference(edges: list[dict[str, Any]]) -> None:
    expected = reference(edges)

    got = resolved(edges)

    assert set(got) == set(expected)
    assert got == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edges=st.lists(edge([p for p in KIND_PAIRS if p[0] != p[1]]), min_size=1, max_size=14))
def test_without_alias_users_stay_apart(edges: list[dict[str, Any]]) -> None:
    got = resolved(edges)

    users_by_person: dict[str, set[str]] = {}
    for (node_id, kind), person in got.items():
        if kind == USER:
            users_by_person.setdefault(person, set()).add(node_id)

    assert all(len(users) == 1 for users in users_by_person.values()), users_by_person
    assert all(person == next(iter(users)) for person, users in users_by_person.items())
