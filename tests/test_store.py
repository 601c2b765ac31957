"""The store: an older store gains the columns that a newer schema adds, and rows by key go."""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest

from journeymap.common.errors import StoreError
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store


def test_store_open_adds_new_columns_to_an_older_table_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    Store.open(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE stage_timeline DROP COLUMN exit_reason")
        con.execute(
            "INSERT INTO stage_timeline VALUES ('person', 'p1', 'Awareness', "
            "TIMESTAMPTZ '2024-01-01 00:00:00+00', NULL, 'touch')"
        )

    store = Store.open(path)
    try:
        rows = store.table("stage_timeline").to_pandas()
    finally:
        store.close()

    assert "exit_reason" in rows.columns
    assert list(rows.entity_id) == ["p1"]
    assert pd.isna(rows.exit_reason.iloc[0])


def test_store_open_adds_churned_at_to_older_accounts(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    Store.open(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE accounts DROP COLUMN churned_at")
        con.execute("INSERT INTO accounts (account_id, industry) VALUES ('a1', 'retail')")

    store = Store.open(path)
    try:
        column_type = store.table("accounts").schema()["churned_at"]
        rows = store.table("accounts").to_pandas()
    finally:
        store.close()

    assert column_type == RAW_TABLES["accounts"]["churned_at"]
    assert list(rows.account_id) == ["a1"]
    assert pd.isna(rows.churned_at.iloc[0])


def test_delete_keys_removes_matching_rows() -> None:
    store = Store.open()
    try:
        store.append("accounts", pd.DataFrame({"account_id": ["a", "b", "a", "c"]}))

        deleted = store.delete_keys("accounts", "account_id", ["a", "z", "a"])

        assert deleted == 2
        assert sorted(store.table("accounts").to_pandas()["account_id"]) == ["b", "c"]
        assert store.delete_keys("accounts", "account_id", []) == 0
    finally:
        store.close()


def test_delete_keys_rolls_back_with_transaction() -> None:
    store = Store.open()
    try:
        store.append("accounts", pd.DataFrame({"account_id": ["a", "b"]}))

        def delete_then_fail() -> None:
            with store.transaction():
                store.delete_keys("accounts", "account_id", ["a"])
                raise RuntimeError("a later write failed")

        with pytest.raises(RuntimeError):
            delete_then_fail()

        assert sorted(store.table("accounts").to_pandas()["account_id"]) == ["a", "b"]
    finally:
        store.close()


def test_delete_keys_other_backend_rejects_matches() -> None:
    store = Store.from_backend(ibis.sqlite.connect())
    store.con.raw_sql("INSERT INTO accounts (account_id) VALUES ('a'), ('b')")

    # Nothing to delete is fine on any backend; deleting needs DuckDB.
    assert store.delete_keys("accounts", "account_id", ["z"]) == 0
    with pytest.raises(StoreError, match=r"table 'accounts' .* has 1 row whose account_id"):
        store.delete_keys("accounts", "account_id", ["a", "z"])
    assert store.table("accounts").count().execute() == 2
