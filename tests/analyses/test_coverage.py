"""Campaign coverage: campaigns mapped to stages by name, spend beside drop-off, flags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.analyses.coverage import (
    UNMAPPED,
    campaign_stages,
    coverage_table,
    stage_dropoff,
)
from journeymap.common.config import Config, parse_config
from journeymap.common.errors import ConfigError

STAGES = ["Awareness", "Consideration", "Decision", "Onboarding"]


def at(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC)


def spend_table(rows: list[tuple[str, str, float]]) -> ibis.Table:
    return ibis.memtable(pd.DataFrame(rows, columns=["platform", "campaign", "cost"]))


def timeline(stays: list[tuple[str, str, int]]) -> ibis.Table:
    frame = pd.DataFrame(stays, columns=["entity_id", "stage", "day"])
    frame["entered_at"] = frame.day.map(at)
    return ibis.memtable(frame.drop(columns="day"))


def test_campaign_stages_first_rule_wins() -> None:
    spend = spend_table(
        [
            ("google_ads", "gs-nonbrand-attribution", 10.0),
            ("google_ads", "gs-brand", 5.0),
            ("google_ads", "gs-brand", 2.5),
            ("linkedin", "li-Retargeting-Webinar", 4.0),
            ("meta", "spring-sale", 1.0),
        ]
    )
    rules = Config().coverage.campaign_stages
    mapped = campaign_stages(spend, rules).to_pandas().set_index("campaign")
    assert mapped.loc["gs-nonbrand-attribution", "stage"] == "Awareness"
    assert mapped.loc["gs-brand", "stage"] == "Decision"
    assert mapped.loc["gs-brand", "cost"] == 7.5
    assert mapped.loc["li-Retargeting-Webinar", "stage"] == "Consideration"
    assert mapped.loc["spring-sale", "stage"] == UNMAPPED


def test_stage_dropoff_counts_moves_forward() -> None:
    stays = timeline(
        [
            ("a", "Awareness", 1),
            ("a", "Consideration", 2),
            ("a", "Decision", 3),
            ("b", "Awareness", 1),
            ("c", "Awareness", 1),
            ("c", "Consideration", 4),
        ]
    )
    counts = stage_dropoff(stays, STAGES).to_pandas().set_index("stage")
    assert counts.loc["Awareness"].tolist()[1:] == [3, 2]
    assert counts.loc["Consideration"].tolist()[1:] == [2, 1]
    assert counts.loc["Decision"].tolist()[1:] == [1, 0]


def test_coverage_flags_high_dropoff_low_spend() -> None:
    campaigns = pd.DataFrame(
        {
            "platform": ["g", "g", "g", "l"],
            "campaign": ["aw", "co", "de", "un"],
            "stage": ["Awareness", "Consideration", "Decision", UNMAPPED],
            "cost": [60.0, 30.0, 10.0, 500.0],
        }
    )
    dropoff = pd.DataFrame(
        {
            "stage": ["Awareness", "Consideration", "Decision", "Onboarding"],
            "entered": [100, 40, 20, 4],
            "moved_on": [40, 20, 4, 0],
        }
    )
    table = coverage_table(campaigns, dropoff, STAGES).set_index("stage")
    assert table.dropoff_rate.tolist()[:3] == pytest.approx([0.6, 0.5, 0.8])
    assert pd.isna(table.loc["Onboarding", "dropoff_rate"])
    assert table.spend_share.tolist() == pytest.approx([0.6, 0.3, 0.1, 0.0])
    assert table.under_invested.tolist() == [False, False, True, False]


def test_coverage_rule_names_unknown_stage() -> None:
    with pytest.raises(ConfigError, match="did you mean 'Decision'"):
        parse_config(
            {"coverage": {"campaign_stages": [{"stage": "Decison", "campaign_matches": "x"}]}}
        )


def test_coverage_rule_rejects_bad_pattern() -> None:
    rule = {"stage": "Awareness", "campaign_matches": "("}
    with pytest.raises(ConfigError, match="invalid regular expression"):
        parse_config({"coverage": {"campaign_stages": [rule]}})


@pytest.mark.spark
def test_coverage_spark_equals_duckdb(spark: Any) -> None:
    spend = pd.DataFrame(
        [("g", "gs-nonbrand", 10.0), ("g", "gs-brand", 5.0), ("l", "spring-sale", 1.0)],
        columns=["platform", "campaign", "cost"],
    )
    stays = pd.DataFrame(
        {
            "entity_id": ["a", "a", "b", "c", "c"],
            "stage": ["Awareness", "Consideration", "Awareness", "Awareness", "Decision"],
            "entered_at": [at(1), at(2), at(1), at(1), at(3)],
        }
    )
    results = []
    for con in (ibis.duckdb.connect(), ibis.pyspark.connect(spark)):
        spend_table_on = con.create_table("coverage_spend", spend, overwrite=True)
        stays_on = con.create_table("coverage_stays", stays, overwrite=True)
        mapped = campaign_stages(spend_table_on, Config().coverage.campaign_stages)
        counts = stage_dropoff(stays_on, STAGES)
        results.append(
            (
                mapped.to_pandas().sort_values("campaign", ignore_index=True),
                counts.to_pandas().sort_values("position", ignore_index=True),
            )
        )
    for duck, sparked in zip(*results, strict=True):
        pd.testing.assert_frame_equal(duck, sparked, check_dtype=False)


def test_default_rules_follow_custom_stages() -> None:
    config = parse_config({"stages": [{"name": "Awareness"}, {"name": "Decision"}]})
    stages = {rule.stage for rule in config.coverage.campaign_stages}
    assert stages == {"Awareness", "Decision"}
