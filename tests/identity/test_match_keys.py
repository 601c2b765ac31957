"""Match keys by person: imported rows keep their person, collected rows take their identity's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.identity.match_keys import keys_by_person, person_match_keys
from journeymap.store.schema import DERIVED_TABLES, RAW_TABLES
from journeymap.store.store import Store, conform


def at(hour: int) -> datetime:
    return datetime(2026, 3, 1, hour, tzinfo=UTC)


KEYS = [
    # id, id_kind, key, value, observed_at
    ("P1", "person", "email_sha256", "e1", at(1)),
    ("P1", "person", "email_sha256", "e1", at(3)),
    ("u1", "user_id", "fbp", "fbp-1", at(2)),
    ("u1", "user_id", "fbp", "fbp-1", at(5)),
    ("a1", "anonymous_id", "fbc", "fbc-1", at(4)),
    ("a9", "anonymous_id", "fbp", "fbp-9", at(6)),
    ("x1", "device", "fbp", "fbp-x", at(7)),
    ("", "user_id", "fbp", "fbp-empty", at(8)),
]
IDENTITIES = [
    # id, kind, person_id
    ("u1", "user", "P1"),
    ("a1", "anonymous", "P1"),
    # An anonymous id that equals a user id of another person is looked up by its kind.
    ("u1", "anonymous", "P2"),
]


def keys_frame() -> pd.DataFrame:
    frame = pd.DataFrame(KEYS, columns=["id", "id_kind", "key", "value", "observed_at"])
    return frame.assign(source="test")


def identities_frame() -> pd.DataFrame:
    return pd.DataFrame(IDENTITIES, columns=["id", "kind", "person_id"])


def by_person(table: ibis.Table) -> dict[tuple[str, str, str], datetime]:
    frame = table.to_pandas()
    return {
        (row.person_id, row.key, row.value): row.observed_at
        for row in frame.itertuples(index=False)
    }


def test_person_match_keys_maps_collected_ids(store: Store) -> None:
    store.append("match_keys", keys_frame())
    store.write("identities", identities_frame())

    rows = by_person(person_match_keys(store))

    assert rows == {
        ("P1", "email_sha256", "e1"): at(1),
        ("P1", "fbp", "fbp-1"): at(2),
        ("P1", "fbc", "fbc-1"): at(4),
        ("a9", "fbp", "fbp-9"): at(6),
    }


def test_person_match_keys_without_identities(store: Store) -> None:
    store.append("match_keys", keys_frame())

    rows = by_person(person_match_keys(store))

    assert rows == {
        ("P1", "email_sha256", "e1"): at(1),
        ("u1", "fbp", "fbp-1"): at(2),
        ("a1", "fbc", "fbc-1"): at(4),
        ("a9", "fbp", "fbp-9"): at(6),
    }


def test_person_match_keys_columns(store: Store) -> None:
    table = person_match_keys(store)

    assert table.columns == ("person_id", "key", "value", "observed_at")
    assert table.count().execute() == 0


def test_person_match_keys_move_imported_ids_to_their_resolved_person(store: Store) -> None:
    store.append("match_keys", keys_frame())
    # The imported id P1 resolved to person Z (a contact merged with a visitor), as the
    # journeys re-key imported touches, so its keys follow it.
    store.write(
        "identities", pd.DataFrame({"id": ["P1"], "kind": ["contact"], "person_id": ["Z"]})
    )

    rows = by_person(person_match_keys(store))

    assert ("Z", "email_sha256", "e1") in rows
    assert not any(person == "P1" for person, _, _ in rows)


def key_rows_on(con: Any) -> pd.DataFrame:
    keys = ibis.memtable(conform(keys_frame(), RAW_TABLES["match_keys"], table_name="match_keys"))
    identities = ibis.memtable(
        conform(identities_frame(), DERIVED_TABLES["identities"], table_name="identities")
    )
    frame = con.to_pandas(keys_by_person(keys, identities))
    return frame.sort_values(["person_id", "key", "value"]).reset_index(drop=True)


@pytest.mark.spark
@pytest.mark.slow
def test_keys_by_person_same_on_spark(spark: Any) -> None:
    duck = key_rows_on(ibis.duckdb.connect())
    sparked = key_rows_on(ibis.pyspark.connect(spark))

    assert len(duck) == 4
    assert sparked[["person_id", "key", "value"]].equals(duck[["person_id", "key", "value"]])
    assert list(pd.to_datetime(sparked.observed_at, utc=True)) == list(duck.observed_at)
