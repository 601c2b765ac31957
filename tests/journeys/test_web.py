"""Web touches and conversions: landing pages to channels, referrer rules, goals, engines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import Config, SessionConfig
from journeymap.journeys.build import JourneyOptions, classified_touches, journeys_from_events
from journeymap.journeys.sessions import assign_sessions
from journeymap.journeys.web import event_conversions, session_touchpoints
from journeymap.store.schema import RAW_TABLES
from tests.journeys.test_sessions import T0, events_arrow, events_table, page, track

OWN_DOMAIN = "example.com"


def touchpoints_of(events: ibis.Table, *, own_domains: Sequence[str] = (OWN_DOMAIN,)) -> ibis.Table:
    """Return the visit touches of ``events`` with the default session settings."""
    settings = SessionConfig()
    sessions = assign_sessions(events, timeout_minutes=settings.timeout_minutes)
    return session_touchpoints(
        sessions, own_domains=own_domains, excluded_referrers=settings.excluded_referrers
    )


def touch_rows(rows: Sequence[dict[str, Any]], **options: Any) -> pd.DataFrame:
    """Return the visit touches of event rows, ordered by seq."""
    touches: pd.DataFrame = touchpoints_of(events_table(rows), **options).to_pandas()
    return touches.sort_values("seq").reset_index(drop=True)


def classified(touches: ibis.Table) -> pd.DataFrame:
    """Classify touches with the default channel configuration, as the journey build does."""
    classifier = ChannelClassifier.from_config(Config().channels)
    frame: pd.DataFrame = classified_touches(touches, classifier, "person").to_pandas()
    return frame.sort_values("seq").reset_index(drop=True)


def landing_channel(url: str, referrer: str | None = None) -> tuple[str, str]:
    """Return the channel and source/medium of a one-page visit landing on ``url``."""
    frame = classified(touchpoints_of(events_table([page("v1", 0, url, referrer=referrer)])))
    assert len(frame) == 1
    return frame["channel"].iloc[0], frame["source_medium"].iloc[0]


def cells(values: pd.Series) -> list[Any]:
    """Return a column as a list with missing values as None."""
    return [None if pd.isna(value) else value for value in values]


# Landing pages to channels ------------------------------------------------------------------


def test_landing_utm_cpc_with_gclid_paid_search() -> None:
    url = "/?utm_source=google&utm_medium=cpc&gclid=X"
    channel, source_medium = landing_channel(url, referrer="https://www.google.com/")

    assert channel == "Paid Search"
    assert source_medium == "google / cpc"


def test_landing_utm_mixed_case_paid_search() -> None:
    channel, source_medium = landing_channel("/?utm_source=Google&utm_medium=CPC")

    assert channel == "Paid Search"
    assert source_medium == "google / cpc"


def test_landing_gclid_alone_paid_search_from_google() -> None:
    channel, source_medium = landing_channel("/?gclid=X")

    assert channel == "Paid Search"
    assert source_medium == "google / cpc"


def test_landing_gclid_alone_touch_fields() -> None:
    touches = touch_rows([page("v1", 0, "/?gclid=Xy1")])

    assert cells(touches["click_id"]) == ["Xy1"]
    assert cells(touches["click_platform"]) == ["google_ads"]
    # The classifier derives the source from the platform, as for imported touchpoints.
    assert cells(touches["source"]) == [None]


def test_landing_msclkid_paid_search_from_bing() -> None:
    channel, source_medium = landing_channel("/?msclkid=X")

    assert channel == "Paid Search"
    assert source_medium == "bing / cpc"


def test_landing_google_referrer_organic_search() -> None:
    channel, source_medium = landing_channel("/", referrer="https://www.google.com/")

    assert channel == "Organic Search"
    assert source_medium == "google.com / organic"


def test_landing_fbclid_from_facebook_organic_social() -> None:
    channel, source_medium = landing_channel("/?fbclid=X", referrer="https://l.facebook.com/")

    assert channel == "Organic Social"
    assert source_medium == "facebook / referral"


def test_landing_linkedin_click_paid_social() -> None:
    channel, source_medium = landing_channel("/?li_fat_id=X")

    assert channel == "Paid Social"
    assert source_medium == "linkedin / cpc"


def test_landing_no_referrer_direct() -> None:
    touches = touch_rows([page("v1", 0)])
    channel, source_medium = landing_channel("/")

    assert cells(touches["source"]) == [None]
    assert cells(touches["referrer_host"]) == [None]
    assert channel == "Direct"
    assert source_medium == "(direct) / (none)"


def test_landing_other_site_referral() -> None:
    channel, source_medium = landing_channel("/", referrer="https://news.example.org/post")

    assert channel == "Referral"
    assert source_medium == "news.example.org / referral"


# Referrers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "referrer",
    ["https://www.example.com/pricing", "EXAMPLE.com", "blog.example.com", "Docs.Example.Com"],
)
def test_touchpoints_own_domain_referral_no_touch(referrer: str) -> None:
    touches = touch_rows([page("v1", 0, referrer=referrer)])

    assert touches.empty


@pytest.mark.parametrize(
    "referrer", ["https://checkout.stripe.com/pay", "www.paypal.com", "eu.okta.com"]
)
def test_touchpoints_excluded_referrer_no_touch(referrer: str) -> None:
    touches = touch_rows([page("v1", 0, referrer=referrer)])

    assert touches.empty


def test_touchpoints_lookalike_domain_is_referral() -> None:
    touches = touch_rows([page("v1", 0, referrer="notexample.com")])

    assert cells(touches["referrer_host"]) == ["notexample.com"]


def test_touchpoints_page_host_referral_no_touch() -> None:
    touches = touch_rows([page("v1", 0, referrer="www.example.com")], own_domains=[])

    assert touches.empty


def test_touchpoints_own_domains_normalised() -> None:
    rows = [page("v1", 0, referrer="blog.example.com")]

    assert touch_rows(rows, own_domains=["https://WWW.Example.com/"]).empty
    assert touch_rows(rows, own_domains="example.com").empty
    assert len(touch_rows(rows, own_domains=["other.com"])) == 1


def test_touchpoints_internal_referrer_with_campaign_kept() -> None:
    url = "/?utm_source=newsletter&utm_medium=email"
    touches = touch_rows([page("v1", 0, url, referrer="checkout.stripe.com")])

    assert cells(touches["source"]) == ["newsletter"]
    assert cells(touches["referrer_host"]) == [None]


def test_touchpoints_referral_after_timeout_no_touch() -> None:
    # A tab left open past the timeout: the click to the next page starts a session, no touch.
    rows = [page("v1", 0, referrer="news.example.org"), page("v1", 45, referrer=OWN_DOMAIN)]
    touches = touch_rows(rows)

    assert touches["touchpoint_id"].tolist() == ["v1:m1"]


def test_touchpoints_referrer_host_normalised() -> None:
    touches = touch_rows([page("v1", 0, referrer="WWW.Google.COM")])

    assert cells(touches["referrer_host"]) == ["google.com"]


# Touch fields -------------------------------------------------------------------------------


def test_touchpoints_fields_from_first_events() -> None:
    rows = [
        page("v1", 1, referrer="news.example.org", seq=7, import_id="imp-a"),
        page("v1", 2, "/?utm_term=pricing", seq=3, referrer="other.org"),
        page("v1", 3, "/?utm_content=banner", seq=9),
    ]
    touches = touch_rows(rows)
    touch = touches.iloc[0]

    assert len(touches) == 1
    assert touch["touchpoint_id"] == "v1:m7"
    assert touch["seq"] == 3
    assert touch["occurred_at"] == T0 + pd.Timedelta(minutes=1)
    assert touch["person_id"] == "v1"
    assert touch["referrer_host"] == "news.example.org"
    assert touch["term"] == "pricing"
    assert pd.isna(touch["content"])
    assert touch["touch_type"] == "visit"
    assert touch["import_id"] == "imp-a"
    assert pd.isna(touch["channel"])


def test_touchpoints_campaign_fields_together() -> None:
    url = (
        "/?utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_content=ad1&utm_term=crm&gclid=G"
    )
    touches = touch_rows([page("v1", 0, url), page("v1", 1)])
    touch = touches.iloc[0]

    assert len(touches) == 1
    fields = ["source", "medium", "campaign", "content", "term", "click_id", "click_platform"]
    assert [touch[field] for field in fields] == [
        "google",
        "cpc",
        "brand",
        "ad1",
        "crm",
        "G",
        "google_ads",
    ]


def test_touchpoints_one_per_session() -> None:
    rows = [
        page("v1", 0, "/?utm_source=google&utm_medium=cpc"),
        page("v1", 5),
        page("v1", 10, "/?utm_source=newsletter&utm_medium=email"),
        page("v1", 100),
        page("v2", 0, referrer="www.google.com"),
    ]
    frame = classified(touchpoints_of(events_table(rows)))

    assert frame["touchpoint_id"].tolist() == ["v1:m1", "v1:m3", "v1:m4", "v2:m5"]
    assert frame["channel"].tolist() == ["Paid Search", "Email", "Direct", "Organic Search"]


def test_touchpoints_schema() -> None:
    touches = touchpoints_of(events_table([page("v1", 0)]))

    assert touches.schema() == RAW_TABLES["touchpoints"]


def test_touchpoints_deterministic() -> None:
    rows = [
        page("v1", 0, "/?gclid=A", referrer="www.google.com"),
        page("v1", 0, "/?gclid=B"),
        page("v2", 3, referrer="news.example.org"),
        page("v1", 50),
    ]
    numbered = [{**row, "seq": seq} for seq, row in enumerate(rows, start=1)]
    first = touch_rows(numbered)
    second = touch_rows(list(reversed(numbered)))

    pd.testing.assert_frame_equal(first, second)
    assert first["touchpoint_id"].tolist() == ["v1:m1", "v1:m2", "v2:m3", "v1:m4"]


# Conversions --------------------------------------------------------------------------------


def conversion_rows(
    rows: Sequence[dict[str, Any]], conversion_events: dict[str, str] | None = None
) -> pd.DataFrame:
    """Return the conversions of event rows, ordered by seq."""
    mapping = SessionConfig().conversion_events if conversion_events is None else conversion_events
    table = event_conversions(events_table(rows), conversion_events=mapping)
    conversions: pd.DataFrame = table.to_pandas()
    return conversions.sort_values("seq").reset_index(drop=True)


def test_conversions_mapped_with_value() -> None:
    rows = [
        track("v1", 0, "Order Completed", revenue=99.5, import_id="imp-b"),
        track("v1", 1, "Signed Up"),
        track("v1", 2, "Page Scrolled", revenue=5.0),
        page("v1", 3, event="Signed Up"),
    ]
    conversions = conversion_rows(rows)

    assert conversions["conversion_id"].tolist() == ["m1", "m2"]
    assert conversions["seq"].tolist() == [1, 2]
    assert conversions["kind"].tolist() == ["closed_won", "lead"]
    assert conversions["value"].tolist() == [99.5, 0.0]
    assert conversions["person_id"].tolist() == ["v1", "v1"]
    assert conversions["occurred_at"].tolist() == [T0, T0 + pd.Timedelta(minutes=1)]
    assert cells(conversions["currency"]) == [None, None]
    assert cells(conversions["import_id"]) == ["imp-b", None]


def test_conversions_match_ignoring_case() -> None:
    rows = [track("v1", 0, "signed up"), track("v1", 1, " DEMO REQUESTED ")]
    conversions = conversion_rows(rows)

    assert conversions["kind"].tolist() == ["lead", "demo"]


def test_conversions_exact_match_wins() -> None:
    mapping = {"signup": "Lead", "SignUp": "trial"}
    rows = [track("v1", 0, "SignUp"), track("v1", 1, "SIGNUP"), track("v1", 2, "signup")]
    conversions = conversion_rows(rows, mapping)

    assert conversions["kind"].tolist() == ["trial", "lead", "lead"]


def test_conversions_empty_mapping() -> None:
    conversions = conversion_rows([track("v1", 0, "Signed Up")], {})

    assert conversions.empty


def test_conversions_schema() -> None:
    table = event_conversions(events_table([track("v1", 0, "Signed Up")]), conversion_events={})

    assert table.schema() == RAW_TABLES["conversions"]


def test_conversions_join_session_journey() -> None:
    rows = [
        page("v1", 0, "/?gclid=A"),
        track("v1", 2, "Signed Up"),
        page("v1", 60, referrer="www.google.com"),
        track("v1", 61, "Order Completed", revenue=120.0),
    ]
    events = events_table(rows)
    conversions = event_conversions(events, conversion_events=SessionConfig().conversion_events)
    journeys = journeys_from_events(
        touchpoints_of(events), conversions, ChannelClassifier(), JourneyOptions()
    )
    touches = journeys.touches.to_pandas().sort_values(["journey_id", "position"])
    paths = touches.groupby("journey_id")["channel"].agg(" > ".join).to_dict()

    # The second visit comes after the lead, so for leads it is a non-converting journey.
    assert paths == {
        "lead:v1:0": "Paid Search",
        "lead:v1:1": "Organic Search",
        "closed_won:v1:0": "Paid Search > Organic Search",
    }


# Engines ------------------------------------------------------------------------------------


def multi_person_rows() -> list[dict[str, Any]]:
    """Return events of four visitors that exercise the session, referrer and conversion rules."""
    return [
        page("v1", 0, "/?utm_source=google&utm_medium=cpc&gclid=A", referrer="www.google.com"),
        page("v1", 0, "/pricing", referrer=OWN_DOMAIN),
        track("v1", 1, "Demo Requested"),
        page("v1", 31.5, "/blog", referrer=OWN_DOMAIN),
        page("v1", 40, "/?utm_source=newsletter&utm_medium=email&utm_campaign=may"),
        page("v2", 0, referrer="l.facebook.com"),
        page("v2", 0.2, "/?fbclid=F"),
        page("v2", 29, "/docs"),
        track("v2", 29, "signed up", revenue=None),
        page("v3", 5, "/?msclkid=M", referrer="www.bing.com"),
        page("v3", 5, "/", referrer="checkout.stripe.com"),
        page("v3", 200, "/", referrer="checkout.stripe.com"),
        track("v3", 201, "Order Completed", revenue=250.0),
        page("v4", 0),
        page("v4", 10, "/?utm_content=hero", user_id="u4"),
        page("v4", 11, type="screen", user_id="u4", referrer="news.example.org"),
    ]


def engine_outputs(con: Any) -> dict[str, pd.DataFrame]:
    """Return sessions, classified touches and conversions of the multi-person case."""
    events = con.create_table("events", events_arrow(multi_person_rows()), overwrite=True)
    sessions = assign_sessions(events)
    touches = touchpoints_of(events)
    conversions = event_conversions(events, conversion_events=SessionConfig().conversion_events)
    outputs = {
        "sessions": sessions.select("message_id", "session_number", "session_key").to_pandas(),
        "touchpoints": touches.to_pandas(),
        "classified": classified(touches),
        "conversions": conversions.to_pandas(),
    }
    return {
        name: frame.sort_values(frame.columns[0]).reset_index(drop=True).astype(object)
        for name, frame in outputs.items()
    }


def as_text(value: Any) -> str | None:
    """Return a cell as text, with timestamps in UTC: Spark returns them without a time zone."""
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        stamp = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
        return stamp.isoformat()
    return str(value)


@pytest.mark.spark
def test_web_spark_matches_duckdb(spark: Any) -> None:
    duck = engine_outputs(ibis.duckdb.connect())
    sparked = engine_outputs(ibis.pyspark.connect(spark))

    assert len(duck["touchpoints"]) == 7
    assert len(duck["conversions"]) == 3
    for name, frame in duck.items():
        other = sparked[name]
        assert list(frame.columns) == list(other.columns), name
        for column in frame.columns:
            mine = [as_text(value) for value in frame[column]]
            theirs = [as_text(value) for value in other[column]]
            assert mine == theirs, f"{name}.{column}"
