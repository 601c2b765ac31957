"""Markov chains agree with the ChannelAttribution package on its own example data."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.journeys.build import JourneyOptions, build_journeys, materialize
from journeymap.sources.paths import import_paths
from journeymap.store.store import Store
from tests.attribution.test_markov import fit


def peer_markov(data: Path, order: int) -> pd.DataFrame:
    """Run ChannelAttribution's simulated Markov model, silencing its banner."""
    with contextlib.redirect_stdout(io.StringIO()):
        from ChannelAttribution import markov_model

        paths = pd.read_csv(data, sep=";")
        return markov_model(
            paths,
            "path",
            "total_conversions",
            var_value="total_conversion_value",
            var_null="total_null",
            order=order,
            nsim_start=int(1e6),
            conv_par=0.01,
            seed=1,
            verbose=False,
            flg_pro=False,
        )


@pytest.mark.parametrize("order", [1, 2], ids=["order-1", "order-2"])
def test_markov_agrees_with_channelattribution(store: Store, shared_data: Path, order: int) -> None:
    data = shared_data / "channelattribution-paths" / "Data.csv"
    import_paths(store, data)
    journeys = materialize(store, build_journeys(store, ChannelClassifier(), JourneyOptions()))
    _, ours = fit(journeys, order=order)
    theirs = peer_markov(data, order).set_index("channel_name")
    total = theirs.total_conversions.sum()
    assert set(theirs.index) == set(ours)
    for channel, row in theirs.iterrows():
        # The simulation errs by about 0.5% of conversions per channel; allow 1%.
        assert abs(ours[channel][0] - row.total_conversions) <= 0.01 * total, channel
        assert ours[channel][0] > 0, channel
