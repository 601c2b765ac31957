"""The known problems of a demo world, as listed under ``planted`` in ``truth.json``.

Three problems are planted in the CRM (:mod:`journeymap.demo.crm`): a segment that stalls in
Demo Scheduled, a channel whose deals stop moving from Demo Scheduled to Proposal Sent in the
second half of the window, and won customers that rarely expand while no campaign targets
them. One is planted in the accounts file (:mod:`journeymap.demo.churn`): small customers
churn far more often than the others. Three the world has by construction: an awareness
channel that last-click attribution under-credits, won deals whose champion has no tracked
touch, and opportunities with ad click ids that are never sent back to the ad platforms.

The ``kind`` of each entry names the recommendation rule that finds it, except
``segment_churn``, which the ICP's retention columns find (``journeymap icp``).

Each magnitude is measured here on the generated tables, with the generator's own knowledge
of every touch's channel. The recommendation rules measure the same problems on the imported
store, so their figures are close to these but not equal (they apply lookback windows and
classify channels themselves).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from journeymap.demo import catalog
from journeymap.demo.churn import SMALL_EMPLOYEES, SMALL_SEGMENT
from journeymap.demo.crm import (
    DROP_CHANNEL,
    OPEN_STAGES,
    STALL_SEGMENT,
    WON_STAGE,
    Crm,
    first_touch_channels,
    stage_column,
    touch_channels,
)

DEMO_STAGE = "Demo Scheduled"
NEXT_STAGE = "Proposal Sent"


def planted_problems(
    touchpoints: pd.DataFrame, crm: Crm, accounts: pd.DataFrame, *, start: date, days: int
) -> list[dict[str, Any]]:
    """Return the ``planted`` list of ``truth.json``: one entry per known problem.

    ``accounts`` is the accounts file's frame, with ``churned_at``.
    """
    middle = pd.Timestamp(start.isoformat(), tz="UTC") + pd.Timedelta(days=days / 2)
    return [
        _uncovered_stage(crm),
        _undervalued_channel(touchpoints),
        _segment_stall(crm.deals),
        _tracking_gap(touchpoints),
        _unsynced_conversions(touchpoints),
        _period_drop(touchpoints, crm.deals, middle),
        _segment_churn(touchpoints, accounts),
    ]


def _uncovered_stage(crm: Crm) -> dict[str, Any]:
    won = int((crm.deals["dealstage"] == WON_STAGE).sum())
    expanded = int(crm.expansions["account_id"].nunique())
    return {
        "id": "onboarding-without-campaign",
        "kind": "uncovered_stage",
        "description": (
            "Won customers rarely buy more: most accounts that reach Onboarding never reach "
            "Expansion, and no ad campaign targets Onboarding."
        ),
        "where": {"stage": "Onboarding"},
        "magnitude": {
            "won_accounts": won,
            "expanded_accounts": expanded,
            "dropoff_rate": round(1 - expanded / won, 4) if won else None,
        },
    }


def _undervalued_channel(touchpoints: pd.DataFrame) -> dict[str, Any]:
    """Pick the paid channel that opens the most journeys and never closes a deal itself."""
    candidates = [
        name for name in catalog.PAID_CHANNELS if catalog.CHANNEL_MODELS[name].win_lift == 0.0
    ]
    channel = max(
        candidates,
        key=lambda name: (
            catalog.CHANNEL_MODELS[name].weight * catalog.CHANNEL_MODELS[name].first_touch_factor
        ),
    )
    first, last = _first_and_last_touch_wins(touchpoints)
    return {
        "id": "undervalued-awareness-channel",
        "kind": "undervalued_channel",
        "description": (
            f"{channel} opens many journeys but rarely comes last before a win, so last-click "
            "attribution gives it far less credit than data-driven attribution."
        ),
        "where": {"channel": channel},
        "magnitude": {
            "first_touch_wins": int(first.get(channel, 0)),
            "last_touch_wins": int(last.get(channel, 0)),
        },
    }


def _first_and_last_touch_wins(touchpoints: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Count closed-won rows by the channel of the winner's first and last earlier touch."""
    channels = touch_channels(touchpoints)
    touches = pd.DataFrame(
        {
            "user_id": touchpoints.loc[channels.index, "user_id"].astype("string"),
            "at": touchpoints.loc[channels.index, "timestamp"],
            "channel": channels,
        }
    )
    kinds = touchpoints["conversion_kind"].astype("string")
    won = touchpoints.loc[kinds == "closed_won", ["user_id", "timestamp", "deal_id"]]
    won = won.assign(user_id=won["user_id"].astype("string"))
    paired = won.merge(touches, on="user_id")
    paired = paired[paired["at"] <= paired["timestamp"]].sort_values(["deal_id", "at"])
    by_deal = paired.groupby("deal_id", observed=True)["channel"]
    return by_deal.first().value_counts(), by_deal.last().value_counts()


def _stage_days(deals: pd.DataFrame, stage: str, following: str) -> pd.Series:
    entered = deals[stage_column(stage)]
    later = deals[[stage_column(name) for name in OPEN_STAGES[OPEN_STAGES.index(stage) + 1 :]]]
    closed = deals["closedate"]
    exited = later.min(axis=1).fillna(closed)
    return (exited - entered).dt.total_seconds() / 86_400


def _segment_stall(deals: pd.DataFrame) -> dict[str, Any]:
    column, value = STALL_SEGMENT
    in_segment = deals[column] == value
    entered = deals[stage_column(DEMO_STAGE)].notna()
    reached = deals[stage_column(NEXT_STAGE)].notna()
    days = _stage_days(deals, DEMO_STAGE, NEXT_STAGE)

    def summary(mask: pd.Series) -> dict[str, Any]:
        group = mask & entered
        known = days[group].dropna()
        return {
            "entered": int(group.sum()),
            "reached_next": int((group & reached).sum()),
            # A small world may have no finished stay in the segment: no median then.
            "median_days": round(float(known.median()), 2) if len(known) else None,
        }

    return {
        "id": "segment-stalls-after-demo",
        "kind": "segment_stall",
        "description": (
            f"Deals of {column} {value} stay far longer in {DEMO_STAGE} than other deals, "
            f"and fewer of them move on to {NEXT_STAGE}."
        ),
        "where": {"segment": column, "value": value, "stage": DEMO_STAGE},
        "magnitude": {"segment": summary(in_segment), "others": summary(~in_segment)},
    }


def _tracking_gap(touchpoints: pd.DataFrame) -> dict[str, Any]:
    """Measure the won value whose winner has no tracked touch at or before the win."""
    touch_rows = touchpoints["touch_type"].notna()
    first_touch = touchpoints[touch_rows].groupby("user_id", observed=True)["timestamp"].min()
    kinds = touchpoints["conversion_kind"].astype("string")
    won = touchpoints[kinds == "closed_won"]
    first = won["user_id"].map(first_touch)
    hidden = (first.isna() | (first > won["timestamp"])).to_numpy()
    value = float(won["value"].sum())
    return {
        "id": "won-deals-without-tracked-touch",
        "kind": "tracking_gap",
        "description": (
            "Tracking loses touches (untracked people and lost hits), so some won deals have "
            "no tracked touch and their revenue is invisible to attribution."
        ),
        "where": {"kind": "closed_won"},
        "magnitude": {
            "won_deals": len(won),
            "without_tracked_touch": int(hidden.sum()),
            "share_of_won_value": round(float(won["value"][hidden].sum()) / value, 4)
            if value
            else None,
            "untracked_share": catalog.UNTRACKED_SHARE,
            "touch_loss": catalog.TOUCH_LOSS,
        },
    }


def _unsynced_conversions(touchpoints: pd.DataFrame) -> dict[str, Any]:
    """Count opportunities whose champion clicked an ad (a row with a click id) before them."""
    clicked = np.zeros(len(touchpoints), dtype=bool)
    for name in catalog.CLICK_PARAMETERS:
        clicked |= touchpoints[name].notna().to_numpy()
    clicks = touchpoints.loc[clicked, ["user_id", "timestamp"]]
    first_click = clicks.groupby("user_id", observed=True)["timestamp"].min()
    kinds = touchpoints["conversion_kind"].astype("string")
    opportunities = touchpoints[kinds == "opportunity"]
    first = opportunities["user_id"].map(first_click)
    with_click = (first.notna() & (first <= opportunities["timestamp"])).to_numpy()
    return {
        "id": "opportunities-not-sent-to-ad-platforms",
        "kind": "unsynced_conversions",
        "description": (
            "Many opportunities come from people who clicked an ad, but no conversion sync "
            "sends them back, so the ad platforms optimise for leads alone."
        ),
        "where": {"kind": "opportunity"},
        "magnitude": {
            "opportunities": len(opportunities),
            "with_click_id": int(with_click.sum()),
            "value_with_click_id": round(float(opportunities["value"][with_click].sum()), 2),
        },
    }


def _period_drop(
    touchpoints: pd.DataFrame, deals: pd.DataFrame, middle: pd.Timestamp
) -> dict[str, Any]:
    channels = first_touch_channels(touchpoints)
    channel = deals["account_id"].map(channels)
    entered = deals[stage_column(DEMO_STAGE)]
    reached = deals[stage_column(NEXT_STAGE)].notna()

    def rates(mask: pd.Series) -> dict[str, Any]:
        halves = {}
        for name, half in (("first_half", entered < middle), ("second_half", entered >= middle)):
            group = mask & half & entered.notna()
            count = int(group.sum())
            halves[name] = {
                "entered": count,
                "reached_next": int((group & reached).sum()),
                "rate": round(float((group & reached).sum()) / count, 4) if count else None,
            }
        return halves

    in_channel = channel == DROP_CHANNEL
    return {
        "id": "channel-demo-to-proposal-drop",
        "kind": "period_drop",
        "description": (
            f"In the second half of the window, {DROP_CHANNEL} deals move from {DEMO_STAGE} "
            f"(Consideration) to {NEXT_STAGE} (Decision) far less often than before."
        ),
        "where": {
            "segment": "channel",
            "value": DROP_CHANNEL,
            "from_stage": DEMO_STAGE,
            "to_stage": NEXT_STAGE,
            "split": middle.isoformat(),
        },
        "magnitude": {"segment": rates(in_channel), "others": rates(~in_channel)},
    }


def _segment_churn(touchpoints: pd.DataFrame, accounts: pd.DataFrame) -> dict[str, Any]:
    """Count the customers and churned customers of the small accounts and of the others."""
    kinds = touchpoints["conversion_kind"].astype("string")
    won = set(touchpoints.loc[kinds == "closed_won", "account_id"].astype("string"))
    customers = accounts[accounts["account_id"].astype("string").isin(won)]
    small = customers["employees"] < SMALL_EMPLOYEES

    def summary(group: pd.DataFrame) -> dict[str, Any]:
        count = len(group)
        churned = int(group["churned_at"].notna().sum())
        return {
            "customers": count,
            "churned": churned,
            "retention_rate": round(1 - churned / count, 4) if count else None,
        }

    column, value = SMALL_SEGMENT
    return {
        "id": "small-customers-churn",
        "kind": "segment_churn",
        "description": (
            f"Customers with fewer than {SMALL_EMPLOYEES} employees cancel far more often than "
            "larger ones, so a profile built on win rates alone overrates them."
        ),
        "where": {"segment": column, "value": value},
        "magnitude": {"segment": summary(customers[small]), "others": summary(customers[~small])},
    }
