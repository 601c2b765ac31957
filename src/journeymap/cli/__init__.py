"""The ``journeymap`` command: thin Typer commands over :mod:`journeymap.api`.

Each module of this package registers the commands of one area on the one Typer app of
:mod:`journeymap.cli.common`; importing the package registers them all. Errors that journeymap
raises on purpose print one red line (with the hint) and exit with status 1; ``--debug`` shows
the traceback instead.

To add an area, write a module that decorates its functions with ``@app.command()`` (from
:mod:`journeymap.cli.common`) and add the module to the import line below.
"""

from __future__ import annotations

import sys

from rich.text import Text

from journeymap.cli import (  # noqa: F401  (registers commands)
    attribution,
    contacts,
    imports,
    journey,
    journey_map,
    recommend,
    serve,
    sync,
)
from journeymap.cli.common import app, err
from journeymap.common.errors import JourneymapError

__all__ = ["app", "main"]


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
