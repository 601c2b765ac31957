"""Writing a demo world to CSV or Parquet files, byte for byte the same for the same world.

CSV files are UTF-8 with a header line and no quoting, because no generated value contains a
comma, quote or line break (pyarrow raises ``ArrowInvalid`` if one does). Timestamps are
ISO 8601 UTC text such as ``2026-01-05T14:30:00Z``, dates are ``YYYY-MM-DD`` and empty cells
are missing values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from journeymap.demo.world import World

CSV_BATCH_ROWS = 500_000
"""Rows converted to text at a time, which bounds the memory that writing a CSV file takes."""


def _text_columns(table: pa.Table) -> pa.Table:
    """Turn timestamps into ISO 8601 UTC text and dictionary columns into plain text."""
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            # Casting to a zone-less type keeps the UTC wall time, so no time zone database is read.
            column = pc.strftime(column.cast(pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as a CSV file in batches of :data:`CSV_BATCH_ROWS` rows."""
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as handle:
        handle.write((",".join(map(str, frame.columns)) + "\n").encode("utf-8"))
        for first in range(0, len(frame), CSV_BATCH_ROWS):
            batch = pa.Table.from_pandas(
                frame.iloc[first : first + CSV_BATCH_ROWS], preserve_index=False
            )
            pa_csv.write_csv(_text_columns(batch), handle, options)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as a Parquet file, whose timestamps keep their UTC time zone."""
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def write_world(
    world: World, folder: Path, *, format: Literal["csv", "parquet"] = "csv"
) -> dict[str, Path]:
    """Write the world's four tables and ``truth.json`` into ``folder``, creating it if needed.

    Returns the path of each file by name: ``touchpoints``, ``ad_spend``, ``accounts``,
    ``people``, ``contacts`` (when the world has them) and ``truth``.

    Raises:
        ValueError: ``format`` is neither ``csv`` nor ``parquet``.
    """
    if format not in ("csv", "parquet"):
        raise ValueError(f"invalid file format {format!r}: use 'csv' or 'parquet'")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "touchpoints": world.touchpoints,
        "ad_spend": world.spend,
        "accounts": world.accounts,
        "people": world.people,
    }
    if world.contacts is not None:
        tables["contacts"] = world.contacts
    paths: dict[str, Path] = {}
    for name, frame in tables.items():
        path = folder / f"{name}.{format}"
        if format == "csv":
            write_csv(frame, path)
        else:
            write_parquet(frame, path)
        paths[name] = path
    truth_path = folder / "truth.json"
    truth_path.write_text(json.dumps(world.truth, indent=2) + "\n", encoding="utf-8")
    paths["truth"] = truth_path
    return paths
