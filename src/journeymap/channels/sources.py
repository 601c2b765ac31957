"""Source lists: which traffic sources are search engines, social networks, shops or video sites.

The built-in lists name the brands that B2B traffic comes from; a source matches a brand when
it is the bare name (``linkedin``) or one of its hosts (``www.linkedin.com``, ``google.co.uk``,
``l.facebook.com``). A team that needs GA4's full published list can point
``channels.source_categories_file`` at a CSV with the columns ``source`` and
``source_category`` (values such as ``SOURCE_CATEGORY_SEARCH`` or ``search``); that file then
replaces the built-in lists.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from journeymap.common.config import SOURCE_CATEGORIES
from journeymap.common.errors import ConfigError

# Brands are matched as bare names and as hosts: an optional prefix label, the brand, then one
# or two top-level labels. Extra exact names cover hosts that do not follow that shape.
_BRANDS: dict[str, tuple[str, ...]] = {
    "search": (
        "google",
        "bing",
        "yahoo",
        "duckduckgo",
        "baidu",
        "yandex",
        "ecosia",
        "ask",
        "aol",
        "naver",
        "seznam",
        "qwant",
        "startpage",
        "sogou",
        "brave",
        "msn",
        "daum",
        "perplexity",
        "kagi",
        "onet",
        "rambler",
        "dogpile",
        "lycos",
        "chatgpt",
        "petalsearch",
        "mojeek",
    ),
    "social": (
        "facebook",
        "fb",
        "instagram",
        "linkedin",
        "lnkd",
        "twitter",
        "reddit",
        "pinterest",
        "tiktok",
        "quora",
        "snapchat",
        "threads",
        "mastodon",
        "bsky",
        "tumblr",
        "xing",
        "vk",
        "weibo",
        "discord",
        "slack",
        "telegram",
        "whatsapp",
        "messenger",
        "medium",
        "substack",
        "producthunt",
        "news.ycombinator",
        "glassdoor",
        "meetup",
        "stackoverflow",
        "stackexchange",
        "github",
        "hashnode",
        "wechat",
        "kakao",
    ),
    "shopping": (
        "amazon",
        "ebay",
        "etsy",
        "walmart",
        "shopify",
        "aliexpress",
        "alibaba",
        "bestbuy",
        "rakuten",
        "mercadolibre",
        "idealo",
        "zalando",
        "wayfair",
    ),
    "video": (
        "youtube",
        "youtu",
        "vimeo",
        "twitch",
        "dailymotion",
        "wistia",
        "vidyard",
        "loom",
        "bilibili",
        "rumble",
    ),
}

_EXACT: dict[str, tuple[str, ...]] = {
    "search": ("search.yahoo.com", "r.search.yahoo.com", "you.com", "so.com", "wp.pl"),
    "social": ("t.co", "x.com", "l.facebook.com", "lm.facebook.com", "lnkd.in", "dev.to"),
    "shopping": ("shopping.google.com",),
    "video": ("youtu.be", "ted.com"),
}

_CATEGORY_ALIASES = {
    "source_category_search": "search",
    "source_category_social": "social",
    "source_category_shopping": "shopping",
    "source_category_video": "video",
}

REVIEW_SITES = (
    "g2",
    "g2.com",
    "www.g2.com",
    "capterra",
    "capterra.com",
    "www.capterra.com",
    "trustradius",
    "trustradius.com",
    "www.trustradius.com",
    "getapp",
    "getapp.com",
    "softwareadvice",
    "softwareadvice.com",
    "gartner.com",
    "www.gartner.com",
    "peerspot.com",
)
"""Software review sites, which B2B buyers read before a demo; they get a channel of their own."""


@dataclass(frozen=True)
class SourceLists:
    """Exact source names and host patterns for each source category."""

    exact: dict[str, frozenset[str]] = field(default_factory=dict)
    patterns: dict[str, str] = field(default_factory=dict)

    def contains(self, category: str, source: str) -> bool:
        """Return whether ``source`` (any case) belongs to ``category``; used outside the engine."""
        import re

        value = source.strip().lower()
        if value in self.exact.get(category, frozenset()):
            return True
        pattern = self.patterns.get(category)
        return bool(pattern and re.search(pattern, value))


def _host_pattern(brands: tuple[str, ...]) -> str:
    names = "|".join(sorted((brand.replace(".", r"\.") for brand in brands), key=len, reverse=True))
    return rf"^([a-z0-9-]+\.)?({names})(\.[a-z]{{2,3}}){{1,2}}$"


def builtin_source_lists() -> SourceLists:
    """Return the built-in source lists."""
    exact = {
        category: frozenset(_BRANDS[category]) | frozenset(_EXACT[category])
        for category in SOURCE_CATEGORIES
    }
    patterns = {category: _host_pattern(_BRANDS[category]) for category in SOURCE_CATEGORIES}
    return SourceLists(exact=exact, patterns=patterns)


def load_source_lists(path: str | Path | None) -> SourceLists:
    """Return the source lists from a CSV file, or the built-in lists when ``path`` is None.

    Raises:
        ConfigError: the file is missing, lacks a column, or names an unknown category.
    """
    if path is None:
        return builtin_source_lists()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            "source categories file not found",
            source=str(path),
            location="channels.source_categories_file",
            hint="Fix the path, or remove the key to use the built-in lists",
        )
    exact: dict[str, set[str]] = {category: set() for category in SOURCE_CATEGORIES}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        for column in ("source", "source_category"):
            if column not in fields:
                raise ConfigError(
                    f"missing column {column!r}; found {', '.join(fields) or 'no header'}",
                    source=str(path),
                    hint="The file needs the columns source and source_category",
                )
        for row_number, row in enumerate(reader, start=1):
            raw_category = (row["source_category"] or "").strip().lower()
            category = _CATEGORY_ALIASES.get(raw_category, raw_category)
            if category not in exact:
                raise ConfigError(
                    f"row {row_number}: unknown source category {row['source_category']!r}",
                    source=str(path),
                    hint=f"Use one of {', '.join(SOURCE_CATEGORIES)} or SOURCE_CATEGORY_<NAME>",
                )
            exact[category].add((row["source"] or "").strip().lower())
    return SourceLists(exact={key: frozenset(values) for key, values in exact.items()})
