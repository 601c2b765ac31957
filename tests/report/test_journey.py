"""The journey sections of the HTML report: stages, funnel, velocity, ICP and blind spots."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest

from journeymap import api
from journeymap.common.config import Config
from journeymap.demo.world import generate_world, write_world
from journeymap.report import render_html
from journeymap.report.journey import JourneyData, deal_stage_order, stage_map
from journeymap.report.journey_html import journey_sections
from journeymap.sources.deals import import_deals
from journeymap.store.store import Store
from tests.conftest import shared_data_dir
from tests.report.test_html import make_report, parse

CRM = "crm-sales-opportunities"
STAGE_HEADINGS = ["Journey stages", "Funnel", "Velocity", "ICP"]
BLIND_SPOTS = "Tracking blind spots"


@pytest.fixture(scope="module")
def world_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("world")
    return write_world(generate_world(150, seed=7), folder, format="csv")


def write_page(store: Store, folder: Path) -> str:
    path = api.write_report(store, folder / "report.html", config=Config())
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def deals_page(world_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    crm = shared_data_dir() / CRM
    if not crm.is_dir():
        pytest.fail(f"real data folder {crm} is missing; set JOURNEYMAP_SHARED_DATA")
    store = Store.open()
    try:
        api.import_file(store, world_files["touchpoints"], input_format="touchpoints")
        import_deals(store, crm / "sales_pipeline.csv", accounts_file=crm / "accounts.csv")
        return write_page(store, tmp_path_factory.mktemp("deals"))
    finally:
        store.close()


@pytest.fixture(scope="module")
def touches_page(world_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    store = Store.open()
    try:
        api.import_file(store, world_files["touchpoints"], input_format="touchpoints")
        return write_page(store, tmp_path_factory.mktemp("touches"))
    finally:
        store.close()


def headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def section_text(page: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.DOTALL)
    assert found is not None, f"section {anchor!r} not found"
    return parse(found.group(1)).visible_text()


def test_deals_report_parses_as_html(deals_page: str) -> None:
    parser = parse(deals_page)

    assert parser.errors == []
    assert parser.open_elements == []


def test_deals_report_has_sections(deals_page: str) -> None:
    shown = headings(deals_page)

    for heading in [*STAGE_HEADINGS, BLIND_SPOTS]:
        assert heading in shown
    for anchor in ("journey-stages", "funnel", "velocity", "icp", "blind-spots"):
        assert f'href="#{anchor}"' in deals_page


def test_deals_report_stage_table(deals_page: str) -> None:
    text = section_text(deals_page, "journey-stages")

    onboarding = re.search(r"Onboarding Customer Success (\d+) (\d+)", text)

    assert onboarding is not None
    # All 85 CRM accounts won a deal. The demo touches add accounts of their own.
    assert int(onboarding.group(1)) >= 85
    assert onboarding.group(1) == onboarding.group(2)
    assert "Setup takes too long" in text
    assert "Pain points" in text


def test_deals_report_funnel_numbers(deals_page: str) -> None:
    text = section_text(deals_page, "funnel")

    assert "Engaging → Won by entry cohort" in text
    assert "2016 Q4 358 250 69.8%" in text
    assert "Total 8,300 4,238 51.1%" in text
    assert 'id="journeymap-funnel"' in deals_page


def test_deals_report_velocity_numbers(deals_page: str) -> None:
    text = section_text(deals_page, "velocity")

    assert "Engaging 6,711 45.0 85.0 104.0" in text
    assert "Engaging → Won 4,238 57.0 88.0 106.0 51.8" in text


def test_deals_report_icp_rows(deals_page: str) -> None:
    text = section_text(deals_page, "icp")

    assert "1 region Panama 100 75 75.0% 1.19 0.016 yes" in text
    assert "left out: 1,425 no account, 664 open" in text
    assert text.count(" region ") + text.count(" industry ") + text.count(" size_band ") == 10


def test_deals_report_blind_spots(deals_page: str) -> None:
    text = section_text(deals_page, "blind-spots")

    assert "Conversions that tracking misses, by kind" in text
    assert "closed_won" in text


def test_touch_report_blind_spots_only(touches_page: str) -> None:
    parser = parse(touches_page)
    shown = headings(touches_page)

    assert parser.errors == []
    assert BLIND_SPOTS in shown
    for heading in STAGE_HEADINGS:
        assert heading not in shown
    for anchor in ("journey-stages", "funnel", "velocity", "icp"):
        assert f'id="{anchor}"' not in touches_page
        assert f'href="#{anchor}"' not in touches_page


def test_report_without_journey_data() -> None:
    page = render_html(make_report())

    assert BLIND_SPOTS not in headings(page)
    assert 'id="funnel"' not in page


def test_journey_map_escapes_text() -> None:
    hostile = "<script>alert(1)</script>"
    summary = pd.DataFrame(
        [{"stage": "<b>Trial</b>", "owner": hostile, "entered": 3, "current": 1}]
    ).assign(median_days=float("nan"), stall_days=None)
    texts: dict[str, list[str]] = {
        key: [] for key in ("thinking", "feeling", "pain_points", "opportunities")
    }
    frame = pd.DataFrame(
        [{"stage": "<b>Trial</b>", "doing": [hostile], **texts, "expected_touchpoints": []}]
    )
    journey = JourneyData(stage_summary=summary, stage_map=frame)
    page = render_html(dataclasses.replace(make_report(), journey=journey))
    sections = journey_sections(journey)

    assert sections.journey_map is not None
    assert [label for label, _ in sections.journey_map.rows] == ["Doing"]
    assert hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Trial&lt;/b&gt;" in page
    assert parse(page).errors == []


def test_stage_map_empty_config() -> None:
    config = Config(stages=[{"name": "Only", "owner": "Sales"}])

    assert stage_map(config) is None


def test_stage_order_skips_lost(store: Store) -> None:
    store.write(
        "deal_stages",
        pd.DataFrame(
            {
                "deal_id": ["a", "a", "b", "b", "c"],
                "stage": ["Engaging", "Lost", "Engaging", "Won", "Prospecting"],
                "entered_at": pd.to_datetime(
                    ["2024-01-01", "2024-02-01", "2024-01-02", "2024-02-01", "2024-03-01"],
                    utc=True,
                ),
            }
        ),
    )

    assert deal_stage_order(store.table("deal_stages")) == ["Engaging", "Won", "Prospecting"]


@pytest.fixture(scope="module")
def spend_page(world_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    store = Store.open()
    try:
        api.import_file(store, world_files["touchpoints"], input_format="touchpoints")
        api.import_file(store, world_files["ad_spend"], input_format="spend")
        return write_page(store, tmp_path_factory.mktemp("spend"))
    finally:
        store.close()


def test_spend_report_has_campaign_coverage(spend_page: str) -> None:
    text = section_text(spend_page, "coverage")

    assert "Campaign coverage" in headings(spend_page)
    assert 'href="#coverage"' in spend_page
    assert "Under-invested" in text
    for stage in Config().stages:
        assert stage.name in text


def test_touch_report_without_spend_has_no_coverage(touches_page: str) -> None:
    assert 'id="coverage"' not in touches_page


def test_icp_section_shows_retention(store: Store) -> None:
    deals = pd.DataFrame(
        {
            "deal_id": [f"d{n}" for n in range(4)],
            "account_id": ["a1", "a2", "a3", "a4"],
            "is_won": [True, True, True, False],
            "is_closed": True,
            "closed_at": pd.to_datetime(["2024-01-10"] * 4, utc=True),
        }
    )
    store.append("deals", deals)
    store.append(
        "accounts",
        pd.DataFrame(
            {
                "account_id": ["a1", "a2", "a3", "a4"],
                "industry": ["retail", "retail", "media", "media"],
                "churned_at": pd.to_datetime(["2024-06-01", None, None, None], utc=True),
            }
        ),
    )
    ranking, note = api.icp(store, dimensions=["industry"])
    journey = JourneyData(icp=ranking, icp_note=note)

    page = render_html(dataclasses.replace(make_report(), journey=journey))
    text = section_text(page, "icp")

    assert parse(page).errors == []
    assert "segments by lift in win rate and retention" in text
    assert "Retained at 365 days" in text
    assert "retail 2 2 100.0% 1.33 1.000 no (too small) 2 1 50.0% 0.75 1.000 no (too small)" in text
    assert "no closed deal is a renewal" not in text


def test_icp_section_without_churn_data(store: Store) -> None:
    store.append(
        "deals",
        pd.DataFrame({"deal_id": ["d1"], "account_id": ["a1"], "is_won": True, "is_closed": True}),
    )
    store.append("accounts", pd.DataFrame({"account_id": ["a1"], "industry": ["retail"]}))
    ranking, _ = api.icp(store, dimensions=["industry"])

    page = render_html(dataclasses.replace(make_report(), journey=JourneyData(icp=ranking)))
    text = section_text(page, "icp")

    assert "no closed deal is a renewal, so the table shows no retention" in text
    assert "Customers" not in text
    assert "retail 1 1 100.0% 1.00 1.000 no (too small)" in text
