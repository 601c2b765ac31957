"""The journey analyses: funnel, stages, ICP, drop-off, blind spots, paths, coverage
and velocity."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import pandas as pd
import typer
from rich.text import Text

from journeymap import api
from journeymap.cli.common import (
    ConfigOpt,
    EntityOption,
    OutputFormat,
    StoreOpt,
    app,
    err,
    open_for,
    out,
    print_frame,
    read_config,
)
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError


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
    settings = read_config(config)
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
    opened = open_for(store, settings, must_exist=True)
    try:
        frame = api.funnel(
            opened,
            steps,
            events=events,
            period=period.value,
            window_days=window_days,
            as_of=moment,
            by=by,
            config=settings,
        )
    finally:
        opened.close()
    print_frame(frame, output, digits=3)


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
    settings = read_config(config)
    moment = _as_of(as_of, settings)
    opened = open_for(store, settings, must_exist=True)
    try:
        frame, warnings = api.stages(opened, settings, entity_kind=entity.value, as_of=moment)
    finally:
        opened.close()
    for warning in warnings:
        err.print(Text.assemble(("note: ", "yellow"), warning), highlight=False)
    print_frame(frame, output, digits=1)


NO_CHURN_NOTE = (
    "no account has a churn date and no closed deal is a renewal, so the retention columns "
    "are empty (and left out of --format table). Import an accounts file with a churned_at "
    "column to fill them"
)


@app.command()
def icp(
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Show one dimension's segments: industry, size_band, region, plan, "
            "committee_size or committee_roles.",
        ),
    ] = None,
    dimensions: Annotated[
        str | None,
        typer.Option(
            "--dimensions",
            help="Comma-separated dimensions to rank (default: industry, size_band, region, "
            "and plan when the accounts have plans).",
        ),
    ] = None,
    min_closed: Annotated[
        int, typer.Option("--min-closed", min=1, help="Closed deals a segment needs to count.")
    ] = 30,
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha",
            min=0.0,
            max=1.0,
            help="Significance level of the win-rate and retention tests.",
        ),
    ] = 0.05,
    min_customers: Annotated[
        int,
        typer.Option(
            "--min-customers", min=1, help="Customers a segment needs for its retention to count."
        ),
    ] = 20,
    horizon_days: Annotated[
        float,
        typer.Option(
            "--horizon-days",
            help="Days after the first win at which horizon retention is measured.",
        ),
    ] = 365.0,
    renewal_pattern: Annotated[
        str,
        typer.Option(
            "--renewal-pattern",
            help="Regular expression that marks renewal deals by name or pipeline, in any "
            'case. A lost renewal marks its account churned, and "" turns this off.',
        ),
    ] = "renewal",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date that horizon retention is measured at, YYYY-MM-DD "
            "(default: the latest deal or churn date).",
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Rank the segments that win more often and keep their customers longer: the ICP."""
    settings = read_config(config)
    names = (
        [name.strip() for name in dimensions.split(",") if name.strip()]
        if dimensions is not None
        else None
    )
    moment = _as_of(as_of, settings)
    opened = open_for(store, settings, must_exist=True)
    try:
        frame, note = api.icp(
            opened,
            by=by,
            dimensions=names,
            min_closed=min_closed,
            alpha=alpha,
            min_customers=min_customers,
            horizon_days=horizon_days,
            renewal_pattern=renewal_pattern,
            as_of=moment,
        )
    finally:
        opened.close()
    if note:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    if frame["churned"].isna().all():
        err.print(Text.assemble(("note: ", "yellow"), NO_CHURN_NOTE), highlight=False)
        if output is OutputFormat.table:
            from journeymap.analyses import icp as icp_analysis

            # Empty columns would only squeeze the others. CSV and JSON keep every column.
            retention = {*icp_analysis.CHURN_COLUMNS, *icp_analysis.RETENTION_PROFILE_COLUMNS}
            frame = frame.drop(columns=[name for name in frame.columns if name in retention])
    print_frame(frame, output, money={"acv", "won_revenue"}, digits=3)


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
    settings = read_config(config)
    if len(stages) < 2:
        raise ConfigError(
            "drop-off needs at least two stages",
            location="STAGES",
            hint="Name them in order, for example: journeymap dropoff Engaging Won --by industry",
        )
    moment = _as_of(as_of, settings)
    opened = open_for(store, settings, must_exist=True)
    try:
        frame = api.dropoff(opened, stages, by=by, as_of=moment, top=top, config=settings)
    finally:
        opened.close()
    print_frame(frame, output, money={"deal_value", "revenue_impact", "excess_impact"}, digits=3)


class BlindSpotPart(StrEnum):
    by_kind = "by_kind"
    click_ids = "click_ids"
    agreement = "agreement"
    undercount = "undercount"
    stage_entries = "stage_entries"
    expected = "expected"


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
    self-reported sources against tracked first touches, stage entries without a touch, and
    expected touchpoints without data."""
    settings = read_config(config)
    if output is not OutputFormat.table and part is None:
        raise ConfigError(
            f"--format {output.value} prints one table",
            location="--part",
            hint="Add --part with one of: " + ", ".join(choice.value for choice in BlindSpotPart),
        )
    opened = open_for(store, settings, must_exist=True)
    try:
        report = api.blind_spots(opened, settings)
    finally:
        opened.close()
    titles = {
        "by_kind": "Conversions without a tracked touch, and with direct touches only",
        "click_ids": "Click ids that match no campaign with spend",
        "agreement": "Self-reported source (rows) against tracked first touch (columns)",
        "undercount": "Channels that tracking under-counts",
        "stage_entries": "Stage entries without a tracked touch in the lookback window",
        "expected": "Expected touchpoints of each stage, and the touches that measure them",
    }
    for name, title in titles.items():
        if part is not None and part.value != name:
            continue
        frame = getattr(report, name)
        if name == "agreement" and not frame.empty:
            frame = frame.reset_index()
        if part is None:
            out.print(Text(title, style="bold"))
        print_frame(frame, output, money={"value", "no_touch_value", "direct_only_value"})
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
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        frame, note = api.converting_paths(opened, settings, kind=kind, top=top, collapse=collapse)
    finally:
        opened.close()
    if note:
        err.print(Text.assemble(("note: ", "yellow"), note), highlight=False)
    print_frame(frame, output, digits=3)


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
    settings = read_config(config)
    opened = open_for(store, settings, must_exist=True)
    try:
        table, by_campaign = api.coverage(opened, settings, entity_kind=entity.value)
    finally:
        opened.close()
    if campaigns:
        print_frame(by_campaign, output, money={"cost"})
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
    print_frame(table, output, money={"spend"}, digits=3)


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
        typer.Option(
            "--by",
            help="Break down by channel, owner, pipeline, industry, region, or cohort (the "
            "period in which deals entered the pipeline, for trends).",
        ),
    ] = None,
    period: Annotated[
        PeriodOption, typer.Option("--period", help="Cohort period of --by cohort.")
    ] = PeriodOption.quarter,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show deal velocity: days in each stage, between two stages, or stalled deals."""
    settings = read_config(config)
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
    opened = open_for(store, settings, must_exist=True)
    try:
        frame = api.velocity(
            opened,
            between=stages,
            stalled=stalled,
            as_of=moment,
            by=by,
            threshold_days=threshold_days,
            period=period.value,
            config=settings,
        )
    finally:
        opened.close()
    print_frame(frame, output, money={"amount"}, digits=1)
