"""The company of each HubSpot deal, from deal-to-company associations.

HubSpot keeps a deal's company as an association rather than as a deal property, so
Fivetran's ``deal`` table has no company column. Two sources are read:

- Fivetran's ``deal_company`` table: ``deal_id``, ``company_id`` and, where present,
  ``type_id`` and ``category``. One row is one association. A deal has one row per company
  and association type, so the same pair may appear under several types.
- A deals export from HubSpot's CRM with an ``Associated Company IDs`` column (several ids
  separated by ``;``) or an ``Associated Company IDs (Primary)`` column, or both. The deal
  id is the ``Record ID`` column.

A deal with several companies takes one: its primary company, else the lowest company id
(compared as numbers where the ids are digits). A row of ``deal_company`` is primary when its
``type_id`` is 5 and its ``category`` is ``HUBSPOT_DEFINED`` (or empty), and an id of the
``(Primary)`` column is primary. Rows with ``_fivetran_deleted`` true are skipped.

NOTE: type id 5 for a deal's primary company and the export column names are not confirmed
by HubSpot's documentation. A table without type 5 still gets one company per deal, by the
lowest-id rule, and the warning counts the deals that had several.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.sources.columns import RENAME_REMEDY, ColumnResolver
from journeymap.sources.crm_history import counted
from journeymap.sources.readers import read_input
from journeymap.sources.values import STRING, live_rows, numbers, required_text, text

PRIMARY_TYPE_ID = 5
"""HubSpot's association type id of a deal's primary company."""
HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
"""Association category of HubSpot's own types. User-defined labels have their own type ids."""
ID_SEPARATORS = r"\s*[;,]\s*"
"""Separators between the ids of one export cell (HubSpot writes ``;``)."""
MAX_LISTED_DEALS = 3
"""Deals named in a warning at most."""

ASSOCIATION_ALIASES: dict[str, list[str]] = {
    "deal_id": ["deal_id", "dealid", "record_id", "hs_object_id"],
    "company_id": ["company_id", "companyid"],
    "primary_company_ids": ["associated_company_ids_(primary)", "primary_associated_company_id"],
    "company_ids": ["associated_company_ids", "associated_company_id"],
    "type_id": ["type_id", "association_type_id", "typeid"],
    "category": ["category", "association_category"],
    "deleted": ["_fivetran_deleted"],
}
"""Column names of an association file, by field, in order of preference."""
COMPANY_FIELDS = ("company_id", "primary_company_ids", "company_ids")
"""Fields of :data:`ASSOCIATION_ALIASES` that contain company ids."""


@dataclass(frozen=True)
class DealCompanies:
    """One company per deal, from one association file or from a deals export's columns.

    ``companies`` is the chosen company id (string), indexed by deal id. ``several`` has a
    ``deal_id`` and ``company_id`` row per company of each deal with more than one, the
    chosen company first.
    """

    file: str
    companies: pd.Series
    several: pd.DataFrame
    skipped: int = 0
    """Association rows left out because they were marked deleted."""


def read_deal_companies(path: str | Path) -> DealCompanies:
    """Read a deal-to-company association file (CSV or Parquet) into one company per deal.

    The layouts and the choice among several companies are in the module docstring.

    Raises:
        InputError: the file has no deal id column or no company column. Or a cell is
            invalid: an empty deal id, an empty ``company_id`` of a ``deal_company`` row, a
            ``type_id`` that is not a number, or a deleted flag that is neither true nor
            false. Deleted rows are not checked.
    """
    source = read_input(path)
    frame = source.frame
    columns = ColumnResolver(
        file=source.path,
        columns=list(frame.columns),
        aliases=ASSOCIATION_ALIASES,
        remedy=RENAME_REMEDY,
    )
    columns.require("deal_id", why="the deal of each association")
    columns.require_any(COMPANY_FIELDS, why="the company associated with each deal")
    kept = live_rows(frame, file=source.path, deleted=(columns.get("deleted"),))
    companies = deal_companies(frame, columns, kept, file=source.path)
    return replace(companies, skipped=int((~kept).sum()))


def deal_companies(
    frame: pd.DataFrame, columns: ColumnResolver, kept: pd.Series, *, file: str
) -> DealCompanies:
    """Choose one company per deal from the association columns of ``frame``'s kept rows.

    ``columns`` resolves the fields of :data:`ASSOCIATION_ALIASES`; fields that it lacks
    are not read, so a deals file's resolver may be passed for its export columns. A deal
    without any company is left out.

    Raises:
        InputError: a kept row has no deal id, a ``company_id`` cell is empty, or a
            ``type_id`` is not a number.
    """
    live = frame.where(kept, axis=0)
    id_column = columns.require("deal_id", why="the deal of each association")
    deal_ids = required_text(
        live[id_column],
        kept,
        file=file,
        column=id_column,
        what="deal id",
        hint="Fill in the deal id of every association, or remove the row",
    )

    parts = []
    company_column = columns.get("company_id")
    if company_column is not None:
        companies = required_text(
            live[company_column],
            kept,
            file=file,
            column=company_column,
            what="company id",
            hint="Fill in the company id of every association, or remove the row",
        )
        primary = _primary_types(live, columns, file=file)
        parts.append(
            pd.DataFrame({"deal_id": deal_ids, "company_id": companies, "primary": primary})
        )
    for name, is_primary in (("primary_company_ids", True), ("company_ids", False)):
        column = columns.get(name)
        if column is not None:
            listed = split_ids(text(live[column]))
            listed["deal_id"] = deal_ids.loc[listed.pop("row")].to_numpy()
            listed["primary"] = is_primary
            parts.append(listed)

    pairs = pd.concat(parts, ignore_index=True) if parts else _no_pairs()
    pairs = pairs[pairs["deal_id"].notna() & pairs["company_id"].notna()]
    chosen, several = choose_companies(pairs)
    return DealCompanies(file=file, companies=chosen, several=several)


def split_ids(cells: pd.Series) -> pd.DataFrame:
    """Split cells that list ids (``"12;34"``) into one row per id.

    Returns ``row`` (the cell's index label) and ``company_id`` (string). Empty cells and
    empty items give no rows.
    """
    items = cells.dropna().str.split(ID_SEPARATORS, regex=True).explode()
    items = items[items.notna() & (items != "")]
    return pd.DataFrame(
        {"row": items.index.to_numpy(), "company_id": items.astype(STRING).to_numpy()}
    )


def choose_companies(pairs: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Choose one company per deal from ``deal_id``, ``company_id`` and ``primary`` rows.

    Returns the chosen company id indexed by deal id, and the ``deal_id`` and
    ``company_id`` rows of the deals with more than one distinct company, each deal's in
    preference order. A primary company comes first, then the lowest id.
    """
    ids = pairs["company_id"].astype(STRING)
    digits = ids.str.fullmatch(r"\d+").fillna(False).astype(bool).to_numpy()
    ranked = pd.DataFrame(
        {
            "deal_id": pairs["deal_id"].astype(STRING).to_numpy(),
            "company_id": ids.to_numpy(),
            "secondary": ~pairs["primary"].astype(bool).to_numpy(),
            # Digit ids sort by their number: by length without leading zeros, then as text.
            "text_id": ~digits,
            "length": np.where(digits, ids.str.lstrip("0").str.len().fillna(0), 0),
        }
    )
    ranked = ranked.sort_values(
        ["deal_id", "secondary", "text_id", "length", "company_id"], kind="stable"
    ).drop_duplicates(["deal_id", "company_id"])
    chosen = ranked.drop_duplicates("deal_id").set_index("deal_id")["company_id"]
    several = ranked[ranked["deal_id"].duplicated(keep=False)][["deal_id", "company_id"]]
    return chosen.astype(STRING), several.reset_index(drop=True)


def several_companies_warning(several: pd.DataFrame, *, where: str) -> list[str]:
    """Return the warning about the deals of ``where`` that had several companies, if any.

    ``several`` is :attr:`DealCompanies.several`, or a part of it.
    """
    deals = several["deal_id"].drop_duplicates()
    if deals.empty:
        return []
    listed = []
    for deal in deals.iloc[:MAX_LISTED_DEALS]:
        companies = several.loc[several["deal_id"] == deal, "company_id"]
        listed.append(f"deal {deal!r}: {', '.join(repr(company) for company in companies)}")
    examples = "; ".join(listed)
    count = len(deals)
    return [
        f"{counted(count, 'deal')} of {where} {'has' if count == 1 else 'have'} several "
        "companies; each took its primary company, "
        f"else the lowest company id (for example {examples}; the first id was taken)"
    ]


def assign_companies(
    deals: pd.DataFrame, associations: DealCompanies, *, column: str | None
) -> tuple[pd.Series, list[str]]:
    """Return each deal's ``account_id`` with the associations applied, and warnings.

    ``deals`` is the ``deals`` rows, whose ``account_id`` comes from the deals file's
    ``column`` (None when it has none). A deal keeps a non-empty ``account_id`` and takes its
    associated company otherwise. Warnings count the deals whose column differs from the
    association, the imported deals with several companies, the associations of deals that
    ``deals`` lacks, and the deleted rows skipped.
    """
    associated = deals["deal_id"].map(associations.companies).astype(STRING)
    current = deals["account_id"].astype(STRING)
    accounts = current.fillna(associated)

    file = associations.file
    warnings = []
    differ = (current.notna() & associated.notna() & (current != associated)).fillna(False)
    if differ.any():
        first = int(np.flatnonzero(differ.to_numpy(dtype=bool))[0])
        warnings.append(
            f"kept the account of column {column!r} for {counted(int(differ.sum()), 'deal')} "
            f"whose company in {file} differs (for example deal "
            f"{deals['deal_id'].iloc[first]!r}: {current.iloc[first]!r}, not "
            f"{associated.iloc[first]!r})"
        )
    several = associations.several
    warnings += several_companies_warning(
        several[several["deal_id"].isin(deals["deal_id"])], where=file
    )
    known = associations.companies.index.isin(deals["deal_id"])
    strangers = associations.companies.index[~known]
    if len(strangers):
        listed = ", ".join(repr(str(deal)) for deal in strangers[:MAX_LISTED_DEALS])
        warnings.append(
            f"left out the companies of {counted(len(strangers), 'deal')} of {file} that are "
            f"not among the imported deals (for example {listed})"
        )
    if associations.skipped:
        noun = "row" if associations.skipped == 1 else "rows"
        warnings.append(f"skipped {associations.skipped:,} deleted {noun} of {file}")
    return accounts, warnings


def _no_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": pd.Series(dtype=STRING),
            "company_id": pd.Series(dtype=STRING),
            "primary": pd.Series(dtype=bool),
        }
    )


def _primary_types(frame: pd.DataFrame, columns: ColumnResolver, *, file: str) -> pd.Series:
    """Return whether each ``deal_company`` row is a primary association (module docstring)."""
    type_column = columns.get("type_id")
    if type_column is None:
        return pd.Series(False, index=frame.index)
    type_ids = numbers(
        frame[type_column], file=file, column=type_column, default=None, what="type id"
    )
    primary = (type_ids == PRIMARY_TYPE_ID).fillna(False).astype(bool)
    category_column = columns.get("category")
    if category_column is not None:
        categories = text(frame[category_column]).str.upper()
        primary &= (categories.isna() | (categories == HUBSPOT_DEFINED)).fillna(False).astype(bool)
    return primary
