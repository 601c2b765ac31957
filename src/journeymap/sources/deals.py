"""Import CRM deals (CSV or Parquet) into the ``deals`` and ``deal_stages`` tables.

Input: one row per deal with its id, current stage and, optionally, account, amount, owner,
product, pipeline, a start date (engage or create date) and a close date. Column names of the
common exports are recognised (``opportunity_id``, ``deal_stage``, ``engage_date``,
``close_value`` ...; HubSpot's ``dealstage``, ``createdate``, ``closedate``, ``amount``), and
``--map FIELD=COLUMN`` names any other column. An accounts file (``account``, ``sector``,
``employees``, ``office_location``; or Salesforce's ``account`` and HubSpot's ``company``
tables, see :mod:`journeymap.sources.accounts`) adds ``accounts`` rows, and a products file
is read only to check product spellings.

Output: one ``deals`` row per input row, including deals with no account (null
``account_id``). A stage in ``won_stages`` is won and closed, one in ``lost_stages`` is closed
and not won, and any other stage is open. Stage names are compared case-insensitively.

A CRM export is a snapshot, so a newer export replaces what the store has: the stored
``deals`` rows with the deal ids of the import, all ``deal_stages`` rows of those deals, and
the ``accounts`` rows with the account ids of the accounts file are deleted in the import's
transaction. Deals and accounts that the new files lack stay as they are.

The tables that Fivetran writes are read as they are: HubSpot's ``deal`` (``deal_id``,
``deal_pipeline_id``, ``deal_pipeline_stage_id``, ``property_amount``, ``property_closedate``,
``property_createdate``, ``property_dealname``, ``owner_id``) and Salesforce's ``opportunity``
(``id``, ``account_id``, ``stage_name``, ``amount``, ``close_date``, ``created_date``, ``is_won``,
``is_closed``, ``owner_id``, ``name``). Rows marked deleted (``is_deleted`` or
``_fivetran_deleted`` true) or replaced by a newer version (``_fivetran_active`` false) are
skipped, as :mod:`journeymap.sources.contacts` skips them, and a warning counts them. Where the
file has ``is_won`` and ``is_closed`` flags (or HubSpot's ``hs_is_closed_won`` and
``hs_is_closed``), a non-empty flag decides won, lost or open. Else the flags of the deal's
stage in a stage labels table decide, and else the stage name does.

NOTE: Salesforce's ``type`` and ``lead_source`` are not read, because ``deals`` has no column
for them.

A deal's ``account_id`` is its account column (``account``, ``account_id`` ...) as written.
HubSpot deals have no such column, because HubSpot keeps a deal's company as an association:
an export's ``Associated Company IDs (Primary)`` or ``Associated Company IDs`` column, or
Fivetran's ``deal_company`` table given as ``deal_companies_file``, then fills the deals whose
account column is missing or empty. A deal with several companies takes its primary company,
else the lowest company id (see :mod:`journeymap.sources.crm_associations`), and a warning
counts such deals.

When a stage history file is given (``history_file``: HubSpot's ``deal_stage``, Salesforce's
opportunity history or ``OpportunityHistory``, see :mod:`journeymap.sources.crm_history`),
``deal_stages`` holds its stays, and a deal whose stage cell is empty takes the stage of its
last history entry. A closed deal without a close date takes the time it entered its closing
stage: the entry time of its last stay, when that stay is in the deal's stage. A warning
counts the deals filled, and another the closed deals still without a date. HubSpot's stage
ids are named by a ``deal_pipeline_stage`` table (``stage_labels_file``) in ``deals`` and
``deal_stages`` alike, and a table that names none of the ids is an error. An empty stage that
no history fills is an error. Without a history file, when the input has stage-entry columns
(``Date entered "<stage> (<pipeline>)"`` and the like, see
:mod:`journeymap.sources.deal_history`), ``deal_stages`` holds that history. Otherwise
``deal_stages`` rows are derived from the dates. A closed deal with a start date was in
``start_stage`` (default ``Engaging``) from that date until its close date, and in its final
stage from the close date on. An open deal with a start date has been in its current stage
since that date. A deal without a start date (such as a ``Prospecting`` deal, which the input
gives no date for) has no start row. A closed deal without a close date has no ``deal_stages``
rows at all, and a warning counts such deals.

Data-quality problems that do not block the import are returned as warnings and logged, and
the rows are kept as written: a product spelt two ways (``GTXPro`` and ``GTX Pro``) and a
sector that looks like a typo of a known industry (``technolgy``).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.accounts import read_accounts as read_accounts
from journeymap.sources.accounts import read_accounts_file
from journeymap.sources.batch import (
    ImportResult,
    Replacement,
    check_not_imported,
    write_import,
)
from journeymap.sources.columns import RENAME_REMEDY, ColumnResolver, normalise_name
from journeymap.sources.crm_associations import (
    assign_companies,
    deal_companies,
    read_deal_companies,
)
from journeymap.sources.crm_history import (
    StageHistory,
    StageLabels,
    check_labels_match,
    counted,
    read_stage_history,
    read_stage_labels,
    stage_id_warnings,
    stays_for_deals,
)
from journeymap.sources.deal_history import history_stays, read_stage_entries, stage_columns
from journeymap.sources.readers import read_input
from journeymap.sources.timestamps import parse_crm_timestamps, parse_timestamps
from journeymap.sources.values import known_flags, live_rows, numbers, text, unique_ids
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

DEAL_ALIASES: dict[str, list[str]] = {
    "deal_id": ["opportunity_id", "deal_id", "id", "record_id", "hs_object_id"],
    "account_id": ["account", "account_id", "company", "accountid"],
    "primary_company_ids": ["associated_company_ids_(primary)"],
    "company_ids": ["associated_company_ids"],
    "name": ["name", "deal_name", "dealname", "opportunity_name", "property_dealname"],
    "stage": [
        "deal_stage",
        "stage",
        "dealstage",
        "stagename",
        "stage_name",
        "deal_pipeline_stage_id",
    ],
    "created_at": [
        "engage_date",
        "created_at",
        "createdate",
        "create_date",
        "createddate",
        "created_date",
        "property_createdate",
    ],
    "closed_at": ["close_date", "closedate", "closed_at", "property_closedate"],
    "amount": ["close_value", "amount", "property_amount"],
    "currency": [
        "currency",
        "deal_currency_code",
        "currencyisocode",
        "currency_iso_code",
    ],
    "owner": ["sales_agent", "owner", "hubspot_owner_id", "ownerid", "owner_id"],
    "product": ["product"],
    "pipeline": ["pipeline", "deal_pipeline_id"],
    "lost_reason": ["lost_reason", "closed_lost_reason", "property_closed_lost_reason"],
    "is_won": ["is_won", "iswon", "hs_is_closed_won", "property_hs_is_closed_won"],
    "is_closed": ["is_closed", "isclosed", "hs_is_closed", "property_hs_is_closed"],
    "deleted": ["is_deleted", "isdeleted"],
    "fivetran_deleted": ["_fivetran_deleted"],
    "active": ["_fivetran_active"],
}
PRODUCT_ALIASES: dict[str, list[str]] = {"product": ["product", "product_name", "name"]}

WON_STAGES: tuple[str, ...] = ("Won", "Closed Won", "closedwon")
LOST_STAGES: tuple[str, ...] = ("Lost", "Closed Lost", "closedlost")
START_STAGE = "Engaging"
HUBSPOT_STAGE_ID_COLUMNS = frozenset({"deal_pipeline_stage_id"})
"""Deal columns that contain HubSpot stage ids rather than stage names."""

# Industry names that a sector column is checked against: a sector that is not one of them
# but differs from one by a letter or two is reported as a likely typo.
KNOWN_INDUSTRIES: tuple[str, ...] = (
    "agriculture",
    "construction",
    "consulting",
    "education",
    "employment",
    "energy",
    "entertainment",
    "finance",
    "government",
    "healthcare",
    "hospitality",
    "insurance",
    "manufacturing",
    "marketing",
    "media",
    "medical",
    "retail",
    "services",
    "software",
    "technology",
    "telecommunications",
    "transportation",
)
TYPO_SIMILARITY = 0.85
"""Minimum difflib ratio between a sector and a known industry for a typo warning."""


def import_deals(
    store: Store,
    deals_file: str | Path,
    *,
    accounts_file: str | Path | None = None,
    products_file: str | Path | None = None,
    history_file: str | Path | None = None,
    stage_labels_file: str | Path | None = None,
    deal_companies_file: str | Path | None = None,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    currency: str = "USD",
    won_stages: Sequence[str] = WON_STAGES,
    lost_stages: Sequence[str] = LOST_STAGES,
    start_stage: str = START_STAGE,
) -> ImportResult:
    """Import a deals file, and optionally its accounts and stage history, in one transaction.

    ``mapping`` and ``separator`` apply to the deals file; the accounts, products, history,
    stage labels and deal companies files are recognised by their column names.
    ``history_file`` is a long stage history table, ``stage_labels_file`` HubSpot's
    ``deal_pipeline_stage`` table and ``deal_companies_file`` HubSpot's ``deal_company``
    table or a deals export with associated company ids (module docstring). ``currency``
    applies to deals without a currency column. The import is identified by the deals
    file's bytes, so importing the same deals file again is rejected whatever other files
    come with it. Another deals file replaces the stored deals, stays and accounts with the
    same ids (module docstring), and the result counts the rows replaced.

    Raises:
        InputError: a file is missing, or it has no id or stage column, or a cell is
            invalid. Invalid cells are an empty or duplicate deal id, an empty stage that no
            history fills, a date that is neither ISO 8601 nor epoch milliseconds, a negative
            or non-numeric amount, a flag that is neither true nor false, and a close date
            before the start date. The history and labels files are checked as
            :func:`journeymap.sources.crm_history.read_stage_history` and
            :func:`journeymap.sources.crm_history.read_stage_labels` describe, the deal
            companies file as :func:`journeymap.sources.crm_associations.read_deal_companies`
            does, and the accounts file as
            :func:`journeymap.sources.accounts.read_accounts_file` does. A stage labels
            file that names none of the stage ids of the deals and the history is an error.
        AlreadyImportedError: the deals file's bytes were imported before.
        StoreError: rows to replace are in a store that is not DuckDB.
    """
    source = read_input(deals_file, separator=separator)
    import_id = check_not_imported(store, kind="deals", sha256=source.sha256, file=source.path)

    columns = ColumnResolver(
        file=source.path, columns=list(source.frame.columns), aliases=DEAL_ALIASES, mapping=mapping
    )
    labels = read_stage_labels(stage_labels_file) if stage_labels_file is not None else None
    stage_history = (
        read_stage_history(history_file, labels=labels) if history_file is not None else None
    )
    deals = read_deals_frame(
        source.frame,
        columns,
        file=source.path,
        currency=currency,
        won_stages=won_stages,
        lost_stages=lost_stages,
        labels=labels,
        history=stage_history,
    )
    warnings = _skipped_warnings(len(source.frame) - len(deals))
    warnings += _deal_stage_id_warnings(deals, columns, labels, file=source.path)
    deals["account_id"], company_warnings = _associated_accounts(
        deals, source.frame, columns, deal_companies_file, file=source.path
    )
    warnings += company_warnings

    history = stage_columns(list(source.frame.columns), list(deals["pipeline"].dropna().unique()))
    if stage_history is not None:
        stages, history_warnings = stays_for_deals(stage_history, deals)
        warnings += stage_history.warnings + history_warnings
        deals["closed_at"], close_warnings = _close_dates_from_stays(
            deals, stages, file=stage_history.file
        )
        warnings += close_warnings
    elif history:
        entries = read_stage_entries(
            source.frame,
            history,
            lambda values, column: parse_timestamps(values, file=source.path, column=column),
        )
        stages = history_stays(deals["deal_id"], deals["pipeline"], entries)
    else:
        stages = derive_stages(deals, start_stage=start_stage)
    tables: dict[str, pd.DataFrame] = {"deals": deals, "deal_stages": stages}
    deal_ids = tuple(deals["deal_id"])
    replace = [
        Replacement("deals", "deal_id", deal_ids),
        Replacement("deal_stages", "deal_id", deal_ids),
    ]

    warnings += _undated_warnings(deals, history=stage_history)
    product_column = columns.get("product")
    deal_products = text(source.frame[product_column]) if product_column else None
    warnings += product_warnings(deal_products, _read_products(products_file))
    if accounts_file is not None:
        accounts = read_accounts_file(accounts_file)
        tables["accounts"] = accounts.rows
        replace.append(Replacement("accounts", "account_id", tuple(accounts.rows["account_id"])))
        warnings += accounts.warnings
        warnings += sector_warnings(accounts.rows["industry"])
        warnings += _unknown_account_warnings(deals, accounts.rows)

    return write_import(
        store,
        import_id=import_id,
        kind="deals",
        file=source.path,
        sha256=source.sha256,
        seq_start=store.next_seq(),
        tables=tables,
        warnings=warnings,
        replace=replace,
    )


def read_deals_frame(
    frame: pd.DataFrame,
    columns: ColumnResolver,
    *,
    file: str,
    currency: str = "USD",
    won_stages: Sequence[str] = WON_STAGES,
    lost_stages: Sequence[str] = LOST_STAGES,
    labels: StageLabels | None = None,
    history: StageHistory | None = None,
) -> pd.DataFrame:
    """Turn deal rows into ``deals`` rows (without ``import_id``), one per current input row.

    Deleted rows and replaced versions are left out (module docstring). ``account_id`` is
    the account column; the associated companies are applied later. ``name`` is the deal
    name column or, in files without one, the product. Amounts are in currency units, and an
    empty amount stays null. Dates become UTC timestamps. An empty stage cell takes the stage
    of the deal's last ``history`` entry. ``labels`` name stage ids, and their closed and won
    flags apply where the row has none.

    Raises:
        InputError: see :func:`import_deals`.
    """
    id_column = columns.require("deal_id", why="the CRM id of each deal")
    stage_column = columns.require("stage", why="the current stage of each deal")
    kept = _current_rows(frame, columns, file=file)
    # Skipped rows are blanked rather than dropped, so that errors keep the file's row numbers.
    live = frame.where(kept, axis=0)

    def column_text(field: str) -> pd.Series:
        name = columns.get(field)
        return text(live[name]) if name else pd.Series(pd.NA, index=frame.index, dtype="string")

    rows = pd.DataFrame(index=frame.index)
    rows["deal_id"] = unique_ids(frame[id_column], file=file, column=id_column, kept=kept)
    rows["account_id"] = column_text("account_id")
    rows["name"] = column_text("name").fillna(column_text("product"))
    rows["amount"] = _amounts(live, columns.get("amount"), file=file)
    rows["currency"] = column_text("currency").str.upper().fillna(currency.strip().upper())
    rows["pipeline"] = column_text("pipeline")
    rows["owner"] = column_text("owner")
    rows["lost_reason"] = column_text("lost_reason")

    stage_ids = text(live[stage_column])
    if history is not None:
        stage_ids = stage_ids.fillna(rows["deal_id"].map(history.latest_stage_ids()))
    missing = kept & stage_ids.isna()
    if missing.any():
        row = _first_row(missing)
        message = f"stage is missing for deal {rows['deal_id'].iloc[row]!r}"
        if history is None:
            hint = (
                "Fill in the stage of every deal, or pass a stage history (--history) whose "
                "last entry for the deal gives it"
            )
        else:
            message += f", and {history.file} has no stage entries for it"
            hint = "Fill in the deal's stage, or add its stage entries to the history file"
        raise InputError(message, file=file, row=row + 1, column=stage_column, hint=hint)
    if labels is not None:
        history_ids = history.entries["stage_id"] if history is not None else None
        check_labels_match(labels, pd.concat([stage_ids[kept], history_ids]))
    stages = labels.name(stage_ids) if labels is not None else stage_ids
    rows["stage"] = stages
    rows["is_won"], rows["is_closed"] = _outcomes(
        live,
        columns,
        stages,
        stage_ids,
        labels,
        file=file,
        won_stages=won_stages,
        lost_stages=lost_stages,
    )

    rows["created_at"] = _optional_timestamps(live, columns.get("created_at"), file=file)
    rows["closed_at"] = _optional_timestamps(live, columns.get("closed_at"), file=file)
    _check_date_order(rows, columns, file=file)
    return rows[kept].reset_index(drop=True)


def _outcomes(
    frame: pd.DataFrame,
    columns: ColumnResolver,
    stages: pd.Series,
    stage_ids: pd.Series,
    labels: StageLabels | None,
    *,
    file: str,
    won_stages: Sequence[str],
    lost_stages: Sequence[str],
) -> tuple[pd.Series, pd.Series]:
    """Return each deal's won and closed flags.

    Each flag comes from the first source that has it: the row's own ``is_won`` or
    ``is_closed`` cell, then the stage's flags in ``labels``, then the stage name. A won deal
    is closed.
    """
    named_won = _stage_in(stages, won_stages)
    named_closed = named_won | _stage_in(stages, lost_stages)
    is_won = known_flags(frame, columns.get("is_won"), file=file)
    is_closed = known_flags(frame, columns.get("is_closed"), file=file)
    if labels is not None:
        is_won = is_won.fillna(stage_ids.map(labels.stages["is_won"]).astype("boolean"))
        is_closed = is_closed.fillna(stage_ids.map(labels.stages["is_closed"]).astype("boolean"))
    won = is_won.fillna(named_won).astype(bool)
    closed = is_closed.fillna(named_closed).astype(bool) | won
    return won, closed


def derive_stages(deals: pd.DataFrame, *, start_stage: str = START_STAGE) -> pd.DataFrame:
    """Return ``deal_stages`` rows derived from each deal's start and close dates.

    The rules are in the module docstring. Within a deal, the ``exited_at`` of one stage is
    the ``entered_at`` of the next, and the last stage has a null ``exited_at``.
    """
    columns = ["deal_id", "pipeline", "stage", "entered_at", "exited_at"]
    has_start = deals["created_at"].notna()
    has_close = deals["closed_at"].notna()
    closed = deals["is_closed"]

    open_started = deals[~closed & has_start]
    current = pd.DataFrame(
        {
            "deal_id": open_started["deal_id"],
            "pipeline": open_started["pipeline"],
            "stage": open_started["stage"],
            "entered_at": open_started["created_at"],
            "exited_at": pd.NaT,
        }
    )

    closed_started = deals[closed & has_close & has_start]
    # A close date without a time may fall before the creation time of the same day. The
    # start stay then lasts no time, rather than ending before it begins.
    started = closed_started["created_at"].where(
        closed_started["created_at"] <= closed_started["closed_at"], closed_started["closed_at"]
    )
    before_close = pd.DataFrame(
        {
            "deal_id": closed_started["deal_id"],
            "pipeline": closed_started["pipeline"],
            "stage": start_stage,
            "entered_at": started,
            "exited_at": closed_started["closed_at"],
        }
    )

    closed_dated = deals[closed & has_close]
    final = pd.DataFrame(
        {
            "deal_id": closed_dated["deal_id"],
            "pipeline": closed_dated["pipeline"],
            "stage": closed_dated["stage"],
            "entered_at": closed_dated["closed_at"],
            "exited_at": pd.NaT,
        }
    )

    parts = [part[columns] for part in (current, before_close, final) if len(part)]
    if not parts:
        return pd.DataFrame(columns=columns)
    stages = pd.concat(parts, ignore_index=True)
    stages["exited_at"] = pd.to_datetime(stages["exited_at"], utc=True)
    return stages.sort_values(["deal_id", "entered_at"], kind="stable", ignore_index=True)


def product_warnings(deal_products: pd.Series | None, catalogue: pd.Series | None) -> list[str]:
    """Return one warning per product name written more than one way.

    Two names are the same product when they are equal after removing spaces and case
    (``GTXPro`` and ``GTX Pro``). Names are compared across the deal rows and the products
    file; nothing is renamed.
    """
    spellings: dict[str, dict[str, list[str]]] = {}
    for where, names in (("deals file", deal_products), ("products file", catalogue)):
        if names is None:
            continue
        for name, count in names.dropna().value_counts().items():
            key = _spelling_key(str(name))
            rows = f"{count:,} row{'' if count == 1 else 's'} of the {where}"
            spellings.setdefault(key, {}).setdefault(str(name), []).append(rows)

    warnings = []
    for variants in spellings.values():
        if len(variants) < 2:
            continue
        listed = "; ".join(
            f"{name!r} ({', '.join(places)})" for name, places in sorted(variants.items())
        )
        warnings.append(f"product name written {len(variants)} ways: {listed}")
    return warnings


def sector_warnings(sectors: pd.Series, known: Iterable[str] = KNOWN_INDUSTRIES) -> list[str]:
    """Return one warning per sector that looks like a misspelt industry name.

    A sector is suspect when it is neither a known industry nor another sector of the file,
    compared in lower case, but is at least ``TYPO_SIMILARITY`` alike to one of them.
    Sectors spelt the same but for spaces and case are reported too.
    """
    counts = sectors.dropna().value_counts()
    names = [str(name) for name in counts.index]
    vocabulary = {word.lower() for word in known}
    warnings = []
    for name in names:
        lower = name.lower()
        if lower in vocabulary:
            continue
        others = [other.lower() for other in names if other != name and counts[other] > 1]
        candidates = sorted(vocabulary | set(others))
        close = difflib.get_close_matches(lower, candidates, n=1, cutoff=TYPO_SIMILARITY)
        if close:
            warnings.append(
                f"sector {name!r} ({counts[name]:,} accounts) looks like a misspelling of "
                f"{close[0]!r}; it was kept as written"
            )
    keys: dict[str, list[str]] = {}
    for name in names:
        keys.setdefault(_spelling_key(name), []).append(name)
    for variants in keys.values():
        if len(variants) > 1:
            warnings.append(
                f"sector written {len(variants)} ways: {', '.join(map(repr, variants))}"
            )
    return warnings


def _spelling_key(name: str) -> str:
    return "".join(name.split()).casefold()


def _read_products(path: str | Path | None) -> pd.Series | None:
    if path is None:
        return None
    source = read_input(path)
    columns = ColumnResolver(
        file=source.path,
        columns=list(source.frame.columns),
        aliases=PRODUCT_ALIASES,
        remedy=RENAME_REMEDY,
    )
    return text(source.frame[columns.require("product", why="the product name")])


def _skipped_warnings(skipped: int) -> list[str]:
    if not skipped:
        return []
    return [f"skipped {counted(skipped, 'deleted or replaced row')}"]


def _deal_stage_id_warnings(
    deals: pd.DataFrame, columns: ColumnResolver, labels: StageLabels | None, *, file: str
) -> list[str]:
    """Return the warning about HubSpot stage ids of the deals that no label names."""
    stage_column = columns.get("stage")
    if stage_column is None or normalise_name(stage_column) not in HUBSPOT_STAGE_ID_COLUMNS:
        return []
    stages = deals["stage"]
    if labels is not None:
        # The named stages are labels now, so the rest are ids that the labels table lacks.
        stages = stages[~stages.isin(labels.stages["label"])]
    return stage_id_warnings(stages, labels, where=file)


def _close_dates_from_stays(
    deals: pd.DataFrame, stays: pd.DataFrame, *, file: str
) -> tuple[pd.Series, list[str]]:
    """Fill the empty ``closed_at`` of closed deals from their stage history.

    A closed deal without a close date takes the entry time of its last stay when that
    stay's stage is the deal's stage (compared case-insensitively), because the deal entered
    its closing stage then. ``stays`` are the ``deal_stages`` rows, in time order per deal.
    Returns the close dates and a warning that counts the deals filled.
    """
    last = stays.groupby("deal_id", sort=False).tail(1).set_index("deal_id")
    last_stage = deals["deal_id"].map(last["stage"]).astype("string")
    entered = pd.to_datetime(deals["deal_id"].map(last["entered_at"]), utc=True)
    in_closing_stage = (last_stage.str.casefold() == deals["stage"].str.casefold()).fillna(False)
    fill = deals["is_closed"] & deals["closed_at"].isna() & in_closing_stage.astype(bool)
    if not fill.any():
        return deals["closed_at"], []
    closed_at = deals["closed_at"].where(~fill, entered)
    return closed_at, [
        f"closed_at taken from stage history for {counted(int(fill.sum()), 'deal')} without "
        f"a close date: the time each entered its closing stage in {file}"
    ]


def _undated_warnings(deals: pd.DataFrame, *, history: StageHistory | None) -> list[str]:
    """Return the warning about closed deals that are still without a close date."""
    undated = deals["is_closed"] & deals["closed_at"].isna()
    if not undated.any():
        return []
    count = f"closed deals without a close date: {int(undated.sum()):,}"
    if history is None:
        return [f"{count}; they have no deal_stages rows"]
    examples = ", ".join(repr(deal) for deal in deals.loc[undated, "deal_id"].iloc[:3])
    return [
        f"{count}; {history.file} does not show when they entered their closing stage, so "
        f"their closed_at is empty (for example {examples})"
    ]


def _unknown_account_warnings(deals: pd.DataFrame, accounts: pd.DataFrame) -> list[str]:
    known = set(accounts["account_id"].dropna())
    unknown = deals["account_id"].dropna()
    unknown = unknown[~unknown.isin(known)]
    if unknown.empty:
        return []
    examples = ", ".join(repr(name) for name in sorted(set(unknown))[:3])
    return [
        f"{counted(len(unknown), 'deal')} {'has' if len(unknown) == 1 else 'have'} an "
        f"account_id that the accounts file lacks (for example {examples}); "
        f"{'its' if len(unknown) == 1 else 'their'} account_id is kept"
    ]


def _current_rows(frame: pd.DataFrame, columns: ColumnResolver, *, file: str) -> pd.Series:
    """Return the mask of the deal rows that are neither deleted nor replaced versions."""
    return live_rows(
        frame,
        file=file,
        active=columns.get("active"),
        deleted=(columns.get("deleted"), columns.get("fivetran_deleted")),
    )


def _associated_accounts(
    deals: pd.DataFrame,
    frame: pd.DataFrame,
    columns: ColumnResolver,
    deal_companies_file: str | Path | None,
    *,
    file: str,
) -> tuple[pd.Series, list[str]]:
    """Fill the empty ``account_id`` of deals from their associated companies.

    The deals file's association columns come first, then ``deal_companies_file``. Returns
    the account ids and the warnings of both.
    """
    accounts = deals["account_id"]
    warnings: list[str] = []
    source = columns.get("account_id")
    if columns.get("primary_company_ids") or columns.get("company_ids"):
        listed = deal_companies(frame, columns, _current_rows(frame, columns, file=file), file=file)
        accounts, listed_warnings = assign_companies(deals, listed, column=source)
        warnings += listed_warnings
        source = source or columns.get("primary_company_ids") or columns.get("company_ids")
    if deal_companies_file is not None:
        associations = read_deal_companies(deal_companies_file)
        with_accounts = deals.assign(account_id=accounts)
        accounts, association_warnings = assign_companies(
            with_accounts, associations, column=source
        )
        warnings += association_warnings
    return accounts, warnings


def _stage_in(stages: pd.Series, names: Sequence[str]) -> pd.Series:
    wanted = {name.strip().casefold() for name in names}
    return stages.str.casefold().isin(wanted).fillna(False).astype(bool)


def _first_row(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _amounts(frame: pd.DataFrame, column: str | None, *, file: str) -> pd.Series:
    if column is None:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return numbers(frame[column], file=file, column=column, default=None, what="amount")


def _optional_timestamps(frame: pd.DataFrame, column: str | None, *, file: str) -> pd.Series:
    if column is None:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return parse_crm_timestamps(frame, column, file=file)


def _check_date_order(rows: pd.DataFrame, columns: ColumnResolver, *, file: str) -> None:
    # Days are compared, because a close date often has no time (Salesforce's CloseDate is a
    # date) while the creation date does. So a deal created and closed on one day is in order.
    closed_day = rows["closed_at"].dt.floor("D")
    early = (closed_day < rows["created_at"].dt.floor("D")).fillna(False).astype(bool)
    if early.any():
        row = _first_row(early)
        raise InputError(
            f"close date {rows['closed_at'].iloc[row]:%Y-%m-%d} is before the start date "
            f"{rows['created_at'].iloc[row]:%Y-%m-%d}",
            file=file,
            row=row + 1,
            column=columns.get("closed_at"),
            hint="Fix the dates of this deal; a deal cannot close before it starts",
        )
