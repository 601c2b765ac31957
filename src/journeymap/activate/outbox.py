"""Rules -> outbox: one row per conversion and destination, each with a stable event id.

For every configured destination and every conversion whose kind is one of the
destination's ``actions``, :func:`queue_conversions` adds one ``sync_outbox`` row:

* ``event_id``: the first 32 hex digits of SHA-256(``<destination> 0x1F <conversion_id>``).
  It is the platform's dedup key, so it must not change between runs, retries or restarts.
  A conversion id that occurs twice in the store (an import repeated under another file
  name, say) gives one row.
* ``value`` and ``currency`` by the destination's ``value`` rule. ``amount`` sends the
  conversion's value (else the amount of its deal) in its own currency. ``fixed`` and
  ``expected`` send ``fixed_value`` or ``expected_values[kind]`` in the destination's
  currency (else the configured currency). ``none`` sends no value.
* ``keys``: a JSON object of the match keys that the destination's platform uses: the
  person's hashed emails and phones and cookies (the latest of each key observed up to the
  conversion) and the platform's click id from the person's latest click on that platform
  at or before the conversion (``clicked_at`` is that click's time). Meta gets the click as
  an ``fbc`` value ``fb.1.<click time in ms>.<fbclid>``.

A conversion already older than the platform's window when it is queued gets a
``skipped`` row, so that ``journeymap sync status`` accounts for it. The rows hold hashes
and click ids only: raw emails and phones never reach the store.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from journeymap.activate.base import Adapter
from journeymap.common.config import Config, SyncDestination
from journeymap.common.errors import StoreError
from journeymap.common.identifiers import EMAIL, EMAIL_GOOGLE, PHONE_DIGITS, PHONE_E164
from journeymap.common.timeutil import utc_now
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

log = logging.getLogger("journeymap.activate")

AdapterLookup = Callable[[str], Adapter]
"""A platform name -> adapter lookup, such as ``journeymap.activate.adapters.adapter_for``."""

EVENT_ID_DIGITS = 32
"""Hex digits of an event id (128 bits): short enough for every platform's dedup field."""

PLATFORM_KEYS: dict[str, tuple[str, ...]] = {
    "meta": (EMAIL, PHONE_DIGITS, "fbc", "fbp", "lead_id"),
    "google": (EMAIL_GOOGLE, PHONE_E164, "gclid", "gbraid", "wbraid"),
    "google_data_manager": (EMAIL_GOOGLE, PHONE_E164, "gclid", "gbraid", "wbraid"),
    "linkedin": (EMAIL, "li_fat_id"),
    "microsoft": (EMAIL, PHONE_E164, "msclkid"),
}
"""Match keys that each platform matches on; other keys stay out of its rows."""

CLICK_PLATFORMS: dict[str, tuple[str, ...]] = {
    "meta": ("meta", "facebook", "instagram"),
    "google": ("google_ads", "google"),
    "google_data_manager": ("google_ads", "google"),
    "linkedin": ("linkedin_ads", "linkedin"),
    "microsoft": ("microsoft_ads", "microsoft", "bing"),
}
"""``click_platform`` values of the touches whose click id goes to each platform."""

CLICK_KEY = {
    "meta": "fbc",
    "google": "gclid",
    "google_data_manager": "gclid",
    "linkedin": "li_fat_id",
    "microsoft": "msclkid",
}
"""Match key of each platform's click id."""

OUTBOX_COLUMNS = tuple(RAW_TABLES["sync_outbox"].names)


@dataclass(frozen=True)
class QueueResult:
    """What one :func:`queue_conversions` call added, by destination.

    ``queued`` counts new rows to send and ``skipped`` new rows outside the platform's
    window, and ``skipped_codes`` counts those by code. Conversions already in the outbox
    count in none. ``rows`` contains the new rows (the columns of ``sync_outbox``), written or,
    with ``write=False``, only computed. ``warnings`` names each ``actions`` kind that no
    conversion in the store has, with the kinds there are.
    """

    queued: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: pa.Table | None = None
    skipped_codes: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Return the number of new rows."""
        return sum(self.queued.values()) + sum(self.skipped.values())


def event_id(destination: str, conversion_id: str) -> str:
    """Return the stable event id of one conversion sent to one destination.

    The same computation runs in the store (:func:`candidates`); this one is for tests and
    for callers that look a row up.
    """
    import hashlib

    digest = hashlib.sha256(f"{destination}\x1f{conversion_id}".encode()).hexdigest()
    return digest[:EVENT_ID_DIGITS]


def require_duckdb(store: Store) -> None:
    """Raise unless ``store`` is a DuckDB store, the only one with the transactions the sync needs.

    Raises:
        StoreError: the store runs on another backend.
    """
    if store.engine != "duckdb":
        raise StoreError(
            f"conversion sync needs a DuckDB store; {store.location} runs on {store.engine}",
            hint="Run `journeymap sync` against the DuckDB store file",
        )


def queue_conversions(
    store: Store,
    config: Config,
    *,
    now: datetime | None = None,
    adapters: AdapterLookup | None = None,
    write: bool = True,
) -> QueueResult:
    """Add an outbox row for every conversion and destination that has none yet.

    All new rows are inserted in one transaction, and only event ids that are not in the
    outbox yet, so a re-run, or two runs at once, never create a second row for the same
    conversion and destination. With ``write=False`` nothing is written and the result
    contains the rows that would be added.

    Raises:
        StoreError: the store is not a DuckDB store.
    """
    require_duckdb(store)
    moment = now or utc_now()
    lookup = adapters or default_adapters()
    frames: list[pa.Table] = []
    queued: dict[str, int] = {}
    skipped: dict[str, int] = {}
    skipped_codes: dict[str, dict[str, int]] = {}
    warnings = unused_kind_warnings(store, config)
    for warning in warnings:
        log.warning("%s", warning)

    for name, destination in config.sync.destinations.items():
        window = platform_window(destination, lookup)
        rows = outbox_rows(store, config, name, destination, now=moment, window=window)
        frames.append(rows)
        statuses = rows.column("status").to_pylist()
        queued[name] = statuses.count("queued")
        skipped[name] = statuses.count("skipped")
        codes = [
            code or "-"
            for code, status in zip(rows.column("last_code").to_pylist(), statuses, strict=True)
            if status == "skipped"
        ]
        skipped_codes[name] = {code: codes.count(code) for code in sorted(set(codes))}

    schema = RAW_TABLES["sync_outbox"].to_pyarrow()
    table = pa.concat_tables(frames) if frames else schema.empty_table()
    if write and table.num_rows:
        inserted = insert_new(store, table)
        if inserted != table.num_rows:
            # Another run added some of the same rows between the read and the insert.
            log.info(
                "%d of %d new outbox rows were already queued",
                table.num_rows - inserted,
                table.num_rows,
            )
    for name in queued:
        if queued[name] or skipped[name]:
            log.info(
                "queued %d conversions for %s (%d outside the window, skipped)",
                queued[name],
                name,
                skipped[name],
            )
    return QueueResult(
        queued=queued,
        skipped=skipped,
        rows=table,
        skipped_codes=skipped_codes,
        warnings=warnings,
    )


def unused_kind_warnings(store: Store, config: Config) -> list[str]:
    """Return one warning per destination ``actions`` kind that no conversion in the store
    has (kinds match in any case), naming the kinds there are."""
    conversions = all_conversions(store)
    present = conversions.select(kind=conversions.kind.strip().lower()).distinct().to_pandas()
    kinds = sorted(str(kind) for kind in present["kind"].dropna())
    warnings = []
    for name, destination in config.sync.destinations.items():
        for kind in destination.actions:
            if kind.strip().lower() not in kinds:
                warnings.append(
                    f"destination {name!r}: no conversion has the kind {kind!r} of its "
                    f"actions; the store's kinds are {', '.join(kinds) or 'none'}"
                )
    return warnings


def default_adapters() -> AdapterLookup:
    """Return the adapter registry of the package."""
    from journeymap.activate.adapters import adapter_for

    lookup: AdapterLookup = adapter_for
    return lookup


def platform_window(destination: SyncDestination, adapters: AdapterLookup) -> timedelta:
    """Return the oldest conversion age that the destination accepts."""
    if destination.window_days is not None:
        return timedelta(days=destination.window_days)
    return adapters(destination.platform).window


def insert_new(store: Store, rows: pa.Table) -> int:
    """Insert the rows whose event id is not in the outbox yet, in one transaction.

    Returns the number of rows inserted.
    """
    raw = store.con.con
    view = f"_outbox_{uuid.uuid4().hex}"
    columns = ", ".join(f'"{name}"' for name in OUTBOX_COLUMNS)
    raw.register(view, rows)
    try:
        with store.transaction():
            result = raw.execute(
                f'INSERT INTO sync_outbox ({columns}) SELECT {columns} FROM "{view}" AS new '
                "WHERE NOT EXISTS (SELECT 1 FROM sync_outbox AS old "
                "WHERE old.event_id = new.event_id)"
            ).fetchone()
    finally:
        raw.unregister(view)
    return int(result[0]) if result else 0


def outbox_rows(
    store: Store,
    config: Config,
    name: str,
    destination: SyncDestination,
    *,
    now: datetime,
    window: timedelta,
) -> pa.Table:
    """Return the new outbox rows of one destination, as an Arrow table of ``sync_outbox``."""
    found = candidates(store, name, destination).to_pandas()
    schema = RAW_TABLES["sync_outbox"].to_pyarrow()
    if found.empty:
        return schema.empty_table()

    keys = latest_keys(store, found, destination.platform)
    oldest = now - window
    records: list[dict[str, Any]] = []
    for row in found.itertuples(index=False):
        occurred_at = _as_utc(row.occurred_at)
        value, currency = _value(row, destination, config)
        row_keys, clicked_at = keys.get(row.conversion_id, ({}, None))
        outside = occurred_at < oldest
        age_days = (now - occurred_at).total_seconds() / 86400
        window_days = window.total_seconds() / 86400
        records.append(
            {
                "event_id": row.event_id,
                "destination": name,
                "platform": destination.platform,
                "conversion_id": row.conversion_id,
                "kind": row.kind,
                "action": row.action,
                "occurred_at": occurred_at,
                "value": value,
                "currency": currency,
                "keys": json.dumps(row_keys, sort_keys=True),
                "clicked_at": clicked_at,
                "status": "skipped" if outside else "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "send_alone": False,
                "last_code": "outside_window" if outside else None,
                "last_message": (
                    f"the conversion was {age_days:.1f} days old when queued; "
                    f"{destination.platform} accepts {window_days:g} days"
                    if outside
                    else None
                ),
                "created_at": now,
                "updated_at": now,
                "sent_at": None,
            }
        )
    return pa.Table.from_pylist(records, schema=schema)


def all_conversions(store: Store) -> ibis.Table:
    """Return the imported and the collected conversions, one row per conversion id.

    A conversion id that occurs more than once keeps its first row (lowest ``seq``).
    """
    columns = [
        "conversion_id",
        "seq",
        "person_id",
        "occurred_at",
        "kind",
        "value",
        "currency",
        "deal_id",
    ]
    tables = [store.table("conversions").select(*columns)]
    if "collected_conversions" in store.con.list_tables():
        tables.append(store.table("collected_conversions").select(*columns))
    union = tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=False)
    union = union.filter(union.conversion_id.notnull() & union.occurred_at.notnull())
    first = ibis.row_number().over(group_by=union.conversion_id, order_by=[union.seq])
    return union.mutate(_first=first).filter(ibis._._first == 0).drop("_first")


def all_touchpoints(store: Store) -> ibis.Table:
    """Return the imported and the collected touchpoints that carry a click id."""
    columns = ["person_id", "occurred_at", "seq", "click_id", "click_platform"]
    tables = [store.table("touchpoints").select(*columns)]
    if "collected_touchpoints" in store.con.list_tables():
        tables.append(store.table("collected_touchpoints").select(*columns))
    union = tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=False)
    return union.filter(union.click_id.notnull() & union.person_id.notnull())


def candidates(store: Store, name: str, destination: SyncDestination) -> ibis.Table:
    """Return the conversions of ``destination``'s kinds that have no outbox row yet.

    Columns: ``event_id``, ``action`` and the conversion's columns, with ``deal_amount`` and
    ``deal_currency`` of its deal (null without one). Kinds match in any case.
    """
    actions = {kind.strip().lower(): action for kind, action in destination.actions.items()}
    conversions = all_conversions(store)
    kind = conversions.kind.strip().lower()
    chosen = conversions.filter(kind.isin(list(actions))).mutate(
        action=kind.substitute(actions),
        event_id=(ibis.literal(name) + "\x1f" + conversions.conversion_id)
        .hexdigest("sha256")
        .substr(0, EVENT_ID_DIGITS),
    )

    outbox = store.table("sync_outbox").select(known=ibis._.event_id)
    fresh = chosen.anti_join(outbox, chosen.event_id == outbox.known)

    deals = store.table("deals")
    deals = deals.select(
        deal_key=deals.deal_id, deal_amount=deals.amount, deal_currency=deals.currency
    ).distinct(on="deal_key", keep="first")
    joined = fresh.left_join(deals, fresh.deal_id == deals.deal_key)
    return joined.drop("deal_key").order_by(["occurred_at", "conversion_id"])


def person_keys(store: Store) -> ibis.Table:
    """Return every person's match keys: ``person_id``, ``key``, ``value``, ``observed_at``.

    Uses :func:`journeymap.identity.match_keys.person_match_keys` (imported and collected
    keys) when the package has it; otherwise the imported keys of people only.
    """
    try:
        from journeymap.identity.match_keys import person_match_keys
    except ImportError:
        table = store.table("match_keys")
        return table.filter(table.id_kind == "person").select(
            person_id=table.id, key=table.key, value=table.value, observed_at=table.observed_at
        )
    result: ibis.Table = person_match_keys(store)
    return result


def latest_keys(
    store: Store, conversions: pd.DataFrame, platform: str
) -> dict[str, tuple[dict[str, str], datetime | None]]:
    """Return each conversion's match keys for ``platform`` and the time of its click.

    ``conversions`` needs ``conversion_id``, ``person_id`` and ``occurred_at``. A key counts
    when it was observed at or before the conversion; of several values the latest wins. The
    platform's click id comes from the person's latest touch on that platform at or before
    the conversion, and replaces a click key of match_keys observed earlier.
    """
    wanted = PLATFORM_KEYS.get(platform, ())
    people = conversions.loc[
        conversions.person_id.notna(), ["conversion_id", "person_id", "occurred_at"]
    ]
    result: dict[str, tuple[dict[str, str], datetime | None]] = {}
    if people.empty:
        return result
    targets = ibis.memtable(people.rename(columns={"person_id": "c_person", "occurred_at": "c_at"}))

    keys = person_keys(store)
    keys = keys.filter(keys.key.isin(list(wanted)) & keys.value.notnull())
    matched = targets.inner_join(
        keys, (targets.c_person == keys.person_id) & (keys.observed_at <= targets.c_at)
    )
    rank = ibis.row_number().over(
        group_by=[matched.conversion_id, matched.key], order_by=[ibis.desc(matched.observed_at)]
    )
    best = (
        matched.mutate(_rank=rank)
        .filter(ibis._._rank == 0)
        .select("conversion_id", "key", "value", "observed_at")
        .to_pandas()
    )
    observed: dict[tuple[str, str], datetime] = {}
    for row in best.itertuples(index=False):
        result.setdefault(row.conversion_id, ({}, None))[0][row.key] = str(row.value)
        observed[(row.conversion_id, row.key)] = _as_utc(row.observed_at)

    for conversion_id, click_id, clicked_at in latest_clicks(targets, store, platform):
        found, _ = result.get(conversion_id, ({}, None))
        key, value = click_key(platform, click_id, clicked_at)
        earlier = observed.get((conversion_id, key))
        if earlier is None or earlier <= clicked_at:
            found[key] = value
            result[conversion_id] = (found, clicked_at)
        else:
            result[conversion_id] = (found, None)
    return result


def latest_clicks(
    targets: ibis.Table, store: Store, platform: str
) -> list[tuple[str, str, datetime]]:
    """Return ``(conversion_id, click_id, clicked_at)`` of each conversion's latest click."""
    touches = all_touchpoints(store)
    touches = touches.filter(touches.click_platform.lower().isin(list(CLICK_PLATFORMS[platform])))
    matched = targets.inner_join(
        touches, (targets.c_person == touches.person_id) & (touches.occurred_at <= targets.c_at)
    )
    rank = ibis.row_number().over(
        group_by=matched.conversion_id,
        order_by=[ibis.desc(matched.occurred_at), ibis.desc(matched.seq)],
    )
    latest = (
        matched.mutate(_rank=rank)
        .filter(ibis._._rank == 0)
        .select("conversion_id", "click_id", "occurred_at")
        .to_pandas()
    )
    return [
        (row.conversion_id, str(row.click_id), _as_utc(row.occurred_at))
        for row in latest.itertuples(index=False)
    ]


def click_key(platform: str, click_id: str, clicked_at: datetime) -> tuple[str, str]:
    """Return the match key and value of a click id for ``platform``.

    Meta matches clicks on the ``fbc`` cookie value ``fb.1.<ms>.<fbclid>``, whose time is the
    click's in Unix milliseconds; a click id that already has that form is kept.
    """
    key = CLICK_KEY[platform]
    if key != "fbc" or click_id.startswith("fb."):
        # NOTE: touches keep the click id but not its URL parameter, so a Google click is
        # sent as a gclid even when it came in a gbraid or wbraid parameter.
        return key, click_id
    milliseconds = int(clicked_at.timestamp() * 1000)
    return key, f"fb.1.{milliseconds}.{click_id}"


def _value(
    row: Any, destination: SyncDestination, config: Config
) -> tuple[float | None, str | None]:
    """Return the value and currency that ``destination`` sends for one conversion."""
    own_currency = destination.currency or config.currency
    if destination.value == "none":
        return None, None
    if destination.value == "fixed":
        return destination.fixed_value, own_currency
    if destination.value == "expected":
        kinds = {kind.strip().lower(): value for kind, value in destination.expected_values.items()}
        return kinds.get(str(row.kind).strip().lower()), own_currency

    for value, currency in ((row.value, row.currency), (row.deal_amount, row.deal_currency)):
        if _present(value):
            return float(value), str(currency) if _present(currency) else own_currency
    return None, None


def _present(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _as_utc(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.to_pydatetime()
    return result


def as_mapping(text: str | None) -> Mapping[str, str]:
    """Return the ``keys`` column of an outbox row as a mapping."""
    if not text:
        return {}
    loaded = json.loads(text)
    return {str(key): str(value) for key, value in loaded.items()}
