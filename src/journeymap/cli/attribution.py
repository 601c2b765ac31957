"""Journeys and attribution: build, attribute, explain, report, run and demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.text import Text

from journeymap import api
from journeymap.attribution import resolve_models
from journeymap.cli.common import (
    SHORT_NAMES,
    ConfigOpt,
    EntityOpt,
    GrainOption,
    InputFormatOption,
    KindOpt,
    LastNOpt,
    LookbackOpt,
    MapOpt,
    MappingFileOpt,
    OutputFormat,
    PathSepOpt,
    SepOpt,
    StoreOpt,
    TransformOpt,
    app,
    err,
    log,
    open_for,
    out,
    print_frame,
    read_config,
    with_options,
)
from journeymap.common.config import Config
from journeymap.common.errors import JourneymapError
from journeymap.store.store import MEMORY, Store


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
    settings = with_options(read_config(config), lookback_days, transform, last_n, kind, entity)
    opened = open_for(store, settings, must_exist=True)
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
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="Credit channels straight from FILE's channel column, without importing "
            "it into a store: the fastest way through a large touch file.",
        ),
    ] = False,
) -> None:
    """Print credit per model and channel (or source_medium, campaign, ad)."""
    from journeymap.sources.columns import parse_mapping_options

    settings = with_options(read_config(config), lookback_days, transform, last_n, kind, entity)
    if order is not None:
        settings = api.with_model_parameters(settings, "markov", {"order": order})
    if direct:
        _check_direct(file, input_format, by, store)
        names = models or settings.attribution.models
        resolve_models(names, settings.attribution.parameters)
        assert file is not None
        direct_result = api.attribute_touch_table(
            file,
            config=settings,
            models=names,
            mapping=parse_mapping_options(map_ or [], mapping),
            separator=sep,
        )
        if direct_result.credits.empty:
            err.print(
                Text.assemble(("note: ", "yellow"), "the file has no conversions to credit"),
                highlight=False,
            )
        _print_credits(direct_result.credits, by, output, wide, value_columns)
        if details is not None:
            _write_details(direct_result, details)
        return
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
    location = store if file is None else (store or MEMORY)
    opened = open_for(location, settings, must_exist=file is None)
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
    if table.empty:
        notes.append("the journeys have no conversions to credit")
    for note in notes:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    _print_credits(table, by, output, wide, value_columns)
    if details is not None:
        _write_details(attribution, details)


def _write_details(attribution: api.Attribution | api.TableAttribution, folder: Path) -> None:
    """Write the data-driven models' details, or raise one clear error."""
    try:
        written = api.write_details(attribution, folder)
    except OSError as exc:
        raise JourneymapError(
            f"cannot write the model details to {folder}: {exc.strerror or exc}",
            hint="Give --details a folder that can be created or written",
        ) from exc
    for path in written:
        err.print(f"wrote {path}")
    if written:
        return
    with_details = {"markov", "shapley", "shapley_ordered"}
    if with_details & {model.name for model in attribution.models}:
        err.print(f"no model details written to {folder}: there are no conversions to credit")
    else:
        err.print(
            f"no model details written to {folder}: only markov, shapley and "
            "shapley_ordered have details; add one of them to --models"
        )


def _check_direct(
    file: Path | None, input_format: InputFormatOption, by: GrainOption, store: str | None
) -> None:
    """Reject the options that attributing a touch file without a store cannot follow."""
    hint = "Drop --direct to import the file into a store"
    if file is None:
        raise JourneymapError("--direct needs a touch FILE", hint="Name the file to attribute")
    if input_format is not InputFormatOption.touchpoints:
        raise JourneymapError(
            f"--direct reads touch files, not --input-format {input_format.value}", hint=hint
        )
    if by is not GrainOption.channel:
        raise JourneymapError(
            f"--direct credits channels only, so --by {by.value} has no data", hint=hint
        )
    if store is not None:
        raise JourneymapError("--direct stores nothing, so --store has no use", hint=hint)


def _print_credits(
    table: pd.DataFrame, by: GrainOption, output: OutputFormat, wide: bool, value_columns: bool
) -> None:
    """Print credit rows, or with ``wide`` one column per model."""
    if wide and not table.empty:
        measure = "value" if value_columns else "conversions"
        pivot = table.pivot_table(
            index=by.value, columns="model", values=measure, aggfunc="sum", fill_value=0.0
        )
        columns = [name for name in dict.fromkeys(table.model) if name in pivot.columns]
        table = pivot[columns].sort_values(columns[0], ascending=False).reset_index()
        table.columns.name = None
    print_frame(table, output, money={"value"}, digits=2 if wide else 4)


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
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
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
    print_frame(steps, output, digits=2)


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "journeymap-report.html"
    ),
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the self-contained HTML report of the stored journeys and credits."""
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
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
    settings = with_options(read_config(config), lookback_days, transform, last_n, kind, entity)
    opened = open_for(store, settings)
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
    print_frame(wide, OutputFormat.table, digits=1)
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

    from journeymap.demo.crm import write_crm
    from journeymap.demo.world import generate_world, write_world

    settings = read_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("generating the demo world", total=people)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        world = generate_world(people, seed=seed, progress=advance)
        files = write_world(world, folder, format="parquet" if file_format == "parquet" else "csv")
        crm_files = write_crm(world.crm, folder) if world.crm is not None else {}
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
        if "contacts" in files:
            contacts = api.import_file(
                opened, files["contacts"], input_format="contacts", config=settings
            )
            err.print(contacts.summary())
        if crm_files:
            deals = api.import_file(
                opened,
                crm_files["deals"],
                input_format="deals",
                config=settings,
                accounts_file=files["accounts"],
            )
            err.print(deals.summary())
            upsells = api.import_file(
                opened, crm_files["expansions"], input_format="touchpoints", config=settings
            )
            err.print(upsells.summary())
        _main_job(opened, settings, None, folder / "report.html")
    finally:
        opened.close()
