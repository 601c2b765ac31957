"""Match keys of collected messages: hashed emails and phones, Meta cookies, LinkedIn's id.

The drain calls :func:`message_match_keys` on each message that it derives events from, and
appends the result to the ``match_keys`` table in the same transaction as the events. Where
each key is read from:

* emails: the top-level field ``email`` (any case) of ``traits``, ``context.traits`` and
  ``properties``. Each distinct address gives the hashed keys of
  :func:`journeymap.common.identifiers.match_keys`;
* phones: the top-level fields ``phone``, ``phone_number``, ``phoneNumber``, ``mobile``,
  ``mobile_phone`` and ``mobilePhone`` (any case) of the same objects. A number without a
  country code is read in ``collector.phone_region`` (``US`` by default);
* ``fbp``, ``fbc``, ``li_fat_id`` and ``lead_id``: the first of ``context``,
  ``context.clickIds``, ``traits``, ``context.traits`` and ``properties`` that has the field,
  under the cookie name (``_fbp``, ``_fbc``) or the plain name (``fbp``, ``fbc``). A LinkedIn
  click id that the event's ``click_id`` contains (from the page URL, the campaign or
  ``context.clickIds``) counts as ``li_fat_id`` too. These values are kept as sent.

The raw email addresses and phone numbers go nowhere else: :func:`without_phones` removes the
phone fields from the traits and properties that the events table stores, as
:mod:`journeymap.collect.messages` does with emails. An invalid address or number gives no key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from journeymap.common import identifiers

PHONE_FIELDS = frozenset(
    {"phone", "phone_number", "phonenumber", "mobile", "mobile_phone", "mobilephone"}
)
"""Lowercased names of the fields that hold a phone number."""

COOKIE_FIELDS: dict[str, tuple[str, ...]] = {
    "fbp": ("_fbp", "fbp"),
    "fbc": ("_fbc", "fbc"),
    "li_fat_id": ("li_fat_id",),
    "lead_id": ("lead_id",),
}
"""Each raw match key and the field names it is read from, in order of preference."""

LINKEDIN_PLATFORM = "linkedin_ads"
"""The ``click_platform`` of an event whose ``click_id`` is a LinkedIn ``li_fat_id``."""

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"


def without_phones(fields: dict[str, Any]) -> dict[str, Any]:
    """Return ``fields`` without its top-level phone fields (any case, any value)."""
    if not any(key.lower() in PHONE_FIELDS for key in fields):
        return fields
    return {key: value for key, value in fields.items() if key.lower() not in PHONE_FIELDS}


def message_match_keys(
    message: Mapping[str, Any], event: Mapping[str, Any], *, region: str = "US"
) -> list[dict[str, Any]]:
    """Return the ``match_keys`` rows (without ``import_id``) of one collected message.

    ``event`` is the message's events row, which gives the id (``user_id`` when set, else
    ``anonymous_id``), the time (``timestamp``), the ``source`` and the click id. A message
    without either id gives no rows. ``region`` (ISO 3166 alpha-2) is the country of phone
    numbers written without a country code.
    """
    user_id = event.get("user_id")
    anonymous_id = event.get("anonymous_id")
    if user_id:
        owner, kind = str(user_id), USER_ID
    elif anonymous_id:
        owner, kind = str(anonymous_id), ANONYMOUS_ID
    else:
        return []

    context = _as_object(message.get("context"))
    places = [
        context,
        _as_object(context.get("clickIds")),
        _as_object(message.get("traits")),
        _as_object(context.get("traits")),
        _as_object(message.get("properties")),
    ]
    # Emails and phones are read where the events table strips them: not in context itself.
    personal = places[2:]

    keys: dict[tuple[str, str], None] = {}
    for email in _distinct(_values(personal, lambda name: name == "email")):
        for key, value in identifiers.match_keys(email=email).items():
            keys[(key, value)] = None
    for phone in _distinct(_values(personal, lambda name: name in PHONE_FIELDS)):
        for key, value in identifiers.match_keys(phone=phone, region=region).items():
            keys[(key, value)] = None
    for key, names in COOKIE_FIELDS.items():
        cookie = _first_cookie(places, names)
        if cookie is not None:
            keys[(key, cookie)] = None
    click_id = event.get("click_id")
    if event.get("click_platform") == LINKEDIN_PLATFORM and click_id:
        keys[("li_fat_id", str(click_id))] = None

    return [
        {
            "id": owner,
            "id_kind": kind,
            "key": key,
            "value": value,
            "observed_at": event.get("timestamp"),
            "source": event.get("source"),
        }
        for key, value in keys
    ]


def first_per_key(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per id, id kind, key, value and source: the one seen first.

    A page that carries the ``_fbp`` cookie gives the same key with every event, so a drain
    keeps one row per chunk and not one per event. The first time is kept because conversion
    sync uses a key only for conversions at or after the time it was observed.
    """
    first: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        identity = (row["id"], row["id_kind"], row["key"], row["value"], row["source"])
        kept = first.get(identity)
        if kept is None or _earlier(row.get("observed_at"), kept.get("observed_at")):
            first[identity] = dict(row)
    return list(first.values())


def _earlier(candidate: datetime | None, current: datetime | None) -> bool:
    if candidate is None:
        return False
    return current is None or candidate < current


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _values(places: Iterable[Mapping[str, Any]], accepts: Callable[[str], bool]) -> list[str]:
    """Return the text of every top-level field whose lowercased name passes ``accepts``."""
    found = []
    for place in places:
        for name, value in place.items():
            if not accepts(name.lower()):
                continue
            # A phone sent as a JSON integer is read as its digits, but a float is no phone number.
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                found.append(str(value))
    return found


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value.strip() for value in values if value.strip()))


def _first_cookie(places: Iterable[Mapping[str, Any]], names: tuple[str, ...]) -> str | None:
    for place in places:
        for name in names:
            value = place.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int):
                continue
            text = str(value).strip()
            if text:
                return text
    return None
