"""The tables of the dashboard pages: which columns of a view's rows to show, and how.

A :class:`TableSpec` names its columns with a format each (``int``, ``num``, ``money``, ``pct``,
``days``, ``p`` (a p-value), ``time`` or ``text``); :func:`format_cell` writes one cell in that
format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

Column = tuple[str, str, str]
"""A column: the row key, its heading and its format."""


@dataclass(frozen=True)
class TableSpec:
    """One table of a page. ``links`` maps a column to a URL template with ``{value}``."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str | None = None
    links: dict[str, str] = field(default_factory=dict)


def format_cell(value: Any, kind: str) -> str:
    """Write ``value`` in the format ``kind``; a missing value is an en dash."""
    if value is None or value == "":
        return "–"
    if kind == "int":
        return f"{float(value):,.0f}"
    if kind == "num":
        return f"{float(value):,.2f}"
    if kind == "money":
        return f"{float(value):,.0f}"
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "days":
        return f"{float(value):,.1f}"
    if kind == "p":
        return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"
    if kind == "time":
        return str(value).replace("T", " ")[:16]
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)


def attribution(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    """Return the pivot of credit by model and the spend table of the chosen grain."""
    grain = filters.grain
    models = data["models"]
    pivot: dict[str, dict[str, Any]] = {}
    for row in data["credit"][grain]:
        entry = pivot.setdefault(row["key"], {"key": row["key"]})
        entry[row["model"]] = row["conversions"]
    rows = sorted(pivot.values(), key=lambda entry: -max(entry.get(name) or 0 for name in models))[
        :100
    ]
    currency = data["currency"]
    per = "CAC" if data["kind"] == "closed_won" else f"cost per {data['kind']}"
    result = [
        TableSpec(
            f"Conversions credited by model and {grain} ({data['kind']})",
            [("key", grain, "text"), *((name, name, "num") for name in models)],
            rows,
            note="The 100 rows with the most credit under any model." if len(pivot) > 100 else None,
        )
    ]
    spend = data["spend"][grain]
    result.append(
        TableSpec(
            f"Spend and return under {data['model']} by {grain}",
            [
                ("key", grain, "text"),
                ("cost", f"spend ({currency})", "money"),
                ("conversions", "conversions", "num"),
                ("value", f"value ({currency})", "money"),
                ("roas", "ROAS", "num"),
                ("cost_per_conversion", f"{per} ({currency})", "money"),
            ],
            spend,
            note=None
            if spend
            else "No spend matches this breakdown: import spend with "
            "journeymap import spend FILE --platform NAME.",
        )
    )
    return result


def funnel(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    return [
        TableSpec(
            f"Stage to stage ({data['source']} stages, by {data['entity_kind']})",
            [
                ("from_stage", "from", "text"),
                ("to_stage", "to", "text"),
                ("entered", "entered", "int"),
                ("converted", "converted", "int"),
                ("rate", "rate", "pct"),
                ("open", "open", "int"),
            ],
            data["steps"],
        ),
        TableSpec(
            "Drop-off by first-touch channel, ranked by entrants lost beyond the average",
            [
                ("rank", "rank", "int"),
                ("channel", "channel", "text"),
                ("from_stage", "from", "text"),
                ("to_stage", "to", "text"),
                ("entered", "entered", "int"),
                ("lost", "lost", "int"),
                ("loss_rate", "loss rate", "pct"),
                ("excess_lost", "lost beyond average", "num"),
            ],
            data["dropoff"][:30],
        ),
    ]


def velocity(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    entity = data["entity_kind"]
    link = "/timeline/" + entity + "/{value}" if entity in ("person", "account") else None
    return [
        TableSpec(
            "Days in stage",
            [
                ("stage", "stage", "text"),
                ("completed_stays", "completed stays", "int"),
                ("median_days", "median days", "days"),
                ("p75_days", "p75 days", "days"),
                ("p90_days", "p90 days", "days"),
                ("open_stays", "open stays", "int"),
            ],
            data["time_in_stage"],
        ),
        TableSpec(
            f"Stalled: {data['stalled_total']:,} open stays longer than their stage's threshold",
            [
                ("entity_id", entity, "text"),
                ("stage", "stage", "text"),
                ("entered_at", "entered", "time"),
                ("days_in_stage", "days in stage", "days"),
                ("threshold_days", "threshold days", "days"),
            ],
            data["stalled"][:50],
            note=f"As of {format_cell(data['as_of'], 'time')}; the 50 longest are listed.",
            links={"entity_id": link} if link else {},
        ),
    ]


def paths(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    return [
        TableSpec(
            f"Top paths of the entities that reached {data['kind']}",
            [
                ("path", "path", "text"),
                ("converters", "converters", "int"),
                ("share", "share", "pct"),
                ("conversion_rate", "conversion rate", "pct"),
            ],
            data["paths"],
        )
    ]


def blind_spots(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    return [
        TableSpec(
            "Conversions without tracked touches",
            [
                ("kind", "kind", "text"),
                ("conversions", "conversions", "int"),
                ("no_touch", "no touch", "int"),
                ("no_touch_share", "no-touch share", "pct"),
                ("direct_only", "direct only", "int"),
                ("direct_only_share", "direct-only share", "pct"),
            ],
            data["by_kind"],
        ),
        _generic_table("Click ids without matching spend", data["click_ids"]),
        _generic_table("Self-reported sources the tracking undercounts", data["undercount"]),
    ]


ICP_PROFILE_COLUMNS: list[Column] = [
    ("rank", "#", "int"),
    ("dimension", "dimension", "text"),
    ("value", "segment", "text"),
    ("closed", "closed", "int"),
    ("won", "won", "int"),
    ("win_rate", "win rate", "pct"),
    ("overall_win_rate", "overall win rate", "pct"),
    ("lift", "lift", "num"),
    ("p_value", "p-value", "p"),
    ("significant", "significant", "text"),
    ("note", "note", "text"),
    ("acv", "ACV", "money"),
    ("won_revenue_share", "won revenue share", "pct"),
    ("revenue_rank", "revenue rank", "int"),
]
ICP_PROFILE_RETENTION: list[Column] = [
    ("customers", "customers", "int"),
    ("churned", "churned", "int"),
    ("retention_rate", "retention", "pct"),
    ("overall_retention_rate", "overall retention", "pct"),
    ("retention_lift", "retention lift", "num"),
    ("retention_p_value", "retention p-value", "p"),
    ("retention_significant", "retention significant", "text"),
    ("retention_note", "retention note", "text"),
    ("horizon_customers", "customers won a year before", "int"),
    ("horizon_retention_rate", "retained at a year", "pct"),
]
ICP_SEGMENT_COLUMNS: list[Column] = [
    ("closed", "closed", "int"),
    ("won", "won", "int"),
    ("lost", "lost", "int"),
    ("win_rate", "win rate", "pct"),
    ("acv", "ACV", "money"),
    ("won_revenue", "won revenue", "money"),
    ("median_cycle_days", "median cycle days", "days"),
    ("accounts", "accounts", "int"),
    ("open_deals", "open deals", "int"),
    ("customers", "customers", "int"),
]
ICP_SEGMENT_RETENTION: list[Column] = [
    ("churned", "churned", "int"),
    ("retention_rate", "retention", "pct"),
    ("horizon_customers", "customers won a year before", "int"),
    ("horizon_retained", "retained at a year", "int"),
    ("horizon_retention_rate", "retention at a year", "pct"),
    ("too_recent", "won less than a year ago", "int"),
]


def icp(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    """Return the ranked profile and one table per dimension, with retention when known."""
    retention = bool(data.get("retention"))
    profile_columns = ICP_PROFILE_COLUMNS + (ICP_PROFILE_RETENTION if retention else [])
    result = [
        TableSpec("Ideal customer profile", profile_columns, data["profile"], note=data["note"])
    ]
    for dimension, rows in data["segments"].items():
        columns: list[Column] = [(dimension, dimension, "text"), *ICP_SEGMENT_COLUMNS]
        if retention:
            columns += ICP_SEGMENT_RETENTION
        result.append(TableSpec(f"Segments by {dimension}", columns, rows))
    return result


def entities(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    columns: list[Column] = [
        ("id", "id", "text"),
        ("touches", "touches", "int"),
        ("conversions", "conversions", "int"),
        ("last_at", "last activity", "time"),
    ]
    return [
        TableSpec("People", columns, data["people"], links={"id": "/timeline/person/{value}"}),
        TableSpec("Accounts", columns, data["accounts"], links={"id": "/timeline/account/{value}"}),
    ]


def timeline(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    return [
        TableSpec(
            "Journey stages",
            [
                ("stage", "stage", "text"),
                ("entered_at", "entered", "time"),
                ("exited_at", "left", "time"),
                ("reason", "reason", "text"),
            ],
            data["stages"],
        ),
        TableSpec(
            "Touches",
            [
                ("occurred_at", "time", "time"),
                ("channel", "channel", "text"),
                ("source", "source", "text"),
                ("medium", "medium", "text"),
                ("campaign", "campaign", "text"),
                ("touch_type", "type", "text"),
            ],
            data["touches"],
        ),
        TableSpec(
            "Conversions",
            [
                ("occurred_at", "time", "time"),
                ("kind", "kind", "text"),
                ("value", "value", "money"),
                ("deal_id", "deal", "text"),
            ],
            data["conversions"],
        ),
        _generic_table("Deals", data["deals"]),
        _generic_table("Deal stages", data["deal_stages"]),
    ]


def journey_map(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    """Return the map's lists below its grid: drop-off points, touch sequences, channel credit."""
    currency = data["currency"]
    won = data["kinds"]["won"] or "won"
    unplaced = data.get("unplaced_revenue")
    return [
        TableSpec(
            "Top three drop-off points by revenue impact",
            [
                ("rank", "rank", "int"),
                ("stage", "stage", "text"),
                ("entered", "entered", "int"),
                ("moved_on", "moved on", "int"),
                ("dropped", "dropped", "int"),
                ("dropoff_rate", "drop-off rate", "pct"),
                ("value_per_mover", f"won value per mover ({currency})", "money"),
                ("revenue_impact", f"revenue impact ({currency})", "money"),
            ],
            data["dropoff_points"],
            note="Revenue impact is the entrants that dropped times the won value per entrant "
            "that moved on: an upper bound, not a forecast.",
        ),
        TableSpec(
            f"Top touch sequences of winning customers ({won})",
            [
                ("path", "sequence", "text"),
                ("converters", "customers", "int"),
                ("share", "share", "pct"),
                ("conversion_rate", "conversion rate", "pct"),
            ],
            data["top_sequences"],
        ),
        TableSpec(
            f"Credit of {won} conversions by channel ({data['filters']['model']})",
            [
                ("channel", "channel", "text"),
                ("conversions", "conversions", "num"),
                ("value", f"value ({currency})", "money"),
                ("share", "share", "pct"),
            ],
            data["channel_credit"],
            note=None
            if not unplaced
            else f"{format_cell(unplaced, 'money')} {currency} of won value is in no stage: "
            "conversions without touches, or touches outside any stay.",
        ),
    ]


def recommendations(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    """Return the recommendations, most severe first, with their reason and action."""
    rows = [
        {
            "severity": item.get("severity"),
            "title": item.get("title"),
            "why": item.get("why"),
            "action": item.get("action"),
            "evidence": ", ".join(
                f"{row.get('measure')} {format_cell(row.get('value'), 'num')} {row.get('unit')}"
                for row in item.get("evidence", [])
            ),
        }
        for item in data.get("recommendations", [])
    ]
    columns: list[Column] = [(key, key, "text") for key in ("severity", "title", "why", "action")]
    columns.append(("evidence", "evidence", "text"))
    return [TableSpec("Recommendations", columns, rows)]


def generic(data: dict[str, Any], filters: Any) -> list[TableSpec]:
    """Return one table per list of rows in ``data``."""
    return [
        _generic_table(name.replace("_", " ").capitalize(), rows)
        for name, rows in data.items()
        if name != "notes" and isinstance(rows, list) and rows and isinstance(rows[0], dict)
    ]


def _generic_table(title: str, rows: list[dict[str, Any]], note: str | None = None) -> TableSpec:
    columns: list[Column] = []
    if rows:
        for key, value in rows[0].items():
            columns.append((key, key.replace("_", " "), _guess_format(key, value)))
    return TableSpec(title, columns, rows, note=note or None)


def _guess_format(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "time" if key.endswith("_at") else "text"
    if key.endswith(("rate", "share")):
        return "pct"
    if key.endswith("days"):
        return "days"
    return "int" if isinstance(value, int) else "num"


def link_for(template: str, value: Any) -> str:
    """Return ``template`` with ``{value}`` replaced by the URL-quoted value."""
    return template.replace("{value}", quote(str(value), safe=""))
