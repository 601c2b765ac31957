"""Funnels: ordered event funnels and stage conversion by entry cohort, on DuckDB and Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.analyses.funnel import ordered_funnel, stage_funnel
from journeymap.sources.deals import import_deals
from journeymap.store.store import Store

PIPELINE = Path("crm-sales-opportunities/sales_pipeline.csv")
ONBOARDING = ["finish_onboarding", "pageview", "pageview"]


def events_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Return events (person, event, time on 2024-05-01) with seq in row order from 1."""
    frame = pd.DataFrame(rows, columns=["person_id", "event", "timestamp"])
    frame["timestamp"] = pd.to_datetime("2024-05-01 " + frame["timestamp"], utc=True)
    frame["seq"] = range(1, len(frame) + 1)
    return frame


def stays_frame(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["entity_id", "stage", "entered_at", "exited_at"])
    frame["entered_at"] = pd.to_datetime(frame["entered_at"], utc=True)
    frame["exited_at"] = pd.to_datetime(frame["exited_at"], utc=True)
    return frame


def step_counts(frame: pd.DataFrame, steps: list[str], **options: Any) -> list[int]:
    result = ordered_funnel(ibis.memtable(frame), steps, **options).to_pandas()
    return [int(count) for count in result["entities"]]


ONBOARDING_EVENTS = events_frame(
    [
        ("u1", "finish_onboarding", "13:01"),
        ("u1", "pageview", "13:10"),
        ("u1", "pageview", "13:10"),
        ("u1", "pageview", "13:11"),
        ("u2", "finish_onboarding", "13:01"),
        ("u2", "pageview", "13:10"),
    ]
)

# Consideration entrants of March (c1 reaches Decision in May, c2 never) and of April (c3).
CONSIDERATION_STAYS = stays_frame(
    [
        ("c1", "Consideration", "2024-03-05", "2024-05-10"),
        ("c1", "Decision", "2024-05-10", None),
        ("c2", "Consideration", "2024-03-20", None),
        ("c3", "Consideration", "2024-04-02", "2024-04-03"),
        ("c3", "Decision", "2024-04-03", None),
    ]
)
CONSIDERATION = ["Consideration", "Decision"]


def march_row(result: pd.DataFrame) -> pd.Series:
    rows = result[pd.to_datetime(result["cohort"]) == pd.Timestamp("2024-03-01")]
    assert len(rows) == 1
    return rows.iloc[0]


# Ordered event funnel --------------------------------------------------------------------------


def test_ordered_funnel_onboarding_example() -> None:
    result = ordered_funnel(ibis.memtable(ONBOARDING_EVENTS), ONBOARDING).to_pandas()

    assert result["step"].tolist() == [1, 2, 3]
    assert result["name"].tolist() == ONBOARDING
    assert result["entities"].tolist() == [2, 2, 1]
    assert result["rate_from_previous"].tolist() == [1.0, 1.0, 0.5]
    assert result["rate_from_first"].tolist() == [1.0, 1.0, 0.5]


def test_ordered_funnel_repeated_step() -> None:
    frame = events_frame([("u1", "pageview", "13:00"), ("u2", "pageview", "13:00")])
    frame = pd.concat([frame, events_frame([("u2", "pageview", "13:05")])], ignore_index=True)
    frame["seq"] = range(1, len(frame) + 1)

    assert step_counts(frame, ["pageview", "pageview"]) == [2, 1]


def test_ordered_funnel_events_before_start() -> None:
    frame = events_frame(
        [
            ("u1", "pageview", "13:00"),
            ("u1", "pageview", "13:01"),
            ("u1", "finish_onboarding", "13:02"),
            ("u1", "pageview", "13:03"),
        ]
    )

    assert step_counts(frame, ONBOARDING) == [1, 1, 0]


def test_ordered_funnel_orders_ties_by_seq() -> None:
    # Both events share a timestamp, and the signup arrived second, so it comes after the view.
    frame = events_frame([("u1", "pageview", "13:00"), ("u1", "signup", "13:00")])

    assert step_counts(frame, ["signup", "pageview"]) == [1, 0]
    assert step_counts(frame, ["pageview", "signup"]) == [1, 1]


def test_ordered_funnel_within_limit() -> None:
    frame = events_frame(
        [
            ("u1", "finish_onboarding", "13:00"),
            ("u1", "finish_onboarding", "14:00"),
            ("u1", "pageview", "14:20"),
            ("u2", "finish_onboarding", "13:00"),
            ("u2", "pageview", "13:30"),
        ]
    )
    steps = ["finish_onboarding", "pageview"]

    # u1's later start reaches the pageview in 20 minutes. u2's pageview is 30 minutes after.
    assert step_counts(frame, steps, within=timedelta(minutes=30)) == [2, 2]
    assert step_counts(frame, steps, within=timedelta(minutes=20)) == [2, 1]
    assert step_counts(frame, steps, within=timedelta(minutes=10)) == [2, 0]
    assert step_counts(frame, steps) == [2, 2]


def test_ordered_funnel_zero_entities_rates() -> None:
    result = ordered_funnel(ibis.memtable(ONBOARDING_EVENTS), ["signup", "pageview"]).to_pandas()

    assert result["entities"].tolist() == [0, 0]
    assert result["rate_from_first"].isna().all()
    assert result["rate_from_previous"].isna().all()


def test_ordered_funnel_is_deterministic() -> None:
    shuffled = ONBOARDING_EVENTS.sample(frac=1, random_state=7).reset_index(drop=True)
    runs = [
        ordered_funnel(ibis.memtable(frame), ONBOARDING).to_pandas()
        for frame in (ONBOARDING_EVENTS, shuffled, ONBOARDING_EVENTS)
    ]

    for run in runs[1:]:
        pd.testing.assert_frame_equal(run, runs[0])


def test_ordered_funnel_rejects_bad_arguments() -> None:
    events = ibis.memtable(ONBOARDING_EVENTS)

    with pytest.raises(ValueError, match="steps is empty"):
        ordered_funnel(events, [])
    with pytest.raises(ValueError, match="within"):
        ordered_funnel(events, ONBOARDING, within=timedelta(minutes=-1))


# Stage funnel by entry cohort ----------------------------------------------------------------


def test_stage_funnel_late_conversion_counts() -> None:
    result = stage_funnel(
        ibis.memtable(CONSIDERATION_STAYS), CONSIDERATION, as_of=datetime(2024, 6, 15, tzinfo=UTC)
    ).to_pandas()
    march = march_row(result)

    assert march["from_stage"] == "Consideration"
    assert march["to_stage"] == "Decision"
    assert march["entered"] == 2
    assert march["converted"] == 1
    assert march["rate"] == 0.5
    assert march["open"] == 1


def test_stage_funnel_open_at_month_end() -> None:
    result = stage_funnel(
        ibis.memtable(CONSIDERATION_STAYS),
        CONSIDERATION,
        window_days=90,
        as_of=datetime(2024, 3, 31, 23, tzinfo=UTC),
    ).to_pandas()
    march = march_row(result)

    assert len(result) == 1
    assert march["entered"] == 2
    assert march["converted"] == 0
    assert march["open"] == 2


def test_stage_funnel_window_elapsed_shows_no_open() -> None:
    stays = ibis.memtable(CONSIDERATION_STAYS)

    # March's window ends 90 days after April 1, on June 30.
    before = stage_funnel(stays, CONSIDERATION, window_days=90, as_of=datetime(2024, 6, 29))
    after = stage_funnel(stays, CONSIDERATION, window_days=90, as_of=datetime(2024, 6, 30))

    assert march_row(before.to_pandas())["open"] == 1
    assert march_row(after.to_pandas())["open"] == 0
    assert march_row(after.to_pandas())["converted"] == 1


def test_stage_funnel_window_excludes_slow() -> None:
    result = stage_funnel(
        ibis.memtable(CONSIDERATION_STAYS),
        CONSIDERATION,
        window_days=30,
        as_of=datetime(2024, 7, 1),
    ).to_pandas()
    march = march_row(result)

    # c1 took 66 days to reach Decision, more than the 30-day window.
    assert march["converted"] == 0
    assert march["open"] == 0


def test_stage_funnel_quarter_and_week_cohorts() -> None:
    stays = ibis.memtable(CONSIDERATION_STAYS)
    as_of = datetime(2024, 6, 15)

    quarters = stage_funnel(stays, CONSIDERATION, period="quarter", as_of=as_of).to_pandas()
    weeks = stage_funnel(stays, CONSIDERATION, period="week", as_of=as_of).to_pandas()

    assert pd.to_datetime(quarters["cohort"]).dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-04-01",
    ]
    assert quarters["entered"].tolist() == [2, 1]
    assert pd.to_datetime(weeks["cohort"]).dt.strftime("%Y-%m-%d").tolist() == [
        "2024-03-04",
        "2024-03-18",
        "2024-04-01",
    ]


def test_stage_funnel_needs_entry_first() -> None:
    stays = stays_frame(
        [
            ("d1", "Decision", "2024-03-01", "2024-03-02"),
            ("d1", "Consideration", "2024-03-02", None),
        ]
    )
    result = stage_funnel(ibis.memtable(stays), CONSIDERATION, as_of=datetime(2024, 6, 1))

    assert result.to_pandas()["converted"].tolist() == [0]


def test_stage_funnel_rejects_bad_arguments() -> None:
    stays = ibis.memtable(CONSIDERATION_STAYS)

    with pytest.raises(ValueError, match="at least two stages"):
        stage_funnel(stays, ["Consideration"])
    with pytest.raises(ValueError, match="period"):
        stage_funnel(stays, CONSIDERATION, period="year")
    with pytest.raises(ValueError, match="window_days"):
        stage_funnel(stays, CONSIDERATION, window_days=-1)


def test_stage_funnel_sales_pipeline_matches_pandas(store: Store, shared_data: Path) -> None:
    import_deals(store, shared_data / PIPELINE)
    result = stage_funnel(
        store.table("deal_stages"), ["Engaging", "Won"], as_of=datetime(2030, 1, 1)
    ).to_pandas()

    pipeline = pd.read_csv(shared_data / PIPELINE)
    engaged = pipeline[pipeline["engage_date"].notna()]
    month = pd.to_datetime(engaged["engage_date"]).dt.strftime("%Y-%m-01")
    expected = (
        engaged.assign(cohort=month, won=engaged["deal_stage"] == "Won")
        .groupby("cohort")
        .agg(entered=("won", "size"), converted=("won", "sum"))
        .reset_index()
    )
    expected["rate"] = expected["converted"] / expected["entered"]
    actual = result.assign(cohort=pd.to_datetime(result["cohort"]).dt.strftime("%Y-%m-%d"))

    assert len(actual) == len(expected)
    assert actual["entered"].sum() == len(engaged)
    assert actual["cohort"].tolist() == expected["cohort"].tolist()
    assert actual["entered"].tolist() == expected["entered"].tolist()
    assert actual["converted"].tolist() == expected["converted"].tolist()
    assert actual["rate"].tolist() == expected["rate"].tolist()


# Spark parity ---------------------------------------------------------------------------------


@pytest.mark.spark
def test_funnels_same_on_spark(spark: Any) -> None:
    duck = ibis.duckdb.connect()
    sparked = ibis.pyspark.connect(spark)

    results = {}
    for name, con in (("duckdb", duck), ("spark", sparked)):
        events = con.create_table("funnel_events", ONBOARDING_EVENTS, overwrite=True)
        stays = con.create_table("funnel_stays", CONSIDERATION_STAYS, overwrite=True)
        results[name] = (
            ordered_funnel(events, ONBOARDING).to_pandas(),
            ordered_funnel(events, ONBOARDING, within=timedelta(minutes=9)).to_pandas(),
            stage_funnel(stays, CONSIDERATION, window_days=90, as_of=datetime(2024, 6, 29))
            .to_pandas()
            .assign(cohort=lambda frame: pd.to_datetime(frame["cohort"])),
        )

    assert results["duckdb"][0]["entities"].tolist() == [2, 2, 1]
    assert results["duckdb"][2]["open"].tolist() == [1, 0]
    for duck_frame, spark_frame in zip(results["duckdb"], results["spark"], strict=True):
        pd.testing.assert_frame_equal(duck_frame, spark_frame, check_dtype=False)
