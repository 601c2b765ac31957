"""Deals import: the CRM sales-pipeline dataset, derived stage history, warnings, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from journeymap import api
from journeymap.cli import app
from journeymap.common.errors import AlreadyImportedError, InputError
from journeymap.sources.deals import import_deals, sector_warnings
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

PIPELINE = Path("crm-sales-opportunities/sales_pipeline.csv")
ACCOUNTS = Path("crm-sales-opportunities/accounts.csv")
PRODUCTS = Path("crm-sales-opportunities/products.csv")


def write_csv(folder: Path, rows: list[dict[str, Any]], name: str = "deals.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows, dtype="object").to_csv(path, index=False)
    return path


def row_counts(store: Store) -> dict[str, int]:
    return {name: int(store.table(name).count().execute()) for name in RAW_TABLES}


@pytest.fixture
def pipeline(shared_data: Path) -> pd.DataFrame:
    """The sales pipeline read by plain pandas, as the reference for the importer."""
    return pd.read_csv(shared_data / PIPELINE, dtype={"close_value": "float64"})


@pytest.fixture
def imported(store: Store, shared_data: Path) -> Store:
    import_deals(
        store,
        shared_data / PIPELINE,
        accounts_file=shared_data / ACCOUNTS,
        products_file=shared_data / PRODUCTS,
    )
    return store


# The sales-pipeline dataset ------------------------------------------------------------------


def test_deals_pipeline_keeps_every_row(imported: Store, pipeline: pd.DataFrame) -> None:
    deals = imported.table("deals").to_pandas()

    assert len(deals) == 8_800
    assert len(deals) == len(pipeline)
    assert set(deals["deal_id"]) == set(pipeline["opportunity_id"])


def test_deals_pipeline_stage_counts(imported: Store, pipeline: pd.DataFrame) -> None:
    counts = imported.table("deals").to_pandas()["stage"].value_counts().to_dict()

    assert counts == {"Won": 4_238, "Lost": 2_473, "Engaging": 1_589, "Prospecting": 500}
    assert counts == pipeline["deal_stage"].value_counts().to_dict()


def test_deals_pipeline_won_and_closed_flags(imported: Store) -> None:
    deals = imported.table("deals").to_pandas()

    assert deals["is_won"].sum() == 4_238
    assert deals["is_closed"].sum() == 4_238 + 2_473
    assert set(deals.loc[deals["is_won"], "stage"]) == {"Won"}
    assert set(deals.loc[deals["is_closed"] & ~deals["is_won"], "stage"]) == {"Lost"}


def test_deals_pipeline_won_value(imported: Store, pipeline: pd.DataFrame) -> None:
    deals = imported.table("deals").to_pandas()
    won_value = deals.loc[deals["is_won"], "amount"].sum()

    assert won_value == 10_005_534
    assert won_value == pipeline.loc[pipeline["deal_stage"] == "Won", "close_value"].sum()
    assert set(deals["currency"]) == {"USD"}


def test_deals_pipeline_without_account(imported: Store, pipeline: pd.DataFrame) -> None:
    deals = imported.table("deals").to_pandas()

    assert deals["account_id"].isna().sum() == 1_425
    assert deals["account_id"].isna().sum() == pipeline["account"].isna().sum()
    assert set(deals.loc[deals["account_id"].isna(), "stage"]) == {"Prospecting", "Engaging"}


def test_deals_pipeline_dates(imported: Store, pipeline: pd.DataFrame) -> None:
    deals = imported.table("deals").to_pandas().set_index("deal_id")
    expected = pipeline.set_index("opportunity_id")

    engage = pd.to_datetime(expected["engage_date"], utc=True)
    close = pd.to_datetime(expected["close_date"], utc=True)
    assert deals["created_at"].equals(engage.reindex(deals.index).rename("created_at"))
    assert deals["closed_at"].equals(close.reindex(deals.index).rename("closed_at"))


def test_deals_pipeline_accounts(imported: Store, shared_data: Path) -> None:
    accounts = imported.table("accounts").to_pandas().set_index("account_id")
    expected = pd.read_csv(shared_data / ACCOUNTS).set_index("account")

    assert len(accounts) == 85
    assert accounts["industry"].to_dict() == expected["sector"].to_dict()
    assert accounts["region"].to_dict() == expected["office_location"].to_dict()
    assert accounts["employees"].to_dict() == expected["employees"].to_dict()
    assert accounts.loc["Acme Corporation", "industry"] == "technolgy"


def test_deals_pipeline_product_warning(
    store: Store, shared_data: Path, pipeline: pd.DataFrame
) -> None:
    catalogue = pd.read_csv(shared_data / PRODUCTS)
    assert "GTXPro" in set(pipeline["product"])
    assert "GTX Pro" in set(catalogue["product"])

    result = import_deals(
        store,
        shared_data / PIPELINE,
        accounts_file=shared_data / ACCOUNTS,
        products_file=shared_data / PRODUCTS,
    )

    product = [warning for warning in result.warnings if warning.startswith("product")]
    assert len(product) == 1
    assert "'GTX Pro'" in product[0]
    assert "'GTXPro'" in product[0]
    assert "1,480 rows of the deals file" in product[0]
    names = store.table("deals").to_pandas()["name"]
    assert (names == "GTXPro").sum() == (pipeline["product"] == "GTXPro").sum()


def test_deals_pipeline_sector_warning(store: Store, shared_data: Path) -> None:
    result = import_deals(store, shared_data / PIPELINE, accounts_file=shared_data / ACCOUNTS)

    sector = [warning for warning in result.warnings if warning.startswith("sector")]
    assert len(sector) == 1
    assert "'technolgy'" in sector[0]
    assert "'technology'" in sector[0]


def test_deals_product_spellings_within_deals(store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"deal_id": "d1", "stage": "Engaging", "product": "GTXPro"},
            {"deal_id": "d2", "stage": "Engaging", "product": "gtx pro"},
            {"deal_id": "d3", "stage": "Engaging", "product": "MG Special"},
        ],
    )

    result = import_deals(store, path)

    assert len(result.warnings) == 1
    assert "'GTXPro'" in result.warnings[0]
    assert "'gtx pro'" in result.warnings[0]
    assert store.table("deals").count().execute() == 3


def test_sector_warnings_known_sectors() -> None:
    sectors = pd.Series(["software", "retail", "Medical", "telecommunications", "finance"])

    assert sector_warnings(sectors) == []


# Derived stage history -----------------------------------------------------------------------


def test_deal_stages_pipeline_no_overlap(imported: Store) -> None:
    stages = imported.table("deal_stages").to_pandas()
    stages = stages.sort_values(["deal_id", "entered_at"], kind="stable")

    next_entered = stages.groupby("deal_id")["entered_at"].shift(-1)
    is_last = next_entered.isna()
    assert stages["entered_at"].notna().all()
    assert stages.loc[is_last, "exited_at"].isna().all()
    assert (stages.loc[~is_last, "exited_at"] == next_entered[~is_last]).all()
    assert (stages.loc[~is_last, "exited_at"] >= stages.loc[~is_last, "entered_at"]).all()


def test_deal_stages_pipeline_rows(imported: Store, pipeline: pd.DataFrame) -> None:
    stages = imported.table("deal_stages").to_pandas()
    per_deal = stages.groupby("deal_id")["stage"].agg(tuple)
    stage_of = pipeline.set_index("opportunity_id")["deal_stage"]

    assert len(stages) == 1_589 + 2 * (4_238 + 2_473)
    assert set(per_deal.map(len).index) == set(stage_of[stage_of != "Prospecting"].index)
    assert set(per_deal[stage_of[stage_of == "Won"].index]) == {("Engaging", "Won")}
    assert set(per_deal[stage_of[stage_of == "Lost"].index]) == {("Engaging", "Lost")}
    assert set(per_deal[stage_of[stage_of == "Engaging"].index]) == {("Engaging",)}


def test_deal_stages_closed_entered_at_close(imported: Store) -> None:
    stages = imported.table("deal_stages").to_pandas()
    deals = imported.table("deals").to_pandas().set_index("deal_id")
    final = stages[stages["stage"].isin(["Won", "Lost"])].set_index("deal_id")

    assert (final["entered_at"] == deals.loc[final.index, "closed_at"]).all()


# Other layouts -------------------------------------------------------------------------------


def test_deals_mapping_and_timestamps(store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {
                "Record ID": "101",
                "Deal Stage": "closedwon",
                "Create Date": "2024-03-01T09:30:00+01:00",
                "closedate": "2024-04-02T10:00:00Z",
                "amount": "1200.50",
                "pipeline": "default",
            },
            {
                "Record ID": "102",
                "Deal Stage": "qualifiedtobuy",
                "Create Date": "2024-03-05",
                "closedate": "2024-06-30",
                "amount": "",
                "pipeline": "default",
            },
        ],
    )

    import_deals(store, path, mapping={"deal_id": "Record ID", "stage": "Deal Stage"})

    deals = store.table("deals").to_pandas().set_index("deal_id")
    assert deals.loc["101", "is_won"]
    assert not deals.loc["102", "is_closed"]
    assert deals.loc["101", "created_at"] == pd.Timestamp("2024-03-01T08:30:00Z")
    assert deals.loc["101", "amount"] == 1200.5
    assert pd.isna(deals.loc["102", "amount"])
    stages = store.table("deal_stages").to_pandas().set_index(["deal_id", "stage"])
    assert stages.loc[("101", "Engaging"), "exited_at"] == pd.Timestamp("2024-04-02T10:00Z")
    assert stages.loc[("102", "qualifiedtobuy"), "entered_at"] == pd.Timestamp("2024-03-05T00:00Z")
    assert pd.isna(stages.loc[("102", "qualifiedtobuy"), "exited_at"])


def test_deals_custom_stage_names(store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"id": "a", "stage": "Signed", "close_date": "2024-01-02"},
            {"id": "b", "stage": "Dropped", "close_date": "2024-01-03"},
            {"id": "c", "stage": "Won", "close_date": ""},
        ],
    )

    result = import_deals(store, path, won_stages=["signed"], lost_stages=["Dropped"])

    deals = store.table("deals").to_pandas().set_index("deal_id")
    assert deals["is_won"].to_dict() == {"a": True, "b": False, "c": False}
    assert deals["is_closed"].to_dict() == {"a": True, "b": True, "c": False}
    assert result.warnings == ()


def test_deals_closed_without_date_warning(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"id": "a", "stage": "Won", "created_at": "2024-01-02"}])

    result = import_deals(store, path)

    assert result.warnings == (
        "closed deals without a close date: 1; they have no deal_stages rows",
    )
    assert store.table("deal_stages").count().execute() == 0


# Bad input -----------------------------------------------------------------------------------

GOOD = {"deal_id": "d1", "stage": "Won", "engage_date": "2024-01-02", "close_date": "2024-02-01"}

BAD_INPUT = [
    pytest.param({"deal_id": "d2", "engage_date": "02/01/2024"}, 2, "engage_date", id="date"),
    pytest.param({"deal_id": "d2", "close_date": "2024-13-01"}, 2, "close_date", id="month"),
    pytest.param({"deal_id": "d2", "close_value": "-5"}, 2, "close_value", id="negative"),
    pytest.param({"deal_id": "d2", "close_value": "12k"}, 2, "close_value", id="not-a-number"),
    pytest.param({"deal_id": "d1"}, 2, "deal_id", id="duplicate-id"),
    pytest.param({"deal_id": ""}, 2, "deal_id", id="empty-id"),
    pytest.param({"deal_id": "d2", "stage": ""}, 2, "stage", id="empty-stage"),
    pytest.param({"deal_id": "d2", "close_date": "2023-12-01"}, 2, "close_date", id="order"),
]


@pytest.mark.parametrize(("change", "row", "column"), BAD_INPUT)
def test_deals_bad_cell(
    store: Store, tmp_path: Path, change: dict[str, str], row: int, column: str
) -> None:
    path = write_csv(tmp_path, [{**GOOD, "close_value": "10"}, {**GOOD, **change}])
    before = row_counts(store)

    with pytest.raises(InputError) as caught:
        import_deals(store, path)

    assert caught.value.file == str(path)
    assert caught.value.row == row
    assert caught.value.column == column
    assert row_counts(store) == before


def test_deals_missing_id_column(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"deal": "d1", "stage": "Won"}])
    before = row_counts(store)

    with pytest.raises(InputError, match="missing column for deal_id") as caught:
        import_deals(store, path)

    assert caught.value.file == str(path)
    assert caught.value.column == "deal_id"
    assert row_counts(store) == before


def test_deals_bad_accounts_file(store: Store, tmp_path: Path) -> None:
    deals = write_csv(tmp_path, [GOOD])
    accounts = write_csv(
        tmp_path,
        [{"account": "Acme", "employees": "10"}, {"account": "Acme", "employees": "12"}],
        name="accounts.csv",
    )
    before = row_counts(store)

    with pytest.raises(InputError, match="duplicate") as caught:
        import_deals(store, deals, accounts_file=accounts)

    assert caught.value.file == str(accounts)
    assert caught.value.row == 2
    assert caught.value.column == "account"
    assert row_counts(store) == before


# Re-import and wiring ------------------------------------------------------------------------


def test_deals_reimport_skipped(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [GOOD])

    first = api.import_file(store, path, input_format="deals")
    after_first = row_counts(store)
    second = api.import_file(store, path, input_format="deals")

    assert not first.skipped
    assert second.skipped
    assert second.import_id == first.import_id
    assert row_counts(store) == after_first
    with pytest.raises(AlreadyImportedError):
        import_deals(store, path)


def test_deals_reimport_skip_lists_unread_files(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{**GOOD, "account": "Acme"}])
    accounts = write_csv(tmp_path, [{"account": "Acme"}], name="accounts.csv")
    api.import_file(store, path, input_format="deals")

    second = api.import_file(store, path, input_format="deals", accounts_file=accounts)

    assert second.skipped
    assert second.unread == (str(accounts),)
    assert f"the other files given with it were not read either: {accounts}" in second.summary()
    assert store.table("accounts").count().execute() == 0


# A newer export of the same deals and accounts replaces them by id. Deal d1 is won, d2 lost
# and d3 open; the accounts are keyed by name.
EXPORT = [
    {**GOOD, "account": "Acme", "close_value": "100"},
    {**GOOD, "deal_id": "d2", "stage": "Lost", "account": "Globex", "close_value": "200"},
    {"deal_id": "d3", "stage": "Engaging", "engage_date": "2024-01-05", "account": "Acme"},
]
EXPORT_ACCOUNTS = [
    {"account": "Acme", "sector": "retail"},
    {"account": "Globex", "sector": "media"},
]


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> Store:
    first = tmp_path / "first"
    first.mkdir()
    import_deals(
        store,
        write_csv(first, EXPORT),
        accounts_file=write_csv(first, EXPORT_ACCOUNTS, name="accounts.csv"),
    )
    return store


def test_deals_reexport_replaces_rows(exported: Store, tmp_path: Path) -> None:
    before = row_counts(exported)
    newer = [dict(row) for row in EXPORT]
    newer[0].update(close_value="150", close_date="2024-03-01")
    accounts = [{**EXPORT_ACCOUNTS[0], "sector": "software"}, EXPORT_ACCOUNTS[1]]

    result = import_deals(
        exported,
        write_csv(tmp_path, newer),
        accounts_file=write_csv(tmp_path, accounts, name="accounts.csv"),
    )

    after = row_counts(exported)
    assert {name: after[name] for name in ("deals", "deal_stages", "accounts")} == {
        name: before[name] for name in ("deals", "deal_stages", "accounts")
    }
    assert after["imports"] == 2
    assert result.replaced == {"deals": 3, "deal_stages": 5, "accounts": 2}
    assert "replaced 3 deals, 5 deal_stages, 2 accounts from earlier imports" in result.summary()
    deals = exported.table("deals").to_pandas().set_index("deal_id")
    assert deals.loc["d1", "amount"] == 150
    assert set(deals["import_id"]) == {result.import_id}
    stays = exported.table("deal_stages").to_pandas()
    d1 = stays[stays["deal_id"] == "d1"].set_index("stage")
    # The stays derived from the newer close date replace the old ones.
    assert d1.loc["Engaging", "exited_at"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert d1.loc["Won", "entered_at"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert len(d1) == 2
    sectors = exported.table("accounts").to_pandas().set_index("account_id")["industry"]
    assert sectors.to_dict() == {"Acme": "software", "Globex": "media"}


def test_deals_partial_export_replaces_subset(exported: Store, tmp_path: Path) -> None:
    first_import = exported.table("deals").to_pandas()["import_id"].iloc[0]
    stays_before = exported.table("deal_stages").to_pandas()
    newer = [{**EXPORT[1], "close_value": "250"}]

    result = import_deals(exported, write_csv(tmp_path, newer))

    assert result.replaced == {"deals": 1, "deal_stages": 2}
    deals = exported.table("deals").to_pandas().set_index("deal_id")
    assert sorted(deals.index) == ["d1", "d2", "d3"]
    assert deals.loc["d2", "amount"] == 250
    assert deals.loc["d2", "import_id"] == result.import_id
    assert deals.loc["d1", "import_id"] == first_import
    assert deals.loc["d3", "import_id"] == first_import
    stays = exported.table("deal_stages").to_pandas()
    assert len(stays) == len(stays_before)
    assert set(stays.loc[stays["deal_id"] == "d2", "import_id"]) == {result.import_id}
    assert set(stays.loc[stays["deal_id"] != "d2", "import_id"]) == {first_import}
    # Without --accounts the stored accounts stay as they were.
    assert exported.table("accounts").count().execute() == 2


def test_deals_invalid_reexport_keeps_first(exported: Store, tmp_path: Path) -> None:
    before = row_counts(exported)
    newer = [dict(row) for row in EXPORT]
    newer[2]["engage_date"] = "05/01/2024"

    with pytest.raises(InputError, match="engage_date"):
        import_deals(exported, write_csv(tmp_path, newer))

    assert row_counts(exported) == before
    assert exported.table("deals").to_pandas().set_index("deal_id").loc["d1", "amount"] == 100


def test_deals_failed_write_restores_replaced(
    exported: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = row_counts(exported)
    deals_before = exported.table("deals").to_pandas().sort_values("deal_id", ignore_index=True)
    append = exported.append

    def append_failing_on_accounts(name: str, frame: Any) -> int:
        # The deals and their stays are already deleted and appended at this point.
        if name == "accounts":
            raise OSError("disk full")
        return append(name, frame)

    monkeypatch.setattr(exported, "append", append_failing_on_accounts)
    newer = [{**row, "close_value": "999"} for row in EXPORT]

    with pytest.raises(OSError, match="disk full"):
        import_deals(
            exported,
            write_csv(tmp_path, newer),
            accounts_file=write_csv(tmp_path, EXPORT_ACCOUNTS, name="accounts.csv"),
        )

    assert row_counts(exported) == before
    deals_after = exported.table("deals").to_pandas().sort_values("deal_id", ignore_index=True)
    pd.testing.assert_frame_equal(deals_after, deals_before)


def test_deals_cli_reexport_reports_replaced(tmp_path: Path) -> None:
    location = str(tmp_path / "store.duckdb")
    first = write_csv(tmp_path, EXPORT, name="first.csv")
    newer = write_csv(tmp_path, [{**EXPORT[0], "close_value": "150"}], name="newer.csv")
    runner = CliRunner()

    runner.invoke(app, ["import", "deals", str(first), "--store", location])
    result = runner.invoke(app, ["import", "deals", str(newer), "--store", location])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert "1 deals, 2 deal_stages; replaced 1 deals, 2 deal_stages from earlier imports" in output
    opened = Store.open(location)
    try:
        assert opened.table("deals").count().execute() == 3
    finally:
        opened.close()


def test_deals_cli_import(tmp_path: Path) -> None:
    deals = write_csv(tmp_path, [{**GOOD, "account": "Acme"}])
    accounts = write_csv(tmp_path, [{"account": "Acme", "sector": "retail"}], name="a.csv")
    location = tmp_path / "store.duckdb"

    result = CliRunner().invoke(
        app,
        ["import", "deals", str(deals), "--accounts", str(accounts), "--store", str(location)],
    )

    assert result.exit_code == 0, result.output
    opened = Store.open(location)
    try:
        assert opened.table("deals").count().execute() == 1
        assert opened.table("accounts").count().execute() == 1
    finally:
        opened.close()
