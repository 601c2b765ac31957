"""The audit of the conversion sync: outbox rows by destination, action and status.

:func:`sync_status` returns one row per destination and action with the count of rows in
each status, where ``queued`` includes rows being sent right now. It adds the most frequent
reasons of rows not delivered (``rejected``, ``skipped`` and ``failed``), grouped by code:
messages differ in details such as a conversion's age, so the code is what groups them,
and one message of each code is its example. :func:`sync_reasons` returns the same
reasons as a table of their own.
"""

from __future__ import annotations

import ibis
import pandas as pd

from journeymap.store.store import Store

STATUS_COLUMNS = ("queued", "sent", "matched", "rejected", "skipped", "failed")
"""The count columns of :func:`sync_status`, in the order rows move through them."""

UNDELIVERED = ("rejected", "skipped", "failed")

EXAMPLE_CHARS = 80
"""Maximum length of the example message in ``top_reasons``; longer ones are cut."""

REASON_COLUMNS = ("destination", "action", "status", "code", "rows", "example")


def sync_status(store: Store, *, top: int = 3) -> pd.DataFrame:
    """Return the outbox counts per destination and action, with the top reasons.

    Columns: ``destination``, ``platform``, ``action``, one count per status of
    :data:`STATUS_COLUMNS`, ``total``, and ``top_reasons``: up to ``top`` codes of
    undelivered rows as ``"<code> (<rows>): <example message>"`` joined by ``"; "``, most
    frequent first, the example cut at :data:`EXAMPLE_CHARS`. An empty outbox gives an
    empty frame with those columns.
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

    reasons: dict[tuple[str, str], list[str]] = {}
    for reason in sync_reasons(store, top=top).to_dict("records"):
        example = _shorten(str(reason["example"]), EXAMPLE_CHARS)
        text = f"{reason['code']} ({reason['rows']})" + (f": {example}" if example else "")
        key = (str(reason["destination"]), str(reason["action"]))
        reasons.setdefault(key, []).append(text)
    frame["top_reasons"] = [
        "; ".join(reasons.get((row.destination, row.action), []))
        for row in frame.itertuples(index=False)
    ]
    for name in (*STATUS_COLUMNS, "total"):
        frame[name] = frame[name].fillna(0).astype("int64")
    result: pd.DataFrame = frame[columns]
    return result


def sync_reasons(store: Store, *, top: int = 3) -> pd.DataFrame:
    """Return the top reasons of undelivered rows per destination and action, by code.

    Columns :data:`REASON_COLUMNS`: ``status`` (the most frequent undelivered status of the
    code's rows), ``code`` (``-`` when the rows have none), ``rows`` (the count) and
    ``example`` (the message of one of those rows, whole). Up to ``top`` codes per
    destination and action, most frequent first, ties by code.
    """
    outbox = store.table("sync_outbox")
    undelivered = outbox.filter(outbox.status.isin(list(UNDELIVERED)))
    undelivered = undelivered.mutate(code=undelivered.last_code.fill_null("-"))
    grouped = undelivered.group_by(["destination", "action", "code"]).aggregate(
        rows=undelivered.count(),
        status=undelivered.status.mode(),
        example=undelivered.last_message.min(),
    )
    rank = ibis.row_number().over(
        group_by=[grouped.destination, grouped.action],
        order_by=[ibis.desc(grouped.rows), grouped.code],
    )
    best = grouped.mutate(_rank=rank).filter(ibis._._rank < top).to_pandas()
    if best.empty:
        return pd.DataFrame(columns=list(REASON_COLUMNS))
    best = best.sort_values(["destination", "action", "_rank"], ignore_index=True)
    best["rows"] = best["rows"].astype("int64")
    best["example"] = best["example"].fillna("")
    result: pd.DataFrame = best[list(REASON_COLUMNS)]
    return result


def _shorten(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
