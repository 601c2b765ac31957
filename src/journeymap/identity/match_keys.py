"""Match keys by person: the identifiers that an ad platform can match a person's conversion on.

The ``match_keys`` table contains two kinds of rows. Importers (CRM contacts) write rows whose
``id`` is a person id (``id_kind`` ``person``). The collector writes rows whose ``id`` is the
``user_id`` or ``anonymous_id`` of a message (``id_kind`` ``user_id`` or ``anonymous_id``), and
:func:`person_match_keys` maps those to people through the ``identities`` table that
``journeymap build`` derives, the same way :func:`~journeymap.identity.people.person_of` maps
events. Every step is an Ibis expression.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from journeymap.common.identifier_kinds import ANONYMOUS, EMAIL, USER, present
from journeymap.identity.people import with_resolved_person
from journeymap.store.schema import STR, TS
from journeymap.store.store import Store

PERSON = "person"
"""``id_kind`` of a row whose ``id`` already is a person id."""

ID_KINDS: dict[str, str] = {"user_id": USER, "anonymous_id": ANONYMOUS, "email_hash": EMAIL}
"""``id_kind`` of collected rows -> the ``kind`` of the ``identities`` table."""


def person_match_keys(store: Store) -> ibis.Table:
    """Return the store's match keys by person: see :func:`keys_by_person`.

    Before the first ``journeymap build`` the store has no ``identities`` table, and every
    collected id is a person of its own.
    """
    return keys_by_person(store.table("match_keys"), _identities(store))


def keys_by_person(match_keys: ibis.Table, identities: ibis.Table | None) -> ibis.Table:
    """Return one row per ``person_id``, ``key`` and ``value``, with ``observed_at``.

    ``match_keys`` has the columns of the ``match_keys`` table and ``identities`` those of
    the ``identities`` table (or is None). ``observed_at`` is the first time the key was
    seen for the person (null when no row gives one), because a key identifies the person's
    conversions from then on. Rows of ``id_kind`` ``person`` take the person that their id
    (a CRM contact id) resolved to, and keep their ``id`` when ``identities`` lacks it. A
    collected row takes the person of its id in ``identities``, and an id that
    ``identities`` lacks is a person of its own, named by the id itself. Rows of any other
    ``id_kind`` are left out.
    """
    keys = match_keys.filter(
        present(match_keys.id).notnull(), match_keys.key.notnull(), match_keys.value.notnull()
    )

    imported = keys.filter(keys.id_kind == PERSON).select(
        person_id=keys.id, key=keys.key, value=keys.value, observed_at=keys.observed_at.cast(TS)
    )
    if identities is not None:
        imported = with_resolved_person(imported, identities)
    collected = _collected(keys, identities)

    rows = ibis.union(imported, collected, distinct=False)
    return rows.group_by(["person_id", "key", "value"]).aggregate(
        observed_at=rows.observed_at.min()
    )


def _identities(store: Store) -> ibis.Table | None:
    if "identities" not in store.con.list_tables():
        return None
    return store.table("identities")


def _collected(keys: ibis.Table, identities: ibis.Table | None) -> ibis.Table:
    """Return the collected rows with the person of their id, as the imported rows' columns."""
    kind = keys.id_kind.cases(*ID_KINDS.items(), else_=ibis.null().cast(STR))
    collected = keys.filter(keys.id_kind.isin(list(ID_KINDS))).mutate(graph_kind=kind)
    if identities is None:
        person: ir.StringValue = collected.id
        joined = collected
    else:
        lookup = identities.select(
            graph_id=identities.id, lookup_kind=identities.kind, graph_person=identities.person_id
        )
        joined = collected.left_join(
            lookup,
            [collected.id == lookup.graph_id, collected.graph_kind == lookup.lookup_kind],
        )
        person = ibis.coalesce(joined.graph_person, joined.id)
    return joined.select(
        person_id=person.cast(STR),
        key=joined.key,
        value=joined.value,
        observed_at=joined.observed_at.cast(TS),
    )
