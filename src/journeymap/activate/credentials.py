"""Credentials of the sync destinations: environment variables, else the secrets file.

``sync.destinations.<name>.credentials_env`` maps each credential (``access_token``,
``developer_token``, ...) to the environment variable that contains it. A variable that is
not set is looked up in ``sync.secrets_file``, a YAML mapping of the same variable names to
values. Every credential is resolved before the first request, so missing ones stop the
run before anything is sent, all named in one error. Values are never logged; :func:`redact`
removes them from text that goes to logs or the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from journeymap.common.config import SYNC_CREDENTIALS, SyncConfig
from journeymap.common.errors import ConfigError

MASK = "****"
"""What stands in for a credential in dry-run output and redacted text."""

MIN_SECRET_LENGTH = 4
"""Shorter values are not redacted from text: they would mask ordinary words and digits."""


def read_secrets_file(path: Path) -> dict[str, str]:
    """Return the variable name -> value mapping of a secrets file.

    Raises:
        ConfigError: the file is missing, is not YAML, or is not a mapping of names to text.
    """
    if not path.is_file():
        raise ConfigError(
            "secrets file not found",
            source=str(path),
            hint="Create it, or remove sync.secrets_file and set the environment variables",
        )
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(
            "not a valid YAML file", source=str(path), hint="Write one NAME: value line per secret"
        ) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            "the top level must be a mapping of variable names to values",
            source=str(path),
            hint="Write one NAME: value line per secret",
        )
    secrets: dict[str, str] = {}
    for name, value in loaded.items():
        if not isinstance(value, str | int):
            raise ConfigError(
                "the value must be text",
                source=str(path),
                location=str(name),
                hint="Quote the value",
            )
        secrets[str(name)] = str(value)
    return secrets


def resolve_credentials(
    sync: SyncConfig,
    environ: Mapping[str, str] | None = None,
    destinations: Iterable[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Return each destination's credentials by name.

    ``destinations`` limits the lookup to some destination names (default: every one).

    Raises:
        ConfigError: a credential is missing; the message lists every missing one, each
            with its destination, credential name and variable.
    """
    resolved, problems = _lookup(sync, environ, destinations)
    if problems:
        where = (
            f"or add them to {sync.secrets_file}"
            if sync.secrets_file is not None
            else "or name a sync.secrets_file that contains them"
        )
        raise ConfigError(
            f"{len(problems)} credentials are missing: " + "; ".join(problems),
            location="sync.destinations.*.credentials_env",
            hint=f"Set the variables, {where}",
        )
    return resolved


def credential_problems(
    sync: SyncConfig,
    environ: Mapping[str, str] | None = None,
    destinations: Iterable[str] | None = None,
) -> list[str]:
    """Return one sentence per missing credential, empty when every one is there.

    A credential is missing when its platform requires it and ``credentials_env`` does not
    name it, or when its variable is unset or empty in the environment and the secrets file.
    """
    return _lookup(sync, environ, destinations)[1]


def _lookup(
    sync: SyncConfig,
    environ: Mapping[str, str] | None,
    destinations: Iterable[str] | None,
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Return the credentials found by destination and the sentences of the missing ones."""
    env = os.environ if environ is None else environ
    secrets: dict[str, str] | None = None
    chosen = list(sync.destinations) if destinations is None else list(destinations)
    resolved: dict[str, dict[str, str]] = {}
    problems: list[str] = []

    for name in chosen:
        destination = sync.destinations[name]
        required, _ = SYNC_CREDENTIALS[destination.platform]
        for credential in required:
            if credential not in destination.credentials_env:
                problems.append(
                    f"destination {name!r}: credential {credential} is not in credentials_env "
                    f"(map it to an environment variable)"
                )

        values: dict[str, str] = {}
        for credential, variable in destination.credentials_env.items():
            value = env.get(variable)
            state = "is not set" if value is None else "is empty"
            if not value and sync.secrets_file is not None:
                if secrets is None:
                    secrets = read_secrets_file(sync.secrets_file)
                value = secrets.get(variable)
                if value is not None and not value.strip():
                    state = f"is empty in {sync.secrets_file}"
            if not value:
                problems.append(
                    f"destination {name!r}: credential {credential} is missing: the "
                    f"environment variable {variable} {state}"
                )
                continue
            values[credential] = value
        resolved[name] = values
    return resolved, problems


def masked_credentials(sync: SyncConfig) -> dict[str, dict[str, str]]:
    """Return each destination's credential names with :data:`MASK` as every value.

    The names are those of ``credentials_env`` and those the platform requires, so that a
    dry run builds its requests even when a credential is missing. It needs no secret and
    prints none.
    """
    masked: dict[str, dict[str, str]] = {}
    for name, destination in sync.destinations.items():
        required, _ = SYNC_CREDENTIALS[destination.platform]
        masked[name] = dict.fromkeys([*required, *destination.credentials_env], MASK)
    return masked


def redact(text: str | None, secrets: Iterable[str]) -> str | None:
    """Return ``text`` with every secret value in it replaced by :data:`MASK`."""
    if text is None:
        return None
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text
