"""What a stranger may cost before logging in: each attack from issue 12 against a real server
on 127.0.0.1 (limits shrunk through their CLAWGATE_* variables so the tests stay short)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from gateway.ws.limits import FD_RESERVE, TransportLimits, fit_to_fd_limit, limits_from_env
from gateway.ws.transport import install_error_throttles
from tests.hardening.rawclient import (
    close_code,
    closed_within,
    frame_header,
    open_raw,
    read_frame,
    text_frame,
    ws_open,
)
from tests.harness import LiveGateway, connect_params, connected, live_gateway

SMALL = {
    "CLAWGATE_HEADER_TIMEOUT_MS": "400",
    "CLAWGATE_MAX_UNAUTHENTICATED_PER_ADDRESS": "4",
    "CLAWGATE_MAX_UNAUTHENTICATED": "12",
}


@pytest.fixture
async def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveGateway]:
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    async with live_gateway(tmp_path) as gw:
        yield gw


def admission(live: LiveGateway) -> Any:
    return live.gateway.extensions["transport.admission"]


async def test_a_big_message_before_connect_is_refused_from_its_header(live: LiveGateway) -> None:
    reader, writer, head = await ws_open(live.port)
    assert head.startswith(b"HTTP/1.1 101")
    opcode, _ = await read_frame(reader)  # connect.challenge
    # Announce 25 MiB and send only the header: the server must refuse without waiting for
    # (or buffering) the body.
    writer.write(frame_header(25 * 1024 * 1024))
    await writer.drain()
    opcode, payload = await asyncio.wait_for(read_frame(reader), 2)
    assert opcode == 0x8 and close_code(payload) == 1009
    assert await closed_within(reader, 2)
    writer.close()


async def test_after_connect_the_advertised_limit_applies(live: LiveGateway) -> None:
    async with connected(live) as client:
        # 1 MiB: over the pre-connect cap, far under maxPayload.
        res = await client.request("health", {"pad": "x" * (1024 * 1024)})
        assert res["id"] and "ok" in res
        assert admission(live).unauthenticated == 0


async def test_header_bomb_and_too_many_headers_are_refused(live: LiveGateway) -> None:
    reader, writer = await open_raw(live.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bomb: ")
    sent = 0
    try:
        for _ in range(64):  # up to 4 MiB; the cap is 16 KiB
            writer.write(b"a" * 65536)
            await writer.drain()
            sent += 65536
    except (ConnectionError, OSError):
        pass  # refused mid-way: the server closed on us
    try:
        data = await asyncio.wait_for(reader.read(), 5)
    except (ConnectionError, OSError):
        data = b""  # reset: it closed with our unread bytes pending
    # Refused: a 400, or a reset before we could even send 4 MiB.
    assert data.startswith(b"HTTP/1.1 400") or sent < 4 * 1024 * 1024, data[:80]
    writer.close()
    assert admission(live).open <= 1

    reader, writer = await open_raw(live.port)
    fields = "".join(f"X-F{i}: v\r\n" for i in range(150))
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
    data = await asyncio.wait_for(reader.read(4096), 5)
    assert data.startswith(b"HTTP/1.1 431"), data[:80]
    assert b"limit 100" in data
    writer.close()


async def test_slowloris_and_silent_connections_are_closed(live: LiveGateway) -> None:
    silent_reader, silent = await open_raw(live.port)
    slow_reader, slow = await open_raw(live.port)
    slow.write(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()

    async def trickle() -> None:
        for i in range(20):
            await asyncio.sleep(0.1)
            try:
                slow.write(f"X-Slow-{i}: x\r\n".encode())
            except (ConnectionError, OSError):
                return

    feeder = asyncio.create_task(trickle())
    assert await closed_within(silent_reader, 3)
    assert await closed_within(slow_reader, 3)
    assert time.monotonic() - started < 1.5  # header timeout 0.4 s
    feeder.cancel()
    silent.close()
    slow.close()
    # A keep-alive connection owes its next request head in time too.
    reader, writer = await open_raw(live.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    assert await closed_within(reader, 3)
    writer.close()


async def test_unauthenticated_connections_are_capped_per_address(live: LiveGateway) -> None:
    held = [await ws_open(live.port, "127.0.0.2") for _ in range(4)]
    assert all(head.startswith(b"HTTP/1.1 101") for _, _, head in held)
    reader, writer = await open_raw(live.port, "127.0.0.2")
    assert await closed_within(reader, 2)  # the fifth from that address: closed at once
    writer.close()
    # Someone else connects at once.
    started = time.monotonic()
    async with connected(live) as client:
        assert (await client.call("health"))["ok"] is True
    assert time.monotonic() - started < 2
    for _, w, _ in held:
        w.close()


async def test_a_full_unauthenticated_pool_closes_its_oldest(live: LiveGateway) -> None:
    held = []
    for i in range(12):
        held.append(await ws_open(live.port, f"127.0.1.{i + 1}"))
    oldest_reader = held[0][0]
    await read_frame(oldest_reader)  # its challenge
    async with connected(live) as client:  # the 13th: gets in, the oldest makes room
        assert (await client.call("health"))["ok"] is True
    assert await closed_within(oldest_reader, 2)
    assert admission(live).evicted >= 1
    for _, w, _ in held:
        w.close()


async def test_behind_a_trusted_proxy_the_cap_counts_real_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    config = {"gateway": {"trustedProxies": ["127.0.0.0/8"]}}
    async with live_gateway(tmp_path, config) as live:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        held = [await ws_open(live.port, headers=attacker) for _ in range(4)]
        assert all(head.startswith(b"HTTP/1.1 101") for _, _, head in held)
        _, w, head = await ws_open(live.port, headers=attacker)
        assert head.startswith(b"HTTP/1.1 403"), head  # refused before the upgrade
        w.close()
        # The proxy's other clients are not affected.
        async with websockets.connect(
            live.ws, additional_headers={"X-Forwarded-For": "198.51.100.3"}
        ) as ws:
            await ws.recv()
            await ws.send(
                json.dumps(
                    {"type": "req", "id": "c", "method": "connect", "params": connect_params()}
                )
            )
            assert json.loads(await ws.recv())["ok"] is True
        for _, w, _ in held:
            w.close()


async def test_connections_stay_below_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWGATE_MAX_CONNECTIONS", "3")
    async with live_gateway(tmp_path) as live:
        async with connected(live), connected(live), connected(live):
            reader, writer = await open_raw(live.port)
            assert await closed_within(reader, 2)
            writer.close()
        # Closed ones free their places.
        async with connected(live) as client:
            assert (await client.call("health"))["ok"] is True


def test_limits_fit_under_the_descriptor_limit() -> None:
    fitted = fit_to_fd_limit(TransportLimits(), 1024)
    assert fitted.max_connections == 1024 - FD_RESERVE
    assert fitted.max_unauthenticated <= fitted.max_connections
    with pytest.raises(ValueError, match="CLAWGATE_MAX_HEADERS"):
        limits_from_env({"CLAWGATE_MAX_HEADERS": "lots"})
    assert limits_from_env({"CLAWGATE_HEADER_TIMEOUT_MS": "2500"}).header_timeout_s == 2.5


async def test_accept_errors_are_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    install_error_throttles(loop, 60)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2000):  # what one EMFILE wake-up of asyncio's accept loop reports
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
    finally:
        loop.set_exception_handler(previous)
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == 1


@pytest.mark.parametrize(
    ("params", "limit"),
    [
        ("[" * 1_000_000 + "]" * 1_000_000, "nested deeper than 64 levels"),
        ("[" * 100 + "]" * 100, "nested deeper than 64 levels"),
        ("9" * 5000, "more than 100 digits"),
    ],
)
async def test_every_request_after_connect_is_answered(
    live: LiveGateway, params: str, limit: str
) -> None:
    async with connected(live) as client:
        await client.ws.send(f'{{"type":"req","id":"deep-1","method":"health","params":{params}}}')
        res = await client.recv(5)
        while res.get("type") != "res":
            res = await client.recv(5)
        assert res["id"] == "deep-1" and res["ok"] is False
        assert res["error"]["code"] == "INVALID_REQUEST" and limit in res["error"]["message"]
        assert (await client.call("health"))["ok"] is True  # the connection is fine


async def test_a_wrong_secret_cannot_lock_out_the_right_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker hammering wrong tokens through the same (Fly) proxy address as the operator."""
    monkeypatch.setenv("CLAWGATE_AUTH_FAILURE_HOLD_MS", "300")
    config = {"gateway": {"auth": {"rateLimit": {"maxAttempts": 2, "exemptLoopback": False}}}}
    async with live_gateway(tmp_path, config) as live:
        stop = asyncio.Event()

        async def attacker() -> int:
            tries = 0
            while not stop.is_set():
                reader, writer, _ = await ws_open(live.port)
                await read_frame(reader)
                writer.write(
                    text_frame(
                        json.dumps(
                            {
                                "type": "req",
                                "id": "a",
                                "method": "connect",
                                "params": connect_params(token="guess"),
                            }
                        )
                    )
                )
                await asyncio.wait_for(read_frame(reader), 5)
                writer.close()
                tries += 1
            return tries

        tasks = [asyncio.create_task(attacker()) for _ in range(3)]
        await asyncio.sleep(0.5)
        assert live.gateway.limiter.throttled_for("127.0.0.1") > 0
        for _ in range(3):  # the same address as the attacker: delayed, never refused
            async with connected(live) as client:
                assert (await client.call("health"))["ok"] is True
        stop.set()
        tries = sum(await asyncio.gather(*tasks))
        assert tries >= 2
