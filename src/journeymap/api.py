"""The Python API: the verbs of the command line as functions.

A typical session::

    from journeymap import api
    store = api.open_store("journeymap.duckdb")
    api.import_file(store, "touchpoints.csv", input_format="touchpoints")
    journeys = api.build(store)
    credits = api.attribute(store, journeys, models=["all"])
    table = api.credit_table(credits, by="channel")      # a pandas frame
    api.write_report(store, "report.html")

Every step reads and writes tables in the store, so each can also run alone.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ibis
import pandas as pd

from journeymap import __version__
from journeymap.attribution import GRAINS, AttributionModel, credit_by, resolve_models
from journeymap.attribution import attribute as run_models
from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import Config, parse_config
from journeymap.common.errors import ConfigError, ModelError
from journeymap.common.timeutil import utc_now
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys, materialize
from journeymap.sources.batch import ImportResult
from journeymap.store.store import MEMORY, Store

log = logging.getLogger("journeymap")

InputFormat = Literal["touchpoints", "paths", "snowplow", "spend"]
INPUT_FORMATS: tuple[str, ...] = ("touchpoints", "paths", "snowplow", "spend")


@dataclass(frozen=True)
class Attribution:
    """The stored credits of one run, with the models and settings that made them."""

    run_id: str
    credits: ibis.Table
    models: list[AttributionModel]
    notes: list[str]


def open_store(path: str | Path | None = None, config: Config | None = None) -> Store:
    """Open the DuckDB store at ``path``, else at the configured path; ``":memory:"`` for none."""
    location = path if path is not None else (config or Config()).store
    return Store.open(location or MEMORY)


def import_file(
    store: Store,
    path: str | Path,
    *,
    input_format: InputFormat | str,
    config: Config | None = None,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    path_separator: str = ">",
    platform: str | None = None,
) -> ImportResult:
    """Import one file into the store, all rows or none.

    Raises:
        InputError: the file is missing, a column is missing, or a cell is invalid.
        ConfigError: ``input_format`` is unknown, or the mapping names an unknown field.
    """
    config = config or Config()
    if input_format == "touchpoints":
        from journeymap.sources.touchpoints import import_touchpoints

        return import_touchpoints(
            store,
            path,
            mapping=mapping,
            separator=separator,
            timezone=config.timezone,
            currency=config.currency,
        )
    if input_format == "paths":
        from journeymap.sources.paths import import_paths

        return import_paths(
            store, path, mapping=mapping, separator=separator, path_separator=path_separator
        )
    if input_format == "snowplow":
        from journeymap.sources.snowplow import import_snowplow

        return import_snowplow(store, path, separator=separator, timezone=config.timezone)
    if input_format == "spend":
        from journeymap.sources.spend import import_spend

        return import_spend(
            store,
            path,
            mapping=mapping,
            separator=separator,
            platform=platform,
            currency=config.currency,
        )
    raise ConfigError(
        f"unknown input format {input_format!r}",
        location="--input-format",
        hint=f"Use one of {', '.join(INPUT_FORMATS)}",
    )


def build(store: Store, config: Config | None = None) -> Journeys:
    """Derive and store the journey tables from everything imported so far."""
    config = config or Config()
    classifier = ChannelClassifier.from_config(config.channels)
    options = JourneyOptions.from_config(config)
    journeys = materialize(store, build_journeys(store, classifier, options))
    log.info("built journeys in %s", store.location)
    return journeys


def _has_untimed_touches(journeys: Journeys) -> bool:
    touches = journeys.touches
    return bool(touches.filter(touches.occurred_at.isnull()).limit(1).count().execute() > 0)


def select_models(
    names: Sequence[str],
    journeys: Journeys,
    parameters: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[list[AttributionModel], list[str]]:
    """Return the models to run and notes on models left out.

    With ``all``, models that need touch timestamps are left out when some journeys have
    none (aggregated paths); a model named explicitly is kept and raises instead.
    """
    models = resolve_models(names, dict(parameters or {}))
    notes: list[str] = []
    asked_all = any(part.strip() == "all" for name in names for part in name.split(","))
    if asked_all and _has_untimed_touches(journeys):
        explicit = {part.strip() for name in names for part in name.split(",")}
        skipped = [m for m in models if m.needs_timestamps and m.name not in explicit]
        if skipped:
            models = [m for m in models if m not in skipped]
            notes.append(
                f"Skipped {', '.join(m.name for m in skipped)}: it needs touch timestamps, "
                "and aggregated paths carry none."
            )
    return models, notes


def attribute(
    store: Store,
    journeys: Journeys | None = None,
    *,
    config: Config | None = None,
    models: Sequence[str] | None = None,
) -> Attribution:
    """Run attribution models over the stored journeys and store their credits.

    ``models`` defaults to the configured list (``all`` unless set). The stored credits
    carry a ``run_id`` whose row in ``runs`` records the settings, models and version.
    """
    config = config or Config()
    if journeys is None:
        journeys = Journeys(
            journeys=store.table("journeys"), touches=store.table("journey_touches")
        )
    chosen, notes = select_models(
        list(models or config.attribution.models), journeys, config.attribution.parameters
    )
    run_id = uuid.uuid4().hex[:12]
    credits = run_models(journeys, chosen).mutate(run_id=ibis.literal(run_id))
    stored = store.write("credits", credits)
    run = pd.DataFrame(
        {
            "run_id": [run_id],
            "created_at": [pd.Timestamp(utc_now())],
            "package_version": [__version__],
            "settings": [json.dumps(settings_of(config), sort_keys=True)],
            "models": [json.dumps([model.describe() for model in chosen], sort_keys=True)],
        }
    )
    store.write("runs", run)
    log.info("attributed with %s (run %s)", ", ".join(m.name for m in chosen), run_id)
    return Attribution(run_id=run_id, credits=stored, models=chosen, notes=notes)


def settings_of(config: Config) -> dict[str, Any]:
    """Return the settings that shape credits: journey options and model parameters."""
    return {
        "entity": config.journeys.entity,
        "lookback_days": config.journeys.lookback_days,
        "transform": config.journeys.transform,
        "last_n": config.journeys.last_n,
        "conversion_kinds": config.journeys.conversion_kinds,
        "currency": config.currency,
        "model_parameters": config.attribution.parameters,
    }


def credit_table(
    credits: ibis.Table, *, by: str = "channel", kinds: Sequence[str] | None = None
) -> pd.DataFrame:
    """Return credit summed by model and grain: ``model, <grain>, conversions, value``."""
    if by not in GRAINS:
        raise ModelError(f"unknown grain {by!r}", hint=f"Use one of {', '.join(GRAINS)}")
    frame: pd.DataFrame = credit_by(credits, by, kinds).to_pandas()
    return frame


def with_overrides(
    config: Config,
    *,
    lookback_days: float | None = None,
    transform: str | None = None,
    last_n: int | None = None,
    kinds: Sequence[str] | None = None,
    entity: str | None = None,
) -> Config:
    """Return ``config`` with command-line options applied over its journey settings."""
    update: dict[str, Any] = {}
    if lookback_days is not None:
        update["lookback_days"] = lookback_days
    if transform is not None:
        update["transform"] = transform
    if last_n is not None:
        update["last_n"] = last_n
    if kinds:
        update["conversion_kinds"] = [kind.lower() for kind in kinds]
    if entity is not None:
        update["entity"] = entity
    if not update:
        return config
    merged = config.journeys.model_dump() | update
    raw = config.model_dump(mode="json")
    raw["journeys"] = merged
    return parse_config(raw, source="command-line options")


def write_report(
    store: Store,
    path: str | Path,
    *,
    config: Config | None = None,
    attribution: Attribution | None = None,
    title: str = "journeymap attribution report",
) -> Path:
    """Write the self-contained HTML report of the stored journeys and credits."""
    from journeymap.report.gather import gather_report
    from journeymap.report.html import write_html

    data = gather_report(store, config or Config(), attribution=attribution, title=title)
    return write_html(data, Path(path))
