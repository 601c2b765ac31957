"""Identity resolution: which person each anonymous id, user id and email hash belongs to.

``resolve`` takes rows of the ``identity_edges`` table and returns one row per
(``id``, ``kind``) of the kinds anonymous, user, email and contact, with that id's
``person_id``.

Rules:

* One user may have many anonymous ids.
* An anonymous id belongs to the user of its earliest anonymous↔user edge (ties go to the
  smallest user id). Later edges from it to other users merge nothing, so that a shared
  device never merges two identified users.
* An email hash belongs to the user of its earliest user↔email edge, by the same rule, so
  that a shared address never merges two users either.
* Edges between two user ids merge those users, and edges between two anonymous ids merge
  those ids. Of the edges that ``edges_from_events`` makes, only alias calls link two ids of
  one kind.
* A CRM contact merges with its email hash (an edge between a contact and an email), and so
  with the user who owns that email: the visitor who signed up with the address is the
  contact of the CRM. Two contacts with one address are one person, as CRMs treat them.
* Other edges (to accounts, anonymous↔email, email↔email) merge nothing, but their anonymous,
  user and email ids still get a person.
* ``person_id`` is the smallest user id of the person (in string order), else its smallest
  contact id, else its smallest id.

The people are the connected components of the merging links. They are computed in the
engine by min-label propagation: every id starts with its own label, and each round sets
``label = min(label, min label of the neighbours)`` until no label changes. The labels are
materialised after every round (see :mod:`journeymap.identity.materialise`), so that the
query of a round does not contain the rounds before it.
"""

from __future__ import annotations

import ibis

from journeymap.common.errors import JourneymapError
from journeymap.common.identifier_kinds import (
    ANONYMOUS,
    CONTACT,
    EMAIL,
    PERSON_KINDS,
    USER,
    present,
)
from journeymap.identity.materialise import materialise

MAX_ITERATIONS = 100
"""Default limit on propagation rounds. A person whose ids form a chain of n links needs up to
n + 1 rounds."""

USER_RANK = "0"
CONTACT_RANK = "1"
OTHER_RANK = "2"
# A label is a rank digit followed by the id, so that any user id sorts before every other id,
# then contact ids, and the minimum label of a person names its smallest user id when it has
# one.


class IdentityGraphError(JourneymapError):
    """The identity graph cannot be resolved within the iteration limit."""


def resolve(edges: ibis.Table, *, max_iterations: int = MAX_ITERATIONS) -> ibis.Table:
    """Return ``id``, ``kind`` and ``person_id`` for every anonymous, user and email id.

    ``edges`` has the columns of the ``identity_edges`` table; the result has one row per
    distinct (``id``, ``kind``). Each propagation round stores its labels on the backend of
    ``edges`` and counts the changed ones there; the result reads the last round's labels.

    NOTE: on Spark the last round's labels stay in a temporary view, held in executor memory,
    until the Spark session ends, even after the result is no longer used.

    Raises:
        IdentityGraphError: labels still change after ``max_iterations`` rounds.
    """
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be at least 1, not {max_iterations}")

    nodes = _nodes(edges)
    links = _merge_links(edges)
    labels = _components(nodes, links, max_iterations)
    return labels.select(id=labels.id, kind=labels.kind, person_id=labels.label.substr(1))


def _nodes(edges: ibis.Table) -> ibis.Table:
    """Return every distinct (id, kind) of a person kind that ``edges`` name."""
    ends = ibis.union(
        edges.select(id=present(edges.from_id), kind=edges.from_kind),
        edges.select(id=present(edges.to_id), kind=edges.to_kind),
        distinct=True,
    )
    return ends.filter(ends.id.notnull() & ends.kind.isin(PERSON_KINDS))


def _owners(edges: ibis.Table, kind: str) -> ibis.Table:
    """Return each id of ``kind`` with the user of its earliest edge to a user, as ``id, user``."""
    forward = edges.filter((edges.from_kind == kind) & (edges.to_kind == USER))
    backward = edges.filter((edges.from_kind == USER) & (edges.to_kind == kind))
    pairs = ibis.union(
        forward.select(
            id=present(forward.from_id), user=present(forward.to_id), at=forward.observed_at
        ),
        backward.select(
            id=present(backward.to_id), user=present(backward.from_id), at=backward.observed_at
        ),
        distinct=False,
    )
    pairs = pairs.filter(pairs.id.notnull() & pairs.user.notnull())

    # An edge without a timestamp sorts after every timed edge of the same id.
    window = ibis.window(
        group_by=pairs.id,
        order_by=[ibis.asc(pairs.at, nulls_first=False), pairs.user.asc()],
    )
    ranked = pairs.mutate(rank=ibis.row_number().over(window))
    return ranked.filter(ranked.rank == 0).select("id", "user")


def _merge_links(edges: ibis.Table) -> ibis.Table:
    """Return the links that merge two ids, in both directions, as ``from_id .. to_kind``."""
    same_kind = edges.filter(
        (edges.from_kind == edges.to_kind) & edges.from_kind.isin([USER, ANONYMOUS])
    )
    parts = [
        same_kind.select(
            from_id=present(same_kind.from_id),
            from_kind=same_kind.from_kind,
            to_id=present(same_kind.to_id),
            to_kind=same_kind.to_kind,
        )
    ]
    contacts = edges.filter(
        ((edges.from_kind == CONTACT) & (edges.to_kind == EMAIL))
        | ((edges.from_kind == EMAIL) & (edges.to_kind == CONTACT))
    )
    parts.append(
        contacts.select(
            from_id=present(contacts.from_id),
            from_kind=contacts.from_kind,
            to_id=present(contacts.to_id),
            to_kind=contacts.to_kind,
        )
    )
    for kind in (ANONYMOUS, EMAIL):
        owners = _owners(edges, kind)
        parts.append(
            owners.select(
                from_id=owners.id,
                from_kind=ibis.literal(kind),
                to_id=owners.user,
                to_kind=ibis.literal(USER),
            )
        )
    one_way = ibis.union(*parts, distinct=False)
    one_way = one_way.filter(one_way.from_id.notnull() & one_way.to_id.notnull())

    reverse = one_way.select(
        from_id=one_way.to_id,
        from_kind=one_way.to_kind,
        to_id=one_way.from_id,
        to_kind=one_way.from_kind,
    )
    return ibis.union(one_way, reverse, distinct=True)


def _components(nodes: ibis.Table, links: ibis.Table, max_iterations: int) -> ibis.Table:
    """Return ``id, kind, label``: the minimum label of each node's connected component."""
    rank = ibis.cases(
        (nodes.kind == USER, USER_RANK), (nodes.kind == CONTACT, CONTACT_RANK), else_=OTHER_RANK
    )
    current = materialise(nodes.select("id", "kind", label=rank.concat(nodes.id)))

    # Each node also links to itself, so that one join reads its own and its neighbours' labels.
    loops = nodes.select(from_id=nodes.id, from_kind=nodes.kind, to_id=nodes.id, to_kind=nodes.kind)
    stored_links = materialise(ibis.union(links, loops, distinct=True))

    changed = 0
    try:
        for _ in range(max_iterations):
            updated = materialise(_propagate(current.table, stored_links.table))
            current.release()
            current = updated

            changed = int(current.table.filter(current.table.changed).count().execute())
            if changed == 0:
                return current.table.select("id", "kind", "label")
    finally:
        stored_links.release()

    current.release()
    raise IdentityGraphError(
        f"identity resolution did not converge in {max_iterations} rounds: "
        f"{changed} ids changed their person in the last round",
        hint="Pass a larger max_iterations, or look for an unusually long chain of alias calls",
    )


def _propagate(labels: ibis.Table, links: ibis.Table) -> ibis.Table:
    """Return one round of min-label propagation, with ``changed`` true where a label dropped.

    ``links`` contains every node's link to itself, so every node has a row in the result.
    """
    joined = links.join(labels, [links.to_id == labels.id, links.to_kind == labels.kind])
    is_own = (joined.from_id == joined.to_id) & (joined.from_kind == joined.to_kind)
    best = joined.group_by(["from_id", "from_kind"]).aggregate(
        label=joined.label.min(), own=joined.label.max(where=is_own)
    )
    return best.select(
        id=best.from_id,
        kind=best.from_kind,
        label=best.label,
        changed=best.label < best.own,
    )
