"""The canonical tables: the contract between the pipeline's steps.

Raw tables are written by importers and the collector; derived tables (``journeys``,
``journey_touches``, ``credits``) are rebuilt from them. Timestamps are UTC; money is a
float64 amount in ``currency``; ``seq`` is the store-wide arrival order of a row, which breaks
ties between rows with the same timestamp.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

TS = dt.Timestamp(timezone="UTC", scale=6)
STR = dt.string
F64 = dt.float64
I64 = dt.int64
BOOL = dt.boolean

RAW_TABLES: dict[str, ibis.Schema] = {
    # One row per import: what was read, when, and the range of seq numbers it received.
    "imports": ibis.schema(
        {
            "import_id": STR,
            "kind": STR,
            "file": STR,
            "sha256": STR,
            "rows": I64,
            "seq_start": I64,
            "seq_end": I64,
            "imported_at": TS,
            "package_version": STR,
        }
    ),
    # One tracked message (collector, Snowplow). JSON objects are kept as strings.
    # ``source`` is the collector source (dedup is by source and message_id); ``previous_id``
    # is the old id of an alias call; ``email_hash`` is the SHA-256 of the trimmed, lowercased
    # ``traits.email`` and ``email_domain`` its domain, so that the raw address is not needed.
    "events": ibis.schema(
        {
            "message_id": STR,
            "seq": I64,
            "source": STR,
            "type": STR,
            "event": STR,
            "anonymous_id": STR,
            "user_id": STR,
            "group_id": STR,
            "previous_id": STR,
            "email_hash": STR,
            "email_domain": STR,
            "session_id": STR,
            "timestamp": TS,
            "original_timestamp": TS,
            "sent_at": TS,
            "received_at": TS,
            "page_url": STR,
            "page_host": STR,
            "referrer_host": STR,
            "utm_source": STR,
            "utm_medium": STR,
            "utm_campaign": STR,
            "utm_content": STR,
            "utm_term": STR,
            "click_id": STR,
            "click_platform": STR,
            "revenue": F64,
            "user_agent": STR,
            "context": STR,
            "properties": STR,
            "traits": STR,
            "import_id": STR,
        }
    ),
    # One observed link between two identifiers.
    "identity_edges": ibis.schema(
        {
            "from_id": STR,
            "from_kind": STR,
            "to_id": STR,
            "to_kind": STR,
            "observed_at": TS,
            "source": STR,
            "import_id": STR,
        }
    ),
    # One hashed identifier (or raw click id or cookie) that an ad platform can match a
    # conversion on, seen with an identifier of kind ``id_kind`` (``person`` for imported rows,
    # ``anonymous_id``, ``user_id`` or ``email_hash`` for collected events). ``key`` is one of
    # the names in ``journeymap.common.identifiers``; raw emails and phones are never stored.
    "match_keys": ibis.schema(
        {
            "id": STR,
            "id_kind": STR,
            "key": STR,
            "value": STR,
            "observed_at": TS,
            "source": STR,
            "import_id": STR,
        }
    ),
    "people": ibis.schema(
        {
            "person_id": STR,
            "account_id": STR,
            "email_hash": STR,
            "domain": STR,
            "title": STR,
            "first_seen": TS,
            "last_seen": TS,
            "import_id": STR,
        }
    ),
    # One company. ``churned_at`` is when a customer account stopped being a customer
    # (cancelled), null when it did not or when the input gives no churn dates.
    "accounts": ibis.schema(
        {
            "account_id": STR,
            "name": STR,
            "domain": STR,
            "industry": STR,
            "employees": I64,
            "region": STR,
            "plan": STR,
            "churned_at": TS,
            "first_seen": TS,
            "last_seen": TS,
            "import_id": STR,
        }
    ),
    # One marketing or sales touch. ``channel`` is set only when the input named the channel;
    # otherwise the channel rules classify source, medium, campaign and click id.
    "touchpoints": ibis.schema(
        {
            "touchpoint_id": STR,
            "seq": I64,
            "person_id": STR,
            "account_id": STR,
            "occurred_at": TS,
            "channel": STR,
            "source": STR,
            "medium": STR,
            "campaign": STR,
            "content": STR,
            "term": STR,
            "ad_id": STR,
            "click_id": STR,
            "click_platform": STR,
            "referrer_host": STR,
            "touch_type": STR,
            "import_id": STR,
        }
    ),
    # One goal reached. A conversion flagged on a touch row shares that row's seq, and sorts
    # after the touch, so that the touch belongs to its journey.
    "conversions": ibis.schema(
        {
            "conversion_id": STR,
            "seq": I64,
            "person_id": STR,
            "account_id": STR,
            "occurred_at": TS,
            "kind": STR,
            "value": F64,
            "currency": STR,
            "deal_id": STR,
            "import_id": STR,
        }
    ),
    # Journeys already aggregated by path (ChannelAttribution layout), one row per path.
    "path_aggregates": ibis.schema(
        {
            "path_id": I64,
            "path": STR,
            "separator": STR,
            "conversions": F64,
            "value": F64,
            "nulls": F64,
            "import_id": STR,
        }
    ),
    "deals": ibis.schema(
        {
            "deal_id": STR,
            "account_id": STR,
            "name": STR,
            "amount": F64,
            "currency": STR,
            "pipeline": STR,
            "stage": STR,
            "owner": STR,
            "is_won": BOOL,
            "is_closed": BOOL,
            "lost_reason": STR,
            "created_at": TS,
            "closed_at": TS,
            "import_id": STR,
        }
    ),
    "deal_stages": ibis.schema(
        {
            "deal_id": STR,
            "pipeline": STR,
            "stage": STR,
            "entered_at": TS,
            "exited_at": TS,
            "import_id": STR,
        }
    ),
    # Spend by platform, campaign, ad and day. ``date`` is null for exports without dates.
    "ad_spend": ibis.schema(
        {
            "date": dt.date,
            "platform": STR,
            "campaign_id": STR,
            "campaign": STR,
            "ad_group": STR,
            "ad_id": STR,
            "impressions": I64,
            "clicks": I64,
            "cost": F64,
            "currency": STR,
            "platform_conversions": F64,
            "import_id": STR,
        }
    ),
    # One entry of a CRM contact into a lifecycle stage (HubSpot ``lifecyclestage``:
    # lead, marketingqualifiedlead, salesqualifiedlead, opportunity, customer, ...).
    "lifecycle_stages": ibis.schema(
        {
            "person_id": STR,
            "account_id": STR,
            "stage": STR,
            "entered_at": TS,
            "import_id": STR,
        }
    ),
    "stage_timeline": ibis.schema(
        {
            "entity_kind": STR,
            "entity_id": STR,
            "stage": STR,
            "entered_at": TS,
            "exited_at": TS,
            "reason": STR,
            "exit_reason": STR,
        }
    ),
    # The conversion sync's outbox: one conversion to send to one destination. ``event_id``
    # is the platform's dedup key and never changes; ``keys`` is a JSON object of hashed
    # match keys and click ids (never a raw email or phone). ``status`` is queued, sending,
    # sent, matched, rejected, skipped or failed; a ``sending`` row is claimed until
    # ``lease_until``, and ``send_alone`` rows go one per request after a partial failure.
    "sync_outbox": ibis.schema(
        {
            "event_id": STR,
            "destination": STR,
            "platform": STR,
            "conversion_id": STR,
            "kind": STR,
            "action": STR,
            "occurred_at": TS,
            "value": F64,
            "currency": STR,
            "keys": STR,
            "clicked_at": TS,
            "status": STR,
            "attempts": I64,
            "next_attempt_at": TS,
            "lease_until": TS,
            "send_alone": BOOL,
            "last_code": STR,
            "last_message": STR,
            "created_at": TS,
            "updated_at": TS,
            "sent_at": TS,
        }
    ),
    # One row of one HTTP request of the conversion sync: what the platform answered for it.
    "sync_attempts": ibis.schema(
        {
            "event_id": STR,
            "attempt": I64,
            "at": TS,
            "http_status": I64,
            "outcome": STR,
            "code": STR,
            "message": STR,
            "duration_ms": F64,
        }
    ),
}

DERIVED_TABLES: dict[str, ibis.Schema] = {
    # The person of every anonymous id, user id and email hash of the collected events.
    "identities": ibis.schema({"id": STR, "kind": STR, "person_id": STR}),
    # People, accounts, touches and conversions derived from the collected events.
    "collected_people": RAW_TABLES["people"],
    "collected_accounts": RAW_TABLES["accounts"],
    "collected_touchpoints": RAW_TABLES["touchpoints"],
    "collected_conversions": RAW_TABLES["conversions"],
    # One journey: the touches of one entity that lead to one conversion (or to none).
    # ``conversions`` and ``nulls`` count the journeys a row stands for: 1 and 0 for a
    # conversion, 0 and 1 for a non-converting journey, any counts for an aggregated path.
    "journeys": ibis.schema(
        {
            "journey_id": STR,
            "entity_id": STR,
            "kind": STR,
            "conversion_id": STR,
            "converted_at": TS,
            "conversions": F64,
            "value": F64,
            "nulls": F64,
            "n_touches": I64,
        }
    ),
    # One touch of a journey, after the path transform; ``position`` counts from 1.
    "journey_touches": ibis.schema(
        {
            "journey_id": STR,
            "position": I64,
            "n_touches": I64,
            "touchpoint_id": STR,
            "occurred_at": TS,
            "days_before": F64,
            "channel": STR,
            "source_medium": STR,
            "campaign": STR,
            "ad_id": STR,
            "repeats": I64,
            "is_lead_touch": BOOL,
            "is_opportunity_touch": BOOL,
            "is_won_touch": BOOL,
        }
    ),
    # One journey build: when, by which package version, with which journey settings.
    "builds": ibis.schema(
        {
            "created_at": TS,
            "package_version": STR,
            "settings": STR,
        }
    ),
    # One attribution run: when, by which package version, with which settings and models.
    "runs": ibis.schema(
        {
            "run_id": STR,
            "created_at": TS,
            "package_version": STR,
            "settings": STR,
            "models": STR,
        }
    ),
    # One touch's share of one journey's conversions under one model. ``credit`` is in
    # conversions (the share times the journey's conversion count), ``value_credit`` in currency.
    "credits": ibis.schema(
        {
            "run_id": STR,
            "model": STR,
            "journey_id": STR,
            "conversion_id": STR,
            "kind": STR,
            "touchpoint_id": STR,
            "position": I64,
            "channel": STR,
            "source_medium": STR,
            "campaign": STR,
            "ad_id": STR,
            "credit": F64,
            "value_credit": F64,
        }
    ),
}

ALL_TABLES: dict[str, ibis.Schema] = {**RAW_TABLES, **DERIVED_TABLES}

UNATTRIBUTED = "(unattributed)"
"""Channel, campaign and ad label of the credit of a conversion that has no eligible touch."""

NOT_SET = "(not set)"
"""Label of a campaign, ad or source/medium that the input does not give."""
