"""Stage blind spots: entries without a tracked touch, and expected touchpoints without data."""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.analyses.blindspots import blind_spots
from journeymap.analyses.stage_gaps import (
    MEASURED,
    NO_CHANNEL,
    NO_TOUCH,
    expected_touchpoint_gaps,
    matching_channels,
    untouched_entries,
)
from journeymap.common.config import Config, StageConfig
from journeymap.store.store import Store

T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def day(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def stay(entity: str, stage: str, entered: float, exited: float | None = None) -> dict[str, Any]:
    return {
        "entity_kind": "person",
        "entity_id": entity,
        "stage": stage,
        "entered_at": day(entered),
        "exited_at": None if exited is None else day(exited),
        "reason": "test",
    }


def seen(entity: str, days: float, channel: str = "Webinars") -> dict[str, Any]:
    return {"entity_id": entity, "occurred_at": day(days), "channel": channel}


def table(rows: list[dict[str, Any]]) -> ibis.Table:
    frame = pd.DataFrame(rows)
    for column in ("entered_at", "exited_at", "occurred_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return ibis.memtable(frame)


def test_untouched_entries_count_entries_without_a_touch_in_the_lookback() -> None:
    # a: touch 5 days before entering; b: the only touch is 90 days before (outside 30);
    # c: no touch; d: a touch at the entry time itself counts, one after it does not.
    timeline = table(
        [
            stay("a", "Consideration", 10),
            stay("b", "Consideration", 100),
            stay("c", "Consideration", 50),
            stay("d", "Consideration", 40),
        ]
    )
    touches = table([seen("a", 5), seen("b", 10), seen("d", 40), seen("c", 51)])

    result = untouched_entries(timeline, touches, lookback_days=30).to_pandas()

    row = result.set_index("stage").loc["Consideration"]
    assert row.entries == 4
    assert row.untouched == 2
    assert row.untouched_share == pytest.approx(0.5)


def test_untouched_entries_count_each_stay_of_a_stage_once() -> None:
    timeline = table([stay("a", "Awareness", 0, 10), stay("a", "Decision", 10)])
    touches = table([seen("a", 0), seen("a", 1), seen("a", 2)])

    result = untouched_entries(timeline, touches, lookback_days=30).to_pandas()

    counts = result.set_index("stage")
    assert list(counts.loc[["Awareness", "Decision"]].entries) == [1, 1]
    assert list(counts.loc[["Awareness", "Decision"]].untouched) == [0, 0]


@pytest.mark.parametrize(
    ("expected", "found"),
    [
        ("Webinar", ["Webinars"]),
        ("Organic search", ["Organic Search"]),
        ("Email nurture", ["Email"]),
        ("Paid social", ["Paid Social"]),
        ("Podcast ads", []),
    ],
)
def test_matching_channels_compare_names_loosely(expected: str, found: list[str]) -> None:
    channels = ["Email", "Organic Search", "Paid Search", "Paid Social", "Webinars"]

    assert matching_channels(expected, channels) == found


def test_expected_touchpoint_gaps_report_measured_missing_and_unmatched() -> None:
    stages = [
        StageConfig(
            name="Consideration",
            expected_touchpoints=["Webinar", "Email nurture", "Podcast ads"],
        )
    ]
    timeline = table([stay("a", "Consideration", 10, 20), stay("b", "Consideration", 30)])
    # a's webinar is inside its stay, b's two webinars are too (open stay); a's email comes
    # after a left the stage.
    touches = table([seen("a", 12), seen("b", 31), seen("b", 60), seen("a", 25, channel="Email")])

    result = expected_touchpoint_gaps(stages, timeline, touches, as_of=day(90).to_pydatetime())

    assert list(result.expected) == ["Webinar", "Email nurture", "Podcast ads"]
    assert list(result.channels) == ["Webinars", "Email", ""]
    assert list(result.touches) == [3, 0, 0]
    assert list(result.status) == [MEASURED, NO_TOUCH, NO_CHANNEL]


def test_blind_spots_include_the_stage_gaps_of_a_store() -> None:
    store = Store.open()
    store.append(
        "touchpoints",
        pd.DataFrame(
            {
                "touchpoint_id": ["t1", "t2"],
                "seq": [1, 3],
                "person_id": ["p1", "p2"],
                "occurred_at": [day(0), day(1)],
                "touch_type": ["webinar", None],
                "source": [None, "google"],
                "medium": [None, "organic"],
            }
        ),
    )
    store.append(
        "conversions",
        pd.DataFrame(
            {
                "conversion_id": ["c1", "c2"],
                "seq": [2, 4],
                "person_id": ["p1", "p3"],
                "occurred_at": [day(2), day(3)],
                "kind": ["lead", "lead"],
                "value": [0.0, 0.0],
            }
        ),
    )

    report = blind_spots(store, Config())

    entries = report.stage_entries.set_index("stage")
    # p1's lead follows its webinar; p3's lead has no touch at all.
    assert entries.loc["Consideration"].entries == 2
    assert entries.loc["Consideration"].untouched == 1
    expected = report.expected.set_index(["stage", "expected"])
    assert expected.loc[("Awareness", "Organic search")].status == MEASURED
    assert expected.loc[("Consideration", "Webinar")].status == NO_TOUCH
