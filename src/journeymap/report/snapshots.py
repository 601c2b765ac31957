"""Snapshots of the journey map: one JSON file per review, kept in a snapshots folder.

A snapshot file holds everything needed to compare it later without the store::

    {"format": "journeymap.snapshot/1", "name": "2026-Q1", "created_at": "...",
     "package_version": "0.1.0", "data_range": {"first": "...", "last": "..."},
     "config": {... the whole validated configuration ...},
     "map": {... JourneyMap.to_dict() ...}}

The folder is ``snapshots/`` beside the store file (``./snapshots`` for a store in memory)
unless the caller names another. Files, not a store table, because a quarterly review wants
files it can attach, diff and keep after the store is rebuilt.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

from journeymap import __version__
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError
from journeymap.common.timeutil import utc_now
from journeymap.report.map import MAP_FORMAT, journey_map
from journeymap.store.store import MEMORY, Store

log = logging.getLogger("journeymap")

SNAPSHOT_FORMAT = "journeymap.snapshot/1"
SNAPSHOT_FOLDER = "snapshots"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""Snapshot names: letters, digits, dots, dashes and underscores, so a name is a safe file name."""

PERIOD_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d{4})-[Qq]([1-4])"), "quarter"),
    (re.compile(r"(\d{4})-(\d{2})"), "month"),
    (re.compile(r"(\d{4})"), "year"),
    (re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})"), "range"),
)
"""Accepted forms of a period: ``2026-Q1``, ``2026-03``, ``2026`` and ``2026-01-01..2026-02-15``."""


def snapshot_folder(store: Store, folder: str | Path | None = None) -> Path:
    """Return ``folder``, else ``snapshots/`` beside the store file (or in the working folder)."""
    if folder is not None:
        return Path(folder)
    if store.location == MEMORY:
        return Path(SNAPSHOT_FOLDER)
    return Path(store.location).resolve().parent / SNAPSHOT_FOLDER


def check_name(name: str) -> str:
    """Return ``name`` when it is a valid snapshot name.

    Raises:
        ConfigError: the name has characters other than letters, digits, ``.``, ``-``, ``_``.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"invalid snapshot name {name!r}",
            location="--name",
            hint="Use up to 100 letters, digits, dots, dashes or underscores, such as 2026-Q1",
        )
    return name


def snapshot(
    store: Store,
    config: Config | None = None,
    *,
    name: str | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    folder: str | Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> Path:
    """Measure the journey map and save it with the configuration as ``<folder>/<name>.json``.

    ``name`` defaults to the period (``2026-01-01..2026-03-31``) or, without dates, to the
    creation time (``map-20260401T120000Z``). ``options`` go to
    :func:`~journeymap.report.map.journey_map` (segment, model, lookback, entity).

    Raises:
        ConfigError: an invalid name, or a snapshot of that name exists and ``overwrite`` is
            false.
    """
    config = config or Config()
    if name is not None:
        _check_free(snapshot_folder(store, folder) / f"{check_name(name)}.json", overwrite)
    created = utc_now()
    measured = journey_map(store, config, start=start, end=end, **options)
    data = measured.to_dict()
    if name is None:
        first, last = data["filters"]["start"], data["filters"]["end"]
        name = f"{first or 'start'}..{last or 'end'}" if first or last else None
        name = name or "map-" + created.strftime("%Y%m%dT%H%M%SZ")
    target = snapshot_folder(store, folder) / f"{check_name(name)}.json"
    _check_free(target, overwrite)

    document = {
        "format": SNAPSHOT_FORMAT,
        "name": name,
        "created_at": created.isoformat(),
        "package_version": __version__,
        "data_range": data["data_range"],
        "config": config.model_dump(mode="json"),
        "map": data,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    log.info("saved the journey map snapshot %s to %s", name, target)
    return target


def _check_free(target: Path, overwrite: bool) -> None:
    """Raise when ``target`` exists and may not be replaced."""
    if target.exists() and not overwrite:
        raise ConfigError(
            f"a snapshot named {target.stem!r} exists: {target}",
            location="--name",
            hint="Pick another name, or pass --force to replace it",
        )


def list_snapshots(folder: Path) -> list[str]:
    """Return the names of the snapshots in ``folder``, sorted."""
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.json"))


def load_snapshot(reference: str | Path, folder: Path) -> dict[str, Any]:
    """Return the snapshot document of a file path, or of a name in ``folder``.

    Raises:
        ConfigError: no such file or name (the message lists the saved names), a file that is
            not JSON, or JSON that is not a journeymap snapshot.
    """
    path = Path(reference)
    if not path.is_file():
        path = folder / f"{reference}.json"
    if not path.is_file():
        names = list_snapshots(folder)
        raise ConfigError(
            f"no snapshot {str(reference)!r} (looked for the file and for {path})",
            hint=f"Snapshots in {folder}: {', '.join(names) or 'none'}. "
            "Save one with: journeymap snapshot --name NAME",
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path} is not a JSON file: {exc}", hint="Pass a file that journeymap snapshot wrote"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ConfigError(
            f"{path} is not a journeymap snapshot (format {found!r}, expected {SNAPSHOT_FORMAT!r})",
            hint="Pass a file that journeymap snapshot wrote",
        )
    if not isinstance(document.get("map"), dict) or document["map"].get("format") != MAP_FORMAT:
        raise ConfigError(
            f"{path} has no journey map of format {MAP_FORMAT!r} under the key 'map'",
            hint="Save the snapshot again with this version of journeymap",
        )
    return document


def parse_period(text: str) -> tuple[date, date]:
    """Return the first and last day of a period such as ``2026-Q1``, ``2026-03`` or ``2026``.

    Raises:
        ConfigError: the text is none of the forms of :data:`PERIOD_PATTERNS`.
    """
    cleaned = text.strip()
    for pattern, kind in PERIOD_PATTERNS:
        found = pattern.fullmatch(cleaned)
        if found is None:
            continue
        try:
            return _period_days(kind, found.groups())
        except ValueError:
            break
    raise ConfigError(
        f"invalid period {text!r}",
        location="--period",
        hint="Write a quarter (2026-Q1), a month (2026-03), a year (2026) "
        "or two days (2026-01-01..2026-02-15)",
    )


def _period_days(kind: str, groups: tuple[str | Any, ...]) -> tuple[date, date]:
    if kind == "range":
        first, last = date.fromisoformat(groups[0]), date.fromisoformat(groups[1])
        if last < first:
            raise ValueError("the range ends before it starts")
        return first, last
    year = int(groups[0])
    if kind == "year":
        return date(year, 1, 1), date(year, 12, 31)
    if kind == "quarter":
        first_month = 3 * (int(groups[1]) - 1) + 1
        last_month = first_month + 2
    else:
        first_month = last_month = int(groups[1])
    last_day = calendar.monthrange(year, last_month)[1]
    return date(year, first_month, 1), date(year, last_month, last_day)
