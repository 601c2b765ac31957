"""Rule-based attribution models, computed in the engine with window functions.

Each model gives every touch of a converting journey a share (its *weight*) of the journey;
the shares of one journey add up to 1, and the touch's credit is its share times the
journey's conversions and value. Positions count touches, not distinct channels: in
``paid_social > email > paid_social`` the first and the last touch are both paid social.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from journeymap.attribution.aggregate import PathSteps, path_steps
from journeymap.attribution.base import (
    CREDIT_COLUMNS,
    AttributionModel,
    ModelParameters,
    register,
    unattributed_rows,
)
from journeymap.common.errors import ModelError
from journeymap.common.numbers import exact_sum
from journeymap.journeys.build import Journeys

JOURNEY = ibis.window(group_by="journey_id")


def _no_milestones(journeys: Journeys) -> bool:
    """Return whether no touch is a lead, opportunity or closed-won touch; memoised."""
    if "no_milestones" not in journeys.memo:
        t = journeys.touches
        flagged = t.filter(t.is_lead_touch | t.is_opportunity_touch | t.is_won_touch)
        journeys.memo["no_milestones"] = int(flagged.limit(1).count().execute()) == 0
    return bool(journeys.memo["no_milestones"])


def _repeats_are_one(journeys: Journeys) -> bool:
    """Return whether every touch stands for one touch (no frequency transform); memoised."""
    if "single_repeats" not in journeys.memo:
        largest = journeys.touches.repeats.max().execute()
        journeys.memo["single_repeats"] = largest is None or pd.isna(largest) or int(largest) <= 1
    return bool(journeys.memo["single_repeats"])


class RuleModel(AttributionModel):
    """A model that is a formula over each touch's position, time and milestones."""

    uses_repeats: ClassVar[bool] = False
    """Whether the shares read ``repeats``; paths only stand in for touches that repeat once."""
    uses_milestones: ClassVar[bool] = False
    """Whether the shares read the milestone flags; paths only stand in without milestones."""

    @abstractmethod
    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        """Return each touch's share of its journey; shares of one journey add up to 1.

        ``t`` has the ``journey_touches`` columns; windows over ``journey_id`` are allowed.
        """

    def weigh(self, t: ibis.Table) -> ibis.Table:
        """Return ``t`` with the touch's share in ``_weight``; override to compute in steps."""
        return t.mutate(_weight=self.weight(t))

    def path_weight(self, steps: PathSteps) -> np.ndarray | None:
        """Return each step's share of its distinct path, or None without a shortcut.

        Only a model whose shares depend on nothing but the positions and channels of the
        path has one. Its shares must equal those of :meth:`weight`, touch for touch.
        """
        return None

    def channel_totals(self, journeys: Journeys) -> pd.DataFrame:
        """Return the credit by kind and channel: over distinct paths, else in the engine."""
        has_shortcut = type(self).path_weight is not RuleModel.path_weight
        if (
            has_shortcut
            and (not self.uses_repeats or _repeats_are_one(journeys))
            and (not self.uses_milestones or _no_milestones(journeys))
        ):
            steps = path_steps(journeys)
            weight = self.path_weight(steps)
            if weight is not None:
                return steps.totals(weight)
        # A journey source may offer its converting touches with their journey's weights.
        touches = journeys.memo.get("converting_touches")
        if touches is None:
            touches = self._converting_touches(journeys)
        weighted = self.weigh(touches)
        summed = weighted.group_by(["kind", "channel"]).aggregate(
            conversions=exact_sum(weighted._weight * weighted.conversions),
            value=exact_sum(weighted._weight * weighted.value),
        )
        frame: pd.DataFrame = summed.to_pandas()
        return frame[["kind", "channel", "conversions", "value"]]

    def _converting_touches(self, journeys: Journeys) -> ibis.Table:
        converting = journeys.journeys.filter(journeys.journeys.conversions > 0).select(
            "journey_id", "conversion_id", "kind", "conversions", "value"
        )
        touches = journeys.touches.inner_join(converting, "journey_id")
        touches = touches.drop([column for column in touches.columns if column.endswith("_right")])
        if self.needs_timestamps and not journeys.memo.get("timestamps_complete"):
            self._check_timestamps(touches)
        return touches

    def credits(self, journeys: Journeys) -> ibis.Table:
        """Return credit rows: touch shares times journey conversions and value."""
        weighted = self.weigh(self._converting_touches(journeys))
        # Touches with no share (all but one under first touch) are not stored.
        weighted = weighted.filter(weighted._weight > 0)
        credited = weighted.select(
            model=ibis.literal(self.name),
            journey_id=weighted.journey_id,
            conversion_id=weighted.conversion_id,
            kind=weighted.kind,
            touchpoint_id=weighted.touchpoint_id,
            position=weighted.position,
            channel=weighted.channel,
            source_medium=weighted.source_medium,
            campaign=weighted.campaign,
            ad_id=weighted.ad_id,
            credit=weighted._weight * weighted.conversions,
            value_credit=weighted._weight * weighted.value,
        )
        return credited.union(unattributed_rows(self.name, journeys.journeys)).select(
            *CREDIT_COLUMNS
        )

    def _check_timestamps(self, touches: ibis.Table) -> None:
        missing = touches.filter(touches.days_before.isnull()).limit(1).count().execute()
        if missing:
            raise ModelError(
                f"model {self.name!r} needs touch timestamps, and some journeys have none "
                "(aggregated paths carry no times)",
                hint="Drop this model for path input, or import touchpoint rows with timestamps",
            )


@register
class FirstTouch(RuleModel):
    """All credit to the first touch of the journey."""

    name = "first_touch"
    description = "All credit to the first touch."

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        return ibis.cases((t.position == 1, 1.0), else_=0.0)

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        return np.asarray(steps.position == 1, dtype=float)


@register
class LastTouch(RuleModel):
    """All credit to the last touch before the conversion."""

    name = "last_touch"
    description = "All credit to the last touch."

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        return ibis.cases((t.position == t.n_touches, 1.0), else_=0.0)

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        return np.asarray(steps.position == steps.length, dtype=float)


class LastNonDirectParameters(ModelParameters):
    direct_channels: tuple[str, ...] = Field(
        ("Direct",), description="Channels skipped when an earlier touch is not direct (any case)."
    )


@register
class LastNonDirect(RuleModel):
    """All credit to the last touch that is not direct; to the last touch when all are direct."""

    name = "last_non_direct"
    Parameters = LastNonDirectParameters
    description = "All credit to the last non-direct touch."

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        assert isinstance(self.parameters, LastNonDirectParameters)
        direct = [channel.lower() for channel in self.parameters.direct_channels]
        is_direct = t.channel.lower().isin(direct).fill_null(False)
        last_other = (
            ibis.cases((~is_direct, t.position), else_=ibis.null("int64")).max().over(JOURNEY)
        )
        chosen = ibis.coalesce(last_other, t.n_touches)
        return ibis.cases((t.position == chosen, 1.0), else_=0.0)

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        assert isinstance(self.parameters, LastNonDirectParameters)
        direct = {channel.lower() for channel in self.parameters.direct_channels}
        is_direct = np.array([name.lower() in direct for name in steps.channels], dtype=bool)
        candidate = np.where(is_direct[steps.channel], 0, steps.position)
        last_other = steps.path_max(candidate)
        chosen = np.where(last_other > 0, last_other, steps.length)
        return np.asarray(steps.position == chosen, dtype=float)


@register
class Linear(RuleModel):
    """Equal credit to every touch (with the frequency transform, in proportion to repeats)."""

    name = "linear"
    description = "Equal credit to every touch."
    uses_repeats = True

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        # Only reached when every touch's repeats is 1.
        return 1.0 / steps.length

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        repeats = t.repeats.cast("float64")
        return repeats / repeats.sum().over(JOURNEY)


class TimeDecayParameters(ModelParameters):
    half_life_days: float = Field(
        7.0, gt=0, description="Days after which a touch's weight halves."
    )


@register
class TimeDecay(RuleModel):
    """Weight ``2 ** (-days_before / half_life_days)``, normalised over the journey.

    ``days_before`` is the time from the touch to the conversion in days (fractional).
    """

    name = "time_decay"
    Parameters = TimeDecayParameters
    needs_timestamps = True
    description = "Credit halves for every half-life before the conversion."

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        assert isinstance(self.parameters, TimeDecayParameters)
        raw = ibis.literal(2.0).pow(-(t.days_before / self.parameters.half_life_days))
        return raw / raw.sum().over(JOURNEY)


class PositionParameters(ModelParameters):
    first: float = Field(0.4, ge=0, le=1, description="Share of the first touch.")
    last: float = Field(0.4, ge=0, le=1, description="Share of the last touch.")

    @model_validator(mode="after")
    def _shares_fit(self) -> PositionParameters:
        if self.first + self.last > 1 + 1e-12:
            raise ValueError(f"first + last is {self.first + self.last:g}; it must not exceed 1")
        return self


@register
class PositionBased(RuleModel):
    """U-shaped: ``first`` to the first touch, ``last`` to the last, the rest spread evenly.

    One touch takes everything. Two touches split in proportion ``first : last`` (half each
    when both are 0), because there is no middle to take the rest.
    """

    name = "position_based"
    Parameters = PositionParameters
    description = "First and last touches get fixed shares, the middle splits the rest."

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        assert isinstance(self.parameters, PositionParameters)
        first, last = self.parameters.first, self.parameters.last
        ends = first + last
        two_first = first / ends if ends > 0 else 0.5
        middle = (1.0 - ends) / (t.n_touches - 2).cast("float64")
        return ibis.cases(
            (t.n_touches == 1, 1.0),
            ((t.n_touches == 2) & (t.position == 1), two_first),
            (t.n_touches == 2, 1.0 - two_first),
            (t.position == 1, first),
            (t.position == t.n_touches, last),
            else_=middle,
        )

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        assert isinstance(self.parameters, PositionParameters)
        first, last = self.parameters.first, self.parameters.last
        ends = first + last
        two_first = first / ends if ends > 0 else 0.5
        n, position = steps.length, steps.position
        with np.errstate(divide="ignore", invalid="ignore"):
            middle = (1.0 - ends) / (n - 2)
        return np.select(
            [
                n == 1,
                (n == 2) & (position == 1),
                n == 2,
                position == 1,
                position == n,
            ],
            [1.0, two_first, 1.0 - two_first, first, last],
            default=middle,
        )


class MilestoneWeights(ModelParameters):
    first: float = Field(0.3, ge=0, description="Share of the first touch.")
    lead: float = Field(0.3, ge=0, description="Share of the touch that created the lead.")
    opportunity: float = Field(
        0.3, ge=0, description="Share of the touch that created the opportunity."
    )
    rest: float = Field(0.1, ge=0, description="Share spread over the other touches.")

    @model_validator(mode="after")
    def _positive(self) -> MilestoneWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one share must be above 0")
        return self


class FullPathWeights(MilestoneWeights):
    first: float = Field(0.225, ge=0, description="Share of the first touch.")
    lead: float = Field(0.225, ge=0, description="Share of the touch that created the lead.")
    opportunity: float = Field(
        0.225, ge=0, description="Share of the touch that created the opportunity."
    )
    won: float = Field(0.225, ge=0, description="Share of the touch that closed the deal.")
    rest: float = Field(0.1, ge=0, description="Share spread over the other touches.")


def _first_only_weight(steps: PathSteps, first: float, rest: float) -> np.ndarray:
    """Return the milestone shares of paths whose only milestone is the first touch.

    The same arithmetic as :func:`_milestone_weigh` with every milestone flag false: the
    first touch gets ``first``, the others split ``rest``, renormalised per path.
    """
    n, position = steps.length, steps.position
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(position == 1, first, rest / (n - 1))
        total = np.where(n > 1, first + rest, first)
        return np.where(total > 0, raw / total, 1.0 / n)


def _milestone_weigh(t: ibis.Table, shares: dict[str, float], rest: float) -> ibis.Table:
    """Shares of the milestone touches, the rest spread over the others, renormalised.

    A touch that is several milestones takes each share. A missing milestone (its conversion
    is absent, or happened before the journey's first touch) takes nothing, and the shares
    that remain are scaled up to add to 1; so is ``rest`` when every touch is a milestone.
    """
    flags = {
        "first": t.position == 1,
        "lead": t.is_lead_touch,
        "opportunity": t.is_opportunity_touch,
        "won": t.is_won_touch,
    }
    held: ir.FloatingValue = ibis.literal(0.0)
    is_milestone: ir.BooleanValue = ibis.literal(False)
    for name, share in shares.items():
        flag = flags[name].fill_null(False)
        held = held + ibis.cases((flag, share), else_=0.0)
        is_milestone = is_milestone | flag
    # Window sums cannot nest, so each sum is its own step.
    t = t.mutate(_held=held, _milestone=is_milestone)
    t = t.mutate(_others=ibis.cases((t._milestone, 0), else_=1).sum().over(JOURNEY).cast("float64"))
    t = t.mutate(_raw=t._held + ibis.cases((~t._milestone, rest / t._others), else_=0.0))
    t = t.mutate(_total=t._raw.sum().over(JOURNEY))
    even = 1.0 / t.n_touches.cast("float64")
    t = t.mutate(_weight=ibis.cases((t._total > 0, t._raw / t._total), else_=even))
    return t.drop("_held", "_milestone", "_others", "_raw", "_total")


@register
class WShaped(RuleModel):
    """W-shaped: first, lead-creation and opportunity-creation touches 30% each, 10% to the rest."""

    name = "w_shaped"
    Parameters = MilestoneWeights
    description = "First, lead-creation and opportunity-creation touches share most credit."
    uses_milestones = True

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        p = self.parameters
        assert isinstance(p, MilestoneWeights)
        return _first_only_weight(steps, p.first, p.rest)

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        raise NotImplementedError("milestone weights need several window steps; see weigh()")

    def weigh(self, t: ibis.Table) -> ibis.Table:
        p = self.parameters
        assert isinstance(p, MilestoneWeights)
        return _milestone_weigh(
            t, {"first": p.first, "lead": p.lead, "opportunity": p.opportunity}, p.rest
        )


@register
class FullPath(RuleModel):
    """Full path (Z-shaped): W-shaped plus the closed-won touch, 22.5% each, 10% to the rest."""

    name = "full_path"
    Parameters = FullPathWeights
    description = "First, lead, opportunity and closed-won touches share most credit."
    uses_milestones = True

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        p = self.parameters
        assert isinstance(p, FullPathWeights)
        return _first_only_weight(steps, p.first, p.rest)

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        raise NotImplementedError("milestone weights need several window steps; see weigh()")

    def weigh(self, t: ibis.Table) -> ibis.Table:
        p = self.parameters
        assert isinstance(p, FullPathWeights)
        shares = {"first": p.first, "lead": p.lead, "opportunity": p.opportunity, "won": p.won}
        return _milestone_weigh(t, shares, p.rest)


class CustomParameters(ModelParameters):
    first: float = Field(1.0, ge=0, description="Relative weight of the first touch.")
    middle: float = Field(1.0, ge=0, description="Relative weight of each middle touch.")
    last: float = Field(1.0, ge=0, description="Relative weight of the last touch.")

    @model_validator(mode="after")
    def _positive(self) -> CustomParameters:
        if self.first + self.middle + self.last <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


@register
class CustomPositions(RuleModel):
    """Relative weights for the first, each middle and the last touch, normalised per journey.

    Unlike position-based, the middle weight is per touch, so long journeys give the middle
    more credit. With the default weights (all 1) the model equals linear.
    """

    name = "custom"
    Parameters = CustomParameters
    description = "Your own relative weights for first, middle and last touches."

    def weight(self, t: ibis.Table) -> ir.FloatingValue:
        p = self.parameters
        assert isinstance(p, CustomParameters)
        raw = ibis.cases(
            (t.n_touches == 1, 1.0),
            (t.position == 1, p.first),
            (t.position == t.n_touches, p.last),
            else_=p.middle,
        )
        total = raw.sum().over(JOURNEY)
        even = 1.0 / t.n_touches.cast("float64")
        return ibis.cases((total > 0, raw / total), else_=even)

    def path_weight(self, steps: PathSteps) -> np.ndarray:
        p = self.parameters
        assert isinstance(p, CustomParameters)
        n, position = steps.length, steps.position
        raw = np.select(
            [n == 1, position == 1, position == n], [1.0, p.first, p.last], default=p.middle
        )
        total = steps.path_sum(raw)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, raw / total, 1.0 / n)
