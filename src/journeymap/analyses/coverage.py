"""Campaign coverage: ad spend by the journey stage that each campaign targets, beside drop-off.

Each campaign is assigned a stage by the ordered naming rules of ``coverage.campaign_stages``
(a regular expression searched in the campaign name, ignoring case). The first match wins,
and a campaign that matches none is ``(unmapped)``. Each stage's drop-off comes from the stage
timeline: of the entities that entered the stage, the share that never reached a later one.
A stage is flagged ``under_invested`` when its drop-off is above the median of the stages and
its share of the mapped spend is below the median share, so the table shows where prospects
leave and little money goes.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import pandas as pd

from journeymap.common.config import CampaignStageRule
from journeymap.common.numbers import exact_sum

UNMAPPED = "(unmapped)"


def campaign_stages(spend: ibis.Table, rules: Sequence[CampaignStageRule]) -> ibis.Table:
    """Return ``platform``, ``campaign``, ``stage`` and ``cost`` (summed) per campaign."""
    name = spend.campaign.fill_null("")
    stage = ibis.literal(UNMAPPED)
    for rule in reversed(rules):
        stage = ibis.ifelse(name.re_search(f"(?i){rule.campaign_matches}"), rule.stage, stage)
    tagged = spend.mutate(stage=stage)
    return tagged.group_by(["platform", "campaign", "stage"]).aggregate(
        cost=exact_sum(tagged.cost.fill_null(0.0))
    )


def stage_dropoff(timeline: ibis.Table, stages: Sequence[str]) -> ibis.Table:
    """Return per stage: ``entered`` entities and ``moved_on`` (reached a later stage).

    ``timeline`` is in the ``stage_timeline`` schema. Journeys move forward only, so an entity
    with a stay in a later stage has left this one for it.
    """
    position = ibis.literal(-1)
    for index, name in enumerate(stages):
        position = ibis.ifelse(timeline.stage == name, index, position)
    placed = timeline.mutate(position=position)
    furthest = placed.group_by("entity_id").aggregate(furthest=placed.position.max())
    joined = placed.join(furthest, "entity_id")
    return joined.group_by(["stage", "position"]).aggregate(
        entered=joined.entity_id.nunique(),
        moved_on=joined.entity_id.nunique(where=joined.furthest > joined.position),
    )


def coverage_table(
    spend_by_campaign: pd.DataFrame, dropoff: pd.DataFrame, stages: Sequence[str]
) -> pd.DataFrame:
    """Join spend by stage with drop-off by stage and flag the under-invested stages.

    Returns one row per stage in journey order: ``entered``, ``moved_on``, ``dropoff_rate``
    (null for a stage that no entity entered and for one that no later stage in the data follows),
    ``campaigns``, ``spend``,
    ``spend_share`` (of the mapped spend) and ``under_invested``.
    """
    mapped = spend_by_campaign[spend_by_campaign.stage != UNMAPPED]
    by_stage = mapped.groupby("stage").agg(campaigns=("campaign", "nunique"), spend=("cost", "sum"))
    counts = dropoff.set_index("stage")
    total = float(mapped.cost.sum())

    entered_by_stage = [int(counts.entered.get(stage, 0)) for stage in stages]
    rows = []
    for index, stage in enumerate(stages):
        entered = entered_by_stage[index]
        moved_on = int(counts.moved_on.get(stage, 0))
        # Drop-off is unknown where the data has no later stage at all (the last stage, or a
        # CRM that records nothing after closed-won).
        last = not any(entered_by_stage[index + 1 :])
        spend = float(by_stage.spend.get(stage, 0.0))
        rows.append(
            {
                "stage": stage,
                "entered": entered,
                "moved_on": moved_on,
                "dropoff_rate": None if last or entered == 0 else 1 - moved_on / entered,
                "campaigns": int(by_stage.campaigns.get(stage, 0)),
                "spend": spend,
                "spend_share": spend / total if total > 0 else None,
            }
        )
    table = pd.DataFrame(rows)
    table["dropoff_rate"] = table.dropoff_rate.astype("float64")
    table["spend_share"] = table.spend_share.astype("float64")

    # Flag against the medians of the stages that have a drop-off rate.
    rated = table.dropna(subset=["dropoff_rate"])
    high_dropoff = table.dropoff_rate > rated.dropoff_rate.median()
    low_spend = table.spend_share.fillna(0.0) < rated.spend_share.fillna(0.0).median()
    table["under_invested"] = (high_dropoff & low_spend).astype(bool)
    return table
