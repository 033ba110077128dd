"""The media store: files under `<state>/media/`, streamed to disk, capped, pruned.

Layout: `sessions/<session folder>/<id>.<ext>` for what a conversation received, `tmp/` for
files being written (renamed into place only once complete, checked and hashed, so a crash
never leaves half a file behind a reference). Files are private to the gateway's user.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.media.memory import after_big_file
from gateway.media.refs import MediaRef, human_size
from gateway.media.sniff import HEAD_BYTES, BadImage, check_image, sniff

log = logging.getLogger("media")

CHUNK = 256 * 1024
DEFAULT_MAX_AGE_S = 30 * 24 * 3600.0
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
PRUNE_INTERVAL_S = 600.0
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "application/octet-stream": ".bin",
}


class TooLarge(ValueError):
    """Over the size limit (`size` None: a download cut short at the limit)."""

    def __init__(self, size: int | None, limit: int, name: str | None = None) -> None:
        what = name or "the file"
        super().__init__(
            f"{what} is {human_size(size)}, over the {human_size(limit)} limit"
            if size is not None
            else f"{what} is over the {human_size(limit)} limit"
        )
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class Checked:
    """What `ingest` found out about a file besides its reference (images: pixel size)."""

    ref: MediaRef
    width: int | None = None
    height: int | None = None


def session_folder(session_key: str) -> str:
    """A readable, collision-free folder name for one session key."""
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", session_key).strip("-")[:60] or "session"
    digest = hashlib.sha256(session_key.encode()).hexdigest()[:8]
    return f"sessions/{slug}-{digest}"


def _extension(mime: str, name: str | None) -> str:
    ext = _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ""
    if not ext and name:
        ext = Path(name).suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ".bin"


class MediaStore:
    def __init__(
        self,
        root: Path,
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.max_total_bytes = max_total_bytes
        self._last_prune = 0.0

    # --- writing ---------------------------------------------------------------------------------

    def _tmp(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        return tmp / f"{uuid.uuid4().hex}.part"

    async def save_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        folder: str,
        max_bytes: int,
        name: str | None = None,
        declared: str | None = None,
    ) -> Checked:
        """Write `chunks` to disk as they come, stopping at `max_bytes` (TooLarge)."""

        async def write(path: Path) -> None:
            written = 0
            with path.open("wb") as fh:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise TooLarge(None, max_bytes, name)
                    fh.write(chunk)

        return await self.ingest(
            write, folder=folder, max_bytes=max_bytes, name=name, declared=declared
        )

    def save_bytes(
        self,
        data: bytes,
        *,
        folder: str,
        max_bytes: int,
        name: str | None = None,
        declared: str | None = None,
    ) -> Checked:
        """Store bytes already in memory (small files, decoded RPC attachments)."""
        if len(data) > max_bytes:
            raise TooLarge(len(data), max_bytes, name)
        tmp = self._tmp()
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
            return self._finish(
                tmp, folder=folder, max_bytes=max_bytes, name=name, declared=declared
            )
        finally:
            tmp.unlink(missing_ok=True)

    async def ingest(
        self,
        write: Callable[[Path], Awaitable[None]],
        *,
        folder: str,
        max_bytes: int,
        name: str | None = None,
        declared: str | None = None,
    ) -> Checked:
        """Let `write` fill a temporary file (a library's download), then check and keep it."""
        tmp = self._tmp()
        try:
            await write(tmp)
            checked = await asyncio.to_thread(
                self._finish, tmp, folder=folder, max_bytes=max_bytes, name=name, declared=declared
            )
        finally:
            tmp.unlink(missing_ok=True)
        after_big_file(checked.ref.size)
        return checked

    def _finish(
        self, tmp: Path, *, folder: str, max_bytes: int, name: str | None, declared: str | None
    ) -> Checked:
        size = tmp.stat().st_size
        if size > max_bytes:
            raise TooLarge(size, max_bytes, name)
        if size == 0:
            raise ValueError(f"{name or 'the file'} is empty")
        digest = hashlib.sha256()
        with tmp.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
            digest.update(head)
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        mime = sniff(head, name, declared)
        width = height = None
        if mime.startswith("image/"):
            try:
                mime, width, height = check_image(tmp)
            except BadImage as exc:
                raise BadImage(f"{name or 'the image'} could not be read: {exc}") from exc
        rel = f"{folder}/{uuid.uuid4().hex[:16]}{_extension(mime, name)}"
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(tmp, target)
        os.chmod(target, 0o600)
        self._maybe_prune()
        return Checked(MediaRef(rel, mime, size, digest.hexdigest(), name), width, height)

    # --- reading ---------------------------------------------------------------------------------

    def path(self, ref: MediaRef | str) -> Path:
        """The absolute path of a stored file; refuses anything outside the store."""
        rel = ref.path if isinstance(ref, MediaRef) else ref
        if not rel or rel.startswith("/") or "\x00" in rel:
            raise ValueError(f"not a media path: {rel!r}")
        root = self.root.resolve()
        full = (root / rel).resolve()
        if not full.is_relative_to(root) or full == root:
            raise ValueError(f"not a media path: {rel!r}")
        return full

    def read(self, ref: MediaRef) -> bytes:
        return self.path(ref).read_bytes()

    def exists(self, ref: MediaRef) -> bool:
        try:
            return self.path(ref).is_file()
        except ValueError:
            return False

    # --- retention -------------------------------------------------------------------------------

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= PRUNE_INTERVAL_S:
            self._last_prune = now
            try:
                self.prune()
            except OSError as exc:
                log.warning("media retention pass failed: %s", exc)

    def prune(self, now: float | None = None) -> int:
        """Delete files older than max_age_s, then the oldest until under max_total_bytes."""
        now = time.time() if now is None else now
        files: list[tuple[float, int, Path]] = []
        removed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.rglob("*"):
            if not path.is_file():
                continue
            st = path.stat()
            stale_tmp = path.parent.name == "tmp" and now - st.st_mtime > 3600
            if now - st.st_mtime > self.max_age_s or stale_tmp:
                path.unlink(missing_ok=True)
                removed += 1
            else:
                files.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_total_bytes:
                break
            if path.parent.name == "tmp":
                continue  # being written right now
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        if removed:
            log.info("media retention: removed %d file(s)", removed)
        return removed
