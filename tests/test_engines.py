"""The journey and rule-model pipeline gives identical credits on DuckDB and on Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from journeymap.attribution import attribute, channel_credit_table, resolve_models
from journeymap.channels.rules import ChannelClassifier
from journeymap.journeys.build import JourneyOptions, journeys_from_events, journeys_from_paths
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform

pytestmark = pytest.mark.spark

SOURCES = [
    ("google", "cpc", None, None),
    ("google", "organic", None, None),
    (None, None, "gclid", "google_ads"),
    (None, None, "li_fat_id", "linkedin_ads"),
    (None, None, "fbclid", "meta"),
    ("newsletter", "email", None, None),
    ("linkedin", "paid_social", None, None),
    ("(direct)", "(none)", None, None),
    ("partner.example", "referral", None, None),
]
KINDS = ["lead", "opportunity", "closed_won"]


def synthetic_events(seed: int = 11, people: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Touches with UTM fields and click ids, conversions of three kinds, some at equal times."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01T00:00:00Z")
    touches: list[dict[str, Any]] = []
    conversions: list[dict[str, Any]] = []
    seq = 0
    for person in range(people):
        account = f"acct{person % 17}"
        for _ in range(int(rng.integers(0, 9))):
            seq += 1
            source, medium, click, platform = SOURCES[int(rng.integers(0, len(SOURCES)))]
            # Whole hours, so that equal timestamps occur and seq must break the ties.
            moment = start + pd.Timedelta(hours=int(rng.integers(0, 24 * 150)))
            touches.append(
                {
                    "touchpoint_id": f"t{seq}",
                    "seq": seq,
                    "person_id": f"p{person}",
                    "account_id": account,
                    "occurred_at": moment,
                    "source": source,
                    "medium": medium,
                    "campaign": f"camp{int(rng.integers(0, 4))}",
                    "click_id": click,
                    "click_platform": platform,
                }
            )
        for _ in range(int(rng.integers(0, 3))):
            seq += 1
            conversions.append(
                {
                    "conversion_id": f"c{seq}",
                    "seq": seq,
                    "person_id": f"p{person}",
                    "account_id": account,
                    "occurred_at": start + pd.Timedelta(hours=int(rng.integers(0, 24 * 150))),
                    "kind": KINDS[int(rng.integers(0, 3))],
                    "value": float(rng.integers(0, 5000)),
                }
            )
    return pd.DataFrame(touches), pd.DataFrame(conversions)


def paths_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path_id": [1, 2, 3, 4],
            "path": ["a > b > a", "b", "c > c > a", ""],
            "separator": ">",
            "conversions": [3.0, 1.0, 0.0, 2.0],
            "value": [30.5, 10.0, 0.0, 7.25],
            "nulls": [1.0, 4.0, 2.0, 0.0],
            "import_id": "paths-x",
        }
    )


def event_tables(con: Any) -> tuple[ibis.Table, ibis.Table]:
    """Create the synthetic touchpoints and conversions on ``con`` and return both tables."""
    touches, conversions = synthetic_events()
    touch_table = con.create_table(
        "touchpoints",
        conform(touches, RAW_TABLES["touchpoints"], table_name="touchpoints"),
        overwrite=True,
    )
    conversion_table = con.create_table(
        "conversions",
        conform(conversions, RAW_TABLES["conversions"], table_name="conversions"),
        overwrite=True,
    )
    return touch_table, conversion_table


def credits_on(con: Any, options: JourneyOptions) -> pd.DataFrame:
    touch_table, conversion_table = event_tables(con)
    path_table = con.create_table(
        "path_aggregates",
        conform(paths_frame(), RAW_TABLES["path_aggregates"], table_name="path_aggregates"),
        overwrite=True,
    )
    models = resolve_models(["all"])
    frames = []
    events = journeys_from_events(touch_table, conversion_table, ChannelClassifier(), options)
    frames.append(attribute(events, models).to_pandas())
    paths = journeys_from_paths(path_table, options)
    frames.append(attribute(paths, [m for m in models if not m.needs_timestamps]).to_pandas())
    credits = pd.concat(frames, ignore_index=True)
    keys = ["model", "journey_id", "position", "touchpoint_id"]
    return credits.sort_values(keys, na_position="first").reset_index(drop=True)


@pytest.mark.parametrize(
    "options",
    [
        JourneyOptions(),
        JourneyOptions(lookback_days=30, transform="frequency", last_n=3, entity="account"),
    ],
    ids=["defaults", "frequency-last3-account-30d"],
)
def test_spark_credits_equal_duckdb(spark: Any, tmp_path: Path, options: JourneyOptions) -> None:
    duck = credits_on(ibis.duckdb.connect(), options)
    sparked = credits_on(ibis.pyspark.connect(spark), options)
    assert len(duck) > 100
    assert list(duck.columns) == list(sparked.columns)
    for column in [
        "model",
        "journey_id",
        "conversion_id",
        "kind",
        "touchpoint_id",
        "position",
        "channel",
        "source_medium",
        "campaign",
        "ad_id",
    ]:
        assert duck[column].astype(str).tolist() == sparked[column].astype(str).tolist(), column
    np.testing.assert_allclose(
        duck.credit.to_numpy(), sparked.credit.to_numpy(), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        duck.value_credit.to_numpy(), sparked.value_credit.to_numpy(), rtol=1e-12, atol=1e-9
    )


def channel_table_on(con: Any) -> pd.DataFrame:
    touch_table, conversion_table = event_tables(con)
    events = journeys_from_events(
        touch_table, conversion_table, ChannelClassifier(), JourneyOptions()
    )
    return channel_credit_table(events, resolve_models(["all"]))


def test_spark_channel_credit_table_equals_duckdb(spark: Any) -> None:
    duck = channel_table_on(ibis.duckdb.connect())
    sparked = channel_table_on(ibis.pyspark.connect(spark))
    assert len(duck) > 20
    assert duck.model.tolist() == sparked.model.tolist()
    assert duck.channel.tolist() == sparked.channel.tolist()
    np.testing.assert_allclose(duck.conversions, sparked.conversions, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(duck.value, sparked.value, rtol=1e-12, atol=1e-9)
