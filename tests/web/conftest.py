"""A small demo world in a store file, built once for the dashboard's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from journeymap import api
from journeymap.common.config import Config, parse_config
from journeymap.demo.world import generate_world, write_world
from journeymap.store.store import Store
from journeymap.web import create_server_app

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


def serve_app(tmp_path: Path, store: Path | str, **dashboard: object) -> TestClient:
    """Return a test client of ``journeymap serve``'s app on ``store``; warm-up is off unless
    ``warm_up=True`` is given, so that each test computes only the views it reads."""
    dashboard.setdefault("warm_up", False)
    app = create_server_app(
        demo_config(store, **dashboard),
        host="127.0.0.1",
        store_path=None,
        journal_path=tmp_path / "journal",
        drain_every=3600,
    )
    return TestClient(app)


@contextmanager
def signed_in_client(tmp_path: Path, store: Path | str) -> Iterator[TestClient]:
    """Run a password-protected app on ``store`` and yield its client, signed in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEYMAP_DASHBOARD_PASSWORD", PASSWORD)
        with serve_app(tmp_path, store) as client:
            sign_in(client)
            yield client


def sign_in(client: TestClient) -> None:
    response = client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303
