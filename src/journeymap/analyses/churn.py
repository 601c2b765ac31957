"""Customers and churn of accounts, for retention by segment in the ideal customer profile.

Retention counts accounts, not deals (:func:`customer_churn`):

- A *customer* is an account of ``accounts`` with at least one won deal. Its first win is
  the earliest ``closed_at`` of its won deals.
- Churn dates come from ``accounts.churned_at`` and, unless ``renewal_pattern`` is None,
  from lost renewal deals: a closed, not won deal whose ``name`` or ``pipeline`` matches the
  pattern marks its account churned at the deal's ``closed_at``.
- A churn date counts only when no won deal of the account closed after it, because a
  later win means that the customer came back. A customer churned on the earliest churn
  date that counts, and churn dates after ``as_of`` count too.
- ``retention_rate`` is the share of customers not churned. It ignores tenure, so a segment
  of recent customers, which had less time to churn, looks better than it is.
- ``horizon_retention_rate`` compares like with like: of the customers whose first win lies
  at least ``horizon_days`` (default 365) before ``as_of``, the share that had not churned
  within ``horizon_days`` of that win (a churn exactly then is within). Customers won less
  than ``horizon_days`` before ``as_of`` are left out and counted in ``too_recent``.
  Customers whose won deals all lack a ``closed_at`` are in neither. ``as_of`` defaults to
  the end of the data: the latest deal ``created_at``, closed deal ``closed_at`` or account
  ``churned_at``. NOTE: a churn date in the future (a cancellation already announced) moves
  that default into the future too, so pass ``as_of`` when the accounts file has such dates.
- A store cannot tell "no account churned" from "no churn dates were imported". So the
  churn columns (``churned``, the rates and ``horizon_retained``) are null unless at least
  one account of ``accounts`` has a ``churned_at`` or, with a renewal pattern, at least one
  closed deal is a renewal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import ibis

from journeymap.analyses.velocity import days_between
from journeymap.store.schema import TS

HORIZON_DAYS = 365.0
"""Default horizon of ``horizon_retention_rate``: days after a customer's first win."""

RENEWAL_PATTERN = "renewal"
"""Default regular expression of renewal deals, searched case-insensitively in each deal's
``name`` and ``pipeline``. DuckDB reads it as RE2 syntax and Spark as Java syntax, so a
pattern should keep to what both accept (literals, classes, ``|``, anchors)."""


def customer_churn(
    deals: ibis.Table,
    accounts: ibis.Table,
    *,
    as_of: datetime | None = None,
    horizon_days: float = HORIZON_DAYS,
    renewal_pattern: str | None = RENEWAL_PATTERN,
) -> ibis.Table:
    """Return whether each account is a customer, and when it first won and churned.

    The terms are those of the module docstring. Returns one row per distinct
    ``account_id`` of ``accounts`` with:

    - ``customer``: true when the account has a won deal;
    - ``first_won_at``: the earliest ``closed_at`` of its won deals, null for other
      accounts and for customers whose won deals have no ``closed_at``;
    - ``churned_at``: the churn date that counts, null unless a customer churned;
    - ``horizon_eligible``: true when the first win lies at least ``horizon_days`` before
      ``as_of``, false when it lies later, and null without a first win;
    - ``retained_at_horizon``: for eligible customers, true unless they churned within
      ``horizon_days`` of the first win; null for the others and when ``churn_known`` is
      false;
    - ``churn_known``: the same value in every row, true when the data hold churn dates.

    Raises:
        ValueError: ``horizon_days`` is not positive, or ``renewal_pattern`` is not a valid
            regular expression.
    """
    _check_horizon(horizon_days)
    _check_renewal_pattern(renewal_pattern)
    closed = deals.is_closed.fill_null(False)
    won = closed & deals.is_won.fill_null(False)
    wins = (
        deals.filter(won & deals.account_id.notnull())
        .group_by(_won_account=ibis._.account_id)
        .aggregate(_first_won_at=ibis._.closed_at.min(), _last_won_at=ibis._.closed_at.max())
    )
    is_renewal = _is_renewal(deals, renewal_pattern)

    candidates = [
        accounts.select(_churn_account=accounts.account_id, _churn_at=accounts.churned_at)
    ]
    if renewal_pattern is not None:
        lost_renewals = deals.filter(closed & ~won & is_renewal)
        candidates.append(
            lost_renewals.select(
                _churn_account=lost_renewals.account_id, _churn_at=lost_renewals.closed_at
            )
        )
    dates = ibis.union(*candidates, distinct=False)
    dates = dates.filter(dates._churn_account.notnull() & dates._churn_at.notnull())
    dates = dates.left_join(wins, dates._churn_account == wins._won_account)
    # A churn date before the account's latest win was undone by that win.
    counted = dates.filter(dates._last_won_at.isnull() | (dates._churn_at >= dates._last_won_at))
    churn = counted.group_by(_churned_account=counted._churn_account).aggregate(
        _churned_at=counted._churn_at.min()
    )

    known = accounts.aggregate(_dates=accounts.churned_at.count()).cross_join(
        deals.aggregate(_renewals=(closed & is_renewal).cast("int64").sum().fill_null(0))
    )
    known = known.select(_churn_known=(known._dates > 0) | (known._renewals > 0))

    ids = accounts.select("account_id").distinct()
    rows = (
        ids.left_join(wins, ids.account_id == wins._won_account)
        .left_join(churn, ids.account_id == churn._churned_account)
        .cross_join(known)
    )
    if as_of is None:
        rows = rows.cross_join(_data_end(deals, accounts))
        moment: ibis.TimestampValue = rows._data_end
    else:
        aware = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
        moment = ibis.literal(aware, type=TS)
    customer = rows._won_account.notnull()
    churned_at = ibis.ifelse(customer, rows._churned_at, ibis.null(TS))
    eligible = days_between(rows._first_won_at, moment) >= horizon_days
    churned_in_horizon = churned_at.notnull() & (
        days_between(rows._first_won_at, churned_at) <= horizon_days
    )
    retained = ibis.cases(
        (rows._churn_known & eligible, ~churned_in_horizon), else_=ibis.null("boolean")
    )
    return rows.select(
        "account_id",
        customer=customer,
        first_won_at=rows._first_won_at,
        churned_at=churned_at,
        horizon_eligible=eligible,
        retained_at_horizon=retained,
        churn_known=rows._churn_known,
    )


def _is_renewal(deals: ibis.Table, pattern: str | None) -> ibis.BooleanValue:
    """Return whether each deal's name or pipeline matches ``pattern``, in any case."""
    if pattern is None:
        return ibis.literal(False)
    insensitive = f"(?i){pattern}"
    name = deals.name.fill_null("").re_search(insensitive)
    pipeline = deals.pipeline.fill_null("").re_search(insensitive)
    return name | pipeline


def _data_end(deals: ibis.Table, accounts: ibis.Table) -> ibis.Table:
    """Return one row with ``_data_end``: the latest deal creation, deal close or churn date.

    Open deals' ``closed_at`` is left out, because a CRM may hold an expected close date
    there.
    """
    closed_at = ibis.cases((deals.is_closed.fill_null(False), deals.closed_at), else_=ibis.null(TS))
    last_deal = deals.aggregate(_created=deals.created_at.max(), _closed=closed_at.max())
    last_churn = accounts.aggregate(_churned=accounts.churned_at.max())
    ends = last_deal.cross_join(last_churn)
    return ends.select(_data_end=ibis.greatest(ends._created, ends._closed, ends._churned))


def _check_horizon(horizon_days: float) -> None:
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be more than 0, not {horizon_days}")


def _check_renewal_pattern(pattern: str | None) -> None:
    if pattern is None:
        return
    if not pattern:
        raise ValueError("renewal_pattern is empty. Give a regular expression, or None for none")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"renewal_pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from exc
