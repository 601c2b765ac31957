"""Typed configuration: one optional YAML file, every key with a default.

``load_config(path)`` reads and validates the file; ``Config()`` is the default configuration.
Unknown keys are errors, because a typo must not silently fall back to a default. Every error
names the file and the key path, lists the accepted values and tells the user what to do.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from journeymap.common.errors import ConfigError

CONFIG_FILE_NAMES = ("journeymap.yaml", "journeymap.yml")
TransformName = Literal["none", "collapse", "unique", "first", "frequency"]
EntityKind = Literal["person", "account"]
MATCH_FIELDS = ("source", "medium", "campaign", "click_platform", "touch_type", "referrer_host")
SOURCE_CATEGORIES = ("search", "social", "shopping", "video")


StallSegment = Literal["industry", "region", "owner", "pipeline"]
DEFAULT_STALL_SEGMENTS: tuple[StallSegment, ...] = ("industry", "region", "owner")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """One group of conditions on a touch; the group holds when every condition set holds.

    Values are compared after lowercasing and trimming both sides. A field condition takes a
    value or a list of values; a ``*_matches`` condition is a regular expression searched in
    the lowercased value (RE2/Java-compatible syntax, so that every engine runs it).
    """

    source: str | list[str] | None = Field(None, description="Source equals one of these.")
    medium: str | list[str] | None = Field(None, description="Medium equals one of these.")
    campaign: str | list[str] | None = Field(None, description="Campaign equals one of these.")
    click_platform: str | list[str] | None = Field(
        None, description="Ad platform of the click id (google_ads, microsoft_ads, ...)."
    )
    touch_type: str | list[str] | None = Field(None, description="Touch type equals one of these.")
    referrer_host: str | list[str] | None = Field(
        None, description="Referrer host equals one of these."
    )
    source_matches: str | None = Field(None, description="Regular expression on the source.")
    medium_matches: str | None = Field(None, description="Regular expression on the medium.")
    campaign_matches: str | None = Field(None, description="Regular expression on the campaign.")
    source_category: str | list[str] | None = Field(
        None, description="Source is in one of the source lists: search, social, shopping, video."
    )
    not_source_category: str | list[str] | None = Field(
        None, description="Source is in none of these source lists."
    )

    @field_validator("source_matches", "medium_matches", "campaign_matches")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value

    @field_validator("source_category", "not_source_category")
    @classmethod
    def _check_category(cls, value: str | list[str] | None) -> str | list[str] | None:
        for item in as_list(value):
            if item.lower() not in SOURCE_CATEGORIES:
                raise ValueError(
                    f"unknown source category {item!r}; "
                    f"expected one of {', '.join(SOURCE_CATEGORIES)}"
                )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_dump(exclude_none=True):
            raise ValueError("a condition group needs at least one condition")
        return self


class ChannelRule(_Strict):
    """One channel and the condition groups that assign it; the first matching rule wins."""

    channel: str = Field(description="Channel name assigned when the rule matches.")
    when: Condition | None = Field(None, description="Conditions that must all hold.")
    any: list[Condition] = Field(
        default_factory=list, description="Alternative condition groups: one must hold."
    )

    @model_validator(mode="after")
    def _has_conditions(self) -> ChannelRule:
        if self.when is None and not self.any:
            raise ValueError(f"channel rule {self.channel!r} needs 'when' or 'any'")
        return self

    def groups(self) -> list[Condition]:
        """Return the condition groups of the rule; the rule matches if any group holds."""
        return [self.when] if self.when is not None else list(self.any)


class ChannelConfig(_Strict):
    """Channel classification: the rules, source lists and special channel names."""

    rules: list[ChannelRule] | None = Field(
        None, description="Ordered channel rules; the built-in GA4-style rules when omitted."
    )
    extra_rules: list[ChannelRule] = Field(
        default_factory=list,
        description="Rules tried before `rules` (or the built-in rules), to add channels.",
    )
    source_categories_file: Path | None = Field(
        None,
        description="CSV (columns source, source_category) replacing the built-in source lists.",
    )
    direct_channels: list[str] = Field(
        default_factory=lambda: ["Direct"],
        description="Channels that last-non-direct attribution skips (any case).",
    )
    unassigned: str = Field("Unassigned", description="Channel of a touch that no rule matches.")


class JourneyConfig(_Strict):
    """Journey settings: whose touches, lookback window, path transform and kinds."""

    entity: EntityKind = Field("person", description="Whose touches form a journey.")
    lookback_days: float = Field(
        90,
        gt=0,
        description="Touches older than this before a conversion are not in its journey (days).",
    )
    transform: TransformName = Field(
        "none", description="Path transform applied before attribution."
    )
    last_n: int | None = Field(
        None, ge=1, description="Keep only the last N touches of each journey."
    )
    conversion_kinds: list[str] | None = Field(
        None, description="Conversion kinds to attribute; every kind when omitted."
    )


class MilestoneConfig(_Strict):
    """Conversion kinds that mark the milestones of W-shaped and full-path attribution."""

    lead: list[str] = Field(
        default_factory=lambda: ["lead"], description="Kinds that mark lead creation."
    )
    opportunity: list[str] = Field(
        default_factory=lambda: ["opportunity"], description="Kinds that mark opportunity creation."
    )
    closed_won: list[str] = Field(
        default_factory=lambda: ["closed_won"], description="Kinds that mark a closed-won deal."
    )


class AttributionConfig(_Strict):
    """Default models and their parameters by model name."""

    models: list[str] = Field(
        default_factory=lambda: ["all"], description="Model names, or 'all' for every model."
    )
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Parameters by model name, for example time_decay: {half_life_days: 3}.",
    )


class SpendConfig(_Strict):
    """Matching of ad spend to attributed credit."""

    platform_channels: dict[str, str] = Field(
        default_factory=lambda: {
            "google_ads": "Paid Search",
            "google": "Paid Search",
            "microsoft_ads": "Paid Search",
            "bing": "Paid Search",
            "meta": "Paid Social",
            "facebook": "Paid Social",
            "instagram": "Paid Social",
            "linkedin": "Paid Social",
            "linkedin_ads": "Paid Social",
            "tiktok": "Paid Social",
        },
        description="Channel that each ad platform's spend belongs to (platform names lowercased).",
    )


FREE_MAIL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.ru",
    "qq.com",
    "163.com",
    "zoho.com",
)

EXCLUDED_REFERRERS = (
    "paypal.com",
    "checkout.stripe.com",
    "billing.stripe.com",
    "accounts.google.com",
    "login.microsoftonline.com",
    "login.live.com",
    "appleid.apple.com",
    "auth0.com",
    "okta.com",
)


class CollectorSource(_Strict):
    """One sending source of the collector and its write key."""

    write_key: str | None = Field(
        None, description="The write key; prefer write_key_env to keep it out of the file."
    )
    write_key_env: str | None = Field(
        None, description="Environment variable that contains the write key."
    )

    @model_validator(mode="after")
    def _one_key(self) -> CollectorSource:
        if (self.write_key is None) == (self.write_key_env is None):
            raise ValueError("give exactly one of write_key and write_key_env")
        return self


class CollectorConfig(_Strict):
    """The HTTP collector: address, sources, limits, browser access and sinks."""

    host: str = Field("127.0.0.1", description="Address that `journeymap serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port of the server.")
    journal: str | None = Field(
        None,
        description="SQLite journal of acknowledged events (default: the store's path + .journal).",
    )
    sources: dict[str, CollectorSource] = Field(
        default_factory=dict,
        description="Sources by name; with none, `serve` creates the source 'default' "
        "with a key file next to the journal.",
    )
    message_limit_kb: float = Field(32, gt=0, description="Largest accepted message (KiB).")
    batch_limit_kb: float = Field(
        500, gt=0, description="Largest accepted batch (KiB); RudderStack sends up to 4000."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins that may call the collector from a browser (CORS).",
    )
    cookie_name: str = Field("jm_aid", description="First-party anonymous-id cookie.")
    cookie_days: int = Field(395, ge=1, description="Lifetime of the anonymous-id cookie (days).")
    cookie_domain: str | None = Field(
        None,
        description="Domain of the cookie, such as example.com, so that a collector on "
        "track.example.com shares it with www.example.com; the collector's host when omitted.",
    )
    parquet_dir: str | None = Field(
        None, description="Also write events to this date-partitioned Parquet dataset."
    )
    drain_seconds: float = Field(
        5, gt=0, description="How often the server moves journaled events into the store."
    )
    raw_retention_days: int = Field(
        30, ge=1, description="Days the journal keeps raw message bodies after they are stored."
    )
    phone_region: str = Field(
        "US",
        pattern=r"^[A-Za-z]{2}$",
        description="Country (ISO 3166 alpha-2) of collected phone numbers written without a "
        "country code; only their hashes are stored.",
    )


class SessionConfig(_Strict):
    """The rules that turn page events into sessions, touchpoints and conversions."""

    timeout_minutes: float = Field(
        30, gt=0, description="Inactivity that ends a session (minutes)."
    )
    own_domains: list[str] = Field(
        default_factory=list,
        description="The team's own hosts (and their subdomains), whose referrals are not touches.",
    )
    excluded_referrers: list[str] = Field(
        default_factory=lambda: list(EXCLUDED_REFERRERS),
        description="Payment and login hosts (and subdomains), whose referrals are not touches.",
    )
    conversion_events: dict[str, str] = Field(
        default_factory=lambda: {
            "Signed Up": "lead",
            "Form Submitted": "lead",
            "Demo Requested": "demo",
            "Trial Started": "trial",
            "Order Completed": "closed_won",
        },
        description="Tracked event names that are conversions, with their conversion kind.",
    )


class IdentityConfig(_Strict):
    """The rules that merge identifiers into people and accounts."""

    free_mail_domains: list[str] = Field(
        default_factory=lambda: list(FREE_MAIL_DOMAINS),
        description="Email domains that never define an account.",
    )


class StageCondition(_Strict):
    """One signal that enters a journey stage. Exactly one of the four keys is set.

    Names are compared with the data after trimming and lowercasing, so ``Closed Won`` and
    ``closed won`` are the same deal stage.
    """

    conversion: str | None = Field(None, description="A conversion of this kind.")
    deal_stage: str | None = Field(
        None, description="A deal entering this CRM pipeline stage (accounts only)."
    )
    event: str | None = Field(None, description="A tracked event of this name.")
    lifecycle_stage: str | None = Field(
        None,
        description="A CRM contact entering this lifecycle stage (HubSpot internal value, such "
        "as marketingqualifiedlead).",
    )
    touch: Literal[True] | None = Field(None, description="Any marketing or sales touch.")

    @model_validator(mode="after")
    def _exactly_one(self) -> StageCondition:
        keys_set = list(self.model_dump(exclude_none=True))
        if len(keys_set) != 1:
            raise ValueError(
                "a stage condition needs exactly one of conversion, deal_stage, event, "
                "lifecycle_stage, touch; "
                f"got {', '.join(keys_set) or 'none'}"
            )
        return self

    def key(self) -> tuple[str, str]:
        """Return ``(kind, normalized value)``: the identity used to find overlapping rules."""
        kind, value = next(iter(self.model_dump(exclude_none=True).items()))
        return kind, "" if kind == "touch" else normalize_name(str(value))

    def label(self) -> str:
        """Return the condition as the ``reason`` of a stay, such as ``deal_stage Won``."""
        kind, value = next(iter(self.model_dump(exclude_none=True).items()))
        return "touch" if kind == "touch" else f"{kind} {value}"


class StageConfig(_Strict):
    """One journey stage: who owns it, what enters it, and the rows of the journey map."""

    name: str = Field(min_length=1, description="Stage name, unique among the stages.")
    owner: str = Field("", description="Team that owns the stage, such as Marketing or Sales.")
    enter_when: list[StageCondition] = Field(
        default_factory=list, description="Conditions, any of which enters the stage."
    )
    exit_when: list[StageCondition] = Field(
        default_factory=list,
        description="Conditions, any of which ends a stay in the stage without entering "
        "another (a lost deal, a churned account).",
    )
    stall_days: float | None = Field(
        None, gt=0, description="A stay longer than this is stalled (days); no limit when omitted."
    )
    doing: list[str] = Field(default_factory=list, description="What the customer does.")
    thinking: list[str] = Field(default_factory=list, description="What the customer thinks.")
    feeling: list[str] = Field(default_factory=list, description="What the customer feels.")
    pain_points: list[str] = Field(default_factory=list, description="What gets in the way.")
    opportunities: list[str] = Field(default_factory=list, description="What the team can improve.")
    expected_touchpoints: list[str] = Field(
        default_factory=list, description="Touches the team expects in this stage."
    )

    @field_validator("exit_when")
    @classmethod
    def _no_touch_exit(cls, conditions: list[StageCondition]) -> list[StageCondition]:
        if any(condition.touch for condition in conditions):
            raise ValueError(
                "a touch cannot end a stay; use a conversion, deal_stage or event in exit_when"
            )
        return conditions


def normalize_name(value: str) -> str:
    """Return a name as compared with the data: trimmed and lowercased (SQL ``lower``)."""
    return value.strip().lower()


def check_stage_rules(stages: list[StageConfig]) -> list[StageConfig]:
    """Reject duplicate stage names and a condition that enters two stages.

    Raises:
        ValueError: naming both key paths, such as ``stages[1].enter_when[0]``.
    """
    names: dict[str, int] = {}
    for index, stage in enumerate(stages):
        first = names.setdefault(normalize_name(stage.name), index)
        if first != index:
            raise ValueError(
                f"stages[{index}].name {stage.name!r} repeats stages[{first}].name; "
                "give each stage its own name"
            )

    for index, stage in enumerate(stages):
        entering = {
            condition.key(): position for position, condition in enumerate(stage.enter_when)
        }
        for position, condition in enumerate(stage.exit_when):
            if condition.key() in entering:
                raise ValueError(
                    f"stages[{index}].exit_when[{position}] ({condition.label()}) repeats "
                    f"stages[{index}].enter_when[{entering[condition.key()]}]: one signal "
                    "cannot both enter and end the stage; keep it in one list"
                )

    seen: dict[tuple[str, str], str] = {}
    for index, stage in enumerate(stages):
        for position, condition in enumerate(stage.enter_when):
            path = f"stages[{index}].enter_when[{position}]"
            earlier = seen.setdefault(condition.key(), path)
            if earlier != path:
                raise ValueError(
                    f"overlapping entry rules: {path} ({condition.label()}, stage "
                    f"{stage.name!r}) repeats {earlier}; keep the condition in one stage only"
                )
    return stages


LOST_DEAL: list[dict[str, Any]] = [
    {"deal_stage": "Lost"},
    {"deal_stage": "Closed Lost"},
    {"deal_stage": "closedlost"},
]
"""Exit conditions of the default stages that a lost deal ends."""


def _stage(name: str, owner: str, conditions: list[dict[str, Any]], **fields: Any) -> StageConfig:
    return StageConfig.model_validate(
        {"name": name, "owner": owner, "enter_when": conditions, **fields}
    )


def default_stages() -> list[StageConfig]:
    """Return the six default B2B journey stages in journey order.

    Any touch enters Awareness. A lead, demo or trial conversion or an early pipeline stage
    enters Consideration. An opportunity, or a proposal or negotiation stage, enters Decision.
    A won deal enters Onboarding, a renewal Retention, and an expansion or upsell Expansion.
    A lost deal ends a stay in Consideration or Decision.
    """
    return [
        _stage(
            "Awareness",
            "Marketing",
            [{"touch": True}],
            doing=["Reads content, sees ads, searches for the problem"],
            thinking=["Is this problem worth solving now?"],
            feeling=["Curious", "Unsure"],
            pain_points=["Too many vendors saying the same thing"],
            opportunities=["Content that names the problem in the buyer's words"],
            expected_touchpoints=["Organic search", "Paid social", "Referral", "Events"],
        ),
        _stage(
            "Consideration",
            "Marketing",
            [
                {"conversion": "lead"},
                {"conversion": "demo"},
                {"conversion": "trial"},
                {"lifecycle_stage": "lead"},
                {"lifecycle_stage": "marketingqualifiedlead"},
                {"lifecycle_stage": "salesqualifiedlead"},
                {"deal_stage": "Engaging"},
                {"deal_stage": "Demo Scheduled"},
                {"deal_stage": "Appointment Scheduled"},
                {"deal_stage": "Qualification"},
            ],
            exit_when=LOST_DEAL,
            doing=["Signs up, requests a demo, starts a trial"],
            thinking=["Does this fit our team and budget?"],
            feeling=["Interested", "Cautious"],
            pain_points=["Slow reply to a demo request", "Pricing is hard to find"],
            opportunities=["Fast follow-up on every lead", "Self-serve trial"],
            expected_touchpoints=["Email nurture", "Webinar", "Demo call"],
        ),
        _stage(
            "Decision",
            "Sales",
            [
                {"conversion": "opportunity"},
                {"lifecycle_stage": "opportunity"},
                {"deal_stage": "Proposal Sent"},
                {"deal_stage": "Contract Sent"},
                {"deal_stage": "Negotiation"},
                {"deal_stage": "Proposal/Price Quote"},
                {"deal_stage": "Negotiation/Review"},
            ],
            exit_when=LOST_DEAL,
            doing=["Compares vendors, involves procurement and security"],
            thinking=["Can I defend this choice to my boss?"],
            feeling=["Pressured", "Hopeful"],
            pain_points=["Long security review", "Unclear contract terms"],
            opportunities=["Ready-made security answers", "Business case template"],
            expected_touchpoints=["Sales call", "Proposal", "Reference call"],
        ),
        _stage(
            "Onboarding",
            "Customer Success",
            [
                {"conversion": "closed_won"},
                {"lifecycle_stage": "customer"},
                {"deal_stage": "Won"},
                {"deal_stage": "Closed Won"},
                {"deal_stage": "closedwon"},
            ],
            stall_days=30,
            doing=["Sets up the product, invites the team"],
            thinking=["How fast can we get value?"],
            feeling=["Relieved", "Impatient"],
            pain_points=["Setup takes too long", "Nobody owns the rollout"],
            opportunities=["Guided setup", "Named onboarding contact"],
            expected_touchpoints=["Kickoff call", "Onboarding emails", "Training"],
        ),
        _stage(
            "Retention",
            "Customer Success",
            [{"conversion": "renewal"}],
            doing=["Uses the product weekly, renews the contract"],
            thinking=["Is this still worth the price?"],
            feeling=["Confident", "Indifferent"],
            pain_points=["Value is not visible to the budget owner"],
            opportunities=["Usage reviews", "Health scores"],
            expected_touchpoints=["Business review", "Support", "Product updates"],
        ),
        _stage(
            "Expansion",
            "Sales",
            [{"conversion": "expansion"}, {"conversion": "upsell"}],
            doing=["Adds seats, products or teams"],
            thinking=["Can other teams use this too?"],
            feeling=["Committed"],
            pain_points=["Buying more takes a new contract"],
            opportunities=["In-product upgrades", "Champion programme"],
            expected_touchpoints=["Account review", "Upgrade offer"],
        ),
    ]


class CampaignStageRule(_Strict):
    """A naming rule: campaigns whose name matches ``campaign_matches`` target ``stage``."""

    stage: str = Field(min_length=1, description="Journey stage that the campaigns target.")
    campaign_matches: str = Field(
        min_length=1, description="Regular expression searched in the campaign name (any case)."
    )

    @field_validator("campaign_matches")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value


def default_campaign_stages() -> list[CampaignStageRule]:
    """Return naming rules for the usual campaign names; the first rule that matches wins."""
    rules = [
        ("Awareness", r"non-?brand|generic"),
        ("Expansion", r"upsell|cross-?sell|expansion|existing-customer"),
        ("Onboarding", r"onboard|customer|adoption|activation"),
        ("Decision", r"competitor|alternative|brand|trial|demo|pricing|bottom"),
        ("Consideration", r"retarget|remarket|webinar|leadgen|guide|ebook|consideration"),
        ("Awareness", r"prospect|lookalike|nonbrand|awareness|abm|video|display|top"),
    ]
    return [CampaignStageRule(stage=stage, campaign_matches=pattern) for stage, pattern in rules]


class CoverageConfig(_Strict):
    """The journey stage that each ad campaign targets, for spend-by-stage coverage."""

    campaign_stages: list[CampaignStageRule] = Field(
        default_factory=default_campaign_stages,
        description="Ordered naming rules; a campaign that no rule matches is unmapped.",
    )


SyncPlatform = Literal["meta", "google", "google_data_manager", "linkedin", "microsoft"]

SYNC_CREDENTIALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "meta": (("access_token",), ()),
    "google": (("access_token", "developer_token"), ("login_customer_id",)),
    "google_data_manager": (("access_token",), ("login_customer_id",)),
    "linkedin": (("access_token",), ()),
    "microsoft": (("access_token", "developer_token", "customer_id"), ()),
}
"""Platform -> (required, optional) credential names of ``credentials_env``. The required
names equal each adapter's ``required_credentials``, which a test checks."""

_HTTP_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_CURRENCY = re.compile(r"[A-Za-z]{3}")


class SyncDestination(_Strict):
    """One ad platform account (a Meta pixel, a Google Ads customer, a LinkedIn ad account,
    a Microsoft Ads account) and the conversions that go to it."""

    platform: SyncPlatform = Field(description="Which conversion API receives the conversions.")
    account: str = Field(
        min_length=1,
        description="Meta pixel id, Google Ads customer id, LinkedIn ad account id or "
        "Microsoft Ads customer account id.",
    )
    actions: dict[str, str] = Field(
        min_length=1,
        description="Conversion kind -> the platform's event: Meta event name, Google "
        "conversion action id, LinkedIn conversion rule id, Microsoft offline goal name.",
    )
    value: Literal["amount", "fixed", "expected", "none"] = Field(
        "amount",
        description="Value sent: the conversion's amount, fixed_value, expected_values by "
        "kind, or none.",
    )
    fixed_value: float | None = Field(None, ge=0, description="Value sent when value is fixed.")
    expected_values: dict[str, float] = Field(
        default_factory=dict, description="Conversion kind -> expected value (value: expected)."
    )
    currency: str | None = Field(
        None,
        description="ISO 4217 currency of fixed and expected values, and of amounts that "
        "carry none; an amount keeps its own currency.",
    )
    window_days: float | None = Field(
        None,
        gt=0,
        description="Oldest conversion the platform accepts (days); the platform's documented "
        "window when unset.",
    )
    time_zone: str | None = Field(
        None, description="Time zone of the Google Ads account (IANA name); UTC when unset."
    )
    endpoint: str | None = Field(
        None, description="Base URL of the API, to send through a proxy or to a test receiver."
    )
    api_version: str | None = Field(None, description="API version; a tested default when unset.")
    credentials_env: dict[str, str] = Field(
        default_factory=dict,
        description="Credential name -> environment variable that contains it (access_token, "
        "developer_token, ...).",
    )
    test_event_code: str | None = Field(None, description="Meta test event code (test mode).")
    batch_size: int | None = Field(
        None, ge=1, description="Conversions per request; the platform's limit when unset."
    )
    phone_region: str = Field(
        "US", description="Region of phone numbers written without a country code (ISO 3166)."
    )
    event_source: Literal["WEB", "APP", "IN_STORE", "PHONE", "OTHER"] = Field(
        "OTHER", description="Google Data Manager eventSource: where the conversions happen."
    )

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.fullmatch(value.strip()):
            raise ValueError(
                f"endpoint {value!r} is not an http(s) URL; write it as "
                "https://host[:port][/path], or remove it to use the platform's API"
            )
        return value.strip() if value is not None else None

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip()
        if not _CURRENCY.fullmatch(code):
            raise ValueError(
                f"currency {value!r} is not a three-letter ISO 4217 code such as USD or EUR"
            )
        return code.upper()

    @model_validator(mode="after")
    def _check_credential_names(self) -> SyncDestination:
        required, optional = SYNC_CREDENTIALS[self.platform]
        unknown = [name for name in self.credentials_env if name not in (*required, *optional)]
        if unknown:
            accepted = ", ".join(required) + (
                f" (optional: {', '.join(optional)})" if optional else ""
            )
            raise ValueError(
                f"credentials_env has the unknown credential {', '.join(map(repr, unknown))}; "
                f"platform {self.platform} takes {accepted}"
            )
        return self

    @model_validator(mode="after")
    def _check_value_source(self) -> SyncDestination:
        if self.value == "fixed" and self.fixed_value is None:
            raise ValueError("value: fixed needs fixed_value, the value sent with every conversion")
        if self.value == "expected":
            missing = [kind for kind in self.actions if kind not in self.expected_values]
            if missing:
                raise ValueError(
                    f"value: expected needs expected_values for the kinds {', '.join(missing)}"
                )
        return self


class SyncConfig(_Strict):
    """Conversion sync: which conversions go to which ad platforms, and how they are retried."""

    destinations: dict[str, SyncDestination] = Field(
        default_factory=dict, description="Destination name -> platform account and actions."
    )
    secrets_file: Path | None = Field(
        None, description="YAML file of credential name -> value, read when no variable is set."
    )
    interval_seconds: float = Field(
        300, gt=0, description="Time between two sync rounds inside `journeymap serve`."
    )
    max_attempts: int = Field(8, ge=1, description="Attempts before a retryable row gives up.")
    backoff_seconds: float = Field(1.0, gt=0, description="First retry delay (doubles each time).")
    max_backoff_seconds: float = Field(600, gt=0, description="Maximum retry delay.")
    timeout_seconds: float = Field(20, gt=0, description="Timeout of one HTTP request.")
    lease_seconds: float | None = Field(
        None,
        gt=0,
        description="How long a claimed row stays claimed before another run may send it "
        "again (seconds); timeout_seconds + 30 when unset.",
    )
    retry_within_seconds: float = Field(
        60,
        ge=0,
        description="A run waits for retries due within this delay (seconds); later ones "
        "wait for the next run.",
    )


class DashboardConfig(_Strict):
    """The web dashboard that `journeymap serve` runs beside the collector, and its sign-in."""

    enabled: bool = Field(True, description="Serve the dashboard pages and the /api routes.")
    auth: Literal["password", "none"] = Field(
        "password",
        description="Sign in with the password in password_env; 'none' turns sign-in off and "
        "is accepted only when the server listens on a loopback address.",
    )
    password_env: str = Field(
        "JOURNEYMAP_DASHBOARD_PASSWORD",
        description="Environment variable that contains the dashboard password (or token).",
    )
    session_hours: float = Field(12, gt=0, description="Lifetime of a sign-in session (hours).")
    warm_up: bool = Field(
        True,
        description="Compute every page's default view in the background when the server "
        "starts and after each import, build or attribution run.",
    )


class RecommendationConfig(_Strict):
    """Thresholds of the recommendation rules (`journeymap recommend`)."""

    min_entities: int = Field(
        20, ge=1, description="Minimum entities (people, accounts or deals) behind a finding."
    )
    uncovered_dropoff: float = Field(
        0.5, ge=0, le=1, description="Drop-off rate from which a stage without campaigns fires."
    )
    credit_ratio: float = Field(
        1.5, gt=1, description="Markov credit over last-click credit from which a channel fires."
    )
    min_credit: float = Field(
        5, gt=0, description="Minimum conversions that Markov must credit to the channel."
    )
    stall_days_ratio: float = Field(
        2, gt=1, description="Segment's median days in a stage over the other deals' median."
    )
    stall_rate_gap: float = Field(
        0.15,
        gt=0,
        le=1,
        description="How much lower the segment's move-on rate must be "
        "(fraction, 0.15 = 15 points).",
    )
    stall_segments: list[StallSegment] = Field(
        default_factory=lambda: list(DEFAULT_STALL_SEGMENTS),
        description="Deal and account columns whose segments the stall rule compares.",
    )
    hidden_value_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of won value without any tracked touch from which the gap fires.",
    )
    min_clicked_conversions: int = Field(
        20, ge=1, description="Minimum conversions of a kind with a click id for the sync rule."
    )
    min_clicked_share: float = Field(
        0.2, ge=0, le=1, description="Share of a kind's conversions with a click id (sync rule)."
    )
    click_window_days: float = Field(
        90, gt=0, description="Days before a conversion in which an ad click counts for it."
    )
    period_drop: float = Field(
        0.15,
        gt=0,
        le=1,
        description="Fall of a channel's stage-to-stage rate between the halves (fraction).",
    )
    period_excess: float = Field(
        0.10,
        ge=0,
        le=1,
        description="How much more the channel's rate must fall than the other channels' rate.",
    )
    min_period_entrants: int = Field(
        15, ge=1, description="Minimum entrants of the channel in each half for the period rule."
    )
    period_alpha: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Largest p-value (one-sided Fisher exact test) of the channel's fall.",
    )


class Config(_Strict):
    """The whole configuration file."""

    store: str = Field("journeymap.duckdb", description="DuckDB file of the store, or ':memory:'.")
    currency: str = Field("USD", description="Currency of values and spend (ISO 4217).")
    timezone: str = Field("UTC", description="Time zone of timestamps that carry no offset.")
    channels: ChannelConfig = Field(default_factory=ChannelConfig)
    journeys: JourneyConfig = Field(default_factory=JourneyConfig)
    milestones: MilestoneConfig = Field(default_factory=MilestoneConfig)
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    spend: SpendConfig = Field(default_factory=SpendConfig)
    collector: CollectorConfig = Field(default_factory=CollectorConfig)
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    stages: Annotated[list[StageConfig], AfterValidator(check_stage_rules)] = Field(
        default_factory=default_stages,
        description="Journey stages in journey order; an entity only moves forward.",
    )
    coverage: CoverageConfig = Field(default_factory=CoverageConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    recommendations: RecommendationConfig = Field(default_factory=RecommendationConfig)

    @model_validator(mode="after")
    def _check_coverage_stages(self) -> Config:
        names = [stage.name for stage in self.stages]
        if "coverage" not in self.model_fields_set:
            # The built-in naming rules follow the default stages; with other stages, keep
            # the rules whose stage exists. The model is frozen, hence object.__setattr__.
            kept = [rule for rule in self.coverage.campaign_stages if rule.stage in names]
            object.__setattr__(self, "coverage", CoverageConfig(campaign_stages=kept))
            return self
        for index, rule in enumerate(self.coverage.campaign_stages):
            if rule.stage not in names:
                close = difflib.get_close_matches(rule.stage, names, n=1)
                suggestion = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"coverage.campaign_stages[{index}].stage {rule.stage!r} is not a "
                    f"configured stage; {suggestion}stages: {', '.join(names)}"
                )
        return self

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
            ) from exc
        return value


def as_list(value: str | list[str] | None) -> list[str]:
    """Return a condition value as a list of strings."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a YAML configuration file.

    With ``path`` None, ``journeymap.yaml`` (or ``.yml``) in the working directory is read when
    it exists, and the defaults are used otherwise.

    Raises:
        ConfigError: the file is missing, is not YAML, or contains an invalid key or value.
    """
    if path is None:
        found = [Path(name) for name in CONFIG_FILE_NAMES if Path(name).is_file()]
        if not found:
            return Config()
        path = found[0]
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            "configuration file not found",
            source=str(path),
            hint="Check the path, or omit --config to use the defaults",
        )
    try:
        with path.open(encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(exc), source=str(path), hint="Fix the YAML syntax") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "not UTF-8 text", source=str(path), hint="Save the file as UTF-8"
        ) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping of keys", source=str(path))
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], *, source: str = "configuration") -> Config:
    """Validate a configuration mapping, raising :class:`ConfigError` on the first problem."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        hint = None
        if first["type"] == "extra_forbidden":
            message = "unknown key"
            hint = _suggest_key(first["loc"])
        raise ConfigError(message, source=source, location=location, hint=hint) from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Return a one-line description of a YAML syntax error with its line and column."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"not valid YAML: {problem}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _suggest_key(loc: tuple[int | str, ...]) -> str:
    """Name the known keys nearest to an unknown key at ``loc``."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        nested = _model_in(annotation)
        if nested is None:
            break
        model = nested
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    suggestion = f"Did you mean {close[0]}? " if close else ""
    return f"{suggestion}Known keys here: {', '.join(known)}"


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
