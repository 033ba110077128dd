from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.agents.workspace import (
    IDENTITY_LINE,
    SEED_FILES,
    TRUNCATION_NOTICE,
    BootstrapFile,
    PromptContext,
    build_system_prompt,
    ensure_workspace,
    load_bootstrap_files,
    resolve_workspace_dir,
)

STATE = Path("/state")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "/state/workspace"),
        ({"agent_workspace": "/custom"}, "/custom"),
        ({"agent_workspace": "~/ws", "home": Path("/home/u")}, "/home/u/ws"),
        ({"defaults_workspace": "/data/ws"}, "/data/ws"),
        ({"is_default_agent": False}, "/state/workspace-work"),
        ({"is_default_agent": False, "defaults_workspace": "/data/ws"}, "/data/ws/work"),
        ({"is_default_agent": False, "agent_workspace": "/mine"}, "/mine"),
        ({"agent_workspace": "  "}, "/state/workspace"),
    ],
)
def test_resolve_workspace_dir(kwargs: dict[str, object], expected: str) -> None:
    params = {"state_dir": STATE, **kwargs}
    assert resolve_workspace_dir("work", **params) == Path(expected)  # type: ignore[arg-type]


def test_seeding_brand_new_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    setup = ensure_workspace(ws)
    assert setup.created
    assert set(setup.seeded) == set(SEED_FILES)
    assert (ws / "BOOTSTRAP.md").exists()
    again = ensure_workspace(ws)
    assert not again.created and again.seeded == ()


def test_seeding_never_overwrites_and_skips_bootstrap_for_used_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "SOUL.md").write_text("mine")
    setup = ensure_workspace(ws)
    assert (ws / "SOUL.md").read_text() == "mine"
    assert "BOOTSTRAP.md" not in setup.seeded and not (ws / "BOOTSTRAP.md").exists()
    assert {"AGENTS.md", "IDENTITY.md", "USER.md"} <= set(setup.seeded)


def test_bootstrap_deleted_stays_deleted(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ensure_workspace(ws)
    (ws / "BOOTSTRAP.md").unlink()
    ensure_workspace(ws)
    assert not (ws / "BOOTSTRAP.md").exists()


def test_skip_bootstrap(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    setup = ensure_workspace(ws, skip_bootstrap=True)
    assert setup.created and setup.seeded == () and list(ws.iterdir()) == []


def test_seeding_does_not_write_through_symlinks(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside.md"
    (ws / "AGENTS.md").symlink_to(outside)
    ensure_workspace(ws)
    assert not outside.exists()


def write(ws: Path, name: str, text: str) -> None:
    (ws / name).write_text(text, encoding="utf-8")


def test_order_markers_and_private_memory(tmp_path: Path) -> None:
    ws = tmp_path
    write(ws, "MEMORY.md", "secret notes")
    write(ws, "SOUL.md", "soul")
    write(ws, "USER.md", "user")
    write(ws, "BOOTSTRAP.md", "boot")
    write(ws, "AGENTS.md", "agents")
    files = load_bootstrap_files(ws)
    assert [f.name for f in files] == [
        "AGENTS.md",
        "SOUL.md",
        "IDENTITY.md",
        "USER.md",
        "BOOTSTRAP.md",
        "MEMORY.md",
    ]
    assert files[2] == BootstrapFile("IDENTITY.md", None)  # required but missing
    group = load_bootstrap_files(ws, private_session=False)
    assert "MEMORY.md" not in [f.name for f in group]


def test_optional_files_omitted_when_missing(tmp_path: Path) -> None:
    names = [f.name for f in load_bootstrap_files(tmp_path)]
    assert names == ["AGENTS.md", "SOUL.md", "IDENTITY.md"]


def test_caps(tmp_path: Path) -> None:
    write(tmp_path, "AGENTS.md", "a" * 25_000)
    write(tmp_path, "SOUL.md", "s" * 100)
    write(tmp_path, "USER.md", "u" * 5_000)
    files = {f.name: f for f in load_bootstrap_files(tmp_path)}
    assert len(files["AGENTS.md"].content or "") == 20_000 and files["AGENTS.md"].truncated
    assert files["SOUL.md"].content == "s" * 100 and not files["SOUL.md"].truncated
    assert len(files["USER.md"].content or "") == 4_000 and files["USER.md"].truncated


def test_total_cap(tmp_path: Path) -> None:
    for name in ("AGENTS.md", "SOUL.md", "IDENTITY.md", "USER.md", "BOOTSTRAP.md"):
        write(tmp_path, name, "x" * 20_000)
    files = load_bootstrap_files(tmp_path, total_max_chars=50_000)
    sizes = [len(f.content or "") for f in files]
    assert sum(sizes) == 50_000
    assert sizes == [20_000, 20_000, 10_000, 0, 0]
    assert [f.truncated for f in files] == [False, False, True, True, True]
    small = load_bootstrap_files(tmp_path, max_chars=10)
    assert all(len(f.content or "") <= 10 for f in small)


def test_symlink_escaping_workspace_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (ws / "SOUL.md").symlink_to(secret)
    (ws / "USER.md").symlink_to("../secret.txt")
    inner = ws / "notes"
    inner.mkdir()
    write(inner, "agents.txt", "inside link target")
    (ws / "AGENTS.md").symlink_to(inner / "agents.txt")
    (ws / "IDENTITY.md").symlink_to(ws / "missing-target")
    with caplog.at_level(logging.WARNING, logger="gateway.agents.workspace"):
        files = {f.name: f for f in load_bootstrap_files(ws)}
    assert files["SOUL.md"].content is None
    assert "USER.md" not in files
    assert files["AGENTS.md"].content == "inside link target"
    assert files["IDENTITY.md"].content is None
    assert "TOP SECRET" not in repr(files)
    assert sum("outside the workspace" in r.getMessage() for r in caplog.records) == 2


def test_directory_or_fifo_instead_of_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").mkdir()
    os.mkfifo(tmp_path / "SOUL.md")
    files = {f.name: f for f in load_bootstrap_files(tmp_path)}
    assert files["AGENTS.md"].content is None and files["SOUL.md"].content is None


def test_only_known_names_are_read(tmp_path: Path) -> None:
    write(tmp_path, "EVIL.md", "nope")
    write(tmp_path, "AGENTS.md", "ok")
    prompt = build_system_prompt(
        PromptContext(workspace=tmp_path, files=load_bootstrap_files(tmp_path))
    )
    assert "nope" not in prompt and "ok" in prompt


def test_system_prompt_sections(tmp_path: Path) -> None:
    write(tmp_path, "AGENTS.md", "rules here")
    write(tmp_path, "SOUL.md", "x" * 30_000)
    ctx = PromptContext(
        workspace=tmp_path,
        files=load_bootstrap_files(tmp_path),
        session_key="agent:main:telegram:group:-1",
        model_ref="anthropic/claude-haiku-4-5",
        is_group=True,
        allow_silent=True,
        group_name="Family",
        group_system_prompt="Be brief here.",
        participants=("ann", "bob"),
        now=datetime(2026, 11, 23, 23, 12, tzinfo=UTC),
        timezone_name="UTC",
        host="box",
        os_name="Linux",
    )
    prompt = build_system_prompt(ctx)
    assert prompt.startswith(IDENTITY_LINE)
    order = [
        "# Safety",
        "# Tooling",
        "# Workspace",
        "# Project context",
        "## AGENTS.md",
        "rules here",
        "## SOUL.md",
        "## IDENTITY.md",
        "[missing file: IDENTITY.md]",
        TRUNCATION_NOTICE,
        "# Silent replies",
        "NO_REPLY",
        "# Messaging",
        "# Group chat",
        "Family",
        "ann, bob",
        "Be brief here.",
        "# Date and time",
        "Monday, 2026-11-23 23:12 (UTC)",
        "# Runtime",
        "host=box os=Linux model=anthropic/claude-haiku-4-5 session=agent:main:telegram:group:-1",
    ]
    positions = [prompt.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert str(tmp_path) in prompt


def test_private_prompt_has_no_group_or_silent_sections(tmp_path: Path) -> None:
    prompt = build_system_prompt(PromptContext(workspace=tmp_path, tools=("read", "write")))
    assert "# Group chat" not in prompt and "# Silent replies" not in prompt
    assert "- read\n- write" in prompt and "No tools are available" not in prompt
    assert "[missing file" not in prompt and TRUNCATION_NOTICE not in prompt
