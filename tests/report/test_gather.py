"""gather_report over a small demo world: conversion kind, primary model and spend order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from journeymap import api
from journeymap.attribution import model_names
from journeymap.common.config import Config
from journeymap.demo.world import generate_world, write_world
from journeymap.report import ReportData
from journeymap.report.gather import choose_primary_model, gather_report
from journeymap.store.store import Store


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, api.Attribution]]:
    folder: Path = tmp_path_factory.mktemp("demo")
    files = write_world(generate_world(400, seed=7), folder, format="csv")
    config = Config()
    store = Store.open()
    api.import_file(store, files["touchpoints"], input_format="touchpoints", config=config)
    api.import_file(store, files["ad_spend"], input_format="spend", config=config)
    attribution = api.attribute(store, api.build(store, config), config=config)
    yield store, attribution
    store.close()


@pytest.fixture(scope="module")
def report(demo_store: tuple[Store, api.Attribution]) -> ReportData:
    store, attribution = demo_store
    return gather_report(store, Config(), attribution=attribution)


def test_gather_sets_kind(report: ReportData) -> None:
    assert report.kind == "closed_won"
    assert report.settings["conversion kind"] == "closed_won"


def test_gather_prefers_linear(report: ReportData) -> None:
    assert report.primary_model == "linear"


def test_gather_models_in_run_order(report: ReportData) -> None:
    assert [entry["model"] for entry in report.models] == model_names()


def test_gather_from_stored_run(demo_store: tuple[Store, api.Attribution]) -> None:
    store, _ = demo_store
    stored = gather_report(store, Config())

    assert stored.kind == "closed_won"
    assert stored.primary_model == "linear"


@pytest.mark.parametrize(
    ("frame", "key"), [("spend_by_channel", "channel"), ("spend_by_campaign", "campaign")]
)
def test_gather_spend_sorted_by_cost(report: ReportData, frame: str, key: str) -> None:
    spend: pd.DataFrame = getattr(report, frame)

    assert not spend.empty
    for model, rows in spend.groupby("model", sort=False):
        costs = rows["cost"].tolist()
        assert costs == sorted(costs, reverse=True), f"{frame} rows of {model} not by spend"
    assert list(spend["model"]) == sorted(spend["model"])
    assert spend[key].notna().all()


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["first_touch", "linear", "custom"], "linear"),
        (["last_touch", "first_touch"], "last_touch"),
        ([], None),
    ],
)
def test_choose_primary_model(names: list[str], expected: str | None) -> None:
    assert choose_primary_model(names) == expected
