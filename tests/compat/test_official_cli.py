"""The official `openclaw` CLI's chat and operations commands against our gateway (issue 17)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.compat.conftest import GatewayProcess
from tests.compat.reference import Reference, run_openclaw, validate

pytestmark = pytest.mark.compat


def describe(result: Any) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def openclaw(gw: GatewayProcess, *args: str, timeout: float = 90) -> Any:
    """`openclaw <args>` pointed at our gateway the way a user does it: through the env."""
    env = {"OPENCLAW_GATEWAY_URL": gw.url, "OPENCLAW_GATEWAY_TOKEN": gw.token}
    return run_openclaw(list(args), timeout=timeout, env=env)


def test_agent_message_prints_the_fake_models_reply(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, llm = chat_gateway
    # The model calls the real `read` tool first; the CLI waits through it for the answer.
    (gw.state_dir / "workspace").mkdir(exist_ok=True)
    (gw.state_dir / "workspace" / "plan.txt").write_text("ship on tuesday\n")
    llm.script.extend(
        [
            {"tool_calls": [{"name": "read", "arguments": {"path": "plan.txt"}}]},
            {"text": "the answer from the fake model"},
        ]
    )
    result = openclaw(gw, "agent", "-m", "hello from the official cli")
    assert result.returncode == 0, describe(result)
    assert "the answer from the fake model" in result.stdout, describe(result)
    assert "ship on tuesday" in str(llm.bodies[-1]), llm.bodies[-1]  # the tool really ran
    # The turn landed in the agent's main session, as the reference does without --session-key.
    listed = openclaw(gw, "gateway", "call", "sessions.list", "--json", "--params", "{}")
    rows = json.loads(listed.stdout)["sessions"]
    main = next(r for r in rows if r["key"] == "agent:main:main")
    assert main["status"] == "done" and main["hasActiveRun"] is False, main


def test_agent_json_has_the_final_result(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, llm = chat_gateway
    llm.script.append({"text": "json reply"})
    result = openclaw(gw, "agent", "-m", "hi", "--json")
    assert result.returncode == 0, describe(result)
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["status"] == "ok", payload
    assert [p["text"] for p in payload["result"]["payloads"]] == ["json reply"], payload
    meta = payload["result"]["meta"]["agentMeta"]
    assert meta["provider"] == "openai" and meta["model"] == "gpt-test", meta


def test_agent_model_failure_exits_nonzero(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, llm = chat_gateway
    llm.script.extend([{"status": 400}] * 3)
    result = openclaw(gw, "agent", "-m", "this will fail")
    assert result.returncode != 0, describe(result)


def test_models_list_shows_the_configured_model_with_auth(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    result = openclaw(gw, "models", "list", "--json")
    assert result.returncode == 0, describe(result)
    data = json.loads(result.stdout[result.stdout.index("{") :])
    models = {f"{m.get('key') or m.get('id')}": m for m in data["models"]}
    assert any("gpt-test" in key for key in models), data
    entry = next(m for key, m in models.items() if "gpt-test" in key)
    assert entry.get("available") is True, entry


def test_system_presence_lists_the_gateway(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    result = openclaw(gw, "system", "presence", "--json")
    assert result.returncode == 0, describe(result)
    entries = json.loads(result.stdout[result.stdout.index("[") :])
    assert any(e.get("mode") == "gateway" and e.get("reason") == "self" for e in entries), entries
    for entry in entries:
        validate("PresenceEntry", entry)


def test_system_heartbeat_last_is_null_before_any_heartbeat(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    result = openclaw(gw, "system", "heartbeat", "last", "--json")
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip().endswith("null"), describe(result)


def test_gateway_stability_reports_the_runs(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, llm = chat_gateway
    first = openclaw(gw, "gateway", "stability")
    assert first.returncode == 0, describe(first)
    assert "0/1000" in first.stdout, describe(first)
    llm.script.append({"text": "counted"})
    assert openclaw(gw, "agent", "-m", "count me").returncode == 0
    after = openclaw(gw, "gateway", "stability", "--json")
    assert after.returncode == 0, describe(after)
    data = json.loads(after.stdout[after.stdout.index("{") :])
    kinds = [e["type"] for e in data["events"]]
    assert "session.state" in kinds and "run.completed" in kinds, data


def test_gateway_probe_connects(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    result = openclaw(gw, "gateway", "probe", "--url", gw.url, "--token", gw.token)
    assert result.returncode == 0, describe(result)
    assert "read-only" in result.stdout or "connected" in result.stdout.lower(), describe(result)


def test_doctor_finds_no_gateway_side_failures(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    result = openclaw(gw, "doctor", "--non-interactive", timeout=180)
    output = result.stdout + result.stderr
    for bad in ("unknown method", "missing scope", "FORBIDDEN", "INVALID_REQUEST"):
        assert bad not in output, describe(result)
