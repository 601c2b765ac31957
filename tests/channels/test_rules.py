"""Channel rules: GA4-style defaults, click ids, case, overrides and published source lists."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.channels.sources import load_source_lists
from journeymap.common.config import ChannelConfig, parse_config
from journeymap.common.errors import ConfigError
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import conform

FIELDS = [
    "source",
    "medium",
    "campaign",
    "click_platform",
    "touch_type",
    "referrer_host",
    "channel",
]


def classify(
    rows: list[dict[str, Any]], classifier: ChannelClassifier | None = None
) -> pd.DataFrame:
    frame = pd.DataFrame([{field: row.get(field) for field in FIELDS} for row in rows])
    frame["seq"] = range(len(frame))
    table = ibis.memtable(conform(frame, RAW_TABLES["touchpoints"], table_name="touchpoints"))
    result = (classifier or ChannelClassifier()).classify(table).to_pandas()
    return result.sort_values("seq").reset_index(drop=True)


@pytest.mark.parametrize(
    ("fields", "channel", "source_medium"),
    [
        ({"source": "google", "medium": "cpc"}, "Paid Search", "google / cpc"),
        ({"source": "GOOGLE ", "medium": "CPC"}, "Paid Search", "google / cpc"),
        ({"source": "bing", "medium": "ppc"}, "Paid Search", "bing / ppc"),
        ({"click_platform": "google_ads"}, "Paid Search", "google / cpc"),
        ({"click_platform": "microsoft_ads"}, "Paid Search", "bing / cpc"),
        ({"click_platform": "linkedin_ads"}, "Paid Social", "linkedin / cpc"),
        (
            {"source": "newsletter", "medium": "email", "click_platform": "google_ads"},
            "Paid Search",
            "newsletter / email",
        ),
        ({"click_platform": "meta"}, "Organic Social", "facebook / referral"),
        (
            {"click_platform": "meta", "referrer_host": "l.facebook.com"},
            "Organic Social",
            "facebook / referral",
        ),
        ({"source": "facebook", "medium": "paid_social"}, "Paid Social", "facebook / paid_social"),
        ({"source": "linkedin", "medium": "cpc"}, "Paid Social", "linkedin / cpc"),
        ({"source": "youtube", "medium": "cpv-paid"}, "Paid Video", "youtube / cpv-paid"),
        ({"source": "(direct)", "medium": "(none)"}, "Direct", "(direct) / (none)"),
        ({}, "Direct", "(direct) / (none)"),
        ({"referrer_host": "www.google.com"}, "Organic Search", "www.google.com / organic"),
        ({"referrer_host": "google.co.uk"}, "Organic Search", "google.co.uk / organic"),
        ({"referrer_host": "partner.example.com"}, "Referral", "partner.example.com / referral"),
        ({"referrer_host": "g2.com"}, "Review Sites", "g2.com / referral"),
        ({"source": "hubspot", "medium": "Email"}, "Email", "hubspot / email"),
        ({"source": "adroll", "medium": "display"}, "Display", "adroll / display"),
        ({"source": "partners", "medium": "affiliate"}, "Affiliates", "partners / affiliate"),
        (
            {"source": "acme", "medium": "cpc", "campaign": "PMax cross-network"},
            "Cross-network",
            "acme / cpc",
        ),
        ({"source": "capterra", "medium": "cpc"}, "Review Sites", "capterra / cpc"),
        ({"source": "whatever", "medium": "weird"}, "Unassigned", "whatever / weird"),
        ({"source": "whatever"}, "Unassigned", "whatever / (not set)"),
        ({"touch_type": "webinar"}, "Webinars", "(direct) / (none)"),
        ({"touch_type": "SDR_Call"}, "Sales Outreach", "(direct) / (none)"),
        ({"channel": "Partner Events"}, "Partner Events", "(not set)"),
        ({"channel": "Custom", "source": "google", "medium": "cpc"}, "Custom", "google / cpc"),
    ],
    ids=lambda value: (
        "-".join(str(item) for item in value.values()) if isinstance(value, dict) else None
    ),
)
def test_default_rules(fields: dict[str, str], channel: str, source_medium: str) -> None:
    row = classify([fields]).iloc[0]
    assert row.channel == channel
    assert row.source_medium == source_medium


def test_rules_override_in_yaml() -> None:
    config = parse_config(
        {
            "channels": {
                "rules": [
                    {"channel": "ABM", "when": {"campaign_matches": "^abm"}},
                    {
                        "channel": "Search",
                        "any": [{"source_category": "search"}, {"medium": "organic"}],
                    },
                ],
                "unassigned": "Other",
            }
        }
    )
    classifier = ChannelClassifier.from_config(config.channels)
    result = classify(
        [
            {"source": "linkedin", "medium": "cpc", "campaign": "ABM-Q3"},
            {"referrer_host": "bing.com"},
            {"source": "x"},
        ],
        classifier,
    )
    assert result.channel.tolist() == ["ABM", "Search", "Other"]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"channel": "A", "when": {"sorce": "google"}}], "unknown key. Did you mean source"),
        ([{"channel": "A", "when": {"medium_matches": "(unclosed"}}], "invalid regular expression"),
        ([{"channel": "A"}], "needs 'when' or 'any'"),
        ([{"channel": "A", "when": {"source_category": "podcast"}}], "unknown source category"),
    ],
    ids=["typo-key", "bad-regex", "no-condition", "bad-category"],
)
def test_invalid_rules_raise(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config({"channels": {"rules": rules}})
    assert "channels.rules.0" in str(caught.value)


def test_published_source_list_classifies_paid(shared_data: Path) -> None:
    path = shared_data / "ga4-source-categories" / "ga4_source_categories.csv"
    classifier = ChannelClassifier.from_config(ChannelConfig(source_categories_file=path))
    with path.open(encoding="utf-8") as handle:
        listed = [(row["source"], row["source_category"]) for row in csv.DictReader(handle)]
    expected = {
        "SOURCE_CATEGORY_SEARCH": "Paid Search",
        "SOURCE_CATEGORY_SOCIAL": "Paid Social",
        "SOURCE_CATEGORY_VIDEO": "Paid Video",
        "SOURCE_CATEGORY_SHOPPING": "Paid Shopping",
    }
    result = classify([{"source": source, "medium": "cpc"} for source, _ in listed], classifier)
    for (source, category), channel in zip(listed, result.channel, strict=True):
        assert channel == expected[category], source


def test_builtin_lists_match_hosts() -> None:
    lists = load_source_lists(None)
    assert lists.contains("search", "www.google.de")
    assert lists.contains("social", "lnkd.in")
    assert lists.contains("video", "m.youtube.com")
    assert not lists.contains("search", "support.google.example")
