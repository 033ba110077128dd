"""OpenClaw's own Control UI (from the npm package) chats through our gateway (issue 17).

The bundle is served same-origin by a small proxy in the test (tests/compat/official_ui.py),
the way an operator would put it in front of clawgate; Debian chromium drives it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets
from playwright.async_api import Page, async_playwright, expect

from tests.compat.conftest import GatewayProcess, ThreadedFakeLLM, _stop, start_gateway
from tests.compat.official_ui import OfficialUiProxy
from tests.compat.reference import (
    Reference,
    schema,
    validate,
    validate_agent_event,
    validate_hello,
)

pytestmark = [pytest.mark.compat, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_PRESENT = Path(CHROMIUM).exists()
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
TIMEOUT_MS = 20_000
REPLY = "reply for the official control ui"
expect.set_options(timeout=TIMEOUT_MS)
NOTE = "water the plants on friday"
# The page's heartbeat on /usage and /automations: what each page must call (and get answered).
PAGE_METHODS = {
    "usage": {"sessions.usage"},
    "automations": {"cron.list", "cron.status"},
}


def result_definition(method: str) -> str | None:
    """The schema's `*Result` definition for a method, where the schema names one."""
    name = "".join(p[:1].upper() + p[1:] for p in re.split(r"[.\-]", method)) + "Result"
    name = {"AgentIdentityGetResult": "AgentIdentityResult"}.get(name, name)
    return name if name in schema()["definitions"] else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    def __init__(self, gw: GatewayProcess, llm: ThreadedFakeLLM, proxy: OfficialUiProxy) -> None:
        self.gw, self.llm, self.proxy = gw, llm, proxy

    def failed_methods(self) -> set[str]:
        """Methods the page called that the gateway answered with an error."""
        methods = {}
        for raw in self.proxy.client_frames:
            frame = json.loads(raw)
            if frame.get("type") == "req":
                methods[frame["id"]] = frame["method"]
        failed = set()
        for raw in self.proxy.ws_frames:
            frame = json.loads(raw)
            if frame.get("type") == "res" and frame.get("ok") is False:
                failed.add(methods.get(frame["id"], "?"))
        return failed

    def results(self) -> list[tuple[str, Any]]:
        """(method, result) of every request of the page that the gateway answered ok."""
        methods = {}
        for frame in map(json.loads, self.proxy.client_frames):
            if frame.get("type") == "req":
                methods[frame["id"]] = frame["method"]
        return [
            (methods.get(frame["id"], "?"), frame.get("payload"))
            for frame in map(json.loads, self.proxy.ws_frames)
            if frame.get("type") == "res" and frame.get("ok") is True
        ]

    def called(self) -> set[str]:
        return {
            frame["method"]
            for frame in map(json.loads, self.proxy.client_frames)
            if frame.get("type") == "req"
        }

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for raw in self.proxy.ws_frames:
            frame = json.loads(raw)
            if frame.get("type") == "event" and frame.get("event") == name:
                out.append(frame["payload"])
        return out


@pytest_asyncio.fixture
async def stack(reference: Reference, tmp_path: Path) -> AsyncIterator[Stack]:
    llm = ThreadedFakeLLM()
    port = _free_port()
    config = {
        "models": {"providers": {"openai": {"baseUrl": llm.fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        "gateway": {"controlUi": {"allowedOrigins": [f"http://127.0.0.1:{port}"]}},
    }
    workspace = tmp_path / "gateway-state" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "notes.txt").write_text(NOTE + "\n")
    gw = start_gateway(tmp_path, config)
    bundle = reference.node_modules / "openclaw" / "dist" / "control-ui"
    proxy = await OfficialUiProxy(bundle, gw.http, gw.url).start(port)
    try:
        yield Stack(gw, llm, proxy)
    finally:
        await proxy.stop()
        _stop(gw.proc)
        llm.close()


async def gateway_call(gw: GatewayProcess, method: str, params: Any = None) -> Any:
    async with websockets.connect(gw.url) as ws:
        await ws.recv()  # connect.challenge
        connect = {
            "minProtocol": 4,
            "maxProtocol": 4,
            "client": {"id": "cli", "version": "test", "platform": "linux", "mode": "cli"},
            "auth": {"token": gw.token},
            "scopes": ["operator.read"],
        }
        for n, (name, body) in enumerate((("connect", connect), (method, params or {}))):
            await ws.send(json.dumps({"type": "req", "id": str(n), "method": name, "params": body}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "res" and frame["id"] == str(n):
                    assert frame["ok"], frame
                    break
        return frame["payload"]


async def until_called(stack: Stack, methods: set[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not methods <= stack.called():
        assert time.monotonic() < deadline, f"never called: {sorted(methods - stack.called())}"
        await asyncio.sleep(0.1)


async def body_text(page: Page) -> str:
    text = await page.evaluate("document.body.innerText")
    return str(text)


async def test_official_control_ui_logs_in_chats_and_survives_reload(stack: Stack) -> None:
    if not CHROMIUM_PRESENT:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does this)")
    # The model reads a workspace file with the real `read` tool, then answers.
    stack.llm.fake.script.extend(
        [{"tool_calls": [{"name": "read", "arguments": {"path": "notes.txt"}}]}, {"text": REPLY}]
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = await browser.new_context(viewport={"width": 1300, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()

        # Log in with the token in the URL fragment, as the reference's own links do.
        await page.goto(f"{stack.proxy.url}/#token={stack.gw.token}")
        composer = page.get_by_placeholder("Message Assistant")
        await expect(composer).to_be_visible()
        await expect(page.get_by_text("Connected", exact=True)).to_be_visible()
        await expect(page.get_by_text("openai/gpt-test").first).to_be_visible()  # chat.metadata
        await composer.fill("hello from the official ui")
        await composer.press("Enter")
        await expect(page.locator(".chat-text", has_text=REPLY)).to_have_count(1)
        await expect(
            page.locator(".chat-text", has_text="hello from the official ui")
        ).to_have_count(1)

        # The tool call shows in the chat: the UI asked for tool events, and got them.
        await expect(page.get_by_role("button", name="Read notes.txt")).to_be_visible()
        connect = next(
            f for f in map(json.loads, stack.proxy.client_frames) if f.get("method") == "connect"
        )
        assert "tool-events" in connect["params"]["caps"], connect
        tool = [e for e in stack.events("agent") if e["stream"] == "tool"]
        assert [(e["data"]["phase"], e["data"]["name"]) for e in tool] == [
            ("start", "read"),
            ("result", "read"),
        ], tool
        assert NOTE in tool[1]["data"]["result"]["content"][0]["text"]
        assert NOTE in str(stack.llm.fake.bodies[-1])  # the tool result reached the model

        # The reply was streamed: delta events before the final one, for this run.
        chat = [e for e in stack.events("chat") if e.get("sessionKey") == "agent:main:main"]
        states = [e["state"] for e in chat]
        assert "delta" in states and states.index("delta") < states.index("final"), states
        for payload in stack.events("agent"):
            validate_agent_event(payload)
        lifecycle = [
            e["data"]["phase"] for e in stack.events("agent") if e["stream"] == "lifecycle"
        ]
        assert lifecycle[:1] == ["start"] and "end" in lifecycle, lifecycle
        messages = stack.events("session.message")
        roles = [m["message"]["role"] for m in messages]
        assert roles == ["user", "assistant", "toolResult", "assistant"], roles
        hello = json.loads(next(f for f in stack.proxy.ws_frames if '"type":"hello-ok"' in f))[
            "payload"
        ]
        validate_hello(hello)
        assert hello["snapshot"]["authMode"] == "token"
        assert hello["auth"]["method"] == "token" and hello["auth"]["deviceToken"], hello["auth"]

        # Reload: still logged in (the UI kept the token because authMode said "token"), and the
        # history came back from chat.startup.
        await page.reload()
        await expect(page.get_by_placeholder("Message Assistant")).to_be_visible()
        await expect(page.locator(".chat-text", has_text=REPLY)).to_have_count(1)

        # A new tab has no token in its session storage: it logs in with the device token.
        second = await context.new_page()
        await second.goto(f"{stack.proxy.url}/")
        await expect(second.get_by_placeholder("Message Assistant")).to_be_visible()
        await expect(second.locator(".chat-text", has_text=REPLY)).to_have_count(1)
        methods = [
            json.loads(f)["payload"]["auth"]["method"]
            for f in stack.proxy.ws_frames
            if '"type":"hello-ok"' in f
        ]
        assert methods[-1] == "device-token", methods

        # Sessions and Logs open without an error banner.
        await page.goto(f"{stack.proxy.url}/sessions")
        await expect(page.get_by_text("agent:main:main").first).to_be_visible()
        await page.goto(f"{stack.proxy.url}/logs")
        await expect(page.get_by_text("Gateway file logs")).to_be_visible()
        await expect(page.get_by_text("listening on").first).to_be_visible()
        for text in (await body_text(page), await body_text(second)):
            assert "unknown method" not in text and "Refresh required" not in text, text

        # Usage and Automations (cron) open on our usage and cron methods, without a banner.
        for path, needed in PAGE_METHODS.items():
            await page.goto(f"{stack.proxy.url}/{path}")
            await until_called(stack, needed)
            await page.wait_for_load_state("networkidle")
            text = await body_text(page)
            assert "unknown method" not in text and "Refresh required" not in text, (path, text)

        # The UI's own config-form normaliser renders every node of our config.schema as a form.
        schema = (await gateway_call(stack.gw, "config.schema"))["schema"]
        module = next(p.name for p in (stack.proxy.bundle / "assets").glob("config-form-*.js"))
        unsupported = await page.evaluate(
            """async ([path, schema]) => {
                const m = await import(path);
                m.t();
                return m.n(schema).unsupportedPaths;
            }""",
            [f"/assets/{module}", schema],
        )
        assert unsupported == [], unsupported
        await browser.close()

    failed = stack.failed_methods()
    assert not failed, f"the gateway refused {sorted(failed)}"
    checked = set()
    for name, result in stack.results():
        definition = result_definition(name)
        if definition is not None:
            validate(definition, result)
            checked.add(name)
    assert {"tools.effective", "update.status", "talk.catalog", "logs.tail"} <= checked, checked
    assert {"exec.approval.list", "cron.runs", "usage.status"} <= stack.called()


def test_control_ui_config_json_needs_a_bearer(reference: Reference, tmp_path: Path) -> None:
    gw = start_gateway(tmp_path)
    try:
        url = f"{gw.http}/control-ui-config.json"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["error"]["type"] == "unauthorized"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {gw.token}"})
        with urllib.request.urlopen(request, timeout=5) as res:
            body = json.loads(res.read())
        assert body["assistantAgentId"] == "main" and body["serverVersion"], body
        assert body["terminalEnabled"] is False and body["pluginFrameGrants"] == [], body
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{gw.http}/avatar/main", timeout=5)
        assert missing.value.code == 404
    finally:
        _stop(gw.proc)
