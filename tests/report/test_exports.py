"""Exports of the journey map: XLSX cells, the offline HTML page, Markdown, CSV and Parquet."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from journeymap import api
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError
from journeymap.demo.world import generate_world, write_world
from journeymap.report.exports import export_map, render_markdown
from journeymap.report.map import GRID_ROWS, JourneyMap, journey_map
from journeymap.report.map_html import render_map_html
from journeymap.store.store import Store
from tests.report.test_html import parse

FILTERS = {"start": "2026-02-01", "end": "2026-08-31", "model": "linear"}

SIGNIFICANT = 1e-14
"""Relative tolerance of XLSX numbers: openpyxl writes floats with 15 significant digits,
the precision Excel keeps."""


def same_number(cell: object, expected: object) -> bool:
    if isinstance(expected, float) and isinstance(cell, int | float):
        return cell == pytest.approx(expected, rel=SIGNIFICANT)
    return cell == expected


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    files = write_world(generate_world(150, seed=7), tmp_path_factory.mktemp("world"))
    store = Store.open()
    api.import_file(store, files["touchpoints"], input_format="touchpoints")
    api.attribute(store, api.build(store, Config()), config=Config(), models=["linear"])
    yield store
    store.close()


@pytest.fixture(scope="module")
def demo_map(demo_store: Store) -> JourneyMap:
    return journey_map(demo_store, Config(), **FILTERS)


@pytest.fixture(scope="module")
def workbook(demo_map: JourneyMap, tmp_path_factory: pytest.TempPathFactory) -> openpyxl.Workbook:
    path = tmp_path_factory.mktemp("xlsx") / "map.xlsx"
    export_map(demo_map, path, file_format="xlsx")
    return openpyxl.load_workbook(path)


def test_xlsx_has_grid_and_table_sheets(workbook: openpyxl.Workbook) -> None:
    assert workbook.sheetnames == [
        "Map",
        "Stages",
        "Touchpoints",
        "Top sequences",
        "Drop-off points",
        "Channel credit",
        "Qualitative",
        "Filters",
    ]


def test_xlsx_stages_sheet_matches_to_dict(
    workbook: openpyxl.Workbook, demo_map: JourneyMap
) -> None:
    sheet = workbook["Stages"]
    header = [cell.value for cell in sheet[1]]
    data = demo_map.to_dict()

    assert len(data["stages"]) == sheet.max_row - 1
    for line, stage in enumerate(data["stages"], start=2):
        row = {
            name: sheet.cell(row=line, column=index).value for index, name in enumerate(header, 1)
        }
        assert row["stage"] == stage["name"]
        for key, expected in stage["figures"].items():
            assert same_number(row[key], expected), (stage["name"], key, row[key], expected)


def test_xlsx_grid_cells_are_numbers(workbook: openpyxl.Workbook, demo_map: JourneyMap) -> None:
    sheet = workbook["Map"]
    labels = [sheet.cell(row=line, column=1).value for line in range(1, sheet.max_row + 1)]
    data = demo_map.to_dict()

    for row in GRID_ROWS:
        if row.kind not in ("count", "rate", "days", "money"):
            continue
        line = labels.index(row.label) + 1
        for column, stage in enumerate(data["stages"], start=2):
            cell = sheet.cell(row=line, column=column)
            expected = stage["figures"][row.key]
            assert same_number(cell.value, expected), (row.key, stage["name"])
            if expected is not None:
                assert isinstance(cell.value, int | float)


def test_xlsx_number_formats(workbook: openpyxl.Workbook) -> None:
    sheet = workbook["Map"]
    labels = [sheet.cell(row=line, column=1).value for line in range(1, sheet.max_row + 1)]
    rate = sheet.cell(row=labels.index("Conversion to a later stage") + 1, column=2)
    money = sheet.cell(row=labels.index("Attributed revenue") + 1, column=2)

    assert rate.number_format == "0.0%"
    assert money.number_format == '#,##0.00 "USD"'


def test_xlsx_channel_credit_matches(workbook: openpyxl.Workbook, demo_map: JourneyMap) -> None:
    rows = list(workbook["Channel credit"].iter_rows(min_row=2, values_only=True))
    expected = [tuple(row.values()) for row in demo_map.to_dict()["channel_credit"]]

    assert len(rows) == len(expected)
    for row, wanted in zip(rows, expected, strict=True):
        assert row[0] == wanted[0]
        assert all(same_number(a, b) for a, b in zip(row[1:], wanted[1:], strict=True)), row


def test_html_is_self_contained(demo_map: JourneyMap) -> None:
    page = render_map_html(demo_map)
    parser = parse(page)
    outside_bundle = page.replace(get_plotlyjs(), "", 1)

    for tag, attributes in parser.start_tags:
        for name in ("src", "href"):
            target = attributes.get(name)
            assert target is None or target.startswith("#"), f"<{tag} {name}={target!r}>"
    assert "http://" not in outside_bundle
    assert "https://" not in outside_bundle
    assert "url(" not in outside_bundle


def test_html_inlines_plotly_bundle_once(demo_map: JourneyMap) -> None:
    page = render_map_html(demo_map)

    assert page.count(get_plotlyjs()) == 1
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", page)) == 1
    assert page.count('id="journeymap-map-flow"') == 1
    assert page.count('id="journeymap-map-value"') == 1


def test_html_parses_and_shows_grid(demo_map: JourneyMap) -> None:
    parser = parse(render_map_html(demo_map))
    text = parser.visible_text()

    assert parser.errors == []
    for stage in demo_map.stages:
        assert stage.name in text
    for row in GRID_ROWS:
        assert row.label in text


def test_markdown_renders_stage_grid(demo_map: JourneyMap) -> None:
    text = render_markdown(demo_map)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| | "))

    assert header == "| | " + " | ".join(stage.name for stage in demo_map.stages) + " |"
    entered = next(line for line in lines if line.startswith("| **Entered** |"))
    assert entered.count("|") == len(demo_map.stages) + 2
    assert f"| {demo_map.stages[0].figures.entered:,} |" in entered


def test_markdown_escapes_pipes(demo_map: JourneyMap) -> None:
    first = dataclasses.replace(demo_map.stages[0], pain_points=("Too | many vendors",))
    changed = dataclasses.replace(demo_map, stages=(first, *demo_map.stages[1:]))
    line = next(
        line for line in render_markdown(changed).splitlines() if line.startswith("| **Pain")
    )

    assert "Too \\| many vendors" in line
    assert line.replace("\\|", "").count("|") == len(demo_map.stages) + 2


def test_csv_tables_match_map(demo_map: JourneyMap, tmp_path: Path) -> None:
    written = export_map(demo_map, tmp_path / "tables", file_format="csv")
    stages = pd.read_csv(tmp_path / "tables" / "stages.csv")

    assert {path.name for path in written} >= {"stages.csv", "touchpoints.csv", "filters.csv"}
    assert stages.entered.tolist() == [stage.figures.entered for stage in demo_map.stages]


def test_parquet_tables_keep_types(demo_map: JourneyMap, tmp_path: Path) -> None:
    export_map(demo_map, tmp_path / "tables", file_format="parquet")
    stages = pd.read_parquet(tmp_path / "tables" / "stages.parquet")

    assert str(stages.entered.dtype) == "int64"
    assert stages.stage.tolist() == [stage.name for stage in demo_map.stages]


def test_export_unknown_format(demo_map: JourneyMap, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format 'pdf'"):
        export_map(demo_map, tmp_path / "map.pdf", file_format="pdf")


def test_export_one_file_format_rejects_folder(demo_map: JourneyMap, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, but html writes one file"):
        export_map(demo_map, tmp_path, file_format="html")
