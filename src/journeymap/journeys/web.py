"""Web touches and conversions: sessions become ``touchpoints`` rows, tracked goals ``conversions``.

Both functions return Ibis expressions in the store schema, so that DuckDB or Spark computes
them where the events are. The touch rules agree with the Snowplow importer:

* One ``visit`` touch per session, at the session's first event. Its source, medium,
  campaign, content, term, click id and click platform come from the session's first event
  that carries any of them, and its referrer host from the session's first event.
* A click id without ``utm_source`` leaves ``source`` null, as the touchpoint importer does.
  :class:`journeymap.channels.rules.ChannelClassifier` then derives the source from the click
  platform (google_ads is google, microsoft_ads is bing, meta is facebook ...) and the medium
  from whether the platform sells paid clicks. Writing the source here would make the
  classifier report the medium as ``(not set)`` instead of ``cpc``.
* A referrer is internal when its host equals one of the own domains or excluded referrers,
  or is a subdomain of one, or equals the page's own host. Hosts are compared lowercased and
  without a leading ``www.``. A session that starts with an internal referrer and carries
  no campaign fields is no new touch and gives no row. A campaign session keeps its touch,
  with the internal referrer host removed.
* A session with neither campaign fields nor a referrer is a direct visit. It keeps its touch
  with a null source, which the channel rules classify as Direct.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import ibis
import ibis.expr.types as ir

from journeymap.journeys.sessions import EVENT_ORDER, carries_campaign, clean_text
from journeymap.store.schema import RAW_TABLES

VISIT = "visit"
CONVERSION_EVENT_TYPE = "track"

# Touchpoint field and the event column that it is read from, on the first carrying event.
CAMPAIGN_FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "campaign": "utm_campaign",
    "content": "utm_content",
    "term": "utm_term",
    "click_id": "click_id",
    "click_platform": "click_platform",
}

_URL_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?([^/?#:]+)")


def normalise_domain(name: str) -> str:
    """Return a configured domain as a host: lowercased, without scheme, path, port or ``www.``.

    Returns an empty string for a name with no host in it.
    """
    cleaned = name.strip().lower()
    found = _URL_HOST.match(cleaned)
    host = found.group(1) if found else ""
    return host.removeprefix("www.").rstrip(".")


def normalise_host(value: ir.StringValue) -> ir.StringValue:
    """Return a host column lowercased and trimmed, without a leading ``www.``, empty as null."""
    return clean_text(value).lower().re_replace(r"^www\.", "").nullif("")


def session_touchpoints(
    sessions: ibis.Table,
    *,
    own_domains: Iterable[str],
    excluded_referrers: Iterable[str],
) -> ibis.Table:
    """Return one ``touchpoints`` row per session that is a new touch.

    ``sessions`` is the output of :func:`journeymap.journeys.sessions.assign_sessions`.
    Each row has ``touchpoint_id`` = the session key, ``seq`` = the smallest ``seq`` of the
    session, ``occurred_at`` = the first event's timestamp, ``touch_type`` = ``visit``, the
    first event's ``import_id``, and a null ``channel``, ``account_id`` and ``ad_id``. The
    module docstring gives the rules for the campaign fields, referrers and dropped sessions.
    """
    names = [*_as_names(own_domains), *_as_names(excluded_referrers)]
    internal_domains = sorted({host for host in map(normalise_domain, names) if host})
    visits = _session_rows(sessions)

    internal = visits._referrer.notnull() & (
        (visits._referrer == visits._page_host).fill_null(False)
        | _in_domains(visits._referrer, internal_domains)
    )
    visits = visits.mutate(_internal=internal)
    visits = visits.filter(visits._has_campaign | ~visits._internal)
    referrer_host = ibis.cases((visits._internal, ibis.null(str)), else_=visits._referrer)

    touches = visits.select(
        touchpoint_id=visits.session_key,
        seq=visits.seq,
        person_id=visits.person_id,
        account_id=ibis.null(str),
        occurred_at=visits.occurred_at,
        channel=ibis.null(str),
        source=visits.source,
        medium=visits.medium,
        campaign=visits.campaign,
        content=visits.content,
        term=visits.term,
        ad_id=ibis.null(str),
        click_id=visits.click_id,
        click_platform=visits.click_platform,
        referrer_host=referrer_host,
        touch_type=ibis.literal(VISIT),
        import_id=visits.import_id,
    )
    return touches.cast(RAW_TABLES["touchpoints"])


def _session_rows(sessions: ibis.Table) -> ibis.Table:
    """Aggregate sessions to one row each, with the first event's and first carrier's fields.

    The first event of a session is its first by timestamp, seq and message id. The first
    carrier is the first event that has any UTM field or a click id. Both are marked with
    ``row_number`` and read back with ``max`` over one value per session.
    """
    flagged = sessions.mutate(_carries=carries_campaign(sessions))
    in_session = ibis.window(group_by="session_key", order_by=list(EVENT_ORDER))
    by_carrying = ibis.window(group_by=["session_key", "_carries"], order_by=list(EVENT_ORDER))
    flagged = flagged.mutate(
        _is_first=ibis.row_number().over(in_session) == 0,
        _is_carrier=flagged._carries & (ibis.row_number().over(by_carrying) == 0),
    )

    def first_event(column: ir.StringValue) -> ir.StringScalar:
        return ibis.cases((flagged._is_first, column), else_=ibis.null(str)).max()

    def first_carrier(column: ir.StringValue) -> ir.StringScalar:
        return ibis.cases((flagged._is_carrier, column), else_=ibis.null(str)).max()

    campaign = {
        field: first_carrier(clean_text(flagged[column]))
        for field, column in CAMPAIGN_FIELDS.items()
    }
    return flagged.group_by("session_key").aggregate(
        person_id=flagged.person_id.max(),
        seq=flagged.seq.min(),
        occurred_at=flagged.timestamp.min(),
        import_id=first_event(flagged.import_id),
        _referrer=first_event(normalise_host(flagged.referrer_host)),
        _page_host=first_event(normalise_host(flagged.page_host)),
        _has_campaign=flagged._carries.any(),
        **campaign,
    )


def _as_names(domains: Iterable[str]) -> list[str]:
    """Return domain names as a list, taking a lone string as one name, not as characters."""
    return [domains] if isinstance(domains, str) else list(domains)


def _in_domains(host: ir.StringValue, domains: list[str]) -> ir.BooleanValue:
    """Return whether ``host`` equals one of ``domains`` or is a subdomain of one."""
    if not domains:
        return ibis.literal(False)
    matched = host.isin(domains)
    for domain in domains:
        matched = matched | host.endswith(f".{domain}")
    return matched.fill_null(False)


def event_conversions(events: ibis.Table, *, conversion_events: Mapping[str, str]) -> ibis.Table:
    """Return one ``conversions`` row per tracked event whose name is a conversion event.

    ``conversion_events`` maps event names to conversion kinds. A ``track`` event matches a
    name exactly, or else ignoring case and surrounding spaces. An exact match wins, and
    among case-insensitive matches the first name in the mapping wins. Kinds are stored
    trimmed and lowercased, as the importers store them.

    Each row has ``conversion_id`` = ``message_id``, the event's ``seq``, ``person_id``,
    ``occurred_at`` = ``timestamp`` and ``import_id``, ``value`` = ``revenue`` (0 when null or
    NaN),
    and a null ``currency``, ``account_id`` and ``deal_id``.
    """
    tracked = events.filter(events.type == CONVERSION_EVENT_TYPE)
    kind = _conversion_kind(tracked.event, conversion_events)
    matched = tracked.mutate(_kind=kind)
    matched = matched.filter(matched._kind.notnull())

    conversions = matched.select(
        conversion_id=matched.message_id,
        seq=matched.seq,
        person_id=matched.person_id,
        account_id=ibis.null(str),
        occurred_at=matched.timestamp,
        kind=matched._kind,
        value=_revenue_or_zero(matched.revenue),
        currency=ibis.null(str),
        deal_id=ibis.null(str),
        import_id=matched.import_id,
    )
    return conversions.cast(RAW_TABLES["conversions"])


def _revenue_or_zero(revenue: ir.FloatingValue) -> ir.FloatingValue:
    """Return revenue with null and NaN as 0.

    Spark keeps NaN apart from null, and a pandas frame loaded into Spark turns missing
    floats into NaN, so null alone would miss them.
    """
    missing = revenue.isnull() | revenue.isnan()
    return ibis.cases((missing, ibis.literal(0.0)), else_=revenue)


def _conversion_kind(name: ir.StringValue, conversion_events: Mapping[str, str]) -> ir.StringValue:
    """Return the conversion kind of each event name, or null for other names."""
    kinds = {event: kind.strip().lower() for event, kind in conversion_events.items()}
    if not kinds:
        return ibis.null(str)
    exact = [(name == event, ibis.literal(kind)) for event, kind in kinds.items()]
    folded_name = name.strip().lower()
    folded = [
        (folded_name == event.strip().lower(), ibis.literal(kind)) for event, kind in kinds.items()
    ]
    return ibis.cases(*exact, *folded, else_=ibis.null(str))
