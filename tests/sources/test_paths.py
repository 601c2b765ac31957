"""The aggregated paths importer."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeymap.common.errors import InputError
from journeymap.sources.paths import import_paths
from journeymap.store.store import Store


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paths.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_channelattribution_file_imports(store: Store, shared_data: Path) -> None:
    result = import_paths(store, shared_data / "channelattribution-paths" / "Data.csv")
    assert result.rows == {"path_aggregates": 10_000}


def test_separators_are_options(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "path|total_conversions|total_null\na,b,a|2|1\n")
    import_paths(store, path, separator="|", path_separator=",")
    row = store.table("path_aggregates").to_pandas().iloc[0]
    assert row.path == "a,b,a"
    assert row.separator == ","
    assert (row.conversions, row.value, row.nulls) == (2.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("text", "row", "column", "message"),
    [
        ("path;total_conversions\na > b;-1\n", 1, "total_conversions", "negative"),
        ("path;total_conversions\na > b;two\n", 1, "total_conversions", "not a number"),
        (
            "path;total_conversions;total_conversion_value\na > b;1;x\n",
            1,
            "total_conversion_value",
            "not a number",
        ),
        ("path;total_conversions;total_null\na > b;1;-3\n", 1, "total_null", "negative"),
        ("route;total_conversions\na > b;1\n", None, "path", "missing column for path"),
        (
            "path;total_conversions;total_conversion_value\na;0;5\n",
            1,
            "total_conversion_value",
            "value but no conversions",
        ),
    ],
    ids=[
        "negative-count",
        "text-count",
        "text-value",
        "negative-null",
        "no-path-column",
        "value-without-conversion",
    ],
)
def test_bad_paths_name_row_and_column(
    store: Store, tmp_path: Path, text: str, row: int | None, column: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as caught:
        import_paths(store, path)
    assert caught.value.row == row
    assert caught.value.column == column
    assert store.table("path_aggregates").count().execute() == 0
    assert store.table("imports").count().execute() == 0


def test_wrong_path_separator_is_explained(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "path;total_conversions\na > b;1\nb > c;2\n")
    with pytest.raises(InputError, match="Pass --path-sep '>'"):
        import_paths(store, path, path_separator="|")


def test_wrong_field_separator_is_explained(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "path;total_conversions\na > b;1\n")
    with pytest.raises(InputError, match="pass --sep ';'"):
        import_paths(store, path, separator=",")
