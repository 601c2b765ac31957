"""Accounts file import: churn dates under their common names, empty cells and bad dates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeymap.common.errors import InputError
from journeymap.sources.deals import import_deals, read_accounts
from journeymap.store.store import Store

ACCOUNTS = Path("crm-sales-opportunities/accounts.csv")


def write_csv(folder: Path, rows: list[dict[str, Any]], name: str = "accounts.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows, dtype="object").to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "column",
    ["churned_at", "Churn Date", "cancelled_at", "Cancellation Date", "canceled_at"],
)
def test_read_accounts_churn_column_names(tmp_path: Path, column: str) -> None:
    path = write_csv(
        tmp_path,
        [
            {"account": "Acme", column: "2024-03-01"},
            {"account": "Globex", column: "2024-05-02T10:30:00Z"},
            {"account": "Initech", column: ""},
        ],
    )

    accounts = read_accounts(path).set_index("account_id")

    assert accounts.loc["Acme", "churned_at"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert accounts.loc["Globex", "churned_at"] == pd.Timestamp("2024-05-02T10:30:00Z")
    assert pd.isna(accounts.loc["Initech", "churned_at"])


def test_read_accounts_without_churn_column(shared_data: Path) -> None:
    accounts = read_accounts(shared_data / ACCOUNTS)

    assert len(accounts) == 85
    assert accounts["churned_at"].isna().all()
    assert str(accounts["churned_at"].dtype) == "datetime64[ns, UTC]"


def test_read_accounts_ignores_lifecycle_entry_dates(tmp_path: Path) -> None:
    # HubSpot's date entered into a lifecycle stage is no churn date.
    path = write_csv(tmp_path, [{"account": "Acme", "hs_v2_date_entered_customer": "2024-03-01"}])

    accounts = read_accounts(path)

    assert accounts["churned_at"].isna().all()


def test_read_accounts_bad_churn_date(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"account": "Acme", "churn_date": "2024-03-01"},
            {"account": "Globex", "churn_date": "03/01/2024"},
        ],
    )

    with pytest.raises(InputError, match="ISO 8601") as caught:
        read_accounts(path)

    assert caught.value.file == str(path)
    assert caught.value.row == 2
    assert caught.value.column == "churn_date"


def test_import_deals_stores_churn_dates(store: Store, tmp_path: Path) -> None:
    deals = write_csv(
        tmp_path,
        [{"deal_id": "d1", "account": "Acme", "stage": "Won", "close_date": "2024-01-10"}],
        name="deals.csv",
    )
    accounts = write_csv(
        tmp_path,
        [{"account": "Acme", "churned_at": "2024-06-30"}, {"account": "Globex"}],
    )

    import_deals(store, deals, accounts_file=accounts)

    stored = store.table("accounts").to_pandas().set_index("account_id")
    assert stored.loc["Acme", "churned_at"] == pd.Timestamp("2024-06-30", tz="UTC")
    assert pd.isna(stored.loc["Globex", "churned_at"])
