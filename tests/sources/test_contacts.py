"""The CRM contacts importer: people, identity edges and hashed match keys, and its errors."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from journeymap import api
from journeymap.cli import app
from journeymap.common.errors import AlreadyImportedError, ConfigError, InputError
from journeymap.sources.contacts import import_contacts
from journeymap.store.store import Store


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Hand-normalised forms of the addresses and numbers below.
JANE = sha256("jane.doe@gmail.com")
JANE_GOOGLE = sha256("janedoe@gmail.com")
BOB = sha256("bob@acme.example")
PHONE_DIGITS = sha256("14155550123")
PHONE_E164 = sha256("+14155550123")
MOBILE_E164 = sha256("+447700900123")

HUBSPOT = (
    "hs_object_id,firstname,email,phone,mobilephone,jobtitle,associatedcompanyid,"
    "createdate,lastmodifieddate,lifecyclestage\n"
    "101,Jane, Jane.Doe@Gmail.com ,(415) 555-0123,+44 7700 900123,CMO,9001,"
    "2026-01-05T10:00:00Z,2026-02-01T09:30:00Z,lead\n"
    "102,Bob,BOB@acme.example,,,Engineer,9002,2026-01-06,,customer\n"
    "103,Ann,,,,,,2026-01-07T08:00:00Z,,subscriber\n"
)
RAW = ["jane", "Jane", "bob@", "BOB@", "555", "7700"]


def write(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rows(store: Store, table: str) -> pd.DataFrame:
    return store.table(table).to_pandas()


def keys_of(store: Store) -> dict[tuple[str, str], set[str]]:
    keys: dict[tuple[str, str], set[str]] = {}
    for row in rows(store, "match_keys").itertuples(index=False):
        assert row.id_kind == "person"
        keys.setdefault((row.id, row.key), set()).add(row.value)
    return keys


def test_import_contacts_hubspot_keys(store: Store, tmp_path: Path) -> None:
    result = import_contacts(store, write(tmp_path, HUBSPOT))

    assert result.rows == {"people": 3, "identity_edges": 2, "match_keys": 8}
    assert keys_of(store) == {
        ("101", "email_sha256"): {JANE},
        ("101", "email_sha256_google"): {JANE_GOOGLE},
        ("101", "phone_sha256_digits"): {PHONE_DIGITS, sha256("447700900123")},
        ("101", "phone_sha256_e164"): {PHONE_E164, MOBILE_E164},
        ("102", "email_sha256"): {BOB},
        ("102", "email_sha256_google"): {BOB},
    }
    frame = rows(store, "match_keys")
    assert set(frame.source) == {"crm"}
    jane = frame[frame.id == "101"]
    assert set(jane.observed_at) == {datetime(2026, 1, 5, 10, tzinfo=UTC)}


def test_import_contacts_hubspot_people(store: Store, tmp_path: Path) -> None:
    import_contacts(store, write(tmp_path, HUBSPOT))

    people = rows(store, "people").set_index("person_id")
    assert people.loc["101", "account_id"] == "9001"
    assert people.loc["101", "email_hash"] == JANE
    assert people.loc["101", "domain"] == "gmail.com"
    assert people.loc["101", "title"] == "CMO"
    assert people.loc["101", "first_seen"] == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert people.loc["101", "last_seen"] == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert people.loc["102", "email_hash"] == BOB
    assert people.loc["102", "last_seen"] == datetime(2026, 1, 6, tzinfo=UTC)
    assert pd.isna(people.loc["103", "email_hash"])
    assert pd.isna(people.loc["103", "account_id"])


def test_import_contacts_links_email_hash(store: Store, tmp_path: Path) -> None:
    import_contacts(store, write(tmp_path, HUBSPOT))

    edges = rows(store, "identity_edges").sort_values("from_id")
    assert edges.from_id.tolist() == ["101", "102"]
    assert edges.to_id.tolist() == [JANE, BOB]
    assert set(edges.from_kind) == {"contact"}
    assert set(edges.to_kind) == {"email"}
    assert edges.observed_at.tolist() == [
        datetime(2026, 1, 5, 10, tzinfo=UTC),
        datetime(2026, 1, 6, tzinfo=UTC),
    ]


def test_import_contacts_stores_no_raw_values(store: Store, tmp_path: Path) -> None:
    import_contacts(store, write(tmp_path, HUBSPOT))

    for table in ("people", "identity_edges", "match_keys"):
        frame = rows(store, table).astype(str)
        for column in frame.columns:
            for text in RAW:
                assert not frame[column].str.contains(text, regex=False).any(), (table, column)


def test_import_contacts_salesforce_layout(store: Store, tmp_path: Path) -> None:
    text = (
        "Id,AccountId,FirstName,Email,Phone,MobilePhone,Title,CreatedDate,LastModifiedDate,"
        "LeadSource\n"
        "0031x00001,0011x0001,Bob,bob@acme.example,415-555-0123,,VP Sales,"
        "2026-01-05T10:00:00.000+0000,2026-01-09T10:00:00.000Z,Web\n"
    )
    import_contacts(store, write(tmp_path, text))

    assert keys_of(store)[("0031x00001", "phone_sha256_e164")] == {PHONE_E164}
    people = rows(store, "people")
    assert people.account_id.tolist() == ["0011x0001"]
    assert people.title.tolist() == ["VP Sales"]
    assert people.last_seen.tolist() == [datetime(2026, 1, 9, 10, tzinfo=UTC)]


def test_import_contacts_hubspot_labels(store: Store, tmp_path: Path) -> None:
    text = (
        "Record ID,Email,Phone Number,Job Title,Create Date\n"
        "7,bob@acme.example,+1 415 555 0123,CFO,2026-01-05 10:00:00\n"
    )
    import_contacts(store, write(tmp_path, text))

    assert keys_of(store)[("7", "email_sha256")] == {BOB}
    assert keys_of(store)[("7", "phone_sha256_digits")] == {PHONE_DIGITS}
    people = rows(store, "people")
    assert people.first_seen.tolist() == [datetime(2026, 1, 5, 10, tzinfo=UTC)]


def test_import_contacts_epoch_milliseconds(store: Store, tmp_path: Path) -> None:
    text = "hs_object_id,email,createdate\n5,bob@acme.example,1767607200000\n"
    import_contacts(store, write(tmp_path, text))

    people = rows(store, "people")
    assert people.first_seen.tolist() == [datetime(2026, 1, 5, 10, tzinfo=UTC)]


def test_import_contacts_parquet(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "contacts.parquet"
    frame = pd.DataFrame(
        {
            "id": [11, 12],
            "email": ["bob@acme.example", None],
            "created_date": pd.to_datetime(["2026-01-05T10:00:00Z", "2026-01-06T10:00:00Z"]),
        }
    )
    frame.to_parquet(path)
    import_contacts(store, path)

    people = rows(store, "people").sort_values("person_id")
    assert people.person_id.tolist() == ["11", "12"]
    assert people.email_hash.tolist()[0] == BOB
    assert people.first_seen.tolist()[1] == datetime(2026, 1, 6, 10, tzinfo=UTC)


def test_import_contacts_mapped_columns(store: Store, tmp_path: Path) -> None:
    text = "Contact Key,Work Email,Cell\nc1,bob@acme.example,+447700900123\n"
    import_contacts(
        store,
        write(tmp_path, text),
        mapping={"contact_id": "Contact Key", "email": "Work Email", "mobile": "Cell"},
    )

    keys = keys_of(store)
    assert keys[("c1", "email_sha256")] == {BOB}
    assert keys[("c1", "phone_sha256_e164")] == {MOBILE_E164}


def test_import_contacts_phone_region(store: Store, tmp_path: Path) -> None:
    text = "id,phone\n1,07700 900123\n"
    import_contacts(store, write(tmp_path, text), phone_region="GB")

    assert keys_of(store)[("1", "phone_sha256_e164")] == {MOBILE_E164}


def test_import_contacts_unknown_region(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown phone region 'XX'"):
        import_contacts(store, write(tmp_path, "id,phone\n1,07700 900123\n"), phone_region="XX")


def test_import_contacts_keeps_hashed_email(store: Store, tmp_path: Path) -> None:
    text = f"id,email\n1,{BOB.upper()}\n"
    import_contacts(store, write(tmp_path, text))

    people = rows(store, "people")
    assert people.email_hash.tolist() == [BOB]
    assert people.domain.isna().all()
    assert keys_of(store)[("1", "email_sha256_google")] == {BOB}


def test_import_contacts_invalid_email_warns(store: Store, tmp_path: Path) -> None:
    text = "id,email,phone\n1,bob@acme.example,\n2,jane at gmail,12\n3,not-an-address,\n"
    result = import_contacts(store, write(tmp_path, text))

    assert result.rows["people"] == 3
    assert result.warnings == (
        "2 emails in column 'email' are invalid, the first in row 2; they were left out and "
        "their contacts kept",
        "1 phone numbers in column 'phone' are invalid, the first in row 2; they were left "
        "out and their contacts kept",
    )
    assert not any("jane" in warning for warning in result.warnings)


def test_import_contacts_skips_deleted_rows(store: Store, tmp_path: Path) -> None:
    text = (
        "id,property_email,_fivetran_deleted,_fivetran_active\n"
        "1,bob@acme.example,false,true\n"
        "1,old@acme.example,false,false\n"
        "2,gone@acme.example,true,\n"
    )
    result = import_contacts(store, write(tmp_path, text))

    assert rows(store, "people").person_id.tolist() == ["1"]
    assert keys_of(store) == {("1", "email_sha256"): {BOB}, ("1", "email_sha256_google"): {BOB}}
    assert result.warnings == ("2 deleted or replaced rows were skipped",)


@pytest.mark.parametrize(
    ("text", "row", "column", "message"),
    [
        ("id,email\n1,a@b.example\n,c@d.example\n", 2, "id", "contact id is missing"),
        ("id,email\n1,a@b.example\n1,c@d.example\n", 2, "id", "is a duplicate of row 1"),
        (
            "id,email,createdate\n1,a@b.example,2026-01-05\n2,c@d.example,05/01/2026\n",
            2,
            "createdate",
            "not a date in ISO 8601 form",
        ),
        ("id,email,is_deleted\n1,a@b.example,maybe\n", 1, "is_deleted", "neither true nor false"),
    ],
    ids=["missing-id", "duplicate-id", "bad-date", "bad-flag"],
)
def test_import_contacts_errors_name_row(
    store: Store, tmp_path: Path, text: str, row: int, column: str, message: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(InputError, match=message) as caught:
        import_contacts(store, path)

    assert caught.value.file == str(path)
    assert caught.value.row == row
    assert caught.value.column == column
    assert "@" not in str(caught.value)
    assert rows(store, "people").empty
    assert rows(store, "imports").empty


def test_import_contacts_needs_id_column(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing column for contact_id") as caught:
        import_contacts(store, write(tmp_path, "email\nbob@acme.example\n"))

    assert "hs_object_id" in str(caught.value)
    assert "bob@" not in str(caught.value)


def test_import_contacts_reimport_skipped(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, HUBSPOT)
    first = api.import_file(store, path, input_format="contacts")

    again = api.import_file(store, path, input_format="contacts")

    assert not first.skipped
    assert again.skipped
    assert again.import_id == first.import_id
    assert store.table("match_keys").count().execute() == 8
    with pytest.raises(AlreadyImportedError):
        import_contacts(store, path)


def test_import_contacts_fivetran_salesforce(store: Store, shared_data: Path) -> None:
    folder = shared_data / "fivetran-connector-fixtures" / "salesforce"
    contacts = import_contacts(store, folder / "sf_contact_data.csv")
    leads = import_contacts(store, folder / "sf_lead_data.csv")

    assert contacts.rows["people"] == 4
    assert leads.rows["people"] == 1
    people = rows(store, "people").set_index("person_id")
    assert people.loc["0031G00000qAfq1QAC", "email_hash"] == sha256("hi@google.com")
    assert people.loc["0031G00000qAfq1QAC", "account_id"] == "0011G00000eNyiXQAS"
    assert people.loc["00Q1G00000nDnM5UAK", "account_id"] == "0011G00000tLWKnQAO"
    keys = keys_of(store)
    assert keys[("0031G00000q9jPQAQ", "phone_sha256_e164")] == {sha256("+15555555555")}


def test_import_contacts_fivetran_hubspot(store: Store, shared_data: Path) -> None:
    path = shared_data / "fivetran-connector-fixtures" / "hubspot" / "contact_data.csv"
    result = import_contacts(store, path)

    # The fixture's emails are scrambled into 32 hex digits, which are no addresses.
    assert result.rows["people"] == 22
    assert result.rows["match_keys"] == 0
    assert len(result.warnings) == 1
    assert "column 'property_email'" in result.warnings[0]
    people = rows(store, "people").set_index("person_id")
    assert people.loc["78971951", "first_seen"] == datetime(2021, 4, 1, 17, 32, 47, tzinfo=UTC)


def test_cli_import_contacts(tmp_path: Path) -> None:
    store = str(tmp_path / "store.duckdb")
    path = write(tmp_path, HUBSPOT)

    result = CliRunner().invoke(app, ["import", "contacts", str(path), "--store", store])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert "3 people, 2 identity_edges, 8 match_keys" in output


def test_cli_import_contacts_error(tmp_path: Path) -> None:
    store = str(tmp_path / "store.duckdb")
    path = write(tmp_path, "id,email\n1,a@b.example\n1,c@d.example\n")

    result = CliRunner().invoke(app, ["import", "contacts", str(path), "--store", store])

    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert "row 2, column 'id'" in str(result.exception)


def test_import_contacts_reads_lifecycle_stage_entry_dates(tmp_path: Path) -> None:
    from journeymap.common.config import Config
    from journeymap.journeys.stages import stage_timeline

    path = tmp_path / "contacts.csv"
    pd.DataFrame(
        {
            "hs_object_id": ["11", "12"],
            "createdate": ["2026-01-02", "2026-01-03"],
            "hs_v2_date_entered_marketingqualifiedlead": ["2026-01-10", ""],
            "hs_lifecyclestage_customer_date": ["2026-03-01", ""],
            "hs_v2_date_entered_lead": ["2026-01-05", "2026-01-06"],
        }
    ).to_csv(path, index=False)
    store = Store.open()

    import_contacts(store, path)

    rows = store.table("lifecycle_stages").order_by(["person_id", "entered_at"]).to_pandas()
    assert list(zip(rows.person_id, rows.stage, strict=True)) == [
        ("11", "lead"),
        ("11", "marketingqualifiedlead"),
        ("11", "customer"),
        ("12", "lead"),
    ]
    timeline = stage_timeline(store, Config().stages).order_by("entered_at").to_pandas()
    first = timeline[timeline.entity_id == "11"]
    assert first.stage.tolist() == ["Consideration", "Onboarding"]
    assert first.reason.tolist() == ["lifecycle_stage lead", "lifecycle_stage customer"]


def test_check_stages_names_the_nearest_lifecycle_stage(tmp_path: Path) -> None:
    from journeymap.common.config import parse_config
    from journeymap.common.errors import ConfigError
    from journeymap.journeys.stages import check_stages

    path = tmp_path / "contacts.csv"
    pd.DataFrame(
        {"hs_object_id": ["11"], "hs_v2_date_entered_marketingqualifiedlead": ["2026-01-10"]}
    ).to_csv(path, index=False)
    store = Store.open()
    import_contacts(store, path)
    stages = parse_config(
        {"stages": [{"name": "MQL", "enter_when": [{"lifecycle_stage": "marketingqualifiedleed"}]}]}
    ).stages

    with pytest.raises(ConfigError, match="marketingqualifiedlead"):
        check_stages(stages, store)
