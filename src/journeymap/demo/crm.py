"""The demo world's CRM: deals with stage history, expansions, and the problems planted in them.

Every opportunity of the touchpoint file is a deal of the ``Sales Pipeline``, created at the
opportunity's time for the same account and amount. A deal that the world closes won passes
through every open stage (:data:`OPEN_STAGES`) between its creation and its close, and
enters ``Closed Won`` at the closed-won row's time with that row's value. Any other deal
stops at a drawn stage: it is lost after its time there (``Closed Lost``, with a lost
reason), or is still open at the end of the window. A few won accounts buy more later, and
those upsells are written as conversions of kind ``upsell``.

Random numbers come from their own stream, so the CRM changes nothing in the other tables.
The problems planted in the CRM, and the ones the world already has, are listed in
``truth.json`` under ``planted`` (see :func:`planted_problems`), with the churn planted in
the accounts file. Each entry has an ``id``, a ``kind`` (the recommendation rule that should
find it, or ``segment_churn``, which the ICP finds), a ``description``, ``where`` (the
stage, channel, segment or conversion kind) and a ``magnitude`` measured on the generated
tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeymap.demo import catalog

PIPELINE = "Sales Pipeline"
OPEN_STAGES: tuple[str, ...] = (
    "Appointment Scheduled",
    "Qualification",
    "Demo Scheduled",
    "Proposal Sent",
    "Negotiation",
)
"""Open stages in pipeline order. The default journey stages put the first three in
Consideration and the last two in Decision."""
WON_STAGE = "Closed Won"
LOST_STAGE = "Closed Lost"
DEMO = OPEN_STAGES.index("Demo Scheduled")

OWNERS: dict[str, tuple[str, ...]] = {
    "North America": ("Avery Brooks", "Jordan Lee", "Morgan Diaz"),
    "EMEA": ("Sofia Keller", "Luca Marino"),
    "APAC": ("Mei Tanaka",),
    "LATAM": ("Diego Ramos",),
}
"""Sales reps by the region of the accounts they own."""
LOST_REASONS: tuple[str, ...] = (
    "No budget",
    "Chose a competitor",
    "No decision",
    "Bad timing",
    "Missing feature",
)

WON_STAGE_WEIGHTS: tuple[float, ...] = (1.5, 2.0, 2.5, 2.0, 2.0)
"""Dirichlet weights of the share of a won deal's cycle spent in each open stage."""
LAST_STAGE_SHARES: tuple[float, ...] = (0.12, 0.18, 0.22, 0.28, 0.20)
"""Shares of the deals not won by the world that stop in each open stage."""
STAGE_MEAN_DAYS: tuple[float, ...] = (5.0, 8.0, 10.0, 12.0, 10.0)
"""Mean days that a deal not won spends in each open stage (exponential)."""

STALL_SEGMENT = ("industry", "Software")
"""Planted: deals of these accounts stall in Demo Scheduled."""
STALL_DEMO_WEIGHT = 10.0
"""Dirichlet weight of Demo Scheduled for won deals of the stall segment (others: 2.5)."""
STALL_STOP_SHARE = 0.75
"""Share of the stall segment's deals not won that stop in Demo Scheduled."""
STALL_DAYS_FACTOR = 4.0
"""Multiplier of the days that the stall segment's deals not won spend in Demo Scheduled."""

DROP_CHANNEL = "Paid Search"
"""Planted: deals of accounts first touched by this channel that are created, or reach Demo
Scheduled, in the second half of the window rarely move on to Proposal Sent."""
DROP_STOP_SHARE = 0.9
"""Share of those deals (not won by the world) that reach Demo Scheduled and stop there."""

EXPANSION_SHARE = 0.15
"""Share of won accounts that buy more within the window (the rest never expand)."""
EXPANSION_DAYS = (20.0, 90.0)
"""Range of days from the won deal to its upsell."""
EXPANSION_VALUE_SHARE = (0.2, 0.5)
"""Range of an upsell's value as a share of the won deal."""


@dataclass(frozen=True)
class Crm:
    """The CRM tables of a demo world.

    ``deals`` is the deals export (one row per deal, with stage-entry columns) and
    ``expansions`` the upsell conversions in the touchpoint file's columns.
    """

    deals: pd.DataFrame
    expansions: pd.DataFrame


def stage_column(stage: str) -> str:
    """Return the export's column of the time a deal entered ``stage``."""
    return f'Date entered "{stage} ({PIPELINE})"'


def touch_channels(touchpoints: pd.DataFrame) -> pd.Series:
    """Return the channel of each touch row (rows with a ``touch_type``), aligned to them.

    The channel comes from the catalog variant whose raw fields the touch carries, so it is
    the channel that the default channel rules give the imported row.
    """
    touches = touchpoints[touchpoints["touch_type"].notna()]
    click = pd.Series(pd.NA, index=touches.index, dtype="object")
    for name in catalog.CLICK_PARAMETERS:
        click = click.mask(touches[name].notna(), name)

    keys = pd.DataFrame(
        {
            "touch_type": touches["touch_type"].astype("object"),
            "source": touches["utm_source"].astype("object"),
            "medium": touches["utm_medium"].astype("object"),
            "referrer": touches["referrer"].astype("object"),
            "click": click,
        }
    ).fillna("")
    lookup = pd.DataFrame(
        [
            (
                variant.touch_type,
                variant.source or "",
                variant.medium or "",
                variant.referrer or "",
                variant.click_parameter or "",
                channel,
            )
            for channel, variants in catalog.VARIANTS.items()
            for variant in variants
        ],
        columns=[*keys.columns, "channel"],
    )
    merged = keys.merge(lookup, how="left", on=list(keys.columns))
    return pd.Series(merged["channel"].fillna("Unassigned").to_numpy(), index=touches.index)


def first_touch_channels(touchpoints: pd.DataFrame) -> pd.Series:
    """Return the channel of each account's first tracked touch, indexed by account id."""
    channels = touch_channels(touchpoints)
    accounts = touchpoints.loc[channels.index, "account_id"].astype("string")
    first = ~accounts.duplicated()
    return pd.Series(channels[first].to_numpy(), index=accounts[first].to_numpy())


def build_crm(
    rng: np.random.Generator,
    touchpoints: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    start: date,
    days: int,
) -> Crm:
    """Build the deals export and the upsell conversions of a generated world."""
    kinds = touchpoints["conversion_kind"].astype("string")
    columns = ["deal_id", "account_id", "timestamp", "value"]
    opportunities: list[dict[str, Any]] = (
        touchpoints.loc[kinds == "opportunity", columns]
        .astype({"deal_id": "string"})
        .to_dict("records")  # type: ignore[assignment]
    )
    won = touchpoints[kinds == "closed_won"]
    won_by_deal: dict[str, dict[str, Any]] = {
        str(deal_id): {"timestamp": at, "value": value}
        for deal_id, at, value in zip(won["deal_id"], won["timestamp"], won["value"], strict=True)
    }
    origin = pd.Timestamp(start.isoformat(), tz="UTC")
    end = origin + pd.Timedelta(days=days)
    middle = origin + pd.Timedelta(days=days / 2)

    firmographics = accounts.assign(account_id=accounts["account_id"].astype("string"))
    companies: dict[str, dict[str, Any]] = firmographics.set_index("account_id").to_dict("index")  # type: ignore[assignment]
    channels = first_touch_channels(touchpoints)

    rows = []
    for deal in opportunities:
        deal_id = str(deal["deal_id"])
        account = str(deal["account_id"])
        company = companies[account]
        created = pd.Timestamp(deal["timestamp"])
        won_row = won_by_deal.get(deal_id)
        stalls = str(company[STALL_SEGMENT[0]]) == STALL_SEGMENT[1]
        drops = channels.get(account) == DROP_CHANNEL

        owners = OWNERS[str(company["region"])]
        row: dict[str, Any] = {
            "hs_object_id": deal_id,
            "dealname": f"{company['name']} - {company['plan']}",
            "account_id": account,
            "pipeline": PIPELINE,
            "owner": owners[int(rng.integers(len(owners)))],
            "deal_currency_code": "USD",
            "createdate": created,
            "industry": str(company["industry"]),
            "region": str(company["region"]),
            "employees": int(company["employees"]),
        }
        if won_row is not None:
            closed = pd.Timestamp(won_row["timestamp"])
            entries = _won_entries(rng, created, closed, stalls=stalls)
            row.update(dealstage=WON_STAGE, amount=float(won_row["value"]), closedate=closed)
        else:
            entries, lost_at = _other_entries(
                rng, created, stalls=stalls, drops=drops, middle=middle
            )
            row.update(amount=float(deal["value"]))
            if lost_at < end:
                entries[LOST_STAGE] = lost_at
                row.update(
                    dealstage=LOST_STAGE,
                    closedate=lost_at,
                    closed_lost_reason=LOST_REASONS[int(rng.integers(len(LOST_REASONS)))],
                )
            else:
                entries = {stage: at for stage, at in entries.items() if at < end}
                row.update(dealstage=list(entries)[-1])
        for stage, at in entries.items():
            row[stage_column(stage)] = at
        rows.append(row)

    won_rows = won.set_index(won["deal_id"].astype("string"))
    return Crm(deals=_deals_frame(rows), expansions=_expansions(rng, won_rows, end))


def _won_entries(
    rng: np.random.Generator, created: pd.Timestamp, closed: pd.Timestamp, *, stalls: bool
) -> dict[str, pd.Timestamp]:
    """Spread a won deal's cycle over the open stages, then enter Closed Won at its close."""
    weights = np.array(WON_STAGE_WEIGHTS)
    if stalls:
        weights[DEMO] = STALL_DEMO_WEIGHT
    shares = rng.dirichlet(weights)
    cycle = (closed - created).total_seconds()
    offsets = np.concatenate([[0.0], np.cumsum(shares[:-1])]) * cycle
    entries = {
        stage: created + pd.Timedelta(seconds=int(offset))
        for stage, offset in zip(OPEN_STAGES, offsets, strict=True)
    }
    entries[WON_STAGE] = closed
    return entries


def _other_entries(
    rng: np.random.Generator,
    created: pd.Timestamp,
    *,
    stalls: bool,
    drops: bool,
    middle: pd.Timestamp,
) -> tuple[dict[str, pd.Timestamp], pd.Timestamp]:
    """Walk a deal that the world does not win through the stages up to the one it stops in.

    Returns the stage entries and the time it would be lost, after its stay in that stage.
    """
    last = int(rng.choice(len(OPEN_STAGES), p=np.array(LAST_STAGE_SHARES)))
    stall_draw, drop_draw = rng.random(2)
    days = rng.exponential(np.array(STAGE_MEAN_DAYS))
    if stalls:
        days[DEMO] *= STALL_DAYS_FACTOR
        if stall_draw < STALL_STOP_SHARE:
            last = DEMO
    if drops and created >= middle and drop_draw < DROP_STOP_SHARE:
        last = DEMO

    entries: dict[str, pd.Timestamp] = {}
    at = created
    for index in range(last + 1):
        entries[OPEN_STAGES[index]] = at
        if index == DEMO and drops and at >= middle and drop_draw < DROP_STOP_SHARE:
            last = DEMO
        if index == last:
            break
        at = at + pd.Timedelta(seconds=int(days[index] * 86_400) + 3_600)
    lost_at = at + pd.Timedelta(seconds=int(days[last] * 86_400) + 3_600)
    return entries, lost_at


def _deals_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = [
        "hs_object_id",
        "dealname",
        "account_id",
        "pipeline",
        "dealstage",
        "amount",
        "deal_currency_code",
        "createdate",
        "closedate",
        "owner",
        "closed_lost_reason",
        "industry",
        "region",
        "employees",
        *(stage_column(stage) for stage in (*OPEN_STAGES, WON_STAGE, LOST_STAGE)),
    ]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    for column in columns:
        if column == "createdate" or column == "closedate" or column.startswith("Date entered"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.sort_values("hs_object_id", ignore_index=True)


def _expansions(rng: np.random.Generator, won: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Draw the upsells of won accounts: rows in the touchpoint file's columns, kind upsell."""
    won = won.sort_index()
    expands = rng.random(len(won)) < EXPANSION_SHARE
    low, high = EXPANSION_DAYS
    delays = rng.uniform(low, high, len(won))
    low_share, high_share = EXPANSION_VALUE_SHARE
    shares = rng.uniform(low_share, high_share, len(won))

    times = pd.to_datetime(won["timestamp"], utc=True) + pd.to_timedelta(delays, unit="D")
    times = times.dt.floor("s")
    keep = expands & (times < end).to_numpy()
    rows = won[keep]
    return pd.DataFrame(
        {
            "user_id": rows["user_id"].astype("string").to_numpy(),
            "account_id": rows["account_id"].astype("string").to_numpy(),
            "timestamp": times[keep].to_numpy(),
            "conversion": 1,
            "conversion_kind": "upsell",
            "value": np.round(rows["value"].to_numpy() * shares[keep], -2),
            "currency": "USD",
            "deal_id": [f"X{deal[1:]}" for deal in rows.index],
        }
    ).sort_values("timestamp", kind="stable", ignore_index=True)


def write_crm(crm: Crm, folder: Path) -> dict[str, Path]:
    """Write ``deals.csv`` and ``expansions.csv`` into ``folder``; return their paths by name.

    Times are ISO 8601 UTC text such as ``2026-01-05T14:30:00Z``, and the stage-entry
    headers are quoted because they contain quotes.
    """
    folder = Path(folder)
    paths = {"deals": folder / "deals.csv", "expansions": folder / "expansions.csv"}
    for name, frame in (("deals", crm.deals), ("expansions", crm.expansions)):
        text = frame.copy()
        for column in text.columns:
            if isinstance(text[column].dtype, pd.DatetimeTZDtype):
                text[column] = text[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        text.to_csv(paths[name], index=False, lineterminator="\n")
    return paths
