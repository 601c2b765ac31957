"""The demo CRM and its planted problems: each is found by a recommendation with evidence,
and the churn of small customers by the ICP's retention columns."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeymap import api
from journeymap.analyses.recommend import Recommendation, Recommendations, recommendations
from journeymap.common.config import Config
from journeymap.demo.crm import OPEN_STAGES, write_crm
from journeymap.demo.world import World, generate_world, write_world
from journeymap.store.store import Store

PEOPLE = 5000
"""The default demo size: the smallest at which every planted problem clears the thresholds."""

RECOMMENDED_KINDS = {
    "uncovered_stage",
    "undervalued_channel",
    "segment_stall",
    "tracking_gap",
    "unsynced_conversions",
    "period_drop",
}
"""Planted problems that a recommendation rule of the same name finds."""
PLANTED_KINDS = RECOMMENDED_KINDS | {"segment_churn"}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(PEOPLE, seed=7)


@pytest.fixture(scope="module")
def loaded(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("demo")
    files = write_world(world, folder)
    assert world.crm is not None
    crm_files = write_crm(world.crm, folder)
    store = Store.open(":memory:")
    api.import_file(store, files["touchpoints"], input_format="touchpoints")
    api.import_file(store, files["ad_spend"], input_format="spend")
    api.import_file(
        store, crm_files["deals"], input_format="deals", accounts_file=files["accounts"]
    )
    api.import_file(store, crm_files["expansions"], input_format="touchpoints")
    yield store
    store.close()


@pytest.fixture(scope="module")
def found(loaded: Store) -> Recommendations:
    return recommendations(loaded, Config())


def _matches(item: Recommendation, problem: dict[str, object]) -> bool:
    where = problem["where"]
    assert isinstance(where, dict)
    concerns = item.concerns
    keys = {
        "uncovered_stage": [("stage", "stage")],
        "undervalued_channel": [("channel", "channel")],
        "segment_stall": [("segment", "segment"), ("value", "value"), ("stage", "stage")],
        "tracking_gap": [("kind", "kind")],
        "unsynced_conversions": [("kind", "kind")],
        "period_drop": [("value", "channel"), ("from_stage", "from_stage")],
    }[str(problem["kind"])]
    return item.rule == problem["kind"] and all(
        concerns.get(concern) == where[key] for key, concern in keys
    )


def test_planted_problems_listed_in_truth(world: World) -> None:
    planted = world.truth["planted"]
    assert {problem["kind"] for problem in planted} == PLANTED_KINDS
    for problem in planted:
        assert problem["id"]
        assert problem["description"]
        assert problem["where"]
        assert problem["magnitude"]


@pytest.mark.parametrize("kind", sorted(RECOMMENDED_KINDS))
def test_planted_problem_found_with_evidence(
    world: World, found: Recommendations, kind: str
) -> None:
    problem = next(item for item in world.truth["planted"] if item["kind"] == kind)
    matching = [item for item in found.items if _matches(item, problem)]
    assert matching, f"no recommendation for {problem['id']}: {[i.id for i in found.items]}"
    evidence = matching[0].evidence
    assert len(evidence) >= 3
    assert evidence["value"].notna().any()
    assert (evidence["threshold"] != "").any()


def test_icp_finds_small_customers_churn(world: World, loaded: Store) -> None:
    (problem,) = [item for item in world.truth["planted"] if item["kind"] == "segment_churn"]
    where = problem["where"]
    magnitude = problem["magnitude"]

    segments, _ = api.icp(loaded, by=where["segment"])
    profile, _ = api.icp(loaded, dimensions=[where["segment"]])

    rows = segments.set_index(where["segment"])
    others = rows.drop(index=where["value"])
    assert rows.loc[where["value"], "customers"] == magnitude["segment"]["customers"]
    assert rows.loc[where["value"], "churned"] == magnitude["segment"]["churned"]
    assert others["customers"].sum() == magnitude["others"]["customers"]
    assert others["churned"].sum() == magnitude["others"]["churned"]
    found = profile.set_index("value").loc[where["value"]]
    assert found["retention_significant"]
    assert found["retention_lift"] < 0.7
    assert found["retention_note"] == ""
    # Small accounts win more often than average, so win rates alone would overrate them.
    assert found["lift"] > 1
    # Their churn ranks them below every segment whose retention is not significantly lower.
    kept = ~(profile["retention_significant"] & (profile["retention_lift"] < 1))
    assert found["rank"] > kept.sum()


def test_existing_demo_numbers_unchanged(world: World) -> None:
    counts = world.truth["counts"]
    assert counts["touchpoint_rows"] == 22_568
    assert counts["touches_tracked"] == 21_459
    assert counts["leads"] == 851
    assert counts["opportunities"] == 371
    assert counts["closed_won"] == 128
    assert counts["closed_won_value"] == 3_671_600.0
    assert counts["spend_cost"] == 140_211.77


def test_deals_follow_opportunities(world: World) -> None:
    assert world.crm is not None
    deals = world.crm.deals
    kinds = world.touchpoints["conversion_kind"].astype("string")
    opportunities = world.touchpoints[kinds == "opportunity"]
    won = world.touchpoints[kinds == "closed_won"]
    assert len(deals) == len(opportunities)
    assert set(deals["hs_object_id"]) == set(opportunities["deal_id"].astype("string"))
    assert (deals["dealstage"] == "Closed Won").sum() == len(won)
    won_amount = deals.loc[deals["dealstage"] == "Closed Won", "amount"].sum()
    assert won_amount == pytest.approx(float(won["value"].sum()))
    lost = deals[deals["dealstage"] == "Closed Lost"]
    assert lost["closed_lost_reason"].notna().all()
    assert deals["owner"].notna().all()


def test_deals_import_stage_history(loaded: Store) -> None:
    stays = loaded.table("deal_stages").to_pandas()
    assert set(OPEN_STAGES) <= set(stays["stage"])
    ordered = stays.sort_values(["deal_id", "entered_at"])
    following = ordered.groupby("deal_id")["entered_at"].shift(-1)
    closed = ordered["exited_at"].notna()
    assert (ordered.loc[closed, "exited_at"] == following[closed]).all()
    assert ordered.groupby("deal_id")["exited_at"].apply(lambda s: s.isna().sum()).eq(1).all()


def test_crm_same_seed_same_bytes(tmp_path: Path) -> None:
    digests = []
    for name in ("a", "b"):
        crm = generate_world(300, seed=3).crm
        assert crm is not None
        folder = tmp_path / name
        folder.mkdir()
        paths = write_crm(crm, folder)
        digests.append(
            {key: hashlib.sha256(p.read_bytes()).hexdigest() for key, p in paths.items()}
        )
    assert digests[0] == digests[1]


def test_compare_of_the_two_halves_shows_the_planted_drop(world: World, loaded: Store) -> None:
    from datetime import date, timedelta

    from journeymap.common.config import parse_config
    from journeymap.report.compare import ChangeRule, compare
    from journeymap.report.map import journey_map

    (problem,) = [item for item in world.truth["planted"] if item["kind"] == "period_drop"]
    split = date.fromisoformat(str(problem["where"]["split"])[:10])

    # Stages mapped onto the demo's deal pipeline, as a team would configure them.
    where = problem["where"]
    config = parse_config(
        {
            "stages": [
                {"name": "Demo", "enter_when": [{"deal_stage": where["from_stage"]}]},
                {"name": "Proposal", "enter_when": [{"deal_stage": where["to_stage"]}]},
                {"name": "Won", "enter_when": [{"deal_stage": "Closed Won"}]},
            ]
        }
    )
    segment = f"channel={where['value']}"
    before = journey_map(loaded, config, end=split - timedelta(days=1), segment=segment)
    after = journey_map(loaded, config, start=split, segment=segment)
    comparison = compare(before, after, labels=("first half", "second half"))

    rates = [change for change in comparison.changes if change.section == "stage rate"]
    demo = next(change for change in rates if change.item == "Demo")
    assert demo.change is not None
    assert demo.change <= -20
    assert demo.change == min(change.change for change in rates if change.change is not None)
    # One channel's deals are a small segment (tens per half), so a review of it lowers the
    # bar; with it, the drop is a highlight.
    small = compare(before, after, rule=ChangeRule(min_entities=15, alpha=0.1))
    assert any(
        change.section == "stage rate" and change.item == "Demo" for change in small.highlights
    )
