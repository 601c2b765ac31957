"""Import journeys already aggregated by path, in the ChannelAttribution layout.

Input columns: ``path`` (channels joined by a path separator, ``>`` by default),
``total_conversions``, ``total_conversion_value`` (optional) and ``total_null`` (optional:
journeys with this path that did not convert). Spaces around channel names are ignored, so
``a > b`` and ``a>b`` are the same path. An empty path is a conversion with no touch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.readers import read_input
from journeymap.sources.values import numbers, text
from journeymap.store.store import Store

PATH_ALIASES: dict[str, list[str]] = {
    "path": ["path", "paths", "channel_path", "journey", "touchpoints"],
    "conversions": ["total_conversions", "conversions", "total_conversion", "conv", "converters"],
    "value": ["total_conversion_value", "conversion_value", "value", "revenue", "total_value"],
    "nulls": ["total_null", "total_nulls", "null", "nulls", "non_conversions", "non_converters"],
}
DEFAULT_PATH_SEPARATOR = ">"


def read_paths_frame(
    frame: pd.DataFrame,
    *,
    file: str,
    mapping: Mapping[str, str] | None = None,
    path_separator: str = DEFAULT_PATH_SEPARATOR,
) -> pd.DataFrame:
    """Turn path rows into ``path_aggregates`` rows (without ``import_id``).

    Raises:
        InputError: a column is missing, a count or value is negative or not a number, or
            the path separator does not occur in any path while the paths hold another one.
    """
    columns = ColumnResolver(
        file=file, columns=list(frame.columns), aliases=PATH_ALIASES, mapping=mapping
    )
    path_column = columns.require("path", why="the channel sequence of each row")
    conversions_column = columns.require(
        "conversions", why="how many journeys with the path converted"
    )
    if not path_separator.strip():
        raise InputError(
            "the path separator is blank",
            file=file,
            hint="Pass a visible separator such as --path-sep '>'",
        )
    paths = text(frame[path_column]).fillna("")
    _check_separator(paths, path_separator, file=file, column=path_column)

    conversions = numbers(
        frame[conversions_column], file=file, column=conversions_column, what="conversion count"
    )
    value_column = columns.get("value")
    value = (
        numbers(frame[value_column], file=file, column=value_column)
        if value_column
        else pd.Series(0.0, index=frame.index)
    )
    nulls_column = columns.get("nulls")
    nulls = (
        numbers(frame[nulls_column], file=file, column=nulls_column, what="null count")
        if nulls_column
        else pd.Series(0.0, index=frame.index)
    )
    has_value_without_conversion = (value > 0) & (conversions == 0)
    if has_value_without_conversion.any():
        row = int(np.flatnonzero(has_value_without_conversion.to_numpy())[0])
        raise InputError(
            "the row has conversion value but no conversions",
            file=file,
            row=row + 1,
            column=value_column,
            hint="Value belongs to converting journeys; set the conversion count or the value to 0",
        )
    return pd.DataFrame(
        {
            "path_id": np.arange(1, len(frame) + 1, dtype="int64"),
            "path": paths.astype(str),
            "separator": path_separator.strip(),
            "conversions": conversions,
            "value": value,
            "nulls": nulls,
        }
    )


def _check_separator(paths: pd.Series, separator: str, *, file: str, column: str) -> None:
    """Reject a separator that no multi-channel path uses while another one is everywhere."""
    sample = paths[paths != ""].head(1000)
    if sample.empty or sample.str.contains(separator.strip(), regex=False).any():
        return
    for candidate in (">", "|", ",", ";", "/", "→", "-"):
        if (
            candidate != separator.strip()
            and sample.str.contains(candidate, regex=False).mean() > 0.2
        ):
            row = int(np.flatnonzero(sample.str.contains(candidate, regex=False).to_numpy())[0])
            raise InputError(
                f"no path contains the path separator {separator!r}, but paths such as "
                f"{sample.iloc[row]!r} contain {candidate!r}",
                file=file,
                row=row + 1,
                column=column,
                hint=f"Pass --path-sep {candidate!r}",
            )


def import_paths(
    store: Store,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    path_separator: str = DEFAULT_PATH_SEPARATOR,
) -> ImportResult:
    """Import an aggregated paths file into ``path_aggregates`` in one transaction."""
    source = read_input(path, separator=separator)
    import_id = check_not_imported(store, kind="paths", sha256=source.sha256, file=source.path)
    rows = read_paths_frame(
        source.frame, file=source.path, mapping=mapping, path_separator=path_separator
    )
    return write_import(
        store,
        import_id=import_id,
        kind="paths",
        file=source.path,
        sha256=source.sha256,
        seq_start=store.next_seq(),
        tables={"path_aggregates": rows},
    )
