"""Builders of small event and edge tables for the identity tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from journeymap.identity import ANONYMOUS, USER
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform

T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def minute(n: float) -> pd.Timestamp:
    """Return the moment ``n`` minutes after 2024-03-01 00:00 UTC."""
    return T0 + pd.Timedelta(minutes=n)


def identify(user: str, anonymous: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": "identify", "user_id": user, "anonymous_id": anonymous, **fields}


def track(event: str, *, anonymous: str | None = None, user: str | None = None) -> dict[str, Any]:
    return {"type": "track", "event": event, "anonymous_id": anonymous, "user_id": user}


def alias(previous: str, user: str) -> dict[str, Any]:
    return {"type": "alias", "previous_id": previous, "user_id": user}


def group(
    group_id: str, *, user: str | None = None, anonymous: str | None = None
) -> dict[str, Any]:
    return {"type": "group", "group_id": group_id, "user_id": user, "anonymous_id": anonymous}


WORKED_EXAMPLE = [
    identify("alice", "anon_a1"),
    identify("bob", "anon_b1"),
    track("Demo Requested", anonymous="anon_b1"),
    identify("alice", "anon_b1"),
    track("Pricing Viewed", anonymous="anon_a2"),
    identify("alice", "anon_a2"),
]
"""Calls in time order: bob owns anon_b1 because he was identified with it before alice."""


def events_arrow(calls: Sequence[dict[str, Any]]) -> pa.Table:
    """Return ``calls`` as rows of the events table, one minute apart in the given order.

    Each call gets ``message_id`` m1, m2, ... and ``seq`` 1, 2, ..., and may set its own
    ``timestamp`` or other columns.
    """
    rows = []
    for number, call in enumerate(calls, start=1):
        row = {"message_id": f"m{number}", "seq": number, "timestamp": minute(number)}
        rows.append({**row, **call})
    return conform(pd.DataFrame(rows), RAW_TABLES["events"], table_name="events")


def events_table(calls: Sequence[dict[str, Any]], con: Any = None) -> ibis.Table:
    """Return the events of ``calls`` as a memtable, or as the table ``events`` on ``con``."""
    data = events_arrow(calls)
    if con is None:
        return ibis.memtable(data)
    return con.create_table("events", data, overwrite=True)


def link(
    from_id: str,
    from_kind: str,
    to_id: str,
    to_kind: str,
    at: float | None = 0.0,
) -> dict[str, Any]:
    """Return one identity edge observed ``at`` minutes after T0 (None: no timestamp)."""
    return {
        "from_id": from_id,
        "from_kind": from_kind,
        "to_id": to_id,
        "to_kind": to_kind,
        "observed_at": None if at is None else minute(at),
        "source": "test",
    }


def identify_link(anonymous: str, user: str, at: float = 0.0) -> dict[str, Any]:
    return link(anonymous, ANONYMOUS, user, USER, at)


def edges_table(links: Sequence[dict[str, Any]]) -> ibis.Table:
    """Return ``links`` as a memtable in the identity_edges schema."""
    schema = RAW_TABLES["identity_edges"]
    frame = pd.DataFrame(
        list(links), columns=[name for name in schema.names if name != "import_id"]
    )
    return ibis.memtable(conform(frame, schema, table_name="identity_edges"))


def people_of(identities: ibis.Table) -> dict[str, set[str]]:
    """Return {person_id: the ids of that person} from a ``resolve`` result."""
    people: dict[str, set[str]] = {}
    for row in identities.to_pandas().itertuples():
        people.setdefault(str(row.person_id), set()).add(str(row.id))
    return people


def sorted_frame(table: ibis.Table, keys: Sequence[str]) -> pd.DataFrame:
    """Return ``table`` as a frame sorted by ``keys``, with a fresh index."""
    frame: pd.DataFrame = table.to_pandas()
    return frame.sort_values(list(keys), na_position="first").reset_index(drop=True)
