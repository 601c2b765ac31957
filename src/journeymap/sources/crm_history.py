"""Deal stage history from long-form CRM tables: one row per stage entry or per record version.

Three layouts are recognised by their columns (compared case-insensitively, spaces and dashes
read as underscores):

- HubSpot's ``deal_stage`` table as Fivetran writes it: ``deal_id``, ``value`` (the stage id),
  ``date_entered``, ``_fivetran_start``, ``_fivetran_end``, ``_fivetran_active``. Each row is
  one entry of the deal into stage ``value`` at ``date_entered`` (``_fivetran_start`` where
  ``date_entered`` is empty). The rows are entries and not versions of one record:
  ``_fivetran_active`` is true only for the deal's current stage, and an earlier stage's row
  ends at the next entry (its ``_fivetran_end``). So every row is read, whatever its
  ``_fivetran_active``; only rows with ``_fivetran_deleted`` true are skipped.
- Salesforce's ``opportunity`` table in Fivetran's history mode (``opportunity_history``):
  ``id``, ``stage_name``, ``_fivetran_start``. Each row is a version of the opportunity, valid
  from its ``_fivetran_start``. A version whose ``is_deleted`` or ``_fivetran_deleted`` is true
  is skipped, because a deleted opportunity is in no stage.
- Salesforce's ``OpportunityHistory`` object, exported (``OpportunityId``, ``StageName``,
  ``CreatedDate``) or synced (``opportunity_id``, ``stage_name``, ``created_date``). Salesforce
  adds a row when the stage, amount, probability or close date changes, and ``CreatedDate`` is
  the time of the change. Rows with ``IsDeleted`` true are skipped.

A deal's rows become stays in time order (rows at the same instant in file order). A row
whose stage is the stage of the deal's previous row continues that stay, so versions that
changed only the amount or the close date add no stay, and neither does a repeated entry. A
return to an earlier stage after another one is a new stay. Each stay ends when the deal's
next stay begins, and the last one has no exit, as for stage-entry columns
(:mod:`journeymap.sources.deal_history`).

HubSpot writes stage ids (``appointmentscheduled``, or generated ids in custom pipelines).
HubSpot's ``deal_pipeline_stage`` table (``stage_id``, ``label``, ``pipeline_id``,
``closed_won``, ``is_closed``) names them: see :func:`read_stage_labels`. Without it the ids
are kept, and a warning reports it. Ids that the table lacks are kept with a warning too,
unless the table has none of the ids (:func:`check_labels_match`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.columns import RENAME_REMEDY, ColumnResolver, normalise_name
from journeymap.sources.deal_history import HISTORY_COLUMNS
from journeymap.sources.readers import read_input
from journeymap.sources.timestamps import parse_crm_timestamps
from journeymap.sources.values import (
    known_flags,
    live_rows,
    required_text,
    text,
    true_false,
    unique_ids,
)

HUBSPOT_DEAL_STAGE = "HubSpot deal_stage"
SALESFORCE_VERSIONS = "Salesforce opportunity history (Fivetran history mode)"
SALESFORCE_OPPORTUNITY_HISTORY = "Salesforce OpportunityHistory"

HISTORY_ALIASES: dict[str, dict[str, list[str]]] = {
    HUBSPOT_DEAL_STAGE: {
        "deal_id": ["deal_id"],
        "stage": ["value"],
        "entered_at": ["date_entered"],
        "version_start": ["_fivetran_start"],
        "deleted": ["_fivetran_deleted"],
    },
    SALESFORCE_OPPORTUNITY_HISTORY: {
        "deal_id": ["opportunityid", "opportunity_id"],
        "stage": ["stagename", "stage_name"],
        "entered_at": ["createddate", "created_date"],
        "deleted": ["isdeleted", "is_deleted"],
        "fivetran_deleted": ["_fivetran_deleted"],
    },
    SALESFORCE_VERSIONS: {
        "deal_id": ["id"],
        "stage": ["stage_name", "stagename"],
        "entered_at": ["_fivetran_start"],
        "deleted": ["is_deleted", "isdeleted"],
        "fivetran_deleted": ["_fivetran_deleted"],
    },
}
"""Column names of each history layout, by field, in order of preference."""

LABEL_ALIASES: dict[str, list[str]] = {
    "stage_id": ["stage_id", "deal_pipeline_stage_id"],
    "label": ["label", "pipeline_stage_label"],
    "pipeline": ["pipeline_id", "deal_pipeline_id"],
    "is_won": ["closed_won", "is_closed_won"],
    "is_closed": ["is_closed"],
    "deleted": ["_fivetran_deleted"],
}
"""Column names of HubSpot's ``deal_pipeline_stage`` table, by field."""

MAX_LISTED_IDS = 3
"""Ids named in a warning at most."""


@dataclass(frozen=True)
class StageLabels:
    """HubSpot's stage ids with their label, pipeline id and closed and won flags.

    ``stages`` is indexed by stage id, with columns ``label``, ``pipeline`` (string) and
    ``is_won``, ``is_closed`` (nullable booleans, missing where the table lacks the flag).
    """

    file: str
    stages: pd.DataFrame
    id_column: str | None = None
    """The file's stage id column, as written."""

    def name(self, ids: pd.Series) -> pd.Series:
        """Return the label of each stage id. An id that the table lacks is returned unchanged."""
        labels = ids.map(self.stages["label"])
        return labels.fillna(ids).astype(ids.dtype)

    def unknown(self, ids: pd.Series) -> list[str]:
        """Return the distinct non-empty ids that the table lacks, sorted."""
        present = ids.dropna()
        return sorted(set(present[~present.isin(self.stages.index)].astype(str)))


@dataclass(frozen=True)
class StageHistory:
    """The stage entries of a history file, one row per stay, in time order per deal.

    ``entries`` has ``deal_id``, ``stage_id`` (the stage as written), ``stage`` (its label
    when a labels table names it), ``pipeline`` (the stage's pipeline when known) and
    ``entered_at`` (UTC). Consecutive rows of a deal in the same stage are already merged.
    """

    file: str
    layout: str
    entries: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def latest_stage_ids(self) -> pd.Series:
        """Return the stage id of each deal's last entry, indexed by deal id."""
        last = self.entries.groupby("deal_id", sort=False).tail(1)
        return pd.Series(last["stage_id"].to_numpy(), index=last["deal_id"].to_numpy())


def read_stage_labels(path: str | Path) -> StageLabels:
    """Read HubSpot's ``deal_pipeline_stage`` table (CSV or Parquet) into stage labels.

    ``stage_id`` and ``label`` are required. A stage with ``_fivetran_deleted`` true still
    names its id, because older deals entered it, unless a current row has the same id. A
    deleted row without an id is skipped.

    ``is_closed`` is the ``is_closed`` cell, else true where ``closed_won`` is true (tables
    synced before Fivetran added ``is_closed`` lack it), else unknown.

    Raises:
        InputError: a required column is missing, a current row has no stage id, a current
            stage id is repeated, a stage has no label, or a flag is neither true nor false.
    """
    source = read_input(path)
    frame = source.frame
    columns = ColumnResolver(
        file=source.path,
        columns=list(frame.columns),
        aliases=LABEL_ALIASES,
        remedy=RENAME_REMEDY,
    )
    id_column = columns.require("stage_id", why="the stage id that deals and histories name")
    label_column = columns.require("label", why="the stage name to show")

    deleted = true_false(frame, columns.get("deleted"), file=source.path, default=False)
    ids = unique_ids(frame[id_column], file=source.path, column=id_column, kept=~deleted)
    labels = text(frame[label_column])
    missing = ids.notna() & labels.isna()
    if missing.any():
        raise InputError(
            "stage label is missing",
            file=source.path,
            row=_first_row(missing) + 1,
            column=label_column,
            hint="Fill in the label of every stage",
        )

    is_won = known_flags(frame, columns.get("is_won"), file=source.path)
    is_closed = known_flags(frame, columns.get("is_closed"), file=source.path)
    is_closed = is_closed.fillna(is_won.where(is_won.fillna(False)))
    stages = pd.DataFrame(
        {
            "stage_id": ids,
            "label": labels,
            "pipeline": _column_text(frame, columns.get("pipeline")),
            "is_won": is_won,
            "is_closed": is_closed,
            "_deleted": deleted,
        }
    )[ids.notna()]
    # Current rows first, so that a deleted row only names an id that no current row has.
    stages = stages.sort_values("_deleted", kind="stable").drop_duplicates("stage_id")
    return StageLabels(
        file=source.path,
        stages=stages.drop(columns="_deleted").set_index("stage_id"),
        id_column=id_column,
    )


def check_labels_match(labels: StageLabels, ids: pd.Series) -> None:
    """Raise unless at least one of the stage ``ids`` is in ``labels``.

    ``ids`` are the stage ids of the deals and their history, as written. A labels table
    that names none of them almost surely comes from another HubSpot portal. When some
    match, the others are only warned about (:func:`stage_id_warnings`).

    Raises:
        InputError: ``ids`` has a non-empty id and none of them is in ``labels``.
    """
    present = ids.dropna().drop_duplicates()
    if present.empty or present.isin(labels.stages.index).any():
        return
    raise InputError(
        f"none of the {counted(len(present), 'stage id')} of the deals and their history is "
        f"in this stage labels table (for example {_listed(present)}; the table has "
        f"{_listed(labels.stages.index.to_series())})",
        file=labels.file,
        column=labels.id_column,
        hint=(
            "Give the deal_pipeline_stage table of the same HubSpot portal as the deals, "
            "or leave out --stage-labels to keep the stage ids as written"
        ),
    )


def history_layout(columns: Sequence[str]) -> str | None:
    """Return the layout of a history file judged by its column names, or None."""
    names = {normalise_name(column) for column in columns}
    # HubSpot's deal_property_history has deal_id and value too, but its time is "timestamp".
    if {"deal_id", "value"} <= names and names & {"date_entered", "_fivetran_start"}:
        return HUBSPOT_DEAL_STAGE
    if names & {"opportunityid", "opportunity_id"}:
        return SALESFORCE_OPPORTUNITY_HISTORY
    if "_fivetran_start" in names and names & {"stage_name", "stagename"}:
        return SALESFORCE_VERSIONS
    return None


def read_stage_history(path: str | Path, *, labels: StageLabels | None = None) -> StageHistory:
    """Read a stage history file (CSV or Parquet) of one of the layouts in the module docstring.

    With ``labels``, stage ids are named by their label and get their pipeline. Warnings
    count the skipped deleted rows, and the HubSpot stage ids that stay unnamed.

    Raises:
        InputError: the columns match no layout, a required column is missing, or a cell is
            invalid: an empty deal id or stage, an empty or invalid time, or a flag that is
            neither true nor false.
    """
    source = read_input(path)
    frame = source.frame
    layout = history_layout(list(frame.columns))
    if layout is None:
        raise InputError(
            "the columns match no stage history layout",
            file=source.path,
            hint=(
                "Give HubSpot's deal_stage table (deal_id, value, date_entered), Salesforce's "
                "opportunity history in Fivetran history mode (id, stage_name, "
                "_fivetran_start) or Salesforce's OpportunityHistory (OpportunityId, "
                f"StageName, CreatedDate). Columns found: {', '.join(frame.columns[:20])}"
            ),
        )
    columns = ColumnResolver(
        file=source.path,
        columns=list(frame.columns),
        aliases=HISTORY_ALIASES[layout],
        remedy=RENAME_REMEDY,
    )
    id_column = columns.require("deal_id", why="the deal that entered the stage")
    stage_column = columns.require("stage", why="the stage entered")
    kept = live_rows(
        frame,
        file=source.path,
        deleted=(columns.get("deleted"), columns.get("fivetran_deleted")),
    )
    # Skipped rows are blanked rather than dropped, so that errors keep the file's row numbers.
    live = frame.where(kept, axis=0)
    entered_at = _entry_times(live, columns, layout=layout, file=source.path)
    deal_ids = required_text(
        live[id_column],
        kept,
        file=source.path,
        column=id_column,
        what="deal id",
        hint="Fill in the deal id of every row, or remove the row",
    )
    stage_ids = required_text(
        live[stage_column],
        kept,
        file=source.path,
        column=stage_column,
        what="stage",
        hint="Fill in the stage of every row, or remove the row",
    )
    missing_time = kept & entered_at.isna()
    if missing_time.any():
        column = columns.get("entered_at") or columns.get("version_start")
        raise InputError(
            "stage entry time is missing",
            file=source.path,
            row=_first_row(missing_time) + 1,
            column=column,
            hint="Fill in the time the deal entered the stage, or remove the row",
        )

    rows = pd.DataFrame(
        {
            "deal_id": deal_ids,
            "stage_id": stage_ids,
            "entered_at": entered_at,
            "_row": np.arange(len(frame)),
        }
    )[kept]
    entries = merge_repeats(rows)
    entries = _named(entries, labels)

    warnings = []
    skipped = int((~kept).sum())
    if skipped:
        warnings.append(f"skipped {counted(skipped, 'deleted row')} of {source.path}")
    if layout == HUBSPOT_DEAL_STAGE:
        warnings += stage_id_warnings(entries["stage_id"], labels, where=source.path)
    return StageHistory(file=source.path, layout=layout, entries=entries, warnings=warnings)


def merge_repeats(rows: pd.DataFrame) -> pd.DataFrame:
    """Sort stage entries by deal and time, and drop each row that repeats the previous stage.

    ``rows`` has ``deal_id``, ``stage_id``, ``entered_at`` and ``_row`` (the file order, which
    breaks ties of time). The first row of each run of one stage is kept, so its time is the
    start of the stay. ``_row`` is dropped.
    """
    ordered = rows.sort_values(["deal_id", "entered_at", "_row"], kind="stable", ignore_index=True)
    previous = ordered.groupby("deal_id", sort=False)["stage_id"].shift(1)
    starts = (ordered["stage_id"] != previous).fillna(True).astype(bool)
    return ordered[starts].drop(columns="_row").reset_index(drop=True)


def stays_for_deals(history: StageHistory, deals: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return the ``deal_stages`` rows (without ``import_id``) of the imported deals.

    ``deals`` is the ``deals`` rows. An entry's ``pipeline`` is its stage's pipeline, else the
    deal's. Entries of deals that ``deals`` lacks are left out, and deals without entries get
    no rows; a warning counts each, with the first ids.
    """
    entries = history.entries
    known = entries["deal_id"].isin(deals["deal_id"])
    warnings = []
    if not known.all():
        strangers = entries.loc[~known, "deal_id"].drop_duplicates()
        entry_count = counted(int((~known).sum()), "stage entry", "stage entries")
        warnings.append(
            f"left out {entry_count} of {history.file} for "
            f"{counted(len(strangers), 'deal')} not among the imported deals "
            f"(for example {_listed(strangers)})"
        )
    without = deals.loc[~deals["deal_id"].isin(entries["deal_id"]), "deal_id"]
    if len(without):
        warnings.append(
            f"no deal_stages rows for {counted(len(without), 'deal')} without entries in "
            f"{history.file} (for example {_listed(without)})"
        )

    stays = entries[known].reset_index(drop=True)
    deal_pipelines = deals.set_index("deal_id")["pipeline"]
    stays["pipeline"] = stays["pipeline"].fillna(stays["deal_id"].map(deal_pipelines))
    following = stays.groupby("deal_id", sort=False)["entered_at"].shift(-1)
    stays["exited_at"] = pd.to_datetime(following, utc=True)
    stays["pipeline"] = stays["pipeline"].astype("string")
    return stays[HISTORY_COLUMNS], warnings


def stage_id_warnings(ids: pd.Series, labels: StageLabels | None, *, where: str) -> list[str]:
    """Return the warning about the stage ids of ``where`` that stay ids, if any.

    Without ``labels`` every id stays an id; with them, those the labels table lacks.
    """
    present = ids.dropna()
    if present.empty:
        return []
    if labels is None:
        return [
            f"the stages of {where} are HubSpot stage ids, kept as written (for example "
            f"{_listed(present.drop_duplicates())}); pass --stage-labels with HubSpot's "
            "deal_pipeline_stage table to name them"
        ]
    unknown = labels.unknown(present)
    if not unknown:
        return []
    return [
        f"kept {counted(len(unknown), 'stage id')} of {where} as written, because "
        f"{labels.file} lacks them (for example {_listed(pd.Series(unknown))})"
    ]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return ``count`` with ``noun``, in the plural (``noun`` + s unless given) when not 1."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _named(entries: pd.DataFrame, labels: StageLabels | None) -> pd.DataFrame:
    named = entries.copy()
    if labels is None:
        named["stage"] = named["stage_id"]
        named["pipeline"] = pd.Series(pd.NA, index=named.index, dtype="string")
    else:
        named["stage"] = labels.name(named["stage_id"])
        named["pipeline"] = named["stage_id"].map(labels.stages["pipeline"]).astype("string")
    return named[["deal_id", "stage_id", "stage", "pipeline", "entered_at"]]


def _entry_times(
    frame: pd.DataFrame, columns: ColumnResolver, *, layout: str, file: str
) -> pd.Series:
    """Parse the time of each row's stage entry; HubSpot's falls back to ``_fivetran_start``."""
    if layout != HUBSPOT_DEAL_STAGE:
        column = columns.require("entered_at", why="the time the deal entered the stage")
        return parse_crm_timestamps(frame, column, file=file)
    entered, start = columns.get("entered_at"), columns.get("version_start")
    times = parse_crm_timestamps(frame, entered, file=file)
    return times.fillna(parse_crm_timestamps(frame, start, file=file))


def _column_text(frame: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return text(frame[column])


def _first_row(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy(dtype=bool))[0])


def _listed(ids: pd.Series) -> str:
    return ", ".join(repr(str(value)) for value in ids.iloc[:MAX_LISTED_IDS])
