"""``journeymap sync``: send conversions to the ad platforms, preview them, audit the outbox."""

from __future__ import annotations

import json
import sys
from collections import Counter
from enum import StrEnum
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from journeymap import api
from journeymap.cli import common
from journeymap.cli.common import (
    ConfigOpt,
    OutputFormat,
    StoreOpt,
    app,
    err,
    open_for,
    print_frame,
    read_config,
)

sync_app = typer.Typer(
    help="Send conversions to the ad platforms' conversion APIs (see sync.destinations).",
    invoke_without_command=True,
)
app.add_typer(sync_app, name="sync")

DestinationOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--destination", "-d", help="Destination name to sync; repeat for several (default: all)."
    ),
]


class RequeueStatus(StrEnum):
    """Final statuses that `sync requeue` returns to the queue."""

    rejected = "rejected"
    failed = "failed"


COUNT_COLUMNS = ("sent", "matched", "rejected", "skipped", "failed", "retry", "requests")
EXAMPLE_CHARS = 60
"""Characters of the example message in the reasons table of `sync status`."""


@sync_app.callback()
def sync_command(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the requests that would be sent, credentials masked; write nothing.",
        ),
    ] = False,
    destination: DestinationOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue new conversions and send every due one once, retrying failures due soon.

    Progress goes to stderr and a summary table to stdout. Each conversion is sent to each
    destination once: the outbox keeps its state in the store, and the platform's dedup on
    the event id absorbs a request sent again after a crash. Exits with status 1 when a
    platform rejected a destination's credentials (its rows stay queued).
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = read_config(config)
    if not settings.sync.destinations:
        err.print("no destinations: add sync.destinations to the configuration file")
        raise typer.Exit(1)
    opened = open_for(store, settings)
    try:
        if dry_run:
            report = api.sync_dry_run(opened, settings, destinations=destination)
            _print_warnings(report)
            _print_plan(report)
            return

        def progress(name: str, counts: Counter[str]) -> None:
            done = ", ".join(f"{counts[key]} {key}" for key in COUNT_COLUMNS if counts[key])
            err.print(f"{name}: {done}", highlight=False)

        report = api.sync(opened, settings, destinations=destination, progress=progress)
    finally:
        opened.close()
    _print_warnings(report)
    _print_summary(report, destination or list(settings.sync.destinations))
    for message in report.stopped.values():
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if report.stopped:
        raise typer.Exit(1)


def _print_warnings(report: Any) -> None:
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _skipped_text(codes: Counter[str]) -> str:
    """Return ``"851 outside_window, 2 no_match_key"`` for rows skipped when queued."""
    return ", ".join(f"{count} {code}" for code, count in codes.most_common()) or "0"


def _print_summary(report: Any, names: list[str]) -> None:
    if report.released:
        err.print(f"sent again: {report.released} rows that a stopped run had claimed")
    rows = []
    for name in names:
        counts = report.counts.get(name, Counter())
        rows.append(
            {
                "destination": name,
                "queued": int(report.queued.get(name, 0)),
                "skipped_at_queue": _skipped_text(report.skipped_at_queue.get(name, Counter())),
                **{key: int(counts[key]) for key in COUNT_COLUMNS},
            }
        )
    print_frame(pd.DataFrame(rows), OutputFormat.table)


def _print_plan(report: Any) -> None:
    from journeymap.activate.adapters import redact

    planned = []
    for name, request in report.planned:
        shown = redact(request)
        body: Any = shown.json
        if shown.content is not None:
            body = shown.content.decode("utf-8", errors="replace")
        planned.append(
            {
                "destination": name,
                "method": shown.method,
                "url": shown.url,
                "headers": dict(shown.headers),
                "body": body,
                "event_ids": list(shown.event_ids),
            }
        )
    not_sent = [
        {
            "destination": name,
            "event_id": o.event_id,
            "status": o.status,
            "code": o.code,
            "message": o.message,
        }
        for name, o in report.checked
    ]
    queue = {
        name: {
            "queued": int(count),
            "skipped_at_queue": dict(report.skipped_at_queue.get(name, {})),
        }
        for name, count in report.queued.items()
    }
    document = {"queue": queue, "requests": planned, "not_sent": not_sent}
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    skipped = Counter[str]()
    for codes in report.skipped_at_queue.values():
        skipped.update(codes)
    err.print(
        f"dry run: {sum(report.queued.values())} conversions to queue, "
        f"{sum(skipped.values())} skipped at queue ({_skipped_text(skipped)}); "
        f"{len(planned)} requests, {sum(len(p['event_ids']) for p in planned)} "
        f"conversions, {len(not_sent)} not sent; nothing was written",
        highlight=False,
    )


@sync_app.command("status")
def status_command(
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    top: Annotated[int, typer.Option("--top", min=1, help="Reasons shown per action.")] = 3,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the outbox rows per destination, action and status, and why rows were not
    delivered: the top reasons (by code) of rejected, skipped and failed rows.

    As a table, the counts come first and the reasons follow in a table of their own, one
    row per code with an example message cut to fit.
    """
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        frame = api.sync_status(opened, top=top)
        reasons = api.sync_reasons(opened, top=top) if output is OutputFormat.table else None
    finally:
        opened.close()
    if frame.empty and output is OutputFormat.table:
        err.print("the outbox is empty: run journeymap sync")
        return
    if reasons is None:
        print_frame(frame, output)
        return
    print_frame(frame.drop(columns=["top_reasons"]), output)
    if not reasons.empty:
        _print_reasons(reasons)


def _print_reasons(reasons: pd.DataFrame) -> None:
    """Print the reasons table; the example column takes the width that is left and wraps."""
    table = Table(show_edge=False, header_style="bold", title="why rows were not delivered")
    for column in ("destination", "action", "status", "code"):
        table.add_column(column, no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("example", overflow="fold", ratio=1)
    for row in reasons.to_dict("records"):
        example = str(row["example"])
        if len(example) > EXAMPLE_CHARS:
            example = example[: EXAMPLE_CHARS - 3].rstrip() + "..."
        cells = [str(row[name]) for name in ("destination", "action", "status", "code", "rows")]
        table.add_row(*cells, example)
    common.out.print()
    common.out.print(table)


@sync_app.command("requeue")
def requeue_command(
    destination: DestinationOpt = None,
    status: Annotated[
        RequeueStatus,
        typer.Option("--status", help="Rows in this final status go back to the queue."),
    ] = RequeueStatus.rejected,
    code: Annotated[
        str | None,
        typer.Option("--code", help="Only rows whose last code is this (as `sync status` shows)."),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Put rejected (or failed) rows back in the queue, such as rows that a wrong credential
    rejected, so that the next `journeymap sync` sends them again with the same event ids.

    Each row gets a `sync_attempts` row (outcome `requeued`) that keeps its former code and
    message, and its attempt count starts again at 0.
    """
    from journeymap.activate.deliver import chosen_destinations
    from journeymap.common.timeutil import utc_now

    settings = read_config(config)
    names = chosen_destinations(settings, destination) if destination else None
    opened = open_for(store, settings, must_exist=True)
    try:
        event_ids = api.requeue_rows(
            opened, utc_now(), status=status.value, destinations=names, code=code
        )
    finally:
        opened.close()
    where = f" of {', '.join(names)}" if names else ""
    which = f" with code {code}" if code is not None else ""
    err.print(
        f"requeued {len(event_ids)} {status.value} rows{where}{which}; "
        "run journeymap sync to send them",
        highlight=False,
    )
