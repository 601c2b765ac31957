"""Converting paths: top paths of converters, collapse, the other row and funnel reconciliation."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.analyses.converting_paths import (
    COLUMNS,
    OTHER_PATHS,
    UNATTRIBUTED,
    conversion_stays,
    paths_before,
    reconcile_with_funnel,
)
from journeymap.store.schema import DERIVED_TABLES
from journeymap.store.store import Store
from tests.builders import at, journeys_of

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)

Spec = tuple[str, str, str, float | None, list[str]]
"""A journey: id, entity, kind, day of its conversion (None: non-converting), channels."""


def tables(specs: list[Spec]) -> tuple[ibis.Table, ibis.Table]:
    """Return ``journeys`` and ``journey_touches`` memtables with the store schema."""
    journeys: list[dict[str, Any]] = []
    touches: list[dict[str, Any]] = []
    for journey_id, entity, kind, day, channels in specs:
        converted = day is not None
        converted_at = pd.NaT if day is None else pd.Timestamp(at(days=day))
        journeys.append(
            {
                "journey_id": journey_id,
                "entity_id": entity,
                "kind": kind,
                "conversion_id": journey_id if converted else None,
                "converted_at": converted_at,
                "conversions": 1.0 if converted else 0.0,
                "value": 0.0,
                "nulls": 0.0 if converted else 1.0,
                "n_touches": len(channels),
            }
        )
        for position, channel in enumerate(channels, start=1):
            touches.append(
                {
                    "journey_id": journey_id,
                    "position": position,
                    "n_touches": len(channels),
                    "channel": channel,
                    "repeats": 1,
                }
            )
    touch_schema = DERIVED_TABLES["journey_touches"]
    touch_frame = pd.DataFrame(
        touches, columns=["journey_id", "position", "n_touches", "channel", "repeats"]
    )
    touch_table = ibis.memtable(touch_frame)
    missing = {
        name: ibis.null(touch_schema[name])
        for name in touch_schema.names
        if name not in touch_frame
    }
    touch_table = touch_table.mutate(**missing).select(*touch_schema.names).cast(touch_schema)
    journey_table = ibis.memtable(pd.DataFrame(journeys)).cast(DERIVED_TABLES["journeys"])
    return journey_table, touch_table


# Five won entities: e1 and e2 via "a > b", e3 via "c", e4 via "a > a > b" (collapses to
# "a > b"), e5 with no touches. e1 wins twice, and its later win ("c") must not count it
# again. Lead journeys and non-converting journeys share some paths.
SPECS: list[Spec] = [
    ("w1", "e1", "closed_won", 1.0, ["a", "b"]),
    ("w1b", "e1", "closed_won", 5.0, ["c"]),
    ("w2", "e2", "closed_won", 2.0, ["a", "b"]),
    ("w3", "e3", "closed_won", 3.0, ["c"]),
    ("w4", "e4", "closed_won", 4.0, ["a", "a", "b"]),
    ("w5", "e5", "closed_won", 2.0, []),
    ("n1", "e6", "closed_won", None, ["a", "b"]),
    ("n2", "e7", "closed_won", None, ["a", "b"]),
    ("n3", "e8", "closed_won", None, ["c"]),
    ("n4", "e9", "closed_won", None, ["d"]),
    ("l1", "e1", "lead", 0.5, ["a"]),
]


def as_records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return list(frame.itertuples(index=False, name=None))


def test_paths_before_counts_known_paths() -> None:
    journeys, touches = tables(SPECS)
    frame = paths_before(journeys, touches, kind="closed_won")
    assert list(frame.columns) == [
        "path",
        "converters",
        "share",
        "converting_journeys",
        "non_converting_journeys",
        "conversion_rate",
    ]
    assert list(frame.path) == ["a > b", UNATTRIBUTED, "a > a > b", "c", OTHER_PATHS]
    assert list(frame.converters) == [2, 1, 1, 1, 0]
    assert list(frame.converting_journeys) == [2, 1, 1, 2, 0]
    assert list(frame.non_converting_journeys) == [2, 0, 0, 1, 0]
    assert frame.conversion_rate.iloc[0] == pytest.approx(0.5)
    assert frame.conversion_rate.iloc[3] == pytest.approx(2 / 3)
    assert pd.isna(frame.conversion_rate.iloc[4])
    assert list(frame.share[:4]) == [0.4, 0.2, 0.2, 0.2]


def test_paths_before_collapse_merges_repeats() -> None:
    journeys, touches = tables(SPECS)
    frame = paths_before(journeys, touches, kind="closed_won", collapse=True)
    assert list(frame.path) == ["a > b", UNATTRIBUTED, "c", OTHER_PATHS]
    assert list(frame.converters) == [3, 1, 1, 0]
    assert list(frame.converting_journeys) == [3, 1, 2, 0]
    assert list(frame.non_converting_journeys) == [2, 0, 1, 0]


def test_paths_before_other_row_sums_rest() -> None:
    journeys, touches = tables(SPECS)
    frame = paths_before(journeys, touches, kind="closed_won", top=1)
    assert list(frame.path) == ["a > b", OTHER_PATHS]
    assert list(frame.converters) == [2, 3]
    assert list(frame.converting_journeys) == [2, 4]
    assert list(frame.non_converting_journeys) == [2, 1]
    assert frame.conversion_rate.iloc[1] == pytest.approx(4 / 5)
    assert frame.share.iloc[1] == pytest.approx(0.6)


def test_paths_before_shares_sum_exactly() -> None:
    generator = random.Random(7)
    specs: list[Spec] = []
    channels = ["a", "b", "c", "d", "e", "f", "g"]
    for number in range(97):
        path = generator.sample(channels, generator.randint(1, 3))
        specs.append((f"j{number}", f"e{number}", "closed_won", 1.0, path))
    journeys, touches = tables(specs)
    for top in (1, 3, 10, 500):
        frame = paths_before(journeys, touches, kind="closed_won", top=top)
        total = 0.0
        for share in frame.share:
            total += share
        assert total == 1.0
        assert int(frame.converters.sum()) == 97
        assert (frame.share >= 0).all()


def test_paths_before_ties_are_deterministic() -> None:
    specs: list[Spec] = [
        ("j1", "e1", "closed_won", 1.0, ["z"]),
        ("j2", "e2", "closed_won", 1.0, ["b"]),
        ("j3", "e3", "closed_won", 1.0, ["m"]),
        ("j4", "e4", "closed_won", 1.0, ["b", "a"]),
    ]
    journeys, touches = tables(specs)
    first = paths_before(journeys, touches, kind="closed_won", top=3)
    assert list(first.path) == ["b", "b > a", "m", OTHER_PATHS]
    journeys, touches = tables(list(reversed(specs)))
    second = paths_before(journeys, touches, kind="closed_won", top=3)
    assert as_records(first) == as_records(second)


def test_paths_before_without_converters_is_empty() -> None:
    journeys, touches = tables(SPECS)
    frame = paths_before(journeys, touches, kind="opportunity")
    assert frame.empty
    assert list(frame.columns) == list(COLUMNS)


def test_paths_before_rejects_top_below_one() -> None:
    journeys, touches = tables(SPECS)
    with pytest.raises(ValueError, match="top must be at least 1"):
        paths_before(journeys, touches, kind="closed_won", top=0)


def test_conversion_stays_enter_at_first_conversion() -> None:
    journeys, _ = tables(SPECS)
    stays = conversion_stays(journeys).to_pandas()
    e1 = stays[stays.entity_id == "e1"].sort_values("stage")
    assert list(e1.stage) == ["closed_won", "lead"]
    assert list(e1.entered_at) == [pd.Timestamp(at(days=1.0)), pd.Timestamp(at(days=0.5))]
    assert len(stays) == 6


def conversion_row(user: str, days: float, kind: str) -> dict[str, Any]:
    return {
        "user_id": user,
        "timestamp": at(days=days),
        "conversion": 1,
        "conversion_kind": kind,
        "value": 0,
    }


def test_reconcile_with_funnel_on_built_journeys(store: Store, tmp_path: Path) -> None:
    # u1, u2 and u3 become leads and then win. u4 stays a lead, and u5 only browses.
    rows = [
        {"user_id": "u1", "timestamp": at(days=0), "channel": "a"},
        conversion_row("u1", 1, "lead"),
        {"user_id": "u1", "timestamp": at(days=2), "channel": "b"},
        conversion_row("u1", 3, "closed_won"),
        {"user_id": "u2", "timestamp": at(days=0), "channel": "a"},
        conversion_row("u2", 1, "lead"),
        conversion_row("u2", 40, "closed_won"),
        conversion_row("u3", 1, "lead"),
        {"user_id": "u3", "timestamp": at(days=2), "channel": "c"},
        {"user_id": "u3", "timestamp": at(days=2, minutes=5), "channel": "c"},
        conversion_row("u3", 4, "closed_won"),
        {"user_id": "u4", "timestamp": at(days=0), "channel": "b"},
        conversion_row("u4", 1, "lead"),
        {"user_id": "u5", "timestamp": at(days=0), "channel": "d"},
    ]
    built = journeys_of(store, rows, tmp_path)
    for collapse in (False, True):
        paths = paths_before(
            built.journeys, built.touches, kind="closed_won", top=1, collapse=collapse
        )
        check = reconcile_with_funnel(
            paths, built.journeys, from_kind="lead", to_kind="closed_won", as_of=AS_OF
        )
        assert check.path_converters == 3
        assert check.funnel_converted == 3
        assert check.balanced


def test_reconcile_with_funnel_finds_win_without_lead() -> None:
    specs = [*SPECS, ("l2", "e2", "lead", 1.0, ["a"])]
    journeys, touches = tables(specs)
    paths = paths_before(journeys, touches, kind="closed_won")
    check = reconcile_with_funnel(
        paths, journeys, from_kind="lead", to_kind="closed_won", as_of=AS_OF
    )
    # e1 and e2 had a lead before winning; e3, e4 and e5 won without one.
    assert check.path_converters == 5
    assert check.funnel_converted == 2
    assert not check.balanced


@pytest.mark.spark
def test_paths_before_spark_equals_duckdb(spark: Any) -> None:
    journeys, touches = tables(SPECS)
    connection = ibis.pyspark.connect(spark)
    spark_journeys = connection.create_table("cp_journeys", journeys.to_pyarrow(), overwrite=True)
    spark_touches = connection.create_table("cp_touches", touches.to_pyarrow(), overwrite=True)
    for collapse in (False, True):
        duck = paths_before(journeys, touches, kind="closed_won", top=3, collapse=collapse)
        sparked = paths_before(
            spark_journeys, spark_touches, kind="closed_won", top=3, collapse=collapse
        )
        assert as_records(duck.fillna(-1.0)) == as_records(sparked.fillna(-1.0))
