"""Path steps: vectorised transition counts and coalitions against plain loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymap.attribution import fractribution
from journeymap.attribution.aggregate import (
    CONVERSION,
    NULL,
    START,
    STATE_SEPARATOR,
    PathSteps,
    transitions_of_steps,
)
from journeymap.attribution.fractribution import step_fractions

CHANNELS = ["Direct", "Email", "Paid Search", "Webinars"]


def steps_of(paths: list[tuple[list[int], float, float, float, str]]) -> PathSteps:
    """Return steps for (channel codes from 1, conversions, value, nulls, kind) paths."""
    longest = max((len(codes) for codes, *_ in paths), default=1)
    matrix = np.zeros((len(paths), longest), dtype=np.int64)
    for row, (codes, *_rest) in enumerate(paths):
        matrix[row, : len(codes)] = codes
    summary = pd.DataFrame(
        {
            "kind": [kind for *_, kind in paths],
            "conversions": [conversions for _, conversions, _, _, _ in paths],
            "value": [value for _, _, value, _, _ in paths],
            "nulls": [nulls for _, _, _, nulls, _ in paths],
        }
    )
    return PathSteps.from_codes(matrix, CHANNELS, summary)


def loop_transitions(
    paths: list[tuple[list[int], float, float, float, str]],
    order: int,
    drop: bool,
    kind: str | None,
) -> pd.DataFrame:
    """Count transitions path by path, the way the definition reads."""
    counts: dict[tuple[str, str], float] = {}
    values: dict[tuple[str, str], float] = {}
    for codes, conversions, value, nulls, path_kind in paths:
        if kind is not None and path_kind != kind:
            continue
        names = [CHANNELS[code - 1] for code in codes]
        if len(names) < order:
            states = [STATE_SEPARATOR.join(names)]
        else:
            states = [
                STATE_SEPARATOR.join(names[start : start + order])
                for start in range(len(names) - order + 1)
            ]
        previous = START
        for state in states:
            if drop and state == previous:
                continue
            counts[(previous, state)] = counts.get((previous, state), 0.0) + conversions + nulls
            previous = state
        if conversions > 0:
            counts[(previous, CONVERSION)] = counts.get((previous, CONVERSION), 0.0) + conversions
            values[(previous, CONVERSION)] = values.get((previous, CONVERSION), 0.0) + value
        if nulls > 0:
            counts[(previous, NULL)] = counts.get((previous, NULL), 0.0) + nulls
    frame = pd.DataFrame(
        {
            "source": [source for source, _ in counts],
            "target": [target for _, target in counts],
            "count": list(counts.values()),
            "value": [values.get(edge, 0.0) for edge in counts],
        }
    )
    frame = frame.astype({"source": str, "target": str, "count": float, "value": float})
    return frame.sort_values(["source", "target"], ignore_index=True)


def test_transitions_second_order_by_hand() -> None:
    # Email > Direct > Email converts; Email alone is a null.
    paths = [([2, 1, 2], 1.0, 10.0, 0.0, "lead"), ([2], 0.0, 0.0, 1.0, "lead")]
    edges = transitions_of_steps(steps_of(paths), order=2, drop_self_loops=True)
    sep = STATE_SEPARATOR
    expected = {
        (START, f"Email{sep}Direct"): (1.0, 0.0),
        (f"Email{sep}Direct", f"Direct{sep}Email"): (1.0, 0.0),
        (f"Direct{sep}Email", CONVERSION): (1.0, 10.0),
        (START, "Email"): (1.0, 0.0),
        ("Email", NULL): (1.0, 0.0),
    }
    found = {(row.source, row.target): (row.count, row.value) for row in edges.itertuples()}
    assert found == expected


def test_transitions_of_steps_drops_a_repeated_state_once() -> None:
    paths = [([2, 2, 2, 3], 1.0, 1.0, 0.0, "lead")]
    kept = transitions_of_steps(steps_of(paths), order=1, drop_self_loops=True)
    assert ("Email", "Email") not in set(zip(kept.source, kept.target, strict=True))
    loops = transitions_of_steps(steps_of(paths), order=1, drop_self_loops=False)
    assert loops.set_index(["source", "target"])["count"][("Email", "Email")] == 2.0


path = st.tuples(
    st.lists(st.integers(1, len(CHANNELS)), min_size=1, max_size=7),
    st.sampled_from([0.0, 1.0, 2.0]),
    st.sampled_from([0.0, 5.0, 12.5]),
    st.sampled_from([0.0, 1.0, 3.0]),
    st.sampled_from(["lead", "opportunity"]),
)


@settings(max_examples=150, deadline=None)
@given(
    paths=st.lists(path, min_size=1, max_size=12),
    order=st.integers(1, 4),
    drop=st.booleans(),
    kind=st.sampled_from([None, "lead", "opportunity"]),
)
def test_transitions_of_steps_equals_a_loop_over_paths(
    paths: list[tuple[list[int], float, float, float, str]],
    order: int,
    drop: bool,
    kind: str | None,
) -> None:
    vectorised = transitions_of_steps(steps_of(paths), order, drop, kind)
    expected = loop_transitions(paths, order, drop, kind)
    pd.testing.assert_frame_equal(vectorised, expected, check_exact=False, rtol=1e-12)


@settings(max_examples=150, deadline=None)
@given(paths=st.lists(path, min_size=1, max_size=12), ordered=st.booleans())
def test_path_steps_coalitions_are_the_distinct_channels(
    paths: list[tuple[list[int], float, float, float, str]], ordered: bool
) -> None:
    found = steps_of(paths).coalitions(ordered=ordered)
    expected = []
    for codes, *_ in paths:
        seen = list(dict.fromkeys(CHANNELS[code - 1] for code in codes))
        expected.append(STATE_SEPARATOR.join(seen if ordered else sorted(seen)))
    assert list(found) == expected


def loop_fractions(paths: list[tuple[list[int], float, float, float, str]]) -> list[float]:
    """Fractribution's leave-one-out fractions, path by path, for converting paths."""
    probability = {}
    for codes, conversions, _, nulls, kind in paths:
        seen = conversions + nulls
        probability[(kind, tuple(codes))] = conversions / seen if seen > 0 else 0.0
    fractions: list[float] = []
    for codes, conversions, _, _, kind in paths:
        if conversions <= 0:
            continue
        own = probability[(kind, tuple(codes))]
        if len(codes) == 1:
            contributions = [own]
        else:
            contributions = [
                max(own - probability.get((kind, tuple(codes[:at] + codes[at + 1 :])), 0.0), 0.0)
                for at in range(len(codes))
            ]
        total = sum(contributions)
        if total > 0:
            fractions.extend(contribution / total for contribution in contributions)
        else:
            fractions.extend([0.0] * (len(codes) - 1) + [1.0])
    return fractions


@settings(max_examples=150, deadline=None)
@given(paths=st.lists(path, min_size=1, max_size=12, unique_by=lambda p: (tuple(p[0]), p[4])))
def test_path_fractions_equal_a_loop_over_paths(
    paths: list[tuple[list[int], float, float, float, str]],
) -> None:
    steps = steps_of(paths)
    fraction = step_fractions(steps)
    converting = steps.conversions[steps.path] > 0
    assert fraction[converting] == pytest.approx(loop_fractions(paths), abs=1e-12)
    assert not fraction[~converting].any()


def test_find_rows_survives_hash_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = np.array([[1, 2, 0], [2, 1, 0], [1, 0, 0]], dtype=np.uint8)
    kinds = np.array([0, 0, 1])
    queries = np.array([[2, 1, 0], [1, 0, 0], [1, 0, 0], [3, 0, 0]], dtype=np.uint8)
    query_kinds = np.array([0, 1, 0, 0])
    expected = [1, 2, -1, -1]
    assert fractribution._find_rows(rows, kinds, queries, query_kinds).tolist() == expected
    # Every hash equal: the lookup falls back to exact bytes and still finds the same rows.
    monkeypatch.setattr(
        fractribution, "_row_hashes", lambda rows, kinds: np.zeros(len(rows), dtype=np.uint64)
    )
    assert fractribution._find_rows(rows, kinds, queries, query_kinds).tolist() == expected


def test_path_steps_coalitions_with_many_channels() -> None:
    # Twenty channels do not fit a coalition into one number, so the strings are joined.
    channels = [f"Channel {number:02d}" for number in range(20)]
    codes = np.array([[20, 3, 20, 1], [1, 3, 0, 0], [5, 0, 0, 0]], dtype=np.int64)
    summary = pd.DataFrame(
        {"kind": "lead", "conversions": [1.0, 0.0, 1.0], "nulls": [0.0, 1.0, 0.0]}
    )
    steps = PathSteps.from_codes(codes, channels, summary)
    assert list(steps.coalitions(ordered=True)) == [
        STATE_SEPARATOR.join(["Channel 19", "Channel 02", "Channel 00"]),
        STATE_SEPARATOR.join(["Channel 00", "Channel 02"]),
        "Channel 04",
    ]
    assert steps.coalitions(ordered=False)[0] == STATE_SEPARATOR.join(
        ["Channel 00", "Channel 02", "Channel 19"]
    )
