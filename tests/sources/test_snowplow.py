"""Snowplow enriched-event import: real test events, session rules, ordering and bad input."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.common.errors import ConfigError, InputError
from journeymap.journeys.build import JourneyOptions, build_journeys, materialize
from journeymap.sources.snowplow import import_snowplow, read_snowplow_frame
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store
from tests.builders import at

SNOWPLOW_EVENTS = Path("snowplow-fractribution-tests/source/snowplow_fractribution_events.csv")
FILE = "events.csv"


def events_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """Return Snowplow rows as text cells; every row defaults to a page view on example.com."""
    records = []
    for number, row in enumerate(rows, start=1):
        record = {
            "event_id": f"e{number}",
            "event_name": "page_view",
            "domain_userid": "visitor-1",
            "page_urlhost": "example.com",
            **row,
        }
        records.append(record)
    frame = pd.DataFrame(records, dtype="object")
    return frame.astype("string")


def write_events(folder: Path, *rows: dict[str, Any]) -> Path:
    path = folder / FILE
    events_frame(*rows).to_csv(path, index=False)
    return path


def touches_of(frame: pd.DataFrame, **options: Any) -> pd.DataFrame:
    _, touches, _ = read_snowplow_frame(frame, file=FILE, **options)
    return touches


def cells(values: pd.Series) -> list[Any]:
    """Return a column as a list with missing values as None."""
    return [None if pd.isna(value) else value for value in values]


def row_counts(store: Store) -> dict[str, int]:
    return {name: int(store.table(name).count().execute()) for name in RAW_TABLES}


# Real Snowplow test events ----------------------------------------------------------------


def test_snowplow_real_file_conversions(store: Store, shared_data: Path) -> None:
    import_snowplow(store, shared_data / SNOWPLOW_EVENTS)

    conversions = store.table("conversions").to_pandas()
    assert sorted(conversions["value"]) == [20.42, 24.0, 50.0, 66.5, 140.0, 200.0]
    assert conversions["value"].sum() == pytest.approx(500.92)
    assert set(conversions["kind"]) == {"conversion"}
    assert set(conversions["currency"]) == {"USD"}


def test_snowplow_real_file_every_event(store: Store, shared_data: Path) -> None:
    path = shared_data / SNOWPLOW_EVENTS
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))

    import_snowplow(store, path)

    events = store.table("events").to_pandas()
    assert len(events) == 98
    assert sorted(events["message_id"]) == sorted(row["event_id"] for row in rows)
    assert events["type"].value_counts().to_dict() == {"page": 97, "track": 1}
    assert events.loc[events["type"] == "track", "event"].tolist() == ["checkout"]
    assert events["revenue"].notna().sum() == 6
    assert sorted(events["seq"]) == list(range(1, 99))
    # Every event has its own domain_sessionid in this file, so every event is one session.
    touchpoints = store.table("touchpoints").to_pandas()
    assert sorted(touchpoints["touchpoint_id"]) == sorted(row["domain_sessionid"] for row in rows)
    assert set(touchpoints["touch_type"]) == {"visit"}


def test_snowplow_real_file_conversions_follow_touch(store: Store, shared_data: Path) -> None:
    import_snowplow(store, shared_data / SNOWPLOW_EVENTS)

    events = store.table("events").to_pandas().set_index("message_id")
    touches = store.table("touchpoints").to_pandas().set_index("touchpoint_id")
    for conversion in store.table("conversions").to_pandas().itertuples():
        touch = touches.loc[events.loc[conversion.conversion_id, "session_id"]]
        assert touch["seq"] <= conversion.seq
        assert touch["occurred_at"] <= conversion.occurred_at
    journeys = materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions()))
    converted = journeys.journeys.to_pandas().query("conversions > 0")
    assert len(converted) == 6
    assert (converted["n_touches"] >= 1).all()


# Fields --------------------------------------------------------------------------------


def test_snowplow_event_fields_mapped() -> None:
    frame = events_frame(
        {
            "event_id": "ev-1",
            "user_id": "user-9",
            "domain_sessionid": "s1",
            "derived_tstamp": "2024-03-01 10:00:00.250",
            "collector_tstamp": "2024-03-01 10:00:02",
            "dvce_created_tstamp": "2024-03-01 09:59:58",
            "dvce_sent_tstamp": "2024-03-01 10:00:01",
            "page_url": "https://example.com/pricing?utm_source=news",
            "refr_urlhost": "www.google.com",
            "mkt_source": "google",
            "mkt_medium": "cpc",
            "mkt_campaign": "brand",
            "mkt_content": "ad-1",
            "mkt_term": "journey map",
            "mkt_clickid": "Cj0KCQ",
            "mkt_network": "Google",
            "tr_total": "12.5",
            "useragent": "Mozilla/5.0",
        }
    )
    events, _, _ = read_snowplow_frame(frame, file=FILE)
    event = events.iloc[0]

    assert event["message_id"] == "ev-1"
    assert event["type"] == "page"
    assert event["event"] == "page_view"
    assert event["anonymous_id"] == "visitor-1"
    assert event["user_id"] == "user-9"
    assert event["session_id"] == "s1"
    assert event["timestamp"] == pd.Timestamp("2024-03-01T10:00:00.250Z")
    assert event["original_timestamp"] == pd.Timestamp("2024-03-01T09:59:58Z")
    assert event["sent_at"] == pd.Timestamp("2024-03-01T10:00:01Z")
    assert event["received_at"] == pd.Timestamp("2024-03-01T10:00:02Z")
    assert event["page_url"] == "https://example.com/pricing?utm_source=news"
    assert event["page_host"] == "example.com"
    assert event["referrer_host"] == "www.google.com"
    assert event["utm_source"] == "google"
    assert event["utm_medium"] == "cpc"
    assert event["utm_campaign"] == "brand"
    assert event["utm_content"] == "ad-1"
    assert event["utm_term"] == "journey map"
    assert event["click_id"] == "Cj0KCQ"
    assert event["click_platform"] == "google_ads"
    assert event["revenue"] == 12.5
    assert event["user_agent"] == "Mozilla/5.0"


def test_snowplow_time_falls_back_to_collector() -> None:
    frame = events_frame(
        {"derived_tstamp": None, "collector_tstamp": "2024-03-01T08:00:00Z"},
        {"derived_tstamp": "2024-03-01T09:00:00Z", "collector_tstamp": "2024-03-01T09:00:05Z"},
    )
    events, _, _ = read_snowplow_frame(frame, file=FILE)

    assert events["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01T08:00:00Z"),
        pd.Timestamp("2024-03-01T09:00:00Z"),
    ]


def test_snowplow_person_id_fallbacks() -> None:
    frame = events_frame(
        {"derived_tstamp": at(), "user_id": "user-1", "domain_userid": "d-1"},
        {"derived_tstamp": at(), "user_id": None, "domain_userid": "d-2"},
        {"derived_tstamp": at(), "domain_userid": None, "network_userid": "n-3"},
    )
    _, touches, _ = read_snowplow_frame(frame, file=FILE)

    assert touches["person_id"].tolist() == ["user-1", "d-2", "n-3"]


@pytest.mark.parametrize(
    ("network", "platform"),
    [
        ("Google", "google_ads"),
        ("Microsoft", "microsoft_ads"),
        ("Bing", "microsoft_ads"),
        ("LinkedIn", "linkedin_ads"),
        ("Facebook", "meta"),
        ("Meta", "meta"),
        ("TikTok", "tiktok_ads"),
        ("DoubleClick", None),
    ],
)
def test_snowplow_click_network_platform(network: str, platform: str | None) -> None:
    frame = events_frame({"derived_tstamp": at(), "mkt_clickid": "X1", "mkt_network": network})
    events, touches, _ = read_snowplow_frame(frame, file=FILE)

    assert events["click_id"].iloc[0] == "X1"
    assert touches["click_id"].iloc[0] == "X1"
    if platform is None:
        assert pd.isna(touches["click_platform"].iloc[0])
    else:
        assert touches["click_platform"].iloc[0] == platform


@pytest.mark.parametrize(
    ("query", "click_id", "platform"),
    [
        ("gclid=Gc1&utm_source=google", "Gc1", "google_ads"),
        ("msclkid=ms-2", "ms-2", "microsoft_ads"),
        ("li_fat_id=li-3", "li-3", "linkedin_ads"),
        ("ttclid=tt-4", "tt-4", "tiktok_ads"),
        ("fbclid=Fb5", "Fb5", "meta"),
    ],
)
def test_snowplow_click_id_from_query(query: str, click_id: str, platform: str) -> None:
    frame = events_frame({"derived_tstamp": at(), "page_urlquery": query})
    _, touches, _ = read_snowplow_frame(frame, file=FILE)

    assert touches["click_id"].iloc[0] == click_id
    assert touches["click_platform"].iloc[0] == platform


def test_snowplow_query_names_unknown_network() -> None:
    frame = events_frame(
        {"derived_tstamp": at(), "mkt_clickid": "Gc1", "page_urlquery": "gclid=Gc1"}
    )
    _, touches, _ = read_snowplow_frame(frame, file=FILE)

    assert touches["click_platform"].iloc[0] == "google_ads"


def test_snowplow_utm_from_query_without_mkt() -> None:
    frame = events_frame(
        {"derived_tstamp": at(), "page_urlquery": "utm_source=newsletter&utm_medium=email"}
    )
    _, touches, _ = read_snowplow_frame(frame, file=FILE)

    assert touches["source"].iloc[0] == "newsletter"
    assert touches["medium"].iloc[0] == "email"


# Sessions --------------------------------------------------------------------------------


def test_session_inactivity_timeout() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0)},
        {"derived_tstamp": at(minutes=30)},
        {"derived_tstamp": at(minutes=61)},
        {"derived_tstamp": at(minutes=70)},
    )
    touches = touches_of(frame)

    # 30 minutes without events keeps the session; 31 minutes starts a new one.
    assert touches["row"].tolist() == [0, 2]
    assert touches["occurred_at"].tolist() == [
        pd.Timestamp(at(minutes=0)),
        pd.Timestamp(at(minutes=61)),
    ]


def test_session_timeout_option() -> None:
    frame = events_frame({"derived_tstamp": at(minutes=0)}, {"derived_tstamp": at(minutes=10)})

    assert len(touches_of(frame, session_timeout_minutes=5)) == 2
    assert len(touches_of(frame, session_timeout_minutes=15)) == 1


def test_session_timeout_not_positive() -> None:
    frame = events_frame({"derived_tstamp": at()})

    with pytest.raises(ConfigError, match="session_timeout_minutes"):
        touches_of(frame, session_timeout_minutes=0)


def test_session_campaign_change_splits() -> None:
    google = {"mkt_source": "google", "mkt_medium": "cpc", "mkt_campaign": "brand"}
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), **google},
        {"derived_tstamp": at(minutes=2)},
        {"derived_tstamp": at(minutes=4), **google},
        {"derived_tstamp": at(minutes=6), **google, "mkt_campaign": "generic"},
        {
            "derived_tstamp": at(minutes=8),
            **google,
            "mkt_campaign": "generic",
            "mkt_clickid": "Gc1",
        },
    )
    touches = touches_of(frame)

    assert touches["row"].tolist() == [0, 3, 4]
    assert touches["campaign"].tolist() == ["brand", "generic", "generic"]
    assert cells(touches["click_id"]) == [None, None, "Gc1"]


def test_session_first_campaign_splits() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0)},
        {"derived_tstamp": at(minutes=3), "mkt_source": "newsletter", "mkt_medium": "email"},
    )
    touches = touches_of(frame)

    assert touches["row"].tolist() == [0, 1]
    assert pd.isna(touches["source"].iloc[0])
    assert touches["source"].iloc[1] == "newsletter"


def test_session_id_groups_events() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "domain_sessionid": "s1"},
        {"derived_tstamp": at(minutes=120), "domain_sessionid": "s1"},
        {"derived_tstamp": at(minutes=121), "domain_sessionid": "s2", "mkt_source": "bing"},
        {"derived_tstamp": at(minutes=122), "domain_sessionid": "s2", "mkt_source": "yahoo"},
    )
    touches = touches_of(frame)

    assert touches["touchpoint_id"].tolist() == ["s1", "s2"]
    assert cells(touches["source"]) == [None, "bing"]


def test_session_id_per_person() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "domain_sessionid": "s1"},
        {"derived_tstamp": at(minutes=1), "domain_sessionid": "s1", "user_id": "user-7"},
    )
    touches = touches_of(frame)

    assert touches["person_id"].tolist() == ["visitor-1", "user-7"]
    # Two people share the session id, so neither touch takes it as its id.
    assert touches["touchpoint_id"].isna().all()


def test_session_campaign_from_later_event() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "domain_sessionid": "s1", "refr_urlhost": "a.com"},
        {"derived_tstamp": at(minutes=1), "domain_sessionid": "s1", "mkt_source": "partner"},
    )
    touches = touches_of(frame)

    assert touches["source"].tolist() == ["partner"]
    assert touches["occurred_at"].tolist() == [pd.Timestamp(at(minutes=0))]


def test_session_referrer_without_campaign() -> None:
    frame = events_frame(
        {
            "derived_tstamp": at(),
            "refr_urlhost": "www.Google.com",
            "refr_source": "Google",
            "refr_medium": "search",
            "refr_term": "attribution",
        },
        {
            "derived_tstamp": at(minutes=60),
            "refr_urlhost": "news.example.org",
            "refr_medium": "unknown",
        },
    )
    touches = touches_of(frame)

    assert cells(touches["source"]) == ["Google", None]
    assert touches["medium"].tolist() == ["organic", "referral"]
    assert cells(touches["term"]) == ["attribution", None]
    assert touches["referrer_host"].tolist() == ["google.com", "news.example.org"]


def test_session_own_host_referrer_ignored() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "refr_urlhost": "www.example.com"},
        {"derived_tstamp": at(minutes=60), "refr_urlhost": "blog.example.net"},
        {
            "derived_tstamp": at(minutes=120),
            "refr_urlhost": "app.example.io",
            "refr_medium": "internal",
        },
    )
    touches = touches_of(frame)

    assert cells(touches["referrer_host"]) == [None, "blog.example.net", None]
    assert touches["medium"].isna().all()


def test_session_own_hosts_option() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "refr_urlhost": "blog.example.net"},
        {"derived_tstamp": at(minutes=60), "refr_urlhost": "example.com"},
    )
    touches = touches_of(frame, own_hosts=["Blog.Example.net"])

    # The option replaces the page hosts, so example.com now counts as an outside referrer.
    assert cells(touches["referrer_host"]) == [None, "example.com"]


def test_session_same_second_row_order() -> None:
    same_second = "2024-03-01T10:00:00Z"
    frame = events_frame(
        {"derived_tstamp": same_second, "domain_sessionid": "s1", "refr_urlhost": "first.com"},
        {"derived_tstamp": same_second, "domain_sessionid": "s1", "refr_urlhost": "second.com"},
        {"derived_tstamp": same_second, "mkt_source": "a", "domain_userid": "visitor-2"},
        {"derived_tstamp": same_second, "mkt_source": "b", "domain_userid": "visitor-2"},
    )
    touches = touches_of(frame)

    assert touches["row"].tolist() == [0, 2, 3]
    assert cells(touches["referrer_host"]) == ["first.com", None, None]
    assert cells(touches["source"]) == [None, "a", "b"]


def test_session_starts_at_earliest_event() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=5), "domain_sessionid": "s1", "refr_urlhost": "late.com"},
        {"derived_tstamp": at(minutes=0), "domain_sessionid": "s1", "refr_urlhost": "early.com"},
    )
    touches = touches_of(frame)

    assert touches["row"].tolist() == [1]
    assert touches["referrer_host"].tolist() == ["early.com"]
    assert touches["occurred_at"].tolist() == [pd.Timestamp(at(minutes=0))]


# Conversions --------------------------------------------------------------------------------


def test_conversion_seq_after_session_touch(store: Store, tmp_path: Path) -> None:
    path = write_events(
        tmp_path,
        {
            "derived_tstamp": at(minutes=0),
            "domain_sessionid": "s1",
            "mkt_source": "google",
            "mkt_medium": "cpc",
        },
        {"derived_tstamp": at(minutes=1), "domain_sessionid": "s1"},
        {
            "derived_tstamp": at(minutes=2),
            "domain_sessionid": "s1",
            "tr_total": "99.5",
            "event_name": "transaction",
        },
        {
            "derived_tstamp": at(minutes=9),
            "domain_sessionid": "s2",
            "tr_total": "10",
            "mkt_source": "newsletter",
            "mkt_medium": "email",
        },
    )
    import_snowplow(store, path)

    touches = store.table("touchpoints").to_pandas().set_index("touchpoint_id")
    conversions = store.table("conversions").to_pandas().set_index("conversion_id")
    assert touches.loc["s1", "seq"] == 1
    assert conversions.loc["e3", "seq"] == 3
    # A conversion on the first event of its session shares the touch's time and seq.
    assert touches.loc["s2", "seq"] == conversions.loc["e4", "seq"] == 4
    assert touches.loc["s2", "occurred_at"] == conversions.loc["e4", "occurred_at"]

    journeys = materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions()))
    steps = journeys.touches.to_pandas().merge(journeys.journeys.to_pandas(), on="journey_id")
    assert steps.groupby("conversion_id")["touchpoint_id"].apply(list).to_dict() == {
        "e3": ["s1"],
        "e4": ["s2"],
    }


def test_conversion_named_events() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "event_name": "Signup"},
        {"derived_tstamp": at(minutes=1), "event_name": "page_view"},
        {"derived_tstamp": at(minutes=2), "event": "ue", "event_name": None},
    )
    _, _, conversions = read_snowplow_frame(
        frame, file=FILE, conversion_events=["signup", "ue"], default_kind="Lead"
    )

    assert conversions["row"].tolist() == [0, 2]
    assert conversions["value"].tolist() == [0.0, 0.0]
    assert conversions["kind"].tolist() == ["lead", "lead"]


def test_conversion_zero_total_ignored() -> None:
    frame = events_frame(
        {"derived_tstamp": at(minutes=0), "tr_total": "0"},
        {"derived_tstamp": at(minutes=1), "tr_total": "0.01", "tr_currency": "eur"},
    )
    _, _, conversions = read_snowplow_frame(frame, file=FILE)

    assert conversions["row"].tolist() == [1]
    assert conversions["currency"].tolist() == ["EUR"]


def test_conversion_repeated_event_id_counted_once() -> None:
    frame = events_frame(
        {"event_id": "dup", "derived_tstamp": at(minutes=0), "tr_total": "20"},
        {"event_id": "dup", "derived_tstamp": at(minutes=0), "tr_total": "20"},
    )
    events, _, conversions = read_snowplow_frame(frame, file=FILE)

    assert len(events) == 2
    assert conversions["row"].tolist() == [0]


def test_conversion_ids_derived_when_missing(store: Store, tmp_path: Path) -> None:
    path = write_events(
        tmp_path,
        {"event_id": None, "derived_tstamp": at(minutes=0), "tr_total": "5"},
        {"event_id": None, "derived_tstamp": at(minutes=1), "tr_total": "6"},
    )
    result = import_snowplow(store, path)

    conversions = store.table("conversions").to_pandas()
    touches = store.table("touchpoints").to_pandas()
    assert sorted(conversions["conversion_id"]) == [
        f"{result.import_id}:c1",
        f"{result.import_id}:c2",
    ]
    assert touches["touchpoint_id"].tolist() == [f"{result.import_id}:t1"]


# Bad input --------------------------------------------------------------------------------

BAD_INPUTS = [
    pytest.param(
        {"derived_tstamp": "not a time"}, 2, "derived_tstamp", "cannot parse", id="bad-timestamp"
    ),
    pytest.param(
        {"derived_tstamp": None, "collector_tstamp": None},
        2,
        "derived_tstamp",
        "event time is missing",
        id="empty-time",
    ),
    pytest.param({"tr_total": "-5"}, 2, "tr_total", "negative", id="negative-total"),
    pytest.param({"tr_total": "12,50"}, 2, "tr_total", "not a number", id="text-total"),
    pytest.param(
        {"domain_userid": None, "user_id": None},
        2,
        "user_id",
        "person id is missing",
        id="empty-person",
    ),
]


@pytest.mark.parametrize(("bad", "row", "column", "message"), BAD_INPUTS)
def test_snowplow_bad_cell_rejected(
    store: Store, tmp_path: Path, bad: dict[str, Any], row: int, column: str, message: str
) -> None:
    good = {"derived_tstamp": at(), "collector_tstamp": at(), "user_id": "u1", "tr_total": "1"}
    path = write_events(tmp_path, good, {**good, **bad})
    before = row_counts(store)

    with pytest.raises(InputError, match=message) as caught:
        import_snowplow(store, path)

    assert caught.value.row == row
    assert caught.value.column == column
    assert str(path) in str(caught.value)
    assert f"row {row}" in str(caught.value)
    assert f"column {column!r}" in str(caught.value)
    assert row_counts(store) == before


@pytest.mark.parametrize(
    ("dropped", "column"),
    [
        pytest.param(["user_id", "domain_userid", "network_userid"], "user_id", id="no-person"),
        pytest.param(["derived_tstamp", "collector_tstamp"], "derived_tstamp", id="no-time"),
    ],
)
def test_snowplow_missing_column_rejected(
    store: Store, tmp_path: Path, dropped: list[str], column: str
) -> None:
    frame = events_frame({"derived_tstamp": at(), "collector_tstamp": at(), "user_id": "u1"})
    path = tmp_path / FILE
    frame.drop(columns=[name for name in dropped if name in frame.columns]).to_csv(
        path, index=False
    )
    before = row_counts(store)

    with pytest.raises(InputError, match="missing column") as caught:
        import_snowplow(store, path)

    assert caught.value.column == column
    assert str(path) in str(caught.value)
    assert column in str(caught.value)
    assert row_counts(store) == before


def test_snowplow_failed_import_changes_nothing(store: Store, tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    import_snowplow(store, write_events(first, {"derived_tstamp": at(), "tr_total": "3"}))
    before = row_counts(store)
    assert before["events"] == 1
    assert before["touchpoints"] == 1
    assert before["conversions"] == 1

    second = tmp_path / "second"
    second.mkdir()
    bad = write_events(second, {"derived_tstamp": at()}, {"derived_tstamp": at(), "tr_total": "x"})
    with pytest.raises(InputError):
        import_snowplow(store, bad)

    assert row_counts(store) == before


def test_snowplow_same_file_twice_rejected(store: Store, tmp_path: Path) -> None:
    path = write_events(tmp_path, {"derived_tstamp": at(), "tr_total": "3"})
    import_snowplow(store, path)
    before = row_counts(store)

    with pytest.raises(InputError, match="already imported"):
        import_snowplow(store, path)

    assert row_counts(store) == before
