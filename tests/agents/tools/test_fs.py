"""read / write / edit / apply_patch / ls through registry.invoke (tools.md §1.1-§1.6, §7)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.agents.tools.registry import ToolContext

from .helpers import call, config, context, error_of


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "state" / "workspace"


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return context(ws)


# --- write / read round trip -----------------------------------------------------------------


async def test_write_creates_parents_and_read_returns_raw_text(ctx: ToolContext, ws: Path) -> None:
    out = await call(ctx, "write", path="notes/todo.md", content="- buy milk\n- call mum\n")
    assert not out.is_error
    assert "22 bytes" in out.text and "notes/todo.md" in out.text
    assert (ws / "notes" / "todo.md").read_text() == "- buy milk\n- call mum\n"
    assert out.details["created"] is True
    again = await call(ctx, "read", path="notes/todo.md")
    assert again.text == "- buy milk\n- call mum\n"
    assert again.details == {"kind": "text", "content": again.text}


async def test_write_same_content_reports_unchanged(ctx: ToolContext) -> None:
    await call(ctx, "write", path="a.txt", content="x")
    out = await call(ctx, "write", path="a.txt", content="x")
    assert out.details == {"changed": False}


async def test_read_pages_with_offset_limit_and_continuation(ctx: ToolContext, ws: Path) -> None:
    (ws / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = await call(ctx, "read", path="n.txt", offset=3, limit=4)
    body, note = out.text.split("\n\n[")
    assert body == "line 3\nline 4\nline 5\nline 6"
    assert "4 more lines" in note and "offset=7" in note
    assert out.details["continuation"] == {"offset": 7}
    rest = await call(ctx, "read", path="n.txt", offset=7)
    assert rest.text == "line 7\nline 8\nline 9\nline 10\n"


async def test_read_page_cap_and_cursor_for_a_huge_line(ctx: ToolContext, ws: Path) -> None:
    (ws / "long.txt").write_text("a" * 50_000 + "B" * 50_000 + "\nnext\n")
    first = await call(ctx, "read", path="long.txt")
    # A 200k-token window: 10 % of it is 80 000 chars, but one result holds 64 000, so a page
    # is 63 700 chars (room for the note).
    assert first.details["continuation"] == {"offset": 1, "cursor": 63_700}
    assert first.details["content"] == "a" * 50_000 + "B" * 13_700
    second = await call(ctx, "read", path="long.txt", offset=1, cursor=63_700)
    assert second.text == "B" * 36_300 + "\nnext\n"


async def test_read_small_window_page_fits_one_result(tmp_path: Path) -> None:
    # 16k-token window: results are capped at 16 000 chars, so a page stops before that
    # and keeps its continuation note.
    ctx = context(tmp_path / "w", window=16_000)
    (tmp_path / "w" / "big.txt").write_text("".join(f"{i:039d}\n" for i in range(5_000)))
    out = await call(ctx, "read", path="big.txt")
    lines = (16_000 - 300) // 40
    assert len(out.details["content"]) == lines * 40
    assert out.details["continuation"]["offset"] == lines + 1
    assert f"{5_000 - lines} more lines" in out.text and len(out.text) <= 16_000


async def test_read_missing_optional_and_daily_memory(ctx: ToolContext) -> None:
    missing = await call(ctx, "read", path="nope.md")
    assert "ENOENT" in error_of(missing) and str(ctx.workspace) in error_of(missing)
    optional = await call(ctx, "read", path="nope.md", optional=True)
    assert not optional.is_error and optional.details["status"] == "not_found"
    daily = await call(ctx, "read", path="memory/2026-01-02.md")
    assert not daily.is_error and daily.details["kind"] == "not_found"


async def test_read_masks_dotenv_values(ctx: ToolContext, ws: Path) -> None:
    (ws / ".env").write_text("# keys\nAPI_KEY=sk-live-123456789\nexport NAME = bob\nEMPTY=\n")
    out = await call(ctx, "read", path=".env")
    assert "sk-live" not in out.text and "bob" not in out.text
    assert "API_KEY=***" in out.text and "# keys" in out.text


async def test_read_refuses_binary_and_directories(ctx: ToolContext, ws: Path) -> None:
    (ws / "b.bin").write_bytes(b"\x00\x01\x02")
    assert "binary" in error_of(await call(ctx, "read", path="b.bin"))
    (ws / "d").mkdir()
    assert "directory" in error_of(await call(ctx, "read", path="d"))


# --- path forms and workspaceOnly ------------------------------------------------------------


async def test_path_forms(ctx: ToolContext, ws: Path) -> None:
    (ws / "f.txt").write_text("hello")
    assert (await call(ctx, "read", path=f"file://{ws}/f.txt")).text == "hello"
    assert (await call(ctx, "read", path="@f.txt")).text == "hello"
    assert (await call(ctx, "read", path=str(ws / "f.txt"))).text == "hello"


@pytest.mark.parametrize(
    "path",
    ["../openclaw.json", "/etc/hostname", "/tmp", "sub/../../openclaw.json", "~/.bashrc"],
)
async def test_workspace_only_refuses_outside_paths(ctx: ToolContext, ws: Path, path: str) -> None:
    (ws.parent / "openclaw.json").write_text('{"secret": "x"}')
    for name in ("read", "ls"):
        message = error_of(await call(ctx, name, path=path))
        assert "outside the workspace" in message and str(ws) in message
    message = error_of(await call(ctx, "write", path=path + "x", content="no"))
    assert "outside the workspace" in message


async def test_symlink_escapes_refused_inside_links_followed(ctx: ToolContext, ws: Path) -> None:
    (ws.parent / "openclaw.json").write_text('{"token": "s3cret"}')
    os.symlink("/etc", ws / "etc")
    os.symlink(ws.parent / "openclaw.json", ws / "cfg.json")
    (ws / "real.txt").write_text("inside")
    os.symlink(ws / "real.txt", ws / "alias.txt")
    assert "symlink" in error_of(await call(ctx, "read", path="etc/hostname"))
    assert "outside" in error_of(await call(ctx, "ls", path="etc"))
    assert "outside" in error_of(await call(ctx, "read", path="cfg.json"))
    assert "outside" in error_of(await call(ctx, "write", path="cfg.json", content="{}"))
    assert "outside" in error_of(
        await call(ctx, "edit", path="cfg.json", edits=[{"oldText": "s3cret", "newText": "x"}])
    )
    assert (ws.parent / "openclaw.json").read_text() == '{"token": "s3cret"}'
    assert (await call(ctx, "read", path="alias.txt")).text == "inside"


async def test_workspace_only_false_allows_outside(tmp_path: Path) -> None:
    ws = tmp_path / "w"
    ctx = context(ws, config({"tools": {"fs": {"workspaceOnly": False}}}))
    (tmp_path / "out.txt").write_text("outside")
    assert (await call(ctx, "read", path="../out.txt")).text == "outside"
    per_agent = context(
        ws,
        config(
            {
                "tools": {"fs": {"workspaceOnly": False}},
                "agents": {"entries": {"main": {"tools": {"fs": {"workspaceOnly": True}}}}},
            }
        ),
    )
    assert "outside" in error_of(await call(per_agent, "read", path="../out.txt"))


# --- edit ------------------------------------------------------------------------------------


async def test_edit_replaces_unique_blocks_against_the_original(ctx: ToolContext, ws: Path) -> None:
    (ws / "c.py").write_text("a = 1\nb = 2\nc = 3\n")
    out = await call(
        ctx,
        "edit",
        path="c.py",
        edits=[{"oldText": "a = 1", "newText": "b = 2"}, {"oldText": "c = 3", "newText": "c = 4"}],
    )
    assert not out.is_error, out.text
    assert "2 blocks" in out.text
    assert (ws / "c.py").read_text() == "b = 2\nb = 2\nc = 4\n"
    assert out.details["firstChangedLine"] == 1 and "-a = 1" in out.details["diff"]


async def test_edit_errors(ctx: ToolContext, ws: Path) -> None:
    (ws / "t.txt").write_text("a\na\nb\n")

    async def err(edits: list[dict[str, str]], path: str = "t.txt") -> str:
        return error_of(await call(ctx, "edit", path=path, edits=edits))

    assert "not found" in await err([{"oldText": "zzz", "newText": "y"}])
    assert "Current file content" in await err([{"oldText": "zzz", "newText": "y"}])
    assert "2 times" in await err([{"oldText": "a\n", "newText": "a\n"}])  # unique before no-op
    assert "must not be empty" in await err([{"oldText": "", "newText": "y"}])
    assert "overlap" in await err(
        [{"oldText": "a\nb", "newText": "x"}, {"oldText": "b\n", "newText": "y"}]
    )
    assert "unchanged" in await err([{"oldText": "b", "newText": "b"}])
    assert "ENOENT" in await err([{"oldText": "a", "newText": "b"}], path="missing.txt")
    assert "edits" in error_of(await call(ctx, "edit", path="t.txt", edits=[]))
    assert (ws / "t.txt").read_text() == "a\na\nb\n"


async def test_edit_keeps_crlf_and_bom(ctx: ToolContext, ws: Path) -> None:
    (ws / "w.txt").write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\nthree\r\n")
    out = await call(ctx, "edit", path="w.txt", edits=[{"oldText": "one\ntwo", "newText": "1\n2"}])
    assert not out.is_error, out.text
    assert (ws / "w.txt").read_bytes() == b"\xef\xbb\xbf1\r\n2\r\nthree\r\n"


async def test_edit_lenient_match_splices_into_original(ctx: ToolContext, ws: Path) -> None:
    (ws / "q.md").write_text("say \u201chello\u201d \u2014 now   \nkeep\n")
    out = await call(
        ctx, "edit", path="q.md", edits=[{"oldText": 'say "hello" - now\n', "newText": "bye\n"}]
    )
    assert not out.is_error, out.text
    assert (ws / "q.md").read_text() == "bye\nkeep\n"


# --- apply_patch -------------------------------------------------------------------------------


async def test_apply_patch_add_update_move_delete(ctx: ToolContext, ws: Path) -> None:
    (ws / "m.txt").write_text("alpha\nbeta\ngamma\n")
    (ws / "gone.txt").write_text("bye\n")
    (ws / "old.txt").write_text("x\ny\n")
    patch = "\n".join(
        [
            "*** Begin Patch",
            "*** Add File: new/n.txt",
            "+hello",
            "+world",
            "*** Update File: m.txt",
            "@@",
            " alpha",
            "-beta",
            "+BETA",
            " gamma",
            "*** Update File: old.txt",
            "*** Move to: moved.txt",
            "@@",
            "-y",
            "+z",
            "*** Delete File: gone.txt",
            "*** End Patch",
        ]
    )
    out = await call(ctx, "apply_patch", input=patch)
    assert not out.is_error, out.text
    assert out.text.splitlines()[1:] == ["A new/n.txt", "M m.txt", "M moved.txt", "D gone.txt"]
    assert (ws / "new" / "n.txt").read_text() == "hello\nworld\n"
    assert (ws / "m.txt").read_text() == "alpha\nBETA\ngamma\n"
    assert (ws / "moved.txt").read_text() == "x\nz\n"
    assert not (ws / "old.txt").exists() and not (ws / "gone.txt").exists()


async def test_apply_patch_mismatch_changes_nothing(ctx: ToolContext, ws: Path) -> None:
    (ws / "m.txt").write_text("alpha\n")
    patch = "*** Begin Patch\n*** Add File: a.txt\n+a\n*** Update File: m.txt\n@@\n-nothere\n+x\n*** End Patch"
    assert "expected lines were not found" in error_of(await call(ctx, "apply_patch", input=patch))
    assert not (ws / "a.txt").exists()
    bad = "*** Update File: m.txt\n*** End Patch"
    assert "Begin Patch" in error_of(await call(ctx, "apply_patch", input=bad))
    escape = "*** Begin Patch\n*** Add File: ../evil.txt\n+x\n*** End Patch"
    assert "outside" in error_of(await call(ctx, "apply_patch", input=escape))


async def test_apply_patch_disabled_by_config(tmp_path: Path) -> None:
    ctx = context(tmp_path / "w", config({"tools": {"exec": {"applyPatch": {"enabled": False}}}}))
    assert "not found" in error_of(await call(ctx, "apply_patch", input="x"))


# --- ls ----------------------------------------------------------------------------------------


async def test_ls_sorted_quoted_dirs_marked_and_paged(ctx: ToolContext, ws: Path) -> None:
    for name in ("b.txt", ".hidden", "a dir", 'q"uote', "Z"):
        if name == "a dir":
            (ws / name).mkdir()
        else:
            (ws / name).write_text("")
    os.symlink(ws / "a dir", ws / "link")
    out = await call(ctx, "ls")
    assert out.text.splitlines() == [
        json.dumps(n) for n in [".hidden", "Z", "a dir/", "b.txt", "link", 'q"uote']
    ]
    page = await call(ctx, "ls", limit=2)
    assert page.text.splitlines()[:2] == ['".hidden"', '"Z"']
    assert "after=" in page.text.splitlines()[2]
    rest = await call(ctx, "ls", limit=2, after="Z")
    assert rest.text.splitlines()[:2] == ['"a dir/"', '"b.txt"']


# --- invoke envelope ----------------------------------------------------------------------------


async def test_bad_arguments_and_unknown_tool_are_error_results(ctx: ToolContext) -> None:
    assert "path" in error_of(await call(ctx, "read"))
    assert "not found" in error_of(await call(ctx, "grep", pattern="x"))
    # Any result is cut to the §1.1 cap, with a note (here: an ls of 300 long names).
    for i in range(300):
        (ctx.workspace / f"{i:03d}{'n' * 100}").write_text("")
    small = context(ctx.workspace, window=16_000)
    out = await call(small, "ls")
    assert len(out.text) <= 16_000 and "more characters not shown" in out.text
