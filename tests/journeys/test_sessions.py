"""Sessions in the engine: inactivity, campaign changes, ordering, and agreement with Snowplow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from journeymap.common.errors import ConfigError
from journeymap.journeys.sessions import assign_sessions
from journeymap.sources.snowplow import assign_sessions as snowplow_sessions
from journeymap.sources.touchpoints import CLICK_IDS
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform

T0 = pd.Timestamp("2024-03-01T09:00:00Z")
SITE = "www.example.com"
UTM_NAMES = ("source", "medium", "campaign", "content", "term")


def landing_fields(url: str) -> dict[str, Any]:
    """Return the utm_* and click id columns that the collector fills from a landing URL.

    The first click id in the order of ``CLICK_IDS`` wins, as in the touchpoint importer.
    """
    query = parse_qs(urlsplit(url).query)
    fields: dict[str, Any] = {
        f"utm_{name}": query[f"utm_{name}"][0] for name in UTM_NAMES if f"utm_{name}" in query
    }
    for parameter, platform in CLICK_IDS:
        if parameter in query:
            fields["click_id"] = query[parameter][0]
            fields["click_platform"] = platform
            break
    return fields


def page(
    person: str,
    minutes: float,
    url: str = "/",
    *,
    referrer: str | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """Return a page event of anonymous visitor ``person``, ``minutes`` after 09:00 UTC.

    ``url`` is the landing path and query on the site. ``referrer`` is a referring URL or
    host, and the event keeps its host with the case given. ``columns`` set other columns.
    """
    row: dict[str, Any] = {
        "type": "page",
        "anonymous_id": person,
        "timestamp": T0 + pd.Timedelta(minutes=minutes),
        "page_url": f"https://{SITE}{url}",
        "page_host": SITE,
        **landing_fields(url),
    }
    if referrer is not None:
        row["referrer_host"] = urlsplit(referrer if "//" in referrer else f"//{referrer}").netloc
    row.update(columns)
    return row


def track(person: str, minutes: float, event: str, **columns: Any) -> dict[str, Any]:
    """Return a track event named ``event`` of anonymous visitor ``person``."""
    return {
        "type": "track",
        "event": event,
        "anonymous_id": person,
        "timestamp": T0 + pd.Timedelta(minutes=minutes),
        **columns,
    }


def events_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Return rows in the ``events`` schema, numbering rows without ``seq`` from 1.

    A row without ``message_id`` gets ``m`` + its seq, and ``person_id`` is
    ``coalesce(user_id, anonymous_id)`` as the identity step would set it. The result is an
    Arrow table, so that columns without values keep their types.
    """
    records = []
    for number, row in enumerate(rows, start=1):
        record = {"seq": number, **row}
        record.setdefault("message_id", f"m{record['seq']}")
        records.append(record)
    table = conform(pd.DataFrame(records), RAW_TABLES["events"], table_name="events")
    person = pc.coalesce(table["user_id"], table["anonymous_id"])
    return table.append_column("person_id", person)


def events_table(rows: Sequence[dict[str, Any]]) -> ibis.Table:
    """Return rows as an in-memory Ibis table in the ``events`` schema plus ``person_id``."""
    return ibis.memtable(events_arrow(rows))


def sessions_of(rows: Sequence[dict[str, Any]], **options: Any) -> pd.DataFrame:
    """Return the sessionised events, ordered by seq."""
    sessions: pd.DataFrame = assign_sessions(events_table(rows), **options).to_pandas()
    return sessions.sort_values("seq").reset_index(drop=True)


def session_keys(rows: Sequence[dict[str, Any]], **options: Any) -> list[str]:
    """Return each sessionised event's session key, in seq order."""
    return sessions_of(rows, **options)["session_key"].tolist()


# Inactivity -----------------------------------------------------------------------------------


def test_sessions_idle_31_minutes_splits() -> None:
    keys = session_keys([page("v1", 0), page("v1", 31)])

    assert keys == ["v1:m1", "v1:m2"]


def test_sessions_idle_29_minutes_continues() -> None:
    keys = session_keys([page("v1", 0), page("v1", 29)])

    assert keys == ["v1:m1", "v1:m1"]


def test_sessions_idle_exactly_timeout_continues() -> None:
    # The Snowplow importer starts a session only after more than the timeout.
    keys = session_keys([page("v1", 0), page("v1", 30)])

    assert keys == ["v1:m1", "v1:m1"]


def test_sessions_gap_counts_from_last_event() -> None:
    keys = session_keys([page("v1", 0), page("v1", 25), page("v1", 50), page("v1", 81)])

    assert keys == ["v1:m1", "v1:m1", "v1:m1", "v1:m4"]


def test_sessions_timeout_option() -> None:
    rows = [page("v1", 0), page("v1", 10)]

    assert session_keys(rows, timeout_minutes=5) == ["v1:m1", "v1:m2"]
    assert session_keys(rows, timeout_minutes=15) == ["v1:m1", "v1:m1"]


def test_sessions_fractional_timeout() -> None:
    rows = [page("v1", 0), page("v1", 0.75)]

    assert session_keys(rows, timeout_minutes=0.5) == ["v1:m1", "v1:m2"]
    assert session_keys(rows, timeout_minutes=1.0) == ["v1:m1", "v1:m1"]


@pytest.mark.parametrize("timeout", [0.0, -5.0, float("nan"), float("inf")])
def test_sessions_invalid_timeout_raises(timeout: float) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        assign_sessions(events_table([page("v1", 0)]), timeout_minutes=timeout)


# Campaigns ------------------------------------------------------------------------------------


def test_sessions_new_campaign_splits() -> None:
    brand = "/?utm_source=google&utm_medium=cpc&utm_campaign=brand"
    generic = "/?utm_source=google&utm_medium=cpc&utm_campaign=generic"
    keys = session_keys([page("v1", 0, brand), page("v1", 2), page("v1", 4, generic)])

    assert keys == ["v1:m1", "v1:m1", "v1:m3"]


def test_sessions_same_campaign_continues() -> None:
    brand = "/?utm_source=google&utm_medium=cpc&utm_campaign=brand"
    keys = session_keys([page("v1", 0, brand), page("v1", 2), page("v1", 4, brand)])

    assert keys == ["v1:m1", "v1:m1", "v1:m1"]


def test_sessions_new_click_id_splits() -> None:
    keys = session_keys([page("v1", 0, "/?gclid=A"), page("v1", 1, "/?gclid=B")])

    assert keys == ["v1:m1", "v1:m2"]


def test_sessions_first_campaign_midway_splits() -> None:
    # As in the Snowplow importer: a session without a campaign ends when one arrives.
    newsletter = "/?utm_source=newsletter&utm_medium=email"
    keys = session_keys([page("v1", 0), page("v1", 3, newsletter), page("v1", 5)])

    assert keys == ["v1:m1", "v1:m2", "v1:m2"]


def test_sessions_content_or_term_alone_continues() -> None:
    brand = "/?utm_source=google&utm_medium=cpc&utm_campaign=brand"
    rows = [
        page("v1", 0, brand),
        page("v1", 1, "/?utm_content=banner"),
        page("v1", 2, "/?utm_term=pricing"),
    ]

    assert session_keys(rows) == ["v1:m1", "v1:m1", "v1:m1"]


def test_sessions_empty_utm_values_ignored() -> None:
    rows = [page("v1", 0, "/?utm_source=google"), page("v1", 1, utm_source="", utm_medium=" ")]

    assert session_keys(rows) == ["v1:m1", "v1:m1"]


def test_sessions_campaign_after_timeout_starts_once() -> None:
    brand = "/?utm_source=google&utm_campaign=brand"
    keys = session_keys([page("v1", 0, brand), page("v1", 45, brand), page("v1", 46, brand)])

    assert keys == ["v1:m1", "v1:m2", "v1:m2"]


# Order, people and event types --------------------------------------------------------------


def test_sessions_same_second_ordered_by_seq() -> None:
    # Listed in reverse arrival order: seq, not input order, decides which event is first.
    rows = [
        page("v1", 0, "/?utm_source=b", seq=2, message_id="late"),
        page("v1", 0, "/?utm_source=a", seq=1, message_id="early"),
        page("v1", 0, "/?utm_source=a", seq=3, message_id="after"),
    ]
    sessions = sessions_of(rows)

    assert sessions["message_id"].tolist() == ["early", "late", "after"]
    assert sessions["session_key"].tolist() == ["v1:early", "v1:late", "v1:after"]
    assert sessions["session_number"].tolist() == [1, 2, 3]


def test_sessions_seq_tie_uses_message_id() -> None:
    rows = [
        page("v1", 0, "/?utm_source=b", seq=1, message_id="b"),
        page("v1", 0, "/?utm_source=a", seq=1, message_id="a"),
    ]
    sessions = assign_sessions(events_table(rows)).to_pandas()
    by_message = dict(zip(sessions["message_id"], sessions["session_number"], strict=True))

    assert by_message == {"a": 1, "b": 2}


def test_sessions_people_are_separate() -> None:
    rows = [page("v1", 0), page("v2", 1), page("v1", 2), page("v2", 40)]
    sessions = sessions_of(rows)

    assert sessions["session_key"].tolist() == ["v1:m1", "v2:m2", "v1:m1", "v2:m4"]
    assert sessions["session_number"].tolist() == [1, 1, 1, 2]


def test_sessions_user_id_is_person() -> None:
    rows = [page("v1", 0), page("v1", 1, user_id="u7")]

    assert session_keys(rows) == ["v1:m1", "u7:m2"]


def test_sessions_keep_page_and_screen_events() -> None:
    rows = [
        page("v1", 0),
        track("v1", 1, "Signed Up"),
        page("v1", 2, type="screen"),
        page("v1", 3, type="identify"),
    ]
    sessions = sessions_of(rows)

    assert sessions["message_id"].tolist() == ["m1", "m3"]
    assert sessions["session_key"].tolist() == ["v1:m1", "v1:m1"]


def test_sessions_output_columns() -> None:
    sessions = assign_sessions(events_table([page("v1", 0)]))
    schema = sessions.schema()

    added = ["person_id", "session_number", "session_key"]
    assert list(schema.names) == [*RAW_TABLES["events"].names, *added]
    assert schema["session_number"].is_integer()
    assert schema["session_key"].is_string()


def test_sessions_input_order_irrelevant() -> None:
    rows = [
        page("v1", 0, "/?gclid=A"),
        page("v1", 1),
        page("v2", 1),
        page("v1", 40),
        page("v2", 2, "/?utm_source=x"),
    ]
    table = events_arrow(rows)
    shuffled = table.take(np.random.default_rng(3).permutation(table.num_rows))

    first = assign_sessions(ibis.memtable(table)).to_pandas().sort_values("seq")
    second = assign_sessions(ibis.memtable(shuffled)).to_pandas().sort_values("seq")

    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))


# Agreement with the Snowplow importer ---------------------------------------------------------


def random_page_rows(seed: int, people: int = 6, per_person: int = 40) -> list[dict[str, Any]]:
    """Return page events with gaps around the timeout and campaigns that come and go."""
    rng = np.random.default_rng(seed)
    landings = [
        "/",
        "/",
        "/",
        "/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
        "/?utm_source=google&utm_medium=cpc&utm_campaign=generic",
        "/?gclid=G1",
        "/?utm_source=newsletter&utm_medium=email",
        "/?utm_content=banner",
    ]
    rows = []
    for person in range(people):
        minutes = 0.0
        for _ in range(per_person):
            minutes += float(rng.choice([0.0, 1.0, 5.0, 29.0, 30.0, 31.0, 120.0]))
            url = landings[int(rng.integers(0, len(landings)))]
            rows.append(page(f"v{person}", minutes, url))
    order = rng.permutation(len(rows))
    for seq, index in enumerate(order, start=1):
        rows[index]["seq"] = seq
    return rows


def snowplow_partition(frame: pd.DataFrame) -> set[frozenset[str]]:
    """Return the sessions that the Snowplow importer's rules cut, as sets of message ids."""
    visits = pd.DataFrame(
        {
            "person_id": frame["person_id"],
            "occurred_at": frame["timestamp"],
            "row": frame["seq"],
            "session_id": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "source": frame["utm_source"].astype("string"),
            "medium": frame["utm_medium"].astype("string"),
            "campaign": frame["utm_campaign"].astype("string"),
            "click_id": frame["click_id"].astype("string"),
        }
    )
    numbers = snowplow_sessions(visits, timeout_minutes=30.0)
    groups = frame.groupby(numbers)["message_id"]
    return {frozenset(ids) for _, ids in groups}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sessions_agree_with_snowplow(seed: int) -> None:
    table = events_arrow(random_page_rows(seed))
    sessions = assign_sessions(ibis.memtable(table)).to_pandas()
    ours = {frozenset(ids) for _, ids in sessions.groupby("session_key")["message_id"]}

    assert len(ours) > 20
    assert ours == snowplow_partition(table.to_pandas())
