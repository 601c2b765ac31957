"""People and accounts: the events of each resolved person, and the company they work for.

``person_of`` adds each event's ``person_id``, and ``people_and_accounts`` summarises the
events by person and by account into rows of the ``people`` and ``accounts`` tables.

A person's account is the ``group_id`` of their latest group call. Without one, it is their
email domain, unless that is a free-mail domain (compared case-insensitively); the account id
is then the domain itself. A person with neither has no account. "Latest" orders events by
``timestamp``, then ``seq`` and ``message_id``, and an event without a timestamp counts as
earlier than every event with one.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from journeymap.common.identifier_kinds import ANONYMOUS, CONTACT, USER, present
from journeymap.store.schema import RAW_TABLES, STR


def person_of(events: ibis.Table, identities: ibis.Table) -> ibis.Table:
    """Return ``events`` with a ``person_id`` column, from the ``resolve`` result ``identities``.

    ``person_id`` is the person of the event's user id, else the person of its anonymous id,
    else the user id or anonymous id itself (an id that no edge names is a person of its own).
    It is null only for an event without either id. An existing ``person_id`` is replaced.
    """
    users = identities.filter(identities.kind == USER).select(
        user_key=identities.id, user_person=identities.person_id
    )
    anonymous = identities.filter(identities.kind == ANONYMOUS).select(
        anonymous_key=identities.id, anonymous_person=identities.person_id
    )

    user_id = present(events.user_id)
    anonymous_id = present(events.anonymous_id)
    joined = events.left_join(users, user_id == users.user_key).left_join(
        anonymous, anonymous_id == anonymous.anonymous_key
    )

    person = ibis.coalesce(
        joined.user_person,
        joined.anonymous_person,
        present(joined.user_id),
        present(joined.anonymous_id),
    )
    event_columns = [column for column in events.columns if column != "person_id"]
    return joined.select(*event_columns, person_id=person)


def with_resolved_person(table: ibis.Table, identities: ibis.Table) -> ibis.Table:
    """Return ``table`` (imported rows with a ``person_id``) with each id's resolved person.

    An imported person id is a CRM contact id or the team's own user id, so it takes the
    person of that id in ``identities`` (a contact id first, then a user id of the same
    text), and keeps its own id when ``identities`` lacks it. Column order is kept.
    """
    known = identities.filter(identities.kind.isin([CONTACT, USER]))
    preference = ibis.cases((known.kind == CONTACT, 0), else_=1)
    ranked = known.mutate(
        _n=ibis.row_number().over(ibis.window(group_by=known.id, order_by=preference))
    )
    lookup = ranked.filter(ranked._n == 0).select(
        _resolved_key=ranked.id, _resolved_person=ranked.person_id
    )
    joined = table.left_join(lookup, table.person_id == lookup._resolved_key)
    columns = {
        column: (
            ibis.coalesce(joined._resolved_person, joined.person_id)
            if column == "person_id"
            else joined[column]
        )
        for column in table.columns
    }
    return joined.select(**columns)


def people_and_accounts(
    events: ibis.Table, identities: ibis.Table, *, free_mail_domains: Sequence[str]
) -> tuple[ibis.Table, ibis.Table]:
    """Return the ``people`` and ``accounts`` tables of ``events`` (``import_id`` null).

    ``people.domain`` is the person's latest email domain, lowercased, and ``email_hash`` their
    latest email hash. ``first_seen`` and ``last_seen`` span the person's events. An account
    appears when at least one person belongs to it. Its ``first_seen`` and ``last_seen`` span
    its people's events, and its ``domain`` is set when a person's email domain defined it.
    """
    tagged = person_of(events, identities)
    tagged = tagged.filter(tagged.person_id.notnull())

    spans = tagged.group_by("person_id").aggregate(
        first_seen=tagged.timestamp.min(), last_seen=tagged.timestamp.max()
    )
    emails = _latest(tagged, present(tagged.email_hash), "email_hash")
    domains = _latest(tagged, present(tagged.email_domain.strip().lower()), "domain")
    groups = _latest(
        tagged.filter(tagged.type.lower() == "group"), present(tagged.group_id), "group_account"
    )

    people = (
        spans.left_join(emails, "person_id")
        .left_join(domains, "person_id")
        .left_join(groups, "person_id")
        .select("person_id", "first_seen", "last_seen", "email_hash", "domain", "group_account")
    )

    is_free = _is_free_mail(people.domain, free_mail_domains)
    domain_account = ibis.ifelse(people.domain.notnull() & ~is_free, people.domain, _null())
    people = people.mutate(
        account_id=people.group_account.fill_null(domain_account),
        account_domain=ibis.ifelse(people.group_account.isnull(), domain_account, _null()),
    )

    members = people.filter(people.account_id.notnull())
    accounts = members.group_by("account_id").aggregate(
        first_seen=members.first_seen.min(),
        last_seen=members.last_seen.max(),
        domain=members.account_domain.max(),
    )

    return _conform(people, RAW_TABLES["people"]), _conform(accounts, RAW_TABLES["accounts"])


def _latest(events: ibis.Table, value: ir.StringValue, name: str) -> ibis.Table:
    """Return ``person_id`` and ``name``: the non-null ``value`` of each person's latest event."""
    rows = events.mutate(**{name: value})
    rows = rows.filter(rows[name].notnull())
    window = ibis.window(
        group_by=rows.person_id,
        order_by=[
            ibis.desc(rows.timestamp, nulls_first=False),
            ibis.desc(rows.seq, nulls_first=False),
            ibis.desc(rows.message_id, nulls_first=False),
            ibis.desc(rows[name]),
        ],
    )
    ranked = rows.mutate(latest_rank=ibis.row_number().over(window))
    return ranked.filter(ranked.latest_rank == 0).select("person_id", name)


def _is_free_mail(domain: ir.StringValue, free_mail_domains: Sequence[str]) -> ir.BooleanValue:
    lowered = sorted({item.strip().lower() for item in free_mail_domains})
    if not lowered:
        return ibis.literal(False)
    return domain.isin(lowered).fill_null(False)


def _null() -> ir.StringValue:
    return ibis.null().cast(STR)


def _conform(table: ibis.Table, schema: ibis.Schema) -> ibis.Table:
    """Return the columns of ``schema`` in its order: those of ``table`` cast, the rest null."""
    columns = {
        name: table[name].cast(dtype) if name in table.columns else ibis.null().cast(dtype)
        for name, dtype in schema.items()
    }
    return table.select(**columns)
