"""The HTML report: one self-contained file that opens offline.

The page inlines the Plotly JavaScript bundle once, in ``<head>``, and every figure after it
as a ``<div>`` with a short script that draws into it. Styles are inline and nothing is loaded
from a URL. Tables show numbers formatted for people and keep the full-precision number in
each cell's ``data-value`` attribute. Figure ids are fixed, so rendering the same data twice
gives the same text.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io as pio
from jinja2 import Environment, PackageLoader, StrictUndefined
from plotly.offline import get_plotlyjs

from journeymap.report import charts
from journeymap.report.data import Headline, ReportData

TEMPLATE_NAME = "report.html.j2"
PLOTLY_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
"""Plotly ``config`` of every figure. Turning ``displaylogo`` off removes the link to plotly.com."""

SPEND_IMPORT_COMMAND = "journeymap import spend FILE --platform NAME"
MISSING = "—"
"""Text of a cell whose number is undefined, such as ROAS with no spend."""


@dataclass(frozen=True)
class Cell:
    """One table cell: the text shown, and for numbers the full-precision value."""

    text: str
    value: str | None = None
    """Full-precision number for the ``data-value`` attribute, or ``None`` for text cells."""
    title: str | None = None
    numeric: bool = False


@dataclass(frozen=True)
class Column:
    """A table column heading."""

    label: str
    numeric: bool = False
    title: str | None = None


@dataclass(frozen=True)
class Table:
    """A table ready for the template."""

    caption: str
    columns: list[Column]
    rows: list[list[Cell]]
    footer: list[Cell] | None = None


@dataclass(frozen=True)
class HeadlineItem:
    """One number in the headline block."""

    label: str
    cell: Cell
    detail: str | None = None


@dataclass(frozen=True)
class ModelRow:
    """One model in the models section: its name, parameters and the version that ran it."""

    name: str
    parameters: list[tuple[str, str]]
    version: str


@dataclass
class SpendSection:
    """Spend and ROAS tables, empty when no spend is loaded."""

    empty: bool
    model: str | None = None
    channel: Table | None = None
    channel_roas: Table | None = None
    campaign_model: str | None = None
    campaign: Table | None = None
    campaign_roas: Table | None = None
    figure: str | None = None


def render_html(data: ReportData) -> str:
    """Render the report as one self-contained HTML document."""
    template = _environment().get_template(TEMPLATE_NAME)
    return template.render(_context(data))


def write_html(data: ReportData, path: Path) -> Path:
    """Render the report and write it to ``path`` as UTF-8, creating parent folders.

    Returns ``path``. The file contains exactly the text of :func:`render_html`, with no newline
    translation.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_html(data).encode("utf-8"))
    return path


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("journeymap", "report/templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _context(data: ReportData) -> dict[str, Any]:
    models = _model_order(data)
    colors = charts.model_colors(models)
    currency = data.headline.currency
    figures = _figures(data, colors)
    return {
        "title": data.title,
        "generated_at": _format_datetime(data.generated_at),
        "generated_at_iso": data.generated_at.isoformat(),
        "version": data.package_version,
        "store": data.store_location,
        "settings": [(str(key), _format_setting(value)) for key, value in data.settings.items()],
        "headline": _headline_items(data.headline),
        "credit_channel": _credit_tables(
            data.credit_by_channel, "channel", "Channel", models, currency
        ),
        "credit_campaign": _credit_tables(
            data.credit_by_campaign, "campaign", "Campaign", models, currency
        ),
        "credit_figure": figures["credit"],
        "paths": _paths_table(data.top_paths, currency),
        "paths_figure": figures["paths"],
        "roles": _roles_table(data.channel_roles),
        "roles_figure": figures["roles"],
        "spend": _spend_section(data, models, colors),
        "spend_import_command": SPEND_IMPORT_COMMAND,
        "model_rows": [_model_row(entry) for entry in data.models],
        "notes": data.notes,
        "plotly_js": get_plotlyjs(),
    }


# ----------------------------------------------------------------------------- formatting


def _is_missing(number: Any) -> bool:
    return number is None or bool(pd.isna(number))


def _full_precision(number: Any) -> str:
    """Return the number as text that reads back to the same value ('' when missing)."""
    if _is_missing(number):
        return ""
    if isinstance(number, numbers.Integral):
        return str(int(number))
    return repr(float(number))


def _format_count(number: float) -> str:
    """Format a count with thousands separators, and 2 decimals unless it is whole."""
    if float(number).is_integer():
        return f"{number:,.0f}"
    return f"{number:,.2f}"


def _format_money(number: float, currency: str) -> str:
    text = f"{number:,.2f}"
    return f"{text} {currency}" if currency else text


def _format_percent(ratio: float) -> str:
    return f"{ratio:.1%}"


def _number_cell(number: Any, formatter: Callable[[float], str], title: str | None = None) -> Cell:
    if _is_missing(number):
        return Cell(MISSING, "", title or "not defined", numeric=True)
    return Cell(formatter(float(number)), _full_precision(number), title, numeric=True)


def _count_cell(number: Any, title: str | None = None) -> Cell:
    return _number_cell(number, _format_count, title)


def _money_cell(number: Any, currency: str = "") -> Cell:
    return _number_cell(number, lambda value: _format_money(value, currency))


def _with_currency(label: str, currency: str) -> str:
    """Return a heading with the currency code, which table cells leave out to stay narrow."""
    return f"{label} ({currency})" if currency else label


def _percent_cell(ratio: Any, title: str | None = None) -> Cell:
    return _number_cell(ratio, _format_percent, title)


def _ratio_cell(ratio: Any) -> Cell:
    return _number_cell(ratio, lambda value: f"{value:,.2f}")


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _format_datetime(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")


def _format_setting(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


# ----------------------------------------------------------------------------- sections


def _headline_items(headline: Headline) -> list[HeadlineItem]:
    currency = headline.currency
    converting_share = _share(headline.converting_journeys, headline.journeys)
    unattributed_share = _share(headline.unattributed_conversions, headline.conversions)
    unattributed_value_share = _share(headline.unattributed_value, headline.value)
    return [
        HeadlineItem("Journeys", _count_cell(headline.journeys)),
        HeadlineItem(
            "Converting journeys",
            _count_cell(headline.converting_journeys),
            _share_detail(converting_share, "of journeys"),
        ),
        HeadlineItem("Conversions", _count_cell(headline.conversions)),
        HeadlineItem("Value", _money_cell(headline.value, currency)),
        HeadlineItem("Touches", _count_cell(headline.touches)),
        HeadlineItem("Channels", _count_cell(headline.channels)),
        HeadlineItem(
            "Unattributed conversions",
            _count_cell(headline.unattributed_conversions),
            _share_detail(unattributed_share, "of conversions"),
        ),
        HeadlineItem(
            "Unattributed value",
            _money_cell(headline.unattributed_value, currency),
            _share_detail(unattributed_value_share, "of value"),
        ),
        HeadlineItem(
            "Date range", _date_range_cell(headline.first_touch_at, headline.last_touch_at)
        ),
    ]


def _share_detail(share: float | None, whole: str) -> str | None:
    return None if share is None else f"{_format_percent(share)} {whole}"


def _date_range_cell(first: datetime | None, last: datetime | None) -> Cell:
    if first is None or last is None:
        return Cell(
            "No touch timestamps", title="The touches carry no timestamps, as with path input."
        )
    text = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    return Cell(text, title=f"{first.isoformat()} to {last.isoformat()}")


def _model_order(data: ReportData) -> list[str]:
    """Return the model names in the order of ``data.models``, then any others the frames name."""
    names = [_model_name(entry) for entry in data.models]
    for frame in (
        data.credit_by_channel,
        data.credit_by_campaign,
        data.spend_by_channel,
        data.spend_by_campaign,
    ):
        if "model" in frame.columns:
            names.extend(str(name) for name in frame["model"])
    return list(dict.fromkeys(names))


def _model_name(entry: dict[str, Any]) -> str:
    # describe() stores the name under "model". The key "name" is accepted for hand-built entries.
    return str(entry.get("model", entry.get("name", "?")))


def _model_row(entry: dict[str, Any]) -> ModelRow:
    parameters = entry.get("parameters") or {}
    return ModelRow(
        name=_model_name(entry),
        parameters=[(str(key), _format_setting(value)) for key, value in parameters.items()],
        version=str(entry.get("version", "")),
    )


def _credit_tables(
    credit: pd.DataFrame, key: str, key_label: str, models: list[str], currency: str
) -> list[Table]:
    """Build a conversions table and a value table: one row per ``key``, one column per model."""
    if credit.empty:
        return []
    present = [model for model in models if model in set(credit["model"])]
    order = charts.channel_order(credit.rename(columns={key: "channel"}))
    return [
        _pivot_table(
            credit,
            key,
            key_label,
            order,
            present,
            "conversions",
            _count_cell,
            f"Conversions by {key} and model",
        ),
        _pivot_table(
            credit,
            key,
            key_label,
            order,
            present,
            "value",
            _money_cell,
            _with_currency(f"Value by {key} and model", currency),
        ),
    ]


def _pivot_table(
    frame: pd.DataFrame,
    key: str,
    key_label: str,
    order: list[str],
    models: list[str],
    measure: str,
    to_cell: Callable[[Any], Cell],
    caption: str,
) -> Table:
    pivot = frame.pivot_table(index=key, columns="model", values=measure, aggfunc="sum")
    # A model that gave a channel no credit has no row for it, which is 0 credit.
    pivot = pivot.reindex(index=order, columns=models).fillna(0.0)
    rows = [
        [Cell(str(item))] + [to_cell(pivot.at[item, model]) for model in models] for item in order
    ]
    footer = [Cell("Total")] + [to_cell(pivot[model].sum()) for model in models]
    columns = [Column(key_label)] + [Column(model, numeric=True) for model in models]
    return Table(caption, columns, rows, footer)


def _paths_table(top_paths: pd.DataFrame, currency: str) -> Table | None:
    if top_paths.empty:
        return None
    columns = [
        Column("#", numeric=True),
        Column("Path"),
        Column("Conversions", numeric=True),
        Column(
            "Share of conversions",
            numeric=True,
            title="Share of all conversions, unattributed included",
        ),
        Column(_with_currency("Value", currency), numeric=True),
        Column("Non-converting journeys", numeric=True),
        Column(
            "Conversion rate",
            numeric=True,
            title="Conversions over conversions plus non-converting journeys",
        ),
    ]
    rows = [
        [
            Cell(str(rank), str(rank), numeric=True),
            Cell(str(row.path)),
            _count_cell(row.conversions),
            _percent_cell(row.share),
            _money_cell(row.value),
            _count_cell(row.nulls),
            _percent_cell(row.conversion_rate),
        ]
        for rank, row in enumerate(top_paths.itertuples(index=False), start=1)
    ]
    return Table("Top converting paths", columns, rows)


def _roles_table(channel_roles: pd.DataFrame) -> Table | None:
    if channel_roles.empty:
        return None
    columns = [
        Column("Channel"),
        Column(
            "First",
            numeric=True,
            title="Share of the channel's touches that open a converting journey",
        ),
        Column(
            "Middle",
            numeric=True,
            title="Share of the channel's touches between the first and the last",
        ),
        Column(
            "Last",
            numeric=True,
            title="Share of the channel's touches that close a converting journey",
        ),
        Column("Role", title="introducer, influencer or closer: whichever share is largest"),
    ]
    rows = []
    for row in channel_roles.itertuples(index=False):
        cells = [Cell(str(row.channel))]
        for position in ("first", "middle", "last"):
            weighted = getattr(row, position)
            cells.append(
                _percent_cell(
                    getattr(row, f"{position}_share"), f"{_format_count(weighted)} weighted touches"
                )
            )
        cells.append(Cell(str(row.role)))
        rows.append(cells)
    return Table("Channel roles in converting journeys", columns, rows)


def _spend_section(data: ReportData, models: list[str], colors: dict[str, str]) -> SpendSection:
    by_channel = data.spend_by_channel
    if by_channel.empty:
        return SpendSection(empty=True)
    currency = data.headline.currency
    model = _first_present(models, by_channel)
    section = SpendSection(
        empty=False,
        model=model,
        channel=_spend_table(by_channel, "channel", "Channel", model, currency),
        channel_roas=_roas_table(by_channel, "channel", "Channel", models, currency),
        figure=_figure_html(
            charts.spend_roas_figure(by_channel, model, colors=colors, currency=currency),
            "journeymap-spend-roas",
        ),
    )
    by_campaign = data.spend_by_campaign
    if not by_campaign.empty:
        campaign_model = _first_present(models, by_campaign)
        section.campaign_model = campaign_model
        section.campaign = _spend_table(
            by_campaign, "campaign", "Campaign", campaign_model, currency
        )
        section.campaign_roas = _roas_table(by_campaign, "campaign", "Campaign", models, currency)
    return section


def _first_present(models: Iterable[str], frame: pd.DataFrame) -> str:
    """Return the first model in ``models`` that has rows in ``frame``."""
    present = set(frame["model"])
    for model in models:
        if model in present:
            return model
    return str(frame["model"].iloc[0])


def _spend_table(frame: pd.DataFrame, key: str, key_label: str, model: str, currency: str) -> Table:
    """Build one model's spend, attributed conversions and value, ROAS and cost per conversion."""
    rows_frame = frame[frame["model"] == model].sort_values("cost", ascending=False, kind="stable")
    columns = [
        Column(key_label),
        Column(_with_currency("Spend", currency), numeric=True),
        Column("Conversions", numeric=True, title=f"Conversions credited by {model}"),
        Column(_with_currency("Value", currency), numeric=True, title=f"Value credited by {model}"),
        Column("ROAS", numeric=True, title="Attributed value over spend"),
        Column(_with_currency("Cost per conversion", currency), numeric=True),
    ]
    rows = [
        [
            Cell(str(getattr(row, key))),
            _money_cell(row.cost),
            _count_cell(row.conversions),
            _money_cell(row.value),
            _ratio_cell(row.roas),
            _money_cell(row.cost_per_conversion),
        ]
        for row in rows_frame.itertuples(index=False)
    ]
    cost = float(rows_frame["cost"].sum())
    conversions = float(rows_frame["conversions"].sum())
    value = float(rows_frame["value"].sum())
    footer = [
        Cell("Total"),
        _money_cell(cost),
        _count_cell(conversions),
        _money_cell(value),
        _ratio_cell(value / cost if cost else None),
        _money_cell(cost / conversions if conversions else None),
    ]
    return Table(f"Spend and return by {key} ({model})", columns, rows, footer)


def _roas_table(
    frame: pd.DataFrame, key: str, key_label: str, models: list[str], currency: str
) -> Table:
    """Build spend and each model's ROAS, one row per ``key``."""
    present = [model for model in models if model in set(frame["model"])]
    cost = (
        frame.groupby(key, sort=False)["cost"].first().sort_values(ascending=False, kind="stable")
    )
    roas = frame.pivot_table(
        index=key, columns="model", values="roas", aggfunc="first", dropna=False
    )
    columns = [Column(key_label), Column(_with_currency("Spend", currency), numeric=True)]
    columns += [Column(model, numeric=True, title=f"ROAS by {model}") for model in present]
    rows = []
    for item, spent in cost.items():
        cells = [Cell(str(item)), _money_cell(spent)]
        for model in present:
            known = model in roas.columns and item in roas.index
            cells.append(_ratio_cell(roas.at[item, model] if known else None))
        rows.append(cells)
    return Table(f"ROAS by {key} and model", columns, rows)


def _figures(data: ReportData, colors: dict[str, str]) -> dict[str, str | None]:
    """Return the credit, paths and roles figures as HTML fragments.

    A figure whose frame is empty is ``None``, and the template shows explanatory text there.
    """
    figures: dict[str, str | None] = {"credit": None, "paths": None, "roles": None}
    if not data.credit_by_channel.empty:
        credit = charts.credit_by_model_figure(
            data.credit_by_channel, colors=colors, currency=data.headline.currency
        )
        figures["credit"] = _figure_html(credit, "journeymap-credit-by-model")
    if not data.top_paths.empty:
        figures["paths"] = _figure_html(
            charts.top_paths_figure(data.top_paths), "journeymap-top-paths"
        )
    if not data.channel_roles.empty:
        roles = charts.channel_roles_figure(data.channel_roles)
        figures["roles"] = _figure_html(roles, "journeymap-channel-roles")
    return figures


def _figure_html(fig: Any, div_id: str) -> str:
    """Return ``fig`` as a ``<div>`` and drawing script, without the Plotly bundle.

    The fixed ``div_id`` keeps the output the same from one render to the next.
    """
    fragment: str = pio.to_html(
        fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG
    )
    return fragment
