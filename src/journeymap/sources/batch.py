"""Writing one import: all of its rows land in one transaction, or none do."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeymap import __version__
from journeymap.common.errors import AlreadyImportedError
from journeymap.common.timeutil import utc_now
from journeymap.store.store import Store

log = logging.getLogger("journeymap")


@dataclass(frozen=True)
class ImportResult:
    """The outcome of one import: its id and the number of rows written per table."""

    import_id: str
    kind: str
    file: str
    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    """True when the same bytes were already in the store, so nothing was written."""
    warnings: tuple[str, ...] = ()
    """Data-quality problems that did not stop the import (the rows were kept)."""
    replaced: dict[str, int] = field(default_factory=dict)
    """Rows of earlier imports deleted per table, because this import has newer rows with
    the same ids."""
    unread: tuple[str, ...] = ()
    """The other files given with a skipped file, which were not read either."""

    def summary(self) -> str:
        """Return a one-line account of the rows written and replaced, and the warnings."""
        if self.skipped:
            line = f"skipped {self.file}: its content is already in the store as {self.import_id}"
            if self.unread:
                line += (
                    f"; the other files given with it were not read either: "
                    f"{', '.join(self.unread)}. Import into a new store (--store) to read them"
                )
            return line
        counts = ", ".join(f"{count:,} {table}" for table, count in self.rows.items())
        line = f"imported {self.file} as {self.import_id}: {counts or 'no rows'}"
        replaced = ", ".join(
            f"{count:,} {table}" for table, count in self.replaced.items() if count
        )
        if replaced:
            line += f"; replaced {replaced} from earlier imports"
        if self.warnings:
            line += f"; {len(self.warnings)} data-quality warning(s)"
        return line


@dataclass(frozen=True)
class Replacement:
    """The stored rows that an import replaces: those of ``table`` whose ``column`` is in
    ``keys``. They are deleted in the import's transaction, before its rows are appended."""

    table: str
    column: str
    keys: tuple[str, ...]


def new_import_id(kind: str, sha256: str) -> str:
    """Return the id of an import of a file with this content hash."""
    return f"{kind}-{sha256[:12]}"


def check_not_imported(store: Store, *, kind: str, sha256: str, file: str) -> str:
    """Return the id for a new import, rejecting a file whose bytes were imported before.

    Raises:
        AlreadyImportedError: the same content was already imported as the same kind.
    """
    import_id = new_import_id(kind, sha256)
    imports = store.table("imports")
    seen = imports.filter(imports.import_id == import_id).select("file", "imported_at").to_pandas()
    if len(seen):
        raise AlreadyImportedError(
            f"this content was already imported as {import_id} "
            f"(from {seen.file.iloc[0]} at {seen.imported_at.iloc[0]:%Y-%m-%d %H:%M} UTC)",
            file=file,
            import_id=import_id,
            hint="Nothing was written. Import into a new store (--store) to load it again",
        )
    return import_id


def write_import(
    store: Store,
    *,
    import_id: str,
    kind: str,
    file: str,
    sha256: str,
    seq_start: int,
    tables: Mapping[str, pd.DataFrame | pa.Table],
    warnings: Sequence[str] = (),
    replace: Sequence[Replacement] = (),
) -> ImportResult:
    """Append every table of one import and its record in ``imports``, in one transaction.

    The rows that ``replace`` selects are deleted first, in the same transaction, and the
    result counts them per table. ``warnings`` are logged once the import is written, and
    returned in the result.

    Raises:
        StoreError: ``replace`` selects stored rows of a store that is not DuckDB (see
            :meth:`journeymap.store.store.Store.delete_keys`).
    """
    rows: dict[str, int] = {}
    replaced: dict[str, int] = {}
    seq_end = seq_start - 1
    for frame in tables.values():
        if isinstance(frame, pa.Table):
            if "seq" in frame.column_names and frame.num_rows:
                seq_end = max(seq_end, int(pc.max(frame["seq"]).as_py()))
        elif "seq" in frame.columns and len(frame):
            seq_end = max(seq_end, int(frame["seq"].max()))
    with store.transaction():
        for replacement in replace:
            deleted = store.delete_keys(replacement.table, replacement.column, replacement.keys)
            replaced[replacement.table] = replaced.get(replacement.table, 0) + deleted
        for name, frame in tables.items():
            if isinstance(frame, pa.Table):
                frame = frame.append_column("import_id", pa.repeat(import_id, frame.num_rows))
            else:
                frame = frame.assign(import_id=import_id)
            rows[name] = store.append(name, frame)
        record = pd.DataFrame(
            {
                "import_id": [import_id],
                "kind": [kind],
                "file": [file],
                "sha256": [sha256],
                "rows": [sum(rows.values())],
                "seq_start": [seq_start],
                "seq_end": [max(seq_end, seq_start - 1)],
                "imported_at": [pd.Timestamp(utc_now())],
                "package_version": [__version__],
            }
        )
        store.append("imports", record)
    result = ImportResult(
        import_id=import_id,
        kind=kind,
        file=file,
        rows=rows,
        warnings=tuple(warnings),
        replaced=replaced,
    )
    log.info("%s", result.summary())
    for warning in warnings:
        log.warning("%s: %s", file, warning)
    return result
