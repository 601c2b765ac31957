"""The attribution model family: one interface, a registry by name, validated parameters.

A model takes the journey tables and returns credit rows with the columns of the ``credits``
table: one row per touch and journey, ``credit`` in conversions and ``value_credit`` in
currency. Every model conserves credit: for each converting journey, the credits of its rows
add up to the journey's conversions and value. A converting journey with no touch is credited
whole to an ``(unattributed)`` row.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import ibis
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from journeymap import __version__
from journeymap.common.errors import ModelError
from journeymap.journeys.build import Journeys
from journeymap.store.schema import DERIVED_TABLES, UNATTRIBUTED

CREDIT_COLUMNS = [name for name in DERIVED_TABLES["credits"].names if name != "run_id"]
"""Columns of a model's credit rows; the run that stores them adds ``run_id``."""


class ModelParameters(BaseModel):
    """Base of every model's parameters: frozen, and unknown names are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AttributionModel(ABC):
    """One attribution model with its validated parameters.

    Subclasses set ``name``, ``Parameters`` and implement :meth:`credits`. Construct a model
    by name with :func:`create_model`.
    """

    name: ClassVar[str]
    Parameters: ClassVar[type[ModelParameters]] = ModelParameters
    needs_timestamps: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, **parameters: Any) -> None:
        try:
            self.parameters = self.Parameters(**parameters)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            known = ", ".join(self.Parameters.model_fields) or "none"
            subject = f"parameter {where!r}" if where else "parameters"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ModelError(
                f"invalid {subject} for model {self.name!r}: {message}",
                hint=(
                    f"Parameters of {self.name}: {known}; "
                    f"set them under attribution.parameters.{self.name}"
                ),
            ) from exc

    def describe(self) -> dict[str, Any]:
        """Return the model's name, parameters and the package version that ran it."""
        return {
            "model": self.name,
            "parameters": self.parameters.model_dump(),
            "version": __version__,
        }

    @abstractmethod
    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return credit rows (the ``credits`` columns) for every converting journey."""

    def channel_totals(self, journeys: Journeys) -> pd.DataFrame | None:
        """Return the credit of each kind and channel without per-touch rows, or None.

        A model whose credit depends only on each journey's channel sequence can sum it over
        the distinct paths, which is far cheaper than spreading it onto every touch. The frame
        has ``kind``, ``channel``, ``conversions`` and ``value`` for the converting journeys
        with touches. Its sums by channel equal those of :meth:`credits` without the
        ``(unattributed)`` rows. None means the model has no such shortcut.
        """
        return None

    def __repr__(self) -> str:
        params = ", ".join(
            f"{key}={value!r}" for key, value in self.parameters.model_dump().items()
        )
        return f"{type(self).__name__}({params})"


REGISTRY: dict[str, type[AttributionModel]] = {}


def register(cls: type[AttributionModel]) -> type[AttributionModel]:
    """Add a model class to the registry under its ``name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"model name {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def model_names() -> list[str]:
    """Return the registered model names in registration order."""
    return list(REGISTRY)


def create_model(name: str, parameters: dict[str, Any] | None = None) -> AttributionModel:
    """Return the model registered as ``name``, built with ``parameters``.

    Raises:
        ModelError: no model has that name, or a parameter is invalid.
    """
    cls = REGISTRY.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        suggestion = f"Did you mean {', '.join(close)}? " if close else ""
        raise ModelError(
            f"unknown model {name!r}",
            hint=f"{suggestion}Known models: {', '.join(REGISTRY)}, or all",
        )
    return cls(**(parameters or {}))


def resolve_models(
    names: Iterable[str], parameters: dict[str, dict[str, Any]] | None = None
) -> list[AttributionModel]:
    """Return the models for a list of names, expanding ``all``; duplicates are dropped."""
    parameters = parameters or {}
    for name in parameters:
        if name not in REGISTRY:
            close = difflib.get_close_matches(name, list(REGISTRY), n=1)
            suggestion = f"Did you mean {close[0]}? " if close else ""
            raise ModelError(
                f"parameters given for unknown model {name!r} (attribution.parameters.{name})",
                hint=f"{suggestion}Known models: {', '.join(REGISTRY)}",
            )
    expanded: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip().lower()
            if not part:
                continue
            for item in model_names() if part == "all" else [part]:
                if item not in expanded:
                    expanded.append(item)
    if not expanded:
        raise ModelError(
            "no model given", hint=f"Name one or more of {', '.join(REGISTRY)}, or all"
        )
    return [create_model(name, parameters.get(name)) for name in expanded]


class ChannelLevelModel(AttributionModel):
    """A model that credits channels from aggregated journeys, one conversion kind at a time.

    Journeys of different kinds (lead, opportunity, closed_won) form separate games, so the
    model is fit once per kind. Subclasses implement :meth:`channel_credit`; the channel
    credit is then spread over the touches (see :mod:`journeymap.attribution.allocate`).
    """

    @abstractmethod
    def channel_credit(
        self, journeys: Journeys, kind: str
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Return conversions and value credited to each channel for journeys of one kind.

        ``journeys`` holds every kind; the model reads the kind's paths. Both mappings add
        up to the conversions and value of the kind's converting journeys that have touches.
        """

    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return per-touch credit rows for every kind in ``journeys``."""
        from journeymap.attribution.allocate import spread_channel_credit

        kinds = journey_kinds(journeys)
        parts = []
        for kind in kinds:
            conversions, value = self.channel_credit(journeys, kind)
            of_kind = journeys_of_kind(journeys, kind)
            parts.append(spread_channel_credit(self.name, of_kind, conversions, value, kind))
        if not parts:
            return unattributed_rows(self.name, journeys.journeys).select(*CREDIT_COLUMNS)
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.union(part)
        return combined

    def channel_totals(self, journeys: Journeys) -> pd.DataFrame:
        """Return :meth:`channel_credit` of every kind as one frame."""
        rows = []
        for kind in journey_kinds(journeys):
            conversions, value = self.channel_credit(journeys, kind)
            for channel in sorted(set(conversions) | set(value)):
                rows.append((kind, channel, conversions.get(channel, 0.0), value.get(channel, 0.0)))
        return pd.DataFrame(rows, columns=TOTAL_COLUMNS)


TOTAL_COLUMNS = ["kind", "channel", "conversions", "value"]
"""Columns of :meth:`AttributionModel.channel_totals`."""


def journey_kinds(journeys: Journeys) -> list[str]:
    """Return the conversion kinds of the journeys, sorted (memoised)."""
    if "kinds" not in journeys.memo:
        kinds = journeys.journeys.select("kind").distinct().to_pandas().kind.dropna()
        journeys.memo["kinds"] = sorted(str(kind) for kind in kinds)
    return list(journeys.memo["kinds"])


def journeys_of_kind(journeys: Journeys, kind: str) -> Journeys:
    """Return the journeys (and their touches) of one conversion kind."""
    rows = journeys.journeys.filter(journeys.journeys.kind == kind)
    touches = journeys.touches.semi_join(rows.select("journey_id"), "journey_id")
    return Journeys(journeys=rows, touches=touches)


def unattributed_rows(model: str, journeys: ibis.Table) -> ibis.Table:
    """Return one credit row for each converting journey that has no touch."""
    empty = journeys.filter((journeys.n_touches == 0) & (journeys.conversions > 0))
    return empty.select(
        model=ibis.literal(model),
        journey_id=empty.journey_id,
        conversion_id=empty.conversion_id,
        kind=empty.kind,
        touchpoint_id=ibis.null(str),
        position=ibis.literal(0, type="int64"),
        channel=ibis.literal(UNATTRIBUTED),
        source_medium=ibis.literal(UNATTRIBUTED),
        campaign=ibis.literal(UNATTRIBUTED),
        ad_id=ibis.literal(UNATTRIBUTED),
        credit=empty.conversions,
        value_credit=empty.value,
    )
