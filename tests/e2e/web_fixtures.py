"""A real uvicorn server in a background thread, for end-to-end tests over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import Settings

STARTUP_TIMEOUT_S = 20.0


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free localhost port; yield its base URL.

    The socket is bound here, before the server starts, so no other process can take the port
    in between. On exit the server is asked to stop; open streams get
    ``timeout_graceful_shutdown`` seconds to end.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@contextmanager
def sample_server(data_dir: Path, token: str) -> Iterator[tuple[str, Container]]:
    """A paper server on the shipped sample replaying 20 bar times a second with
    ``sma_cross(fast=5, slow=20)``, so that fills, trades and signals come within seconds;
    yields its base URL and its container."""
    settings = Settings(
        data_dir=data_dir,
        api_token=token,
        speed=6000.0,  # 20 bar times per second
        strategy="sma_cross",
        strategy_params={"fast": 5, "slow": 20},
    )
    container = bootstrap(settings)
    with live_server(build_app(container)) as url:
        yield url, container
