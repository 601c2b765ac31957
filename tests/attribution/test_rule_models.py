"""Rule-based models against hand-worked cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeymap.attribution import create_model, model_names
from journeymap.common.errors import ModelError
from journeymap.store.schema import UNATTRIBUTED
from journeymap.store.store import Store
from tests.builders import at, channel_credit, journeys_of


def path_rows(
    person: str, channels: list[str], value: float, step_days: float = 1.0
) -> list[dict[str, object]]:
    """Rows of one journey: one touch a day, the last touch carrying the conversion."""
    rows: list[dict[str, object]] = []
    for index, channel in enumerate(channels):
        last = index == len(channels) - 1
        rows.append(
            {
                "user_id": person,
                "timestamp": at(days=index * step_days),
                "channel": channel,
                "conversion": int(last),
                "value": value if last else 0,
            }
        )
    return rows


def test_position_based_30_20_50(store: Store, tmp_path: Path) -> None:
    rows = path_rows("u1", ["linkedin_ads", "webinar", "email", "google_ads"], 1000)
    credit = channel_credit(
        journeys_of(store, rows, tmp_path), "position_based", {"first": 0.3, "last": 0.5}
    )
    assert credit["linkedin_ads"][1] == pytest.approx(300)
    assert credit["webinar"][1] == pytest.approx(100)
    assert credit["email"][1] == pytest.approx(100)
    assert credit["google_ads"][1] == pytest.approx(500)


def test_position_based_counts_positions_not_channels(store: Store, tmp_path: Path) -> None:
    rows = path_rows("u1", ["paid_social", "email", "paid_social"], 100)
    credit = channel_credit(journeys_of(store, rows, tmp_path), "position_based")
    assert credit["paid_social"][1] == pytest.approx(80)
    assert credit["email"][1] == pytest.approx(20)


def test_position_based_single_touch_takes_all(store: Store, tmp_path: Path) -> None:
    credit = channel_credit(
        journeys_of(store, path_rows("u1", ["email"], 100), tmp_path), "position_based"
    )
    assert credit == {"email": pytest.approx((1.0, 100.0))}


@pytest.mark.parametrize(
    ("first", "last", "expected_first"),
    [(0.4, 0.4, 50.0), (0.3, 0.5, 37.5), (0.0, 0.0, 50.0)],
    ids=["even-shares", "uneven-shares", "zero-shares"],
)
def test_position_based_two_touches_split_by_ratio(
    store: Store, tmp_path: Path, first: float, last: float, expected_first: float
) -> None:
    rows = path_rows("u1", ["linkedin_ads", "google_ads"], 100)
    credit = channel_credit(
        journeys_of(store, rows, tmp_path), "position_based", {"first": first, "last": last}
    )
    assert credit["linkedin_ads"][1] == pytest.approx(expected_first)
    assert credit["google_ads"][1] == pytest.approx(100 - expected_first)


def test_time_decay_halves_per_half_life(store: Store, tmp_path: Path) -> None:
    rows = path_rows("u1", ["a", "b", "c"], 700, step_days=7.0)
    credit = channel_credit(journeys_of(store, rows, tmp_path), "time_decay", {"half_life_days": 7})
    assert credit["a"][1] == pytest.approx(100)
    assert credit["b"][1] == pytest.approx(200)
    assert credit["c"][1] == pytest.approx(400)


def test_lookback_excludes_old_and_later_touches(store: Store, tmp_path: Path) -> None:
    rows = [
        {"user_id": "u1", "timestamp": at(days=-31), "channel": "old", "conversion": 0, "value": 0},
        {
            "user_id": "u1",
            "timestamp": at(days=-29),
            "channel": "recent",
            "conversion": 0,
            "value": 0,
        },
        {"user_id": "u1", "timestamp": at(), "channel": None, "conversion": 1, "value": 80},
        {
            "user_id": "u1",
            "timestamp": at(minutes=1),
            "channel": "after",
            "conversion": 0,
            "value": 0,
        },
        {
            "user_id": "u2",
            "timestamp": at(days=-45),
            "channel": "stale",
            "conversion": 0,
            "value": 0,
        },
        {"user_id": "u2", "timestamp": at(), "channel": None, "conversion": 1, "value": 20},
    ]
    journeys = journeys_of(store, rows, tmp_path, lookback_days=30)
    for model in model_names():
        credit = channel_credit(journeys, model)
        assert "old" not in credit, model
        assert "after" not in credit, model
        assert "stale" not in credit, model
        assert credit["recent"] == pytest.approx((1.0, 80.0)), model
        assert credit[UNATTRIBUTED] == pytest.approx((1.0, 20.0)), model


def test_first_last_linear_on_one_path(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(store, path_rows("u1", ["a", "b", "a", "c"], 40), tmp_path)
    assert channel_credit(journeys, "first_touch")["a"] == pytest.approx((1.0, 40.0))
    assert channel_credit(journeys, "last_touch")["c"] == pytest.approx((1.0, 40.0))
    linear = channel_credit(journeys, "linear")
    assert linear["a"] == pytest.approx((0.5, 20.0))
    assert linear["b"] == pytest.approx((0.25, 10.0))


def test_last_non_direct_skips_direct(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(
        store, path_rows("u1", ["Email", "Paid Search", "Direct", "direct"], 10), tmp_path
    )
    assert channel_credit(journeys, "last_non_direct") == {
        "Paid Search": pytest.approx((1.0, 10.0))
    }


def test_last_non_direct_all_direct_keeps_last(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(store, path_rows("u1", ["Direct", "Direct"], 10), tmp_path)
    assert channel_credit(journeys, "last_non_direct") == {"Direct": pytest.approx((1.0, 10.0))}


def milestone_rows() -> list[dict[str, object]]:
    """One person: five touches, a lead after the second and an opportunity after the fourth."""
    touches = ["linkedin_ads", "webinar", "email", "sdr_call", "google_ads"]
    rows: list[dict[str, object]] = [
        {"user_id": "u1", "timestamp": at(days=day), "channel": channel}
        for day, channel in enumerate(touches)
    ]
    rows.append(
        {
            "user_id": "u1",
            "timestamp": at(days=1, minutes=5),
            "conversion": 1,
            "conversion_kind": "lead",
            "value": 0,
        }
    )
    rows.append(
        {
            "user_id": "u1",
            "timestamp": at(days=3, minutes=5),
            "conversion": 1,
            "conversion_kind": "opportunity",
            "value": 0,
        }
    )
    rows.append(
        {
            "user_id": "u1",
            "timestamp": at(days=4, minutes=5),
            "conversion": 1,
            "conversion_kind": "closed_won",
            "value": 1000,
        }
    )
    return rows


def test_w_shaped_credits_milestone_touches(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(store, milestone_rows(), tmp_path, conversion_kinds=("closed_won",))
    credit = channel_credit(journeys, "w_shaped")
    assert credit["linkedin_ads"][1] == pytest.approx(300)
    assert credit["webinar"][1] == pytest.approx(300)
    assert credit["sdr_call"][1] == pytest.approx(300)
    assert credit["email"][1] == pytest.approx(50)
    assert credit["google_ads"][1] == pytest.approx(50)


def test_full_path_credits_won_touch(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(store, milestone_rows(), tmp_path, conversion_kinds=("closed_won",))
    credit = channel_credit(journeys, "full_path")
    for channel in ("linkedin_ads", "webinar", "sdr_call", "google_ads"):
        assert credit[channel][1] == pytest.approx(225), channel
    assert credit["email"][1] == pytest.approx(100)


def test_w_shaped_missing_milestone_renormalises(store: Store, tmp_path: Path) -> None:
    rows = [row for row in milestone_rows() if row.get("conversion_kind") != "opportunity"]
    journeys = journeys_of(store, rows, tmp_path, conversion_kinds=("closed_won",))
    credit = channel_credit(journeys, "w_shaped")
    # first 0.3 and lead 0.3 remain, 0.1 spreads over three other touches; total 0.7.
    assert credit["linkedin_ads"][1] == pytest.approx(1000 * 0.3 / 0.7)
    assert credit["webinar"][1] == pytest.approx(1000 * 0.3 / 0.7)
    assert credit["email"][1] == pytest.approx(1000 * (0.1 / 3) / 0.7)
    assert sum(value for _, value in credit.values()) == pytest.approx(1000)


def test_custom_weights_are_relative(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(store, path_rows("u1", ["a", "b", "c", "d"], 70), tmp_path)
    credit = channel_credit(journeys, "custom", {"first": 2, "middle": 1, "last": 3})
    assert credit["a"][1] == pytest.approx(20)
    assert credit["b"][1] == pytest.approx(10)
    assert credit["d"][1] == pytest.approx(30)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("position_based", {"first": 0.7, "last": 0.5}),
        ("time_decay", {"half_life_days": 0}),
        ("time_decay", {"half_life": 7}),
        ("custom", {"first": 0, "middle": 0, "last": 0}),
        ("w_shaped", {"first": -0.1}),
    ],
    ids=["shares-above-one", "zero-half-life", "unknown-name", "all-zero", "negative-share"],
)
def test_invalid_parameters_raise(name: str, parameters: dict[str, float]) -> None:
    with pytest.raises(ModelError, match=name):
        create_model(name, parameters)


def test_unknown_model_suggests_names() -> None:
    with pytest.raises(ModelError, match="Did you mean linear"):
        create_model("lineer")


def test_models_are_deterministic(store: Store, tmp_path: Path) -> None:
    journeys = journeys_of(store, milestone_rows() + path_rows("u2", ["a", "b", "a"], 5), tmp_path)
    for model in model_names():
        assert channel_credit(journeys, model) == channel_credit(journeys, model), model
