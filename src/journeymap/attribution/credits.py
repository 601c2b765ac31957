"""Running models over journeys, and summing their credit by channel, campaign or ad."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import ibis
import pandas as pd

from journeymap.attribution.base import AttributionModel
from journeymap.common.errors import ModelError
from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys
from journeymap.store.schema import UNATTRIBUTED

log = logging.getLogger("journeymap")

GRAINS: dict[str, str] = {
    "channel": "channel",
    "source_medium": "source_medium",
    "campaign": "campaign",
    "ad": "ad_id",
}
"""Grain name (as on the command line) and the credits column it groups by."""


def attribute(journeys: Journeys, models: Sequence[AttributionModel]) -> ibis.Table:
    """Return the credit rows of every model, one table with a ``model`` column."""
    if not models:
        raise ModelError("no model to run", hint="Pass --models with one or more names, or all")
    parts = [model.credits(journeys) for model in models]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.union(part)
    return combined


def credit_by(
    credits: ibis.Table, grain: str = "channel", kinds: Sequence[str] | None = None
) -> ibis.Table:
    """Sum credit per model and grain value.

    Returns a table with the columns ``model``, the grain (``channel``, ``source_medium``,
    ``campaign`` or ``ad``), ``conversions`` and ``value``, ordered by model and by
    conversions, largest first.
    """
    if grain not in GRAINS:
        raise ModelError(f"unknown grain {grain!r}", hint=f"Use one of {', '.join(GRAINS)}")
    column = GRAINS[grain]
    rows = credits
    if kinds:
        rows = rows.filter(rows.kind.isin([kind.lower() for kind in kinds]))
    # Decimal sums do not depend on the order in which parallel workers add them up, so
    # the printed totals are the same on every run (float sums differ in the last digits).
    summed = rows.group_by(["model", rows[column].name(grain)]).aggregate(
        conversions=exact_sum(rows.credit),
        value=exact_sum(rows.value_credit),
    )
    return summed.order_by(["model", ibis.desc("conversions"), grain])


def channel_credit_table(
    journeys: Journeys, models: Sequence[AttributionModel], kinds: Sequence[str] | None = None
) -> pd.DataFrame:
    """Sum each model's credit by channel without writing per-touch rows where possible.

    Returns the frame that ``credit_by(attribute(journeys, models), "channel", kinds)``
    returns (``model, channel, conversions, value``, ordered the same way). Models with
    :meth:`~journeymap.attribution.base.AttributionModel.channel_totals` sum over distinct
    paths, and the others run in the engine. The sums agree to floating-point rounding,
    because the engine adds decimals and the shortcut adds floats.
    """
    if not models:
        raise ModelError("no model to run", hint="Pass --models with one or more names, or all")
    selected = {kind.lower() for kind in kinds} if kinds else None
    frames = []
    unattributed: pd.DataFrame | None = None
    for model in models:
        totals = model.channel_totals(journeys)
        if totals is None:
            frames.append(credit_by(model.credits(journeys), "channel", kinds).to_pandas())
            continue
        if unattributed is None:
            unattributed = _unattributed_by_kind(journeys)
        rows = _concat([totals, unattributed], ["kind", "channel", "conversions", "value"])
        if selected is not None:
            rows = rows[rows.kind.isin(selected)]
        summed = rows.groupby("channel", sort=False)[["conversions", "value"]].sum()
        summed = summed[(summed.conversions != 0) | (summed.value != 0)]
        frames.append(summed.reset_index().assign(model=model.name))
    table = _concat(frames, ["model", "channel", "conversions", "value"])
    table = table.astype({"conversions": "float64", "value": "float64"})
    table = table.sort_values(
        ["model", "conversions", "channel"], ascending=[True, False, True], kind="stable"
    )
    return table.reset_index(drop=True)


def _concat(frames: Sequence[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Concatenate the non-empty frames' ``columns``; pandas warns about empty ones."""
    filled = [frame[columns] for frame in frames if not frame.empty]
    if not filled:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    return pd.concat(filled, ignore_index=True)


def _unattributed_by_kind(journeys: Journeys) -> pd.DataFrame:
    """Return the conversions and value of converting journeys without touches, by kind.

    Memoised in ``journeys.memo["unattributed"]``.
    """
    if "unattributed" in journeys.memo:
        known: pd.DataFrame = journeys.memo["unattributed"]
        return known
    rows = journeys.journeys
    empty = rows.filter((rows.n_touches == 0) & (rows.conversions > 0))
    summed = empty.group_by("kind").aggregate(
        conversions=exact_sum(empty.conversions), value=exact_sum(empty.value)
    )
    frame: pd.DataFrame = summed.to_pandas()
    frame = frame.assign(channel=UNATTRIBUTED)[["kind", "channel", "conversions", "value"]]
    journeys.memo["unattributed"] = frame
    return frame
