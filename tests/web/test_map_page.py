"""The journey map page, its downloads and the compare page, on the small demo world."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from journeymap.report.map import GRID_ROWS
from journeymap.report.snapshots import SNAPSHOT_FORMAT
from journeymap.store.store import Store
from journeymap.web.map_grid import format_value
from tests.web.conftest import serve_app, signed_in_client

Q1 = "start=2026-01-01&end=2026-03-31"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, demo_store: Path) -> Iterator[TestClient]:
    """A signed-in client of a copy of the demo store, so its snapshots folder is this module's."""
    folder = tmp_path_factory.mktemp("map")
    store = folder / "journeymap.duckdb"
    shutil.copy(demo_store, store)
    with signed_in_client(folder, store) as test:
        yield test


@pytest.fixture(scope="module")
def default_map(client: TestClient) -> dict[str, Any]:
    body = client.get("/api/map").json()
    assert body["empty"] is None, body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture(scope="module")
def map_page(client: TestClient, default_map: dict[str, Any]) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.text


def grid_cell(page: str, stage: str, row: str) -> str:
    """Return the text of the grid cell of ``stage`` and ``row``, tags and extra spaces removed."""
    pattern = (
        rf'<td class="\w+" data-stage="{re.escape(html.escape(stage))}" '
        rf'data-row="{row}">(.*?)</td>'
    )
    found = re.search(pattern, page, re.S)
    assert found is not None, f"no cell for {stage}, {row}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def write_snapshot(folder: Path, name: str, created_at: str, data: dict[str, Any]) -> None:
    document = {
        "format": SNAPSHOT_FORMAT,
        "name": name,
        "created_at": created_at,
        "package_version": data["package_version"],
        "data_range": data["data_range"],
        "config": {},
        "map": data,
    }
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(document), encoding="utf-8")


def test_map_page_shows_every_stage_and_row(map_page: str, default_map: dict[str, Any]) -> None:
    for stage in default_map["stages"]:
        assert f'<th scope="col">{html.escape(stage["name"])}</th>' in map_page
    for row in GRID_ROWS:
        assert f'<th scope="row">{html.escape(row.label)}</th>' in map_page


def test_map_page_cells_hold_api_figures(map_page: str, default_map: dict[str, Any]) -> None:
    currency = default_map["currency"]
    measured = [row for row in GRID_ROWS if row.kind in ("count", "rate", "days", "money")]
    for stage in default_map["stages"]:
        for row in measured:
            expected = format_value(row.kind, stage["figures"][row.key], currency)
            assert expected in grid_cell(map_page, stage["name"], row.key), (stage["name"], row)


def test_map_page_cells_hold_yaml_rows(map_page: str, default_map: dict[str, Any]) -> None:
    for stage in default_map["stages"]:
        for key in ("doing", "thinking", "feeling", "pain_points", "opportunities"):
            for line in stage["qualitative"][key]:
                assert line in grid_cell(map_page, stage["name"], key)
        assert stage["owner"] in grid_cell(map_page, stage["name"], "owner")


def test_map_page_touchpoints_show_shares(map_page: str, default_map: dict[str, Any]) -> None:
    stage = default_map["stages"][0]
    assert stage["touchpoints"]
    cell = grid_cell(map_page, stage["name"], "touchpoints")
    for share in stage["touchpoints"]:
        assert f"{share['channel']} {share['share']:.0%}" in cell


def test_map_page_friction_shows_counts(map_page: str, default_map: dict[str, Any]) -> None:
    stage = default_map["stages"][0]
    figures = stage["figures"]
    dropped = figures["entered"] - figures["moved_on"]
    cell = grid_cell(map_page, stage["name"], "dropoff_rate")
    assert f"{dropped:,} of {figures['entered']:,} entrants did not move on" in cell
    assert f"over {figures['stall_threshold_days']:,.1f} days" in grid_cell(
        map_page, stage["name"], "stalled"
    )


def test_map_page_lists_dropoff_points_and_sequences(
    map_page: str, default_map: dict[str, Any]
) -> None:
    assert "Top three drop-off points by revenue impact" in map_page
    assert 1 <= len(default_map["dropoff_points"]) <= 3
    for point in default_map["dropoff_points"]:
        assert f"{point['revenue_impact']:,.0f}" in map_page
    assert "Top touch sequences of winning customers" in map_page
    for sequence in default_map["top_sequences"]:
        assert html.escape(sequence["path"]) in map_page


def test_map_page_links_downloads_with_filters(client: TestClient) -> None:
    page = client.get(f"/?{Q1}").text
    for suffix in ("xlsx", "html", "md"):
        assert f'href="/api/map.{suffix}?{html.escape(Q1)}" download' in page


def test_map_xlsx_holds_api_numbers(client: TestClient) -> None:
    data = client.get(f"/api/map?{Q1}").json()["data"]
    response = client.get(f"/api/map.xlsx?{Q1}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "journey-map-2026-01-01-2026-03-31.xlsx" in response.headers["content-disposition"]
    workbook = load_workbook(io.BytesIO(response.content))

    grid = workbook["Map"]
    header = [cell.value for cell in grid[1]]
    labels = [grid.cell(row=line, column=1).value for line in range(1, grid.max_row + 1)]
    for stage in data["stages"]:
        column = header.index(stage["name"]) + 1
        for row in GRID_ROWS:
            if row.kind not in ("count", "rate", "days", "money"):
                continue
            value = grid.cell(row=labels.index(row.label) + 1, column=column).value
            assert value == pytest.approx(stage["figures"][row.key]), (stage["name"], row.key)

    points = list(workbook["Drop-off points"].iter_rows(values_only=True))
    columns = points[0]
    for expected, values in zip(data["dropoff_points"], points[1:], strict=True):
        found = dict(zip(columns, values, strict=True))
        assert found["stage"] == expected["stage"]
        assert found["revenue_impact"] == pytest.approx(expected["revenue_impact"])

    settings = dict(workbook["Filters"].iter_rows(min_row=2, values_only=True))
    assert settings["start"] == "2026-01-01"
    assert settings["end"] == "2026-03-31"


def test_map_markdown_and_html_downloads(client: TestClient, default_map: dict[str, Any]) -> None:
    markdown = client.get("/api/map.md")
    page = client.get("/api/map.html")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert page.headers["content-type"].startswith("text/html")
    for stage in default_map["stages"]:
        assert stage["name"] in markdown.text
        assert stage["name"] in page.text
    assert 'src="http' not in page.text


def test_map_download_invalid_filter_returns_400(client: TestClient) -> None:
    response = client.get("/api/map.xlsx?start=March")
    assert response.status_code == 400
    assert "invalid date 'March'" in response.json()["error"]["message"]


def test_map_download_without_journeys_returns_404(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    Store.open(path).close()
    with serve_app(tmp_path, path, auth="none") as test:
        response = test.get("/api/map.xlsx")
    assert response.status_code == 404
    assert response.json()["error"]["hint"].startswith("journeymap import")


def test_compare_without_snapshots_names_command(client: TestClient) -> None:
    body = client.get("/api/compare").json()
    page = client.get("/compare").text
    assert body["data"] is None
    assert body["empty"]["command"].startswith("journeymap snapshot")
    assert "No journey map snapshot is saved" in body["empty"]["message"]
    assert "journeymap snapshot --name 2026-Q1" in page
    assert 'name="a"' in page


def test_compare_periods_lists_stage_changes(client: TestClient) -> None:
    body = client.get("/api/compare?a=2026-Q1&b=2026-Q2").json()
    data = body["data"]
    assert data["source"] == "periods"
    assert (data["before"], data["after"]) == ("2026-Q1", "2026-Q2")
    items = {(change["section"], change["item"]) for change in data["changes"]}
    assert ("stage rate", "Awareness") in items
    page = client.get("/compare?a=2026-Q1&b=2026-Q2").text
    assert "2026-Q1 → 2026-Q2" in page
    assert 'data-section="stage rate" data-item="Awareness"' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a=2026-Q1", "b is missing"),
        ("a=2026-Q5&b=2026-Q1", "invalid period '2026-Q5'"),
        ("before=x&after=y&a=2026&b=2026", "both two snapshots and two periods"),
        ("before=../etc&after=y", "invalid snapshot name"),
    ],
)
def test_compare_invalid_choice_returns_400(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/compare?{query}")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_compare_snapshots_marks_planted_change(
    client: TestClient, default_map: dict[str, Any], tmp_path: Path
) -> None:
    folder = Path(client.get("/api/status").json()["location"]).parent / "snapshots"
    before = json.loads(json.dumps(default_map))
    after = json.loads(json.dumps(default_map))
    figures = after["stages"][0]["figures"]
    figures["moved_on"] = figures["entered"] // 2
    figures["conversion_rate"] = figures["moved_on"] / figures["entered"]
    write_snapshot(folder, "2026-Q1", "2026-04-01T00:00:00+00:00", before)
    write_snapshot(folder, "2026-Q2", "2026-07-01T00:00:00+00:00", after)
    try:
        data = client.get("/api/compare").json()["data"]
        page = client.get("/compare").text
        missing = client.get("/api/compare?before=2026-Q1&after=2026-Q9")
    finally:
        shutil.rmtree(folder)

    assert (data["source"], data["before"], data["after"]) == ("snapshots", "2026-Q1", "2026-Q2")
    assert [row["name"] for row in data["snapshots"]] == ["2026-Q1", "2026-Q2"]
    first = data["changes"][0]
    assert (first["section"], first["item"], first["matters"]) == ("stage rate", "Awareness", True)
    assert data["highlights"] == 1
    assert '<tr class="matters" data-section="stage rate" data-item="Awareness">' in page
    assert missing.status_code == 404
    assert "2026-Q1, 2026-Q2" in missing.json()["error"]["hint"]
