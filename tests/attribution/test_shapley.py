"""Shapley values (coalition and ordered) and Fractribution's path Shapley."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymap.attribution import create_model, credit_by
from journeymap.attribution.aggregate import STATE_SEPARATOR
from journeymap.attribution.fractribution import path_fractions
from journeymap.attribution.shapley import OrderedShapley, Shapley, sampled_shapley
from journeymap.common.errors import ModelError
from journeymap.journeys.build import Journeys
from journeymap.store.store import Store
from tests.attribution.test_markov import path_journeys

THREE_PATHS = (
    "path,total_conversions,total_null,total_conversion_value\n"
    "A > B > A > C,1,0,30\nA,1,0,10\nB > C,0,1,0\n"
)


def channel_credit(
    journeys: Journeys, name: str, **parameters: object
) -> dict[str, tuple[float, float]]:
    frame = credit_by(create_model(name, dict(parameters)).credits(journeys)).to_pandas()
    return {row.channel: (row.conversions, row.value) for row in frame.itertuples()}


def test_shapley_coalition_hand_case(store: Store, tmp_path: Path) -> None:
    credit = channel_credit(path_journeys(store, tmp_path, THREE_PATHS), "shapley")
    assert credit["A"][0] == pytest.approx(4 / 3, abs=1e-12)
    assert credit["B"][0] == pytest.approx(1 / 3, abs=1e-12)
    assert credit["C"][0] == pytest.approx(1 / 3, abs=1e-12)
    assert sum(value for _, value in credit.values()) == pytest.approx(40.0, abs=1e-9)


def test_shapley_brute_force_agrees(store: Store, tmp_path: Path) -> None:
    """The closed form equals the textbook sum over all coalitions of v(S ∪ i) − v(S)."""
    from itertools import combinations
    from math import factorial

    text = (
        "path,total_conversions,total_null\nA > B,3,2\nB > C > D,2,5\nA,1,4\nD > A > C,4,0\nB,0,3\n"
    )
    credit = channel_credit(path_journeys(store, tmp_path, text), "shapley")
    observed = {
        frozenset("AB"): 3.0,
        frozenset("BCD"): 2.0,
        frozenset("A"): 1.0,
        frozenset("DAC"): 4.0,
    }
    players = sorted("ABCD")

    def worth(coalition: frozenset[str]) -> float:
        return sum(value for members, value in observed.items() if members <= coalition)

    n = len(players)
    for player in players:
        others = [p for p in players if p != player]
        total = 0.0
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for group in combinations(others, size):
                coalition = frozenset(group)
                total += weight * (worth(coalition | {player}) - worth(coalition))
        assert credit[player][0] == pytest.approx(total, abs=1e-12), player


def test_shapley_conversion_rate_scales_to_total(store: Store, tmp_path: Path) -> None:
    text = "path,total_conversions,total_null\nA,1,9\nB,5,5\nA > B,2,0\n"
    credit = channel_credit(
        path_journeys(store, tmp_path, text), "shapley", metric="conversion_rate"
    )
    # Rates: A 0.1, B 0.5, {A, B} 1.0; phi A = 0.1 + 0.5, phi B = 0.5 + 0.5, scaled to 8.
    assert credit["A"][0] == pytest.approx(8 * 0.6 / 1.6, abs=1e-12)
    assert credit["B"][0] == pytest.approx(8 * 1.0 / 1.6, abs=1e-12)


def test_shapley_sampled_within_standard_errors(store: Store, tmp_path: Path) -> None:
    journeys = path_journeys(
        store, tmp_path, "path,total_conversions\nA > B > C,6\nA,2\nB > D,3\nC > D > A,5\n"
    )
    exact = channel_credit(journeys, "shapley")
    model = create_model("shapley", {"method": "sampled", "samples": 3000, "seed": 3})
    assert isinstance(model, Shapley)
    sampled = credit_by(model.credits(journeys)).to_pandas().set_index("channel").conversions
    errors = model.results["conversion"].values.set_index("channel").standard_error
    for channel, (value, _) in exact.items():
        assert errors[channel] > 0, channel
        assert abs(sampled[channel] - value) <= 4 * errors[channel] + 1e-9, channel


def test_shapley_exact_with_forty_channels() -> None:
    channels = [f"c{i}" for i in range(40)]
    keys = [STATE_SEPARATOR.join(channels), STATE_SEPARATOR.join(channels[:20])]
    coalitions = pd.DataFrame({"key": keys, "worth": [40.0, 20.0]})
    estimate = sampled_shapley(coalitions, samples=4000, seed=1)
    # Closed form: c0..c19 get 1 + 1 = 2, c20..c39 get 1.
    expected = np.array([2.0 if int(name[1:]) < 20 else 1.0 for name in estimate.channel])
    assert np.all(
        np.abs(estimate.shapley.to_numpy() - expected)
        <= 5 * estimate.standard_error.to_numpy() + 1e-9
    )


def test_ordered_shapley_reports_positions(store: Store, tmp_path: Path) -> None:
    model = create_model("shapley_ordered")
    assert isinstance(model, OrderedShapley)
    model.credits(path_journeys(store, tmp_path, THREE_PATHS))
    positions = model.results["conversion"].by_position
    rows = {(row.channel, row.position): row.conversions for row in positions.itertuples()}
    assert rows[("A", 1)] == pytest.approx(4 / 3)
    assert rows[("B", 2)] == pytest.approx(1 / 3)
    assert rows[("C", 3)] == pytest.approx(1 / 3)


def test_ordered_shapley_touches_sum_to_conversion(store: Store, tmp_path: Path) -> None:
    journeys = path_journeys(store, tmp_path, THREE_PATHS)
    credits = create_model("shapley_ordered").credits(journeys).to_pandas()
    per_journey = credits.groupby("journey_id").credit.sum()
    assert per_journey.round(12).tolist() == [1.0, 1.0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    paths=st.lists(
        st.tuples(
            st.lists(st.sampled_from(list("ABCDEFGH")), min_size=1, max_size=7),
            st.integers(min_value=0, max_value=9),
            st.integers(min_value=0, max_value=9),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_shapley_efficiency_on_random_paths(paths: list[tuple[list[str], int, int]]) -> None:
    """Credits add up to the conversions under both metrics and both forms."""
    import tempfile

    lines = ["path,total_conversions,total_null,total_conversion_value"]
    lines += [
        f"{' > '.join(path)},{conversions},{nulls},{conversions * 2.5}"
        for path, conversions, nulls in paths
    ]
    total = sum(conversions for _, conversions, _ in paths)
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open()
        journeys = path_journeys(store, Path(folder), "\n".join(lines) + "\n")
        for name in ("shapley", "shapley_ordered", "fractribution"):
            for metric in ("conversions", "conversion_rate"):
                parameters = {} if name == "fractribution" else {"metric": metric}
                credit = channel_credit(journeys, name, **parameters)
                assert sum(c for c, _ in credit.values()) == pytest.approx(total, abs=1e-9), (
                    name,
                    metric,
                )
                assert sum(v for _, v in credit.values()) == pytest.approx(total * 2.5, abs=1e-6), (
                    name,
                    metric,
                )
                assert all(c >= -1e-12 for c, _ in credit.values()), (name, metric)
        store.close()


def test_fractribution_leave_one_out_by_hand() -> None:
    sep = STATE_SEPARATOR
    summary = pd.DataFrame(
        {
            "kind": "conversion",
            "key": [f"A{sep}B", "A", "B", f"B{sep}B"],
            "conversions": [3.0, 1.0, 1.0, 0.0],
            "nulls": [1.0, 3.0, 1.0, 2.0],
        }
    )
    fractions = path_fractions(summary)
    both = fractions[fractions.key == f"A{sep}B"].set_index("position").fraction
    # p(A > B) = 0.75; without A it is p(B) = 0.5, without B it is p(A) = 0.25.
    assert both[1] == pytest.approx(0.25 / 0.75)
    assert both[2] == pytest.approx(0.5 / 0.75)
    assert fractions[fractions.key == "A"].fraction.tolist() == [1.0]
    assert f"B{sep}B" not in set(fractions.key)


def test_fractribution_zero_contributions_go_last() -> None:
    sep = STATE_SEPARATOR
    summary = pd.DataFrame(
        {
            "kind": "conversion",
            "key": [f"A{sep}B", "A", "B"],
            "conversions": [1.0, 1.0, 1.0],
            "nulls": [1.0, 0.0, 0.0],
        }
    )
    fractions = path_fractions(summary)
    assert fractions[fractions.key == f"A{sep}B"].fraction.tolist() == [0.0, 1.0]


def test_shapley_rejects_unknown_metric() -> None:
    with pytest.raises(ModelError, match="metric"):
        create_model("shapley", {"metric": "revenue"})
