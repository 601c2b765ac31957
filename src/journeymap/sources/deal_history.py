"""Stage history of a deals export: one column per stage with the time the deal entered it.

CRM exports carry a deal's stage history as one date column per pipeline stage. Three header
forms are recognised, compared case-insensitively:

- ``Date entered "<stage> (<pipeline>)"``, as in a HubSpot deals export; the bracketed
  pipeline is dropped when it is one of the file's pipelines, so the stage name stays as
  written, including brackets of its own;
- ``hs_v2_date_entered_<stage>``, the HubSpot property that holds the same time;
- ``date_entered_<stage>``.

Each non-empty cell is a stay: the deal entered the stage at that time and left it when it
entered the next stage by time, and the stay with the latest entry has no exit. So a deal
that entered ``Demo Scheduled`` and then ``Closed Lost`` has two stays, the first ending
when the deal was lost. A column records one entry per stage, so a deal that went back to an
earlier stage keeps only the entry that the export kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from journeymap.sources.values import text

STAGE_COLUMN_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*date\s+entered\s*[\"'](?P<stage>.+)[\"']\s*$", re.IGNORECASE),
    re.compile(r"^\s*hs_v2_date_entered_(?P<stage>.+?)\s*$", re.IGNORECASE),
    re.compile(r"^\s*date_entered_(?P<stage>.+?)\s*$", re.IGNORECASE),
)
"""Header forms of stage-entry columns; the ``stage`` group is the stage (and pipeline)."""

HISTORY_COLUMNS = ["deal_id", "pipeline", "stage", "entered_at", "exited_at"]


@dataclass(frozen=True)
class StageColumn:
    """One stage-entry column of the input and the stage it records."""

    column: str
    stage: str


def stage_columns(columns: Sequence[str], pipelines: Sequence[str] = ()) -> list[StageColumn]:
    """Return the stage-entry columns among ``columns``, in file order.

    ``pipelines`` are the pipeline names of the file: a trailing `` (<pipeline>)`` is removed
    from a stage name only when it names one of them.
    """
    known = {name.strip().casefold() for name in pipelines if name}
    found: list[StageColumn] = []
    for column in columns:
        for pattern in STAGE_COLUMN_PATTERNS:
            match = pattern.match(str(column))
            if match is None:
                continue
            found.append(StageColumn(column=str(column), stage=_stage_name(match["stage"], known)))
            break
    return found


def _stage_name(raw: str, pipelines: set[str]) -> str:
    name = raw.strip()
    bracketed = re.match(r"^(?P<stage>.+?)\s*\((?P<pipeline>[^()]*)\)$", name)
    if bracketed and bracketed["pipeline"].strip().casefold() in pipelines:
        return bracketed["stage"].strip()
    return name


def history_stays(
    deal_ids: pd.Series,
    pipelines: pd.Series,
    entries: dict[str, pd.Series],
) -> pd.DataFrame:
    """Turn the stage-entry times of each deal into ``deal_stages`` rows (without import_id).

    ``deal_ids`` and ``pipelines`` are aligned with the input rows, and ``entries`` maps each
    stage name to the UTC entry times of the rows (NaT where the deal never entered it). Of
    two stages entered at the same instant, the one whose column comes first in the file
    comes first. Rows are sorted by deal and entry time.
    """
    parts = []
    for order, (stage, times) in enumerate(entries.items()):
        entered = times.notna()
        parts.append(
            pd.DataFrame(
                {
                    "deal_id": deal_ids[entered].to_numpy(),
                    "pipeline": pipelines[entered].to_numpy(),
                    "stage": stage,
                    "entered_at": times[entered].to_numpy(),
                    "_order": order,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=HISTORY_COLUMNS)

    stays = pd.concat(parts, ignore_index=True)
    stays["entered_at"] = pd.to_datetime(stays["entered_at"], utc=True)
    stays["pipeline"] = stays["pipeline"].astype("string")
    stays = stays.sort_values(["deal_id", "entered_at", "_order"], kind="stable", ignore_index=True)

    # A stay ends when the same deal enters its next stage.
    following = stays.groupby("deal_id", sort=False)["entered_at"].shift(-1)
    stays["exited_at"] = pd.to_datetime(following, utc=True)
    return stays[HISTORY_COLUMNS]


def read_stage_entries(
    frame: pd.DataFrame,
    columns: list[StageColumn],
    parse: Callable[[pd.Series, str], pd.Series],
) -> dict[str, pd.Series]:
    """Parse each stage-entry column with ``parse(values, column_name)`` into UTC timestamps.

    Two columns that name the same stage (say, the same stage in two pipelines) are merged:
    a row takes the earliest of their times.
    """
    entries: dict[str, pd.Series] = {}
    for stage_column in columns:
        times = parse(text(frame[stage_column.column]), stage_column.column)
        if stage_column.stage in entries:
            times = pd.concat([entries[stage_column.stage], times], axis=1).min(axis=1)
        entries[stage_column.stage] = times
    return entries
