"""Shared fixtures: an in-memory store, the real data folder, and a local Spark session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session for every Spark test: starting one takes several seconds."""
    if shutil.which("java") is None:
        pytest.fail("Spark tests need Java 17 on the PATH")
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("journeymap-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
