"""The REST API: sign-in, the documented shapes on the demo world, empty states and errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from journeymap.common.errors import ConfigError
from journeymap.web import create_server_app
from journeymap.web.auth import COOKIE
from tests.web.conftest import MODELS, PASSWORD, demo_config, serve_app, sign_in

VIEW_KEYS = {
    "attribution": {"kind", "models", "model", "currency", "credit", "spend", "notes"},
    "funnel": {"source", "stages", "steps", "cohorts", "dropoff", "notes"},
    "velocity": {"source", "as_of", "time_in_stage", "stalled", "stalled_total"},
    "paths": {"kind", "paths", "sankey", "notes"},
    "blind-spots": {"by_kind", "click_ids", "agreement", "undercount", "notes"},
    "entities": {"people", "accounts"},
    "recommendations": {"recommendations", "skipped", "notes"},
}


def server(tmp_path: Path, store: Path | str, **dashboard: object) -> TestClient:
    return serve_app(tmp_path, store, **dashboard)


@pytest.fixture(scope="module")
def shared_client(
    tmp_path_factory: pytest.TempPathFactory, demo_store: Path
) -> Iterator[TestClient]:
    """One server for this module's tests, which only read; its view cache serves them all."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEYMAP_DASHBOARD_PASSWORD", PASSWORD)
        with server(tmp_path_factory.mktemp("rest"), demo_store) as test:
            yield test


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    """The shared client, signed out."""
    shared_client.cookies.clear()
    return shared_client


def test_api_without_session_returns_401(client: TestClient) -> None:
    response = client.get("/api/attribution")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "not signed in"


def test_page_without_session_redirects_to_login(client: TestClient) -> None:
    response = client.get("/funnel?kind=lead", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/funnel%3Fkind%3Dlead"


def test_login_sets_httponly_lax_cookie(client: TestClient) -> None:
    response = client.post(
        "/login", data={"password": PASSWORD, "next": "/paths"}, follow_redirects=False
    )
    cookie = response.headers["set-cookie"]
    assert response.headers["location"] == "/paths"
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert client.get("/api/status").status_code == 200


def test_login_wrong_password_returns_401(client: TestClient) -> None:
    response = client.post("/login", data={"password": "wrong"}, follow_redirects=False)
    assert response.status_code == 401
    assert "Wrong password" in response.text
    assert client.get("/api/status").status_code == 401


def test_login_next_elsewhere_goes_home(client: TestClient) -> None:
    response = client.post(
        "/login", data={"password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


def test_bearer_token_opens_api(client: TestClient) -> None:
    response = client.get("/api/status", headers={"Authorization": f"Bearer {PASSWORD}"})
    assert response.status_code == 200
    assert response.json()["models"] == MODELS


def test_forged_session_cookie_is_rejected(client: TestClient) -> None:
    client.cookies.set(COOKIE, "99999999999.nonce.0000")
    assert client.get("/api/status").status_code == 401


def test_auth_none_opens_api_on_loopback(tmp_path: Path, demo_store: Path) -> None:
    with server(tmp_path, demo_store, auth="none") as test:
        assert test.get("/api/status").status_code == 200
        assert test.get("/sync").status_code == 200


def test_auth_none_refused_off_loopback(tmp_path: Path, demo_store: Path) -> None:
    with pytest.raises(ConfigError, match="not loopback"):
        create_server_app(
            demo_config(demo_store, auth="none"),
            host="0.0.0.0",
            store_path=None,
            journal_path=tmp_path / "journal",
        )


def test_unset_password_locks_dashboard(
    tmp_path: Path, demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNEYMAP_DASHBOARD_PASSWORD", raising=False)
    with server(tmp_path, demo_store) as test:
        response = test.get("/api/status")
        page = test.get("/")
    assert response.status_code == 503
    assert "JOURNEYMAP_DASHBOARD_PASSWORD" in response.json()["error"]["hint"]
    assert page.status_code == 503
    assert "JOURNEYMAP_DASHBOARD_PASSWORD" in page.text


@pytest.mark.parametrize("view", sorted(VIEW_KEYS))
def test_view_returns_documented_shape(client: TestClient, view: str) -> None:
    sign_in(client)
    response = client.get(f"/api/{view}")
    body = response.json()
    assert response.status_code == 200, body
    assert body["view"] == view
    assert body["empty"] is None
    assert VIEW_KEYS[view] <= set(body["data"])


def test_attribution_has_every_model_and_grain(client: TestClient) -> None:
    sign_in(client)
    data = client.get("/api/attribution?kind=lead").json()["data"]
    assert data["kind"] == "lead"
    assert set(data["credit"]) == {"channel", "campaign", "ad"}
    assert {row["model"] for row in data["credit"]["channel"]} == set(MODELS)
    totals: dict[str, float] = {}
    for row in data["credit"]["channel"]:
        totals[row["model"]] = totals.get(row["model"], 0.0) + row["conversions"]
    assert max(totals.values()) == pytest.approx(min(totals.values()))
    assert data["spend"]["channel"]
    assert {"cost", "roas", "cost_per_conversion"} <= set(data["spend"]["channel"][0])


def test_attribution_date_filter_narrows_credit(client: TestClient) -> None:
    sign_in(client)
    everything = client.get("/api/attribution?kind=lead&model=linear").json()["data"]
    early = client.get(
        "/api/attribution?kind=lead&model=linear&start=2000-01-01&end=2000-01-31"
    ).json()["data"]
    assert sum(row["conversions"] for row in everything["credit"]["channel"]) > 0
    assert early["credit"]["channel"] == []


def test_timeline_of_top_person_has_touches(client: TestClient) -> None:
    sign_in(client)
    person = client.get("/api/entities").json()["data"]["people"][0]["id"]
    data = client.get(f"/api/timeline/person/{person}").json()["data"]
    assert data["id"] == person
    assert data["touches"]
    assert data["conversions"]
    assert data["stages"][0]["stage"] == "Awareness"


def test_timeline_unknown_person_returns_404(client: TestClient) -> None:
    sign_in(client)
    response = client.get("/api/timeline/person/nobody")
    assert response.status_code == 404
    assert "no person 'nobody'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=March", "invalid date 'March'"),
        ("start=2026-05-01&end=2026-01-01", "is after end"),
        ("segment=colour:red", "invalid segment"),
        ("lookback=-3", "invalid lookback"),
        ("grain=keyword", "unknown breakdown"),
        ("model=magic", "no model 'magic'"),
        ("kind=refund", "no conversions of kind 'refund'"),
        ("lookback=900", "longer than the built journeys'"),
        ("segment=industry:Software", "needs accounts"),
    ],
)
def test_invalid_filter_returns_400(client: TestClient, query: str, message: str) -> None:
    sign_in(client)
    response = client.get(f"/api/attribution?{query}")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_icp_without_deals_is_empty_state(client: TestClient) -> None:
    sign_in(client)
    body = client.get("/api/icp").json()
    assert body["data"] is None
    assert body["empty"]["command"] == "journeymap import deals FILE --accounts FILE"


def test_sync_without_outbox_is_empty_state(client: TestClient) -> None:
    sign_in(client)
    body = client.get("/api/sync").json()
    assert body["data"] is None
    assert body["empty"]["command"].startswith("journeymap sync --dry-run")


def test_missing_store_is_empty_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "none.duckdb"
    with server(tmp_path, missing, auth="none") as test:
        body = test.get("/api/attribution").json()
        page = test.get("/attribution")
    assert body["data"] is None
    assert "no store at" in body["empty"]["message"]
    assert "journeymap demo" in page.text
    assert not missing.exists()


def test_empty_store_names_import_command(tmp_path: Path) -> None:
    from journeymap.store.store import Store

    path = tmp_path / "empty.duckdb"
    Store.open(path).close()
    with server(tmp_path, path, auth="none") as test:
        for view in ("attribution", "paths", "blind-spots", "funnel", "entities"):
            body = test.get(f"/api/{view}").json()
            assert body["data"] is None, view
            assert body["empty"]["command"].startswith("journeymap import"), view


def test_collector_routes_keep_working(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.post("/v1/track", json={"event": "x"}).status_code == 401


def test_openapi_lists_dashboard_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/attribution" in paths
    assert "/api/timeline/{entity_kind}/{entity_id}" in paths
    assert "/v1/track" in paths
    assert "/attribution" not in paths


def test_plotly_bundle_is_served_locally(client: TestClient) -> None:
    response = client.get("/static/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) > 1_000_000


def test_failure_throttle_blocks_a_client_after_the_limit_until_the_window_passes() -> None:
    from journeymap.web.auth import FailureThrottle

    throttle = FailureThrottle(limit=3, window=60.0)
    for second in (0.0, 1.0, 2.0):
        assert throttle.wait("10.0.0.1", now=second) == 0.0
        throttle.fail("10.0.0.1", now=second)

    assert throttle.wait("10.0.0.1", now=2.5) == pytest.approx(57.5)
    assert throttle.wait("10.0.0.2", now=2.5) == 0.0
    assert throttle.wait("10.0.0.1", now=60.5) == 0.0


def test_wrong_bearer_token_is_logged_without_the_token_and_blocked_when_repeated(
    tmp_path: Path, demo_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from journeymap.web.auth import FailureThrottle

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEYMAP_DASHBOARD_PASSWORD", PASSWORD)
        with server(tmp_path, demo_store) as test:
            dashboard = test.app.state.dashboard  # type: ignore[attr-defined]
            dashboard.auth.throttle = FailureThrottle(limit=2, window=600.0)
            wrong = {"Authorization": "Bearer guess-one-two"}

            answers = [test.get("/api/status", headers=wrong) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert int(answers[2].headers["Retry-After"]) > 0
    assert "guess-one-two" not in caplog.text
    assert "sign-in failed" in caplog.text
