"""The journey map's figures against values worked out by hand on a four-person store.

The store (days after 2024-03-01, stall threshold of Awareness 10 days)::

    p1 (A1): touch a day 0, lead day 2, touch b day 3, won 100 day 5
    p2 (A1): touch a day 1, lead day 4
    p3 (A2): touch c day 0
    p4 (A2): touch b day 10, won 300 day 12

The last stage entry is day 12, so the map is taken as of day 12.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeymap.common.errors import ConfigError, StoreError
from journeymap.report.map import MAP_FORMAT, JourneyMap, journey_map, parse_segment
from journeymap.store.store import Store
from tests.report.map_builders import add_accounts, conversion, load_store, map_config, touch

ROWS = [
    touch("p1", 0, "a", "A1"),
    conversion("p1", 2, "lead", account="A1"),
    touch("p1", 3, "b", "A1"),
    conversion("p1", 5, "closed_won", 100, "A1"),
    touch("p2", 1, "a", "A1"),
    conversion("p2", 4, "lead", account="A1"),
    touch("p3", 0, "c", "A2"),
    touch("p4", 10, "b", "A2"),
    conversion("p4", 12, "closed_won", 300, "A2"),
]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open()
    load_store(store, ROWS, tmp_path_factory.mktemp("map"), map_config())
    add_accounts(store, {"A1": "Software", "A2": "Retail"})
    yield store
    store.close()


@pytest.fixture(scope="module")
def whole(small_store: Store) -> JourneyMap:
    return journey_map(small_store, map_config())


def test_map_stage_counts_by_hand(whole: JourneyMap) -> None:
    awareness, consideration, won = whole.stages

    assert (awareness.figures.entered, awareness.figures.moved_on) == (4, 3)
    assert (consideration.figures.entered, consideration.figures.moved_on) == (2, 1)
    assert (won.figures.entered, won.figures.moved_on) == (2, 0)
    assert awareness.figures.conversion_rate == 0.75
    assert consideration.figures.conversion_rate == 0.5
    assert consideration.figures.dropoff_rate == 0.5


def test_map_last_stage_has_no_rate(whole: JourneyMap) -> None:
    won = whole.stage("Won")

    assert won.figures.conversion_rate is None
    assert won.figures.dropoff_rate is None
    assert won.figures.stalled is None


def test_map_median_days_by_hand(whole: JourneyMap) -> None:
    # Completed Awareness stays: p1 2 days, p2 3 days, p4 2 days. Consideration: p1 3 days.
    assert whole.stage("Awareness").figures.median_days == 2.0
    assert whole.stage("Awareness").figures.completed_stays == 3
    assert whole.stage("Consideration").figures.median_days == 3.0


def test_map_stalled_by_configured_threshold(whole: JourneyMap) -> None:
    figures = whole.stage("Awareness").figures

    # p3 has been in Awareness for 12 days at day 12, beyond the configured 10.
    assert figures.stalled == 1
    assert figures.stall_threshold_days == 10.0
    assert figures.stall_threshold_source == "configured"


def test_map_stalled_by_p75_threshold(whole: JourneyMap) -> None:
    figures = whole.stage("Consideration").figures

    # No stall_days: the 75th percentile of the one completed stay (3 days); p2 is at 8 days.
    assert figures.stall_threshold_days == 3.0
    assert figures.stall_threshold_source == "p75"
    assert figures.stalled == 1


def test_map_touchpoints_met_by_stage(whole: JourneyMap) -> None:
    awareness = [(s.channel, s.touches, s.share) for s in whole.stage("Awareness").touchpoints]
    consideration = [
        (s.channel, s.touches, s.share) for s in whole.stage("Consideration").touchpoints
    ]

    # Winning journeys: p1 (a in Awareness, b in Consideration) and p4 (b in Awareness).
    assert awareness == [("a", 1, 0.5), ("b", 1, 0.5)]
    assert consideration == [("b", 1, 1.0)]
    assert whole.stage("Won").touchpoints == ()


def test_map_attributed_revenue_by_stage(whole: JourneyMap) -> None:
    # Linear: p1's 100 splits 50/50 over a and b; p4's 300 goes to b.
    assert whole.stage("Awareness").figures.attributed_revenue == pytest.approx(350.0)
    assert whole.stage("Consideration").figures.attributed_revenue == pytest.approx(50.0)
    assert whole.stage("Won").figures.attributed_revenue == 0.0
    assert whole.stage("Awareness").figures.attributed_wins == pytest.approx(1.5)
    assert whole.unplaced_revenue == 0.0


def test_map_pipeline_is_none_without_kind(whole: JourneyMap) -> None:
    assert whole.pipeline_kind is None
    assert whole.stage("Awareness").figures.attributed_pipeline is None
    assert whole.won_kind == "closed_won"


def test_map_channel_credit_shares(whole: JourneyMap) -> None:
    credit = {row.channel: (row.conversions, row.value, row.share) for row in whole.channel_credit}

    assert credit["b"] == pytest.approx((1.5, 350.0, 0.75))
    assert credit["a"] == pytest.approx((0.5, 50.0, 0.25))
    assert [row.channel for row in whole.channel_credit] == ["b", "a"]


def test_map_top_sequences_of_winners(whole: JourneyMap) -> None:
    paths = [(row.path, row.converters, row.share) for row in whole.top_sequences]

    assert paths == [("a > b", 1, 0.5), ("b", 1, 0.5), ("(other paths)", 0, 0.0)]


def test_map_dropoff_points_by_revenue(whole: JourneyMap) -> None:
    points = [(p.rank, p.stage, p.dropped, p.revenue_impact) for p in whole.dropoff_points]

    # Awareness movers p1, p2, p4 won 400 after entering: 400 / 3 per mover, 1 dropped.
    # Consideration mover p1 won 100: 100 per mover, 1 dropped.
    assert points == [(1, "Awareness", 1, pytest.approx(400 / 3)), (2, "Consideration", 1, 100.0)]


def test_map_end_date_sets_as_of(small_store: Store) -> None:
    result = journey_map(small_store, map_config(), end="2024-03-06")
    awareness = result.stage("Awareness").figures

    # As of day 6: p4 has not entered; p3 has been in Awareness 6 days, under 10.
    assert result.filters.as_of is not None
    assert result.filters.as_of.isoformat() == "2024-03-07T00:00:00+00:00"
    assert (awareness.entered, awareness.moved_on, awareness.stalled) == (3, 2, 0)
    assert result.stage("Awareness").figures.attributed_revenue == pytest.approx(50.0)


def test_map_start_date_limits_cohort(small_store: Store) -> None:
    # From day 5 on: p4 enters Awareness; p1 (day 5) and p4 (day 12) enter Won.
    result = journey_map(small_store, map_config(), start="2024-03-06")

    assert result.stage("Awareness").figures.entered == 1
    assert result.stage("Won").figures.entered == 2
    assert result.stage("Consideration").figures.entered == 0
    assert result.stage("Consideration").figures.conversion_rate is None


def test_map_segment_keeps_its_people(small_store: Store) -> None:
    result = journey_map(small_store, map_config(), segment="industry=software")
    awareness = result.stage("Awareness").figures

    assert (awareness.entered, awareness.moved_on) == (2, 2)
    assert awareness.attributed_revenue == pytest.approx(50.0)
    assert [row.path for row in result.top_sequences] == ["a > b", "(other paths)"]
    assert result.filters.segment == ("industry", "software")


def test_map_segment_unknown_value_lists_values(small_store: Store) -> None:
    with pytest.raises(ConfigError, match="Values of industry: Retail, Software"):
        journey_map(small_store, map_config(), segment="industry=Mining")


def test_map_segment_unknown_column(small_store: Store) -> None:
    with pytest.raises(ConfigError, match="Segment columns: industry, size_band"):
        journey_map(small_store, map_config(), segment="colour=red")


@pytest.mark.parametrize("text", ["industry", "=Software", "industry="])
def test_parse_segment_rejects_malformed(text: str) -> None:
    with pytest.raises(ConfigError, match="is not COLUMN=VALUE"):
        parse_segment(text)


def test_map_range_ending_before_start(small_store: Store) -> None:
    with pytest.raises(ConfigError, match=r"ends .* before it starts"):
        journey_map(small_store, map_config(), start="2024-03-10", end="2024-03-01")


def test_map_invalid_date(small_store: Store) -> None:
    with pytest.raises(ConfigError, match="'March' is not a date"):
        journey_map(small_store, map_config(), start="March")


def test_map_other_lookback_builds_in_memory(small_store: Store) -> None:
    stored_touches = small_store.table("journey_touches").count().execute()
    result = journey_map(small_store, map_config(), lookback=2.5)
    paths = [(row.path, row.converters) for row in result.top_sequences]

    # With 2.5 days, p1's win keeps only touch b (day 3) and p4's keeps b (day 10).
    assert result.filters.lookback_days == 2.5
    assert paths == [("b", 2), ("(other paths)", 0)]
    assert result.stage("Awareness").figures.attributed_revenue == pytest.approx(300.0)
    assert any("built in memory" in note for note in result.notes)
    assert small_store.table("journey_touches").count().execute() == stored_touches


def test_map_to_dict_is_json(whole: JourneyMap) -> None:
    data = whole.to_dict()
    text = json.dumps(data, allow_nan=False)

    assert data["format"] == MAP_FORMAT
    assert [stage["name"] for stage in data["stages"]] == ["Awareness", "Consideration", "Won"]
    assert data["stages"][0]["figures"]["entered"] == 4
    assert data["stages"][0]["qualitative"]["pain_points"] == ["Too | many vendors"]
    assert data["stages"][2]["figures"]["conversion_rate"] is None
    assert data["filters"]["as_of"] == "2024-03-13T00:00:00+00:00"
    assert "NaN" not in text


def test_map_to_dict_numbers_are_numbers(whole: JourneyMap) -> None:
    figures = whole.to_dict()["stages"][0]["figures"]

    for key in ("entered", "moved_on", "stalled", "completed_stays"):
        assert type(figures[key]) is int, key
    for key in ("conversion_rate", "median_days", "attributed_revenue"):
        assert type(figures[key]) is float, key
        assert math.isfinite(figures[key])


def test_map_empty_store_raises(tmp_path: Path) -> None:
    store = Store.open()
    try:
        with pytest.raises(StoreError, match="has no touchpoints"):
            journey_map(store, map_config())
    finally:
        store.close()


def test_map_of_a_deals_only_store_measures_stages_without_touches(tmp_path: Path) -> None:
    import pandas as pd

    from journeymap.sources.deals import import_deals

    deals = tmp_path / "deals.csv"
    pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3"],
            "account": ["a1", "a2", "a3"],
            "deal_stage": ["Won", "Lost", "Engaging"],
            "engage_date": ["2024-01-01", "2024-01-05", "2024-02-01"],
            "close_date": ["2024-02-01", "2024-01-20", ""],
            "close_value": [1000, 0, None],
        }
    ).to_csv(deals, index=False)
    store = Store.open()
    import_deals(store, deals)

    result = journey_map(store)

    figures = {stage.name: stage.figures for stage in result.stages}
    assert figures["Consideration"].entered == 3
    assert figures["Onboarding"].entered == 1
    assert result.top_sequences == ()
    assert any("no touches" in note for note in result.notes)


def test_report_of_a_deals_only_store_points_to_the_map(tmp_path: Path) -> None:
    import pandas as pd

    from journeymap import api
    from journeymap.sources.deals import import_deals

    deals = tmp_path / "deals.csv"
    pd.DataFrame(
        {
            "deal_id": ["d1"],
            "account": ["a1"],
            "deal_stage": ["Engaging"],
            "engage_date": ["2024-01-01"],
        }
    ).to_csv(deals, index=False)
    store = Store.open()
    import_deals(store, deals)

    with pytest.raises(StoreError, match="journeymap map --format html"):
        api.write_report(store, tmp_path / "report.html")
