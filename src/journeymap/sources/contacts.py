"""Import CRM contacts (CSV or Parquet) as people, identity edges and hashed match keys.

Input: one row per contact. The column names of these exports are recognised without a
mapping, and ``--map FIELD=COLUMN`` names any other column:

- HubSpot contacts, with internal property names (``hs_object_id``, ``email``, ``phone``,
  ``mobilephone``, ``jobtitle``, ``associatedcompanyid``, ``createdate``,
  ``lastmodifieddate``) or with the labels of a CRM export (``Record ID``, ``Email``,
  ``Phone Number``, ``Job Title``, ``Create Date`` ...);
- Salesforce ``Contact`` and ``Lead`` objects (``Id``, ``AccountId`` or ``ConvertedAccountId``,
  ``Email``, ``Phone``, ``MobilePhone``, ``Title``, ``CreatedDate``, ``LastModifiedDate``);
- the tables that Fivetran writes for both (``id``, ``property_email``,
  ``property_createdate``, ``account_id``, ``created_date`` ...). Rows that Fivetran marks as
  deleted (``_fivetran_deleted`` or ``is_deleted`` true) or as replaced history
  (``_fivetran_active`` false) are skipped.

Output, written in one transaction:

- ``people``: one row per contact, with ``person_id`` the contact id and ``account_id`` the
  associated company or account id. ``email_hash`` is the SHA-256 of the trimmed, lowercased
  email (as the collector computes it) and ``domain`` the email's domain. ``first_seen`` and
  ``last_seen`` come from the create and last-modified dates;
- ``identity_edges``: one edge per contact with an email, from the contact id (kind
  ``contact``) to its email hash (kind ``email``), observed at the create date. ``journeymap
  build`` resolves them with the collected events' edges, so that a contact and the visitor
  who sent the same email are one person;
- ``match_keys``: the hashed email and phone keys of
  :func:`journeymap.common.identifiers.match_keys` (``id_kind`` ``person``), with
  ``source`` ``crm``, observed at the create date (else the last-modified date), because
  conversion sync uses a key only for conversions at or after that time;
- ``lifecycle_stages``: one row per contact and lifecycle stage with an entry date, from
  HubSpot's ``hs_v2_date_entered_<stage>`` (or older ``hs_lifecyclestage_<stage>_date``)
  columns, so that journey stages can be entered by lifecycle stages
  (``lifecycle_stage: marketingqualifiedlead``).

Raw emails and phone numbers are never stored, logged or put in an error message. An email
that is not an address, or a phone that is not a possible number, is left out with a
warning that counts the cells and names the first row; the contact is kept. An email column
that already holds SHA-256 digests is kept as it is. Dates are ISO 8601 (a space may separate
date and time, as in Fivetran's tables) or epoch milliseconds, as HubSpot's API returns them.

NOTE: a lead source column is not read, because ``people`` has no column for it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import phonenumbers

from journeymap.common import identifiers
from journeymap.common.errors import ConfigError
from journeymap.common.identifier_kinds import CONTACT, EMAIL
from journeymap.sources.batch import ImportResult, check_not_imported, write_import
from journeymap.sources.columns import ColumnResolver, normalise_name
from journeymap.sources.readers import read_input
from journeymap.sources.timestamps import parse_crm_timestamps
from journeymap.sources.values import live_rows, text, unique_ids
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

KIND = "contacts"
SOURCE = "crm"
"""``source`` of the identity edges and match keys that a contacts import writes."""
PERSON = "person"

CONTACT_ALIASES: dict[str, list[str]] = {
    "contact_id": ["hs_object_id", "record_id", "contact_id", "vid", "id", "person_id"],
    "account_id": [
        "associatedcompanyid",
        "property_associatedcompanyid",
        "associated_company_id",
        "primary_associated_company_id",
        "company_id",
        "accountid",
        "account_id",
        "convertedaccountid",
        "converted_account_id",
    ],
    "email": ["email", "property_email", "email_address"],
    "phone": ["phone", "property_phone", "phone_number"],
    "mobile": ["mobilephone", "property_mobilephone", "mobile_phone", "mobile_phone_number"],
    "title": ["jobtitle", "property_jobtitle", "job_title", "title"],
    "created_at": [
        "createdate",
        "property_createdate",
        "create_date",
        "createddate",
        "created_date",
        "created_at",
    ],
    "modified_at": [
        "lastmodifieddate",
        "property_lastmodifieddate",
        "hs_lastmodifieddate",
        "property_hs_lastmodifieddate",
        "last_modified_date",
        "updated_at",
    ],
    "deleted": ["_fivetran_deleted", "is_deleted", "isdeleted"],
    "active": ["_fivetran_active"],
}

LIFECYCLE_COLUMN = re.compile(
    r"(?:property_)?(?:hs_v2_date_entered_([a-z0-9_]+)|hs_lifecyclestage_([a-z0-9_]+)_date)"
)
"""A HubSpot contact column that contains the time the contact entered one lifecycle stage."""


@dataclass(frozen=True)
class ContactKeys:
    """The ``match_keys`` rows of the contacts, each row's email hash and domain, and the
    warnings about invalid cells."""

    rows: list[dict[str, object]] = field(default_factory=list)
    email_hash: list[str | None] = field(default_factory=list)
    domain: list[str | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def import_contacts(
    store: Store,
    contacts_file: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    separator: str | None = None,
    phone_region: str = "US",
) -> ImportResult:
    """Import a CRM contacts file in one transaction; the rows written are in the module
    docstring.

    ``phone_region`` (ISO 3166 alpha-2) is the country of phone numbers written without a
    country code. The import is identified by the file's bytes.

    Raises:
        InputError: the file is missing or has no contact id column, or a cell is invalid.
            Invalid cells are an empty or duplicate contact id, a date that is neither ISO
            8601 nor epoch milliseconds, and a deleted or active flag that is not true or
            false.
        AlreadyImportedError: the file's bytes were imported before.
        ConfigError: ``phone_region`` is not a region that phone numbers are known for.
    """
    if phone_region.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"unknown phone region {phone_region!r}",
            location="--phone-region",
            hint="Use an ISO 3166 alpha-2 country code such as US, GB or DE",
        )
    source = read_input(contacts_file, separator=separator)
    import_id = check_not_imported(store, kind=KIND, sha256=source.sha256, file=source.path)
    frame = source.frame
    columns = ColumnResolver(
        file=source.path, columns=list(frame.columns), aliases=CONTACT_ALIASES, mapping=mapping
    )
    id_column = columns.require("contact_id", why="the CRM id of each contact")

    # Rows that the CRM deleted, or history rows that a newer version replaced, are no contact.
    kept = live_rows(
        frame, file=source.path, active=columns.get("active"), deleted=(columns.get("deleted"),)
    )
    contact_ids = _contact_ids(frame[id_column], kept, file=source.path, column=id_column)

    created = parse_crm_timestamps(frame, columns.get("created_at"), file=source.path)
    modified = parse_crm_timestamps(frame, columns.get("modified_at"), file=source.path)
    last_seen = pd.concat([created, modified], axis=1).max(axis=1)
    keys = contact_keys(
        frame,
        columns,
        contact_ids,
        kept,
        observed_at=created.fillna(modified),
        file=source.path,
        phone_region=phone_region,
    )

    people = pd.DataFrame(
        {
            "person_id": contact_ids,
            "account_id": _column_text(frame, columns.get("account_id")),
            "email_hash": pd.Series(keys.email_hash, index=frame.index, dtype="string"),
            "domain": pd.Series(keys.domain, index=frame.index, dtype="string"),
            "title": _column_text(frame, columns.get("title")),
            "first_seen": created,
            "last_seen": last_seen,
        }
    )[kept]
    with_email = people[people["email_hash"].notna()]
    edges = pd.DataFrame(
        {
            "from_id": with_email["person_id"],
            "from_kind": CONTACT,
            "to_id": with_email["email_hash"],
            "to_kind": EMAIL,
            "observed_at": with_email["first_seen"].fillna(with_email["last_seen"]),
            "source": SOURCE,
        }
    )
    match_keys = pd.DataFrame(
        keys.rows, columns=["id", "id_kind", "key", "value", "observed_at", "source"]
    )
    match_keys["observed_at"] = pd.to_datetime(match_keys["observed_at"], utc=True)

    warnings = list(keys.warnings)
    skipped = int((~kept).sum())
    if skipped:
        warnings.append(f"{skipped:,} deleted or replaced rows were skipped")
    tables = {
        "people": people.reset_index(drop=True),
        "identity_edges": edges.reset_index(drop=True),
        "match_keys": match_keys,
    }
    lifecycle = lifecycle_entries(frame, people, file=source.path)
    if len(lifecycle):
        tables["lifecycle_stages"] = lifecycle
    return write_import(
        store,
        import_id=import_id,
        kind=KIND,
        file=source.path,
        sha256=source.sha256,
        seq_start=store.next_seq(),
        tables=tables,
        warnings=warnings,
    )


def lifecycle_entries(frame: pd.DataFrame, people: pd.DataFrame, *, file: str) -> pd.DataFrame:
    """Return one ``lifecycle_stages`` row per contact and lifecycle stage it entered.

    The entry times come from HubSpot's per-stage date columns: ``hs_v2_date_entered_<stage>``
    and the older ``hs_lifecyclestage_<stage>_date`` (with or without Fivetran's
    ``property_`` prefix); the stage is the internal value in the column name. ``people`` is
    the contacts' ``people`` rows (kept rows only, indexed like ``frame``). A file without
    such columns gives no rows; an empty cell means the contact never entered that stage.

    Raises:
        InputError: a date cell is neither ISO 8601 nor epoch milliseconds.
    """
    parts = []
    for column in frame.columns:
        match = LIFECYCLE_COLUMN.fullmatch(normalise_name(str(column)))
        if match is None:
            continue
        stage = next(group for group in match.groups() if group)
        entered = parse_crm_timestamps(frame, column, file=file).loc[people.index]
        rows = pd.DataFrame(
            {
                "person_id": people["person_id"],
                "account_id": people["account_id"],
                "stage": stage,
                "entered_at": entered,
            }
        )
        parts.append(rows[rows["entered_at"].notna()])
    if not parts:
        return pd.DataFrame(columns=["person_id", "account_id", "stage", "entered_at"])
    return pd.concat(parts, ignore_index=True)


def contact_keys(
    frame: pd.DataFrame,
    columns: ColumnResolver,
    contact_ids: pd.Series,
    kept: pd.Series,
    *,
    observed_at: pd.Series,
    file: str,
    phone_region: str = "US",
) -> ContactKeys:
    """Hash the email and phone cells of the kept rows into ``match_keys`` rows.

    Also returns, for every row of ``frame``, the email hash and domain that the ``people``
    row keeps (None for a missing or invalid email, and the domain is None for an email
    given as a hash). Warnings name the column and the first row, never the value.
    """
    keys = ContactKeys()
    email_column = columns.get("email")
    emails = _column_text(frame, email_column)
    invalid: dict[str, list[int]] = {}
    for position, (contact, email, keep, seen) in enumerate(
        zip(contact_ids, emails, kept, observed_at, strict=True)
    ):
        email_hash = domain = None
        if keep and not pd.isna(email):
            hashed = identifiers.match_keys(email=str(email))
            if hashed:
                email_hash = hashed[identifiers.EMAIL]
                if not identifiers.is_sha256(str(email)):
                    domain = identifiers.normal_email(str(email)).rsplit("@", 1)[1]
                keys.rows.extend(_key_rows(contact, hashed, seen))
            else:
                invalid.setdefault(str(email_column), []).append(position)
        keys.email_hash.append(email_hash)
        keys.domain.append(domain)

    for field_name in ("phone", "mobile"):
        column = columns.get(field_name)
        if column is None:
            continue
        phones = _column_text(frame, column)
        for position, (contact, phone, keep, seen) in enumerate(
            zip(contact_ids, phones, kept, observed_at, strict=True)
        ):
            if not keep or pd.isna(phone):
                continue
            hashed = identifiers.match_keys(phone=str(phone), region=phone_region)
            if hashed:
                keys.rows.extend(_key_rows(contact, hashed, seen))
            else:
                invalid.setdefault(column, []).append(position)

    for column, positions in invalid.items():
        what = "emails" if column == email_column else "phone numbers"
        keys.warnings.append(
            f"{len(positions):,} {what} in column {column!r} are invalid, the first in row "
            f"{positions[0] + 1}; they were left out and their contacts kept"
        )
    return keys


def _key_rows(contact: object, hashed: Mapping[str, str], seen: object) -> list[dict[str, object]]:
    observed = seen if isinstance(seen, pd.Timestamp) else None  # NaT is no Timestamp
    return [
        {
            "id": contact,
            "id_kind": PERSON,
            "key": key,
            "value": value,
            "observed_at": observed,
            "source": SOURCE,
        }
        for key, value in hashed.items()
    ]


def _column_text(frame: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return text(frame[column])


def _contact_ids(values: pd.Series, kept: pd.Series, *, file: str, column: str) -> pd.Series:
    """Return the trimmed contact ids. Those of kept rows must be present and unique."""
    return unique_ids(values, file=file, column=column, what="contact id", kept=kept)
