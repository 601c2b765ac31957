"""The journey reports give the same results on DuckDB and on Spark local mode.

A small demo world (deals with stage history, churned accounts, contacts, ad spend) plus a
few self-reported answers is imported into a DuckDB store, which builds journeys and credits.
Its tables are copied into a Spark store, and each test runs one report on both stores. The
reports whose building blocks other modules already compare on both engines (the stage
timeline, funnels, drop-off counts, time in stage, converting paths, the ICP's segment
tables, coverage) are left to those tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap import api
from journeymap.analyses.paths import channel_roles, top_paths
from journeymap.analyses.recommend import recommendations
from journeymap.common.config import parse_config
from journeymap.demo.crm import write_crm
from journeymap.demo.world import generate_world, write_world
from journeymap.report.map import journey_map
from journeymap.store.store import Store

pytestmark = pytest.mark.spark

DATABASE = "journeymap_report_parity"
"""Spark database that contains the copied tables, so that no other test's tables are touched."""

AS_OF = datetime(2026, 9, 1, tzinfo=UTC)
"""A snapshot inside the demo world's window (2026-01-05 to 2026-10-01)."""

CONFIG = parse_config(
    {
        "attribution": {"models": ["markov", "last_touch"]},
        # Low thresholds, so that every rule finds something whose evidence is compared.
        "recommendations": {
            "min_entities": 3,
            "min_credit": 1,
            "credit_ratio": 1.1,
            "stall_days_ratio": 1.1,
            "stall_rate_gap": 0.01,
            "hidden_value_share": 0.01,
            "min_clicked_conversions": 3,
            "min_clicked_share": 0.05,
            "period_drop": 0.01,
            "period_excess": 0.0,
            "period_alpha": 1.0,
            "min_period_entrants": 2,
        },
    },
    source="test",
)

SELF_REPORTED = [
    ("P0000003", "2026-03-02", "Google"),
    ("P0000010", "2026-03-09", "LinkedIn ad"),
    ("P0000020", "2026-04-01", "a colleague"),
    ("P0000031", "2026-04-20", "podcast"),
    ("P0000047", "2026-05-05", "Facebook"),
    ("P0000052", "2026-05-06", "Google"),
]
"""Answers to "how did you hear about us", which the blind spots compare with the tracked
first touches."""


def demo_store(folder: Path) -> Store:
    """Return an in-memory DuckDB store with a 1,000-person demo world, its journeys and credits."""
    world = generate_world(1000, seed=5)
    files = write_world(world, folder)
    assert world.crm is not None
    crm_files = write_crm(world.crm, folder)
    answers = folder / "answers.csv"
    pd.DataFrame(SELF_REPORTED, columns=["contact_id", "submitted_at", "how did you hear"]).to_csv(
        answers, index=False
    )

    store = Store.open()
    api.import_file(store, files["touchpoints"], input_format="touchpoints", config=CONFIG)
    api.import_file(store, files["ad_spend"], input_format="spend", config=CONFIG)
    api.import_file(store, files["contacts"], input_format="contacts", config=CONFIG)
    api.import_file(
        store,
        crm_files["deals"],
        input_format="deals",
        config=CONFIG,
        accounts_file=files["accounts"],
    )
    api.import_file(store, crm_files["expansions"], input_format="touchpoints", config=CONFIG)
    api.import_file(
        store, answers, input_format="offline", config=CONFIG, touch_type="self_reported"
    )
    journeys = api.build(store, CONFIG)
    api.attribute(store, journeys, config=CONFIG)
    return store


def copy_to_spark(store: Store, spark: Any) -> None:
    """Copy every non-empty table of ``store`` into Spark's current database.

    Spark reads the Arrow tables itself, because ibis 12.0's ``create_table`` turns an int64
    Arrow column with nulls into all nulls on Spark. The empty tables are left to
    :meth:`Store.from_backend`, which creates them with the store's schema.
    """
    for name in store.con.list_tables():
        if name.startswith("ibis_"):
            continue
        data = store.table(name).to_pyarrow()
        if data.num_rows > 0:
            spark.createDataFrame(data).write.saveAsTable(name)


@pytest.fixture(scope="module")
def stores(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """Yield the DuckDB store and its copy on Spark, each with the person stage timeline."""
    duck = demo_store(tmp_path_factory.mktemp("parity-world"))
    previous = spark.catalog.currentDatabase()
    spark.sql(f"CREATE DATABASE {DATABASE}")
    spark.catalog.setCurrentDatabase(DATABASE)
    try:
        copy_to_spark(duck, spark)
        sparked = Store.from_backend(ibis.pyspark.connect(spark))
        for store in (duck, sparked):
            api.stages(store, CONFIG, entity_kind="person", as_of=AS_OF)
        yield duck, sparked
    finally:
        spark.catalog.setCurrentDatabase(previous)
        spark.sql(f"DROP DATABASE {DATABASE} CASCADE")
        duck.close()


def utc_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with a fresh index and timestamps in UTC: Spark returns them naive."""
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def assert_same_frame(duck: pd.DataFrame, sparked: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        utc_frame(duck), utc_frame(sparked), check_dtype=False, rtol=1e-9, atol=1e-9
    )


def rounded(value: Any) -> Any:
    """Return ``value`` with every float rounded to 9 significant digits, recursively."""
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return round(value, 8 - math.floor(math.log10(abs(value))))
    return value


# Stages ---------------------------------------------------------------------------------------


def test_stage_summary_same_on_spark(stores: tuple[Store, Store]) -> None:
    duck, sparked = (
        api.stages(store, CONFIG, entity_kind="person", as_of=AS_OF)[0] for store in stores
    )

    assert duck["entered"].sum() > 0
    assert_same_frame(duck, sparked)


def test_stored_timeline_same_on_spark(stores: tuple[Store, Store]) -> None:
    keys = ["entity_id", "entered_at", "stage"]
    duck, sparked = (
        store.table("stage_timeline").to_pandas().sort_values(keys) for store in stores
    )

    assert duck["exited_at"].notna().any()
    assert_same_frame(duck, sparked)


# Drop-off and velocity ------------------------------------------------------------------------


def test_dropoff_ranking_same_on_spark(stores: tuple[Store, Store]) -> None:
    stages = ["Demo Scheduled", "Proposal Sent", "Closed Won"]
    duck, sparked = (api.dropoff(store, stages, by="industry", as_of=AS_OF) for store in stores)

    assert duck["lost"].sum() > 0
    assert duck["deal_value"].iloc[0] > 1
    assert_same_frame(duck, sparked)


@pytest.mark.parametrize(
    "options",
    [
        {"between": ("Appointment Scheduled", "Closed Won"), "by": "industry"},
        {"by": "cohort", "period": "month"},
        {"stalled": True},
        {"stalled": True, "threshold_days": 3.0},
    ],
    ids=["between-by-industry", "by-cohort", "stalled-p75", "stalled-threshold"],
)
def test_velocity_same_on_spark(stores: tuple[Store, Store], options: dict[str, Any]) -> None:
    duck, sparked = (api.velocity(store, **options) for store in stores)

    assert len(duck) > 0
    assert_same_frame(duck, sparked)


# Paths ----------------------------------------------------------------------------------------


def test_top_paths_and_channel_roles_same_on_spark(stores: tuple[Store, Store]) -> None:
    results = []
    for store in stores:
        journeys, touches = store.table("journeys"), store.table("journey_touches")
        results.append(
            (
                top_paths(journeys, touches, limit=8, kind="closed_won").to_pandas(),
                channel_roles(journeys, touches, kind="closed_won").to_pandas(),
            )
        )
    (duck_paths, duck_roles), (spark_paths, spark_roles) = results

    assert len(duck_paths) == 8
    assert len(duck_roles) > 3
    assert_same_frame(duck_paths, spark_paths)
    assert_same_frame(duck_roles, spark_roles)


# Blind spots ----------------------------------------------------------------------------------


def test_blind_spots_same_on_spark(stores: tuple[Store, Store]) -> None:
    duck, sparked = (api.blind_spots(store, CONFIG) for store in stores)

    assert duck.click_ids["unmatched"].sum() > 0
    assert len(duck.agreement) > 0
    assert duck.stage_entries["untouched"].sum() > 0
    assert (duck.expected["status"] == "measured").any()
    for part in ("by_kind", "click_ids", "agreement", "undercount", "stage_entries", "expected"):
        assert_same_frame(getattr(duck, part), getattr(sparked, part))
    assert duck.notes == sparked.notes


# ICP ------------------------------------------------------------------------------------------


def test_icp_ranking_same_on_spark(stores: tuple[Store, Store]) -> None:
    dimensions = ("industry", "size_band", "region", "committee_size", "committee_roles")
    (duck, duck_note), (sparked, spark_note) = (
        api.icp(store, dimensions=dimensions, min_closed=5, min_customers=5, as_of=AS_OF)
        for store in stores
    )

    assert duck["churned"].sum() > 0
    assert duck["p_value"].notna().sum() > 10
    assert duck["retention_p_value"].notna().sum() > 10
    assert duck_note == spark_note
    assert_same_frame(duck, sparked)


# Recommendations and the journey map ----------------------------------------------------------


@pytest.mark.slow
def test_recommendations_same_on_spark(stores: tuple[Store, Store]) -> None:
    duck, sparked = (recommendations(store, CONFIG).to_dict() for store in stores)

    rules = {item["rule"] for item in duck["recommendations"]}
    assert rules == {
        "uncovered_stage",
        "undervalued_channel",
        "segment_stall",
        "tracking_gap",
        "unsynced_conversions",
        "period_drop",
    }
    assert rounded(duck) == rounded(sparked)


@pytest.mark.slow
def test_journey_map_same_on_spark(stores: tuple[Store, Store]) -> None:
    duck, sparked = (journey_map(store, CONFIG).to_dict() for store in stores)
    for data in (duck, sparked):
        data.pop("generated_at")

    assert any(stage["figures"]["entered"] for stage in duck["stages"])
    assert rounded(duck) == rounded(sparked)
