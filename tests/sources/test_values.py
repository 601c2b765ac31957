"""Cell parsers: the errors show the cell as it reads in the file."""

from __future__ import annotations

import pandas as pd
import pytest

from journeymap.common.errors import InputError
from journeymap.sources.values import flags, numbers


def test_numbers_negative_shows_plain_value() -> None:
    with pytest.raises(InputError) as raised:
        numbers(pd.Series([0.0, -1.5]), file="touches.parquet", column="value")
    assert "value -1.5 is negative" in str(raised.value)
    assert "np." not in str(raised.value)
    assert raised.value.row == 2


def test_numbers_negative_text_shows_text() -> None:
    with pytest.raises(InputError, match="value '-1' is negative"):
        numbers(pd.Series(["", "-1"]), file="touches.csv", column="value")


def test_flags_numeric_cell_shows_plain_value() -> None:
    with pytest.raises(InputError) as raised:
        flags(pd.Series([0, 2]), file="touches.parquet", column="conversion")
    assert "conversion flag 2 is not" in str(raised.value)
    assert "np." not in str(raised.value)


def test_numbers_infinite_shows_cell_and_remedy() -> None:
    with pytest.raises(InputError) as raised:
        numbers(pd.Series(["1", "inf"]), file="touches.csv", column="value")
    assert "value 'inf' is not finite" in str(raised.value)
    assert "leave the cell empty" in str(raised.value)
