"""Daily ad spend of the demo world, whose clicks agree with the simulated paid clicks.

A spend row's clicks are the world's clicks on that ad and day, tracked or not, plus clicks
by people outside the world (:data:`catalog.ANONYMOUS_CLICK_SHARE` of the ad's daily mean,
Poisson-distributed). Impressions follow from the platform's click-through rate. Search
platforms bill per click and the others per thousand impressions.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from journeymap.demo import catalog
from journeymap.demo.touches import Vocabulary

SPEND_COLUMNS = [
    "date",
    "platform",
    "campaign_id",
    "campaign",
    "ad_group",
    "ad_id",
    "impressions",
    "clicks",
    "cost",
    "currency",
]


def build_spend(
    rng: np.random.Generator,
    vocabulary: Vocabulary,
    clicks: NDArray[np.int64],
    *,
    start: date,
) -> pd.DataFrame:
    """Build one spend row per ad and day on which its campaign runs.

    ``clicks`` contains the world's clicks by ad (rows, in :class:`Vocabulary` ad order) and day.
    """
    days = clicks.shape[1]
    ad_days = vocabulary.campaign_active[:, vocabulary.ad_campaign].T
    ad, day = np.nonzero(ad_days)
    campaign = vocabulary.ad_campaign[ad]

    active_days = np.maximum(ad_days.sum(axis=1), 1)
    daily_mean = clicks.sum(axis=1) / active_days * (1.0 + catalog.ANONYMOUS_CLICK_SHARE)
    outside = rng.poisson(catalog.ANONYMOUS_CLICK_SHARE * clicks.sum(axis=1)[ad] / active_days[ad])
    row_clicks = clicks[ad, day] + outside

    platforms = [catalog.PLATFORMS[campaign.platform] for campaign in catalog.CAMPAIGNS]
    is_display = np.array([campaign.channel == "Display" for campaign in catalog.CAMPAIGNS])
    click_through = np.where(
        is_display,
        catalog.DISPLAY_CLICK_THROUGH_RATE,
        [platform.click_through_rate for platform in platforms],
    )
    cost_per_click = np.where(
        is_display,
        catalog.DISPLAY_COST_PER_CLICK,
        [platform.cost_per_click for platform in platforms],
    ) * np.array([campaign.cost_factor for campaign in catalog.CAMPAIGNS])
    per_impression = is_display | np.array(
        [platform.billed_per_impression for platform in platforms]
    )

    # Weekdays get more impressions than weekends, and the noise is the day's auction variation.
    weekday = (np.asarray(day) + start.weekday()) % 7
    daily_factor = np.where(weekday >= 5, 0.6, 1.1) * rng.lognormal(0.0, 0.25, len(ad))
    expected_impressions = np.maximum(daily_mean[ad], 0.05) / click_through[campaign] * daily_factor
    impressions = row_clicks + rng.poisson(expected_impressions)

    noise = rng.lognormal(0.0, 0.15, len(ad))
    by_click = row_clicks * cost_per_click[campaign] * noise
    thousand_price = cost_per_click[campaign] * click_through[campaign] * 1000.0
    by_impression = impressions / 1000.0 * thousand_price * noise
    cost = np.round(np.where(per_impression[campaign], by_impression, by_click), 2)

    dates = np.array([start + timedelta(days=offset) for offset in range(days)], dtype=object)
    platform_names = np.array([campaign.platform for campaign in catalog.CAMPAIGNS])
    campaign_ids = np.array([campaign.campaign_id for campaign in catalog.CAMPAIGNS])
    campaign_names = np.array([campaign.name for campaign in catalog.CAMPAIGNS])
    frame = pd.DataFrame(
        {
            "date": dates[day],
            "platform": platform_names[campaign],
            "campaign_id": campaign_ids[campaign],
            "campaign": campaign_names[campaign],
            "ad_group": np.array(vocabulary.ad_group_names)[ad],
            "ad_id": np.array(vocabulary.ad_ids)[ad],
            "impressions": impressions.astype(np.int64),
            "clicks": row_clicks.astype(np.int64),
            "cost": cost,
            "currency": "USD",
        },
        columns=SPEND_COLUMNS,
    )
    frame = frame.sort_values(["date", "platform", "campaign_id", "ad_id"], kind="stable")
    return frame.reset_index(drop=True)
