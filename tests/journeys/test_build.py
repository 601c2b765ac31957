"""Journey building: windows, ties, non-converting journeys, transforms and milestones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeymap.analyses.paths import journey_paths
from journeymap.journeys.build import Journeys
from journeymap.store.store import Store
from tests.builders import at, journeys_of


def paths_by_journey(journeys: Journeys) -> dict[str, str]:
    frame = journey_paths(journeys.touches).to_pandas()
    return dict(zip(frame.journey_id, frame.path, strict=True))


def journey_rows(journeys: Journeys) -> pd.DataFrame:
    return journeys.journeys.to_pandas().sort_values("journey_id").reset_index(drop=True)


def test_touches_after_conversion_start_next_journey(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "a"},
        {"user_id": "u1", "timestamp": at(days=1), "channel": "b", "conversion": 1, "value": 10},
        {"user_id": "u1", "timestamp": at(days=2), "channel": "c"},
        {"user_id": "u1", "timestamp": at(days=3), "channel": "d", "conversion": 1, "value": 20},
        {"user_id": "u1", "timestamp": at(days=4), "channel": "e"},
    ]
    journeys = journeys_of(store, rows, tmp_path)
    paths = paths_by_journey(journeys)
    frame = journey_rows(journeys)
    assert list(frame.conversions) == [1.0, 1.0, 0.0]
    assert list(frame.value) == [10.0, 20.0, 0.0]
    assert [paths[journey_id] for journey_id in frame.journey_id] == ["a > b", "c > d", "e"]


def test_conversion_row_without_touch_fields_is_not_a_touch(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "a"},
        {"user_id": "u1", "timestamp": at(days=1), "conversion": 1, "value": 10},
    ]
    journeys = journeys_of(store, rows, tmp_path)
    assert journeys.touches.count().execute() == 1
    assert paths_by_journey(journeys) == {"conversion:u1:0": "a"}


def test_equal_timestamps_keep_file_order(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(), "channel": "z"},
        {"user_id": "u1", "timestamp": at(), "channel": "a"},
        {"user_id": "u1", "timestamp": at(), "channel": "m", "conversion": 1, "value": 1},
        {"user_id": "u1", "timestamp": at(), "channel": "b", "conversion": 1, "value": 1},
    ]
    journeys = journeys_of(store, rows, tmp_path)
    assert paths_by_journey(journeys) == {"conversion:u1:0": "z > a > m", "conversion:u1:1": "b"}


def test_lookback_cuts_non_converting_journey(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "old"},
        {"user_id": "u1", "timestamp": at(days=50), "channel": "mid"},
        {"user_id": "u1", "timestamp": at(days=60), "channel": "last"},
        {"user_id": "u2", "timestamp": at(days=60), "channel": "x", "conversion": 1, "value": 3},
    ]
    journeys = journeys_of(store, rows, tmp_path, lookback_days=30)
    assert paths_by_journey(journeys)["conversion:u1:0"] == "mid > last"
    frame = journey_rows(journeys).set_index("journey_id")
    assert frame.loc["conversion:u1:0", "nulls"] == 1.0
    assert frame.loc["conversion:u1:0", "conversions"] == 0.0


@pytest.mark.parametrize(
    ("transform", "last_n", "expected"),
    [
        ("none", None, "a > a > b > a > c > c"),
        ("collapse", None, "a > b > a > c"),
        ("unique", None, "a > b > c"),
        ("first", None, "a > b > c"),
        ("frequency", None, "a(3) > b > c(2)"),
        ("none", 2, "c > c"),
        ("collapse", 3, "b > a > c"),
    ],
    ids=["none", "collapse", "unique", "first", "frequency", "last-2", "collapse-last-3"],
)
def test_path_transforms(
    store: Store, tmp_path: Path, transform: str, last_n: int | None, expected: str
) -> None:
    channels = ["a", "a", "b", "a", "c", "c"]
    rows = [
        {"user_id": "u1", "timestamp": at(days=day), "channel": channel}
        for day, channel in enumerate(channels)
    ]
    rows[-1].update(conversion=1, value=6)
    journeys = journeys_of(store, rows, tmp_path, transform=transform, last_n=last_n)
    assert paths_by_journey(journeys) == {"conversion:u1:0": expected}
    touches = journeys.touches.to_pandas().sort_values("position")
    assert list(touches.position) == list(range(1, len(touches) + 1))
    assert set(touches.n_touches) == {len(touches)}


def test_frequency_counts_repeats(store: Store, tmp_path: Path) -> None:
    channels = ["a", "a", "b", "a", "c", "c"]
    rows = [
        {"user_id": "u1", "timestamp": at(days=day), "channel": channel}
        for day, channel in enumerate(channels)
    ]
    rows[-1].update(conversion=1, value=6)
    journeys = journeys_of(store, rows, tmp_path, transform="frequency")
    touches = journeys.touches.to_pandas().sort_values("position")
    assert list(touches.repeats) == [3, 1, 2]


def test_journeys_split_by_conversion_kind(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "a"},
        {
            "user_id": "u1",
            "timestamp": at(days=1),
            "conversion": 1,
            "conversion_kind": "lead",
            "value": 0,
        },
        {"user_id": "u1", "timestamp": at(days=2), "channel": "b"},
        {
            "user_id": "u1",
            "timestamp": at(days=3),
            "conversion": 1,
            "conversion_kind": "closed_won",
            "value": 900,
        },
    ]
    journeys = journeys_of(store, rows, tmp_path)
    paths = paths_by_journey(journeys)
    assert paths["lead:u1:0"] == "a"
    assert paths["closed_won:u1:0"] == "a > b"
    assert paths["lead:u1:1"] == "b"


def test_account_entity_merges_people(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "account_id": "acme", "timestamp": at(days=0), "channel": "a"},
        {"user_id": "u2", "account_id": "acme", "timestamp": at(days=1), "channel": "b"},
        {"user_id": "u3", "timestamp": at(days=1), "channel": "c"},
        {
            "user_id": "u2",
            "account_id": "acme",
            "timestamp": at(days=2),
            "conversion": 1,
            "value": 5,
        },
        {"user_id": "u3", "timestamp": at(days=2), "conversion": 1, "value": 7},
    ]
    journeys = journeys_of(store, rows, tmp_path, entity="account")
    assert paths_by_journey(journeys) == {
        "conversion:acme:0": "a > b",
        "conversion:person:u3:0": "c",
    }


def test_milestone_touches_are_flagged(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "a"},
        {"user_id": "u1", "timestamp": at(days=1), "channel": "b"},
        {
            "user_id": "u1",
            "timestamp": at(days=1, minutes=1),
            "conversion": 1,
            "conversion_kind": "lead",
        },
        {"user_id": "u1", "timestamp": at(days=2), "channel": "c"},
        {
            "user_id": "u1",
            "timestamp": at(days=3),
            "channel": "d",
            "conversion": 1,
            "conversion_kind": "opportunity",
        },
        {"user_id": "u1", "timestamp": at(days=4), "channel": "e"},
        {
            "user_id": "u1",
            "timestamp": at(days=5),
            "conversion": 1,
            "conversion_kind": "closed_won",
            "value": 10,
        },
    ]
    journeys = journeys_of(store, rows, tmp_path, conversion_kinds=("closed_won",))
    touches = journeys.touches.to_pandas().set_index("channel")
    assert touches.is_lead_touch.to_dict() == {
        "a": False,
        "b": True,
        "c": False,
        "d": False,
        "e": False,
    }
    assert touches.is_opportunity_touch.to_dict() == {
        "a": False,
        "b": False,
        "c": False,
        "d": True,
        "e": False,
    }
    assert touches.is_won_touch.to_dict() == {
        "a": False,
        "b": False,
        "c": False,
        "d": False,
        "e": True,
    }


def test_days_before_counts_fractional_days(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "a"},
        {"user_id": "u1", "timestamp": at(days=1.5), "channel": "b", "conversion": 1, "value": 1},
    ]
    journeys = journeys_of(store, rows, tmp_path)
    touches = journeys.touches.to_pandas().set_index("channel")
    assert touches.days_before.to_dict() == {"a": 1.5, "b": 0.0}
