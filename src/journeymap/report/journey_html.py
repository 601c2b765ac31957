"""Tables and the funnel figure of the report's journey sections, ready for the template.

The template ``journey.html.j2`` renders them, and leaves out each section whose part is None.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from journeymap.report.html import (
    Cell,
    Column,
    Table,
    _count_cell,
    _figure_html,
    _number_cell,
    _percent_cell,
    _ratio_cell,
    _whole_money_cell,
)
from journeymap.report.journey import MAP_ROWS, JourneyData

FUNNEL_COLOR = "#2f5d8a"


@dataclass(frozen=True)
class JourneyMap:
    """The journey map: one column per stage and one row per qualitative aspect."""

    stages: list[str]
    rows: list[tuple[str, list[list[str]]]]
    """Row label, then the texts of each stage in the order of ``stages``."""


@dataclass(frozen=True)
class JourneySections:
    """The journey sections of the page. A section whose parts are all None is left out."""

    stages: Table | None = None
    stage_warnings: list[str] = field(default_factory=list)
    journey_map: JourneyMap | None = None
    funnel_stages: tuple[str, str] | None = None
    funnel: Table | None = None
    funnel_figure: str | None = None
    time_in_stage: Table | None = None
    time_between: Table | None = None
    icp: Table | None = None
    icp_note: str = ""
    icp_retention: bool = False
    """Whether the ICP table has retention columns, which it has when churn data exist."""
    blind_by_kind: Table | None = None
    blind_click_ids: Table | None = None
    blind_stage_entries: Table | None = None
    blind_expected: Table | None = None
    blind_notes: list[str] = field(default_factory=list)
    has_blind_spots: bool = False
    coverage: Table | None = None

    def nav(self) -> list[tuple[str, str]]:
        """Return the anchor and label of each section the page shows, in page order."""
        shown = [
            ("journey-stages", "Journey stages", self.stages is not None),
            ("funnel", "Funnel", self.funnel is not None),
            ("velocity", "Velocity", self.time_in_stage is not None),
            ("icp", "ICP", self.icp is not None),
            ("blind-spots", "Tracking blind spots", self.has_blind_spots),
            ("coverage", "Campaign coverage", self.coverage is not None),
        ]
        return [(anchor, label) for anchor, label, visible in shown if visible]


def journey_sections(data: JourneyData | None) -> JourneySections:
    """Build the journey sections from gathered data, or no sections when ``data`` is None."""
    if data is None:
        return JourneySections()

    spots = data.blind_spots
    return JourneySections(
        stages=_frame_or_none(data.stage_summary, _stages_table),
        stage_warnings=data.stage_warnings,
        journey_map=_journey_map(data.stage_map),
        funnel_stages=data.funnel_stages,
        funnel=_frame_or_none(data.funnel, _funnel_table),
        funnel_figure=_frame_or_none(data.funnel, _funnel_figure),
        time_in_stage=_frame_or_none(data.time_in_stage, _time_in_stage_table),
        time_between=_time_between_table(data.time_between, data.funnel_stages),
        icp=_frame_or_none(data.icp, _icp_table),
        icp_note=data.icp_note,
        icp_retention=_has_retention(data.icp),
        blind_by_kind=_frame_or_none(spots.by_kind, _by_kind_table) if spots else None,
        blind_click_ids=_frame_or_none(spots.click_ids, _click_ids_table) if spots else None,
        blind_stage_entries=(
            _frame_or_none(spots.stage_entries, _stage_entries_table) if spots else None
        ),
        blind_expected=_frame_or_none(spots.expected, _expected_table) if spots else None,
        blind_notes=list(spots.notes) if spots else [],
        has_blind_spots=spots is not None,
        coverage=_frame_or_none(data.coverage, _coverage_table),
    )


def _frame_or_none(frame: pd.DataFrame | None, build: Any) -> Any:
    """Return ``build(frame)``, or None when ``frame`` is None or has no rows."""
    if frame is None or frame.empty:
        return None
    return build(frame)


def _days_cell(days: Any) -> Cell:
    return _number_cell(days, lambda value: f"{value:,.1f}")


def _text_cell(text: Any) -> Cell:
    return Cell("" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text))


# ----------------------------------------------------------------------------- stages


def _stages_table(summary: pd.DataFrame) -> Table:
    columns = [
        Column("Stage"),
        Column("Owner"),
        Column("Entered", numeric=True, title="Entities that ever entered the stage"),
        Column("Current", numeric=True, title="Entities in the stage now"),
        Column("Median days", numeric=True, title="Median days of completed stays"),
    ]
    rows = [
        [
            Cell(str(row.stage)),
            _text_cell(row.owner),
            _count_cell(row.entered),
            _count_cell(row.current),
            _days_cell(row.median_days),
        ]
        for row in summary.itertuples(index=False)
    ]
    return Table("Stages of the journey", columns, rows)


def _journey_map(stage_map: pd.DataFrame | None) -> JourneyMap | None:
    """Turn the per-stage rows into stage columns, leaving out aspects no stage fills."""
    if stage_map is None or stage_map.empty:
        return None
    rows = []
    for key, label in MAP_ROWS:
        texts = [[str(text) for text in items] for items in stage_map[key]]
        if any(texts):
            rows.append((label, texts))
    return JourneyMap([str(stage) for stage in stage_map["stage"]], rows)


# ----------------------------------------------------------------------------- funnel


def _cohort_label(cohort: Any) -> str:
    moment = pd.Timestamp(cohort)
    return f"{moment.year} Q{(moment.month - 1) // 3 + 1}"


def _funnel_table(funnel: pd.DataFrame) -> Table:
    first, second = str(funnel.from_stage.iloc[0]), str(funnel.to_stage.iloc[0])
    columns = [
        Column("Cohort", title=f"Quarter in which the deal first entered {first}"),
        Column("Entered", numeric=True),
        Column("Converted", numeric=True, title=f"Entrants that went on to {second}"),
        Column("Conversion rate", numeric=True),
        Column("Open", numeric=True, title="Entrants that have not converted yet"),
    ]
    rows = [
        [
            Cell(_cohort_label(row.cohort)),
            _count_cell(row.entered),
            _count_cell(row.converted),
            _percent_cell(row.rate),
            _count_cell(row.open),
        ]
        for row in funnel.itertuples(index=False)
    ]
    entered = float(funnel.entered.sum())
    converted = float(funnel.converted.sum())
    footer = [
        Cell("Total"),
        _count_cell(entered),
        _count_cell(converted),
        _percent_cell(converted / entered if entered else None),
        _count_cell(float(funnel.open.sum())),
    ]
    return Table(f"{first} → {second} by entry cohort", columns, rows, footer)


def _funnel_figure(funnel: pd.DataFrame) -> str:
    """Return bars of the conversion rate per entry cohort as an HTML fragment."""
    first = html.escape(str(funnel.from_stage.iloc[0]), quote=False)
    second = html.escape(str(funnel.to_stage.iloc[0]), quote=False)
    figure = go.Figure(
        go.Bar(
            x=[_cohort_label(cohort) for cohort in funnel.cohort],
            y=funnel.rate.astype("float64").tolist(),
            customdata=funnel[["entered", "converted", "open"]].to_numpy().tolist(),
            text=[f"{rate:.1%}" for rate in funnel.rate],
            textposition="auto",
            marker_color=FUNNEL_COLOR,
            hovertemplate=(
                "%{x}<br>Conversion rate: %{y:.1%}<br>Converted: %{customdata[1]:,}"
                " of %{customdata[0]:,}<br>Open: %{customdata[2]:,}<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        template="plotly_white",
        font={"size": 12},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        title={"text": f"{first} → {second} conversion rate by cohort", "x": 0},
        height=380,
        xaxis={"title": {"text": "Entry cohort"}, "type": "category"},
        yaxis={"title": {"text": "Conversion rate"}, "tickformat": ".0%", "rangemode": "tozero"},
    )
    return _figure_html(figure, "journeymap-funnel")


# ----------------------------------------------------------------------------- velocity


def _time_in_stage_table(days: pd.DataFrame) -> Table:
    columns = [
        Column("Stage"),
        Column("Completed stays", numeric=True),
        Column("Median days", numeric=True),
        Column("p75 days", numeric=True),
        Column("p90 days", numeric=True),
        Column("Open stays", numeric=True, title="Stays not exited yet, counted but not timed"),
    ]
    rows = [
        [
            Cell(str(row.stage)),
            _count_cell(row.completed_stays),
            _days_cell(row.median_days),
            _days_cell(row.p75_days),
            _days_cell(row.p90_days),
            _count_cell(row.open_stays),
        ]
        for row in days.itertuples(index=False)
    ]
    return Table("Days in each stage", columns, rows)


def _time_between_table(between: pd.DataFrame | None, pair: tuple[str, str] | None) -> Table | None:
    if between is None or between.empty or pair is None:
        return None
    columns = [
        Column("From → to"),
        Column("Deals", numeric=True, title="Deals that entered both stages, in this order"),
        Column("Median days", numeric=True),
        Column("p75 days", numeric=True),
        Column("p90 days", numeric=True),
        Column("Mean days", numeric=True),
    ]
    label = f"{pair[0]} → {pair[1]}"
    rows = [
        [
            Cell(label),
            _count_cell(row.deals),
            _days_cell(row.median_days),
            _days_cell(row.p75_days),
            _days_cell(row.p90_days),
            _days_cell(row.mean_days),
        ]
        for row in between.itertuples(index=False)
    ]
    return Table(f"Days from first entering {pair[0]} to first entering {pair[1]}", columns, rows)


# ----------------------------------------------------------------------------- ICP


def _has_retention(ranking: pd.DataFrame | None) -> bool:
    """Return whether ``ranking`` has rows and churn data (a known ``churned`` count)."""
    if ranking is None or ranking.empty or "churned" not in ranking.columns:
        return False
    return bool(ranking["churned"].notna().any())


def _icp_table(ranking: pd.DataFrame) -> Table:
    retention = _has_retention(ranking)
    columns = [
        Column("#", numeric=True),
        Column("Dimension"),
        Column("Segment"),
        Column("Closed", numeric=True),
        Column("Won", numeric=True),
        Column("Win rate", numeric=True),
        Column("Lift", numeric=True, title="Win rate over the dimension's overall win rate"),
        Column("p-value", numeric=True, title="Two-sided Fisher's exact test, uncorrected"),
        Column("Significant"),
    ]
    if retention:
        columns += [
            Column("Customers", numeric=True, title="Accounts with a won deal"),
            Column("Churned", numeric=True),
            Column("Retention", numeric=True, title="Customers not churned over customers"),
            Column(
                "Retention lift",
                numeric=True,
                title="Retention over the dimension's overall retention",
            ),
            Column("p-value", numeric=True, title="Two-sided Fisher's exact test, uncorrected"),
            Column("Significant"),
            Column(
                "Retained at 365 days",
                numeric=True,
                title="Share of the customers first won at least 365 days before the end of "
                "the data that had not churned 365 days after that win",
            ),
        ]
    rows = []
    for row in ranking.itertuples(index=False):
        cells = [
            Cell(str(row.rank), str(row.rank), numeric=True),
            Cell(str(row.dimension)),
            _text_cell(row.value),
            _count_cell(row.closed),
            _count_cell(row.won),
            _percent_cell(row.win_rate),
            _ratio_cell(row.lift),
            _number_cell(row.p_value, lambda value: f"{value:.3f}"),
            Cell(_significance(row.significant, row.note)),
        ]
        if retention:
            cells += [
                _count_cell(row.customers),
                _count_cell(row.churned),
                _percent_cell(row.retention_rate),
                _ratio_cell(row.retention_lift),
                _number_cell(row.retention_p_value, lambda value: f"{value:.3f}"),
                Cell(_significance(row.retention_significant, row.retention_note)),
                _percent_cell(row.horizon_retention_rate),
            ]
        rows.append(cells)
    caption = "lift in win rate and retention" if retention else "lift in win rate"
    return Table(f"Top {len(rows)} segments by {caption}", columns, rows)


def _significance(significant: Any, note: Any) -> str:
    """Return "yes" or "no", followed by the note in brackets when there is one."""
    text = "yes" if bool(significant) else "no"
    return f"{text} ({note!s})" if note else text


# ----------------------------------------------------------------------------- blind spots


def _by_kind_table(by_kind: pd.DataFrame) -> Table:
    columns = [
        Column("Conversion kind"),
        Column("Conversions", numeric=True),
        Column("No tracked touch", numeric=True),
        Column(
            "Share", numeric=True, title="Share of the kind's conversions with no tracked touch"
        ),
        Column("Direct only", numeric=True),
        Column("Share", numeric=True, title="Share of the kind's conversions with direct only"),
        Column("Value share untracked", numeric=True, title="Value with no tracked touch"),
    ]
    rows = [
        [
            Cell(str(row.kind)),
            _count_cell(row.conversions),
            _count_cell(row.no_touch),
            _percent_cell(row.no_touch_share),
            _count_cell(row.direct_only),
            _percent_cell(row.direct_only_share),
            _percent_cell(row.no_touch_value_share),
        ]
        for row in by_kind.itertuples(index=False)
    ]
    return Table("Conversions that tracking misses, by kind", columns, rows)


def _click_ids_table(click_ids: pd.DataFrame) -> Table:
    columns = [
        Column("Click platform"),
        Column("Touches with a click id", numeric=True),
        Column("Unmatched", numeric=True, title="Campaign matches no ad spend row"),
        Column("Unmatched share", numeric=True),
        Column("No campaign", numeric=True),
        Column("Share of all click ids", numeric=True),
    ]
    rows = [
        [
            Cell(str(row.click_platform)),
            _count_cell(row.click_touches),
            _count_cell(row.unmatched),
            _percent_cell(row.unmatched_share),
            _count_cell(row.no_campaign),
            _percent_cell(row.share_of_all),
        ]
        for row in click_ids.itertuples(index=False)
    ]
    return Table("Click ids that no ad spend explains", columns, rows)


def _stage_entries_table(entries: pd.DataFrame) -> Table:
    columns = [
        Column("Stage"),
        Column("Entries", numeric=True),
        Column("No tracked touch", numeric=True, title="No tracked touch in the lookback window"),
        Column("Share", numeric=True),
    ]
    rows = [
        [
            Cell(str(row.stage)),
            _count_cell(row.entries),
            _count_cell(row.untouched),
            _percent_cell(row.untouched_share),
        ]
        for row in entries.itertuples(index=False)
    ]
    return Table("Stage entries that no tracked touch precedes", columns, rows)


def _expected_table(expected: pd.DataFrame) -> Table:
    columns = [
        Column("Stage"),
        Column("Expected touchpoint"),
        Column("Channels in the data"),
        Column("Touches in the stage", numeric=True),
        Column("Status"),
    ]
    rows = [
        [
            Cell(str(row.stage)),
            Cell(str(row.expected)),
            _text_cell(row.channels),
            _count_cell(row.touches),
            Cell(str(row.status)),
        ]
        for row in expected.itertuples(index=False)
    ]
    return Table("Expected touchpoints and the touches that measure them", columns, rows)


def _coverage_table(coverage: pd.DataFrame) -> Table:
    columns = [
        Column("Stage"),
        Column("Entered", numeric=True),
        Column("Drop-off", numeric=True, title="Share of entrants who never reached a later stage"),
        Column("Campaigns", numeric=True),
        Column("Spend", numeric=True),
        Column("Share of spend", numeric=True, title="Share of the spend of mapped campaigns"),
        Column("Under-invested", title="Drop-off above the median and spend share below it"),
    ]
    rows = [
        [
            Cell(str(row.stage)),
            _count_cell(row.entered),
            _percent_cell(row.dropoff_rate),
            _count_cell(row.campaigns),
            _whole_money_cell(row.spend),
            _percent_cell(row.spend_share),
            Cell("yes" if row.under_invested else ""),
        ]
        for row in coverage.itertuples(index=False)
    ]
    return Table("Spend by the stage each campaign targets, beside its drop-off", columns, rows)
