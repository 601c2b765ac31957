"""The demo world's conversion model, and the counterfactual runs that measure its truth.

Touches are fixed before the model runs, and the model decides which of them convert.

* Lead (person): each touch of channel ``c`` makes its person a lead with probability
  ``lead_lift[c]`` times the person's receptiveness, independently of other touches. A person
  can also become a lead with no touch at all (word of mouth), with a baseline probability at
  a fixed time. The lead is the first of these events.
* Opportunity (account): the account's first lead opens a deal, whose opportunity is created
  a few days later with probability ``1 - (1 - base) * prod(1 - opportunity_lift[c])``, the
  product running over the committee's touches from 30 days before the lead to that time.
* Closed won (account): weeks to months after the opportunity, the deal is won with
  probability ``1 - (1 - base) * prod(1 - win_lift[c])`` over the committee's touches between
  the lead and the close.

A stage that would fall after the end of the window does not happen. Opportunity and close
times are moved off weekends to the next Monday. The model is run again with one channel's
lifts set to zero and the same random numbers, so the difference counts the conversions that
this channel caused in this world (see :func:`measure_losses`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

SECONDS_PER_DAY = 86_400
NEVER = np.iinfo(np.int64).max // 4
"""Time of an event that does not happen, small enough that adding days cannot overflow."""

OPPORTUNITY_LOOKBACK_DAYS = 30
OPPORTUNITY_DELAY_DAYS = (2, 6.0)
"""Gamma shape and scale of the days from the first lead to the opportunity (one day added)."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Lifts:
    """Per-channel probabilities that one touch moves a person or account one stage on."""

    lead: FloatArray
    opportunity: FloatArray
    win: FloatArray

    def without(self, channels: NDArray[np.bool_]) -> Lifts:
        """Return the lifts with every channel in the ``channels`` mask switched off."""
        return Lifts(
            lead=np.where(channels, 0.0, self.lead),
            opportunity=np.where(channels, 0.0, self.opportunity),
            win=np.where(channels, 0.0, self.win),
        )


@dataclass(frozen=True)
class Funnel:
    """The model's fixed inputs for one group of whole accounts.

    Touch arrays are sorted by person, then time. Times are seconds from the start of the
    window, and people of one account are contiguous.
    """

    touch_person: IntArray
    touch_account: IntArray
    touch_time: IntArray
    touch_channel: IntArray
    touch_lead_time: IntArray
    """When a lead caused by this touch is recorded: the touch time, or minutes to a day later."""
    person_account: IntArray
    person_receptiveness: FloatArray
    baseline_probability: FloatArray
    baseline_time: IntArray
    account_first_person: IntArray
    opportunity_base: FloatArray
    win_base: FloatArray
    sales_cycle_days: FloatArray
    """Mean days from opportunity to close, by account."""
    end: int
    """End of the window in seconds. Stages at or after it do not happen."""
    first_weekday: int
    """Weekday of the window's first day (Monday is 0)."""

    @property
    def people(self) -> int:
        return len(self.person_account)

    @property
    def accounts(self) -> int:
        return len(self.account_first_person)


@dataclass(frozen=True)
class Draw:
    """The random numbers of one run of the conversion step."""

    touch: FloatArray
    baseline: FloatArray
    opportunity: FloatArray
    win: FloatArray
    opportunity_days: IntArray
    win_days: IntArray
    opportunity_second: IntArray
    win_second: IntArray


@dataclass(frozen=True)
class Outcome:
    """Conversion times of one run, with ``NEVER`` for conversions that do not happen."""

    lead_time: IntArray
    lead_touch: IntArray
    """Index of the touch that made each person a lead, or -1 for a baseline lead or none."""
    champion: IntArray
    """Person whose lead opened each account's deal, or -1 for an account without a lead."""
    opportunity_time: IntArray
    won_time: IntArray


def business_seconds(rng: np.random.Generator, size: int) -> IntArray:
    """Draw seconds of the day, mostly in the working hours of America and Europe (UTC)."""
    centred = rng.normal(15.5 * 3600, 2.5 * 3600, size)
    anytime = rng.uniform(0, SECONDS_PER_DAY, size)
    seconds = np.where(rng.random(size) < 0.85, np.clip(centred, 7 * 3600, 23 * 3600), anytime)
    return seconds.astype(np.int64)


def next_weekday(day: IntArray, first_weekday: int) -> IntArray:
    """Move day numbers that fall on a Saturday or Sunday to the following Monday."""
    weekday = (day + first_weekday) % 7
    return day + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))


def draw_conversions(rng: np.random.Generator, funnel: Funnel) -> Draw:
    """Draw the random numbers of one run of the conversion step."""
    accounts = funnel.accounts
    shape, scale = OPPORTUNITY_DELAY_DAYS
    cycle_scale = np.maximum(funnel.sales_cycle_days - 7.0, 1.0) / 2.0
    return Draw(
        touch=rng.random(len(funnel.touch_time)),
        baseline=rng.random(funnel.people),
        opportunity=rng.random(accounts),
        win=rng.random(accounts),
        opportunity_days=1 + rng.gamma(shape, scale, accounts).astype(np.int64),
        win_days=7 + rng.gamma(2.0, cycle_scale).astype(np.int64),
        opportunity_second=business_seconds(rng, accounts),
        win_second=business_seconds(rng, accounts),
    )


def _first_per_group(indices: IntArray, groups: IntArray) -> tuple[IntArray, IntArray]:
    """Return the first index of each group in ``indices`` (sorted by group) and its group."""
    if len(indices) == 0:
        return indices, indices
    keep = np.empty(len(indices), dtype=bool)
    keep[0] = True
    np.not_equal(groups[1:], groups[:-1], out=keep[1:])
    return indices[keep], groups[keep]


def _stage_probability(
    funnel: Funnel, base: FloatArray, lift: FloatArray, after: IntArray, until: IntArray
) -> FloatArray:
    """Return ``1 - (1 - base) * prod(1 - lift[c])`` over each account's touches in a window.

    The window of an account runs from ``after`` (exclusive) to ``until`` (inclusive).
    """
    account = funnel.touch_account
    time = funnel.touch_time
    inside = (time > after[account]) & (time <= until[account])
    log_keep = np.log1p(-lift)[funnel.touch_channel]
    total = np.bincount(account, weights=np.where(inside, log_keep, 0.0), minlength=funnel.accounts)
    return 1.0 - (1.0 - base) * np.exp(total)


def simulate(funnel: Funnel, draw: Draw, lifts: Lifts) -> Outcome:
    """Run the conversion step once with the given lifts and random numbers."""
    people = funnel.people
    chance = lifts.lead[funnel.touch_channel] * funnel.person_receptiveness[funnel.touch_person]
    fired = np.flatnonzero(draw.touch < chance)
    first_touch, lead_person = _first_per_group(fired, funnel.touch_person[fired])

    lead_time = np.full(people, NEVER, dtype=np.int64)
    lead_touch = np.full(people, -1, dtype=np.int64)
    lead_time[lead_person] = funnel.touch_lead_time[first_touch]
    lead_touch[lead_person] = first_touch
    baseline = (draw.baseline < funnel.baseline_probability) & (funnel.baseline_time < lead_time)
    lead_time[baseline] = funnel.baseline_time[baseline]
    lead_touch[baseline] = -1
    late = lead_time >= funnel.end
    lead_time[late] = NEVER
    lead_touch[late] = -1

    first_lead = np.minimum.reduceat(lead_time, funnel.account_first_person)
    has_lead = first_lead < NEVER
    earliest = np.flatnonzero(
        (lead_time == first_lead[funnel.person_account]) & (lead_time < NEVER)
    )
    champion_person, champion_account = _first_per_group(earliest, funnel.person_account[earliest])
    champion = np.full(funnel.accounts, -1, dtype=np.int64)
    champion[champion_account] = champion_person

    lead_day = np.where(has_lead, first_lead // SECONDS_PER_DAY, 0)
    opportunity_day = next_weekday(lead_day + draw.opportunity_days, funnel.first_weekday)
    opportunity_time = np.where(
        has_lead, opportunity_day * SECONDS_PER_DAY + draw.opportunity_second, NEVER
    )
    window_start = np.where(
        has_lead, first_lead - OPPORTUNITY_LOOKBACK_DAYS * SECONDS_PER_DAY, NEVER
    )
    opportunity_chance = _stage_probability(
        funnel, funnel.opportunity_base, lifts.opportunity, window_start, opportunity_time
    )
    opened = has_lead & (draw.opportunity < opportunity_chance) & (opportunity_time < funnel.end)
    opportunity_time = np.where(opened, opportunity_time, NEVER)

    won_day = next_weekday(
        np.where(opened, opportunity_day, 0) + draw.win_days, funnel.first_weekday
    )
    won_time = np.where(opened, won_day * SECONDS_PER_DAY + draw.win_second, NEVER)
    win_chance = _stage_probability(
        funnel, funnel.win_base, lifts.win, np.where(opened, first_lead, NEVER), won_time
    )
    won = opened & (draw.win < win_chance) & (won_time < funnel.end)
    won_time = np.where(won, won_time, NEVER)
    return Outcome(lead_time, lead_touch, champion, opportunity_time, won_time)


@dataclass
class Losses:
    """Conversions lost when channels are switched off, summed over draws.

    Row ``i`` of each array is channel ``i``. The last row switches every channel off at once.
    """

    leads: FloatArray
    opportunities: FloatArray
    won: FloatArray
    won_value: FloatArray
    totals: FloatArray
    """Leads, opportunities, closed-won deals and their value with every channel on."""

    @classmethod
    def empty(cls, channels: int) -> Losses:
        return cls(
            leads=np.zeros(channels + 1),
            opportunities=np.zeros(channels + 1),
            won=np.zeros(channels + 1),
            won_value=np.zeros(channels + 1),
            totals=np.zeros(4),
        )

    def add(self, other: Losses) -> None:
        """Add the sums of ``other`` (for example another group of accounts) to these."""
        self.leads += other.leads
        self.opportunities += other.opportunities
        self.won += other.won
        self.won_value += other.won_value
        self.totals += other.totals


def _counts(outcome: Outcome, won_amount: FloatArray) -> FloatArray:
    won = outcome.won_time < NEVER
    return np.array(
        [
            np.count_nonzero(outcome.lead_time < NEVER),
            np.count_nonzero(outcome.opportunity_time < NEVER),
            np.count_nonzero(won),
            float(won_amount[won].sum()),
        ]
    )


def measure_losses(
    funnel: Funnel, draw: Draw, lifts: Lifts, won_amount: FloatArray, factual: Outcome
) -> Losses:
    """Count the conversions of one draw that disappear when each channel is switched off.

    ``factual`` is :func:`simulate` with every lift on and the same ``draw``. Because the
    counterfactual runs reuse its random numbers, a conversion is lost exactly when the
    switched-off channel's touches were needed for it in this draw.
    """
    channels = len(lifts.lead)
    losses = Losses.empty(channels)
    base = _counts(factual, won_amount)
    losses.totals += base
    masks = [np.arange(channels) == channel for channel in range(channels)]
    masks.append(np.ones(channels, dtype=bool))
    for row, mask in enumerate(masks):
        counterfactual = _counts(simulate(funnel, draw, lifts.without(mask)), won_amount)
        lost = base - counterfactual
        losses.leads[row] += lost[0]
        losses.opportunities[row] += lost[1]
        losses.won[row] += lost[2]
        losses.won_value[row] += lost[3]
    return losses
