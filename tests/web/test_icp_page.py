"""The dashboard's ICP page and view: retention columns and figure, or a note without churn data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from journeymap.store.store import Store
from tests.web.conftest import serve_app


def icp_store(path: Path, *, churn: bool) -> Path:
    """Write a store of four retail and four media customers, and one lost deal each."""
    accounts = [f"r{n}" for n in range(4)] + [f"m{n}" for n in range(4)]
    deals = pd.DataFrame(
        {
            "deal_id": [f"d{n}" for n in range(10)],
            "account_id": [*accounts, "r0", "m0"],
            "is_won": [True] * 8 + [False, False],
            "is_closed": True,
            "closed_at": pd.to_datetime(["2024-01-10"] * 10, utc=True),
        }
    )
    # Three of the four media customers churned.
    churned = [None] * 5 + ["2024-06-01"] * 3
    frame = pd.DataFrame(
        {
            "account_id": accounts,
            "industry": ["retail"] * 4 + ["media"] * 4,
            "churned_at": pd.to_datetime(churned if churn else [None] * 8, utc=True),
        }
    )
    store = Store.open(path)
    try:
        store.append("deals", deals)
        store.append("accounts", frame)
    finally:
        store.close()
    return path


def test_icp_view_has_retention(tmp_path: Path) -> None:
    store = icp_store(tmp_path / "churn.duckdb", churn=True)

    with serve_app(tmp_path, store, auth="none") as client:
        data = client.get("/api/icp").json()["data"]
        page = client.get("/icp")

    assert data["retention"] is True
    assert data["notes"] == []
    media = next(row for row in data["segments"]["industry"] if row["industry"] == "media")
    assert media["customers"] == 4
    assert media["churned"] == 3
    assert media["retention_rate"] == 0.25
    assert page.status_code == 200
    assert "retention lift" in page.text
    assert "25.0%" in page.text
    assert 'id="figure-icp-retention"' in page.text


def test_icp_view_without_churn_data(tmp_path: Path) -> None:
    store = icp_store(tmp_path / "plain.duckdb", churn=False)

    with serve_app(tmp_path, store, auth="none") as client:
        data = client.get("/api/icp").json()["data"]
        page = client.get("/icp")

    assert data["retention"] is False
    assert "churned_at column" in data["notes"][0]
    assert all(row["retention_rate"] is None for row in data["profile"])
    assert page.status_code == 200
    assert "churned_at column" in page.text
    assert "retention lift" not in page.text
    assert 'id="figure-icp-retention"' not in page.text
    assert 'id="figure-icp"' in page.text
