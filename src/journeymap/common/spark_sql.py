"""Make ibis 12.0's Spark SQL strip whitespace as DuckDB does. :mod:`journeymap` applies this
on import, so that every expression compiles with it.

ibis 12.0 compiles ``StringValue.strip()`` for Spark to ``TRIM(' \\t\\n\\r\\v\\f' FROM x)``.
Spark SQL has no ``\\v`` or ``\\f`` escape and reads them as the letters v and f. So Spark
trims those two letters from both ends ("facebook" becomes "acebook", "example.gov" becomes
"example.go") and keeps vertical tabs and form feeds. ``lstrip()`` and ``rstrip()`` compile to
Spark's one-argument ``LTRIM`` and ``RTRIM``, which trim spaces only. On DuckDB all three trim
the six characters of :data:`string.whitespace`, as Python's ``str.strip`` does for ASCII.

:func:`fix_pyspark_strip` makes Spark trim those six characters, named by code point as ibis's
own fix does (pull request 11989 of ibis-project/ibis, merged after the 12.0 release).

TODO: drop this module once the project requires an ibis release that has that fix.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

WHITESPACE_CODES = tuple(ord(character) for character in string.whitespace)
"""Code points that ``strip()`` removes: space, tab, newline, carriage return, vertical tab and
form feed."""


def fix_pyspark_strip() -> None:
    """Compile ``strip``, ``lstrip`` and ``rstrip`` for Spark as ``TRIM`` of the code points of
    :data:`WHITESPACE_CODES`. Calling it again changes nothing."""
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    PySparkCompiler.visit_Strip = _trim("BOTH")
    PySparkCompiler.visit_LStrip = _trim("LEADING")
    PySparkCompiler.visit_RStrip = _trim("TRAILING")


def _trim(position: str) -> Callable[..., Any]:
    """Return a compiler method that trims whitespace at ``position`` (BOTH, LEADING, TRAILING)."""
    import sqlglot.expressions as sge

    def visit(compiler: Any, op: Any, *, arg: Any) -> Any:
        characters = compiler.f.concat(*(compiler.f.chr(code) for code in WHITESPACE_CODES))
        return sge.Trim(this=arg, expression=characters, position=position)

    return visit
