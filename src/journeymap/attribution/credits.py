"""Running models over journeys, and summing their credit by channel, campaign or ad."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import ibis

from journeymap.attribution.base import AttributionModel
from journeymap.common.errors import ModelError
from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys

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
