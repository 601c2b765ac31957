"""The Arrow fast path reads touchpoint files exactly as the pandas reader does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from journeymap.sources.arrow_touchpoints import read_touchpoint_arrow
from journeymap.sources.readers import header_names, prepare_input, read_arrow, read_input
from journeymap.sources.touchpoints import (
    CLICK_IDS,
    TOUCH_COLUMNS,
    TOUCHPOINT_ALIASES,
    read_touchpoint_frame,
)

CSV_CASES = {
    "utm-and-clicks": (
        "user_id,timestamp,utm_source,utm_medium,utm_campaign,gclid,fbclid,referrer,conversion,value\n"
        "u1,2024-03-01T10:00:00Z,google,cpc,brand,Cj0K,,https://www.google.com/,0,\n"
        "u1,2024-03-02T10:00:00+02:00,, ,,,IwAR1,https://l.facebook.com/x,1,12.5\n"
        "u2,2024-03-03T00:00:00Z,,,,,,,yes,0\n"
        " 007 ,2024-03-04T00:00:00Z,newsletter,email,,,,,false,\n"
    ),
    "channel-only": (
        "visitor,ts,channel,converted,revenue,conversion_kind\n"
        "a,2024-01-01 09:00:00,Webinar,0,0,\n"
        "a,2024-01-02 09:00:00,,1,500,closed_won\n"
        "b,2024-01-02 10:00:00,Email,1,20,Lead\n"
    ),
}


def both_readers(
    path: Path, mapping: dict[str, str] | None = None
) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    source = prepare_input(path)
    typed = ["timestamp", "ts", "value", "revenue", "conversion", "converted"]
    table = read_arrow(source, typed=[name for name in header_names(source) if name in typed])
    assert table is not None
    fast = read_touchpoint_arrow(
        table,
        file=str(path),
        aliases=TOUCHPOINT_ALIASES,
        click_ids=CLICK_IDS,
        touch_columns=TOUCH_COLUMNS,
        mapping=mapping,
        timezone="Europe/Berlin",
    )
    assert fast is not None, "the fast path deferred to pandas"
    touches, conversions = read_touchpoint_frame(
        read_input(source).frame, file=str(path), mapping=mapping, timezone="Europe/Berlin"
    )
    return (
        fast[0],
        fast[1],
        pa.Table.from_pandas(touches, preserve_index=False),
        pa.Table.from_pandas(conversions, preserve_index=False),
    )


def frames_equal(arrow: pa.Table, reference: pa.Table) -> None:
    left = arrow.to_pandas()
    right = reference.to_pandas()
    assert list(left.columns) == list(right.columns)
    for column in left.columns:
        mine = left[column].astype(object).where(left[column].notna(), None).tolist()
        theirs = right[column].astype(object).where(right[column].notna(), None).tolist()
        if column == "occurred_at":
            mine = [pd.Timestamp(value) for value in mine]
            theirs = [pd.Timestamp(value) for value in theirs]
        assert mine == theirs, column


@pytest.mark.parametrize("case", list(CSV_CASES), ids=list(CSV_CASES))
def test_arrow_reader_matches_pandas_on_csv(tmp_path: Path, case: str) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(CSV_CASES[case], encoding="utf-8")
    mapping = (
        {"person_id": "visitor", "occurred_at": "ts", "conversion": "converted"}
        if case == "channel-only"
        else None
    )
    fast_touches, fast_conversions, touches, conversions = both_readers(path, mapping)
    frames_equal(fast_touches, touches)
    frames_equal(fast_conversions, conversions)


def test_arrow_reader_matches_pandas_on_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "timestamp": pd.to_datetime(
                ["2024-03-01 10:00", "2024-03-02 10:00", "2024-03-01 11:00"]
            ),
            "channel": ["Email", None, "Direct"],
            "conversion": [False, True, True],
            "value": [0.0, 99.5, None],
        }
    )
    path = tmp_path / "touches.parquet"
    frame.to_parquet(path)
    fast_touches, fast_conversions, touches, conversions = both_readers(path)
    frames_equal(fast_touches, touches)
    frames_equal(fast_conversions, conversions)


@pytest.mark.parametrize(
    "text",
    [
        "user_id,timestamp,channel,value\nu1,2024-03-01T10:00:00Z,Email,-5\n",
        "user_id,timestamp,channel\nu1,yesterday,Email\n",
        "user_id,timestamp,channel\n,2024-03-01T10:00:00Z,Email\n",
        "user_id,timestamp,url\nu1,2024-03-01T10:00:00Z,https://x.io/?utm_source=a\n",
        "user_id,timestamp,channel,conversion\nu1,2024-03-01T10:00:00Z,Email,maybe\n",
        "user_id,timestamp,channel,channel\nu1,2024-03-01T10:00:00Z,Email,Direct\n",
    ],
    ids=[
        "negative-value",
        "text-timestamp",
        "empty-person",
        "landing-url",
        "bad-flag",
        "repeated-column",
    ],
)
def test_arrow_reader_defers_unusual_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(text, encoding="utf-8")
    source = prepare_input(path)
    table = read_arrow(source, typed=["timestamp", "value", "conversion"])
    assert table is not None
    result = read_touchpoint_arrow(
        table,
        file=str(path),
        aliases=TOUCHPOINT_ALIASES,
        click_ids=CLICK_IDS,
        touch_columns=TOUCH_COLUMNS,
    )
    assert result is None
