"""The ad platforms' conversion APIs, one adapter per platform, looked up by name.

- ``meta``: Meta Conversions API, the Graph API's ``{pixel}/events`` (``MetaAdapter``);
- ``google``: Google Ads ``uploadClickConversions`` (``GoogleClickAdapter``);
- ``google_data_manager``: Data Manager API ``events:ingest`` (``GoogleDataManagerAdapter``);
- ``linkedin``: LinkedIn Conversions API, ``BATCH_CREATE`` (``LinkedInAdapter``);
- ``microsoft``: Microsoft Advertising ``ApplyOfflineConversions`` (``MicrosoftAdapter``).

Each adapter's module docstring lists the credential names it reads and what it sends.
Every adapter keeps credentials out of :attr:`Request.url`; :func:`redact` masks them in the
headers and the body, for printing a request (``journeymap sync --dry-run``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from journeymap.activate.adapters.google import GoogleClickAdapter, GoogleDataManagerAdapter
from journeymap.activate.adapters.linkedin import LinkedInAdapter
from journeymap.activate.adapters.meta import MetaAdapter
from journeymap.activate.adapters.microsoft import MicrosoftAdapter
from journeymap.activate.base import Adapter, Request
from journeymap.common.errors import ConfigError

__all__ = [
    "ADAPTERS",
    "GoogleClickAdapter",
    "GoogleDataManagerAdapter",
    "LinkedInAdapter",
    "MetaAdapter",
    "MicrosoftAdapter",
    "adapter_for",
    "redact",
]

ADAPTERS: dict[str, Adapter] = {
    "meta": MetaAdapter(),
    "google": GoogleClickAdapter(),
    "google_data_manager": GoogleDataManagerAdapter(),
    "linkedin": LinkedInAdapter(),
    "microsoft": MicrosoftAdapter(),
}
"""Platform name (``SyncDestination.platform``) -> its adapter."""

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "developer-token"})
"""Request headers that carry a credential (names in lower case)."""
SECRET_PARAMETERS = frozenset({"access_token", "appsecret_proof"})
"""Query parameters and JSON body keys that would carry a credential."""
_SECRET_XML = re.compile(
    rb"(<(?:[\w.-]+:)?(AuthenticationToken|DeveloperToken)\b[^>]*>)([^<]*)(</(?:[\w.-]+:)?\2>)"
)


def adapter_for(platform: str) -> Adapter:
    """Return the adapter of ``platform``.

    Raises:
        ConfigError: no adapter has that name; the message lists the names there are.
    """
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise ConfigError(
            f"unknown platform {platform!r}",
            location="sync.destinations.*.platform",
            hint=f"Use one of {', '.join(sorted(ADAPTERS))}",
        ) from None


def redact(request: Request) -> Request:
    """Return a copy of ``request`` safe to print: credential headers, query parameters, JSON
    keys and SOAP header elements masked as ``***`` (an ``Authorization`` scheme is kept)."""
    headers = {name: _mask_header(name, value) for name, value in request.headers.items()}

    parts = urlsplit(request.url)
    query = [
        (name, MASK if name in SECRET_PARAMETERS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    url = urlunsplit(parts._replace(query=urlencode(query, safe="*"))) if query else request.url

    body = request.json
    if isinstance(body, dict):
        body = {key: MASK if key in SECRET_PARAMETERS else value for key, value in body.items()}

    content = request.content
    if content is not None:
        content = _SECRET_XML.sub(rb"\1" + MASK.encode() + rb"\4", content)

    return replace(request, url=url, headers=headers, json=body, content=content)


def _mask_header(name: str, value: str) -> str:
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, space, _ = value.partition(" ")
    return f"{scheme} {MASK}" if space and scheme.lower() in {"bearer", "oauth"} else MASK
