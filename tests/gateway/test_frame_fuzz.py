"""Property-based frames against the live gateway: every bad frame ends in a clear error or a
policy close, never a crash, a hang, or an effect on another connection."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.harness import LiveGateway, connect_params, live_gateway

ALLOWED_CLOSES = {1000, 1002, 1003, 1007, 1008, 1009}

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(
    ["connect", "health", "status", "", "x" * 300, "chat.send", "config.set", "\u0000"]
)
requests = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["req", "res", "event", 1, None]),
        "id": st.one_of(st.text(max_size=20), st.integers(), st.none()),
        "method": st.one_of(methods, json_values),
    },
    optional={"params": json_values},
)
connects = st.builds(
    lambda params, extra: {
        "type": "req",
        "id": "c1",
        "method": "connect",
        "params": {**params, **extra},
    },
    st.just(connect_params()),
    st.dictionaries(
        st.sampled_from(["minProtocol", "maxProtocol", "client", "auth", "role", "scopes"]),
        json_values,
        max_size=3,
    ),
)
frames = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    requests.map(json.dumps),
    connects.map(json.dumps),
)


@pytest.fixture(scope="module")
def threaded_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """The live gateway on its own loop in a thread, so hypothesis can drive it synchronously."""
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        async with live_gateway(Path(tmp_path_factory.mktemp("fuzz"))) as live:
            ready["live"] = live
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield ready["live"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)


def _healthy(live: LiveGateway) -> bool:
    with urllib.request.urlopen(f"{live.http}/healthz", timeout=2) as r:
        return bool(r.status == 200)


def _drain_until_close_or_res(ws: ClientConnection) -> list[dict[str, Any]]:
    got = []
    try:
        while True:
            msg = json.loads(ws.recv(timeout=3))
            got.append(msg)
            if msg.get("type") == "res" and msg.get("ok"):
                break
    except ConnectionClosed:
        pass
    except TimeoutError:
        pass
    return got


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=frames)
def test_any_first_frame(threaded_gateway: LiveGateway, frame: str) -> None:
    with connect(threaded_gateway.ws, open_timeout=5, close_timeout=2) as ws:
        assert json.loads(ws.recv(timeout=3))["event"] == "connect.challenge"
        ws.send(frame)
        replies = _drain_until_close_or_res(ws)
        for reply in replies:
            if reply.get("type") == "res" and not reply["ok"]:
                assert set(reply["error"]) <= {
                    "code",
                    "message",
                    "details",
                    "retryable",
                    "retryAfterMs",
                }
                assert reply["error"]["code"] in {"INVALID_REQUEST", "UNAVAILABLE"}
        if not any(r.get("ok") for r in replies):
            assert ws.close_code in ALLOWED_CLOSES or ws.close_code is None
    assert _healthy(threaded_gateway)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=frames)
def test_any_frame_after_connect_keeps_the_connection(
    threaded_gateway: LiveGateway, frame: str
) -> None:
    with connect(threaded_gateway.ws, open_timeout=5, close_timeout=2) as ws:
        ws.recv(timeout=3)
        ws.send(
            json.dumps({"type": "req", "id": "c", "method": "connect", "params": connect_params()})
        )
        while json.loads(ws.recv(timeout=3)).get("id") != "c":
            pass
        ws.send(frame)
        ws.send(json.dumps({"type": "req", "id": "probe", "method": "health"}))
        while True:
            msg = json.loads(ws.recv(timeout=5))
            if msg.get("id") == "probe":
                assert msg["ok"] is True
                break
