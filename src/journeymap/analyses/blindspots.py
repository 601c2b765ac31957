"""Tracking blind spots: conversions, click ids and self-reported sources that tracking misses.

:func:`blind_spots` returns four tables, each computed in Ibis and moved to pandas at the end:

1. ``by_kind``: per conversion kind, the conversions and conversion value whose journey has no
   tracked touch. A touch is tracked unless its ``touch_type`` is ``self_reported``, the
   value the channel rules use for a source the person named in a form. Value is the
   conversion's ``value`` (``journeys.value``), so for closed-won conversions it is the won
   revenue that the import recorded.
2. ``by_kind`` also has the conversions and value whose tracked touches are all in direct
   channels (``channels.direct_channels``, compared case-insensitively).
3. ``click_ids``: touches with a click id that no ad spend row explains, by click platform.
   See :func:`unmatched_click_ids` for the matching rule.
4. ``agreement`` and ``undercount``: each self-reported channel beside the person's first
   tracked touch. See :func:`self_reported_pairs` for the rule.
5. ``stage_entries`` and ``expected``: stage entries that no tracked touch precedes, and the
   expected touchpoints of each stage that no data measures. See
   :mod:`journeymap.analyses.stage_gaps` for the rules.

Shares are fractions from 0 to 1, counts are conversions (weighted by ``journeys.conversions``
for aggregated paths) or touches, and money is summed as is in each row's currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd

from journeymap.channels.rules import CLICK_PLATFORM_SOURCES, ChannelClassifier
from journeymap.common.config import Config
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys, classified_touches
from journeymap.store.store import Store

SELF_REPORTED = "self_reported"
"""``touch_type`` of a touch that records the source a person named, not one that was tracked."""

NO_TRACKED_TOUCH = "(no tracked touch)"
"""Tracked first-touch channel of a self-reported touch whose person has no tracked touch."""

NO_PLATFORM = "(not set)"
"""Click platform label of a click-id touch without a ``click_platform``."""

EXTRA_SPEND_PLATFORMS = {"instagram": "meta"}
"""Spend platform names that bill clicks of another click platform: Instagram ads run on Meta."""


@dataclass(frozen=True)
class BlindSpots:
    """The tracking-health tables of :func:`blind_spots` and notes on what they leave out.

    ``agreement`` has one row per self-reported channel and one column per tracked first-touch
    channel (including ``(no tracked touch)``), holding counts of self-reported touches.
    """

    by_kind: pd.DataFrame
    click_ids: pd.DataFrame
    agreement: pd.DataFrame
    undercount: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    stage_entries: pd.DataFrame = field(default_factory=pd.DataFrame)
    expected: pd.DataFrame = field(default_factory=pd.DataFrame)


def blind_spots(
    store: Store, config: Config | None = None, *, journeys: Journeys | None = None
) -> BlindSpots:
    """Compute the tracking-health report of a store.

    ``journeys`` defaults to the stored journeys of the last build, and without a build to
    journeys built in the engine from the stored touchpoints (without writing them). An empty
    store returns empty tables, each explained by a note.
    """
    config = config or Config()
    touchpoints = store.table("touchpoints")
    classifier = ChannelClassifier.from_config(config.channels)
    if journeys is None:
        journeys = _journeys_of(store, classifier, config)
    notes: list[str] = []

    by_kind = tracking_by_kind(
        journeys.journeys, journeys.touches, touchpoints, config.channels.direct_channels
    ).to_pandas()
    if by_kind.empty:
        notes.append("No conversions: the no-touch and direct-only shares are empty.")

    spend_platforms = spend_click_platforms(config.spend.platform_channels)
    click_ids = unmatched_click_ids(
        touchpoints, store.table("ad_spend"), spend_platforms
    ).to_pandas()
    if click_ids.empty:
        notes.append("No touch has a click id, so no click id can be checked against spend.")

    pairs = self_reported_pairs(touchpoints, store.table("conversions"), classifier)
    counts = pairs.group_by(["self_reported", "tracked"]).aggregate(touches=pairs.count())
    counts = counts.order_by(["self_reported", "tracked"]).to_pandas()
    if counts.empty:
        notes.append(
            f"No touch has touch_type {SELF_REPORTED!r}, so self-reported sources are empty."
        )
    stage_entries, expected = _stage_gaps(store, config, classifier, notes)
    return BlindSpots(
        by_kind=by_kind,
        click_ids=click_ids,
        agreement=agreement_matrix(counts),
        undercount=undercount_ranking(counts),
        notes=notes,
        stage_entries=stage_entries,
        expected=expected,
    )


def _stage_gaps(
    store: Store, config: Config, classifier: ChannelClassifier, notes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the untouched stage entries and the expected-touchpoint gaps, in stage order.

    The stored stage timeline is used when there is one (``journeymap stages`` writes it),
    and otherwise the timeline of people is computed without being stored.
    """
    from journeymap.analyses.stage_gaps import expected_touchpoint_gaps, untouched_entries
    from journeymap.common.timeutil import utc_now
    from journeymap.journeys.stages import stage_timeline, timeline_inputs

    if store.has_rows("stage_timeline"):
        timeline = store.table("stage_timeline")
        kinds = timeline.select("entity_kind").distinct().to_pandas().entity_kind
        entity = str(kinds.iloc[0]) if len(kinds) else "person"
    else:
        entity = "person"
        timeline = stage_timeline(store, config.stages, entity_kind=entity)
    tables = timeline_inputs(store)
    if "touchpoints" not in tables:
        notes.append("No touches: the stage entries and expected touchpoints are empty.")
        return pd.DataFrame(), pd.DataFrame()
    touchpoints = tables["touchpoints"]
    tracked = touchpoints.filter(~is_self_reported(touchpoints.touch_type))
    touches = classified_touches(tracked, classifier, entity)  # type: ignore[arg-type]
    touches = touches.filter(touches.entity_id.notnull())

    order = {stage.name: index for index, stage in enumerate(config.stages)}
    entries = untouched_entries(
        timeline, touches, lookback_days=config.journeys.lookback_days
    ).to_pandas()
    entries = entries.sort_values("stage", key=lambda names: names.map(order))
    if entries.empty:
        notes.append("No stage timeline: the untouched stage entries are empty.")
    expected = expected_touchpoint_gaps(config.stages, timeline, touches, as_of=utc_now())
    return entries.reset_index(drop=True), expected


def _journeys_of(store: Store, classifier: ChannelClassifier, config: Config) -> Journeys:
    """Return the stored journeys, or journeys built in the engine when there is no build."""
    if store.has_rows("builds"):
        return Journeys(journeys=store.table("journeys"), touches=store.table("journey_touches"))

    # NOTE: events gathered by the collector are left out here, unlike `journeymap build`.
    return build_journeys(store, classifier, JourneyOptions.from_config(config))


def is_self_reported(touch_type: ir.StringValue) -> ir.BooleanValue:
    """Return whether a ``touch_type`` marks a self-reported touch (trimmed, any case)."""
    return (touch_type.strip().lower() == SELF_REPORTED).fill_null(False)


def tracking_by_kind(
    journeys: ibis.Table,
    touches: ibis.Table,
    touchpoints: ibis.Table,
    direct_channels: Sequence[str],
) -> ibis.Table:
    """Count converting journeys without a tracked touch, or with direct touches only, by kind.

    Takes ``journeys``, ``journey_touches`` and ``touchpoints`` (for ``touch_type``; a journey
    touch without a matching touchpoint row counts as tracked). Returns one row per ``kind``,
    ordered by kind, with ``conversions`` and ``value`` (all of the kind), ``no_touch``,
    ``no_touch_value``, ``direct_only`` and ``direct_only_value``, and the shares
    ``no_touch_share``, ``no_touch_value_share``, ``direct_only_share`` and
    ``direct_only_value_share`` (null when the divisor is 0).
    """
    types = touchpoints.group_by("touchpoint_id").aggregate(
        _self_reported=is_self_reported(touchpoints.touch_type).any()
    )
    tagged = touches.left_join(types, "touchpoint_id")
    tracked = tagged.filter(~tagged._self_reported.fill_null(False))
    direct = [channel.strip().lower() for channel in direct_channels]
    is_direct = tracked.channel.strip().lower().isin(direct).fill_null(False)
    per_journey = tracked.group_by("journey_id").aggregate(
        _tracked=tracked.count(),
        _other=(~is_direct).cast("int64").sum(),
    )

    converting = journeys.filter(journeys.conversions > 0)
    rows = converting.left_join(per_journey, "journey_id")
    tracked_count = rows._tracked.fill_null(0)
    no_touch = tracked_count == 0
    direct_only = (tracked_count > 0) & (rows._other.fill_null(0) == 0)
    value = rows.value.fill_null(0.0)
    summary = rows.group_by("kind").aggregate(
        conversions=rows.conversions.sum(),
        value=value.sum(),
        no_touch=ibis.cases((no_touch, rows.conversions), else_=0.0).sum(),
        no_touch_value=ibis.cases((no_touch, value), else_=0.0).sum(),
        direct_only=ibis.cases((direct_only, rows.conversions), else_=0.0).sum(),
        direct_only_value=ibis.cases((direct_only, value), else_=0.0).sum(),
    )
    summary = summary.mutate(
        no_touch_share=_share(summary.no_touch, summary.conversions),
        no_touch_value_share=_share(summary.no_touch_value, summary.value),
        direct_only_share=_share(summary.direct_only, summary.conversions),
        direct_only_value_share=_share(summary.direct_only_value, summary.value),
    )
    return summary.order_by("kind")


def _share(part: ir.NumericValue, whole: ir.NumericValue) -> ir.FloatingValue:
    return ibis.cases((whole > 0, part.cast("float64") / whole), else_=ibis.null(float))


def spend_click_platforms(platform_channels: Mapping[str, str]) -> dict[str, str]:
    """Map each spend platform name of ``spend.platform_channels`` to its click platform.

    A name that is a click platform (``google_ads``, ``microsoft_ads``, ``linkedin_ads``,
    ``meta``, ``tiktok_ads``) maps to itself. A name that the channel rules derive from a
    click platform as its source (``google``, ``bing``, ``linkedin``, ``facebook``,
    ``tiktok``) maps to that click platform, and ``instagram`` maps to ``meta``. Other names
    are left out, so their spend matches only clicks whose platform has the same name.
    """
    by_source = {source: platform for platform, source in CLICK_PLATFORM_SOURCES.items()}
    mapping: dict[str, str] = {}
    for name in sorted(platform_channels):
        key = name.strip().lower()
        if key in CLICK_PLATFORM_SOURCES:
            mapping[key] = key
        elif key in by_source:
            mapping[key] = by_source[key]
        elif key in EXTRA_SPEND_PLATFORMS:
            mapping[key] = EXTRA_SPEND_PLATFORMS[key]
    return mapping


def unmatched_click_ids(
    touchpoints: ibis.Table, ad_spend: ibis.Table, spend_platforms: Mapping[str, str]
) -> ibis.Table:
    """Count touches with a click id that no ad spend row explains, by click platform.

    A click-id touch (non-blank ``click_id``) matches when an ``ad_spend`` row has the same
    platform and campaign. Platforms compare after trimming and lowercasing, with the spend
    platform first mapped through ``spend_platforms`` (see :func:`spend_click_platforms`).
    Campaigns compare as in :mod:`journeymap.analyses.spend`: the touch's ``campaign``,
    trimmed and lowercased, equals the spend row's campaign name or campaign id. Dates are
    ignored. A touch without a campaign or without a platform never matches.

    Returns ``click_platform`` (``(not set)`` when blank), ``click_touches``, ``unmatched``,
    ``no_campaign`` (the unmatched touches without a campaign), ``unmatched_share`` (of the
    platform's click-id touches) and ``share_of_all`` (of every click-id touch), ordered by
    ``unmatched`` descending, then platform.
    """
    clicks = touchpoints.filter(touchpoints.click_id.strip().nullif("").notnull())
    platform = clicks.click_platform.strip().lower().nullif("")
    clicks = clicks.select(
        "touchpoint_id",
        _platform=platform,
        _campaign=clicks.campaign.strip().lower().nullif(""),
    )

    spend_platform = ad_spend.platform.strip().lower()
    spend = ad_spend.mutate(
        _platform=spend_platform.cases(*spend_platforms.items(), else_=spend_platform)
    )
    by_name = spend.select("_platform", _campaign=spend.campaign.strip().lower())
    by_id = spend.select("_platform", _campaign=spend.campaign_id.strip().lower())
    keys = by_name.union(by_id, distinct=True)
    keys = keys.filter(keys._campaign.notnull() & (keys._campaign != ""))
    keys = keys.mutate(_matched=ibis.literal(True))

    joined = clicks.left_join(keys, ["_platform", "_campaign"])
    matched = joined._matched.fill_null(False)
    counted = joined.group_by(click_platform=joined._platform.fill_null(NO_PLATFORM)).aggregate(
        click_touches=joined.count(),
        unmatched=(~matched).cast("int64").sum(),
        no_campaign=(joined._campaign.isnull() & ~matched).cast("int64").sum(),
    )
    total = counted.click_touches.sum().over(ibis.window())
    counted = counted.mutate(
        unmatched_share=_share(counted.unmatched, counted.click_touches),
        share_of_all=_share(counted.unmatched, total),
    )
    return counted.order_by([ibis.desc("unmatched"), "click_platform"])


def self_reported_pairs(
    touchpoints: ibis.Table, conversions: ibis.Table, classifier: ChannelClassifier
) -> ibis.Table:
    """Pair each self-reported touch's channel with the person's first tracked touch channel.

    The self-reported channel is the touch's own ``channel`` when given, and otherwise the
    channel the rules give its source, medium, campaign and referrer as if it were an
    ordinary touch. A self-reported touch with neither a channel nor a source or medium
    names no channel and is left out.

    The tracked side is the person's earliest touch that is not self-reported, at or before
    the first conversion (of any kind) at or after the self-reported touch, or at or before
    the self-reported touch when no conversion follows it. Order is ``(occurred_at, seq)``,
    and the lookback window of the journeys does not apply. Without such a touch the tracked
    channel is ``(no tracked touch)``.

    Returns one row per self-reported touch: ``touchpoint_id``, ``self_reported``, ``tracked``.
    """
    reported_touches = touchpoints.filter(is_self_reported(touchpoints.touch_type))
    has_fields = (
        reported_touches.channel.strip().nullif("").notnull()
        | reported_touches.source.strip().nullif("").notnull()
        | reported_touches.medium.strip().nullif("").notnull()
    )
    reported_touches = reported_touches.filter(has_fields).mutate(touch_type=ibis.null(str))
    self_reports = classifier.classify(reported_touches).select(
        "touchpoint_id", "person_id", "occurred_at", "seq", self_reported="channel"
    )

    anchors = _anchors(self_reports, conversions)

    others = touchpoints.filter(~is_self_reported(touchpoints.touch_type))
    tracked = classified_touches(others, classifier, "person").select(
        _person="entity_id", _at="occurred_at", _seq="seq", tracked="channel"
    )
    before = (tracked._at < anchors._anchor_at) | (
        (tracked._at == anchors._anchor_at) & (tracked._seq <= anchors._anchor_seq)
    )
    joined = anchors.left_join(tracked, [anchors.person_id == tracked._person, before])
    joined = joined.mutate(
        _rank=ibis.row_number().over(
            ibis.window(group_by="touchpoint_id", order_by=["_at", "_seq", "tracked"])
        )
    )
    first = joined.filter(joined._rank == 0)
    return first.select(
        "touchpoint_id",
        "self_reported",
        tracked=first.tracked.fill_null(NO_TRACKED_TOUCH),
    )


def _anchors(self_reports: ibis.Table, conversions: ibis.Table) -> ibis.Table:
    """Add ``_anchor_at`` and ``_anchor_seq``: the first conversion at or after each self-report.

    A conversion flagged on the self-reported touch's own row shares its ``seq``, so it
    counts as after the touch.
    """
    later = conversions.select(_person="person_id", _conv_at="occurred_at", _conv_seq="seq")
    after = (later._conv_at > self_reports.occurred_at) | (
        (later._conv_at == self_reports.occurred_at) & (later._conv_seq >= self_reports.seq)
    )
    joined = self_reports.left_join(later, [self_reports.person_id == later._person, after])
    joined = joined.mutate(
        _rank=ibis.row_number().over(
            ibis.window(group_by="touchpoint_id", order_by=["_conv_at", "_conv_seq"])
        )
    )
    first = joined.filter(joined._rank == 0)
    return first.select(
        "touchpoint_id",
        "person_id",
        "self_reported",
        _anchor_at=ibis.coalesce(first._conv_at, first.occurred_at),
        _anchor_seq=ibis.coalesce(first._conv_seq, first.seq),
    )


def agreement_matrix(counts: pd.DataFrame) -> pd.DataFrame:
    """Pivot ``self_reported, tracked, touches`` counts into a matrix of touch counts.

    Rows are self-reported channels and columns tracked first-touch channels, both sorted by
    name, with ``(no tracked touch)`` as the last column. Missing pairs are 0.
    """
    if counts.empty:
        return pd.DataFrame(dtype="int64")
    matrix = counts.pivot(index="self_reported", columns="tracked", values="touches")
    columns = sorted(c for c in matrix.columns if c != NO_TRACKED_TOUCH)
    if NO_TRACKED_TOUCH in matrix.columns:
        columns.append(NO_TRACKED_TOUCH)
    matrix = matrix.reindex(index=sorted(matrix.index), columns=columns)
    return matrix.fillna(0).astype("int64")


def undercount_ranking(counts: pd.DataFrame) -> pd.DataFrame:
    """Rank channels by how much tracked first touches under-count them against self-reports.

    Returns ``channel``, ``self_reported`` and ``tracked_first`` (touch counts),
    ``self_reported_share`` and ``tracked_first_share`` (of all paired self-reported
    touches, so ``(no tracked touch)`` takes part of the tracked share), and
    ``undercount = self_reported_share - tracked_first_share``, sorted by ``undercount``
    descending, then channel. A positive value means tracking credits the channel with fewer
    first touches than people name it.
    """
    columns = [
        "channel",
        "self_reported",
        "tracked_first",
        "self_reported_share",
        "tracked_first_share",
        "undercount",
    ]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    total = float(counts.touches.sum())
    reported = counts.groupby("self_reported").touches.sum()
    seen = counts.groupby("tracked").touches.sum()
    channels = sorted(set(reported.index) | set(seen.index))
    ranking = pd.DataFrame({"channel": channels})
    ranking["self_reported"] = [int(reported.get(name, 0)) for name in channels]
    ranking["tracked_first"] = [int(seen.get(name, 0)) for name in channels]
    ranking["self_reported_share"] = ranking.self_reported / total
    ranking["tracked_first_share"] = ranking.tracked_first / total
    ranking["undercount"] = ranking.self_reported_share - ranking.tracked_first_share
    ranking = ranking.sort_values(["undercount", "channel"], ascending=[False, True])
    return ranking.reset_index(drop=True)[columns]
