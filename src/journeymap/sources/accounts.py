"""Read an accounts file (CSV or Parquet) into ``accounts`` rows.

Input: one row per account, from a hand-made list, a CRM export, or the tables that Fivetran
writes: Salesforce's ``account`` (``id``, ``name``, ``industry``, ``number_of_employees``,
``billing_country``, ``is_deleted``, ``_fivetran_active``) and HubSpot's ``company``
(``id``, ``property_name``, ``property_industry``, ``property_numberofemployees``,
``property_country``, ``is_deleted``). Column names are compared case-insensitively, with
spaces and dashes read as underscores.

The key of an account (``account_id``) is its id when the file has an id column (``id``,
``account_id``, ``company_id`` and the like). Deals whose account column contains the CRM
id (Salesforce's ``opportunity.account_id``, HubSpot's associated company id) then find
their account. The name column (``account``, ``company``, ``name``, ``property_name`` ...)
is then the display name. A file without an id column is keyed by the name as written, so
that deals name their account by the same text.

Rows marked deleted (``is_deleted`` or ``_fivetran_deleted`` true) or replaced by a newer
version (``_fivetran_active`` false) are skipped, as the deals and contacts importers skip
them, and a warning counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from journeymap.common.errors import InputError
from journeymap.sources.columns import ColumnResolver
from journeymap.sources.readers import read_input
from journeymap.sources.timestamps import parse_crm_timestamps
from journeymap.sources.values import live_rows, numbers, text, unique_ids

ACCOUNT_ALIASES: dict[str, list[str]] = {
    "account_id": [
        "id",
        "account_id",
        "company_id",
        "accountid",
        "companyid",
        "record_id",
        "hs_object_id",
    ],
    "name": ["account", "company", "name", "account_name", "company_name", "property_name"],
    "domain": ["domain", "website", "property_domain", "property_website"],
    "industry": ["sector", "industry", "property_industry"],
    "employees": [
        "employees",
        "numberofemployees",
        "number_of_employees",
        "property_numberofemployees",
    ],
    "region": [
        "office_location",
        "region",
        "country",
        "billing_country",
        "billingcountry",
        "property_country",
        "country/region",
    ],
    "plan": [
        "plan",
        "tier",
        "subscription_plan",
        "product_tier",
        "plan_name",
        "pricing_plan",
        "property_plan",
    ],
    "churned_at": [
        "churned_at",
        "churn_date",
        "churned_date",
        "churned_on",
        "cancelled_at",
        "canceled_at",
        "cancellation_date",
        "cancelation_date",
    ],
    "deleted": ["is_deleted", "isdeleted"],
    "fivetran_deleted": ["_fivetran_deleted"],
    "active": ["_fivetran_active"],
}
"""Column names of each ``accounts`` field, in order of preference."""

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "account_id",
    "name",
    "domain",
    "industry",
    "employees",
    "region",
    "plan",
    "churned_at",
)
"""Columns of the rows that :func:`read_accounts` returns."""


@dataclass(frozen=True)
class AccountsFile:
    """The ``accounts`` rows of one file, and the warnings about the rows it skipped."""

    file: str
    rows: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def read_accounts(path: str | Path) -> pd.DataFrame:
    """Read an accounts file into ``accounts`` rows (without ``import_id``).

    The rows are those of :func:`read_accounts_file`, without its warnings.

    Raises:
        InputError: see :func:`read_accounts_file`.
    """
    return read_accounts_file(path).rows


def read_accounts_file(path: str | Path) -> AccountsFile:
    """Read an accounts file into ``accounts`` rows (without ``import_id``) and warnings.

    ``account_id`` is the id column as written, else the name column (module docstring).
    ``name`` is the name column, null where it is empty. ``industry`` is the sector as
    written (typos are only reported), ``region`` the office location or country, ``plan``
    the subscription plan or tier, and ``employees`` a whole number or null. ``churned_at``
    is the date the customer cancelled, parsed as the deal dates are (ISO 8601 or epoch
    milliseconds), and null when the cell is empty or the file has no churn column. The
    default deal and lifecycle fields of HubSpot and Salesforce hold no churn date, so it
    comes from a column of the file: ``churned_at``, ``churn_date``, ``cancelled_at``,
    ``cancellation_date`` and similar names are recognised.

    Deleted and replaced rows are left out (module docstring), and a warning counts them.

    Raises:
        InputError: the file has neither an id nor a name column, or a deleted or active
            flag is neither true nor false. Also when a cell of a kept row is invalid: an
            empty or duplicate account id (or name, in a file without ids), an employee
            count that is not a whole number of zero or more, or a churn date in neither
            ISO 8601 nor epoch milliseconds.
    """
    source = read_input(path)
    frame = source.frame
    columns = ColumnResolver(file=source.path, columns=list(frame.columns), aliases=ACCOUNT_ALIASES)
    id_column = columns.get("account_id")
    key_column = id_column or columns.get("name")
    if key_column is None:
        accepted = ", ".join(ACCOUNT_ALIASES["account_id"] + ACCOUNT_ALIASES["name"])
        raise InputError(
            "missing column for the account id or name that deals refer to; accepted names: "
            f"{accepted}",
            file=source.path,
            column="account_id",
            hint=f"Rename the column. Columns found: {', '.join(map(str, frame.columns[:20]))}",
        )
    kept = live_rows(
        frame,
        file=source.path,
        active=columns.get("active"),
        deleted=(columns.get("deleted"), columns.get("fivetran_deleted")),
    )
    # Skipped rows are blanked rather than dropped, so that errors keep the file's row numbers.
    live = frame.where(kept, axis=0)

    def column_text(field: str) -> pd.Series:
        name = columns.get(field)
        return text(live[name]) if name else pd.Series(pd.NA, index=frame.index, dtype="string")

    rows = pd.DataFrame(index=frame.index)
    rows["account_id"] = unique_ids(
        frame[key_column],
        file=source.path,
        column=key_column,
        what="account id" if id_column else "account",
        kept=kept,
    )
    rows["name"] = column_text("name")
    rows["domain"] = column_text("domain")
    rows["industry"] = column_text("industry")
    rows["employees"] = _employees(live, columns.get("employees"), file=source.path)
    rows["region"] = column_text("region")
    rows["plan"] = column_text("plan")
    rows["churned_at"] = parse_crm_timestamps(live, columns.get("churned_at"), file=source.path)

    warnings = []
    skipped = int((~kept).sum())
    if skipped:
        noun = "row" if skipped == 1 else "rows"
        warnings.append(f"skipped {skipped:,} deleted or replaced {noun} of {source.path}")
    return AccountsFile(
        file=source.path,
        rows=rows.loc[kept, list(ACCOUNT_COLUMNS)].reset_index(drop=True),
        warnings=warnings,
    )


def _employees(frame: pd.DataFrame, column: str | None, *, file: str) -> pd.Series:
    if column is None:
        return pd.Series(pd.NA, index=frame.index, dtype="Int64")
    counts = numbers(frame[column], file=file, column=column, default=None, what="employee count")
    fractional = counts.notna() & (counts != np.floor(counts))
    if fractional.any():
        row = int(np.flatnonzero(fractional.to_numpy())[0])
        raise InputError(
            f"employee count {frame[column].iloc[row]!r} is not a whole number",
            file=file,
            row=row + 1,
            column=column,
            value=frame[column].iloc[row],
        )
    return counts.astype("Int64")
