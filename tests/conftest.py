"""Shared fixtures: an in-memory store, the real data folder, and a local Spark session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeymap.store.store import Store

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Return the folder of real third-party data used by tests and benchmarks."""
    configured = os.environ.get("JOURNEYMAP_SHARED_DATA")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.fail(f"real data folder {folder} is missing; set JOURNEYMAP_SHARED_DATA")
    return folder


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store.open()
    yield opened
    opened.close()
