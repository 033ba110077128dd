"""Running commands: the bounded output buffer, one job per command, and the `process` tool
for backgrounded jobs (tools.md §1.7, §1.8, §3.2).

A job's output streams into a buffer that keeps a head and a tail and only counts the middle,
so a command printing 100 MB costs a few hundred KB. Each job runs in its own session
(process group); killing it kills the whole group, and with the PID-namespace wrapper every
process the command started.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import secrets
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from gateway.agents.tools.environment import mask_secrets
from gateway.agents.tools.registry import ToolContext, ToolError, ToolOutput, tool

READ_CHUNK = 64 * 1024
DEFAULT_CLEANUP_MS = 30 * 60 * 1000


class OutputBuffer:
    """Head + tail of a stream of text; the middle is dropped and counted."""

    def __init__(self, head_chars: int, tail_chars: int) -> None:
        self.head_chars = head_chars
        self.tail_chars = tail_chars
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.total = 0  # characters seen
        self.changed = 0  # bumped on every feed (for throttled updates)

    def feed(self, data: bytes, final: bool = False) -> None:
        text = self._decoder.decode(data, final)
        if not text:
            return
        self.total += len(text)
        self.changed += 1
        if self._head_len < self.head_chars:
            take = text[: self.head_chars - self._head_len]
            self._head.append(take)
            self._head_len += len(take)
            text = text[len(take) :]
        if text:
            self._tail.append(text)
            self._tail_len += len(text)
            while self._tail_len - len(self._tail[0]) >= self.tail_chars:
                self._tail_len -= len(self._tail.popleft())
            if self._tail_len > self.tail_chars * 2:
                joined = "".join(self._tail)[-self.tail_chars :]
                self._tail = deque([joined])
                self._tail_len = len(joined)

    @property
    def dropped(self) -> int:
        kept_tail = min(self._tail_len, self.tail_chars)
        return self.total - self._head_len - kept_tail

    def text(self) -> str:
        head = "".join(self._head)
        tail = "".join(self._tail)[-self.tail_chars :] if self._tail else ""
        if self.dropped > 0:
            return f"{head}\n\n[… {self.dropped} characters of output elided …]\n\n{tail}"
        return head + tail

    def tail(self, chars: int) -> str:
        return self.text()[-chars:]

    def since(self, offset: int) -> tuple[str, int]:
        """Output after character `offset` that is still held, and how much of it was lost."""
        head = "".join(self._head)
        tail = "".join(self._tail)[-self.tail_chars :] if self._tail else ""
        tail_start = self.total - len(tail)
        parts: list[str] = []
        lost = 0
        if offset < len(head):
            parts.append(head[offset:])
            offset = len(head)
        if offset < tail_start:
            lost = tail_start - offset
            offset = tail_start
        parts.append(tail[offset - tail_start :])
        return "".join(parts), lost


JobStatus = Literal["running", "completed", "failed", "killed", "timeout"]


@dataclass
class Job:
    """One command: its process, output and outcome."""

    id: str
    command: str
    cwd: str
    proc: asyncio.subprocess.Process
    buffer: OutputBuffer
    started_ms: int
    agent_id: str
    secrets: frozenset[str] = frozenset()
    status: JobStatus = "running"
    exit_code: int | None = None
    exit_signal: str | None = None
    ended_ms: int | None = None
    backgrounded: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    poll_offset: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _killed_as: JobStatus | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def duration_ms(self) -> int:
        return (self.ended_ms or _now_ms()) - self.started_ms

    def output(self) -> str:
        return mask_secrets(self.buffer.text(), self.secrets)

    def kill(self, why: JobStatus = "killed") -> None:
        """SIGKILL the whole process group (idempotent)."""
        if self.done.is_set():
            return
        if self._killed_as is None:
            self._killed_as = why
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def wait(self, timeout_s: float | None) -> bool:
        """True when the job ended within `timeout_s` (None: wait for the end)."""
        if timeout_s is None:
            await self.done.wait()
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout_s)
        return self.done.is_set()

    async def write(self, data: bytes, eof: bool) -> None:
        stdin = self.proc.stdin
        if stdin is None:
            raise ToolError(f"process {self.id} does not take input (started in the foreground)")
        if data:
            stdin.write(data)
            await stdin.drain()
        if eof:
            stdin.close()

    async def _pump(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while chunk := await stream.read(READ_CHUNK):
            self.buffer.feed(chunk)
        self.buffer.feed(b"", final=True)

    async def _run(self, timeout_s: float | None) -> None:
        pump = asyncio.create_task(self._pump())
        try:
            if timeout_s:
                try:
                    await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout_s)
                except TimeoutError:
                    self.kill("timeout")
            code = await self.proc.wait()
            # Children that kept the pipe open (without a PID namespace) must not hold us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), 0.5)
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        self.ended_ms = _now_ms()
        if code < 0:
            self.exit_signal = signal.Signals(-code).name if -code in _SIGNALS else str(-code)
        elif code > 128 and self._killed_as is not None:
            self.exit_signal = "SIGKILL"
        self.exit_code = code if code >= 0 else None
        if self._killed_as is not None:
            self.status = self._killed_as
        else:
            self.status = "completed" if code == 0 else "failed"
        self.done.set()


_SIGNALS = {s.value for s in signal.Signals}


def _now_ms() -> int:
    return int(time.time() * 1000)


async def start_job(
    argv: list[str],
    *,
    command: str,
    cwd: str,
    env: dict[str, str],
    agent_id: str,
    stdin: bool,
    timeout_s: float | None,
    head_chars: int,
    tail_chars: int,
    secrets_: frozenset[str] = frozenset(),
) -> Job:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"cannot start the command: {exc.strerror or exc}") from exc
    job = Job(
        id=_session_id(),
        command=command,
        cwd=cwd,
        proc=proc,
        buffer=OutputBuffer(head_chars, tail_chars),
        started_ms=_now_ms(),
        agent_id=agent_id,
        secrets=secrets_,
    )
    job._tasks.append(asyncio.create_task(job._run(timeout_s), name=f"exec-{job.id}"))
    return job


_WORDS_A = (
    "amber",
    "brisk",
    "calm",
    "deft",
    "eager",
    "fresh",
    "gentle",
    "keen",
    "lucid",
    "mellow",
    "nimble",
    "quiet",
    "rapid",
    "steady",
    "tender",
    "vivid",
)
_WORDS_B = (
    "basil",
    "cedar",
    "fern",
    "hazel",
    "iris",
    "juniper",
    "laurel",
    "maple",
    "olive",
    "pine",
    "reed",
    "sage",
    "thyme",
    "willow",
    "yarrow",
    "alder",
)


def _session_id() -> str:
    return f"{secrets.choice(_WORDS_A)}-{secrets.choice(_WORDS_B)}-{secrets.token_hex(2)}"


# --- background sessions -----------------------------------------------------------------------


class Sessions:
    """Backgrounded jobs per agent, kept `cleanupMs` after they end."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Job]] = {}

    def add(self, job: Job) -> None:
        job.backgrounded = True
        self._jobs.setdefault(job.agent_id, {})[job.id] = job

    def list(self, agent_id: str, cleanup_ms: int = DEFAULT_CLEANUP_MS) -> list[Job]:
        jobs = self._jobs.get(agent_id, {})
        now = _now_ms()
        for job_id, job in list(jobs.items()):
            if job.ended_ms is not None and now - job.ended_ms > cleanup_ms:
                del jobs[job_id]
        return sorted(jobs.values(), key=lambda j: j.started_ms)

    def get(self, agent_id: str, job_id: str) -> Job:
        job = self._jobs.get(agent_id, {}).get(job_id)
        if job is None:
            raise ToolError(f"No process session {job_id!r} (see process action=list)")
        return job

    def remove(self, agent_id: str, job_id: str) -> None:
        self._jobs.get(agent_id, {}).pop(job_id, None)

    def kill_all(self) -> None:
        for jobs in self._jobs.values():
            for job in jobs.values():
                job.kill()


SESSIONS = Sessions()


def status_line(job: Job) -> str:
    if job.status == "running":
        return f"Process {job.id} (pid {job.pid}) is still running."
    if job.status == "timeout":
        return f"Process {job.id} timed out and was killed."
    if job.status == "killed":
        return f"Process {job.id} was killed ({job.exit_signal or 'SIGKILL'})."
    if job.exit_signal:
        return f"Process {job.id} was stopped by signal {job.exit_signal}."
    return f"Process {job.id} exited with code {job.exit_code}."


def running_details(job: Job) -> dict[str, object]:
    return {
        "status": "running",
        "sessionId": job.id,
        "pid": job.pid,
        "startedAt": job.started_ms,
        "cwd": job.cwd,
        "tail": mask_secrets(job.buffer.tail(2000), job.secrets),
    }


class ProcessArgs(BaseModel):
    """Manage commands that exec left running in the background: list them, poll for new
    output and status, read the log, write to stdin, or kill one."""

    action: Literal[
        "list", "poll", "log", "write", "send-keys", "submit", "paste", "kill", "clear", "remove"
    ]
    session_id: str | None = Field(None, alias="sessionId", description="Required except for list.")
    data: str | None = Field(None, description="write: text sent to stdin.")
    eof: bool | None = Field(None, description="write: close stdin afterwards.")
    keys: list[str] | None = None
    hex: list[str] | None = None
    literal: str | None = None
    text: str | None = None
    bracketed: bool | None = None
    offset: float | None = Field(None, ge=0, description="log: first line (0-based).")
    limit: float | None = Field(None, gt=0, description="log: number of lines.")
    timeout: float | None = Field(
        None, ge=0, description="poll: wait up to this many ms for output or exit (max 30000)."
    )


@tool("process", group="group:runtime", timeout_s=60)
async def process(args: ProcessArgs, ctx: ToolContext) -> ToolOutput:
    if args.action == "list":
        jobs = SESSIONS.list(ctx.agent_id)
        if not jobs:
            return ToolOutput("No background processes.", {"sessions": []})
        lines = [f"{j.id} {j.status} {j.duration_ms / 1000:.1f}s :: {j.command[:80]}" for j in jobs]
        return ToolOutput(
            "\n".join(lines),
            {"sessions": [{"sessionId": j.id, "status": j.status, "pid": j.pid} for j in jobs]},
        )
    if not args.session_id:
        raise ToolError(f"sessionId is required for action={args.action}")
    job = SESSIONS.get(ctx.agent_id, args.session_id)
    if args.action == "poll":
        wait_ms = min(30_000.0, args.timeout or 0.0)
        if wait_ms and job.status == "running":
            seen = job.buffer.changed
            deadline = time.monotonic() + wait_ms / 1000
            while job.status == "running" and job.buffer.changed == seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await job.wait(min(left, 0.1))
        new, lost = job.buffer.since(job.poll_offset)
        job.poll_offset = job.buffer.total
        body = mask_secrets(new, job.secrets)
        if lost:
            body = f"[{lost} characters of output were dropped before this poll]\n" + body
        text = (
            body.rstrip("\n") + "\n\n" if body.strip() else "(no new output)\n\n"
        ) + status_line(job)
        return ToolOutput(
            text, {"status": job.status, "exitCode": job.exit_code, "sessionId": job.id}
        )
    if args.action == "log":
        lines = job.output().splitlines()
        start = int(args.offset or 0)
        end = start + int(args.limit) if args.limit else len(lines)
        return ToolOutput("\n".join(lines[start:end]) or "(no output)", {"lines": len(lines)})
    if args.action == "write":
        if job.status != "running":
            raise ToolError(f"process {job.id} has ended")
        await job.write((args.data or "").encode("utf-8"), bool(args.eof))
        return ToolOutput(f"Wrote {len((args.data or '').encode('utf-8'))} bytes to {job.id}.")
    if args.action == "kill":
        if job.status != "running":
            return ToolOutput(status_line(job))
        job.kill()
        await job.wait(2)
        return ToolOutput(f"Termination requested for {job.id}. " + status_line(job))
    if args.action in ("clear", "remove"):
        if job.status == "running" and args.action == "remove":
            job.kill()
        SESSIONS.remove(ctx.agent_id, job.id)
        return ToolOutput(f"Removed {job.id}.")
    raise ToolError(f"action={args.action} needs a terminal (pty), which is not supported yet")
