"""The recommendation rules. Each takes the store and the configuration and returns findings.

Thresholds come from ``config.recommendations`` (see
:class:`journeymap.common.config.RecommendationConfig`). Rates and shares are fractions from 0
to 1, durations are days, credit is in conversions, and money is in the store's currency as
summed. A rule raises :class:`~journeymap.analyses.recommend.MissingInputError` when the store lacks
its input, so that an empty store yields notes rather than errors.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import ibis
import pandas as pd

from journeymap.analyses.recommend import (
    MissingInputError,
    Recommendation,
    RuleFunction,
    evidence,
)
from journeymap.common.config import Config
from journeymap.store.store import Store

SECONDS_PER_DAY = 86_400


def _require(store: Store, *tables: str) -> None:
    missing = [name for name in tables if not store.has_rows(name)]
    if missing:
        raise MissingInputError(f"the store has no {' and no '.join(missing)}")


def _rows(frame: pd.DataFrame) -> list[Any]:
    """Return the rows of ``frame`` as named tuples (typed loosely, as pandas types cells)."""
    return list(frame.itertuples(index=False))


# Coverage -----------------------------------------------------------------------------------


def uncovered_stage(store: Store, config: Config) -> list[Recommendation]:
    """Find journey stages that lose most entrants while no ad campaign targets them."""
    from journeymap import api

    _require(store, "ad_spend", "touchpoints")
    settings = config.recommendations
    table, _ = api.coverage(store, config)
    rated = table.dropna(subset=["dropoff_rate"])
    median = float(rated["dropoff_rate"].median()) if len(rated) else float("nan")

    found = []
    for row in _rows(rated):
        if row.campaigns > 0 or row.entered < settings.min_entities:
            continue
        if row.dropoff_rate < settings.uncovered_dropoff:
            continue
        found.append(
            Recommendation(
                id=f"uncovered_stage:{row.stage}",
                rule="uncovered_stage",
                title=f"No campaign targets {row.stage}, where {row.dropoff_rate:.0%} drop off",
                severity="high" if row.dropoff_rate >= 0.75 else "medium",
                concerns={"stage": str(row.stage)},
                why=(
                    f"{row.entered:,} people entered {row.stage} and {row.entered - row.moved_on:,}"
                    f" of them ({row.dropoff_rate:.0%}) never reached a later stage, yet no "
                    "campaign's name maps to this stage, so none of the ad spend works on it."
                ),
                evidence=evidence(
                    [
                        ("entered", int(row.entered), "people", f">= {settings.min_entities}"),
                        ("moved on", int(row.moved_on), "people", ""),
                        (
                            "drop-off rate",
                            float(row.dropoff_rate),
                            "fraction",
                            f">= {settings.uncovered_dropoff}",
                        ),
                        ("median drop-off of the stages", median, "fraction", ""),
                        ("campaigns targeting the stage", int(row.campaigns), "campaigns", "= 0"),
                        ("share of mapped spend", float(row.spend_share), "fraction", ""),
                    ]
                ),
                action=(
                    f"Run a campaign for {row.stage} (and name it so that a "
                    "coverage.campaign_stages rule maps it), or add a nurture programme "
                    "for the people who stop here."
                ),
                chart="coverage",
            )
        )
    return found


# Attribution --------------------------------------------------------------------------------


def undervalued_channel(store: Store, config: Config) -> list[Recommendation]:
    """Find channels that Markov credits far more than last-click attribution does."""
    from journeymap import api
    from journeymap.attribution import attribute, credit_by, resolve_models
    from journeymap.report.gather import report_kind

    _require(store, "touchpoints", "conversions")
    settings = config.recommendations
    journeys = api.prepare_journeys(store, config)
    kind = report_kind(store, config)
    models = resolve_models(["markov", "last_touch"], dict(config.attribution.parameters))
    credits = credit_by(attribute(journeys, models), "channel", [kind] if kind else None)
    table = credits.to_pandas().pivot(index="channel", columns="model", values="conversions")
    table = table.reindex(columns=["markov", "last_touch"]).fillna(0.0).astype("float64")
    values = credits.to_pandas().pivot(index="channel", columns="model", values="value")

    found = []
    ranked = table.assign(
        ratio=table["markov"] / table["last_touch"].where(table["last_touch"] > 0)
    ).sort_values("markov", ascending=False)
    for channel, row in ranked.iterrows():
        if str(channel).startswith("("):
            continue
        markov, last = float(row["markov"]), float(row["last_touch"])
        ratio = float("inf") if last == 0 else markov / last
        if markov < settings.min_credit or ratio < settings.credit_ratio:
            continue
        value = float(values.loc[channel, "markov"]) if "markov" in values else float("nan")
        found.append(
            Recommendation(
                id=f"undervalued_channel:{channel}",
                rule="undervalued_channel",
                title=f"Last-click under-credits {channel}: Markov gives it {ratio:.1f}×",
                severity="high" if ratio >= 2 * settings.credit_ratio - 1 else "medium",
                concerns={"channel": str(channel), "kind": kind or "all"},
                why=(
                    f"The Markov model credits {channel} with {markov:.1f} {kind or ''} "
                    f"conversions, last-click with {last:.1f}. The channel starts or carries "
                    "journeys that other channels close, so budgets set on last-click "
                    "numbers would cut it below its contribution."
                ),
                evidence=evidence(
                    [
                        ("Markov credit", markov, "conversions", f">= {settings.min_credit}"),
                        ("last-click credit", last, "conversions", ""),
                        (
                            "Markov over last-click",
                            None if last == 0 else ratio,
                            "ratio",
                            f">= {settings.credit_ratio}",
                        ),
                        ("Markov credited value", value, config.currency, ""),
                    ]
                ),
                action=(
                    f"Judge {channel} on data-driven credit (and its cost per Markov-credited "
                    "conversion) before cutting its budget, and test it with a holdout."
                ),
                chart="attribution",
            )
        )
    return found


# Deal velocity ------------------------------------------------------------------------------


def _deal_tables(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the deal stages and the deals (with account columns when accounts exist)."""
    # NOTE: segment_stall and period_drop compute in pandas on these whole tables, so on Spark
    # every deal stage and deal travels to the driver. Their findings match DuckDB's, but a
    # store too large for one machine's memory needs them rewritten as Ibis expressions.
    _require(store, "deal_stages", "deals")
    stays = store.table("deal_stages").to_pandas()
    for column in ("entered_at", "exited_at"):
        stays[column] = pd.to_datetime(stays[column], utc=True)
    deals = store.table("deals").to_pandas()
    if store.has_rows("accounts"):
        accounts = store.table("accounts").select("account_id", "industry", "region").to_pandas()
        accounts = accounts.drop_duplicates("account_id")
        deals = deals.merge(accounts, on="account_id", how="left")
    return stays, deals


def _flag(values: pd.Series) -> pd.Series:
    """Return a nullable boolean column as plain booleans, null as False."""
    return values.astype("boolean").fillna(False).astype(bool)


def _stage_order(stays: pd.DataFrame, deals: pd.DataFrame) -> tuple[list[str], set[str]]:
    """Return the open stages in order of first entry, and the closing stages of lost deals."""
    closed = deals[_flag(deals["is_closed"])]
    lost = set(closed.loc[~_flag(closed["is_won"]), "stage"].dropna())
    won = set(closed.loc[_flag(closed["is_won"]), "stage"].dropna())
    kept = stays[~stays["stage"].isin(lost)]
    firsts = kept.groupby("stage")["entered_at"].min().sort_values(kind="stable")
    ordered = [str(stage) for stage in firsts.index]
    return [stage for stage in ordered if stage not in won], lost


def _stays_with_progress(stays: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    """Add ``days`` (to the exit, or to the end of the data) and ``moved_on`` to each stay.

    A stay moved on when the deal later entered a stage that is not a lost deal's final
    stage, at or after this stay's entry.
    """
    order, lost = _stage_order(stays, deals)
    end = max(stays["entered_at"].max(), stays["exited_at"].max())
    frame = stays.copy()
    frame["days"] = (frame["exited_at"].fillna(end) - frame["entered_at"]).dt.total_seconds()
    frame["days"] = frame["days"] / SECONDS_PER_DAY
    frame["open"] = frame["exited_at"].isna()

    forward = frame[~frame["stage"].isin(lost)][["deal_id", "stage", "entered_at"]]
    position = {stage: index for index, stage in enumerate(order)}
    frame["_position"] = frame["stage"].map(position)
    forward = forward.assign(_next_position=forward["stage"].map(position).fillna(len(order)))
    paired = frame[["deal_id", "stage", "entered_at", "_position"]].merge(
        forward.rename(columns={"stage": "_next", "entered_at": "_next_at"}), on="deal_id"
    )
    later = paired[
        (paired["_next_position"] > paired["_position"])
        & (paired["_next_at"] >= paired["entered_at"])
    ]
    moved = set(zip(later["deal_id"], later["stage"], strict=True))
    frame["moved_on"] = [
        (deal, stage) in moved for deal, stage in zip(frame["deal_id"], frame["stage"], strict=True)
    ]
    return frame[frame["stage"].isin(order)]


def segment_stall(store: Store, config: Config) -> list[Recommendation]:
    """Find segments whose deals stay far longer in a stage and move on less often."""
    settings = config.recommendations
    stays, deals = _deal_tables(store)
    progress = _stays_with_progress(stays, deals)

    found = []
    for column in settings.stall_segments:
        if column not in deals.columns or deals[column].isna().all():
            continue
        segments = deals[["deal_id", column]].dropna()
        rows = progress.merge(segments, on="deal_id")
        for (stage, value), group in rows.groupby(["stage", column], sort=True):
            if len(group) < settings.min_entities:
                continue
            rest = rows[(rows["stage"] == stage) & (rows[column] != value)]
            if len(rest) < settings.min_entities:
                continue
            days, rest_days = float(group["days"].median()), float(rest["days"].median())
            rate, rest_rate = float(group["moved_on"].mean()), float(rest["moved_on"].mean())
            ratio = days / rest_days if rest_days > 0 else float("inf")
            gap = rest_rate - rate
            if ratio < settings.stall_days_ratio or gap < settings.stall_rate_gap:
                continue
            strong = ratio >= 1.5 * settings.stall_days_ratio and gap >= 2 * settings.stall_rate_gap
            found.append(
                Recommendation(
                    id=f"segment_stall:{column}={value}:{stage}",
                    rule="segment_stall",
                    title=f"Deals of {column} {value} stall in {stage}",
                    severity="high" if strong else "medium",
                    concerns={"segment": column, "value": str(value), "stage": str(stage)},
                    why=(
                        f"Deals of {column} {value} spend a median {days:.1f} days in {stage}, "
                        f"{ratio:.1f} times the {rest_days:.1f} days of the other deals, and "
                        f"{rate:.0%} of them move on, against {rest_rate:.0%} of the others."
                    ),
                    evidence=evidence(
                        [
                            (
                                "deals in the stage",
                                len(group),
                                "deals",
                                f">= {settings.min_entities}",
                            ),
                            ("still open in the stage", int(group["open"].sum()), "deals", ""),
                            ("median days in the stage", days, "days", ""),
                            ("median days, other deals", rest_days, "days", ""),
                            (
                                "days ratio",
                                None if rest_days == 0 else ratio,
                                "ratio",
                                f">= {settings.stall_days_ratio}",
                            ),
                            ("moved on", rate, "fraction", ""),
                            ("moved on, other deals", rest_rate, "fraction", ""),
                            ("move-on gap", gap, "fraction", f">= {settings.stall_rate_gap}"),
                        ]
                    ),
                    action=(
                        f"Review the open {stage} deals of {column} {value} with their owners: "
                        "find what the buyers wait for after this stage (a security review, a "
                        "business case) and give the team the material that unblocks it."
                    ),
                    chart="velocity",
                )
            )
    return found


# Tracking -----------------------------------------------------------------------------------


def tracking_gap(store: Store, config: Config) -> list[Recommendation]:
    """Find won revenue whose journeys have no tracked touch."""
    from journeymap import api

    _require(store, "touchpoints", "conversions")
    settings = config.recommendations
    spots = api.blind_spots(store, config)
    won_kinds = {kind.lower() for kind in config.milestones.closed_won}
    rows = spots.by_kind[spots.by_kind["kind"].str.lower().isin(won_kinds)]

    found = []
    for row in _rows(rows):
        share = row.no_touch_value_share
        if share is None or pd.isna(share) or share < settings.hidden_value_share:
            continue
        if row.conversions < settings.min_entities:
            continue
        found.append(
            Recommendation(
                id=f"tracking_gap:{row.kind}",
                rule="tracking_gap",
                title=f"{share:.0%} of {row.kind} revenue has no tracked touch",
                severity="high" if share >= 2 * settings.hidden_value_share else "medium",
                concerns={"kind": str(row.kind)},
                why=(
                    f"{row.no_touch:,.0f} of {row.conversions:,.0f} {row.kind} conversions "
                    f"({row.no_touch_value:,.0f} {config.currency}) have no tracked touch in "
                    "their journey, so attribution cannot credit any channel with that "
                    "revenue and every channel's share is measured on the rest."
                ),
                evidence=evidence(
                    [
                        (
                            "conversions",
                            float(row.conversions),
                            "conversions",
                            f">= {settings.min_entities}",
                        ),
                        ("without a tracked touch", float(row.no_touch), "conversions", ""),
                        (
                            "value without a tracked touch",
                            float(row.no_touch_value),
                            config.currency,
                            "",
                        ),
                        (
                            "share of value",
                            float(share),
                            "fraction",
                            f">= {settings.hidden_value_share}",
                        ),
                        ("share of conversions", float(row.no_touch_share), "fraction", ""),
                    ]
                ),
                action=(
                    "Find where these buyers came from: check that every landing page and form "
                    "carries the tag, keep UTM parameters through redirects, and add a "
                    "self-reported source field to the demo and contact forms."
                ),
                chart="blindspots",
            )
        )
    return found


# Conversion sync ----------------------------------------------------------------------------


def clicked_conversions(store: Store, window_days: float) -> pd.DataFrame:
    """Count per conversion kind the conversions whose person clicked an ad shortly before.

    A conversion counts when the same person has a touch with a non-blank ``click_id`` at
    or before it and at most ``window_days`` earlier. Returns ``kind``, ``conversions``,
    ``value``, ``clicked`` and ``clicked_value``, ordered by kind.
    """
    conversions = store.table("conversions")
    touches = store.table("touchpoints")
    clicks = touches.filter(touches.click_id.strip().nullif("").notnull()).select(
        _person=touches.person_id, _at=touches.occurred_at
    )
    window = ibis.interval(seconds=int(window_days * SECONDS_PER_DAY))
    joined = conversions.inner_join(
        clicks,
        [
            conversions.person_id == clicks._person,
            clicks._at <= conversions.occurred_at,
            clicks._at >= conversions.occurred_at - window,
        ],
    )
    clicked = joined.select("conversion_id").distinct().mutate(_clicked=ibis.literal(1))
    marked = conversions.left_join(clicked, "conversion_id")
    has_click = marked._clicked.notnull()
    value = marked.value.fill_null(0.0)
    summary = marked.group_by("kind").aggregate(
        conversions=marked.count(),
        value=value.sum(),
        clicked=has_click.cast("int64").sum(),
        clicked_value=ibis.cases((has_click, value), else_=0.0).sum(),
    )
    frame: pd.DataFrame = summary.order_by("kind").to_pandas()
    return frame


def unsynced_conversions(store: Store, config: Config) -> list[Recommendation]:
    """Find conversion kinds that carry ad click ids but that no sync destination sends."""
    _require(store, "touchpoints", "conversions")
    settings = config.recommendations
    synced = {
        kind.lower()
        for destination in config.sync.destinations.values()
        for kind in destination.actions
    }
    deep = {
        kind.lower() for kind in [*config.milestones.opportunity, *config.milestones.closed_won]
    }
    table = clicked_conversions(store, settings.click_window_days)
    table = table.sort_values("clicked_value", ascending=False, kind="stable")

    found = []
    for row in _rows(table):
        kind = str(row.kind)
        share = row.clicked / row.conversions if row.conversions else 0.0
        if kind.lower() in synced or row.clicked < settings.min_clicked_conversions:
            continue
        if share < settings.min_clicked_share:
            continue
        found.append(
            Recommendation(
                id=f"unsynced_conversions:{kind}",
                rule="unsynced_conversions",
                title=f"Send {kind} conversions to the ad platforms ({row.clicked:,} had a click)",
                severity="high" if kind.lower() in deep else "medium",
                concerns={"kind": kind},
                why=(
                    f"{row.clicked:,} of {row.conversions:,} {kind} conversions ({share:.0%}) "
                    f"come from people who clicked an ad in the {settings.click_window_days:g} "
                    "days before, worth "
                    f"{row.clicked_value:,.0f} {config.currency}. No sync destination sends "
                    f"{kind}, so the platforms cannot optimise bids for it."
                ),
                evidence=evidence(
                    [
                        ("conversions", int(row.conversions), "conversions", ""),
                        (
                            "with an ad click id",
                            int(row.clicked),
                            "conversions",
                            f">= {settings.min_clicked_conversions}",
                        ),
                        (
                            "share with a click id",
                            share,
                            "fraction",
                            f">= {settings.min_clicked_share}",
                        ),
                        ("value with a click id", float(row.clicked_value), config.currency, ""),
                        ("destinations sending the kind", 0, "destinations", "= 0"),
                    ]
                ),
                action=(
                    f"Add {kind} to the actions of a sync destination (sync.destinations) and "
                    "run journeymap sync, so that the ad platforms learn which clicks turn into "
                    "pipeline."
                ),
                chart="sync",
            )
        )
    return found


# Period comparison --------------------------------------------------------------------------


def _first_touch_channels(store: Store, config: Config) -> pd.DataFrame:
    """Return ``account_id`` and ``channel``: the channel of each account's first touch."""
    from journeymap.channels.rules import ChannelClassifier
    from journeymap.journeys.first_touch import first_touch_channels

    classifier = ChannelClassifier.from_config(config.channels)
    first = first_touch_channels(store.table("touchpoints"), classifier, "account")
    frame: pd.DataFrame = first.select(account_id="entity_id", channel="channel").to_pandas()
    return frame


def _pair_entries(stays: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """Return per deal the first entry into ``first`` and whether it later entered ``second``."""
    started = stays[stays["stage"] == first].groupby("deal_id")["entered_at"].min()
    reached = stays[stays["stage"] == second].groupby("deal_id")["entered_at"].min()
    frame = started.rename("started").to_frame().join(reached.rename("reached"))
    frame["converted"] = frame["reached"].notna() & (frame["reached"] >= frame["started"])
    return frame.reset_index()


def _fall_p_value(early: pd.Series, late: pd.Series) -> float:
    """Return the one-sided Fisher exact p-value that the late rate is below the early one."""
    from scipy.stats import fisher_exact

    table = [
        [int(early.sum()), int((~early).sum())],
        [int(late.sum()), int((~late).sum())],
    ]
    return float(fisher_exact(table, alternative="greater").pvalue)


def period_drop(store: Store, config: Config) -> list[Recommendation]:
    """Find channels whose stage-to-stage rate fell between the two halves of the data."""
    _require(store, "touchpoints")
    settings = config.recommendations
    stays, deals = _deal_tables(store)
    order, _ = _stage_order(stays, deals)
    channels = _first_touch_channels(store, config)
    deal_channels = deals[["deal_id", "account_id"]].merge(channels, on="account_id", how="left")
    start, end = stays["entered_at"].min(), stays["entered_at"].max()
    split = start + (end - start) / 2

    found = []
    for first, second in pairwise(order):
        entries = _pair_entries(stays, first, second).merge(deal_channels, on="deal_id")
        entries = entries.dropna(subset=["channel"])
        entries["late"] = entries["started"] >= split
        for channel, group in entries.groupby("channel", sort=True):
            early, late = group[~group["late"]], group[group["late"]]
            if min(len(early), len(late)) < settings.min_period_entrants:
                continue
            rest = entries[entries["channel"] != channel]
            rest_early, rest_late = rest[~rest["late"]], rest[rest["late"]]
            if min(len(rest_early), len(rest_late)) == 0:
                continue
            rate_early, rate_late = early["converted"].mean(), late["converted"].mean()
            rest_rate_early, rest_rate_late = (
                rest_early["converted"].mean(),
                rest_late["converted"].mean(),
            )
            drop = float(rate_early - rate_late)
            excess = drop - float(rest_rate_early - rest_rate_late)
            if drop < settings.period_drop or excess < settings.period_excess:
                continue
            p_value = _fall_p_value(early["converted"], late["converted"])
            if p_value > settings.period_alpha:
                continue
            found.append(
                Recommendation(
                    id=f"period_drop:{channel}:{first}->{second}",
                    rule="period_drop",
                    title=f"{channel} deals move from {first} to {second} less often than before",
                    severity="high" if drop >= 2 * settings.period_drop else "medium",
                    concerns={
                        "channel": str(channel),
                        "from_stage": first,
                        "to_stage": second,
                        "split": split.isoformat(),
                    },
                    why=(
                        f"Of the {channel} deals that entered {first} before "
                        f"{split:%Y-%m-%d}, {rate_early:.0%} reached {second}; of those that "
                        f"entered after, {rate_late:.0%}. The other channels fell by "
                        f"{rest_rate_early - rest_rate_late:.0%} over the same halves, so "
                        f"{excess:.0%} of the fall is particular to {channel}."
                    ),
                    evidence=evidence(
                        [
                            (
                                "entrants, first half",
                                len(early),
                                "deals",
                                f">= {settings.min_period_entrants}",
                            ),
                            ("rate, first half", float(rate_early), "fraction", ""),
                            (
                                "entrants, second half",
                                len(late),
                                "deals",
                                f">= {settings.min_period_entrants}",
                            ),
                            ("rate, second half", float(rate_late), "fraction", ""),
                            ("fall of the rate", drop, "fraction", f">= {settings.period_drop}"),
                            ("other channels, first half", float(rest_rate_early), "fraction", ""),
                            ("other channels, second half", float(rest_rate_late), "fraction", ""),
                            (
                                "fall beyond the others",
                                excess,
                                "fraction",
                                f">= {settings.period_excess}",
                            ),
                            (
                                "p-value of the fall",
                                p_value,
                                "probability",
                                f"<= {settings.period_alpha}",
                            ),
                        ]
                    ),
                    action=(
                        f"Compare the {channel} deals of the two halves (campaigns, offers, "
                        f"owners) to find what changed, and check the lead quality that "
                        f"{channel} sends since {split:%Y-%m-%d}."
                    ),
                    chart="funnel",
                )
            )
    return found


RULES: dict[str, RuleFunction] = {
    "uncovered_stage": uncovered_stage,
    "undervalued_channel": undervalued_channel,
    "segment_stall": segment_stall,
    "tracking_gap": tracking_gap,
    "unsynced_conversions": unsynced_conversions,
    "period_drop": period_drop,
}
"""Every rule by name, in the order that :func:`recommendations` runs them."""
