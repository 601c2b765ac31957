"""Exports of the journey map: tables, CSV or Parquet files, an XLSX workbook and Markdown.

Every export draws from :func:`map_tables`, so the figures agree across formats. The HTML page
is in :mod:`journeymap.report.map_html`. The tables are:

- ``stages``: one row per stage with its owner and every
  :class:`~journeymap.report.map.StageFigures` field.
- ``qualitative``: ``stage, row, item``: one row per configured text (doing, thinking, ...).
- ``touchpoints``: ``stage, rank, channel, touches, share``: the channels met per stage.
- ``top_sequences``, ``dropoff_points``, ``channel_credit``: one row per list item.
- ``filters``: ``setting, value``: the filters, kinds, currency and data range, as text.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from journeymap.common.errors import ConfigError
from journeymap.report.map import (
    GRID_ROWS,
    QUALITATIVE_ROWS,
    ChannelCredit,
    DropoffPoint,
    GridRow,
    JourneyMap,
    PathRow,
    StageFigures,
)

log = logging.getLogger("journeymap")

ExportFormat = Literal["html", "xlsx", "markdown", "csv", "parquet"]
EXPORT_FORMATS: tuple[str, ...] = ("html", "xlsx", "markdown", "csv", "parquet")

SHEET_TITLES: dict[str, str] = {
    "stages": "Stages",
    "touchpoints": "Touchpoints",
    "top_sequences": "Top sequences",
    "dropoff_points": "Drop-off points",
    "channel_credit": "Channel credit",
    "qualitative": "Qualitative",
    "filters": "Filters",
}
"""Worksheet title of each table in the XLSX workbook, after the ``Map`` grid sheet."""

RATE_COLUMNS = {"conversion_rate", "dropoff_rate", "share"}
DAY_COLUMNS = {"median_days", "stall_threshold_days", "stall_days"}
MONEY_COLUMNS = {
    "attributed_pipeline",
    "attributed_revenue",
    "value_per_mover",
    "revenue_impact",
    "value",
}
CREDIT_COLUMNS = {"attributed_wins", "conversions"}


def map_tables(journey_map: JourneyMap) -> dict[str, pd.DataFrame]:
    """Return the map as flat tables, keyed by the names in the module docstring."""
    figure_names = [spec.name for spec in fields(StageFigures)]
    stages = pd.DataFrame(
        [
            {
                "stage": stage.name,
                "position": stage.position,
                "owner": stage.owner,
                "stall_days": stage.stall_days,
                **asdict(stage.figures),
            }
            for stage in journey_map.stages
        ],
        columns=["stage", "position", "owner", "stall_days", *figure_names],
    )
    qualitative = pd.DataFrame(
        [
            {"stage": stage.name, "row": key, "item": text}
            for stage in journey_map.stages
            for key, _ in QUALITATIVE_ROWS
            for text in getattr(stage, key)
        ],
        columns=["stage", "row", "item"],
    )
    touchpoints = pd.DataFrame(
        [
            {"stage": stage.name, "rank": rank, **asdict(share)}
            for stage in journey_map.stages
            for rank, share in enumerate(stage.touchpoints, start=1)
        ],
        columns=["stage", "rank", "channel", "touches", "share"],
    )
    return {
        "stages": stages,
        "touchpoints": touchpoints,
        "top_sequences": _frame(journey_map.top_sequences, PathRow),
        "dropoff_points": _frame(journey_map.dropoff_points, DropoffPoint),
        "channel_credit": _frame(journey_map.channel_credit, ChannelCredit),
        "qualitative": qualitative,
        "filters": pd.DataFrame(settings_rows(journey_map), columns=["setting", "value"]),
    }


def _frame(items: tuple[Any, ...], kind: type) -> pd.DataFrame:
    columns = [spec.name for spec in fields(kind)]
    return pd.DataFrame([asdict(item) for item in items], columns=columns)


def settings_rows(journey_map: JourneyMap) -> list[tuple[str, str]]:
    """Return the filters and provenance of the map as (setting, text) pairs."""
    data = journey_map.to_dict()
    filters = data["filters"]
    segment = filters["segment"]
    return [
        ("start", filters["start"] or "start of data"),
        ("end", filters["end"] or "end of data"),
        ("segment", f"{segment['column']} = {segment['value']}" if segment else "everyone"),
        ("model", filters["model"]),
        ("lookback days", f"{filters['lookback_days']:g}"),
        ("entity", filters["entity"]),
        ("as of", filters["as_of"] or "no stage entries"),
        ("won kind", data["kinds"]["won"] or "none"),
        ("pipeline kind", data["kinds"]["pipeline"] or "none"),
        ("currency", data["currency"]),
        ("data from", data["data_range"]["first"] or "no data"),
        ("data to", data["data_range"]["last"] or "no data"),
        ("generated at", data["generated_at"]),
        ("package version", data["package_version"]),
    ]


# ----------------------------------------------------------------------------- text cells


def format_cell(row: GridRow, value: Any, currency: str) -> list[str]:
    """Return the lines of one grid cell as text: a dash for a missing number."""
    if row.kind == "owner":
        return [str(value)] if value else []
    if row.kind == "texts":
        return [str(item) for item in value]
    if row.kind == "channels":
        return [f"{share.channel} {share.share:.0%}" for share in value]
    if value is None or pd.isna(value):
        return ["–"]
    if row.kind == "rate":
        return [f"{value:.1%}"]
    if row.kind == "days":
        return [f"{value:,.1f}"]
    if row.kind == "money":
        return [f"{value:,.0f} {currency}"]
    return [f"{value:,}"]


# ----------------------------------------------------------------------------- Markdown


def render_markdown(journey_map: JourneyMap, *, title: str = "Journey map") -> str:
    """Return the map as GitHub-flavoured Markdown: the stage grid, then the report tables."""
    names = [stage.name for stage in journey_map.stages]
    lines = [f"# {_escape(title)}", ""]
    lines.append(
        " · ".join(
            f"{setting}: {_escape(value)}" for setting, value in settings_rows(journey_map)[:9]
        )
    )
    lines += ["", "## Stages", ""]
    lines.append("| | " + " | ".join(_escape(name) for name in names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for row in GRID_ROWS:
        cells = [
            "<br>".join(
                _escape(line)
                for line in format_cell(row, stage.value(row.key), journey_map.currency)
            )
            for stage in journey_map.stages
        ]
        lines.append(f"| **{_escape(row.label)}** | " + " | ".join(cells) + " |")

    tables = map_tables(journey_map)
    sections = [
        ("Top drop-off points by revenue impact", "dropoff_points"),
        ("Top touch sequences of winning customers", "top_sequences"),
        ("Channel credit", "channel_credit"),
    ]
    for heading, name in sections:
        lines += ["", f"## {heading}", ""]
        lines += _markdown_table(tables[name]) if len(tables[name]) else ["None in this range."]
    if journey_map.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {_escape(note)}" for note in journey_map.notes]
    return "\n".join(lines) + "\n"


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(str(column) for column in frame.columns) + " |"]
    lines.append("|" + "".join("---:|" if _is_number(frame[c]) else "---|" for c in frame.columns))
    for record in frame.to_dict("records"):
        cells = [_markdown_value(str(column), value) for column, value in record.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _is_number(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column)) and not pd.api.types.is_bool_dtype(column)


def _markdown_value(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        if column in RATE_COLUMNS:
            return f"{value:.1%}"
        if column in MONEY_COLUMNS:
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _escape(str(value))


def _escape(text: str) -> str:
    """Escape the characters that would end a Markdown table cell or start markup."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


# ----------------------------------------------------------------------------- XLSX


def write_xlsx(journey_map: JourneyMap, path: Path) -> Path:
    """Write the map as an XLSX workbook: the ``Map`` grid, then one sheet per table.

    Numbers are numeric cells with a number format (percent, days, money with the currency
    code), so spreadsheet formulas can use them; a missing figure is an empty cell.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    for default in list(workbook.worksheets):
        workbook.remove(default)
    grid = workbook.create_sheet("Map")
    money = _money_format(journey_map.currency)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")

    grid.cell(row=1, column=1, value="Stage").font = bold
    for column, stage in enumerate(journey_map.stages, start=2):
        grid.cell(row=1, column=column, value=stage.name).font = bold
        grid.column_dimensions[get_column_letter(column)].width = 28
    grid.column_dimensions["A"].width = 32
    for line, row in enumerate(GRID_ROWS, start=2):
        grid.cell(row=line, column=1, value=row.label).font = bold
        for column, stage in enumerate(journey_map.stages, start=2):
            cell = grid.cell(row=line, column=column)
            value = stage.value(row.key)
            if row.kind in ("owner", "texts", "channels"):
                cell.value = "\n".join(format_cell(row, value, journey_map.currency)) or None
                cell.alignment = wrap
            else:
                cell.value = value
                cell.number_format = _grid_format(row, money)
                cell.alignment = Alignment(vertical="top")
    grid.freeze_panes = "B2"

    for name, frame in map_tables(journey_map).items():
        sheet = workbook.create_sheet(SHEET_TITLES[name])
        _write_frame(sheet, frame, money, bold)

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    log.info("wrote the journey map workbook %s", path)
    return path


def _money_format(currency: str) -> str:
    return f'#,##0.00 "{currency}"'


def _grid_format(row: GridRow, money: str) -> str:
    return {"rate": "0.0%", "days": "0.0", "money": money, "count": "#,##0"}.get(
        row.kind, "General"
    )


def _column_format(column: str, money: str) -> str:
    if column in RATE_COLUMNS:
        return "0.0%"
    if column in DAY_COLUMNS:
        return "0.0"
    if column in MONEY_COLUMNS:
        return money
    if column in CREDIT_COLUMNS:
        return "0.000"
    return "#,##0"


def _write_frame(sheet: Any, frame: pd.DataFrame, money: str, bold: Any) -> None:
    from openpyxl.utils import get_column_letter

    for column, header in enumerate(frame.columns, start=1):
        name = str(header)
        sheet.cell(row=1, column=column, value=name).font = bold
        width = max([len(str(name)), *(len(str(v)) for v in frame[name].head(50))], default=8)
        sheet.column_dimensions[get_column_letter(column)].width = min(max(width + 2, 10), 60)
    for line, record in enumerate(frame.to_dict("records"), start=2):
        for column, (key, value) in enumerate(record.items(), start=1):
            cell = sheet.cell(row=line, column=column, value=_cell_value(value))
            if isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                cell.number_format = _column_format(str(key), money)
    sheet.freeze_panes = "A2"


def _cell_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


# ----------------------------------------------------------------------------- files


def write_tables(
    journey_map: JourneyMap, folder: Path, *, file_format: Literal["csv", "parquet"]
) -> list[Path]:
    """Write each table of :func:`map_tables` to ``folder`` as ``<name>.csv`` or ``.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in map_tables(journey_map).items():
        path = folder / f"{name}.{file_format}"
        if file_format == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    log.info("wrote %s journey map tables to %s", len(written), folder)
    return written


def export_map(journey_map: JourneyMap, out: str | Path, *, file_format: str) -> list[Path]:
    """Write the map in ``file_format`` to ``out`` and return the files written.

    ``html``, ``xlsx`` and ``markdown`` write one file at ``out``; ``csv`` and ``parquet``
    write one file per table into the folder ``out``.

    Raises:
        ConfigError: an unknown format, or an ``out`` that is a folder for a one-file format.
    """
    from journeymap.report.map_html import write_map_html

    target = Path(out)
    if file_format not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {file_format!r}",
            location="--format",
            hint=f"Use one of {', '.join(EXPORT_FORMATS)}",
        )
    if file_format in ("csv", "parquet"):
        if target.exists() and not target.is_dir():
            raise ConfigError(
                f"{target} is a file, but {file_format} writes one file per table",
                location="--out",
                hint="Give a folder, such as map-tables/",
            )
        return write_tables(journey_map, target, file_format=file_format)  # type: ignore[arg-type]
    if target.is_dir():
        raise ConfigError(
            f"{target} is a folder, but {file_format} writes one file",
            location="--out",
            hint="Give a file name, such as journey-map."
            + ("md" if file_format == "markdown" else file_format),
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "html":
        return [write_map_html(journey_map, target)]
    if file_format == "xlsx":
        return [write_xlsx(journey_map, target)]
    target.write_text(render_markdown(journey_map), encoding="utf-8")
    return [target]
