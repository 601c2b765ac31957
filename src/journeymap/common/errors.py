"""The exception tree of journeymap.

Every error raised on purpose derives from :class:`JourneymapError`::

    JourneymapError
     ├── ConfigError      invalid configuration file or option value
     ├── InputError       a file or frame that cannot be imported (names file, row, column)
     │    └── AlreadyImportedError   the same bytes were imported before
     ├── StoreError       the store cannot be opened, or holds an unexpected schema
     └── ModelError       unknown model name, invalid parameters, or input the model cannot use

Each error keeps its details as attributes, so that callers (the CLI, the REST API) can
render them, and its message says what to do next.
"""

from __future__ import annotations


class JourneymapError(Exception):
    """Base class of every error that journeymap raises on purpose."""

    hint: str | None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message if hint is None else f"{message}. {hint}")


class ConfigError(JourneymapError):
    """Invalid configuration: a YAML key, an option value or a parameter."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        location: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.location = location
        where = ", ".join(part for part in (source, location) if part)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)


class InputError(JourneymapError):
    """A file or frame that cannot be imported.

    ``row`` is the 1-based data row (the header is row 0) and ``column`` the column name as
    it appears in the input, so that the user can find the cell in a spreadsheet.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.value = value
        parts = []
        if file:
            parts.append(file)
        if row is not None:
            parts.append(f"row {row}")
        if column:
            parts.append(f"column {column!r}")
        where = ", ".join(parts)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)


class AlreadyImportedError(InputError):
    """A file whose exact bytes were imported into the store before."""

    def __init__(self, message: str, *, file: str, import_id: str, hint: str | None = None) -> None:
        self.import_id = import_id
        super().__init__(message, file=file, hint=hint)


class StoreError(JourneymapError):
    """The store cannot be opened or written, or holds an unexpected schema."""


class ModelError(JourneymapError):
    """An attribution model that is unknown, misconfigured or cannot use the input."""
