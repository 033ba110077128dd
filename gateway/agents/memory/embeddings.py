"""Embeddings through the OpenAI SDK (OpenAI or any OpenAI-compatible /v1/embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.agents.memory.settings import Embeddings
from gateway.tls import client_context

MAX_INPUT_CHARS = 8_000  # ~2k tokens, well inside every embedding model's input limit
BATCH = 64


class EmbeddingError(Exception):
    """The provider failed; the message never contains the key."""


class Embedder:
    def __init__(self, settings: Embeddings, *, timeout_s: float = 30.0) -> None:
        import openai  # here: a gateway without vector search never loads the SDK for it

        self.settings = settings
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key or "unset",
            base_url=settings.base_url,
            default_headers=dict(settings.headers) or None,
            timeout=timeout_s,
            max_retries=1,
            http_client=openai.DefaultAsyncHttpxClient(timeout=timeout_s, verify=client_context()),
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import openai

        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = [t[:MAX_INPUT_CHARS] or " " for t in texts[start : start + BATCH]]
            try:
                resp = await self._client.embeddings.create(model=self.settings.model, input=batch)
            except openai.APIStatusError as exc:
                raise EmbeddingError(
                    f"embeddings provider answered HTTP {exc.status_code}"
                ) from None
            except openai.APIError as exc:
                raise EmbeddingError(f"embeddings provider failed: {type(exc).__name__}") from None
            rows = sorted(resp.data, key=lambda d: d.index)
            if len(rows) != len(batch):
                raise EmbeddingError(
                    f"embeddings provider returned {len(rows)} vectors for {len(batch)} inputs"
                )
            out.extend([list(map(float, row.embedding)) for row in rows])
        return out

    async def close(self) -> None:
        await self._client.close()
