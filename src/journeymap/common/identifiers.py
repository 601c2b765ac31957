"""Normalise and hash the identifiers that ad platforms match conversions on.

Every platform wants SHA-256 hex digests of normalised emails and phone numbers, but the
normalisations differ: Google removes the dots of Gmail local parts, Meta wants a phone's
digits with the country code and no ``+``, Google and Microsoft want E.164 with the ``+``.
A value that already is a SHA-256 hex digest is passed through (lower-cased), never hashed
again. Raw addresses and numbers are never stored: importers call :func:`match_keys` and
keep only its result.
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers

SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

EMAIL = "email_sha256"
"""SHA-256 of the trimmed, lowercased email (Meta, LinkedIn, Microsoft)."""
EMAIL_GOOGLE = "email_sha256_google"
"""SHA-256 of the email after Google's normalisation (no dots in Gmail local parts)."""
PHONE_DIGITS = "phone_sha256_digits"
"""SHA-256 of the phone's digits with country code and no ``+`` (Meta)."""
PHONE_E164 = "phone_sha256_e164"
"""SHA-256 of the phone in E.164 form, ``+`` included (Google, Microsoft)."""

HASHED_KEYS = (EMAIL, EMAIL_GOOGLE, PHONE_DIGITS, PHONE_E164)
RAW_KEYS = ("gclid", "gbraid", "wbraid", "fbc", "fbp", "fbclid", "li_fat_id", "msclkid", "lead_id")
"""Keys sent as they were collected: click ids, cookies and the Meta lead id."""


def is_sha256(value: str) -> bool:
    """Return whether ``value`` already is a SHA-256 hex digest (64 hex characters)."""
    return bool(SHA256_HEX.match(value.strip()))


def sha256_hex(text: str) -> str:
    """Return the lowercase hex SHA-256 digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normal_email(raw: str) -> str:
    """Return ``raw`` trimmed and lowercased.

    Raises:
        ValueError: ``raw`` does not look like an email address: one ``@`` with text on both
            sides, a domain of two or more non-empty labels, and no empty part in the local
            part (``a..b@x.com``, ``.a@x.com``).
    """
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    labels = domain.split(".")
    if not at or not local or len(labels) < 2 or "@" in domain or " " in email:
        raise ValueError("not an email address")
    if not all(labels) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("not an email address")
    return email


def google_email(raw: str) -> str:
    """Return the email as Google normalises it: trimmed, lowercased, and for gmail.com and
    googlemail.com addresses without the dots of the part before the ``@``."""
    email = normal_email(raw)
    local, _, domain = email.partition("@")
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def e164_phone(raw: str, region: str = "US") -> str:
    """Return the phone number in E.164 form (``+`` country code and digits).

    ``region`` (ISO 3166 alpha-2) is the country of numbers written without a country code.

    Raises:
        ValueError: the number cannot be parsed or is not a possible number.
    """
    try:
        number = phonenumbers.parse(raw.strip(), region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def hash_email(raw: str, *, google: bool = False) -> str:
    """Return the SHA-256 of the normalised email, or ``raw`` itself when already hashed."""
    if is_sha256(raw):
        return raw.strip().lower()
    return sha256_hex(google_email(raw) if google else normal_email(raw))


def hash_phone(raw: str, *, plus: bool, region: str = "US") -> str:
    """Return the SHA-256 of the E.164 phone, with its ``+`` when ``plus`` (Google, Microsoft)
    or without it (Meta); ``raw`` itself when already hashed."""
    if is_sha256(raw):
        return raw.strip().lower()
    e164 = e164_phone(raw, region)
    return sha256_hex(e164 if plus else e164.removeprefix("+"))


def match_keys(
    *, email: str | None = None, phone: str | None = None, region: str = "US"
) -> dict[str, str]:
    """Return every hashed match key of an email and a phone number.

    A value that is invalid is left out rather than raising, so that one bad address does not
    stop an import; a value that is already hashed fills every key of its kind with itself,
    because it cannot be normalised again.
    """
    keys: dict[str, str] = {}
    if email and email.strip():
        try:
            keys[EMAIL] = hash_email(email)
            keys[EMAIL_GOOGLE] = hash_email(email, google=True)
        except ValueError:
            pass
    if phone and phone.strip():
        try:
            keys[PHONE_DIGITS] = hash_phone(phone, plus=False, region=region)
            keys[PHONE_E164] = hash_phone(phone, plus=True, region=region)
        except ValueError:
            pass
    return keys
