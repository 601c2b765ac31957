"""The journey map commands: ``map`` (export), ``snapshot`` and ``compare``."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from journeymap.cli.common import (
    ConfigOpt,
    EntityOption,
    StoreOpt,
    app,
    err,
    open_for,
    out,
    read_config,
)
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError
from journeymap.store.store import Store


class MapFormat(StrEnum):
    html = "html"
    xlsx = "xlsx"
    markdown = "markdown"
    csv = "csv"
    parquet = "parquet"


class CompareFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


StartOpt = Annotated[
    str | None, typer.Option("--start", help="First day of the range, YYYY-MM-DD (UTC).")
]
EndOpt = Annotated[
    str | None, typer.Option("--end", help="Last day of the range, YYYY-MM-DD (UTC, included).")
]
SegmentOpt = Annotated[
    str | None,
    typer.Option(
        "--segment",
        help="Only accounts with COLUMN=VALUE: industry, size_band, region or plan; or "
        "channel=NAME for those whose first touch was in that channel.",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="Model of the attributed figures (default: first configured, or markov)."
    ),
]
LookbackOpt = Annotated[
    float | None,
    typer.Option("--lookback-days", help="Lookback window in days (default: the last build's)."),
]
MapEntityOpt = Annotated[
    EntityOption | None,
    typer.Option(
        "--entity",
        help="Whose stage timeline: person or account (default: account with deal stages).",
    ),
]
FolderOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Snapshots folder (default: snapshots/ beside the store)."),
]


def _map_options(
    segment: str | None, model: str | None, lookback: float | None, entity: EntityOption | None
) -> dict[str, Any]:
    return {
        "segment": segment,
        "model": model,
        "lookback": lookback,
        "entity": entity.value if entity else None,
    }


@app.command("map")
def map_command(
    file_format: Annotated[
        MapFormat, typer.Option("--format", help="html, xlsx, markdown, csv or parquet.")
    ],
    target: Annotated[
        Path,
        typer.Option("--out", help="Output file; a folder for csv and parquet (one file a table)."),
    ],
    start: StartOpt = None,
    end: EndOpt = None,
    segment: SegmentOpt = None,
    model: ModelOpt = None,
    lookback_days: LookbackOpt = None,
    entity: MapEntityOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export the journey map: stages as columns, measured figures beside the configured rows."""
    from journeymap.report.exports import export_map
    from journeymap.report.map import journey_map

    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        measured = journey_map(
            opened,
            settings,
            start=start,
            end=end,
            **_map_options(segment, model, lookback_days, entity),
        )
    finally:
        opened.close()
    for note in measured.notes:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    for path in export_map(measured, target, file_format=file_format.value):
        err.print(f"wrote {path}", highlight=False)


@app.command()
def snapshot(
    name: Annotated[
        str | None,
        typer.Option("--name", help="Snapshot name, such as 2026-Q1 (default: the dates)."),
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    segment: SegmentOpt = None,
    model: ModelOpt = None,
    lookback_days: LookbackOpt = None,
    entity: MapEntityOpt = None,
    folder: FolderOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a snapshot of the same name.")
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Save the journey map with the configuration, data range and version as one JSON file."""
    from journeymap.report.snapshots import snapshot as save_snapshot

    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        path = save_snapshot(
            opened,
            settings,
            name=name,
            start=start,
            end=end,
            folder=folder,
            overwrite=force,
            **_map_options(segment, model, lookback_days, entity),
        )
    finally:
        opened.close()
    out.print(f"saved {path}", highlight=False)


@app.command()
def compare(
    snapshots: Annotated[
        list[str] | None,
        typer.Argument(help="Two snapshot names or files: the earlier, then the later."),
    ] = None,
    period: Annotated[
        list[str] | None,
        typer.Option(
            "--period",
            help="Compare two periods measured now: 2026-Q1, 2026-03, 2026 or DAY..DAY; twice.",
        ),
    ] = None,
    segment: SegmentOpt = None,
    model: ModelOpt = None,
    lookback_days: LookbackOpt = None,
    entity: MapEntityOpt = None,
    rate_points: Annotated[
        float,
        typer.Option("--rate-points", min=0.0, help="Smallest share change that matters (pp)."),
    ] = 5.0,
    min_entities: Annotated[
        int,
        typer.Option("--min-entities", min=1, help="Entities each side needs for a change."),
    ] = 30,
    alpha: Annotated[
        float,
        typer.Option("--alpha", min=0.0, max=1.0, help="Largest p-value of a change that matters."),
    ] = 0.05,
    all_changes: Annotated[
        bool, typer.Option("--all", help="List every change, not only those that matter.")
    ] = False,
    output: Annotated[
        CompareFormat, typer.Option("--format", help="table, json or markdown.")
    ] = CompareFormat.table,
    folder: FolderOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show what changed between two snapshots or two periods; changes that matter first."""
    from journeymap.report.compare import ChangeRule, render_markdown
    from journeymap.report.compare import compare as compare_maps

    settings = read_config(config)
    names = list(snapshots or [])
    periods = list(period or [])
    if (len(names), len(periods)) not in ((2, 0), (0, 2)):
        raise ConfigError(
            f"got {len(names)} snapshots and {len(periods)} periods",
            location="compare",
            hint="Name two snapshots (journeymap compare 2026-Q1 2026-Q2) "
            "or two periods (--period 2026-Q1 --period 2026-Q2)",
        )
    rule = ChangeRule(rate_points=rate_points, min_entities=min_entities, alpha=alpha)
    options = _map_options(segment, model, lookback_days, entity)
    opened = open_for(store, settings, must_exist=bool(periods))
    try:
        maps = (
            _period_maps(opened, settings, periods, options)
            if periods
            else _snapshot_maps(opened, names, folder)
        )
    finally:
        opened.close()
    labels = periods or names
    result = compare_maps(maps[0], maps[1], labels=(labels[0], labels[1]), rule=rule)

    if output is CompareFormat.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    if output is CompareFormat.markdown:
        sys.stdout.write(render_markdown(result))
        return
    _print_changes(result, every=all_changes)


def _period_maps(
    store: Store, settings: Config, periods: list[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    from journeymap.report.map import journey_map
    from journeymap.report.snapshots import parse_period

    maps = []
    for text in periods:
        first, last = parse_period(text)
        maps.append(journey_map(store, settings, start=first, end=last, **options).to_dict())
    return maps


def _snapshot_maps(store: Store, names: list[str], folder: Path | None) -> list[dict[str, Any]]:
    from journeymap.report.snapshots import load_snapshot, snapshot_folder

    where = snapshot_folder(store, folder)
    return [load_snapshot(name, where)["map"] for name in names]


def _print_changes(result: Any, *, every: bool) -> None:
    from journeymap.report.compare import format_change, format_value

    shown = result.changes if every else result.highlights
    rule = result.rule
    out.print(
        f"{len(result.highlights)} of {len(result.changes)} changes matter "
        f"(a share by {rule.rate_points:g} pp or more with {rule.min_entities}+ entities "
        f"each side and p < {rule.alpha:g}; a median by {rule.days_ratio:.0%} and "
        f"{rule.min_days:g}+ days).",
        highlight=False,
    )
    if shown:
        table = Table(show_edge=False, header_style="bold")
        for column in ("", "kind", "item", result.before, result.after, "change", "p"):
            numeric = column in (result.before, result.after, "change", "p")
            table.add_column(column, justify="right" if numeric else "left")
        for change in shown:
            table.add_row(
                Text("◆", style="bold yellow") if change.matters else "",
                change.section,
                change.item,
                format_value(change, change.before),
                format_value(change, change.after),
                format_change(change),
                "–" if change.p_value is None else f"{change.p_value:.3f}",
            )
        out.print(table)
    if not every and len(shown) < len(result.changes):
        err.print("Pass --all to list every change.", highlight=False)
    for note in result.notes:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
