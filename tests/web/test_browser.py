"""The dashboard in Debian's headless Chromium, driven by Playwright, against a real server.

The server is ``journeymap serve`` on 127.0.0.1 over the small demo world. The browser is
``/usr/bin/chromium`` (``apt-get install chromium``); Playwright's own browser downloads are
never used. Screenshots go to ``$JOURNEYMAP_TEST_ARTIFACTS`` or ``tests/artifacts/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import PASSWORD

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    "/",
    "/attribution",
    "/funnel",
    "/velocity",
    "/paths",
    "/blind-spots",
    "/icp",
    "/timeline",
    "/recommendations",
    "/compare",
    "/sync",
]
ARTIFACTS = Path(
    os.environ.get("JOURNEYMAP_TEST_ARTIFACTS") or Path(__file__).parents[1] / "artifacts"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_url(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``journeymap serve`` on a free loopback port and return its URL."""
    port = free_port()
    env = os.environ | {"JOURNEYMAP_DASHBOARD_PASSWORD": PASSWORD}
    journal = tmp_path_factory.mktemp("serve") / "journal"
    command = [sys.executable, "-m", "journeymap", "serve", "--store", str(demo_store)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--journal", str(journal)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stderr.read() if process.stderr else ""
                pytest.fail(f"journeymap serve did not start: {output}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def install_chromium() -> None:
    """Install Debian's Chromium when it is missing and the tests run as root."""
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing: run apt-get install -y chromium as root")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {done.stderr[-2000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    install_chromium()
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    """Return a signed-in page that records console errors in ``page.errors``."""
    context = browser.new_context(accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    tab.goto(f"{base_url}/attribution")
    assert "/login" in tab.url
    tab.fill("input[name=password]", PASSWORD)
    tab.click(".login button[type=submit]")
    tab.wait_for_url(f"{base_url}/attribution")
    yield tab
    context.close()


def shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_browser_opens_every_page(page: Any, base_url: str) -> None:
    for path in PAGES:
        response = page.goto(base_url + path)
        assert response.status == 200, path
        heading = page.inner_text("h1")
        assert heading, path
        assert "Traceback" not in page.content(), path
        shot(page, "page" + (path.replace("/", "-").rstrip("-") or "-map"))
    assert page.errors == []


def test_browser_draws_plotly_charts(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/attribution")
    page.wait_for_selector("#figure-credit .main-svg")
    page.hover("#figure-credit")
    with page.expect_download() as download:
        page.click("#figure-credit .modebar-btn[data-title='Download plot as a PNG']")
    assert download.value.suggested_filename == "journeymap-figure-credit.png"
    page.goto(f"{base_url}/paths")
    page.wait_for_selector("#figure-sankey .main-svg")
    shot(page, "paths-sankey")
    assert page.errors == []


def test_browser_filter_change_updates_url(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/attribution")
    with page.expect_navigation():
        page.select_option("select[name=kind]", "lead")
    assert "kind=lead" in page.url
    assert "(lead)" in page.inner_text("main")
    page.click("a:has-text('by campaign')")
    assert "grain=campaign" in page.url
    assert "kind=lead" in page.url
    assert page.errors == []


def test_browser_opens_account_timeline(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/timeline")
    page.locator("a[href^='/timeline/account/']").first.click()
    page.wait_for_selector("#figure-timeline .main-svg")
    assert "/timeline/account/" in page.url
    assert "Touches" in page.inner_text("main")
    shot(page, "timeline-account")
    assert page.errors == []


def test_browser_shows_empty_state_command(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/icp")
    assert "journeymap import deals FILE --accounts FILE" in page.inner_text("main")
    assert page.errors == []


def test_browser_map_page_shows_api_numbers(page: Any, base_url: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{base_url}/")
    page.wait_for_selector("table.journey-map")
    data = page.request.get(f"{base_url}/api/map").json()["data"]
    for stage in data["stages"]:
        figures = stage["figures"]
        cell = f"td[data-stage='{stage['name']}']"
        assert page.inner_text(f"{cell}[data-row='entered'] .value") == f"{figures['entered']:,}"
        if figures["conversion_rate"] is not None:
            shown = page.inner_text(f"{cell}[data-row='conversion_rate'] .value")
            assert shown == f"{figures['conversion_rate']:.1%}"
    first = data["stages"][0]
    doing = page.inner_text(f"td[data-stage='{first['name']}'][data-row='doing']")
    assert first["qualitative"]["doing"][0] in doing
    impact = data["dropoff_points"][0]["revenue_impact"]
    assert f"{impact:,.0f}" in page.inner_text("main")
    page.wait_for_selector("#figure-map-flow .main-svg")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("section.map").screenshot(path=str(ARTIFACTS / "map.png"))
    shot(page, "map-page")
    assert page.errors == []


def test_browser_downloads_map_xlsx(page: Any, base_url: str, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    page.goto(f"{base_url}/?start=2026-01-01&end=2026-03-31")
    with page.expect_download() as download:
        page.click("a[data-format='xlsx']")
    assert download.value.suggested_filename == "journey-map-2026-01-01-2026-03-31.xlsx"
    target = tmp_path / "map.xlsx"
    download.value.save_as(target)
    data = page.request.get(f"{base_url}/api/map?start=2026-01-01&end=2026-03-31").json()["data"]

    grid = load_workbook(target)["Map"]
    header = [cell.value for cell in grid[1]]
    labels = [grid.cell(row=line, column=1).value for line in range(1, grid.max_row + 1)]
    entered_row = labels.index("Entered") + 1
    assert header[1:] == [stage["name"] for stage in data["stages"]]
    for column, stage in enumerate(data["stages"], start=2):
        assert grid.cell(row=entered_row, column=column).value == stage["figures"]["entered"]
    assert page.errors == []


def test_browser_compare_page_periods(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/compare")
    assert "journeymap snapshot --name 2026-Q1" in page.inner_text("main")
    page.fill("input[name=a]", "2026-Q1")
    page.fill("input[name=b]", "2026-Q2")
    with page.expect_navigation():
        page.click("form:has(input[name=a]) button[type=submit]")
    assert "a=2026-Q1" in page.url
    assert "2026-Q1 → 2026-Q2" in page.inner_text("main")
    assert page.locator("table.changes tbody tr").count() > 0
    shot(page, "compare-periods")
    assert page.errors == []


@pytest.fixture(scope="module")
def exported_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Write the attribution report and the journey map of a small demo world as HTML files."""
    from journeymap import api
    from journeymap.demo.world import generate_world, write_world
    from journeymap.report.map import journey_map
    from journeymap.report.map_html import write_map_html
    from journeymap.store.store import Store

    folder = tmp_path_factory.mktemp("exports")
    files = write_world(generate_world(200, seed=5), folder)
    store = Store.open()
    try:
        api.import_file(store, files["touchpoints"], input_format="touchpoints")
        api.import_file(store, files["ad_spend"], input_format="spend")
        report = api.write_report(store, folder / "report.html")
        journey = write_map_html(journey_map(store), folder / "map.html")
    finally:
        store.close()
    return {"report": report, "map": journey}


@pytest.mark.parametrize("name", ["report", "map"])
def test_exported_html_renders_its_charts_with_the_network_off(
    browser: Any, exported_pages: dict[str, Path], name: str
) -> None:
    context = browser.new_context(offline=True)
    tab = context.new_page()
    asked: list[str] = []
    errors: list[str] = []
    tab.on("request", lambda request: asked.append(request.url))
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        tab.goto(exported_pages[name].as_uri())
        tab.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        charts = tab.locator(".js-plotly-plot").count()
        tab.screenshot(path=str(ARTIFACTS / f"offline-{name}.png"), full_page=True)
    finally:
        context.close()

    assert charts >= 1
    assert errors == []
    assert [url for url in asked if not url.startswith("file:")] == []
