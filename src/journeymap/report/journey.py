"""Gather the report's journey sections: stages, funnel, velocity, ICP and tracking blind spots.

Each part is None when the store lacks its data, so the renderer leaves its section out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import ibis
import pandas as pd

from journeymap import api
from journeymap.analyses.blindspots import BlindSpots, blind_spots
from journeymap.common.config import Config
from journeymap.sources.deals import LOST_STAGES
from journeymap.store.store import Store

FUNNEL_PERIOD = "quarter"
"""Cohort period of the report's funnel. A year of deals then fills four or five bars."""

ICP_ROWS = 10
"""Rows of the ICP ranking that the report lists."""

MAP_ROWS: tuple[tuple[str, str], ...] = (
    ("doing", "Doing"),
    ("thinking", "Thinking"),
    ("feeling", "Feeling"),
    ("pain_points", "Pain points"),
    ("opportunities", "Opportunities"),
    ("expected_touchpoints", "Expected touchpoints"),
)
"""Qualitative rows of the journey map: the stage config field and its row label."""


@dataclass(frozen=True)
class JourneyData:
    """The journey sections' figures. A part is None when the store has no data for it.

    ``stage_summary``: ``stage, owner, entered, current, median_days, stall_days``.
    ``stage_map``: one row per stage, with ``stage`` and a list of texts per :data:`MAP_ROWS`
    field. ``funnel``: ``cohort, from_stage, to_stage, entered, converted, rate, open``.
    ``time_in_stage``: ``stage, completed_stays, median_days, p75_days, p90_days, open_stays``.
    ``time_between``: ``deals, median_days, p75_days, p90_days, mean_days`` (one row).
    ``icp``: the top :data:`ICP_ROWS` rows of the ICP ranking.
    """

    stage_summary: pd.DataFrame | None = None
    stage_warnings: list[str] = field(default_factory=list)
    stage_map: pd.DataFrame | None = None
    funnel_stages: tuple[str, str] | None = None
    """The two deal stages of the funnel and of ``time_between``."""
    funnel: pd.DataFrame | None = None
    time_in_stage: pd.DataFrame | None = None
    time_between: pd.DataFrame | None = None
    icp: pd.DataFrame | None = None
    icp_note: str = ""
    """Note on the deals the ICP leaves out, such as ``left out: 1,425 no account, 664 open``."""
    blind_spots: BlindSpots | None = None
    coverage: pd.DataFrame | None = None
    """``stage, entered, moved_on, dropoff_rate, campaigns, spend, spend_share,
    under_invested``: spend by the stage each campaign targets, beside its drop-off."""


def gather_journey(store: Store, config: Config, *, as_of: datetime | None = None) -> JourneyData:
    """Collect the journey sections of the report.

    The blind spots are always gathered, from the stored journeys or, before a build, from
    journeys built in the engine, and campaign coverage whenever the store has ad spend. The
    stage sections need ``deal_stages`` rows and the ICP also needs accounts. ``as_of``
    (default now) is the moment of the current-stage counts, the open stays and the funnel's
    open entrants.
    NOTE: the stage summary calls :func:`journeymap.api.stages`, which rewrites the store's
    ``stage_timeline`` table as ``journeymap stages`` does.
    """
    spots = blind_spots(store, config)
    coverage = api.coverage(store, config)[0] if store.has_rows("ad_spend") else None
    if not store.has_rows("deal_stages"):
        return JourneyData(blind_spots=spots, coverage=coverage)

    summary, warnings = api.stages(store, config, as_of=as_of)
    pair = funnel_pair(store.table("deal_stages"))

    funnel = None
    between = None
    if pair is not None:
        funnel = api.funnel(store, pair, period=FUNNEL_PERIOD, as_of=as_of)
        between = api.velocity(store, between=pair)

    icp = None
    icp_note = ""
    if store.has_rows("deals") and store.has_rows("accounts"):
        ranking, icp_note = api.icp(store)
        icp = ranking.head(ICP_ROWS).reset_index(drop=True)

    return JourneyData(
        stage_summary=summary,
        stage_warnings=warnings,
        stage_map=stage_map(config),
        funnel_stages=pair,
        funnel=funnel,
        time_in_stage=api.velocity(store, as_of=as_of),
        time_between=between,
        icp=icp,
        icp_note=icp_note,
        blind_spots=spots,
        coverage=coverage,
    )


def deal_stage_order(stays: ibis.Table) -> list[str]:
    """Order the deal stages by their first entry, leaving out lost stages.

    A lost stage ends a deal without converting it, so a funnel into it measures nothing. Stages
    first entered at the same instant run by stays, most first, then by name.
    """
    lost = [name.lower() for name in LOST_STAGES]
    kept = stays.filter(~stays.stage.strip().lower().isin(lost))
    firsts = (
        kept.group_by("stage")
        .aggregate(first=kept.entered_at.min(), stays=kept.count())
        .order_by(["first", ibis.desc("stays"), "stage"])
        .to_pandas()
    )
    return [str(stage) for stage in firsts.stage]


def funnel_pair(stays: ibis.Table) -> tuple[str, str] | None:
    """Return the first two stages of :func:`deal_stage_order`, or None with fewer."""
    order = deal_stage_order(stays)
    if len(order) < 2:
        return None
    return order[0], order[1]


def stage_map(config: Config) -> pd.DataFrame | None:
    """Return the configured qualitative rows per stage, or None when every row is empty."""
    rows = [
        {"stage": stage.name, **{key: list(getattr(stage, key)) for key, _ in MAP_ROWS}}
        for stage in config.stages
    ]
    if not any(row[key] for row in rows for key, _ in MAP_ROWS):
        return None
    return pd.DataFrame(rows, columns=["stage", *(key for key, _ in MAP_ROWS)])
