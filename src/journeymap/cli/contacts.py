"""``journeymap import contacts``: CRM contacts as people, identity edges and match keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from journeymap import api
from journeymap.cli.common import (
    ConfigOpt,
    MapOpt,
    MappingFileOpt,
    SepOpt,
    StoreOpt,
    err,
    import_app,
    open_for,
    read_config,
)


@import_app.command("contacts")
def import_contacts(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet export of HubSpot contacts or Salesforce contacts or leads."
        ),
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
    phone_region: Annotated[
        str | None,
        typer.Option(
            "--phone-region",
            help="Country (ISO 3166 code such as US or GB) of phone numbers written without a "
            "country code (default: collector.phone_region, else US).",
        ),
    ] = None,
) -> None:
    """Import CRM contacts: id, company, email, phone, title, create and modified dates.

    Emails and phone numbers are stored only as SHA-256 hashes.
    """
    from journeymap.sources.columns import parse_mapping_options

    settings = read_config(config)
    opened = open_for(store, settings)
    try:
        result = api.import_file(
            opened,
            file,
            input_format="contacts",
            config=settings,
            mapping=parse_mapping_options(map_ or [], mapping),
            separator=sep,
            phone_region=phone_region,
        )
    finally:
        opened.close()
    err.print(result.summary())
