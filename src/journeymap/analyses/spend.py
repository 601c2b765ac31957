"""Return on ad spend: attributed value and conversions beside the spend that bought them.

Spend reaches a campaign through its name or id, compared case-insensitively with the touch's
``utm_campaign``. It reaches a channel through its campaign when touches of that campaign
exist (the channel most of them were classified as, so Google display campaigns count as
Display, not Paid Search), and otherwise through its platform (``spend.platform_channels``:
Google Ads spend is Paid Search, LinkedIn spend is Paid Social, and so on).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import ibis

from journeymap.common.config import SpendConfig
from journeymap.store.schema import NOT_SET


def campaign_channels(touches: ibis.Table) -> ibis.Table:
    """Return each campaign's main channel: ``key`` (lowercased campaign) and ``channel``.

    Takes ``journey_touches``; the channel with the most touches of the campaign wins, ties
    going to the channel name that sorts first.
    """
    named = touches.filter(touches.campaign != NOT_SET)
    named = named.mutate(key=named.campaign.strip().lower())
    counted = named.group_by(["key", "channel"]).aggregate(touches=named.count())
    ranked = counted.mutate(
        _rank=ibis.row_number().over(
            ibis.window(group_by="key", order_by=[ibis.desc("touches"), "channel"])
        )
    )
    return ranked.filter(ranked._rank == 0).select("key", "channel")


def spend_by_channel(
    ad_spend: ibis.Table,
    platform_channels: Mapping[str, str],
    touches: ibis.Table | None = None,
) -> ibis.Table:
    """Sum spend per channel and platform: ``channel, platform, cost, impressions, clicks``.

    With ``touches``, a campaign's spend goes to the channel of its touches (matched by
    campaign name, then id); other spend goes to its platform's channel, and a platform
    that ``platform_channels`` does not name keeps its own name as the channel.
    """
    platform = ad_spend.platform.strip().lower()
    rows = ad_spend.mutate(
        platform=platform,
        _by_platform=platform.cases(*platform_channels.items(), else_=ad_spend.platform),
        _name=ad_spend.campaign.strip().lower(),
        _id=ad_spend.campaign_id.strip().lower(),
    )
    if touches is None:
        rows = rows.mutate(channel=rows._by_platform)
    else:
        main = campaign_channels(touches)
        by_name = main.select(_name="key", _name_channel="channel")
        by_id = main.select(_id="key", _id_channel="channel")
        rows = rows.left_join(by_name, "_name").left_join(by_id, "_id")
        rows = rows.mutate(
            channel=ibis.coalesce(rows._name_channel, rows._id_channel, rows._by_platform)
        )
    return rows.group_by(["channel", "platform"]).aggregate(
        cost=rows.cost.sum(),
        impressions=rows.impressions.sum(),
        clicks=rows.clicks.sum(),
    )


def roas_by_channel(
    credit: ibis.Table,
    ad_spend: ibis.Table,
    config: SpendConfig,
    touches: ibis.Table | None = None,
) -> ibis.Table:
    """Join channel credit (``model, channel, conversions, value``) with spend.

    Returns ``model, channel, conversions, value, cost, roas, cost_per_conversion`` for every
    channel with spend; ``roas`` is value over cost and ``cost_per_conversion`` cost over
    attributed conversions (null when a divisor is 0).
    """
    spend = spend_by_channel(ad_spend, config.platform_channels, touches)
    spend = spend.group_by("channel").aggregate(cost=spend.cost.sum())
    joined = credit.inner_join(spend, [credit.channel.lower() == spend.channel.lower()])
    joined = joined.select(
        model=credit.model,
        channel=credit.channel,
        conversions=credit.conversions,
        value=credit.value,
        cost=spend.cost,
    )
    return _ratios(joined)


def roas_by_campaign(credit: ibis.Table, ad_spend: ibis.Table) -> ibis.Table:
    """Join campaign credit (``model, campaign, conversions, value``) with spend by campaign.

    A spend row matches a campaign by name or by id. Returns ``model, campaign, conversions,
    value, cost, roas, cost_per_conversion``.
    """
    groups = ad_spend.group_by(["campaign", "campaign_id"]).aggregate(cost=ad_spend.cost.sum())
    by_name = groups.select(
        groups.campaign, groups.campaign_id, groups.cost, key=groups.campaign.strip().lower()
    )
    by_id = groups.select(
        groups.campaign, groups.campaign_id, groups.cost, key=groups.campaign_id.strip().lower()
    )
    # distinct() keeps one key row for a campaign whose name and id are the same text.
    keys = by_name.union(by_id, distinct=True)
    keys = keys.filter(keys.key.notnull() & (keys.key != ""))
    spend = keys.group_by("key").aggregate(cost=keys.cost.sum())
    rows = credit.filter(credit.campaign != NOT_SET)
    joined = rows.inner_join(spend, [rows.campaign.strip().lower() == spend.key])
    joined = joined.select(
        model=rows.model,
        campaign=rows.campaign,
        conversions=rows.conversions,
        value=rows.value,
        cost=spend.cost,
    )
    return _ratios(joined)


def spend_in_period(
    ad_spend: ibis.Table, start: date | None, end: date | None
) -> tuple[ibis.Table, int, int]:
    """Keep spend rows dated from ``start`` to ``end`` (both included) and rows without a date.

    Returns the kept rows, the number of dated rows left out, and the number of undated rows
    (which are kept: an export without dates covers whatever period it was pulled for).
    """
    if start is None or end is None:
        return ad_spend, 0, 0
    inside = ad_spend.date.isnull() | ad_spend.date.between(start, end)
    counts = ad_spend.aggregate(
        left_out=(~inside).cast("int64").sum(), undated=ad_spend.date.isnull().cast("int64").sum()
    ).to_pandas()
    left_out = int(counts.left_out.fillna(0).iloc[0])
    undated = int(counts.undated.fillna(0).iloc[0])
    return ad_spend.filter(inside), left_out, undated


def _ratios(joined: ibis.Table) -> ibis.Table:
    return joined.mutate(
        roas=ibis.cases((joined.cost > 0, joined.value / joined.cost), else_=ibis.null(float)),
        cost_per_conversion=ibis.cases(
            (joined.conversions > 0, joined.cost / joined.conversions), else_=ibis.null(float)
        ),
    )
