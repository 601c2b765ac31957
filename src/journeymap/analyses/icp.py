"""Ideal customer profile: win rate, contract value, sales cycle and retention by segment.

The functions take ``deals`` and ``accounts`` rows and join them on ``account_id``. Only
deals whose account is in ``accounts`` can be placed in a segment, so deals without an
account and deals naming an account missing from ``accounts`` are left out of every
segment; :func:`excluded_deals` counts them. Open deals (``is_closed`` false or null) are
placed in their segment but left out of the rates, and ``open_deals`` counts them.

A deal is won when ``is_closed`` and ``is_won`` are both true. Money is the float64
``amount`` in the deal's currency, summed as is, so the caller should pass deals of one
currency. Sales-cycle days run from ``created_at`` to ``closed_at`` in whole seconds, as in
:func:`journeymap.analyses.velocity.days_between`. The median is exact and equals
``numpy.quantile(days, 0.5)`` (linear interpolation), computed with window functions so
that DuckDB and Spark return the same value.

Retention counts accounts, not deals, and comes from :mod:`journeymap.analyses.churn`, which
defines customers, churn dates and the horizon rule.

Aggregation happens in Ibis; :func:`ideal_customer_profile` moves only the per-segment table
(one row per attribute value) to pandas for the significance tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import ibis
import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from journeymap.analyses.churn import HORIZON_DAYS, RENEWAL_PATTERN, customer_churn
from journeymap.analyses.velocity import days_between

SIZE_BANDS: tuple[tuple[str, int], ...] = (
    ("1-49", 1),
    ("50-199", 50),
    ("200-999", 200),
    ("1000-4999", 1_000),
    ("5000+", 5_000),
)
"""Default employee-count bands: each label with the minimum employee count of its band.

A band runs from its minimum up to one less than the next band's minimum, and the last band
has no upper limit. Accounts with fewer employees than the first minimum, or no count, get a
null ``size_band``.
"""

ACCOUNT_DIMENSIONS: tuple[str, ...] = (
    "industry",
    "size_band",
    "region",
    "plan",
    "committee_size",
    "committee_roles",
)
"""Account attributes that segments can be formed by. ``size_band`` is derived from
``employees``; ``committee_size`` and ``committee_roles`` are the columns that
:func:`with_buying_committee` adds; the others are ``accounts`` columns."""

COMMITTEE_BANDS: tuple[tuple[str, int], ...] = (("1", 1), ("2-3", 2), ("4-6", 4), ("7+", 7))
"""Buying-committee size bands: each label with the minimum number of people of its band."""

SENIORITY: tuple[tuple[str, str], ...] = (
    (
        "executive",
        r"\b(ceo|cto|cfo|coo|cmo|cro|cio|ciso|chief|founder|co-founder|president|owner|vp|svp|"
        r"evp|vice president)\b",
    ),
    ("manager", r"\b(head|director|manager|lead|principal)\b"),
)
"""Seniority of a job title, by the first pattern it matches (any case); a title that
matches none is ``individual``."""

DEFAULT_DIMENSIONS: tuple[str, ...] = ("industry", "size_band", "region")

TOO_SMALL = "too small"
"""``note`` of a segment with fewer closed deals than ``min_closed``, and ``retention_note``
of one with fewer customers than ``min_customers``."""

MIN_CUSTOMERS = 20
"""Default minimum of customers for a significant retention lift. It is lower than the
default minimum of closed deals (30), because a segment has fewer customers than deals."""

CHURN_COLUMNS: tuple[str, ...] = (
    "customers",
    "churned",
    "retention_rate",
    "horizon_customers",
    "horizon_retained",
    "horizon_retention_rate",
    "too_recent",
)
"""Retention columns of :func:`segment_performance`, after the win-rate columns."""

RETENTION_PROFILE_COLUMNS: tuple[str, ...] = (
    "customers",
    "churned",
    "retention_rate",
    "overall_retention_rate",
    "retention_lift",
    "retention_p_value",
    "retention_significant",
    "retention_note",
    "horizon_customers",
    "horizon_retention_rate",
)
"""Retention columns of :func:`ideal_customer_profile`, after ``revenue_rank``."""


def segment_performance(
    deals: ibis.Table,
    accounts: ibis.Table,
    *,
    by: str,
    size_bands: Sequence[tuple[str, int]] = SIZE_BANDS,
    as_of: datetime | None = None,
    horizon_days: float = HORIZON_DAYS,
    renewal_pattern: str | None = RENEWAL_PATTERN,
) -> ibis.Table:
    """Summarise closed deals and customer retention per value of one account attribute.

    ``by`` is one of :data:`ACCOUNT_DIMENSIONS`, and ``size_bands`` sets the bands of
    ``size_band`` (see :data:`SIZE_BANDS`). ``as_of``, ``horizon_days`` and
    ``renewal_pattern`` set the retention columns, as the module docstring defines them; a
    naive ``as_of`` is read as UTC. Returns one row per segment (the ``by`` column, which is
    null for accounts without that attribute) with:

    - ``closed``, ``won`` and ``lost``: counts of closed deals;
    - ``win_rate``: ``won / closed``, null when the segment has no closed deal;
    - ``acv``: the mean ``amount`` of won deals (nulls ignored), in currency units;
    - ``won_revenue``: the summed ``amount`` of won deals, 0.0 without any;
    - ``median_cycle_days``: the median days from ``created_at`` to ``closed_at`` of won
      deals with both dates, null without any;
    - ``accounts``: the number of distinct accounts with at least one closed deal;
    - ``open_deals``: open deals of the segment's accounts, which the other columns exclude;
    - ``customers``: accounts with a won deal, and ``churned``: those of them that churned;
    - ``retention_rate``: ``(customers - churned) / customers``, null without customers;
    - ``horizon_customers``: customers first won at least ``horizon_days`` before
      ``as_of``, and ``horizon_retained``: those of them not churned within
      ``horizon_days`` of their first win;
    - ``horizon_retention_rate``: ``horizon_retained / horizon_customers``, null when
      ``horizon_customers`` is 0;
    - ``too_recent``: customers first won less than ``horizon_days`` before ``as_of``.

    ``churned``, ``retention_rate``, ``horizon_retained`` and ``horizon_retention_rate`` are
    null when the data hold no churn dates (see the module docstring).

    Rows are ordered by segment: size bands in band order, other values alphabetically, and
    the null segment last. Deals that fit no segment are counted by :func:`excluded_deals`.

    Raises:
        ValueError: ``by`` is not an account dimension, ``size_bands`` is invalid,
            ``horizon_days`` is not positive, or ``renewal_pattern`` is not a valid regular
            expression.
    """
    _check_dimension(by)
    status = customer_churn(
        deals, accounts, as_of=as_of, horizon_days=horizon_days, renewal_pattern=renewal_pattern
    )
    rows = _deals_with_segment(deals, accounts, by, size_bands, status)

    rows = _rank_cycle_days(rows, by)
    summary = rows.aggregate(
        by=[by],
        closed=rows._closed.cast("int64").sum(),
        won=rows._won.cast("int64").sum(),
        open_deals=(~rows._closed).cast("int64").sum(),
        acv=rows._won_amount.mean(),
        won_revenue=rows._won_amount.sum().fill_null(0.0),
        accounts=_accounts_where(rows, rows._closed),
        _median_lower=_cycle_days_at_rank(rows, _middle_rank(rows._n).floor()).max(),
        _median_upper=_cycle_days_at_rank(rows, _middle_rank(rows._n).ceil()).max(),
        customers=_accounts_where(rows, rows._customer),
        _churned=_accounts_where(rows, rows._churned_at.notnull()),
        horizon_customers=_accounts_where(rows, rows._horizon_eligible),
        _horizon_retained=_accounts_where(rows, rows._retained_at_horizon),
        too_recent=_accounts_where(rows, ~rows._horizon_eligible),
        _churn_known=rows._churn_known.any(),
    )

    summary = summary.mutate(
        lost=summary.closed - summary.won,
        win_rate=ibis.cases(
            (summary.closed > 0, summary.won.cast("float64") / summary.closed.cast("float64")),
            else_=ibis.null("float64"),
        ),
        # numpy's linear interpolation at a fraction of 0.5. For an odd count both bounds
        # are the middle value, so the gap is 0.
        median_cycle_days=summary._median_upper
        - (summary._median_upper - summary._median_lower) * 0.5,
        churned=ibis.ifelse(summary._churn_known, summary._churned, ibis.null("int64")),
        horizon_retained=ibis.ifelse(
            summary._churn_known, summary._horizon_retained, ibis.null("int64")
        ),
    )
    summary = summary.mutate(
        retention_rate=_share(summary.customers - summary.churned, summary.customers),
        horizon_retention_rate=_share(summary.horizon_retained, summary.horizon_customers),
    )
    columns = ["closed", "won", "lost", "win_rate", "acv", "won_revenue", "median_cycle_days"]
    summary = summary.select(by, *columns, "accounts", "open_deals", *CHURN_COLUMNS)
    return summary.order_by(_segment_order(summary[by], by, size_bands))


def with_buying_committee(accounts: ibis.Table, people: ibis.Table) -> ibis.Table:
    """Add the buying committee of each account: its size band and its most senior role.

    The committee of an account is its distinct people (``people.account_id``).
    ``committee_size`` is the label of :data:`COMMITTEE_BANDS` that the count falls in, null
    for an account with no known person. ``committee_roles`` is the most senior level among
    the people's titles (see :data:`SENIORITY`): ``executive``, ``manager``, ``individual``,
    or ``unknown`` when no title is known; null for an account with no known person.
    """
    title = people.title.lower().fill_null("")
    level = ibis.cases(
        *[(title.re_search(pattern), index) for index, (_, pattern) in enumerate(SENIORITY)],
        (title.strip() != "", len(SENIORITY)),
        else_=len(SENIORITY) + 1,
    )
    committees = (
        people.filter(people.account_id.notnull())
        .mutate(_level=level)
        .group_by(_committee_account="account_id")
        .aggregate(_people=ibis._.person_id.nunique(), _top=ibis._._level.min())
    )
    names = [name for name, _ in SENIORITY] + ["individual", "unknown"]
    joined = accounts.left_join(committees, accounts.account_id == committees._committee_account)
    size = _size_band(joined._people.cast("int64"), COMMITTEE_BANDS)
    roles = ibis.cases(
        *[(joined._top == index, name) for index, name in enumerate(names)],
        else_=ibis.null("string"),
    )
    return joined.mutate(committee_size=size, committee_roles=roles).select(
        *accounts.columns, "committee_size", "committee_roles"
    )


def excluded_deals(deals: ibis.Table, accounts: ibis.Table) -> ibis.Table:
    """Count the deals that :func:`segment_performance` leaves out of the rates, by reason.

    Returns ``reason`` and ``deals``, one row per reason that applies to at least one deal,
    ordered by reason. Each deal counts once, under the first reason that applies:
    ``no account`` (null ``account_id``), ``unknown account`` (an ``account_id`` not in
    ``accounts``), then ``open`` (``is_closed`` false or null).
    """
    known = accounts.select(_known_id=accounts.account_id).distinct()
    rows = deals.left_join(known, deals.account_id == known._known_id)

    reason = ibis.cases(
        (rows.account_id.isnull(), "no account"),
        (rows._known_id.isnull(), "unknown account"),
        (~rows.is_closed.fill_null(False), "open"),
        else_=ibis.null("string"),
    )
    rows = rows.select(reason=reason).filter(ibis._.reason.notnull())
    counts = rows.aggregate(by=["reason"], deals=rows.count())
    return counts.order_by("reason")


def ideal_customer_profile(
    deals: ibis.Table,
    accounts: ibis.Table,
    *,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    min_closed: int = 30,
    alpha: float = 0.05,
    size_bands: Sequence[tuple[str, int]] = SIZE_BANDS,
    min_customers: int = MIN_CUSTOMERS,
    as_of: datetime | None = None,
    horizon_days: float = HORIZON_DAYS,
    renewal_pattern: str | None = RENEWAL_PATTERN,
) -> pd.DataFrame:
    """Rank account attribute values by their lift in win rate and retention, and by revenue.

    Returns one row per value of each dimension in ``dimensions`` (see
    :func:`segment_performance`, whose population this shares and whose ``as_of``,
    ``horizon_days`` and ``renewal_pattern`` this passes on) with ``dimension``, ``value``,
    ``closed``, ``won``, ``win_rate``, ``overall_win_rate``, ``lift``, ``acv``,
    ``won_revenue_share``, ``p_value``, ``significant``, ``note``, ``rank``,
    ``revenue_rank``, then the retention columns ``customers``, ``churned``,
    ``retention_rate``, ``overall_retention_rate``, ``retention_lift``,
    ``retention_p_value``, ``retention_significant``, ``retention_note``,
    ``horizon_customers`` and ``horizon_retention_rate``.

    ``overall_win_rate`` is won over closed across all segments of the dimension, and
    ``lift`` is ``win_rate / overall_win_rate``. ``won_revenue_share`` is the segment's won
    revenue over the dimension's. ``p_value`` is the two-sided Fisher's exact test
    (``scipy.stats.fisher_exact``) of the 2x2 table of won and lost deals in the segment
    against the rest of the dimension, exact at every sample size. ``significant`` is
    ``p_value < alpha`` with at least ``min_closed`` closed deals, and smaller segments are
    kept with the ``note`` "too small" (otherwise an empty string). NOTE: the p-values are
    not corrected for multiple comparisons, so with many segments some will fall below
    ``alpha`` by chance.

    Retention is tested the same way over customers: ``overall_retention_rate`` is the
    dimension's customers not churned over its customers, ``retention_lift`` is
    ``retention_rate / overall_retention_rate``, and ``retention_p_value`` is Fisher's
    exact test of retained and churned customers in the segment against the rest.
    ``retention_significant`` needs ``retention_p_value < alpha`` and at least
    ``min_customers`` customers, and smaller segments get the ``retention_note``
    "too small". Without churn data (see the module docstring) the retention figures are
    null, ``retention_significant`` is false and ``retention_note`` is empty.
    ``horizon_retention_rate`` is shown for reading only: it is not tested.

    ``rank`` orders the rows in three groups. First come the segments with significant
    evidence for them and none against them: a significant lift above 1 in win rate or in
    retention, and no significant lift below 1 in either. Last come the segments whose
    retention is significantly lower, because they lose the customers they win. All other
    segments are in between. Within each group, rows are ordered by lift in win rate
    (highest first, null last), then by won revenue share, dimension and value. Without
    churn data the last group is empty, and this is the win-rate ranking alone.
    ``revenue_rank`` orders by won revenue share alone, with the same tie-breaks.

    Raises:
        ValueError: a dimension is unknown or repeated, ``min_closed`` or ``min_customers``
            is below 1, ``alpha`` is not between 0 and 1, or ``size_bands``,
            ``horizon_days`` or ``renewal_pattern`` is invalid.
    """
    _check_profile_arguments(dimensions, min_closed, alpha)
    if min_customers < 1:
        raise ValueError(f"min_customers must be 1 or more, not {min_customers}")
    segments = _segments_of(
        deals,
        accounts,
        dimensions,
        size_bands,
        as_of=as_of,
        horizon_days=horizon_days,
        renewal_pattern=renewal_pattern,
    ).to_pandas()

    profile = _with_rates(segments)
    profile["p_value"] = _fisher_p_values(profile["won"], profile["closed"], profile["dimension"])
    too_small = profile["closed"] < min_closed
    profile["significant"] = (profile["p_value"] < alpha) & ~too_small
    profile["note"] = np.where(too_small, TOO_SMALL, "")
    profile = _with_retention_test(profile, min_customers=min_customers, alpha=alpha)

    profile = _ranked(profile)
    columns = ["dimension", "value", "closed", "won", "win_rate", "overall_win_rate", "lift"]
    columns += ["acv", "won_revenue_share", "p_value", "significant", "note", "rank"]
    return profile[[*columns, "revenue_rank", *RETENTION_PROFILE_COLUMNS]]


# Segments in Ibis ----------------------------------------------------------------------------


def _check_dimension(by: str) -> None:
    if by not in ACCOUNT_DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}. Use one of {', '.join(ACCOUNT_DIMENSIONS)}")


def _check_size_bands(size_bands: Sequence[tuple[str, int]]) -> None:
    minimums = [minimum for _, minimum in size_bands]
    labels = [label for label, _ in size_bands]
    if not size_bands:
        raise ValueError("size_bands is empty. Give at least one (label, minimum) pair")
    if any(later <= earlier for earlier, later in itertools.pairwise(minimums)):
        raise ValueError(f"size band minimums {minimums} must be strictly increasing")
    if len(set(labels)) != len(labels):
        raise ValueError(f"size band labels {labels} must be distinct")


def _size_band(employees: ibis.IntegerValue, size_bands: Sequence[tuple[str, int]]) -> ibis.Value:
    """Return the label of the band that ``employees`` falls in, or null."""
    _check_size_bands(size_bands)
    highest_first = [(employees >= minimum, label) for label, minimum in reversed(size_bands)]
    return ibis.cases(*highest_first, else_=ibis.null("string"))


def _deals_with_segment(
    deals: ibis.Table,
    accounts: ibis.Table,
    by: str,
    size_bands: Sequence[tuple[str, int]],
    status: ibis.Table,
) -> ibis.Table:
    """Return the deals of known accounts with ``by``, ``_closed``, ``_won``, amounts and
    their account's retention status (the columns of :func:`customer_churn`)."""
    if by == "size_band":
        segment = _size_band(accounts.employees, size_bands)
    else:
        segment = accounts[by].cast("string")
    attributes = accounts.select(_account_key=accounts.account_id, **{by: segment})
    status = status.select(
        _status_key=status.account_id,
        _customer=status.customer,
        _churned_at=status.churned_at,
        _horizon_eligible=status.horizon_eligible,
        _retained_at_horizon=status.retained_at_horizon,
        _churn_known=status.churn_known,
    )
    attributes = attributes.inner_join(status, attributes._account_key == status._status_key)

    rows = deals.inner_join(attributes, deals.account_id == attributes._account_key)
    closed = rows.is_closed.fill_null(False)
    won = closed & rows.is_won.fill_null(False)
    cycle_days = days_between(rows.created_at, rows.closed_at)
    return rows.select(
        "account_id",
        by,
        _closed=closed,
        _won=won,
        _won_amount=ibis.cases((won, rows.amount), else_=ibis.null("float64")),
        _cycle_days=ibis.cases((won, cycle_days), else_=ibis.null("float64")),
        _customer=rows._customer,
        _churned_at=rows._churned_at,
        _horizon_eligible=rows._horizon_eligible,
        _retained_at_horizon=rows._retained_at_horizon,
        _churn_known=rows._churn_known,
    )


def _accounts_where(rows: ibis.Table, condition: ibis.BooleanValue) -> ibis.IntegerScalar:
    """Return the number of distinct accounts of ``rows`` with ``condition`` true."""
    return ibis.cases((condition, rows.account_id), else_=ibis.null("string")).nunique()


def _share(part: ibis.IntegerValue, whole: ibis.IntegerValue) -> ibis.FloatingValue:
    """Return ``part / whole`` as float64, null when ``whole`` is 0 or either is null."""
    return ibis.cases(
        (whole > 0, part.cast("float64") / whole.cast("float64")), else_=ibis.null("float64")
    )


def _rank_cycle_days(rows: ibis.Table, by: str) -> ibis.Table:
    """Add ``_rank`` (from 0, ascending by ``_cycle_days``) and ``_n`` (the days counted).

    Rows without days are ranked apart from the others, so the ranks of the days do not
    depend on where an engine sorts nulls.
    """
    rows = rows.mutate(_has_days=rows._cycle_days.notnull())
    partition = [by, "_has_days"]
    ordered = ibis.window(group_by=partition, order_by=["_cycle_days"])
    whole = ibis.window(group_by=partition)
    return rows.mutate(
        _rank=ibis.row_number().over(ordered),
        _n=rows._cycle_days.count().over(whole),
    )


def _middle_rank(count: ibis.IntegerValue) -> ibis.FloatingValue:
    return (count - 1).cast("float64") * ibis.literal(0.5, type="float64")


def _cycle_days_at_rank(rows: ibis.Table, rank: ibis.NumericValue) -> ibis.Value:
    at_rank = rows._has_days & (rows._rank == rank)
    return ibis.cases((at_rank, rows._cycle_days), else_=ibis.null("float64"))


def _segment_order(
    segment: ibis.Value, by: str, size_bands: Sequence[tuple[str, int]]
) -> list[ibis.Value]:
    """Return sort keys that put size bands in band order and the null segment last."""
    keys: list[ibis.Value] = [segment.isnull()]
    if by == "size_band":
        positions = [(segment == label, index) for index, (label, _) in enumerate(size_bands)]
        keys.append(ibis.cases(*positions, else_=len(size_bands)))
    keys.append(segment)
    return keys


def _segments_of(
    deals: ibis.Table,
    accounts: ibis.Table,
    dimensions: Sequence[str],
    size_bands: Sequence[tuple[str, int]],
    *,
    as_of: datetime | None,
    horizon_days: float,
    renewal_pattern: str | None,
) -> ibis.Table:
    """Return the segments of every dimension stacked, with ``dimension`` and ``value``."""
    parts = []
    for dimension in dimensions:
        table = segment_performance(
            deals,
            accounts,
            by=dimension,
            size_bands=size_bands,
            as_of=as_of,
            horizon_days=horizon_days,
            renewal_pattern=renewal_pattern,
        )
        parts.append(
            table.select(
                dimension=ibis.literal(dimension, type="string"),
                value=table[dimension],
                closed=table.closed,
                won=table.won,
                win_rate=table.win_rate,
                acv=table.acv,
                won_revenue=table.won_revenue,
                customers=table.customers,
                churned=table.churned,
                retention_rate=table.retention_rate,
                horizon_customers=table.horizon_customers,
                horizon_retention_rate=table.horizon_retention_rate,
            )
        )
    return ibis.union(*parts, distinct=False)


# Profile in pandas ---------------------------------------------------------------------------


def _check_profile_arguments(dimensions: Sequence[str], min_closed: int, alpha: float) -> None:
    if isinstance(dimensions, str):
        raise ValueError(f"dimensions must be a sequence of names, not the string {dimensions!r}")
    if not dimensions:
        raise ValueError("dimensions is empty. Give at least one account dimension")
    for dimension in dimensions:
        _check_dimension(dimension)
    if len(set(dimensions)) != len(dimensions):
        raise ValueError(f"dimensions {list(dimensions)} repeat a dimension")
    if min_closed < 1:
        raise ValueError(f"min_closed must be 1 or more, not {min_closed}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")


def _with_rates(segments: pd.DataFrame) -> pd.DataFrame:
    """Add ``overall_win_rate``, ``lift`` and ``won_revenue_share``."""
    profile = segments.astype({"closed": "int64", "won": "int64"})
    totals = profile.groupby("dimension")[["closed", "won", "won_revenue"]].transform("sum")

    overall = totals["won"] / totals["closed"].where(totals["closed"] > 0)
    profile["overall_win_rate"] = overall.astype("float64")
    profile["lift"] = (profile["win_rate"] / profile["overall_win_rate"]).astype("float64")
    revenue = totals["won_revenue"].where(totals["won_revenue"] > 0)
    profile["won_revenue_share"] = (profile["won_revenue"] / revenue).astype("float64")
    return profile


def _fisher_p_values(hits: pd.Series, trials: pd.Series, dimension: pd.Series) -> list[float]:
    """Return the two-sided Fisher's exact p-value of each segment against the rest.

    ``hits`` (won deals, retained customers) and ``trials`` (closed deals, customers) are
    counts per segment. The rest is the other segments of the same ``dimension``.
    """
    hit = hits.to_numpy(dtype="int64")
    miss = trials.to_numpy(dtype="int64") - hit
    rest_hit = hits.groupby(dimension).transform("sum").to_numpy(dtype="int64") - hit
    rest_trials = trials.groupby(dimension).transform("sum").to_numpy(dtype="int64")
    rest_miss = rest_trials - rest_hit - hit - miss

    p_values = []
    for counts in zip(hit, miss, rest_hit, rest_miss, strict=True):
        table = [[int(counts[0]), int(counts[1])], [int(counts[2]), int(counts[3])]]
        p_values.append(float(fisher_exact(table, alternative="two-sided").pvalue))
    return p_values


def _with_retention_test(
    profile: pd.DataFrame, *, min_customers: int, alpha: float
) -> pd.DataFrame:
    """Add the overall retention, ``retention_lift``, its test and ``retention_note``.

    Without churn data ``churned`` is null in every row, and so are the added figures.
    """
    profile = profile.astype({"customers": "int64"})
    known = profile["churned"].notna().to_numpy()
    churned = pd.to_numeric(profile["churned"]).fillna(0).astype("int64")
    retained = profile["customers"] - churned
    totals = pd.DataFrame({"retained": retained, "customers": profile["customers"]})
    totals = totals.groupby(profile["dimension"]).transform("sum")

    overall = totals["retained"] / totals["customers"].where(totals["customers"] > 0)
    profile["overall_retention_rate"] = overall.astype("float64").where(known)
    lift = profile["retention_rate"].astype("float64") / profile["overall_retention_rate"]
    profile["retention_lift"] = lift.astype("float64")
    p_values = _fisher_p_values(retained, profile["customers"], profile["dimension"])
    profile["retention_p_value"] = pd.Series(p_values, index=profile.index).where(known)

    too_small = known & (profile["customers"] < min_customers).to_numpy()
    profile["retention_significant"] = (profile["retention_p_value"] < alpha) & ~too_small
    profile["retention_note"] = np.where(too_small, TOO_SMALL, "")
    return profile


def _ranked(profile: pd.DataFrame) -> pd.DataFrame:
    """Sort the rows into ``rank`` order and add ``rank`` and ``revenue_rank`` from 1."""
    profile = profile.sort_values(["dimension", "value"], kind="stable", na_position="last")

    by_revenue = profile.sort_values(
        "won_revenue_share", ascending=False, kind="stable", na_position="last"
    )
    profile["revenue_rank"] = pd.Series(range(1, len(profile) + 1), index=by_revenue.index)

    winning = profile["significant"] & (profile["lift"] > 1)
    losing = profile["significant"] & (profile["lift"] < 1)
    retaining = profile["retention_significant"] & (profile["retention_lift"] > 1)
    churning = profile["retention_significant"] & (profile["retention_lift"] < 1)
    profile["_group"] = np.where(
        churning, 2, np.where((winning | retaining) & ~losing & ~churning, 0, 1)
    )
    profile = profile.sort_values(
        ["_group", "lift", "won_revenue_share"],
        ascending=[True, False, False],
        kind="stable",
        na_position="last",
    )
    profile["rank"] = range(1, len(profile) + 1)
    return profile.drop(columns="_group").reset_index(drop=True)
