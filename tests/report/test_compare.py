"""Compare two journey maps: a planted drop is found, noise below the rule is not.

The store has three quarters of 2024 with 100 new people each. Every person is touched on
the quarter's fifth day. A share of them becomes a lead the next day: 50 in Q1, 48 in Q2
(noise) and 20 in Q3 (the planted drop). A fifth of the leads win 1,000 three days later.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import chi2_contingency

from journeymap.common.errors import ConfigError
from journeymap.report.compare import ChangeRule, Comparison, compare, two_proportion_p_value
from journeymap.report.map import journey_map
from journeymap.report.snapshots import load_snapshot, parse_period, snapshot
from journeymap.store.store import Store
from tests.report.map_builders import conversion, load_store, map_config, touch

QUARTERS = {"2024-Q1": (-56, 50), "2024-Q2": (35, 48), "2024-Q3": (126, 20)}
"""Quarter -> (its fifth day, in days after 2024-03-01; the people who become leads)."""


def quarter_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for quarter, (first, leads) in QUARTERS.items():
        for number in range(100):
            person = f"{quarter}-{number}"
            rows.append(touch(person, first, "search" if number % 2 else "social"))
            if number < leads:
                rows.append(conversion(person, first + 1, "lead"))
            if number < leads // 5:
                rows.append(conversion(person, first + 4, "closed_won", 1000))
    return rows


@pytest.fixture(scope="module")
def quarter_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open()
    load_store(store, quarter_rows(), tmp_path_factory.mktemp("quarters"), map_config())
    yield store
    store.close()


@pytest.fixture(scope="module")
def maps(quarter_store: Store) -> dict[str, dict[str, Any]]:
    result = {}
    for quarter in QUARTERS:
        first, last = parse_period(quarter)
        result[quarter] = journey_map(quarter_store, map_config(), start=first, end=last).to_dict()
    return result


def change_of(result: Comparison, section: str, item: str) -> Any:
    return next(c for c in result.changes if (c.section, c.item) == (section, item))


def test_compare_finds_planted_drop(maps: dict[str, dict[str, Any]]) -> None:
    result = compare(maps["2024-Q1"], maps["2024-Q3"], labels=("2024-Q1", "2024-Q3"))
    rate = change_of(result, "stage rate", "Awareness")

    assert rate.before == 0.5
    assert rate.after == 0.2
    assert rate.change == pytest.approx(-30.0)
    assert rate.matters
    assert rate in result.highlights
    assert result.changes[0] is rate


def test_compare_ignores_noise(maps: dict[str, dict[str, Any]]) -> None:
    result = compare(maps["2024-Q1"], maps["2024-Q2"])
    rate = change_of(result, "stage rate", "Awareness")

    assert rate.change == pytest.approx(-2.0)
    assert not rate.matters
    assert result.highlights == ()


def test_compare_needs_enough_entities(maps: dict[str, dict[str, Any]]) -> None:
    # Consideration -> Won: 10 of 50 leads and 4 of 20; 20 leads are fewer than 30.
    result = compare(maps["2024-Q1"], maps["2024-Q3"])
    rate = change_of(result, "stage rate", "Consideration")

    assert (rate.base_before, rate.base_after) == (50.0, 20.0)
    assert not rate.matters


def test_compare_rule_threshold_applies(maps: dict[str, dict[str, Any]]) -> None:
    strict = ChangeRule(rate_points=31.0)
    loose = ChangeRule(rate_points=1.0, alpha=1.0)

    assert not change_of(
        compare(maps["2024-Q1"], maps["2024-Q3"], rule=strict), "stage rate", "Awareness"
    ).matters
    assert change_of(
        compare(maps["2024-Q1"], maps["2024-Q2"], rule=loose), "stage rate", "Awareness"
    ).matters


def test_two_proportion_p_value_matches_chi_square() -> None:
    table = [[50, 50], [20, 80]]
    expected = chi2_contingency(table, correction=False).pvalue

    assert two_proportion_p_value(50, 100, 20, 100) == pytest.approx(expected, rel=1e-9)
    assert two_proportion_p_value(0, 10, 0, 10) == 1.0


def test_compare_rejects_other_data() -> None:
    with pytest.raises(ConfigError, match="is not a journey map"):
        compare({"format": "other"}, {"format": "other"})


def test_change_rule_rejects_bad_alpha() -> None:
    with pytest.raises(ConfigError, match="alpha must be in"):
        ChangeRule(alpha=0.0)


def test_snapshot_round_trip(quarter_store: Store, tmp_path: Path) -> None:
    first = snapshot(
        quarter_store,
        map_config(),
        name="2024-Q1",
        start="2024-01-01",
        end="2024-03-31",
        folder=tmp_path,
    )
    third = snapshot(
        quarter_store, map_config(), start="2024-07-01", end="2024-09-30", folder=tmp_path
    )
    document = load_snapshot("2024-Q1", tmp_path)
    result = compare(document, load_snapshot(third, tmp_path))

    assert first == tmp_path / "2024-Q1.json"
    assert third.name == "2024-07-01..2024-09-30.json"
    assert document["config"]["stages"][0]["name"] == "Awareness"
    assert document["data_range"]["first"].startswith("2024-01-05")
    assert document["package_version"]
    assert change_of(result, "stage rate", "Awareness").matters


def test_snapshot_refuses_overwrite(quarter_store: Store, tmp_path: Path) -> None:
    snapshot(quarter_store, map_config(), name="review", folder=tmp_path)

    with pytest.raises(ConfigError, match="a snapshot named 'review' exists"):
        snapshot(quarter_store, map_config(), name="review", folder=tmp_path)


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "with space"])
def test_snapshot_rejects_unsafe_name(quarter_store: Store, tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="invalid snapshot name"):
        snapshot(quarter_store, map_config(), name=name, folder=tmp_path)


def test_load_snapshot_lists_saved_names(tmp_path: Path) -> None:
    (tmp_path / "2024-Q1.json").write_text("{}", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"Snapshots in .*: 2024-Q1"):
        load_snapshot("2024-Q9", tmp_path)
    with pytest.raises(ConfigError, match="is not a journeymap snapshot"):
        load_snapshot("2024-Q1", tmp_path)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-q4", date(2024, 10, 1), date(2024, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2023", date(2023, 1, 1), date(2023, 12, 31)),
        ("2024-01-15..2024-02-15", date(2024, 1, 15), date(2024, 2, 15)),
    ],
    ids=["quarter", "lowercase-q", "leap-month", "year", "range"],
)
def test_parse_period_forms(text: str, first: date, last: date) -> None:
    assert parse_period(text) == (first, last)


@pytest.mark.parametrize("text", ["2024-Q5", "2024-13", "Q1", "2024-02-10..2024-01-01"])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid period"):
        parse_period(text)
