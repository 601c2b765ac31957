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

import dataclasses
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import ibis
import pandas as pd

from journeymap import __version__
from journeymap.activate.deliver import sync as sync
from journeymap.activate.deliver import sync_dry_run as sync_dry_run
from journeymap.activate.ledger import requeue_rows as requeue_rows
from journeymap.activate.outbox import queue_conversions as queue_conversions
from journeymap.activate.status import sync_reasons as sync_reasons
from journeymap.activate.status import sync_status as sync_status
from journeymap.analyses.recommend import recommendations as recommendations
from journeymap.attribution import GRAINS, AttributionModel, credit_by, resolve_models
from journeymap.attribution import attribute as run_models
from journeymap.channels.rules import ChannelClassifier
from journeymap.collect.drain import drain_store
from journeymap.collect.journal import default_journal_path
from journeymap.common.config import Config, parse_config
from journeymap.common.errors import AlreadyImportedError, ConfigError, ModelError, StoreError
from journeymap.common.timeutil import utc_now
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys, materialize
from journeymap.journeys.collected import collected_events, with_collected
from journeymap.report.compare import compare as compare
from journeymap.report.map import journey_map as journey_map
from journeymap.report.snapshots import snapshot as snapshot
from journeymap.sources.batch import ImportResult
from journeymap.store.store import MEMORY, Store

log = logging.getLogger("journeymap")

InputFormat = Literal[
    "touchpoints", "paths", "snowplow", "spend", "deals", "leads", "contacts", "offline"
]
INPUT_FORMATS: tuple[str, ...] = (
    "touchpoints",
    "paths",
    "snowplow",
    "spend",
    "deals",
    "leads",
    "contacts",
    "offline",
)


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
    accounts_file: str | Path | None = None,
    products_file: str | Path | None = None,
    history_file: str | Path | None = None,
    stage_labels_file: str | Path | None = None,
    deal_companies_file: str | Path | None = None,
    deals_file: str | Path | None = None,
    phone_region: str | None = None,
    touch_type: str | None = None,
) -> ImportResult:
    """Import one file into the store, all rows or none.

    A file whose exact bytes are already in the store is skipped, because its rows would
    count twice, and the other files given with it are not read either; the result reports
    the skip and lists those files. ``accounts_file``, ``products_file``,
    ``history_file`` (a long stage history table), ``stage_labels_file`` (HubSpot's
    ``deal_pipeline_stage`` table) and ``deal_companies_file`` (HubSpot's ``deal_company``
    table) go with a ``deals`` file only, and ``deals_file`` (the closed deals) with a
    ``leads`` file.
    ``phone_region`` goes with a ``contacts`` file: the country of phone numbers written
    without a country code, ``collector.phone_region`` when None. ``touch_type`` goes with an
    ``offline`` file: the type of rows whose file names none (webinar, event, call, ...).

    Raises:
        InputError: the file is missing, a column is missing, or a cell is invalid.
        ConfigError: ``input_format`` is unknown, or the mapping names an unknown field.
    """
    config = config or Config()
    try:
        return _import_file(
            store,
            path,
            input_format=input_format,
            config=config,
            mapping=mapping,
            separator=separator,
            path_separator=path_separator,
            platform=platform,
            accounts_file=accounts_file,
            products_file=products_file,
            history_file=history_file,
            stage_labels_file=stage_labels_file,
            deal_companies_file=deal_companies_file,
            deals_file=deals_file,
            phone_region=phone_region,
            touch_type=touch_type,
        )
    except AlreadyImportedError as exc:
        log.info("skipped %s: already imported as %s", path, exc.import_id)
        companions = (
            accounts_file,
            products_file,
            history_file,
            stage_labels_file,
            deal_companies_file,
            deals_file,
        )
        return ImportResult(
            import_id=exc.import_id,
            kind=str(input_format),
            file=str(path),
            skipped=True,
            unread=tuple(str(other) for other in companions if other is not None),
        )


def _import_file(
    store: Store,
    path: str | Path,
    *,
    input_format: str,
    config: Config,
    mapping: Mapping[str, str] | None,
    separator: str | None,
    path_separator: str,
    platform: str | None,
    accounts_file: str | Path | None = None,
    products_file: str | Path | None = None,
    history_file: str | Path | None = None,
    stage_labels_file: str | Path | None = None,
    deal_companies_file: str | Path | None = None,
    deals_file: str | Path | None = None,
    phone_region: str | None = None,
    touch_type: str | None = None,
) -> ImportResult:
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
    if input_format == "deals":
        from journeymap.sources.deals import import_deals

        return import_deals(
            store,
            path,
            accounts_file=accounts_file,
            products_file=products_file,
            history_file=history_file,
            stage_labels_file=stage_labels_file,
            deal_companies_file=deal_companies_file,
            mapping=mapping,
            separator=separator,
            currency=config.currency,
        )
    if input_format == "leads":
        from journeymap.sources.leads import import_leads

        return import_leads(store, path, deals_file=deals_file, mapping=mapping)
    if input_format == "contacts":
        from journeymap.sources.contacts import import_contacts

        return import_contacts(
            store,
            path,
            mapping=mapping,
            separator=separator,
            phone_region=phone_region or config.collector.phone_region,
        )
    if input_format == "offline":
        from journeymap.sources.offline import import_offline

        return import_offline(
            store,
            path,
            touch_type=touch_type,
            mapping=mapping,
            separator=separator,
            timezone=config.timezone,
        )
    raise ConfigError(
        f"unknown input format {input_format!r}",
        location="--input-format",
        hint=f"Use one of {', '.join(INPUT_FORMATS)}",
    )


def check_has_data(store: Store) -> None:
    """Raise when the store holds nothing to build journeys from.

    Raises:
        StoreError: no touchpoints, conversions or paths were imported.
    """
    names = ("touchpoints", "conversions", "path_aggregates")
    if not any(store.has_rows(name) for name in names) and collected_events(store) is None:
        raise StoreError(
            f"the store {store.location} has no touchpoints, conversions, paths or "
            "collected events",
            hint="Import data first, for example: journeymap import touchpoints FILE",
        )


def drain_journal(store: Store, config: Config) -> int:
    """Move the collector's journaled events that the store lacks into it; return how many.

    The running server drains every few seconds; this catches up with what it had not moved
    when it stopped. Stores in memory have no journal.
    """
    if store.location == MEMORY or store.engine != "duckdb":
        return 0
    path = config.collector.journal or default_journal_path(store.location)
    return drain_store(store, path, phone_region=config.collector.phone_region)


def check_kinds(
    store: Store,
    kinds: Sequence[str] | None,
    events: tuple[ibis.Table, ibis.Table] | None = None,
) -> None:
    """Raise when a requested conversion kind does not occur in the data.

    ``events`` are the touchpoints and conversions to check instead of the stored ones.

    Raises:
        ConfigError: a kind is unknown; the message lists the kinds present.
    """
    if not kinds:
        return
    conversions = store.table("conversions") if events is None else events[1]
    present = set(conversions.kind.lower().name("kind").to_pandas().dropna())
    if store.has_rows("path_aggregates"):
        present.add("conversion")
    missing = [kind for kind in kinds if kind.lower() not in present]
    if missing:
        import difflib

        close = difflib.get_close_matches(missing[0].lower(), sorted(present), n=1)
        suggestion = f"Did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"no conversions of kind {missing[0]!r}",
            location="--kind",
            hint=f"{suggestion}Kinds in the data: {', '.join(sorted(present)) or 'none'}",
        )


def build(store: Store, config: Config | None = None) -> Journeys:
    """Derive and store the journey tables from everything imported so far.

    Raises:
        StoreError: nothing was imported.
        ConfigError: a configured conversion kind does not occur in the data.
    """
    config = config or Config()
    drain_journal(store, config)
    check_has_data(store)
    classifier = ChannelClassifier.from_config(config.channels)
    options = JourneyOptions.from_config(config)
    events = None
    if collected_events(store) is not None:
        events = with_collected(store, config)
    check_kinds(store, config.journeys.conversion_kinds, events)
    journeys = materialize(store, build_journeys(store, classifier, options, events=events))
    record = pd.DataFrame(
        {
            "created_at": [pd.Timestamp(utc_now())],
            "package_version": [__version__],
            "settings": [json.dumps(journey_settings(config), sort_keys=True)],
        }
    )
    store.write("builds", record)
    log.info("built journeys in %s", store.location)
    return journeys


def journey_settings(config: Config) -> dict[str, Any]:
    """Return the settings that shape journeys."""
    return {
        "entity": config.journeys.entity,
        "lookback_days": config.journeys.lookback_days,
        "transform": config.journeys.transform,
        "last_n": config.journeys.last_n,
        "conversion_kinds": config.journeys.conversion_kinds,
    }


def prepare_journeys(store: Store, config: Config, *, rebuild: bool = False) -> Journeys:
    """Return the stored journeys, building them first when asked or when there are none."""
    stored = None if rebuild else stored_journeys(store)
    return stored if stored is not None else build(store, config)


def default_kinds(store: Store, config: Config) -> tuple[list[str] | None, str | None]:
    """Return the conversion kinds a credit table shows by default, and a note about it.

    With ``conversion_kinds`` configured (or ``--kind``), those. Otherwise, when the journeys
    have several kinds, only the report's kind (closed-won when present), because adding
    leads, opportunities and deals together counts the same customer several times.
    """
    if config.journeys.conversion_kinds:
        return list(config.journeys.conversion_kinds), None
    from journeymap.report.gather import report_kind

    journeys = store.table("journeys")
    kinds = journeys.filter(journeys.conversions > 0).select("kind").distinct().to_pandas().kind
    if len(kinds) <= 1:
        return None, None
    chosen = report_kind(store, config)
    others = ", ".join(sorted(kind for kind in kinds if kind != chosen))
    return (
        [chosen] if chosen else None,
        f"Showing {chosen} conversions; the data also has {others}. Pick with --kind.",
    )


def data_notes(store: Store, config: Config) -> list[str]:
    """Return caveats about the data that the user should see beside the results."""
    notes: list[str] = []
    if config.journeys.entity == "account":
        with_account = store.table("touchpoints").account_id.notnull().any().execute()
        if not with_account:
            notes.append(
                "Journeys are by account, but no touch has an account id, so every person "
                "is their own account. Map an account column with --map account_id=COLUMN."
            )
    return notes


def stored_journeys(store: Store) -> Journeys | None:
    """Return the journeys of the last build, or None when the store has none."""
    if not store.has_rows("builds"):
        return None
    return Journeys(journeys=store.table("journeys"), touches=store.table("journey_touches"))


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
            "settings": [json.dumps(settings_of(config, store), sort_keys=True)],
            "models": [json.dumps([model.describe() for model in chosen], sort_keys=True)],
        }
    )
    store.write("runs", run)
    log.info("attributed with %s (run %s)", ", ".join(m.name for m in chosen), run_id)
    return Attribution(run_id=run_id, credits=stored, models=chosen, notes=notes)


@dataclass(frozen=True)
class TableAttribution:
    """Credit by channel of a touch table, with the models and journeys that made it.

    ``credits`` has ``model, channel, conversions, value``, in the order of ``models`` and
    then by conversions, largest first.
    """

    credits: pd.DataFrame
    models: list[AttributionModel]
    journeys: Journeys


def attribute_touch_table(
    source: str | Path | ibis.Table | pd.DataFrame,
    *,
    config: Config | None = None,
    models: Sequence[str] | None = None,
    mapping: dict[str, str] | None = None,
    separator: str | None = None,
) -> TableAttribution:
    """Credit channels straight from a table of touches that carry their channel.

    ``source`` is a Parquet or CSV file (``separator`` sets a CSV delimiter), a pandas
    frame, or an Ibis table on any engine, with a person id,
    a timestamp, a channel, a conversion flag and optionally a value (see
    :mod:`journeymap.journeys.touch_table`). Nothing is stored. The journeys follow the
    configured lookback window; the other journey settings need a store.

    Raises:
        InputError: a column is missing or a row is invalid (the error names the row).
        ConfigError: the configuration sets journey options that a touch table cannot follow.
    """
    from journeymap.attribution import channel_credit_table
    from journeymap.journeys.touch_table import (
        journeys_from_touch_table,
        read_touch_table,
        touch_table,
    )

    config = config or Config()
    journeys_config = config.journeys
    kinds = [kind.lower() for kind in journeys_config.conversion_kinds or []]
    unsupported = [
        setting
        for setting, used in (
            (
                f"--entity {journeys_config.entity} (journeys.entity)",
                journeys_config.entity != "person",
            ),
            (
                f"--transform {journeys_config.transform} (journeys.transform)",
                journeys_config.transform != "none",
            ),
            (
                f"--last-n {journeys_config.last_n} (journeys.last_n)",
                journeys_config.last_n is not None,
            ),
            (
                f"--kind {','.join(kinds)} (journeys.conversion_kinds; every conversion of a "
                "touch table is of the kind 'conversion')",
                bool(kinds) and kinds != ["conversion"],
            ),
        )
        if used
    ]
    if unsupported:
        raise ConfigError(
            "a touch table is attributed without a store, so it cannot apply "
            + ", ".join(unsupported),
            hint="Import the file (journeymap attribute FILE without --direct) for these settings",
        )
    chosen = resolve_models(
        list(models or config.attribution.models), config.attribution.parameters
    )
    if isinstance(source, pd.DataFrame):
        source = ibis.memtable(source)
    if isinstance(source, ibis.Table):
        touches = touch_table(source, mapping=mapping)
    else:
        touches = read_touch_table(source, mapping=mapping, separator=separator)
    journeys = journeys_from_touch_table(touches, journeys_config.lookback_days)
    table = channel_credit_table(journeys, chosen)
    rank = {model.name: number for number, model in enumerate(chosen)}
    table = table.assign(_rank=table.model.map(rank))
    table = table.sort_values(
        ["_rank", "conversions", "channel"], ascending=[True, False, True], kind="stable"
    )
    table = table.drop(columns="_rank").reset_index(drop=True)
    return TableAttribution(credits=table, models=chosen, journeys=journeys)


def settings_of(config: Config, store: Store | None = None) -> dict[str, Any]:
    """Return the settings that shape credits: the journeys' build settings and model parameters."""
    from journeymap.report.gather import stored_build_settings

    built = stored_build_settings(store) if store is not None else None
    return (built or journey_settings(config)) | {
        "currency": config.currency,
        "model_parameters": config.attribution.parameters,
    }


def credit_table(
    credits: ibis.Table,
    *,
    by: str = "channel",
    kinds: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return credit summed by model and grain: ``model, <grain>, conversions, value``.

    Rows follow the order of ``models`` (the order the models ran in), then the most
    conversions first.
    """
    if by not in GRAINS:
        raise ModelError(f"unknown grain {by!r}", hint=f"Use one of {', '.join(GRAINS)}")
    frame: pd.DataFrame = credit_by(credits, by, kinds).to_pandas()
    if models:
        rank = {name: number for number, name in enumerate(models)}
        frame = frame.assign(_rank=frame.model.map(rank).fillna(len(rank)))
        frame = frame.sort_values(
            ["_rank", "conversions", by], ascending=[True, False, True], kind="stable"
        )
        frame = frame.drop(columns="_rank").reset_index(drop=True)
    return frame


def with_model_parameters(config: Config, model: str, parameters: Mapping[str, Any]) -> Config:
    """Return ``config`` with ``parameters`` merged into one model's parameters."""
    raw = config.model_dump(mode="json")
    merged = dict(raw["attribution"]["parameters"].get(model, {})) | dict(parameters)
    raw["attribution"]["parameters"][model] = merged
    return parse_config(raw, source="command-line options")


def write_details(attribution: Attribution | TableAttribution, folder: str | Path) -> list[Path]:
    """Write the data-driven models' details as CSV files and return their paths.

    Markov: ``markov_<kind>_transitions.csv``, ``markov_<kind>_removal_effects.csv`` and,
    when sequences were asked for, ``markov_<kind>_sequences.csv``. Shapley:
    ``<model>_<kind>_values.csv`` and, for the ordered form, ``<model>_<kind>_positions.csv``.
    """
    from journeymap.attribution.markov import Markov
    from journeymap.attribution.shapley import OrderedShapley, Shapley

    target = Path(folder)
    written: list[Path] = []

    def save(frame: pd.DataFrame, name: str) -> None:
        # The folder is made with the first file, so models without details leave none.
        target.mkdir(parents=True, exist_ok=True)
        path = target / name
        frame.to_csv(path, index=False)
        written.append(path)

    for model in attribution.models:
        if isinstance(model, Markov):
            for kind, result in model.results.items():
                save(result.transition_matrix, f"markov_{kind}_transitions.csv")
                effects = result.removal_effects.assign(
                    conversion_probability=result.conversion_probability
                )
                save(effects, f"markov_{kind}_removal_effects.csv")
                if not result.sequence_effects.empty:
                    save(result.sequence_effects, f"markov_{kind}_sequences.csv")
        if isinstance(model, Shapley | OrderedShapley):
            for kind, shapley in model.results.items():
                save(shapley.values, f"{model.name}_{kind}_values.csv")
                if not shapley.by_position.empty:
                    save(shapley.by_position, f"{model.name}_{kind}_positions.csv")
    return written


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
    try:
        return parse_config(raw, source="command-line options")
    except ConfigError as exc:
        flag = "--" + (exc.location or "").rpartition(".")[2].replace("_", "-")
        message = str(exc).partition(": ")[2] or str(exc)
        raise ConfigError(message, location=flag, hint="Fix the option's value") from exc


def explain(store: Store, conversion: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return one conversion's journey and each touch's credit under each stored model.

    ``conversion`` is a conversion id (or a journey id, for aggregated paths). Returns the
    journey's row from ``journeys`` and a frame with one row per touch (``position``,
    ``occurred_at``, ``channel``, ``source_medium``, ``campaign``, ``touchpoint_id``) and
    one column of credit per model, in the order the models ran.

    Raises:
        StoreError: no journeys or credits are stored yet.
        ConfigError: no conversion or journey has that id.
    """
    journeys = store.table("journeys")
    found = journeys.filter(
        (journeys.conversion_id == conversion) | (journeys.journey_id == conversion)
    ).to_pandas()
    if found.empty:
        sample = (
            journeys.filter(journeys.conversion_id.notnull())
            .select("conversion_id")
            .limit(3)
            .to_pandas()
        )
        examples = ", ".join(sample.conversion_id) or "none"
        raise ConfigError(
            f"no conversion or journey {conversion!r} in {store.location}",
            hint=f"Pass an id from the conversions table, for example: {examples}",
        )
    journey_id = str(found.journey_id.iloc[0])
    touches = store.table("journey_touches")
    steps = (
        touches.filter(touches.journey_id == journey_id)
        .select("position", "occurred_at", "channel", "source_medium", "campaign", "touchpoint_id")
        .order_by("position")
        .to_pandas()
    )
    credits = store.table("credits")
    rows = credits.filter(credits.journey_id == journey_id).to_pandas()
    runs = store.table("runs").to_pandas() if store.has_rows("runs") else pd.DataFrame()
    order = (
        [entry["model"] for entry in json.loads(runs.models.iloc[-1])]
        if len(runs)
        else sorted(set(rows.model))
    )
    for model in order:
        part = rows[rows.model == model].groupby("position").credit.sum()
        steps[model] = steps.position.map(part).fillna(0.0)
    if (rows.position == 0).any():
        extra = {
            "position": 0,
            "channel": "(unattributed)",
            "source_medium": "",
            "campaign": "",
            "touchpoint_id": "",
        }
        for model in order:
            extra[model] = float(rows[(rows.model == model) & (rows.position == 0)].credit.sum())
        steps = pd.concat([steps, pd.DataFrame([extra])], ignore_index=True)
    return found, steps


def write_report(
    store: Store,
    path: str | Path,
    *,
    config: Config | None = None,
    attribution: Attribution | None = None,
    title: str = "journeymap attribution report",
) -> Path:
    """Write the self-contained HTML report of the stored journeys and credits.

    The report also has a tracking blind spots section, and with deal stages in the store the
    stage, funnel, velocity and ICP sections.
    """
    from journeymap.report.gather import gather_report
    from journeymap.report.html import write_html
    from journeymap.report.journey import gather_journey

    config = config or Config()
    if attribution is None and "credits" not in store.con.list_tables():
        try:
            check_has_data(store)
        except StoreError as exc:
            if store.has_rows("deal_stages"):
                raise StoreError(
                    f"the store {store.location} has CRM deals but nothing to attribute",
                    hint="The journey map reads deals alone: journeymap map --format html "
                    "--out map.html. Import touchpoints or collect events for this report",
                ) from exc
            raise
        attribution = attribute(store, prepare_journeys(store, config), config=config)
    data = gather_report(store, config, attribution=attribution, title=title)
    data = dataclasses.replace(data, journey=gather_journey(store, config))
    return write_html(data, Path(path))


VELOCITY_GROUPS = ("owner", "pipeline", "industry", "region", "channel")


def velocity(
    store: Store,
    *,
    between: tuple[str, str] | None = None,
    stalled: bool = False,
    as_of: datetime | None = None,
    by: str | None = None,
    threshold_days: float | None = None,
    period: str = "quarter",
    config: Config | None = None,
) -> pd.DataFrame:
    """Return deal velocity from the imported deal stages (or lead stages), as a pandas frame.

    By default, the days in each stage. With ``between``, the days from first entering one
    stage to first entering another. With ``stalled``, the open deals in a stage for longer
    than its threshold (default: the stage's 75th percentile) at ``as_of`` (default: the
    latest date in the deal stages, so that old exports do not show years of stalling).
    ``by`` breaks the numbers down by a deal column (``owner``, ``pipeline``), an account
    column (``industry``, ``region``), the first-touch channel of the lead (``channel``), or
    the deal's ``cohort``: the first day of the ``period`` (week, month or quarter) in which
    the deal first entered any stage, so that a trend shows whether deals move faster.

    Raises:
        StoreError: no deals with stage history were imported.
        ConfigError: ``by`` is not one of the known columns, or ``period`` is unknown.
    """
    from journeymap.analyses import velocity as analysis

    _check_stage_data(store, None if by == "cohort" else by, "break velocity down")
    if between is not None:
        _check_stage_names(store.table("deal_stages"), between, location="--between")
    stays = _stays_with_cohort(store, period) if by == "cohort" else _stays_with(store, by, config)
    if stalled:
        moment = as_of or _last_stage_time(store)
        table = analysis.stalled(
            stays, store.table("deals"), as_of=moment, threshold_days=threshold_days
        )
    elif between is not None:
        table = analysis.time_between(stays, between[0], between[1], by=by)
    else:
        table = analysis.time_in_stage(stays, as_of=as_of, by=by)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _check_stage_data(store: Store, by: str | None, action: str) -> None:
    """Raise unless the store has deal stages and ``by`` names a known breakdown.

    Raises:
        StoreError: the store has no deal stages.
        ConfigError: ``by`` is not one of :data:`VELOCITY_GROUPS`.
    """
    if not store.has_rows("deal_stages"):
        raise StoreError(
            f"the store {store.location} has no deal stages",
            hint="Import deals first: journeymap import deals FILE",
        )
    if by is not None and by not in VELOCITY_GROUPS:
        raise ConfigError(
            f"cannot {action} by {by!r}",
            location="--by",
            hint=f"Use one of {', '.join(VELOCITY_GROUPS)}",
        )


def _last_stage_time(store: Store) -> datetime:
    """Return the latest entry or exit in ``deal_stages``: the end of the data."""
    stays = store.table("deal_stages")
    latest = ibis.greatest(stays.entered_at.max(), stays.exited_at.max()).to_pandas()
    if latest is None or pd.isna(latest):
        return utc_now()
    moment: datetime = pd.Timestamp(latest).to_pydatetime()
    return moment


def _check_stage_names(stays: ibis.Table, names: Sequence[str], *, location: str) -> None:
    """Raise when a stage name does not occur in ``stays``, naming the nearest known ones.

    Raises:
        ConfigError: a name is unknown; the message lists the stages in the data.
    """
    import difflib

    known = sorted(
        str(name) for name in stays.select("stage").distinct().to_pandas().stage.dropna()
    )
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        suggestion = f"Did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"no stage named {name!r} in the data",
            location=location,
            hint=f"{suggestion}Stages in the data: {', '.join(known) or 'none'}",
        )


def _stays_with_cohort(store: Store, period: str) -> ibis.Table:
    """Return ``deal_stages`` with ``cohort``: the start of the period of the deal's first entry.

    Raises:
        ConfigError: ``period`` is not week, month or quarter.
    """
    from journeymap.analyses.funnel import PERIOD_UNITS

    if period not in PERIOD_UNITS:
        raise ConfigError(
            f"unknown period {period!r}",
            location="--period",
            hint=f"Use one of {', '.join(PERIOD_UNITS)}",
        )
    stays = store.table("deal_stages")
    firsts = stays.group_by(deal_key="deal_id").aggregate(_first=stays.entered_at.min())
    firsts = firsts.mutate(cohort=firsts._first.truncate(PERIOD_UNITS[period]).date())
    joined = stays.left_join(firsts, stays.deal_id == firsts.deal_key)
    return joined.select(*stays.columns, "cohort")


def _stays_with(store: Store, by: str | None, config: Config | None = None) -> ibis.Table:
    """Return ``deal_stages`` with the ``by`` column of the deal or its account joined in.

    ``channel`` is the first-touch channel of the deal's lead (leads imported with
    ``import leads``) or else of the deal's account, classified by ``config``'s channel rules.
    """
    stays = store.table("deal_stages")
    if by is None:
        return stays
    if by == "channel":
        return _stays_with_channel(store, config or Config())
    deals = store.table("deals")
    if by in ("owner", "pipeline"):
        column = deals.select(deal_key=deals.deal_id, **{by: deals[by]})
    else:
        accounts = store.table("accounts").select("account_id", by)
        joined = deals.left_join(accounts, deals.account_id == accounts.account_id)
        column = joined.select(deal_key=joined.deal_id, **{by: joined[by]})
    joined_stays = stays.left_join(column, stays.deal_id == column.deal_key)
    return joined_stays.select(*stays.columns, by)


def _stays_with_channel(store: Store, config: Config) -> ibis.Table:
    """Return ``deal_stages`` with ``channel``: the lead's, or the account's, first touch."""
    from journeymap.journeys.first_touch import first_touch_channels
    from journeymap.sources.leads import stays_with_first_channel

    stays = stays_with_first_channel(store)
    classifier = ChannelClassifier.from_config(config.channels)
    accounts = first_touch_channels(store.table("touchpoints"), classifier, "account")
    accounts = accounts.select(_account=accounts.entity_id, _account_channel=accounts.channel)
    deals = store.table("deals").select(_deal=ibis._.deal_id, _deal_account=ibis._.account_id)
    joined = stays.left_join(deals, stays.deal_id == deals._deal)
    joined = joined.left_join(accounts, joined._deal_account == accounts._account)
    channel = ibis.coalesce(joined.channel, joined._account_channel)
    return joined.select(*store.table("deal_stages").columns, channel=channel)


def funnel(
    store: Store,
    steps: Sequence[str],
    *,
    events: bool = False,
    period: str = "month",
    window_days: float | None = None,
    as_of: datetime | None = None,
    by: str | None = None,
    config: Config | None = None,
) -> pd.DataFrame:
    """Return a funnel as a pandas frame.

    By default ``steps`` are deal stages and the result is stage-to-stage conversion by
    entry cohort (see :func:`journeymap.analyses.funnel.stage_funnel`). A store without deal
    stages uses the journey stages of its stored ``stage_timeline`` instead. With ``events``,
    ``steps`` are event names and the result is an ordered funnel over the stored events of
    each person, in which one event fills at most one step. ``by`` splits a stage funnel by
    one of :data:`VELOCITY_GROUPS`.

    Raises:
        StoreError: the store has no deal stages (or no events, with ``events``).
        ConfigError: ``by`` is not one of the known columns.
    """
    from datetime import timedelta

    from journeymap.analyses import funnel as analysis

    if events:
        if not store.has_rows("events"):
            raise StoreError(
                f"the store {store.location} has no events",
                hint="Collect events with journeymap serve, or import Snowplow events",
            )
        table = _events_with_person(store)
        within = None if window_days is None else timedelta(days=window_days)
        result = analysis.ordered_funnel(table, steps, within=within)
    elif by is None and not store.has_rows("deal_stages") and store.has_rows("stage_timeline"):
        # Without CRM stages, the journey stages that `journeymap stages` stored.
        _check_stage_names(store.table("stage_timeline"), steps, location="STEPS")
        result = analysis.stage_funnel(
            store.table("stage_timeline"),
            steps,
            period=period,
            window_days=window_days,
            as_of=as_of,
        )
    else:
        _check_stage_data(store, by, "split a funnel")
        _check_stage_names(store.table("deal_stages"), steps, location="STEPS")
        result = analysis.stage_funnel(
            _stays_with(store, by, config),
            steps,
            period=period,
            window_days=window_days,
            as_of=as_of,
            by=by,
        )
    frame: pd.DataFrame = result.to_pandas()
    return frame


def _events_with_person(store: Store) -> ibis.Table:
    """Return the stored events with ``person_id``: resolved identities where built."""
    events = store.table("events")
    if "identities" in store.con.list_tables():
        from journeymap.identity import person_of

        return person_of(events, store.table("identities"))
    return events.mutate(person_id=ibis.coalesce(events.user_id, events.anonymous_id))


def stages(
    store: Store, config: Config, *, entity_kind: str = "account", as_of: datetime | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Build and store every entity's stage timeline; return a summary per stage and warnings.

    The summary has, per configured stage in journey order: its owner, the entities that
    ever entered it, those in it at ``as_of`` (default now), the median days of completed
    stays, and the stall threshold. Stage rules that name data the store lacks fail when
    the configuration sets ``stages`` and are warnings for the defaults.

    Raises:
        ConfigError: a stage rule names a deal stage, conversion kind or event that does not
            occur in the store (only for configured stages).
    """
    from journeymap.analyses.velocity import time_in_stage
    from journeymap.journeys.stages import check_stages, stage_timeline

    warnings = check_stages(config.stages, store, strict="stages" in config.model_fields_set)
    timeline = store.write(
        "stage_timeline", stage_timeline(store, config.stages, entity_kind=entity_kind)
    )
    moment = as_of or utc_now()
    entered = timeline.group_by("stage").aggregate(entered=timeline.entity_id.nunique())
    current = (
        timeline.filter(
            (timeline.entered_at <= moment)
            & (timeline.exited_at.isnull() | (timeline.exited_at > moment))
        )
        .group_by("stage")
        .aggregate(current=timeline.entity_id.nunique())
    )
    stays = timeline.mutate(deal_id=timeline.entity_id)
    days = time_in_stage(stays, as_of=moment).select("stage", "median_days")
    counts = {
        name: frame.set_index("stage")
        for name, frame in (
            ("entered", entered.to_pandas()),
            ("current", current.to_pandas()),
            ("days", days.to_pandas()),
        )
    }
    rows = []
    for stage in config.stages:
        rows.append(
            {
                "stage": stage.name,
                "owner": stage.owner,
                "entered": int(counts["entered"].entered.get(stage.name, 0)),
                "current": int(counts["current"].current.get(stage.name, 0)),
                "median_days": counts["days"].median_days.get(stage.name, float("nan")),
                "stall_days": stage.stall_days,
            }
        )
    return pd.DataFrame(rows), warnings


ICP_DIMENSIONS = ("industry", "size_band", "region", "plan", "committee_size", "committee_roles")


def _all_people(store: Store) -> ibis.Table:
    """Return the imported people and, when built, the people of the collected events."""
    names = ["people"] + (["collected_people"] if store.has_rows("collected_people") else [])
    columns = ["person_id", "account_id", "title"]
    return ibis.union(*(store.table(name).select(*columns) for name in names), distinct=False)


def icp(
    store: Store,
    *,
    by: str | None = None,
    dimensions: Sequence[str] | None = None,
    min_closed: int = 30,
    alpha: float = 0.05,
    min_customers: int = 20,
    horizon_days: float = 365.0,
    renewal_pattern: str | None = "renewal",
    as_of: datetime | None = None,
) -> tuple[pd.DataFrame, str]:
    """Return the ranked ideal customer profile, or with ``by`` one dimension's segments.

    ``dimensions`` defaults to :func:`default_icp_dimensions`. ``min_customers``,
    ``horizon_days``, ``renewal_pattern`` and ``as_of`` set the retention columns (see
    :mod:`journeymap.analyses.icp`). ``renewal_pattern`` None or empty counts
    no renewal deals as churn. The second value is a note on the deals left out (without
    an account, or still open).

    Raises:
        StoreError: the store has no deals or no accounts.
        ConfigError: ``by`` or a dimension is not one of :data:`ICP_DIMENSIONS`,
            ``horizon_days`` is not positive, or ``renewal_pattern`` is not a valid regular
            expression.
    """
    from journeymap.analyses import icp as analysis

    if not (store.has_rows("deals") and store.has_rows("accounts")):
        raise StoreError(
            f"the store {store.location} has no deals with accounts",
            hint="Import them first: journeymap import deals FILE --accounts FILE",
        )
    if dimensions is None:
        dimensions = default_icp_dimensions(store)
    if by is None and not dimensions:
        raise ConfigError(
            "no ICP dimension given",
            location="--dimensions",
            hint=f"Name one or more of {', '.join(ICP_DIMENSIONS)}, separated by commas",
        )
    for name in [by] if by is not None else list(dimensions):
        if name not in ICP_DIMENSIONS:
            raise ConfigError(
                f"unknown ICP dimension {name!r}",
                location="--by" if by is not None else "--dimensions",
                hint=f"Use one of {', '.join(ICP_DIMENSIONS)}",
            )
    pattern = renewal_pattern or None
    _check_retention_settings(horizon_days, pattern, store)
    deals, accounts = store.table("deals"), store.table("accounts")
    wanted = [by] if by is not None else list(dimensions)
    if {"committee_size", "committee_roles"} & set(wanted):
        accounts = analysis.with_buying_committee(accounts, _all_people(store))
    excluded = analysis.excluded_deals(deals, accounts).to_pandas()
    parts = [f"{int(row.deals):,} {row.reason}" for row in excluded.itertuples()]
    note = "left out: " + ", ".join(parts) if parts else ""
    if by is not None:
        table = analysis.segment_performance(
            deals,
            accounts,
            by=by,
            as_of=as_of,
            horizon_days=horizon_days,
            renewal_pattern=pattern,
        )
        frame: pd.DataFrame = table.to_pandas()
        return frame, note
    profile = analysis.ideal_customer_profile(
        deals,
        accounts,
        dimensions=tuple(dimensions),
        min_closed=min_closed,
        alpha=alpha,
        min_customers=min_customers,
        as_of=as_of,
        horizon_days=horizon_days,
        renewal_pattern=pattern,
    )
    return profile, note


def default_icp_dimensions(store: Store) -> list[str]:
    """Return industry, size band and region, and plan when any stored account has one."""
    from journeymap.analyses.icp import DEFAULT_DIMENSIONS

    accounts = store.table("accounts")
    has_plan = bool(accounts.plan.notnull().any().execute())
    return [*DEFAULT_DIMENSIONS, "plan"] if has_plan else list(DEFAULT_DIMENSIONS)


def _check_retention_settings(
    horizon_days: float, renewal_pattern: str | None, store: Store | None = None
) -> None:
    """Raise ConfigError when the ICP's horizon or renewal pattern is invalid.

    With a DuckDB ``store``, the pattern must also compile in DuckDB's regular expressions.
    """
    if not (math.isfinite(horizon_days) and horizon_days > 0):
        raise ConfigError(
            f"invalid retention horizon {horizon_days!r}",
            location="--horizon-days",
            hint="Give a number of days above 0, for example 365",
        )
    if renewal_pattern is None:
        return
    try:
        re.compile(renewal_pattern)
    except re.error as exc:
        raise ConfigError(
            f"renewal pattern {renewal_pattern!r} is not a valid regular expression: {exc}",
            location="--renewal-pattern",
            hint="Escape special characters, or give an empty pattern to count no renewals",
        ) from exc
    if store is not None and store.engine == "duckdb":
        # DuckDB matches with RE2, which rejects some patterns that Python accepts, such as
        # look-behind and back-references.
        try:
            store.con.con.execute(
                "SELECT regexp_matches('', ?)", [f"(?i){renewal_pattern}"]
            ).fetchall()
        except Exception as exc:  # duckdb raises InvalidInputException and others
            raise ConfigError(
                f"renewal pattern {renewal_pattern!r} is not supported by the store's regular "
                f"expressions: {str(exc).splitlines()[0]}",
                location="--renewal-pattern",
                hint="Use literals, character classes, | and anchors, without look-around "
                "or back-references",
            ) from exc


def dropoff(
    store: Store,
    stages: Sequence[str],
    *,
    by: str = "channel",
    as_of: datetime | None = None,
    top: int = 3,
    config: Config | None = None,
) -> pd.DataFrame:
    """Return stage-to-stage drop-off by segment, ranked by revenue lost beyond the average.

    See :func:`journeymap.analyses.dropoff.dropoff`; the deal value is the average won deal.

    Raises:
        StoreError: the store has no deal stages.
        ConfigError: ``by`` is not one of :data:`VELOCITY_GROUPS`.
    """
    from journeymap.analyses.dropoff import dropoff as rank_dropoff

    _check_stage_data(store, by, "split drop-off")
    _check_stage_names(store.table("deal_stages"), stages, location="STAGES")
    deals = store.table("deals") if store.has_rows("deals") else None
    # Entrants without a segment (a deal without an account, for example) would shift the
    # overall loss rate that every segment is measured against, so they are left out.
    stays = _stays_with(store, by, config)
    stays = stays.filter(stays[by].notnull())
    return rank_dropoff(stays, stages, by=by, deals=deals, as_of=as_of, top=top)


def blind_spots(store: Store, config: Config | None = None) -> Any:
    """Return the tracking-health report (:class:`journeymap.analyses.blindspots.BlindSpots`).

    Raises:
        StoreError: nothing was imported.
    """
    from journeymap.analyses.blindspots import blind_spots as report

    config = config or Config()
    check_has_data(store)
    return report(store, config, journeys=prepare_journeys(store, config))


def converting_paths(
    store: Store,
    config: Config,
    *,
    kind: str | None = None,
    top: int = 10,
    collapse: bool = False,
) -> tuple[pd.DataFrame, str | None]:
    """Return the top channel paths of the people who converted, and a reconciliation note.

    ``kind`` defaults to the report's kind (closed-won when present). Each converting person
    counts once, under the path of their first conversion of ``kind``. When the data has a
    lead kind, the note reports whether the converters add up to the lead-to-``kind`` funnel's.

    Raises:
        StoreError: nothing was imported.
    """
    from journeymap.analyses.converting_paths import paths_before, reconcile_with_funnel
    from journeymap.report.gather import report_kind

    journeys = prepare_journeys(store, config)
    chosen = kind or report_kind(store, config) or "conversion"
    frame = paths_before(
        journeys.journeys, journeys.touches, kind=chosen, top=top, collapse=collapse
    )
    leads = [name for name in config.milestones.lead if name != chosen]
    kinds = set(journeys.journeys.select("kind").distinct().to_pandas().kind)
    note = None
    if leads and leads[0] in kinds and not frame.empty:
        check = reconcile_with_funnel(frame, journeys.journeys, from_kind=leads[0], to_kind=chosen)
        note = (
            f"{check.path_converters:,} converters on paths; the {leads[0]} → {chosen} funnel "
            f"counts {check.funnel_converted:,}"
            + ("" if check.balanced else " (some converted without a lead first)")
        )
    return frame, note


def coverage(
    store: Store, config: Config, *, entity_kind: str = "person"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return spend by targeted stage beside each stage's drop-off, and spend per campaign.

    Campaigns get their stage from ``coverage.campaign_stages``; drop-off comes from the stage
    timeline of every person (or account), computed without being stored.

    Raises:
        StoreError: the store has no ad spend.
    """
    from journeymap.analyses import coverage as analysis
    from journeymap.journeys.stages import stage_timeline

    if not store.has_rows("ad_spend"):
        raise StoreError(
            f"the store {store.location} has no ad spend",
            hint="Import spend first: journeymap import spend FILE --platform NAME",
        )
    names = [stage.name for stage in config.stages]
    campaigns = analysis.campaign_stages(
        store.table("ad_spend"), config.coverage.campaign_stages
    ).to_pandas()
    timeline = stage_timeline(store, config.stages, entity_kind=entity_kind)
    dropoff = analysis.stage_dropoff(timeline, names).to_pandas()
    ordered = campaigns.sort_values(["stage", "cost"], ascending=[True, False], ignore_index=True)
    return analysis.coverage_table(campaigns, dropoff, names), ordered
