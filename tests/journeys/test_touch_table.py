"""Journeys from a touch table: equal to the store's, hand-computed cuts and bad input."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st

from journeymap.analyses.paths import journey_paths
from journeymap.api import build, import_file
from journeymap.attribution import channel_credit_table
from journeymap.attribution.aggregate import path_summary
from journeymap.attribution.base import resolve_models
from journeymap.common.config import Config, JourneyConfig
from journeymap.common.errors import InputError
from journeymap.journeys.build import Journeys
from journeymap.journeys.touch_table import (
    check_touch_table,
    journeys_from_touch_table,
    read_touch_table,
    touch_table,
)
from journeymap.store.store import Store

T0 = pd.Timestamp("2024-03-01T00:00:00Z")
# Channel names that the store's classifier keeps, because a given channel wins over its rules.
CHANNELS = ["Email", "Direct", "Paid Search", "Webinars", "Organic Search"]
SUFFIXES = [".parquet", ".csv"]

# One touch: (person, days after T0, channel, is a conversion, value or None).
Touch = tuple[str, float, str, bool, float | None]


def touch_frame(touches: Sequence[Touch]) -> pd.DataFrame:
    """Return the touches as a frame with the usual column names."""
    return pd.DataFrame(
        {
            "user_id": [touch[0] for touch in touches],
            "timestamp": [(T0 + pd.Timedelta(days=touch[1])).round("s") for touch in touches],
            "channel": [touch[2] for touch in touches],
            "conversion": [touch[3] for touch in touches],
            "value": pd.Series([touch[4] for touch in touches], dtype="float64"),
        }
    )


def write_frame(frame: pd.DataFrame, folder: Path, suffix: str, name: str = "touches") -> Path:
    """Write ``frame`` as Parquet or CSV (by ``suffix``) and return the path."""
    path = folder / f"{name}{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def write_touches(touches: Sequence[Touch], folder: Path, suffix: str = ".parquet") -> Path:
    return write_frame(touch_frame(touches), folder, suffix)


def table_journeys(path: Path, lookback_days: float | None = 90.0) -> Journeys:
    """Read, check and cut a touch file without a store."""
    touches = read_touch_table(path)
    check_touch_table(touches)
    return journeys_from_touch_table(touches, lookback_days)


@contextmanager
def store_journeys(path: Path, lookback_days: float = 90.0) -> Iterator[Journeys]:
    """Import the file into a new in-memory store and yield its built journeys."""
    store = Store.open()
    try:
        import_file(store, path, input_format="touchpoints")
        config = Config(journeys=JourneyConfig(lookback_days=lookback_days))
        yield build(store, config)
    finally:
        store.close()


def credit_table(journeys: Journeys) -> pd.DataFrame:
    frame = channel_credit_table(journeys, resolve_models(["all"]))
    return frame.sort_values(["model", "channel"]).reset_index(drop=True)


def journey_table(journeys: Journeys) -> pd.DataFrame:
    columns = [
        "journey_id",
        "entity_id",
        "kind",
        "converted_at",
        "conversions",
        "value",
        "nulls",
        "n_touches",
    ]
    frame: pd.DataFrame = journeys.journeys.select(*columns).to_pandas()
    return frame.sort_values("journey_id").reset_index(drop=True)


def journey_touch_table(journeys: Journeys) -> pd.DataFrame:
    columns = [
        "journey_id",
        "position",
        "n_touches",
        "occurred_at",
        "days_before",
        "channel",
        "repeats",
        "is_lead_touch",
        "is_opportunity_touch",
        "is_won_touch",
    ]
    frame: pd.DataFrame = journeys.touches.select(*columns).to_pandas()
    return frame.sort_values(["journey_id", "position"]).reset_index(drop=True)


def summary_rows(journeys: Journeys) -> set[tuple[str, str, float, float, float]]:
    summary = path_summary(journeys)
    columns = zip(
        summary.kind, summary.key, summary.conversions, summary.value, summary.nulls, strict=True
    )
    return {
        (str(kind), str(key), float(conversions), round(float(value), 6), float(nulls))
        for kind, key, conversions, value, nulls in columns
    }


def paths_by_journey(journeys: Journeys) -> dict[str, str]:
    frame = journey_paths(journeys.touches).to_pandas()
    return dict(zip(frame.journey_id, frame.path, strict=True))


def assert_same_as_store(path: Path, lookback_days: float = 90.0) -> None:
    """Assert that the touch table and the store give the same journeys, paths and credit."""
    from_table = table_journeys(path, lookback_days)
    with store_journeys(path, lookback_days) as from_store:
        pd.testing.assert_frame_equal(
            journey_table(from_table), journey_table(from_store), check_exact=False, rtol=1e-9
        )
        pd.testing.assert_frame_equal(
            journey_touch_table(from_table),
            journey_touch_table(from_store),
            check_exact=False,
            rtol=1e-9,
        )
        assert summary_rows(from_table) == summary_rows(from_store)
        pd.testing.assert_frame_equal(
            credit_table(from_table), credit_table(from_store), check_exact=False, rtol=1e-9
        )


# Hand-made files, each with a case the journey rules treat specially.
SCENARIOS: dict[str, list[Touch]] = {
    "several people and conversions": [
        ("u1", 0, "Email", False, None),
        ("u1", 1, "Paid Search", True, 120.0),
        ("u1", 2, "Direct", False, 7.0),
        ("u1", 3, "Email", False, None),
        ("u1", 4, "Direct", True, 80.5),
        ("u1", 5, "Webinars", True, 10.0),
        ("u1", 6, "Organic Search", False, None),
        ("u2", 0.5, "Webinars", False, None),
        ("u2", 2.5, "Email", True, 30.0),
        ("u3", 1, "Direct", False, None),
        ("u3", 2, "Email", False, None),
    ],
    "ties on timestamps": [
        ("u1", 1, "Webinars", False, None),
        ("u1", 1, "Email", False, None),
        ("u1", 1, "Direct", True, 5.0),
        ("u1", 1, "Paid Search", True, 6.0),
        ("u1", 1, "Email", False, None),
        ("u2", 2, "Direct", True, 1.0),
        ("u2", 2, "Direct", True, 2.0),
        ("u2", 0, "Email", False, None),
    ],
    "touches older than the lookback": [
        ("u1", 0, "Email", False, None),
        ("u1", 1, "Webinars", False, None),
        ("u1", 91, "Direct", True, 50.0),
        ("u1", 95, "Paid Search", False, None),
        ("u1", 200, "Email", False, None),
        ("u2", 10, "Organic Search", False, None),
        ("u2", 100, "Email", True, 3.0),
        ("u3", 0, "Webinars", False, None),
        ("u3", 120, "Direct", False, None),
    ],
    "rows out of time order": [
        ("u1", 10, "Email", True, 5.0),
        ("u1", 9, "Direct", False, None),
        ("u1", 2, "Webinars", True, 3.0),
        ("u1", 1, "Paid Search", False, None),
        ("u1", 12, "Organic Search", False, None),
        ("u2", 5, "Email", False, None),
        ("u2", 3, "Direct", True, 1.0),
    ],
    "people without conversions": [
        ("u1", 0, "Email", False, None),
        ("u1", 3, "Email", False, None),
        ("u2", 1, "Direct", False, None),
        ("u3", 2, "Paid Search", True, 9.0),
    ],
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_touch_table_equals_store(scenario: str, suffix: str, tmp_path: Path) -> None:
    path = write_touches(SCENARIOS[scenario], tmp_path, suffix)
    assert_same_as_store(path)


@pytest.mark.parametrize("lookback_days", [1.5, 30.0])
def test_touch_table_equals_store_short_lookback(lookback_days: float, tmp_path: Path) -> None:
    path = write_touches(SCENARIOS["touches older than the lookback"], tmp_path)
    assert_same_as_store(path, lookback_days)


def test_lookback_drops_touch_older_than_window(tmp_path: Path) -> None:
    path = write_touches(
        [
            ("u1", 0, "Email", False, None),
            ("u1", 1, "Webinars", False, None),
            ("u1", 91, "Direct", True, 10.0),
        ],
        tmp_path,
    )
    # Day 0 is 91 days before the conversion and day 1 exactly 90, which the window includes.
    assert paths_by_journey(table_journeys(path)) == {"conversion:u1:0": "Webinars > Direct"}
    unlimited = table_journeys(path, lookback_days=None)
    assert paths_by_journey(unlimited) == {"conversion:u1:0": "Email > Webinars > Direct"}


def test_lookback_cuts_tail_from_its_last_touch(tmp_path: Path) -> None:
    path = write_touches(
        [
            ("u1", 0, "Email", False, None),
            ("u1", 50, "Direct", False, None),
            ("u1", 60, "Webinars", False, None),
            # Journeys exist only for the kinds in the data, so one person converts.
            ("u2", 0, "Email", True, 5.0),
        ],
        tmp_path,
    )
    assert paths_by_journey(table_journeys(path, 30.0)) == {
        "conversion:u1:0": "Direct > Webinars",
        "conversion:u2:0": "Email",
    }


def test_conversion_ends_journey_later_touches_start_next(tmp_path: Path) -> None:
    path = write_touches(
        [
            ("u1", 0, "Email", False, None),
            ("u1", 1, "Direct", True, 10.0),
            ("u1", 2, "Webinars", False, None),
            ("u1", 3, "Paid Search", True, 20.0),
            ("u1", 4, "Email", False, None),
        ],
        tmp_path,
    )
    journeys = table_journeys(path)
    assert paths_by_journey(journeys) == {
        "conversion:u1:0": "Email > Direct",
        "conversion:u1:1": "Webinars > Paid Search",
        "conversion:u1:2": "Email",
    }
    rows = journey_table(journeys).set_index("journey_id")
    assert rows.conversions.to_dict() == {
        "conversion:u1:0": 1.0,
        "conversion:u1:1": 1.0,
        "conversion:u1:2": 0.0,
    }
    assert rows.converted_at["conversion:u1:1"] == T0 + pd.Timedelta(days=3)
    assert pd.isna(rows.converted_at["conversion:u1:2"])


def test_non_converting_tail_counts_in_nulls(tmp_path: Path) -> None:
    path = write_touches(
        [
            ("u1", 0, "Email", True, 5.0),
            ("u1", 1, "Direct", False, None),
            ("u1", 2, "Email", False, None),
            ("u2", 0, "Direct", False, None),
            ("u2", 1, "Email", False, None),
        ],
        tmp_path,
    )
    journeys = table_journeys(path)
    rows = journey_table(journeys).set_index("journey_id")
    assert rows.nulls.to_dict() == {
        "conversion:u1:0": 0.0,
        "conversion:u1:1": 1.0,
        "conversion:u2:0": 1.0,
    }
    assert summary_rows(journeys) == {
        ("conversion", "Email", 1.0, 5.0, 0.0),
        ("conversion", "Direct\x1fEmail", 0.0, 0.0, 2.0),
    }


def test_value_counts_only_on_converting_touch(tmp_path: Path) -> None:
    path = write_touches(
        [
            ("u1", 0, "Email", False, 1000.0),
            ("u1", 1, "Direct", True, 25.0),
            ("u1", 2, "Webinars", False, 500.0),
            ("u2", 0, "Email", True, None),
        ],
        tmp_path,
    )
    journeys = table_journeys(path)
    rows = journey_table(journeys).set_index("journey_id")
    assert rows.value.to_dict() == {
        "conversion:u1:0": 25.0,
        "conversion:u1:1": 0.0,
        "conversion:u2:0": 0.0,
    }
    last_touch = channel_credit_table(journeys, resolve_models(["last_touch"]))
    assert last_touch.set_index("channel").value.to_dict() == {"Direct": 25.0, "Email": 0.0}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_equal_timestamps_follow_file_row(suffix: str, tmp_path: Path) -> None:
    path = write_touches(
        [
            ("u1", 1, "Webinars", False, None),
            ("u1", 1, "Email", False, None),
            ("u1", 1, "Paid Search", True, 1.0),
            ("u1", 1, "Direct", True, 2.0),
            ("u1", 1, "Organic Search", False, None),
        ],
        tmp_path,
        suffix,
    )
    journeys = table_journeys(path)
    assert paths_by_journey(journeys) == {
        "conversion:u1:0": "Webinars > Email > Paid Search",
        "conversion:u1:1": "Direct",
        "conversion:u1:2": "Organic Search",
    }
    touches = journeys.touches.to_pandas().set_index(["journey_id", "position"])
    assert touches.touchpoint_id[("conversion:u1:0", 3)] == "row:3"
    assert touches.touchpoint_id[("conversion:u1:2", 1)] == "row:5"


def test_table_without_rows_orders_ties_conversion_last() -> None:
    frame = touch_frame(
        [
            ("u1", 1, "Paid Search", True, 1.0),
            ("u1", 1, "Webinars", False, None),
            ("u1", 1, "Email", False, None),
        ]
    )
    journeys = journeys_from_touch_table(touch_table(ibis.memtable(frame)))
    assert paths_by_journey(journeys) == {"conversion:u1:0": "Email > Webinars > Paid Search"}


def test_mapping_names_other_columns(tmp_path: Path) -> None:
    frame = touch_frame([("u1", 0, "Email", False, None), ("u1", 1, "Direct", True, 4.0)])
    frame.columns = ["who", "when", "how", "won", "worth"]
    path = write_frame(frame, tmp_path, ".parquet")
    mapping = {
        "person_id": "who",
        "occurred_at": "when",
        "channel": "how",
        "conversion": "won",
        "value": "worth",
    }
    touches = read_touch_table(path, mapping=mapping)
    check_touch_table(touches)
    journeys = journeys_from_touch_table(touches)
    assert paths_by_journey(journeys) == {"conversion:u1:0": "Email > Direct"}
    assert journey_table(journeys).value.tolist() == [4.0]


def test_value_column_is_optional(tmp_path: Path) -> None:
    frame = touch_frame([("u1", 0, "Email", False, None), ("u1", 1, "Direct", True, None)])
    path = write_frame(frame.drop(columns="value"), tmp_path, ".parquet")
    journeys = table_journeys(path)
    assert journey_table(journeys).value.tolist() == [0.0]


# Bad input. The columns use accepted aliases other than the field names, so that a check
# that names the field in place of the file's column fails.
ALIASED = {
    "user_id": "visitor_id",
    "timestamp": "event_time",
    "channel": "marketing_channel",
    "conversion": "converted",
    "value": "revenue",
}
GOOD_ROWS: list[Touch] = [
    ("u1", 0, "Email", False, None),
    ("u1", 1, "Direct", False, None),
    ("u1", 2, "Webinars", True, 10.0),
    ("u2", 0, "Email", False, None),
]


def write_bad(tmp_path: Path, suffix: str, column: str, row: int, cell: object) -> tuple[Path, str]:
    """Write GOOD_ROWS with the cell of ``column`` at 1-based ``row`` replaced.

    Returns the path and the file's name of that column.
    """
    frame = touch_frame(GOOD_ROWS)
    cells = frame[column].astype(object).tolist()
    cells[row - 1] = cell
    frame[column] = cells
    frame = frame.rename(columns=ALIASED)
    return write_frame(frame, tmp_path, suffix), ALIASED[column]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    ("column", "row", "cell", "message"),
    [
        ("user_id", 3, None, "empty person id"),
        ("user_id", 2, "  ", "empty person id"),
        ("user_id", 2, "\u00a0", "empty person id"),
        ("timestamp", 4, None, "empty or invalid timestamp"),
        ("channel", 2, None, "empty channel"),
        ("channel", 3, " ", "empty channel"),
        ("channel", 1, "\t\n", "empty channel"),
        ("value", 1, -1.0, "value is negative"),
        ("value", 4, float("inf"), "value is not finite"),
    ],
)
def test_check_names_file_row_and_column(
    suffix: str, column: str, row: int, cell: object, message: str, tmp_path: Path
) -> None:
    path, name = write_bad(tmp_path, suffix, column, row, cell)
    touches = read_touch_table(path)
    with pytest.raises(InputError, match=message) as raised:
        check_touch_table(touches)
    assert raised.value.file == str(path)
    assert raised.value.row == row
    assert raised.value.column == name
    assert f"row {row}" in str(raised.value)


def test_empty_conversion_flag_is_false(tmp_path: Path) -> None:
    frame = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    frame["converted"] = pd.array([0, 0, 1, None], dtype="Int64")
    path = write_frame(frame, tmp_path, ".parquet")
    journeys = journeys_from_touch_table(read_touch_table(path))
    conversions = journeys.journeys.conversions.sum().execute()
    # Only the third row converts; the empty flag on the fourth reads as false, as the
    # importer reads it.
    assert conversions == 1.0


def test_check_passes_good_file(tmp_path: Path) -> None:
    path = write_frame(touch_frame(GOOD_ROWS).rename(columns=ALIASED), tmp_path, ".csv")
    check_touch_table(read_touch_table(path))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_missing_column_lists_accepted_names(suffix: str, tmp_path: Path) -> None:
    frame = touch_frame(GOOD_ROWS).drop(columns="channel")
    path = write_frame(frame, tmp_path, suffix)
    with pytest.raises(InputError, match="missing column for channel") as raised:
        read_touch_table(path)
    assert "marketing_channel" in str(raised.value)
    assert raised.value.file == str(path)


def test_text_timestamps_in_parquet_are_parsed(tmp_path: Path) -> None:
    typed = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    text = typed.assign(event_time=typed["event_time"].astype(str))
    from_typed = table_journeys(write_frame(typed, tmp_path, ".parquet", name="typed"))
    from_text = table_journeys(write_frame(text, tmp_path, ".parquet", name="text"))
    assert paths_by_journey(from_text) == paths_by_journey(from_typed)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    ("column", "cells", "message"),
    [
        (
            "event_time",
            ["2024-03-01T10:00:00Z", "yesterday", "2024-03-03", "2024-03-01"],
            "invalid timestamp",
        ),
        ("converted", ["N", "maybe", "Y", "N"], "invalid conversion flag"),
    ],
    ids=["timestamp", "flag"],
)
def test_invalid_text_cell_names_row(
    suffix: str, column: str, cells: list[str], message: str, tmp_path: Path
) -> None:
    frame = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    frame[column] = cells
    path = write_frame(frame, tmp_path, suffix)
    with pytest.raises(InputError, match=message) as raised:
        check_touch_table(read_touch_table(path))
    assert f"(found {cells[1]!r})" in str(raised.value)
    assert raised.value.file == str(path)
    assert raised.value.row == 2
    assert raised.value.column == column


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_numeric_flag_not_binary_names_row(suffix: str, tmp_path: Path) -> None:
    frame = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    frame["converted"] = [0.0, 0.5, 1.0, 0.0]
    path = write_frame(frame, tmp_path, suffix)
    with pytest.raises(InputError, match="invalid conversion flag") as raised:
        check_touch_table(read_touch_table(path))
    assert raised.value.row == 2


def test_value_above_the_amount_limit_names_row(tmp_path: Path) -> None:
    frame = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    frame["revenue"] = [None, None, 1e23, None]
    path = write_frame(frame, tmp_path, ".parquet")
    with pytest.raises(InputError, match="micros or cents") as raised:
        check_touch_table(read_touch_table(path))
    assert raised.value.row == 3


def test_header_only_and_empty_files_rejected(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("user_id,timestamp,channel,conversion,value\n", encoding="utf-8")
    with pytest.raises(InputError, match="no rows"):
        check_touch_table(read_touch_table(header))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        read_touch_table(empty)


def test_latin1_csv_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"user_id,timestamp,channel,conversion,value\nu1,2024-01-01 10:00:00,R\xe9seau,1,5\n"
    )
    with pytest.raises(InputError, match=r"line 2 is not UTF-8 text \(byte 0xE9") as raised:
        check_touch_table(read_touch_table(path))
    assert raised.value.row == 1


def test_gzipped_csv_is_read(tmp_path: Path) -> None:
    import gzip

    frame = touch_frame(GOOD_ROWS)
    plain = write_frame(frame, tmp_path, ".csv")
    packed = tmp_path / "touches.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert paths_by_journey(table_journeys(packed)) == paths_by_journey(table_journeys(plain))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_text_conversion_flags_read_as_importer_words(suffix: str, tmp_path: Path) -> None:
    frame = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    frame["converted"] = ["N", "no", "Y", "0.0"]
    path = write_frame(frame, tmp_path, suffix)
    journeys = journeys_from_touch_table(read_touch_table(path))
    assert journeys.journeys.conversions.sum().execute() == 1.0


def test_text_value_names_row(tmp_path: Path) -> None:
    frame = touch_frame(GOOD_ROWS).rename(columns=ALIASED)
    frame["revenue"] = ["", "", "ten", ""]
    path = write_frame(frame, tmp_path, ".parquet")
    with pytest.raises(InputError, match="value is not a number") as raised:
        check_touch_table(read_touch_table(path))
    assert "(found 'ten')" in str(raised.value)
    assert raised.value.row == 3
    assert raised.value.column == "revenue"


@pytest.mark.parametrize("cell", ["NaN", "nan", "NA", "null", "#N/A"])
def test_missing_value_words_rejected_as_store(tmp_path: Path, cell: str) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(
        # Naive timestamps and numbers, which the store's Arrow reader reads typed.
        "user_id,timestamp,channel,conversion,value\n"
        "u1,2024-03-01T10:00:00,Email,0,0\n"
        f"u1,2024-03-02T10:00:00,Direct,1,{cell}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="value is not a number") as raised:
        check_touch_table(read_touch_table(path))
    assert raised.value.row == 2
    store = Store.open()
    with pytest.raises(InputError, match=f"value '{cell}' is not a number") as stored:
        import_file(store, path, input_format="touchpoints")
    assert stored.value.row == 2


def test_missing_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "absent.parquet"
    with pytest.raises(InputError, match="file not found") as raised:
        read_touch_table(path)
    assert raised.value.file == str(path)


def test_unknown_file_type_rejected(tmp_path: Path) -> None:
    path = tmp_path / "touches.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match=r"unsupported file type '\.json'"):
        read_touch_table(path)


# Inputs where the importer's reading rules apply to the touch table too.


def test_naive_parquet_timestamps_read_as_utc(tmp_path: Path) -> None:
    frame = touch_frame(SCENARIOS["several people and conversions"])
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    path = write_frame(frame, tmp_path, ".parquet")
    assert_same_as_store(path)


def test_csv_decimal_person_ids_stay_distinct(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(
        "user_id,timestamp,channel,conversion,value\n"
        "123456789.1700000001,2024-03-01T00:00:00Z,Email,false,\n"
        "123456789.1700000002,2024-03-02T00:00:00Z,Direct,true,5\n",
        encoding="utf-8",
    )
    assert_same_as_store(path)


def test_csv_empty_value_column_counts_as_zero(tmp_path: Path) -> None:
    rows = [("u1", 0, "Email", False, None), ("u1", 1, "Direct", True, None)]
    assert_same_as_store(write_touches(rows, tmp_path, ".csv"))


@pytest.mark.parametrize("name", ["touches.csv", "touches.csv.gz", "touches.parquet"])
def test_repeated_column_rejected_as_store(tmp_path: Path, name: str) -> None:
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / name
    names = ["user_id", "timestamp", "channel", "conversion", "channel"]
    cells = ["u1", "2024-03-01T00:00:00Z", "Email", "true", "Direct"]
    if name.endswith(".parquet"):
        pq.write_table(pa.table([[cell] for cell in cells], names=names), path)
    else:
        text = ",".join(names) + "\n" + ",".join(cells) + "\n"
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    with pytest.raises(InputError, match="column names repeat in the file: 'channel'"):
        read_touch_table(path)
    store = Store.open()
    with pytest.raises(InputError, match="column names repeat in the file: 'channel'"):
        import_file(store, path, input_format="touchpoints")


def test_empty_header_names_may_repeat(tmp_path: Path) -> None:
    # Trailing separators leave empty names, which name no column that a reader looks up.
    path = tmp_path / "touches.csv"
    path.write_text(
        "user_id,timestamp,channel,conversion,value,,\n"
        "u1,2024-03-01T00:00:00Z,Email,0,,,\n"
        "u1,2024-03-02T00:00:00Z,Webinars,1,5,,\n",
        encoding="utf-8",
    )
    assert_same_as_store(path)


@pytest.mark.parametrize("space", [" ", "\t", "\u00a0", "\u3000"], ids=repr)
def test_padded_ids_and_channels_match_store(tmp_path: Path, space: str) -> None:
    rows = [
        (f"u1{space}", 0, f"{space}Email", False, None),
        ("u1", 1, f"Email{space}", True, 3.0),
        (f"{space}u2", 2, "Direct", True, 1.0),
    ]
    assert_same_as_store(write_touches(rows, tmp_path))


def test_file_without_conversions_credits_nothing(tmp_path: Path) -> None:
    path = write_touches(SCENARIOS["people without conversions"][:3], tmp_path)
    from_table = table_journeys(path)
    with store_journeys(path) as from_store:
        assert credit_table(from_table).empty
        assert credit_table(from_store).empty


def test_file_without_conversions_matches_store(tmp_path: Path) -> None:
    assert_same_as_store(write_touches(SCENARIOS["people without conversions"][:3], tmp_path))


touch_rows = st.tuples(
    st.sampled_from(["p1", "p2", "p3"]),
    # Most times spread over 200 days, so that 90-day cuts matter. A few fixed days give ties.
    st.one_of(
        st.integers(min_value=0, max_value=200 * 24 * 60),
        st.sampled_from([0, 45 * 24 * 60, 91 * 24 * 60]),
    ),
    st.sampled_from(CHANNELS),
    st.sampled_from([True, False, False]),
    st.decimals(min_value=0, max_value=10_000, places=2),
)


# Shrinking is off: every example builds journeys twice (about 0.7 s), so shrinking a
# failure takes minutes. note() prints the failing rows instead.
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    rows=st.lists(touch_rows, min_size=1, max_size=20),
    suffix=st.sampled_from(SUFFIXES),
    lookback_days=st.sampled_from([90.0, 30.0, 0.5]),
)
def test_touch_table_equals_store_random(
    rows: list[tuple[str, int, str, bool, object]],
    suffix: str,
    lookback_days: float,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    touches: list[Touch] = [
        (person, minute / (24 * 60), channel, converts, float(str(value)))
        for person, minute, channel, converts, value in rows
    ]
    # A file without conversions has its own test below.
    assume(any(touch[3] for touch in touches))
    note(f"touches={touches!r} suffix={suffix} lookback_days={lookback_days}")
    path = write_touches(touches, tmp_path_factory.mktemp("touches"), suffix)
    assert_same_as_store(path, lookback_days)
