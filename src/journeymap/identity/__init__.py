"""The identity graph: edges between ids, the people they resolve to, and their accounts.

``edges_from_events`` turns events into ``identity_edges`` rows, ``resolve`` maps every
anonymous id, user id and email hash to a person, and ``people_and_accounts`` and
``person_of`` apply that mapping to events. Every step is an Ibis expression, so it runs on
any backend of the store.
"""

from journeymap.common.identifier_kinds import ACCOUNT, ANONYMOUS, CONTACT, EMAIL, USER
from journeymap.identity.edges import edges_from_events
from journeymap.identity.graph import IdentityGraphError, resolve
from journeymap.identity.people import people_and_accounts, person_of, with_resolved_person

__all__ = [
    "ACCOUNT",
    "ANONYMOUS",
    "CONTACT",
    "EMAIL",
    "USER",
    "IdentityGraphError",
    "edges_from_events",
    "people_and_accounts",
    "person_of",
    "resolve",
    "with_resolved_person",
]
