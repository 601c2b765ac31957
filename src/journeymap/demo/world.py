"""A seeded B2B SaaS demo world with known true channel effects.

:func:`generate_world` draws accounts with buying committees and each person's touches
over the window (270 days by default). The model in :mod:`journeymap.demo.model` turns touches
into conversions (lead, opportunity, closed won), and daily ad spend follows the paid clicks.
:func:`write_world` writes the tables as the files that the importers read.

The truth of a channel is the number of closed-won deals (and their value) that would be lost
if the channel were removed from the world. The generator measures it from its own model: it
reruns the conversion step with that channel's lifts set to zero and the same random numbers,
so a deal counts as lost exactly when it needed that channel's touches. Touches are held
fixed, and lost touches still act: tracking gaps hide touches but do not remove them. Touches
do not depend on earlier touches, so no channel causes visits through another channel. The
loss is averaged over ``truth_draws`` independent draws of the conversion step, the first of
which is the world written out. A small world gets more draws to smooth its estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from journeymap.demo import catalog
from journeymap.demo.churn import draw_churn
from journeymap.demo.contacts import build_contacts
from journeymap.demo.crm import Crm, build_crm
from journeymap.demo.files import write_world
from journeymap.demo.model import (
    OPPORTUNITY_LOOKBACK_DAYS,
    SECONDS_PER_DAY,
    Funnel,
    Lifts,
    Losses,
    business_seconds,
    draw_conversions,
    measure_losses,
    simulate,
)
from journeymap.demo.planted import planted_problems
from journeymap.demo.population import Population, build_directory, draw_population
from journeymap.demo.rows import Rows, touchpoint_frame, touchpoint_rows
from journeymap.demo.spend import build_spend
from journeymap.demo.touches import MAX_TOUCHES, Touches, Vocabulary, build_vocabulary, draw_touches

__all__ = ["World", "generate_world", "truth_draws", "write_world"]

GROUP_PEOPLE = 50_000
"""People per group of accounts simulated at once, which bounds memory and paces progress."""
TRUTH_DRAW_BUDGET = 200_000
"""People times truth draws: worlds below this size get more than one draw, up to the maximum."""
MAX_TRUTH_DRAWS = 32
MIN_DAYS = 28
"""Minimum window, which fits two webinars (every 14 days from day 9) and one event (day 20)."""
MAX_DAYS = 3650
"""Maximum window. Times are 32-bit seconds from the start, which would allow 24,855 days."""

# Independent random streams, one per part of the world, so that parts do not shift each other.
STREAM_POPULATION = 0
STREAM_GROUP = 1
STREAM_SPEND = 2
STREAM_CLICK_IDS = 3
STREAM_NAMES = 4
STREAM_CRM = 5
STREAM_CONTACTS = 6
STREAM_CHURN = 7


@dataclass
class World:
    """The generated tables and the known truth.

    ``touchpoints``, ``spend``, ``accounts`` and ``people`` have the columns of the files
    that :func:`write_world` writes, and ``truth`` is the content of ``truth.json``. ``crm``
    holds the deals and upsells that :func:`journeymap.demo.crm.write_crm` writes.
    ``accounts.churned_at`` is when a customer cancelled (see :mod:`journeymap.demo.churn`).
    """

    touchpoints: pd.DataFrame
    spend: pd.DataFrame
    accounts: pd.DataFrame
    people: pd.DataFrame
    truth: dict[str, Any]
    contacts: pd.DataFrame | None = None
    """The contacts export of the people (see :mod:`journeymap.demo.contacts`)."""
    crm: Crm | None = None


def truth_draws(people: int) -> int:
    """Return the number of conversion-step draws that the truth of a world is averaged over."""
    return int(min(MAX_TRUTH_DRAWS, max(1, -(-TRUTH_DRAW_BUDGET // people))))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _lifts() -> Lifts:
    models = [catalog.CHANNEL_MODELS[name] for name in catalog.CHANNELS]
    return Lifts(
        lead=np.array([model.lead_lift for model in models]),
        opportunity=np.array([model.opportunity_lift for model in models]),
        win=np.array([model.win_lift for model in models]),
    )


def _account_groups(population: Population) -> list[tuple[int, int]]:
    """Split the accounts into runs of whole accounts of about :data:`GROUP_PEOPLE` people."""
    first_person = population.account_first_person
    cuts = np.searchsorted(first_person, np.arange(GROUP_PEOPLE, population.people, GROUP_PEOPLE))
    inner = sorted({int(cut) for cut in cuts} - {0, population.accounts})
    return list(pairwise([0, *inner, population.accounts]))


@dataclass
class _GroupResult:
    rows: Rows
    losses: Losses
    touches: Touches
    clicks: np.ndarray[Any, np.dtype[np.int64]]


def _simulate_group(
    seed: int,
    index: int,
    accounts: tuple[int, int],
    population: Population,
    vocabulary: Vocabulary,
    *,
    days: int,
    first_weekday: int,
    draws: int,
) -> _GroupResult:
    rng = _rng(seed, STREAM_GROUP, index, 0)
    first_account, end_account = accounts
    first_person = int(population.account_first_person[first_account])
    end_person = (
        int(population.account_first_person[end_account])
        if end_account < population.accounts
        else population.people
    )
    people = slice(first_person, end_person)
    account_slice = slice(first_account, end_account)
    person_account = population.person_account[people] - first_account
    account_intent = population.account_intent[account_slice]
    account_tier = population.account_tier[account_slice]
    noise = rng.beta(1.2, 3.0, len(person_account))
    person_intent = np.clip(0.6 * account_intent[person_account] + 0.4 * noise, 0.0, 1.0)

    touches = draw_touches(
        rng,
        vocabulary,
        person_account=person_account,
        account_tier=account_tier,
        person_intent=person_intent,
        days=days,
        first_weekday=first_weekday,
    )

    # A baseline lead falls between the person's first touch and 30 days after the last one.
    offsets = np.concatenate([[0], np.cumsum(touches.count_per_person)])
    first_time = touches.time[offsets[:-1]]
    last_time = touches.time[offsets[1:] - 1]
    baseline_day = (
        first_time + rng.random(len(first_time)) * (last_time - first_time + 30 * SECONDS_PER_DAY)
    ) // SECONDS_PER_DAY
    baseline_time = baseline_day * SECONDS_PER_DAY + business_seconds(rng, len(first_time))

    receptiveness = np.array([role.receptiveness for role in catalog.ROLES])
    intercept, slope = catalog.BASELINE_LEAD
    opportunity_intercept, opportunity_slope = catalog.OPPORTUNITY_BASE
    funnel = Funnel(
        touch_person=touches.person,
        touch_account=person_account[touches.person],
        touch_time=touches.time,
        touch_channel=touches.channel,
        touch_lead_time=touches.time + touches.lead_delay,
        person_account=person_account,
        person_receptiveness=receptiveness[population.person_role[people]]
        * (0.6 + 1.2 * person_intent),
        baseline_probability=intercept + slope * person_intent,
        baseline_time=baseline_time.astype(np.int64),
        account_first_person=population.account_first_person[account_slice] - first_person,
        opportunity_base=opportunity_intercept + opportunity_slope * account_intent,
        win_base=np.asarray(catalog.WIN_BASE)[account_tier],
        sales_cycle_days=np.asarray(catalog.SALES_CYCLE_DAYS)[account_tier],
        end=days * SECONDS_PER_DAY,
        first_weekday=first_weekday,
    )

    lifts = _lifts()
    won_amount = population.account_won_amount[account_slice]
    factual_draw = draw_conversions(_rng(seed, STREAM_GROUP, index, 1), funnel)
    factual = simulate(funnel, factual_draw, lifts)
    losses = measure_losses(funnel, factual_draw, lifts, won_amount, factual)
    for draw_index in range(1, draws):
        draw = draw_conversions(_rng(seed, STREAM_GROUP, index, 1 + draw_index), funnel)
        losses.add(measure_losses(funnel, draw, lifts, won_amount, simulate(funnel, draw, lifts)))

    rows = touchpoint_rows(
        touches,
        factual,
        vocabulary,
        person_offset=first_person,
        account_offset=first_account,
        opportunity_amount=population.account_amount[account_slice],
        won_amount=won_amount,
    )
    clicked = touches.ad >= 0
    clicks = np.bincount(
        touches.ad[clicked] * days + touches.time[clicked] // SECONDS_PER_DAY,
        minlength=len(vocabulary.ad_ids) * days,
    ).reshape(len(vocabulary.ad_ids), days)
    return _GroupResult(rows=rows, losses=losses, touches=touches, clicks=clicks.astype(np.int64))


def _pop_rows(parts: list[Rows]) -> Rows:
    """Concatenate the groups' rows and empty ``parts``, so that only one copy stays alive."""
    rows = Rows.concatenate(parts)
    parts.clear()
    return rows


def generate_world(
    people: int = 5000,
    *,
    seed: int = 7,
    start: date = date(2026, 1, 5),
    days: int = 270,
    progress: Callable[[int, int], None] | None = None,
    crm: bool = True,
) -> World:
    """Generate a demo world of ``people`` people over ``days`` days from ``start``.

    ``crm`` False leaves out the CRM (deals, planted problems) and the contacts export,
    which benchmarks of touchpoints alone do not need; every other table is the same.

    The same arguments give the same world, with the same versions of numpy, pandas and
    pyarrow. ``progress(done, total)`` is called with the number of people simulated so far
    and ``total`` equal to ``people``, after each group of about :data:`GROUP_PEOPLE`.

    Raises:
        ValueError: ``people`` is below 1, or ``days`` is outside ``MIN_DAYS`` to ``MAX_DAYS``.
    """
    if people < 1:
        raise ValueError(f"people must be at least 1, got {people}")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}, got {days}")
    if progress is not None:
        progress(0, people)

    vocabulary = build_vocabulary(start, days)
    population = draw_population(_rng(seed, STREAM_POPULATION), people)
    draws = truth_draws(people)
    channels = len(catalog.CHANNELS)
    losses = Losses.empty(channels)
    clicks = np.zeros((len(vocabulary.ad_ids), days), dtype=np.int64)
    touch_counts = np.zeros(MAX_TOUCHES + 1, dtype=np.int64)
    channel_touches = np.zeros(channels, dtype=np.int64)
    channel_tracked = np.zeros(channels, dtype=np.int64)
    parts: list[Rows] = []
    for index, accounts in enumerate(_account_groups(population)):
        result = _simulate_group(
            seed,
            index,
            accounts,
            population,
            vocabulary,
            days=days,
            first_weekday=start.weekday(),
            draws=draws,
        )
        parts.append(result.rows)
        losses.add(result.losses)
        clicks += result.clicks
        touch_counts += np.bincount(result.touches.count_per_person, minlength=MAX_TOUCHES + 1)
        channel_touches += np.bincount(result.touches.channel, minlength=channels)
        channel_tracked += np.bincount(
            result.touches.channel[result.touches.tracked], minlength=channels
        )
        if progress is not None:
            done = (
                people
                if accounts[1] == population.accounts
                else population.account_first_person[accounts[1]]
            )
            progress(int(done), people)

    directory = build_directory(_rng(seed, STREAM_NAMES), population)
    touchpoints = touchpoint_frame(
        _pop_rows(parts),
        vocabulary,
        directory,
        population,
        start=start,
        rng=_rng(seed, STREAM_CLICK_IDS),
    )
    spend = build_spend(_rng(seed, STREAM_SPEND), vocabulary, clicks, start=start)
    churned_at = draw_churn(
        _rng(seed, STREAM_CHURN), touchpoints, directory.accounts, start=start, days=days
    )
    account_rows = directory.accounts.assign(churned_at=churned_at)
    truth = _truth(
        seed=seed,
        start=start,
        days=days,
        draws=draws,
        population=population,
        losses=losses,
        touchpoints=touchpoints,
        spend=spend,
        touch_counts=touch_counts,
        channel_touches=channel_touches,
        channel_tracked=channel_tracked,
    )
    # The CRM draws from its own stream after every other table is final, so it changes none.
    deals = None
    contacts = None
    if crm:
        deals = build_crm(
            _rng(seed, STREAM_CRM), touchpoints, directory.accounts, start=start, days=days
        )
        truth["planted"] = planted_problems(
            touchpoints, deals, account_rows, start=start, days=days
        )
        contacts = build_contacts(
            _rng(seed, STREAM_CONTACTS), population, directory, touchpoints, start=start, days=days
        )
    if progress is not None:
        progress(people, people)
    return World(
        touchpoints=touchpoints,
        spend=spend,
        accounts=account_rows,
        people=directory.people,
        truth=truth,
        contacts=contacts,
        crm=deals,
    )


def _truth(
    *,
    seed: int,
    start: date,
    days: int,
    draws: int,
    population: Population,
    losses: Losses,
    touchpoints: pd.DataFrame,
    spend: pd.DataFrame,
    touch_counts: np.ndarray[Any, np.dtype[np.int64]],
    channel_touches: np.ndarray[Any, np.dtype[np.int64]],
    channel_tracked: np.ndarray[Any, np.dtype[np.int64]],
) -> dict[str, Any]:
    """Assemble ``truth.json``: the generator's arguments, parameters, counts and channel truth."""
    conversions = touchpoints[touchpoints["conversion"] == 1]
    kinds = conversions["conversion_kind"].astype("string")
    won = conversions[kinds == "closed_won"]
    platform_clicks = spend.groupby("platform", observed=True)["clicks"].sum()
    expected = losses.totals / draws
    channels = {
        name: {
            "closed_won": round(float(losses.won[index]) / draws, 4),
            "closed_won_value": round(float(losses.won_value[index]) / draws, 2),
            "opportunities": round(float(losses.opportunities[index]) / draws, 4),
            "leads": round(float(losses.leads[index]) / draws, 4),
            "touches": int(channel_touches[index]),
            "touches_tracked": int(channel_tracked[index]),
        }
        for index, name in enumerate(catalog.CHANNELS)
    }
    return {
        "definition": (
            "channels[name].closed_won is the mean number of closed-won deals lost when the "
            "channel's lifts are set to zero and the conversion step is rerun with the same random "
            "numbers, over truth_draws draws. closed_won_value is their value in USD. Lost "
            "(untracked) touches count, because tracking gaps hide touches but do not remove them."
        ),
        "generator": {
            "seed": seed,
            "people": population.people,
            "accounts": population.accounts,
            "start": start.isoformat(),
            "days": days,
            "truth_draws": draws,
        },
        "parameters": _parameters(),
        "counts": {
            "touches_generated": int(channel_touches.sum()),
            "touches_tracked": int(channel_tracked.sum()),
            "touchpoint_rows": len(touchpoints),
            "leads": int((kinds == "lead").sum()),
            "opportunities": int((kinds == "opportunity").sum()),
            "closed_won": len(won),
            "closed_won_value": round(float(won["value"].sum()), 2),
            "spend_rows": len(spend),
            "spend_cost": round(float(spend["cost"].sum()), 2),
            "spend_clicks": {str(name): int(value) for name, value in platform_clicks.items()},
        },
        "touches_per_person": {
            str(count): int(touch_counts[count]) for count in range(1, MAX_TOUCHES + 1)
        },
        "expected": {
            "leads": round(float(expected[0]), 4),
            "opportunities": round(float(expected[1]), 4),
            "closed_won": round(float(expected[2]), 4),
            "closed_won_value": round(float(expected[3]), 2),
            "closed_won_without_channels": round(float(expected[2] - losses.won[-1] / draws), 4),
            "closed_won_value_without_channels": round(
                float(expected[3] - losses.won_value[-1] / draws), 2
            ),
        },
        "channels": channels,
    }


def _parameters() -> dict[str, Any]:
    return {
        "channels": {
            name: {
                "weight": model.weight,
                "lead_lift": model.lead_lift,
                "opportunity_lift": model.opportunity_lift,
                "win_lift": model.win_lift,
                "first_touch_factor": model.first_touch_factor,
                "intent_slope": model.intent_slope,
            }
            for name, model in catalog.CHANNEL_MODELS.items()
        },
        "baseline_lead": list(catalog.BASELINE_LEAD),
        "opportunity_base": list(catalog.OPPORTUNITY_BASE),
        "opportunity_lookback_days": OPPORTUNITY_LOOKBACK_DAYS,
        "win_base_by_tier": list(catalog.WIN_BASE),
        "sales_cycle_days_by_tier": list(catalog.SALES_CYCLE_DAYS),
        "role_receptiveness": {role.name: role.receptiveness for role in catalog.ROLES},
        "untracked_share": catalog.UNTRACKED_SHARE,
        "touch_loss": catalog.TOUCH_LOSS,
        "on_touch_lead_share": catalog.ON_TOUCH_LEAD_SHARE,
        "anonymous_click_share": catalog.ANONYMOUS_CLICK_SHARE,
    }
