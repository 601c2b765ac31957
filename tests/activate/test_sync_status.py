"""`sync_status`, `sync_reasons` and the `journeymap sync status` table at two widths."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from journeymap.activate.outbox import OUTBOX_COLUMNS
from journeymap.activate.status import sync_reasons, sync_status
from journeymap.cli import app, common
from journeymap.store.store import Store

runner = CliRunner()
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _outbox_rows(store: Store, rows: list[tuple[str, str, str | None, str | None]]) -> None:
    """Append outbox rows of destination ``fb``: (conversion id, status, code, message)."""
    records = []
    for conversion, status, code, message in rows:
        record = dict.fromkeys(OUTBOX_COLUMNS)
        record.update(
            event_id=f"e-{conversion}",
            destination="fb",
            platform="meta",
            conversion_id=conversion,
            kind="lead",
            action="Lead",
            occurred_at=NOW - timedelta(days=1),
            keys="{}",
            status=status,
            attempts=1,
            next_attempt_at=NOW,
            send_alone=False,
            last_code=code,
            last_message=message,
            created_at=NOW,
            updated_at=NOW,
        )
        records.append(record)
    store.append("sync_outbox", pd.DataFrame(records))


def _fragmented_reasons(store: Store) -> None:
    """851 conversions outside the window, each with its own age in the message, 3 rejected."""
    rows: list[tuple[str, str, str | None, str | None]] = [
        (
            f"old{index}",
            "skipped",
            "outside_window",
            f"the conversion was {100 + index / 10:.1f} days old when queued; meta accepts 7 days",
        )
        for index in range(851)
    ]
    rows += [(f"bad{index}", "rejected", "100", "Invalid parameter") for index in range(3)]
    rows += [(f"ok{index}", "sent", None, None) for index in range(12)]
    _outbox_rows(store, rows)


def test_sync_status_groups_reasons_by_code(store: Store) -> None:
    _fragmented_reasons(store)

    frame = sync_status(store)

    [row] = frame.to_dict("records")
    assert row["skipped"] == 851
    assert row["rejected"] == 3
    assert row["sent"] == 12
    assert row["top_reasons"].startswith("outside_window (851): the conversion was ")
    assert row["top_reasons"].endswith("; 100 (3): Invalid parameter")
    assert row["top_reasons"].count("(") == 2


def test_sync_reasons_one_row_per_code(store: Store) -> None:
    _fragmented_reasons(store)

    reasons = sync_reasons(store, top=3)

    assert list(reasons.code) == ["outside_window", "100"]
    assert list(reasons.rows) == [851, 3]
    assert list(reasons.status) == ["skipped", "rejected"]
    assert reasons.example[0].startswith("the conversion was ")


def test_sync_reasons_empty_outbox(store: Store) -> None:
    assert sync_reasons(store).empty
    assert list(sync_reasons(store).columns) == [
        "destination",
        "action",
        "status",
        "code",
        "rows",
        "example",
    ]


def _config(tmp_path: Path, store_path: Path) -> Path:
    path = tmp_path / "journeymap.yaml"
    path.write_text(yaml.safe_dump({"store": str(store_path)}), encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [80, 200], ids=["narrow", "wide"])
def test_sync_status_table_counts_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    store_path = tmp_path / "store.duckdb"
    store = Store.open(store_path)
    try:
        _fragmented_reasons(store)
    finally:
        store.close()
    screen = io.StringIO()
    monkeypatch.setattr(common, "out", Console(file=screen, width=width, color_system=None))

    result = runner.invoke(app, ["sync", "status", "-c", str(_config(tmp_path, store_path))])

    text = screen.getvalue()
    lines = text.splitlines()
    assert result.exit_code == 0, result.output
    assert all(len(line) <= width for line in lines)
    counts_row = next(line for line in lines if line.lstrip().startswith("fb"))
    for number in ("851", "3", "12", "866"):
        assert f" {number}" in counts_row
    assert "outside_window" in text
    assert "851" in next(line for line in lines if "outside_window" in line)


def test_sync_status_json_keeps_top_reasons(tmp_path: Path) -> None:
    store_path = tmp_path / "store.duckdb"
    store = Store.open(store_path)
    try:
        _fragmented_reasons(store)
    finally:
        store.close()

    result = runner.invoke(
        app, ["sync", "status", "-c", str(_config(tmp_path, store_path)), "--format", "json"]
    )

    [row] = json.loads(result.stdout)
    assert row["top_reasons"].startswith("outside_window (851): ")
