"""Identity resolution gives the same people on DuckDB and on Spark, and runs many rounds there."""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.common.config import FREE_MAIL_DOMAINS
from journeymap.identity import USER, edges_from_events, people_and_accounts, person_of, resolve
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform
from tests.identity.calls import WORKED_EXAMPLE, events_table, group, identify, link

pytestmark = pytest.mark.spark

CALLS = [
    *WORKED_EXAMPLE,
    group("acme", user="bob"),
    identify("alice", email_hash="h-alice", email_domain="globex.com"),
]


def identity_tables(con: Any) -> dict[str, pd.DataFrame]:
    """Return every identity table of CALLS on ``con``, sorted, as text with nulls as "None"."""
    events = events_table(CALLS, con)
    edges = edges_from_events(events)
    identities = resolve(edges)
    people, accounts = people_and_accounts(events, identities, free_mail_domains=FREE_MAIL_DOMAINS)
    tables = {
        "edges": (edges, ["from_id", "to_id"]),
        "identities": (identities, ["id", "kind"]),
        "events": (person_of(events, identities).select("seq", "person_id"), ["seq"]),
        "people": (people, ["person_id"]),
        "accounts": (accounts, ["account_id"]),
    }
    frames = {}
    for name, (table, keys) in tables.items():
        frame = table.to_pandas().sort_values(keys).reset_index(drop=True)
        # Engines return a null integer as None or as NaN; both mean null here.
        frames[name] = frame.astype(object).where(frame.notna(), None).astype(str)
    return frames


def test_worked_example_same_on_spark(spark: Any) -> None:
    duck = identity_tables(ibis.duckdb.connect())
    sparked = identity_tables(ibis.pyspark.connect(spark))

    assert dict(zip(duck["events"].seq, duck["events"].person_id, strict=True)) == {
        "1": "alice",
        "2": "bob",
        "3": "bob",
        "4": "alice",
        "5": "alice",
        "6": "alice",
        "7": "bob",
        "8": "alice",
    }
    for name, frame in duck.items():
        pd.testing.assert_frame_equal(frame, sparked[name], obj=name)


def test_long_chain_on_spark(spark: Any) -> None:
    links = [link(f"u{n + 1:02d}", USER, f"u{n:02d}", USER, at=n) for n in range(1, 16)]
    schema = RAW_TABLES["identity_edges"]
    frame = pd.DataFrame(links)
    con = ibis.pyspark.connect(spark)
    edges = con.create_table(
        "identity_edges", conform(frame, schema, table_name="identity_edges"), overwrite=True
    )

    # Sixteen rounds: each round's labels must not carry the plans of the rounds before.
    identities = resolve(edges, max_iterations=16).to_pandas()

    assert len(identities) == 16
    assert set(identities.person_id) == {"u01"}
