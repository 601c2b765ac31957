"""Deals and stage history from the tables that Fivetran writes for HubSpot and Salesforce.

The sample tables of Fivetran's dbt packages test each table's parsing alone, because their
ids do not join across tables. Small hand-written tables that do join test the stays.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from journeymap.cli import app
from journeymap.common.config import default_stages
from journeymap.common.errors import InputError
from journeymap.journeys.stages import stage_timeline
from journeymap.sources.crm_history import (
    HUBSPOT_DEAL_STAGE,
    SALESFORCE_OPPORTUNITY_HISTORY,
    SALESFORCE_VERSIONS,
    read_stage_history,
    read_stage_labels,
)
from journeymap.sources.deals import import_deals
from journeymap.store.store import Store

FIXTURES = "fivetran-connector-fixtures"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def lines(*rows: str) -> str:
    """Return CSV text with one row per argument."""
    return "\n".join(rows) + "\n"


def table(store: Store, name: str) -> pd.DataFrame:
    return store.table(name).to_pandas()


def stays_of(store: Store) -> list[tuple[str, str, pd.Timestamp, pd.Timestamp | None]]:
    stays = table(store, "deal_stages").sort_values(["deal_id", "entered_at"])
    return [
        (row.deal_id, row.stage, row.entered_at, None if pd.isna(row.exited_at) else row.exited_at)
        for row in stays.itertuples(index=False)
    ]


# The sample tables, each alone ---------------------------------------------------------------


def test_hubspot_deal_table_without_stages_names_row(store: Store, shared_data: Path) -> None:
    path = shared_data / FIXTURES / "hubspot" / "deal_data.csv"

    # Every deal of the sample has an empty deal_pipeline_stage_id.
    with pytest.raises(InputError, match="stage is missing") as caught:
        import_deals(store, path)

    assert caught.value.file == str(path)
    assert caught.value.row == 1
    assert caught.value.column == "deal_pipeline_stage_id"
    assert "for deal '1244495215'" in str(caught.value)
    assert "--history" in str(caught.value)
    assert store.table("deals").count().execute() == 0


def test_hubspot_sample_history_lacks_deal(store: Store, shared_data: Path) -> None:
    path = shared_data / FIXTURES / "hubspot" / "deal_data.csv"
    history = shared_data / FIXTURES / "hubspot" / "deal_stage_data.csv"

    # The sample history's deal ids do not join the sample deals.
    with pytest.raises(InputError, match="stage is missing") as caught:
        import_deals(store, path, history_file=history)

    assert caught.value.row == 1
    assert (
        f"stage is missing for deal '1244495215', and {history} has no stage entries for it"
    ) in str(caught.value)
    assert "pass a stage history" not in str(caught.value)
    assert store.table("deals").count().execute() == 0


def test_hubspot_deal_table_parses(store: Store, shared_data: Path, tmp_path: Path) -> None:
    sample = pd.read_csv(shared_data / FIXTURES / "hubspot" / "deal_data.csv", dtype=str)
    sample["deal_pipeline_stage_id"] = "appointmentscheduled"
    sample.loc[[2, 5], "is_deleted"] = "true"
    path = tmp_path / "deal.csv"
    sample.to_csv(path, index=False)

    result = import_deals(store, path)

    assert len(sample) == 44
    assert result.rows["deals"] == 42
    assert "skipped 2 deleted or replaced rows" in result.warnings
    deals = table(store, "deals").set_index("deal_id")
    assert sample.loc[2, "deal_id"] not in deals.index
    first = deals.loc["1244495215"]
    assert first["name"] == "1f03614fdf8999728ac2cfeb1c4b3984"
    assert first["created_at"] == utc("2019-12-04 12:48:22")
    assert first["stage"] == "appointmentscheduled"
    assert pd.isna(first["amount"])
    assert pd.isna(first["closed_at"])
    assert not deals["is_closed"].any()


def test_hubspot_deal_stage_table_parses(shared_data: Path) -> None:
    history = read_stage_history(shared_data / FIXTURES / "hubspot" / "deal_stage_data.csv")

    assert history.layout == HUBSPOT_DEAL_STAGE
    entries = history.entries
    assert len(entries) == 14
    assert entries["deal_id"].nunique() == 14
    assert str(entries["entered_at"].dt.tz) == "UTC"
    first = entries.set_index("deal_id").loc["3954699413"]
    # Written 2021-01-07 6:49:18, with a one-digit hour.
    assert first["entered_at"] == utc("2021-01-07 06:49:18")
    assert first["stage"] == "f66ca9bc5a02c2f1513ce83f0a0e117d"
    assert len(history.warnings) == 1
    assert "kept as written" in history.warnings[0]
    assert "--stage-labels" in history.warnings[0]


def test_hubspot_deal_pipeline_stage_table_parses(shared_data: Path) -> None:
    labels = read_stage_labels(shared_data / FIXTURES / "hubspot" / "deal_pipeline_stage_data.csv")

    stages = labels.stages
    assert len(stages) == 71
    won = stages.loc["/n0+plNHbWErNq8Ek+NM3g=="]
    assert won["label"] == "HloNyGJEOLMWtXLjmapLQw=="
    assert won["pipeline"] == "wh+Wm18D0z1D4E+PE252gg=="
    assert bool(won["is_won"])
    assert bool(won["is_closed"])
    assert int(stages["is_won"].sum()) == 5
    assert not stages["is_won"].isna().any()
    # Deleted stages still name their ids.
    assert stages.loc["ZXZ9EEMOS4elbp9y+Drm5w==", "label"] == "NM3AcI1DeD1RwKCfKms1kA=="


def test_salesforce_opportunity_table_all_deleted(store: Store, shared_data: Path) -> None:
    path = shared_data / FIXTURES / "salesforce" / "sf_opportunity_data.csv"

    result = import_deals(store, path)

    # Every opportunity of the sample has is_deleted true.
    assert result.rows["deals"] == 0
    assert result.warnings == ("skipped 10 deleted or replaced rows",)


@pytest.fixture
def opportunities(shared_data: Path) -> pd.DataFrame:
    """The sample opportunities with ``is_deleted`` cleared."""
    sample = pd.read_csv(
        shared_data / FIXTURES / "salesforce" / "sf_opportunity_data.csv", dtype=str
    )
    sample["is_deleted"] = "false"
    return sample


def test_salesforce_opportunity_flags_decide_outcome(
    store: Store, opportunities: pd.DataFrame, tmp_path: Path
) -> None:
    # "Chewbaca" closed on 2018-12-07, twelve days before it was created.
    kept = opportunities[opportunities["name"] != "Chewbaca"]
    path = tmp_path / "opportunity.csv"
    kept.to_csv(path, index=False)

    result = import_deals(store, path)

    # Two of the nine rows are replaced versions (_fivetran_active false).
    assert result.rows["deals"] == 7
    assert "skipped 2 deleted or replaced rows" in result.warnings
    deals = table(store, "deals").set_index("name")
    assert "lu test 1" not in deals.index
    assert "Testing Order from Process" not in deals.index
    # The stage names are scrambled, so only the flags can tell won from lost.
    assert sorted(deals.index[deals["is_won"]]) == [
        "$1m deal",
        "Test",
        "Testing Opp Close",
        "lu test 3",
    ]
    assert sorted(deals.index[deals["is_closed"] & ~deals["is_won"]]) == [
        "Blue Test -",
        "Evergreen Test",
        "lu test 2",
    ]
    big = deals.loc["$1m deal"]
    assert big["deal_id"] == "006q000000HddohAAB"
    assert big["account_id"] == "9CcfAt8qtZvCTwFvwOFLcg=="
    assert big["amount"] == 24_120_000.0
    assert big["owner"] == "rQhle3uwQbFgFmLTF1WByg=="
    assert big["stage"] == "GavUFuuf4DrnQAoiRGlWpQ=="
    assert big["created_at"] == utc("2018-12-19 19:51:13")
    assert big["closed_at"] == utc("2018-12-19")


def test_salesforce_opportunity_closed_before_created(
    store: Store, opportunities: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "opportunity.csv"
    opportunities.to_csv(path, index=False)

    with pytest.raises(InputError, match="before the start date") as caught:
        import_deals(store, path)

    assert caught.value.row == 5
    assert caught.value.column == "close_date"


def test_salesforce_history_table_parses(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / FIXTURES / "salesforce" / "sf_opportunity_history_data.csv"
    sample = pd.read_csv(source, dtype=str)
    sample["is_deleted"] = "false"
    cleared = tmp_path / "opportunity_history.csv"
    sample.to_csv(cleared, index=False)

    as_written = read_stage_history(source)
    history = read_stage_history(cleared)

    assert as_written.entries.empty
    assert as_written.warnings == [f"skipped 10 deleted rows of {source}"]
    assert history.layout == SALESFORCE_VERSIONS
    assert history.warnings == []
    entries = history.entries.set_index("deal_id")
    # Ten opportunities with one version each; replaced versions are history, so kept.
    assert len(entries) == 10
    assert entries.loc["006q000000HdOhuAAF", "stage"] == "9RN9J3tlxr89gDctReax5w=="
    assert entries.loc["006q000000HdOhuAAF", "entered_at"] == utc("2019-04-03 18:36:06")


# Hand-written tables that join -----------------------------------------------------------------

HUBSPOT_DEALS = lines(
    "deal_id,is_deleted,deal_pipeline_id,deal_pipeline_stage_id,property_dealname,"
    "property_amount,property_createdate,property_closedate",
    "101,false,default,3005,Acme renewal,1200.5,2024-01-01 09:00:00,2024-01-20 00:00:00",
    "102,false,default,,Globex pilot,300,2024-01-02 09:00:00,",
    "103,false,default,3001,Initech trial,,2024-01-03 09:00:00,",
    "104,true,default,3001,Deleted deal,,2024-01-03 09:00:00,",
)

HUBSPOT_DEAL_STAGES = lines(
    "_fivetran_start,deal_id,_fivetran_active,_fivetran_end,date_entered,source,source_id,value",
    "2024-01-01 9:00:00,101,false,2024-01-05 10:00:00,2024-01-01 9:00:00,CRM_UI,u1,3001",
    "2024-01-05 10:00:00,101,false,2024-01-10 11:00:00,2024-01-05 10:00:00,CRM_UI,u1,3002",
    "2024-01-10 11:00:00,101,false,2024-01-12 08:00:00,2024-01-10 11:00:00,CRM_UI,u1,3003",
    "2024-01-12 08:00:00,101,false,2024-01-20 12:00:00,2024-01-12 08:00:00,CRM_UI,u1,3002",
    "2024-01-20 12:00:00,101,true,9999-12-31 23:59:59,2024-01-20 12:00:00,CRM_UI,u1,3005",
    "2024-01-02 09:00:00,102,false,2024-01-04 09:00:00,,CRM_UI,u2,3001",
    "2024-01-04 09:00:00,102,true,9999-12-31 23:59:59,2024-01-04 09:00:00,CRM_UI,u2,3002",
    "2024-01-06 09:00:00,999,true,9999-12-31 23:59:59,2024-01-06 09:00:00,CRM_UI,u3,3001",
)

HUBSPOT_STAGE_LABELS = lines(
    "_fivetran_deleted,closed_won,is_closed,display_order,probability,stage_id,label,pipeline_id",
    "false,false,false,0,0.2,3001,Appointment Scheduled,default",
    "false,false,false,1,0.4,3002,Demo Scheduled,default",
    "false,false,false,2,0.9,3003,Contract Sent,default",
    "false,false,true,3,0.0,3004,Lost for good,default",
    "false,true,true,4,1.0,3005,Signed,default",
)


@pytest.fixture
def hubspot(tmp_path: Path) -> dict[str, Path]:
    return {
        "deals": write(tmp_path, "deal.csv", HUBSPOT_DEALS),
        "history": write(tmp_path, "deal_stage.csv", HUBSPOT_DEAL_STAGES),
        "labels": write(tmp_path, "deal_pipeline_stage.csv", HUBSPOT_STAGE_LABELS),
    }


def test_hubspot_joined_tables_give_exact_stays(store: Store, hubspot: dict[str, Path]) -> None:
    result = import_deals(
        store,
        hubspot["deals"],
        history_file=hubspot["history"],
        stage_labels_file=hubspot["labels"],
    )

    # A return to Demo Scheduled after Contract Sent is a stay of its own.
    assert stays_of(store) == [
        ("101", "Appointment Scheduled", utc("2024-01-01 09:00"), utc("2024-01-05 10:00")),
        ("101", "Demo Scheduled", utc("2024-01-05 10:00"), utc("2024-01-10 11:00")),
        ("101", "Contract Sent", utc("2024-01-10 11:00"), utc("2024-01-12 08:00")),
        ("101", "Demo Scheduled", utc("2024-01-12 08:00"), utc("2024-01-20 12:00")),
        ("101", "Signed", utc("2024-01-20 12:00"), None),
        # An empty date_entered falls back to _fivetran_start.
        ("102", "Appointment Scheduled", utc("2024-01-02 09:00"), utc("2024-01-04 09:00")),
        ("102", "Demo Scheduled", utc("2024-01-04 09:00"), None),
    ]
    assert set(table(store, "deal_stages")["pipeline"]) == {"default"}
    assert result.rows == {"deals": 3, "deal_stages": 7}
    assert "skipped 1 deleted or replaced row" in result.warnings
    assert (
        f"left out 1 stage entry of {hubspot['history']} for 1 deal not among the imported "
        "deals (for example '999')"
    ) in result.warnings
    assert (
        f"no deal_stages rows for 1 deal without entries in {hubspot['history']} "
        "(for example '103')"
    ) in result.warnings


def test_hubspot_labels_name_deal_stages(store: Store, hubspot: dict[str, Path]) -> None:
    import_deals(
        store,
        hubspot["deals"],
        history_file=hubspot["history"],
        stage_labels_file=hubspot["labels"],
    )

    deals = table(store, "deals").set_index("deal_id")
    assert deals.loc["101", "stage"] == "Signed"
    # "Signed" is no won stage name: the stage table's closed_won flag decides.
    assert bool(deals.loc["101", "is_won"])
    assert bool(deals.loc["101", "is_closed"])
    # The empty stage cell takes the stage of the deal's last history entry.
    assert deals.loc["102", "stage"] == "Demo Scheduled"
    assert not deals.loc["102", "is_closed"]
    assert deals.loc["103", "stage"] == "Appointment Scheduled"
    assert deals.loc["101", "amount"] == 1200.5
    assert deals.loc["101", "name"] == "Acme renewal"


def test_hubspot_without_labels_keeps_ids(store: Store, hubspot: dict[str, Path]) -> None:
    result = import_deals(store, hubspot["deals"], history_file=hubspot["history"])

    assert table(store, "deals").set_index("deal_id").loc["101", "stage"] == "3005"
    assert {stay[1] for stay in stays_of(store)} == {"3001", "3002", "3003", "3005"}
    kept_as_ids = [warning for warning in result.warnings if "kept as written" in warning]
    assert len(kept_as_ids) == 2
    assert any(str(hubspot["history"]) in warning for warning in kept_as_ids)
    assert any(str(hubspot["deals"]) in warning for warning in kept_as_ids)


def test_hubspot_unknown_stage_id_warns(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    labels = write(
        tmp_path, "labels.csv", HUBSPOT_STAGE_LABELS.replace("3003,Contract", "3333,Contract")
    )

    result = import_deals(
        store, hubspot["deals"], history_file=hubspot["history"], stage_labels_file=labels
    )

    assert "3003" in {stay[1] for stay in stays_of(store)}
    assert (
        f"kept 1 stage id of {hubspot['history']} as written, because {labels} lacks them "
        "(for example '3003')"
    ) in result.warnings


SALESFORCE_OPPORTUNITIES = lines(
    "id,account_id,name,stage_name,amount,close_date,created_date,is_won,is_closed,"
    "is_deleted,owner_id,type,lead_source,_fivetran_active",
    "006A,001A,Acme expansion,Closed Won,5000,2024-02-01,2024-01-01 08:00:00,true,true,"
    "false,005X,New Business,Web,true",
    "006B,001B,Globex,Demo Scheduled,800,2024-03-01,2024-01-02 08:00:00,false,false,false,"
    "005X,New Business,Web,true",
)

# Versions of 006A: the amount changes twice within Prospecting, the close date within Demo
# Scheduled, and the deal goes back from Proposal to Demo Scheduled. One version is deleted.
SALESFORCE_VERSIONS_TABLE = lines(
    "_fivetran_active,_fivetran_start,_fivetran_end,id,stage_name,amount,is_deleted",
    "false,2024-01-01 08:00:00,2024-01-02 08:59:59,006A,Prospecting,1000,false",
    "false,2024-01-02 09:00:00,2024-01-04 23:59:59,006A,Prospecting,1500,false",
    "false,2024-01-05 10:00:00,2024-01-06 10:59:59,006A,Demo Scheduled,1500,false",
    "false,2024-01-06 11:00:00,2024-01-09 23:59:59,006A,Demo Scheduled,1500,false",
    "false,2024-01-10 12:00:00,2024-01-11 23:59:59,006A,Proposal Sent,4000,false",
    "false,2024-01-12 12:00:00,2024-01-14 23:59:59,006A,Proposal Sent,4000,true",
    "false,2024-01-15 09:00:00,2024-01-19 23:59:59,006A,Demo Scheduled,4000,false",
    "true,2024-01-20 15:00:00,9999-12-31 23:59:59,006A,Closed Won,5000,false",
    "true,2024-01-03 08:00:00,9999-12-31 23:59:59,006B,Demo Scheduled,800,false",
)

SALESFORCE_OPPORTUNITY_HISTORY_EXPORT = lines(
    "Id,OpportunityId,StageName,Amount,CreatedDate,IsDeleted",
    "00kA5,006A,Demo Scheduled,4000,2024-01-15T09:00:00.000Z,false",
    "00kA1,006A,Prospecting,1000,2024-01-01T08:00:00.000+0000,false",
    "00kA2,006A,Prospecting,1500,2024-01-02T09:00:00.000Z,false",
    "00kA3,006A,Demo Scheduled,1500,2024-01-05T10:00:00.000Z,false",
    "00kA4,006A,Proposal Sent,4000,2024-01-10T12:00:00.000Z,false",
    "00kA9,006A,Negotiation,4000,2024-01-12T12:00:00.000Z,true",
    "00kA6,006A,Closed Won,5000,2024-01-20T15:00:00.000Z,false",
    "00kB1,006B,Demo Scheduled,800,2024-01-03T08:00:00.000Z,false",
)

SALESFORCE_STAYS = [
    ("006A", "Prospecting", utc("2024-01-01 08:00"), utc("2024-01-05 10:00")),
    ("006A", "Demo Scheduled", utc("2024-01-05 10:00"), utc("2024-01-10 12:00")),
    ("006A", "Proposal Sent", utc("2024-01-10 12:00"), utc("2024-01-15 09:00")),
    ("006A", "Demo Scheduled", utc("2024-01-15 09:00"), utc("2024-01-20 15:00")),
    ("006A", "Closed Won", utc("2024-01-20 15:00"), None),
    ("006B", "Demo Scheduled", utc("2024-01-03 08:00"), None),
]


@pytest.mark.parametrize(
    ("text", "layout"),
    [
        pytest.param(SALESFORCE_VERSIONS_TABLE, SALESFORCE_VERSIONS, id="fivetran-versions"),
        pytest.param(
            SALESFORCE_OPPORTUNITY_HISTORY_EXPORT,
            SALESFORCE_OPPORTUNITY_HISTORY,
            id="opportunity-history",
        ),
    ],
)
def test_salesforce_history_gives_exact_stays(
    store: Store, tmp_path: Path, text: str, layout: str
) -> None:
    deals = write(tmp_path, "opportunity.csv", SALESFORCE_OPPORTUNITIES)
    history = write(tmp_path, "history.csv", text)

    result = import_deals(store, deals, history_file=history)

    assert read_stage_history(history).layout == layout
    assert stays_of(store) == SALESFORCE_STAYS
    assert result.warnings == (f"skipped 1 deleted row of {history}",)
    assert table(store, "deal_stages")["pipeline"].isna().all()


def test_scd2_versions_of_one_stage_merge(tmp_path: Path) -> None:
    history = read_stage_history(write(tmp_path, "history.csv", SALESFORCE_VERSIONS_TABLE))

    acme = history.entries[history.entries["deal_id"] == "006A"]
    # Eight versions, one deleted: four changes of stage after the first.
    assert acme["stage"].tolist() == [
        "Prospecting",
        "Demo Scheduled",
        "Proposal Sent",
        "Demo Scheduled",
        "Closed Won",
    ]
    assert acme["entered_at"].iloc[0] == utc("2024-01-01 08:00")


def test_imported_history_enters_journey_stages(store: Store, tmp_path: Path) -> None:
    deals = write(tmp_path, "opportunity.csv", SALESFORCE_OPPORTUNITIES)
    history = write(tmp_path, "history.csv", SALESFORCE_VERSIONS_TABLE)
    import_deals(store, deals, history_file=history)

    timeline = stage_timeline(store, default_stages(), entity_kind="account").to_pandas()

    stays = timeline.sort_values(["entity_id", "entered_at"])
    acme = stays[stays["entity_id"] == "001A"]
    assert acme["stage"].tolist() == ["Consideration", "Decision", "Onboarding"]
    consideration = acme.iloc[0]
    assert consideration["entered_at"] == utc("2024-01-05 10:00")
    assert consideration["reason"] == "deal_stage Demo Scheduled"
    assert acme.iloc[1]["entered_at"] == utc("2024-01-10 12:00")
    assert acme.iloc[2]["entered_at"] == utc("2024-01-20 15:00")
    globex = stays[stays["entity_id"] == "001B"]
    assert globex["stage"].tolist() == ["Consideration"]
    assert globex.iloc[0]["entered_at"] == utc("2024-01-03 08:00")


# Bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "row", "column", "message"),
    [
        pytest.param(
            "2024-01-05 10:00:00,CRM_UI",
            "05/01/2024 10:00,CRM_UI",
            2,
            "date_entered",
            "not a date in ISO 8601 form",
            id="bad-timestamp",
        ),
        pytest.param(
            ",CRM_UI,u1,3003", ",CRM_UI,u1,", 3, "value", "stage is missing", id="no-stage"
        ),
        pytest.param(
            "2024-01-02 09:00:00,102,false,2024-01-04 09:00:00,,",
            ",102,false,2024-01-04 09:00:00,,",
            6,
            "date_entered",
            "stage entry time is missing",
            id="no-time",
        ),
    ],
)
def test_history_bad_cell_names_row(
    store: Store,
    hubspot: dict[str, Path],
    tmp_path: Path,
    old: str,
    new: str,
    row: int,
    column: str,
    message: str,
) -> None:
    assert old in HUBSPOT_DEAL_STAGES
    history = write(tmp_path, "bad.csv", HUBSPOT_DEAL_STAGES.replace(old, new, 1))

    with pytest.raises(InputError, match=message) as caught:
        import_deals(store, hubspot["deals"], history_file=history)

    assert caught.value.file == str(history)
    assert caught.value.row == row
    assert caught.value.column == column
    assert store.table("deals").count().execute() == 0
    assert store.table("imports").count().execute() == 0


def test_history_missing_time_column(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    text = SALESFORCE_OPPORTUNITY_HISTORY_EXPORT.replace(",CreatedDate", ",Created")
    history = write(tmp_path, "OpportunityHistory.csv", text)

    with pytest.raises(InputError, match="missing column for entered_at") as caught:
        import_deals(store, hubspot["deals"], history_file=history)

    assert caught.value.file == str(history)
    assert caught.value.column == "entered_at"
    assert "createddate" in str(caught.value)


def test_history_unknown_layout(store: Store, hubspot: dict[str, Path], tmp_path: Path) -> None:
    # HubSpot's deal_property_history: one row per change of any property.
    history = write(
        tmp_path, "other.csv", "deal_id,timestamp,name,value\n101,2024-01-01,dealstage,3001\n"
    )

    with pytest.raises(InputError, match="match no stage history layout") as caught:
        import_deals(store, hubspot["deals"], history_file=history)

    assert caught.value.file == str(history)
    assert "OpportunityHistory" in str(caught.value)


def test_stage_labels_missing_label(store: Store, hubspot: dict[str, Path], tmp_path: Path) -> None:
    labels = write(tmp_path, "labels.csv", HUBSPOT_STAGE_LABELS.replace("Contract Sent", ""))

    with pytest.raises(InputError, match="stage label is missing") as caught:
        import_deals(
            store, hubspot["deals"], history_file=hubspot["history"], stage_labels_file=labels
        )

    assert caught.value.file == str(labels)
    assert caught.value.row == 3
    assert caught.value.column == "label"


def test_stage_labels_missing_id_column(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    labels = write(tmp_path, "labels.csv", HUBSPOT_STAGE_LABELS.replace(",stage_id,", ",sid,"))

    with pytest.raises(InputError, match="missing column for stage_id") as caught:
        import_deals(
            store, hubspot["deals"], history_file=hubspot["history"], stage_labels_file=labels
        )

    assert caught.value.file == str(labels)
    assert "accepted names: stage_id, deal_pipeline_stage_id" in str(caught.value)
    # --map maps the deals file's columns, so it cannot help here.
    assert "Rename the column to one of the accepted names" in str(caught.value)
    assert "Map one with --map" not in str(caught.value)


def test_stage_labels_matching_no_id(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    # The same stages under another portal's ids.
    labels = write(tmp_path, "labels.csv", HUBSPOT_STAGE_LABELS.replace(",300", ",900"))

    with pytest.raises(InputError, match="none of the 4 stage ids") as caught:
        import_deals(
            store, hubspot["deals"], history_file=hubspot["history"], stage_labels_file=labels
        )

    assert caught.value.file == str(labels)
    assert caught.value.column == "stage_id"
    assert "(for example '3005', '3002', '3001';" in str(caught.value)
    assert "the table has '9001', '9002', '9003'" in str(caught.value)
    assert store.table("deals").count().execute() == 0
    assert store.table("imports").count().execute() == 0


def test_stage_labels_matching_deals_only(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    # Only the deals file's ids are in the table: a partial match, so a warning.
    labels = write(tmp_path, "labels.csv", HUBSPOT_STAGE_LABELS.replace(",3002,", ",9002,"))

    result = import_deals(
        store, hubspot["deals"], history_file=hubspot["history"], stage_labels_file=labels
    )

    assert result.rows["deals"] == 3
    assert (
        f"kept 1 stage id of {hubspot['history']} as written, because {labels} lacks them "
        "(for example '3002')"
    ) in result.warnings


def test_history_fills_missing_close_date(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    deals = write(
        tmp_path,
        "deal_blank.csv",
        HUBSPOT_DEALS.replace("09:00:00,2024-01-20 00:00:00", "09:00:00,"),
    )

    result = import_deals(
        store, deals, history_file=hubspot["history"], stage_labels_file=hubspot["labels"]
    )

    closed_at = table(store, "deals").set_index("deal_id")["closed_at"]
    # Deal 101 entered Signed, its closed-won stage, at 12:00 on 2024-01-20.
    assert closed_at["101"] == utc("2024-01-20 12:00")
    assert pd.isna(closed_at["102"])
    assert (
        "closed_at taken from stage history for 1 deal without a close date: the time each "
        f"entered its closing stage in {hubspot['history']}"
    ) in result.warnings
    assert not any("closed deals without a close date" in warning for warning in result.warnings)


def test_history_without_closing_stay_warns(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    # Deal 105 is lost, but its history ends in Appointment Scheduled.
    deals = write(
        tmp_path,
        "deal_lost.csv",
        HUBSPOT_DEALS + "105,false,default,3004,Hooli,,2024-01-03 09:00:00,\n",
    )
    history = write(
        tmp_path,
        "deal_stage_lost.csv",
        HUBSPOT_DEAL_STAGES
        + "2024-01-04 09:00:00,105,true,9999-12-31 23:59:59,2024-01-04 09:00:00,CRM_UI,u4,3001\n",
    )

    result = import_deals(store, deals, history_file=history, stage_labels_file=hubspot["labels"])

    deals_table = table(store, "deals").set_index("deal_id")
    assert bool(deals_table.loc["105", "is_closed"])
    assert pd.isna(deals_table.loc["105", "closed_at"])
    assert (
        f"closed deals without a close date: 1; {history} does not show when they entered "
        "their closing stage, so their closed_at is empty (for example '105')"
    ) in result.warnings
    assert not any("taken from stage history" in warning for warning in result.warnings)


def test_hubspot_reexport_replaces_stays(
    store: Store, hubspot: dict[str, Path], tmp_path: Path
) -> None:
    import_deals(
        store,
        hubspot["deals"],
        history_file=hubspot["history"],
        stage_labels_file=hubspot["labels"],
    )
    # A later export: deal 102 went on to Contract Sent, and 101's amount changed.
    deals = write(tmp_path, "deal_new.csv", HUBSPOT_DEALS.replace("1200.5", "1500"))
    history = write(
        tmp_path,
        "deal_stage_new.csv",
        HUBSPOT_DEAL_STAGES
        + "2024-01-08 09:00:00,102,true,9999-12-31 23:59:59,2024-01-08 09:00:00,CRM_UI,u2,3003\n",
    )

    result = import_deals(store, deals, history_file=history, stage_labels_file=hubspot["labels"])

    assert result.replaced == {"deals": 3, "deal_stages": 7}
    assert "replaced 3 deals, 7 deal_stages from earlier imports" in result.summary()
    deals_table = table(store, "deals").set_index("deal_id")
    assert len(deals_table) == 3
    assert deals_table.loc["101", "amount"] == 1500
    assert deals_table.loc["102", "stage"] == "Contract Sent"
    assert [stay for stay in stays_of(store) if stay[0] == "102"] == [
        ("102", "Appointment Scheduled", utc("2024-01-02 09:00"), utc("2024-01-04 09:00")),
        ("102", "Demo Scheduled", utc("2024-01-04 09:00"), utc("2024-01-08 09:00")),
        ("102", "Contract Sent", utc("2024-01-08 09:00"), None),
    ]
    assert len(stays_of(store)) == 8


def test_deal_flag_not_true_or_false(store: Store, tmp_path: Path) -> None:
    deals = write(
        tmp_path,
        "opportunity.csv",
        SALESFORCE_OPPORTUNITIES.replace("false,false,false", "false,maybe,false"),
    )

    with pytest.raises(InputError, match="neither true nor false") as caught:
        import_deals(store, deals)

    assert caught.value.file == str(deals)
    assert caught.value.row == 2
    assert caught.value.column == "is_closed"


def test_cli_import_deals_with_history(hubspot: dict[str, Path], tmp_path: Path) -> None:
    store = str(tmp_path / "store.duckdb")
    command = ["import", "deals", str(hubspot["deals"]), "--store", store]
    command += ["--history", str(hubspot["history"]), "--stage-labels", str(hubspot["labels"])]

    result = CliRunner().invoke(app, command)

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert "3 deals, 7 deal_stages" in output


def test_same_day_close_derives_empty_start_stay(store: Store, tmp_path: Path) -> None:
    # Salesforce's close_date has no time, so it falls before the same day's creation time.
    deals = write(
        tmp_path, "opportunity.csv", SALESFORCE_OPPORTUNITIES.replace("2024-02-01", "2024-01-01")
    )

    import_deals(store, deals)

    stays = table(store, "deal_stages").set_index(["deal_id", "stage"])
    engaging = stays.loc[("006A", "Engaging")]
    assert engaging["entered_at"] == utc("2024-01-01")
    assert engaging["exited_at"] == utc("2024-01-01")
    assert stays.loc[("006A", "Closed Won"), "entered_at"] == utc("2024-01-01")
