"""Journey stages: configuration, checks against the store, and the stage timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymap.common.config import Config, StageConfig, load_config, parse_config
from journeymap.common.errors import ConfigError
from journeymap.journeys.stages import (
    check_stages,
    stage_position,
    stage_timeline,
    stays_from_signals,
)
from journeymap.sources.deals import import_deals
from journeymap.store.store import Store

T0 = pd.Timestamp("2024-03-01T00:00:00Z")
DEFAULT_NAMES = ["Awareness", "Consideration", "Decision", "Onboarding", "Retention", "Expansion"]
PIPELINE = Path("crm-sales-opportunities/sales_pipeline.csv")


def day(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def stages_of(raw: list[dict[str, Any]]) -> list[StageConfig]:
    return parse_config({"stages": raw}).stages


def tables_of(
    touches: list[tuple[str, float]], conversions: list[tuple[str, float, str]]
) -> dict[str, pd.DataFrame]:
    """Return touchpoints and conversions frames of (person, day) and (person, day, kind)."""
    touch_frame = pd.DataFrame(
        {
            "person_id": [person for person, _ in touches],
            "account_id": [f"acct-{person}" for person, _ in touches],
            "occurred_at": pd.Series(
                [day(days) for _, days in touches], dtype="datetime64[us, UTC]"
            ),
        }
    )
    conversion_frame = pd.DataFrame(
        {
            "person_id": [person for person, _, _ in conversions],
            "account_id": [f"acct-{person}" for person, _, _ in conversions],
            "occurred_at": pd.Series(
                [day(days) for _, days, _ in conversions], dtype="datetime64[us, UTC]"
            ),
            "kind": [kind for _, _, kind in conversions],
        }
    )
    return {"touchpoints": touch_frame, "conversions": conversion_frame}


def timeline_frame(
    frames: dict[str, pd.DataFrame],
    stages: list[StageConfig],
    con: Any = None,
    entity_kind: str = "person",
) -> pd.DataFrame:
    con = con if con is not None else ibis.duckdb.connect()
    tables = {
        name: con.create_table(f"stage_{name}", frame, overwrite=True)
        for name, frame in frames.items()
    }
    result = stage_timeline(tables, stages, entity_kind=entity_kind).to_pandas()
    result["entered_at"] = pd.to_datetime(result["entered_at"], utc=True)
    result["exited_at"] = pd.to_datetime(result["exited_at"], utc=True)
    ordered: pd.DataFrame = result.sort_values(["entity_id", "entered_at"], ignore_index=True)
    return ordered


HAND_MADE = tables_of(
    touches=[("p1", 0)],
    conversions=[("p1", 1, "lead"), ("p1", 3, "opportunity"), ("p1", 10, "closed_won")],
)


# Configuration -----------------------------------------------------------------------------


def test_default_stages_in_order() -> None:
    stages = Config().stages

    assert [stage.name for stage in stages] == DEFAULT_NAMES
    assert stages[0].owner == "Marketing"
    assert stages[0].enter_when[0].touch is True
    assert all(stage.doing and stage.expected_touchpoints for stage in stages)


def test_default_stages_check_on_empty_store(store: Store) -> None:
    warnings = check_stages(Config().stages, store, strict=True)

    assert "not checked: deal stage conditions: the store has none" in warnings
    assert "not checked: touch conditions: the store has no touchpoints" in warnings


def test_yaml_typo_key_named(tmp_path: Path) -> None:
    path = tmp_path / "journeymap.yaml"
    path.write_text("stages:\n  - name: Awareness\n    enter_whn:\n      - touch: true\n")

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.location == "stages.0.enter_whn"
    assert "Did you mean enter_when?" in str(raised.value)


def test_condition_needs_exactly_one_key() -> None:
    with pytest.raises(ConfigError) as raised:
        stages_of([{"name": "A", "enter_when": [{"conversion": "lead", "event": "Signed Up"}]}])

    assert "exactly one of conversion, deal_stage, event, lifecycle_stage, touch" in str(
        raised.value
    )


def test_overlapping_entry_rules_name_both() -> None:
    raw: list[dict[str, Any]] = [
        {"name": "Consideration", "enter_when": [{"deal_stage": "Engaging"}]},
        {"name": "Decision", "enter_when": [{"touch": True}, {"deal_stage": " engaging"}]},
    ]

    with pytest.raises(ConfigError) as raised:
        stages_of(raw)

    message = str(raised.value)
    assert "overlapping entry rules" in message
    assert "stages[1].enter_when[1]" in message
    assert "stages[0].enter_when[0]" in message


def test_duplicate_stage_name_rejected() -> None:
    with pytest.raises(ConfigError) as raised:
        stages_of([{"name": "Decision"}, {"name": "decision"}])

    assert "repeats stages[0].name" in str(raised.value)


def test_unknown_stage_reference_suggests() -> None:
    stages = Config().stages

    assert stage_position(stages, "decision") == 2
    with pytest.raises(ConfigError) as raised:
        stage_position(stages, "Onbording", location="--stage")

    assert raised.value.location == "--stage"
    assert "Did you mean 'Onboarding'?" in str(raised.value)


# Checks against the store ------------------------------------------------------------------


@pytest.fixture
def deals_store(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "deals.csv"
    path.write_text(
        "opportunity_id,account,deal_stage,engage_date,close_date\n"
        "D1,Acme,Won,2024-01-02,2024-02-01\n"
        "D2,Acme,Engaging,2024-01-05,\n"
        "D3,Beta,Lost,2024-01-03,2024-01-20\n"
    )
    import_deals(store, path)
    return store


def test_unknown_deal_stage_names_nearest(deals_store: Store) -> None:
    stages = stages_of(
        [
            {"name": "Consideration", "enter_when": [{"deal_stage": "Engaging"}]},
            {
                "name": "Onboarding",
                "enter_when": [{"conversion": "closed_won"}, {"deal_stage": "Wonn"}],
            },
        ]
    )

    with pytest.raises(ConfigError) as raised:
        check_stages(stages, deals_store)

    assert raised.value.location == "stages[1].enter_when[1].deal_stage"
    assert "'Wonn' never occurs" in str(raised.value)
    assert "Did you mean 'Won'?" in str(raised.value)
    assert "'Engaging', 'Lost', 'Won'" in str(raised.value)


def test_unknown_name_warning_when_lenient(deals_store: Store) -> None:
    stages = stages_of([{"name": "Onboarding", "enter_when": [{"deal_stage": "Closed Won"}]}])

    warnings = check_stages(stages, deals_store, strict=False)

    assert len(warnings) == 1
    assert "deal stage 'Closed Won' never occurs" in warnings[0]


def test_known_names_pass_case_insensitively(deals_store: Store) -> None:
    stages = stages_of([{"name": "Onboarding", "enter_when": [{"deal_stage": " won"}]}])

    assert check_stages(stages, deals_store) == []


# Timeline ----------------------------------------------------------------------------------


def test_timeline_hand_made_journey() -> None:
    result = timeline_frame(HAND_MADE, Config().stages)

    assert result["stage"].tolist() == ["Awareness", "Consideration", "Decision", "Onboarding"]
    assert result["entered_at"].tolist() == [day(0), day(1), day(3), day(10)]
    assert result["exited_at"].tolist()[:3] == [day(1), day(3), day(10)]
    assert pd.isna(result["exited_at"].iloc[3])
    assert result["reason"].tolist() == [
        "touch",
        "conversion lead",
        "conversion opportunity",
        "conversion closed_won",
    ]
    assert set(result["entity_kind"]) == {"person"}
    assert set(result["entity_id"]) == {"p1"}


def test_timeline_tie_later_stage_wins() -> None:
    frames = tables_of(
        touches=[("p2", 0)],
        conversions=[("p2", 0, "lead"), ("p2", 0, "trial"), ("p2", 0, "demo")],
    )

    result = timeline_frame(frames, Config().stages)

    assert result["stage"].tolist() == ["Consideration"]
    assert result["reason"].tolist() == ["conversion demo"]
    assert result["entered_at"].tolist() == [day(0)]


def test_timeline_out_of_order_signals() -> None:
    frames = tables_of(
        touches=[("p3", 2), ("p3", 0.5)],
        conversions=[("p3", 5, "closed_won"), ("p3", 3, "lead"), ("p3", 1, "opportunity")],
    )

    result = timeline_frame(frames, Config().stages)

    assert result["stage"].tolist() == ["Awareness", "Decision", "Onboarding"]
    assert result["entered_at"].tolist() == [day(0.5), day(1), day(5)]
    assert result["exited_at"].tolist()[:2] == [day(1), day(5)]


def test_timeline_no_moving_back() -> None:
    frames = tables_of(
        touches=[],
        conversions=[("p4", 0, "renewal"), ("p4", 1, "expansion"), ("p4", 2, "renewal")],
    )

    result = timeline_frame(frames, Config().stages)

    assert result["stage"].tolist() == ["Retention", "Expansion"]
    assert pd.isna(result["exited_at"].iloc[1])


def test_timeline_per_account() -> None:
    frames = tables_of(touches=[("p5", 0), ("p6", 1)], conversions=[("p6", 2, "lead")])

    result = timeline_frame(frames, Config().stages, entity_kind="account")

    assert result["entity_id"].tolist() == ["acct-p5", "acct-p6", "acct-p6"]
    assert result["stage"].tolist() == ["Awareness", "Awareness", "Consideration"]
    assert set(result["entity_kind"]) == {"account"}


def test_timeline_empty_without_signals() -> None:
    stages = stages_of([{"name": "Retention", "enter_when": [{"conversion": "renewal"}]}])

    result = stage_timeline({}, stages).to_pandas()

    assert result.empty
    assert list(result.columns) == [
        "entity_kind",
        "entity_id",
        "stage",
        "entered_at",
        "exited_at",
        "reason",
        "exit_reason",
    ]


def test_timeline_accounts_reaching_won(shared_data: Path, store: Store) -> None:
    import_deals(store, shared_data / PIPELINE)
    stages = stages_of(
        [
            {"name": "Awareness", "enter_when": [{"touch": True}]},
            {"name": "Consideration", "enter_when": [{"deal_stage": "Engaging"}]},
            {"name": "Onboarding", "enter_when": [{"deal_stage": "Won"}]},
        ]
    )
    assert check_stages(stages, store) == [
        "not checked: touch conditions: the store has no touchpoints"
    ]

    result = stage_timeline(store, stages, entity_kind="account").to_pandas()
    pipeline = pd.read_csv(shared_data / PIPELINE)
    won = pipeline[(pipeline["deal_stage"] == "Won") & pipeline["account"].notna()]

    onboarded = result[result["stage"] == "Onboarding"]
    assert onboarded["entity_id"].nunique() == won["account"].nunique()
    assert len(onboarded) == onboarded["entity_id"].nunique()
    assert set(result["stage"]) == {"Consideration", "Onboarding"}


# Properties --------------------------------------------------------------------------------

SIGNALS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=12),
        st.integers(min_value=0, max_value=5),
        st.sampled_from(["r1", "r2"]),
    ),
    min_size=1,
    max_size=25,
)


def expected_stays(rows: list[tuple[str, int, int, str]]) -> list[tuple[str, int, int, str]]:
    """Return (entity, minute, stage, reason) of each stay, by the rules in plain Python."""
    best: dict[tuple[str, int], tuple[int, str]] = {}
    for entity, minute, stage, reason in rows:
        current = best.get((entity, minute))
        if current is None or (-stage, reason) < (-current[0], current[1]):
            best[(entity, minute)] = (stage, reason)

    stays = []
    reached: dict[str, int] = {}
    for (entity, minute), (stage, reason) in sorted(best.items()):
        if stage > reached.get(entity, -1):
            reached[entity] = stage
            stays.append((entity, minute, stage, reason))
    return stays


@settings(max_examples=40, deadline=None)
@given(rows=SIGNALS)
def test_stays_never_overlap(rows: list[tuple[str, int, int, str]]) -> None:
    signals = ibis.memtable(
        pd.DataFrame(
            {
                "entity_id": [row[0] for row in rows],
                "at": pd.Series(
                    [T0 + pd.Timedelta(minutes=row[1]) for row in rows],
                    dtype="datetime64[us, UTC]",
                ),
                "stage_index": [row[2] for row in rows],
                "reason": [row[3] for row in rows],
            }
        )
    )

    result = stays_from_signals(signals, DEFAULT_NAMES, entity_kind="person").to_pandas()
    result = result.sort_values(["entity_id", "entered_at"], ignore_index=True)

    for _, stays in result.groupby("entity_id"):
        entered = pd.to_datetime(stays["entered_at"], utc=True).tolist()
        exited = pd.to_datetime(stays["exited_at"], utc=True).tolist()
        assert entered == sorted(set(entered))
        assert exited[:-1] == entered[1:]
        assert pd.isna(exited[-1])
        positions = [DEFAULT_NAMES.index(name) for name in stays["stage"]]
        assert positions == sorted(set(positions))

    actual = [
        (
            row.entity_id,
            int((pd.Timestamp(row.entered_at) - T0) / pd.Timedelta(minutes=1)),
            DEFAULT_NAMES.index(row.stage),
            row.reason,
        )
        for row in result.itertuples()
    ]
    assert actual == expected_stays(rows)


# Spark parity ------------------------------------------------------------------------------


@pytest.mark.spark
def test_timeline_same_on_spark(spark: Any) -> None:
    stages = Config().stages

    duck = timeline_frame(HAND_MADE, stages)
    sparked = timeline_frame(HAND_MADE, stages, con=ibis.pyspark.connect(spark))

    assert len(duck) == 4
    pd.testing.assert_frame_equal(duck, sparked, check_dtype=False)


# Exit conditions -----------------------------------------------------------------------------

EXIT_STAGES = [
    {"name": "Awareness", "enter_when": [{"touch": True}]},
    {
        "name": "Consideration",
        "enter_when": [{"conversion": "lead"}],
        "exit_when": [{"conversion": "disqualified"}],
    },
    {
        "name": "Decision",
        "enter_when": [{"conversion": "opportunity"}],
        "exit_when": [{"conversion": "disqualified"}, {"conversion": "lost"}],
    },
    {"name": "Onboarding", "enter_when": [{"conversion": "won"}]},
]


def test_timeline_exit_ends_stay() -> None:
    frames = tables_of(
        [("p1", 0)], [("p1", 5, "lead"), ("p1", 9, "opportunity"), ("p1", 20, "lost")]
    )

    result = timeline_frame(frames, stages_of(EXIT_STAGES))

    assert result["stage"].tolist() == ["Awareness", "Consideration", "Decision"]
    decision = result.iloc[2]
    assert decision.exited_at == day(20)
    assert decision.exit_reason == "conversion lost"
    assert result.iloc[1].exited_at == day(9)
    assert pd.isna(result.iloc[1].exit_reason)


def test_timeline_exit_ends_current_stage() -> None:
    frames = tables_of(
        [("p1", 0), ("p2", 0)],
        [
            ("p1", 5, "lead"),
            ("p1", 6, "disqualified"),
            ("p2", 5, "lead"),
            ("p2", 7, "opportunity"),
            ("p2", 8, "disqualified"),
        ],
    )

    result = timeline_frame(frames, stages_of(EXIT_STAGES))

    ended = result[result.exit_reason.notna()]
    assert list(zip(ended.entity_id, ended.stage, strict=True)) == [
        ("p1", "Consideration"),
        ("p2", "Decision"),
    ]
    assert ended.exited_at.tolist() == [day(6), day(8)]


def test_timeline_exit_before_the_stay_changes_nothing() -> None:
    frames = tables_of([("p1", 0)], [("p1", 1, "lost"), ("p1", 5, "opportunity")])

    result = timeline_frame(frames, stages_of(EXIT_STAGES))

    decision = result[result.stage == "Decision"].iloc[0]
    assert pd.isna(decision.exited_at)
    assert pd.isna(decision.exit_reason)


def test_timeline_later_stage_after_exit() -> None:
    frames = tables_of(
        [("p1", 0)],
        [("p1", 5, "opportunity"), ("p1", 8, "lost"), ("p1", 9, "lead"), ("p1", 30, "won")],
    )

    result = timeline_frame(frames, stages_of(EXIT_STAGES))

    assert result["stage"].tolist() == ["Awareness", "Decision", "Onboarding"]
    assert result.iloc[1].exited_at == day(8)
    assert result.iloc[2].entered_at == day(30)


def test_stage_config_rejects_a_touch_exit() -> None:
    raw = [{"name": "Awareness", "enter_when": [{"touch": True}], "exit_when": [{"touch": True}]}]

    with pytest.raises(ConfigError, match="exit_when"):
        stages_of(raw)


def test_check_stages_names_the_exit_condition_path(tmp_path: Path) -> None:
    store = Store.open()
    store.append(
        "conversions",
        pd.DataFrame({"conversion_id": ["c1"], "person_id": ["p1"], "kind": ["lead"]}),
    )
    stages = stages_of(
        [
            {
                "name": "Consideration",
                "enter_when": [{"conversion": "lead"}],
                "exit_when": [{"conversion": "leed_lost"}],
            }
        ]
    )

    with pytest.raises(ConfigError, match=r"stages\[0\]\.exit_when\[0\]\.conversion"):
        check_stages(stages, store)


def test_stage_config_enter_and_exit_overlap() -> None:
    raw = [
        {
            "name": "Consideration",
            "enter_when": [{"conversion": "lead"}],
            "exit_when": [{"conversion": " Lead"}],
        }
    ]

    with pytest.raises(ConfigError, match=r"stages\[0\]\.exit_when\[0\].*enter_when\[0\]"):
        stages_of(raw)
