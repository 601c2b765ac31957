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
* A touch flagged as a conversion ends a journey and belongs to it. Its journey holds the
  touches after the person's previous conversion, no older than the lookback window.
* Touches after the last conversion form one non-converting journey, cut to the lookback
  window before its last touch.
* Every conversion is of the kind ``conversion``; its value counts only on the converting
  touch (a missing value is 0).

The cut takes two window passes in the engine, and the result is cached there, so that every
model reads it without cutting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.journeys.build import SECONDS_PER_DAY, Journeys, PathSource, as_schema
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.touchpoints import TOUCHPOINT_ALIASES
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
    ``value`` (float) and ``_row`` (the 0-based row in the file, or an order among equal
    timestamps). ``columns`` names the input column of each field, for error messages.
    """

    rows: ibis.Table
    source: str
    columns: dict[str, str]


def read_touch_table(
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    con: ibis.BaseBackend | None = None,
) -> TouchTable:
    """Open a Parquet or CSV touch file in DuckDB (a new in-memory connection by default).

    Raises:
        InputError: the file is missing, is neither Parquet nor CSV, or lacks a column.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", file=str(file), hint="Check the path")
    con = con or ibis.duckdb.connect()
    suffix = file.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        table = con.read_parquet(file, file_row_number=True)
        return touch_table(table, source=str(file), mapping=mapping, row_column="file_row_number")
    if suffix in {".csv", ".tsv", ".txt"}:
        table = con.read_csv(file)
        # DuckDB reads a CSV file in order, so numbering the rows as read follows the file.
        table = table.mutate(**{ROW: ibis.row_number()})
        return touch_table(table, source=str(file), mapping=mapping, row_column=ROW)
    raise InputError(
        f"unsupported file type {file.suffix or '(none)'!r}",
        file=str(file),
        hint="Give a .parquet or .csv file",
    )


def touch_table(
    table: ibis.Table,
    *,
    source: str = "table",
    mapping: dict[str, str] | None = None,
    row_column: str | None = None,
) -> TouchTable:
    """Resolve the columns of ``table`` and cast them to the touch table's types.

    ``row_column`` orders touches with equal timestamps; without it they are ordered by the
    conversion flag (touches without a conversion first), then by channel.

    Raises:
        InputError: a field has no column, or a column has the wrong type.
    """
    aliases = {field: TOUCHPOINT_ALIASES[field] for field in FIELDS}
    resolver = ColumnResolver(
        file=source, columns=table.columns, aliases=aliases, mapping=mapping, remedy=REMEDY
    )
    columns = {field: resolver.require(field) for field in FIELDS if field != "value"}
    if resolver.get("value") is not None:
        columns["value"] = str(resolver.get("value"))

    occurred = table[columns["occurred_at"]]
    if not occurred.type().is_timestamp():
        raise _type_error(source, columns["occurred_at"], "a timestamp", occurred)
    flag = table[columns["conversion"]]
    if flag.type().is_boolean():
        conv = flag.cast("int64")
    elif flag.type().is_integer():
        conv = (flag != 0).cast("int64")
    else:
        raise _type_error(source, columns["conversion"], "true/false or 0/1", flag)
    value: ir.FloatingValue = ibis.literal(0.0)
    if "value" in columns:
        raw = table[columns["value"]]
        if not raw.type().is_numeric():
            raise _type_error(source, columns["value"], "a number", raw)
        value = raw.cast("float64").fill_null(0.0)

    order = (
        table[row_column].cast("int64")
        if row_column is not None
        else ibis.row_number().over(
            order_by=[occurred, conv, table[columns["channel"]]],
            group_by=table[columns["person_id"]],
        )
    )
    rows = table.select(
        entity_id=table[columns["person_id"]].cast("string"),
        occurred_at=occurred,
        channel=table[columns["channel"]].cast("string"),
        conv=conv,
        value=value,
        **{ROW: order},
    )
    return TouchTable(rows=rows, source=source, columns=columns)


def _type_error(source: str, column: str, wanted: str, values: ir.Column) -> InputError:
    return InputError(
        f"column {column!r} holds {values.type()}, not {wanted}",
        file=source,
        column=column,
        hint="Cast the column in the file, or import the file into a store, which parses "
        "text timestamps and flags",
    )


def check_touch_table(touches: TouchTable) -> list[str]:
    """Check every row in one pass of the engine, and return the channels, sorted.

    Raises:
        InputError: naming the first row (1-based) with an empty person id, timestamp or
            channel, a missing conversion flag, or a negative or non-finite value.
    """
    rows = touches.rows
    problems: dict[str, tuple[ir.BooleanValue, str]] = {
        "person_id": (
            rows.entity_id.isnull() | (rows.entity_id.strip() == ""),
            "empty person id; every touch needs the person (or visitor) it belongs to",
        ),
        "occurred_at": (rows.occurred_at.isnull(), "empty timestamp"),
        "channel": (
            rows.channel.isnull() | (rows.channel.strip() == ""),
            "empty channel; a touch table is not classified, so every row needs its channel",
        ),
        "conversion": (rows.conv.isnull(), "empty conversion flag; write true or false"),
        "value": (
            rows.value.isnan() | rows.value.isinf() | (rows.value < 0),
            "value is negative or not a finite number",
        ),
    }
    counts = rows.aggregate(
        _channels=rows.channel.collect(distinct=True),
        **{field: test.cast("int64").sum() for field, (test, _) in problems.items()},
    ).to_pandas()
    for field, (test, message) in problems.items():
        if field not in touches.columns or not counts[field].iloc[0]:
            continue
        first = rows.filter(test).order_by(ROW).limit(1).to_pandas()
        row = int(first[ROW].iloc[0]) + 1
        raise InputError(
            message,
            file=touches.source,
            row=row,
            column=touches.columns[field],
            hint=f"{_rows(int(counts[field].iloc[0]))} this problem; fix or drop them",
        )
    found = counts["_channels"].iloc[0]
    return sorted(str(channel) for channel in (found if found is not None else []))


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
    channels = check_touch_table(touches)
    # The cut sorts every column it carries, so the channel travels as a small number.
    codes = {name: code for code, name in enumerate(channels, start=1)}
    rows = touches.rows
    rows = rows.select(
        "entity_id",
        "occurred_at",
        "conv",
        ROW,
        value=rows.value * rows.conv,
        code=rows.channel.substitute(codes, else_=0).cast("int16"),
        _epoch=rows.occurred_at.epoch_seconds().cast("float64"),
    )
    order = ["occurred_at", ROW]

    # Pass one, over each person's touches: the journey number, and when the journey ends
    # (the next conversion, else the person's last touch).
    so_far = ibis.window(group_by="entity_id", order_by=order, rows=(None, 0))
    ahead = ibis.window(group_by="entity_id", order_by=order, rows=(0, None))
    person = ibis.window(group_by="entity_id")
    conversion_epoch = ibis.cases((rows.conv == 1, rows._epoch), else_=ibis.null("float64"))
    next_conversion = conversion_epoch.min().over(ahead)
    rows = rows.mutate(
        idx=(rows.conv.sum().over(so_far) - rows.conv).cast("int64"),
        _converts_at=next_conversion,
        _ends_at=ibis.coalesce(next_conversion, rows._epoch.max().over(person)),
    )
    if lookback_days is not None:
        rows = rows.filter(rows._epoch >= rows._ends_at - lookback_days * SECONDS_PER_DAY)

    # Pass two, over each journey's kept touches: position and length.
    journey = ["entity_id", "idx"]
    in_order = ibis.window(group_by=journey, order_by=order)
    whole = ibis.window(group_by=journey)
    cut = rows.select(
        "entity_id",
        "idx",
        "occurred_at",
        "code",
        "conv",
        "value",
        ROW,
        position=(ibis.row_number().over(in_order) + 1).cast("int64"),
        n_touches=rows.count().over(whole).cast("int64"),
        days_before=(rows._converts_at - rows._epoch) / SECONDS_PER_DAY,
    ).cache()
    channel = cut.code.substitute({code: name for name, code in codes.items()}, else_="")

    journey_rows = cut.group_by(journey).aggregate(
        conversions=cut.conv.max().cast("float64"),
        value=cut.value.sum(),
        n_touches=cut.count(),
        converted_at=ibis.cases((cut.conv == 1, cut.occurred_at), else_=ibis.null(TS)).max(),
        _converting_row=ibis.cases((cut.conv == 1, cut[ROW]), else_=ibis.null("int64")).max(),
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
    journey_touches = cut.select(
        journey_id=_journey_id(cut),
        position=cut.position,
        n_touches=cut.n_touches,
        touchpoint_id=_row_id(cut[ROW]),
        occurred_at=cut.occurred_at.cast(TS),
        days_before=cut.days_before,
        channel=channel,
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
    # Paths are counted on the cached cut, keyed by person and number rather than by text id.
    weighted = cut.select(
        *journey,
        "position",
        kind=ibis.literal(KIND),
        conversions=cut.conv.cast("float64"),
        value=cut.value,
        channel_code=cut.code,
    )
    result.memo["summary_source"] = PathSource(weighted, None, tuple(journey), tuple(channels))
    result.memo["kinds"] = [KIND]
    # Every row has a timestamp, and a touch table has no milestones and no repeats.
    result.memo["timestamps_complete"] = True
    result.memo["no_milestones"] = True
    result.memo["single_repeats"] = True
    # Every conversion is on a touch, so no converting journey is empty.
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
