"""``/api/v1/ws``: pushes ``{"type", "ts", "data"}`` messages for every engine event.

Authenticate with ``?token=<api token>`` or the web panel's session cookie; anything else is
closed with code 1008 (policy violation) before the handshake completes.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.deps import SESSION_COOKIE, cookie_valid, token_matches
from api.hub import EventHub

router = APIRouter()


@router.websocket("/ws")
async def events(websocket: WebSocket) -> None:
    """Stream engine events to one client until it disconnects."""
    token = websocket.query_params.get("token")
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if not (token_matches(websocket, token) or cookie_valid(websocket, cookie)):  # type: ignore[arg-type]
        await websocket.close(code=1008, reason="missing or invalid token")
        return
    hub: EventHub = websocket.app.state.hub
    metrics = websocket.app.state.metrics
    await websocket.accept()
    metrics.ws_clients.inc()
    try:
        with hub.subscribe() as queue:
            sender = asyncio.create_task(_pump(websocket, queue))
            try:
                while True:
                    await websocket.receive_text()
            except WebSocketDisconnect:
                pass
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await sender
    finally:
        metrics.ws_clients.dec()


async def _pump(websocket: WebSocket, queue: asyncio.Queue[dict]) -> None:
    while True:
        await websocket.send_json(await queue.get())
