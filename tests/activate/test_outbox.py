"""Rules -> outbox rows: kinds, values, currencies, windows, match keys and stable ids."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from journeymap.activate.outbox import event_id, queue_conversions
from journeymap.common.errors import ConfigError
from journeymap.store.store import Store
from tests.activate.sync_fakes import (
    EMAIL_HASH,
    NOW,
    FakeAdapter,
    add_conversions,
    fake_lookup,
    outbox,
    sync_config,
    ts,
)

LOOKUP = fake_lookup(FakeAdapter(window_days=7))


def test_event_id_truncated_sha256() -> None:
    expected = hashlib.sha256(b"fb\x1fc1").hexdigest()[:32]

    assert event_id("fb", "c1") == expected
    assert event_id("other", "c1") != expected


def test_queue_conversions_kinds_and_actions(store: Store) -> None:
    add_conversions(
        store,
        [
            {"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "Lead"},
            {
                "conversion_id": "c2",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "closed_won",
            },
            {
                "conversion_id": "c3",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "opportunity",
            },
        ],
    )

    result = queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    assert result.queued == {"fb": 2}
    assert list(rows.conversion_id) == ["c1", "c2"]
    assert list(rows.action) == ["Lead", "Purchase"]
    assert list(rows.status) == ["queued", "queued"]
    assert list(rows.event_id) == [event_id("fb", "c1"), event_id("fb", "c2")]
    assert set(rows.platform) == {"meta"}


def test_queue_conversions_rerun_adds_no_rows(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )
    queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)

    again = queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)

    assert again.total == 0
    assert len(outbox(store)) == 1


def test_queue_conversions_duplicate_conversion_id_gives_one_row(store: Store) -> None:
    row = {"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}
    add_conversions(store, [row, row])

    queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)

    assert len(outbox(store)) == 1


def test_queue_conversions_new_conversion_adds_one_row(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )
    queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)
    add_conversions(
        store,
        [{"conversion_id": "c2", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )

    again = queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)

    assert again.queued == {"fb": 1}
    assert list(outbox(store).conversion_id) == ["c1", "c2"]


def test_queue_conversions_amount_keeps_own_currency(store: Store) -> None:
    add_conversions(
        store,
        [
            {
                "conversion_id": "c1",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "closed_won",
                "value": 100.0,
                "currency": "EUR",
            },
            {
                "conversion_id": "c2",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "closed_won",
                "value": 7.5,
            },
            {
                "conversion_id": "c3",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "closed_won",
                "deal_id": "d1",
            },
            {"conversion_id": "c4", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"},
        ],
    )
    store.append("deals", pd.DataFrame({"deal_id": ["d1"], "amount": [42.0], "currency": ["GBP"]}))

    queue_conversions(store, sync_config(currency="CHF"), now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    assert list(rows.value[:3]) == [100.0, 7.5, 42.0]
    assert list(rows.currency[:3]) == ["EUR", "CHF", "GBP"]
    assert pd.isna(rows.value[3])
    assert rows.currency[3] is None


def test_queue_conversions_fixed_value(store: Store) -> None:
    add_conversions(
        store,
        [
            {
                "conversion_id": "c1",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "closed_won",
                "value": 100.0,
                "currency": "EUR",
            }
        ],
    )

    queue_conversions(store, sync_config(value="fixed", fixed_value=50), now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    assert rows.value[0] == 50.0
    assert rows.currency[0] == "USD"


def test_queue_conversions_expected_value_by_kind(store: Store) -> None:
    add_conversions(
        store,
        [
            {"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"},
            {
                "conversion_id": "c2",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "Closed_Won",
                "value": 900.0,
            },
        ],
    )
    config = sync_config(
        value="expected", expected_values={"lead": 20, "closed_won": 5000}, currency="EUR"
    )

    queue_conversions(store, config, now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    assert list(rows.value) == [20.0, 5000.0]
    assert list(rows.currency) == ["EUR", "EUR"]


def test_queue_conversions_value_none(store: Store) -> None:
    add_conversions(
        store,
        [
            {
                "conversion_id": "c1",
                "person_id": "p1",
                "occurred_at": "2026-03-09",
                "kind": "closed_won",
                "value": 100.0,
                "currency": "EUR",
            }
        ],
    )

    queue_conversions(store, sync_config(value="none"), now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    assert pd.isna(rows.value[0])
    assert rows.currency[0] is None


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        pytest.param({"value": "fixed"}, "fixed_value", id="fixed-without-value"),
        pytest.param(
            {"value": "expected", "expected_values": {"lead": 1}},
            "closed_won",
            id="expected-missing-kind",
        ),
    ],
)
def test_sync_destination_value_rule_needs_values(settings: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as raised:
        sync_config(**settings)

    assert "sync.destinations.fb" in str(raised.value)


def test_queue_conversions_window_skips_old_conversions(store: Store) -> None:
    add_conversions(
        store,
        [
            {"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-01", "kind": "lead"},
            {"conversion_id": "c2", "person_id": "p1", "occurred_at": "2026-03-05", "kind": "lead"},
        ],
    )

    result = queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    assert result.skipped == {"fb": 1}
    assert list(rows.status) == ["skipped", "queued"]
    assert rows.last_code[0] == "outside_window"
    assert "9.5 days old" in rows.last_message[0]
    assert "7 days" in rows.last_message[0]


def test_queue_conversions_window_days_overrides_platform(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-01", "kind": "lead"}],
    )

    queue_conversions(store, sync_config(window_days=30), now=NOW, adapters=LOOKUP)

    assert list(outbox(store).status) == ["queued"]


def _keys_of(store: Store) -> list[dict[str, str]]:
    return [json.loads(text) for text in outbox(store)["keys"]]


def test_queue_conversions_latest_key_observed_before_conversion(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )
    store.append(
        "match_keys",
        pd.DataFrame(
            {
                "id": ["p1", "p1", "p1", "p1", "p2"],
                "id_kind": ["person"] * 5,
                "key": [
                    "email_sha256",
                    "email_sha256",
                    "email_sha256",
                    "li_fat_id",
                    "email_sha256",
                ],
                "value": ["1" * 64, EMAIL_HASH, "3" * 64, "li-cookie", "4" * 64],
                "observed_at": [
                    ts("2026-01-01"),
                    ts("2026-02-01"),
                    ts("2026-03-20"),
                    ts("2026-01-01"),
                    ts("2026-01-01"),
                ],
            }
        ),
    )

    queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)

    # The later value was seen after the conversion; LinkedIn's cookie does not go to Meta.
    assert _keys_of(store) == [{"email_sha256": EMAIL_HASH}]


def _touches(store: Store, rows: list[tuple[str, str, str, str]]) -> None:
    store.append(
        "touchpoints",
        pd.DataFrame(
            {
                "touchpoint_id": [f"t{index}" for index in range(len(rows))],
                "seq": list(range(1, len(rows) + 1)),
                "person_id": [row[0] for row in rows],
                "occurred_at": [ts(row[1]) for row in rows],
                "click_id": [row[2] for row in rows],
                "click_platform": [row[3] for row in rows],
            }
        ),
    )


def test_queue_conversions_meta_click_becomes_fbc(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )
    _touches(
        store,
        [
            ("p1", "2026-03-01 00:00:00", "old-click", "meta"),
            ("p1", "2026-03-02 10:00:00", "IwAR-click", "meta"),
            ("p1", "2026-03-03 00:00:00", "gclid-1", "google_ads"),
            ("p1", "2026-03-10 00:00:00", "after-click", "meta"),
        ],
    )

    queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)
    rows = outbox(store)

    milliseconds = int(ts("2026-03-02 10:00:00").timestamp() * 1000)
    assert _keys_of(store) == [{"fbc": f"fb.1.{milliseconds}.IwAR-click"}]
    assert rows.clicked_at[0] == ts("2026-03-02 10:00:00")


@pytest.mark.parametrize(
    ("platform", "click_platform", "key"),
    [
        pytest.param("google", "google_ads", "gclid", id="google"),
        pytest.param("linkedin", "linkedin_ads", "li_fat_id", id="linkedin"),
        pytest.param("microsoft", "microsoft_ads", "msclkid", id="microsoft"),
    ],
)
def test_queue_conversions_click_id_of_platform(
    store: Store, platform: str, click_platform: str, key: str
) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )
    _touches(
        store,
        [
            ("p1", "2026-03-02", "their-click", click_platform),
            ("p1", "2026-03-03", "fb-click", "meta"),
        ],
    )

    queue_conversions(store, sync_config(platform=platform), now=NOW, adapters=LOOKUP)

    assert _keys_of(store) == [{key: "their-click"}]


def test_queue_conversions_reads_collected_conversions(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )
    collected = pd.DataFrame(
        {
            "conversion_id": ["m-1"],
            "seq": [9],
            "person_id": ["p9"],
            "occurred_at": [ts("2026-03-09")],
            "kind": ["closed_won"],
        }
    )
    store.write("collected_conversions", collected)

    queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP)

    assert list(outbox(store).conversion_id) == ["c1", "m-1"]


def test_queue_conversions_without_write_stores_nothing(store: Store) -> None:
    add_conversions(
        store,
        [{"conversion_id": "c1", "person_id": "p1", "occurred_at": "2026-03-09", "kind": "lead"}],
    )

    result = queue_conversions(store, sync_config(), now=NOW, adapters=LOOKUP, write=False)

    assert result.queued == {"fb": 1}
    assert result.rows is not None
    assert result.rows.num_rows == 1
    assert outbox(store).empty
