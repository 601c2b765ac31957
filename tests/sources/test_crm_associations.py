"""The account of HubSpot deals from deal-to-company associations.

Fivetran's sample ``deal_company`` table tests parsing alone, because its deal ids are not in
the sample ``deal`` table. Small hand-written tables that join test the accounts of deals.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from journeymap import api
from journeymap.cli import app
from journeymap.common.errors import InputError
from journeymap.sources.crm_associations import read_deal_companies
from journeymap.sources.deals import import_deals
from journeymap.store.store import Store

FIXTURES = "fivetran-connector-fixtures"


def write(tmp_path: Path, name: str, *rows: str) -> Path:
    """Write CSV text with one line per row and return its path."""
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def hubspot_deals(tmp_path: Path) -> Path:
    """A HubSpot ``deal`` table as Fivetran writes it: no company column."""
    return write(
        tmp_path,
        "deal.csv",
        "deal_id,is_deleted,deal_pipeline_id,deal_pipeline_stage_id,property_amount,"
        "property_closedate,property_createdate",
        "101,false,default,closedwon,1000,2024-02-01,2024-01-01",
        "102,false,default,closedlost,500,2024-02-03,2024-01-02",
        "103,false,default,appointmentscheduled,,,2024-01-05",
        "104,false,default,appointmentscheduled,,,2024-01-06",
    )


def accounts_of(store: Store) -> dict[str, object]:
    deals = store.table("deals").to_pandas().set_index("deal_id")
    return {
        str(deal): None if pd.isna(account) else account
        for deal, account in deals["account_id"].items()
    }


# Fivetran's sample table, alone ---------------------------------------------------------------


def test_deal_company_sample_parses(shared_data: Path) -> None:
    associations = read_deal_companies(shared_data / FIXTURES / "hubspot" / "deal_company_data.csv")

    assert associations.companies.to_dict() == {"1234": "56789", "6789": "12345"}
    assert associations.several.empty
    assert associations.skipped == 0


# Deal companies applied to deals --------------------------------------------------------------


def test_deal_companies_set_account(store: Store, tmp_path: Path) -> None:
    companies = write(
        tmp_path,
        "deal_company.csv",
        "company_id,deal_id,type_id,category",
        "9001,101,5,HUBSPOT_DEFINED",
        "9001,101,341,HUBSPOT_DEFINED",
        "9002,102,341,HUBSPOT_DEFINED",
    )

    result = import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    assert accounts_of(store) == {"101": "9001", "102": "9002", "103": None, "104": None}
    # One company under two association types is one company, not several.
    assert not any("several companies" in warning for warning in result.warnings)


def test_deal_companies_primary_wins(store: Store, tmp_path: Path) -> None:
    companies = write(
        tmp_path,
        "deal_company.csv",
        "company_id,deal_id,type_id,category",
        "500,101,341,HUBSPOT_DEFINED",
        "700,101,5,HUBSPOT_DEFINED",
        "600,101,341,HUBSPOT_DEFINED",
    )

    result = import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    assert accounts_of(store)["101"] == "700"
    several = [warning for warning in result.warnings if "several companies" in warning]
    assert len(several) == 1
    assert several[0].startswith(f"1 deal of {companies} has several companies")
    assert "deal '101': '700', '500', '600'" in several[0]


def test_deal_companies_lowest_id_without_primary(store: Store, tmp_path: Path) -> None:
    # 900 is lower than 1000 as a number, though not as text. A user-defined label with type
    # id 5 is no primary association.
    companies = write(
        tmp_path,
        "deal_company.csv",
        "company_id,deal_id,type_id,category",
        "1000,101,341,HUBSPOT_DEFINED",
        "900,101,341,HUBSPOT_DEFINED",
        "2000,102,5,USER_DEFINED",
        "1500,102,341,HUBSPOT_DEFINED",
        "3000,103,341,HUBSPOT_DEFINED",
    )

    result = import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    accounts = accounts_of(store)
    assert accounts["101"] == "900"
    assert accounts["102"] == "1500"
    assert accounts["103"] == "3000"
    several = [warning for warning in result.warnings if "several companies" in warning]
    assert len(several) == 1
    assert several[0].startswith(f"2 deals of {companies} have several companies")


def test_deal_companies_without_type_columns(tmp_path: Path) -> None:
    # A table with only the two ids marks no primary company, so the lowest id is taken.
    companies = write(
        tmp_path,
        "deal_company.csv",
        "deal_id,company_id,_fivetran_synced",
        "101,B-2,2024-01-01 00:00:00",
        "101,A-7,2024-01-01 00:00:00",
    )

    associations = read_deal_companies(companies)

    assert associations.companies.to_dict() == {"101": "A-7"}
    assert associations.several["company_id"].tolist() == ["A-7", "B-2"]


def test_deal_companies_skip_deleted_rows(store: Store, tmp_path: Path) -> None:
    companies = write(
        tmp_path,
        "deal_company.csv",
        "company_id,deal_id,type_id,_fivetran_deleted",
        "100,101,5,true",
        "200,101,341,false",
        ",102,341,true",
    )

    result = import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    assert accounts_of(store)["101"] == "200"
    assert accounts_of(store)["102"] is None
    assert f"skipped 2 deleted rows of {companies}" in result.warnings


def test_deal_companies_keep_account_column(store: Store, tmp_path: Path) -> None:
    deals = write(
        tmp_path,
        "deals.csv",
        "deal_id,account,stage",
        "d1,Acme,Won",
        "d2,,Won",
        "d3,Globex,Lost",
    )
    companies = write(
        tmp_path,
        "deal_company.csv",
        "deal_id,company_id",
        "d1,Acme",
        "d2,Initech",
        "d3,Hooli",
    )

    result = import_deals(store, deals, deal_companies_file=companies)

    assert accounts_of(store) == {"d1": "Acme", "d2": "Initech", "d3": "Globex"}
    differ = [warning for warning in result.warnings if "differs" in warning]
    assert differ == [
        f"kept the account of column 'account' for 1 deal whose company in {companies} "
        "differs (for example deal 'd3': 'Globex', not 'Hooli')"
    ]


def test_deal_companies_of_unknown_deals(store: Store, tmp_path: Path) -> None:
    companies = write(
        tmp_path,
        "deal_company.csv",
        "deal_id,company_id",
        "101,9001",
        "999,9002",
    )

    result = import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    assert accounts_of(store)["101"] == "9001"
    assert (
        f"left out the companies of 1 deal of {companies} that are not among the imported "
        "deals (for example '999')"
    ) in result.warnings


def test_deal_companies_api_and_cli(store: Store, tmp_path: Path) -> None:
    deals = hubspot_deals(tmp_path)
    companies = write(tmp_path, "deal_company.csv", "deal_id,company_id", "101,9001")
    location = tmp_path / "store.duckdb"

    result = CliRunner().invoke(
        app,
        [
            "import",
            "deals",
            str(deals),
            "--deal-companies",
            str(companies),
            "--store",
            str(location),
        ],
    )

    assert result.exit_code == 0, result.output
    opened = Store.open(str(location))
    try:
        assert accounts_of(opened)["101"] == "9001"
    finally:
        opened.close()
    api.import_file(store, deals, input_format="deals", deal_companies_file=companies)
    assert accounts_of(store)["101"] == "9001"


# Association columns of a CRM export ----------------------------------------------------------


def test_export_associated_company_ids(store: Store, tmp_path: Path) -> None:
    deals = write(
        tmp_path,
        "deals-export.csv",
        "Record ID,Deal Stage,Associated Company IDs",
        "1,closedwon,300;200",
        "2,closedwon,400",
        "3,closedlost,",
    )

    result = import_deals(store, deals)

    assert accounts_of(store) == {"1": "200", "2": "400", "3": None}
    several = [warning for warning in result.warnings if "several companies" in warning]
    assert several == [
        f"1 deal of {deals} has several companies; each took its primary company, else the "
        "lowest company id (for example deal '1': '200', '300'; the first id was taken)"
    ]


def test_export_primary_company_column(store: Store, tmp_path: Path) -> None:
    deals = write(
        tmp_path,
        "deals-export.csv",
        "Record ID,Deal Stage,Associated Company IDs,Associated Company IDs (Primary)",
        "1,closedwon,300;200,300",
        "2,closedwon,400;500,",
    )

    result = import_deals(store, deals)

    assert accounts_of(store) == {"1": "300", "2": "400"}
    several = [warning for warning in result.warnings if "several companies" in warning]
    assert len(several) == 1
    assert several[0].startswith(f"2 deals of {deals} have several companies")


def test_export_as_deal_companies_file(store: Store, tmp_path: Path) -> None:
    export = write(
        tmp_path,
        "deals-export.csv",
        "Record ID,Deal Name,Associated Company IDs",
        "101,First,12;11",
        "102,Second,13",
    )

    import_deals(store, hubspot_deals(tmp_path), deal_companies_file=export)

    assert accounts_of(store) == {"101": "11", "102": "13", "103": None, "104": None}


# Bad association files ------------------------------------------------------------------------


def test_deal_companies_without_company_column(store: Store, tmp_path: Path) -> None:
    companies = write(tmp_path, "deal_company.csv", "deal_id,contact_id", "101,5")

    with pytest.raises(InputError, match="missing column for company_id") as caught:
        import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    assert caught.value.file == str(companies)
    assert caught.value.column == "company_id"
    # The export's column names are accepted too, and --map maps only the deals file.
    assert "associated_company_ids" in str(caught.value)
    assert "Rename the column" in str(caught.value)
    assert "--map FIELD=COLUMN" not in str(caught.value)
    assert store.table("deals").count().execute() == 0


@pytest.mark.parametrize(
    ("rows", "row", "column", "message"),
    [
        (["101,9001,5", ",9002,5"], 2, "deal_id", "deal id is missing"),
        (["101,9001,5", "102,,5"], 2, "company_id", "company id is missing"),
        (["101,9001,5", "102,9002,primary"], 2, "type_id", "type id 'primary' is not a number"),
    ],
)
def test_deal_companies_bad_cell(
    store: Store, tmp_path: Path, rows: list[str], row: int, column: str, message: str
) -> None:
    companies = write(tmp_path, "deal_company.csv", "deal_id,company_id,type_id", *rows)

    with pytest.raises(InputError, match=message) as caught:
        import_deals(store, hubspot_deals(tmp_path), deal_companies_file=companies)

    assert caught.value.file == str(companies)
    assert caught.value.row == row
    assert caught.value.column == column
    assert store.table("deals").count().execute() == 0
