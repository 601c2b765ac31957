"""`journeymap sync`, `--dry-run` and `sync status`, the periodic sync, and a crash mid-request."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from journeymap.activate.outbox import event_id
from journeymap.activate.periodic import PeriodicSync
from journeymap.cli import app
from journeymap.common.config import load_config
from journeymap.common.errors import ConfigError
from journeymap.common.identifiers import match_keys
from journeymap.store.store import Store
from tests.activate.receiver import CREDENTIALS, Fault, Receiver
from tests.activate.sync_fakes import RAW_EMAIL, RAW_PHONE

runner = CliRunner()
TOKEN = CREDENTIALS["access_token"]
VARIABLE = "JM_TEST_SYNC_TOKEN"


def _world(
    folder: Path,
    receiver: Receiver,
    count: int,
    destination: dict[str, Any] | None = None,
    **sync: Any,
) -> Path:
    """Write a store of ``count`` recent leads with hashed contacts and a configuration."""
    store_path = folder / "store.duckdb"
    now = datetime.now(tz=UTC).replace(microsecond=0)
    store = Store.open(store_path)
    try:
        store.append(
            "conversions",
            pd.DataFrame(
                {
                    "conversion_id": [f"c{index}" for index in range(count)],
                    "seq": list(range(1, count + 1)),
                    "person_id": [f"p{index}" for index in range(count)],
                    "occurred_at": [now - timedelta(hours=index + 1) for index in range(count)],
                    "kind": ["lead"] * count,
                }
            ),
        )
        keys = match_keys(email=RAW_EMAIL, phone=RAW_PHONE)
        store.append(
            "match_keys",
            pd.DataFrame(
                [
                    {
                        "id": f"p{index}",
                        "id_kind": "person",
                        "key": key,
                        "value": value,
                        "observed_at": now - timedelta(days=2),
                    }
                    for index in range(count)
                    for key, value in keys.items()
                ]
            ),
        )
    finally:
        store.close()

    config = {
        "store": str(store_path),
        "sync": {
            "destinations": {
                "fb": {
                    "platform": "meta",
                    "account": "123456789",
                    "actions": {"lead": "Lead"},
                    "endpoint": receiver.url,
                    "credentials_env": {"access_token": VARIABLE},
                    **(destination or {}),
                }
            },
            "backoff_seconds": 0.01,
            **sync,
        },
    }
    path = folder / "journeymap.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _outbox(config_path: Path) -> pd.DataFrame:
    store = Store.open(load_config(config_path).store)
    try:
        frame: pd.DataFrame = store.table("sync_outbox").to_pandas()
        return frame.sort_values("conversion_id", ignore_index=True)
    finally:
        store.close()


def _attempts(config_path: Path) -> pd.DataFrame:
    store = Store.open(load_config(config_path).store)
    try:
        frame: pd.DataFrame = store.table("sync_attempts").to_pandas()
        return frame
    finally:
        store.close()


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(VARIABLE, TOKEN)
    return TOKEN


def test_sync_command_sends_and_prints_summary(
    tmp_path: Path, receiver: Receiver, token: str
) -> None:
    config = _world(tmp_path, receiver, 3)

    result = runner.invoke(app, ["sync", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert "fb" in result.stdout
    assert len(receiver.events("meta")) == 3
    assert receiver.problems() == []
    assert list(_outbox(config).status) == ["sent"] * 3


def test_sync_status_counts_per_action(tmp_path: Path, receiver: Receiver, token: str) -> None:
    config = _world(tmp_path, receiver, 3)
    receiver.fail("meta", Fault(status=400, code="100", message="Invalid parameter"))
    runner.invoke(app, ["sync", "-c", str(config)])

    result = runner.invoke(app, ["sync", "status", "-c", str(config), "--format", "json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1
    assert rows[0]["destination"] == "fb"
    assert rows[0]["action"] == "Lead"
    assert rows[0]["rejected"] == 3
    assert rows[0]["sent"] == 0
    assert rows[0]["total"] == 3
    assert rows[0]["top_reasons"] == "100 (3): Invalid parameter"


@pytest.mark.parametrize("output", ["table", "csv"])
def test_sync_status_formats(tmp_path: Path, receiver: Receiver, token: str, output: str) -> None:
    config = _world(tmp_path, receiver, 2)
    runner.invoke(app, ["sync", "-c", str(config)])

    result = runner.invoke(app, ["sync", "status", "-c", str(config), "--format", output])

    assert result.exit_code == 0, result.output
    assert "Lead" in result.stdout
    if output == "csv":
        frame = pd.read_csv(io.StringIO(result.stdout))
        assert list(frame.sent) == [2]


def test_sync_dry_run_masks_credentials_and_writes_nothing(
    tmp_path: Path, receiver: Receiver, token: str
) -> None:
    config = _world(tmp_path, receiver, 2)

    result = runner.invoke(app, ["sync", "--dry-run", "-c", str(config)])

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert len(plan["requests"]) == 1
    request = plan["requests"][0]
    assert sorted(request["event_ids"]) == sorted(event_id("fb", f"c{i}") for i in range(2))
    assert request["headers"]["Authorization"].endswith("***")
    assert TOKEN not in result.output
    assert RAW_EMAIL.lower() not in result.output
    assert receiver.requests == []
    assert _outbox(config).empty


def test_sync_command_missing_credential_fails_before_sending(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    config = _world(tmp_path, receiver, 1)

    result = runner.invoke(app, ["sync", "-c", str(config)])

    assert isinstance(result.exception, ConfigError)
    assert VARIABLE in str(result.exception)
    assert "'fb'" in str(result.exception)
    assert receiver.requests == []


def test_periodic_sync_round_sends_due_rows(tmp_path: Path, receiver: Receiver, token: str) -> None:
    config_path = _world(tmp_path, receiver, 2)
    periodic = PeriodicSync(load_config(config_path).store, load_config(config_path))

    periodic.run_once()

    assert len(receiver.events("meta")) == 2
    assert list(_outbox(config_path).status) == ["sent", "sent"]


def _start_sync(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "journeymap", "-v", "sync", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_sync_killed_mid_request_delivers_each_once(tmp_path: Path, receiver: Receiver) -> None:
    config = _world(tmp_path, receiver, 5, {"batch_size": 2}, lease_seconds=1, timeout_seconds=20)
    env = {**os.environ, VARIABLE: TOKEN}
    # The platform stores the first request's events, then never responds.
    receiver.fail("meta", Fault(stall=60))

    first = _start_sync(config, env)
    deadline = time.monotonic() + 120  # a loaded machine takes tens of seconds to import
    while not receiver.requests and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not receiver.requests:
        first.kill()
        pytest.fail(f"the sync sent no request; its stderr:\n{first.communicate()[1]}")
    first.send_signal(signal.SIGKILL)
    _, first_err = first.communicate(timeout=30)
    time.sleep(1.2)  # the claim's lease (1 s) runs out

    second = _start_sync(config, env)
    second_out, second_err = second.communicate(timeout=120)

    expected = {event_id("fb", f"c{index}") for index in range(5)}
    events = receiver.events("meta")
    rows = _outbox(config)
    attempts = _attempts(config)
    assert first.returncode == -signal.SIGKILL
    assert second.returncode == 0, second_err
    assert sorted(event["event_id"] for event in events) == sorted(expected)  # 0 lost, 0 dup
    assert receiver.received("meta") == 7  # the killed request's 2 events arrived twice
    assert list(rows.status) == ["sent"] * 5
    assert sorted(rows.attempts) == [1, 1, 1, 2, 2]
    assert len(attempts) == 5  # the killed attempt left no row; every other one did
    assert "left sending by a run that stopped" in second_err
    for text in (first_err, second_err, second_out):
        for secret in (TOKEN, RAW_EMAIL, RAW_EMAIL.lower(), RAW_PHONE):
            assert secret not in text
    stored = pd.concat([rows.astype(str), attempts.astype(str)]).to_csv(index=False)
    for secret in (TOKEN, RAW_EMAIL, RAW_EMAIL.lower(), RAW_PHONE, "4155550100"):
        assert secret not in stored


def test_sync_command_wrong_token_exits_nonzero_rows_queued(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-token-0000"
    monkeypatch.setenv(VARIABLE, wrong)
    config = _world(tmp_path, receiver, 3)

    result = runner.invoke(app, ["sync", "-c", str(config)])

    assert result.exit_code == 1
    assert "destination 'fb'" in result.stderr
    assert "Invalid OAuth access token" in result.stderr
    assert wrong not in result.output
    assert list(_outbox(config).status) == ["queued"] * 3
    assert receiver.events("meta") == []


def test_sync_requeue_command_puts_rejected_rows_back(
    tmp_path: Path, receiver: Receiver, token: str
) -> None:
    config = _world(tmp_path, receiver, 2)
    receiver.fail("meta", Fault(status=400, code="100", message="Invalid parameter"))
    runner.invoke(app, ["sync", "-c", str(config)])

    result = runner.invoke(app, ["sync", "requeue", "-c", str(config), "-d", "fb", "--code", "100"])
    rows = _outbox(config)
    resent = runner.invoke(app, ["sync", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert "requeued 2 rejected rows" in result.stderr
    assert list(rows.status) == ["queued", "queued"]
    assert "requeued" in set(_attempts(config).outcome)
    assert resent.exit_code == 0, resent.output
    assert list(_outbox(config).status) == ["sent", "sent"]


def test_sync_summary_counts_skipped_at_queue(
    tmp_path: Path, receiver: Receiver, token: str
) -> None:
    config = _world(tmp_path, receiver, 3, {"window_days": 0.1})  # 2.4 h: c2 is 3 h old

    result = runner.invoke(app, ["sync", "-c", str(config)])
    dry = runner.invoke(
        app,
        ["sync", "--dry-run", "-c", str(_world(tmp_path / "b", receiver, 3, {"window_days": 0.1}))],
    )

    assert result.exit_code == 0, result.output
    assert "1 outside_window" in result.stdout
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["queue"]["fb"] == {
        "queued": 2,
        "skipped_at_queue": {"outside_window": 1},
    }
    assert "1 skipped at queue (1 outside_window)" in dry.stderr


def test_sync_dry_run_without_credentials_warns(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, "")
    config = _world(tmp_path, receiver, 1)

    result = runner.invoke(app, ["sync", "--dry-run", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert "a real run would stop" in result.stderr
    assert f"{VARIABLE} is empty" in result.stderr


def test_sync_warns_about_action_kind_never_seen(
    tmp_path: Path, receiver: Receiver, token: str
) -> None:
    config = _world(tmp_path, receiver, 1, {"actions": {"lead": "Lead", "demo": "Schedule"}})

    result = runner.invoke(app, ["sync", "--dry-run", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert "no conversion has the kind 'demo'" in result.stderr
    assert "kinds are lead" in result.stderr
