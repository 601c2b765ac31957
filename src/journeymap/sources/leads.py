"""Import marketing-qualified leads (MQLs), and the deals they closed, as touches and stages.

Input: a leads file with one row per lead, giving its id, first-contact date and acquisition
``origin``. An optional closed-deals file has one row per won lead, giving its lead id, won
date and, when present, declared monthly revenue and sales rep. The column names of Olist's
marketing-funnel export are recognised without a mapping: ``mql_id``,
``first_contact_date`` and ``origin`` in the leads file, and ``mql_id``, ``won_date``,
``declared_monthly_revenue`` and ``sr_id`` in the closed-deals file. ``mapping`` names other
columns of the leads file only.

Output, written in one transaction:

- ``touchpoints``: one ``form`` touch per lead at its first contact, with ``person_id`` the
  lead id, ``source`` the origin as written and ``channel`` from :data:`ORIGIN_CHANNELS`.
- ``conversions``: one ``lead`` conversion (value 0) per lead at its first contact, and one
  ``closed_won`` conversion per closed deal at its won date.
- ``deals``: one won and closed deal per closed-deals row, with ``deal_id`` the lead id.
- ``deal_stages``: for every lead a stay in ``MQL`` from its first contact (until its won
  date when it was won), and for every closed deal a stay in ``Won`` from its won date.

The value of a ``closed_won`` conversion, and the deal's ``amount``, is the declared monthly
revenue when it is a number of zero or more, and 0 otherwise (an empty, non-numeric or
negative cell), because the export declares revenue rather than a contract value. The landing
page and the deal attributes that the canonical tables have no column for (segment, lead
type, behaviour profile) are not stored.

A won date before the first contact is a data-quality problem that does not block the import:
the row is kept as written and a warning is returned and logged. Such a deal's ``MQL`` stay
ends before it begins, and :func:`~journeymap.analyses.funnel.stage_funnel` and
:func:`~journeymap.analyses.velocity.time_between` do not count it as a conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.readers import InputFile, read_input
from journeymap.sources.timestamps import parse_timestamps
from journeymap.sources.values import text, unique_ids
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

LEAD_ALIASES: dict[str, list[str]] = {
    "lead_id": ["mql_id", "lead_id", "person_id"],
    "first_contact": ["first_contact_date", "first_contact", "created_at", "createdate"],
    "origin": ["origin", "lead_source", "source"],
}
CLOSED_ALIASES: dict[str, list[str]] = {
    "lead_id": ["mql_id", "lead_id", "person_id"],
    "won_at": ["won_date", "closed_at", "close_date", "closedate"],
    "revenue": ["declared_monthly_revenue", "amount"],
    "owner": ["sr_id", "owner"],
}

ORIGIN_CHANNELS: dict[str, str] = {
    "organic_search": "Organic Search",
    "paid_search": "Paid Search",
    # The origin does not say whether a social lead came from a paid or an organic post.
    "social": "Social",
    "direct_traffic": "Direct",
    "email": "Email",
    "referral": "Referral",
    "display": "Display",
    "other": "Other",
    "other_publicities": "Other",
    "unknown": "(unknown)",
}
"""Channel of each lead origin, compared after trimming and lowercasing the origin."""

UNKNOWN_CHANNEL = "(unknown)"
"""Channel of a lead with an empty origin or the origin ``unknown``."""

MQL_STAGE = "MQL"
WON_STAGE = "Won"
PIPELINE = "olist"
CURRENCY = "BRL"


def import_leads(
    store: Store,
    leads_file: str | Path,
    *,
    deals_file: str | Path | None = None,
    mapping: Mapping[str, str] | None = None,
    currency: str = CURRENCY,
    pipeline: str = PIPELINE,
) -> ImportResult:
    """Import a leads file, and optionally its closed deals, in one transaction.

    The rows written are listed in the module docstring. ``mapping`` applies to the leads
    file. ``currency`` is the currency of the declared revenue (Olist's is Brazilian reais),
    and ``pipeline`` names the pipeline of the deals and stages. The import is identified by
    the leads file's bytes, so importing the same leads file again is rejected whatever
    deals file comes with it.

    Raises:
        InputError: a file is missing or lacks a lead id, date or origin column. Also raised
            for an invalid cell: an empty or duplicate lead id, an empty date, a date not in
            ISO 8601 form, or a closed deal whose lead id is not in the leads file.
        AlreadyImportedError: the leads file's bytes were imported before.
    """
    source = read_input(leads_file)
    import_id = check_not_imported(store, kind="leads", sha256=source.sha256, file=source.path)

    leads = read_leads(source, mapping)
    closed = read_closed_deals(deals_file, leads) if deals_file is not None else _no_deals()
    warnings = _origin_warnings(leads) + _revenue_warnings(closed) + _early_win_warnings(closed)

    seq_start = store.next_seq()
    tables = {
        "touchpoints": lead_touchpoints(leads, import_id=import_id, seq_start=seq_start),
        "conversions": lead_conversions(
            leads, closed, import_id=import_id, seq_start=seq_start, currency=currency
        ),
        "deals": won_deals(closed, currency=currency, pipeline=pipeline),
        "deal_stages": lead_stages(leads, closed, pipeline=pipeline),
    }
    return write_import(
        store,
        import_id=import_id,
        kind="leads",
        file=source.path,
        sha256=source.sha256,
        seq_start=seq_start,
        tables=tables,
        warnings=warnings,
    )


def read_leads(source: InputFile, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return one row per lead, in file order: ``lead_id``, ``first_contact``, ``origin``,
    ``channel`` and ``row`` (the 0-based input row).

    ``first_contact`` is a UTC timestamp (a date alone is midnight UTC). ``origin`` is the
    trimmed origin, null when empty, and ``channel`` its channel (see :func:`origin_channels`).

    Raises:
        InputError: see :func:`import_leads`.
    """
    frame = source.frame
    columns = ColumnResolver(
        file=source.path, columns=list(frame.columns), aliases=LEAD_ALIASES, mapping=mapping
    )
    id_column = columns.require("lead_id", why="the id of each lead")
    date_column = columns.require("first_contact", why="the date of each lead's first contact")
    origin_column = columns.require("origin", why="the acquisition channel of each lead")

    leads = pd.DataFrame(index=frame.index)
    leads["lead_id"] = _unique_ids(frame[id_column], file=source.path, column=id_column)
    leads["first_contact"] = _required_timestamps(
        frame[date_column], file=source.path, column=date_column, what="first-contact date"
    )
    leads["origin"] = text(frame[origin_column])
    leads["channel"] = origin_channels(leads["origin"])
    leads["row"] = np.arange(len(frame), dtype="int64")
    return leads.reset_index(drop=True)


def read_closed_deals(path: str | Path, leads: pd.DataFrame) -> pd.DataFrame:
    """Return one row per closed deal, in file order, joined with its lead.

    Columns: ``lead_id``, ``won_at`` (UTC), ``revenue`` (float64, 0 when the cell is not a
    number of zero or more), ``revenue_invalid`` (the cell was not empty and not such a
    number), ``owner``,
    ``first_contact``, ``channel`` and ``row`` (the 0-based input row).

    Raises:
        InputError: no lead id or won-date column, an empty or duplicate lead id, an empty or
            invalid won date, or a lead id that is not in ``leads``.
    """
    source = read_input(path)
    frame = source.frame
    columns = ColumnResolver(file=source.path, columns=list(frame.columns), aliases=CLOSED_ALIASES)
    id_column = columns.require("lead_id", why="the lead that each deal closed")
    won_column = columns.require("won_at", why="the date each deal was won")

    closed = pd.DataFrame(index=frame.index)
    closed["lead_id"] = _unique_ids(frame[id_column], file=source.path, column=id_column)
    _check_known_leads(closed["lead_id"], leads, file=source.path, column=id_column)
    closed["won_at"] = _required_timestamps(
        frame[won_column], file=source.path, column=won_column, what="won date"
    )

    revenue_column = columns.get("revenue")
    cells = text(frame[revenue_column]) if revenue_column else _empty_text(frame.index)
    closed["revenue"], closed["revenue_invalid"] = _revenue(cells)
    owner_column = columns.get("owner")
    closed["owner"] = text(frame[owner_column]) if owner_column else _empty_text(frame.index)
    closed["row"] = np.arange(len(frame), dtype="int64")

    known = leads[["lead_id", "first_contact", "channel"]]
    return closed.reset_index(drop=True).merge(known, on="lead_id", how="left", validate="1:1")


def origin_channels(origins: pd.Series) -> pd.Series:
    """Return the channel of each origin: :data:`ORIGIN_CHANNELS`, or ``(unknown)`` when empty.

    An origin that is not in the table keeps its text as its channel.
    """
    keys = origins.str.lower()
    mapped = keys.map(ORIGIN_CHANNELS, na_action="ignore").astype("string")
    return mapped.fillna(origins).fillna(UNKNOWN_CHANNEL).astype("string")


def lead_touchpoints(leads: pd.DataFrame, *, import_id: str, seq_start: int) -> pd.DataFrame:
    """Return one ``form`` touch per lead, with ``seq`` from ``seq_start`` in file order."""
    return pd.DataFrame(
        {
            "touchpoint_id": import_id + ":t" + (leads["row"] + 1).astype("string"),
            "seq": seq_start + leads["row"],
            "person_id": leads["lead_id"],
            "occurred_at": leads["first_contact"],
            "channel": leads["channel"],
            "source": leads["origin"],
            "touch_type": "form",
        }
    )


def lead_conversions(
    leads: pd.DataFrame,
    closed: pd.DataFrame,
    *,
    import_id: str,
    seq_start: int,
    currency: str,
) -> pd.DataFrame:
    """Return a ``lead`` conversion per lead and a ``closed_won`` one per closed deal.

    A ``lead`` conversion shares the seq of its lead's touch. The ``closed_won`` conversions
    take the seq numbers after the last lead's, in the closed-deals file's order.
    """
    lead = pd.DataFrame(
        {
            "conversion_id": import_id + ":lead:" + leads["lead_id"],
            "seq": seq_start + leads["row"],
            "person_id": leads["lead_id"],
            "occurred_at": leads["first_contact"],
            "kind": "lead",
            "value": 0.0,
        }
    )
    won = pd.DataFrame(
        {
            "conversion_id": import_id + ":won:" + closed["lead_id"],
            "seq": seq_start + len(leads) + closed["row"],
            "person_id": closed["lead_id"],
            "occurred_at": closed["won_at"],
            "kind": "closed_won",
            "value": closed["revenue"],
            "deal_id": closed["lead_id"],
        }
    )
    conversions = pd.concat([lead, won], ignore_index=True)
    conversions["currency"] = currency.strip().upper()
    return conversions


def won_deals(closed: pd.DataFrame, *, currency: str, pipeline: str) -> pd.DataFrame:
    """Return one won, closed ``deals`` row per closed deal, from first contact to won date."""
    return pd.DataFrame(
        {
            "deal_id": closed["lead_id"],
            "amount": closed["revenue"],
            "currency": currency.strip().upper(),
            "pipeline": pipeline,
            "stage": WON_STAGE,
            "owner": closed["owner"],
            "is_won": True,
            "is_closed": True,
            "created_at": closed["first_contact"],
            "closed_at": closed["won_at"],
        }
    )


def lead_stages(leads: pd.DataFrame, closed: pd.DataFrame, *, pipeline: str) -> pd.DataFrame:
    """Return an ``MQL`` stay per lead and a ``Won`` stay per closed deal.

    The ``MQL`` stay of a won lead ends at its won date, and that of any other lead is open.
    """
    won_at = leads["lead_id"].map(closed.set_index("lead_id")["won_at"])
    mql = pd.DataFrame(
        {
            "deal_id": leads["lead_id"],
            "stage": MQL_STAGE,
            "entered_at": leads["first_contact"],
            "exited_at": pd.to_datetime(won_at, utc=True),
        }
    )
    won = pd.DataFrame(
        {
            "deal_id": closed["lead_id"],
            "stage": WON_STAGE,
            "entered_at": closed["won_at"],
            "exited_at": pd.Series(pd.NaT, index=closed.index, dtype="datetime64[ns, UTC]"),
        }
    )
    stages = pd.concat([mql, won], ignore_index=True)
    stages["pipeline"] = pipeline
    return stages


def stays_with_first_channel(store: Store) -> ibis.Table:
    """Return the ``deal_stages`` rows with ``channel``: that of the deal's lead's first touch.

    The lead is the person whose ``person_id`` is the ``deal_id``, as :func:`import_leads`
    writes them. The first touch is the earliest by ``occurred_at``, then by ``seq``. The
    channel is null when the person has no touch or the first touch has no stored channel.
    """
    touches = store.table("touchpoints")
    touches = touches.filter(touches.person_id.notnull(), touches.occurred_at.notnull())
    order = ibis.window(group_by="person_id", order_by=["occurred_at", "seq", "touchpoint_id"])
    ranked = touches.mutate(_rank=ibis.row_number().over(order))
    first = ranked.filter(ranked._rank == 0).select("person_id", "channel")

    stays = store.table("deal_stages")
    joined = stays.left_join(first, stays.deal_id == first.person_id)
    return joined.select(*stays.schema().names, "channel")


def _no_deals() -> pd.DataFrame:
    columns = {
        "lead_id": "string",
        "won_at": "datetime64[ns, UTC]",
        "revenue": "float64",
        "revenue_invalid": "bool",
        "owner": "string",
        "first_contact": "datetime64[ns, UTC]",
        "channel": "string",
        "row": "int64",
    }
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _empty_text(index: pd.Index) -> pd.Series:
    return pd.Series(pd.NA, index=index, dtype="string")


def _first_row(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _unique_ids(values: pd.Series, *, file: str, column: str) -> pd.Series:
    return unique_ids(values, file=file, column=column, what="lead id")


def _required_timestamps(values: pd.Series, *, file: str, column: str, what: str) -> pd.Series:
    stamps = parse_timestamps(values, file=file, column=column)
    if stamps.isna().any():
        raise InputError(
            f"{what} is missing",
            file=file,
            row=_first_row(stamps.isna()) + 1,
            column=column,
            hint=f"Fill in the {what} of every row, for example 2018-03-01",
        )
    return stamps


def _check_known_leads(ids: pd.Series, leads: pd.DataFrame, *, file: str, column: str) -> None:
    unknown = ~ids.isin(set(leads["lead_id"]))
    if unknown.any():
        row = _first_row(unknown)
        raise InputError(
            f"lead id {ids.iloc[row]!r} is not in the leads file",
            file=file,
            row=row + 1,
            column=column,
            value=ids.iloc[row],
            hint="Import the leads file that this deal's lead is in, or remove the row",
        )


def _revenue(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return each cell as a number of zero or more (else 0) and whether a non-empty cell was
    not such a number."""
    numbers = pd.to_numeric(cells.astype("object"), errors="coerce").astype("float64")
    usable = np.isfinite(numbers) & (numbers >= 0)
    invalid = cells.notna() & ~usable
    return numbers.where(usable, 0.0).to_numpy(), invalid.to_numpy(dtype=bool)


def _origin_warnings(leads: pd.DataFrame) -> list[str]:
    warnings = []
    empty = int(leads["origin"].isna().sum())
    if empty:
        warnings.append(f"{empty:,} leads have no origin; their channel is {UNKNOWN_CHANNEL!r}")

    origins = leads["origin"].dropna()
    unmapped = origins[~origins.str.lower().isin(ORIGIN_CHANNELS)]
    for origin, count in unmapped.value_counts().items():
        warnings.append(
            f"origin {origin!r} ({count:,} leads) has no known channel; it is kept as the channel"
        )
    return warnings


def _revenue_warnings(closed: pd.DataFrame) -> list[str]:
    invalid = int(closed["revenue_invalid"].sum())
    if not invalid:
        return []
    return [
        f"{invalid:,} closed deals declare a revenue that is not a number of zero or more; "
        "their value and amount are 0"
    ]


def _early_win_warnings(closed: pd.DataFrame) -> list[str]:
    early = closed[closed["won_at"] < closed["first_contact"]]
    if early.empty:
        return []
    example = early.iloc[0]
    return [
        f"{len(early):,} closed deal(s) have a won date before the lead's first contact (for "
        f"example {example['lead_id']!r}: first contact {example['first_contact']:%Y-%m-%d}, "
        f"won {example['won_at']:%Y-%m-%d %H:%M:%S}). They are kept as written, but funnels "
        "and time-to-close summaries do not count them as conversions"
    ]
