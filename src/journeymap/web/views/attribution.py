"""The attribution view: every stored model side by side, by channel, campaign and ad, with spend.

Credits come from the last stored run. A ``lookback`` filter shorter than the built journeys'
rebuilds the journeys with that lookback in the engine (as temporary tables, the store is not
written) and reruns the run's models on them, which takes seconds on a large store; the result
is cached like every view.
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd

from journeymap import api
from journeymap.analyses.spend import roas_by_campaign, roas_by_channel, spend_in_period
from journeymap.attribution import attribute as run_attribution
from journeymap.attribution import credit_by
from journeymap.channels.rules import ChannelClassifier
from journeymap.common.config import Config
from journeymap.common.errors import ConfigError
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys
from journeymap.journeys.collected import collected_events, with_collected
from journeymap.report.gather import choose_primary_model, stored_build_settings
from journeymap.store.schema import NOT_SET
from journeymap.store.store import Store
from journeymap.web.filters import GRAINS, Filters
from journeymap.web.views.base import (
    check_model,
    chosen_kind,
    filtered_journeys,
    journey_kinds,
    records,
    require_credits,
    run_models,
)


def attribution(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
    """Return credit by model for every grain, and spend, ROAS and cost per conversion.

    Shape: ``kind``, ``kinds``, ``models``, ``model`` (the model of the spend tables),
    ``currency``, ``lookback_days``, ``notes``, and per grain (``channel``, ``campaign``,
    ``ad``) ``credit[grain]``: rows of ``model, key, conversions, value`` and
    ``spend[grain]``: rows of ``key, cost, conversions, value, roas, cost_per_conversion``
    for ``model`` (empty without spend).
    """
    require_credits(store)
    models = run_models(store)
    model = check_model(filters, models) or choose_primary_model(models)
    kind = chosen_kind(store, config, filters)
    notes: list[str] = []

    built = stored_build_settings(store) or {}
    built_lookback = float(built.get("lookback_days", config.journeys.lookback_days))
    credits = store.table("credits")
    journeys = store.table("journeys")
    if filters.lookback is not None and filters.lookback != built_lookback:
        if filters.lookback > built_lookback:
            raise ConfigError(
                f"lookback {filters.lookback:g} days is longer than the built journeys' "
                f"{built_lookback:g} days",
                location="lookback",
                hint=f"Pick {built_lookback:g} days or fewer, or rebuild with "
                f"journeymap build --lookback-days {filters.lookback:g}",
            )
        journeys, credits = _credits_with_lookback(store, config, built, filters.lookback, models)
        notes.append(
            f"Credits recomputed for a {filters.lookback:g}-day lookback; the stored run used "
            f"{built_lookback:g} days."
        )

    chosen = filtered_journeys(store, filters, kind, journeys)
    credits = credits.semi_join(chosen.select("journey_id"), "journey_id")
    if kind is not None:
        credits = credits.filter(credits.kind == kind)

    credit: dict[str, list[dict[str, Any]]] = {}
    spend: dict[str, list[dict[str, Any]]] = {}
    for grain in GRAINS:
        table = credit_by(credits, grain)
        frame = table.to_pandas().rename(columns={grain: "key"})
        credit[grain] = records(_in_model_order(frame, models))
        spend[grain] = _spend(store, config, filters, table, grain, model, notes)
    if filters.segment is not None and any(spend.values()):
        notes.append("Spend is not split by segment: it counts in full.")
    return {
        "kind": kind,
        "kinds": journey_kinds(store),
        "models": models,
        "model": model,
        "currency": config.currency,
        "lookback_days": filters.lookback or built_lookback,
        "credit": credit,
        "spend": spend,
        "notes": notes,
    }


def _in_model_order(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    rank = {name: number for number, name in enumerate(models)}
    ordered = frame.assign(_rank=frame.model.map(rank).fillna(len(rank)))
    ordered = ordered.sort_values(["_rank", "conversions"], ascending=[True, False], kind="stable")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def _spend(
    store: Store,
    config: Config,
    filters: Filters,
    credit: ibis.Table,
    grain: str,
    model: str | None,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Return ``model``'s credit of ``grain`` joined with the spend in the filters' dates."""
    if model is None or not store.has_rows("ad_spend"):
        return []
    ad_spend, left_out, _ = spend_in_period(store.table("ad_spend"), filters.start, filters.end)
    if left_out and grain == "channel":
        notes.append(f"Left out {left_out:,} spend rows dated outside the chosen dates.")
    one_model = credit.filter(credit.model == model)
    if grain == "channel":
        table = roas_by_channel(one_model, ad_spend, config.spend, store.table("journey_touches"))
    elif grain == "campaign":
        table = roas_by_campaign(one_model, ad_spend)
    else:
        table = _roas_by_ad(one_model, ad_spend)
    frame = table.order_by([ibis.desc("cost"), grain]).to_pandas()
    frame = frame.drop(columns="model").rename(columns={grain: "key"})
    return records(frame)


def _roas_by_ad(credit: ibis.Table, ad_spend: ibis.Table) -> ibis.Table:
    """Join ad credit (``model, ad, conversions, value``) with spend by ``ad_id``."""
    spend = ad_spend.filter(ad_spend.ad_id.notnull() & (ad_spend.ad_id.strip() != ""))
    spend = spend.group_by(key=spend.ad_id.strip().lower()).aggregate(cost=spend.cost.sum())
    rows = credit.filter(credit.ad.notnull() & (credit.ad != NOT_SET))
    joined = rows.inner_join(spend, [rows.ad.strip().lower() == spend.key])
    joined = joined.select(
        model=rows.model,
        ad=rows.ad,
        conversions=rows.conversions,
        value=rows.value,
        cost=spend.cost,
    )
    return joined.mutate(
        roas=ibis.cases((joined.cost > 0, joined.value / joined.cost), else_=ibis.null(float)),
        cost_per_conversion=ibis.cases(
            (joined.conversions > 0, joined.cost / joined.conversions), else_=ibis.null(float)
        ),
    )


def _credits_with_lookback(
    store: Store, config: Config, built: dict[str, Any], lookback: float, models: list[str]
) -> tuple[ibis.Table, ibis.Table]:
    """Rebuild the journeys with ``lookback`` days into temporary tables and rerun ``models``.

    Returns the rebuilt journeys and their credits.
    """
    settings = api.with_overrides(
        config,
        lookback_days=lookback,
        transform=built.get("transform"),
        last_n=built.get("last_n"),
        kinds=built.get("conversion_kinds"),
        entity=built.get("entity"),
    )
    classifier = ChannelClassifier.from_config(settings.channels)
    events = with_collected(store, settings) if collected_events(store) is not None else None
    rebuilt = build_journeys(store, classifier, JourneyOptions.from_config(settings), events=events)
    suffix = f"{lookback:g}".replace(".", "_")
    journeys = Journeys(
        journeys=store.con.create_table(
            f"_web_journeys_{suffix}", rebuilt.journeys, temp=True, overwrite=True
        ),
        touches=store.con.create_table(
            f"_web_touches_{suffix}", rebuilt.touches, temp=True, overwrite=True
        ),
    )
    chosen, _ = api.select_models(models, journeys, settings.attribution.parameters)
    credits = run_attribution(journeys, chosen)
    stored = store.con.create_table(f"_web_credits_{suffix}", credits, temp=True, overwrite=True)
    return journeys.journeys, stored
