"""Markov chain attribution of order 1 to 4, solved exactly as an absorbing chain.

Assumptions: a journey is a walk through states that starts in ``(start)`` and is absorbed
in ``(conversion)`` or ``(null)``, and the next state depends only on the current one. A
state of order k is the tuple of the last k channels. The removal effect of a channel is the
share of the chain's conversion probability that is lost when every state containing the
channel sends its visitors to ``(null)``; a channel's credit is its removal effect over the
sum of all removal effects, times the conversions (Anderl, Becker, von Wangenheim and
Schumann, "Mapping the customer journey: Lessons learned from graph-based online
attribution modeling", International Journal of Research in Marketing 33(3), 2016).

Absorption probabilities come from one sparse linear solve per removal, ``(I - Q) x = r``,
so results are exact and deterministic: no simulation, no seed, no channel rounded to zero.
Value is attributed with the value-weighted chain: absorption into ``(conversion)`` from a
state pays the mean value of the conversions that ended in that state, and a channel's value
removal effect is the share of expected value lost without it. A channel whose journeys
convert rarely but for large deals therefore gets more value credit than conversion credit,
which a conversions-times-average-value split would hide.

Self-loops (a state followed by itself) do not change absorption probabilities, because a
self-loop only delays leaving a state; ``self_loops`` therefore changes only the reported
transition matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from pydantic import Field, field_validator

from journeymap.attribution.aggregate import (
    CONVERSION,
    NULL,
    START,
    STATE_SEPARATOR,
    transitions,
)
from journeymap.attribution.base import ChannelLevelModel, ModelParameters, register
from journeymap.common.errors import ModelError
from journeymap.journeys.build import Journeys


class MarkovParameters(ModelParameters):
    order: int = Field(1, ge=1, le=4, description="States are tuples of the last `order` channels.")
    self_loops: Literal["drop", "keep"] = Field(
        "drop", description="Count a state that follows itself once (drop) or every time (keep)."
    )
    sequences: tuple[str, ...] = Field(
        (),
        description="Channel sequences such as 'Email > Paid Search' to report removal effects of.",
    )

    @field_validator("sequences")
    @classmethod
    def _check_sequences(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for sequence in value:
            if len(split_sequence(sequence)) < 1:
                raise ValueError(f"empty channel sequence {sequence!r}")
        return value


def split_sequence(sequence: str) -> list[str]:
    """Return the channels of a ``"A > B"`` sequence."""
    return [part.strip() for part in sequence.split(">") if part.strip()]


@dataclass(frozen=True)
class MarkovResult:
    """Everything a Markov chain fit produces.

    ``transition_matrix``: ``source, target, count, probability`` with states shown as
    ``"A > B"``. ``removal_effects``: ``channel, removal_effect, value_removal_effect,
    conversions, value``. ``sequence_effects``: ``sequence, removal_effect,
    value_removal_effect``.
    """

    order: int
    conversion_probability: float
    expected_value: float
    transition_matrix: pd.DataFrame
    removal_effects: pd.DataFrame
    sequence_effects: pd.DataFrame = field(default_factory=pd.DataFrame)


def _display(state: str) -> str:
    return state.replace(STATE_SEPARATOR, " > ")


class AbsorbingChain:
    """A Markov chain with transient states and the two absorbing states."""

    def __init__(self, edges: pd.DataFrame) -> None:
        sources = set(edges.source)
        targets = set(edges.target) - {CONVERSION, NULL}
        self.states = sorted((sources | targets) - {START})
        self.states.insert(0, START)
        self.index = {state: number for number, state in enumerate(self.states)}
        self.edges = edges.reset_index(drop=True)
        out_total = edges.groupby("source")["count"].sum()
        self.out_total = np.array([float(out_total.get(state, 0.0)) for state in self.states])

    def solve(
        self, removed_states: set[str] | None = None, removed_edges: np.ndarray | None = None
    ) -> tuple[float, float]:
        """Return P(conversion) and expected value from ``(start)`` with states or edges removed.

        A removed state, and a removed edge, send their traffic to ``(null)``.
        """
        removed_states = removed_states or set()
        if START in removed_states:
            return 0.0, 0.0
        keep = [state for state in self.states if state not in removed_states]
        position = {state: number for number, state in enumerate(keep)}
        edges = self.edges
        mask = edges.source.isin(position).to_numpy()
        if removed_edges is not None:
            mask &= ~removed_edges
        edges = edges[mask]
        totals = self.out_total[[self.index[state] for state in keep]]
        rows = edges.source.map(position).to_numpy()
        scale = totals[rows]

        inner = edges.target.isin(position).to_numpy()
        q = sp.csc_matrix(
            (
                edges["count"].to_numpy()[inner] / scale[inner],
                (rows[inner], edges.target[inner].map(position).to_numpy()),
            ),
            shape=(len(keep), len(keep)),
        )
        converting = (edges.target == CONVERSION).to_numpy()
        r = np.zeros(len(keep))
        np.add.at(r, rows[converting], edges["count"].to_numpy()[converting] / scale[converting])
        rv = np.zeros(len(keep))
        np.add.at(rv, rows[converting], edges["value"].to_numpy()[converting] / scale[converting])

        system = (sp.identity(len(keep), format="csc") - q).tocsc()
        solver = spla.splu(system)
        probability = float(solver.solve(r)[0])
        value = float(solver.solve(rv)[0])
        return max(probability, 0.0), max(value, 0.0)

    def matrix(self) -> pd.DataFrame:
        """Return the transition probabilities with readable state names."""
        frame = self.edges.copy()
        totals = frame.groupby("source")["count"].transform("sum")
        frame["probability"] = frame["count"] / totals
        frame["source"] = frame.source.map(_display)
        frame["target"] = frame.target.map(_display)
        return frame[["source", "target", "count", "probability"]]


def _edge_windows(edges: pd.DataFrame) -> list[list[str]]:
    """Return the channels each edge spans: the source state and the target's last channel."""
    windows: list[list[str]] = []
    for source, target in zip(edges.source, edges.target, strict=True):
        target_channels = [] if target in (CONVERSION, NULL) else target.split(STATE_SEPARATOR)
        if source == START:
            windows.append(target_channels)
        else:
            windows.append(source.split(STATE_SEPARATOR) + target_channels[-1:])
    return windows


def _contains(window: list[str], sequence: list[str]) -> bool:
    width = len(sequence)
    return any(
        window[start : start + width] == sequence for start in range(len(window) - width + 1)
    )


def fit_markov(edges: pd.DataFrame, order: int, sequences: tuple[str, ...] = ()) -> MarkovResult:
    """Solve the chain given by transition counts (see :func:`aggregate.transitions`)."""
    chain = AbsorbingChain(edges)
    probability, value = chain.solve()
    channels = sorted(
        {channel for state in chain.states[1:] for channel in state.split(STATE_SEPARATOR)}
    )
    total_conversions = float(edges.loc[edges.target == CONVERSION, "count"].sum())
    total_value = float(edges.loc[edges.target == CONVERSION, "value"].sum())

    effects = []
    for channel in channels:
        removed = {state for state in chain.states[1:] if channel in state.split(STATE_SEPARATOR)}
        without, value_without = chain.solve(removed_states=removed)
        effects.append(
            (
                channel,
                1.0 - without / probability if probability > 0 else 0.0,
                1.0 - value_without / value if value > 0 else 0.0,
            )
        )
    frame = pd.DataFrame(effects, columns=["channel", "removal_effect", "value_removal_effect"])
    frame[["removal_effect", "value_removal_effect"]] = frame[
        ["removal_effect", "value_removal_effect"]
    ].clip(lower=0.0)
    effect_sum = frame.removal_effect.sum()
    value_sum = frame.value_removal_effect.sum()
    frame["conversions"] = (
        frame.removal_effect / effect_sum * total_conversions if effect_sum > 0 else 0.0
    )
    frame["value"] = frame.value_removal_effect / value_sum * total_value if value_sum > 0 else 0.0

    sequence_rows = []
    windows = _edge_windows(chain.edges) if sequences else []
    for sequence in sequences:
        parts = split_sequence(sequence)
        if len(parts) > order + 1:
            raise ModelError(
                f"sequence {sequence!r} has {len(parts)} channels; an order-{order} chain can "
                f"remove sequences of at most {order + 1}",
                hint=f"Use --order {len(parts) - 1} or a shorter sequence",
            )
        removed_edges = np.array([_contains(window, parts) for window in windows])
        without, value_without = chain.solve(removed_edges=removed_edges)
        sequence_rows.append(
            (
                " > ".join(parts),
                max(1.0 - without / probability, 0.0) if probability > 0 else 0.0,
                max(1.0 - value_without / value, 0.0) if value > 0 else 0.0,
            )
        )
    return MarkovResult(
        order=order,
        conversion_probability=probability,
        expected_value=value,
        transition_matrix=chain.matrix(),
        removal_effects=frame.sort_values(
            ["conversions", "channel"], ascending=[False, True]
        ).reset_index(drop=True),
        sequence_effects=pd.DataFrame(
            sequence_rows, columns=["sequence", "removal_effect", "value_removal_effect"]
        ),
    )


@register
class Markov(ChannelLevelModel):
    """Markov chain attribution by removal effects, solved exactly (order 1 to 4).

    Input: journeys with touches, converting and not. Loops and repeats are states the chain
    passes through; journeys without touches go to ``(unattributed)``. Ties cannot arise,
    because removal effects are exact. Complexity: one sparse LU factorisation per channel
    over the observed states (at most the number of distinct k-tuples in the data).
    """

    name = "markov"
    Parameters = MarkovParameters
    description = "Removal effects of an absorbing Markov chain over channel states."
    results: dict[str, MarkovResult]
    """The fit of each conversion kind behind the last :meth:`credits` call."""

    def __init__(self, **parameters: object) -> None:
        super().__init__(**parameters)
        self.results = {}

    def fit(self, journeys: Journeys, kind: str | None = None) -> MarkovResult:
        """Count transitions over the distinct paths (of one kind) and solve the chain."""
        p = self.parameters
        assert isinstance(p, MarkovParameters)
        edges = transitions(journeys, p.order, p.self_loops == "drop", kind)
        return fit_markov(edges, p.order, p.sequences)

    def channel_credit(
        self, journeys: Journeys, kind: str
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Return the chain's conversions and value credit per channel."""
        result = self.fit(journeys, kind)
        self.results[kind] = result
        effects = result.removal_effects
        return (
            dict(zip(effects.channel, effects.conversions, strict=True)),
            dict(zip(effects.channel, effects.value, strict=True)),
        )
