"""Channel rules: the default ordered rule set and its compilation into an Ibis expression.

The defaults follow the order of GA4's default channel group, with three additions for B2B
journeys: ad click ids decide paid search and paid social before the source and medium rules
(auto-tagged clicks often arrive without UTM parameters), except that a display medium stays
Display; offline touch types (webinar, event, sales call, review site) get channels of their
own; and software review sites are one channel.
``fbclid`` is not taken as evidence of a paid click, because Meta appends it to organic
links as well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from journeymap.channels.sources import REVIEW_SITES, SourceLists, load_source_lists
from journeymap.common.config import (
    ChannelConfig,
    ChannelRule,
    Condition,
    as_list,
)
from journeymap.store.schema import NOT_SET

PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
SHOPPING_CAMPAIGN = r"^(.*(([^a-df-z]|^)shop|shopping).*)$"
EMAIL_WORDS = ["email", "e-mail", "e_mail", "e mail"]

# Source and paid status implied by a click id when the URL has no UTM parameters.
CLICK_PLATFORM_SOURCES = {
    "google_ads": "google",
    "microsoft_ads": "bing",
    "linkedin_ads": "linkedin",
    "tiktok_ads": "tiktok",
    "meta": "facebook",
}
PAID_CLICK_PLATFORMS = ["google_ads", "microsoft_ads", "linkedin_ads", "tiktok_ads"]


def _rule(channel: str, *groups: dict[str, object]) -> ChannelRule:
    conditions = [Condition.model_validate(group) for group in groups]
    if len(conditions) == 1:
        return ChannelRule(channel=channel, when=conditions[0])
    return ChannelRule(channel=channel, any=conditions)


def default_rules() -> list[ChannelRule]:
    """Return the built-in channel rules, in evaluation order."""
    return [
        _rule("Webinars", {"touch_type": ["webinar"]}),
        _rule("Events", {"touch_type": ["event", "conference", "trade_show", "meetup"]}),
        _rule(
            "Sales Outreach",
            {"touch_type": ["call", "sdr_call", "sdr_email", "sales_email", "meeting", "outbound"]},
        ),
        _rule("Review Sites", {"touch_type": ["review_site"]}, {"source": list(REVIEW_SITES)}),
        _rule("Self-reported", {"touch_type": ["self_reported"]}),
        _rule("Cross-network", {"campaign_matches": "cross-network"}),
        # Display clicks from Google Ads carry a gclid too, so their medium decides.
        _rule("Display", {"medium": ["display", "banner", "expandable", "interstitial", "cpm"]}),
        _rule("Paid Search", {"click_platform": ["google_ads", "microsoft_ads"]}),
        _rule("Paid Social", {"click_platform": ["linkedin_ads", "tiktok_ads"]}),
        _rule("Direct", {"source": "(direct)", "medium": ["(not set)", "(none)"]}),
        _rule(
            "Paid Shopping",
            {"source_category": "shopping", "medium_matches": PAID_MEDIUM},
            {"campaign_matches": SHOPPING_CAMPAIGN, "medium_matches": PAID_MEDIUM},
        ),
        _rule("Paid Search", {"source_category": "search", "medium_matches": PAID_MEDIUM}),
        _rule("Paid Social", {"source_category": "social", "medium_matches": PAID_MEDIUM}),
        _rule("Paid Video", {"source_category": "video", "medium_matches": PAID_MEDIUM}),
        _rule("Paid Other", {"medium_matches": PAID_MEDIUM}),
        _rule(
            "Organic Shopping",
            {"source_category": "shopping"},
            {"campaign_matches": SHOPPING_CAMPAIGN},
        ),
        _rule(
            "Organic Social",
            {"source_category": "social"},
            {
                "medium": [
                    "social",
                    "social-network",
                    "social-media",
                    "sm",
                    "social network",
                    "social media",
                ]
            },
        ),
        _rule("Organic Video", {"source_category": "video"}, {"medium_matches": "video"}),
        _rule("Organic Search", {"source_category": "search"}, {"medium": "organic"}),
        _rule("Referral", {"medium": ["referral", "app", "link"]}),
        _rule("Email", {"source": EMAIL_WORDS}, {"medium": EMAIL_WORDS}),
        _rule("Affiliates", {"medium": "affiliate"}),
        _rule("Audio", {"medium": "audio"}),
        _rule("SMS", {"source": "sms"}, {"medium": "sms"}),
        _rule(
            "Mobile Push Notifications",
            {"medium_matches": "(push$|mobile|notification)"},
            {"source": "firebase"},
        ),
    ]


def _clean(value: ir.StringValue) -> ir.StringValue:
    """Lowercase and trim, turning empty strings into null."""
    cleaned = value.strip().lower()
    return cleaned.nullif("")


class ChannelClassifier:
    """Assigns channels, sources and mediums to touches inside the engine.

    :meth:`classify` takes a table with the touchpoint columns ``channel``, ``source``,
    ``medium``, ``campaign``, ``click_platform``, ``touch_type`` and ``referrer_host``. It
    first adds the cleaned fields and source categories as columns, so that the rules (and
    the SQL they compile to) refer to each derived value once.
    """

    def __init__(
        self,
        rules: Sequence[ChannelRule] | None = None,
        source_lists: SourceLists | None = None,
        unassigned: str = "Unassigned",
    ) -> None:
        self.rules = list(rules) if rules is not None else default_rules()
        self.source_lists = source_lists or load_source_lists(None)
        self.unassigned = unassigned

    @classmethod
    def from_config(cls, config: ChannelConfig) -> ChannelClassifier:
        """Build the classifier that a configuration describes."""
        base = config.rules if config.rules is not None else default_rules()
        return cls(
            rules=[*config.extra_rules, *base],
            source_lists=load_source_lists(config.source_categories_file),
            unassigned=config.unassigned,
        )

    def in_category(self, value: ir.StringValue, category: str) -> ir.BooleanValue:
        """Return whether a lowercased source is in a source category.

        The exact names compile to one anchored regular expression rather than a list of
        literals, which keeps the query small even with a published list of 800 sources.
        """
        exact = sorted(self.source_lists.exact.get(category, frozenset()))
        alternatives = [f"^(?:{'|'.join(re.escape(name) for name in exact)})$"] if exact else []
        pattern = self.source_lists.patterns.get(category)
        if pattern:
            alternatives.append(pattern)
        if not alternatives:
            return ibis.literal(False)
        test = value.re_search("|".join(f"(?:{part})" for part in alternatives))
        return test.fill_null(False)

    def _prepare(self, t: ibis.Table) -> ibis.Table:
        """Add the cleaned fields and the effective source and medium."""
        cleaned = t.mutate(
            _given_channel=t.channel.strip().nullif(""),
            _raw_source=_clean(t.source),
            _raw_medium=_clean(t.medium),
            _campaign=_clean(t.campaign),
            _click_platform=_clean(t.click_platform),
            _touch_type=_clean(t.touch_type),
            _referrer_host=_clean(t.referrer_host),
        )
        from_click = cleaned._click_platform.cases(
            *CLICK_PLATFORM_SOURCES.items(), else_=ibis.null(str)
        )
        derived_medium = ibis.cases(
            (cleaned._raw_source.notnull(), ibis.literal("(not set)")),
            (
                cleaned._click_platform.isin(PAID_CLICK_PLATFORMS).fill_null(False),
                ibis.literal("cpc"),
            ),
            (self.in_category(cleaned._referrer_host, "search"), ibis.literal("organic")),
            (
                cleaned._referrer_host.notnull() | cleaned._click_platform.notnull(),
                ibis.literal("referral"),
            ),
            else_=ibis.literal("(none)"),
        )
        effective = cleaned.mutate(
            _source=ibis.coalesce(
                cleaned._raw_source, from_click, cleaned._referrer_host, ibis.literal("(direct)")
            ),
            _medium=ibis.cases(
                (cleaned._raw_medium.notnull(), cleaned._raw_medium), else_=derived_medium
            ),
        )
        return effective

    def _condition(self, p: ibis.Table, group: Condition) -> ir.BooleanValue:
        values = {
            "source": p._source,
            "medium": p._medium,
            "campaign": p._campaign,
            "click_platform": p._click_platform,
            "touch_type": p._touch_type,
            "referrer_host": p._referrer_host,
        }
        tests: list[ir.BooleanValue] = []
        for name, value in values.items():
            wanted = [item.strip().lower() for item in as_list(getattr(group, name))]
            if wanted:
                tests.append(value.isin(wanted))
            pattern = getattr(group, f"{name}_matches", None)
            if pattern:
                tests.append(value.re_search(pattern))
        for category in as_list(group.source_category):
            tests.append(self.in_category(p._source, category.lower()))
        for category in as_list(group.not_source_category):
            tests.append(~self.in_category(p._source, category.lower()))
        combined = tests[0]
        for test in tests[1:]:
            combined = combined & test
        return combined.fill_null(False)

    def _channel(self, p: ibis.Table) -> ir.StringValue:
        branches = []
        for rule in self.rules:
            groups = [self._condition(p, group) for group in rule.groups()]
            matched = groups[0]
            for group in groups[1:]:
                matched = matched | group
            branches.append((matched, ibis.literal(rule.channel)))
        # The input's own channel comes first, so the engine skips the rules for those rows.
        given = (p._given_channel.notnull(), p._given_channel)
        return ibis.cases(given, *branches, else_=ibis.literal(self.unassigned))

    def _source_medium(self, p: ibis.Table) -> ir.StringValue:
        # A touch whose channel the input names, with no source, medium, referrer or click
        # id (an offline touch, or a row of a channel-only export) has "(not set)" rather
        # than the "(direct) / (none)" of web traffic without those fields.
        unknown = (
            p._given_channel.notnull()
            & p._raw_source.isnull()
            & p._raw_medium.isnull()
            & p._referrer_host.isnull()
            & p._click_platform.isnull()
        )
        derived = p._source.concat(" / ", p._medium)
        return ibis.cases((unknown, ibis.literal(NOT_SET)), else_=derived)

    def classify(self, t: ibis.Table) -> ibis.Table:
        """Return ``t`` with ``channel`` classified and ``source_medium`` added.

        ``channel`` keeps the input's own channel where given; otherwise the first matching
        rule names it, and ``Unassigned`` (configurable) when none matches. ``source_medium``
        is ``source / medium`` after lowercasing, with the source and medium derived from
        the click id or referrer when the input has no UTM values.
        """
        prepared = self._prepare(t)
        helpers = [column for column in prepared.columns if column.startswith("_")]
        classified = prepared.mutate(
            channel=self._channel(prepared), source_medium=self._source_medium(prepared)
        )
        return classified.drop(*helpers)
