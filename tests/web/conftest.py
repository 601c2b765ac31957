"""A small demo world in a store file, built once for the dashboard's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeymap import api
from journeymap.common.config import Config, parse_config
from journeymap.demo.world import generate_world, write_world
from journeymap.store.store import Store

PASSWORD = "correct horse battery staple"
MODELS = ["first_touch", "last_touch", "linear", "position_based"]


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the path of a store with a 400-person demo world, built and attributed."""
    folder = tmp_path_factory.mktemp("demo")
    files = write_world(generate_world(400, seed=3), folder)
    path = folder / "journeymap.duckdb"
    store = Store.open(path)
    try:
        api.import_file(store, files["touchpoints"], input_format="touchpoints")
        api.import_file(store, files["ad_spend"], input_format="spend")
        journeys = api.build(store)
        api.attribute(store, journeys, models=MODELS)
    finally:
        store.close()
    return path


def demo_config(store: Path | str, **dashboard: object) -> Config:
    """Return a configuration of ``store`` with the ``dashboard`` settings given."""
    return parse_config({"store": str(store), "dashboard": dict(dashboard)})
