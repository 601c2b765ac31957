"""Sums that give the same result on every run.

Engines add floating-point numbers in whatever order their parallel workers finish, so a
float sum over many rows can differ in its last digits from run to run. Summing in a wide
decimal type is exact and order-independent; the result is converted back to float64.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.datatypes as dt
import ibis.expr.types as ir

EXACT = dt.Decimal(38, 15)
"""Type that sums run in: 23 digits before the point and 15 after."""

MAX_AMOUNT = 1e15
"""Largest amount (a value, a revenue, a cost) that importers and the collector accept.

A million such amounts still sum within :data:`EXACT`; larger ones are almost always a unit
or parsing mistake (an amount in micros, a phone number in a value column)."""


def exact_sum(value: ir.NumericValue, window: Any = None) -> ir.FloatingValue:
    """Return the order-independent sum of ``value`` as float64, over ``window`` when given."""
    total = value.cast(EXACT).sum()
    if window is not None:
        total = total.over(window)
    return total.cast("float64")
