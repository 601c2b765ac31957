"""Import touchpoint rows (CSV or Parquet) into the ``touchpoints`` and ``conversions`` tables.

Input: one row per touch or conversion, with a person (or journey) id and a timestamp.
A row is a touch unless it is a conversion with no touch field at all (no channel, UTM value,
click id, referrer, landing URL or touch type). A row flagged as a conversion that also has
touch fields is both: the conversion happens during that touch, so the touch is part of its
journey. Without a conversion column, a row with a value above zero is a conversion.

Output rows keep the input's order in ``seq``, which breaks ties between equal timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote_plus

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeymap.common.errors import InputError
from journeymap.common.timeutil import parse_timestamps
from journeymap.sources.arrow_touchpoints import read_touchpoint_arrow
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver, normalise_name
from journeymap.sources.readers import (
    InputSource,
    header_names,
    prepare_input,
    read_arrow,
    read_input,
)
from journeymap.sources.values import flags, numbers, text
from journeymap.store.store import Store

TOUCHPOINT_ALIASES: dict[str, list[str]] = {
    "person_id": [
        "person_id",
        "user_id",
        "customer_id",
        "contact_id",
        "visitor_id",
        "journey_id",
        "anonymous_id",
        "client_id",
        "cookie_id",
        "domain_userid",
        "lead_id",
        "email",
    ],
    "account_id": ["account_id", "company_id", "group_id", "organization_id", "account", "company"],
    "occurred_at": [
        "timestamp",
        "occurred_at",
        "time",
        "event_time",
        "event_timestamp",
        "datetime",
        "ts",
        "date",
        "created_at",
        "visit_time",
        "touch_time",
    ],
    "touchpoint_id": ["touchpoint_id", "touch_id", "event_id", "message_id", "interaction_id"],
    "channel": ["channel", "marketing_channel", "channel_name", "channel_grouping"],
    "source": ["utm_source", "source", "traffic_source"],
    "medium": ["utm_medium", "medium"],
    "campaign": ["utm_campaign", "campaign", "campaign_name"],
    "content": ["utm_content", "content", "ad_content"],
    "term": ["utm_term", "term", "keyword"],
    "ad_id": ["ad_id", "ad", "creative_id", "ad_name"],
    "touch_type": ["touch_type", "touchpoint_type", "interaction_type"],
    "referrer": ["referrer", "referrer_host", "referrer_url", "page_referrer", "referer"],
    "url": ["url", "page_url", "landing_page", "landing_url", "page_location"],
    "conversion": ["conversion", "converted", "is_conversion", "conversion_flag", "convert"],
    "value": ["value", "conversion_value", "revenue", "amount"],
    "kind": ["conversion_kind", "conversion_type", "kind", "goal"],
    "conversion_id": ["conversion_id", "order_id", "transaction_id"],
    "currency": ["currency", "currency_code"],
    "deal_id": ["deal_id", "opportunity_id"],
    "gclid": ["gclid"],
    "gbraid": ["gbraid"],
    "wbraid": ["wbraid"],
    "msclkid": ["msclkid"],
    "li_fat_id": ["li_fat_id"],
    "ttclid": ["ttclid"],
    "fbclid": ["fbclid"],
}

# Click id parameter, ad platform; a row with several click ids keeps the first in this order.
CLICK_IDS: list[tuple[str, str]] = [
    ("gclid", "google_ads"),
    ("gbraid", "google_ads"),
    ("wbraid", "google_ads"),
    ("msclkid", "microsoft_ads"),
    ("li_fat_id", "linkedin_ads"),
    ("ttclid", "tiktok_ads"),
    ("fbclid", "meta"),
]
UTM_FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "campaign": "utm_campaign",
    "content": "utm_content",
    "term": "utm_term",
}
# Columns of a touch row that make it a touch; a conversion row with none of them is not one.
TOUCH_COLUMNS = (
    "channel",
    "source",
    "medium",
    "campaign",
    "content",
    "term",
    "ad_id",
    "touch_type",
    "referrer_host",
    "click_id",
)
DEFAULT_KIND = "conversion"


def url_parameter(urls: pd.Series, name: str) -> pd.Series:
    """Return the decoded value of query parameter ``name`` in each URL, or missing."""
    result = pd.Series(pd.NA, index=urls.index, dtype="string")
    candidates = urls.astype("string").str.contains(f"{name}=", regex=False, na=False)
    if not candidates.any():
        return result
    found = urls[candidates].astype("string").str.extract(rf"[?&]{name}=([^&#]*)", expand=False)
    decoded = found.map(lambda value: unquote_plus(value) if isinstance(value, str) else value)
    result[candidates] = decoded.astype("string")
    return text(result)


def url_host(urls: pd.Series) -> pd.Series:
    """Return the lowercased host of each URL (or bare host) without ``www.``."""
    hosts = urls.astype("string").str.extract(
        r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?([^/?#:]+)", expand=False
    )
    return text(hosts.str.lower().str.replace(r"^www\.", "", regex=True))


def read_touchpoint_frame(
    frame: pd.DataFrame,
    *,
    file: str,
    mapping: Mapping[str, str] | None = None,
    timezone: str = "UTC",
    default_kind: str = DEFAULT_KIND,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn touchpoint rows into canonical touchpoint and conversion frames.

    The frames carry a ``row`` column (0-based input row) in place of ``seq``, ids and
    ``import_id``, which :func:`import_touchpoints` assigns.

    Raises:
        InputError: a required column is missing, or a cell is invalid (bad timestamp,
            negative or non-numeric value, unknown conversion flag).
    """
    columns = ColumnResolver(
        file=file, columns=list(frame.columns), aliases=TOUCHPOINT_ALIASES, mapping=mapping
    )
    normalised = {normalise_name(column) for column in frame.columns}
    if columns.get("person_id") is None and "path" in normalised:
        raise InputError(
            "the file has a path column but no person id: it looks like aggregated paths",
            file=file,
            hint="Import it with --input-format paths (or journeymap import paths FILE)",
        )
    person_column = columns.require("person_id", why="whose touch it is")
    time_column = columns.require("occurred_at", why="when the touch happened")

    def column_text(field: str) -> pd.Series:
        name = columns.get(field)
        return text(frame[name]) if name else pd.Series(pd.NA, index=frame.index, dtype="string")

    person = column_text("person_id")
    if person.isna().any():
        row = int(np.flatnonzero(person.isna().to_numpy())[0])
        raise InputError(
            "person id is empty",
            file=file,
            row=row + 1,
            column=person_column,
            hint="Every row needs the id of the person or journey it belongs to",
        )
    occurred_at = parse_timestamps(
        frame[time_column], file=file, column=time_column, timezone=timezone
    )

    value_column = columns.get("value")
    value = (
        numbers(frame[value_column], file=file, column=value_column)
        if value_column
        else pd.Series(0.0, index=frame.index)
    )
    conversion_column = columns.get("conversion")
    if conversion_column:
        is_conversion = flags(frame[conversion_column], file=file, column=conversion_column)
    else:
        is_conversion = value > 0

    touch = pd.DataFrame(index=frame.index)
    touch["row"] = np.arange(len(frame), dtype="int64")
    touch["person_id"] = person
    touch["account_id"] = column_text("account_id")
    touch["occurred_at"] = occurred_at
    touch["touchpoint_id"] = column_text("touchpoint_id")
    touch["channel"] = column_text("channel")
    touch["touch_type"] = column_text("touch_type")
    touch["ad_id"] = column_text("ad_id")
    urls = column_text("url")
    for field, parameter in UTM_FIELDS.items():
        touch[field] = column_text(field).fillna(url_parameter(urls, parameter))
    touch["referrer_host"] = url_host(column_text("referrer"))
    touch["click_id"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    touch["click_platform"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    for parameter, platform in CLICK_IDS:
        # Click ids are case-sensitive: they are kept exactly as given.
        found = column_text(parameter).fillna(url_parameter(urls, parameter))
        take = touch["click_id"].isna() & found.notna()
        touch.loc[take, "click_id"] = found[take]
        touch.loc[take, "click_platform"] = platform

    has_touch = pd.Series(False, index=frame.index)
    for field in TOUCH_COLUMNS:
        has_touch |= touch[field].notna()
    has_touch |= urls.notna()
    # A row is a touch unless it is a conversion that names no touch at all.
    keep_touch = has_touch | ~is_conversion

    conversion = pd.DataFrame(index=frame.index)
    conversion["row"] = touch["row"]
    conversion["person_id"] = person
    conversion["account_id"] = touch["account_id"]
    conversion["occurred_at"] = occurred_at
    conversion["conversion_id"] = column_text("conversion_id")
    conversion["kind"] = column_text("kind").fillna(default_kind).str.lower()
    conversion["value"] = value
    conversion["currency"] = column_text("currency")
    conversion["deal_id"] = column_text("deal_id")
    return touch[keep_touch].reset_index(drop=True), conversion[is_conversion].reset_index(
        drop=True
    )


def import_touchpoints(
    store: Store,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    timezone: str = "UTC",
    default_kind: str = DEFAULT_KIND,
    currency: str = "USD",
) -> ImportResult:
    """Import a touchpoint file into the store in one transaction.

    Ids that the file does not give are derived from the import id and the row number, so
    that importing the same bytes again into a new store gives the same ids.
    """
    source = prepare_input(path, separator=separator)
    import_id = check_not_imported(
        store, kind="touchpoints", sha256=source.sha256, file=source.path
    )
    touches, conversions = _read_tables(source, mapping, timezone, default_kind)

    seq_start = store.next_seq()
    tables = {}
    for table, prefix, id_column in (
        (touches, "t", "touchpoint_id"),
        (conversions, "c", "conversion_id"),
    ):
        given_ids = table[id_column].null_count < table.num_rows
        row = table["row"]
        seq = pc.add(row, seq_start)
        row_ids = pc.binary_join_element_wise(
            f"{import_id}:{prefix}", pc.cast(pc.add(row, 1), pa.string()), ""
        )
        table = table.drop_columns(["row"]).append_column("seq", seq)
        ids = pc.coalesce(table[id_column], row_ids)
        table = table.set_column(table.column_names.index(id_column), id_column, ids)
        # Ids made from row numbers are unique already; only ids from the file need checking.
        if given_ids:
            _check_unique(table, id_column, source.path, seq_start)
        tables["touchpoints" if prefix == "t" else "conversions"] = table
    currency_column = tables["conversions"].column_names.index("currency")
    tables["conversions"] = tables["conversions"].set_column(
        currency_column, "currency", pc.coalesce(tables["conversions"]["currency"], currency)
    )
    return write_import(
        store,
        import_id=import_id,
        kind="touchpoints",
        file=source.path,
        sha256=source.sha256,
        seq_start=seq_start,
        tables=tables,
    )


def _read_tables(
    source: InputSource,
    mapping: Mapping[str, str] | None,
    timezone: str,
    default_kind: str,
) -> tuple[pa.Table, pa.Table]:
    """Read touches and conversions with Arrow when the file allows it, else with pandas."""
    names = header_names(source)
    resolved = ColumnResolver(
        file=source.path, columns=names, aliases=TOUCHPOINT_ALIASES, mapping=mapping
    )
    typed = [
        column
        for column in (resolved.get(field) for field in ("occurred_at", "value", "conversion"))
        if column
    ]
    table = read_arrow(source, typed=typed)
    if table is not None:
        fast = read_touchpoint_arrow(
            table,
            file=source.path,
            aliases=TOUCHPOINT_ALIASES,
            click_ids=CLICK_IDS,
            touch_columns=TOUCH_COLUMNS,
            mapping=mapping,
            timezone=timezone,
            default_kind=default_kind,
        )
        if fast is not None:
            return fast
    frame = read_input(source)
    touches, conversions = read_touchpoint_frame(
        frame.frame, file=source.path, mapping=mapping, timezone=timezone, default_kind=default_kind
    )
    return (
        pa.Table.from_pandas(touches, preserve_index=False),
        pa.Table.from_pandas(conversions, preserve_index=False),
    )


def _check_unique(table: pa.Table, column: str, file: str, seq_start: int) -> None:
    counts = pc.value_counts(table[column])
    repeated = counts.filter(pc.greater(pc.struct_field(counts, [1]), 1))
    if len(repeated) == 0:
        return
    value = repeated[0]["values"].as_py()
    matches = pc.indices_nonzero(pc.equal(table[column], value)).to_pylist()
    row = int(table["seq"][matches[1]].as_py() - seq_start + 1)
    raise InputError(
        f"{column} {value!r} appears more than once",
        file=file,
        row=row,
        column=column,
        hint="Ids must be unique; remove the duplicate row or drop the id column",
    )
