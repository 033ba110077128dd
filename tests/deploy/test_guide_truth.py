"""docs/deploy-fly.md says what the program does: the quoted exit-78 texts are the real ones,
config edits need no manual restart, the seeded-origins line is described as it behaves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config.loader import validate_text
from gateway.settings import Flags, StartupError, resolve_auth, seed_origins
from tests.deploy import GUIDE

TEXT = GUIDE.read_text(encoding="utf-8")
FLY_ENV = {"FLY_APP_NAME": "my-clawgate", "FLY_MACHINE_ID": "148e123a"}


def _example_config() -> str:
    m = re.search(r"<!-- example-config[^>]*-->\n```json\n(.*?)\n```", TEXT, re.S)
    assert m
    return m.group(1)


def test_the_quoted_refusal_is_the_real_exit_78_text() -> None:
    with pytest.raises(StartupError) as info:
        resolve_auth(
            Flags(bind="lan"),
            validate_text(Path("/data/openclaw.json"), "{}", {}).config,
            {},
            "0.0.0.0",
            "lan",
            True,
        )
    assert info.value.exit_code == 78
    assert "```\n" + "\n".join(info.value.lines) + "\n```" in TEXT


def test_the_quoted_invalid_config_text_is_the_real_one() -> None:
    server = (Path(__file__).resolve().parents[2] / "gateway" / "server.py").read_text()
    for quoted in (
        "Gateway failed to start: Invalid config at",
        "Fix the lines above, then start the gateway again.",
    ):
        assert quoted in TEXT and quoted in server


def test_no_restart_to_apply_where_the_watcher_applies_edits() -> None:
    assert not re.search(
        r"restart(ing)? (it |the gateway )?to apply it|restart after changing", TEXT
    )
    assert "There is nothing to restart: the running gateway watches the file" in TEXT
    assert "config file change applied" in TEXT and "restarting to apply" in TEXT
    watch = (Path(__file__).resolve().parents[2] / "gateway" / "config" / "watch.py").read_text()
    assert '"config file change applied (%s)"' in watch and '"restarting to apply %s"' in watch


def test_config_written_in_two_pieces_is_covered() -> None:
    assert '### "Config written in two pieces": one parse error, then applied' in TEXT
    assert "config file change not applied, keeping the running config" in TEXT


def test_seeded_origins_line_behaves_as_described() -> None:
    example = validate_text(Path("/data/openclaw.json"), _example_config(), {}).config
    # With the example config (which lists all three origins) nothing is seeded: no line.
    _, seeded = seed_origins(example, "0.0.0.0", 3000, FLY_ENV)
    assert seeded == []
    assert "with the example config of step 5, which\nlists them, it does not appear" in TEXT
    # On the first boot (no config) all three are seeded, as the quoted log line shows.
    empty = validate_text(Path("/data/openclaw.json"), "{}", {}).config
    _, seeded = seed_origins(empty, "0.0.0.0", 3000, FLY_ENV)
    cli = (Path(__file__).resolve().parents[2] / "gateway" / "cli.py").read_text()
    assert (
        '"seeded gateway.controlUi.allowedOrigins %s for bind=%s (this run only, config not"' in cli
    )
    line = (
        f"[gateway] seeded gateway.controlUi.allowedOrigins {seeded} for bind=lan (this run only,"
        " config not written); add other origins to gateway.controlUi.allowedOrigins if needed."
    )
    assert line in TEXT


def test_the_guide_points_at_doctor_and_the_ready_lines() -> None:
    assert "python -m gateway doctor --port 3000 --bind lan" in TEXT
    assert "[gateway] Control UI: https://my-clawgate.fly.dev/" in TEXT
    assert "[gateway] gateway token: from OPENCLAW_GATEWAY_TOKEN" in TEXT
