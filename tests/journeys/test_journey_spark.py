"""Stage exits, lifecycle stages, stage blind spots, buying committees and first touches give
the same rows on Spark as on DuckDB."""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from journeymap.analyses.icp import with_buying_committee
from journeymap.analyses.stage_gaps import untouched_entries
from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import parse_config
from journeymap.journeys.first_touch import first_touch_channels
from journeymap.journeys.stages import stage_timeline
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform

T0 = pd.Timestamp("2024-03-01T00:00:00Z")
STAGES = parse_config(
    {
        "stages": [
            {"name": "Awareness", "enter_when": [{"touch": True}]},
            {
                "name": "Consideration",
                "enter_when": [
                    {"conversion": "lead"},
                    {"lifecycle_stage": "marketingqualifiedlead"},
                ],
                "exit_when": [{"conversion": "disqualified"}],
            },
            {
                "name": "Decision",
                "enter_when": [{"conversion": "opportunity"}],
                "exit_when": [{"conversion": "disqualified"}, {"conversion": "lost"}],
            },
            {"name": "Onboarding", "enter_when": [{"lifecycle_stage": "customer"}]},
        ]
    }
).stages


def inputs() -> dict[str, pd.DataFrame]:
    """Return random touches, conversions, lifecycle entries, people and accounts."""
    rng = np.random.default_rng(11)
    people = [f"p{number}" for number in range(30)]
    account = {person: f"a{int(person[1:]) % 7}" for person in people}
    touches, conversions, lifecycle = [], [], []
    for seq, person in enumerate(rng.choice(people, 120)):
        touches.append(
            {
                "touchpoint_id": f"t{seq}",
                "seq": seq,
                "person_id": person,
                "account_id": account[person],
                "occurred_at": T0 + pd.Timedelta(hours=int(rng.integers(0, 2400))),
                "source": str(rng.choice(["google", "linkedin", "(direct)"])),
                "medium": str(rng.choice(["cpc", "organic", "(none)"])),
            }
        )
    kinds = ["lead", "opportunity", "disqualified", "lost"]
    for seq, person in enumerate(rng.choice(people, 60), start=1000):
        conversions.append(
            {
                "conversion_id": f"c{seq}",
                "seq": seq,
                "person_id": person,
                "account_id": account[person],
                "occurred_at": T0 + pd.Timedelta(hours=int(rng.integers(0, 2400))),
                "kind": str(rng.choice(kinds)),
            }
        )
    for person in rng.choice(people, 20):
        lifecycle.append(
            {
                "person_id": person,
                "account_id": account[person],
                "stage": str(rng.choice(["marketingqualifiedlead", "customer"])),
                "entered_at": T0 + pd.Timedelta(hours=int(rng.integers(0, 2400))),
            }
        )
    titles = ["VP Sales", "Analyst", None, "Head of Growth"]
    people_rows = [
        {"person_id": person, "account_id": account[person], "title": titles[index % 4]}
        for index, person in enumerate(people)
    ]
    return {
        "touchpoints": pd.DataFrame(touches),
        "conversions": pd.DataFrame(conversions),
        "lifecycle_stages": pd.DataFrame(lifecycle),
        "people": pd.DataFrame(people_rows),
        "accounts": pd.DataFrame({"account_id": [f"a{number}" for number in range(9)]}),
    }


def results(con: Any) -> dict[str, pd.DataFrame]:
    tables = {
        name: con.create_table(
            f"parity_{name}", conform(frame, RAW_TABLES[name], table_name=name), overwrite=True
        )
        for name, frame in inputs().items()
    }
    timeline = stage_timeline(tables, STAGES, entity_kind="person")
    touches = (
        ChannelClassifier()
        .classify(tables["touchpoints"])
        .select(entity_id="person_id", occurred_at="occurred_at", channel="channel")
    )
    found = {
        "timeline": timeline.to_pandas(),
        "untouched": untouched_entries(timeline, touches, lookback_days=30).to_pandas(),
        "committee": with_buying_committee(tables["accounts"], tables["people"]).to_pandas(),
        "first": first_touch_channels(
            tables["touchpoints"], ChannelClassifier(), "account"
        ).to_pandas(),
    }
    return {
        name: frame.sort_values(list(frame.columns)).reset_index(drop=True)
        for name, frame in found.items()
    }


@pytest.mark.spark
def test_journey_functions_spark_equals_duckdb(spark: Any) -> None:
    duck = results(ibis.duckdb.connect())
    sparked = results(ibis.pyspark.connect(spark))

    assert duck["timeline"].exit_reason.notna().any()
    assert (duck["timeline"].reason == "lifecycle_stage customer").any()
    for name, frame in duck.items():
        other = sparked[name]
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                other[column] = pd.to_datetime(other[column], utc=True)
        assert plain(frame) == plain(other), name


def plain(frame: pd.DataFrame) -> list[list[Any]]:
    """Return the rows as lists, with every missing value as None."""
    return [
        [None if value is None or value is pd.NaT or pd.isna(value) else value for value in row]
        for row in frame.astype(object).itertuples(index=False)
    ]
