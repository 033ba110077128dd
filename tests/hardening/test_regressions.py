"""Regressions found by the hardening fuzz, pinned down as plain tests."""

from __future__ import annotations

from pathlib import Path

from tests.harness import connected, live_gateway


async def test_lone_surrogates_in_an_answer_do_not_kill_the_connection(tmp_path: Path) -> None:
    # json5 keeps "\ud94f\udf0d" as two lone surrogates; the error message quoting the key used
    # to make send_text raise in the writer, which died silently: no answer, then a hang.
    raw = '{"\\ud94f\\udf0d": true}'
    async with live_gateway(tmp_path) as live, connected(live) as client:
        base = (await client.call("config.get", {}))["hash"]
        res = await client.request("config.set", {"raw": raw, "baseHash": base})
        assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST"
        assert "Unrecognized key" in res["error"]["message"]
        # Same connection still answers.
        assert (await client.call("health"))["ok"] is True
    # The reply names the key (escaped on the wire, read back as the same text).
    assert "\U00063f0d" in res["error"]["message"]


def test_escaped_keys_get_their_line() -> None:
    # The line scanner compared raw text ("\\"") with parsed keys ('"'): no line in the error.
    from gateway.config.errors import ConfigError
    from gateway.config.loader import validate_text

    raw = '{\n  "agents": {},\n  "\\"": null,\n  "\\u00e8": 1\n}'
    try:
        validate_text(Path("/x/openclaw.json"), raw, {})
    except ConfigError as exc:
        lines = exc.lines()
    else:
        raise AssertionError("should not load")
    assert lines == [
        'openclaw.json:3 — <root>: Unrecognized key: """',
        'openclaw.json:4 — <root>: Unrecognized key: "è"',
    ]
