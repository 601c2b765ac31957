"""Checks of the sync configuration at load and of the credential lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from journeymap.activate.adapters import ADAPTERS
from journeymap.activate.credentials import credential_problems, resolve_credentials
from journeymap.common.config import SYNC_CREDENTIALS, Config, parse_config
from journeymap.common.errors import ConfigError


def _config(**fields: Any) -> Config:
    destination: dict[str, Any] = {
        "platform": "google",
        "account": "123-456-7890",
        "actions": {"lead": "987"},
        "credentials_env": {"access_token": "JM_T_ACCESS", "developer_token": "JM_T_DEV"},
    }
    destination.update(fields)
    return parse_config({"sync": {"destinations": {"ads": destination}}})


@pytest.mark.parametrize(
    "endpoint", ["ftp://example.com", "example.com", "http://", "https://host name"]
)
def test_sync_destination_endpoint_must_be_http_url(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
        _config(endpoint=endpoint)


def test_sync_destination_endpoint_accepts_local_receiver() -> None:
    assert _config(endpoint="http://127.0.0.1:8080").sync.destinations["ads"].endpoint


@pytest.mark.parametrize("currency", ["dollars", "US", "U$D", "12€"])
def test_sync_destination_currency_must_be_iso_code(currency: str) -> None:
    with pytest.raises(ConfigError, match="ISO 4217"):
        _config(currency=currency)


def test_sync_destination_currency_upper_cased() -> None:
    assert _config(currency=" eur").sync.destinations["ads"].currency == "EUR"


def test_sync_destination_unknown_credential_named() -> None:
    with pytest.raises(ConfigError) as caught:
        _config(credentials_env={"token": "JM_T_ACCESS"})

    message = str(caught.value)
    assert "'token'" in message
    assert "access_token, developer_token" in message
    assert "login_customer_id" in message


def test_sync_credentials_match_adapters() -> None:
    for platform, adapter in ADAPTERS.items():
        required, _ = SYNC_CREDENTIALS[platform]
        assert tuple(adapter.required_credentials) == required, platform  # type: ignore[attr-defined]


def test_resolve_credentials_reports_every_missing_one() -> None:
    config = _config()

    with pytest.raises(ConfigError) as caught:
        resolve_credentials(config.sync, {"JM_T_ACCESS": ""})

    message = str(caught.value)
    assert "2 credentials are missing" in message
    assert "JM_T_ACCESS is empty" in message
    assert "JM_T_DEV is not set" in message


def test_credential_problems_names_required_credential_not_mapped() -> None:
    config = _config(credentials_env={"access_token": "JM_T_ACCESS"})

    problems = credential_problems(config.sync, {"JM_T_ACCESS": "x"})

    assert problems == [
        "destination 'ads': credential developer_token is not in credentials_env "
        "(map it to an environment variable)"
    ]


def test_resolve_credentials_empty_in_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("JM_T_ACCESS: ''\nJM_T_DEV: dev\n", encoding="utf-8")
    config = parse_config(
        {
            "sync": {
                "secrets_file": str(secrets),
                "destinations": {
                    "ads": {
                        "platform": "google",
                        "account": "1",
                        "actions": {"lead": "9"},
                        "credentials_env": {
                            "access_token": "JM_T_ACCESS",
                            "developer_token": "JM_T_DEV",
                        },
                    }
                },
            }
        }
    )

    problems = credential_problems(config.sync, {})

    assert problems == [
        "destination 'ads': credential access_token is missing: the environment variable "
        f"JM_T_ACCESS is empty in {secrets}"
    ]
