"""What every command shares: the Typer apps, the consoles, option types and helpers."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from journeymap import __version__, api
from journeymap.collect.journal import default_journal_path
from journeymap.common.config import Config, load_config
from journeymap.common.errors import JourneymapError
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
PIPED_OUT = None if sys.stdout.isatty() else out
"""The console of piped or captured output, which tables widen to fit; None on a terminal."""
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


def read_config(path: Path | None) -> Config:
    return load_config(path)


def with_options(
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


def open_for(store: str | None, config: Config, *, must_exist: bool = False) -> Store:
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


def print_frame(
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
    if out is not PIPED_OUT:
        out.print(table)
        return
    # Piped or captured output widens to the whole table, so that no cell is cut short.
    needed = Measurement.get(out, out.options.update(width=100_000), table).maximum
    width = out.width
    out.width = max(width, needed)
    try:
        out.print(table)
    finally:
        out.width = width


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
