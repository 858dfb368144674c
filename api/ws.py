"""``/api/v1/ws``: pushes ``{"type", "ts", "data"}`` messages for every engine event.

Authenticate with ``?token=<api token>`` or the web panel's session cookie. Anything else is
refused as REST refuses it: HTTP 401 before the upgrade, with the same error body
(``{"error": "unauthorized", ...}``) and ``WWW-Authenticate: Bearer``. Behind a server without
the WebSocket denial-response extension the handshake is closed with code 1008 (policy
violation) instead.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from api.deps import SESSION_COOKIE, cookie_valid, token_matches
from api.hub import EventHub

router = APIRouter()


@router.websocket("/ws")
async def events(websocket: WebSocket) -> None:
    """Stream engine events to one client until it disconnects."""
    token = websocket.query_params.get("token")
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if not (token_matches(websocket, token) or cookie_valid(websocket, cookie)):  # type: ignore[arg-type]
        await _refuse(websocket, "missing bearer token" if token is None else "invalid token")
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


async def _refuse(websocket: WebSocket, detail: str) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = {"error": "unauthorized", "detail": detail}
        headers = {"WWW-Authenticate": "Bearer"}
        await websocket.send_denial_response(JSONResponse(body, 401, headers=headers))
    else:
        await websocket.close(code=1008, reason=detail)


async def _pump(websocket: WebSocket, queue: asyncio.Queue[dict]) -> None:
    while True:
        await websocket.send_json(await queue.get())
