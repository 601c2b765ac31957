"""Markov chain attribution: exact removal effects against hand-worked and published values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeymap.attribution import create_model, credit_by
from journeymap.attribution.markov import Markov, MarkovResult
from journeymap.channels.rules import ChannelClassifier
from journeymap.common.errors import ModelError
from journeymap.journeys.build import JourneyOptions, Journeys, build_journeys, materialize
from journeymap.sources.paths import import_paths
from journeymap.store.store import Store


def path_journeys(store: Store, tmp_path: Path, text: str) -> Journeys:
    path = tmp_path / "paths.csv"
    path.write_text(text, encoding="utf-8")
    import_paths(store, path)
    return materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions()))


def fit(
    journeys: Journeys, **parameters: object
) -> tuple[MarkovResult, dict[str, tuple[float, float]]]:
    model = create_model("markov", dict(parameters))
    assert isinstance(model, Markov)
    frame = credit_by(model.credits(journeys)).to_pandas()
    credit = {row.channel: (row.conversions, row.value) for row in frame.itertuples()}
    return model.results["conversion"], credit


def effects(result: MarkovResult) -> dict[str, float]:
    return dict(
        zip(result.removal_effects.channel, result.removal_effects.removal_effect, strict=True)
    )


def test_markov_vignette_toy_is_exact(store: Store, tmp_path: Path, shared_data: Path) -> None:
    toy = shared_data / "channelattribution-paths" / "published_results" / "vignette_toy_paths.csv"
    journeys = path_journeys(store, tmp_path, toy.read_text(encoding="utf-8"))
    result, credit = fit(journeys)
    expected = pd.read_csv(toy.parent / "vignette_toy_expected.csv").set_index("channel_name")
    assert effects(result) == {
        "A": pytest.approx(1.0, abs=1e-12),
        "B": pytest.approx(0.5, abs=1e-12),
    }
    assert credit["A"][0] == pytest.approx(expected.loc["A", "total_conversions"], abs=1e-12)
    assert credit["B"][0] == pytest.approx(expected.loc["B", "total_conversions"], abs=1e-12)


def test_markov_counts_non_converting_journeys(store: Store, tmp_path: Path) -> None:
    text = (
        "path,total_conversions,total_conversion_value,total_null\n"
        "A > B,1,10,0\nA,0,0,1\nB,1,30,0\n"
    )
    result, credit = fit(path_journeys(store, tmp_path, text))
    assert result.conversion_probability == pytest.approx(2 / 3, abs=1e-12)
    assert effects(result) == {
        "A": pytest.approx(0.5, abs=1e-12),
        "B": pytest.approx(1.0, abs=1e-12),
    }
    # A chain that forgets the move from A into (null) would give A 0.8 and B 1.2.
    assert credit["A"][0] == pytest.approx(2 / 3, abs=1e-12)
    assert credit["B"][0] == pytest.approx(4 / 3, abs=1e-12)
    assert sum(conversions for conversions, _ in credit.values()) == pytest.approx(2.0, abs=1e-12)
    assert sum(value for _, value in credit.values()) == pytest.approx(40.0, abs=1e-9)


def test_markov_self_loops_change_only_matrix(store: Store, tmp_path: Path) -> None:
    text = "path,total_conversions,total_null\nA > A > B,2,1\nB > B,0,2\nA,1,1\n"
    journeys = path_journeys(store, tmp_path, text)
    dropped, _ = fit(journeys, self_loops="drop")
    kept, _ = fit(journeys, self_loops="keep")
    assert effects(dropped) == pytest.approx(effects(kept), abs=1e-12)
    assert ("A", "A") not in set(
        zip(dropped.transition_matrix.source, dropped.transition_matrix.target, strict=True)
    )
    assert ("A", "A") in set(
        zip(kept.transition_matrix.source, kept.transition_matrix.target, strict=True)
    )


def test_markov_order_two_states_are_pairs(store: Store, tmp_path: Path) -> None:
    text = "path,total_conversions,total_null\nA > B > C,1,0\nC,0,1\n"
    result, credit = fit(path_journeys(store, tmp_path, text), order=2)
    states = set(result.transition_matrix.source) | set(result.transition_matrix.target)
    assert {"A > B", "B > C", "C"} <= states
    assert sum(conversions for conversions, _ in credit.values()) == pytest.approx(1.0, abs=1e-12)


def test_markov_sequence_removal_effect(store: Store, tmp_path: Path) -> None:
    text = "path,total_conversions,total_null\nA > B,1,0\nB > A,1,0\n"
    result, _ = fit(path_journeys(store, tmp_path, text), sequences=("A > B",))
    row = result.sequence_effects.iloc[0]
    assert row.sequence == "A > B"
    # Without the move A -> B, P(conversion) is 0.5 * 0.5 from A and 0.5 * 0.5 + 0.5 from B,
    # so 0.625 instead of 1: the removal effect is 0.375.
    assert row.removal_effect == pytest.approx(0.375, abs=1e-12)


def test_markov_rejects_long_sequence(store: Store, tmp_path: Path) -> None:
    journeys = path_journeys(store, tmp_path, "path,total_conversions\nA > B > C,1\n")
    with pytest.raises(ModelError, match="at most 2"):
        fit(journeys, sequences=("A > B > C",))


@pytest.mark.parametrize("order", [0, 5], ids=["zero", "five"])
def test_markov_order_out_of_range(order: int) -> None:
    with pytest.raises(ModelError, match="order"):
        create_model("markov", {"order": order})


def test_markov_deterministic_on_real_paths(store: Store, shared_data: Path) -> None:
    import_paths(store, shared_data / "channelattribution-paths" / "Data.csv")
    journeys = materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions()))
    first, credit_one = fit(journeys, order=2)
    _, credit_two = fit(journeys, order=2)
    assert credit_one == credit_two
    assert (first.removal_effects.removal_effect > 0).all()
    assert sum(c for c, _ in credit_one.values()) == pytest.approx(19_785, abs=1e-6)
    assert sum(v for _, v in credit_one.values()) == pytest.approx(74_802.97, abs=0.005)


def analytics_vidhya_markov(
    store: Store, folder: Path, tmp_path: Path
) -> tuple[dict[str, tuple[float, float]], pd.DataFrame]:
    from tests.attribution.test_published import analytics_vidhya_paths

    import_paths(
        store, analytics_vidhya_paths(folder / "Channel_attribution.csv", tmp_path / "paths.csv")
    )
    journeys = materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions()))
    _, credit = fit(journeys)
    published = pd.read_csv(
        folder / "published_results" / "markov_model_order1_mikenguyen13.csv",
        dtype={"channel_name": str},
    )
    return credit, published


def test_markov_near_published_analytics_vidhya(
    store: Store, shared_data: Path, tmp_path: Path
) -> None:
    credit, published = analytics_vidhya_markov(
        store, shared_data / "analyticsvidhya-channel-paths", tmp_path
    )
    total = published.total_conversion.sum()
    for row in published.itertuples():
        gap = abs(credit[row.channel_name][0] - row.total_conversion)
        assert gap <= 0.02 * total, row.channel_name


@pytest.mark.xfail(
    strict=True,
    reason=(
        "The published values come from R ChannelAttribution 2.0.7 with 100,000 simulated "
        "paths (2.05% fold spread) and a step cap. The exact chain differs from them by up to "
        "10% on the smallest channels, while ChannelAttribution 2.2.5 with 1,000,000 paths "
        "and no step cap agrees with the exact chain to within 0.1% of all conversions."
    ),
)
def test_markov_within_2pct_each_channel(store: Store, shared_data: Path, tmp_path: Path) -> None:
    credit, published = analytics_vidhya_markov(
        store, shared_data / "analyticsvidhya-channel-paths", tmp_path
    )
    for row in published.itertuples():
        assert credit[row.channel_name][0] == pytest.approx(row.total_conversion, rel=0.02), (
            row.channel_name
        )
