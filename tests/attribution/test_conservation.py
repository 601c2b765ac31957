"""Every model conserves credit: credited sums equal the input's conversions and value."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymap.attribution import attribute, model_names, resolve_models
from journeymap.channels.rules import ChannelClassifier
from journeymap.journeys.build import JourneyOptions, journeys_from_events, journeys_from_paths
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform

CHANNELS = ["Email", "Direct", "Paid Search", "Webinars", "Organic Search"]
KINDS = ["lead", "opportunity", "closed_won"]
T0 = pd.Timestamp("2024-01-01T00:00:00Z")

event = st.fixed_dictionaries(
    {
        "person": st.sampled_from(["p1", "p2", "p3"]),
        "minute": st.integers(min_value=0, max_value=60 * 24 * 120),
        "channel": st.sampled_from(CHANNELS),
        "conversion": st.sampled_from([*KINDS, None, None, None]),
        "touch": st.booleans(),
        "value": st.decimals(min_value=0, max_value=10_000, places=2),
    }
)


def tables(events: list[dict[str, object]]) -> tuple[ibis.Table, ibis.Table, float, float]:
    touches, conversions = [], []
    for seq, row in enumerate(events, start=1):
        occurred = T0 + pd.Timedelta(minutes=int(row["minute"]))  # type: ignore[call-overload]
        if row["touch"] or row["conversion"] is None:
            touches.append(
                {
                    "touchpoint_id": f"t{seq}",
                    "seq": seq,
                    "person_id": row["person"],
                    "occurred_at": occurred,
                    "channel": row["channel"],
                }
            )
        if row["conversion"] is not None:
            conversions.append(
                {
                    "conversion_id": f"c{seq}",
                    "seq": seq,
                    "person_id": row["person"],
                    "occurred_at": occurred,
                    "kind": row["conversion"],
                    "value": float(row["value"]),
                }
            )  # type: ignore[arg-type]
    touch_table = ibis.memtable(
        conform(
            pd.DataFrame(
                touches, columns=["touchpoint_id", "seq", "person_id", "occurred_at", "channel"]
            ),
            RAW_TABLES["touchpoints"],
            table_name="touchpoints",
        )
    )
    conversion_table = ibis.memtable(
        conform(
            pd.DataFrame(
                conversions,
                columns=["conversion_id", "seq", "person_id", "occurred_at", "kind", "value"],
            ),
            RAW_TABLES["conversions"],
            table_name="conversions",
        )
    )
    total_value = sum(row["value"] for row in conversions)
    return touch_table, conversion_table, float(len(conversions)), float(total_value)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event, min_size=0, max_size=25),
    lookback=st.sampled_from([1.0, 30.0, 90.0]),
    transform=st.sampled_from(["none", "collapse", "unique", "frequency"]),
    last_n=st.sampled_from([None, 1, 3]),
    entity=st.sampled_from(["person", "account"]),
)
def test_every_model_conserves_credit(
    events: list[dict[str, object]],
    lookback: float,
    transform: str,
    last_n: int | None,
    entity: str,
) -> None:
    touches, conversions, count, value = tables(events)
    options = JourneyOptions(
        lookback_days=lookback, transform=transform, last_n=last_n, entity=entity
    )  # type: ignore[arg-type]
    journeys = journeys_from_events(touches, conversions, ChannelClassifier(), options)
    credits = attribute(journeys, resolve_models(["all"])).to_pandas()
    for model in model_names():
        rows = credits[credits.model == model]
        assert rows.credit.sum() == pytest.approx(count, abs=1e-9), model
        assert round(rows.value_credit.sum(), 2) == round(value, 2), model
        assert (rows.credit >= 0).all(), model


path_row = st.fixed_dictionaries(
    {
        "path": st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=0, max_size=8).map(
            " > ".join
        ),
        "conversions": st.integers(min_value=0, max_value=50),
        "nulls": st.integers(min_value=0, max_value=50),
        "value_per_conversion": st.decimals(min_value=0, max_value=500, places=2),
    }
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(path_row, min_size=1, max_size=15),
    transform=st.sampled_from(["none", "collapse", "unique"]),
)
def test_path_input_conserves_credit(rows: list[dict[str, object]], transform: str) -> None:
    frame = pd.DataFrame(rows)
    frame["value"] = [float(row["value_per_conversion"]) * int(row["conversions"]) for row in rows]  # type: ignore[arg-type, call-overload]
    frame = frame.assign(path_id=range(1, len(frame) + 1), separator=">", import_id="paths-test")
    frame = frame.drop(columns="value_per_conversion").astype(
        {"conversions": float, "nulls": float}
    )
    table = ibis.memtable(
        conform(frame, RAW_TABLES["path_aggregates"], table_name="path_aggregates")
    )
    journeys = journeys_from_paths(table, JourneyOptions(transform=transform))  # type: ignore[arg-type]
    models = [model for model in resolve_models(["all"]) if not model.needs_timestamps]
    credits = attribute(journeys, models).to_pandas()
    for model in models:
        part = credits[credits.model == model.name]
        assert part.credit.sum() == pytest.approx(frame.conversions.sum(), abs=1e-9), model.name
        assert round(part.value_credit.sum(), 2) == round(frame.value.sum(), 2), model.name
