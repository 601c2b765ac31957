"""Column mapping: which input column feeds which canonical field.

Common names are recognised without a mapping (``user_id``, ``timestamp``, ``channel``,
``conversion``, ``value`` and their usual synonyms, compared case-insensitively with spaces
and dashes read as underscores). A mapping given by flag (``--map person_id=visitor``) or in a
YAML file (``person_id: visitor``) takes precedence.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from journeymap.common.errors import ConfigError, InputError


def normalise_name(name: str) -> str:
    """Return a column name lowercased, with spaces, dots and dashes as underscores."""
    return re.sub(r"[\s.\-]+", "_", name.strip().lower())


def parse_mapping_options(
    options: Sequence[str], mapping_file: str | Path | None
) -> dict[str, str]:
    """Merge ``field=column`` flags over a YAML mapping file into one mapping.

    Raises:
        ConfigError: a flag lacks ``=``, or the file is missing or not a mapping of strings.
    """
    mapping: dict[str, str] = {}
    if mapping_file is not None:
        path = Path(mapping_file)
        if not path.is_file():
            raise ConfigError("mapping file not found", source=str(path), hint="Check the path")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
        if not isinstance(loaded, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in loaded.items()
        ):
            raise ConfigError(
                "invalid mapping file: each line must read 'field: column name'",
                source=str(path),
            )
        mapping.update(loaded)
    for option in options:
        field, sep, column = option.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigError(
                f"invalid column mapping {option!r}",
                location="--map",
                hint="Write it as FIELD=COLUMN, for example --map person_id=visitor_id",
            )
        mapping[field.strip()] = column.strip()
    return mapping


MAP_REMEDY = "Map one with --map FIELD=COLUMN"
"""The end of a missing-column hint for a file whose columns ``--map`` maps."""
RENAME_REMEDY = (
    "Rename the column to one of the accepted names. --map does not apply to this file, "
    "only to the deals file"
)
"""The end of a missing-column hint for the files that go with a deals file."""


class ColumnResolver:
    """Finds the input column of each canonical field of one importer.

    ``aliases`` lists, for each field, the recognised names in order of preference.
    ``remedy`` ends the hint of a missing-column error: :data:`MAP_REMEDY` for a file that
    ``--map`` applies to, :data:`RENAME_REMEDY` for a file that goes with a deals file.
    """

    def __init__(
        self,
        *,
        file: str,
        columns: Sequence[str],
        aliases: Mapping[str, Sequence[str]],
        mapping: Mapping[str, str] | None = None,
        remedy: str = MAP_REMEDY,
    ) -> None:
        self.file = file
        self.remedy = remedy
        self.columns = list(columns)
        self.aliases = aliases
        self._by_normal = {normalise_name(column): column for column in reversed(self.columns)}
        self.resolved: dict[str, str] = {}
        for field, column in (mapping or {}).items():
            if field not in aliases:
                close = difflib.get_close_matches(field, list(aliases), n=1)
                suggestion = f"Did you mean {close[0]}? " if close else ""
                raise ConfigError(
                    f"unknown field {field!r} in the column mapping",
                    location="--map",
                    hint=f"{suggestion}Known fields: {', '.join(aliases)}",
                )
            if column not in self.columns:
                found = self._by_normal.get(normalise_name(column))
                if found is None:
                    raise InputError(
                        f"mapped column {column!r} (for {field}) is not in the file",
                        file=file,
                        hint=self._columns_hint(column),
                    )
                column = found
            self.resolved[field] = column
        for field, names in aliases.items():
            if field in self.resolved:
                continue
            for name in names:
                found = self._by_normal.get(normalise_name(name))
                if found is not None and found not in self.resolved.values():
                    self.resolved[field] = found
                    break

    def get(self, field: str) -> str | None:
        """Return the input column of ``field``, or None when the file has none."""
        return self.resolved.get(field)

    def require(self, field: str, *, why: str = "") -> str:
        """Return the input column of ``field``.

        Raises:
            InputError: no column matches; the message lists the accepted names and the
                columns found, and points out a file split by the wrong separator.
        """
        return self.require_any([field], why=why)

    def require_any(self, fields: Sequence[str], *, why: str = "") -> str:
        """Return the input column of the first of ``fields`` that the file has.

        Raises:
            InputError: no column matches any of ``fields``; the message is that of
                :meth:`require` for the first field, with the accepted names of all.
        """
        for field in fields:
            column = self.resolved.get(field)
            if column is not None:
                return column
        accepted = ", ".join(name for field in fields for name in self.aliases[field])
        reason = f" ({why})" if why else ""
        raise InputError(
            f"missing column for {fields[0]}{reason}; accepted names: {accepted}",
            file=self.file,
            column=fields[0],
            hint=self._columns_hint(self.aliases[fields[0]][0]),
        )

    def _columns_hint(self, wanted: str) -> str:
        if len(self.columns) == 1:
            header = self.columns[0]
            for sep in (";", ",", "\t", "|"):
                if sep in header:
                    return (
                        f"The header {header!r} is one column; the file looks separated by "
                        f"{sep!r}: pass --sep {sep!r}"
                    )
        close = difflib.get_close_matches(wanted, self.columns, n=3)
        found = ", ".join(self.columns[:20]) + (" ..." if len(self.columns) > 20 else "")
        suggestion = f"Did you mean {', '.join(close)}? " if close else ""
        return f"{suggestion}Columns found: {found}. {self.remedy}"
