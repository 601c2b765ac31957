"""Recommendations: ``journeymap recommend``."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from journeymap import api
from journeymap.analyses.recommend import Recommendations, format_value, to_markdown
from journeymap.cli.common import ConfigOpt, StoreOpt, app, err, open_for, out, read_config

SEVERITY_STYLES = {"high": "bold red", "medium": "yellow", "low": "dim"}


class RecommendFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def recommend(
    output: Annotated[
        RecommendFormat, typer.Option("--format", help="Output format: table, json or markdown.")
    ] = RecommendFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List the problems that the rules find in the store, with their evidence and an action.

    Thresholds are set in the recommendations section of the configuration.
    """
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        result = api.recommendations(opened, settings)
    finally:
        opened.close()

    if output is RecommendFormat.json:
        out.print_json(json.dumps(result.to_dict()))
        return
    if output is RecommendFormat.markdown:
        print(to_markdown(result))
        return
    _print_tables(result)


def _print_tables(result: Recommendations) -> None:
    if not result.items:
        out.print("No rule fired.")
    for number, item in enumerate(result.items, start=1):
        style = SEVERITY_STYLES[item.severity]
        out.print(Text.assemble((f"{number}. [{item.severity}] ", style), (item.title, "bold")))
        out.print(f"   {item.why}")
        table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 2))
        for column, justify in (("measure", "left"), ("value", "right"), ("unit", "left"),
                                ("threshold", "left")):  # fmt: skip
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for row in item.evidence.itertuples(index=False):
            table.add_row(
                str(row.measure), format_value(row.value), str(row.unit), str(row.threshold)
            )
        out.print(table)
        out.print(f"   action: {item.action}  [dim](chart: {item.chart}, rule: {item.rule})[/dim]")
        out.print()
    for note in result.skipped:
        err.print(Text.assemble(("note: ", "yellow"), f"rule not run: {note}"), highlight=False)
