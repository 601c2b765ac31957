"""The compare view: what changed between two journey map snapshots or two periods.

The query picks the maps: ``before`` and ``after`` name two snapshot files (``journeymap
snapshot`` writes them to ``snapshots/`` beside the store), and ``a`` and ``b`` name two periods
measured now (``2026-Q1``, ``2026-03``, ``2026`` or ``2026-01-01..2026-02-15``). Without
either, the view compares the two newest snapshots. :func:`journeymap.report.compare.compare`
lists the changes and marks the ones that matter.

A period's map is the journey map view for that range, so it shares the map's cache entry. A
snapshot comparison reads two small files and is not cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeymap.common.errors import ConfigError
from journeymap.report.compare import compare as compare_maps
from journeymap.report.snapshots import (
    SNAPSHOT_FOLDER,
    check_name,
    list_snapshots,
    load_snapshot,
    parse_period,
)
from journeymap.store.store import MEMORY
from journeymap.web.filters import Filters, parse_filters
from journeymap.web.views.base import json_value

if TYPE_CHECKING:
    from journeymap.web.service import Dashboard, Result

SNAPSHOT_COMMAND = "journeymap snapshot --name 2026-Q1 --start 2026-01-01 --end 2026-03-31"
"""The command the empty state shows: save the map of a quarter as a snapshot."""


@dataclass(frozen=True)
class CompareChoice:
    """The two maps a request picks: two snapshot names, two periods, or neither."""

    before: str | None = None
    after: str | None = None
    a: str | None = None
    b: str | None = None

    @property
    def periods(self) -> bool:
        """Whether the request compares two periods."""
        return self.a is not None

    @property
    def snapshots(self) -> bool:
        """Whether the request names two snapshots."""
        return self.before is not None


def parse_choice(params: Mapping[str, str]) -> CompareChoice:
    """Read ``before`` and ``after`` (snapshot names) or ``a`` and ``b`` (periods).

    Raises:
        ConfigError: only one of a pair is given, both pairs are given, a snapshot name has
            characters other than letters, digits, dots, dashes and underscores, or a period
            is not of an accepted form.
    """
    values = {
        name: (params.get(name) or "").strip() or None for name in ("before", "after", "a", "b")
    }
    for first, second in (("before", "after"), ("a", "b")):
        if (values[first] is None) != (values[second] is None):
            missing = first if values[first] is None else second
            raise ConfigError(
                f"{missing} is missing: a comparison needs both {first} and {second}",
                location=missing,
                hint="Pick two snapshots (before=2026-Q1&after=2026-Q2) or two periods "
                "(a=2026-Q1&b=2026-Q2)",
            )
    if values["before"] is not None and values["a"] is not None:
        raise ConfigError(
            "both two snapshots and two periods are given",
            location="a",
            hint="Compare either snapshots (before, after) or periods (a, b)",
        )
    for name in ("before", "after"):
        if values[name] is not None:
            check_name(str(values[name]))
    for name in ("a", "b"):
        if values[name] is not None:
            parse_period(str(values[name]))
    return CompareChoice(**values)


def snapshot_dir(location: str) -> Path:
    """Return the snapshots folder of the store at ``location``, as ``journeymap snapshot``
    picks it: ``snapshots/`` beside the store file, or in the working folder for memory."""
    if location == MEMORY:
        return Path(SNAPSHOT_FOLDER)
    return Path(location).resolve().parent / SNAPSHOT_FOLDER


def snapshot_rows(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Return one row per readable snapshot in ``folder``, oldest first, and notes on the rest.

    A row has ``name, created_at, start, end, model, lookback_days, entity, segment``.
    """
    rows = []
    notes = []
    for name in list_snapshots(folder):
        try:
            document = load_snapshot(name, folder)
        except ConfigError as exc:
            notes.append(f"The snapshot {name} was skipped: {exc}")
            continue
        settings = document["map"]["filters"]
        segment = settings.get("segment")
        rows.append(
            {
                "name": name,
                "created_at": document.get("created_at"),
                "start": settings.get("start"),
                "end": settings.get("end"),
                "model": settings.get("model"),
                "lookback_days": settings.get("lookback_days"),
                "entity": settings.get("entity"),
                "segment": f"{segment['column']}={segment['value']}" if segment else None,
            }
        )
    rows.sort(key=lambda row: (str(row["created_at"] or ""), row["name"]))
    return rows, notes


def compare_result(
    dashboard: Dashboard, params: Mapping[str, str], *, background: bool = False
) -> Result:
    """Return the comparison the query picks, or its empty state or error.

    Shape of ``data``: ``source`` (``snapshots`` or ``periods``), ``before`` and ``after``
    (the labels), ``snapshots`` (the rows of :func:`snapshot_rows`), ``rule`` (when a change
    matters), ``changes`` (rows of :class:`~journeymap.report.compare.Change`, the ones that
    matter first), ``highlights`` (how many matter) and ``notes``. Errors: 400 for an invalid
    choice or filter, 404 for a snapshot that is not in the folder.
    """
    from journeymap.web.service import Result, error_body

    try:
        filters = parse_filters(params)
        choice = parse_choice(params)
    except ConfigError as exc:
        return Result("compare", Filters(), error=error_body(exc), status=400)

    folder = snapshot_dir(dashboard.access.path)
    rows, notes = snapshot_rows(folder)
    if filters.start is not None or filters.end is not None:
        notes.append("The date filters do not apply: the snapshots or periods set the dates.")

    if choice.periods:
        labels = (str(choice.a), str(choice.b))
        maps = []
        for period in labels:
            first, last = parse_period(period)
            window = filters.as_params() | {"start": first.isoformat(), "end": last.isoformat()}
            measured = dashboard.result("map", window, background=background)
            if measured.data is None:
                return Result(
                    "compare",
                    filters,
                    empty=measured.empty,
                    error=measured.error,
                    status=measured.status,
                )
            maps.append(measured.data)
        source = "periods"
    else:
        if choice.snapshots:
            labels = (str(choice.before), str(choice.after))
        elif len(rows) >= 2:
            labels = (rows[-2]["name"], rows[-1]["name"])
        else:
            return Result("compare", filters, empty=_no_snapshots(folder, rows))
        try:
            maps = [load_snapshot(name, folder)["map"] for name in labels]
        except ConfigError as exc:
            return Result("compare", filters, error=error_body(exc), status=404)
        source = "snapshots"
        if filters.segment is not None or filters.model is not None:
            notes.append(
                "The segment and model filters do not apply to snapshots: each was saved "
                "with its own."
            )

    comparison = compare_maps(maps[0], maps[1], labels=labels)
    data = comparison.to_dict()
    data.update(
        source=source,
        snapshots=rows,
        highlights=len(comparison.highlights),
        notes=[*notes, *data["notes"]],
    )
    return Result("compare", filters, data=json_value(data))


def _no_snapshots(folder: Path, rows: list[dict[str, Any]]) -> dict[str, str | None]:
    """Return the empty state of a folder with fewer than two snapshots."""
    if rows:
        saved = f"Only one journey map snapshot ({rows[0]['name']}) is saved in {folder}"
    else:
        saved = f"No journey map snapshot is saved in {folder} yet"
    return {
        "message": f"{saved}. Save the map at the end of each quarter to compare it with the "
        "next, or compare two periods measured now, such as ?a=2026-Q1&b=2026-Q2",
        "command": SNAPSHOT_COMMAND,
    }


def compare_context(dashboard: Dashboard, params: Mapping[str, str]) -> dict[str, Any]:
    """Return what the compare page's picker shows: the saved snapshots and the choice made."""
    rows, _ = snapshot_rows(snapshot_dir(dashboard.access.path))
    choice = {name: (params.get(name) or "").strip() for name in ("before", "after", "a", "b")}
    return {"snapshots": rows, "choice": choice}
