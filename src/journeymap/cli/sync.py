"""``journeymap sync``: send conversions to the ad platforms, preview them, audit the outbox."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Annotated, Any

import pandas as pd
import typer

from journeymap import api
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
COUNT_COLUMNS = ("sent", "matched", "rejected", "skipped", "failed", "retry", "requests")


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
    the event id absorbs a request sent again after a crash.
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
            _print_plan(report)
            return

        def progress(name: str, counts: Counter[str]) -> None:
            done = ", ".join(f"{counts[key]} {key}" for key in COUNT_COLUMNS if counts[key])
            err.print(f"{name}: {done}", highlight=False)

        report = api.sync(opened, settings, destinations=destination, progress=progress)
    finally:
        opened.close()
    _print_summary(report, destination or list(settings.sync.destinations))


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
    sys.stdout.write(
        json.dumps({"requests": planned, "not_sent": not_sent}, indent=2, default=str) + "\n"
    )
    err.print(
        f"dry run: {len(planned)} requests, {sum(len(p['event_ids']) for p in planned)} "
        f"conversions, {len(not_sent)} not sent; nothing was written"
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
    delivered: the top reasons of rejected, skipped and failed rows."""
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        frame = api.sync_status(opened, top=top)
    finally:
        opened.close()
    if frame.empty and output is OutputFormat.table:
        err.print("the outbox is empty: run journeymap sync")
        return
    print_frame(frame, output)
