"""Match keys of collected messages: hashed emails and phones and raw cookies, drained once."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from journeymap.collect import drain, journal
from journeymap.collect.identifiers import message_match_keys, without_phones
from journeymap.collect.messages import accept
from journeymap.store.store import Store
from tests.collect.test_tag import LANDING, bodies, needs_node, page_load, run_tag

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EMAIL = " Jane.Doe@Gmail.com "
PHONE = "(415) 555-0123"
UK_MOBILE = "+44 7700 900123"
FBP = "fb.1.1709290800000.1234567890"
FBC = "fb.1.1709290800000.IwAR2xYz"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Digests of the normalised forms, written out by hand: lowercased and trimmed email, Gmail's
# dots removed for Google, E.164 with and without the plus sign.
EMAIL_SHA256 = sha256("jane.doe@gmail.com")
EMAIL_GOOGLE = sha256("janedoe@gmail.com")
PHONE_DIGITS = sha256("14155550123")
PHONE_E164 = sha256("+14155550123")


def write_journal(path: Path, messages: list[dict[str, Any]]) -> None:
    rows = accept(messages, source="web", received_at=RECEIVED, message_limit=32_768)
    con = journal.connect(path)
    try:
        journal.append(con, rows)
    finally:
        con.close()


def identify(message_id: str = "m1", **fields: Any) -> dict[str, Any]:
    message = {
        "type": "identify",
        "messageId": message_id,
        "userId": "u1",
        "anonymousId": "a1",
        "timestamp": "2026-03-01T11:00:00Z",
        "traits": {"Email": EMAIL, "phone": PHONE, "plan": "trial"},
    }
    message.update(fields)
    return message


def drained(tmp_path: Path, messages: list[dict[str, Any]], **options: Any) -> Store:
    path = tmp_path / "events.journal"
    write_journal(path, messages)
    store = Store.open(tmp_path / "store.duckdb")
    drain.drain_store(store, path, **options)
    return store


def keys_of(store: Store) -> dict[tuple[str, str, str], str]:
    frame = store.table("match_keys").to_pandas()
    return {(row.id, row.id_kind, row.key): row.value for row in frame.itertuples(index=False)}


def test_drain_writes_hashed_email_and_phone_keys(tmp_path: Path) -> None:
    store = drained(tmp_path, [identify()])

    keys = keys_of(store)
    assert keys == {
        ("u1", "user_id", "email_sha256"): EMAIL_SHA256,
        ("u1", "user_id", "email_sha256_google"): EMAIL_GOOGLE,
        ("u1", "user_id", "phone_sha256_digits"): PHONE_DIGITS,
        ("u1", "user_id", "phone_sha256_e164"): PHONE_E164,
    }
    row = store.table("match_keys").to_pandas().iloc[0]
    assert row.observed_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert row.source == "web"
    assert row.import_id == store.table("events").import_id.to_pyarrow().to_pylist()[0]
    store.close()


def test_drain_stores_no_raw_email_or_phone(tmp_path: Path) -> None:
    message = identify(
        properties={"PHONE_NUMBER": PHONE, "mobile": UK_MOBILE, "email": EMAIL},
        context={"traits": {"phone": PHONE}},
    )
    store = drained(tmp_path, [message])

    # Hex digests cannot contain "j" or a space, and a run of seven digits is unlikely.
    raw = ["jane", "Jane", "555-0123", "5550123", "7700 900123", "7700900123"]
    for table in ("events", "match_keys"):
        frame = store.table(table).to_pandas().astype(str)
        for column in frame.columns:
            for text in raw:
                assert not frame[column].str.contains(text, regex=False).any(), (table, column)
    traits = json.loads(store.table("events").traits.to_pyarrow().to_pylist()[0])
    assert traits == {"plan": "trial"}
    assert store.table("events").properties.to_pyarrow().to_pylist() == [None]
    store.close()


def test_drain_hashes_phone_in_configured_region(tmp_path: Path) -> None:
    message = identify(traits={"phone": "020 7946 0123"})
    store = drained(tmp_path, [message], phone_region="GB")

    keys = keys_of(store)
    assert keys[("u1", "user_id", "phone_sha256_e164")] == sha256("+442079460123")
    assert keys[("u1", "user_id", "phone_sha256_digits")] == sha256("442079460123")
    store.close()


def test_drain_keeps_cookies_and_lead_id_raw(tmp_path: Path) -> None:
    message = {
        "type": "page",
        "messageId": "p1",
        "anonymousId": "a7",
        "context": {
            "_fbp": FBP,
            "traits": {"fbc": "fb.1.1.ignored"},
            "page": {"url": "https://www.example.com/?li_fat_id=LI-42"},
        },
        "properties": {"_fbc": FBC, "lead_id": 123456789012345},
    }
    store = drained(tmp_path, [message])

    assert keys_of(store) == {
        ("a7", "anonymous_id", "fbp"): FBP,
        ("a7", "anonymous_id", "fbc"): "fb.1.1.ignored",
        ("a7", "anonymous_id", "li_fat_id"): "LI-42",
        ("a7", "anonymous_id", "lead_id"): "123456789012345",
    }
    store.close()


def test_drain_redrain_writes_no_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, [identify("m1"), identify("m2", context={"_fbp": FBP})])
    store = Store.open(tmp_path / "store.duckdb")

    assert drain.drain_store(store, path) == 2
    assert drain.drain_store(store, path) == 0
    write_journal(path, [identify("m1")])  # a retry with the same messageId

    assert drain.drain_store(store, path) == 0
    # One row per id, key and value for the chunk: the two identify calls share their keys.
    assert store.table("match_keys").count().execute() == 5
    store.close()


def test_drain_keeps_first_time_per_key(tmp_path: Path) -> None:
    later = identify("m1", timestamp="2026-03-01T11:30:00Z")
    earlier = identify("m2", timestamp="2026-03-01T10:15:00Z")
    store = drained(tmp_path, [later, earlier])

    times = set(store.table("match_keys").observed_at.to_pyarrow().to_pylist())
    assert times == {datetime(2026, 3, 1, 10, 15, tzinfo=UTC)}
    store.close()


def test_drain_failure_writes_no_keys(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, [identify()])
    store = Store.open(tmp_path / "store.duckdb")
    original = store.append

    def fail_on_imports(name: str, frame: object) -> int:
        if name == "imports":
            raise OSError("disk full")
        return original(name, frame)  # type: ignore[arg-type]

    failing = mock.patch.object(store, "append", side_effect=fail_on_imports)
    with failing, pytest.raises(OSError, match="disk full"):
        drain.drain_store(store, path)
    assert store.table("match_keys").count().execute() == 0

    assert drain.drain_store(store, path) == 1
    assert store.table("match_keys").count().execute() == 4
    store.close()


def test_try_drain_store_writes_keys(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    write_journal(path, [identify()])
    store_path = tmp_path / "store.duckdb"

    assert drain.try_drain_store(str(store_path), path, phone_region="US") == 1
    store = Store.open(store_path)
    assert keys_of(store)[("u1", "user_id", "phone_sha256_e164")] == PHONE_E164
    store.close()


def test_message_match_keys_invalid_values_give_none() -> None:
    message = {"traits": {"email": "not an address", "phone": "12", "mobile": True}}
    event = {"anonymous_id": "a1", "timestamp": RECEIVED, "source": "web"}

    assert message_match_keys(message, event) == []


def test_message_match_keys_need_an_id() -> None:
    message = {"traits": {"email": EMAIL}}

    assert message_match_keys(message, {"timestamp": RECEIVED, "source": "web"}) == []


def test_without_phones_any_case() -> None:
    fields = {"Phone": "1", "MOBILE": "2", "phoneNumber": "3", "plan": "x"}

    assert without_phones(fields) == {"plan": "x"}


@needs_node
def test_tag_sends_meta_cookies_in_context() -> None:
    output = run_tag(page_load(LANDING), cookies={"_fbp": FBP, "_fbc": FBC, "other": "1"})

    (message,) = bodies(output["loads"][0])
    assert message["context"]["_fbp"] == FBP
    assert message["context"]["_fbc"] == FBC
    assert "other" not in message["context"]


@needs_node
def test_tag_without_meta_cookies_sends_none() -> None:
    output = run_tag(page_load(LANDING))

    (message,) = bodies(output["loads"][0])
    assert "_fbp" not in message["context"]
    assert "_fbc" not in message["context"]
