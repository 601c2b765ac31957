"""`journeymap serve` as users run it: the CLI keeps working meanwhile, and logs stay clean."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest

WRITE_KEY = "serve-test-write-key-5f2c"
EMAIL = "Grace.Hopper@navy-example.org"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(port: int, path: str, body: bytes, key: str = WRITE_KEY) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + b64encode(f"{key}:".encode()).decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def journey(person: int) -> bytes:
    anonymous_id = f"anon-{person}"
    batch = [
        {
            "type": "page",
            "anonymousId": anonymous_id,
            "context": {
                "page": {"url": "https://www.example.com/?utm_source=google&utm_medium=cpc"},
                "ip": "203.0.113.7",
            },
        },
        {
            "type": "identify",
            "anonymousId": anonymous_id,
            "userId": f"user-{person}",
            "traits": {"email": EMAIL},
        },
        {"type": "track", "anonymousId": anonymous_id, "event": "Demo Requested"},
    ]
    return json.dumps({"batch": batch}).encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[str]]]:
    port = free_port()
    config = tmp_path / "journeymap.yaml"
    config.write_text(
        "collector:\n  drain_seconds: 0.5\n  sources:\n    web: {write_key_env: JM_TEST_KEY}\n",
        encoding="utf-8",
    )
    environment = {**os.environ, "JM_TEST_KEY": WRITE_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "journeymap", "serve", "--port", str(port), "-c", str(config)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _ready(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"journeymap serve did not start: {process.communicate()[0]}")
        time.sleep(0.2)
    yield port, tmp_path, process
    if process.poll() is None:
        process.kill()
        process.wait()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "journeymap", *args, "-c", str(folder / "journeymap.yaml")],
        cwd=folder,
        env={**os.environ, "JM_TEST_KEY": WRITE_KEY},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_works_while_serve_ingests(server: tuple[int, Path, subprocess.Popen[str]]) -> None:
    port, folder, process = server
    statuses: list[int] = []
    stop = threading.Event()

    def send() -> None:
        person = 0
        while not stop.wait(0.02):
            statuses.append(post(port, "/v1/batch", journey(person)))
            person += 1

    for person in range(20):
        assert post(port, "/v1/batch", journey(1000 + person)) == 200
    time.sleep(1.5)
    sender = threading.Thread(target=send)
    sender.start()
    try:
        built = run_cli(folder, "build")
        attributed = run_cli(folder, "attribute", "--models", "first_touch", "--format", "csv")
        reported = run_cli(folder, "report", "--output", str(folder / "report.html"))
    finally:
        stop.set()
        sender.join()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)

    assert built.returncode == 0, built.stderr
    assert attributed.returncode == 0, attributed.stderr
    assert "Paid Search" in attributed.stdout
    assert reported.returncode == 0, reported.stderr
    assert (folder / "report.html").stat().st_size > 10_000
    assert statuses
    assert set(statuses) == {200}


def test_serve_logs_no_key_email_or_ip(server: tuple[int, Path, subprocess.Popen[str]]) -> None:
    port, _, process = server
    assert post(port, "/v1/batch", journey(1)) == 200
    assert post(port, "/v1/batch", journey(2), key="wrong-key-but-secret") == 401
    assert post(port, "/v1/track", b'{"event": "A", "traits": {"email": "x@y.z"}}') == 400
    assert post(port, "/v1/batch", b"{not json " + EMAIL.encode()) == 400
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    for secret in (WRITE_KEY, "wrong-key-but-secret", EMAIL, EMAIL.lower(), "203.0.113.7"):
        assert secret not in output
    assert "127.0.0.1:" in output  # the start-up line names the address it listens on
