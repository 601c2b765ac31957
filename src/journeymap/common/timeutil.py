"""Timestamps: every input time goes through here on its way to UTC.

Journeys depend on the order of touches, so one module decides how text and numbers become
instants: ISO 8601 text with an offset is converted to UTC; text without an offset is read in
the configured time zone; numbers are Unix epoch seconds, or milliseconds when above 1e11.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError

EPOCH_MS_THRESHOLD = 1e11
"""Epoch numbers above this are milliseconds: 1e11 seconds lies in the year 5138."""

TIMESTAMP_HINT = (
    "Use ISO 8601 such as 2024-03-01T14:30:00Z or 2024-03-01 14:30, or Unix epoch seconds; "
    "dates such as 03/01/2024 are rejected because their order depends on the locale"
)


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(tz=UTC)


def parse_timestamps(
    values: pd.Series,
    *,
    file: str,
    column: str,
    timezone: str = "UTC",
    required: bool = True,
) -> pd.Series:
    """Parse a column of timestamps into a UTC ``datetime64[us, UTC]`` series.

    Empty cells become NaT when ``required`` is False.

    Raises:
        InputError: a cell cannot be parsed, or is empty while ``required``; the error names
            the first such row (1 is the first row under the header).
    """
    index = values.index
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values if values.dt.tz is not None else values.dt.tz_localize(timezone)
        result = parsed.dt.tz_convert("UTC")
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        result = _from_epoch(values.astype("float64"))
    else:
        result = _from_text(values.astype("string[pyarrow]"), timezone)
    result = pd.Series(result, index=index).astype("datetime64[us, UTC]")

    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values):
        present = values.notna()
    else:
        present = values.notna() & (values.astype("string[pyarrow]").str.strip() != "")
    bad = present & result.isna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"cannot parse {values.iloc[position]!r} as a timestamp",
            file=file,
            row=position + 1,
            column=column,
            value=values.iloc[position],
            hint=TIMESTAMP_HINT,
        )
    if required and (~present).any():
        position = int(np.flatnonzero((~present).to_numpy())[0])
        raise InputError(
            "timestamp is empty",
            file=file,
            row=position + 1,
            column=column,
            hint="Every row needs a timestamp; fill it in or remove the row",
        )
    return result


def _from_epoch(numbers: pd.Series) -> pd.Series:
    is_ms = numbers.abs() >= EPOCH_MS_THRESHOLD
    result = pd.to_datetime(numbers.where(~is_ms), unit="s", utc=True, errors="coerce")
    if is_ms.any():
        result[is_ms] = pd.to_datetime(numbers[is_ms], unit="ms", utc=True, errors="coerce")
    return result


def _from_text(text: pd.Series, timezone: str) -> pd.Series:
    text = text.str.strip()
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    is_epoch = text.str.fullmatch(r"\d+(?:\.\d+)?", na=False)
    if is_epoch.any():
        result[is_epoch] = _from_epoch(text[is_epoch].astype("float64"))
    has_offset = ~is_epoch & text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
        result[has_offset] = aware
    # Only ISO 8601 is read: a date such as 03/01/2024 means March or January by locale.
    naive_mask = ~is_epoch & ~has_offset & text.notna()
    if naive_mask.any():
        naive = pd.to_datetime(text[naive_mask], format="ISO8601", errors="coerce")
        localized = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
        result[naive_mask] = localized.dt.tz_convert("UTC")
    return result
