"""What every view shares: the empty state, JSON-safe records and the filtered journeys.

A view is a function ``(store, config, filters) -> dict`` whose result is plain JSON data. A
view that lacks the data it needs raises :class:`NoDataError`, which names what to import or
run; the REST API returns it as ``empty`` and the pages show it in place of the view.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import ibis
import numpy as np
import pandas as pd

from journeymap.analyses.icp import SIZE_BANDS
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError
from journeymap.report.gather import report_kind
from journeymap.store.store import Store
from journeymap.web.filters import Filters


class NoDataError(Exception):
    """A view's data is missing; ``command`` is the command that provides it."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.command = command

    def as_dict(self) -> dict[str, str | None]:
        """Return the state as the API's ``empty`` object."""
        return {"message": self.message, "command": self.command}


def json_value(value: Any) -> Any:
    """Return ``value`` as a JSON-safe Python value: NaN and NaT become None, times ISO text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of ``frame`` as JSON-safe dicts."""
    columns = [str(column) for column in frame.columns]
    return [
        {column: json_value(cell) for column, cell in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def require_journeys(store: Store) -> None:
    """Raise :class:`NoDataError` unless journeys were built."""
    if store.has_rows("builds"):
        return
    if not any(store.has_rows(name) for name in ("touchpoints", "path_aggregates", "events")):
        raise NoDataError(
            f"The store {store.location} has no touchpoints yet. Import some, or try the demo "
            "world",
            "journeymap import touchpoints FILE  (or: journeymap demo)",
        )
    raise NoDataError("Journeys have not been built from the imported data yet", "journeymap build")


def require_credits(store: Store) -> None:
    """Raise :class:`NoDataError` unless an attribution run is stored."""
    require_journeys(store)
    if not (store.has_rows("runs") and store.has_rows("credits")):
        raise NoDataError("No attribution run is stored yet", "journeymap attribute")


def run_models(store: Store) -> list[str]:
    """Return the models of the last attribution run, in the order they ran."""
    if not store.has_rows("runs"):
        return []
    runs = store.table("runs").order_by(ibis.desc("created_at")).limit(1).to_pandas()
    return [str(entry["model"]) for entry in json.loads(runs.models.iloc[0])]


def journey_kinds(store: Store) -> list[str]:
    """Return the conversion kinds of the built journeys, most conversions first."""
    journeys = store.table("journeys")
    counted = (
        journeys.filter(journeys.conversions > 0)
        .group_by("kind")
        .aggregate(conversions=journeys.conversions.sum())
        .order_by([ibis.desc("conversions"), "kind"])
        .to_pandas()
    )
    return [str(kind) for kind in counted.kind]


def chosen_kind(store: Store, config: Config, filters: Filters) -> str | None:
    """Return the kind a view counts: the filter's, else the report's (closed-won first).

    Raises:
        ConfigError: the filter names a kind that no journey has.
    """
    if filters.kind is None:
        return report_kind(store, config)
    kinds = journey_kinds(store)
    if filters.kind not in kinds:
        raise ConfigError(
            f"no conversions of kind {filters.kind!r}",
            location="kind",
            hint=f"Kinds in the data: {', '.join(kinds) or 'none'}",
        )
    return filters.kind


def check_model(filters: Filters, models: Sequence[str]) -> str | None:
    """Return the filter's model, or None when unset.

    Raises:
        ConfigError: the model is not among the stored run's ``models``.
    """
    if filters.model is None or filters.model in models:
        return filters.model
    raise ConfigError(
        f"the last attribution run has no model {filters.model!r}",
        location="model",
        hint=f"Pick one of {', '.join(models) or 'none'}, or run journeymap attribute",
    )


def segment_values(store: Store) -> dict[str, list[str]]:
    """Return the values of each segment dimension in the accounts, for the filter form."""
    if not store.has_rows("accounts"):
        return {}
    accounts = _accounts_with_size_band(store.table("accounts"))
    values: dict[str, list[str]] = {}
    for dimension in ("industry", "size_band", "region", "plan"):
        column = accounts[dimension]
        found = accounts.filter(column.notnull()).select(column).distinct().to_pandas()
        if len(found):
            values[dimension] = sorted(str(value) for value in found[dimension])
    return values


def segment_account_ids(store: Store, segment: tuple[str, str]) -> ibis.Table:
    """Return the ``account_id`` of every account in ``segment``.

    Raises:
        ConfigError: the store has no accounts to segment by.
    """
    if not store.has_rows("accounts"):
        raise ConfigError(
            "the segment filter needs accounts, and none were imported",
            location="segment",
            hint="Import them with journeymap import deals FILE --accounts FILE, "
            "or clear the segment",
        )
    accounts = _accounts_with_size_band(store.table("accounts"))
    dimension, value = segment
    chosen = accounts.filter(accounts[dimension].cast("string") == value)
    return chosen.select("account_id").distinct()


def _accounts_with_size_band(accounts: ibis.Table) -> ibis.Table:
    employees = accounts.employees
    bands = [(employees >= minimum, label) for label, minimum in reversed(SIZE_BANDS)]
    return accounts.mutate(size_band=ibis.cases(*bands, else_=ibis.null("string")))


def filtered_journeys(
    store: Store, filters: Filters, kind: str | None, journeys: ibis.Table | None = None
) -> ibis.Table:
    """Return the journeys of ``kind`` within the filters' dates and segment.

    ``journeys`` defaults to the stored ones. Dates and segments apply to converting journeys
    (the conversion's date and account); journeys without a conversion are kept only when
    neither is set.
    """
    if journeys is None:
        journeys = store.table("journeys")
    if kind is not None:
        journeys = journeys.filter(journeys.kind == kind)
    if filters.start_at is not None:
        journeys = journeys.filter(journeys.converted_at >= filters.start_at)
    if filters.end_before is not None:
        journeys = journeys.filter(journeys.converted_at < filters.end_before)
    if filters.segment is not None:
        accounts = segment_account_ids(store, filters.segment)
        conversions = store.table("conversions").select("conversion_id", "account_id")
        inside = conversions.semi_join(accounts, "account_id").select("conversion_id")
        journeys = journeys.semi_join(inside, "conversion_id")
    return journeys


def store_summary(store: Store) -> dict[str, Any]:
    """Return the row counts of the main tables and the times of the last build and run."""
    counts = {}
    for name in (
        "touchpoints",
        "conversions",
        "events",
        "ad_spend",
        "deals",
        "deal_stages",
        "accounts",
        "journeys",
        "credits",
    ):
        if name in store.con.list_tables():
            counts[name] = int(store.table(name).count().execute())
    built = None
    if store.has_rows("builds"):
        built = store.table("builds").created_at.max().execute()
    ran = None
    if store.has_rows("runs"):
        ran = store.table("runs").created_at.max().execute()
    return {
        "location": store.location,
        "rows": counts,
        "built_at": json_value(built),
        "attributed_at": json_value(ran),
        "models": run_models(store),
        "kinds": journey_kinds(store) if store.has_rows("builds") else [],
        "segments": segment_values(store),
    }


class NotFoundError(ConfigError):
    """A person, account or other id that the store does not have."""
