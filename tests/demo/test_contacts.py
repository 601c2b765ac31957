"""The demo world's contacts export: one contact per person, importable, other files unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from journeymap.common.identifiers import e164_phone, normal_email
from journeymap.demo import world as world_module
from journeymap.demo.world import World, generate_world, write_world
from journeymap.sources.contacts import import_contacts
from journeymap.store.store import Store

PEOPLE = 1000


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(PEOPLE, seed=7)


@pytest.fixture(scope="module")
def contacts(world: World) -> pd.DataFrame:
    assert world.contacts is not None
    return world.contacts


def test_contacts_one_per_person(world: World, contacts: pd.DataFrame) -> None:
    assert len(contacts) == PEOPLE
    assert contacts["hs_object_id"].tolist() == world.people["person_id"].tolist()
    assert (
        contacts["associatedcompanyid"].astype(str).tolist()
        == world.people["account_id"].astype(str).tolist()
    )


def test_contacts_company_emails_match_people(world: World, contacts: pd.DataFrame) -> None:
    emails = contacts["email"]
    gmail = emails.str.lower().str.endswith("@gmail.com")
    digests = emails.map(lambda email: hashlib.sha256(normal_email(email).encode()).hexdigest())

    assert 0.05 < gmail.mean() < 0.15
    assert (digests[~gmail] == world.people["email_hash"][~gmail]).all()
    assert (emails[~gmail] != emails[~gmail].str.lower()).any()
    assert emails[gmail].str.split("@").str[0].str.contains(".", regex=False).all()


def test_contacts_phones_read_as_us_default(contacts: pd.DataFrame) -> None:
    phones = contacts["phone"].dropna()

    numbers = {e164_phone(phone, "US") for phone in phones}
    assert all(number.startswith(("+1", "+44")) for number in numbers)
    assert phones.str.startswith("+").any()
    assert phones.str.startswith("(").any()


def test_contacts_stage_counts_conversions(world: World, contacts: pd.DataFrame) -> None:
    won = world.truth["counts"]["closed_won"]
    stages = contacts["lifecyclestage"].value_counts()

    # Each account's closed-won deal belongs to one person, so customers count the deals.
    assert stages["customer"] == won
    assert set(stages.index) == {"subscriber", "lead", "opportunity", "customer"}


def test_contacts_leave_other_files_unchanged(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(world_module, "build_contacts", lambda *args, **kwargs: None)
    without = generate_world(PEOPLE, seed=7)

    with_contacts = write_world(world, tmp_path / "with")
    plain = write_world(without, tmp_path / "without")

    assert without.contacts is None
    assert set(with_contacts) - set(plain) == {"contacts"}
    for name, path in plain.items():
        assert with_contacts[name].read_bytes() == path.read_bytes(), name


def test_contacts_file_imports(world: World, store: Store, tmp_path: Path) -> None:
    paths = write_world(world, tmp_path)

    result = import_contacts(store, paths["contacts"])

    assert result.rows["people"] == PEOPLE
    assert result.rows["identity_edges"] == PEOPLE
    assert result.warnings == ()
    stored = store.table("people").to_pandas().set_index("person_id")["email_hash"]
    company = ~world.contacts["email"].str.lower().str.endswith("@gmail.com")
    expected = world.people[company.to_numpy()].set_index("person_id")["email_hash"]
    assert stored.astype(str).loc[expected.index].tolist() == expected.astype(str).tolist()
