"""The ``journeymap`` command: thin Typer commands over :mod:`journeymap.api`.

Errors that journeymap raises on purpose print one red line (with the hint) and exit with
status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from journeymap import __version__, api
from journeymap.attribution import resolve_models
from journeymap.collect.journal import default_journal_path
from journeymap.common.config import Config, load_config
from journeymap.common.errors import ConfigError, JourneymapError
from journeymap.store.store import MEMORY, Store

app = typer.Typer(
    name="journeymap",
    help="Customer journeys and multi-touch attribution for B2B SaaS teams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(
    help="Import a file into the store (all rows or none).", no_args_is_help=True
)
app.add_typer(import_app, name="import")

# Output that is piped or captured gets 160 columns, so tables of every model stay whole.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
log = logging.getLogger("journeymap")


class InputFormatOption(StrEnum):
    touchpoints = "touchpoints"
    paths = "paths"
    snowplow = "snowplow"


class GrainOption(StrEnum):
    channel = "channel"
    source_medium = "source_medium"
    campaign = "campaign"
    ad = "ad"


class TransformOption(StrEnum):
    none = "none"
    collapse = "collapse"
    unique = "unique"
    first = "first"
    frequency = "frequency"


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class EntityOption(StrEnum):
    person = "person"
    account = "account"


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML configuration file (default: ./journeymap.yaml if present)."
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help="DuckDB store file; ':memory:' for none (default: the configured store)."
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping FIELD=COLUMN; repeat for several fields."),
]
MappingFileOpt = Annotated[
    Path | None, typer.Option("--mapping", help="YAML file of FIELD: COLUMN lines.")
]
SepOpt = Annotated[
    str | None, typer.Option("--sep", help="Field separator of a CSV file (default: detected).")
]
PathSepOpt = Annotated[
    str, typer.Option("--path-sep", help="Separator between channels in a path.")
]
LookbackOpt = Annotated[
    float | None,
    typer.Option("--lookback-days", help="Lookback window before a conversion, in days."),
]
TransformOpt = Annotated[
    TransformOption | None, typer.Option("--transform", help="Path transform.")
]
LastNOpt = Annotated[
    int | None, typer.Option("--last-n", help="Keep only the last N touches of a journey.")
]
KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", help="Conversion kind to attribute; repeat for several (default: all)."),
]
EntityOpt = Annotated[
    EntityOption | None, typer.Option("--entity", help="Whose touches form a journey.")
]


def _config(path: Path | None) -> Config:
    return load_config(path)


def _overrides(
    config: Config,
    lookback_days: float | None,
    transform: TransformOption | None,
    last_n: int | None,
    kinds: list[str] | None,
    entity: EntityOption | None = None,
) -> Config:
    return api.with_overrides(
        config,
        lookback_days=lookback_days,
        transform=transform.value if transform else None,
        last_n=last_n,
        kinds=kinds,
        entity=entity.value if entity else None,
    )


def _open(store: str | None, config: Config, *, must_exist: bool = False) -> Store:
    location = store or config.store
    journal = Path(config.collector.journal or default_journal_path(location))
    # A store that the collector has not drained into yet exists only as its journal.
    has_data = Path(location).is_file() or journal.is_file()
    if must_exist and location != MEMORY and not has_data:
        raise JourneymapError(
            f"store {location!r} not found",
            hint="Import data first (journeymap import ...), or pass --store with an existing file",
        )
    return api.open_store(store, config)


def _print_frame(
    frame: pd.DataFrame, output: OutputFormat, *, money: set[str] | None = None, digits: int = 4
) -> None:
    if output is OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
        return
    if output is OutputFormat.json:
        sys.stdout.write(
            frame.to_json(orient="records", indent=2, double_precision=15, date_format="iso") + "\n"
        )
        return
    table = Table(show_edge=False, header_style="bold")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        # Underscores become line breaks so that model names stack in narrow terminals.
        header = str(column).replace("_", "\n") if numeric else str(column)
        table.add_column(header, justify="right" if numeric else "left", no_wrap=not numeric)
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            if isinstance(value, float):
                places = 2 if money and column in money else digits
                cells.append(f"{value:,.{places}f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    out.print(table)


SHORT_NAMES = {
    "first_touch": "first",
    "last_touch": "last",
    "last_non_direct": "lnd",
    "linear": "lin",
    "time_decay": "decay",
    "position_based": "U",
    "w_shaped": "W",
    "full_path": "full",
    "custom": "cust",
    "markov": "markov",
    "shapley": "shap",
    "shapley_ordered": "shapO",
    "fractribution": "frac",
}
"""Column headers of the explain table, which has one column per model."""


@app.callback(invoke_without_command=True)
def main_callback(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log each step to stderr.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Customer journeys and multi-touch attribution for B2B SaaS teams."""
    if version:
        out.print(f"journeymap {__version__}")
        raise typer.Exit()
    level = logging.WARNING
    if verbose:
        level = logging.INFO
    if debug:
        level = logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _import(
    kind: str, file: Path, store: str | None, config_path: Path | None, **options: object
) -> None:
    config = _config(config_path)
    opened = _open(store, config)
    try:
        result = api.import_file(opened, file, input_format=kind, config=config, **options)  # type: ignore[arg-type]
    finally:
        opened.close()
    err.print(result.summary())


@import_app.command("touchpoints")
def import_touchpoints(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of touch and conversion rows.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
) -> None:
    """Import touchpoint rows: person, timestamp, channel or UTM fields, conversion and value."""
    from journeymap.sources.columns import parse_mapping_options

    _import(
        "touchpoints",
        file,
        store,
        config,
        mapping=parse_mapping_options(map_ or [], mapping),
        separator=sep,
    )


@import_app.command("paths")
def import_paths(
    file: Annotated[Path, typer.Argument(help="CSV file of aggregated paths.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
    path_sep: PathSepOpt = ">",
) -> None:
    """Import aggregated paths: path; total_conversions; total_conversion_value; total_null."""
    from journeymap.sources.columns import parse_mapping_options

    _import(
        "paths",
        file,
        store,
        config,
        mapping=parse_mapping_options(map_ or [], mapping),
        separator=sep,
        path_separator=path_sep,
    )


@import_app.command("snowplow")
def import_snowplow(
    file: Annotated[
        Path, typer.Argument(help="CSV or Parquet export of Snowplow enriched events.")
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    sep: SepOpt = None,
) -> None:
    """Import Snowplow enriched events: sessions become touches, revenue events conversions."""
    _import("snowplow", file, store, config, separator=sep)


@import_app.command("spend")
def import_spend(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of ad spend rows.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            help="Ad platform of every row; it replaces the file's platform column.",
        ),
    ] = None,
) -> None:
    """Import ad spend: date, platform, campaign, cost, impressions, clicks."""
    from journeymap.sources.columns import parse_mapping_options

    _import(
        "spend",
        file,
        store,
        config,
        mapping=parse_mapping_options(map_ or [], mapping),
        separator=sep,
        platform=platform,
    )


@import_app.command("deals")
def import_deals(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of CRM deals, one per row.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
    accounts: Annotated[
        Path | None,
        typer.Option(
            "--accounts",
            help="Accounts file (account, sector, employees, office_location) to import too.",
        ),
    ] = None,
    products: Annotated[
        Path | None,
        typer.Option("--products", help="Products file, read only to check product spellings."),
    ] = None,
) -> None:
    """Import CRM deals: id, account, stage, engage and close dates, amount, owner."""
    from journeymap.sources.columns import parse_mapping_options

    _import(
        "deals",
        file,
        store,
        config,
        mapping=parse_mapping_options(map_ or [], mapping),
        separator=sep,
        accounts_file=accounts,
        products_file=products,
    )


@import_app.command("leads")
def import_leads(
    file: Annotated[Path, typer.Argument(help="CSV file of marketing-qualified leads.")],
    deals: Annotated[
        Path | None,
        typer.Option("--deals", help="CSV file of the closed deals that leads became."),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
) -> None:
    """Import leads (id, first contact, channel) and the deals they became, with stages."""
    from journeymap.sources.columns import parse_mapping_options

    _import(
        "leads",
        file,
        store,
        config,
        mapping=parse_mapping_options(map_ or [], mapping),
        deals_file=deals,
    )


@app.command()
def build(
    store: StoreOpt = None,
    config: ConfigOpt = None,
    lookback_days: LookbackOpt = None,
    transform: TransformOpt = None,
    last_n: LastNOpt = None,
    kind: KindOpt = None,
    entity: EntityOpt = None,
) -> None:
    """Derive journeys from the imported touchpoints, conversions and paths."""
    settings = _overrides(_config(config), lookback_days, transform, last_n, kind, entity)
    opened = _open(store, settings, must_exist=True)
    try:
        journeys = api.build(opened, settings)
        count = journeys.journeys.count().execute()
        touches = journeys.touches.count().execute()
    finally:
        opened.close()
    journeys_word = "journey" if count == 1 else "journeys"
    touches_word = "touch" if touches == 1 else "touches"
    err.print(f"built {count:,} {journeys_word} with {touches:,} {touches_word}")


@app.command()
def attribute(
    file: Annotated[
        Path | None,
        typer.Argument(help="Input file; without it, the journeys already in the store."),
    ] = None,
    input_format: Annotated[
        InputFormatOption, typer.Option("--input-format", "-f", help="Layout of FILE.")
    ] = InputFormatOption.touchpoints,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models", "-m", help="Model names, comma-separated or repeated; all for every model."
        ),
    ] = None,
    by: Annotated[
        GrainOption, typer.Option("--by", help="Grain of the credit table.")
    ] = GrainOption.channel,
    lookback_days: LookbackOpt = None,
    transform: TransformOpt = None,
    last_n: LastNOpt = None,
    kind: KindOpt = None,
    entity: EntityOpt = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
    path_sep: PathSepOpt = ">",
    order: Annotated[
        int | None, typer.Option("--order", help="Order of the Markov chain (1 to 4).")
    ] = None,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="Show models side by side: one row per grain value, one column of "
            "conversions (or value, with --value) per model.",
        ),
    ] = False,
    value_columns: Annotated[
        bool, typer.Option("--value", help="With --wide, show credited value, not conversions.")
    ] = False,
    details: Annotated[
        Path | None,
        typer.Option(
            "--details",
            help="Folder for the data-driven models' details: transition matrices, "
            "removal effects, Shapley values by position.",
        ),
    ] = None,
) -> None:
    """Print credit per model and channel (or source_medium, campaign, ad)."""
    from journeymap.sources.columns import parse_mapping_options

    settings = _overrides(_config(config), lookback_days, transform, last_n, kind, entity)
    if order is not None:
        settings = api.with_model_parameters(settings, "markov", {"order": order})
    if (
        file is not None
        and input_format is InputFormatOption.paths
        and by is not GrainOption.channel
    ):
        raise JourneymapError(
            f"aggregated paths hold channels only, so --by {by.value} has no data",
            hint="Use --by channel with --input-format paths",
        )
    names = models or settings.attribution.models
    # Check model names and parameters before anything is imported or rebuilt.
    resolve_models(names, settings.attribution.parameters)
    journey_flags = any(
        value is not None for value in (lookback_days, transform, last_n, entity)
    ) or bool(kind)
    opened = _open(store if file is None else (store or MEMORY), settings, must_exist=file is None)
    notes: list[str] = []
    try:
        if file is not None:
            result = api.import_file(
                opened,
                file,
                input_format=input_format.value,
                config=settings,
                mapping=parse_mapping_options(map_ or [], mapping),
                separator=sep,
                path_separator=path_sep,
            )
            log.info("%s", result.summary())
        journeys = api.prepare_journeys(opened, settings, rebuild=file is not None or journey_flags)
        attribution = api.attribute(opened, journeys, config=settings, models=names)
        kinds, kind_note = api.default_kinds(opened, settings)
        notes = [
            *api.data_notes(opened, settings),
            *attribution.notes,
            *([kind_note] if kind_note else []),
        ]
        table = api.credit_table(
            attribution.credits,
            by=by.value,
            kinds=kinds,
            models=[m.name for m in attribution.models],
        )
    finally:
        opened.close()
    for note in notes:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    if details is not None:
        for path in api.write_details(attribution, details):
            err.print(f"wrote {path}")
    if wide:
        measure = "value" if value_columns else "conversions"
        pivot = table.pivot_table(
            index=by.value, columns="model", values=measure, aggfunc="sum", fill_value=0.0
        )
        columns = [name for name in dict.fromkeys(table.model) if name in pivot.columns]
        table = pivot[columns].sort_values(columns[0], ascending=False).reset_index()
        table.columns.name = None
    _print_frame(table, output, money={"value"}, digits=2 if wide else 4)


@app.command()
def explain(
    conversion: Annotated[str, typer.Argument(help="Conversion id (or journey id) to explain.")],
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show one conversion's path and each touch's credit under each model."""
    settings = _config(config)
    opened = _open(store, settings, must_exist=True)
    try:
        if "credits" not in opened.con.list_tables():
            api.attribute(opened, api.prepare_journeys(opened, settings), config=settings)
        journey, steps = api.explain(opened, conversion)
    finally:
        opened.close()
    row = journey.iloc[0]
    who = row.entity_id or "an aggregated path"
    err.print(
        f"{row.kind} {row.conversion_id or row.journey_id} of {who}: {row.conversions:g} "
        f"conversion(s), value {row.value:,.2f}, {row.n_touches} touches"
    )
    err.print(
        "Rule models and fractribution split this conversion; markov and shapley credit "
        "channels overall, so their column need not add up to 1."
    )
    if output is OutputFormat.table:
        shown = steps.drop(columns=["touchpoint_id", "source_medium", "campaign"])
        shown["occurred_at"] = pd.to_datetime(shown.occurred_at).dt.strftime("%Y-%m-%d").fillna("")
        steps = shown.rename(columns={"occurred_at": "date", "position": "#", **SHORT_NAMES})
        err.print(
            "Columns: " + ", ".join(f"{short} = {name}" for name, short in SHORT_NAMES.items())
        )
    _print_frame(steps, output, digits=2)


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "journeymap-report.html"
    ),
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the self-contained HTML report of the stored journeys and credits."""
    settings = _config(config)
    opened = _open(store, settings, must_exist=True)
    try:
        path = api.write_report(opened, output, config=settings)
    finally:
        opened.close()
    err.print(f"wrote {path}")


@app.command()
def run(
    touchpoints: Annotated[
        list[Path] | None, typer.Option("--touchpoints", help="Touchpoint file; repeatable.")
    ] = None,
    paths: Annotated[
        list[Path] | None, typer.Option("--paths", help="Aggregated paths file; repeatable.")
    ] = None,
    snowplow: Annotated[
        list[Path] | None, typer.Option("--snowplow", help="Snowplow events file; repeatable.")
    ] = None,
    spend: Annotated[
        list[Path] | None, typer.Option("--spend", help="Ad spend file; repeatable.")
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform", help="Ad platform of every spend row; it replaces a platform column."
        ),
    ] = None,
    models: Annotated[
        list[str] | None, typer.Option("--models", "-m", help="Model names, or all.")
    ] = None,
    lookback_days: LookbackOpt = None,
    transform: TransformOpt = None,
    last_n: LastNOpt = None,
    kind: KindOpt = None,
    entity: EntityOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML report to write.")] = Path(
        "journeymap-report.html"
    ),
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Import files, build journeys, attribute with every model and write the report."""
    settings = _overrides(_config(config), lookback_days, transform, last_n, kind, entity)
    opened = _open(store, settings)
    try:
        for kind_name, files in (
            ("touchpoints", touchpoints),
            ("paths", paths),
            ("snowplow", snowplow),
        ):
            for path in files or []:
                err.print(
                    api.import_file(opened, path, input_format=kind_name, config=settings).summary()
                )
        for path in spend or []:
            err.print(
                api.import_file(
                    opened, path, input_format="spend", config=settings, platform=platform
                ).summary()
            )
        _main_job(opened, settings, models, output)
    finally:
        opened.close()


def _main_job(store: Store, settings: Config, models: list[str] | None, output: Path) -> None:
    """Build journeys, attribute, print the credit table and write the report."""
    with err.status("building journeys"):
        journeys = api.build(store, settings)
    with err.status("attributing"):
        attribution = api.attribute(store, journeys, config=settings, models=models or None)
    from journeymap.report.gather import report_kind

    kind = report_kind(store, settings)
    table = api.credit_table(attribution.credits, by="channel", kinds=[kind] if kind else None)
    wide = table.pivot_table(
        index="channel", columns="model", values="conversions", aggfunc="sum", fill_value=0.0
    )
    order = [model.name for model in attribution.models if model.name in wide.columns]
    wide = wide[order].sort_values(order[0], ascending=False).reset_index()
    out.print(f"[bold]Conversions credited by channel[/bold] ({kind or 'all kinds'})")
    _print_frame(wide, OutputFormat.table, digits=1)
    for note in attribution.notes:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    with err.status("writing the report"):
        path = api.write_report(store, output, config=settings, attribution=attribution)
    out.print(f"report: {path}")


@app.command()
def demo(
    people: Annotated[
        int, typer.Option("--people", min=10, help="People in the demo world.")
    ] = 5000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same world.")
    ] = 7,
    folder: Annotated[
        Path, typer.Option("--out", help="Folder for the generated files and the report.")
    ] = Path("journeymap-demo"),
    file_format: Annotated[str, typer.Option("--file-format", help="csv or parquet.")] = "csv",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Generate the demo B2B SaaS world, load it, run every model and write the report."""
    from rich.progress import Progress

    from journeymap.demo.world import generate_world, write_world

    settings = _config(config)
    folder.mkdir(parents=True, exist_ok=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("generating the demo world", total=people)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        world = generate_world(people, seed=seed, progress=advance)
        files = write_world(world, folder, format="parquet" if file_format == "parquet" else "csv")
    store_path = store or str(folder / "journeymap.duckdb")
    if store_path != MEMORY:
        for suffix in ("", ".wal"):
            Path(store_path + suffix).unlink(missing_ok=True)
    opened = Store.open(store_path)
    try:
        err.print(
            api.import_file(
                opened, files["touchpoints"], input_format="touchpoints", config=settings
            ).summary()
        )
        err.print(
            api.import_file(
                opened, files["ad_spend"], input_format="spend", config=settings
            ).summary()
        )
        _main_job(opened, settings, None, folder / "report.html")
    finally:
        opened.close()


class PeriodOption(StrEnum):
    week = "week"
    month = "month"
    quarter = "quarter"


@app.command()
def funnel(
    steps: Annotated[list[str], typer.Argument(help="Deal stages (or event names) in order.")],
    events: Annotated[
        bool,
        typer.Option("--events", help="Steps are event names: an ordered funnel per person."),
    ] = False,
    period: Annotated[
        PeriodOption, typer.Option("--period", help="Entry cohorts of stage funnels.")
    ] = PeriodOption.month,
    window_days: Annotated[
        float | None,
        typer.Option(
            "--window-days",
            help="Days allowed from one step to the next (or, with "
            "--events, from the first step to the last); above 0.",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date of the snapshot, YYYY-MM-DD (default: now)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Split a stage funnel by channel, owner, pipeline, industry or region."
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show a funnel: stage-to-stage conversion by entry cohort, or an ordered event funnel."""
    settings = _config(config)
    if len(steps) < 2 and not events:
        raise ConfigError(
            "a stage funnel needs at least two stages",
            location="STEPS",
            hint="Name them in order, for example: journeymap funnel Engaging Won",
        )
    if window_days is not None and not window_days > 0:
        raise ConfigError(
            f"--window-days {window_days:g} is not above 0",
            location="--window-days",
            hint="Give the days allowed between steps, such as 90, or leave it out",
        )
    moment = _as_of(as_of, settings)
    opened = _open(store, settings, must_exist=True)
    try:
        frame = api.funnel(
            opened,
            steps,
            events=events,
            period=period.value,
            window_days=window_days,
            as_of=moment,
            by=by,
        )
    finally:
        opened.close()
    _print_frame(frame, output, digits=3)


def _as_of(text: str | None, settings: Config) -> datetime | None:
    """Parse an --as-of date in the configured time zone."""
    if text is None:
        return None
    from journeymap.common.errors import InputError
    from journeymap.common.timeutil import parse_timestamps

    try:
        parsed = parse_timestamps(
            pd.Series([text]), file="--as-of", column="--as-of", timezone=settings.timezone
        )
    except InputError:
        raise ConfigError(
            f"{text!r} is not a date",
            location="--as-of",
            hint="Write it as YYYY-MM-DD, for example 2026-03-31",
        ) from None
    moment: datetime = parsed.iloc[0].to_pydatetime()
    return moment


@app.command("stages")
def stages_command(
    entity: Annotated[
        EntityOption, typer.Option("--entity", help="Whose timelines: person or account.")
    ] = EntityOption.account,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date of the snapshot, YYYY-MM-DD (default: now)."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Place every person or account in the journey stages, and summarise each stage."""
    settings = _config(config)
    moment = _as_of(as_of, settings)
    opened = _open(store, settings, must_exist=True)
    try:
        frame, warnings = api.stages(opened, settings, entity_kind=entity.value, as_of=moment)
    finally:
        opened.close()
    for warning in warnings:
        err.print(Text.assemble(("note: ", "yellow"), warning), highlight=False)
    _print_frame(frame, output, digits=1)


@app.command()
def icp(
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Show one dimension's segments: industry, size_band, region or plan."
        ),
    ] = None,
    dimensions: Annotated[
        str,
        typer.Option("--dimensions", help="Comma-separated dimensions to rank."),
    ] = "industry,size_band,region",
    min_closed: Annotated[
        int, typer.Option("--min-closed", min=1, help="Closed deals a segment needs to count.")
    ] = 30,
    alpha: Annotated[
        float,
        typer.Option("--alpha", min=0.0, max=1.0, help="Significance level of the win-rate test."),
    ] = 0.05,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Rank the segments that win more often than the rest: the ICP that the CRM supports."""
    settings = _config(config)
    names = [name.strip() for name in dimensions.split(",") if name.strip()]
    opened = _open(store, settings, must_exist=True)
    try:
        frame, note = api.icp(opened, by=by, dimensions=names, min_closed=min_closed, alpha=alpha)
    finally:
        opened.close()
    if note:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    _print_frame(frame, output, money={"acv", "won_revenue"}, digits=3)


@app.command()
def dropoff(
    stages: Annotated[list[str], typer.Argument(help="Stages in order, at least two.")],
    by: Annotated[
        str,
        typer.Option("--by", help="Segments: channel, owner, pipeline, industry or region."),
    ] = "channel",
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date of the snapshot, YYYY-MM-DD (default: now)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="How many rows to flag.")] = 3,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Rank where prospects drop out, by segment and by the revenue lost beyond the average."""
    settings = _config(config)
    if len(stages) < 2:
        raise ConfigError(
            "drop-off needs at least two stages",
            location="STAGES",
            hint="Name them in order, for example: journeymap dropoff Engaging Won --by industry",
        )
    moment = _as_of(as_of, settings)
    opened = _open(store, settings, must_exist=True)
    try:
        frame = api.dropoff(opened, stages, by=by, as_of=moment, top=top)
    finally:
        opened.close()
    _print_frame(frame, output, money={"deal_value", "revenue_impact", "excess_impact"}, digits=3)


class BlindSpotPart(StrEnum):
    by_kind = "by_kind"
    click_ids = "click_ids"
    agreement = "agreement"
    undercount = "undercount"


@app.command()
def blindspots(
    part: Annotated[
        BlindSpotPart | None,
        typer.Option("--part", help="Show one table only (needed for csv and json)."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show what tracking misses: untracked and direct-only conversions, unmatched click ids,
    and self-reported sources against tracked first touches."""
    settings = _config(config)
    if output is not OutputFormat.table and part is None:
        raise ConfigError(
            f"--format {output.value} prints one table",
            location="--part",
            hint="Add --part by_kind, click_ids, agreement or undercount",
        )
    opened = _open(store, settings, must_exist=True)
    try:
        report = api.blind_spots(opened, settings)
    finally:
        opened.close()
    titles = {
        "by_kind": "Conversions without a tracked touch, and with direct touches only",
        "click_ids": "Click ids that match no campaign with spend",
        "agreement": "Self-reported source (rows) against tracked first touch (columns)",
        "undercount": "Channels that tracking under-counts",
    }
    for name, title in titles.items():
        if part is not None and part.value != name:
            continue
        frame = getattr(report, name)
        if name == "agreement" and not frame.empty:
            frame = frame.reset_index()
        if part is None:
            out.print(Text(title, style="bold"))
        _print_frame(frame, output, money={"value", "no_touch_value", "direct_only_value"})
    for note in report.notes:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)


@app.command("paths")
def paths_command(
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Conversion kind (default: closed-won when present)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many paths to list.")] = 10,
    collapse: Annotated[
        bool, typer.Option("--collapse", help="Merge consecutive touches of one channel.")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List the channel paths that precede a conversion, with shares and conversion rates."""
    settings = _config(config)
    opened = _open(store, settings, must_exist=True)
    try:
        frame, note = api.converting_paths(opened, settings, kind=kind, top=top, collapse=collapse)
    finally:
        opened.close()
    if note:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    _print_frame(frame, output, digits=3)


@app.command("coverage")
def coverage_command(
    entity: Annotated[
        EntityOption, typer.Option("--entity", help="Whose stages: person or account.")
    ] = EntityOption.person,
    campaigns: Annotated[
        bool, typer.Option("--campaigns", help="List each campaign's stage and spend instead.")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show spend by the stage each campaign targets beside that stage's drop-off."""
    settings = _config(config)
    opened = _open(store, settings, must_exist=True)
    try:
        table, by_campaign = api.coverage(opened, settings, entity_kind=entity.value)
    finally:
        opened.close()
    if campaigns:
        _print_frame(by_campaign, output, money={"cost"})
        return
    unmapped = by_campaign[by_campaign.stage == "(unmapped)"]
    if len(unmapped):
        err.print(
            Text.assemble(
                ("note: ", "yellow"),
                f"{len(unmapped)} campaigns ({unmapped.cost.sum():,.2f} spent) match no rule "
                "in coverage.campaign_stages; see --campaigns",
            ),
            highlight=False,
        )
    _print_frame(table, output, money={"spend"}, digits=3)


@app.command()
def velocity(
    between: Annotated[
        str | None,
        typer.Option("--between", help="Two stages, FROM,TO: days from entering one to the other."),
    ] = None,
    stalled: Annotated[
        bool, typer.Option("--stalled", help="List open deals stalled in their stage.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date of the snapshot, YYYY-MM-DD (default: now; with --stalled, the last "
            "date in the data).",
        ),
    ] = None,
    threshold_days: Annotated[
        float | None,
        typer.Option(
            "--threshold-days",
            min=0.0,
            help="With --stalled: days in a stage that count as stalled "
            "(default: the stage's 75th percentile).",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Break down by channel, owner, pipeline, industry or region."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show deal velocity: days in each stage, between two stages, or stalled deals."""
    settings = _config(config)
    stages = None
    if between is not None:
        parts = [part.strip() for part in between.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(
                f"--between {between!r} does not name two stages",
                location="--between",
                hint="Give FROM,TO, for example --between Engaging,Won",
            )
        stages = (parts[0], parts[1])
    moment = _as_of(as_of, settings)
    opened = _open(store, settings, must_exist=True)
    try:
        frame = api.velocity(
            opened,
            between=stages,
            stalled=stalled,
            as_of=moment,
            by=by,
            threshold_days=threshold_days,
        )
    finally:
        opened.close()
    _print_frame(frame, output, money={"amount"}, digits=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="TCP port.")] = None,
    journal: Annotated[
        Path | None,
        typer.Option("--journal", help="SQLite journal of acknowledged events."),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the collector: the Segment-compatible tracking API, health and metrics.

    Each acknowledged event is on disk in the journal. Every few seconds the server moves
    new events into the store, and the other commands can use the store meanwhile.
    """
    import uvicorn

    from journeymap.collect.app import create_app
    from journeymap.collect.journal import default_journal_path
    from journeymap.collect.keys import key_file

    settings = _config(config)
    if store is not None:
        settings = settings.model_copy(update={"store": store})
    journal_path = journal or Path(
        settings.collector.journal or default_journal_path(settings.store)
    )
    application = create_app(settings, journal_path=journal_path, drain_process=True)
    address = host or settings.collector.host
    listen = port or settings.collector.port
    err.print(f"collecting on http://{address}:{listen} into {journal_path}")
    if not settings.collector.sources:
        err.print(f"write key of the source 'default': in {key_file(journal_path)}")
    _tune_garbage_collector()
    uvicorn.run(
        application,
        host=address,
        port=listen,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


def _tune_garbage_collector() -> None:
    """Make full garbage collections rare and short in the server.

    Each request allocates thousands of small objects. With the default thresholds, the
    collector's full passes paused the server for tens of milliseconds about once a second:
    p99 latency was 70 ms instead of 9 ms at 20,000 events/s (benchmarks/collector.py).
    Freezing the objects of start-up keeps them out of every pass.
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main() -> None:
    """Run the command line, turning journeymap's errors into one red line."""
    debug = "--debug" in sys.argv
    try:
        app()
    except JourneymapError as exc:
        if debug:
            raise
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
