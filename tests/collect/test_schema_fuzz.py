"""Schema-driven fuzzing of the collector: no request that Schemathesis builds gets a 5xx.

Schemathesis 4 reads the app's OpenAPI document and sends valid and invalid bodies to every
operation in-process (ASGI, with the app's lifespan running, so the journal writer is up).
Most cases carry the source's write key as HTTP Basic user name, so that they reach
validation and the journal. The rest carry no key or an unknown one. The run is bounded and
derandomized so that it takes the same cases, and about the same time, on every run.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from journeymap.collect.app import create_app
from journeymap.collect.drain import journal_events
from journeymap.common.config import parse_config

WRITE_KEY = "fuzz-key"
UNKNOWN_KEY = "not-a-key"
MAX_EXAMPLES = 50


def basic(key: str) -> dict[str, str]:
    """Return the HTTP Basic header that carries ``key`` as user name and no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def collector_app(folder: Path) -> Any:
    """Build the collector with one source, a journal in ``folder`` and no store drain."""
    config = parse_config(
        {
            "store": str(folder / "store.duckdb"),
            "collector": {"sources": {"web": {"write_key": WRITE_KEY}}},
        }
    )
    return create_app(
        config, journal_path=folder / "collector.journal", store_path=None, drain_every=3600
    )


# NOTE: the schema is loaded at import because schemathesis 4.32's lazy loader
# (`schemathesis.pytest.from_fixture`) sets `Function._nodeid`, which pytest 9 no longer has.
# Loading starts the app's lifespan, so the journal lives in a folder made here.
FOLDER = Path(tempfile.mkdtemp(prefix="journeymap-fuzz-"))
schema = schemathesis.openapi.from_asgi("/openapi.json", collector_app(FOLDER))


@pytest.fixture(scope="module", autouse=True)
def _stop_fuzzed_app() -> Iterator[None]:
    """Stop the fuzzed app's lifespan (closing its journal) and remove its folder."""
    yield
    shutdown_lifespans()
    shutil.rmtree(FOLDER, ignore_errors=True)


def key_of(draw: int) -> str | None:
    """Return the valid key for draws 0 to 7, no key for 8 and an unknown key for 9."""
    if draw < 8:
        return WRITE_KEY
    if draw == 8:
        return None
    return UNKNOWN_KEY


# Hypothesis shrinks towards 0, so a failure is reported with the valid key when it can be.
credentials = st.integers(min_value=0, max_value=9).map(key_of)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
@schema.given(key=credentials)
def test_collector_api_has_no_server_error(case: schemathesis.Case[Any], key: str | None) -> None:
    headers = basic(key) if key is not None else None
    case.call_and_validate(headers=headers, checks=[not_a_server_error])


def test_basic_auth_key_reaches_journal(tmp_path: Path) -> None:
    """The key the fuzzed cases send is accepted, so those cases reach the journal writer."""
    app = collector_app(tmp_path)
    body = {"batch": [{"type": "track", "event": "A", "userId": "u"}]}

    with TestClient(app) as client:
        response = client.post("/v1/batch", json=body, headers=basic(WRITE_KEY))

    assert response.status_code == 200
    assert response.json()["stored"] == 1


# Times whose arithmetic overflows Python's datetime (years 1 to 9999). The fuzzing above found
# the first. Each must be rejected with a 400, not a 500 from an OverflowError.
OUT_OF_RANGE_TIMES = {
    # Skew correction: receivedAt - (sentAt - timestamp) falls before year 1.
    "sent_at_far_after_timestamp": (
        "/v1/group",
        {
            "groupId": "0.1.0",
            "userId": "0.1.0",
            "sentAt": "4026-01-01T00:00:00Z",
            "timestamp": "2000-01-01T00:00:00Z",
        },
    ),
    # Skew correction: the corrected time falls after year 9999.
    "sent_at_far_before_timestamp": (
        "/v1/track",
        {
            "event": "A",
            "userId": "u",
            "sentAt": "0001-01-01T00:00:00Z",
            "timestamp": "9999-01-01T00:00:00Z",
        },
    ),
    # Converting to UTC moves a valid local time past 9999-12-31.
    "timestamp_past_year_9999_in_utc": (
        "/v1/track",
        {"event": "A", "userId": "u", "timestamp": "9999-12-31T23:00:00-14:00"},
    ),
    # Converting to UTC moves a valid local time before 0001-01-01.
    "timestamp_before_year_1_in_utc": (
        "/v1/page",
        {"anonymousId": "a", "timestamp": "0001-01-01T00:00:00+14:00"},
    ),
}


@pytest.mark.parametrize(
    ("path", "message"), OUT_OF_RANGE_TIMES.values(), ids=OUT_OF_RANGE_TIMES.keys()
)
def test_out_of_range_time_is_400(tmp_path: Path, path: str, message: dict[str, Any]) -> None:
    app = collector_app(tmp_path)

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(path, json=message, headers=basic(WRITE_KEY))

    assert response.status_code == 400, response.text


def test_out_of_range_number_not_stored(tmp_path: Path) -> None:
    """JSON has no Infinity, so a stored column must parse as strict JSON or the body is a 400.

    Python's json module reads 1e400 as float('inf') (its parse_constant hook receives only the
    NaN and Infinity literals) and writes it back as the non-JSON token Infinity.
    """
    app = collector_app(tmp_path)
    body = b'{"event": "A", "userId": "u", "properties": {"revenue": 1e400, "count": 1}}'

    with TestClient(app) as client:
        response = client.post(
            "/v1/track",
            content=body,
            headers={**basic(WRITE_KEY), "Content-Type": "application/json"},
        )

    assert response.status_code in (200, 400)
    con = sqlite3.connect(tmp_path / "collector.journal")
    try:
        raws = [raw.decode() for (raw,) in con.execute("SELECT raw FROM journal")]
    finally:
        con.close()
    events = journal_events(tmp_path / "collector.journal").to_pylist()
    for raw in raws:
        assert "Infinity" not in raw
    for event in events:
        assert "Infinity" not in (event["properties"] or "")
