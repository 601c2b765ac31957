"""Rows of the demo touchpoint file: touches and conversions as code arrays, then one frame.

Codes index the :class:`Vocabulary` lists, with -1 for an empty cell. The frame keeps
repeated text as categoricals and click ids as Arrow strings, so that its memory stays close
to the size of the data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from journeymap.demo import catalog
from journeymap.demo.model import NEVER, Outcome
from journeymap.demo.population import Directory, Population, numbered_ids
from journeymap.demo.touches import Touches, Vocabulary

TOUCHPOINT_COLUMNS = [
    "user_id",
    "account_id",
    "timestamp",
    "touch_type",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "ad_id",
    *catalog.CLICK_PARAMETERS,
    "referrer",
    "conversion",
    "conversion_kind",
    "value",
    "currency",
    "deal_id",
]
CONVERSION_KINDS = ["lead", "opportunity", "closed_won"]
ROW_TOUCH, ROW_LEAD, ROW_OPPORTUNITY, ROW_WON = 0, 1, 2, 3
"""Sort order of rows with the same time and person: a touch first, then the stages in order."""

BASE64URL = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
CLICK_ID_FORMATS: dict[str, tuple[str, NDArray[np.uint8], int]] = {
    "gclid": ("Cj0KCQiA", BASE64URL, 40),
    "gbraid": ("0AAAAAD", BASE64URL, 26),
    "msclkid": ("", HEX, 32),
    "li_fat_id": ("", HEX, 32),
    "fbclid": ("IwAR", BASE64URL, 44),
}
"""Prefix, alphabet and random length of each click id, shaped like the platforms' own."""


@dataclass(frozen=True)
class Rows:
    """Touchpoint rows as arrays. ``person`` and ``deal`` are global person and account indices."""

    person: NDArray[np.int32]
    time: NDArray[np.int32]
    """Seconds from the start of the window."""
    order: NDArray[np.int8]
    variant: NDArray[np.int16]
    campaign: NDArray[np.int32]
    content: NDArray[np.int16]
    term: NDArray[np.int16]
    ad: NDArray[np.int16]
    conversion: NDArray[np.int8]
    kind: NDArray[np.int8]
    value: NDArray[np.float64]
    deal: NDArray[np.int32]

    @classmethod
    def concatenate(cls, parts: list[Rows]) -> Rows:
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


def _conversions(
    person: NDArray[np.int64],
    time: NDArray[np.int64],
    order: int,
    value: NDArray[np.float64],
    deal: NDArray[np.int64],
) -> Rows:
    size = len(person)
    empty = np.full(size, -1)
    return Rows(
        person=person.astype(np.int32),
        time=time.astype(np.int32),
        order=np.full(size, order, dtype=np.int8),
        variant=empty.astype(np.int16),
        campaign=empty.astype(np.int32),
        content=empty.astype(np.int16),
        term=empty.astype(np.int16),
        ad=empty.astype(np.int16),
        conversion=np.ones(size, dtype=np.int8),
        kind=np.full(size, order - ROW_LEAD, dtype=np.int8),
        value=value.astype(np.float64),
        deal=deal.astype(np.int32),
    )


def touchpoint_rows(
    touches: Touches,
    outcome: Outcome,
    vocabulary: Vocabulary,
    *,
    person_offset: int,
    account_offset: int,
    opportunity_amount: NDArray[np.float64],
    won_amount: NDArray[np.float64],
) -> Rows:
    """Return the tracked touches and the conversions of one group as touchpoint rows.

    A lead caused by a tracked touch with no lead delay is a form fill on that touch's row.
    Every other conversion gets a row of its own with no channel fields. Opportunity and
    closed-won rows belong to the account's champion and carry the deal.
    """
    lead_touch = outcome.lead_touch
    caused = lead_touch >= 0
    on_row = np.zeros(len(touches.time), dtype=bool)
    candidates = lead_touch[caused]
    on_row[candidates] = touches.tracked[candidates] & (touches.lead_delay[candidates] == 0)

    tracked = np.flatnonzero(touches.tracked)
    variant = touches.variant[tracked]
    flagged = on_row[tracked]
    touch_rows = Rows(
        person=(touches.person[tracked] + person_offset).astype(np.int32),
        time=touches.time[tracked].astype(np.int32),
        order=np.full(len(tracked), ROW_TOUCH, dtype=np.int8),
        variant=variant.astype(np.int16),
        campaign=touches.campaign[tracked].astype(np.int32),
        content=touches.content[tracked].astype(np.int16),
        term=touches.term[tracked].astype(np.int16),
        ad=np.where(vocabulary.variant_tagged[variant], touches.ad[tracked], -1).astype(np.int16),
        conversion=flagged.astype(np.int8),
        kind=np.where(flagged, 0, -1).astype(np.int8),
        value=np.where(flagged, 0.0, np.nan),
        deal=np.full(len(tracked), -1, dtype=np.int32),
    )

    has_lead = outcome.lead_time < NEVER
    lead_on_row = np.zeros(len(has_lead), dtype=bool)
    lead_on_row[caused] = on_row[lead_touch[caused]]
    leads = np.flatnonzero(has_lead & ~lead_on_row)
    opened = np.flatnonzero(outcome.opportunity_time < NEVER)
    won = np.flatnonzero(outcome.won_time < NEVER)
    return Rows.concatenate(
        [
            touch_rows,
            _conversions(
                leads + person_offset,
                outcome.lead_time[leads],
                ROW_LEAD,
                np.zeros(len(leads)),
                np.full(len(leads), -1, dtype=np.int64),
            ),
            _conversions(
                outcome.champion[opened] + person_offset,
                outcome.opportunity_time[opened],
                ROW_OPPORTUNITY,
                opportunity_amount[opened],
                opened + account_offset,
            ),
            _conversions(
                outcome.champion[won] + person_offset,
                outcome.won_time[won],
                ROW_WON,
                won_amount[won],
                won + account_offset,
            ),
        ]
    )


def _lookup(table: NDArray[np.int64], codes: NDArray[np.int16]) -> NDArray[np.int64]:
    """Return ``table[codes]``, with -1 where a code is -1."""
    return np.append(table, -1)[codes]


def _categorical(
    codes: NDArray[np.integer[Any]], categories: list[str] | pd.Index
) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(categories))


def _click_ids(
    rng: np.random.Generator, parameter: NDArray[np.int64], index: int
) -> pd.arrays.ArrowExtensionArray:
    """Draw a random click id for each row whose click parameter is ``index``, null elsewhere."""
    prefix, alphabet, length = CLICK_ID_FORMATS[catalog.CLICK_PARAMETERS[index]]
    rows = np.flatnonzero(parameter == index)
    body = alphabet[rng.integers(0, len(alphabet), (len(rows), length), dtype=np.uint8)]
    head = np.broadcast_to(
        np.frombuffer(prefix.encode("ascii"), dtype=np.uint8), (len(rows), len(prefix))
    )
    text = np.ascontiguousarray(np.concatenate([head, body], axis=1))
    tokens = pa.array(text.view(f"S{len(prefix) + length}").ravel(), type=pa.binary()).cast(
        pa.string()
    )
    positions = np.zeros(len(parameter), dtype=np.int64)
    positions[rows] = np.arange(len(rows))
    column = (
        tokens.take(pa.array(positions, mask=parameter != index))
        if len(rows)
        else pa.nulls(len(parameter), pa.string())
    )
    return pd.arrays.ArrowExtensionArray(column)


def touchpoint_frame(
    rows: Rows,
    vocabulary: Vocabulary,
    directory: Directory,
    population: Population,
    *,
    start: date,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Sort the rows by time, person and stage, and build the touchpoint frame."""
    # One int64 key of time, person and row order sorts in one pass: time needs at most 31 bits
    # and the person index at most 31, so the key fits when the people fit in the bits left.
    person_bits = population.people.bit_length()
    time = rows.time.astype(np.int64)
    if 31 + person_bits + 2 > 63:
        order = np.lexsort((rows.order, rows.person, time))
    else:
        key = (time << (person_bits + 2)) | (rows.person.astype(np.int64) << 2) | rows.order
        order = np.argsort(key, kind="stable")
    del time

    # Columns are gathered in sorted order one at a time, so that no second copy of all rows
    # is alive at once.
    person = rows.person[order]
    columns: dict[str, object] = {
        "user_id": _categorical(person, directory.person_ids),
        "account_id": _categorical(population.person_account[person], directory.account_ids),
    }
    del person
    seconds = np.datetime64(start.isoformat(), "s") + rows.time[order].astype("timedelta64[s]")
    columns["timestamp"] = pd.Series(seconds.astype("datetime64[us]")).dt.tz_localize("UTC")
    del seconds
    variant = rows.variant[order]
    columns["touch_type"] = _categorical(
        _lookup(vocabulary.variant_touch_type, variant), vocabulary.touch_types
    )
    columns["utm_source"] = _categorical(
        _lookup(vocabulary.variant_source, variant), vocabulary.sources
    )
    columns["utm_medium"] = _categorical(
        _lookup(vocabulary.variant_medium, variant), vocabulary.mediums
    )
    columns["utm_campaign"] = _categorical(rows.campaign[order], vocabulary.campaigns)
    columns["utm_content"] = _categorical(rows.content[order], vocabulary.contents)
    columns["utm_term"] = _categorical(rows.term[order], vocabulary.terms)
    columns["ad_id"] = _categorical(rows.ad[order], vocabulary.ad_ids)
    parameter = _lookup(vocabulary.variant_click, variant)
    for index, name in enumerate(catalog.CLICK_PARAMETERS):
        columns[name] = _click_ids(rng, parameter, index)
    del parameter
    columns["referrer"] = _categorical(
        _lookup(vocabulary.variant_referrer, variant), vocabulary.referrers
    )
    del variant
    conversion = rows.conversion[order]
    columns["conversion"] = conversion
    columns["conversion_kind"] = _categorical(rows.kind[order], CONVERSION_KINDS)
    columns["value"] = rows.value[order]
    columns["currency"] = _categorical(np.where(conversion == 1, 0, -1), ["USD"])
    deal = rows.deal[order]
    deals = np.unique(deal[deal >= 0])
    columns["deal_id"] = _categorical(
        np.where(deal >= 0, np.searchsorted(deals, deal), -1), numbered_ids("D", deals + 1, 6)
    )
    return pd.DataFrame(columns, columns=TOUCHPOINT_COLUMNS)
