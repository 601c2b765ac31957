"""A fast path for clean touchpoint files: Arrow compute kernels instead of pandas.

:func:`read_touchpoint_arrow` handles the common shape of large exports (person, timestamp,
channel or UTM fields, click id columns, referrer, conversion flag, value) in Arrow's compiled
kernels. It returns None whenever a file needs anything it does not do exactly as
:func:`journeymap.sources.touchpoints.read_touchpoint_frame` does (landing URLs to parse,
timestamps given as text, an empty or invalid cell), and the caller then runs the pandas
reader, which gives the same result or the error that names the row and column. A test
compares the two readers on the same files.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeymap.common.numbers import MAX_AMOUNT
from journeymap.sources.columns import ColumnResolver, normalise_name

TRUE_WORDS = ["1", "true", "t", "yes", "y", "1.0"]
FALSE_WORDS = ["0", "false", "f", "no", "n", "0.0", ""]


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trim text and turn empty strings into nulls; other types are cast to text first."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        if not (pa.types.is_integer(column.type) or pa.types.is_dictionary(column.type)):
            raise _UnsupportedError
        column = pc.cast(column, pa.string())
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


class _UnsupportedError(Exception):
    """The file needs the pandas reader."""


def _timestamps(column: pa.ChunkedArray, timezone: str) -> pa.ChunkedArray:
    kind = column.type
    if not pa.types.is_timestamp(kind):
        raise _UnsupportedError
    if kind.tz is None:
        column = pc.assume_timezone(column, timezone, ambiguous="raise", nonexistent="raise")
    return pc.cast(column, pa.timestamp("us", tz="UTC"))


def _value(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise _UnsupportedError
    values = pc.cast(column, pa.float64())
    values = pc.fill_null(values, 0.0)
    if not pc.all(pc.is_finite(values)).as_py() or pc.any(pc.less(values, 0.0)).as_py():
        raise _UnsupportedError
    if pc.any(pc.greater(values, MAX_AMOUNT)).as_py():
        raise _UnsupportedError
    return values


def _flags(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_boolean(column.type):
        return pc.fill_null(column, False)
    if pa.types.is_integer(column.type):
        filled = pc.fill_null(column, 0)
        if not pc.all(pc.is_in(filled, pa.array([0, 1], type=column.type))).as_py():
            raise _UnsupportedError
        return pc.equal(filled, 1)
    words = pc.fill_null(pc.utf8_lower(_text(column)), "")
    if not pc.all(pc.is_in(words, pa.array(TRUE_WORDS + FALSE_WORDS))).as_py():
        raise _UnsupportedError
    return pc.is_in(words, pa.array(TRUE_WORDS))


def _host(column: pa.ChunkedArray) -> pa.ChunkedArray:
    found = pc.extract_regex(column, r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?(?P<host>[^/?#:]+)")
    hosts = pc.if_else(
        pc.is_valid(found), pc.struct_field(found, [0]), pa.scalar(None, pa.string())
    )
    hosts = pc.replace_substring_regex(pc.utf8_lower(hosts), r"^www\.", "")
    return pc.if_else(pc.equal(hosts, ""), pa.scalar(None, pa.string()), hosts)


def read_touchpoint_arrow(
    table: pa.Table,
    *,
    file: str,
    aliases: Mapping[str, list[str]],
    click_ids: list[tuple[str, str]],
    touch_columns: tuple[str, ...],
    mapping: Mapping[str, str] | None = None,
    timezone: str = "UTC",
    default_kind: str = "conversion",
) -> tuple[pa.Table, pa.Table] | None:
    """Return touch and conversion tables like the pandas reader's, or None to defer to it."""
    try:
        return _read(
            table, file, aliases, click_ids, touch_columns, mapping, timezone, default_kind
        )
    except (_UnsupportedError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _read(
    table: pa.Table,
    file: str,
    aliases: Mapping[str, list[str]],
    click_ids: list[tuple[str, str]],
    touch_columns: tuple[str, ...],
    mapping: Mapping[str, str] | None,
    timezone: str,
    default_kind: str,
) -> tuple[pa.Table, pa.Table]:
    if len(set(table.column_names)) < len(table.column_names):
        # Arrow keeps a repeated header name twice, so the pandas reader's check names it.
        raise _UnsupportedError
    columns = ColumnResolver(
        file=file, columns=table.column_names, aliases=aliases, mapping=mapping
    )
    person_column = columns.get("person_id")
    time_column = columns.get("occurred_at")
    if person_column is None or time_column is None or columns.get("url") is not None:
        raise _UnsupportedError
    if "path" in {normalise_name(name) for name in table.column_names} and person_column is None:
        raise _UnsupportedError
    rows = table.num_rows
    nothing = pa.chunked_array([pa.nulls(rows, pa.string())])

    def text(field: str) -> pa.ChunkedArray:
        name = columns.get(field)
        return _text(table[name]) if name else nothing

    person = text("person_id")
    if person.null_count:
        raise _UnsupportedError
    occurred_at = _timestamps(table[time_column], timezone)
    if occurred_at.null_count:
        raise _UnsupportedError
    value_column = columns.get("value")
    value = (
        _value(table[value_column]) if value_column else pa.chunked_array([pa.repeat(0.0, rows)])
    )
    conversion_column = columns.get("conversion")
    is_conversion = (
        _flags(table[conversion_column]) if conversion_column else pc.greater(value, 0.0)
    )

    fields: dict[str, pa.ChunkedArray] = {
        "row": pa.chunked_array([pa.array(np.arange(rows, dtype=np.int64))]),
        "person_id": person,
        "account_id": text("account_id"),
        "occurred_at": occurred_at,
        "touchpoint_id": text("touchpoint_id"),
        "channel": text("channel"),
        "touch_type": text("touch_type"),
        "ad_id": text("ad_id"),
        "source": text("source"),
        "medium": text("medium"),
        "campaign": text("campaign"),
        "content": text("content"),
        "term": text("term"),
    }
    referrer = columns.get("referrer")
    fields["referrer_host"] = _host(text("referrer")) if referrer else nothing
    click_id, click_platform = nothing, nothing
    for parameter, platform in click_ids:
        if columns.get(parameter) is None:
            continue
        found = text(parameter)
        take = pc.and_(pc.is_null(click_id), pc.is_valid(found))
        click_id = pc.if_else(take, found, click_id)
        click_platform = pc.if_else(take, pa.scalar(platform), click_platform)
    fields["click_id"] = click_id
    fields["click_platform"] = click_platform

    has_touch = pa.chunked_array([pa.repeat(False, rows)])
    for name in touch_columns:
        has_touch = pc.or_(has_touch, pc.is_valid(fields[name]))
    keep_touch = pc.or_(has_touch, pc.invert(is_conversion))
    touches = pa.table(fields)
    # Most files flag conversions on touch rows, so every row is a touch and the filter,
    # which copies every column, is skipped.
    if not pc.all(keep_touch).as_py():
        touches = touches.filter(keep_touch)

    kind = pc.utf8_lower(pc.fill_null(text("kind"), default_kind))
    conversions = pa.table(
        {
            "row": fields["row"],
            "person_id": person,
            "account_id": fields["account_id"],
            "occurred_at": occurred_at,
            "conversion_id": text("conversion_id"),
            "kind": kind,
            "value": value,
            "currency": text("currency"),
            "deal_id": text("deal_id"),
        }
    ).filter(is_conversion)
    return touches, conversions
