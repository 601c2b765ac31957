"""Import ad spend exports (CSV or Parquet) into the ``ad_spend`` table.

Input: one row per platform, campaign, ad and day (any of them may be absent), with a cost.
Column names of the common exports are recognised (Google Ads ``cost_micros``, Microsoft Ads
``spend``, LinkedIn ``cost_in_usd``, Facebook ``spent``, Fivetran's ``date_day`` ...), and
``--map FIELD=COLUMN`` names any other column. A file that contains one platform's spend and
has no platform column needs the platform as an option.

Output: ``ad_spend`` rows. Platform names are lowercased and trimmed. Cost is in currency
units (``cost_micros`` is divided by one million). Impressions and clicks are whole numbers,
and empty counts are 0. A file without a date column gives rows with a null ``date``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver, normalise_name
from journeymap.sources.readers import read_input
from journeymap.sources.values import numbers, text
from journeymap.store.store import Store

SPEND_ALIASES: dict[str, list[str]] = {
    "date": ["date", "date_day", "day", "reporting_date", "start_date", "reporting_starts"],
    "platform": ["platform", "source", "network", "publisher"],
    "campaign": ["campaign", "campaign_name"],
    # Fivetran's Google Ads campaign_stats table names the campaign id ``id``.
    "campaign_id": ["campaign_id", "xyz_campaign_id", "id"],
    "ad_group": [
        "ad_group",
        "ad_set",
        "adset_id",
        "ad_group_id",
        "fb_campaign_id",
        "ad_set_id",
        "ad_group_name",
        "ad_set_name",
        "adset_name",
    ],
    "ad_id": ["ad_id", "creative_id"],
    "impressions": ["impressions"],
    "clicks": ["clicks", "inline_link_clicks"],
    "cost": ["cost", "spend", "spent", "amount_spent", "cost_in_usd", "cost_in_local_currency"],
    "cost_micros": ["cost_micros"],
    "conversions": [
        "conversions",
        "total_conversion",
        "approved_conversion",
        "external_website_conversions",
    ],
    "currency": ["currency", "currency_code", "account_currency_code"],
}
MICROS_PER_UNIT = 1_000_000.0
# A cost column in this list is in US dollars, whatever currency the currency column names.
USD_COST_COLUMNS = {"cost_in_usd"}
ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
PLATFORM_HINT = (
    "Pass --platform NAME (for example --platform google_ads) when the file contains one "
    "platform's spend"
)


def read_spend_frame(
    frame: pd.DataFrame,
    *,
    file: str,
    mapping: Mapping[str, str] | None = None,
    platform: str | None = None,
    currency: str = "USD",
) -> pd.DataFrame:
    """Turn spend rows into ``ad_spend`` rows (without ``import_id``).

    ``platform`` names the ad platform of every row and takes precedence over a platform
    column. ``currency`` applies to rows that the file gives no currency for.

    Raises:
        InputError: the file has neither a platform column nor ``platform``, or it has no cost
            column, or a cell is invalid. Invalid cells are an empty platform, a negative or
            non-numeric cost, a count that is not a whole number of zero or more, and a date
            not in YYYY-MM-DD form.
    """
    columns = ColumnResolver(
        file=file, columns=list(frame.columns), aliases=SPEND_ALIASES, mapping=mapping
    )

    def column_text(field: str) -> pd.Series:
        name = columns.get(field)
        return text(frame[name]) if name else pd.Series(pd.NA, index=frame.index, dtype="string")

    rows = pd.DataFrame(index=frame.index)
    date_column = columns.get("date")
    if date_column:
        rows["date"] = parse_dates(frame[date_column], file=file, column=date_column)
    else:
        rows["date"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    rows["platform"] = _platforms(frame, columns, platform, file=file)
    rows["campaign_id"] = column_text("campaign_id")
    rows["campaign"] = column_text("campaign")
    rows["ad_group"] = column_text("ad_group")
    rows["ad_id"] = column_text("ad_id")
    rows["impressions"] = _counts(
        frame, columns.get("impressions"), file=file, what="impression count"
    )
    rows["clicks"] = _counts(frame, columns.get("clicks"), file=file, what="click count")
    rows["cost"] = _costs(frame, columns, file=file)

    cost_column = columns.get("cost")
    if cost_column and normalise_name(cost_column) in USD_COST_COLUMNS:
        rows["currency"] = "USD"
    else:
        rows["currency"] = column_text("currency").str.upper().fillna(currency.strip().upper())
    conversions_column = columns.get("conversions")
    rows["platform_conversions"] = (
        numbers(
            frame[conversions_column],
            file=file,
            column=conversions_column,
            default=None,
            what="conversion count",
        )
        if conversions_column
        else pd.Series(np.nan, index=frame.index, dtype="float64")
    )
    return rows.reset_index(drop=True)


def import_spend(
    store: Store,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    platform: str | None = None,
    currency: str = "USD",
) -> ImportResult:
    """Import an ad spend file into ``ad_spend`` in one transaction."""
    source = read_input(path, separator=separator)
    import_id = check_not_imported(store, kind="spend", sha256=source.sha256, file=source.path)
    rows = read_spend_frame(
        source.frame, file=source.path, mapping=mapping, platform=platform, currency=currency
    )
    return write_import(
        store,
        import_id=import_id,
        kind="spend",
        file=source.path,
        sha256=source.sha256,
        seq_start=store.next_seq(),
        tables={"ad_spend": rows},
    )


def parse_dates(values: pd.Series, *, file: str, column: str) -> pd.Series:
    """Parse a column of dates into midnight ``datetime64[ns]`` values. Empty cells become NaT.

    Text must be an ISO 8601 date (``2024-03-01``), optionally followed by a time, which is
    dropped along with any offset. Forms such as ``03/01/2024`` are rejected, because the
    order of day and month differs between exports.

    Raises:
        InputError: a cell is not a date in that form.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        local = values.dt.tz_localize(None) if values.dt.tz is not None else values
        midnight: pd.Series = local.dt.normalize()
        return midnight.astype("datetime64[ns]")
    cells = (
        values.map(_date_text, na_action="ignore")
        if pd.api.types.is_object_dtype(values)
        else values
    )
    cells = text(cells.astype("string"))
    is_iso = cells.str.fullmatch(ISO_DATE).fillna(False).astype(bool)
    parsed = pd.to_datetime(
        cells.where(is_iso).str.slice(0, 10), format="%Y-%m-%d", errors="coerce"
    )
    bad = cells.notna() & parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"date {values.iloc[row]!r} is not a date in YYYY-MM-DD form",
            file=file,
            row=row + 1,
            column=column,
            value=values.iloc[row],
            hint="Write dates as YYYY-MM-DD, for example 2024-03-01",
        )
    return parsed.astype("datetime64[ns]")


def _date_text(value: object) -> str:
    """Return a cell as text, writing a date object (from Parquet) as YYYY-MM-DD."""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())[:10]
    return str(value)


def _platforms(
    frame: pd.DataFrame, columns: ColumnResolver, platform: str | None, *, file: str
) -> pd.Series:
    if platform is not None:
        name = platform.strip().lower()
        if not name:
            raise InputError("the platform option is blank", file=file, hint=PLATFORM_HINT)
        return pd.Series(name, index=frame.index, dtype="string")
    column = columns.require("platform", why="the ad platform of each row; or pass --platform")
    names = text(frame[column]).str.lower()
    if names.isna().any():
        row = int(np.flatnonzero(names.isna().to_numpy())[0])
        raise InputError(
            "platform is missing",
            file=file,
            row=row + 1,
            column=column,
            hint=f"Fill in the platform of every row. {PLATFORM_HINT}",
        )
    return names


def _costs(frame: pd.DataFrame, columns: ColumnResolver, *, file: str) -> pd.Series:
    micros_column = columns.get("cost_micros")
    if columns.get("cost") is None and micros_column is not None:
        micros = numbers(frame[micros_column], file=file, column=micros_column, what="cost")
        return micros / MICROS_PER_UNIT
    cost_column = columns.require(
        "cost", why="the amount spent; cost_micros, in millionths, is accepted too"
    )
    return numbers(frame[cost_column], file=file, column=cost_column, what="cost")


def _counts(frame: pd.DataFrame, column: str | None, *, file: str, what: str) -> pd.Series:
    if column is None:
        return pd.Series(0, index=frame.index, dtype="int64")
    counts = numbers(frame[column], file=file, column=column, what=what)
    fractional = counts != np.floor(counts)
    if fractional.any():
        row = int(np.flatnonzero(fractional.to_numpy())[0])
        raise InputError(
            f"{what} {frame[column].iloc[row]!r} is not a whole number",
            file=file,
            row=row + 1,
            column=column,
            value=frame[column].iloc[row],
            hint=f"A {what} must be a whole number of zero or more",
        )
    return counts.astype("int64")
