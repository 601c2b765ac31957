"""The fixed catalog of the demo world: channels, their raw fields, ad campaigns and names.

The demo company sells B2B analytics software under the brand "Fieldline". Every channel
is reached through the raw fields that real exports carry (UTM parameters, click ids,
referrers, touch types), chosen so that the default channel rules of
:mod:`journeymap.channels.rules` name the channel listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS: tuple[str, ...] = (
    "Paid Search", "Paid Social", "Organic Search", "Organic Social", "Email", "Direct",
    "Referral", "Display", "Webinars", "Events", "Sales Outreach", "Review Sites",
)  # fmt: skip
"""Channel names, as the default channel rules name them. A channel's code is its index here."""

PAID_CHANNELS: tuple[str, ...] = ("Paid Search", "Paid Social", "Display")


@dataclass(frozen=True)
class ChannelModel:
    """One channel's share of touches and its true effect on each funnel stage.

    ``lead_lift`` is the probability that one touch makes a person a lead. ``opportunity_lift``
    and ``win_lift`` are the probabilities that one touch of the account's buying committee
    turns an open stage into the next one (see :mod:`journeymap.demo.model`).
    """

    weight: float
    lead_lift: float
    opportunity_lift: float
    win_lift: float
    first_touch_factor: float
    """Multiplier of ``weight`` for a person's first touch (awareness channels come first)."""
    intent_slope: float
    """Change of ``weight`` per unit of buying intent: positive for channels of active buyers."""


CHANNEL_MODELS: dict[str, ChannelModel] = {
    "Paid Search": ChannelModel(0.13, 0.060, 0.000, 0.000, 1.2, 1.5),
    "Paid Social": ChannelModel(0.11, 0.025, 0.010, 0.000, 1.8, -0.8),
    "Organic Search": ChannelModel(0.13, 0.045, 0.000, 0.000, 1.5, 1.2),
    "Organic Social": ChannelModel(0.05, 0.010, 0.000, 0.000, 1.6, -0.8),
    "Email": ChannelModel(0.15, 0.015, 0.020, 0.010, 0.3, 0.0),
    "Direct": ChannelModel(0.12, 0.020, 0.000, 0.000, 0.3, 1.5),
    "Referral": ChannelModel(0.04, 0.050, 0.020, 0.000, 1.5, 0.0),
    "Display": ChannelModel(0.07, 0.015, 0.000, 0.000, 2.0, -0.8),
    "Webinars": ChannelModel(0.04, 0.080, 0.050, 0.020, 0.8, 0.0),
    "Events": ChannelModel(0.03, 0.070, 0.080, 0.050, 1.0, 0.0),
    "Sales Outreach": ChannelModel(0.09, 0.040, 0.100, 0.060, 0.6, 0.0),
    "Review Sites": ChannelModel(0.04, 0.080, 0.040, 0.030, 1.0, 1.5),
}

TIER_CHANNEL_FACTORS: dict[str, tuple[float, float, float]] = {
    "Sales Outreach": (0.5, 1.0, 1.8),
    "Events": (0.4, 1.0, 1.8),
}
"""Multipliers of a channel's weight for small, mid-market and enterprise accounts."""


@dataclass(frozen=True)
class Variant:
    """One way a touch of a channel arrives: the raw fields that its touchpoint row carries.

    ``campaigns`` names how ``utm_campaign`` is filled: ``paid`` from the ad campaign,
    ``newsletter`` from the month, ``nurture`` from the nurture programs, ``webinar`` and
    ``event`` from the schedule, ``outbound`` from the account's size, or ``None``. A paid
    variant with ``tagged`` False carries only its click id: no UTM fields and no ad id.
    """

    weight: float
    touch_type: str = "visit"
    source: str | None = None
    medium: str | None = None
    referrer: str | None = None
    click_parameter: str | None = None
    campaigns: str | None = None
    tagged: bool = True
    platform: str | None = None
    """Ad platform of a paid variant, as the spend file names it."""


GOOGLE = "https://www.google.com/"
BING = "https://www.bing.com/"
LINKEDIN = "https://www.linkedin.com/"
FACEBOOK = "https://l.facebook.com/"

# fmt: off
VARIANTS: dict[str, tuple[Variant, ...]] = {
    "Paid Search": (
        Variant(0.56, source="google", medium="cpc", referrer=GOOGLE, click_parameter="gclid",
                campaigns="paid", platform="google_ads"),
        Variant(0.08, source="google", medium="cpc", click_parameter="gclid", campaigns="paid",
                platform="google_ads"),
        Variant(0.03, source="google", medium="cpc", referrer=GOOGLE, click_parameter="gbraid",
                campaigns="paid", platform="google_ads"),
        Variant(0.08, referrer=GOOGLE, click_parameter="gclid", campaigns="paid", tagged=False,
                platform="google_ads"),
        Variant(0.05, source="google", medium="cpc", referrer=GOOGLE, campaigns="paid",
                platform="google_ads"),
        Variant(0.17, source="bing", medium="cpc", referrer=BING, click_parameter="msclkid",
                campaigns="paid", platform="microsoft_ads"),
        Variant(0.03, source="bing", medium="cpc", click_parameter="msclkid", campaigns="paid",
                platform="microsoft_ads"),
    ),
    "Paid Social": (
        Variant(0.44, source="linkedin", medium="paid_social", referrer=LINKEDIN,
                click_parameter="li_fat_id", campaigns="paid", platform="linkedin"),
        Variant(0.18, source="linkedin", medium="paid_social", click_parameter="li_fat_id",
                campaigns="paid", platform="linkedin"),
        Variant(0.10, source="linkedin", medium="paid_social", referrer=LINKEDIN,
                campaigns="paid", platform="linkedin"),
        Variant(0.15, source="facebook", medium="paid_social", referrer=FACEBOOK,
                click_parameter="fbclid", campaigns="paid", platform="facebook"),
        Variant(0.08, source="facebook", medium="cpc", referrer=FACEBOOK,
                click_parameter="fbclid", campaigns="paid", platform="facebook"),
        Variant(0.05, source="facebook", medium="paid_social", campaigns="paid",
                platform="facebook"),
    ),
    "Organic Search": (
        Variant(0.80, referrer=GOOGLE),
        Variant(0.14, referrer=BING),
        Variant(0.06, referrer="https://duckduckgo.com/"),
    ),
    "Organic Social": (
        Variant(0.60, referrer=LINKEDIN),
        Variant(0.25, referrer="https://t.co/"),
        Variant(0.15, referrer="https://www.reddit.com/r/marketing/"),
    ),
    "Email": (
        Variant(0.55, source="newsletter", medium="email", campaigns="newsletter"),
        Variant(0.45, source="hubspot", medium="email", campaigns="nurture"),
    ),
    "Direct": (Variant(1.0),),
    "Referral": (
        Variant(0.30, referrer="https://www.revopsweekly.com/issues/attribution"),
        Variant(0.25, referrer="https://blog.pipelinecraft.io/b2b-attribution-guide"),
        Variant(0.20, referrer="https://community.martechstack.io/t/attribution-tools"),
        Variant(0.15, referrer="https://www.saasbenchmarks.org/tools"),
        Variant(0.10, referrer="https://partners.crmbridge.net/integrations/fieldline"),
    ),
    # NOTE: Google auto-tagging adds a gclid to display clicks too, and the default rules call
    # any gclid Paid Search. So display clicks here carry UTM fields and no click id.
    "Display": (
        Variant(0.70, source="google", medium="display", campaigns="paid", platform="google_ads"),
        Variant(0.30, source="google", medium="display", referrer="https://www.saasweekly.news/",
                campaigns="paid", platform="google_ads"),
    ),
    "Webinars": (Variant(1.0, touch_type="webinar", campaigns="webinar"),),
    "Events": (Variant(1.0, touch_type="event", campaigns="event"),),
    "Sales Outreach": (
        Variant(0.5, touch_type="sdr_call", campaigns="outbound"),
        Variant(0.5, touch_type="sdr_email", campaigns="outbound"),
    ),
    "Review Sites": (
        Variant(0.50, referrer="https://www.g2.com/categories/marketing-attribution"),
        Variant(0.15, source="g2", medium="referral",
                referrer="https://www.g2.com/categories/marketing-attribution"),
        Variant(0.35, referrer="https://www.capterra.com/marketing-attribution-software/"),
    ),
}
# fmt: on

CLICK_PARAMETERS: tuple[str, ...] = ("gclid", "gbraid", "msclkid", "li_fat_id", "fbclid")

ONLINE_CONVERSION_CHANNELS: tuple[str, ...] = (
    "Paid Search", "Paid Social", "Organic Search", "Organic Social", "Email", "Referral",
    "Display", "Review Sites",
)  # fmt: skip
"""Channels whose landing-page visit can carry a form fill on the same touchpoint row."""


@dataclass(frozen=True)
class Platform:
    """An ad platform's click-through rate and price, which turn clicks into spend rows."""

    name: str
    click_through_rate: float
    cost_per_click: float
    """Mean price of one click in USD, which CPM-billed platforms reach through impressions."""
    billed_per_impression: bool


PLATFORMS: dict[str, Platform] = {
    "google_ads": Platform("google_ads", 0.045, 22.0, billed_per_impression=False),
    "microsoft_ads": Platform("microsoft_ads", 0.040, 12.0, billed_per_impression=False),
    "linkedin": Platform("linkedin", 0.005, 16.0, billed_per_impression=True),
    "facebook": Platform("facebook", 0.012, 4.0, billed_per_impression=True),
}

DISPLAY_CLICK_THROUGH_RATE = 0.003
DISPLAY_COST_PER_CLICK = 2.5
"""Display campaigns run on Google Ads but at display prices (bought per thousand impressions)."""


@dataclass(frozen=True)
class Campaign:
    """One paid campaign: its ids, ad groups and keywords, and when it runs.

    Ad ``k`` (from 1) of ad group ``g`` (from 1) has the id ``f"{campaign_id}{g}{k}"`` and
    the ``utm_content`` ``f"{ad_group}-{letter k}"``.
    """

    platform: str
    channel: str
    campaign_id: str
    name: str
    ad_groups: tuple[str, ...]
    ads_per_group: int
    weight: float
    """Share of the platform's clicks in this channel while the campaign runs."""
    flight: tuple[float, float]
    """First and last day on which the campaign runs, as fractions of the window."""
    cost_factor: float = 1.0
    """Multiplier of the platform's cost per click (brand terms are cheap, rivals' dear)."""
    keywords: tuple[str, ...] = ()


# fmt: off
CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("google_ads", "Paid Search", "20931001", "gs-brand", ("brand-core", "brand-pricing"),
             ads_per_group=2, weight=0.25, flight=(0.0, 1.0), cost_factor=0.3,
             keywords=("fieldline", "fieldline pricing", "fieldline attribution",
                       "fieldline login")),
    Campaign("google_ads", "Paid Search", "20931002", "gs-nonbrand-attribution",
             ("multi-touch", "b2b-attribution", "marketing-roi"),
             ads_per_group=2, weight=0.50, flight=(0.0, 1.0), cost_factor=1.2,
             keywords=("multi touch attribution software", "b2b marketing attribution",
                       "marketing attribution tool", "attribution model b2b",
                       "marketing roi software")),
    Campaign("google_ads", "Paid Search", "20931003", "gs-competitor-alternatives",
             ("alternatives",),
             ads_per_group=3, weight=0.25, flight=(0.2, 0.85), cost_factor=1.6,
             keywords=("attribution software alternatives", "compare attribution tools",
                       "marketing attribution vendors")),
    Campaign("microsoft_ads", "Paid Search", "41870011", "bing-brand", ("brand-core",),
             ads_per_group=2, weight=0.35, flight=(0.0, 1.0), cost_factor=0.4,
             keywords=("fieldline", "fieldline pricing")),
    Campaign("microsoft_ads", "Paid Search", "41870012", "bing-nonbrand-attribution",
             ("multi-touch", "b2b-attribution"),
             ads_per_group=2, weight=0.65, flight=(0.0, 1.0), cost_factor=1.1,
             keywords=("multi touch attribution software", "b2b marketing attribution",
                       "marketing attribution tool")),
    Campaign("linkedin", "Paid Social", "610045201", "li-abm-enterprise",
             ("vp-marketing", "revops-leaders"),
             ads_per_group=2, weight=0.40, flight=(0.0, 1.0), cost_factor=1.2),
    Campaign("linkedin", "Paid Social", "610045202", "li-leadgen-attribution-guide",
             ("guide-marketing-ops", "guide-demand-gen"),
             ads_per_group=2, weight=0.40, flight=(0.1, 0.9)),
    Campaign("linkedin", "Paid Social", "610045203", "li-retargeting-webinar", ("site-visitors",),
             ads_per_group=3, weight=0.20, flight=(0.3, 1.0), cost_factor=0.8),
    Campaign("facebook", "Paid Social", "23851774001", "meta-retargeting", ("site-visitors-30d",),
             ads_per_group=3, weight=0.60, flight=(0.0, 1.0)),
    Campaign("facebook", "Paid Social", "23851774002", "meta-lookalike-trial", ("lookalike-1pct",),
             ads_per_group=2, weight=0.40, flight=(0.15, 0.7), cost_factor=1.1),
    Campaign("google_ads", "Display", "20931101", "gdn-retargeting", ("site-visitors",),
             ads_per_group=3, weight=0.50, flight=(0.0, 1.0)),
    Campaign("google_ads", "Display", "20931102", "gdn-prospecting-saas",
             ("in-market-crm", "custom-intent-attribution"),
             ads_per_group=2, weight=0.30, flight=(0.0, 0.8)),
    Campaign("google_ads", "Display", "20931103", "gdn-abm-target-accounts", ("abm-list-q1",),
             ads_per_group=2, weight=0.20, flight=(0.25, 1.0)),
)
"""Paid campaigns. The first campaign of each channel and platform runs all the time."""

NURTURE_PROGRAMS: tuple[str, ...] = (
    "nurture-attribution-101", "nurture-trial-onboarding", "nurture-revops-playbook",
    "product-update",
)
EMAIL_CONTENTS: tuple[str, ...] = ("cta-button", "header-link", "footer-link")
WEBINAR_TOPICS: tuple[str, ...] = (
    "attribution-basics", "pipeline-reporting", "abm-measurement", "marketing-mix",
    "revops-dashboards", "data-quality",
)
WEBINAR_EVERY_DAYS = 14
EVENT_NAMES: tuple[str, ...] = (
    "revops-summit", "b2b-marketing-forum", "saas-growth-conference", "martech-meetup",
    "demand-gen-day",
)
EVENT_EVERY_DAYS = 30
OUTBOUND_CAMPAIGNS: tuple[str, str, str] = (
    "outbound-smb", "outbound-mid-market", "outbound-enterprise",
)

INDUSTRIES: dict[str, float] = {
    "Software": 0.26, "Financial Services": 0.12, "Healthcare": 0.09, "Manufacturing": 0.09,
    "Retail": 0.08, "Education": 0.06, "Media": 0.06, "Professional Services": 0.12,
    "Logistics": 0.06, "Telecommunications": 0.06,
}
REGIONS: dict[str, float] = {"North America": 0.50, "EMEA": 0.30, "APAC": 0.15, "LATAM": 0.05}
PLANS: tuple[str, str, str] = ("Starter", "Growth", "Enterprise")
PLAN_DEAL_MEDIANS: tuple[float, float, float] = (14_000.0, 32_000.0, 78_000.0)
"""Median deal amount (USD) of each plan, around which amounts are lognormal."""
SIZE_TIER_LIMITS: tuple[int, int] = (200, 2000)
"""Employee counts at which mid-market and enterprise accounts start."""

NAME_PREFIXES: tuple[str, ...] = (
    "Blue", "North", "Silver", "Bright", "Iron", "Clear", "Red", "Stone", "Swift", "Green",
    "High", "True", "Pine", "Oak", "Summit", "River", "Golden", "Cedar", "Harbor", "Quartz",
    "Maple", "Falcon", "Polar", "Sun", "Crystal", "Atlas", "Nova", "Vector", "Orbit", "Copper",
)
NAME_STEMS: tuple[str, ...] = (
    "wave", "point", "field", "bridge", "stack", "path", "leaf", "peak", "line", "forge",
    "gate", "light", "works", "mark", "scale", "loop", "shore", "grid", "craft", "hub",
    "rock", "view", "wind", "base", "flow",
)
NAME_KINDS: tuple[str, ...] = (
    "Analytics", "Labs", "Systems", "Software", "Health", "Logistics", "Partners", "Group",
)
FIRST_NAMES: tuple[str, ...] = (
    "ana", "ben", "carla", "david", "elena", "farid", "grace", "hiro", "ines", "jonas", "kate",
    "liam", "maya", "noah", "olga", "pedro", "quinn", "rosa", "sam", "tara", "umar", "vera",
    "will", "xin", "yara", "zoe", "amir", "beth", "chen", "dana",
)
LAST_NAMES: tuple[str, ...] = (
    "smith", "garcia", "muller", "rossi", "kim", "novak", "silva", "khan", "dubois", "tanaka",
    "jensen", "lopez", "patel", "wright", "meyer", "costa", "berg", "owens", "sato", "moreau",
)
# fmt: on


@dataclass(frozen=True)
class Role:
    """A buying-committee role: its titles and how readily its people become leads."""

    name: str
    titles: tuple[str, ...]
    receptiveness: float
    """Multiplier of every channel's lead lift for people in this role."""


# fmt: off
ROLES: tuple[Role, ...] = (
    Role("practitioner", ("Marketing Operations Manager", "Demand Generation Manager",
                          "Growth Marketing Manager", "Revenue Operations Manager",
                          "Marketing Analyst"), 1.25),
    Role("leader", ("VP Marketing", "CMO", "Head of Growth", "VP Revenue Operations"), 0.85),
    Role("technical", ("Head of Data", "Analytics Engineer", "Data Engineer"), 0.6),
    Role("approver", ("Sales Director", "CFO", "Procurement Manager"), 0.45),
)
# fmt: on
CHAMPION_ROLE_WEIGHTS: tuple[float, ...] = (0.75, 0.25, 0.0, 0.0)
"""Role weights of the first member of each buying committee."""
MEMBER_ROLE_WEIGHTS: tuple[float, ...] = (0.35, 0.25, 0.25, 0.15)
"""Role weights of the other members."""

# Parameters of the population and of the conversion model (see journeymap.demo.model).
COMMITTEE_EXTRA_SHARE: tuple[float, float, float] = (0.2, 0.45, 0.7)
"""Binomial probability of each of up to 5 more committee members, by size tier."""
PLAN_SHARES: tuple[tuple[float, float, float], ...] = (
    (0.70, 0.28, 0.02),
    (0.20, 0.60, 0.20),
    (0.03, 0.37, 0.60),
)
"""Shares of the plans among small, mid-market and enterprise accounts."""
DEAL_AMOUNT_SIGMA = 0.45
"""Standard deviation of the log deal amount around its plan's median."""
BASELINE_LEAD: tuple[float, float] = (0.005, 0.05)
"""Probability of a lead without any touch: intercept and slope per unit of intent."""
OPPORTUNITY_BASE: tuple[float, float] = (0.35, 0.35)
"""Opportunity probability of a deal before touches: intercept and slope per unit of intent."""
WIN_BASE: tuple[float, float, float] = (0.42, 0.34, 0.26)
"""Win probability of an opportunity before touches, by size tier."""
SALES_CYCLE_DAYS: tuple[float, float, float] = (35.0, 60.0, 95.0)
"""Mean days from opportunity to close, by size tier."""
UNTRACKED_SHARE = 0.07
"""Share of people none of whose touches reach the touchpoint file (tracking refused)."""
TOUCH_LOSS = 0.07
"""Share of the other touches lost on the way (ad blockers, stripped parameters)."""
ON_TOUCH_LEAD_SHARE = 0.45
"""Share of leads from a landing-page visit recorded on that visit's row (a form fill)."""
ANONYMOUS_CLICK_SHARE = 0.25
"""Clicks by people outside the world, as a share of the world's own clicks on each ad."""
