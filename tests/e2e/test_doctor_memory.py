"""`doctor.memory.status` tells the truth now that memory search exists: keyword search
(SQLite FTS5) is there, with what is indexed; embeddings are reported as not configured,
or, when configured, checked live only on `probe`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.agents.memory.search import searcher_for
from gateway.agents.memory.settings import memory_settings
from tests.e2e.conftest import config
from tests.fakes.embeddings import FakeEmbeddings
from tests.fakes.llm import FakeLLM
from tests.harness import connected, live_gateway


@pytest.fixture
async def embeddings() -> AsyncIterator[FakeEmbeddings]:
    srv = FakeEmbeddings()
    await srv.start()
    yield srv
    await srv.stop()


async def test_keyword_search_only(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "workspace" / "memory").mkdir(parents=True)
    (tmp_path / "workspace" / "MEMORY.md").write_text("# Memory\n- sister: 3 May\n")
    async with live_gateway(tmp_path, config(fake_llm)) as live, connected(live) as client:
        before = await client.call("doctor.memory.status", {"probe": False})
        # The index is built on the first search (what memory_search does).
        workspace = tmp_path / "workspace"
        settings = memory_settings(live.gateway.loaded.config, "main", workspace)
        db = tmp_path / "agents" / "main" / "memory" / "index.sqlite"
        searcher = searcher_for(db, workspace, settings)
        assert (await searcher.search("sister", 5, 0)).results
        after = await client.call("doctor.memory.status", {})
    assert before["agentId"] == "main" and before["provider"] == "fts"
    assert before["searchRuntimeRegistered"] is True
    assert before["fts"] == {"available": True, "indexed": False, "files": 0, "chunks": 0}
    embedding = before["embedding"]
    assert embedding["ok"] is False and embedding["checked"] is True
    assert "keyword search" in embedding["error"]
    assert after["fts"]["indexed"] is True and after["fts"]["files"] == 1
    assert after["fts"]["chunks"] >= 1


async def test_configured_embeddings_are_probed_only_on_request(
    tmp_path: Path, fake_llm: FakeLLM, embeddings: FakeEmbeddings
) -> None:
    search = {"provider": "openai", "remote": {"baseUrl": embeddings.url + "/v1"}}
    cfg = config(fake_llm, memory={"search": search})
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        quiet = await client.call("doctor.memory.status", {})
        requests_before = len(embeddings.requests)
        probed = await client.call("doctor.memory.status", {"probe": True})
        embeddings.status = 401
        refused = await client.call("doctor.memory.status", {"deep": True})
    assert quiet["provider"] == "openai" and quiet["embedding"]["checked"] is False
    assert requests_before == 0
    assert probed["embedding"] == {"ok": True, "checked": True}
    assert refused["embedding"]["ok"] is False and "401" in refused["embedding"]["error"]
    assert "sk-e2e" not in str(refused)
