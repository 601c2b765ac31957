"""Ad spend import: real platform exports, column recognition, dates, currency and bad input."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeymap.common.errors import InputError
from journeymap.sources.spend import import_spend, read_spend_frame
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

KAGGLE_FACEBOOK = Path("facebook-ads-kag-conversion/KAG_conversion_data.csv")
AD_REPORTING = Path("fivetran-connector-fixtures/ad_reporting")
FILE = "spend.csv"


def write_csv(folder: Path, rows: list[dict[str, Any]], name: str = FILE) -> Path:
    path = folder / name
    pd.DataFrame(rows, dtype="object").to_csv(path, index=False)
    return path


def spend_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype="object").astype("string")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def column_total(rows: list[dict[str, str]], column: str) -> Decimal:
    """Return the exact sum of a column of decimal text; empty cells count as 0."""
    return sum((Decimal(row[column] or "0") for row in rows), Decimal(0))


def row_counts(store: Store) -> dict[str, int]:
    return {name: int(store.table(name).count().execute()) for name in RAW_TABLES}


# Real exports --------------------------------------------------------------------------------


def test_spend_kaggle_facebook_totals(store: Store, shared_data: Path) -> None:
    import_spend(store, shared_data / KAGGLE_FACEBOOK, platform="facebook")

    spend = store.table("ad_spend").to_pandas()
    assert len(spend) == 1143
    assert spend["impressions"].sum() == 213_434_828
    assert spend["clicks"].sum() == 38_165
    assert round(spend["cost"].sum(), 2) == 58_705.23
    assert spend["platform_conversions"].sum() == 3_264
    assert set(spend["platform"]) == {"facebook"}
    assert set(spend["currency"]) == {"USD"}
    assert spend["date"].isna().all()
    assert spend["campaign_id"].value_counts().to_dict() == {"1178": 625, "936": 464, "916": 54}
    assert spend["ad_group"].notna().all()
    assert spend["ad_id"].nunique() == 1143


def test_spend_kaggle_without_platform(store: Store, shared_data: Path) -> None:
    before = row_counts(store)

    with pytest.raises(InputError, match="--platform") as caught:
        import_spend(store, shared_data / KAGGLE_FACEBOOK)

    assert str(shared_data / KAGGLE_FACEBOOK) in str(caught.value)
    assert caught.value.column == "platform"
    assert row_counts(store) == before


FIVETRAN_EXPORTS = [
    pytest.param(
        "google_ads_campaign_stats_data.csv", "google_ads", "cost_micros", "date", id="google"
    ),
    pytest.param(
        "microsoft_ads_campaign_performance_daily_report_data.csv",
        "microsoft_ads",
        "spend",
        "date",
        id="microsoft",
    ),
    pytest.param(
        "linkedin_ad_analytics_by_campaign_data.csv",
        "linkedin_ads",
        "cost_in_usd",
        "day",
        id="linkedin",
    ),
    pytest.param("facebook_ads_basic_ad_data.csv", "Meta ", "spend", "date", id="facebook"),
]


@pytest.mark.parametrize(("name", "platform", "cost_column", "date_column"), FIVETRAN_EXPORTS)
def test_spend_fivetran_exports(
    store: Store,
    shared_data: Path,
    name: str,
    platform: str,
    cost_column: str,
    date_column: str,
) -> None:
    path = shared_data / AD_REPORTING / name
    rows = read_rows(path)

    import_spend(store, path, platform=platform)

    spend = store.table("ad_spend").to_pandas()
    expected_cost = column_total(rows, cost_column)
    if cost_column == "cost_micros":
        expected_cost /= 1_000_000
    assert len(spend) == len(rows)
    assert spend["cost"].sum() == pytest.approx(float(expected_cost))
    assert spend["impressions"].sum() == column_total(rows, "impressions")
    assert set(spend["platform"]) == {platform.strip().lower()}
    expected_dates = sorted(dt.date.fromisoformat(row[date_column][:10]) for row in rows)
    assert sorted(spend["date"].dt.date) == expected_dates


def test_spend_google_campaign_stats_fields(store: Store, shared_data: Path) -> None:
    path = shared_data / AD_REPORTING / "google_ads_campaign_stats_data.csv"
    rows = read_rows(path)

    import_spend(store, path, platform="google_ads")

    spend = store.table("ad_spend").to_pandas()
    # The campaign id of Fivetran's campaign_stats table is its ``id`` column.
    assert sorted(spend["campaign_id"]) == sorted(row["id"] for row in rows)
    assert spend["clicks"].sum() == column_total(rows, "clicks")
    assert spend["platform_conversions"].sum() == pytest.approx(
        float(column_total(rows, "conversions"))
    )


def test_spend_linkedin_cost_in_usd(store: Store, shared_data: Path) -> None:
    path = shared_data / AD_REPORTING / "linkedin_ad_analytics_by_campaign_data.csv"

    import_spend(store, path, platform="linkedin_ads")

    spend = store.table("ad_spend").to_pandas()
    # Rows with an empty cost_in_usd have a cost_in_local_currency of 0 in this file.
    assert spend["cost"].sum() == pytest.approx(530.62)
    assert set(spend["currency"]) == {"USD"}
    assert spend["clicks"].sum() == column_total(read_rows(path), "clicks")
    assert spend["campaign_id"].nunique() == 4


def test_spend_microsoft_platform_overrides_network(store: Store, shared_data: Path) -> None:
    path = shared_data / AD_REPORTING / "microsoft_ads_campaign_performance_daily_report_data.csv"

    import_spend(store, path, platform="microsoft_ads")

    spend = store.table("ad_spend").to_pandas()
    # The file's ``network`` column names Bing search networks, not the ad platform.
    assert set(spend["platform"]) == {"microsoft_ads"}
    assert set(spend["currency"]) == {"USD"}


# Columns and values --------------------------------------------------------------------------


def test_spend_platform_column_normalised() -> None:
    frame = spend_frame(
        {"Date": "2024-03-01", "Platform": " Google_Ads ", "Campaign": "Brand", "Cost": "10.5"},
        {"Date": "2024-03-02", "Platform": "LinkedIn", "Campaign": "ABM", "Cost": "4"},
    )
    spend = read_spend_frame(frame, file=FILE)

    assert spend["platform"].tolist() == ["google_ads", "linkedin"]
    assert spend["campaign"].tolist() == ["Brand", "ABM"]
    assert spend["cost"].tolist() == [10.5, 4.0]


def test_spend_platform_option_wins() -> None:
    frame = spend_frame({"network": "Audience", "spend": "1"})
    spend = read_spend_frame(frame, file=FILE, platform="  Microsoft_Ads ")

    assert spend["platform"].tolist() == ["microsoft_ads"]


def test_spend_recognised_column_names() -> None:
    frame = spend_frame(
        {
            "date_day": "2024-03-01",
            "publisher": "meta",
            "campaign_name": "Spring",
            "campaign_id": "c-1",
            "ad_set_id": "as-1",
            "creative_id": "cr-1",
            "Impressions": "1000",
            "inline_link_clicks": "12",
            "amount_spent": "33.3",
            "approved_conversion": "1",
            "total_conversion": "3",
            "currency_code": "eur",
        }
    )
    row = read_spend_frame(frame, file=FILE).iloc[0]

    assert row["date"] == pd.Timestamp("2024-03-01")
    assert row["platform"] == "meta"
    assert row["campaign"] == "Spring"
    assert row["campaign_id"] == "c-1"
    assert row["ad_group"] == "as-1"
    assert row["ad_id"] == "cr-1"
    assert row["impressions"] == 1000
    assert row["clicks"] == 12
    assert row["cost"] == 33.3
    assert row["platform_conversions"] == 3.0
    assert row["currency"] == "EUR"


def test_spend_cost_micros_divided() -> None:
    frame = spend_frame({"cost_micros": "36150000"}, {"cost_micros": "1"})
    spend = read_spend_frame(frame, file=FILE, platform="google_ads")

    assert spend["cost"].tolist() == [36.15, 0.000001]


def test_spend_cost_preferred_over_micros() -> None:
    frame = spend_frame({"cost": "2.5", "cost_micros": "999000000"})
    spend = read_spend_frame(frame, file=FILE, platform="google_ads")

    assert spend["cost"].tolist() == [2.5]


def test_spend_column_mapping() -> None:
    frame = spend_frame({"Tag": "2024-03-01", "Betrag": "7.25", "Kanal": "Bing"})
    spend = read_spend_frame(
        frame, file=FILE, mapping={"date": "Tag", "cost": "Betrag", "platform": "Kanal"}
    )

    assert spend["cost"].tolist() == [7.25]
    assert spend["platform"].tolist() == ["bing"]
    assert spend["date"].tolist() == [pd.Timestamp("2024-03-01")]


def test_spend_empty_counts_are_zero() -> None:
    frame = spend_frame({"spend": "1", "impressions": None, "clicks": None, "conversions": None})
    row = read_spend_frame(frame, file=FILE, platform="x").iloc[0]

    assert row["impressions"] == 0
    assert row["clicks"] == 0
    assert pd.isna(row["platform_conversions"])


def test_spend_currency_sources() -> None:
    frame = spend_frame({"spend": "1", "currency": "gbp"}, {"spend": "2", "currency": None})
    spend = read_spend_frame(frame, file=FILE, platform="x", currency="eur")

    assert spend["currency"].tolist() == ["GBP", "EUR"]


def test_spend_usd_cost_column_is_usd() -> None:
    frame = spend_frame({"cost_in_usd": "5", "currency": "EUR"})
    spend = read_spend_frame(frame, file=FILE, platform="linkedin_ads", currency="GBP")

    assert spend["currency"].tolist() == ["USD"]


def test_spend_dates_with_time_and_offset() -> None:
    frame = spend_frame(
        {"day": "2020-04-06 00:00:00", "spend": "1"},
        {"day": "2020-04-07T23:30:00+02:00", "spend": "1"},
        {"day": None, "spend": "1"},
    )
    spend = read_spend_frame(frame, file=FILE, platform="x")

    assert spend["date"].tolist()[:2] == [pd.Timestamp("2020-04-06"), pd.Timestamp("2020-04-07")]
    assert pd.isna(spend["date"].iloc[2])


def test_spend_no_date_column_null_dates(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"platform": "google_ads", "cost": "3"}])

    import_spend(store, path)

    spend = store.table("ad_spend").to_pandas()
    assert spend["date"].isna().all()
    assert spend["cost"].tolist() == [3.0]


def test_spend_parquet_dates(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "spend.parquet"
    pd.DataFrame(
        {
            "date": [dt.date(2024, 3, 1), dt.date(2024, 3, 2)],
            "platform": ["google_ads", "google_ads"],
            "cost": [1.5, 2.5],
            "clicks": [3, 4],
        }
    ).to_parquet(path)

    import_spend(store, path)

    spend = store.table("ad_spend").to_pandas()
    assert sorted(spend["date"].dt.date) == [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    assert spend["clicks"].sum() == 7


# Bad input --------------------------------------------------------------------------------

BAD_CELLS = [
    pytest.param({"cost": "-1"}, "cost", "negative", id="negative-cost"),
    pytest.param({"cost": "12,50"}, "cost", "not a number", id="text-cost"),
    pytest.param({"cost": "ten"}, "cost", "not a number", id="word-cost"),
    pytest.param({"clicks": "2.5"}, "clicks", "not a whole number", id="fractional-clicks"),
    pytest.param({"impressions": "-3"}, "impressions", "negative", id="negative-impressions"),
    pytest.param({"date": "03/01/2024"}, "date", "YYYY-MM-DD", id="ambiguous-date"),
    pytest.param({"date": "2024-02-30"}, "date", "YYYY-MM-DD", id="impossible-date"),
    pytest.param({"platform": None}, "platform", "platform is missing", id="empty-platform"),
    pytest.param({"conversions": "-1"}, "conversions", "negative", id="negative-conversions"),
]


@pytest.mark.parametrize(("bad", "column", "message"), BAD_CELLS)
def test_spend_bad_cell_rejected(
    store: Store, tmp_path: Path, bad: dict[str, Any], column: str, message: str
) -> None:
    good = {
        "date": "2024-03-01",
        "platform": "google_ads",
        "impressions": "10",
        "clicks": "1",
        "cost": "1.5",
        "conversions": "0",
    }
    path = write_csv(tmp_path, [good, good, {**good, **bad}])
    before = row_counts(store)

    with pytest.raises(InputError, match=message) as caught:
        import_spend(store, path)

    assert caught.value.row == 3
    assert caught.value.column == column
    assert str(path) in str(caught.value)
    assert "row 3" in str(caught.value)
    assert f"column {column!r}" in str(caught.value)
    assert row_counts(store) == before


def test_spend_negative_micros_rejected() -> None:
    frame = spend_frame({"cost_micros": "5"}, {"cost_micros": "-5"})

    with pytest.raises(InputError, match="negative") as caught:
        read_spend_frame(frame, file=FILE, platform="google_ads")

    assert caught.value.row == 2
    assert caught.value.column == "cost_micros"


def test_spend_missing_cost_column(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"platform": "google_ads", "clicks": "3"}])
    before = row_counts(store)

    with pytest.raises(InputError, match="missing column for cost") as caught:
        import_spend(store, path)

    assert str(path) in str(caught.value)
    assert "cost_micros" in str(caught.value)
    assert caught.value.column == "cost"
    assert row_counts(store) == before


def test_spend_missing_platform_column(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"campaign": "Brand", "cost": "3"}])
    before = row_counts(store)

    with pytest.raises(InputError, match="--platform") as caught:
        import_spend(store, path)

    assert str(path) in str(caught.value)
    assert caught.value.column == "platform"
    assert row_counts(store) == before


def test_spend_blank_platform_option() -> None:
    frame = spend_frame({"cost": "3"})

    with pytest.raises(InputError, match="platform option is blank"):
        read_spend_frame(frame, file=FILE, platform="  ")


def test_spend_failed_import_changes_nothing(store: Store, tmp_path: Path) -> None:
    first = write_csv(tmp_path, [{"platform": "bing", "cost": "3"}], name="first.csv")
    import_spend(store, first)
    before = row_counts(store)
    assert before["ad_spend"] == 1
    assert before["imports"] == 1

    second = write_csv(
        tmp_path, [{"platform": "bing", "cost": "3"}, {"platform": "bing", "cost": "-3"}]
    )
    with pytest.raises(InputError):
        import_spend(store, second)

    assert row_counts(store) == before


def test_spend_same_file_twice_rejected(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"platform": "bing", "cost": "3"}])
    import_spend(store, path)
    before = row_counts(store)

    with pytest.raises(InputError, match="already imported"):
        import_spend(store, path, platform="microsoft_ads")

    assert row_counts(store) == before
