"""The store: an Ibis connection that contains the canonical tables.

DuckDB (a file, or memory) is the embedded default. Any other Ibis backend, Spark among them,
can be wrapped with :meth:`Store.from_backend`; the pipeline's expressions are the same.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from journeymap.common.errors import StoreError
from journeymap.store.schema import ALL_TABLES, RAW_TABLES

log = logging.getLogger("journeymap")

MEMORY = ":memory:"


class Store:
    """The canonical tables on one Ibis backend.

    Create it with :meth:`open` (DuckDB) or :meth:`from_backend`. Raw tables are created on
    open, and creation is idempotent: opening an existing store changes nothing in it.
    """

    def __init__(self, con: Any, *, location: str) -> None:
        self.con = con
        self.location = location
        self.engine: str = con.name
        self._in_transaction = False
        if self.engine == "duckdb":
            _allow_arrow_lambdas(con)
        self.ensure_schema()

    @classmethod
    def open(cls, path: str | Path = MEMORY, *, lock_timeout: float = 30.0) -> Store:
        """Open (or create) a DuckDB store at ``path``; ``":memory:"`` keeps it in memory.

        DuckDB lets one process at a time open a file. While another process holds it (the
        collector's drain holds it for about a second at a time), ``open`` retries for up to
        ``lock_timeout`` seconds.

        Raises:
            StoreError: the file cannot be opened, for example because another process
                holds its lock for longer than ``lock_timeout``.
        """
        location = str(path)
        if location != MEMORY:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                con = ibis.duckdb.connect(location)
                break
            except Exception as exc:  # duckdb raises IOException and others without a common base
                if "lock" in str(exc).lower() and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise StoreError(
                    f"cannot open the store {location!r}: {_first_line(exc)}",
                    hint="Close other journeymap processes that use this file, "
                    "or pass another --store",
                ) from exc
        return cls(con, location=location)

    @classmethod
    def from_backend(cls, con: Any) -> Store:
        """Wrap an existing Ibis backend connection, for example ``ibis.pyspark.connect(spark)``."""
        return cls(con, location=f"{con.name} backend")

    def ensure_schema(self) -> None:
        """Create every raw table that does not exist yet, and add the columns that a newer
        version of the schema has to an existing table (DuckDB). Existing rows are kept, with
        nulls in the added columns."""
        existing = set(self.con.list_tables())
        for name, schema in RAW_TABLES.items():
            if name not in existing:
                self.con.create_table(name, schema=schema)
            else:
                self._check_columns(name, schema)

    def _check_columns(self, name: str, schema: ibis.Schema) -> None:
        have = set(self.con.table(name).columns)
        missing = [column for column in schema.names if column not in have]
        if not missing:
            return
        if self.engine == "duckdb":
            from ibis.backends.sql.datatypes import DuckDBType

            for column in missing:
                kind = DuckDBType.to_string(schema[column])
                self.con.raw_sql(f'ALTER TABLE "{name}" ADD COLUMN "{column}" {kind}')
            log.info("added the columns %s to table %s", ", ".join(missing), name)
            return
        raise StoreError(
            f"table {name!r} in {self.location} lacks the columns {', '.join(missing)}",
            hint="Another version of journeymap wrote this store; import into a new store",
        )

    def table(self, name: str) -> ibis.Table:
        """Return a canonical table as an Ibis expression.

        Raises:
            StoreError: the table does not exist, for example a derived table before ``build``.
        """
        if name not in self.con.list_tables():
            raise StoreError(
                f"table {name!r} does not exist in {self.location}",
                hint="Run `journeymap build` (or `journeymap run`) to derive journeys and credits",
            )
        return self.con.table(name)

    def has_rows(self, name: str) -> bool:
        """Return whether a table exists and has at least one row."""
        if name not in self.con.list_tables():
            return False
        return bool(self.con.table(name).limit(1).count().execute() > 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so that all of them land or none does.

        NOTE: only DuckDB has transactions here. On other backends the writes run one by one,
        so an error between two appends leaves the first one in place.
        """
        if self.engine != "duckdb" or self._in_transaction:
            yield
            return
        raw = self.con.con
        raw.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        else:
            raw.execute("COMMIT")
        finally:
            self._in_transaction = False

    def append(self, name: str, frame: pd.DataFrame | pa.Table) -> int:
        """Append rows to a canonical table and return how many were written.

        Columns missing from ``frame`` are written as null; extra columns are an error, so
        that a typo in an importer cannot drop data silently.
        """
        schema = ALL_TABLES[name]
        table = conform(frame, schema, table_name=name)
        if table.num_rows == 0:
            return 0
        if self.engine == "duckdb":
            view = f"_append_{uuid.uuid4().hex}"
            raw = self.con.con
            raw.register(view, table)
            try:
                columns = ", ".join(f'"{column}"' for column in schema.names)
                raw.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM "{view}"')
            finally:
                raw.unregister(view)
        else:
            # NOTE: on Spark, ibis 12.0 writes an int64 column that has nulls, such as
            # accounts.employees, as all nulls, so imports into a Spark store lose those
            # values. Spark's own createDataFrame reads the same Arrow table correctly.
            self.con.insert(name, ibis.memtable(table))
        return int(table.num_rows)

    def delete_keys(self, name: str, column: str, keys: Sequence[str]) -> int:
        """Delete the rows of a canonical table whose ``column`` is one of ``keys``.

        Returns the number of rows deleted. Inside :meth:`transaction`, a later error rolls
        the deletion back with the rest.

        Raises:
            StoreError: the store is not DuckDB and some rows match. Ibis has no DELETE
                statement, so only DuckDB stores can replace rows.
        """
        distinct = sorted(set(keys))
        if not distinct:
            return 0
        key_table = pa.table({"key": pa.array(distinct, type=pa.string())})
        if self.engine != "duckdb":
            stored, replaced = self.table(name), ibis.memtable(key_table)
            matching = stored.semi_join(replaced, stored[column] == replaced.key)
            count = int(matching.count().execute())
            if count:
                noun = "row" if count == 1 else "rows"
                raise StoreError(
                    f"table {name!r} in {self.location} has {count:,} {noun} whose {column} "
                    "this import replaces, but only DuckDB stores can delete rows",
                    hint="Import into a DuckDB store (--store FILE.duckdb)",
                )
            return 0
        view = f"_keys_{uuid.uuid4().hex}"
        raw = self.con.con
        raw.register(view, key_table)
        try:
            deleted = raw.execute(
                f'DELETE FROM "{name}" WHERE "{column}" IN (SELECT "key" FROM "{view}")'
            ).fetchone()
        finally:
            raw.unregister(view)
        return int(deleted[0]) if deleted else 0

    def write(self, name: str, data: ibis.Table | pd.DataFrame | pa.Table) -> ibis.Table:
        """Replace a derived table with ``data`` and return the stored table."""
        if isinstance(data, pd.DataFrame | pa.Table):
            data = ibis.memtable(conform(data, ALL_TABLES[name], table_name=name))
        self.con.create_table(name, data, overwrite=True)
        return self.con.table(name)

    def next_seq(self) -> int:
        """Return the first unused arrival number; imports reserve numbers from here."""
        imports = self.con.table("imports")
        top = imports.seq_end.max().execute()
        return 1 if top is None or pd.isna(top) else int(top) + 1

    def close(self) -> None:
        """Close the connection; DuckDB releases the file lock."""
        disconnect = getattr(self.con, "disconnect", None)
        if disconnect is not None:
            disconnect()


def _first_line(exc: BaseException) -> str:
    """Return the first line of an error message; DuckDB's lock errors run to several."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _allow_arrow_lambdas(con: Any) -> None:
    """Let DuckDB accept the ``x -> expr`` lambdas that Ibis 12 writes for array functions.

    DuckDB 1.5 deprecates that syntax and announces its removal; DuckDB versions before 1.5
    lack the setting and accept the syntax anyway.
    """
    try:
        con.raw_sql("SET lambda_syntax='ENABLE_SINGLE_ARROW'")
    except Exception:  # duckdb.CatalogException on versions without the setting
        log.debug("DuckDB has no lambda_syntax setting; arrow lambdas are accepted as they are")


def conform(frame: pd.DataFrame | pa.Table, schema: ibis.Schema, *, table_name: str) -> pa.Table:
    """Return ``frame`` as an Arrow table with exactly the columns and types of ``schema``."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    extra = [column for column in table.column_names if column not in schema.names]
    if extra:
        raise StoreError(f"columns {extra} are not part of table {table_name!r}")
    target = schema.to_pyarrow()
    columns = []
    for field in target:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=target)


def open_store(path: str | Path | None) -> Store:
    """Open the DuckDB store at ``path``, or an in-memory store when ``path`` is None."""
    store = Store.open(MEMORY if path is None else path)
    log.debug("opened store %s", store.location)
    return store
