"""Identifier normalisation: which texts count as email addresses."""

from __future__ import annotations

import pytest

from journeymap.common.identifiers import match_keys, normal_email


@pytest.mark.parametrize(
    ("raw", "normal"),
    [(" Ana.Lima@Acme.COM ", "ana.lima@acme.com"), ("o'neil@mail.co.uk", "o'neil@mail.co.uk")],
)
def test_normal_email_trims_and_lowercases(raw: str, normal: str) -> None:
    assert normal_email(raw) == normal


@pytest.mark.parametrize(
    "raw", ["no-at", "a@b", "dave@example..com", "a..b@x.com", ".a@x.com", "a b@x.com", "@x.com"]
)
def test_normal_email_rejects_what_is_not_an_address(raw: str) -> None:
    with pytest.raises(ValueError, match="not an email"):
        normal_email(raw)


def test_match_keys_leave_out_an_invalid_email() -> None:
    assert match_keys(email="dave@example..com") == {}
