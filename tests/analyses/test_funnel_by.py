"""Stage funnel split by a column of the stays, on DuckDB and Spark."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.analyses.funnel import stage_funnel

AS_OF = datetime(2024, 6, 15, tzinfo=UTC)
STAGES = ["MQL", "Won"]


def stays_frame(rows: list[tuple[str, str, str, str | None, str | None]]) -> pd.DataFrame:
    columns = ["deal_id", "stage", "entered_at", "exited_at", "channel"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["entered_at"] = pd.to_datetime(frame["entered_at"], utc=True)
    frame["exited_at"] = pd.to_datetime(frame["exited_at"], utc=True)
    return frame


# March: two Email leads (one won) and one Social lead (won the same day). April: one Email
# lead that never wins, and one lead without a channel that wins in May.
STAYS = stays_frame(
    [
        ("e1", "MQL", "2024-03-02", "2024-04-10", "Email"),
        ("e1", "Won", "2024-04-10", None, "Email"),
        ("e2", "MQL", "2024-03-15", None, "Email"),
        ("s1", "MQL", "2024-03-20", "2024-03-20", "Social"),
        ("s1", "Won", "2024-03-20", None, "Social"),
        ("e3", "MQL", "2024-04-01", None, "Email"),
        ("n1", "MQL", "2024-04-05", "2024-05-01", None),
        ("n1", "Won", "2024-05-01", None, None),
    ]
)


def funnel_rows(result: pd.DataFrame) -> list[tuple[str, str | None, int, int, float]]:
    cohorts = pd.to_datetime(result["cohort"]).dt.strftime("%Y-%m")
    channels = result["channel"].astype("object").where(result["channel"].notna(), None)
    return list(
        zip(
            cohorts,
            channels,
            result["entered"].astype(int),
            result["converted"].astype(int),
            result["rate"],
            strict=True,
        )
    )


def test_stage_funnel_by_channel_rows() -> None:
    result = stage_funnel(ibis.memtable(STAYS), STAGES, as_of=AS_OF, by="channel").to_pandas()

    assert list(result.columns) == [
        "cohort",
        "channel",
        "from_stage",
        "to_stage",
        "entered",
        "converted",
        "rate",
        "open",
    ]
    assert funnel_rows(result) == [
        ("2024-03", "Email", 2, 1, 0.5),
        ("2024-03", "Social", 1, 1, 1.0),
        ("2024-04", None, 1, 1, 1.0),
        ("2024-04", "Email", 1, 0, 0.0),
    ]
    assert result["open"].tolist() == [1, 0, 0, 1]


def test_stage_funnel_by_sums_to_total() -> None:
    stays = ibis.memtable(STAYS)

    split = stage_funnel(stays, STAGES, as_of=AS_OF, by="channel").to_pandas()
    total = stage_funnel(stays, STAGES, as_of=AS_OF).to_pandas()

    summed = split.groupby("cohort")[["entered", "converted", "open"]].sum().reset_index()
    assert summed["entered"].tolist() == total["entered"].tolist() == [3, 2]
    assert summed["converted"].tolist() == total["converted"].tolist() == [2, 1]
    assert summed["open"].tolist() == total["open"].tolist()
    assert "channel" not in total.columns


def test_stage_funnel_by_mixed_values_count_once() -> None:
    stays = stays_frame(
        [
            ("d1", "MQL", "2024-03-02", None, "Social"),
            ("d1", "MQL", "2024-03-09", None, "Email"),
            ("d1", "Won", "2024-03-20", None, "Social"),
        ]
    )

    result = stage_funnel(ibis.memtable(stays), STAGES, as_of=AS_OF, by="channel").to_pandas()

    # The smallest value of the entity's MQL stays is used.
    assert funnel_rows(result) == [("2024-03", "Email", 1, 1, 1.0)]


def test_stage_funnel_by_rejects_bad_column() -> None:
    stays = ibis.memtable(STAYS.rename(columns={"channel": "rate"}))

    with pytest.raises(ValueError, match="no column 'channel'"):
        stage_funnel(stays, STAGES, by="channel")
    with pytest.raises(ValueError, match="name of an output column"):
        stage_funnel(stays, STAGES, by="rate")


@pytest.mark.spark
def test_stage_funnel_by_same_on_spark(spark: Any) -> None:
    results = []
    for con in (ibis.duckdb.connect(), ibis.pyspark.connect(spark)):
        stays = con.create_table("funnel_by_stays", STAYS, overwrite=True)
        result = stage_funnel(stays, STAGES, window_days=30, as_of=AS_OF, by="channel")
        results.append(
            result.to_pandas().assign(cohort=lambda frame: pd.to_datetime(frame["cohort"]))
        )

    duck, sparked = results
    assert duck["channel"].isna().sum() == 1
    pd.testing.assert_frame_equal(duck, sparked, check_dtype=False)
