"""Churn of the demo world's customers, with small companies planted to churn far more often.

A customer is an account with a closed-won row in the touchpoint file. Each customer draws
the days from its first win to its cancellation: :data:`CHURN_GRACE_DAYS` plus an exponential
wait whose mean is :data:`SMALL_MEAN_DAYS` for accounts with fewer than
:data:`SMALL_EMPLOYEES` employees and :data:`OTHER_MEAN_DAYS` for the others. Only a
cancellation before the end of the window is written, because an export taken then cannot
know a later one. Random numbers come from their own stream, so churn changes no other table.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

SMALL_EMPLOYEES = 50
"""Planted: accounts with fewer employees churn far more often. The ICP's first default size
band, ``1-49``, is exactly these accounts, because demo accounts have at least 5 employees."""
SMALL_SEGMENT = ("size_band", "1-49")
"""The ICP segment of the accounts with fewer than :data:`SMALL_EMPLOYEES` employees."""
SMALL_MEAN_DAYS = 50.0
"""Mean of the exponential wait to cancellation of a small customer, in days."""
OTHER_MEAN_DAYS = 900.0
"""Mean of the exponential wait to cancellation of any other customer, in days."""
CHURN_GRACE_DAYS = 14.0
"""Days after the first win before any customer cancels."""


def draw_churn(
    rng: np.random.Generator,
    touchpoints: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    start: date,
    days: int,
) -> pd.Series:
    """Return the UTC cancellation time of each account, aligned to ``accounts``.

    The time is NaT for accounts that never won and for customers whose cancellation falls
    at or after the end of the window. Times are whole seconds.
    """
    kinds = touchpoints["conversion_kind"].astype("string")
    won = touchpoints[kinds == "closed_won"]
    first_won = won.groupby(won["account_id"].astype("string"))["timestamp"].min().sort_index()

    ids = accounts["account_id"].astype("string")
    employees = accounts.set_index(ids)["employees"].reindex(first_won.index).to_numpy()
    means = np.where(employees < SMALL_EMPLOYEES, SMALL_MEAN_DAYS, OTHER_MEAN_DAYS)
    waits = CHURN_GRACE_DAYS + rng.exponential(means)

    cancelled = pd.to_datetime(first_won, utc=True) + pd.to_timedelta(waits, unit="D")
    cancelled = cancelled.dt.floor("s")
    end = pd.Timestamp(start.isoformat(), tz="UTC") + pd.Timedelta(days=days)
    cancelled = cancelled.where(cancelled < end)
    churned_at = cancelled.reindex(ids.to_numpy())
    return pd.Series(churned_at.to_numpy(), index=accounts.index, name="churned_at")
