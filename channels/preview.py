"""Preview streaming: a reply that grows in place while the model writes (channels.md §4.5).

Modes (`channels.<ch>.streaming.mode`):

* `partial` — one message per chunk, edited as text streams; the last edit is the formatted
  final answer, so the result is exactly the non-streamed rendering.
* `block` — like `partial`, but the draft only advances by whole blocks (a paragraph, else a
  line or sentence break once `preview.chunk.minChars` new characters arrived; `maxChars`
  forces a cut).
* `progress` — one status draft (a headline and, with `progress.toolProgress`, a rolling tool
  log) for turns that run longer than a moment; it is deleted when the turn ends and the
  answer goes out as a normal message.

Edits are throttled to one flush per `interval_s` per preview (≈ 1 edit/s per chat, what
Telegram and Discord tolerate), and a 429's `retry_after` pushes the next flush back. An edit
the platform refuses (message deleted, too old) falls back to a new message. Long answers
continue in new messages at the formatter's chunk boundaries, which never cut a code fence.

The runner's listeners are synchronous; they only record the latest text or tool line and
wake the worker task, which does all the network calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from channels.base import (
    EditingTransport,
    EditRejected,
    OutboundTarget,
    RateLimited,
    SentMessage,
)
from gateway.agents.runner import RunEvent
from gateway.config.models import StreamingConfig

log = logging.getLogger("channels.preview")

PreviewMode = Literal["partial", "block", "progress"]
Formatter = Callable[[str], list[str]]
# Which target each outbound piece uses (the pipeline's replyToMode rule).
TargetFor = Callable[[int], OutboundTarget]

PROGRESS_HEADLINE = "⏳ Working…"
WRITING_HEADLINE = "✍️ Writing the answer…"
FINAL_RETRIES = 3
MAX_FINAL_WAIT_S = 30.0


@dataclass(frozen=True)
class PreviewSettings:
    mode: PreviewMode
    interval_s: float = 1.0  # one flush per second per preview
    # A short answer that is done quickly never shows a draft; a longer one does at the latest
    # `initial_delay_s` after the first token (or as soon as `min_initial_chars` arrived).
    initial_delay_s: float = 0.4
    min_initial_chars: int = 40
    progress_delay_s: float = 2.0  # the progress draft appears for turns running longer
    tool_progress: bool = False
    command_text: Literal["status", "raw"] = "status"
    max_lines: int = 8
    max_line_chars: int = 120
    block_min_chars: int = 200
    block_max_chars: int = 800
    break_preference: str = "paragraph"


def settings_for(config: StreamingConfig, default_mode: str) -> PreviewSettings | None:
    """The preview settings for a channel's `streaming` block; None when previews are off."""
    mode = config.mode or default_mode
    if mode not in ("partial", "block", "progress"):
        return None
    if mode == "progress":
        tool_progress = config.progress.tool_progress
        command_text = config.progress.command_text
    else:
        tool_progress = config.preview.tool_progress
        command_text = config.preview.command_text
    chunk = config.preview.chunk
    return PreviewSettings(
        mode=mode,  # type: ignore[arg-type]
        tool_progress=tool_progress,
        command_text=command_text,
        max_lines=config.progress.max_lines,
        max_line_chars=config.progress.max_line_chars,
        block_min_chars=chunk.min_chars,
        block_max_chars=max(chunk.min_chars, chunk.max_chars),
        break_preference=chunk.break_preference,
    )


@dataclass
class _Tool:
    call_id: str
    name: str
    detail: str = ""
    state: Literal["running", "done", "failed"] = "running"


@dataclass
class PreviewStats:
    """What one preview did (tests and bench/streaming.py read it)."""

    sends: int = 0
    edits: int = 0
    deletes: int = 0
    rate_limited: int = 0
    fallbacks: int = 0  # refused edits answered with a new message
    first_token_at: float | None = None
    first_visible_at: float | None = None
    flush_times: list[float] = field(default_factory=list)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1] + "…"


def block_prefix(text: str, shown: int, settings: PreviewSettings) -> int:
    """How much of `text` a `block` preview shows: whole blocks only (see module doc)."""
    if len(text) - shown < settings.block_min_chars:
        return shown
    window = text[: shown + settings.block_max_chars]
    lo = shown + settings.block_min_chars
    marks = {"paragraph": ["\n\n", "\n", ". "], "newline": ["\n", ". "], "sentence": [". ", "\n"]}
    for mark in marks.get(settings.break_preference, ["\n\n", "\n"]):
        cut = window.rfind(mark, lo)
        if cut >= 0:
            return cut + len(mark)
    if len(text) - shown >= settings.block_max_chars:
        return shown + settings.block_max_chars
    return shown


class PreviewEditor:
    """One turn's preview: fed by run events, flushed by its worker, finished by the pipeline."""

    def __init__(
        self,
        transport: EditingTransport,
        target_for: TargetFor,
        format_text: Formatter,
        settings: PreviewSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.target_for = target_for
        self.format = format_text
        self.settings = settings
        self.clock = clock
        self.stats = PreviewStats()
        self._started_at = clock()
        self._text = ""  # the current model call's text so far
        self._block_shown = 0
        self._tools: list[_Tool] = []
        self._messages: list[str] = []  # preview message ids, in order
        self._shown: list[str] = []  # what each of them shows now
        self._next_at = 0.0  # no flush before this (throttle, 429)
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        if settings.mode == "progress":
            self._ensure_worker()  # the draft appears on time alone, no event needed

    # --- listeners (synchronous, called by the runner) -----------------------------------------

    def on_run_event(self, event: RunEvent) -> None:
        if event.state != "delta" or self._closing.is_set():
            return
        if self.stats.first_token_at is None:
            self.stats.first_token_at = self.clock()
        if len(event.text) < len(self._text) or not event.text.startswith(self._text[:16]):
            self._block_shown = 0  # a new model call (after tools) streams afresh
        self._text = event.text
        self._kick()

    def on_agent_event(self, payload: dict[str, Any]) -> None:
        if payload.get("stream") != "tool" or self._closing.is_set():
            return
        data = payload.get("data") or {}
        call_id = str(data.get("toolCallId") or "")
        phase = data.get("phase")
        if phase == "start":
            self._tools.append(_Tool(call_id, str(data.get("name") or "tool"), _detail(data)))
        elif phase == "result":
            for tool in self._tools:
                if tool.call_id == call_id:
                    tool.state = "failed" if data.get("isError") else "done"
        else:
            return
        if self.settings.tool_progress:
            self._kick()

    # --- rendering -------------------------------------------------------------------------------

    def _tool_lines(self) -> list[str]:
        if not self.settings.tool_progress:
            return []
        icons = {"running": "🛠️", "done": "✅", "failed": "❌"}
        lines = []
        for tool in self._tools[-self.settings.max_lines :]:
            label = tool.name
            if self.settings.command_text == "raw" and tool.detail:
                label = f"{tool.name}: {tool.detail}"
            lines.append(f"{icons[tool.state]} {_shorten(label, self.settings.max_line_chars)}")
        return lines

    def _pieces(self) -> list[str]:
        """What the preview messages should show now."""
        if self.settings.mode == "progress":
            headline = WRITING_HEADLINE if self._text.strip() else PROGRESS_HEADLINE
            return self.format("\n".join([headline, *self._tool_lines()]))
        text = self._text
        if self.settings.mode == "block":
            self._block_shown = block_prefix(text, self._block_shown, self.settings)
            text = text[: self._block_shown]
        if not text.strip():
            tools = self._tool_lines()  # before any answer text: what the agent is doing
            return self.format("\n".join(tools)) if tools and self._messages else []
        return self.format(text)

    # --- worker ----------------------------------------------------------------------------------

    def _kick(self) -> None:
        self._dirty = True
        self._ensure_worker()
        self._wake.set()

    def _ensure_worker(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._work(), name="channel-preview"
            )

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the turn finishes first (→ False)."""
        if seconds <= 0:
            return not self._closing.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)
        return not self._closing.is_set()

    async def _work(self) -> None:
        try:
            if not await self._first_wait():
                return
            while not self._closing.is_set():
                if not self._dirty:
                    self._wake.clear()
                    waiter = asyncio.ensure_future(self._wake.wait())
                    closer = asyncio.ensure_future(self._closing.wait())
                    await asyncio.wait({waiter, closer}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    closer.cancel()
                    continue
                if not await self._sleep(self._next_at - self.clock()):
                    return
                self._dirty = False
                await self._flush()
        except asyncio.CancelledError:
            raise
        except Exception:  # a preview is a nicety: the final delivery still happens
            log.exception("preview worker failed")

    async def _first_wait(self) -> bool:
        """Hold the first preview back until the turn is clearly not a quick one."""
        s = self.settings
        if s.mode == "progress":
            self._dirty = True
            return await self._sleep(s.progress_delay_s)
        while not self._closing.is_set():
            if self.stats.first_token_at is not None:
                waited = self.clock() - self.stats.first_token_at
                if len(self._text.strip()) >= s.min_initial_chars or waited >= s.initial_delay_s:
                    return True
                left = s.initial_delay_s - waited
            elif self._tools and s.tool_progress:
                return True
            else:
                left = s.initial_delay_s
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        return False

    async def _flush(self) -> None:
        now = self.clock()
        self.stats.flush_times.append(now)
        self._next_at = now + self.settings.interval_s
        pieces = self._pieces()
        for i, piece in enumerate(pieces):
            if i < len(self._messages) and self._shown[i] == piece:
                continue
            try:
                await self._put(i, piece)
            except RateLimited as exc:
                self.stats.rate_limited += 1
                self._next_at = self.clock() + exc.retry_after
                self._dirty = True  # what was not shown yet goes out after the wait
                log.debug("preview edit rate limited; next in %.1fs", exc.retry_after)
                return
            except Exception as exc:
                self._dirty = True
                log.debug("preview update failed: %s", exc)
                return

    async def _put(self, i: int, piece: str) -> None:
        """Show `piece` as preview message `i`: edit it, or send it (new or replacing)."""
        if i < len(self._messages):
            try:
                await self.transport.edit_text(self.target_for(i), self._messages[i], piece)
                self.stats.edits += 1
                self._shown[i] = piece
                return
            except EditRejected as exc:
                self.stats.fallbacks += 1
                log.info("preview edit refused (%s); continuing in a new message", exc)
        sent = await self.transport.send_text(self.target_for(i), piece)
        self.stats.sends += 1
        if self.stats.first_visible_at is None:
            self.stats.first_visible_at = self.clock()
        if i < len(self._messages):
            self._messages[i], self._shown[i] = sent.message_id, piece
        else:
            self._messages.append(sent.message_id)
            self._shown.append(piece)

    # --- the end of the turn ---------------------------------------------------------------------

    async def close(self) -> None:
        """Stop previewing (an in-flight call finishes first)."""
        self._closing.set()
        self._wake.set()
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    @property
    def visible(self) -> bool:
        return bool(self._messages)

    async def discard(self) -> None:
        """Remove the preview (progress drafts, errors, silent answers)."""
        await self.close()
        for i, mid in enumerate(self._messages):
            try:
                await self.transport.delete_text(self.target_for(i), mid)
                self.stats.deletes += 1
            except Exception as exc:
                log.debug("could not delete preview message %s: %s", mid, exc)
        self._messages, self._shown = [], []

    async def finish(self, text: str) -> list[SentMessage] | None:
        """Turn the preview into the final answer. None: nothing was previewed (or it was a
        progress draft, now removed) — the caller delivers normally."""
        await self.close()
        if self.settings.mode == "progress" or not self._messages:
            await self.discard()
            return None
        pieces = self.format(text)
        out: list[SentMessage] = []
        for i, piece in enumerate(pieces):
            if i < len(self._messages) and self._shown[i] == piece:
                out.append(SentMessage(self._messages[i]))
                continue
            out.append(await self._final_put(i, piece))
        for j in range(len(pieces), len(self._messages)):  # the answer got shorter
            with contextlib.suppress(Exception):
                await self.transport.delete_text(self.target_for(j), self._messages[j])
                self.stats.deletes += 1
        return out

    async def _final_put(self, i: int, piece: str) -> SentMessage:
        """The final text of piece `i`; waits out 429s, a refused edit becomes a new message
        (and the stale preview is deleted)."""
        for attempt in range(FINAL_RETRIES):
            try:
                if i >= len(self._messages):
                    sent = await self.transport.send_text(self.target_for(i), piece)
                    self.stats.sends += 1
                    return sent
                await self.transport.edit_text(self.target_for(i), self._messages[i], piece)
                self.stats.edits += 1
                self._shown[i] = piece
                return SentMessage(self._messages[i])
            except RateLimited as exc:
                self.stats.rate_limited += 1
                if attempt == FINAL_RETRIES - 1:
                    raise
                await asyncio.sleep(min(MAX_FINAL_WAIT_S, exc.retry_after))
            except EditRejected as exc:
                self.stats.fallbacks += 1
                log.info("final edit refused (%s); sending the answer as a new message", exc)
                stale = self._messages[i]
                sent = await self.transport.send_text(self.target_for(i), piece)
                self.stats.sends += 1
                with contextlib.suppress(Exception):
                    await self.transport.delete_text(self.target_for(i), stale)
                self._messages[i], self._shown[i] = sent.message_id, piece
                return sent
        raise AssertionError("unreachable")


def _detail(data: dict[str, Any]) -> str:
    """The command (exec) or the first string argument, for `commandText: raw`."""
    args = data.get("args")
    if not isinstance(args, dict):
        return ""
    for key in ("command", "cmd", "path", "url", "query"):
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""
