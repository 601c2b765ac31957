"""Identity edges: the links between identifiers that events show.

``edges_from_events`` reads the ``events`` table and returns rows of the ``identity_edges``
table. Each edge links two ids, and each id has a kind (see
:mod:`journeymap.common.identifier_kinds`):

* an event with both ``anonymous_id`` and ``user_id`` (an identify call, or any later call)
  links the anonymous id to the user id;
* an alias call links ``previous_id`` to ``user_id``. ``previous_id`` is a user id when it
  appears as the ``user_id`` of any event, and an anonymous id otherwise;
* a group call links the user id (or, without one, the anonymous id) to the account
  ``group_id``;
* an event with ``user_id`` and ``email_hash`` links the user id to the email hash.

Empty strings count as missing ids. The result has one row per distinct link, source and
import. Its ``observed_at`` is the earliest timestamp of the events that show that link, and
its ``source`` is the events' ``source`` (``"collector"`` when null).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from journeymap.common.identifier_kinds import ACCOUNT, ANONYMOUS, EMAIL, USER, present
from journeymap.store.schema import RAW_TABLES

DEFAULT_SOURCE = "collector"
"""Source of an edge whose event has no ``source``."""

EDGE_SCHEMA = RAW_TABLES["identity_edges"]


def edges_from_events(events: ibis.Table) -> ibis.Table:
    """Return the identity edges that ``events`` show, in the ``identity_edges`` schema."""
    cleaned = events.select(
        type=events.type.lower(),
        anonymous_id=present(events.anonymous_id),
        user_id=present(events.user_id),
        group_id=present(events.group_id),
        previous_id=present(events.previous_id),
        email_hash=present(events.email_hash),
        observed_at=events.timestamp,
        source=events.source.fill_null(DEFAULT_SOURCE),
        import_id=events.import_id,
    )

    parts = [
        _identify_edges(cleaned),
        _alias_edges(cleaned),
        _group_edges(cleaned),
        _email_edges(cleaned),
    ]
    edges = ibis.union(*parts, distinct=False)

    # Drop links of an id to itself, which an alias call to the same id would make.
    edges = edges.filter(~((edges.from_id == edges.to_id) & (edges.from_kind == edges.to_kind)))

    keys = ["from_id", "from_kind", "to_id", "to_kind", "source", "import_id"]
    first = edges.group_by(keys).aggregate(observed_at=edges.observed_at.min())
    return first.select(*EDGE_SCHEMA.names).cast(EDGE_SCHEMA)


def _edge(
    rows: ibis.Table,
    from_id: ir.StringValue,
    from_kind: str | ir.StringValue,
    to_id: ir.StringValue,
    to_kind: str,
) -> ibis.Table:
    """Return one edge per row of ``rows``, with the columns of ``identity_edges``."""
    return rows.select(
        from_id=from_id,
        from_kind=ibis.literal(from_kind) if isinstance(from_kind, str) else from_kind,
        to_id=to_id,
        to_kind=ibis.literal(to_kind),
        observed_at=rows.observed_at,
        source=rows.source,
        import_id=rows.import_id,
    )


def _identify_edges(events: ibis.Table) -> ibis.Table:
    both = events.filter(events.anonymous_id.notnull() & events.user_id.notnull())
    return _edge(both, both.anonymous_id, ANONYMOUS, both.user_id, USER)


def _alias_edges(events: ibis.Table) -> ibis.Table:
    aliases = events.filter(
        (events.type == "alias") & events.previous_id.notnull() & events.user_id.notnull()
    )

    # A previous id that is some event's user id is a user id, and any other is an anonymous id.
    users = events.filter(events.user_id.notnull()).select(known_user=events.user_id).distinct()
    classified = aliases.left_join(users, aliases.previous_id == users.known_user)
    previous_kind = ibis.ifelse(classified.known_user.notnull(), USER, ANONYMOUS)

    return _edge(classified, classified.previous_id, previous_kind, classified.user_id, USER)


def _group_edges(events: ibis.Table) -> ibis.Table:
    groups = events.filter(
        (events.type == "group")
        & events.group_id.notnull()
        & (events.user_id.notnull() | events.anonymous_id.notnull())
    )
    member = groups.user_id.fill_null(groups.anonymous_id)
    member_kind = ibis.ifelse(groups.user_id.notnull(), USER, ANONYMOUS)
    return _edge(groups, member, member_kind, groups.group_id, ACCOUNT)


def _email_edges(events: ibis.Table) -> ibis.Table:
    known = events.filter(events.user_id.notnull() & events.email_hash.notnull())
    return _edge(known, known.user_id, USER, known.email_hash, EMAIL)
