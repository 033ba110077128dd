"""An agent turn seen from HTTP: submit it, then read its text as increments.

The runner reports the answer so far on every delta; HTTP streams want only what is new.
`TurnWatch` turns the run's events into (increment, terminal event) pairs and can abort the
run when the HTTP client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.agents.runner import RunEvent, RunHandle, SubmitRequest
from gateway.agents.service import AgentService


@dataclass(frozen=True)
class Piece:
    """New text since the last piece; `final` is set on the run's last event."""

    text: str
    final: RunEvent | None = None


class TurnWatch:
    def __init__(self, svc: AgentService, request: SubmitRequest) -> None:
        self.svc = svc
        self._events: asyncio.Queue[RunEvent] = asyncio.Queue()
        self.handle: RunHandle = svc.submit(request, on_event=self._events.put_nowait)
        self.session_key = self.handle.session_key
        self.sent = ""
        self.diverged = False  # the answer restarted (a fallback model): deltas stop

    async def pieces(self) -> AsyncIterator[Piece]:
        while True:
            event = await self._events.get()
            if event.state == "delta":
                new = self._increment(event.text)
                if new:
                    yield Piece(new)
                continue
            tail = self._increment(event.text) if event.state == "final" else ""
            yield Piece(tail, final=event)
            return

    def _increment(self, text: str) -> str:
        if self.diverged:
            return ""
        if not text.startswith(self.sent):
            self.diverged = True
            return ""
        new = text[len(self.sent) :]
        self.sent = text
        return new

    def abort(self) -> None:
        self.svc.runner.abort(self.session_key, run_id=self.handle.run_id)
