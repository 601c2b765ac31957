"""The HTML report: one self-contained file that opens offline.

The page inlines the Plotly JavaScript bundle once, in ``<head>``, and every figure after it
as a ``<div>`` with a short script that draws into it. Styles are inline and nothing is loaded
from a URL. Tables show numbers formatted for people and keep the full-precision number in
each cell's ``data-value`` attribute. Figure ids are fixed, so rendering the same data twice
gives the same text.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
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
from journeymap.store.schema import UNATTRIBUTED

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

CAMPAIGN_ROWS = 15
"""Campaigns that a campaign table lists by name. The others are summed in one row."""
WHOLE_MONEY_ABOVE = 1_000.0
"""Tables with a column per model show money in whole units when an amount exceeds this."""
COMPACT_MONEY_FROM = 100_000.0
"""Headline amounts from this size on read like ``$3.67M``, because in full they wrap in a card."""
CURRENCY_SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "€", "GBP": "£"}
"""Symbols written before a compact amount. Other currencies keep their code after it."""
COMPACT_UNITS: tuple[tuple[float, str], ...] = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


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
    note: str | None = None
    """Text below the table, such as how many rows were summed into one."""


@dataclass(frozen=True)
class RowPlan:
    """Row keys of a table: ``head`` listed by name, one row summing ``folded``, then ``tail``."""

    head: list[str]
    folded: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return self.head + self.folded + self.tail


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
    campaign_matched: bool = False
    """Whether a spend row matched a campaign, even one with a spend of 0."""
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
    # Imported here because journey_html builds its tables with the classes of this module.
    from journeymap.report.journey_html import journey_sections

    models = _model_order(data)
    colors = charts.model_colors(models)
    currency = data.headline.currency
    figures = _figures(data, models, colors)
    return {
        "title": data.title,
        "generated_at": _format_datetime(data.generated_at),
        "generated_at_iso": data.generated_at.isoformat(),
        "version": data.package_version,
        "store": data.store_location,
        "settings": [(str(key), _format_setting(value)) for key, value in data.settings.items()],
        "kind": data.kind,
        "headline": _headline_items(data.headline),
        "credit_channel": _credit_tables(
            data.credit_by_channel, "channel", "Channel", models, currency
        ),
        "credit_campaign": _credit_tables(
            data.credit_by_campaign,
            "campaign",
            "Campaign",
            models,
            currency,
            limit=CAMPAIGN_ROWS,
        ),
        "credit_figure": figures["credit"],
        "paths": _paths_table(data.top_paths, currency),
        "paths_figure": figures["paths"],
        "roles": _roles_table(data.channel_roles),
        "roles_figure": figures["roles"],
        "spend": _spend_section(data, models, colors),
        "spend_import_command": SPEND_IMPORT_COMMAND,
        "journey": journey_sections(data.journey),
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
    """Format a count with thousands separators, and 2 decimals unless it is whole.

    A sum of fractional credits that misses a whole number by float rounding counts as whole.
    """
    if math.isfinite(number) and math.isclose(number, round(number), rel_tol=1e-12, abs_tol=1e-9):
        return f"{number:,.0f}"
    return f"{number:,.2f}"


def _format_money(number: float, currency: str) -> str:
    text = f"{number:,.2f}"
    return f"{text} {currency}" if currency else text


def _format_whole_money(number: float) -> str:
    text = f"{number:,.0f}"
    # Amounts between -0.5 and 0 round to "-0".
    return "0" if text == "-0" else text


def _format_compact(number: float) -> str:
    """Format ``number`` to 3 significant digits with a K, M, B or T suffix, such as ``3.67M``."""
    # Rounding first lets 999,950 read 1.00M, not 1000K.
    rounded = float(f"{abs(number):.3g}")
    scaled, suffix = rounded, ""
    for divisor, unit in COMPACT_UNITS:
        if rounded >= divisor:
            scaled, suffix = rounded / divisor, unit
            break
    decimals = max(0, 2 - math.floor(math.log10(scaled))) if scaled else 0
    sign = "-" if number < 0 else ""
    return f"{sign}{scaled:.{decimals}f}{suffix}"


def _format_compact_money(number: float, currency: str) -> str:
    """Format an amount like ``$3.67M``, or ``3.67M SEK`` for a currency without a symbol."""
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    if symbol:
        sign = "-" if number < 0 else ""
        return f"{sign}{symbol}{_format_compact(abs(number))}"
    compact = _format_compact(number)
    return f"{compact} {currency}" if currency else compact


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


def _whole_money_cell(number: Any) -> Cell:
    return _number_cell(number, _format_whole_money)


def _money_cell_for(largest: float) -> Callable[[Any], Cell]:
    """Return the money cell builder of a wide table whose largest amount is ``largest``.

    Amounts lose their decimals when ``largest`` exceeds :data:`WHOLE_MONEY_ABOVE`, for every
    cell, so that a column stays aligned. ``data-value`` keeps the full precision.
    """
    if largest > WHOLE_MONEY_ABOVE:
        return _whole_money_cell
    return _money_cell


def _headline_money_cell(number: float, currency: str) -> Cell:
    """Build a headline amount: compact from :data:`COMPACT_MONEY_FROM` on, exact in the title."""
    if _is_missing(number) or abs(number) < COMPACT_MONEY_FROM:
        return _money_cell(number, currency)
    return Cell(
        _format_compact_money(number, currency),
        _full_precision(number),
        _format_money(number, currency),
        numeric=True,
    )


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
        HeadlineItem("Value", _headline_money_cell(headline.value, currency)),
        HeadlineItem("Touches", _count_cell(headline.touches)),
        HeadlineItem("Channels", _count_cell(headline.channels)),
        HeadlineItem(
            "Unattributed conversions",
            _count_cell(headline.unattributed_conversions),
            _share_detail(unattributed_share, "of conversions"),
        ),
        HeadlineItem(
            "Unattributed value",
            _headline_money_cell(headline.unattributed_value, currency),
            _share_detail(unattributed_value_share, "of value"),
        ),
        _date_range_item(headline.first_touch_at, headline.last_touch_at),
    ]


def _share_detail(share: float | None, whole: str) -> str | None:
    return None if share is None else f"{_format_percent(share)} {whole}"


def _date_range_item(first: datetime | None, last: datetime | None) -> HeadlineItem:
    if first is None or last is None:
        return HeadlineItem(
            "Date range",
            Cell(
                "No touch timestamps",
                title="The touches carry no timestamps, as with path input.",
            ),
        )
    # The last date goes in the detail line, because the whole range in the large figure font
    # wraps inside a date, after a hyphen.
    return HeadlineItem(
        "Date range",
        Cell(f"{first:%Y-%m-%d}", title=f"{first.isoformat()} to {last.isoformat()}"),
        f"to {last:%Y-%m-%d}",
    )


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
    credit: pd.DataFrame,
    key: str,
    key_label: str,
    models: list[str],
    currency: str,
    *,
    limit: int | None = None,
) -> list[Table]:
    """Build a conversions table and a value table: one row per ``key``, one column per model.

    Rows run by mean conversions over the models, largest first, with ``(unattributed)`` last.
    With ``limit``, both tables list the same top ``limit`` rows and sum the rest in one row,
    so that every column total still covers all of ``credit``.
    """
    if credit.empty:
        return []
    present = [model for model in models if model in set(credit["model"])]
    order = charts.channel_order(credit.rename(columns={key: "channel"}))
    plan = _plan_rows(order, limit, pinned={UNATTRIBUTED})
    note = _fold_note(plan, key, limit, "the most conversions on average over the models")
    return [
        _pivot_table(
            credit,
            key,
            key_label,
            plan,
            present,
            "conversions",
            f"Conversions by {key} and model",
            note=note,
        ),
        _pivot_table(
            credit,
            key,
            key_label,
            plan,
            present,
            "value",
            _with_currency(f"Value by {key} and model", currency),
            money=True,
            note=note,
        ),
    ]


def _plan_rows(
    order: list[str], limit: int | None, pinned: Collection[str] = frozenset()
) -> RowPlan:
    """List the first ``limit`` keys of ``order`` and fold the rest into one row.

    ``pinned`` keys are never folded and come after the folded row. Folding a single key
    saves no room, so up to ``limit + 1`` keys are all listed.
    """
    ranked = [item for item in order if item not in pinned]
    if limit is None or len(ranked) <= limit + 1:
        return RowPlan(list(order))
    return RowPlan(ranked[:limit], ranked[limit:], [item for item in order if item in pinned])


def _fold_note(plan: RowPlan, key: str, limit: int | None, ranking: str) -> str | None:
    if not plan.folded:
        return None
    return (
        f"The table lists the {limit} {key}s with {ranking}. The other {len(plan.folded)} "
        f"are summed in one row, so the totals still cover every {key}."
    )


def _other_cell(plan: RowPlan, key: str) -> Cell:
    count = len(plan.folded)
    return Cell(f"Other {key}s ({count})", title=f"The {count} {key}s not listed by name, summed")


def _pivot_table(
    frame: pd.DataFrame,
    key: str,
    key_label: str,
    plan: RowPlan,
    models: list[str],
    measure: str,
    caption: str,
    *,
    money: bool = False,
    note: str | None = None,
) -> Table:
    pivot = frame.pivot_table(index=key, columns="model", values=measure, aggfunc="sum")
    # A model that gave a channel no credit has no row for it, which is 0 credit.
    pivot = pivot.reindex(index=plan.keys, columns=models).fillna(0.0)
    totals = pivot.sum()
    to_cell: Callable[[Any], Cell] = _count_cell
    if money:
        to_cell = _money_cell_for(max(float(pivot.abs().max().max()), float(totals.abs().max())))

    def row(label: Cell, amounts: Mapping[Any, Any]) -> list[Cell]:
        return [label] + [to_cell(amounts[model]) for model in models]

    def named_row(item: str) -> list[Cell]:
        return row(Cell(str(item)), {model: pivot.at[item, model] for model in models})

    rows = [named_row(item) for item in plan.head]
    if plan.folded:
        rows.append(row(_other_cell(plan, key), pivot.loc[plan.folded].sum().to_dict()))
    rows += [named_row(item) for item in plan.tail]
    footer = row(Cell("Total"), totals.to_dict())
    columns = [Column(key_label)] + [Column(model, numeric=True) for model in models]
    return Table(caption, columns, rows, footer, note)


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
    by_channel = _complete_spend(data.spend_by_channel, "channel", models)
    if by_channel.empty:
        return SpendSection(empty=True)
    currency = data.headline.currency
    model = _spend_model(data.primary_model, models, by_channel)
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
    section.campaign_matched = not data.spend_by_campaign.empty
    by_campaign = _complete_spend(data.spend_by_campaign, "campaign", models, spent_only=True)
    if not by_campaign.empty:
        campaign_model = _spend_model(data.primary_model, models, by_campaign)
        section.campaign_model = campaign_model
        section.campaign = _spend_table(
            by_campaign, "campaign", "Campaign", campaign_model, currency, limit=CAMPAIGN_ROWS
        )
        section.campaign_roas = _roas_table(
            by_campaign, "campaign", "Campaign", models, currency, limit=CAMPAIGN_ROWS
        )
    return section


def _complete_spend(
    frame: pd.DataFrame, key: str, models: list[str], *, spent_only: bool = False
) -> pd.DataFrame:
    """Give every model a row for every ``key`` with spend, and sort by spend, largest first.

    A model that gave a ``key`` no credit has no row for it in ``frame``. The added row has
    0 conversions and 0 value, so its ROAS is 0 where there is spend. Every row of a ``key``
    carries the same spend, so the first one's ``cost`` is used. ROAS and cost per conversion
    are computed again from the summed columns. With ``spent_only``, keys whose spend is 0 are
    left out. Keys with equal spend are ordered by name, and keys become text.
    """
    if frame.empty:
        return frame
    frame = frame.assign(**{key: frame[key].astype(str)})
    present = [model for model in models if model in set(frame["model"])]
    cost = frame.groupby(key)["cost"].first()
    if spent_only:
        cost = cost[cost > 0]
    cost = cost.sort_values(ascending=False, kind="stable", na_position="last")
    grid = pd.MultiIndex.from_product([present, list(cost.index)], names=["model", key])
    sums = frame.groupby(["model", key])[["conversions", "value"]].sum()
    completed = sums.reindex(grid, fill_value=0.0).reset_index()
    completed["cost"] = completed[key].map(cost)
    completed["roas"] = (completed["value"] / completed["cost"]).where(completed["cost"] > 0)
    completed["cost_per_conversion"] = (completed["cost"] / completed["conversions"]).where(
        completed["conversions"] > 0
    )
    return completed


def _spend_model(primary: str | None, models: Iterable[str], frame: pd.DataFrame) -> str:
    """Return ``primary`` when it has rows in ``frame``, else the first of ``models`` that has."""
    if primary is not None and primary in set(frame["model"]):
        return primary
    return _first_present(models, frame)


def _first_present(models: Iterable[str], frame: pd.DataFrame) -> str:
    """Return the first model in ``models`` that has rows in ``frame``."""
    present = set(frame["model"])
    for model in models:
        if model in present:
            return model
    return str(frame["model"].iloc[0])


def _spend_table(
    frame: pd.DataFrame,
    key: str,
    key_label: str,
    model: str,
    currency: str,
    *,
    limit: int | None = None,
) -> Table:
    """Build one model's spend, attributed conversions and value, ROAS and cost per conversion.

    Rows keep the order of ``frame``. With ``limit``, the rows after the first ``limit`` are
    summed in one row.
    """
    rows_frame = frame[frame["model"] == model].set_index(key)
    plan = _plan_rows([str(item) for item in rows_frame.index], limit)
    columns = [
        Column(key_label),
        Column(_with_currency("Spend", currency), numeric=True),
        Column("Conversions", numeric=True, title=f"Conversions credited by {model}"),
        Column(_with_currency("Value", currency), numeric=True, title=f"Value credited by {model}"),
        Column("ROAS", numeric=True, title="Attributed value over spend"),
        Column(_with_currency("Cost per conversion", currency), numeric=True),
    ]

    def row(label: Cell, cost: float, conversions: float, value: float) -> list[Cell]:
        return [
            label,
            _money_cell(cost),
            _count_cell(conversions),
            _money_cell(value),
            _ratio_cell(value / cost if cost > 0 else None),
            _money_cell(cost / conversions if conversions > 0 else None),
        ]

    def summed_row(label: Cell, items: list[str]) -> list[Cell]:
        part = rows_frame.loc[items]
        return row(
            label,
            float(part["cost"].sum()),
            float(part["conversions"].sum()),
            float(part["value"].sum()),
        )

    rows = [summed_row(Cell(item), [item]) for item in plan.head]
    if plan.folded:
        rows.append(summed_row(_other_cell(plan, key), plan.folded))
    footer = summed_row(Cell("Total"), plan.keys)
    return Table(
        f"Spend and return by {key} ({model})",
        columns,
        rows,
        footer,
        _fold_note(plan, key, limit, "the most spend"),
    )


def _roas_table(
    frame: pd.DataFrame,
    key: str,
    key_label: str,
    models: list[str],
    currency: str,
    *,
    limit: int | None = None,
) -> Table:
    """Build spend and each model's ROAS, one row per ``key`` in the order of ``frame``.

    With ``limit``, the rows after the first ``limit`` are summed in one row, whose ROAS is
    their value over their spend, as is the total's.
    """
    present = [model for model in models if model in set(frame["model"])]
    cost = frame.groupby(key, sort=False)["cost"].first()
    value = frame.pivot_table(index=key, columns="model", values="value", aggfunc="sum")
    value = value.reindex(index=cost.index, columns=present).fillna(0.0)
    plan = _plan_rows([str(item) for item in cost.index], limit)
    to_money = _money_cell_for(float(cost.abs().sum()))
    columns = [Column(key_label), Column(_with_currency("Spend", currency), numeric=True)]
    columns += [Column(model, numeric=True, title=f"ROAS by {model}") for model in present]

    def summed_row(label: Cell, items: list[str]) -> list[Cell]:
        spent = float(cost.loc[items].sum())
        cells = [label, to_money(spent)]
        for model in present:
            earned = float(value.loc[items, model].sum())
            cells.append(_ratio_cell(earned / spent if spent > 0 else None))
        return cells

    rows = [summed_row(Cell(item), [item]) for item in plan.head]
    if plan.folded:
        rows.append(summed_row(_other_cell(plan, key), plan.folded))
    footer = summed_row(Cell("Total"), plan.keys)
    return Table(
        f"ROAS by {key} and model",
        columns,
        rows,
        footer,
        _fold_note(plan, key, limit, "the most spend"),
    )


def _figures(data: ReportData, models: list[str], colors: dict[str, str]) -> dict[str, str | None]:
    """Return the credit, paths and roles figures as HTML fragments.

    A figure whose frame is empty is ``None``, and the template shows explanatory text there.
    """
    figures: dict[str, str | None] = {"credit": None, "paths": None, "roles": None}
    if not data.credit_by_channel.empty:
        credit = charts.credit_by_model_figure(
            data.credit_by_channel, models=models, colors=colors, currency=data.headline.currency
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
