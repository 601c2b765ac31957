"""Sign-in: one configured password (or token), a signed session cookie, or no sign-in locally.

The password comes from the environment variable that ``dashboard.password_env`` names; it is
compared in constant time and never logged. A successful sign-in sets the session cookie
``jm_session`` (HttpOnly, SameSite=Lax, Secure over HTTPS) whose value is an expiry time, a
random nonce and their HMAC-SHA256 under a key drawn when the server starts, so sessions end
when the server restarts. Scripts can instead send ``Authorization: Bearer <password>`` to the
REST API.

Failed sign-ins (a wrong password at ``/login`` or a wrong bearer token) are logged with the
client's address, never the text tried, and each one waits half a second. A client with
:data:`FAILURE_LIMIT` failures within :data:`FAILURE_WINDOW` seconds is refused with 429 until
the oldest of them leaves the window, so guessing the password from one address is slow.

``auth: none`` turns sign-in off and is accepted only when the server listens on a loopback
address (127.0.0.0/8, ::1 or ``localhost``), because everyone who can reach the port would
otherwise see the data.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from journeymap.common.config import DashboardConfig
from journeymap.common.errors import ConfigError

log = logging.getLogger("journeymap.web")

COOKIE = "jm_session"

FAILURE_DELAY = 0.5
"""Seconds that each failed sign-in waits before its answer."""
FAILURE_LIMIT = 10
"""Failed sign-ins of one client address that block it."""
FAILURE_WINDOW = 300.0
"""Seconds over which failed sign-ins count."""


@dataclass
class FailureThrottle:
    """Failed sign-ins by client address; a client with too many recent ones is blocked."""

    limit: int = FAILURE_LIMIT
    window: float = FAILURE_WINDOW
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, client: str, now: float | None = None) -> float:
        """Return the seconds until ``client`` may try again (0 when it is not blocked)."""
        moment = time.monotonic() if now is None else now
        recent = self._recent(client, moment)
        if len(recent) < self.limit:
            return 0.0
        return max(0.0, recent[0] + self.window - moment)

    def fail(self, client: str, now: float | None = None) -> None:
        """Count one failed sign-in of ``client``."""
        moment = time.monotonic() if now is None else now
        self._recent(client, moment).append(moment)
        log.warning("a dashboard sign-in failed from %s", client)

    def _recent(self, client: str, moment: float) -> deque[float]:
        recent = self.failures.setdefault(client, deque())
        while recent and recent[0] <= moment - self.window:
            recent.popleft()
        return recent


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is a loopback address or ``localhost``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Auth:
    """The sign-in settings of one server. ``password`` is None when it is not configured."""

    mode: str
    password: str | None
    session_seconds: float
    password_env: str
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    throttle: FailureThrottle = field(default_factory=FailureThrottle, repr=False)

    @classmethod
    def from_config(cls, settings: DashboardConfig, *, host: str) -> Auth:
        """Read the password from the environment and check ``auth: none`` against ``host``.

        Raises:
            ConfigError: ``auth`` is ``none`` and ``host`` is not a loopback address.
        """
        if settings.auth == "none" and not is_loopback(host):
            raise ConfigError(
                f"dashboard.auth 'none' is refused on the address {host!r}, which is not "
                "loopback: anyone who reaches the port would read the data",
                location="dashboard.auth",
                hint=f"Listen on 127.0.0.1, or sign in with a password in ${settings.password_env}",
            )
        password = os.environ.get(settings.password_env) or None
        if settings.auth == "password" and password is None:
            log.warning(
                "the dashboard is locked: set the environment variable %s to its password",
                settings.password_env,
            )
        if settings.auth == "none":
            log.warning("dashboard sign-in is off (auth: none); it listens on %s only", host)
        return cls(
            mode=settings.auth,
            password=password,
            session_seconds=settings.session_hours * 3600,
            password_env=settings.password_env,
        )

    @property
    def enabled(self) -> bool:
        """Whether requests must be signed in."""
        return self.mode != "none"

    @property
    def configured(self) -> bool:
        """Whether sign-in can succeed: it is off, or a password is set."""
        return not self.enabled or self.password is not None

    def check_password(self, given: str) -> bool:
        """Return whether ``given`` is the password, comparing in constant time."""
        if self.password is None:
            return False
        return hmac.compare_digest(given.encode(), self.password.encode())

    def issue(self) -> str:
        """Return a new session cookie value."""
        expires = int(time.time() + self.session_seconds)
        payload = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload)}"

    def valid_session(self, value: str | None) -> bool:
        """Return whether a cookie value is a session of this server that has not expired."""
        if not value:
            return False
        payload, _, signature = value.rpartition(".")
        expires, _, _ = payload.partition(".")
        if not (payload and expires.isdigit()):
            return False
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        return int(expires) > time.time()

    def bearer(self, connection: HTTPConnection) -> str | None:
        """Return the bearer token of a request, or None when it sends none."""
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def signed_in(self, connection: HTTPConnection) -> bool:
        """Return whether a request may read the dashboard: off, a session, or a bearer token."""
        if not self.enabled:
            return True
        if self.valid_session(connection.cookies.get(COOKIE)):
            return True
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and bool(token) and self.check_password(token.strip())

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()


def safe_next(target: str | None) -> str:
    """Return a same-site path to go to after sign-in; anything else becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
