"""Write keys: which source a request belongs to.

Keys come from the configuration (``collector.sources``), either written in the file or, better,
named by an environment variable. With no source configured, the collector creates the source
``default`` and keeps its key in a file next to the journal, readable by its owner only. Keys
are secrets: they are never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from journeymap.common.config import CollectorConfig
from journeymap.common.errors import ConfigError

DEFAULT_SOURCE = "default"


def key_file(journal_path: str | Path) -> Path:
    """Return the file that contains the generated key of the source ``default``."""
    return Path(f"{journal_path}.key")


def write_keys(config: CollectorConfig, journal_path: str | Path) -> dict[str, str]:
    """Return the source name of each write key.

    Raises:
        ConfigError: a source names an environment variable that is not set, or two sources
            share one key.
    """
    keys: dict[str, str] = {}
    for name, source in config.sources.items():
        key = source.write_key
        if source.write_key_env is not None:
            key = os.environ.get(source.write_key_env)
            if not key:
                raise ConfigError(
                    f"the environment variable {source.write_key_env} is not set or empty",
                    location=f"collector.sources.{name}.write_key_env",
                    hint="Export it before `journeymap serve`, or set write_key in the file",
                )
        assert key is not None  # the configuration requires one of the two
        if key in keys:
            raise ConfigError(
                f"sources {keys[key]!r} and {name!r} share one write key",
                location="collector.sources",
                hint="Give each source its own key, so that messages are counted per source",
            )
        keys[key] = name
    if not keys:
        keys[default_key(journal_path)] = DEFAULT_SOURCE
    return keys


def default_key(journal_path: str | Path) -> str:
    """Return the key of the source ``default``, creating its key file on first use."""
    path = key_file(journal_path)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def basic_auth_key(header: str | None) -> str | None:
    """Return the user name of an HTTP Basic ``Authorization`` header (the write key)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def source_of(keys: Mapping[str, str], key: str | None) -> str | None:
    """Return the source of a write key, or None for a missing or unknown key."""
    if not key:
        return None
    for known, source in keys.items():
        if secrets.compare_digest(known.encode(), key.encode()):
            return source
    return None
