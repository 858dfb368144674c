"""The event hub's fan-out: a slow subscriber resyncs once and misses nothing after."""

from __future__ import annotations

import asyncio

import pytest

from api.hub import EventHub


def _message(event: object) -> dict:
    return {"type": "candle", "ts": event, "data": {"n": event}}


def _drain(queue: asyncio.Queue[dict]) -> list[dict]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_a_full_queue_is_emptied_once_for_one_lagged_message_and_keeps_every_later_one() -> None:
    async def scenario() -> tuple[list[dict], list[dict]]:
        hub = EventHub(_message, queue_size=4)
        hub.attach(asyncio.get_running_loop())
        with hub.subscribe() as slow, hub.subscribe() as fast:
            seen_fast: list[dict] = []
            for n in range(7):
                hub.handle(n)
                await asyncio.sleep(0)  # the loop runs the delivery
                seen_fast += _drain(fast)
            return _drain(slow), seen_fast

    slow, fast = asyncio.run(scenario())

    assert [m["type"] for m in slow] == ["lagged", "candle", "candle", "candle"]
    assert [m["data"]["n"] for m in slow[1:]] == [4, 5, 6]
    assert slow[0]["ts"] == 4
    assert [m["data"]["n"] for m in fast] == list(range(7))


def test_a_queue_too_small_for_the_lagged_message_and_one_more_is_refused() -> None:
    with pytest.raises(ValueError, match="queue_size must be >= 2, was 1"):
        EventHub(_message, queue_size=1)
