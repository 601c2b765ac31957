"""Accounts and their buying committees: firmographics, deal sizes, names, titles, email hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from journeymap.demo import catalog

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Population:
    """Accounts and people as arrays, with the people of one account next to each other."""

    account_employees: IntArray
    account_tier: IntArray
    """0 for small, 1 for mid-market and 2 for enterprise accounts."""
    account_industry: IntArray
    account_region: IntArray
    account_plan: IntArray
    account_intent: FloatArray
    """Buying intent, from 0 (not looking) to 1 (actively buying)."""
    account_amount: FloatArray
    """Deal amount in USD when the opportunity is created."""
    account_won_amount: FloatArray
    """Deal amount in USD when the deal is won, after discounts."""
    account_first_person: IntArray
    person_account: IntArray
    person_role: IntArray
    person_title: IntArray
    """Index into :data:`TITLES`."""
    person_first_name: IntArray
    person_last_name: IntArray

    @property
    def people(self) -> int:
        return len(self.person_account)

    @property
    def accounts(self) -> int:
        return len(self.account_first_person)


TITLES: tuple[str, ...] = tuple(title for role in catalog.ROLES for title in role.titles)
_ROLE_TITLE_START = np.cumsum([0] + [len(role.titles) for role in catalog.ROLES])[:-1]
_ROLE_TITLE_COUNT = np.array([len(role.titles) for role in catalog.ROLES])


def _choose(
    rng: np.random.Generator, weights: tuple[float, ...] | list[float], size: int
) -> IntArray:
    probabilities = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(probabilities), size=size, p=probabilities / probabilities.sum()).astype(
        np.int64
    )


def _committee_sizes(rng: np.random.Generator, people: int) -> tuple[IntArray, IntArray]:
    """Draw employee counts and committee sizes (1 to 6) of accounts until ``people`` is reached.

    The last account's committee is cut so that the sizes add up to ``people`` exactly.
    """
    employees: list[IntArray] = []
    sizes: list[IntArray] = []
    total = 0
    while total < people:
        block = max(16, (people - total) // 2)
        drawn = np.clip(np.rint(rng.lognormal(np.log(150.0), 1.4, block)), 5, 200_000).astype(
            np.int64
        )
        tier = np.searchsorted(catalog.SIZE_TIER_LIMITS, drawn, side="right")
        extra = rng.binomial(5, np.asarray(catalog.COMMITTEE_EXTRA_SHARE)[tier])
        employees.append(drawn)
        sizes.append(1 + extra.astype(np.int64))
        total += int(sizes[-1].sum())
    all_employees = np.concatenate(employees)
    all_sizes = np.concatenate(sizes)
    ends = np.cumsum(all_sizes)
    count = int(np.searchsorted(ends, people)) + 1
    all_sizes = all_sizes[:count].copy()
    all_sizes[-1] -= int(ends[count - 1]) - people
    return all_employees[:count], all_sizes


def draw_population(rng: np.random.Generator, people: int) -> Population:
    """Draw accounts with firmographics and buying committees that add up to ``people``."""
    employees, sizes = _committee_sizes(rng, people)
    accounts = len(sizes)
    tier = np.searchsorted(catalog.SIZE_TIER_LIMITS, employees, side="right").astype(np.int64)

    plan_cumulative = np.cumsum(np.asarray(catalog.PLAN_SHARES), axis=1)[tier]
    plan = (plan_cumulative < rng.random(accounts)[:, None]).sum(axis=1).clip(0, 2).astype(np.int64)
    median = np.asarray(catalog.PLAN_DEAL_MEDIANS)[plan]
    amount = np.round(rng.lognormal(np.log(median), catalog.DEAL_AMOUNT_SIGMA) / 100.0) * 100.0
    amount = np.maximum(amount, 1000.0)
    won_amount = np.round(amount * rng.uniform(0.85, 1.0, accounts) / 100.0) * 100.0

    person_account = np.repeat(np.arange(accounts, dtype=np.int64), sizes)
    first_person = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    is_first = np.zeros(people, dtype=bool)
    is_first[first_person] = True
    role = np.where(
        is_first,
        _choose(rng, catalog.CHAMPION_ROLE_WEIGHTS, people),
        _choose(rng, catalog.MEMBER_ROLE_WEIGHTS, people),
    )
    title = _ROLE_TITLE_START[role] + (rng.random(people) * _ROLE_TITLE_COUNT[role]).astype(
        np.int64
    )

    return Population(
        account_employees=employees,
        account_tier=tier,
        account_industry=_choose(rng, list(catalog.INDUSTRIES.values()), accounts),
        account_region=_choose(rng, list(catalog.REGIONS.values()), accounts),
        account_plan=plan,
        account_intent=rng.beta(1.2, 3.0, accounts),
        account_amount=amount,
        account_won_amount=won_amount,
        account_first_person=first_person,
        person_account=person_account,
        person_role=role,
        person_title=title,
        person_first_name=rng.integers(0, len(catalog.FIRST_NAMES), people),
        person_last_name=rng.integers(0, len(catalog.LAST_NAMES), people),
    )


def _numbered_bytes(
    prefix: str, numbers: NDArray[np.integer[Any]], width: int
) -> NDArray[np.bytes_]:
    """Return ``prefix`` and each of ``numbers`` (not negative), zero-padded, as ASCII bytes.

    The width grows to fit the largest number, so that no id is cut short.
    """
    count = len(numbers)
    width = max(width, len(str(int(numbers.max()))) if count else width)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    head = np.broadcast_to(
        np.frombuffer(prefix.encode("ascii"), dtype=np.uint8), (count, len(prefix))
    )
    text = np.ascontiguousarray(np.concatenate([head, digits], axis=1))
    return text.view(f"S{len(prefix) + width}").ravel()


def numbered_ids(prefix: str, numbers: NDArray[np.integer[Any]], width: int) -> pd.Index:
    """Return ids such as ``A000042``: ``prefix`` and each number, zero-padded to ``width``."""
    return pd.Index(_numbered_bytes(prefix, numbers, width).astype(np.str_), dtype=object)


def arrow_text(values: NDArray[np.bytes_]) -> pd.arrays.ArrowExtensionArray:
    """Return ASCII bytes as an Arrow string array, which keeps no Python object per cell."""
    return pd.arrays.ArrowExtensionArray(pa.array(values, type=pa.binary()).cast(pa.string()))


def _email_hashes(population: Population, domains: list[str]) -> NDArray[np.bytes_]:
    """Return the SHA-256 hex digest of each person's synthetic email address.

    The person number in the address keeps two namesakes at one company apart.
    """
    first_names, last_names = catalog.FIRST_NAMES, catalog.LAST_NAMES
    digests = b"".join(
        hashlib.sha256(
            f"{first_names[first]}.{last_names[last]}.{number}@{domains[account]}".encode()
        ).digest()
        for number, (first, last, account) in enumerate(
            zip(
                population.person_first_name.tolist(),
                population.person_last_name.tolist(),
                population.person_account.tolist(),
                strict=True,
            ),
            start=1,
        )
    )
    octets = np.frombuffer(digests, dtype=np.uint8).reshape(population.people, 32)
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    text = np.empty((population.people, 64), dtype=np.uint8)
    text[:, 0::2] = hex_digits[octets >> 4]
    text[:, 1::2] = hex_digits[octets & 15]
    return text.view("S64").ravel()


def _company_names(
    rng: np.random.Generator, accounts: int
) -> tuple[pd.Categorical[str], list[str]]:
    """Draw company names and unique domains under the reserved ``.example`` top-level domain."""
    prefixes, stems, kinds = catalog.NAME_PREFIXES, catalog.NAME_STEMS, catalog.NAME_KINDS
    combos = [(p, s, k) for p in prefixes for s in stems for k in kinds]
    names = pd.Index([f"{p}{s} {k}" for p, s, k in combos])
    slugs = [f"{p}{s}{k}".lower() for p, s, k in combos]
    code = rng.integers(0, len(combos), accounts)
    # The second company with the same name gets "2" after its slug, the third "3", and so on.
    repeat = pd.Series(code).groupby(code).cumcount().to_numpy()
    domains = [
        f"{slugs[name]}{count + 1 if count else ''}.example"
        for name, count in zip(code.tolist(), repeat.tolist(), strict=True)
    ]
    return pd.Categorical.from_codes(code, names), domains


@dataclass(frozen=True)
class Directory:
    """The accounts and people frames, and the ids that other frames reuse."""

    accounts: pd.DataFrame
    people: pd.DataFrame
    account_ids: pd.Index
    person_ids: pd.Index


def build_directory(rng: np.random.Generator, population: Population) -> Directory:
    """Build the accounts and people frames: ids, firmographics, titles and email hashes.

    An email hash is the SHA-256 hex digest of a synthetic address, which is not kept.
    """
    account_ids = numbered_ids("A", np.arange(1, population.accounts + 1), 6)
    person_ids = numbered_ids("P", np.arange(1, population.people + 1), 7)
    names, domains = _company_names(rng, population.accounts)
    accounts = pd.DataFrame(
        {
            "account_id": arrow_text(
                _numbered_bytes("A", np.arange(1, population.accounts + 1), 6)
            ),
            "name": names,
            "domain": pd.arrays.ArrowExtensionArray(pa.array(domains, type=pa.string())),
            "industry": pd.Categorical.from_codes(
                population.account_industry, pd.Index(list(catalog.INDUSTRIES))
            ),
            "employees": population.account_employees,
            "region": pd.Categorical.from_codes(
                population.account_region, pd.Index(list(catalog.REGIONS))
            ),
            "plan": pd.Categorical.from_codes(
                population.account_plan, pd.Index(list(catalog.PLANS))
            ),
        }
    )
    people = pd.DataFrame(
        {
            "person_id": arrow_text(_numbered_bytes("P", np.arange(1, population.people + 1), 7)),
            "account_id": pd.Categorical.from_codes(population.person_account, account_ids),
            "email_hash": arrow_text(_email_hashes(population, domains)),
            "title": pd.Categorical.from_codes(population.person_title, pd.Index(list(TITLES))),
            "domain": pd.Categorical.from_codes(population.person_account, pd.Index(domains)),
        }
    )
    return Directory(
        accounts=accounts, people=people, account_ids=account_ids, person_ids=person_ids
    )
