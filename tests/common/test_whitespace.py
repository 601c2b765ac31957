"""Trimming in the engine matches Python's strip, which the importer uses."""

from __future__ import annotations

import sys
from itertools import product

import ibis
import pandas as pd

from journeymap.common.whitespace import WHITESPACE, blank, padded, stripped, trimmed


def test_whitespace_is_every_isspace_character() -> None:
    expected = "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())
    assert expected == WHITESPACE


def test_trim_helpers_match_python_strip() -> None:
    # Every text of up to three characters from the whitespace set and a letter, and
    # characters that strip keeps: a space inside, a zero-width space, a pattern metacharacter.
    alphabet = [*WHITESPACE, "a"]
    texts = ["".join(chars) for size in range(4) for chars in product(alphabet, repeat=size)]
    texts += ["a b", "\u200ba", "a]", "^a$"]
    table = ibis.memtable(pd.DataFrame({"text": texts}))
    is_padded = padded(table.text)
    found = table.select(
        "text",
        padded=is_padded,
        blank=blank(table.text, is_padded),
        stripped=stripped(table.text),
        trimmed=trimmed(table.text),
    ).to_pandas()
    expected = found.text.map(str.strip)
    assert (found.padded == (expected != found.text)).all()
    assert (found.blank == (expected == "")).all()
    assert (found.stripped == expected).all()
    assert (found.trimmed == expected).all()
