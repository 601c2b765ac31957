"""Touches of the demo world: when each person is reached, through which channel, with which fields.

Each person gets 1 to 20 touches spread over days to months after their account starts to
look around. A person's channel mix depends on the account's size and the person's intent,
and awareness channels are likelier for the first touch. Webinar and event touches fall on the
dates of the sessions, and sales touches on weekdays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from journeymap.demo import catalog
from journeymap.demo.model import SECONDS_PER_DAY, business_seconds, next_weekday

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

MAX_TOUCHES = 20
CAMPAIGN_KINDS = ("paid", "newsletter", "nurture", "webinar", "event", "outbound")
CHANNEL_INDEX = {name: index for index, name in enumerate(catalog.CHANNELS)}
FIRST_WEBINAR_DAY = 9
FIRST_EVENT_DAY = 20


class _Codes:
    """The distinct values of one text column, in first-seen order, with their codes."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, value: str | None) -> int:
        if value is None:
            return -1
        if value not in self._codes:
            self._codes[value] = len(self.values)
            self.values.append(value)
        return self._codes[value]


@dataclass(frozen=True)
class Vocabulary:
    """The text values of the touchpoint columns, and the code tables that index into them.

    Arrays named ``variant_*`` have one entry per :class:`catalog.Variant` (all channels in
    :data:`catalog.CHANNELS` order), ``campaign_*`` one per paid campaign of
    :data:`catalog.CAMPAIGNS`, and ``ad_*`` one per ad. Codes of -1 are empty cells.
    """

    touch_types: list[str]
    sources: list[str]
    mediums: list[str]
    referrers: list[str]
    campaigns: list[str]
    contents: list[str]
    terms: list[str]
    ad_ids: list[str]
    variant_touch_type: IntArray
    variant_source: IntArray
    variant_medium: IntArray
    variant_referrer: IntArray
    variant_click: IntArray
    """Index into :data:`catalog.CLICK_PARAMETERS`."""
    variant_campaigns: IntArray
    """Index into :data:`CAMPAIGN_KINDS`."""
    variant_tagged: BoolArray
    variant_group: IntArray
    """Paid group (channel and platform) of a paid variant."""
    channel_variant_start: IntArray
    channel_variant_weights: FloatArray
    """Variant shares by channel, one row per channel, padded with 0."""
    groups: list[tuple[str, str]]
    campaign_group: IntArray
    campaign_code: IntArray
    campaign_weight: FloatArray
    campaign_active: BoolArray
    """Whether each campaign runs on each day: days by campaigns."""
    campaign_ad_start: IntArray
    campaign_ad_count: IntArray
    campaign_term_start: IntArray
    campaign_term_count: IntArray
    ad_campaign: IntArray
    ad_content: IntArray
    ad_group_names: list[str]
    newsletter_of_day: IntArray
    nurture_codes: IntArray
    email_content_codes: IntArray
    webinar_days: IntArray
    webinar_codes: IntArray
    event_days: IntArray
    event_codes: IntArray
    outbound_codes: IntArray


def build_vocabulary(start: date, days: int) -> Vocabulary:
    """Build the column values and code tables of a world that starts on ``start``."""
    touch_types, sources, mediums, referrers = _Codes(), _Codes(), _Codes(), _Codes()
    campaigns, contents, terms, ad_ids = _Codes(), _Codes(), _Codes(), _Codes()

    groups = list(
        dict.fromkeys((campaign.channel, campaign.platform) for campaign in catalog.CAMPAIGNS)
    )
    variant_rows: list[tuple[int, ...]] = []
    channel_start: list[int] = []
    widest = max(len(variants) for variants in catalog.VARIANTS.values())
    shares = np.zeros((len(catalog.CHANNELS), widest))
    for channel_index, channel in enumerate(catalog.CHANNELS):
        variants = catalog.VARIANTS[channel]
        channel_start.append(len(variant_rows))
        shares[channel_index, : len(variants)] = [variant.weight for variant in variants]
        for variant in variants:
            click = (
                catalog.CLICK_PARAMETERS.index(variant.click_parameter)
                if variant.click_parameter
                else -1
            )
            kind = CAMPAIGN_KINDS.index(variant.campaigns) if variant.campaigns else -1
            group = groups.index((channel, variant.platform)) if variant.platform else -1
            variant_rows.append(
                (
                    touch_types.code(variant.touch_type),
                    sources.code(variant.source),
                    mediums.code(variant.medium),
                    referrers.code(variant.referrer),
                    click,
                    kind,
                    int(variant.tagged),
                    group,
                )
            )
    table = np.array(variant_rows, dtype=np.int64)

    ad_campaign: list[int] = []
    ad_content: list[int] = []
    ad_group_names: list[str] = []
    campaign_rows: list[tuple[int, ...]] = []
    active = np.zeros((days, len(catalog.CAMPAIGNS)), dtype=bool)
    for index, campaign in enumerate(catalog.CAMPAIGNS):
        first_day = int(np.floor(campaign.flight[0] * days))
        last_day = max(first_day, int(np.ceil(campaign.flight[1] * days)) - 1)
        active[first_day : last_day + 1, index] = True
        ad_start = len(ad_ids.values)
        for group_number, ad_group in enumerate(campaign.ad_groups, start=1):
            for ad_number in range(1, campaign.ads_per_group + 1):
                ad_ids.code(f"{campaign.campaign_id}{group_number}{ad_number}")
                ad_content.append(contents.code(f"{ad_group}-{chr(ord('a') + ad_number - 1)}"))
                ad_group_names.append(ad_group)
                ad_campaign.append(index)
        term_codes = [terms.code(keyword) for keyword in campaign.keywords]
        campaign_rows.append(
            (
                groups.index((campaign.channel, campaign.platform)),
                campaigns.code(campaign.name),
                ad_start,
                len(ad_ids.values) - ad_start,
                term_codes[0] if term_codes else -1,
                len(term_codes),
            )
        )
    paid = np.array(campaign_rows, dtype=np.int64)

    day_dates = [start + timedelta(days=day) for day in range(days)]
    newsletter_of_day = np.array([campaigns.code(f"newsletter-{d:%Y-%m}") for d in day_dates])
    nurture_codes = np.array([campaigns.code(name) for name in catalog.NURTURE_PROGRAMS])
    email_content_codes = np.array([contents.code(name) for name in catalog.EMAIL_CONTENTS])
    webinar_days = np.arange(min(FIRST_WEBINAR_DAY, days - 1), days, catalog.WEBINAR_EVERY_DAYS)
    topics = catalog.WEBINAR_TOPICS
    webinar_codes = np.array(
        [
            campaigns.code(f"webinar-{topics[number % len(topics)]}-{day_dates[day]:%Y-%m-%d}")
            for number, day in enumerate(webinar_days)
        ]
    )
    event_days = np.arange(min(FIRST_EVENT_DAY, days - 1), days, catalog.EVENT_EVERY_DAYS)
    event_codes = np.array(
        [
            campaigns.code(
                f"{catalog.EVENT_NAMES[number % len(catalog.EVENT_NAMES)]}-{day_dates[day]:%Y-%m}"
            )
            for number, day in enumerate(event_days)
        ]
    )
    outbound_codes = np.array([campaigns.code(name) for name in catalog.OUTBOUND_CAMPAIGNS])

    return Vocabulary(
        touch_types=touch_types.values,
        sources=sources.values,
        mediums=mediums.values,
        referrers=referrers.values,
        campaigns=campaigns.values,
        contents=contents.values,
        terms=terms.values,
        ad_ids=ad_ids.values,
        variant_touch_type=table[:, 0],
        variant_source=table[:, 1],
        variant_medium=table[:, 2],
        variant_referrer=table[:, 3],
        variant_click=table[:, 4],
        variant_campaigns=table[:, 5],
        variant_tagged=table[:, 6].astype(bool),
        variant_group=table[:, 7],
        channel_variant_start=np.array(channel_start, dtype=np.int64),
        channel_variant_weights=shares,
        groups=groups,
        campaign_group=paid[:, 0],
        campaign_code=paid[:, 1],
        campaign_weight=np.array([campaign.weight for campaign in catalog.CAMPAIGNS]),
        campaign_active=active,
        campaign_ad_start=paid[:, 2],
        campaign_ad_count=paid[:, 3],
        campaign_term_start=paid[:, 4],
        campaign_term_count=paid[:, 5],
        ad_campaign=np.array(ad_campaign, dtype=np.int64),
        ad_content=np.array(ad_content, dtype=np.int64),
        ad_group_names=ad_group_names,
        newsletter_of_day=newsletter_of_day.astype(np.int64),
        nurture_codes=nurture_codes.astype(np.int64),
        email_content_codes=email_content_codes.astype(np.int64),
        webinar_days=webinar_days.astype(np.int64),
        webinar_codes=webinar_codes.astype(np.int64),
        event_days=event_days.astype(np.int64),
        event_codes=event_codes.astype(np.int64),
        outbound_codes=outbound_codes.astype(np.int64),
    )


@dataclass(frozen=True)
class Touches:
    """The touches of a group of people, sorted by person, then time (seconds from the start)."""

    count_per_person: IntArray
    person: IntArray
    time: IntArray
    channel: IntArray
    variant: IntArray
    campaign: IntArray
    content: IntArray
    term: IntArray
    ad: IntArray
    """Ad clicked, also for clicks that carry only a click id, or -1 for other touches."""
    lead_delay: IntArray
    """Seconds from the touch to the lead it causes, 0 for a form fill on the touch's row."""
    tracked: BoolArray
    """Whether the touch reaches the touchpoint file."""


def draw_categories(weights: FloatArray, rows: IntArray, draws: FloatArray) -> IntArray:
    """Draw a column for each entry of ``rows`` with chances proportional to ``weights[row]``.

    ``draws`` are uniform on [0, 1). Each row's normalised cumulative weights are shifted by
    the row number and laid end to end, so one binary search per entry finds its column
    without building a matrix per entry.
    """
    width = weights.shape[1]
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]
    cumulative += np.arange(len(weights))[:, None]
    found: IntArray = np.searchsorted(cumulative.ravel(), rows + draws, side="right") - rows * width
    chosen: IntArray = np.minimum(found, width - 1)
    return chosen


def _channel_weights(tier: IntArray, intent: FloatArray) -> FloatArray:
    """Return each person's expected channel weights (people by channels)."""
    models = [catalog.CHANNEL_MODELS[channel] for channel in catalog.CHANNELS]
    base = np.array([model.weight for model in models])
    slope = np.array([model.intent_slope for model in models])
    weights = base[None, :] * np.maximum(0.1, 1.0 + slope[None, :] * (intent[:, None] - 0.3))
    for channel, factors in catalog.TIER_CHANNEL_FACTORS.items():
        weights[:, CHANNEL_INDEX[channel]] *= np.asarray(factors)[tier]
    return weights


def draw_touches(
    rng: np.random.Generator,
    vocabulary: Vocabulary,
    *,
    person_account: IntArray,
    account_tier: IntArray,
    person_intent: FloatArray,
    days: int,
    first_weekday: int,
) -> Touches:
    """Draw the touches of a group of whole accounts (indices local to the group)."""
    people = len(person_account)
    accounts = len(account_tier)
    tier = account_tier[person_account]

    rate = rng.gamma(1.4, (2.5 + 5.0 * person_intent) / 1.4)
    count = np.clip(1 + rng.poisson(rate), 1, MAX_TOUCHES).astype(np.int64)
    person = np.repeat(np.arange(people, dtype=np.int64), count)
    offsets = np.concatenate([[0], np.cumsum(count)[:-1]])

    account_start = rng.uniform(0.0, max(days - 14, 1), accounts)
    start = np.minimum(account_start[person_account] + rng.exponential(10.0, people), days - 1)
    span = np.minimum(rng.lognormal(np.log(30.0), 0.9, people), days - start - 1e-3)
    position = np.sort(person + rng.random(len(person))) - person
    day = np.floor(start[person] + span[person] * position).astype(np.int64)
    second = business_seconds(rng, len(person))

    # Channel: a person's weights, varied by lognormal noise, then one categorical draw per touch.
    personal = _channel_weights(tier, person_intent) * np.exp(
        rng.standard_normal((people, len(catalog.CHANNELS)))
    )
    first_factor = np.array(
        [catalog.CHANNEL_MODELS[name].first_touch_factor for name in catalog.CHANNELS]
    )
    is_first = np.zeros(len(person), dtype=bool)
    is_first[offsets] = True
    channel = np.empty(len(person), dtype=np.int64)
    for first, factor in ((False, 1.0), (True, first_factor)):
        rows = np.flatnonzero(is_first == first)
        channel[rows] = draw_categories(personal * factor, person[rows], rng.random(len(rows)))
    del personal

    variant = vocabulary.channel_variant_start[channel] + draw_categories(
        vocabulary.channel_variant_weights, channel, rng.random(len(person))
    )
    kind = vocabulary.variant_campaigns[variant]

    campaign = np.full(len(person), -1, dtype=np.int64)
    content = np.full(len(person), -1, dtype=np.int64)
    term = np.full(len(person), -1, dtype=np.int64)
    ad = np.full(len(person), -1, dtype=np.int64)

    webinar = np.flatnonzero(kind == CAMPAIGN_KINDS.index("webinar"))
    session = np.minimum(
        np.searchsorted(vocabulary.webinar_days, day[webinar]), len(vocabulary.webinar_days) - 1
    )
    day[webinar] = vocabulary.webinar_days[session]
    second[webinar] = 16 * 3600 + rng.integers(0, 3000, len(webinar))
    campaign[webinar] = vocabulary.webinar_codes[session]

    event = np.flatnonzero(kind == CAMPAIGN_KINDS.index("event"))
    session = np.minimum(
        np.searchsorted(vocabulary.event_days, day[event]), len(vocabulary.event_days) - 1
    )
    day[event] = np.minimum(
        vocabulary.event_days[session] + rng.integers(0, 2, len(event)), days - 1
    )
    campaign[event] = vocabulary.event_codes[session]

    outbound = np.flatnonzero(kind == CAMPAIGN_KINDS.index("outbound"))
    weekday = next_weekday(day[outbound], first_weekday)
    friday = np.maximum(day[outbound] - np.where((day[outbound] + first_weekday) % 7 == 5, 1, 2), 0)
    day[outbound] = np.where(weekday < days, weekday, friday)
    campaign[outbound] = vocabulary.outbound_codes[tier[person[outbound]]]

    for name, codes in (("newsletter", None), ("nurture", vocabulary.nurture_codes)):
        rows = np.flatnonzero(kind == CAMPAIGN_KINDS.index(name))
        if codes is None:
            campaign[rows] = vocabulary.newsletter_of_day[day[rows]]
        else:
            campaign[rows] = codes[rng.integers(0, len(codes), len(rows))]
        content[rows] = vocabulary.email_content_codes[
            rng.integers(0, len(vocabulary.email_content_codes), len(rows))
        ]

    paid = np.flatnonzero(kind == CAMPAIGN_KINDS.index("paid"))
    chosen = _choose_campaigns(rng, vocabulary, vocabulary.variant_group[variant[paid]], day[paid])
    ad[paid] = vocabulary.campaign_ad_start[chosen] + (
        rng.random(len(paid)) * vocabulary.campaign_ad_count[chosen]
    ).astype(np.int64)
    campaign[paid] = vocabulary.campaign_code[chosen]
    content[paid] = vocabulary.ad_content[ad[paid]]
    keywords = vocabulary.campaign_term_count[chosen]
    term[paid] = np.where(
        keywords > 0,
        vocabulary.campaign_term_start[chosen]
        + (rng.random(len(paid)) * keywords).astype(np.int64),
        -1,
    )
    untagged = ~vocabulary.variant_tagged[variant]
    campaign[untagged] = -1
    content[untagged] = -1
    term[untagged] = -1

    lead_delay = _lead_delays(rng, channel)
    untracked = rng.random(people) < catalog.UNTRACKED_SHARE
    tracked = ~untracked[person] & (rng.random(len(person)) >= catalog.TOUCH_LOSS)

    time = day * SECONDS_PER_DAY + second
    order = np.argsort(person * (days * SECONDS_PER_DAY) + time, kind="stable")
    return Touches(
        count_per_person=count,
        person=person,
        time=time[order],
        channel=channel[order],
        variant=variant[order],
        campaign=campaign[order],
        content=content[order],
        term=term[order],
        ad=ad[order],
        lead_delay=lead_delay[order],
        tracked=tracked[order],
    )


def _choose_campaigns(
    rng: np.random.Generator, vocabulary: Vocabulary, group: IntArray, day: IntArray
) -> IntArray:
    """Choose a campaign of each click's group among those that run on the click's day."""
    chosen = np.empty(len(group), dtype=np.int64)
    for index in range(len(vocabulary.groups)):
        rows = np.flatnonzero(group == index)
        members = np.flatnonzero(vocabulary.campaign_group == index)
        weights = (
            vocabulary.campaign_weight[members][None, :]
            * vocabulary.campaign_active[day[rows]][:, members]
        )
        # The group's first campaign runs all the time, and this small floor keeps it choosable.
        weights[:, 0] += 1e-9
        pick = draw_categories(weights, np.arange(len(rows)), rng.random(len(rows)))
        chosen[rows] = members[pick]
    return chosen


def _lead_delays(rng: np.random.Generator, channel: IntArray) -> IntArray:
    """Draw the seconds from each touch to the lead it would cause.

    A visit with channel fields can carry the form fill on its own row (delay 0). Other visits
    record the lead 1 to 30 minutes later, sales touches 5 to 60 minutes later, and webinars
    and events 1 to 26 hours later, when the attendee list is loaded.
    """
    size = len(channel)
    minutes = rng.integers(60, 1800, size)
    online = np.isin(channel, [CHANNEL_INDEX[name] for name in catalog.ONLINE_CONVERSION_CHANNELS])
    on_row = online & (rng.random(size) < catalog.ON_TOUCH_LEAD_SHARE)
    offline = np.isin(channel, [CHANNEL_INDEX["Webinars"], CHANNEL_INDEX["Events"]])
    sales = channel == CHANNEL_INDEX["Sales Outreach"]
    delay = np.where(on_row, 0, minutes)
    delay = np.where(offline, rng.integers(3600, 26 * 3600, size), delay)
    delay = np.where(sales, rng.integers(300, 3600, size), delay)
    return delay.astype(np.int64)
