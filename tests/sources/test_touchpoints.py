"""The touchpoint importer: column recognition, click ids, bad input and atomic writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeymap.common.errors import ConfigError, InputError
from journeymap.sources.touchpoints import import_touchpoints
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store


def row_counts(store: Store) -> dict[str, int]:
    return {name: int(store.table(name).count().execute()) for name in RAW_TABLES}


def write(tmp_path: Path, text: str, name: str = "touches.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_common_names_need_no_mapping(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "User_ID,Timestamp,Channel,Conversion,Value\n"
        "u1,2024-03-01T10:00:00Z,Email,0,\n"
        "u1,2024-03-02T10:00:00Z,Paid Search,1,99.5\n",
    )
    result = import_touchpoints(store, path)
    assert result.rows == {"touchpoints": 2, "conversions": 1}
    conversion = store.table("conversions").to_pandas()
    assert conversion.value.tolist() == [99.5]
    assert conversion.kind.tolist() == ["conversion"]


def test_mapping_names_other_columns(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "visitor;when;how;won\nv1;2024-03-01 10:00;Webinar;yes\n")
    import_touchpoints(
        store,
        path,
        mapping={
            "person_id": "visitor",
            "occurred_at": "when",
            "channel": "how",
            "conversion": "won",
        },
    )
    touches = store.table("touchpoints").to_pandas()
    assert touches.person_id.tolist() == ["v1"]
    assert touches.channel.tolist() == ["Webinar"]
    assert store.table("conversions").count().execute() == 1


def test_landing_url_gives_utm_and_click_ids(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user_id,timestamp,url\n"
        "u1,2024-03-01T10:00:00Z,https://acme.io/demo?utm_source=LinkedIn&utm_medium=paid_social&utm_campaign=Q1%20ABM\n"
        "u1,2024-03-02T10:00:00Z,https://acme.io/?gclid=Cj0KCQ-AbC&fbclid=IwAR\n"
        "u1,2024-03-03T10:00:00Z,https://acme.io/?fbclid=IwAR0xYz\n",
    )
    import_touchpoints(store, path)
    touches = store.table("touchpoints").to_pandas().sort_values("seq")
    assert touches.source.tolist()[0] == "LinkedIn"
    assert touches.campaign.tolist()[0] == "Q1 ABM"
    assert touches.click_platform.tolist()[1:] == ["google_ads", "meta"]
    assert touches.click_id.tolist()[1:] == ["Cj0KCQ-AbC", "IwAR0xYz"]


def test_value_without_flag_marks_conversion(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user_id,timestamp,channel,revenue\nu1,2024-03-01,Email,0\nu1,2024-03-02,Direct,12\n",
    )
    import_touchpoints(store, path)
    assert store.table("conversions").to_pandas().value.tolist() == [12.0]


def test_timestamps_without_offset_use_timezone(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user_id,timestamp,channel\n"
        "u1,2024-07-01 12:00:00,Email\n"
        "u1,2024-07-01T12:00:00+02:00,Email\n",
    )
    import_touchpoints(store, path, timezone="Europe/Berlin")
    times = store.table("touchpoints").to_pandas().sort_values("seq").occurred_at
    assert [moment.isoformat() for moment in times] == ["2024-07-01T10:00:00+00:00"] * 2


@pytest.mark.parametrize(
    ("text", "row", "column", "message"),
    [
        (
            "user,timestamp,channel\nu1,2024-03-01,Email\n",
            None,
            "person_id",
            "missing column for person_id",
        ),
        ("user_id,channel\nu1,Email\n", None, "occurred_at", "missing column for occurred_at"),
        (
            "user_id,timestamp,channel\nu1,2024-03-01,Email\nu1,yesterday,Email\n",
            2,
            "timestamp",
            "cannot parse 'yesterday'",
        ),
        ("user_id,timestamp,channel,value\nu1,2024-03-01,Email,-5\n", 1, "value", "is negative"),
        (
            "user_id,timestamp,channel,value\nu1,2024-03-01,Email,12 EUR\n",
            1,
            "value",
            "is not a number",
        ),
        (
            "user_id,timestamp,channel,conversion\nu1,2024-03-01,Email,maybe\n",
            1,
            "conversion",
            "not 1/0",
        ),
        ("user_id,timestamp,channel\n,2024-03-01,Email\n", 1, "user_id", "person id is empty"),
        ("user_id,timestamp,channel\nu1,,Email\n", 1, "timestamp", "timestamp is empty"),
    ],
    ids=[
        "no-person",
        "no-timestamp",
        "bad-timestamp",
        "negative-value",
        "text-value",
        "bad-flag",
        "empty-person",
        "empty-timestamp",
    ],
)
def test_bad_input_names_row_and_column(
    store: Store, tmp_path: Path, text: str, row: int | None, column: str, message: str
) -> None:
    before = row_counts(store)
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as caught:
        import_touchpoints(store, path)
    assert caught.value.file == str(path)
    assert caught.value.row == row
    assert caught.value.column == column
    assert str(path) in str(caught.value)
    assert row_counts(store) == before


def test_wrong_separator_is_explained(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "user_id;timestamp;channel\nu1;2024-03-01;Email\n")
    with pytest.raises(InputError, match="pass --sep ';'"):
        import_touchpoints(store, path, separator=",")


def test_unknown_mapping_field_lists_fields(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,timestamp\nu1,2024-03-01\n")
    with pytest.raises(ConfigError, match=r"unknown field 'persn_id'.*person_id"):
        import_touchpoints(store, path, mapping={"persn_id": "user_id"})


def test_same_file_twice_is_refused(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,timestamp,channel\nu1,2024-03-01,Email\n")
    import_touchpoints(store, path)
    before = row_counts(store)
    with pytest.raises(InputError, match="already imported"):
        import_touchpoints(store, path)
    assert row_counts(store) == before


def test_failed_write_rolls_back_every_table(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "user_id,timestamp,channel,conversion\nu1,2024-03-01,Email,1\n")
    before = row_counts(store)
    original = store.append

    def failing_append(name: str, frame: pd.DataFrame) -> int:
        if name == "imports":
            raise RuntimeError("disk full")
        return original(name, frame)

    monkeypatch.setattr(store, "append", failing_append)
    with pytest.raises(RuntimeError, match="disk full"):
        import_touchpoints(store, path)
    assert row_counts(store) == before


def test_parquet_input(store: Store, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "timestamp": pd.to_datetime(["2024-03-01", "2024-03-02"], utc=True),
            "channel": ["Email", "Direct"],
            "conversion": [False, True],
            "value": [0.0, 5.0],
        }
    )
    path = tmp_path / "touches.parquet"
    frame.to_parquet(path)
    result = import_touchpoints(store, path)
    assert result.rows == {"touchpoints": 2, "conversions": 1}


def test_import_keeps_row_order_in_seq(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,timestamp,channel\nu2,2024-03-02,b\nu1,2024-03-01,a\n")
    import_touchpoints(store, path)
    touches = store.table("touchpoints").to_pandas().sort_values("seq")
    assert touches.channel.tolist() == ["b", "a"]


def test_value_above_limit_names_row(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(
        "user_id,timestamp,channel,conversion,value\n"
        "u1,2024-03-01T10:00:00Z,Email,1,99999999999999999999\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"row 1, column 'value'.*above"):
        import_touchpoints(store, path)
    assert not store.has_rows("touchpoints")
