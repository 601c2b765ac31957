"""Accounts file import: name-only files, id-keyed CRM tables, plans, churn dates, bad cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeymap import api
from journeymap.common.errors import InputError
from journeymap.sources.accounts import read_accounts_file
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


# Accounts keyed by id: Salesforce's account and HubSpot's company tables ----------------------

FIXTURES = Path("fivetran-connector-fixtures")


def write_lines(folder: Path, name: str, *rows: str) -> Path:
    """Write CSV text with one line per row and return its path."""
    path = folder / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_read_accounts_salesforce_account_sample(shared_data: Path) -> None:
    path = shared_data / FIXTURES / "salesforce" / "sf_account_data.csv"

    accounts = read_accounts_file(path)

    # Nine of the ten rows are deleted or replaced; two deleted rows share the name Blue Test.
    assert accounts.rows["account_id"].tolist() == ["0015500000Xyy06AAB"]
    assert accounts.rows["name"].tolist() == ["Eric's Test"]
    assert accounts.warnings == [f"skipped 9 deleted or replaced rows of {path}"]


def test_read_accounts_hubspot_company_sample(shared_data: Path) -> None:
    path = shared_data / FIXTURES / "hubspot" / "company_data.csv"

    accounts = read_accounts_file(path)

    rows = accounts.rows.set_index("account_id")
    assert len(rows) == 24
    assert accounts.warnings == []
    first = rows.loc["2182162682"]
    assert first["name"] == "4b2c13cca3eb58ee49bbddcf00417130"
    assert first["industry"] == "37a6259cc0c1dae299a7866489dff0bd"
    assert first["region"] == "United States"
    assert rows.loc["2258956513", "region"] == "United Kingdom"


def test_read_accounts_fivetran_column_names(tmp_path: Path) -> None:
    salesforce = write_lines(
        tmp_path,
        "account.csv",
        "id,name,industry,number_of_employees,billing_country,website,is_deleted,_fivetran_active",
        "001A,Acme,Retail,250,Germany,acme.example,false,true",
    )
    hubspot = write_lines(
        tmp_path,
        "company.csv",
        "id,property_name,property_industry,property_numberofemployees,property_country,"
        "property_domain,is_deleted",
        "42,Acme,Retail,250,Germany,acme.example,false",
    )

    for path, key in ((salesforce, "001A"), (hubspot, "42")):
        account = read_accounts(path).set_index("account_id").loc[key]

        assert account["name"] == "Acme", path
        assert account["industry"] == "Retail", path
        assert account["employees"] == 250, path
        assert account["region"] == "Germany", path
        assert account["domain"] == "acme.example", path


def test_read_accounts_prefers_id_over_name(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        "accounts.csv",
        "account,account_id,sector",
        "Acme,A1,retail",
        "Acme,A2,media",
        ",A3,media",
    )

    accounts = read_accounts(path).set_index("account_id")

    assert accounts.index.tolist() == ["A1", "A2", "A3"]
    # Two accounts may share a name when ids tell them apart.
    assert accounts.loc["A1", "name"] == "Acme"
    assert accounts.loc["A2", "name"] == "Acme"
    assert pd.isna(accounts.loc["A3", "name"])


def test_read_accounts_name_only_unchanged(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        "accounts.csv",
        "account,sector,employees,office_location",
        "Acme Corporation,technolgy,2822,United States",
        "Betatech,medical,1185,Kenya",
    )

    accounts = read_accounts(path)

    assert accounts["account_id"].tolist() == ["Acme Corporation", "Betatech"]
    assert accounts["name"].tolist() == ["Acme Corporation", "Betatech"]
    assert accounts["industry"].tolist() == ["technolgy", "medical"]
    assert accounts["employees"].tolist() == [2822, 1185]
    assert accounts["region"].tolist() == ["United States", "Kenya"]
    assert accounts["plan"].isna().all()


def test_read_accounts_skips_deleted_rows(tmp_path: Path) -> None:
    # A deleted row may repeat the id of a current one, and may hold cells that are invalid.
    path = write_lines(
        tmp_path,
        "account.csv",
        "id,name,number_of_employees,is_deleted,_fivetran_deleted,_fivetran_active",
        "001A,Acme,10,false,false,true",
        "001A,Acme (old),12.5,false,false,false",
        "001B,Globex,,true,false,true",
        "001C,Initech,,false,true,true",
        "001D,Hooli,,,,",
    )

    accounts = read_accounts_file(path)

    assert accounts.rows["account_id"].tolist() == ["001A", "001D"]
    assert accounts.rows["name"].tolist() == ["Acme", "Hooli"]
    assert accounts.warnings == [f"skipped 3 deleted or replaced rows of {path}"]


@pytest.mark.parametrize(
    "column", ["plan", "tier", "subscription_plan", "product_tier", "Product Tier"]
)
def test_read_accounts_plan_column_names(tmp_path: Path, column: str) -> None:
    path = write_csv(
        tmp_path,
        [{"account": "Acme", column: "Enterprise"}, {"account": "Globex", column: ""}],
    )

    accounts = read_accounts(path).set_index("account_id")

    assert accounts.loc["Acme", "plan"] == "Enterprise"
    assert pd.isna(accounts.loc["Globex", "plan"])


@pytest.mark.parametrize(
    ("header", "rows", "row", "column", "message"),
    [
        ("id,name", ["001A,Acme", ",Globex"], 2, "id", "account id is missing"),
        ("id,name", ["001A,Acme", "001A,Globex"], 2, "id", "account id '001A' is a duplicate"),
        ("account,sector", ["Acme,retail", ",media"], 2, "account", "account is missing"),
        ("id,is_deleted", ["001A,false", "001B,maybe"], 2, "is_deleted", "neither true nor"),
        (
            "id,number_of_employees",
            ["001A,10", "001B,10.5"],
            2,
            "number_of_employees",
            "not a whole number",
        ),
    ],
)
def test_read_accounts_bad_cell(
    tmp_path: Path, header: str, rows: list[str], row: int, column: str, message: str
) -> None:
    path = write_lines(tmp_path, "accounts.csv", header, *rows)

    with pytest.raises(InputError, match=message) as caught:
        read_accounts(path)

    assert caught.value.file == str(path)
    assert caught.value.row == row
    assert caught.value.column == column


def test_read_accounts_without_key_column(tmp_path: Path) -> None:
    path = write_lines(tmp_path, "accounts.csv", "sector,employees", "retail,10")

    with pytest.raises(InputError, match="missing column for the account id or name") as caught:
        read_accounts(path)

    assert caught.value.file == str(path)
    assert caught.value.column == "account_id"
    assert "Columns found: sector, employees" in str(caught.value)


# Accounts joined with deals -------------------------------------------------------------------


def test_salesforce_opportunities_match_account_ids(store: Store, tmp_path: Path) -> None:
    opportunities = write_lines(
        tmp_path,
        "opportunity.csv",
        "id,account_id,name,stage_name,amount,close_date,created_date,is_won,is_closed,"
        "is_deleted,_fivetran_active",
        "006A,001A,Acme renewal,Closed Won,1000,2024-02-01,2024-01-01 10:00:00,true,true,"
        "false,true",
        "006B,001B,Globex new,Closed Lost,500,2024-02-03,2024-01-02 10:00:00,false,true,false,true",
    )
    accounts = write_lines(
        tmp_path,
        "account.csv",
        "id,name,industry,number_of_employees,billing_country,is_deleted,_fivetran_active",
        "001A,Acme,Retail,250,Germany,false,true",
        "001B,Globex,Media,40,France,false,true",
        "001C,Initech,Media,40,France,true,true",
    )

    result = import_deals(store, opportunities, accounts_file=accounts)

    assert not any("accounts file lacks" in warning for warning in result.warnings)
    assert f"skipped 1 deleted or replaced row of {accounts}" in result.warnings
    deals = store.table("deals").to_pandas().set_index("deal_id")
    stored = store.table("accounts").to_pandas().set_index("account_id")
    industries = deals["account_id"].map(stored["industry"])
    assert industries.to_dict() == {"006A": "Retail", "006B": "Media"}
    assert stored.loc["001A", "name"] == "Acme"
    assert "001C" not in stored.index


def test_hubspot_deals_match_company_ids(store: Store, tmp_path: Path) -> None:
    deals = write_lines(
        tmp_path,
        "deal.csv",
        "deal_id,deal_pipeline_stage_id,property_amount,property_closedate,property_createdate",
        "101,closedwon,1000,2024-02-01,2024-01-01",
        "102,closedlost,500,2024-02-03,2024-01-02",
    )
    associations = write_lines(
        tmp_path,
        "deal_company.csv",
        "company_id,deal_id,type_id,category",
        "9001,101,5,HUBSPOT_DEFINED",
        "9002,102,5,HUBSPOT_DEFINED",
    )
    companies = write_lines(
        tmp_path,
        "company.csv",
        "id,is_deleted,property_name,property_industry,property_country",
        "9001,false,Acme,Retail,Germany",
        "9002,false,Globex,Media,France",
    )

    result = import_deals(store, deals, deal_companies_file=associations, accounts_file=companies)

    assert not any("accounts file lacks" in warning for warning in result.warnings)
    stored = store.table("accounts").to_pandas().set_index("account_id")
    deals = store.table("deals").to_pandas().set_index("deal_id")
    names = deals["account_id"].map(stored["name"])
    assert names.to_dict() == {"101": "Acme", "102": "Globex"}


def test_deals_unknown_account_id_warning(store: Store, tmp_path: Path) -> None:
    deals = write_csv(
        tmp_path,
        [
            {"deal_id": "d1", "account_id": "001A", "stage": "Won"},
            {"deal_id": "d2", "account_id": "001Z", "stage": "Won"},
        ],
        name="deals.csv",
    )
    accounts = write_lines(tmp_path, "account.csv", "id,name", "001A,Acme")

    result = import_deals(store, deals, accounts_file=accounts)

    assert (
        "1 deal has an account_id that the accounts file lacks (for example '001Z'); "
        "its account_id is kept"
    ) in result.warnings


def test_icp_by_plan(store: Store, tmp_path: Path) -> None:
    deals = write_csv(
        tmp_path,
        [
            {"deal_id": f"d{index}", "account_id": account, "stage": stage}
            for index, (account, stage) in enumerate(
                [("A1", "Won"), ("A1", "Lost"), ("A2", "Won"), ("A3", "Lost")]
            )
        ],
        name="deals.csv",
    )
    accounts = write_csv(
        tmp_path,
        [
            {"account_id": "A1", "name": "Acme", "subscription_plan": "Starter"},
            {"account_id": "A2", "name": "Globex", "subscription_plan": "Enterprise"},
            {"account_id": "A3", "name": "Initech", "subscription_plan": "Enterprise"},
        ],
    )
    import_deals(store, deals, accounts_file=accounts)

    segments, _ = api.icp(store, by="plan")

    by_plan = segments.set_index("plan")
    assert sorted(by_plan.index) == ["Enterprise", "Starter"]
    assert by_plan.loc["Enterprise", "closed"] == 2
    assert by_plan.loc["Enterprise", "won"] == 1
    assert by_plan.loc["Starter", "closed"] == 2
    assert by_plan.loc["Starter", "won"] == 1
