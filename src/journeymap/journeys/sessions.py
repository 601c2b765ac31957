"""Sessions: cut each person's page and screen events into visits, inside the engine.

Input: an ``events`` table (see :mod:`journeymap.store.schema`) with an added ``person_id``
column. Only ``page`` and ``screen`` events are sessionised. The output keeps their columns
and adds ``session_number`` and ``session_key``.

The rules are those of the Snowplow importer (:func:`journeymap.sources.snowplow.assign_sessions`)
for events without a tracker session id:

* A person's events are ordered by ``timestamp``, then ``seq``, then ``message_id``, so that
  events in the same second keep their arrival order and the order never depends on the engine.
* A new session starts when more than ``timeout_minutes`` pass without an event.
* A new session also starts at an event whose campaign key (``utm_source``, ``utm_medium``,
  ``utm_campaign`` and ``click_id``) differs from the last campaign key seen in the session.
  That includes the first campaign key of a session that had none, so a visit that picks up
  a campaign after landing becomes two sessions, as in the Snowplow importer.
  An event with only ``utm_content`` or ``utm_term`` carries no campaign key and starts nothing.

Every step is a window function (lag, cumulative sum, maximum over a partition), which DuckDB
and Spark both run; no step collects rows in order.
"""

from __future__ import annotations

import math

import ibis
import ibis.expr.types as ir

from journeymap.common.errors import ConfigError

SESSION_EVENT_TYPES = ("page", "screen")
DEFAULT_TIMEOUT_MINUTES = 30.0

# Event columns whose values name a campaign; a change in any of them starts a new session.
CAMPAIGN_KEY_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "click_id")
# Event columns that make an event campaign-carrying: the key columns plus content and term.
CAMPAIGN_COLUMNS = (*CAMPAIGN_KEY_COLUMNS, "utm_content", "utm_term")
EVENT_ORDER = ("timestamp", "seq", "message_id")

# Joins the campaign key parts: the ASCII unit separator, a control character that URL
# parameters do not normally contain.
_KEY_SEPARATOR = "\x1f"


def clean_text(value: ir.StringValue) -> ir.StringValue:
    """Return ``value`` trimmed, with empty strings as null."""
    return value.strip().nullif("")


def carries_campaign(t: ibis.Table) -> ir.BooleanValue:
    """Return whether an event has any UTM field or a click id (empty strings count as none)."""
    present = [clean_text(t[column]).notnull() for column in CAMPAIGN_COLUMNS]
    combined = present[0]
    for test in present[1:]:
        combined = combined | test
    return combined


def campaign_key(t: ibis.Table) -> ir.StringValue:
    """Return an event's campaign key as one string, or null when the event has none."""
    parts = [clean_text(t[column]) for column in CAMPAIGN_KEY_COLUMNS]
    has_key = parts[0].notnull()
    for part in parts[1:]:
        has_key = has_key | part.notnull()
    joined = parts[0].fill_null("")
    for part in parts[1:]:
        joined = joined.concat(_KEY_SEPARATOR, part.fill_null(""))
    return ibis.cases((has_key, joined), else_=ibis.null(str))


def assign_sessions(
    events: ibis.Table, *, timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES
) -> ibis.Table:
    """Return the page and screen events of ``events`` with their session.

    ``events`` has the ``events`` columns and ``person_id``. The result has one row per page
    or screen event with a ``person_id`` and a ``timestamp`` (other rows are dropped), and
    two more columns:

    * ``session_number``: the session's 1-based number among the person's sessions (int64).
    * ``session_key``: ``person_id + ":" + message_id`` of the session's first event, a
      string that stays the same when the same events are sessionised again.

    Events are ordered by ``timestamp``, then ``seq``, then ``message_id``. A gap of more
    than ``timeout_minutes`` (minutes) or a new campaign key starts a session; see the
    module docstring for the campaign rule.

    Raises:
        ConfigError: ``timeout_minutes`` is not a finite number above zero.
    """
    timeout = _timeout_interval(timeout_minutes)
    pages = events.filter(
        events.type.isin(list(SESSION_EVENT_TYPES))
        & events.person_id.notnull()
        & events.timestamp.notnull()
    )

    by_person = ibis.window(group_by="person_id", order_by=list(EVENT_ORDER))
    running = ibis.window(group_by="person_id", order_by=list(EVENT_ORDER), rows=(None, 0))
    marked = pages.mutate(
        _previous_at=pages.timestamp.lag().over(by_person),
        _key=campaign_key(pages),
    )
    marked = marked.mutate(
        _idle=marked._previous_at.isnull() | (marked.timestamp > marked._previous_at + timeout)
    )

    # A segment is a run of events without an idle gap. Campaign changes cut it further.
    marked = marked.mutate(_segment=marked._idle.cast("int64").sum().over(running))
    marked = _mark_campaign_changes(marked)

    marked = marked.mutate(_start=marked._idle | marked._campaign_changed)
    marked = marked.mutate(session_number=marked._start.cast("int64").sum().over(running))
    in_session = ibis.window(group_by=["person_id", "session_number"])
    first_id = ibis.cases((marked._start, marked.message_id), else_=ibis.null(str))
    marked = marked.mutate(
        session_number=marked.session_number.cast("int64"),
        session_key=marked.person_id.concat(":", first_id.max().over(in_session)),
    )

    helpers = [column for column in marked.columns if column.startswith("_")]
    return marked.drop(*helpers)


def _timeout_interval(timeout_minutes: float) -> ir.IntervalScalar:
    """Return the session timeout as an interval literal of whole microseconds."""
    if not (math.isfinite(timeout_minutes) and timeout_minutes > 0):
        raise ConfigError(
            f"session timeout {timeout_minutes!r} minutes is not a finite number above zero",
            location="sessions.timeout_minutes",
            hint="Set a number of minutes such as 30",
        )
    return ibis.interval(microseconds=round(timeout_minutes * 60_000_000))


def _mark_campaign_changes(t: ibis.Table) -> ibis.Table:
    """Add ``_campaign_changed``: the event's campaign key differs from the last one seen.

    The last key seen is a forward fill done with windows only. ``_keys_seen`` counts the
    keyed events up to each event, so an event and the unkeyed events after it share one
    group, in which the maximum key is the only key. The previous event's filled key is the
    last key seen before the event.
    """
    in_segment = ["person_id", "_segment"]
    running = ibis.window(group_by=in_segment, order_by=list(EVENT_ORDER), rows=(None, 0))
    ordered = ibis.window(group_by=in_segment, order_by=list(EVENT_ORDER))

    t = t.mutate(_keys_seen=t._key.notnull().cast("int64").sum().over(running))
    t = t.mutate(_filled_key=t._key.max().over(ibis.window(group_by=[*in_segment, "_keys_seen"])))
    t = t.mutate(_previous_key=t._filled_key.lag().over(ordered))

    changed = t._key.notnull() & (t._previous_key.isnull() | (t._key != t._previous_key))
    return t.mutate(_campaign_changed=changed.fill_null(False))
