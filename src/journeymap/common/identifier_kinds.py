"""The kinds of identifier in the identity graph, and the test for a usable identifier."""

from __future__ import annotations

import ibis.expr.types as ir

ANONYMOUS = "anonymous"
"""A device or browser id: the ``anonymous_id`` of an event."""

USER = "user"
"""An id the team's own system assigned: the ``user_id`` of an event."""

ACCOUNT = "account"
"""A company: the ``group_id`` of a group call."""

EMAIL = "email"
"""The SHA-256 hash of an email address: the ``email_hash`` of an event, never the address."""

CONTACT = "contact"
"""A CRM record of a person: the id of an imported HubSpot or Salesforce contact or lead."""

PERSON_KINDS = (ANONYMOUS, USER, EMAIL, CONTACT)
"""Kinds whose ids belong to a person, unlike account ids."""


def present(value: ir.StringValue) -> ir.StringValue:
    """Return ``value`` with empty strings as null, so that an empty id links nothing."""
    return value.nullif("")
