"""`MediaRef`: what a transcript stores for a file (where, what, how big, which bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

MediaKind = Literal["image", "audio", "video", "document"]
# Transcript content block types per kind (the reference's image blocks are `image`).
BLOCK_TYPES: dict[MediaKind, str] = {
    "image": "image",
    "audio": "audio",
    "video": "video",
    "document": "file",
}


def kind_of(mime: str) -> MediaKind:
    major = mime.split("/", 1)[0]
    if major in ("image", "audio", "video"):
        return major  # type: ignore[return-value]
    return "document"


@dataclass(frozen=True)
class MediaRef:
    """A stored file: `path` is relative to the media root (never absolute, never `..`)."""

    path: str
    mime: str
    size: int
    sha256: str
    name: str | None = None  # the sender's file name, when there was one

    @property
    def kind(self) -> MediaKind:
        return kind_of(self.mime)

    def block(self) -> dict[str, Any]:
        """The transcript content block standing for this file."""
        out: dict[str, Any] = {
            "type": BLOCK_TYPES[self.kind],
            "mimeType": self.mime,
            "media": {"path": self.path, "sizeBytes": self.size, "sha256": self.sha256},
        }
        if self.name:
            out["fileName"] = self.name
        return out

    @classmethod
    def from_block(cls, block: Mapping[str, Any]) -> MediaRef | None:
        """The reference in a transcript block, or None when it holds none (or a bad one)."""
        media = block.get("media")
        if not isinstance(media, Mapping):
            return None
        path, mime = media.get("path"), block.get("mimeType")
        size, digest = media.get("sizeBytes"), media.get("sha256")
        if not (isinstance(path, str) and isinstance(mime, str) and isinstance(size, int)):
            return None
        name = block.get("fileName")
        return cls(
            path,
            mime,
            size,
            digest if isinstance(digest, str) else "",
            name if isinstance(name, str) else None,
        )


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"
