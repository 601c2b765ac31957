"""Load-test the collector and check that it loses no acknowledged event when it is killed.

Usage::

    python benchmarks/collector.py load --events 200000 --batch-size 100 --concurrency 4,8,16
    python benchmarks/collector.py crash --runs 5 --seed 1

Both modes start ``journeymap serve`` as a subprocess on a free loopback port, with a
temporary folder for the store and the journal and a YAML configuration that names one source
whose write key is passed in an environment variable. The load generator runs in this process
(so on a two-core machine the server and the generator each get about one core): asyncio
workers, each with one keep-alive connection, send ``POST /v1/batch`` requests of
``--batch-size`` track messages with unique messageIds.

``load`` times ``--events`` events at each ``--concurrency`` (a fresh server each) and reports
events per second, the latency of each request (p50, p90, p99, max) and errors. It also
reports the CPU time of the generator and of the server per wall second, which shows which
side is the bottleneck, and the server's CPU milliseconds per request.

``crash`` sends load, SIGKILLs the server after a random (seeded) delay, records every
messageId whose request got a 200 response before the kill, restarts the server on the same
journal, resends the batches that got no response (as a client would), and reads the journal:
every acknowledged messageId must be there, and no (source, messageId) twice. The exit status
is 1 when any run lost or duplicated an acknowledged event.

The default HTTP client writes HTTP/1.1 on raw asyncio streams, because it costs less CPU than
httpx2 and the generator shares the machine with the server; ``--client httpx2`` uses
``httpx2.AsyncClient`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SOURCE = "bench"
KEY_VARIABLE = "JOURNEYMAP_BENCH_WRITE_KEY"
READY_TIMEOUT = 60.0


# --- The server under test -------------------------------------------------------------------


@dataclass
class Workspace:
    """A temporary folder with the configuration, store, journal and server log of one run."""

    folder: Path
    write_key: str
    drain_seconds: float

    @property
    def config(self) -> Path:
        return self.folder / "journeymap.yaml"

    @property
    def journal(self) -> Path:
        return self.folder / "collector.journal"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def write_config(self) -> None:
        """Write a configuration with one source whose key is read from the environment."""
        self.config.write_text(
            "\n".join(
                [
                    f"store: {json.dumps(str(self.folder / 'store.duckdb'))}",
                    "collector:",
                    f"  journal: {json.dumps(str(self.journal))}",
                    f"  drain_seconds: {self.drain_seconds}",
                    "  sources:",
                    f"    {SOURCE}:",
                    f"      write_key_env: {KEY_VARIABLE}",
                    "",
                ]
            ),
            encoding="utf-8",
        )


@contextlib.contextmanager
def workspace(keep: bool, drain_seconds: float) -> Iterator[Workspace]:
    """Create a workspace, and remove it afterwards unless ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix="journeymap-bench-"))
    space = Workspace(folder, write_key=uuid.uuid4().hex, drain_seconds=drain_seconds)
    space.write_config()
    try:
        yield space
    finally:
        if keep:
            print(f"kept the workspace {folder}", file=sys.stderr)
        else:
            for path in sorted(folder.rglob("*"), reverse=True):
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
            folder.rmdir()


def free_port() -> int:
    """Return a loopback port that is free now (another process could take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """One ``journeymap serve`` subprocess."""

    def __init__(self, space: Workspace, *, profile: Path | None = None) -> None:
        self.space = space
        self.port = free_port()
        environment = {**os.environ, KEY_VARIABLE: space.write_key}
        # cProfile covers the event-loop thread only, not the journal writer thread.
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
        command = [
            sys.executable,
            *profiler,
            "-m",
            "journeymap",
            "serve",
            "--config",
            str(space.config),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        with space.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/ready`` until it returns 200.

        Raises:
            RuntimeError: the server exited or was not ready within ``timeout`` seconds; the
                message contains the end of its log.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {self.process.returncode}:\n{self.log_tail()}"
                )
            if http_status(self.port, "/ready") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the server was not ready within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Send SIGKILL, as the OOM killer would, and reap the process.

        The kernel keeps what the server wrote, so this tests acknowledgement order and
        atomicity, not durability across a power cut (which is what ``synchronous=FULL`` adds).
        """
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server with SIGINT (a graceful uvicorn shutdown), else SIGKILL."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"the server ignored SIGINT for {timeout} s; killing it", file=sys.stderr)
            self.kill()

    def cpu_seconds(self) -> float:
        """Return the user and system CPU time of the server process so far (Linux only)."""
        # Fields 14 and 15 of /proc/<pid>/stat, after the parenthesised command name.
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        text = self.space.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def http_status(port: int, path: str) -> int | None:
    """Return the status of ``GET path``, or None when the server does not respond."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as connection:
            connection.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            status_line = connection.makefile("rb").readline()
    except OSError:
        return None
    parts = status_line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


# --- Payloads ---------------------------------------------------------------------------------

_MESSAGE = (
    '{"type":"track","event":"Feature Used","userId":"user-%(user)d",'
    '"anonymousId":"anon-%(user)d","messageId":"%(id)s","timestamp":"2026-03-01T12:00:00.000Z",'
    '"properties":{"feature":"reports","plan":"pro","revenue":%(revenue)d},'
    '"context":{"library":{"name":"journeymap-bench","version":"1"},'
    '"page":{"url":"https://www.example.com/app?utm_source=newsletter&utm_medium=email'
    '&utm_campaign=march"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64)"},'
    '"integrations":{}}'
)


@dataclass
class Batch:
    """One request body and the messageIds it carries."""

    message_ids: list[str]
    body: bytes


def make_batch(tag: str, index: int, size: int) -> Batch:
    """Build batch ``index`` of ``size`` track messages with ids unique to ``tag``."""
    ids = [f"{tag}-{index:07d}-{position:04d}" for position in range(size)]
    messages = ",".join(
        _MESSAGE % {"user": (index * size + position) % 5000, "id": message_id, "revenue": index}
        for position, message_id in enumerate(ids)
    )
    body = f'{{"sentAt":"2026-03-01T12:00:01.000Z","batch":[{messages}]}}'.encode()
    return Batch(ids, body)


def batches_of(prepared: list[Batch]) -> Callable[[int], Batch | None]:
    """Return a batch source that yields ``prepared`` in order, then None."""

    def batch(index: int) -> Batch | None:
        return prepared[index] if index < len(prepared) else None

    return batch


# --- HTTP clients -----------------------------------------------------------------------------


class ProtocolError(Exception):
    """The server's response is not an HTTP/1.1 response that this client can read."""


class RawConnection:
    """A keep-alive HTTP/1.1 connection on asyncio streams that posts batches."""

    def __init__(self, port: int, write_key: str) -> None:
        self.port = port
        credentials = base64.b64encode(f"{write_key}:".encode()).decode()
        self.head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Basic {credentials}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one batch and return the status and body of the response."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await self.writer.drain()

        status_line = await self.reader.readline()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"invalid status line {status_line[:80]!r}")
        length = None
        closing = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        if length is None:
            raise ProtocolError("the response has no Content-Length header")
        content = await self.reader.readexactly(length)
        if closing:
            await self.close()
        return int(parts[1]), content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class Httpx2Connection:
    """The same interface on an ``httpx2.AsyncClient`` with one keep-alive connection."""

    def __init__(self, port: int, write_key: str) -> None:
        import httpx2

        self.url = f"http://{HOST}:{port}/v1/batch"
        self.client = httpx2.AsyncClient(
            auth=(write_key, ""),
            headers={"Content-Type": "application/json"},
            limits=httpx2.Limits(max_connections=1),
            timeout=60,
        )

    async def post(self, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(self.url, content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


Connection = RawConnection | Httpx2Connection
CLIENTS: dict[str, Callable[[int, str], Connection]] = {
    "raw": RawConnection,
    "httpx2": Httpx2Connection,
}


# --- The load generator -----------------------------------------------------------------------


@dataclass
class Load:
    """The requests of one load run and the server's responses."""

    latencies: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    unanswered: list[Batch] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    seconds: float = 0.0
    generator_cpu_seconds: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def send_load(
    port: int,
    write_key: str,
    batches: Callable[[int], Batch | None],
    *,
    concurrency: int,
    client: str,
    stop_on_error: bool,
    progress_every: float,
    total_events: int,
    killer: Callable[[], Coroutine[Any, Any, None]] | None = None,
    rate: float | None = None,
) -> Load:
    """Send batches from ``concurrency`` workers until ``batches`` returns None.

    With ``rate`` (events per second) the load is an open loop: request ``i`` is due at
    ``i * batch size / rate`` seconds after the start, and its latency counts from that
    moment, so that a server that falls behind is charged for the wait as well.

    ``batches(i)`` builds the i-th request. A worker that gets no response records its batch in
    ``unanswered``. With ``stop_on_error`` it then stops, because the server is gone, and
    otherwise it reconnects and goes on. ``killer`` runs alongside the workers.
    """
    load = Load()
    counter = iter(range(sys.maxsize))
    sent_events = 0
    stopping = False

    async def worker() -> None:
        nonlocal sent_events, stopping
        connection = CLIENTS[client](port, write_key)
        try:
            while not stopping:
                index = next(counter)
                batch = batches(index)
                if batch is None:
                    return
                if rate is None:
                    started = time.perf_counter()
                else:
                    started = begun + index * len(batch.message_ids) / rate
                    await asyncio.sleep(max(0.0, started - time.perf_counter()))
                try:
                    status, response = await connection.post(batch.body)
                except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    load.unanswered.append(batch)
                    load.error(type(exc).__name__)
                    await connection.close()
                    if stop_on_error:
                        stopping = True
                        return
                    continue
                except Exception as exc:
                    # httpx2 is imported lazily, so its transport errors are matched by module here.
                    if not type(exc).__module__.startswith("httpx"):
                        raise
                    load.unanswered.append(batch)
                    load.error(type(exc).__name__)
                    if stop_on_error:
                        stopping = True
                        return
                    continue
                load.latencies.append(time.perf_counter() - started)
                if status == 200:
                    load.acknowledged.update(batch.message_ids)
                    load.duplicates += int(json.loads(response).get("duplicates", 0))
                    sent_events += len(batch.message_ids)
                else:
                    load.error(f"HTTP {status}")
        finally:
            await connection.close()

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(progress_every)
            elapsed = time.perf_counter() - started
            print(
                f"  {sent_events:>9,} / {total_events:,} events acknowledged, "
                f"{sent_events / elapsed:>9,.0f} events/s, {sum(load.errors.values())} errors",
                file=sys.stderr,
            )

    cpu_started = time.process_time()
    started = begun = time.perf_counter()
    progress = asyncio.create_task(report_progress())
    killing = asyncio.create_task(killer()) if killer is not None else None
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        load.seconds = time.perf_counter() - started
        load.generator_cpu_seconds = time.process_time() - cpu_started
        progress.cancel()
        if killing is not None:
            await killing
    return load


def run_loop(coroutine: Coroutine[Any, Any, Load]) -> Load:
    """Run ``coroutine`` on uvloop when it is installed, else on the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- load mode --------------------------------------------------------------------------------


def load_mode(options: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """Time ``--events`` events at each concurrency, each against a fresh server."""
    results = []
    count = -(-options.events // options.batch_size)
    for concurrency in options.concurrency:
        print(
            f"load: {options.events:,} events in batches of {options.batch_size}, "
            f"concurrency {concurrency}, client {options.client}",
            file=sys.stderr,
        )
        tag = uuid.uuid4().hex[:8]
        prepared = [make_batch(tag, index, options.batch_size) for index in range(count)]
        warmup = [make_batch(f"{tag}w", index, options.batch_size) for index in range(20)]

        with workspace(options.keep, options.drain_seconds) as space:
            profile = options.server_profile
            if profile is not None and len(options.concurrency) > 1:
                profile = profile.with_name(f"{profile.stem}-c{concurrency}{profile.suffix}")
            server = Server(space, profile=profile)
            try:
                server.wait_ready()
                run_loop(
                    send_load(
                        server.port,
                        space.write_key,
                        batches_of(warmup),
                        concurrency=concurrency,
                        client=options.client,
                        stop_on_error=False,
                        progress_every=3600,
                        total_events=len(warmup) * options.batch_size,
                    )
                )
                server_cpu_before = server.cpu_seconds()
                load = run_loop(
                    send_load(
                        server.port,
                        space.write_key,
                        batches_of(prepared),
                        concurrency=concurrency,
                        client=options.client,
                        stop_on_error=False,
                        progress_every=options.progress,
                        total_events=count * options.batch_size,
                        rate=options.rate,
                    )
                )
                server_cpu = server.cpu_seconds() - server_cpu_before
            finally:
                server.stop()
        results.append(load_result(load, concurrency, options.batch_size, server_cpu))
    failed = any(result["errors"] for result in results)
    return results, failed


def load_result(load: Load, concurrency: int, batch_size: int, server_cpu: float) -> dict[str, Any]:
    events = len(load.acknowledged)
    milliseconds = [latency * 1000 for latency in load.latencies]
    return {
        "concurrency": concurrency,
        "batch_size": batch_size,
        "events": events,
        "requests": len(load.latencies),
        "seconds": round(load.seconds, 3),
        "events_per_second": round(events / load.seconds) if load.seconds else 0,
        "p50_ms": round(percentile(milliseconds, 0.50), 2),
        "p90_ms": round(percentile(milliseconds, 0.90), 2),
        "p99_ms": round(percentile(milliseconds, 0.99), 2),
        "max_ms": round(max(milliseconds, default=0.0), 2),
        "errors": sum(load.errors.values()),
        "error_kinds": load.errors,
        # CPU seconds per wall second: 1.0 is one core busy for the whole run.
        "generator_cpu_share": round(load.generator_cpu_seconds / load.seconds, 2)
        if load.seconds
        else 0,
        "server_cpu_share": round(server_cpu / load.seconds, 2) if load.seconds else 0,
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(load.latencies), 2)
        if load.latencies
        else 0,
    }


# --- crash mode -------------------------------------------------------------------------------


@dataclass
class CrashRun:
    """The outcome of one kill-and-restart run."""

    run: int
    kill_after_s: float
    acknowledged: int
    unanswered_batches: int
    resent_duplicates: int
    stored: int
    lost: int
    duplicates: int
    integrity: str
    lost_examples: list[str]


def crash_mode(options: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """Kill the server under load ``--runs`` times and compare acknowledgements to the journal."""
    generator = random.Random(options.seed)
    concurrency = options.concurrency[0]
    runs = []
    for number in range(1, options.runs + 1):
        delay = generator.uniform(options.kill_min, options.kill_max)
        tag = f"r{number}-{generator.getrandbits(32):08x}"
        print(
            f"crash run {number}/{options.runs}: SIGKILL after {delay:.2f} s of load at "
            f"concurrency {concurrency}",
            file=sys.stderr,
        )
        with workspace(options.keep, options.drain_seconds) as space:
            runs.append(crash_once(options, space, number, delay, tag, concurrency))
        outcome = runs[-1]
        print(
            f"  acknowledged {outcome.acknowledged:,}, stored {outcome.stored:,}, "
            f"lost {outcome.lost}, duplicates {outcome.duplicates}",
            file=sys.stderr,
        )
    failed = any(run.lost or run.duplicates or run.integrity != "ok" for run in runs)
    return [asdict(run) for run in runs], failed


def crash_once(
    options: argparse.Namespace,
    space: Workspace,
    number: int,
    delay: float,
    tag: str,
    concurrency: int,
) -> CrashRun:
    count = -(-options.events // options.batch_size)

    def batches(index: int) -> Batch | None:
        return make_batch(tag, index, options.batch_size) if index < count else None

    server = Server(space)
    try:
        server.wait_ready()

        async def kill_later() -> None:
            await asyncio.sleep(delay)
            server.kill()

        load = run_loop(
            send_load(
                server.port,
                space.write_key,
                batches,
                concurrency=concurrency,
                client=options.client,
                stop_on_error=True,
                progress_every=options.progress,
                total_events=count * options.batch_size,
                killer=kill_later,
            )
        )
    finally:
        if server.process.poll() is None:
            server.kill()
    if not load.unanswered:
        print(
            "  warning: the load ended before the kill; raise --events or lower --kill-max",
            file=sys.stderr,
        )

    # Restart on the same journal and resend what got no response, as a retrying client does.
    restarted = Server(space)
    try:
        restarted.wait_ready()
        resent = run_loop(
            send_load(
                restarted.port,
                space.write_key,
                batches_of(load.unanswered),
                concurrency=1,
                client=options.client,
                stop_on_error=False,
                progress_every=3600,
                total_events=len(load.unanswered) * options.batch_size,
            )
        )
    finally:
        restarted.stop()
    if resent.errors:
        raise RuntimeError(f"resending after the restart failed: {resent.errors}")

    return compare(space, number, delay, load, resent)


def compare(space: Workspace, number: int, delay: float, load: Load, resent: Load) -> CrashRun:
    """Compare the acknowledged messageIds with the messageIds in the journal."""
    con = sqlite3.connect(f"file:{space.journal}?mode=ro", uri=True)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        stored = {
            message_id
            for (message_id,) in con.execute(
                "SELECT message_id FROM journal WHERE source = ?", (SOURCE,)
            )
        }
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM journal GROUP BY source, message_id "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
    finally:
        con.close()
    lost = sorted(load.acknowledged - stored)
    return CrashRun(
        run=number,
        kill_after_s=round(delay, 3),
        acknowledged=len(load.acknowledged),
        unanswered_batches=len(load.unanswered),
        resent_duplicates=resent.duplicates,
        stored=len(stored),
        lost=len(lost),
        duplicates=int(duplicates),
        integrity=str(integrity),
        lost_examples=lost[:5],
    )


# --- Reporting and the command line -----------------------------------------------------------


def machine() -> dict[str, Any]:
    """Describe the machine the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        # Other processes' load skews the numbers on a small machine, so it is recorded.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as an aligned text table of ``columns``."""
    cells = [[format_cell(row[column]) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


def format_cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


LOAD_COLUMNS = [
    "concurrency",
    "events",
    "requests",
    "seconds",
    "events_per_second",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "errors",
    "generator_cpu_share",
    "server_cpu_share",
    "server_cpu_ms_per_request",
]
CRASH_COLUMNS = [
    "run",
    "kill_after_s",
    "acknowledged",
    "unanswered_batches",
    "resent_duplicates",
    "stored",
    "lost",
    "duplicates",
    "integrity",
]


def concurrency_list(text: str) -> list[int]:
    """Parse a comma-separated list of positive integers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid concurrency {text!r}; give integers such as 4,8,16"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"invalid concurrency {text!r}; each must be 1 or more")
    return values


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  python benchmarks/collector.py load --events 200000 --concurrency 4,8,16\n"
            "  python benchmarks/collector.py crash --runs 5 --seed 1 --json"
        ),
    )
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    load = modes.add_parser("load", help="measure throughput and request latency")
    crash = modes.add_parser("crash", help="SIGKILL the server under load and check the journal")

    for sub, events, concurrency in ((load, 200_000, "4,8,16"), (crash, 1_000_000, "8")):
        sub.add_argument(
            "--events",
            type=int,
            default=events,
            help=f"events to send per run; crash mode stops at the kill (default {events:,})",
        )
        sub.add_argument(
            "--batch-size", type=int, default=100, help="messages per request (default 100)"
        )
        sub.add_argument(
            "--concurrency",
            type=concurrency_list,
            default=concurrency_list(concurrency),
            help="requests in flight, one connection each; a comma-separated list in load "
            f"mode, the first value in crash mode (default {concurrency})",
        )
        sub.add_argument(
            "--client",
            choices=sorted(CLIENTS),
            default="raw",
            help="HTTP client of the generator: raw asyncio streams or httpx2 (default raw)",
        )
        sub.add_argument(
            "--drain-seconds",
            type=float,
            default=5.0,
            help="seconds between the server's drains of the journal into the store "
            "(default 5, the configuration's default)",
        )
        sub.add_argument(
            "--progress",
            type=float,
            default=2.0,
            help="seconds between progress lines on stderr (default 2)",
        )
        sub.add_argument("--json", action="store_true", help="print the results as JSON")
        sub.add_argument(
            "--keep", action="store_true", help="keep each run's temporary folder and server log"
        )
    load.add_argument(
        "--rate",
        type=float,
        default=None,
        help="send at this many events per second (an open loop; latency then counts from "
        "each request's due time) instead of as fast as the server answers",
    )
    load.add_argument(
        "--server-profile",
        type=Path,
        help="run the server under cProfile and write its event-loop profile to this file "
        "(with several concurrencies, one file each, named with -c<N>)",
    )
    crash.add_argument("--runs", type=int, default=5, help="kill-and-restart runs (default 5)")
    crash.add_argument(
        "--seed", type=int, default=1, help="seed of the kill delays and message ids (default 1)"
    )
    crash.add_argument(
        "--kill-min",
        type=float,
        default=0.5,
        help="minimum delay from the start of load to SIGKILL, in seconds (default 0.5)",
    )
    crash.add_argument(
        "--kill-max",
        type=float,
        default=3.0,
        help="maximum delay from the start of load to SIGKILL, in seconds (default 3)",
    )

    options = parser.parse_args(argv)
    if options.events < 1 or options.batch_size < 1:
        parser.error("--events and --batch-size must be 1 or more")
    if options.mode == "crash" and not 0 <= options.kill_min <= options.kill_max:
        parser.error("--kill-min must be between 0 and --kill-max")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    if options.mode == "load":
        results, failed = load_mode(options)
        columns = LOAD_COLUMNS
    else:
        results, failed = crash_mode(options)
        columns = CRASH_COLUMNS

    if options.json:
        print(json.dumps({"mode": options.mode, "machine": machine(), "results": results}))
    else:
        described = machine()
        sys.stderr.flush()
        print(
            f"\n{options.mode} results on {described['cpus']} CPUs, {described['processor']}, "
            f"Python {described['python']}, {described['platform']}, "
            f"load average {described['load_average_1m']} at the end"
        )
        print_table(results, columns)
    if failed and options.mode == "crash":
        print("FAILED: acknowledged events were lost or duplicated", file=sys.stderr)
    elif failed:
        print("some requests failed; see the errors column", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
