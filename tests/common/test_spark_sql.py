"""strip, lstrip and rstrip trim the same characters on Spark as on DuckDB and in Python."""

from __future__ import annotations

import string
from typing import Any

import ibis
import pandas as pd
import pytest

VALUES = ["facebook", "  five \t", "vivid\n", "\x0b\x0cx y\r\n", None, "", "   ", "tf", "a\\b"]
"""Values with the letters f and v at their ends, every ASCII whitespace, a null and a backslash."""


def stripped_on(con: Any) -> pd.DataFrame:
    table = con.create_table("strip_values", pd.DataFrame({"value": VALUES}), overwrite=True)
    stripped = table.mutate(
        both=table.value.strip(), left=table.value.lstrip(), right=table.value.rstrip()
    )
    frame: pd.DataFrame = stripped.to_pandas()
    return frame


def python_strip(method: str) -> list[str | None]:
    return [
        None if value is None else getattr(value, method)(string.whitespace) for value in VALUES
    ]


def test_strip_compiles_to_code_points_for_spark() -> None:
    table = ibis.table({"value": "string"}, name="t")

    sql = ibis.to_sql(table.mutate(both=table.value.strip()), dialect="pyspark")

    assert "CHR(12)" in sql
    assert "\\f" not in sql


@pytest.mark.spark
def test_strip_matches_python_on_both_engines(spark: Any) -> None:
    duck = stripped_on(ibis.duckdb.connect())
    sparked = stripped_on(ibis.pyspark.connect(spark))

    for column, method in (("both", "strip"), ("left", "lstrip"), ("right", "rstrip")):
        assert duck[column].tolist() == python_strip(method), column
        assert sparked[column].tolist() == python_strip(method), column
