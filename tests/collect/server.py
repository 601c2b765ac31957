"""Run an ASGI app under uvicorn on a free loopback port, for tests that need a real socket.

The server runs in a background thread of the test process, on its own event loop, so that
real HTTP clients (which send from their own threads) reach it over TCP. The listening socket
is bound before the thread starts, so no other process can take the port in between.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

HOST = "127.0.0.1"


@contextmanager
def running(app: Any, *, startup_timeout: float = 15.0) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1`` and yield its base URL; stop the server on exit.

    The app's lifespan runs: startup before the URL is yielded, shutdown before this returns.

    Raises:
        RuntimeError: the server did not start within ``startup_timeout`` seconds, or failed
            during startup.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()

    try:
        _wait_started(server, thread, startup_timeout)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped during startup; see its log above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {timeout} s")
        time.sleep(0.01)
