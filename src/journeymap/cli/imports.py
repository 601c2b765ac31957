"""``journeymap import``: load a file into the store, all rows or none."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from journeymap import api
from journeymap.cli.common import (
    ConfigOpt,
    MapOpt,
    MappingFileOpt,
    PathSepOpt,
    SepOpt,
    StoreOpt,
    err,
    import_app,
    open_for,
    read_config,
)


def _import(
    kind: str, file: Path, store: str | None, config_path: Path | None, **options: object
) -> None:
    config = read_config(config_path)
    opened = open_for(store, config)
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
            help="Accounts file to import too: account (or id and name), sector, employees, "
            "office_location, plan; Salesforce's account or HubSpot's company table.",
        ),
    ] = None,
    products: Annotated[
        Path | None,
        typer.Option("--products", help="Products file, read only to check product spellings."),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Stage history table: HubSpot's deal_stage, Salesforce's opportunity history "
            "(Fivetran history mode) or OpportunityHistory, recognised by its columns.",
        ),
    ] = None,
    stage_labels: Annotated[
        Path | None,
        typer.Option(
            "--stage-labels",
            help="HubSpot's deal_pipeline_stage table, which names the stage ids.",
        ),
    ] = None,
    deal_companies: Annotated[
        Path | None,
        typer.Option(
            "--deal-companies",
            help="HubSpot's deal_company table (or a deals export with Associated Company "
            "IDs), which sets the account of deals whose account column is missing or empty.",
        ),
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
        history_file=history,
        stage_labels_file=stage_labels,
        deal_companies_file=deal_companies,
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


class OfflineTypeOption(StrEnum):
    webinar = "webinar"
    event = "event"
    call = "call"
    sales_email = "sales_email"
    meeting = "meeting"
    review_site = "review_site"
    self_reported = "self_reported"


@import_app.command("offline")
def import_offline(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet file of webinar attendees, event scans, sales activity, "
            "review-site intent or self-reported sources."
        ),
    ],
    touch_type: Annotated[
        OfflineTypeOption | None,
        typer.Option("--type", help="Touch type of rows whose file has no type column."),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    sep: SepOpt = None,
) -> None:
    """Import offline touches as touchpoints; emails are kept only as SHA-256 hashes."""
    from journeymap.sources.columns import parse_mapping_options

    _import(
        "offline",
        file,
        store,
        config,
        mapping=parse_mapping_options(map_ or [], mapping),
        separator=sep,
        touch_type=touch_type.value if touch_type else None,
    )
