"""memory_search / memory_get through the registry, privacy, and hybrid search against a
fake OpenAI embeddings endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.agents import tools
from gateway.agents.tools.registry import Requester, ToolContext, ToolOutput, invoke
from gateway.config.models import OpenClawConfig
from providers.types import ToolCall
from tests.fakes.embeddings import FakeEmbeddings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "memory_workspace"
REGISTRY = tools.load()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(FIXTURE, dest)
    return dest


@pytest.fixture
async def embeddings() -> AsyncIterator[FakeEmbeddings]:
    server = FakeEmbeddings()
    await server.start()
    yield server
    await server.stop()


def context(
    ws: Path, config: dict[str, Any] | None = None, requester: Requester | None = None
) -> ToolContext:
    return ToolContext(
        agent_id="main",
        session_key="agent:main:main",
        run_id="r1",
        workspace=ws,
        config=OpenClawConfig.model_validate(config or {}),
        requester=requester or Requester.operator(),
        extras={"memory_db": ws.parent / "state" / f"{id(config)}.sqlite"},
    )


async def call(ctx: ToolContext, name: str, **args: Any) -> tuple[ToolOutput, dict[str, Any]]:
    out = await invoke(ToolCall(id="c1", name=name, arguments=args), REGISTRY, ctx)
    return out, json.loads(out.text)


async def test_search_finds_the_birthday_with_line_range_and_citation(ws: Path) -> None:
    out, body = await call(context(ws), "memory_search", query="when is my sister's birthday?")
    assert not out.is_error
    assert body["provider"] == "fts" and body["mode"] == "keyword"
    top = next(r for r in body["results"] if r["path"] == "MEMORY.md")
    assert "3 May" in top["snippet"]
    assert top["citation"] == f"MEMORY.md#L{top['startLine']}-L{top['endLine']}"
    assert top["source"] == "memory" and top["corpus"] == "memory"
    _, few = await call(context(ws), "memory_search", query="sister birthday", maxResults=1)
    assert len(few["results"]) == 1
    _, strict = await call(context(ws), "memory_search", query="sister birthday", minScore=0.99)
    assert strict["results"] == []


async def test_search_sees_a_note_written_just_before(ws: Path) -> None:
    ctx = context(ws)
    await call(ctx, "memory_search", query="anything")
    (ws / "memory" / "2026-05-03.md").write_text("- The wifi password lives in the blue folder.\n")
    _, body = await call(ctx, "memory_search", query="wifi password")
    assert body["results"][0]["path"] == "memory/2026-05-03.md"


async def test_memory_is_refused_to_strangers_and_groups(ws: Path) -> None:
    stranger = Requester(owner=False, channel="telegram", chat_type="direct", sender_id="9")
    owner_in_group = Requester(owner=True, channel="telegram", chat_type="group", chat_id="-1")
    for who in (stranger, owner_in_group):
        for name, args in (
            ("memory_search", {"query": "birthday"}),
            ("memory_get", {"path": "MEMORY.md"}),
        ):
            out, body = await call(context(ws, requester=who), name, **args)
            assert out.is_error and "private sessions" in body["error"]
            assert "3 May" not in out.text


async def test_memory_get_reads_slices_and_is_confined(ws: Path, tmp_path: Path) -> None:
    ctx = context(ws)
    out, body = await call(ctx, "memory_get", path="MEMORY.md", **{"from": 4, "lines": 1})
    assert body == {
        "status": "ok",
        "path": "MEMORY.md",
        "from": 4,
        "lines": 1,
        "totalLines": 9,
        "text": "- My sister Anna's birthday is 3 May. She likes orchids.",
        "truncated": True,
        "nextFrom": 5,
    }
    _, whole = await call(ctx, "memory_get", path="memory/projects/garden-planner.md")
    assert whole["lines"] == whole["totalLines"] == 5 and "truncated" not in whole
    _, missing = await call(ctx, "memory_get", path="memory/2020-01-01.md")
    assert missing == {"status": "not_found", "path": "memory/2020-01-01.md"}
    (tmp_path / "secret.md").write_text("outside secret")
    (ws / "memory" / "escape.md").symlink_to(tmp_path / "secret.md")
    (ws / "AGENTS.md").write_text("instructions")
    for bad in (
        "AGENTS.md",
        "../secret.md",
        "memory/../AGENTS.md",
        "/etc/passwd",
        "memory/escape.md",
        "memory/notes.txt",
    ):
        out, body = await call(ctx, "memory_get", path=bad)
        assert out.is_error, bad
        assert "outside secret" not in out.text
    out, body = await call(ctx, "memory_get", path="MEMORY.md", extra=1)
    assert out.is_error and "extra" in body["error"]


async def test_other_corpora_and_disabled_search(ws: Path) -> None:
    _, body = await call(context(ws), "memory_search", query="birthday", corpus="sessions")
    assert body["results"] == [] and "not indexed" in body["warning"]
    out, body = await call(
        context(ws, {"memory": {"search": {"enabled": False}}}), "memory_search", query="x"
    )
    assert out.is_error and "disabled" in body["error"]


async def test_extra_paths_from_config(ws: Path, tmp_path: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    (team / "oncall.md").write_text("The pager rotation changes every Monday.\n")
    cfg = {"agents": {"defaults": {"memorySearch": {"extraPaths": [str(team)]}}}}
    _, body = await call(context(ws, cfg), "memory_search", query="pager rotation")
    assert body["results"][0]["path"] == (team / "oncall.md").as_posix()


async def test_hybrid_search_finds_meaning_without_shared_words(
    ws: Path, embeddings: FakeEmbeddings
) -> None:
    question = "sibling born"  # neither word is in any note
    _, keyword = await call(context(ws), "memory_search", query=question)
    assert keyword["results"] == []
    cfg = {
        "memory": {
            "search": {
                "provider": "openai",
                "model": "fake-embed",
                "remote": {"baseUrl": embeddings.base_url, "apiKey": "sk-memory-test"},
            }
        }
    }
    ctx = context(ws, cfg)
    _, body = await call(ctx, "memory_search", query=question)
    assert body["provider"] == "openai" and body["mode"] == "hybrid"
    assert body["results"][0]["path"] in ("MEMORY.md", "memory/2026-05-02.md")
    assert "sister" in body["results"][0]["snippet"]
    assert embeddings.requests[0]["auth"] == "Bearer sk-memory-test"
    assert embeddings.requests[0]["body"]["model"] == "fake-embed"
    embedded = len(embeddings.inputs)
    await call(ctx, "memory_search", query="garden")
    assert len(embeddings.inputs) == embedded + 1, "chunks are embedded once, then only queries"
    embeddings.status = 500
    out, body = await call(ctx, "memory_search", query="sourdough hydration")
    assert not out.is_error and body["mode"] == "keyword"
    assert "HTTP 500" in body["warning"] and "sk-memory-test" not in out.text
    assert body["results"][0]["path"] == "memory/2026-05-02.md"


async def test_openai_provider_without_key_falls_back_with_a_reason(ws: Path) -> None:
    cfg = {"memory": {"search": {"provider": "openai"}}}
    _, body = await call(context(ws, cfg), "memory_search", query="sourdough")
    assert body["mode"] == "keyword" and "no API key" in body["warning"]
    assert body["results"][0]["path"] == "memory/2026-05-02.md"
