"""The attribution benchmark: its journeymap run, the comparison and the page it writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from benchmarks.attribution import OURS, compare, run_journeymap
from benchmarks.render import write_docs


def write_touch_file(path: Path) -> Path:
    """Write a small file in the benchmark's layout: three people, two conversions."""
    frame = pd.DataFrame(
        {
            "user_id": ["P1", "P1", "P2", "P2", "P2", "P3"],
            "timestamp": pd.to_datetime(
                [
                    "2026-01-01",
                    "2026-01-02",
                    "2026-01-01",
                    "2026-01-03",
                    "2026-01-05",
                    "2026-01-02",
                ],
                utc=True,
            ),
            "channel": ["Email", "Paid Search", "Display", "Email", "Direct", "Referral"],
            "conversion": [False, True, False, False, True, False],
            "value": [0.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        }
    )
    frame.to_parquet(path)
    return path


def test_run_journeymap_times_every_model(tmp_path: Path) -> None:
    result = run_journeymap(write_touch_file(tmp_path / "touches.parquet"))
    assert result["tool"] == "journeymap"
    assert set(OURS) | {"cut", "paths", "total"} == set(result["timings"])
    assert result["shared"] == result["timings"]["cut"] + result["timings"]["paths"]
    assert all(seconds >= 0 for seconds in result["timings"].values())


def test_compare_charges_shared_time_to_each_model(tmp_path: Path) -> None:
    ours = {"tool": "journeymap", "shared": 1.0, "timings": {"first_touch": 0.5, "total": 2.0}}
    peer = {"tool": "mam", "shared": 2.0, "timings": {"first_click": 1.0, "total": 3.0}}
    rows = {row["model"]: row for row in compare({"journeymap": ours, "mam": peer})}
    assert rows["first_touch"]["journeymap_s"] == 1.5
    assert rows["first_touch"]["fastest_peer"] == "mam:first_click"
    assert rows["first_touch"]["peer_s"] == 3.0
    assert rows["first_touch"]["speedup"] == 2.0
    assert rows["markov_order_2"]["peer_s"] is None


def test_write_docs_states_each_target(tmp_path: Path) -> None:
    ours = {
        "tool": "journeymap",
        "shared": 1.0,
        "timings": {"cut": 0.8, "paths": 0.2, "first_touch": 0.5, "total": 2.0},
        "peak_memory_mb": 500.0,
    }
    peer = {
        "tool": "mam",
        "shared": 1.0,
        "timings": {"first_click": 0.2, "total": 3.0},
        "peak_memory_mb": 800.0,
    }
    results = {"journeymap": ours, "mam": peer}
    report = {
        "machine": "test machine",
        "command": "python benchmarks/attribution.py",
        "sizes": {"1M": {"results": results, "comparison": compare(results)}},
    }
    page = tmp_path / "benchmarks.md"
    write_docs(report, page)
    text = page.read_text(encoding="utf-8")
    assert "| first_touch | 1.50 | mam:first_click | 1.20 | 0.80× ✗ |" in text
    assert "journeymap's is below every peer's (target met)" in text
    assert "under 0.60 s; those steps take 1.00 s" in text
