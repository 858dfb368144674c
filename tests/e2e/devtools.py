"""A headless Chromium page driven over the DevTools protocol, for the browser tests of the web
panel: commands in order, the events that come meanwhile kept for the console check."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""Debian's Chromium (``make test`` installs it); None when absent."""
START_TIMEOUT_S = 30.0


class DevTools:
    """A page of a headless Chromium: :meth:`send` a command and get its result; the events
    that come meanwhile are kept in :attr:`events`."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run the DevTools command ``method`` with ``params``; its result."""
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of the JavaScript ``expression`` in the page (JSON-like values)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and logged errors (a failed load)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in (
                "error", "warning", "assert",
            ):  # fmt: skip
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']}")
        return found


def _devtools_url(user_data: Path, process: subprocess.Popen[bytes]) -> str:
    """The websocket of the first page of the Chromium started with ``user_data``."""
    port_file = user_data / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_file.is_file() or not port_file.read_text().strip():
        assert process.poll() is None, "Chromium exited at start"
        assert time.monotonic() < deadline, "Chromium opened no DevTools port"
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


@contextmanager
def chromium_page(user_data: Path, width: int = 1280, height: int = 900) -> Iterator[DevTools]:
    """A headless Chromium (profile in ``user_data``) of ``width`` × ``height`` CSS pixels whose
    every host but 127.0.0.1 fails to resolve (a CDN load would fail), its page's Page,
    Runtime, Log and Network domains enabled; ended on exit."""
    assert CHROMIUM is not None, "Chromium is not installed"
    command = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
        f"--user-data-dir={user_data}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with connect(_devtools_url(user_data, process), max_size=None, open_timeout=20) as ws:
            page = DevTools(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.send(f"{domain}.enable")
            yield page
    finally:
        process.terminate()
        process.wait(15)
