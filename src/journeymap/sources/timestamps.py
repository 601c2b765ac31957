"""Date cells of CRM files: ISO 8601 text, or epoch milliseconds as HubSpot's API writes them.

Every failure names the file, row and column of the first bad cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.spend import ISO_DATE
from journeymap.sources.values import text

EPOCH_MILLISECONDS = r"\d{11,13}"
"""A date written as Unix milliseconds: 11 to 13 digits, from April 1970 to 2286."""
ONE_DIGIT_HOUR = r"^(\d{4}-\d{2}-\d{2}[T ])(\d:)"
"""A date-time whose hour has no leading zero (``2021-01-07 6:49:18``)."""


def parse_timestamps(values: pd.Series, *, file: str, column: str) -> pd.Series:
    """Parse ISO 8601 dates or date-times into UTC timestamps. Empty cells become NaT.

    A value without an offset is read as UTC, and a date alone as midnight UTC. Forms such
    as ``03/01/2024`` are rejected, because the order of day and month differs between
    exports.

    Raises:
        InputError: a cell is not in ISO 8601 form or is not a valid date.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        utc: pd.Series = (
            values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        )
        return utc

    cells = text(values.astype("string"))
    is_iso = cells.str.fullmatch(ISO_DATE).fillna(False).astype(bool)
    parsed = pd.to_datetime(
        cells.where(is_iso).astype("object"), format="ISO8601", utc=True, errors="coerce"
    )
    bad = cells.notna() & parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"date {values.iloc[row]!r} is not a date in ISO 8601 form",
            file=file,
            row=row + 1,
            column=column,
            value=values.iloc[row],
            hint="Write dates as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, for example 2024-03-01",
        )
    return parsed


def parse_crm_timestamps(frame: pd.DataFrame, column: str | None, *, file: str) -> pd.Series:
    """Parse a date column of ISO 8601 text or epoch milliseconds into UTC timestamps.

    A missing column (None) gives NaT for every row. Besides :func:`parse_timestamps`'s
    forms, an hour without its leading zero (``2021-01-07 6:49:18``) is read, because
    warehouse tables saved through a spreadsheet, such as Fivetran's sample tables, are
    written that way.

    Raises:
        InputError: a cell is neither ISO 8601 nor epoch milliseconds.
    """
    if column is None:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        return parse_timestamps(values, file=file, column=column)
    cells = text(values.astype("string"))
    is_epoch = cells.str.fullmatch(EPOCH_MILLISECONDS).fillna(False).astype(bool)
    padded = cells.str.replace(ONE_DIGIT_HOUR, r"\g<1>0\g<2>", regex=True)
    try:
        parsed = parse_timestamps(padded.where(~is_epoch), file=file, column=column)
    except InputError as exc:
        # Report the cell as written, not as padded.
        row = (exc.row or 1) - 1
        raise InputError(
            f"date {values.iloc[row]!r} is not a date in ISO 8601 form or epoch milliseconds",
            file=file,
            row=exc.row,
            column=column,
            value=values.iloc[row],
            hint="Write dates as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS, for example 2024-03-01",
        ) from exc
    if is_epoch.any():
        milliseconds = pd.to_numeric(cells.where(is_epoch), errors="coerce")
        epoch = pd.to_datetime(milliseconds, unit="ms", utc=True)
        parsed = parsed.where(~is_epoch, epoch)
    return parsed.astype("datetime64[ns, UTC]")
