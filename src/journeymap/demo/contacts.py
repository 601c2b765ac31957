"""The demo world's CRM contacts: a HubSpot-style contacts export of the demo people.

Columns are HubSpot's internal property names: ``hs_object_id`` (the person id),
``firstname``, ``lastname``, ``email``, ``phone``, ``jobtitle``, ``associatedcompanyid`` (the
account id), ``createdate`` and ``lifecyclestage``.

Most emails are the company address whose SHA-256 the people file contains
(``first.last.N@domain``), some of them in upper or mixed case, which hashes the same after
normalisation. About one in ten people use a Gmail address with dots instead. Phone numbers
use the ranges that are reserved for fiction: +1 area code 555-0100 to 555-0199 in North
America, and +44 20 7946 0000 to 0999 (London) elsewhere. North American numbers come in
national and international formats, and other numbers in international format, so that the
importer's default region (US) reads every one of them. A contact's create date is their
first row in the touchpoints file, and their lifecycle stage their furthest conversion
(``customer``, ``opportunity``, ``lead``, else ``subscriber``).

Every random choice comes from the generator passed in, so the other files of the world do
not change when this one does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd

from journeymap.demo import catalog
from journeymap.demo.population import TITLES, Directory, Population

GMAIL_SHARE = 0.10
UPPER_CASE_SHARE = 0.10
MIXED_CASE_SHARE = 0.10
NO_PHONE_SHARE = 0.30
NORTH_AMERICA = list(catalog.REGIONS).index("North America")
AREA_CODES = ("212", "312", "415", "512", "617", "206", "303", "404", "646", "737")

STAGE_OF_KIND = {"closed_won": "customer", "opportunity": "opportunity", "lead": "lead"}
STAGE_ORDER = ("subscriber", "lead", "opportunity", "customer")

COLUMNS = (
    "hs_object_id",
    "firstname",
    "lastname",
    "email",
    "phone",
    "jobtitle",
    "associatedcompanyid",
    "createdate",
    "lifecyclestage",
)


def build_contacts(
    rng: np.random.Generator,
    population: Population,
    directory: Directory,
    touchpoints: pd.DataFrame,
    *,
    start: date,
    days: int,
) -> pd.DataFrame:
    """Return the contacts export of the demo people, one row per person in person order.

    ``touchpoints`` is the world's touchpoints frame; a person without a row in it gets a
    create date drawn uniformly from the ``days`` days after ``start``.
    """
    people = population.people
    first_names = [catalog.FIRST_NAMES[index] for index in population.person_first_name.tolist()]
    last_names = [catalog.LAST_NAMES[index] for index in population.person_last_name.tolist()]
    domains = directory.accounts["domain"].astype(str).tolist()
    account = population.person_account.tolist()

    gmail = rng.random(people) < GMAIL_SHARE
    case = rng.random(people)
    emails = []
    for number, (first, last, company) in enumerate(
        zip(first_names, last_names, account, strict=True), start=1
    ):
        local = f"{first}.{last}.{number}"
        index = number - 1
        if gmail[index]:
            emails.append(f"{local}@gmail.com")
        elif case[index] < UPPER_CASE_SHARE:
            emails.append(f"{local}@{domains[company]}".upper())
        elif case[index] < UPPER_CASE_SHARE + MIXED_CASE_SHARE:
            emails.append(f"{first.title()}.{last.title()}.{number}@{domains[company]}")
        else:
            emails.append(f"{local}@{domains[company]}")

    region = population.account_region[population.person_account]
    phones = _phones(rng, region == NORTH_AMERICA)

    person_ids = directory.people["person_id"]
    created = _create_dates(rng, touchpoints, person_ids, start=start, days=days)
    return pd.DataFrame(
        {
            "hs_object_id": person_ids,
            "firstname": [name.title() for name in first_names],
            "lastname": [name.title() for name in last_names],
            "email": emails,
            "phone": phones,
            "jobtitle": pd.Categorical.from_codes(population.person_title, pd.Index(TITLES)),
            "associatedcompanyid": directory.people["account_id"],
            "createdate": created,
            "lifecyclestage": _stages(touchpoints, person_ids),
        },
        columns=list(COLUMNS),
    )


def _phones(rng: np.random.Generator, north_american: np.ndarray) -> list[str | None]:
    """Draw a fictional number per person, or none, in one of several written forms."""
    count = len(north_american)
    missing = rng.random(count) < NO_PHONE_SHARE
    area = rng.integers(0, len(AREA_CODES), count)
    line = rng.integers(0, 100, count)
    london = rng.integers(0, 1000, count)
    form = rng.integers(0, 4, count)
    phones: list[str | None] = []
    for index in range(count):
        if missing[index]:
            phones.append(None)
        elif north_american[index]:
            code, last = AREA_CODES[area[index]], f"01{line[index]:02d}"
            phones.append(
                (
                    f"({code}) 555-{last}",
                    f"{code}-555-{last}",
                    f"+1 {code} 555 {last}",
                    f"+1{code}555{last}",
                )[form[index]]
            )
        else:
            last = f"{london[index]:04d}"
            phones.append(
                (
                    f"+44 20 7946 {last}",
                    f"+44 (0)20 7946 {last}",
                    f"+44207946{last}",
                    f"+44-20-7946-{last}",
                )[form[index]]
            )
    return phones


def _create_dates(
    rng: np.random.Generator,
    touchpoints: pd.DataFrame,
    person_ids: pd.Series,
    *,
    start: date,
    days: int,
) -> pd.Series:
    first_row = touchpoints.groupby("user_id", observed=True)["timestamp"].min()
    created = pd.Series(person_ids.astype(str).map(first_row).to_numpy()).astype(
        "datetime64[us, UTC]"
    )
    origin = datetime.combine(start, time(), tzinfo=UTC)
    offsets = rng.integers(0, days * 86_400, len(person_ids))
    drawn = pd.to_datetime([origin + timedelta(seconds=int(s)) for s in offsets], utc=True)
    return created.fillna(pd.Series(drawn.astype("datetime64[us, UTC]")))


def _stages(touchpoints: pd.DataFrame, person_ids: pd.Series) -> pd.Categorical[str]:
    conversions = touchpoints[touchpoints["conversion"] == 1]
    kinds = conversions["conversion_kind"].astype("string").map(STAGE_OF_KIND)
    rank = kinds.map({stage: index for index, stage in enumerate(STAGE_ORDER)})
    furthest = rank.groupby(conversions["user_id"].astype(str)).max()
    codes = person_ids.astype(str).map(furthest).fillna(0).astype(int).to_numpy()
    return pd.Categorical.from_codes(codes, pd.Index(STAGE_ORDER))
