"""The dashboard's filters: date range, segment, model, lookback and conversion kind.

Every page and API endpoint takes the same query parameters, so a page's URL can be shared and
reloaded. :func:`parse_filters` validates them and raises :class:`ConfigError` naming the
parameter, the value and what to send instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from journeymap.common.errors import ConfigError

SEGMENT_DIMENSIONS = ("industry", "size_band", "region", "plan")
"""Account columns a segment filter can name; ``size_band`` comes from ``employees``."""

GRAINS = ("channel", "campaign", "ad")
"""Breakdowns of the attribution page."""


@dataclass(frozen=True)
class Filters:
    """One request's filters. ``None`` means not set.

    ``start`` and ``end`` bound the conversion date (both days included, UTC). ``segment`` is a
    ``(dimension, value)`` pair of the converting account. ``lookback`` keeps only the touches
    that many days or less before the conversion (at most the built lookback). ``model`` picks
    the model of the single-model views, ``kind`` the conversion kind, and ``grain`` the
    attribution breakdown.
    """

    start: date | None = None
    end: date | None = None
    segment: tuple[str, str] | None = None
    model: str | None = None
    lookback: float | None = None
    kind: str | None = None
    grain: str = "channel"

    @property
    def start_at(self) -> datetime | None:
        """The first instant of ``start`` in UTC."""
        return None if self.start is None else datetime.combine(self.start, time.min, UTC)

    @property
    def end_before(self) -> datetime | None:
        """The first instant after ``end`` in UTC: the exclusive upper bound."""
        if self.end is None:
            return None
        return datetime.combine(self.end, time.min, UTC) + timedelta(days=1)

    def key(self) -> tuple[Any, ...]:
        """Return a hashable form for cache keys."""
        return tuple(asdict(self).values())

    def without(self, *names: str) -> Filters:
        """Return a copy with the named filters unset (``grain`` back to ``channel``)."""
        defaults = Filters()
        return replace(self, **{name: getattr(defaults, name) for name in names})

    def query(self, **changes: Any) -> str:
        """Return the filters as a URL query string, with ``changes`` applied."""
        values = self.as_params() | {name: value for name, value in changes.items()}
        return urlencode({name: value for name, value in values.items() if value not in ("", None)})

    def as_params(self) -> dict[str, str]:
        """Return the filters as query parameters; unset ones are left out."""
        params: dict[str, str] = {}
        if self.start is not None:
            params["start"] = self.start.isoformat()
        if self.end is not None:
            params["end"] = self.end.isoformat()
        if self.segment is not None:
            params["segment"] = f"{self.segment[0]}:{self.segment[1]}"
        if self.model is not None:
            params["model"] = self.model
        if self.lookback is not None:
            params["lookback"] = f"{self.lookback:g}"
        if self.kind is not None:
            params["kind"] = self.kind
        if self.grain != "channel":
            params["grain"] = self.grain
        return params


def parse_filters(params: Mapping[str, str]) -> Filters:
    """Read and check the filter parameters of a request; empty values count as unset.

    Raises:
        ConfigError: a date is not YYYY-MM-DD, ``start`` is after ``end``, the segment is not
            ``dimension:value`` with a known dimension, ``lookback`` is not a positive number
            of days, or ``grain`` is unknown.
    """
    start = _date(params, "start")
    end = _date(params, "end")
    if start is not None and end is not None and start > end:
        raise ConfigError(
            f"start {start} is after end {end}",
            location="start",
            hint="Pick a start date on or before the end date",
        )
    grain = _text(params, "grain") or "channel"
    if grain not in GRAINS:
        raise ConfigError(
            f"unknown breakdown {grain!r}", location="grain", hint=f"Use one of {', '.join(GRAINS)}"
        )
    return Filters(
        start=start,
        end=end,
        segment=_segment(params),
        model=_text(params, "model"),
        lookback=_lookback(params),
        kind=_text(params, "kind"),
        grain=grain,
    )


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name, "").strip()
    return value or None


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = _text(params, name)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"invalid date {text!r}", location=name, hint="Write dates as YYYY-MM-DD"
        ) from None


def _segment(params: Mapping[str, str]) -> tuple[str, str] | None:
    text = _text(params, "segment")
    if text is None:
        return None
    dimension, _, value = text.partition(":")
    if dimension not in SEGMENT_DIMENSIONS or not value.strip():
        raise ConfigError(
            f"invalid segment {text!r}",
            location="segment",
            hint=f"Write DIMENSION:VALUE with a dimension of {', '.join(SEGMENT_DIMENSIONS)}, "
            "for example industry:Software",
        )
    return dimension, value.strip()


def _lookback(params: Mapping[str, str]) -> float | None:
    text = _text(params, "lookback")
    if text is None:
        return None
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not days > 0 or days == float("inf"):
        raise ConfigError(
            f"invalid lookback {text!r}",
            location="lookback",
            hint="Give the lookback as a positive number of days, for example 30",
        )
    return days
