"""The report as data: every figure the HTML report shows, gathered once from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from journeymap.report.journey import JourneyData


@dataclass(frozen=True)
class Headline:
    """The numbers at the top of the report."""

    journeys: float
    """Journeys, converting and not (aggregated paths count each journey they stand for)."""
    converting_journeys: float
    conversions: float
    value: float
    currency: str
    touches: int
    """Touches in journeys after the path transform."""
    channels: int
    unattributed_conversions: float
    """Conversions with no eligible touch, credited to ``(unattributed)``."""
    unattributed_value: float
    first_touch_at: datetime | None
    last_touch_at: datetime | None


@dataclass(frozen=True)
class ReportData:
    """Everything the report renders; frames are small (one row per channel, path or model).

    ``credit_by_channel``: ``model, channel, conversions, value``.
    ``credit_by_campaign``: ``model, campaign, conversions, value`` (empty for path input).
    ``top_paths``: ``path, conversions, value, nulls, share, conversion_rate``.
    ``channel_roles``: ``channel, first, middle, last``, their ``*_share`` columns and ``role``.
    ``spend_by_channel``: ``model, channel, conversions, value, cost, roas, cost_per_conversion``
    (empty when no spend is loaded); ``spend_by_campaign`` has ``campaign`` in place of ``channel``.
    ``gather_report`` orders both by model, then by spend, largest first.
    """

    title: str
    generated_at: datetime
    package_version: str
    store_location: str
    settings: dict[str, Any]
    """Journey and model settings that produced the figures (lookback, transform, kinds ...)."""
    models: list[dict[str, Any]]
    """``describe()`` of each model: name, parameters, version."""
    headline: Headline
    credit_by_channel: pd.DataFrame
    credit_by_campaign: pd.DataFrame
    top_paths: pd.DataFrame
    channel_roles: pd.DataFrame
    spend_by_channel: pd.DataFrame
    spend_by_campaign: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    """Caveats shown to the reader, such as models skipped for lack of timestamps."""
    kind: str | None = None
    """Conversion kind the figures count, such as ``closed_won``. None when not known."""
    primary_model: str | None = None
    """Model whose credit the spend chart and the spend-and-return tables show.

    ``gather_report`` picks ``linear`` when it ran, else the first model. When this is None or
    the model has no spend rows, the renderer shows the first model in ``models`` that has them.
    """
    journey: JourneyData | None = None
    """Stage, funnel, velocity, ICP and blind-spot figures; None leaves those sections out."""
