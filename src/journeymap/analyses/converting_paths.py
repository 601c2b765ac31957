"""Converting paths: the channel sequences of the entities that converted to one kind.

Counts are built as Ibis expressions (window functions, group-bys and the collected-struct
path of :func:`journeymap.analyses.paths.journey_paths`), so they run on DuckDB and Spark.
Only the final top-N table, a few rows, is shaped in pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import pandas as pd

from journeymap.analyses.funnel import stage_funnel
from journeymap.analyses.paths import journey_paths

OTHER_PATHS = "(other paths)"
"""Path label of the row that sums every path not listed."""

UNATTRIBUTED = "(unattributed)"
"""Path label of a journey without touches."""

COLUMNS = (
    "path",
    "converters",
    "share",
    "converting_journeys",
    "non_converting_journeys",
    "conversion_rate",
)
COUNTS = ("converters", "converting_journeys", "non_converting_journeys")


def collapsed_touches(touches: ibis.Table) -> ibis.Table:
    """Drop each touch whose channel equals the channel of the touch before it in its journey.

    Takes ``journey_touches`` and returns the same columns, with ``repeats`` set to 1, so that
    ``a > a > b > a`` reads ``a > b > a``. Positions keep their gaps, which keeps their order.
    """
    # The lag becomes a column before the filter, because ibis 12 compiles a window inside a
    # filter to Spark SQL that refers to a column Spark cannot resolve.
    in_journey = ibis.window(group_by="journey_id", order_by="position")
    marked = touches.mutate(_previous=touches.channel.lag().over(in_journey))
    changed = marked.filter(marked._previous.isnull() | (marked._previous != marked.channel))
    changed = changed.drop("_previous")
    return changed.mutate(repeats=ibis.literal(1, "int64"))


def path_counts(
    journeys: ibis.Table, touches: ibis.Table, *, kind: str, collapse: bool = False
) -> ibis.Table:
    """Count converters and journeys per path of the journeys of one conversion kind.

    Only journeys with an ``entity_id`` count, so aggregated-path imports (no entity) are
    left out. An entity is a converter of the path of its first conversion of ``kind``
    (earliest ``converted_at``, then ``journey_id``), so each converting entity counts once.
    Returns ``path``, ``converters``, ``converting_journeys`` and
    ``non_converting_journeys`` (all int64) for every path with at least one conversion.
    """
    rows = journeys.filter(journeys.kind == kind.lower(), journeys.entity_id.notnull())
    steps = collapsed_touches(touches) if collapse else touches
    rows = rows.left_join(journey_paths(steps), "journey_id")
    rows = rows.mutate(path=rows.path.fill_null(UNATTRIBUTED), converted=rows.conversions > 0)

    first = ibis.window(
        group_by=["entity_id", "converted"], order_by=["converted_at", "journey_id"]
    )
    is_first = rows.converted & (ibis.row_number().over(first) == 0)
    rows = rows.mutate(first_conversion=is_first.cast("int64"))

    counts = rows.group_by("path").aggregate(
        converters=rows.first_conversion.sum(),
        converting_journeys=rows.conversions.sum().cast("int64"),
        non_converting_journeys=rows.nulls.sum().cast("int64"),
    )
    return counts.filter(counts.converting_journeys > 0)


def paths_before(
    journeys: ibis.Table,
    touches: ibis.Table,
    *,
    kind: str,
    top: int = 10,
    collapse: bool = False,
) -> pd.DataFrame:
    """Return the ``top`` paths of the entities that converted to ``kind``, and the rest.

    Takes the ``journeys`` and ``journey_touches`` tables. Paths are ranked by
    ``converters`` (entities, see :func:`path_counts`), then by path text. ``share`` is
    converters over all converting entities. ``conversion_rate`` is converting journeys over
    converting plus non-converting journeys with that path. With ``collapse``, consecutive
    touches of one channel count as one step.

    The last row, ``(other paths)``, sums the paths not listed and is always present, with
    zero counts when every path is listed. Its share is 1 minus the listed shares, so the
    ``share`` column summed in row order is exactly 1.0 and the ``converters`` column sums to
    the number of converting entities. Its share may therefore differ from its converters
    over the total by float rounding (about 1e-16). With no converting entity the frame has
    no rows.

    Raises:
        ValueError: ``top`` is below 1.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")

    counts = path_counts(journeys, touches, kind=kind, collapse=collapse)
    listed = counts.order_by([ibis.desc("converters"), "path"]).limit(top).to_pandas()
    totals = counts.aggregate(**{name: counts[name].sum() for name in COUNTS}).to_pandas()
    if listed.empty or not totals["converters"].iloc[0]:
        return pd.DataFrame({name: [] for name in COLUMNS})

    other = {name: int(totals[name].iloc[0]) - int(listed[name].sum()) for name in COUNTS}
    table = pd.concat([listed, pd.DataFrame([{"path": OTHER_PATHS, **other}])], ignore_index=True)
    table[list(COUNTS)] = table[list(COUNTS)].astype("int64")

    table["share"] = _shares(table["converters"].tolist())
    journeys_total = table["converting_journeys"] + table["non_converting_journeys"]
    table["conversion_rate"] = table["converting_journeys"] / journeys_total.where(
        journeys_total > 0
    )
    ordered: pd.DataFrame = table.loc[:, list(COLUMNS)]
    return ordered


def _shares(converters: list[int]) -> list[float]:
    """Return each count over the total, with the last share set so the row-order sum is 1.0.

    For the listed sum ``s >= 0.5`` the difference ``1.0 - s`` is exact. For smaller ``s`` it
    is off by at most 2**-54, half the float spacing below 1.0, so ``s + (1.0 - s)`` still
    rounds to 1.0 (a tie goes to the even 1.0).
    """
    total = sum(converters)
    shares = [count / total for count in converters[:-1]]
    listed = 0.0
    for share in shares:
        listed += share
    return [*shares, 1.0 - listed]


def conversion_stays(journeys: ibis.Table) -> ibis.Table:
    """Return one stay per entity and conversion kind, for :func:`stage_funnel`.

    The stage is the kind, entered at the entity's first conversion of it, and never exited
    (``exited_at`` is null). Journeys without an entity or without conversions are ignored.
    """
    converted = journeys.filter(journeys.conversions > 0, journeys.entity_id.notnull())
    stays = converted.group_by(["entity_id", "kind"]).aggregate(
        entered_at=converted.converted_at.min()
    )
    return stays.select(
        "entity_id", stage=stays.kind, entered_at="entered_at", exited_at=ibis.null("timestamp")
    )


@dataclass(frozen=True)
class Reconciliation:
    """Converter counts of a converting-paths table and of the matching stage funnel."""

    path_converters: int
    """Sum of ``converters`` over every row of the paths table, ``(other paths)`` included."""
    funnel_converted: int
    """Entities the funnel counts as converted from the first stage to the second."""

    @property
    def balanced(self) -> bool:
        """Whether both counts are equal."""
        return self.path_converters == self.funnel_converted


def reconcile_with_funnel(
    paths: pd.DataFrame,
    journeys: ibis.Table,
    *,
    from_kind: str,
    to_kind: str,
    as_of: datetime | None = None,
) -> Reconciliation:
    """Compare the converters of ``paths`` with the funnel from ``from_kind`` to ``to_kind``.

    ``paths`` is the :func:`paths_before` table of ``to_kind`` for the same ``journeys``. The
    funnel runs on :func:`conversion_stays`, summed over every cohort. The counts are equal
    exactly when every entity that converted to ``to_kind`` first converted to ``from_kind``
    at or before its first ``to_kind`` conversion (and at or before ``as_of``, which defaults
    to the current time).
    """
    stages = [from_kind.lower(), to_kind.lower()]
    funnel = stage_funnel(conversion_stays(journeys), stages, as_of=as_of)
    converted = funnel.aggregate(converted=funnel.converted.sum()).to_pandas()["converted"]
    return Reconciliation(
        path_converters=int(paths["converters"].sum()),
        funnel_converted=int(converted.fillna(0).iloc[0]),
    )
