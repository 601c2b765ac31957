"""Reading CSV and Parquet files into frames of text, with clear errors.

Every cell is read as text (or as the Parquet type) and converted later by the importer, so
that a bad cell is reported with its row and column instead of failing the whole read.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from journeymap.common.errors import InputError

SEPARATORS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class InputFile:
    """A file read into memory: its frame, its path as given, and its content hash."""

    path: str
    frame: pd.DataFrame
    sha256: str
    separator: str | None


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sniff_separator(path: Path) -> str:
    """Return the separator of a delimited text file, judged from its header line."""
    return _separator_of(_first_line(path))


def csv_header(path: Path, separator: str | None = None) -> list[str]:
    """Return the column names in the header line of a CSV file, which may be gzipped."""
    line = _first_line(path)
    names = next(csv.reader([line], delimiter=separator or _separator_of(line)), [])
    return [name.strip() for name in names]


def _first_line(path: Path) -> str:
    import gzip

    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") as packed:
            return packed.readline()
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        return handle.readline()


def _separator_of(header: str) -> str:
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def first_bad_utf8(path: Path) -> tuple[int, int, int]:
    """Return the line (1-based), offset and value of the file's first byte that is not UTF-8.

    All three are 0 when every byte is UTF-8.
    """
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1, exc.start, data[exc.start]
    return 0, 0, 0


def not_utf8(file: Path, shown: str) -> InputError:
    """Return the error for a text file with bytes that are not UTF-8, naming the first."""
    line, offset, byte = first_bad_utf8(file)
    return InputError(
        f"line {line} is not UTF-8 text (byte 0x{byte:02X} at offset {offset} of the file "
        "cannot be decoded)",
        file=shown,
        row=max(line - 1, 0) or None,
        hint="Save the file as UTF-8 CSV (in Excel: CSV UTF-8) and read it again",
    )


def check_unique_names(names: Sequence[str], shown: str) -> None:
    """Raise when a column name appears more than once, which leaves readers to guess.

    Raises:
        InputError: naming the repeated columns.
    """
    # Empty names, as trailing separators leave, are columns no reader looks up.
    repeated = sorted(name for name, count in Counter(names).items() if count > 1 and name)
    if repeated:
        raise InputError(
            f"column names repeat in the file: {', '.join(map(repr, repeated))}",
            file=shown,
            hint="Rename or drop the repeated columns so that each name appears once",
        )


def _gunzipped(file: Path, shown: str) -> Path:
    """Return a temporary copy of a gzip file's content, named with the suffix before .gz.

    Raises:
        InputError: the file is not gzip data.
    """
    import atexit
    import gzip
    import os
    import shutil
    import tempfile

    handle, name = tempfile.mkstemp(suffix=Path(file.stem).suffix or ".csv")
    os.close(handle)
    copy = Path(name)
    # The readers open the copy by name, so it stays until the process ends.
    atexit.register(copy.unlink, missing_ok=True)
    try:
        with gzip.open(file, "rb") as packed, copy.open("wb") as plain:
            shutil.copyfileobj(packed, plain)
    except (OSError, EOFError) as exc:
        raise InputError(
            f"cannot decompress the file: {exc}",
            file=shown,
            hint="Check that the file is gzip data, or decompress it first",
        ) from exc
    return copy


@dataclass(frozen=True)
class InputSource:
    """A file checked for existence and size, with its content hash and separator."""

    path: str
    file: Path
    sha256: str
    separator: str | None
    is_parquet: bool


def prepare_input(path: str | Path, *, separator: str | None = None) -> InputSource:
    """Check that a file can be read, and return its hash and (for CSV) its separator.

    Raises:
        InputError: the file does not exist or is empty.
    """
    file = Path(path)
    shown = str(path)
    if not file.exists() or file.is_dir():
        raise InputError("file not found", file=shown, hint="Check the path and try again")
    if not file.is_file():
        # A pipe can be read once only: keep its bytes in a temporary file.
        import tempfile

        with tempfile.NamedTemporaryFile(delete=False, suffix=file.suffix) as copy:
            copy.write(file.read_bytes())
        file = Path(copy.name)
    if file.stat().st_size == 0:
        raise InputError(
            "file is empty", file=shown, hint="Export the data again; the file has no header"
        )
    if file.suffix.lower() == ".gz":
        file = _gunzipped(file, shown)
    is_parquet = file.suffix.lower() in {".parquet", ".pq"}
    sep = None if is_parquet else (separator if separator is not None else sniff_separator(file))
    return InputSource(shown, file, file_sha256(file), sep, is_parquet)


def header_names(source: InputSource) -> list[str]:
    """Return the column names of a file without reading its rows."""
    if source.is_parquet:
        import pyarrow.parquet as pq

        try:
            return [str(name).strip() for name in pq.read_schema(source.file).names]
        except (pa.ArrowInvalid, OSError):
            return []
    return csv_header(source.file, source.separator or ",")


def read_arrow(source: InputSource, *, typed: Sequence[str] = ()) -> pa.Table | None:
    """Read a file into Arrow: Parquet as stored, CSV as text except the ``typed`` columns.

    Returns None when Arrow cannot read the file; :func:`read_input` then gives the error
    that names the problem.
    """
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    try:
        if source.is_parquet:
            table = pq.read_table(source.file)
        else:
            with source.file.open(encoding="utf-8-sig", errors="replace") as handle:
                header = next(csv.reader([handle.readline()], delimiter=source.separator or ","))
            names = [name.strip() for name in header]
            table = pv.read_csv(
                source.file,
                read_options=pv.ReadOptions(column_names=names, skip_rows=1),
                parse_options=pv.ParseOptions(delimiter=source.separator or ","),
                convert_options=pv.ConvertOptions(
                    column_types={name: pa.string() for name in names if name not in typed},
                    # Only an empty cell is missing, as in the pandas reader: words such as
                    # NaN or NA in a typed column fail here and reach that reader's checks.
                    null_values=[""],
                    strings_can_be_null=False,
                ),
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, StopIteration):
        return None
    except OSError:
        return None
    table = table.rename_columns([str(name).strip() for name in table.column_names])
    return table if table.num_rows else None


def read_input(path: str | Path | InputSource, *, separator: str | None = None) -> InputFile:
    """Read a CSV (any of ``, ; tab |``, UTF-8 with or without a byte-order mark) or Parquet file.

    Column names are kept as written, without surrounding spaces. CSV cells are text; empty
    cells are missing values. A pipe or process substitution is read whole first.

    Raises:
        InputError: the file does not exist, is empty or has no rows, or cannot be parsed.
    """
    source = path if isinstance(path, InputSource) else prepare_input(path, separator=separator)
    file, shown, sha = source.file, source.path, source.sha256
    check_unique_names(header_names(source), shown)
    if source.is_parquet:
        try:
            frame = pd.read_parquet(file)
        except Exception as exc:  # pyarrow raises ArrowInvalid and OSError variants
            raise InputError(f"cannot read Parquet: {exc}", file=shown) from exc
        frame.columns = [str(column).strip() for column in frame.columns]
        return _with_rows(InputFile(shown, frame, sha, None))

    sep = source.separator or ","
    try:
        frame = pd.read_csv(
            file,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
            quoting=csv.QUOTE_MINIMAL,
            skipinitialspace=False,
            engine="c",
        )
    except UnicodeDecodeError as exc:
        raise not_utf8(file, shown) from exc
    except pd.errors.ParserError as exc:
        raise InputError(
            f"cannot parse as a {sep!r}-separated file: {exc}",
            file=shown,
            hint="Check the separator (--sep) and quoting",
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError("file has no header", file=shown) from exc
    frame.columns = [str(column).strip() for column in frame.columns]
    return _with_rows(InputFile(shown, frame, sha, sep))


def _with_rows(source: InputFile) -> InputFile:
    if source.frame.empty:
        raise InputError(
            "file has a header but no rows",
            file=source.path,
            hint="Export the data again with its rows; nothing was imported",
        )
    return source
