"""The store's schema: an older store gains the columns that a newer schema adds."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

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
