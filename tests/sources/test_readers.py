"""Opening input files: existence, separators and compression."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from journeymap.common.errors import InputError
from journeymap.sources.readers import header_names, prepare_input, read_input

TOUCHES = "user_id;timestamp;channel\nu1;2024-03-01T10:00:00Z;Email\n"


@pytest.mark.parametrize("name", ["touches.csv.gz", "touches.gz"])
def test_prepare_input_reads_gzip_as_its_text(tmp_path: Path, name: str) -> None:
    packed = tmp_path / name
    packed.write_bytes(gzip.compress(TOUCHES.encode()))
    source = prepare_input(packed)
    assert source.separator == ";"
    assert not source.is_parquet
    assert header_names(source) == ["user_id", "timestamp", "channel"]
    assert read_input(source).frame.channel.tolist() == ["Email"]


def test_prepare_input_gzip_hash_is_the_content_hash(tmp_path: Path) -> None:
    plain = tmp_path / "touches.csv"
    plain.write_text(TOUCHES, encoding="utf-8")
    packed = tmp_path / "touches.csv.gz"
    packed.write_bytes(gzip.compress(TOUCHES.encode()))
    assert prepare_input(packed).sha256 == prepare_input(plain).sha256


def test_prepare_input_rejects_bytes_that_are_not_gzip(tmp_path: Path) -> None:
    fake = tmp_path / "touches.csv.gz"
    fake.write_bytes(b"user_id,timestamp\n")
    with pytest.raises(InputError, match="cannot decompress") as raised:
        prepare_input(fake)
    assert raised.value.file == str(fake)


def test_read_input_names_non_utf8_byte(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_bytes(b"user_id,channel\nu1,R\xe9seau\n")
    with pytest.raises(InputError) as raised:
        read_input(path)
    assert "line 2 is not UTF-8 text (byte 0xE9 at offset 20 of the file" in str(raised.value)
    assert raised.value.row == 1
