"""Drop-off per segment ranked by revenue impact: hand-made stays, Olist leads and Spark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from journeymap.analyses.dropoff import dropoff, dropoff_counts
from journeymap.analyses.funnel import stage_funnel
from journeymap.sources.leads import import_leads, stays_with_first_channel
from journeymap.store.store import Store

AS_OF = datetime(2024, 6, 15, tzinfo=UTC)
STAGES = ["MQL", "Won"]

Stay = tuple[str, str, str, str | None, str | None]


def stays_frame(rows: list[Stay]) -> pd.DataFrame:
    columns = ["deal_id", "stage", "entered_at", "exited_at", "channel"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["entered_at"] = pd.to_datetime(frame["entered_at"], utc=True)
    frame["exited_at"] = pd.to_datetime(frame["exited_at"], utc=True)
    return frame


def channel_stays(channel: str, prefix: str, converted: int, lost: int, open_: int) -> list[Stay]:
    """Return MQL stays (and Won stays for converters) of entities in one channel."""
    rows: list[Stay] = []
    for i in range(converted):
        rows.append((f"{prefix}c{i}", "MQL", "2024-03-01", "2024-04-01", channel))
        rows.append((f"{prefix}c{i}", "Won", "2024-04-01", None, channel))
    for i in range(lost):
        rows.append((f"{prefix}l{i}", "MQL", "2024-03-01", "2024-04-01", channel))
        rows.append((f"{prefix}l{i}", "Lost", "2024-04-01", None, channel))
    for i in range(open_):
        rows.append((f"{prefix}o{i}", "MQL", "2024-03-01", None, channel))
    return rows


# Email: 4 entrants, 1 converted, 2 lost, 1 open. The second lost one won before it entered
# MQL, so it is not a conversion, and its MQL stay has exited. The open one's stay exits only
# after AS_OF. Social: 16 entrants, 9 converted, 3 lost, 4 open. An entrant after AS_OF and
# a stay without a deal_id do not count.
STAYS = stays_frame(
    [
        *channel_stays("Email", "e", converted=1, lost=1, open_=0),
        ("e_early", "Won", "2024-02-01", None, "Email"),
        ("e_early", "MQL", "2024-03-01", "2024-02-01", "Email"),
        ("e_late", "MQL", "2024-03-01", "2024-07-01", "Email"),
        ("e_late", "Won", "2024-07-01", None, "Email"),
        *channel_stays("Social", "s", converted=9, lost=3, open_=4),
        ("s_future", "MQL", "2024-07-01", None, "Social"),
        (None, "MQL", "2024-03-01", None, "Social"),  # type: ignore[list-item]
    ]
)

# Won amounts 100 and 300 average 200. A won deal without an amount and a lost deal are left
# out of the average.
DEALS = pd.DataFrame(
    {
        "deal_id": ["w1", "w2", "w3", "x1"],
        "amount": [100.0, 300.0, None, 1_000.0],
        "currency": ["EUR", "EUR", "EUR", "EUR"],
        "is_won": [True, True, True, False],
    }
)


def test_dropoff_hand_made_counts() -> None:
    result = dropoff(ibis.memtable(STAYS), STAGES, by="channel", as_of=AS_OF).set_index("channel")

    assert list(result.loc["Email", ["entered", "converted", "lost", "open"]]) == [4, 1, 2, 1]
    assert list(result.loc["Social", ["entered", "converted", "lost", "open"]]) == [16, 9, 3, 4]
    assert result.loc["Email", "rate"] == 0.25
    assert result.loc["Email", "loss_rate"] == 0.5


def test_dropoff_hand_made_money() -> None:
    stays = ibis.memtable(STAYS)

    result = dropoff(stays, STAGES, by="channel", deals=ibis.memtable(DEALS), as_of=AS_OF)

    # Overall loss rate 5 / 20 = 0.25: Email is expected to lose 1 and loses 2, Social is
    # expected to lose 4 and loses 3. Each lost entity is worth the average won deal, 200.
    assert result["channel"].tolist() == ["Email", "Social"]
    assert result["overall_loss_rate"].tolist() == [0.25, 0.25]
    assert result["expected_lost"].tolist() == [1.0, 4.0]
    assert result["excess_lost"].tolist() == [1.0, -1.0]
    assert result["deal_value"].tolist() == [200.0, 200.0]
    assert result["revenue_impact"].tolist() == [400.0, 600.0]
    assert result["excess_impact"].tolist() == [200.0, -200.0]
    assert result["rank"].tolist() == [1, 2]


def test_dropoff_top_flag() -> None:
    stays = ibis.memtable(STAYS)

    result = dropoff(stays, STAGES, by="channel", as_of=AS_OF, top=1)

    assert result["top"].tolist() == [True, False]
    assert result["deal_value"].tolist() == [1.0, 1.0]
    assert result["excess_impact"].tolist() == [1.0, -1.0]


def test_dropoff_three_stages_per_pair() -> None:
    stays = stays_frame(
        [
            ("a", "MQL", "2024-03-01", "2024-03-05", "Email"),
            ("a", "SQL", "2024-03-05", "2024-03-09", "Email"),
            ("b", "MQL", "2024-03-01", "2024-03-05", "Email"),
            ("b", "SQL", "2024-03-05", None, "Email"),
        ]
    )

    result = dropoff(ibis.memtable(stays), ["MQL", "SQL", "Won"], by="channel", as_of=AS_OF)

    rows = result.set_index("from_stage")[["entered", "converted", "lost", "open"]]
    assert list(rows.loc["MQL"]) == [2, 2, 0, 0]
    assert list(rows.loc["SQL"]) == [2, 0, 1, 1]


def test_dropoff_rejects_bad_input() -> None:
    stays = ibis.memtable(STAYS)

    with pytest.raises(ValueError, match="at least two stages"):
        dropoff(stays, ["MQL"], by="channel")
    with pytest.raises(ValueError, match="no column 'segment'"):
        dropoff(stays, STAGES, by="segment")
    with pytest.raises(ValueError, match="top must be 0 or more"):
        dropoff(stays, STAGES, by="channel", top=-1)
    with pytest.raises(ValueError, match="name of an output column"):
        dropoff(ibis.memtable(STAYS.rename(columns={"channel": "lost"})), STAGES, by="lost")


def test_dropoff_rejects_mixed_currencies() -> None:
    deals = DEALS.assign(currency=["EUR", "USD", "EUR", "EUR"])

    with pytest.raises(ValueError, match="more than one currency"):
        dropoff(ibis.memtable(STAYS), STAGES, by="channel", deals=ibis.memtable(deals))


@pytest.fixture
def olist_store(store: Store, shared_data: Path) -> Store:
    folder = shared_data / "olist-marketing-funnel"
    import_leads(
        store,
        folder / "olist_marketing_qualified_leads_dataset.csv",
        deals_file=folder / "olist_closed_deals_dataset.csv",
    )
    return store


def olist_dropoff(store: Store) -> pd.DataFrame:
    return dropoff(
        stays_with_first_channel(store),
        STAGES,
        by="channel",
        deals=store.table("deals"),
        as_of=datetime(2019, 1, 1, tzinfo=UTC),
    )


def test_dropoff_olist_matches_funnel(olist_store: Store) -> None:
    stays = stays_with_first_channel(olist_store)

    result = olist_dropoff(olist_store).set_index("channel")
    cohorts = stage_funnel(stays, STAGES, as_of=datetime(2019, 1, 1, tzinfo=UTC), by="channel")
    funnel = cohorts.to_pandas().groupby("channel")[["entered", "converted"]].sum()

    assert list(result.loc["Organic Search", ["entered", "converted"]]) == [2_296, 270]
    pd.testing.assert_frame_equal(
        result[["entered", "converted"]].sort_index(),
        funnel.sort_index(),
        check_dtype=False,
        check_names=False,
    )
    assert result["entered"].sum() == 8_000


def test_dropoff_olist_states_add_up(olist_store: Store) -> None:
    result = olist_dropoff(olist_store)

    states = result["lost"] + result["open"] + result["converted"]
    assert (states == result["entered"]).all()
    # The export records no exit for a lead that was not won, so almost every unconverted
    # lead is open. The only lost lead is the one won before its first contact.
    assert result["lost"].sum() == 1


def test_dropoff_olist_top_three(olist_store: Store) -> None:
    result = olist_dropoff(olist_store)

    top = result.loc[result["top"], "channel"].tolist()
    # Only Organic Search loses more than expected (its one win before first contact); the
    # next ranks have a negative excess and are not flagged.
    assert top == ["Organic Search"]
    assert result["channel"].tolist()[:3] == ["Organic Search", "Display", "Other"]
    assert result["rank"].tolist() == list(range(1, 10))


def test_dropoff_deterministic(olist_store: Store) -> None:
    first = olist_dropoff(olist_store)
    second = olist_dropoff(olist_store)

    pd.testing.assert_frame_equal(first, second)


@pytest.mark.spark
def test_dropoff_counts_same_on_spark(spark: Any) -> None:
    results = []
    for con in (ibis.duckdb.connect(), ibis.pyspark.connect(spark)):
        stays = con.create_table("dropoff_stays", STAYS, overwrite=True)
        counts = dropoff_counts(stays, ["MQL", "Won", "Paid"], by="channel", as_of=AS_OF)
        results.append(counts.to_pandas())

    duck, sparked = results
    assert duck["entered"].tolist() == [4, 16, 2, 9]
    pd.testing.assert_frame_equal(duck, sparked, check_dtype=False)


def test_dropoff_null_segment_ties_first() -> None:
    stays = stays_frame(
        [
            ("a", "MQL", "2024-03-01", "2024-03-05", "Email"),
            ("b", "MQL", "2024-03-01", "2024-03-05", None),
        ]
    )

    result = dropoff(ibis.memtable(stays), STAGES, by="channel", as_of=AS_OF)

    assert result["channel"].isna().tolist() == [True, False]
    assert result["rank"].tolist() == [1, 2]


def test_dropoff_by_account_first_touch_channel(tmp_path: Path) -> None:
    from journeymap import api

    deals = tmp_path / "deals.csv"
    pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3"],
            "account": ["a1", "a2", "a3"],
            "stage": ["Won", "Lost", "Won"],
            "engage_date": ["2024-03-01"] * 3,
            "close_date": ["2024-04-01"] * 3,
            "amount": [100.0, 200.0, 300.0],
        }
    ).to_csv(deals, index=False)
    touches = tmp_path / "touches.csv"
    pd.DataFrame(
        {
            "user_id": ["p1", "p1", "p2", "p3"],
            "account_id": ["a1", "a1", "a2", "a3"],
            "timestamp": [
                "2024-02-01T10:00:00Z",
                "2024-02-02T10:00:00Z",
                "2024-02-01T10:00:00Z",
                "2024-02-01T10:00:00Z",
            ],
            "channel": ["Webinars", "Email", "Email", "Webinars"],
        }
    ).to_csv(touches, index=False)
    store = Store.open()
    api.import_file(store, deals, input_format="deals")
    api.import_file(store, touches, input_format="touchpoints")

    table = api.dropoff(store, ["Engaging", "Won"], by="channel", as_of=AS_OF)
    funnel = api.funnel(store, ["Engaging", "Won"], by="channel", as_of=AS_OF)

    rows = table.set_index("channel")
    assert rows.loc["Webinars", "entered"] == 2
    assert rows.loc["Webinars", "converted"] == 2
    assert rows.loc["Email", "entered"] == 1
    assert rows.loc["Email", "lost"] == 1
    assert set(funnel.channel) == {"Webinars", "Email"}
