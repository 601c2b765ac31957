"""Epoch seconds of instants in the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import ibis
import pandas as pd

from journeymap.common.epoch import epoch_seconds

INSTANTS = [
    datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=UTC),
]


def test_epoch_seconds_of_instants_keeps_microseconds() -> None:
    table = ibis.memtable(pd.DataFrame({"at": INSTANTS}))
    found = table.select(seconds=epoch_seconds(table.at)).to_pandas().seconds.tolist()
    assert found == [moment.timestamp() for moment in INSTANTS]


def test_epoch_seconds_on_duckdb_skips_the_local_cast() -> None:
    con = ibis.duckdb.connect()
    table = con.create_table("touches", pd.DataFrame({"at": INSTANTS}))
    query = table.select(seconds=epoch_seconds(table.at))
    assert "EPOCH(CAST" not in ibis.to_sql(query)
    assert query.to_pandas().seconds.tolist() == [moment.timestamp() for moment in INSTANTS]


def test_epoch_seconds_of_literal_is_portable() -> None:
    # A literal joins queries on any engine, so it must not name DuckDB's function.
    moment = ibis.literal(INSTANTS[0])
    query = ibis.memtable(pd.DataFrame({"n": [1]})).select(seconds=epoch_seconds(moment))
    assert "EPOCH" not in ibis.to_sql(query, dialect="pyspark").upper()


def test_epoch_seconds_reads_naive_as_utc() -> None:
    naive = [moment.replace(tzinfo=None) for moment in INSTANTS]
    table = ibis.memtable(pd.DataFrame({"at": naive}))
    assert table.at.type().timezone is None
    found = table.select(seconds=epoch_seconds(table.at)).to_pandas().seconds.tolist()
    assert found == [moment.timestamp() for moment in INSTANTS]
