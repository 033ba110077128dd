"""config.get / schema / set / patch / apply over a real WebSocket against the real app."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import json5
import jsonschema
import pytest

from gateway.config.secrets import REDACTED
from tests.harness import TOKEN, connected, live_gateway

OPENAI_KEY = "sk-live-abcdef0123456789"
BOT_TOKEN = "123456:telegram-secret-token-zz"
ENV_SECRET = "env-var-secret-value-42"

# Copied from @openclaw/gateway-protocol@2026.9.1 protocol.schema.json (definitions).
CONFIG_SCHEMA_RESPONSE = {
    "type": "object",
    "required": ["schema", "uiHints", "version", "generatedAt"],
    "properties": {
        "schema": {},
        "uiHints": {"type": "object"},
        "version": {"type": "string", "minLength": 1},
        "generatedAt": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
}

JSON5_CONFIG = f"""// clawgate test config
{{
  gateway: {{
    mode: "local",
    auth: {{ token: "{TOKEN}" }}, // the shared secret
  }},
  agents: {{ defaults: {{ model: {{ primary: "openai/gpt-test" }} }} }},
  models: {{ providers: {{ openai: {{ apiKey: '{OPENAI_KEY}', baseUrl: "http://127.0.0.1:9/v1" }} }} }},
  channels: {{ telegram: {{ botToken: "{BOT_TOKEN}", dmPolicy: "pairing" }} }},
  env: {{ vars: {{ SOME_SECRET: "{ENV_SECRET}" }} }},
}}
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_json5(tmp_path: Path) -> Path:
    path = tmp_path / "openclaw.json"
    path.write_text(JSON5_CONFIG)
    return path


def assert_no_secrets(obj: Any) -> None:
    text = json.dumps(obj)
    for secret in (TOKEN, OPENAI_KEY, BOT_TOKEN, ENV_SECRET):
        assert secret not in text, secret


def base_config() -> dict[str, Any]:
    return {
        "gateway": {"mode": "local", "auth": {"token": TOKEN}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        "models": {
            "providers": {
                "openai": {"apiKey": OPENAI_KEY},
                "anthropic": {"apiKey": {"source": "env", "id": "ANTHROPIC_API_KEY"}},
            }
        },
        "channels": {"telegram": {"botToken": BOT_TOKEN}},
        "env": {"vars": {"SOME_SECRET": ENV_SECRET}},
    }


async def test_get_redacts_every_secret_and_keeps_comments(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        path = write_json5(tmp_path)
        async with connected(live, scopes=["operator.read"]) as client:
            got = await client.call("config.get", {})
        assert_no_secrets(got)
        assert got["path"] == str(path) and got["exists"] is True and got["valid"] is True
        assert got["hash"] == sha(JSON5_CONFIG)
        assert got["raw"].startswith("// clawgate test config")
        assert "// the shared secret" in got["raw"]
        assert got["raw"].count(REDACTED) == 4
        assert got["parsed"]["models"]["providers"]["openai"]["apiKey"] == REDACTED
        assert got["parsed"]["models"]["providers"]["openai"]["baseUrl"] == "http://127.0.0.1:9/v1"
        assert got["config"]["gateway"]["auth"]["token"] == REDACTED
        assert got["issues"] == []


async def test_set_round_trip_keeps_secrets_backs_up_and_applies_live(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        path = tmp_path / "openclaw.json"
        before = path.read_text()
        async with connected(live) as client:
            got = await client.call("config.get", {})
            data = json5.loads(got["raw"])
            data["agents"]["defaults"]["model"]["fallbacks"] = ["anthropic/claude-test"]
            res = await client.call(
                "config.set", {"raw": json.dumps(data, indent=2), "baseHash": got["hash"]}
            )
            assert_no_secrets(res)
            assert res["ok"] is True and res["restartRequired"] is False
            assert "agents.defaults.model.fallbacks" in res["applied"]
            on_disk = json5.loads(path.read_text())
            assert on_disk["models"]["providers"]["openai"]["apiKey"] == OPENAI_KEY
            assert on_disk["gateway"]["auth"]["token"] == TOKEN
            assert on_disk["env"]["vars"]["SOME_SECRET"] == ENV_SECRET
            ref = got["parsed"]["models"]["providers"]["anthropic"]["apiKey"]
            assert ref == {"source": "env", "id": "ANTHROPIC_API_KEY"}
            assert (tmp_path / "openclaw.json.bak").read_text() == before
            assert res["hash"] == sha(path.read_text())
            model = live.gateway.loaded.config.agents.defaults.model
            assert model is not None and not isinstance(model, str)
            assert model.fallbacks == ["anthropic/claude-test"]
            models = await client.call("models.list", {})
            assert "anthropic/claude-test" in [m["name"] for m in models["models"]]
            again = await client.call("config.get", {})
            assert again["hash"] == res["hash"]


async def test_stale_or_missing_hash_is_refused(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        path = tmp_path / "openclaw.json"
        async with connected(live) as client:
            got = await client.call("config.get", {})
            # Someone else edits the file in between.
            path.write_text(path.read_text().replace("gpt-test", "gpt-other"))
            edited = path.read_text()
            res = await client.request("config.set", {"raw": got["raw"], "baseHash": got["hash"]})
            assert res["ok"] is False and res["error"]["code"] == "CONFLICT"
            assert res["error"]["details"]["code"] == "CONFIG_HASH_MISMATCH"
            assert res["error"]["details"]["currentHash"] == sha(edited)
            res = await client.request("config.set", {"raw": got["raw"]})
            assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST"
            assert res["error"]["details"]["code"] == "BASE_HASH_REQUIRED"
            assert path.read_text() == edited
            assert not (tmp_path / "openclaw.json.bak").exists()


async def test_invalid_config_is_refused_with_line_numbers(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        path = tmp_path / "openclaw.json"
        before = path.read_text()
        async with connected(live) as client:
            got = await client.call("config.get", {})
            bad = got["raw"].replace('"mode": "local"', '"mode": "local",\n    "bogusKey": 1')
            res = await client.request("config.set", {"raw": bad, "baseHash": got["hash"]})
            assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST"
            issues = res["error"]["details"]["issues"]
            assert issues[0]["path"] == "gateway" and "bogusKey" in issues[0]["message"]
            line = next(i for i, t in enumerate(bad.splitlines(), 1) if '"bogusKey"' in t)
            assert issues[0]["line"] == line
            assert_no_secrets(res)
            res = await client.request("config.set", {"raw": "{ not json", "baseHash": got["hash"]})
            assert res["error"]["code"] == "INVALID_REQUEST" and "JSON5" in res["error"]["message"]
            # A config the gateway could not start with is refused too.
            pw = json5.loads(got["raw"])
            pw["gateway"]["auth"] = {"mode": "password"}
            res = await client.request(
                "config.set", {"raw": json.dumps(pw), "baseHash": got["hash"]}
            )
            assert (
                res["error"]["code"] == "INVALID_REQUEST" and "password" in res["error"]["message"]
            )
        assert path.read_text() == before
        assert not (tmp_path / "openclaw.json.bak").exists()


async def test_placeholder_without_stored_secret_is_refused(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        async with connected(live) as client:
            got = await client.call("config.get", {})
            data = json5.loads(got["raw"])
            data["models"]["providers"]["google"] = {"apiKey": REDACTED}
            res = await client.request(
                "config.set", {"raw": json.dumps(data), "baseHash": got["hash"]}
            )
            assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST"
            assert "models.providers.google.apiKey" in res["error"]["message"]


async def test_restart_only_changes_are_reported_not_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        running_port = live.gateway.loaded.config.gateway.port
        async with connected(live) as client:
            got = await client.call("config.get", {})
            res = await client.call(
                "config.patch",
                {
                    "raw": '{ gateway: { port: 3999 }, session: { dmScope: "per-peer" } }',
                    "baseHash": got["hash"],
                },
            )
            assert res["restartRequired"] is True and res["restartPaths"] == ["gateway.port"]
            assert "session.dmScope" in res["applied"]
            assert res["restartScheduled"] is False
            # No restart hook here: the operator is told, once, that a restart is needed.
            told = [r for r in caplog.records if "restart the gateway to apply" in r.getMessage()]
            assert [r.getMessage() for r in told] == [
                "config saved; restart the gateway to apply: gateway.port"
            ]
            assert live.gateway.loaded.config.gateway.port == running_port
            assert live.gateway.loaded.config.session.dm_scope == "per-peer"
            on_disk = json5.loads((tmp_path / "openclaw.json").read_text())
            assert on_disk["gateway"]["port"] == 3999
            assert on_disk["models"]["providers"]["openai"]["apiKey"] == OPENAI_KEY
            snap = await client.call("config.get", {})
            assert snap["restartRequired"] is True and snap["restartPaths"] == ["gateway.port"]
            # Undoing it clears the pending restart.
            res = await client.call(
                "config.patch", {"raw": "{ gateway: { port: null } }", "baseHash": snap["hash"]}
            )
            assert res["restartRequired"] is False


async def test_patch_and_apply(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        async with connected(live) as client:
            got = await client.call("config.get", {})
            patch = {"agents": {"defaults": {"model": {"fallbacks": ["openai/gpt-b"]}}}}
            res = await client.call(
                "config.patch", {"raw": json.dumps(patch), "baseHash": got["hash"]}
            )
            assert_no_secrets(res)
            assert res["config"]["agents"]["defaults"]["model"] == {
                "primary": "openai/gpt-test",
                "fallbacks": ["openai/gpt-b"],
            }
            res2 = await client.request("config.patch", {"raw": "[1]", "baseHash": res["hash"]})
            assert res2["error"]["code"] == "INVALID_REQUEST"
            snap = await client.call("config.get", {})
            data = json5.loads(snap["raw"])
            data["session"] = {"dmScope": "per-channel-peer"}
            res3 = await client.call(
                "config.apply",
                {"raw": json.dumps(data), "baseHash": snap["hash"], "note": "from a test"},
            )
            assert res3["ok"] and live.gateway.loaded.config.session.dm_scope == "per-channel-peer"
            bad = await client.request("config.set", {"raw": "{}", "baseHash": "x", "nope": 1})
            assert bad["error"]["code"] == "INVALID_REQUEST"


async def test_creating_the_file_when_missing(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, None) as live:
        async with connected(live) as client:
            got = await client.call("config.get", {})
            assert got["exists"] is False and got["hash"] is None and got["raw"] is None
            raw = '{ gateway: { mode: "local" } }'
            res = await client.call("config.set", {"raw": raw})
            assert res["ok"] and (tmp_path / "openclaw.json").read_text().startswith(raw)
            got = await client.call("config.get", {})
            assert got["exists"] is True and got["hash"] == res["hash"]


async def test_scopes_read_only_cannot_write(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        async with connected(live, scopes=["operator.read"]) as client:
            got = await client.call("config.get", {})
            schema = await client.call("config.schema", {})
            jsonschema.validate(schema, CONFIG_SCHEMA_RESPONSE)
            for name in ("config.set", "config.apply", "config.patch"):
                res = await client.request(name, {"raw": got["raw"], "baseHash": got["hash"]})
                assert res["ok"] is False and res["error"]["code"] == "FORBIDDEN"
                assert res["error"]["details"]["missingScope"] == "operator.admin"
        async with connected(live, scopes=["operator.write"]) as client:
            res = await client.request("config.set", {"raw": got["raw"], "baseHash": got["hash"]})
            assert res["error"]["code"] == "FORBIDDEN"


async def test_schema_describes_our_models(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, base_config()) as live:
        async with connected(live, scopes=["operator.read"]) as client:
            res = await client.call("config.schema", {})
        schema = res["schema"]
        assert schema["additionalProperties"] is False
        assert {"gateway", "agents", "models", "channels", "tools"} <= set(schema["properties"])
        assert res["uiHints"]["gateway.auth.token"]["sensitive"] is True
        assert res["uiHints"]["models.providers.*.apiKey"]["sensitive"] is True
        validator = jsonschema.Draft202012Validator(schema)
        assert not list(validator.iter_errors(base_config()))
        assert list(validator.iter_errors({"gateway": {"bogus": 1}}))
        assert list(validator.iter_errors({"nope": 1}))
