"""The audit of the conversion sync: outbox rows by destination, action and status.

:func:`sync_status` returns one row per destination and action with the count of rows in
each status, where ``queued`` includes rows being sent right now. It adds the most frequent
reasons (code and message) of rows not delivered: ``rejected``, ``skipped`` and ``failed``.
"""

from __future__ import annotations

import ibis
import pandas as pd

from journeymap.store.store import Store

STATUS_COLUMNS = ("queued", "sent", "matched", "rejected", "skipped", "failed")
"""The count columns of :func:`sync_status`, in the order rows move through them."""

UNDELIVERED = ("rejected", "skipped", "failed")


def sync_status(store: Store, *, top: int = 3) -> pd.DataFrame:
    """Return the outbox counts per destination and action, with the top reasons.

    Columns: ``destination``, ``platform``, ``action``, one count per status of
    :data:`STATUS_COLUMNS`, ``total``, and ``top_reasons``: up to ``top`` reasons of
    undelivered rows as ``"<code>: <message> (<rows>)"`` joined by ``"; "``, most frequent
    first. An empty outbox gives an empty frame with those columns.
    """
    outbox = store.table("sync_outbox")
    rows = outbox.mutate(status=outbox.status.cases(("sending", "queued"), else_=outbox.status))
    counts = rows.group_by(["destination", "platform", "action"]).aggregate(
        total=rows.count(),
        **{name: (rows.status == name).sum() for name in STATUS_COLUMNS},
    )
    frame = counts.order_by(["destination", "action"]).to_pandas()
    columns = ["destination", "platform", "action", *STATUS_COLUMNS, "total", "top_reasons"]
    if frame.empty:
        return pd.DataFrame(columns=columns)

    reasons = _reasons(outbox, top)
    frame["top_reasons"] = [
        reasons.get((row.destination, row.action), "") for row in frame.itertuples(index=False)
    ]
    for name in (*STATUS_COLUMNS, "total"):
        frame[name] = frame[name].fillna(0).astype("int64")
    result: pd.DataFrame = frame[columns]
    return result


def _reasons(outbox: ibis.Table, top: int) -> dict[tuple[str, str], str]:
    """Return the top reasons of undelivered rows by destination and action."""
    undelivered = outbox.filter(outbox.status.isin(list(UNDELIVERED)))
    grouped = undelivered.group_by(
        ["destination", "action", "last_code", "last_message"]
    ).aggregate(rows=undelivered.count())
    rank = ibis.row_number().over(
        group_by=[grouped.destination, grouped.action],
        order_by=[ibis.desc(grouped.rows), grouped.last_code],
    )
    best = grouped.mutate(_rank=rank).filter(ibis._._rank < top).to_pandas()
    best = best.sort_values(["destination", "action", "_rank"])
    reasons: dict[tuple[str, str], list[str]] = {}
    for row in best.itertuples(index=False):
        code = row.last_code if isinstance(row.last_code, str) else "-"
        message = row.last_message if isinstance(row.last_message, str) else ""
        text = f"{code}: {message}" if message else code
        reasons.setdefault((row.destination, row.action), []).append(f"{text} ({row.rows})")
    return {key: "; ".join(items) for key, items in reasons.items()}
