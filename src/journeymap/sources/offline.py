"""Import offline touches (webinars, events, sales calls and emails, review-site visits, and
self-reported sources) as touchpoints.

Input: one row per touch, from a webinar attendee export, an event badge-scan list, a CRM
activity log (HubSpot engagements, Salesforce tasks), a review site's buyer-intent export
(G2, Capterra, TrustRadius) or a form's "how did you hear about us" answers. Column names of
these exports are recognised (``contact_id``, ``email``, ``join_time``, ``webinar_name``,
``activity_type``, ``company_domain``, ``how_did_you_hear`` ...), and ``--map FIELD=COLUMN``
names any other column.

Every row needs a time and someone to whom the touch happened: a person id, an email, or
(for account-level intent data) an account id or company domain. An email is hashed at once
(SHA-256 of the trimmed, lowercased address) and only the hash is used: the touch goes to
the person whose ``people.email_hash`` it is, or else to a person whose id is ``email:``
and the hash, so that the touches of one address stay together. A row with only an account
or domain becomes a touch of the account, with the person id ``account:`` and the account.

``touch_type`` comes from the file's type column (``activity_type``, ``type``,
``touch_type``) when it has one, and otherwise from ``--type``; the usual words of the
exports are mapped onto the channel rules' touch types (``CALL`` and ``sdr call`` to
``call``, ``EMAIL`` to ``sales_email``, ``MEETING`` to ``meeting``). A self-reported answer
in free text becomes a source and medium that the channel rules classify (``"Google"`` to
``google / organic``, ``"a colleague"`` to ``word_of_mouth / referral``); answers that no
keyword matches keep the answer as their source.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from journeymap.common.errors import ConfigError, InputError
from journeymap.common.identifiers import normal_email, sha256_hex
from journeymap.common.timeutil import parse_timestamps
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.readers import read_input
from journeymap.sources.values import text
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

OFFLINE_ALIASES: dict[str, list[str]] = {
    "person_id": ["person_id", "contact_id", "contactid", "hs_object_id", "user_id", "whoid"],
    "email": ["email", "email_address", "attendee_email", "contact_email", "work_email"],
    "account_id": ["account_id", "company_id", "accountid", "companyid", "account"],
    "domain": ["company_domain", "domain", "website", "company_website"],
    "occurred_at": [
        "occurred_at",
        "timestamp",
        "join_time",
        "attended_at",
        "registration_time",
        "registered_at",
        "activity_date",
        "activitydate",
        "hs_timestamp",
        "call_date",
        "visit_date",
        "scanned_at",
        "answered_at",
        "submitted_at",
        "created_at",
        "createddate",
        "date",
    ],
    "touch_type": ["touch_type", "activity_type", "type", "engagement_type", "tasksubtype"],
    "campaign": [
        "campaign",
        "webinar_name",
        "webinar",
        "topic",
        "event_name",
        "event",
        "subject",
        "campaign_name",
    ],
    "source": ["source", "site", "review_site", "platform", "utm_source"],
    "content": ["content", "page", "category", "status", "attended", "outcome"],
    "answer": [
        "how_did_you_hear",
        "how_did_you_hear_about_us",
        "hdyhau",
        "self_reported_source",
        "heard_about_us",
        "answer",
        "referral_source",
    ],
    "touchpoint_id": ["touchpoint_id", "activity_id", "engagement_id", "id", "record_id"],
}

TOUCH_TYPES: Final = (
    "webinar",
    "event",
    "call",
    "sales_email",
    "meeting",
    "review_site",
    "self_reported",
)
"""Touch types of offline touches, as the channel rules know them."""

TYPE_WORDS: Final[dict[str, str]] = {
    "webinar": "webinar",
    "webinar_attendee": "webinar",
    "event": "event",
    "conference": "event",
    "trade_show": "event",
    "tradeshow": "event",
    "booth": "event",
    "meetup": "event",
    "call": "call",
    "sdr_call": "call",
    "phone": "call",
    "phone_call": "call",
    "email": "sales_email",
    "sdr_email": "sales_email",
    "sales_email": "sales_email",
    "incoming_email": "sales_email",
    "meeting": "meeting",
    "demo": "meeting",
    "review_site": "review_site",
    "review": "review_site",
    "intent": "review_site",
    "self_reported": "self_reported",
    "survey": "self_reported",
    "form": "self_reported",
}
"""Words of the exports' type columns, normalised, and the touch type each stands for."""

REVIEW_SITE_SOURCES: Final = (
    "g2",
    "capterra",
    "trustradius",
    "gartner",
    "getapp",
    "softwareadvice",
    "peerspot",
)

# Keyword in a self-reported answer -> (source, medium). The first match in this order wins,
# so the specific words ("linkedin ad") come before the general ones ("linkedin").
ANSWER_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    (r"\b(google|bing) ?ads?\b|\bppc\b|\bsearch ad", "google", "cpc"),
    (r"\blinkedin ?ads?\b|\bsponsored\b", "linkedin", "paid_social"),
    (r"\b(facebook|instagram|meta) ?ads?\b", "facebook", "paid_social"),
    (r"\bpodcast", "podcast", "audio"),
    (r"\bg2\b|\bcapterra\b|\btrust ?radius\b|\bgartner\b|\breview", "g2", "referral"),
    (r"\bwebinar", "webinar", "webinar"),
    (r"\bconference|\bevent\b|\btrade ?show|\bbooth|\bmeetup", "event", "event"),
    (r"\bgoogle\b|\bbing\b|\bsearch", "google", "organic"),
    (r"\blinkedin\b", "linkedin", "social"),
    (r"\btwitter\b|\bx\.com\b|\breddit\b|\bfacebook\b|\byoutube\b", "social", "social"),
    (r"\bnewsletter|\bemail\b", "newsletter", "email"),
    (
        r"\bfriend|\bcolleague|\bword of mouth|\brecommend|\breferr|\bpartner",
        "word_of_mouth",
        "referral",
    ),
    (r"\bblog\b|\barticle\b|\bchatgpt\b|\bai\b", "content", "referral"),
    (r"\bsales\b|\bsdr\b|\breached out|\bcold", "sales", "outbound"),
)


def import_offline(
    store: Store,
    path: str | Path,
    *,
    touch_type: str | None = None,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    timezone: str = "UTC",
) -> ImportResult:
    """Import a file of offline touches into ``touchpoints``, in one transaction.

    ``touch_type`` (one of :data:`TOUCH_TYPES`) applies to rows whose file gives no type.
    Touch ids that the file does not give are derived from the import id and the row number.

    Raises:
        ConfigError: ``touch_type`` is not a known offline touch type.
        InputError: the file lacks a time column, or has none of the person, email,
            account and domain columns. Or a row lacks its time, names no one, or has no
            type while ``touch_type`` is None.
        AlreadyImportedError: the file's bytes were imported before.
    """
    if touch_type is not None and touch_type not in TOUCH_TYPES:
        raise ConfigError(
            f"unknown offline touch type {touch_type!r}",
            location="--type",
            hint=f"Use one of: {', '.join(TOUCH_TYPES)}",
        )
    source = read_input(path, separator=separator)
    import_id = check_not_imported(store, kind="offline", sha256=source.sha256, file=source.path)
    known_people = _people_by_email_hash(store)
    warnings: list[str] = []
    touches = read_offline_frame(
        source.frame,
        file=source.path,
        touch_type=touch_type,
        mapping=mapping,
        timezone=timezone,
        known_people=known_people,
        warnings=warnings,
    )

    seq_start = store.next_seq()
    row_numbers = touches.pop("row")
    touches["seq"] = row_numbers + seq_start
    generated = import_id + ":o" + (row_numbers + 1).astype(str)
    touches["touchpoint_id"] = touches["touchpoint_id"].fillna(generated.astype("string"))
    return write_import(
        store,
        import_id=import_id,
        kind="offline",
        file=source.path,
        sha256=source.sha256,
        seq_start=seq_start,
        tables={"touchpoints": touches},
        warnings=warnings,
    )


def read_offline_frame(
    frame: pd.DataFrame,
    *,
    file: str,
    touch_type: str | None = None,
    mapping: Mapping[str, str] | None = None,
    timezone: str = "UTC",
    known_people: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> pd.DataFrame:
    """Turn offline touch rows into canonical touchpoint rows.

    ``known_people`` maps email hashes to person ids. An email that is not an address is
    left out (the row falls back to its other ids), and ``warnings`` gets one line that
    counts such cells and names the first row. The result carries a ``row`` column
    (0-based input row) in place of ``seq`` and ``import_id``.

    Raises:
        InputError: as :func:`import_offline` describes.
    """
    columns = ColumnResolver(
        file=file, columns=list(frame.columns), aliases=OFFLINE_ALIASES, mapping=mapping
    )
    time_column = columns.require("occurred_at", why="when the touch happened")
    if not any(columns.get(field) for field in ("person_id", "email", "account_id", "domain")):
        raise InputError(
            "no column says who the touch happened to; accepted names: "
            + ", ".join(
                OFFLINE_ALIASES["person_id"][:3]
                + OFFLINE_ALIASES["email"][:2]
                + OFFLINE_ALIASES["account_id"][:2]
                + OFFLINE_ALIASES["domain"][:1]
            ),
            file=file,
            column="person_id",
            hint="Map one with --map person_id=COLUMN, --map email=COLUMN or --map domain=COLUMN",
        )

    def column_text(field: str) -> pd.Series:
        name = columns.get(field)
        return text(frame[name]) if name else pd.Series(pd.NA, index=frame.index, dtype="string")

    occurred_at = parse_timestamps(
        frame[time_column], file=file, column=time_column, timezone=timezone
    )
    email_hash, bad = _email_hashes(column_text("email"))
    if bad.any() and warnings is not None:
        warnings.append(
            f"{int(bad.sum()):,} cells of column {columns.get('email')!r} are not email "
            f"addresses (first at row {_first(bad) + 1}); those rows are matched by their "
            "other ids"
        )
    people = known_people or {}
    domain = column_text("domain").str.lower().str.replace(r"^https?://(www\.)?", "", regex=True)
    account = column_text("account_id").fillna(domain.str.rstrip("/"))
    person = column_text("person_id")
    person = person.fillna(email_hash.map(people).astype("string"))
    person = person.fillna(("email:" + email_hash).astype("string"))
    person = person.fillna(("account:" + account).astype("string"))
    if person.isna().any():
        row = _first(person.isna())
        raise InputError(
            "the touch names no person, email, account or domain",
            file=file,
            row=row + 1,
            hint="Fill in who the touch happened to, or drop the row",
        )

    types = _touch_types(column_text("touch_type"), file=file, column=columns.get("touch_type"))
    if touch_type is not None:
        types = types.fillna(touch_type)
    if types.isna().any():
        raise InputError(
            "the touch has no type",
            file=file,
            row=_first(types.isna()) + 1,
            column=columns.get("touch_type") or "touch_type",
            hint=f"Pass --type with one of: {', '.join(TOUCH_TYPES)}",
        )

    source = column_text("source").str.lower()
    medium = pd.Series(pd.NA, index=frame.index, dtype="string")
    review = types == "review_site"
    medium[review] = "referral"
    source[review] = source[review].fillna("g2")
    answers = column_text("answer")
    reported = types == "self_reported"
    if reported.any():
        answer_source, answer_medium = _answer_channels(answers[reported])
        source[reported] = source[reported].fillna(answer_source)
        medium[reported] = answer_medium

    touches = pd.DataFrame(index=frame.index)
    touches["row"] = np.arange(len(frame), dtype="int64")
    touches["touchpoint_id"] = column_text("touchpoint_id")
    touches["person_id"] = person
    touches["account_id"] = account
    touches["occurred_at"] = occurred_at
    touches["channel"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touches["source"] = source
    touches["medium"] = medium
    touches["campaign"] = column_text("campaign")
    touches["content"] = column_text("content")
    touches["term"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touches["ad_id"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touches["click_id"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touches["click_platform"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touches["referrer_host"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touches["touch_type"] = types
    return touches.reset_index(drop=True)


def answer_channel(answer: str) -> tuple[str, str]:
    """Return the source and medium that a self-reported answer names.

    The first keyword rule of :data:`ANSWER_RULES` that matches the answer (any case) wins;
    an answer that none matches is its own source, trimmed and lowercased, with medium
    ``self_reported``.
    """
    lowered = answer.strip().lower()
    for pattern, source, medium in ANSWER_RULES:
        if re.search(pattern, lowered):
            return source, medium
    return lowered, "self_reported"


def _answer_channels(answers: pd.Series) -> tuple[pd.Series, pd.Series]:
    pairs = [answer_channel(a) if isinstance(a, str) else (pd.NA, pd.NA) for a in answers]
    sources = pd.Series([pair[0] for pair in pairs], index=answers.index, dtype="string")
    mediums = pd.Series([pair[1] for pair in pairs], index=answers.index, dtype="string")
    return sources, mediums


def _touch_types(values: pd.Series, *, file: str, column: str | None) -> pd.Series:
    """Map the words of a type column onto touch types; an unknown word is an error."""
    words = values.str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    types = words.map(TYPE_WORDS).astype("string")
    unknown = words.notna() & types.isna()
    if unknown.any():
        row = _first(unknown)
        raise InputError(
            f"unknown touch type {values.iloc[row]!r}",
            file=file,
            row=row + 1,
            column=column,
            value=str(values.iloc[row]),
            hint=f"Use one of: {', '.join(sorted(set(TYPE_WORDS)))}",
        )
    return types


def _email_hashes(emails: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return the SHA-256 of each trimmed, lowercased email, and a mask of invalid cells.

    An invalid cell (not an address) has no hash; the raw text is never kept or reported.
    """
    hashed: list[object] = []
    bad: list[bool] = []
    for value in emails:
        if not isinstance(value, str):
            hashed.append(pd.NA)
            bad.append(False)
            continue
        try:
            hashed.append(sha256_hex(normal_email(value)))
            bad.append(False)
        except ValueError:
            hashed.append(pd.NA)
            bad.append(True)
    return (
        pd.Series(hashed, index=emails.index, dtype="string"),
        pd.Series(bad, index=emails.index, dtype=bool),
    )


def _people_by_email_hash(store: Store) -> dict[str, str]:
    """Return the person id of each email hash in ``people`` (the first id of a repeated hash)."""
    people = store.table("people")
    rows = (
        people.filter(people.email_hash.notnull())
        .group_by("email_hash")
        .aggregate(person_id=people.person_id.min())
        .to_pandas()
    )
    return dict(zip(rows.email_hash, rows.person_id, strict=True))


def _first(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])
