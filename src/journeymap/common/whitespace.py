"""Trimming text in the engine the way the importer trims it in Python and Arrow.

The importer strips every character that Python's ``str.isspace`` accepts (pandas and
Arrow's ``utf8_trim_whitespace`` strip the same set): ASCII spaces and controls, and
Unicode spaces such as the no-break space that spreadsheets and web exports leave behind.
An engine's own ``trim`` strips ASCII spaces only, so the expressions here use patterns
over the whole set, with the characters written as themselves so that no engine has to
read an escape.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Every character for which ``str.isspace`` is true."""

_CLASS = f"[{WHITESPACE}]"
PADDED = f"^{_CLASS}|{_CLASS}$"
"""A pattern for text that starts or ends with whitespace."""


def padded(text: ir.StringValue) -> ir.BooleanValue:
    """Return whether the text starts or ends with whitespace."""
    return text.re_search(PADDED)


def stripped(text: ir.StringValue) -> ir.StringValue:
    """Return the text without whitespace at either end."""
    return text.re_replace(f"^{_CLASS}+", "").re_replace(f"{_CLASS}+$", "")


def trimmed(text: ir.StringValue) -> ir.StringValue:
    """Return the text stripped, running the patterns' replacement on padded text only."""
    return ibis.cases((padded(text), stripped(text)), else_=text)


def blank(text: ir.StringValue, is_padded: ir.BooleanValue) -> ir.BooleanValue:
    """Return whether the text is empty once stripped; ``is_padded`` is :func:`padded`'s."""
    return ibis.cases((is_padded, stripped(text) == ""), else_=text == "")
