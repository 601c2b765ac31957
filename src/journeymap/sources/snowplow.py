"""Import Snowplow enriched events into the ``events``, ``touchpoints`` and ``conversions`` tables.

Input: one row per Snowplow enriched event with the atomic column names (``event_id``,
``domain_userid``, ``derived_tstamp``, ``mkt_source``, ``tr_total`` ...), as exported from the
warehouse's ``atomic.events`` table. Column names are matched case-insensitively, and a column
that the file lacks is read as empty.

Output:

* ``events``: every input row, with its Snowplow fields mapped onto the event columns.
* ``touchpoints``: one ``visit`` touch per session, at the time of the session's first event.
  Its source, medium, campaign, content, term and click id come from the first event of the
  session that carries campaign fields (``mkt_*``, or ``utm_*`` and click id parameters in the
  page URL). A session without them takes the referrer of its first event; a session
  without either has no source, which the channel rules classify as Direct.
* ``conversions``: every event with ``tr_total`` above zero, or whose name is one of the
  requested conversion events. The conversion value is ``tr_total`` (0 when empty).

The person is ``user_id``, else ``domain_userid``, else ``network_userid``. A session is the
events of one person with one ``domain_sessionid``. Events without a session id are cut into
sessions by inactivity and by campaign changes (see :func:`assign_sessions`).

NOTE: the person id is taken per row and no identities are linked here, so a visitor who logs
in during a session gets two sessions: one under ``domain_userid`` and one under ``user_id``.
A session that spans two imported files also becomes two touches.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.common.errors import ConfigError, InputError
from journeymap.common.timeutil import parse_timestamps
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.readers import read_input
from journeymap.sources.touchpoints import CLICK_IDS, url_host, url_parameter
from journeymap.sources.values import numbers, text
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

# Snowplow atomic columns that the importer reads. Each is matched by its own name, ignoring case.
SNOWPLOW_COLUMNS = [
    "event_id",
    "event_name",
    "event",
    "user_id",
    "domain_userid",
    "network_userid",
    "domain_sessionid",
    "derived_tstamp",
    "collector_tstamp",
    "dvce_created_tstamp",
    "dvce_sent_tstamp",
    "page_url",
    "page_urlhost",
    "page_urlquery",
    "refr_urlhost",
    "refr_medium",
    "refr_source",
    "refr_term",
    "mkt_source",
    "mkt_medium",
    "mkt_campaign",
    "mkt_content",
    "mkt_term",
    "mkt_clickid",
    "mkt_network",
    "tr_total",
    "tr_currency",
    "useragent",
]
PERSON_COLUMNS = ["user_id", "domain_userid", "network_userid"]
TIME_COLUMNS = ["derived_tstamp", "collector_tstamp"]

# Campaign field of a touch, its Snowplow column, and the URL parameter read when that is empty.
CAMPAIGN_FIELDS: list[tuple[str, str, str]] = [
    ("source", "mkt_source", "utm_source"),
    ("medium", "mkt_medium", "utm_medium"),
    ("campaign", "mkt_campaign", "utm_campaign"),
    ("content", "mkt_content", "utm_content"),
    ("term", "mkt_term", "utm_term"),
]
# A change in any of these fields starts a new derived session.
CAMPAIGN_KEY_FIELDS = ["source", "medium", "campaign", "click_id"]

# ``mkt_network`` values (lowercased) that Snowplow's campaign enrichment writes, by ad platform.
NETWORK_PLATFORMS = {
    "google": "google_ads",
    "microsoft": "microsoft_ads",
    "bing": "microsoft_ads",
    "linkedin": "linkedin_ads",
    "facebook": "meta",
    "meta": "meta",
    "tiktok": "tiktok_ads",
}

# Snowplow's referer parser names mediums its own way; these become the GA4 medium names that
# the channel rules expect. ``social``, ``email`` and ``paid`` keep their names.
REFERRER_MEDIUMS = {"search": "organic", "unknown": "referral"}
INTERNAL_MEDIUM = "internal"

PAGE_VIEW_NAMES = {"page_view", "pv"}
DEFAULT_KIND = "conversion"
DEFAULT_SESSION_TIMEOUT_MINUTES = 30.0


def read_snowplow_frame(
    frame: pd.DataFrame,
    *,
    file: str,
    timezone: str = "UTC",
    conversion_events: Collection[str] | None = None,
    session_timeout_minutes: float = DEFAULT_SESSION_TIMEOUT_MINUTES,
    own_hosts: Collection[str] | None = None,
    default_kind: str = DEFAULT_KIND,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Turn Snowplow enriched events into canonical event, touchpoint and conversion frames.

    The frames carry a ``row`` column (0-based input row) in place of ``seq``. A touch's row is
    the first row of its session, so its conversions sort after it. A touch from a session
    without a usable ``domain_sessionid`` has no ``touchpoint_id``, and conversions have no
    ``currency`` unless ``tr_currency`` gives one. :func:`import_snowplow` fills in both.

    ``own_hosts`` are the site's own hosts: a referrer on one of them is internal navigation,
    not a new source. They default to the file's ``page_urlhost`` values.

    Raises:
        InputError: the file has no person id or event time column, or a cell is invalid
            (empty person id or time, bad timestamp, negative or non-numeric ``tr_total``).
        ConfigError: ``session_timeout_minutes`` is not above zero.
    """
    if not session_timeout_minutes > 0:
        raise ConfigError(
            f"session timeout {session_timeout_minutes!r} minutes is not above zero",
            location="session_timeout_minutes",
            hint="Pass a number of minutes such as 30",
        )
    aliases = {name: [name] for name in SNOWPLOW_COLUMNS}
    columns = ColumnResolver(file=file, columns=list(frame.columns), aliases=aliases)
    cell = _Cells(frame, columns)

    person = _person_ids(cell, file=file)
    occurred_at = _event_times(frame, columns, file=file, timezone=timezone)
    total_column = columns.get("tr_total")
    revenue = (
        numbers(
            frame[total_column],
            file=file,
            column=total_column,
            default=None,
            what="transaction total",
        )
        if total_column
        else pd.Series(np.nan, index=frame.index, dtype="float64")
    )

    visits = _campaign_fields(cell)
    events = _event_rows(
        cell, visits, occurred_at=occurred_at, revenue=revenue, file=file, timezone=timezone
    )
    events["row"] = np.arange(len(frame), dtype="int64")

    visits = visits.join(_referrer_fields(cell, own_hosts))
    visits["row"] = events["row"]
    visits["person_id"] = person
    visits["occurred_at"] = occurred_at
    visits["session_id"] = cell("domain_sessionid")
    touches = _session_touches(visits, session_timeout_minutes)

    names = events["event"].str.lower()
    requested_events = {name.strip().lower() for name in conversion_events or ()}
    is_conversion = (revenue > 0).fillna(False) | names.isin(requested_events).fillna(False)
    conversions = pd.DataFrame(index=frame.index)
    conversions["row"] = events["row"]
    conversions["conversion_id"] = cell("event_id")
    conversions["person_id"] = person
    conversions["occurred_at"] = occurred_at
    conversions["kind"] = default_kind.strip().lower()
    conversions["value"] = revenue.fillna(0.0)
    conversions["currency"] = cell("tr_currency").str.upper()
    conversions = _drop_duplicate_conversions(conversions[is_conversion], file=file)
    return events, touches, conversions


def import_snowplow(
    store: Store,
    path: str | Path,
    *,
    separator: str | None = None,
    timezone: str = "UTC",
    conversion_events: Collection[str] | None = None,
    session_timeout_minutes: float = DEFAULT_SESSION_TIMEOUT_MINUTES,
    own_hosts: Collection[str] | None = None,
    default_kind: str = DEFAULT_KIND,
    currency: str = "USD",
) -> ImportResult:
    """Import a Snowplow enriched-events file into the store in one transaction.

    Every row reserves one ``seq`` number, in input order. A touch takes the number of its
    session's first row and a conversion the number of its own row. Touchpoint and conversion
    ids that the file does not give are derived from the import id and the row number, so
    that importing the same bytes into a new store gives the same ids.
    """
    source = read_input(path, separator=separator)
    import_id = check_not_imported(store, kind="snowplow", sha256=source.sha256, file=source.path)
    events, touches, conversions = read_snowplow_frame(
        source.frame,
        file=source.path,
        timezone=timezone,
        conversion_events=conversion_events,
        session_timeout_minutes=session_timeout_minutes,
        own_hosts=own_hosts,
        default_kind=default_kind,
    )
    seq_start = store.next_seq()
    for frame in (events, touches, conversions):
        frame["seq"] = seq_start + frame.pop("row")
    row_labels = (touches["seq"] - seq_start + 1).astype("string")
    touches["touchpoint_id"] = touches["touchpoint_id"].fillna(import_id + ":t" + row_labels)
    row_labels = (conversions["seq"] - seq_start + 1).astype("string")
    conversions["conversion_id"] = conversions["conversion_id"].fillna(
        import_id + ":c" + row_labels
    )
    conversions["currency"] = conversions["currency"].fillna(currency)
    return write_import(
        store,
        import_id=import_id,
        kind="snowplow",
        file=source.path,
        sha256=source.sha256,
        seq_start=seq_start,
        tables={"events": events, "touchpoints": touches, "conversions": conversions},
    )


def assign_sessions(visits: pd.DataFrame, timeout_minutes: float) -> pd.Series:
    """Return a session number for each event, in the index of ``visits``.

    ``visits`` needs ``person_id``, ``occurred_at``, ``row``, ``session_id`` and the campaign
    key fields. Events of one person with one ``session_id`` share a session. The events of a
    person without a session id are ordered by time, then by row. Among them, a new session
    starts after more than ``timeout_minutes`` without events. It also starts at an event
    whose campaign fields (source, medium, campaign, click id) differ from the last ones seen
    in the session, including the first campaign of a session that had none.
    """
    ordered = visits.sort_values(["person_id", "occurred_at", "row"], kind="stable")
    with_id = ordered["session_id"].notna()

    # Sessions named by the tracker: one per person and session id.
    named = ordered[with_id]
    named_numbers = named.groupby(["person_id", "session_id"], sort=False).ngroup().astype("int64")

    # Sessions cut by inactivity and campaign changes.
    loose = ordered[~with_id]
    new_person = loose["person_id"].ne(loose["person_id"].shift()).fillna(True).astype(bool)
    idle = loose["occurred_at"].diff() > pd.Timedelta(minutes=timeout_minutes)
    segment = (new_person | idle).cumsum()
    key = _campaign_key(loose)
    last_key = key.groupby(segment).ffill().groupby(segment).shift(1)
    changed = (key.notna() & (last_key.isna() | (key != last_key))).fillna(True).astype(bool)
    first_in_segment = segment.ne(segment.shift())
    starts = new_person | idle | (changed & ~first_in_segment)
    offset = int(named_numbers.max()) + 1 if len(named_numbers) else 0
    loose_numbers = starts.cumsum().astype("int64") - 1 + offset

    return pd.concat([named_numbers, loose_numbers]).reindex(visits.index)


class _Cells:
    """Text cells of the Snowplow columns of one frame. A column the frame lacks reads as empty.

    Each column is converted once, and callers get a copy, so they may modify it.
    """

    def __init__(self, frame: pd.DataFrame, columns: ColumnResolver) -> None:
        self.frame = frame
        self.columns = columns
        self._converted: dict[str, pd.Series] = {}

    def __call__(self, name: str) -> pd.Series:
        if name not in self._converted:
            column = self.columns.get(name)
            if column is None:
                values = pd.Series(pd.NA, index=self.frame.index, dtype="string")
            else:
                values = text(self.frame[column])
            self._converted[name] = values
        return self._converted[name].copy()


def _person_ids(cell: _Cells, *, file: str) -> pd.Series:
    columns = cell.columns
    present = [name for name in PERSON_COLUMNS if columns.get(name)]
    if not present:
        raise InputError(
            f"missing column for the person id; accepted names: {', '.join(PERSON_COLUMNS)}",
            file=file,
            column="user_id",
            hint="Export the Snowplow atomic columns user_id and domain_userid",
        )
    person = cell(PERSON_COLUMNS[0])
    for name in PERSON_COLUMNS[1:]:
        person = person.fillna(cell(name))
    if person.isna().any():
        row = int(np.flatnonzero(person.isna().to_numpy())[0])
        raise InputError(
            f"person id is missing because {', '.join(present)} are all empty",
            file=file,
            row=row + 1,
            column=columns.get(present[0]),
            hint=(
                "Every event needs a user_id, domain_userid or network_userid; "
                "fill one in or remove the row"
            ),
        )
    return person


def _event_times(
    frame: pd.DataFrame, columns: ColumnResolver, *, file: str, timezone: str
) -> pd.Series:
    found = [column for name in TIME_COLUMNS if (column := columns.get(name))]
    if not found:
        raise InputError(
            f"missing column for the event time; accepted names: {', '.join(TIME_COLUMNS)}",
            file=file,
            column="derived_tstamp",
            hint="Export the Snowplow atomic column derived_tstamp or collector_tstamp",
        )
    times = parse_timestamps(
        frame[found[0]], file=file, column=found[0], timezone=timezone, required=False
    )
    for column in found[1:]:
        later = parse_timestamps(
            frame[column], file=file, column=column, timezone=timezone, required=False
        )
        times = times.fillna(later)
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InputError(
            f"event time is missing because {', '.join(found)} are all empty",
            file=file,
            row=row + 1,
            column=found[0],
            hint=(
                "Every event needs derived_tstamp or collector_tstamp; "
                "fill one in or remove the row"
            ),
        )
    return times


def _event_rows(
    cell: _Cells,
    visits: pd.DataFrame,
    *,
    occurred_at: pd.Series,
    revenue: pd.Series,
    file: str,
    timezone: str,
) -> pd.DataFrame:
    """Return one ``events`` row per input row, with the campaign fields from ``visits``."""
    frame = cell.frame

    def optional_time(name: str) -> pd.Series:
        column = cell.columns.get(name)
        if column is None:
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
        return parse_timestamps(
            frame[column], file=file, column=column, timezone=timezone, required=False
        )

    name = cell("event_name").fillna(cell("event"))
    events = pd.DataFrame(index=frame.index)
    events["message_id"] = cell("event_id")
    events["type"] = np.where(name.str.lower().isin(PAGE_VIEW_NAMES).fillna(False), "page", "track")
    events["event"] = name
    events["anonymous_id"] = cell("domain_userid")
    events["user_id"] = cell("user_id")
    events["session_id"] = cell("domain_sessionid")
    events["timestamp"] = occurred_at
    events["original_timestamp"] = optional_time("dvce_created_tstamp")
    events["sent_at"] = optional_time("dvce_sent_tstamp")
    events["received_at"] = optional_time("collector_tstamp")
    events["page_url"] = cell("page_url")
    events["page_host"] = cell("page_urlhost")
    events["referrer_host"] = cell("refr_urlhost")
    for field, _, _ in CAMPAIGN_FIELDS:
        events[f"utm_{field}"] = visits[field]
    events["click_id"] = visits["click_id"]
    events["click_platform"] = visits["click_platform"]
    events["revenue"] = revenue
    events["user_agent"] = cell("useragent")
    return events


def _page_urls(cell: _Cells) -> pd.Series:
    """Return the text that URL parameters are read from: ``?`` + page_urlquery, else page_url."""
    query = cell("page_urlquery")
    return ("?" + query).fillna(cell("page_url"))


def _query_parameter(urls: pd.Series, name: str) -> pd.Series:
    """Return the decoded value of query parameter ``name`` in each URL, or NA.

    Only URLs that contain ``name=`` are parsed, which keeps files without URLs fast.
    """
    found = pd.Series(pd.NA, index=urls.index, dtype="string")
    candidates = urls.str.contains(f"{name}=", regex=False).fillna(False).astype(bool)
    if candidates.any():
        found[candidates] = url_parameter(urls[candidates], name)
    return found


def _click_ids(cell: _Cells, urls: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return each event's click id and its ad platform.

    ``mkt_clickid`` comes first, with its platform from ``mkt_network``. Click id parameters in
    the page URL fill in an event without ``mkt_clickid``, and name the platform of an
    ``mkt_clickid`` whose network is unknown when the two ids are equal.
    """
    click_id = cell("mkt_clickid")
    network = cell("mkt_network").str.lower()
    click_platform = network.map(NETWORK_PLATFORMS, na_action="ignore").astype("string")
    click_platform = click_platform.where(click_id.notna())
    for parameter, platform in CLICK_IDS:
        found = _query_parameter(urls, parameter)
        fill = click_id.isna() & found.notna()
        name = click_platform.isna() & found.notna() & (found == click_id).fillna(False)
        click_id = click_id.where(~fill, found)
        click_platform = click_platform.where(~(fill | name), platform)
    return click_id, click_platform


def _campaign_fields(cell: _Cells) -> pd.DataFrame:
    """Return each event's campaign fields and whether it carries any of them.

    A field missing from the ``mkt_*`` columns is read from the page URL's ``utm_*`` parameter.
    """
    urls = _page_urls(cell)
    fields = pd.DataFrame(index=urls.index)
    for field, column, parameter in CAMPAIGN_FIELDS:
        fields[field] = cell(column).fillna(_query_parameter(urls, parameter))
    click_id, click_platform = _click_ids(cell, urls)
    fields["click_id"] = click_id
    fields["click_platform"] = click_platform
    carried = [field for field, _, _ in CAMPAIGN_FIELDS] + ["click_id"]
    fields["has_campaign"] = fields[carried].notna().any(axis=1)
    return fields


def _referrer_fields(cell: _Cells, own_hosts: Collection[str] | None) -> pd.DataFrame:
    """Return each event's external referrer as source, medium, term and host.

    A referrer on one of ``own_hosts`` (default: the file's page hosts) or with the Snowplow
    medium ``internal`` is internal navigation, and is returned as no referrer.
    """
    host = url_host(cell("refr_urlhost"))
    if own_hosts is None:
        site = url_host(cell("page_urlhost")).dropna().unique().tolist()
    else:
        site = url_host(pd.Series(list(own_hosts), dtype="string")).dropna().unique().tolist()
    medium = cell("refr_medium").str.lower()
    internal = (host.isin(site).fillna(False) | (medium == INTERNAL_MEDIUM).fillna(False)).astype(
        bool
    )
    referrer = pd.DataFrame(index=host.index)
    referrer["referrer_source"] = cell("refr_source").mask(internal)
    referrer["referrer_medium"] = medium.replace(REFERRER_MEDIUMS).mask(internal)
    referrer["referrer_term"] = cell("refr_term").mask(internal)
    referrer["referrer_host"] = host.mask(internal)
    return referrer


def _campaign_key(visits: pd.DataFrame) -> pd.Series:
    """Return each event's campaign key fields joined into one string, or NA when all are empty."""
    parts = visits[CAMPAIGN_KEY_FIELDS].astype("string")
    key = parts[CAMPAIGN_KEY_FIELDS[0]].fillna("")
    for field in CAMPAIGN_KEY_FIELDS[1:]:
        key = key + "\x1f" + parts[field].fillna("")
    return key.mask(parts.isna().all(axis=1))


def _session_touches(visits: pd.DataFrame, timeout_minutes: float) -> pd.DataFrame:
    """Return one touch per session, at the session's first event (by time, then row)."""
    visits = visits.assign(session=assign_sessions(visits, timeout_minutes))
    ordered = visits.sort_values(["session", "occurred_at", "row"], kind="stable")
    first = ordered.groupby("session", sort=False).head(1).set_index("session")
    carrying = (
        ordered[ordered["has_campaign"]].groupby("session", sort=False).head(1).set_index("session")
    )

    touches = pd.DataFrame(index=first.index)
    touches["row"] = first["row"].astype("int64")
    touches["person_id"] = first["person_id"]
    touches["occurred_at"] = first["occurred_at"]
    campaign_columns = [field for field, _, _ in CAMPAIGN_FIELDS] + ["click_id", "click_platform"]
    for column in campaign_columns:
        touches[column] = carrying[column].reindex(touches.index).astype("string")
    # A session without campaign fields takes the source of its first event's referrer.
    no_campaign = ~touches.index.isin(carrying.index)
    touches.loc[no_campaign, "source"] = first.loc[no_campaign, "referrer_source"]
    touches.loc[no_campaign, "medium"] = first.loc[no_campaign, "referrer_medium"]
    touches.loc[no_campaign, "term"] = first.loc[no_campaign, "referrer_term"]
    touches["referrer_host"] = first["referrer_host"]
    touches["touch_type"] = "visit"

    # A session id names its touch unless two people share it (a log-in during the session).
    session_id = first["session_id"]
    shared = session_id.duplicated(keep=False) & session_id.notna()
    touches["touchpoint_id"] = session_id.mask(shared)
    return touches.sort_values("row").reset_index(drop=True)


def _drop_duplicate_conversions(conversions: pd.DataFrame, *, file: str) -> pd.DataFrame:
    """Keep the first of conversion events that share an ``event_id``.

    Snowplow trackers retry sends, so one event can reach the warehouse twice with the same
    ``event_id``. All copies stay in ``events``, but the conversion is counted once.
    """
    repeated = conversions["conversion_id"].duplicated() & conversions["conversion_id"].notna()
    if repeated.any():
        log.warning(
            "%s: %d conversion events repeat an earlier event_id and were counted once",
            file,
            int(repeated.sum()),
        )
    return conversions[~repeated].reset_index(drop=True)
