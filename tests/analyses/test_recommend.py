"""Recommendation rules on small hand-built stores: each fires on its problem and not without it."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from journeymap.analyses.recommend import Recommendation, recommendations, to_markdown
from journeymap.analyses.recommend_rules import (
    MissingInputError,
    period_drop,
    segment_stall,
    tracking_gap,
    uncovered_stage,
    undervalued_channel,
    unsynced_conversions,
)
from journeymap.common.config import Config, parse_config
from journeymap.store.store import Store

T0 = pd.Timestamp("2024-01-01T00:00:00Z")


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store.open(":memory:")
    yield opened
    opened.close()


def _day(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


class Rows:
    """Collects touchpoint and conversion rows with unique ids and seq numbers."""

    def __init__(self) -> None:
        self.touches: list[dict[str, object]] = []
        self.conversions: list[dict[str, object]] = []

    def touch(self, person: str, day: float, channel: str, **fields: object) -> None:
        seq = len(self.touches) + len(self.conversions)
        self.touches.append(
            {
                "touchpoint_id": f"t{seq}",
                "seq": seq,
                "person_id": person,
                "account_id": fields.pop("account_id", f"a-{person}"),
                "occurred_at": _day(day),
                "channel": channel,
                "touch_type": "visit",
                **fields,
            }
        )

    def convert(self, person: str, day: float, kind: str, value: float = 0.0) -> None:
        seq = len(self.touches) + len(self.conversions)
        self.conversions.append(
            {
                "conversion_id": f"c{seq}",
                "seq": seq,
                "person_id": person,
                "account_id": f"a-{person}",
                "occurred_at": _day(day),
                "kind": kind,
                "value": value,
                "currency": "USD",
            }
        )

    def write(self, store: Store) -> None:
        if self.touches:
            store.append("touchpoints", pd.DataFrame(self.touches))
        if self.conversions:
            store.append("conversions", pd.DataFrame(self.conversions))


def _spend(store: Store, *campaigns: str) -> None:
    frame = pd.DataFrame(
        {
            "date": [T0.date()] * len(campaigns),
            "platform": "google_ads",
            "campaign": list(campaigns),
            "cost": 100.0,
            "currency": "USD",
        }
    )
    store.append("ad_spend", frame)


def _rules(found: list[Recommendation]) -> set[str]:
    return {item.id for item in found}


# uncovered_stage ------------------------------------------------------------------------------


def _leads_that_stop(store: Store) -> None:
    rows = Rows()
    for index in range(30):
        person = f"p{index}"
        rows.touch(person, 1, "Paid Search")
        rows.convert(person, 2, "lead")
        if index < 3:
            rows.convert(person, 5, "opportunity")
    rows.write(store)


def test_uncovered_stage_fires_for_stage_without_campaign(store: Store) -> None:
    _leads_that_stop(store)
    _spend(store, "gs-nonbrand-search", "gs-brand-core")

    found = uncovered_stage(store, Config())

    assert _rules(found) == {"uncovered_stage:Consideration"}
    evidence = found[0].evidence.set_index("measure")
    assert evidence.loc["entered", "value"] == 30
    assert evidence.loc["drop-off rate", "value"] == pytest.approx(0.9)
    assert evidence.loc["campaigns targeting the stage", "value"] == 0
    assert found[0].chart == "coverage"


def test_uncovered_stage_quiet_when_campaign_targets_stage(store: Store) -> None:
    _leads_that_stop(store)
    _spend(store, "gs-nonbrand-search", "gs-brand-core", "li-webinar-retargeting")

    assert uncovered_stage(store, Config()) == []


def test_uncovered_stage_skipped_without_spend(store: Store) -> None:
    _leads_that_stop(store)

    with pytest.raises(MissingInputError, match="ad_spend"):
        uncovered_stage(store, Config())


# undervalued_channel --------------------------------------------------------------------------


def _paths(store: Store, *, opener: bool) -> None:
    rows = Rows()
    for index in range(30):
        person = f"p{index}"
        if opener:
            rows.touch(person, 1, "Paid Social")
        rows.touch(person, 3, "Direct")
        if index < 20:
            rows.convert(person, 4, "closed_won", 1000.0)
    for index in range(30, 42):
        rows.touch(f"p{index}", 3, "Direct")
    rows.write(store)


def test_undervalued_channel_fires_for_opening_channel(store: Store) -> None:
    _paths(store, opener=True)

    found = undervalued_channel(store, Config())

    assert "undervalued_channel:Paid Social" in _rules(found)
    evidence = found[0].evidence.set_index("measure")
    assert evidence.loc["last-click credit", "value"] == 0
    assert evidence.loc["Markov credit", "value"] >= 5


def test_undervalued_channel_quiet_with_single_channel(store: Store) -> None:
    _paths(store, opener=False)

    assert undervalued_channel(store, Config()) == []


# segment_stall --------------------------------------------------------------------------------


def _pipeline(store: Store, *, stall_days: float, stall_moves: int) -> None:
    deals, stays, accounts = [], [], []
    for index in range(60):
        deal, account = f"d{index}", f"a{index}"
        slow = index < 30
        industry = "Retail" if slow else "Software"
        accounts.append({"account_id": account, "name": account, "industry": industry})
        days = stall_days if slow else 5.0
        moves = index < stall_moves if slow else index < 57
        demo_in, demo_out = _day(index), _day(index + days)
        stays.append(
            {"deal_id": deal, "stage": "Demo", "entered_at": demo_in, "exited_at": demo_out}
        )
        final = "Proposal" if moves else "Closed Lost"
        stays.append({"deal_id": deal, "stage": final, "entered_at": demo_out, "exited_at": None})
        deals.append(
            {
                "deal_id": deal,
                "account_id": account,
                "stage": final,
                "is_won": False,
                "is_closed": not moves,
                "owner": "Ana",
            }
        )
    store.append("deals", pd.DataFrame(deals))
    store.append("deal_stages", pd.DataFrame(stays))
    store.append("accounts", pd.DataFrame(accounts))


def test_segment_stall_fires_for_slow_segment(store: Store) -> None:
    _pipeline(store, stall_days=30.0, stall_moves=9)

    found = segment_stall(store, Config())

    assert _rules(found) == {"segment_stall:industry=Retail:Demo"}
    evidence = found[0].evidence.set_index("measure")
    assert evidence.loc["median days in the stage", "value"] == pytest.approx(30.0)
    assert evidence.loc["median days, other deals", "value"] == pytest.approx(5.0)
    assert evidence.loc["moved on", "value"] == pytest.approx(0.3)


def test_segment_stall_quiet_when_segments_alike(store: Store) -> None:
    _pipeline(store, stall_days=5.0, stall_moves=27)

    assert segment_stall(store, Config()) == []


# tracking_gap ---------------------------------------------------------------------------------


def _won(store: Store, *, hidden: int) -> None:
    rows = Rows()
    for index in range(25):
        person = f"p{index}"
        if index >= hidden:
            rows.touch(person, 1, "Email")
        rows.convert(person, 3, "closed_won", 1000.0)
    rows.write(store)


def test_tracking_gap_fires_for_untracked_revenue(store: Store) -> None:
    _won(store, hidden=5)

    found = tracking_gap(store, Config())

    assert _rules(found) == {"tracking_gap:closed_won"}
    evidence = found[0].evidence.set_index("measure")
    assert evidence.loc["share of value", "value"] == pytest.approx(0.2)
    assert evidence.loc["without a tracked touch", "value"] == 5


def test_tracking_gap_quiet_when_every_win_tracked(store: Store) -> None:
    _won(store, hidden=0)

    assert tracking_gap(store, Config()) == []


# unsynced_conversions -------------------------------------------------------------------------


def _clicked_opportunities(store: Store) -> None:
    rows = Rows()
    for index in range(25):
        person = f"p{index}"
        rows.touch(person, 1, "Paid Search", click_id=f"gclid{index}", click_platform="google_ads")
        rows.convert(person, 10, "opportunity", 5000.0)
    rows.touch("late", 1, "Paid Search", click_id="gclid-old", click_platform="google_ads")
    rows.convert("late", 200, "opportunity", 5000.0)
    rows.write(store)


def test_unsynced_conversions_fires_for_clicked_kind(store: Store) -> None:
    _clicked_opportunities(store)

    found = unsynced_conversions(store, Config())

    assert _rules(found) == {"unsynced_conversions:opportunity"}
    evidence = found[0].evidence.set_index("measure")
    assert evidence.loc["conversions", "value"] == 26
    assert evidence.loc["with an ad click id", "value"] == 25
    assert found[0].severity == "high"


def test_unsynced_conversions_quiet_when_kind_synced(store: Store) -> None:
    _clicked_opportunities(store)
    config = parse_config(
        {
            "sync": {
                "destinations": {
                    "ads": {
                        "platform": "google",
                        "account": "1234567890",
                        "actions": {"opportunity": "customers/1/conversionActions/2"},
                    }
                }
            }
        }
    )

    assert unsynced_conversions(store, config) == []


# period_drop ----------------------------------------------------------------------------------


def _cohorts(store: Store, *, late_rate: float) -> None:
    rows = Rows()
    deals, stays = [], []
    plan = [("Paid Search", 0, 0.9), ("Paid Search", 100, late_rate)]
    plan += [("Email", 0, 0.9), ("Email", 100, 0.85)]
    number = 0
    for channel, start, rate in plan:
        for index in range(20):
            deal, account = f"d{number}", f"a{number}"
            number += 1
            rows.touch(f"p{deal}", start, channel, account_id=account)
            entered = _day(start + index)
            stays.append({"deal_id": deal, "stage": "Demo", "entered_at": entered})
            if index < round(rate * 20):
                stays.append(
                    {
                        "deal_id": deal,
                        "stage": "Proposal",
                        "entered_at": entered + pd.Timedelta(days=3),
                    }
                )
            deals.append({"deal_id": deal, "account_id": account, "stage": "Demo"})
    rows.write(store)
    store.append("deals", pd.DataFrame(deals))
    store.append("deal_stages", pd.DataFrame(stays))


def test_period_drop_fires_for_falling_channel(store: Store) -> None:
    _cohorts(store, late_rate=0.3)

    found = period_drop(store, Config())

    assert _rules(found) == {"period_drop:Paid Search:Demo->Proposal"}
    evidence = found[0].evidence.set_index("measure")
    assert evidence.loc["rate, first half", "value"] == pytest.approx(0.9)
    assert evidence.loc["rate, second half", "value"] == pytest.approx(0.3)
    assert evidence.loc["p-value of the fall", "value"] < 0.05


def test_period_drop_quiet_when_fall_matches_others(store: Store) -> None:
    _cohorts(store, late_rate=0.85)

    assert period_drop(store, Config()) == []


# recommendations ------------------------------------------------------------------------------


def test_recommendations_skip_rules_without_data(store: Store) -> None:
    _won(store, hidden=5)

    result = recommendations(store, Config())

    assert [item.rule for item in result.items] == ["tracking_gap"]
    skipped = {note.split(":")[0] for note in result.skipped}
    assert {"uncovered_stage", "segment_stall", "period_drop"} <= skipped


def test_recommendations_thresholds_from_config(store: Store) -> None:
    _won(store, hidden=5)
    strict = parse_config({"recommendations": {"hidden_value_share": 0.5}})

    assert recommendations(store, strict).items == []


def test_recommendation_dict_and_markdown(store: Store) -> None:
    _won(store, hidden=5)
    result = recommendations(store, Config())

    data = result.to_dict()["recommendations"][0]
    text = to_markdown(result)

    assert data["rule"] == "tracking_gap"
    assert {"measure", "value", "unit", "threshold"} == set(data["evidence"][0])
    assert data["evidence"][0]["value"] == 25
    assert "| share of value | 0.2 | fraction | >= 0.05 |" in text
