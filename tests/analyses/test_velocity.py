"""Deal velocity: time in stage, time between stages, stalled deals, and Spark parity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from journeymap.analyses.velocity import QUANTILES, stalled, time_between, time_in_stage
from journeymap.sources.deals import import_deals
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store, conform

PIPELINE = Path("crm-sales-opportunities/sales_pipeline.csv")
ACCOUNTS = Path("crm-sales-opportunities/accounts.csv")
START = datetime(2024, 1, 1, tzinfo=UTC)


def stay(
    deal: str, stage: str, entered: float, exited: float | None = None, **extra: Any
) -> dict[str, Any]:
    """Return a stay that entered and exited the given number of days after START."""
    return {
        "deal_id": deal,
        "stage": stage,
        "entered_at": START + timedelta(days=entered),
        "exited_at": None if exited is None else START + timedelta(days=exited),
        **extra,
    }


def stays_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("entered_at", "exited_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def write_stays(store: Store, rows: list[dict[str, Any]]) -> ibis.Table:
    store.append("deal_stages", stays_frame(rows))
    return store.table("deal_stages")


def write_deals(store: Store, rows: list[dict[str, Any]]) -> ibis.Table:
    store.append("deals", pd.DataFrame(rows))
    return store.table("deals")


def numpy_summary(days: list[float]) -> dict[str, float]:
    """Return the quantiles of ``days`` by numpy's linear interpolation."""
    return {name: float(np.quantile(days, fraction)) for name, fraction in QUANTILES.items()}


# time_in_stage -------------------------------------------------------------------------------


def test_time_in_stage_counts_and_quantiles(store: Store) -> None:
    rows = [
        stay("a1", "Discovery", 0, 1),
        stay("a2", "Discovery", 0, 2),
        stay("a3", "Discovery", 0, 3),
        stay("a4", "Discovery", 0, 10),
        stay("a5", "Discovery", 4),
        stay("a1", "Proposal", 1, 6),
        stay("a2", "Proposal", 2),
        stay("a3", "Proposal", 3),
    ]

    result = time_in_stage(write_stays(store, rows)).to_pandas().set_index("stage")

    assert list(result.index) == ["Discovery", "Proposal"]
    assert result.loc["Discovery", "completed_stays"] == 4
    assert result.loc["Discovery", "open_stays"] == 1
    assert result.loc["Discovery", "median_days"] == 2.5
    assert result.loc["Discovery", "p75_days"] == 4.75
    assert result.loc["Discovery", "p90_days"] == pytest.approx(7.9)
    assert result.loc["Proposal", "completed_stays"] == 1
    assert result.loc["Proposal", "open_stays"] == 2
    assert result.loc["Proposal", ["median_days", "p75_days", "p90_days"]].tolist() == [5.0] * 3


def test_time_in_stage_matches_numpy(store: Store) -> None:
    rng = np.random.default_rng(7)
    rows = []
    expected = {}
    for size in range(1, 14):
        stage = f"stage{size:02d}"
        seconds = rng.integers(0, 200 * 86_400, size=size)
        for number, length in enumerate(seconds):
            rows.append(stay(f"{stage}-{number}", stage, 0, float(length) / 86_400))
        expected[stage] = numpy_summary(list(seconds / 86_400))

    result = time_in_stage(write_stays(store, rows)).to_pandas().set_index("stage")

    for stage, quantiles in expected.items():
        for name, value in quantiles.items():
            assert result.loc[stage, name] == value, (stage, name)


def test_time_in_stage_without_completed_stays(store: Store) -> None:
    rows = [stay("a1", "Negotiation", 0), stay("a2", "Negotiation", 1)]

    result = time_in_stage(write_stays(store, rows)).to_pandas()

    assert result["completed_stays"].tolist() == [0]
    assert result["open_stays"].tolist() == [2]
    assert result[list(QUANTILES)].isna().all(axis=None)


def test_time_in_stage_as_of(store: Store) -> None:
    rows = [
        stay("a1", "Discovery", 0, 2),
        stay("a2", "Discovery", 0, 8),
        stay("a3", "Discovery", 3),
        stay("a4", "Discovery", 9),
    ]

    result = time_in_stage(write_stays(store, rows), as_of=datetime(2024, 1, 6)).to_pandas()

    assert result["completed_stays"].tolist() == [1]
    assert result["median_days"].tolist() == [2.0]
    assert result["open_stays"].tolist() == [2]


def test_time_in_stage_by_column() -> None:
    rows = [
        stay("a1", "Discovery", 0, 2),
        stay("a2", "Discovery", 0, 4),
        stay("a3", "Discovery", 0, 30),
    ]
    frame = stays_frame(rows).assign(owner=["Ann", "Ann", "Bo"])
    stays = ibis.memtable(frame)

    result = time_in_stage(stays, by="owner").to_pandas()

    assert result[["stage", "owner"]].values.tolist() == [["Discovery", "Ann"], ["Discovery", "Bo"]]
    assert result["completed_stays"].tolist() == [2, 1]
    assert result["median_days"].tolist() == [3.0, 30.0]


def test_time_in_stage_whole_seconds(store: Store) -> None:
    entered = START + timedelta(milliseconds=900)
    exited = START + timedelta(days=1, milliseconds=100)
    rows = [{"deal_id": "a1", "stage": "Discovery", "entered_at": entered, "exited_at": exited}]

    result = time_in_stage(write_stays(store, rows)).to_pandas()

    assert result["median_days"].tolist() == [1.0]


# time_between --------------------------------------------------------------------------------


@pytest.fixture
def pipeline_store(store: Store, shared_data: Path) -> Store:
    import_deals(store, shared_data / PIPELINE, accounts_file=shared_data / ACCOUNTS)
    return store


@pytest.fixture
def won_days(shared_data: Path) -> pd.DataFrame:
    """Engage-to-close days of the won deals, with their sector, computed by plain pandas."""
    pipeline = pd.read_csv(shared_data / PIPELINE)
    accounts = pd.read_csv(shared_data / ACCOUNTS)
    won = pipeline[pipeline["deal_stage"] == "Won"].merge(
        accounts[["account", "sector"]], on="account", how="left"
    )
    days = (pd.to_datetime(won["close_date"]) - pd.to_datetime(won["engage_date"])).dt.days
    return pd.DataFrame({"sector": won["sector"], "days": days.astype("float64")})


def pandas_summary(days: pd.Series) -> dict[str, float]:
    return {
        "deals": len(days),
        "median_days": float(days.median()),
        "p75_days": float(days.quantile(0.75)),
        "p90_days": float(days.quantile(0.9)),
        "mean_days": float(days.mean()),
    }


def test_time_between_pipeline_engage_to_won(pipeline_store: Store, won_days: pd.DataFrame) -> None:
    stays = pipeline_store.table("deal_stages")

    result = time_between(stays, "Engaging", "Won").to_pandas()

    assert result.to_dict("records") == [pandas_summary(won_days["days"])]
    assert result.to_dict("records") == [
        {
            "deals": 4_238,
            "median_days": 57.0,
            "p75_days": 88.0,
            "p90_days": 106.0,
            "mean_days": pytest.approx(51.781972628598396, abs=0),
        }
    ]


def test_time_between_pipeline_by_sector(pipeline_store: Store, won_days: pd.DataFrame) -> None:
    stays = pipeline_store.table("deal_stages")
    deals = pipeline_store.table("deals").select("deal_id", "account_id")
    sectors = pipeline_store.table("accounts").select("account_id", sector="industry")
    with_sector = stays.inner_join(deals, "deal_id").left_join(sectors, "account_id")

    result = time_between(with_sector, "Engaging", "Won", by="sector").to_pandas()

    expected = {
        sector: pandas_summary(group["days"]) for sector, group in won_days.groupby("sector")
    }
    assert won_days["sector"].notna().all()
    assert len(result) == len(expected) == 10
    for row in result.to_dict("records"):
        sector = row.pop("sector")
        assert row == expected[sector], sector


def test_time_between_first_entries(store: Store) -> None:
    rows = [
        # Re-enters both stages: the first entries count, from day 2 to day 7.
        stay("a1", "Discovery", 2, 4),
        stay("a1", "Proposal", 7, 8),
        stay("a1", "Discovery", 8, 9),
        stay("a1", "Proposal", 9),
        # Never reaches Proposal.
        stay("a2", "Discovery", 0),
        # Reaches Proposal before Discovery.
        stay("a3", "Proposal", 0, 1),
        stay("a3", "Discovery", 1),
        stay("a4", "Discovery", 0, 1),
        stay("a4", "Proposal", 1),
    ]

    result = time_between(write_stays(store, rows), "Discovery", "Proposal").to_pandas()

    assert result.to_dict("records") == [
        {"deals": 2, **numpy_summary([5.0, 1.0]), "mean_days": 3.0}
    ]
    assert result["p90_days"].tolist() == [pytest.approx(4.6)]


def test_time_between_no_deals(store: Store) -> None:
    stays = write_stays(store, [stay("a1", "Discovery", 0)])

    result = time_between(stays, "Discovery", "Proposal").to_pandas()

    assert result["deals"].tolist() == [0]
    assert result[[*QUANTILES, "mean_days"]].isna().all(axis=None)


def test_time_between_same_stage_rejected(store: Store) -> None:
    stays = write_stays(store, [stay("a1", "Discovery", 0)])

    with pytest.raises(ValueError, match="both 'Discovery'"):
        time_between(stays, "Discovery", "Discovery")


# stalled -------------------------------------------------------------------------------------

AS_OF = datetime(2024, 4, 1, tzinfo=UTC)


def deal(deal_id: str, *, closed: bool = False, amount: float = 1_000.0) -> dict[str, Any]:
    return {
        "deal_id": deal_id,
        "stage": "Lost" if closed else "Open",
        "owner": f"owner-{deal_id}",
        "amount": amount,
        "currency": "USD",
        "is_won": False,
        "is_closed": closed,
    }


def stalled_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Completed Discovery stays of 10, 20, 30 and 40 days (p75 32.5), and open stays."""
    completed = [stay(f"c{days}", "Discovery", 0, days) for days in (10, 20, 30, 40)]
    # Days in stage at AS_OF (91 days after START): 81, 51, 31 and 71.
    open_stays = [
        stay("o81", "Discovery", 10),
        stay("o51", "Discovery", 40),
        stay("o31", "Discovery", 60),
        stay("closed71", "Discovery", 20),
        # Proposal has no completed stays, so it has no default threshold.
        stay("p91", "Proposal", 0),
    ]
    deals = [deal(row["deal_id"]) for row in completed + open_stays]
    deals = [deal("closed71", closed=True) if d["deal_id"] == "closed71" else d for d in deals]
    return completed + open_stays, deals


def test_stalled_default_threshold(store: Store) -> None:
    rows, deal_rows = stalled_rows()

    result = stalled(
        write_stays(store, rows), write_deals(store, deal_rows), as_of=AS_OF
    ).to_pandas()

    assert result["deal_id"].tolist() == ["o81", "o51"]
    assert result["days_in_stage"].tolist() == [81.0, 51.0]
    assert result["threshold_days"].tolist() == [32.5, 32.5]
    assert result["stage"].tolist() == ["Discovery", "Discovery"]
    assert result["owner"].tolist() == ["owner-o81", "owner-o51"]
    assert result["amount"].tolist() == [1_000.0, 1_000.0]


def test_stalled_fixed_threshold(store: Store) -> None:
    rows, deal_rows = stalled_rows()

    result = stalled(
        write_stays(store, rows), write_deals(store, deal_rows), as_of=AS_OF, threshold_days=60
    ).to_pandas()

    assert result["deal_id"].tolist() == ["p91", "o81"]
    assert result["days_in_stage"].tolist() == [91.0, 81.0]
    assert result["threshold_days"].tolist() == [60.0, 60.0]


def test_stalled_never_lists_closed_deals(store: Store) -> None:
    rows, deal_rows = stalled_rows()
    stays = write_stays(store, rows)
    deals = write_deals(store, deal_rows)

    for threshold in (None, 0.0, 60.0):
        result = stalled(stays, deals, as_of=AS_OF, threshold_days=threshold).to_pandas()
        assert "closed71" not in set(result["deal_id"]), threshold

    everything = stalled(stays, deals, as_of=AS_OF, threshold_days=0).to_pandas()
    assert set(everything["deal_id"]) == {"o81", "o51", "o31", "p91"}


def test_stalled_deterministic_order(store: Store) -> None:
    rows, deal_rows = stalled_rows()
    # Two deals with equal days in stage sort by deal_id.
    rows = [*rows, stay("o81b", "Discovery", 10), stay("o81a", "Discovery", 10)]
    deal_rows = [*deal_rows, deal("o81b"), deal("o81a")]
    forward = stalled(write_stays(store, rows), write_deals(store, deal_rows), as_of=AS_OF)

    other = Store.open()
    try:
        backward = stalled(
            write_stays(other, rows[::-1]), write_deals(other, deal_rows[::-1]), as_of=AS_OF
        )
        first = forward.to_pandas()
        assert first["deal_id"].tolist() == ["o81", "o81a", "o81b", "o51"]
        pd.testing.assert_frame_equal(first, forward.to_pandas())
        pd.testing.assert_frame_equal(first, backward.to_pandas())
    finally:
        other.close()


def test_stalled_negative_threshold_rejected(store: Store) -> None:
    rows, deal_rows = stalled_rows()

    with pytest.raises(ValueError, match="must be 0 or more, not -1"):
        stalled(
            write_stays(store, rows), write_deals(store, deal_rows), as_of=AS_OF, threshold_days=-1
        )


# Spark ---------------------------------------------------------------------------------------


def parity_stays() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for number in range(40):
        stage = ["Discovery", "Proposal", "Negotiation"][number % 3]
        entered = float(rng.integers(0, 90 * 86_400)) / 86_400
        length = float(rng.integers(0, 60 * 86_400)) / 86_400
        exited = None if number % 5 == 0 else entered + length
        rows.append(stay(f"d{number}", stage, entered, exited, pipeline=f"p{number % 2}"))
    return stays_frame(rows)


@pytest.mark.spark
@pytest.mark.parametrize(
    ("as_of", "by"),
    [(None, None), (datetime(2024, 2, 15), "pipeline")],
    ids=["open-now", "as-of-by-pipeline"],
)
def test_time_in_stage_spark_equals_duckdb(
    spark: Any, as_of: datetime | None, by: str | None
) -> None:
    data = conform(parity_stays(), RAW_TABLES["deal_stages"], table_name="deal_stages")
    frames = []
    for con in (ibis.duckdb.connect(), ibis.pyspark.connect(spark)):
        stays = con.create_table("velocity_stays", data, overwrite=True)
        frames.append(time_in_stage(stays, as_of=as_of, by=by).to_pandas())
    duck, sparked = frames

    assert len(duck) == (3 if by is None else 6)
    assert duck["completed_stays"].sum() > 0
    pd.testing.assert_frame_equal(duck, sparked, check_dtype=False, check_exact=True)


def test_velocity_by_cohort_matches_pandas_per_engage_quarter(
    pipeline_store: Store, shared_data: Path
) -> None:
    from journeymap import api

    pipeline = pd.read_csv(shared_data / PIPELINE)
    won = pipeline[pipeline["deal_stage"] == "Won"].copy()
    engaged = pd.to_datetime(won["engage_date"])
    won["cohort"] = engaged.dt.to_period("Q").dt.start_time.dt.date
    won["days"] = (pd.to_datetime(won["close_date"]) - engaged).dt.days.astype("float64")

    result = api.velocity(pipeline_store, between=("Engaging", "Won"), by="cohort")

    expected = {cohort: pandas_summary(group["days"]) for cohort, group in won.groupby("cohort")}
    assert len(result) == len(expected) >= 4
    for row in result.to_dict("records"):
        cohort = pd.Timestamp(row.pop("cohort")).date()
        assert row == pytest.approx(expected[cohort]), cohort


def test_velocity_by_cohort_rejects_an_unknown_period(pipeline_store: Store) -> None:
    from journeymap import api
    from journeymap.common.errors import ConfigError

    with pytest.raises(ConfigError, match="period"):
        api.velocity(pipeline_store, by="cohort", period="decade")
