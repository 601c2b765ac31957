"""Offline touches: webinars, activity logs, review-site intent and self-reported answers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.common.errors import AlreadyImportedError, ConfigError, InputError
from journeymap.sources.offline import answer_channel, import_offline
from journeymap.store.store import Store


def write_csv(folder: Path, rows: list[dict[str, Any]], name: str = "touches.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows, dtype="object").to_csv(path, index=False)
    return path


def touches(store: Store) -> pd.DataFrame:
    table = store.table("touchpoints")
    return table.order_by("seq").to_pandas()


def channels(store: Store) -> list[str]:
    classified = ChannelClassifier().classify(store.table("touchpoints"))
    return list(classified.order_by("seq").channel.to_pandas())


def test_offline_webinar_emails_hashed(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"Email": " Ana.Lima@Acme.com ", "Join Time": "2026-03-02 16:05", "Topic": "RevOps"},
            {"Email": "ana.lima@acme.com", "Join Time": "2026-04-06 16:01", "Topic": "Attribution"},
        ],
    )
    store = Store.open()

    result = import_offline(store, path, touch_type="webinar")

    digest = hashlib.sha256(b"ana.lima@acme.com").hexdigest()
    rows = touches(store)
    assert result.rows["touchpoints"] == 2
    assert list(rows.person_id) == [f"email:{digest}"] * 2
    assert list(rows.touch_type) == ["webinar", "webinar"]
    assert list(rows.campaign) == ["RevOps", "Attribution"]
    assert channels(store) == ["Webinars", "Webinars"]
    as_text = rows.astype(str).to_string().lower()
    assert "ana.lima" not in as_text


def test_import_offline_known_email_joins_the_crm_person(tmp_path: Path) -> None:
    store = Store.open()
    digest = hashlib.sha256(b"bo@beta.io").hexdigest()
    store.append(
        "people",
        pd.DataFrame(
            {"person_id": ["contact-7"], "email_hash": [digest], "import_id": ["contacts-1"]}
        ),
    )
    path = write_csv(tmp_path, [{"email": "BO@beta.io", "date": "2026-05-01"}])

    import_offline(store, path, touch_type="event")

    assert list(touches(store).person_id) == ["contact-7"]
    assert channels(store) == ["Events"]


def test_import_offline_activity_types_map_to_touch_types(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"contact_id": "c1", "activity_type": "CALL", "activity_date": "2026-01-05"},
            {"contact_id": "c1", "activity_type": "Sales Email", "activity_date": "2026-01-06"},
            {"contact_id": "c2", "activity_type": "MEETING", "activity_date": "2026-01-07"},
        ],
    )
    store = Store.open()

    import_offline(store, path)

    assert list(touches(store).touch_type) == ["call", "sales_email", "meeting"]


def test_offline_unknown_activity_type(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"contact_id": "c1", "activity_type": "CALL", "activity_date": "2026-01-05"},
            {"contact_id": "c1", "activity_type": "fax", "activity_date": "2026-01-06"},
        ],
    )
    store = Store.open()

    with pytest.raises(InputError) as caught:
        import_offline(store, path)

    message = str(caught.value)
    assert "row 2" in message
    assert "activity_type" in message
    assert "fax" in message
    assert store.table("touchpoints").count().execute() == 0


def test_offline_review_site_account_touch(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [{"company_domain": "https://www.Gamma.com/", "visit_date": "2026-02-01", "site": "G2"}],
    )
    store = Store.open()

    import_offline(store, path, touch_type="review_site")

    row = touches(store).iloc[0]
    assert row.person_id == "account:gamma.com"
    assert row.account_id == "gamma.com"
    assert row.source == "g2"
    assert channels(store) == ["Review Sites"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Google search", ("google", "organic")),
        ("Saw a LinkedIn ad", ("linkedin", "paid_social")),
        ("LinkedIn", ("linkedin", "social")),
        ("A colleague told me", ("word_of_mouth", "referral")),
        ("Your podcast!", ("podcast", "audio")),
        ("Read reviews on G2", ("g2", "referral")),
        ("Met you at a conference", ("event", "event")),
        ("  Something Else ", ("something else", "self_reported")),
    ],
)
def test_answer_channel_free_text(answer: str, expected: tuple[str, str]) -> None:
    assert answer_channel(answer) == expected


def test_offline_self_reported_touch_type(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            {"contact_id": "c1", "submitted_at": "2026-03-01", "how did you hear": "Google"},
            {"contact_id": "c2", "submitted_at": "2026-03-02", "how did you hear": "LinkedIn ad"},
        ],
    )
    store = Store.open()

    import_offline(store, path, touch_type="self_reported")

    rows = touches(store)
    assert list(rows.touch_type) == ["self_reported", "self_reported"]
    assert list(zip(rows.source, rows.medium, strict=True)) == [
        ("google", "organic"),
        ("linkedin", "paid_social"),
    ]
    assert channels(store) == ["Self-reported", "Self-reported"]


def test_offline_missing_who_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"date": "2026-01-01", "topic": "x"}])

    with pytest.raises(InputError) as caught:
        import_offline(Store.open(), path, touch_type="webinar")

    assert "contact_id" in str(caught.value)
    assert "email" in str(caught.value)


def test_offline_bad_email_warns(
    tmp_path: Path,
) -> None:
    path = write_csv(
        tmp_path,
        [
            {"email": "a@b.com", "contact_id": "", "date": "2026-01-01"},
            {"email": "secret-name-no-at", "contact_id": "c2", "date": "2026-01-02"},
            {"email": "dave@example..com", "contact_id": "c3", "date": "2026-01-03"},
        ],
    )
    store = Store.open()

    result = import_offline(store, path, touch_type="webinar")

    assert len(result.warnings) == 1
    assert "2 cells" in result.warnings[0]
    assert "row 2" in result.warnings[0]
    assert "secret-name" not in result.warnings[0]
    digest = hashlib.sha256(b"a@b.com").hexdigest()
    assert list(touches(store).person_id) == [f"email:{digest}", "c2", "c3"]


def test_offline_bad_email_only_id(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [{"email": "a@b.com", "date": "2026-01-01"}, {"email": "no-at", "date": "2026-01-02"}],
    )

    with pytest.raises(InputError) as caught:
        import_offline(Store.open(), path, touch_type="webinar")

    assert "row 2" in str(caught.value)
    assert "no-at" not in str(caught.value)


def test_import_offline_without_any_type_asks_for_one(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"contact_id": "c1", "date": "2026-01-01"}])

    with pytest.raises(InputError) as caught:
        import_offline(Store.open(), path)

    assert "--type" in str(caught.value)


def test_offline_unknown_type_option(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"contact_id": "c1", "date": "2026-01-01"}])

    with pytest.raises(ConfigError):
        import_offline(Store.open(), path, touch_type="carrier_pigeon")


def test_import_offline_same_bytes_twice_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"contact_id": "c1", "date": "2026-01-01"}])
    store = Store.open()
    import_offline(store, path, touch_type="call")

    with pytest.raises(AlreadyImportedError):
        import_offline(store, path, touch_type="call")

    assert store.table("touchpoints").count().execute() == 1


def test_cli_import_offline_writes_touches_and_reports_rows(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from journeymap.cli import app

    path = write_csv(tmp_path, [{"contact_id": "c1", "date": "2026-01-01", "topic": "Intro"}])
    store = str(tmp_path / "store.duckdb")

    result = CliRunner().invoke(
        app, ["import", "offline", str(path), "--type", "webinar", "--store", store]
    )

    assert result.exit_code == 0, result.output
    assert "1 touchpoints" in " ".join(result.output.split())
    opened = Store.open(store)
    try:
        assert list(touches(opened).touch_type) == ["webinar"]
    finally:
        opened.close()
