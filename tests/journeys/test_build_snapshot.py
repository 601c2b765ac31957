"""Journey tables of a generated world, compared with a stored snapshot, row for row.

The snapshot files in ``snapshots/`` were written by the window-per-step journey build
that the single-sort build replaced, so that the two give identical tables. The world has
the cases the rules care about. Equal timestamps occur, so ``seq`` decides the order.
Conversions sit on touch rows and on rows of their own, in several kinds that include the
milestone kinds. Some people have an account and some do not, and some gaps are longer
than the lookback window.

Regenerate the files with ``python -m tests.journeys.test_build_snapshot`` only when a
journey rule changes on purpose, and review the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.journeys.build import JourneyOptions, journeys_from_events
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store, conform

SNAPSHOTS = Path(__file__).parent / "snapshots"
START = pd.Timestamp("2024-01-01T00:00:00Z")
SOURCES = [
    ("google", "cpc", None, None),
    ("google", "organic", None, None),
    (None, None, "gclid", "google_ads"),
    (None, None, "li_fat_id", "linkedin_ads"),
    ("newsletter", "email", None, None),
    ("(direct)", "(none)", None, None),
    ("partner.example", "referral", None, None),
]
KINDS = ["lead", "opportunity", "closed_won", "purchase"]
OPTIONS = {
    "defaults": JourneyOptions(),
    "account-frequency-last3-30d": JourneyOptions(
        entity="account", lookback_days=30, transform="frequency", last_n=3
    ),
    "won-collapse-7d": JourneyOptions(
        conversion_kinds=("closed_won",), transform="collapse", lookback_days=7
    ),
}


def generated_world(seed: int = 5, people: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return touchpoint and conversion rows of ``people`` people over about 300 days."""
    rng = np.random.default_rng(seed)
    touches: list[dict[str, Any]] = []
    conversions: list[dict[str, Any]] = []
    seq = 0
    for person in range(people):
        account = f"acct{person % 7}" if person % 3 else None
        # Whole hours within a few bursts, so that equal timestamps occur and gaps exceed
        # the 7- and 30-day windows.
        bursts = START + pd.to_timedelta(rng.integers(0, 300, size=3) * 24, unit="h")
        for _ in range(int(rng.integers(0, 12))):
            seq += 1
            source, medium, click, platform = SOURCES[int(rng.integers(0, len(SOURCES)))]
            moment = bursts[int(rng.integers(0, 3))] + pd.Timedelta(hours=int(rng.integers(0, 48)))
            touches.append(
                {
                    "touchpoint_id": f"t{seq}",
                    "seq": seq,
                    "person_id": f"p{person}",
                    "account_id": account,
                    "occurred_at": moment,
                    "source": source,
                    "medium": medium,
                    "campaign": f"camp{int(rng.integers(0, 3))}",
                    "click_id": click,
                    "click_platform": platform,
                }
            )
            if rng.random() < 0.15:
                # A conversion flagged on the touch row: same seq and time, sorts after it.
                conversions.append(_conversion(rng, seq, person, account, moment))
        for _ in range(int(rng.integers(0, 3))):
            seq += 1
            moment = bursts[int(rng.integers(0, 3))] + pd.Timedelta(hours=int(rng.integers(0, 48)))
            conversions.append(_conversion(rng, seq, person, account, moment))
    return pd.DataFrame(touches), pd.DataFrame(conversions)


def _conversion(
    rng: np.random.Generator, seq: int, person: int, account: str | None, moment: pd.Timestamp
) -> dict[str, Any]:
    return {
        "conversion_id": f"c{seq}",
        "seq": seq,
        "person_id": f"p{person}",
        "account_id": account,
        "occurred_at": moment,
        "kind": KINDS[int(rng.integers(0, len(KINDS)))],
        "value": float(rng.integers(0, 5000)),
    }


def built_tables(store: Store, options: JourneyOptions) -> dict[str, pd.DataFrame]:
    """Build journeys of the generated world; return both tables sorted by journey and position."""
    touches, conversions = generated_world()
    touch_table = store.con.create_table(
        "touchpoints",
        conform(touches, RAW_TABLES["touchpoints"], table_name="touchpoints"),
        overwrite=True,
    )
    conversion_table = store.con.create_table(
        "conversions",
        conform(conversions, RAW_TABLES["conversions"], table_name="conversions"),
        overwrite=True,
    )
    journeys = journeys_from_events(touch_table, conversion_table, ChannelClassifier(), options)
    tables = {"journeys": journeys.journeys.to_pandas(), "touches": journeys.touches.to_pandas()}
    return {name: _sorted(frame) for name, frame in tables.items()}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["journey_id", "position"] if "position" in frame.columns else ["journey_id"]
    return frame.sort_values(keys).reset_index(drop=True)


def _snapshot_path(case: str, table: str) -> Path:
    return SNAPSHOTS / f"{case}.{table}.csv"


def _read_snapshot(case: str, table: str, like: pd.DataFrame) -> pd.DataFrame:
    frame = pd.read_csv(
        _snapshot_path(case, table),
        keep_default_na=False,
        na_values=[""],
        float_precision="round_trip",
    )
    for column, dtype in like.dtypes.items():
        if str(dtype).startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(dtype)
        elif pd.api.types.is_object_dtype(dtype):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


@pytest.mark.parametrize("case", list(OPTIONS))
def test_journeys_from_events_match_snapshot(store: Store, case: str) -> None:
    built = built_tables(store, OPTIONS[case])
    assert len(built["touches"]) > 100
    for table, frame in built.items():
        expected = _read_snapshot(case, table, frame)
        assert list(frame.columns) == list(expected.columns), table
        assert len(frame) == len(expected), table
        for column in frame.columns:
            pd.testing.assert_series_equal(
                frame[column], expected[column], check_exact=True, obj=f"{table}.{column}"
            )


def write_snapshots() -> None:
    """Write the snapshot files from the journey build of this checkout."""
    SNAPSHOTS.mkdir(exist_ok=True)
    store = Store.open()
    for case, options in OPTIONS.items():
        for table, frame in built_tables(store, options).items():
            frame.to_csv(_snapshot_path(case, table), index=False)
    store.close()


if __name__ == "__main__":
    write_snapshots()
