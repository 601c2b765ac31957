"""The delivery loop: send the outbox's due rows through the platform adapters.

One run (:func:`sync`) queues new conversions, returns rows of expired leases to the
queue, then for each destination takes the due rows in batches of the adapter's
``max_batch`` (or the destination's ``batch_size``):

1. ``adapter.check`` each row; a ``skipped`` or ``rejected`` outcome is recorded and the
   row is not sent; ``adapter.prepare`` the others (such as dropping a stale click id);
2. claim the rest (``sending``, with a lease) and commit;
3. send each request of ``adapter.requests`` with httpx and record every row's outcome and
   one ``sync_attempts`` row per row, in one transaction per request.

A request whose rows are all to be retried (HTTP 429 and 5xx, timeouts and transport
errors) goes back to the queue as a batch: one ``next_attempt_at`` for all its rows, so
that the retry is one request again. The delay is exponential backoff with full jitter: a
random delay between 0 and ``backoff_seconds * 2 ** (attempt - 1)``, capped by
``max_backoff_seconds``, and never shorter than the platform's Retry-After. A Retry-After
(of a 429, a 503 or a row) also pauses the whole destination that long. Rows retried after a
partial failure (other rows of their request succeeded or were rejected) draw their own
delays and go one per request, so one bad row cannot hold back its neighbours. A row that
has used ``max_attempts`` is ``failed``; a rejected row keeps the platform's code and
message.

An ``auth_error`` outcome (the platform rejected the credentials) rejects no row: the rows of
the request go back to the queue without using an attempt, the destination sends nothing
more in this run, and :attr:`SyncReport.stopped` holds the platform's message.

The run waits (with the ``sleep`` it is given) for retries due within
``retry_within_seconds`` and ends when nothing else is due soon; later retries wait for the
next run. Logs carry event ids, counts and platform messages, never credentials, request
bodies or URLs.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from journeymap.activate import ledger
from journeymap.activate.base import Adapter, Outcome, Request, SendRow
from journeymap.activate.credentials import (
    credential_problems,
    masked_credentials,
    redact,
    resolve_credentials,
)
from journeymap.activate.ledger import Change, OutboxRow
from journeymap.activate.outbox import (
    AdapterLookup,
    QueueResult,
    default_adapters,
    queue_conversions,
    require_duckdb,
)
from journeymap.common.config import Config, SyncConfig, SyncDestination
from journeymap.common.errors import ConfigError
from journeymap.common.timeutil import utc_now
from journeymap.store.store import Store

log = logging.getLogger("journeymap.activate")

Progress = Callable[[str, Counter[str]], None]
"""Called after each request with the destination name and its counts so far."""


@dataclass
class SyncReport:
    """The result of one run: counts by destination and row status.

    ``counts[destination]`` counts rows by final status (``sent``, ``matched``,
    ``rejected``, ``skipped``, ``failed``), ``retry`` for each retry scheduled and
    ``requests`` for the HTTP requests made. ``queued`` counts the rows that the run added
    to the outbox, ``released`` the rows whose expired lease it returned to the queue.
    ``skipped_at_queue[destination]`` counts the rows that the run added to the outbox as
    ``skipped`` (such as conversions already outside the window), by code.
    ``planned`` contains a dry run's requests and ``checked`` its check outcomes.
    ``stopped`` maps each destination whose credentials the platform rejected to the
    platform's message (credentials redacted); its rows stay queued. ``warnings`` are notes
    for the user, such as an action kind that no conversion has or, in a dry run, missing
    credentials.
    """

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)
    skipped_at_queue: dict[str, Counter[str]] = field(default_factory=dict)
    released: int = 0
    planned: list[tuple[str, Request]] = field(default_factory=list)
    checked: list[tuple[str, Outcome]] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, destination: str, key: str, number: int = 1) -> None:
        """Add ``number`` to one count of ``destination``."""
        self.counts.setdefault(destination, Counter())[key] += number


@dataclass
class Delivery:
    """The HTTP client, adapters, credentials, clock, sleep and random source of one run.

    Tests replace the clock, the sleep and the random source.

    ``clock`` returns aware UTC datetimes; ``sleep`` takes seconds.
    """

    config: SyncConfig
    client: httpx.Client
    adapters: AdapterLookup
    credentials: dict[str, dict[str, str]]
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    progress: Progress | None = None
    paused_until: dict[str, datetime] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    @property
    def secrets(self) -> list[str]:
        """Return every credential value, for redaction."""
        return [value for values in self.credentials.values() for value in values.values()]

    @property
    def lease(self) -> timedelta:
        """Return how long a claim lasts."""
        seconds = self.config.lease_seconds or self.config.timeout_seconds + 30
        return timedelta(seconds=seconds)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Return the delay before retry number ``attempt`` (1 is the first), in seconds."""
        cap = min(
            self.config.max_backoff_seconds,
            self.config.backoff_seconds * 2.0 ** max(attempt - 1, 0),
        )
        delay = self.rng.random() * cap
        return max(delay, retry_after or 0.0)


def sync(
    store: Store,
    config: Config,
    *,
    destinations: Sequence[str] | None = None,
    client: httpx.Client | None = None,
    adapters: AdapterLookup | None = None,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    wait: bool = True,
) -> SyncReport:
    """Queue new conversions and send every due outbox row once; return the counts.

    ``destinations`` limits the run to some destination names. With ``wait`` False the run
    does not wait for retries (the periodic sync of ``journeymap serve`` uses this). The
    other keywords replace the HTTP client, the adapter registry, the clock, the sleep, the
    random source and the environment, for tests.

    Raises:
        ConfigError: a destination is unknown, or a credential is missing (before anything
            is sent).
        StoreError: the store is not a DuckDB store.
    """
    require_duckdb(store)
    chosen = chosen_destinations(config, destinations)
    lookup = adapters or default_adapters()
    credentials = resolve_credentials(config.sync, environ, chosen)
    check_credentials(config, chosen, lookup, credentials)
    now = clock or utc_now
    report = SyncReport()

    queued = queue_conversions(store, _only(config, chosen), now=now(), adapters=lookup)
    _add_queue_result(report, queued)
    released = ledger.release_expired(store, now())
    report.released = len(released)
    if released:
        log.warning(
            "%d rows were left sending by a run that stopped; sending them again: %s",
            len(released),
            ", ".join(released[:20]),
        )

    own_client = client is None
    http = client or httpx.Client(timeout=config.sync.timeout_seconds)
    delivery = Delivery(
        config=config.sync,
        client=http,
        adapters=lookup,
        credentials=credentials,
        clock=now,
        sleep=sleep or time.sleep,
        rng=rng or random.Random(),
        progress=progress,
    )
    try:
        _run(store, config, chosen, delivery, report, wait=wait)
    finally:
        if own_client:
            http.close()
    return report


def _add_queue_result(report: SyncReport, queued: QueueResult) -> None:
    """Copy what queueing added (rows to send, rows skipped by code, warnings) to ``report``."""
    report.queued = dict(queued.queued)
    report.skipped_at_queue = {name: Counter(codes) for name, codes in queued.skipped_codes.items()}
    report.warnings.extend(queued.warnings)


def check_credentials(
    config: Config,
    names: Sequence[str],
    adapters: AdapterLookup,
    credentials: Mapping[str, Mapping[str, str]],
) -> None:
    """Raise when an adapter lacks a credential, before anything is claimed or sent.

    Each adapter checks its credentials when it builds requests, so a request for a
    placeholder row is built and thrown away.

    Raises:
        ConfigError: a destination's adapter needs a credential that is not configured.
    """
    for name in names:
        destination = config.sync.destinations[name]
        adapter = adapters(destination.platform)
        probe = SendRow(
            event_id="0" * 32,
            destination=name,
            conversion_id="credential-check",
            kind=next(iter(destination.actions)),
            action=next(iter(destination.actions.values())),
            occurred_at=utc_now(),
        )
        try:
            adapter.requests([probe], destination, credentials.get(name, {}))
        except ConfigError:
            raise
        except Exception:
            # Only a missing credential matters here; the placeholder row may fail otherwise.
            log.debug("the credential check of %s built no request", name, exc_info=True)


def chosen_destinations(config: Config, names: Sequence[str] | None) -> list[str]:
    """Return the destination names of a run, checking that each one is configured.

    Raises:
        ConfigError: a name is not a configured destination.
    """
    known = list(config.sync.destinations)
    if not names:
        return known
    for name in names:
        if name not in known:
            raise ConfigError(
                f"unknown destination {name!r}",
                location="--destination",
                hint=f"Configured destinations: {', '.join(known) or 'none'}",
            )
    return list(names)


def _only(config: Config, names: Sequence[str]) -> Config:
    """Return ``config`` with only the destinations ``names``."""
    if list(names) == list(config.sync.destinations):
        return config
    kept = {name: config.sync.destinations[name] for name in names}
    sync_config = config.sync.model_copy(update={"destinations": kept})
    return config.model_copy(update={"sync": sync_config})


def _run(
    store: Store,
    config: Config,
    names: Sequence[str],
    delivery: Delivery,
    report: SyncReport,
    *,
    wait: bool,
) -> None:
    """Send batches until no row is due, waiting for retries due soon when ``wait``."""
    horizon = timedelta(seconds=delivery.config.retry_within_seconds)
    while True:
        sent_any = False
        for name in names:
            now = delivery.clock()
            if name in delivery.stopped or delivery.paused_until.get(name, now) > now:
                continue
            destination = config.sync.destinations[name]
            adapter = delivery.adapters(destination.platform)
            rows = ledger.due_rows(store, name, now, batch_size(adapter, destination))
            if rows:
                sent_any = True
                send_batch(store, name, destination, adapter, rows, delivery, report)
        if sent_any:
            continue

        now = delivery.clock()
        wake = _next_wake(store, names, delivery)
        if not wait or wake is None or wake - now > horizon:
            break
        delay = max((wake - now).total_seconds(), 0.0)
        log.info("waiting %.1f s for the next retry", delay)
        delivery.sleep(delay)


def _next_wake(store: Store, names: Sequence[str], delivery: Delivery) -> datetime | None:
    """Return when the next queued row of ``names`` is due, respecting paused destinations."""
    wakes = []
    for name in names:
        if name in delivery.stopped:
            continue
        due = ledger.next_due_of(store, name)
        if due is None:
            continue
        paused = delivery.paused_until.get(name)
        wakes.append(max(due, paused) if paused is not None else due)
    return min(wakes, default=None)


def batch_size(adapter: Adapter, destination: SyncDestination) -> int:
    """Return the rows per request: the destination's ``batch_size`` within the adapter's limit."""
    if destination.batch_size is None:
        return adapter.max_batch
    return min(destination.batch_size, adapter.max_batch)


def send_batch(
    store: Store,
    name: str,
    destination: SyncDestination,
    adapter: Adapter,
    rows: Sequence[OutboxRow],
    delivery: Delivery,
    report: SyncReport,
) -> None:
    """Check, claim and send one batch of due rows of one destination."""
    now = delivery.clock()
    sendable: list[OutboxRow] = []
    refused: list[Change] = []
    for item in rows:
        outcome = adapter.check(item.row, destination, now)
        if outcome is None:
            sendable.append(replace(item, row=adapter.prepare(item.row, destination, now)))
            continue
        status = "rejected" if outcome.status == "rejected" else "skipped"
        refused.append(
            Change(
                item.row.event_id,
                status,
                outcome.code,
                redact(outcome.message, delivery.secrets),
            )
        )
        report.add(name, status)
    if refused:
        ledger.record_changes(store, refused, now)
        log.info(
            "%s: %d rows not sent after the check: %s",
            name,
            len(refused),
            ", ".join(f"{change.event_id} {change.status} ({change.code})" for change in refused),
        )
    if not sendable:
        return

    claimed = ledger.claim(
        store, [item.row.event_id for item in sendable], now, now + delivery.lease
    )
    batch = [item for item in sendable if item.row.event_id in claimed]
    if not batch:
        return
    try:
        requests = adapter.requests(
            [item.row for item in batch], destination, delivery.credentials.get(name, {})
        )
    except Exception:
        # Nothing was sent: the rows go back to the queue before the error stops the run.
        ledger.unclaim(store, [item.row.event_id for item in batch], now)
        raise
    attempts = {item.row.event_id: item.attempts + 1 for item in batch}
    alone = {item.row.event_id for item in batch if item.send_alone}
    for index, request in enumerate(requests):
        if name in delivery.stopped:
            # The platform rejected the credentials: the batch's other requests stay unsent.
            unsent = [event for later in requests[index:] for event in later.event_ids]
            ledger.unclaim(store, unsent, now)
            break
        send_request(store, name, adapter, request, attempts, alone, delivery, report)


def send_request(
    store: Store,
    name: str,
    adapter: Adapter,
    request: Request,
    attempts: Mapping[str, int],
    alone: set[str],
    delivery: Delivery,
    report: SyncReport,
) -> None:
    """Send one request and record every row's outcome and attempt in one transaction."""
    started = delivery.clock()
    clock_start = time.monotonic()
    http_status: int | None = None
    try:
        response = delivery.client.request(
            request.method, request.url, headers=dict(request.headers), **_body(request)
        )
    except httpx.TimeoutException:
        outcomes = _all(
            request, "timeout", f"no response within {delivery.config.timeout_seconds:g} s"
        )
    except httpx.TransportError as exc:
        outcomes = _all(request, "transport_error", f"{type(exc).__name__}: {exc}")
    else:
        http_status = response.status_code
        outcomes = adapter.outcomes(
            request, response.status_code, response.content, response.headers
        )
        outcomes = _complete(request, outcomes, response)
    duration_ms = (time.monotonic() - clock_start) * 1000
    outcomes = [
        Outcome(
            o.event_id,
            o.status,
            o.code,
            redact(o.message, delivery.secrets),
            o.retry_after,
        )
        for o in outcomes
    ]

    now = delivery.clock()
    trail = ledger.attempt_rows(
        outcomes, dict(attempts), at=started, http_status=http_status, duration_ms=duration_ms
    )
    if any(o.status == "auth_error" for o in outcomes):
        _stop_destination(store, name, outcomes, trail, now, delivery, report)
        return

    partial = any(o.status == "retry" for o in outcomes) and any(
        o.status != "retry" for o in outcomes
    )
    batch_delay = None if partial else _batch_delay(outcomes, attempts, delivery)
    changes = [
        _change(
            outcome,
            attempts.get(outcome.event_id, 1),
            partial or outcome.event_id in alone,
            now,
            delivery,
            delay=batch_delay,
        )
        for outcome in outcomes
    ]
    throttled = [o.retry_after for o in outcomes if o.status == "retry" and o.retry_after]
    if throttled:
        delivery.paused_until[name] = now + timedelta(seconds=max(throttled))
        log.info("%s: pausing the destination for %.1f s (Retry-After)", name, max(throttled))

    ledger.record_changes(store, changes, now, trail)

    report.add(name, "requests")
    for change in changes:
        report.add(name, "retry" if change.status == "queued" else change.status)
    _log_request(name, http_status, outcomes, changes)
    if delivery.progress is not None:
        delivery.progress(name, report.counts[name])


def _batch_delay(
    outcomes: Sequence[Outcome], attempts: Mapping[str, int], delivery: Delivery
) -> float | None:
    """Return one backoff delay for a request whose rows are all retried, else None.

    One draw for the whole request keeps its rows together: they come due at the same time
    and go out again as one request.
    """
    if not outcomes or any(o.status != "retry" for o in outcomes):
        return None
    attempt = max(attempts.get(o.event_id, 1) for o in outcomes)
    retry_after = max((o.retry_after or 0.0 for o in outcomes), default=0.0)
    return delivery.backoff(attempt, retry_after or None)


def _stop_destination(
    store: Store,
    name: str,
    outcomes: Sequence[Outcome],
    trail: Any,
    now: datetime,
    delivery: Delivery,
    report: SyncReport,
) -> None:
    """Put the rows of a request whose credentials were rejected back in the queue, and
    stop the destination for the rest of the run."""
    failure = next(o for o in outcomes if o.status == "auth_error")
    ledger.return_to_queue(
        store, [o.event_id for o in outcomes], now, trail, failure.code, failure.message
    )
    platform = delivery.config.destinations[name].platform
    message = (
        f"destination {name!r}: {platform} rejected the credentials "
        f"({failure.code or 'no code'}: {failure.message or 'no message'}); "
        f"{len(outcomes)} rows stay queued. Fix the credentials in credentials_env and run "
        "journeymap sync again"
    )
    delivery.stopped.add(name)
    report.stopped[name] = message
    report.add(name, "requests")
    log.error("%s", message)
    if delivery.progress is not None:
        delivery.progress(name, report.counts[name])


def _body(request: Request) -> dict[str, Any]:
    """Return the httpx keyword of the request's body: raw ``content`` or ``json``."""
    content = getattr(request, "content", None)
    if content is not None:
        return {"content": content}
    if request.json is None:
        return {}
    return {"json": request.json}


def _all(request: Request, code: str, message: str) -> list[Outcome]:
    return [Outcome(event_id, "retry", code, message) for event_id in request.event_ids]


def _complete(
    request: Request, outcomes: Sequence[Outcome], response: httpx.Response
) -> list[Outcome]:
    """Return one outcome per row of ``request``, filling gaps and the Retry-After delay.

    A row that the adapter gave no outcome for is retried. A retry of a 429 or 503 response
    without its own delay takes the response's Retry-After header.
    """
    header_delay = retry_after_seconds(response.headers.get("retry-after"))
    by_id = {outcome.event_id: outcome for outcome in outcomes}
    complete = []
    for event_id in request.event_ids:
        outcome = by_id.get(event_id)
        if outcome is None:
            outcome = Outcome(
                event_id,
                "retry",
                str(response.status_code),
                "the response has no result for the row",
            )
        if outcome.status == "retry" and outcome.retry_after is None and header_delay is not None:
            outcome = Outcome(
                outcome.event_id, "retry", outcome.code, outcome.message, header_delay
            )
        complete.append(outcome)
    return complete


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Return the delay of a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - (now or utc_now())).total_seconds(), 0.0)


def _change(
    outcome: Outcome,
    attempt: int,
    alone: bool,
    now: datetime,
    delivery: Delivery,
    *,
    delay: float | None = None,
) -> Change:
    """Return the new state of a row after ``outcome`` of its attempt number ``attempt``.

    ``delay`` is the batch's retry delay in seconds; without it the row draws its own.
    """
    if outcome.status != "retry":
        return Change(outcome.event_id, outcome.status, outcome.code, outcome.message)
    if attempt >= delivery.config.max_attempts:
        message = f"gave up after {attempt} attempts: {outcome.message or outcome.code}"
        return Change(outcome.event_id, "failed", outcome.code, message)
    if delay is None:
        delay = delivery.backoff(attempt, outcome.retry_after)
    return Change(
        outcome.event_id,
        "queued",
        outcome.code,
        outcome.message,
        next_attempt_at=now + timedelta(seconds=delay),
        send_alone=alone,
    )


def _log_request(
    name: str, http_status: int | None, outcomes: Sequence[Outcome], changes: Sequence[Change]
) -> None:
    statuses = Counter(change.status for change in changes)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    log.info("%s: HTTP %s for %d rows: %s", name, http_status or "-", len(changes), summary)
    for outcome, change in zip(outcomes, changes, strict=True):
        if change.status in ("queued", "failed", "rejected"):
            log.warning(
                "%s: event %s %s (%s): %s",
                name,
                outcome.event_id,
                "retry" if change.status == "queued" else change.status,
                outcome.code,
                outcome.message,
            )


def sync_dry_run(
    store: Store,
    config: Config,
    *,
    destinations: Sequence[str] | None = None,
    adapters: AdapterLookup | None = None,
    clock: Callable[[], datetime] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SyncReport:
    """Return the requests that :func:`sync` would send now, writing nothing.

    The requests carry :data:`~journeymap.activate.credentials.MASK` in place of every
    credential, and the rows are those queued in the outbox and those that a run would
    queue. Check outcomes (rows that would be skipped or rejected) are in ``checked``, and
    ``warnings`` names each missing credential, on which a real run would stop.
    ``environ`` replaces the environment, for tests.

    Raises:
        ConfigError: a destination is unknown.
        StoreError: the store is not a DuckDB store.
    """
    require_duckdb(store)
    chosen = chosen_destinations(config, destinations)
    lookup = adapters or default_adapters()
    now = (clock or utc_now)()
    credentials = masked_credentials(config.sync)
    report = SyncReport()
    problems = credential_problems(config.sync, environ, chosen)
    if problems:
        report.warnings.append(
            "a real run would stop before sending anything: " + "; ".join(problems)
        )
    new = queue_conversions(store, _only(config, chosen), now=now, adapters=lookup, write=False)
    _add_queue_result(report, new)
    fresh: dict[str, list[SendRow]] = {}
    if new.rows is not None:
        for item in ledger.rows_of_table(new.rows):
            fresh.setdefault(item.row.destination, []).append(item.row)

    for name in chosen:
        destination = config.sync.destinations[name]
        adapter = lookup(destination.platform)
        rows = [item.row for item in ledger.queued_rows(store, name)] + fresh.get(name, [])
        sendable = []
        for row in rows:
            outcome = adapter.check(row, destination, now)
            if outcome is None:
                sendable.append(adapter.prepare(row, destination, now))
            else:
                report.checked.append((name, outcome))
                report.add(name, "rejected" if outcome.status == "rejected" else "skipped")
        size = batch_size(adapter, destination)
        for start in range(0, len(sendable), size):
            chunk = sendable[start : start + size]
            for request in adapter.requests(chunk, destination, credentials.get(name, {})):
                report.planned.append((name, request))
                report.add(name, "requests")
    return report
