"""A fake OpenAI embeddings endpoint (`POST /v1/embeddings`) on 127.0.0.1.

Vectors are deterministic bags of "concepts": each word maps to a concept (synonyms share
one, see CONCEPTS) hashed into DIM dimensions, so texts that share meaning but not words
still come out similar; that is what lets a test tell hybrid search from keyword search.
Set `status` to make every request fail with that HTTP status.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aiohttp import web

from tests.fakes.base import LoopbackServer

DIM = 64
CONCEPTS = {
    "sister": "sibling",
    "brother": "sibling",
    "sibling": "sibling",
    "birthday": "birth",
    "born": "birth",
    "birth": "birth",
    "database": "db",
    "postgresql": "db",
    "mysql": "db",
}


def embed(text: str) -> list[float]:
    vec = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        concept = CONCEPTS.get(word, word)
        slot = int(hashlib.sha256(concept.encode()).hexdigest(), 16) % DIM
        vec[slot] += 3.0 if concept != word or word in CONCEPTS else 1.0
    return vec


class FakeEmbeddings(LoopbackServer):
    def __init__(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        super().__init__(app)
        self.status: int | None = None
        self.inputs: list[str] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def _embeddings(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        await self.record({"auth": request.headers.get("Authorization"), "body": body})
        if self.status is not None:
            return web.json_response(
                {"error": {"message": "fake failure", "type": "server_error"}}, status=self.status
            )
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.inputs.extend(inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": embed(text)}
            for i, text in enumerate(inputs)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake"),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        )
