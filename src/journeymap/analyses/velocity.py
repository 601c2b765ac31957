"""Deal velocity: time in each stage, time between two stages, and deals stalled in a stage.

The functions take ``deal_stages`` rows, called stays here: one row per stay of a deal in a
stage, with ``entered_at`` and ``exited_at`` (null while the deal is still in the stage).
Durations are float64 days, counted in whole seconds (sub-second parts are dropped, because
Spark's ``unix_timestamp`` has no finer unit).

Quantiles are exact and use linear interpolation, the default method of ``numpy.quantile``
and ``pandas.Series.quantile``. For n sorted values x[0] ... x[n-1] and a fraction q, let
h = (n - 1) * q, i = floor(h) and t = h - i. The quantile is x[i] + (x[i+1] - x[i]) * t, or
x[i+1] - (x[i+1] - x[i]) * (1 - t) when t >= 0.5. These are the floating-point steps of
numpy 2, and the results equal ``numpy.quantile``'s to the bit (tested with numpy 2.4).
Ranks come from window functions, which DuckDB and Spark compute alike, rather than from
approximate quantile functions.
"""

from __future__ import annotations

from datetime import UTC, datetime

import ibis

from journeymap.common.epoch import epoch_seconds
from journeymap.store.schema import TS

QUANTILES: dict[str, float] = {"median_days": 0.5, "p75_days": 0.75, "p90_days": 0.9}
"""Output column and fraction of each quantile that the summaries report."""

SECONDS_PER_DAY = 86_400


def time_in_stage(
    stays: ibis.Table, *, as_of: datetime | None = None, by: str | None = None
) -> ibis.Table:
    """Summarise the days that deals spend in each stage.

    Returns one row per ``stage`` (and per value of the ``by`` column of ``stays``, when
    given, for example a deals column that the caller joined in), ordered by those keys:
    ``completed_stays``, ``median_days``, ``p75_days``, ``p90_days`` and ``open_stays``.

    The quantiles cover completed stays only, because the length of an open stay is not known
    yet. Without ``as_of``, a stay is completed when ``exited_at`` is not null and open
    otherwise. With ``as_of`` (naive means UTC), the summary is the state at that moment: a
    stay is completed when it exited at or before ``as_of``, and open when it entered at or
    before ``as_of`` and had not exited by then. The quantiles are null for a group without
    completed stays. A final stage such as ``Won`` is never exited, so all its stays are open.
    """
    keys = ["stage"] if by is None else ["stage", by]
    rows = _classify_stays(stays, as_of)

    ranked = _rank_values(rows, keys, "days")
    summary = ranked.aggregate(
        by=keys,
        completed_stays=ranked.days.count(),
        open_stays=ranked._open.cast("int64").sum(),
        **_quantile_bounds(ranked, "days"),
    )

    summary = summary.mutate(**_interpolated(summary, "completed_stays"))
    return summary.select(*keys, "completed_stays", *QUANTILES, "open_stays").order_by(keys)


def time_between(
    stays: ibis.Table, from_stage: str, to_stage: str, *, by: str | None = None
) -> ibis.Table:
    """Summarise the days that deals take from first entering one stage to first entering another.

    The days run from the first ``entered_at`` in ``from_stage`` to the first in ``to_stage``.
    Counts each deal that entered both stages, the second at or after the first. Returns
    ``deals``, ``median_days``, ``p75_days``, ``p90_days`` and ``mean_days``: one row, or one
    row per value of the ``by`` column of ``stays`` ordered by it. The ``by`` value should be
    the same on every stay of a deal (a deal or account attribute joined in by the caller).
    Without any such deal, ``deals`` is 0 and the other columns are null.

    Raises:
        ValueError: ``from_stage`` and ``to_stage`` are the same stage.
    """
    if from_stage == to_stage:
        raise ValueError(f"from_stage and to_stage are both {from_stage!r}. Pass two stages")
    keys = [] if by is None else [by]

    entries = _first_entries(stays, from_stage, to_stage, keys)
    entries = entries.filter(entries.reached >= entries.started)
    entries = entries.mutate(days=days_between(entries.started, entries.reached))

    ranked = _rank_values(entries, keys, "days")
    summary = ranked.aggregate(
        by=keys,
        deals=ranked.days.count(),
        mean_days=ranked.days.mean(),
        **_quantile_bounds(ranked, "days"),
    )

    summary = summary.mutate(**_interpolated(summary, "deals"))
    summary = summary.select(*keys, "deals", *QUANTILES, "mean_days")
    return summary.order_by(keys) if keys else summary


def stalled(
    stays: ibis.Table,
    deals: ibis.Table,
    *,
    as_of: datetime,
    threshold_days: float | None = None,
) -> ibis.Table:
    """List the open deals that have been in their current stage for longer than a threshold.

    A stay counts when it has no ``exited_at``, entered at or before ``as_of`` (naive means
    UTC), and its deal is in ``deals`` and not closed (``is_closed`` false or null). Its
    ``days_in_stage`` run from ``entered_at`` to ``as_of``. The threshold is
    ``threshold_days`` when given, and otherwise the stage's ``p75_days`` from
    :func:`time_in_stage` as of ``as_of``, so a stage without completed stays lists nothing.

    Returns ``deal_id``, ``stage``, ``entered_at``, ``days_in_stage``, ``threshold_days``,
    ``owner``, ``amount`` and ``currency``, longest first, then by ``deal_id`` and ``stage``.

    Raises:
        ValueError: ``threshold_days`` is negative.
    """
    if threshold_days is not None and threshold_days < 0:
        raise ValueError(f"threshold_days must be 0 or more, not {threshold_days}")
    moment = _utc_literal(as_of)

    rows = _open_stays_of_open_deals(stays, deals, moment)
    rows = rows.mutate(days_in_stage=days_between(rows.entered_at, moment))

    if threshold_days is None:
        thresholds = time_in_stage(stays, as_of=as_of).select("stage", threshold_days="p75_days")
        rows = rows.inner_join(thresholds, "stage")
    else:
        rows = rows.mutate(threshold_days=ibis.literal(float(threshold_days), type="float64"))

    rows = rows.filter(rows.days_in_stage > rows.threshold_days)
    columns = ["deal_id", "stage", "entered_at", "days_in_stage", "threshold_days"]
    rows = rows.select(*columns, "owner", "amount", "currency")
    return rows.order_by([ibis.desc("days_in_stage"), "deal_id", "stage"])


def days_between(start: ibis.TimestampValue, end: ibis.TimestampValue) -> ibis.FloatingValue:
    """Return the float64 days from ``start`` to ``end``, counted in whole seconds."""
    seconds = _whole_seconds(end) - _whole_seconds(start)
    return seconds.cast("float64") / SECONDS_PER_DAY


def _whole_seconds(moment: ibis.TimestampValue) -> ibis.IntegerValue:
    # DuckDB's epoch has a fractional part and Spark's has none, so both are floored.
    return epoch_seconds(moment).floor()


def _utc_literal(moment: datetime) -> ibis.TimestampScalar:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return ibis.literal(aware, type=TS)


def _classify_stays(stays: ibis.Table, as_of: datetime | None) -> ibis.Table:
    """Add ``days`` (the length of a completed stay, else null) and ``_open`` to each stay."""
    if as_of is None:
        completed = stays.exited_at.notnull()
        is_open = stays.exited_at.isnull()
    else:
        moment = _utc_literal(as_of)
        completed = (stays.exited_at <= moment).fill_null(False)
        not_exited = stays.exited_at.isnull() | (stays.exited_at > moment)
        is_open = ((stays.entered_at <= moment) & not_exited).fill_null(False)

    days = days_between(stays.entered_at, stays.exited_at)
    return stays.mutate(
        days=ibis.cases((completed, days), else_=ibis.null("float64")),
        _open=is_open,
    )


def _first_entries(
    stays: ibis.Table, from_stage: str, to_stage: str, keys: list[str]
) -> ibis.Table:
    """Return ``deal_id``, ``keys``, and each deal's first ``started`` and ``reached`` times.

    Only deals that entered both stages are kept.
    """
    rows = stays.filter(stays.stage.isin([from_stage, to_stage]))
    no_time = ibis.null(TS)
    entries = rows.aggregate(
        by=["deal_id", *keys],
        started=ibis.cases((rows.stage == from_stage, rows.entered_at), else_=no_time).min(),
        reached=ibis.cases((rows.stage == to_stage, rows.entered_at), else_=no_time).min(),
    )
    return entries.filter(entries.started.notnull() & entries.reached.notnull())


def _open_stays_of_open_deals(
    stays: ibis.Table, deals: ibis.Table, moment: ibis.TimestampScalar
) -> ibis.Table:
    rows = stays.filter(stays.exited_at.isnull() & (stays.entered_at <= moment))
    rows = rows.select("deal_id", "stage", "entered_at")
    deal_columns = deals.select(
        "deal_id", "owner", "amount", "currency", _closed=deals.is_closed.fill_null(False)
    )
    rows = rows.inner_join(deal_columns, "deal_id")
    return rows.filter(~rows._closed)


def _rank_values(rows: ibis.Table, keys: list[str], value: str) -> ibis.Table:
    """Add ``_rank`` (from 0, ascending by ``value``) and ``_n`` (the number of values).

    Rows with a null ``value`` are ranked apart from the others, so the ranks of the values
    do not depend on where an engine sorts nulls.
    """
    rows = rows.mutate(_has_value=rows[value].notnull())
    partition = [*keys, "_has_value"]
    ordered = ibis.window(group_by=partition, order_by=[value])
    whole = ibis.window(group_by=partition)
    return rows.mutate(
        _rank=ibis.row_number().over(ordered),
        _n=rows[value].count().over(whole),
    )


def _quantile_bounds(ranked: ibis.Table, value: str) -> dict[str, ibis.Value]:
    """Return aggregates that pick, for each quantile, the two values it interpolates between."""
    bounds: dict[str, ibis.Value] = {}
    for name, fraction in QUANTILES.items():
        lower = _position(ranked._n, fraction).floor()
        upper = ibis.least(lower + 1, ranked._n - 1)
        bounds[f"_{name}_lower"] = _value_at_rank(ranked, value, lower).max()
        bounds[f"_{name}_upper"] = _value_at_rank(ranked, value, upper).max()
    return bounds


def _value_at_rank(ranked: ibis.Table, value: str, rank: ibis.IntegerValue) -> ibis.Value:
    at_rank = ranked._has_value & (ranked._rank == rank)
    return ibis.cases((at_rank, ranked[value]), else_=ibis.null("float64"))


def _position(count: ibis.IntegerValue, fraction: float) -> ibis.FloatingValue:
    return (count - 1).cast("float64") * ibis.literal(fraction, type="float64")


def _interpolated(summary: ibis.Table, count: str) -> dict[str, ibis.Value]:
    """Return each quantile, interpolated between its bounds as ``numpy.quantile`` does."""
    values: dict[str, ibis.Value] = {}
    for name, fraction in QUANTILES.items():
        position = _position(summary[count], fraction)
        weight = position - position.floor()
        lower = summary[f"_{name}_lower"]
        upper = summary[f"_{name}_upper"]
        gap = upper - lower
        values[name] = ibis.cases(
            (weight >= 0.5, upper - gap * (1 - weight)),
            else_=lower + gap * weight,
        )
    return values
