"""Gather the report's figures from the store's journeys, credits and spend."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd

from journeymap import __version__
from journeymap.analyses.paths import channel_roles, top_paths
from journeymap.analyses.spend import roas_by_campaign, roas_by_channel, spend_in_period
from journeymap.attribution import credit_by
from journeymap.common.config import Config
from journeymap.common.timeutil import utc_now
from journeymap.report.data import Headline, ReportData
from journeymap.store.schema import NOT_SET, UNATTRIBUTED
from journeymap.store.store import Store

if TYPE_CHECKING:
    from journeymap.api import Attribution


PREFERRED_PRIMARY_MODEL = "linear"
"""Model the spend chart shows when it ran, because it credits every touch of a journey equally."""


def choose_primary_model(names: Iterable[str]) -> str | None:
    """Return ``linear`` when it is among ``names``, else the first name, or None for no names."""
    listed = list(names)
    if PREFERRED_PRIMARY_MODEL in listed:
        return PREFERRED_PRIMARY_MODEL
    return listed[0] if listed else None


def stored_build_settings(store: Store) -> dict[str, Any] | None:
    """Return the journey settings of the store's last build, or None before any build."""
    if not store.has_rows("builds"):
        return None
    builds = store.table("builds").order_by(ibis.desc("created_at")).limit(1).to_pandas()
    settings: dict[str, Any] = json.loads(builds.settings.iloc[0])
    return settings


def report_kind(store: Store, config: Config) -> str | None:
    """Return the conversion kind the report shows.

    A closed-won kind when the data has one (revenue is what B2B teams attribute first),
    else the kind with the most value, then the most conversions. None when there are no
    conversions.
    """
    journeys = store.table("journeys")
    kinds = (
        journeys.filter(journeys.conversions > 0)
        .group_by("kind")
        .aggregate(value=journeys.value.sum(), conversions=journeys.conversions.sum())
        .to_pandas()
    )
    if kinds.empty:
        return None
    won = [kind.lower() for kind in config.milestones.closed_won]
    present = [kind for kind in kinds.kind if kind in won]
    if present:
        return str(present[0])
    ranked = kinds.sort_values(["value", "conversions", "kind"], ascending=[False, False, True])
    return str(ranked.kind.iloc[0])


def _headline(store: Store, kind: str | None, currency: str) -> Headline:
    journeys = store.table("journeys")
    touches = store.table("journey_touches")
    if kind is not None:
        journeys = journeys.filter(journeys.kind == kind)
        touches = touches.semi_join(journeys, "journey_id")
    totals = journeys.aggregate(
        journeys=(journeys.conversions + journeys.nulls).sum(),
        conversions=journeys.conversions.sum(),
        value=journeys.value.sum(),
    ).to_pandas()
    empty = journeys.filter((journeys.n_touches == 0) & (journeys.conversions > 0))
    unattributed = empty.aggregate(
        conversions=empty.conversions.sum(), value=empty.value.sum()
    ).to_pandas()
    touch_stats = touches.aggregate(
        touches=touches.count(),
        channels=touches.channel.nunique(),
        first=touches.occurred_at.min(),
        last=touches.occurred_at.max(),
    ).to_pandas()

    def number(frame: pd.DataFrame, column: str) -> float:
        value = frame[column].iloc[0]
        return 0.0 if pd.isna(value) else float(value)

    def moment(column: str) -> Any:
        value = touch_stats[column].iloc[0]
        return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()

    return Headline(
        journeys=number(totals, "journeys"),
        converting_journeys=number(totals, "conversions"),
        conversions=number(totals, "conversions"),
        value=number(totals, "value"),
        currency=currency,
        touches=int(number(touch_stats, "touches")),
        channels=int(number(touch_stats, "channels")),
        unattributed_conversions=number(unattributed, "conversions"),
        unattributed_value=number(unattributed, "value"),
        first_touch_at=moment("first"),
        last_touch_at=moment("last"),
    )


def gather_report(
    store: Store,
    config: Config,
    *,
    attribution: Attribution | None = None,
    title: str = "journeymap attribution report",
    path_limit: int = 15,
) -> ReportData:
    """Collect every figure of the report for the report's conversion kind."""
    kind = report_kind(store, config)
    kinds = [kind] if kind is not None else None
    journeys = store.table("journeys")
    touches = store.table("journey_touches")
    credits = attribution.credits if attribution is not None else store.table("credits")

    by_channel = credit_by(credits, "channel", kinds)
    by_campaign = credit_by(credits, "campaign", kinds)
    campaign_frame = by_campaign.to_pandas()
    if set(campaign_frame.campaign) <= {NOT_SET, UNATTRIBUTED}:
        campaign_frame = campaign_frame.iloc[0:0]

    spend_channel = pd.DataFrame(
        columns=["model", "channel", "conversions", "value", "cost", "roas", "cost_per_conversion"]
    )
    spend_campaign = pd.DataFrame(
        columns=["model", "campaign", "conversions", "value", "cost", "roas", "cost_per_conversion"]
    )
    notes: list[str] = []
    if store.has_rows("ad_spend"):
        headline = _headline(store, kind, config.currency)
        start = headline.first_touch_at.date() if headline.first_touch_at else None
        end = headline.last_touch_at.date() if headline.last_touch_at else None
        ad_spend, left_out, undated = spend_in_period(store.table("ad_spend"), start, end)
        if left_out:
            notes.append(
                f"Left out {left_out:,} spend rows dated outside the journeys' period "
                f"({start} to {end})."
            )
        if undated:
            notes.append(f"{undated:,} spend rows have no date; they count in full.")
        spend_channel = (
            roas_by_channel(by_channel, ad_spend, config.spend, touches)
            .order_by(["model", ibis.desc("cost"), "channel"])
            .to_pandas()
        )
        spend_campaign = (
            roas_by_campaign(by_campaign, ad_spend)
            .order_by(["model", ibis.desc("cost"), "campaign"])
            .to_pandas()
        )

    if attribution is not None:
        notes.extend(attribution.notes)
        models = [model.describe() for model in attribution.models]
    else:
        runs = store.table("runs").to_pandas()
        models = json.loads(runs.models.iloc[-1]) if len(runs) else []
    other_kinds = (
        journeys.filter(journeys.conversions > 0)
        .group_by("kind")
        .aggregate(conversions=journeys.conversions.sum())
        .to_pandas()
    )
    other_kinds = other_kinds[other_kinds.kind != kind]
    if len(other_kinds):
        listed = ", ".join(
            f"{row.kind} ({row.conversions:,.0f})" for row in other_kinds.itertuples()
        )
        notes.append(
            f"Figures are for {kind} conversions. Other kinds in the data: {listed}; "
            "choose one with --kind."
        )

    built = stored_build_settings(store) or {}
    settings = {
        "conversion kind": kind or "(none)",
        "journeys of": built.get("entity", config.journeys.entity),
        "lookback days": built.get("lookback_days", config.journeys.lookback_days),
        "path transform": built.get("transform", config.journeys.transform),
        "last N touches": built.get("last_n") or "all",
    }
    return ReportData(
        title=title,
        generated_at=utc_now(),
        package_version=__version__,
        store_location=store.location,
        settings=settings,
        models=models,
        headline=_headline(store, kind, config.currency),
        credit_by_channel=by_channel.to_pandas(),
        credit_by_campaign=campaign_frame,
        top_paths=top_paths(journeys, touches, limit=path_limit, kind=kind).to_pandas(),
        channel_roles=channel_roles(journeys, touches, kind=kind).to_pandas(),
        spend_by_channel=spend_channel,
        spend_by_campaign=spend_campaign,
        notes=notes,
        kind=kind,
        primary_model=choose_primary_model(str(entry.get("model")) for entry in models),
    )
