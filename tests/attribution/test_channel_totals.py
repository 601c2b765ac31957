"""Credit by channel from distinct paths equals the sum of the per-touch credit rows."""

from __future__ import annotations

import pandas as pd
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
