"""Journeys straight from a table of touches that already carry their channel, without a store.

Input: one row per touch with a person id, a timestamp, a channel and a conversion flag, and
optionally the conversion's value: the layout that dbt models and the peers' examples use
(``user_id, timestamp, channel, conversion, value``). It can be a Parquet or CSV file or a
table on any Ibis engine. Nothing is imported or classified: the channel column is taken as
it is, and every row must have one.

The journeys follow the rules of :mod:`journeymap.journeys.build` for touches that carry
their conversion:

* A person's touches are ordered by timestamp, then by their row in the file (for a table
  that is not a file: touches without a conversion first, then by channel).
* A touch flagged as a conversion ends a journey and belongs to it. Its journey contains the
  touches after the person's previous conversion, no older than the lookback window.
* Touches after the last conversion form one non-converting journey, cut to the lookback
  window before its last touch.
* Every conversion is of the kind ``conversion``; its value counts only on the converting
  touch (a missing value is 0).

The cut takes two window passes in the engine, and the result is cached there, so that every
model reads it without cutting again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow.parquet as pq

from journeymap.common.epoch import epoch_seconds
from journeymap.common.errors import InputError
from journeymap.common.numbers import MAX_AMOUNT
from journeymap.common.whitespace import blank, padded, trimmed
from journeymap.journeys.build import SECONDS_PER_DAY, Journeys, PathSource, as_schema
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.readers import check_unique_names, csv_header, not_utf8
from journeymap.sources.touchpoints import TOUCHPOINT_ALIASES
from journeymap.sources.values import FALSE_WORDS, TRUE_WORDS
from journeymap.store.schema import NOT_SET, TS

FIELDS = ("person_id", "occurred_at", "channel", "conversion", "value")
"""The fields of a touch table; ``value`` may be absent."""
KIND = "conversion"
ROW = "_row"
REMEDY = (
    "Name the column with --map FIELD=COLUMN, or import the file into a store, which also "
    "classifies channels from UTM fields and click ids"
)


@dataclass(frozen=True)
class TouchTable:
    """A touch table with its columns resolved.

    ``rows`` has ``entity_id`` (text), ``occurred_at``, ``channel``, ``conv`` (0 or 1),
    ``value`` (float), ``_bad_flag`` and ``_bad_value`` (text cells that do not parse) and
    ``_row`` (the 0-based row in the file, or an order among equal timestamps).
    ``columns`` names the input column of each field, for error messages, and
    ``has_row_numbers`` is whether ``_row`` is a row of the input.
    """

    rows: ibis.Table
    source: str
    columns: dict[str, str]
    has_row_numbers: bool = True


def read_touch_table(
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    con: ibis.BaseBackend | None = None,
    separator: str | None = None,
) -> TouchTable:
    """Open a Parquet or CSV touch file in DuckDB (a new in-memory connection by default).

    A CSV file's person id and channel are read as text, so that ids such as GA client ids
    keep every digit, and its value and flag columns as text parsed like the importer does.
    ``separator`` is the CSV delimiter, sniffed when not given. A ``.gz`` file is read as
    the file type before that suffix, and a file without a suffix as CSV.

    Raises:
        InputError: the file is missing, is neither Parquet nor CSV, or lacks a column.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", file=str(file), hint="Check the path")
    if file.stat().st_size == 0:
        raise InputError("file is empty", file=str(file), hint="Export the rows with a header")
    if con is None:
        con = ibis.duckdb.connect()
        # Background threads hand memory that sorts and group-bys free back to the system,
        # which keeps the process's peak near what the cached cut needs.
        con.raw_sql("SET allocator_background_threads = true")
    suffix = file.suffix.lower()
    if suffix == ".gz":
        suffix = Path(file.stem).suffix.lower() or ".csv"
    if suffix in {".parquet", ".pq"}:
        check_unique_names([str(name).strip() for name in pq.read_schema(file).names], str(file))
        table = con.read_parquet(file, file_row_number=True)
        return touch_table(table, source=str(file), mapping=mapping, row_column="file_row_number")
    if suffix in {".csv", ".tsv", ".txt", ""}:
        check_unique_names(csv_header(file, separator), str(file))
        options = {"delim": separator} if separator else {}
        try:
            sniffed = con.read_csv(file, **options)
            columns = resolve_columns(sniffed.columns, str(file), mapping)
            text = {columns[field]: "string" for field in TEXT_FIELDS if field in columns}
            table = con.read_csv(file, types=text, **options)
        except duckdb.Error as exc:
            raise _unreadable(str(file), exc) from exc
        # DuckDB reads a CSV file in order, so numbering the rows as read follows the file.
        table = table.mutate(**{ROW: ibis.row_number()})
        return touch_table(table, source=str(file), mapping=mapping, row_column=ROW)
    raise InputError(
        f"unsupported file type {file.suffix or '(none)'!r}",
        file=str(file),
        hint="Give a .parquet or .csv file",
    )


TEXT_FIELDS = ("person_id", "channel", "conversion", "value")
"""Fields that a CSV file's reader keeps as text, for the checks to parse."""


def resolve_columns(
    names: Sequence[str], source: str, mapping: dict[str, str] | None = None
) -> dict[str, str]:
    """Return the input column of each field (``value`` only when the table has one).

    Raises:
        InputError: a required field has no column.
    """
    aliases = {field: TOUCHPOINT_ALIASES[field] for field in FIELDS}
    resolver = ColumnResolver(
        file=source, columns=list(names), aliases=aliases, mapping=mapping, remedy=REMEDY
    )
    columns = {field: resolver.require(field) for field in FIELDS if field != "value"}
    if resolver.get("value") is not None:
        columns["value"] = str(resolver.get("value"))
    return columns


def touch_table(
    table: ibis.Table,
    *,
    source: str = "table",
    mapping: dict[str, str] | None = None,
    row_column: str | None = None,
) -> TouchTable:
    """Resolve the columns of ``table`` and cast them to the touch table's types.

    Naive timestamps are read as UTC. Flags may be booleans, the numbers 1 and 0 or the
    importer's words (1/0, true/false, t/f, yes/no, y/n), and an empty flag is false. Values
    may be numbers or text numbers, and an empty value is 0. ``row_column`` orders touches
    with equal timestamps. Without it, touches without a conversion come first, then
    touches are ordered by channel, and errors name the person instead of a row.

    Raises:
        InputError: a field has no column, or a column has a type that cannot hold it.
    """
    columns = resolve_columns(table.columns, source, mapping)
    occurred, bad_time = _timestamps(table[columns["occurred_at"]], source, columns["occurred_at"])
    conv, bad_flag = _flags(table[columns["conversion"]], source, columns["conversion"])
    value: ir.FloatingValue = ibis.literal(0.0)
    bad_value: ir.BooleanValue = ibis.literal(False)
    if "value" in columns:
        value, bad_value = _numbers(table[columns["value"]], source, columns["value"])

    person = table[columns["person_id"]].cast("string")
    channel = table[columns["channel"]].cast("string")
    order = (
        table[row_column].cast("int64")
        if row_column is not None
        # Ordered by person first, so that ties within a person follow the rule above.
        else ibis.row_number().over(order_by=[person, occurred, conv, channel])
    )
    rows = table.select(
        entity_id=person,
        occurred_at=occurred,
        channel=channel,
        conv=conv,
        value=value,
        _bad_time=bad_time,
        _bad_flag=bad_flag,
        _bad_value=bad_value,
        _value_text=(
            table[columns["value"]].cast("string") if "value" in columns else ibis.literal("")
        ),
        _time_text=table[columns["occurred_at"]].cast("string"),
        _flag_text=table[columns["conversion"]].cast("string"),
        **{ROW: order},
    )
    return TouchTable(
        rows=rows, source=source, columns=columns, has_row_numbers=row_column is not None
    )


def _timestamps(
    column: ir.Column, source: str, name: str
) -> tuple[ir.TimestampValue, ir.BooleanValue]:
    """Return the column as UTC timestamps, and whether the cell is text but no timestamp.

    Dates are midnight UTC; text is parsed by the engine (ISO 8601, with or without an
    offset).
    """
    kind = column.type()
    if kind.is_timestamp():
        return column.cast(TS), ibis.literal(False)
    if kind.is_date():
        return column.cast("timestamp").cast(TS), ibis.literal(False)
    if kind.is_string():
        text = trimmed(column).nullif("")
        parsed = text.try_cast(TS)
        return parsed, text.notnull() & parsed.isnull()
    raise _type_error(source, name, "a timestamp", column)


def _flags(flag: ir.Column, source: str, column: str) -> tuple[ir.IntegerValue, ir.BooleanValue]:
    """Return the flag as 0 or 1, and whether the cell is text that is not a flag."""
    kind = flag.type()
    if kind.is_boolean():
        return flag.cast("int64").fill_null(0), ibis.literal(False)
    if kind.is_numeric():
        # As the importer reads them: 1 and 0 only (NaN and null are empty, so false).
        number = flag.cast("float64")
        if kind.is_floating():
            number = ibis.cases((number.isnan(), ibis.null("float64")), else_=number)
        return (number == 1).cast("int64").fill_null(0), ~number.isin([0.0, 1.0]).fill_null(True)
    if kind.is_string():
        word = trimmed(flag).lower()
        is_true = word.isin(sorted(TRUE_WORDS))
        known = is_true | word.isin(sorted(FALSE_WORDS)) | flag.isnull()
        return is_true.cast("int64").fill_null(0), ~known
    raise _type_error(source, column, "true/false or 0/1", flag)


def _numbers(raw: ir.Column, source: str, column: str) -> tuple[ir.FloatingValue, ir.BooleanValue]:
    """Return the value as a float (empty is 0), and whether the cell is text but no number."""
    kind = raw.type()
    if kind.is_numeric():
        number = raw.cast("float64")
        # NaN is an empty cell, as the importer reads it.
        number = ibis.cases((number.isnan(), 0.0), else_=number)
        return number.fill_null(0.0), ibis.literal(False)
    if kind.is_string():
        text = trimmed(raw).nullif("")
        number = text.try_cast("float64")
        # Text such as "nan" parses to NaN, which is no amount.
        invalid = text.notnull() & (number.isnull() | number.isnan())
        return ibis.cases((invalid, 0.0), else_=number.fill_null(0.0)), invalid
    raise _type_error(source, column, "a number", raw)


def _type_error(source: str, column: str, expected: str, values: ir.Column) -> InputError:
    return InputError(
        f"column {column!r} has type {values.type()}, expected {expected}",
        file=source,
        column=column,
        hint="Cast the column in the file, or import the file into a store, which parses "
        "text timestamps and flags",
    )


@dataclass(frozen=True)
class CheckedTouches:
    """Facts that the check of a touch table collects: its channels and conversions."""

    channels: list[str]
    conversions: int
    padded: bool
    """Whether some person id or channel has spaces around it, which the cut trims."""


def check_touch_table(touches: TouchTable) -> CheckedTouches:
    """Check every row in one pass of the engine.

    Raises:
        InputError: naming the first bad row (1-based) and its column: an empty person id,
            timestamp or channel, a flag that is not a flag, or a value that is not a
            number or is negative. A table without row numbers names the person instead.
    """
    # Trimming every id costs more than looking at its ends, so only padded ones are trimmed.
    # The ends are looked at once per row, in a projection that the checks below share.
    rows = touches.rows.mutate(
        _padded_person=padded(touches.rows.entity_id),
        _padded_channel=padded(touches.rows.channel),
    )
    padded_person, padded_channel = rows._padded_person, rows._padded_channel
    problems: dict[str, tuple[ir.BooleanValue, str]] = {
        "person_id": (
            rows.entity_id.isnull() | blank(rows.entity_id, padded_person),
            "empty person id; every touch needs the person (or visitor) it belongs to",
        ),
        "occurred_at": (
            rows.occurred_at.isnull() | rows._bad_time,
            "empty or invalid timestamp; write ISO 8601, such as 2024-03-01T10:00:00Z",
        ),
        "channel": (
            rows.channel.isnull() | blank(rows.channel, padded_channel),
            "empty channel; a touch table is not classified, so every row needs its channel",
        ),
        "conversion": (
            rows._bad_flag,
            "invalid conversion flag; write 1/0, true/false or yes/no",
        ),
        "value": (
            rows._bad_value | rows.value.isinf() | (rows.value < 0) | (rows.value > MAX_AMOUNT),
            "invalid value",
        ),
    }
    try:
        counts = rows.aggregate(
            _rows=rows.count(),
            _channels=rows.channel.collect(distinct=True),
            _conversions=rows.conv.sum(),
            _padded=(padded_person | padded_channel).cast("int64").sum(),
            **{field: test.cast("int64").sum() for field, (test, _) in problems.items()},
        ).to_pandas()
    except duckdb.Error as exc:
        # The file is read here for the first time, so unreadable bytes surface here.
        raise _unreadable(touches.source, exc) from exc
    if not int(counts["_rows"].iloc[0]):
        raise InputError(
            "the table has a header but no rows", file=touches.source, hint="Export the rows too"
        )
    for field, (test, message) in problems.items():
        if field not in touches.columns or not counts[field].iloc[0]:
            continue
        first = rows.filter(test).order_by([ROW, "entity_id"]).limit(1).to_pandas()
        row: int | None = int(first[ROW].iloc[0]) + 1
        if field == "value":
            message = _value_problem(first.iloc[0])
        cell_column = {
            "value": "_value_text",
            "occurred_at": "_time_text",
            "conversion": "_flag_text",
        }.get(field)
        if cell_column is not None and first[cell_column].iloc[0] is not None:
            message += f" (found {first[cell_column].iloc[0]!r})"
        if not touches.has_row_numbers:
            # Without a row order, point at the person and time instead.
            message += f" (person {first.entity_id.iloc[0]!r} at {first.occurred_at.iloc[0]})"
            row = None
        raise InputError(
            message,
            file=touches.source,
            row=row,
            column=touches.columns[field],
            hint=f"{_rows(int(counts[field].iloc[0]))} this problem; fix or drop the rows",
        )
    found = counts["_channels"].iloc[0]
    # Spellings that differ only by spaces around them are one channel, as the cut trims them.
    channels = sorted({str(channel).strip() for channel in (found if found is not None else [])})
    conversions = counts["_conversions"].iloc[0]
    return CheckedTouches(
        channels=channels,
        conversions=int(conversions) if pd.notna(conversions) else 0,
        padded=bool(counts["_padded"].iloc[0]),
    )


def _unreadable(source: str, exc: duckdb.Error) -> InputError:
    """Return the error for a file that DuckDB cannot read, naming the first non-UTF-8 byte."""
    path = Path(source)
    if "not utf-8" in str(exc).lower() and path.is_file() and path.suffix.lower() != ".gz":
        return not_utf8(path, source)
    return InputError(
        f"cannot read the file: {str(exc).splitlines()[0]}",
        file=source,
        hint="Save it as UTF-8 CSV or Parquet with one header line, and pass --sep when the "
        "separator is not a comma",
    )


def _value_problem(row: pd.Series) -> str:
    """Return what is wrong with the value of a row that failed the value check."""
    if row["_bad_value"]:
        return (
            "value is not a number; write numbers with a dot as the decimal mark and no "
            "thousands separator or currency sign, or leave the cell empty"
        )
    value = float(row["value"])
    if math.isinf(value):
        return "value is not finite; write a number, or leave the cell empty"
    if value < 0:
        return "value is negative; a conversion's value must be zero or more"
    return f"value is above {MAX_AMOUNT:,.0f}; check the unit of the column (micros or cents?)"


def _rows(count: int) -> str:
    return "1 row has" if count == 1 else f"{count:,} rows have"


def journeys_from_touch_table(touches: TouchTable, lookback_days: float | None = 90.0) -> Journeys:
    """Check the rows, cut them into journeys (see the module's rules) and cache the cut.

    ``lookback_days`` None keeps every touch since the previous conversion. The returned
    journeys have the ``journeys`` and ``journey_touches`` columns; touches carry no
    campaign, ad or milestone.

    Raises:
        InputError: a row is invalid (see :func:`check_touch_table`).
    """
    checked = check_touch_table(touches)
    channels = checked.channels
    # The cut sorts every column it carries, so the channel travels as a small number.
    codes = {name: code for code, name in enumerate(channels, start=1)}
    names_by_code = {code: name for name, code in codes.items()}
    source = touches.rows
    if not checked.conversions:
        # As in the store, journeys exist only for the conversion kinds in the data.
        source = source.filter(ibis.literal(False))
    # The importer trims ids and channels, so the cut does too, where the check found spaces.
    person = trimmed(source.entity_id) if checked.padded else source.entity_id
    channel = trimmed(source.channel) if checked.padded else source.channel
    rows = source.select(
        "occurred_at",
        "conv",
        ROW,
        entity_id=person,
        value=source.value * source.conv,
        code=channel.substitute(codes, else_=0).cast("int32") if codes else ibis.literal(0),
        _epoch=epoch_seconds(source.occurred_at),
    )
    order = ["occurred_at", ROW]
    touches_by_row = rows.select(ROW, "entity_id", "occurred_at")

    # Pass one, over each person's touches in order: the journey number, and when the journey
    # ends (the next conversion, else the person's last touch). The person is keyed by
    # their lowest row number, so that pass two partitions by numbers, not by text.
    so_far = ibis.window(group_by="entity_id", order_by=order, rows=(None, 0))
    ahead = ibis.window(group_by="entity_id", order_by=order, rows=(0, None))
    everything = ibis.window(group_by="entity_id")
    conversion_epoch = ibis.cases((rows.conv == 1, rows._epoch), else_=ibis.null("float64"))
    next_conversion = conversion_epoch.min().over(ahead)
    rows = rows.mutate(
        idx=(rows.conv.sum().over(so_far) - rows.conv).cast("int64"),
        _person=rows[ROW].min().over(everything),
        _converts_at=next_conversion,
        _ends_at=ibis.coalesce(next_conversion, rows._epoch.max().over(everything)),
    )
    if lookback_days is not None:
        rows = rows.filter(rows._epoch >= rows._ends_at - lookback_days * SECONDS_PER_DAY)

    # Pass two, over each journey's kept touches: position and length. Only numbers are
    # cached; the person and the time of each touch are looked up by row when the journey
    # tables are read.
    journey = ["_person", "idx"]
    in_order = ibis.window(group_by=journey, order_by=order)
    whole = ibis.window(group_by=journey)
    cut = rows.select(
        "idx",
        ROW,
        "code",
        conv=rows.conv.cast("int8"),
        position=(ibis.row_number().over(in_order) + 1).cast("int32"),
        n_touches=rows.count().over(whole).cast("int32"),
        days_before=(rows._converts_at - rows._epoch) / SECONDS_PER_DAY,
        # The row of the conversion that ends the journey, null for a non-converting one.
        _converting_row=ibis.cases((rows.conv == 1, rows[ROW]), else_=ibis.null("int64"))
        .max()
        .over(whole),
        _journey_value=rows.value.sum().over(whole),
        # The journey's lowest row number: it keys the journey more cheaply than the person's
        # id and the journey number.
        _journey=rows[ROW].min().over(whole),
    ).cache()
    # The converting touch carries its journey's value; every other touch carries none.
    value = ibis.cases((cut.conv == 1, cut._journey_value), else_=0.0)

    found = cut.inner_join(touches_by_row, ROW)
    journey_rows = found.group_by(["entity_id", "idx"]).aggregate(
        conversions=found.conv.max().cast("float64"),
        value=found._journey_value.max(),
        n_touches=found.count(),
        converted_at=ibis.cases((found.conv == 1, found.occurred_at), else_=ibis.null(TS)).max(),
        _converting_row=found._converting_row.max(),
    )
    journeys = journey_rows.select(
        journey_id=_journey_id(journey_rows),
        entity_id=journey_rows.entity_id,
        kind=ibis.literal(KIND),
        conversion_id=_row_id(journey_rows._converting_row),
        converted_at=journey_rows.converted_at.cast(TS),
        conversions=journey_rows.conversions,
        value=journey_rows.value,
        nulls=1.0 - journey_rows.conversions,
        n_touches=journey_rows.n_touches.cast("int64"),
    )
    journey_touches = found.select(
        journey_id=_journey_id(found),
        position=found.position.cast("int64"),
        n_touches=found.n_touches.cast("int64"),
        touchpoint_id=_row_id(found[ROW]),
        occurred_at=found.occurred_at.cast(TS),
        days_before=found.days_before,
        channel=found.code.substitute(names_by_code, else_=""),
        source_medium=ibis.literal(NOT_SET),
        campaign=ibis.literal(NOT_SET),
        ad_id=ibis.literal(NOT_SET),
        repeats=ibis.literal(1, type="int64"),
        is_lead_touch=ibis.literal(False),
        is_opportunity_touch=ibis.literal(False),
        is_won_touch=ibis.literal(False),
    )
    result = Journeys(
        journeys=as_schema(journeys, "journeys"),
        touches=as_schema(journey_touches, "journey_touches"),
    )
    # Paths are counted on the cached cut, keyed by number rather than by text id.
    weighted = cut.select(
        "_journey",
        position=cut.position.cast("int64"),
        kind=ibis.literal(KIND),
        conversions=cut.conv.cast("float64"),
        value=value,
        channel_code=cut.code,
    )
    result.memo["summary_source"] = PathSource(weighted, None, ("_journey",), tuple(channels))
    result.memo["kinds"] = [KIND] if checked.conversions else []
    # Every row has a timestamp, and a touch table has no milestones and no repeats.
    result.memo["timestamps_complete"] = True
    result.memo["no_milestones"] = True
    result.memo["single_repeats"] = True
    # Every conversion is on a touch, so no converting journey is empty.
    # Rule models without a path shortcut sum their credit over these rows, keyed by number.
    converting = cut.filter(cut._converting_row.notnull())
    result.memo["converting_touches"] = converting.select(
        journey_id=converting._converting_row,
        position=converting.position.cast("int64"),
        n_touches=converting.n_touches.cast("int64"),
        days_before=converting.days_before,
        channel=converting.code.substitute(names_by_code, else_=""),
        repeats=ibis.literal(1, type="int64"),
        is_lead_touch=ibis.literal(False),
        is_opportunity_touch=ibis.literal(False),
        is_won_touch=ibis.literal(False),
        kind=ibis.literal(KIND),
        conversions=ibis.literal(1.0),
        value=converting._journey_value,
    )
    result.memo["unattributed"] = pd.DataFrame(
        {
            name: pd.Series(dtype="object" if name in {"kind", "channel"} else "float64")
            for name in ("kind", "channel", "conversions", "value")
        }
    )
    return result


def _journey_id(table: ibis.Table) -> ir.StringValue:
    return ibis.literal(f"{KIND}:").concat(table.entity_id, ":", table.idx.cast("string"))


def _row_id(row: ir.IntegerValue) -> ir.StringValue:
    """Return a touch's id: ``row:N`` with N its 1-based row in the input."""
    return ibis.literal("row:").concat((row + 1).cast("string"))
