"""Credit by channel from distinct paths equals the sum of the per-touch credit rows."""

from __future__ import annotations

import functools

import ibis
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymap.attribution import (
    attribute,
    channel_credit_table,
    create_model,
    credit_by,
    resolve_models,
)
from journeymap.attribution.base import AttributionModel
from journeymap.attribution.rules import RuleModel
from journeymap.channels.rules import ChannelClassifier
from journeymap.journeys.build import JourneyOptions, Journeys, journeys_from_events
from tests.attribution.test_conservation import event, tables

SHORTCUT_MODELS = ["markov", "shapley", "shapley_ordered", "fractribution"]


def engine_table(journeys: Journeys, models: list[str], kinds: list[str] | None) -> pd.DataFrame:
    chosen = resolve_models(models)
    frame: pd.DataFrame = credit_by(attribute(journeys, chosen), "channel", kinds).to_pandas()
    return frame


def assert_same_table(shortcut: pd.DataFrame, engine: pd.DataFrame) -> None:
    assert list(shortcut.columns) == ["model", "channel", "conversions", "value"]
    left = shortcut.set_index(["model", "channel"]).sort_index()
    right = engine.set_index(["model", "channel"]).sort_index()
    assert list(left.index) == list(right.index)
    for column in ("conversions", "value"):
        for key, expected in right[column].items():
            assert left.loc[key, column] == pytest.approx(expected, rel=1e-9, abs=1e-9), key


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event, min_size=0, max_size=25),
    transform=st.sampled_from(["none", "collapse", "unique", "frequency"]),
    kinds=st.sampled_from([None, ["lead"], ["closed_won", "opportunity"]]),
)
def test_channel_credit_table_equals_engine(
    events: list[dict[str, object]], transform: str, kinds: list[str] | None
) -> None:
    touches, conversions, _, _ = tables(events)
    options = JourneyOptions(transform=transform)  # type: ignore[arg-type]
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), options)
    if journeys.journeys.count().execute() == 0:
        return
    shortcut = channel_credit_table(journeys, resolve_models(["all"]), kinds)
    assert_same_table(shortcut, engine_table(journeys, ["all"], kinds))


def test_channel_credit_table_orders_like_credit_by() -> None:
    rows = [
        {"person": "p1", "minute": 0, "channel": "Email", "conversion": None, "touch": True},
        {"person": "p1", "minute": 5, "channel": "Direct", "conversion": "lead", "touch": True},
        {"person": "p2", "minute": 1, "channel": "Email", "conversion": "lead", "touch": True},
        {"person": "p3", "minute": 2, "channel": "Webinars", "conversion": None, "touch": True},
        {"person": "p3", "minute": 3, "channel": None, "conversion": "lead", "touch": False},
        {"person": "p4", "minute": 3, "channel": None, "conversion": "lead", "touch": False},
    ]
    for row in rows:
        row["value"] = 10
    touches, conversions, _, _ = tables(rows)
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), JourneyOptions())
    models = [create_model(name) for name in [*SHORTCUT_MODELS, "linear"]]
    shortcut = channel_credit_table(journeys, models)
    engine = engine_table(journeys, [*SHORTCUT_MODELS, "linear"], None)
    assert shortcut.model.tolist() == engine.model.tolist()
    assert shortcut.channel.tolist() == engine.channel.tolist()
    assert "(unattributed)" in set(shortcut.channel)


@pytest.mark.parametrize("name", SHORTCUT_MODELS)
def test_channel_totals_exist_for_path_models(name: str) -> None:
    rows = [
        {"person": "p1", "minute": 0, "channel": "Email", "conversion": None, "touch": True},
        {"person": "p1", "minute": 9, "channel": "Direct", "conversion": "lead", "touch": True},
    ]
    for row in rows:
        row["value"] = 4
    touches, conversions, _, _ = tables(rows)
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), JourneyOptions())
    totals = create_model(name).channel_totals(journeys)
    assert totals is not None
    assert totals.conversions.sum() == pytest.approx(1.0)
    assert totals.value.sum() == pytest.approx(4.0)


def test_sampled_shapley_totals_equal_engine() -> None:
    rows = [
        {"person": f"p{number}", "minute": minute, "channel": channel, "conversion": kind}
        for number, (minute, channel, kind) in enumerate(
            [
                (0, "Email", "lead"),
                (1, "Direct", None),
                (2, "Webinars", "lead"),
                (3, "Paid Search", None),
                (4, "Email", "lead"),
            ]
        )
    ]
    for row in rows:
        row["touch"] = True
        row["value"] = 2
    touches, conversions, _, _ = tables(rows)
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), JourneyOptions())
    model = create_model("shapley", {"method": "sampled", "samples": 200, "seed": 5})
    shortcut = channel_credit_table(journeys, [model])
    engine = credit_by(model.credits(journeys)).to_pandas()
    assert_same_table(shortcut, engine)


# Journeys of every length the rule shortcuts branch on (1, 2, several), an all-direct path,
# repeated channels for the frequency transform, and a non-converting tail. ``kinds`` gives
# the conversion kind of p1's three converting touches (None: the touch does not convert).
def rule_events(kinds: dict[str, str | None]) -> list[dict[str, object]]:
    rows = [
        ("p1", 0, "Email", None, True),
        ("p1", 1, "Direct", None, True),
        ("p1", 2, "Email", kinds["p1_first"], True),
        ("p1", 3, "Webinars", None, True),
        ("p1", 4, "Email", kinds["p1_second"], True),
        ("p1", 5, "Direct", kinds["p1_last"], True),
        ("p1", 6, "Paid Search", None, True),
        ("p2", 0, "Paid Search", "conversion", True),
        ("p3", 0, "Direct", None, True),
        ("p3", 1, "Direct", "conversion", True),
        ("p4", 0, "Webinars", None, True),
        ("p4", 1, "Email", "conversion", True),
        ("p5", 0, "Organic Search", None, True),
        ("p5", 1, "Email", None, True),
        ("p5", 2, "Organic Search", None, True),
        ("p5", 3, "Direct", "conversion", True),
    ]
    return [
        {
            "person": person,
            "minute": minute,
            "channel": channel,
            "conversion": kind,
            "touch": touch,
            "value": 10 + minute,
        }
        for person, minute, channel, kind, touch in rows
    ]


WITHOUT_MILESTONES: dict[str, str | None] = {
    "p1_first": None,
    "p1_second": None,
    "p1_last": "conversion",
}
WITH_MILESTONES: dict[str, str | None] = {
    "p1_first": "lead",
    "p1_second": "opportunity",
    "p1_last": "closed_won",
}

RULE_CASES = [
    ("first_touch", {}),
    ("last_touch", {}),
    ("last_non_direct", {}),
    ("last_non_direct", {"direct_channels": ["direct", "EMAIL"]}),
    ("linear", {}),
    ("position_based", {}),
    ("position_based", {"first": 0.3, "last": 0.5}),
    ("position_based", {"first": 0.0, "last": 0.0}),
    ("custom", {"first": 2.0, "middle": 0.0, "last": 1.0}),
    ("custom", {"first": 0.0, "middle": 1.0, "last": 0.0}),
    ("w_shaped", {}),
    ("w_shaped", {"first": 0.0, "lead": 1.0, "opportunity": 0.0, "rest": 0.0}),
    ("full_path", {}),
    ("full_path", {"first": 0.5, "lead": 0.0, "opportunity": 0.0, "won": 0.0, "rest": 0.5}),
]
RULE_IDS = [f"{name}-{parameters}" for name, parameters in RULE_CASES]


@functools.cache
def rule_tables(milestones: bool, transform: str) -> tuple[pa.Table, pa.Table]:
    """Build the rule test journeys once per case and return both tables as Arrow."""
    touches, conversions, _, _ = tables(
        rule_events(WITH_MILESTONES if milestones else WITHOUT_MILESTONES)
    )
    options = JourneyOptions(transform=transform)  # type: ignore[arg-type]
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), options)
    return journeys.journeys.to_pyarrow(), journeys.touches.to_pyarrow()


def rule_journeys(milestones: bool, transform: str = "none") -> Journeys:
    """Return the rule test journeys with an empty memo, so that no test reuses another's."""
    journeys, touches = rule_tables(milestones, transform)
    return Journeys(journeys=ibis.memtable(journeys), touches=ibis.memtable(touches))


def assert_rule_equals_engine(
    journeys: Journeys, name: str, parameters: dict[str, object]
) -> AttributionModel:
    model = create_model(name, parameters)
    shortcut = channel_credit_table(journeys, [model])
    engine = credit_by(attribute(journeys, [model]), "channel").to_pandas()
    assert not engine.empty
    assert_same_table(shortcut, engine)
    return model


@pytest.mark.parametrize(("name", "parameters"), RULE_CASES, ids=RULE_IDS)
def test_rule_shortcut_equals_engine_without_milestones(
    name: str, parameters: dict[str, object]
) -> None:
    journeys = rule_journeys(milestones=False)
    assert_rule_equals_engine(journeys, name, parameters)
    # Without milestones and repeats every rule model sums over distinct paths.
    assert "steps" in journeys.memo


@pytest.mark.parametrize(("name", "parameters"), RULE_CASES, ids=RULE_IDS)
def test_rule_credit_equals_engine_with_milestones(
    name: str, parameters: dict[str, object]
) -> None:
    journeys = rule_journeys(milestones=True)
    flagged = journeys.touches.filter(
        journeys.touches.is_lead_touch | journeys.touches.is_opportunity_touch
    )
    assert flagged.count().execute() > 0
    model = assert_rule_equals_engine(journeys, name, parameters)
    # Milestone models must run in the engine, but the others still take the shortcut.
    assert isinstance(model, RuleModel)
    assert ("steps" in journeys.memo) is not model.uses_milestones


@pytest.mark.parametrize(("name", "parameters"), RULE_CASES, ids=RULE_IDS)
def test_rule_credit_equals_engine_with_frequency(name: str, parameters: dict[str, object]) -> None:
    journeys = rule_journeys(milestones=False, transform="frequency")
    assert journeys.touches.repeats.max().execute() > 1
    model = assert_rule_equals_engine(journeys, name, parameters)
    # Linear weighs by repeats, so it must run in the engine. The position models need not.
    assert isinstance(model, RuleModel)
    assert ("steps" in journeys.memo) is not model.uses_repeats
