"""Tracking blind spots on a hand-made store with known results, on Spark, and on the demo."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import ibis
import pandas as pd
import pytest

from journeymap import api
from journeymap.analyses.blindspots import (
    NO_TRACKED_TOUCH,
    blind_spots,
    spend_click_platforms,
    tracking_by_kind,
)
from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import Config
from journeymap.demo.world import generate_world, write_world
from journeymap.journeys.build import JourneyOptions, journeys_from_events
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store, conform

T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def day(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def touch(seq: int, person: str, days: float, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"touchpoint_id": f"t{seq}", "seq": seq, "person_id": person}
    return {**row, "occurred_at": day(days), **fields}


def conversion(seq: int, person: str, days: float, kind: str, value: float) -> dict[str, Any]:
    return {
        "conversion_id": f"c{seq}",
        "seq": seq,
        "person_id": person,
        "occurred_at": day(days),
        "kind": kind,
        "value": value,
    }


DIRECT = {"source": "(direct)", "medium": "(none)"}

# p1 has a matched Google click, p2 only a direct visit, and p3 no touch at all.
# p4 clicks a LinkedIn campaign without spend, then names Podcast.
# p5 names Podcast with no tracked touch before the conversion, because t11 comes after it.
# p6 visits directly, then names LinkedIn organic.
# p7 clicks without a platform, on Meta without a campaign, and on a Meta campaign that
# spend names by id.
TOUCHES = [
    touch(1, "p1", 0, source="google", medium="cpc", campaign="Brand", click_id="g1",
          click_platform="google_ads"),
    touch(2, "p2", 0, **DIRECT),
    touch(3, "p4", 0, campaign="Unknown Camp", click_id="li1", click_platform="linkedin_ads"),
    touch(4, "p4", 2, channel="Podcast", touch_type="self_reported"),
    touch(5, "p5", 2, channel="Podcast", touch_type="Self_Reported"),
    touch(6, "p6", 0, **DIRECT),
    touch(7, "p6", 1, source="linkedin", medium="social", touch_type="self_reported"),
    touch(8, "p7", 0, campaign="Brand", click_id="x1"),
    touch(9, "p7", 1, click_id="fb1", click_platform="meta"),
    touch(10, "p7", 2, campaign=" spring ", click_id="fb2", click_platform="META"),
    touch(11, "p5", 5, source="google", medium="organic"),
]  # fmt: skip

CONVERSIONS = [
    conversion(101, "p1", 1, "lead", 10.0),
    conversion(102, "p2", 1, "lead", 20.0),
    conversion(103, "p3", 1, "lead", 30.0),
    conversion(104, "p3", 4, "closed_won", 1000.0),
    conversion(105, "p4", 2, "closed_won", 500.0),
    conversion(106, "p5", 3, "closed_won", 250.0),
    conversion(107, "p6", 1.5, "closed_won", 100.0),
]

SPEND = [
    {"platform": "Google", "campaign_id": "111", "campaign": "Brand", "cost": 50.0},
    {"platform": "linkedin", "campaign_id": "222", "campaign": "Other Camp", "cost": 70.0},
    {"platform": "facebook", "campaign_id": "SPRING", "campaign": "Spring Sale", "cost": 30.0},
]


@pytest.fixture
def filled(store: Store) -> Store:
    store.append("touchpoints", pd.DataFrame(TOUCHES))
    store.append("conversions", pd.DataFrame(CONVERSIONS))
    store.append("ad_spend", pd.DataFrame(SPEND))
    return store


def kind_row(frame: pd.DataFrame, kind: str) -> pd.Series:
    return cast(pd.Series, frame.set_index("kind").loc[kind])


def test_no_touch_share_by_kind(filled: Store) -> None:
    by_kind = blind_spots(filled).by_kind
    assert by_kind.kind.tolist() == ["closed_won", "lead"]
    lead = kind_row(by_kind, "lead")
    assert lead.conversions == 3
    assert lead.no_touch == 1
    assert lead.no_touch_share == pytest.approx(1 / 3)
    assert lead.no_touch_value_share == pytest.approx(30 / 60)
    won = kind_row(by_kind, "closed_won")
    assert won.conversions == 4
    assert won.value == pytest.approx(1850.0)
    assert won.no_touch == 2
    assert won.no_touch_share == pytest.approx(0.5)
    assert won.no_touch_value == pytest.approx(1250.0)
    assert won.no_touch_value_share == pytest.approx(1250 / 1850)


def test_direct_only_share_by_kind(filled: Store) -> None:
    by_kind = blind_spots(filled).by_kind
    lead = kind_row(by_kind, "lead")
    assert lead.direct_only == 1
    assert lead.direct_only_share == pytest.approx(1 / 3)
    assert lead.direct_only_value_share == pytest.approx(20 / 60)
    won = kind_row(by_kind, "closed_won")
    assert won.direct_only == 1
    assert won.direct_only_share == pytest.approx(0.25)
    assert won.direct_only_value_share == pytest.approx(100 / 1850)


def test_direct_channels_from_config(filled: Store) -> None:
    config = Config.model_validate({"channels": {"direct_channels": ["direct", "Paid Social"]}})
    won = kind_row(blind_spots(filled, config).by_kind, "closed_won")
    assert won.direct_only == 2


def test_unmatched_click_ids_by_platform(filled: Store) -> None:
    clicks = blind_spots(filled).click_ids
    assert clicks.click_platform.tolist() == ["(not set)", "linkedin_ads", "meta", "google_ads"]
    rows = clicks.set_index("click_platform")
    assert rows.click_touches.to_dict() == {
        "(not set)": 1,
        "linkedin_ads": 1,
        "meta": 2,
        "google_ads": 1,
    }
    assert rows.unmatched.to_dict() == {
        "(not set)": 1,
        "linkedin_ads": 1,
        "meta": 1,
        "google_ads": 0,
    }
    assert rows.no_campaign.to_dict() == {
        "(not set)": 0,
        "linkedin_ads": 0,
        "meta": 1,
        "google_ads": 0,
    }
    assert rows.loc["meta", "unmatched_share"] == pytest.approx(0.5)
    assert rows.share_of_all.tolist() == pytest.approx([0.2, 0.2, 0.2, 0.0])


def test_spend_platform_names_map_to_clicks() -> None:
    mapping = spend_click_platforms(Config().spend.platform_channels)
    assert mapping["google"] == "google_ads"
    assert mapping["bing"] == "microsoft_ads"
    assert mapping["linkedin"] == "linkedin_ads"
    assert mapping["facebook"] == "meta"
    assert mapping["instagram"] == "meta"
    assert mapping["tiktok"] == "tiktok_ads"
    assert mapping["meta"] == "meta"


def test_agreement_matrix(filled: Store) -> None:
    matrix = blind_spots(filled).agreement
    assert matrix.index.tolist() == ["Organic Social", "Podcast"]
    assert matrix.columns.tolist() == ["Direct", "Paid Social", NO_TRACKED_TOUCH]
    assert list(matrix.loc["Organic Social"]) == [1, 0, 0]
    assert list(matrix.loc["Podcast"]) == [0, 1, 1]


def test_undercount_ranking(filled: Store) -> None:
    ranking = blind_spots(filled).undercount
    assert ranking.channel.tolist() == [
        "Podcast",
        "Organic Social",
        NO_TRACKED_TOUCH,
        "Direct",
        "Paid Social",
    ]
    assert ranking.undercount.tolist() == pytest.approx([2 / 3, 1 / 3, -1 / 3, -1 / 3, -1 / 3])
    assert ranking.self_reported.tolist() == [2, 1, 0, 0, 0]
    assert ranking.tracked_first.tolist() == [0, 0, 1, 1, 1]


def test_empty_store_returns_notes(store: Store) -> None:
    report = blind_spots(store)
    assert report.by_kind.empty
    assert report.click_ids.empty
    assert report.agreement.empty
    assert report.undercount.empty
    assert report.stage_entries.empty
    assert report.expected.empty
    assert len(report.notes) == 4


def test_no_self_reported_touches(store: Store) -> None:
    rows = [row for row in TOUCHES if "touch_type" not in row]
    store.append("touchpoints", pd.DataFrame(rows))
    store.append("conversions", pd.DataFrame(CONVERSIONS))
    report = blind_spots(store)
    assert not report.by_kind.empty
    assert report.agreement.empty
    assert report.undercount.empty
    assert any("self_reported" in note for note in report.notes)


def test_report_is_deterministic(filled: Store) -> None:
    first, second = blind_spots(filled), blind_spots(filled)
    pd.testing.assert_frame_equal(first.by_kind, second.by_kind)
    pd.testing.assert_frame_equal(first.click_ids, second.click_ids)
    pd.testing.assert_frame_equal(first.agreement, second.agreement)
    pd.testing.assert_frame_equal(first.undercount, second.undercount)


def by_kind_on(con: Any) -> pd.DataFrame:
    touches = con.create_table(
        "touchpoints",
        conform(pd.DataFrame(TOUCHES), RAW_TABLES["touchpoints"], table_name="touchpoints"),
        overwrite=True,
    )
    conversions = con.create_table(
        "conversions",
        conform(pd.DataFrame(CONVERSIONS), RAW_TABLES["conversions"], table_name="conversions"),
        overwrite=True,
    )
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), JourneyOptions())
    by_kind = tracking_by_kind(journeys.journeys, journeys.touches, touches, ["Direct"])
    frame: pd.DataFrame = by_kind.to_pandas()
    return frame


@pytest.mark.spark
def test_by_kind_spark_equals_duckdb(spark: Any) -> None:
    duck = by_kind_on(ibis.duckdb.connect())
    sparked = by_kind_on(ibis.pyspark.connect(spark))
    assert len(duck) == 2
    assert list(duck.columns) == list(sparked.columns)
    pd.testing.assert_frame_equal(duck, sparked, check_dtype=False)


def test_demo_world_ranges(tmp_path: Path) -> None:
    files = write_world(generate_world(400, seed=7), tmp_path)
    config = Config()
    store = Store.open()
    api.import_file(store, files["touchpoints"], input_format="touchpoints", config=config)
    api.import_file(store, files["ad_spend"], input_format="spend", config=config)
    api.build(store, config)
    report = blind_spots(store, config)
    store.close()

    assert not report.by_kind.empty
    for column in ["no_touch_share", "direct_only_share"]:
        shares = report.by_kind[column]
        assert ((shares >= 0) & (shares <= 1)).all(), column
    assert not report.click_ids.empty
    assert report.click_ids.unmatched.sum() <= report.click_ids.click_touches.sum()
    assert math.isclose(report.click_ids.share_of_all.sum(), report.click_ids.unmatched.sum()
                        / report.click_ids.click_touches.sum())  # fmt: skip
