"""Cell conversions shared by importers; each failure names the file, row and column."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.common.numbers import MAX_AMOUNT

TRUE_WORDS = {"1", "true", "t", "yes", "y", "1.0"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "0.0", ""}


STRING: Final = "string[pyarrow]"
"""Pandas dtype of text columns: Arrow-backed strings."""


def _first_row(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _cell(values: pd.Series, row: int) -> object:
    """Return the cell at ``row`` as a plain Python value, so that messages show ``-1.0``."""
    value = values.iloc[row]
    return value.item() if isinstance(value, np.generic) else value


def _bad_cell(
    values: pd.Series, row: int, what: str, problem: str, *, file: str, column: str, hint: str
) -> InputError:
    """Return the error ``<what> <cell> <problem>`` for the cell at 0-based ``row``."""
    cell = _cell(values, row)
    return InputError(
        f"{what} {cell!r} {problem}", file=file, row=row + 1, column=column, value=cell, hint=hint
    )


def unique_ids(
    values: pd.Series,
    *,
    file: str,
    column: str,
    what: str = "id",
    kept: pd.Series | None = None,
) -> pd.Series:
    """Return the trimmed ids of a key column, which must be present and unique.

    ``kept`` (a boolean mask aligned with ``values``) limits both checks to the rows that
    the import keeps, so that deleted rows and replaced history versions may repeat an id
    or lack one. The ids of every row are returned.

    Raises:
        InputError: naming the row of the first missing id, or of the first repeated one and
            the row it repeats.
    """
    ids = required_text(values, kept, file=file, column=column, what=what)
    checked = pd.Series(True, index=ids.index) if kept is None else kept.astype(bool)

    duplicate = checked & ids.where(checked).duplicated() & ids.notna()
    if duplicate.any():
        row = _first_row(duplicate)
        first = _first_row(checked & (ids == ids.iloc[row]).fillna(False))
        raise InputError(
            f"{what} {ids.iloc[row]!r} is a duplicate of row {first + 1}",
            file=file,
            row=row + 1,
            column=column,
            value=ids.iloc[row],
            hint="Each row must have its own id; remove the repeated row",
        )
    return ids


def required_text(
    values: pd.Series,
    kept: pd.Series | None = None,
    *,
    file: str,
    column: str,
    what: str,
    hint: str | None = None,
) -> pd.Series:
    """Return the cells as text, after checking that every row of ``kept`` has one.

    ``kept`` is a boolean mask aligned with ``values`` (None checks every row).

    Raises:
        InputError: naming the first kept row whose cell is empty.
    """
    cells = text(values)
    checked = pd.Series(True, index=cells.index) if kept is None else kept.astype(bool)
    missing = checked & cells.isna()
    if missing.any():
        raise InputError(
            f"{what} is missing",
            file=file,
            row=_first_row(missing) + 1,
            column=column,
            hint=hint or f"Fill in the {what} of every row",
        )
    return cells


def text(values: pd.Series) -> pd.Series:
    """Return cells as trimmed strings, with empty cells as missing values.

    The strings are Arrow-backed, so that string operations on millions of rows run in
    Arrow's compiled kernels rather than in Python.
    """
    result = values.astype(STRING).str.strip()
    return result.mask(result == "")


def numbers(
    values: pd.Series,
    *,
    file: str,
    column: str,
    allow_negative: bool = False,
    default: float | None = 0.0,
    what: str = "value",
) -> pd.Series:
    """Parse a column of amounts or counts into float64.

    Accepts plain numbers with ``.`` as the decimal mark. Thousands separators are rejected
    because ``1,234`` means different amounts in different locales. Empty cells become
    ``default``.

    Raises:
        InputError: a cell is not a number, or is negative while ``allow_negative`` is False.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        parsed = values.astype("float64")
        present = values.notna()
    else:
        cleaned = text(values)
        present = cleaned.notna()
        parsed = pd.to_numeric(cleaned, errors="coerce").astype("float64")
        bad = present & parsed.isna()
        if bad.any():
            row = _first_row(bad)
            raise _bad_cell(
                values,
                row,
                what,
                "is not a number",
                file=file,
                column=column,
                hint="Write numbers with a dot as the decimal mark and no thousands separator",
            )
    infinite = present & ~np.isfinite(parsed.fillna(0.0))
    if infinite.any():
        row = _first_row(infinite)
        raise _bad_cell(
            values,
            row,
            what,
            "is not finite",
            file=file,
            column=column,
            hint="Write a number, or leave the cell empty",
        )
    huge = present & (parsed.abs() > MAX_AMOUNT)
    if huge.any():
        row = _first_row(huge)
        raise _bad_cell(
            values,
            row,
            what,
            f"is above {MAX_AMOUNT:,.0f}",
            file=file,
            column=column,
            hint="Check the unit of the column (micros or cents?) and fix the row",
        )
    if not allow_negative:
        negative = present & (parsed < 0)
        if negative.any():
            row = _first_row(negative)
            raise _bad_cell(
                values,
                row,
                what,
                "is negative",
                file=file,
                column=column,
                hint=f"The {what} must be zero or more; fix the row or drop it",
            )
    if default is not None:
        parsed = parsed.fillna(default)
    return parsed


def flags(values: pd.Series, *, file: str, column: str) -> pd.Series:
    """Parse a conversion flag column: 1/0, true/false, yes/no; empty is false.

    Raises:
        InputError: a cell is none of those words.
    """
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).astype(bool)
    words = values.astype(STRING).str.strip().str.lower().fillna("")
    is_true = words.isin(TRUE_WORDS)
    bad = ~is_true & ~words.isin(FALSE_WORDS)
    if bad.any():
        row = _first_row(bad)
        raise _bad_cell(
            values,
            row,
            "conversion flag",
            "is not 1/0, true/false or yes/no",
            file=file,
            column=column,
            hint="Mark converting rows with 1 and other rows with 0 or an empty cell",
        )
    return is_true.astype(bool)


def true_false(frame: pd.DataFrame, column: str | None, *, file: str, default: bool) -> pd.Series:
    """Parse a true/false column; an empty cell, or a missing column (None), is ``default``.

    Raises:
        InputError: a cell is neither true nor false (1/0, t/f, yes/no are accepted).
    """
    if column is None:
        return pd.Series(default, index=frame.index, dtype=bool)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(default).astype(bool)
    words = text(values.astype("string")).str.lower()
    is_true = words.isin(TRUE_WORDS).fillna(False).astype(bool)
    bad = (words.notna() & ~is_true & ~words.isin(FALSE_WORDS)).fillna(False).astype(bool)
    if bad.any():
        row = _first_row(bad)
        raise _bad_cell(
            values,
            row,
            "flag",
            "is neither true nor false",
            file=file,
            column=column,
            hint="Write true or false (or 1 and 0) in this column",
        )
    return is_true | (words.isna() & default)


def known_flags(frame: pd.DataFrame, column: str | None, *, file: str) -> pd.Series:
    """Parse a true/false column into nullable booleans, missing where the cell is empty.

    A missing column (None) gives missing values for every row.

    Raises:
        InputError: a cell is neither true nor false.
    """
    if column is None:
        return pd.Series(pd.NA, index=frame.index, dtype="boolean")
    parsed = true_false(frame, column, file=file, default=False).astype("boolean")
    return parsed.mask(text(frame[column].astype("string")).isna())


def live_rows(
    frame: pd.DataFrame,
    *,
    file: str,
    active: str | None = None,
    deleted: tuple[str | None, ...] = (),
) -> pd.Series:
    """Return the mask of the rows that are current records, as warehouse syncs mark them.

    A row is False when its ``active`` column (Fivetran's ``_fivetran_active``) is false,
    because a newer version of the record replaced it, or when any of the ``deleted``
    columns (``_fivetran_deleted``, ``is_deleted``) is true. Empty cells keep the row, and
    None stands for a column the file lacks.

    Raises:
        InputError: a flag cell is neither true nor false.
    """
    kept = true_false(frame, active, file=file, default=True)
    for column in deleted:
        kept &= ~true_false(frame, column, file=file, default=False)
    return kept
