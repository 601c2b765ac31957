"""Collected events as input of the journeys: people, sessions, touches and conversions.

The collector stores raw messages in ``events``. Before journeys are cut, this step turns the
collected ones into the same ``touchpoints`` and ``conversions`` rows that importers write:

1. identity edges from identify, alias and group calls and from email hashes, with the edges
   that importers stored (CRM contacts and their email hashes), resolved into people
   (:mod:`journeymap.identity`); imported touches and conversions then take the person that
   their person id (a contact or user id) resolved to;
2. every event gets its person, and each person their account (a group call, else a
   company email domain);
3. page and screen events become sessions, and each session's acquisition one ``visit``
   touch (:mod:`journeymap.journeys.web`);
4. tracked events named in ``sessions.conversion_events`` become conversions.

Events from other importers (Snowplow) already produced their touches when imported, so only
events of collector imports are used here. Every step is an Ibis expression.
"""

from __future__ import annotations

import ibis

from journeymap.common.config import Config
from journeymap.identity import (
    edges_from_events,
    people_and_accounts,
    person_of,
    resolve,
    with_resolved_person,
)
from journeymap.journeys.sessions import assign_sessions
from journeymap.journeys.web import event_conversions, session_touchpoints
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

COLLECTOR_IMPORT = "collector-"


def collected_events(store: Store) -> ibis.Table | None:
    """Return the events that the collector stored, or None when there are none."""
    if not store.has_rows("events"):
        return None
    events = store.table("events")
    collected = events.filter(events.import_id.startswith(COLLECTOR_IMPORT))
    if int(collected.limit(1).count().execute()) == 0:
        return None
    return collected


def with_collected(store: Store, config: Config) -> tuple[ibis.Table, ibis.Table]:
    """Return the store's touchpoints and conversions, with the collected ones added.

    Each step's result is stored before the next one reads it (``identities``,
    ``collected_people``, ``collected_accounts``, ``collected_touchpoints`` and
    ``collected_conversions``), so that no query has to repeat the steps before it.
    """
    touchpoints = store.table("touchpoints")
    conversions = store.table("conversions")
    events = collected_events(store)
    if events is None:
        return touchpoints, conversions

    # People: the identity graph, then each event's person and each person's account.
    edges = edges_from_events(events)
    if store.has_rows("identity_edges"):
        edges = edges.union(store.table("identity_edges").select(*edges.columns))
    identities = store.write("identities", resolve(edges))
    touchpoints = with_resolved_person(touchpoints, identities)
    conversions = with_resolved_person(conversions, identities)
    with_person = person_of(events, identities).cache()
    people, accounts = people_and_accounts(
        events, identities, free_mail_domains=config.identity.free_mail_domains
    )
    people = store.write("collected_people", people)
    store.write("collected_accounts", accounts)
    account_of = people.select(account_person=people.person_id, person_account=people.account_id)

    # Touches from sessions, and conversions from tracked goals.
    sessions = assign_sessions(with_person, timeout_minutes=config.sessions.timeout_minutes)
    touches = session_touchpoints(
        sessions,
        own_domains=config.sessions.own_domains,
        excluded_referrers=config.sessions.excluded_referrers,
    )
    goals = event_conversions(with_person, conversion_events=config.sessions.conversion_events)
    web_touches = store.write(
        "collected_touchpoints", _with_account(touches, account_of, "touchpoints")
    )
    web_conversions = store.write(
        "collected_conversions", _with_account(goals, account_of, "conversions")
    )
    with_person.release()

    return (
        touchpoints.union(web_touches.select(*touchpoints.columns)),
        conversions.union(web_conversions.select(*conversions.columns)),
    )


def _with_account(table: ibis.Table, account_of: ibis.Table, name: str) -> ibis.Table:
    """Fill ``account_id`` from the person's account where the row has none."""
    joined = table.left_join(account_of, table.person_id == account_of.account_person)
    columns = {
        column: (
            ibis.coalesce(joined.account_id, joined.person_account)
            if column == "account_id"
            else joined[column]
        )
        for column in RAW_TABLES[name].names
    }
    return joined.select(**columns)
