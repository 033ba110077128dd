"""A file's type from its bytes (magic numbers), and whether an image really is one.

The sender's declared type and file name are hints only: a `photo.jpg` that is a ZIP is a
ZIP. Images are checked with Pillow (loaded on first use) so a corrupt or truncated picture
is refused here rather than by a provider in the middle of a turn.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import filetype  # type: ignore[import-untyped]

HEAD_BYTES = 8192  # enough for every signature `filetype` knows
# What the model APIs accept as images (others, like HEIC or TIFF, are described instead).
MODEL_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_TEXT_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".xml": "application/xml",
    ".html": "text/html",
    ".py": "text/x-python",
    ".log": "text/plain",
}
_PILLOW_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


def sniff(head: bytes, name: str | None = None, declared: str | None = None) -> str:
    """The MIME type of a file starting with `head` (the first HEAD_BYTES or all of it)."""
    found = filetype.guess_mime(head) if head else None
    if found:
        # Telegram voice notes and most Opus files are Ogg; both spellings mean the same.
        return "audio/ogg" if found in ("audio/opus", "application/ogg") else str(found)
    if looks_like_text(head):
        suffix = Path(name or "").suffix.lower()
        if suffix in _TEXT_TYPES:
            return _TEXT_TYPES[suffix]
        if declared and is_textual(declared):
            return declared.split(";", 1)[0].strip()
        return "text/plain"
    guessed = mimetypes.guess_type(name or "")[0]
    claim = (declared or guessed or "").split(";", 1)[0].strip().lower()
    # A claim the bytes would have confirmed (an image, a PDF, audio) is not believed.
    if (
        claim
        and not claim.startswith(("image/", "audio/", "video/"))
        and claim != "application/pdf"
    ):
        return claim
    return "application/octet-stream"


def is_textual(mime: str) -> bool:
    base = mime.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in (
        "application/json",
        "application/yaml",
        "application/xml",
        "application/x-yaml",
    )


def looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a multi-byte character cut at the end of `head` is fine)."""
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and len(head) >= HEAD_BYTES
    return True


class BadImage(ValueError):
    """The file claims to be an image but cannot be read as one."""


def check_image(path: Path) -> tuple[str, int, int]:
    """(mime, width, height) of a readable image; raises BadImage naming what is wrong."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            fmt, (width, height) = img.format or "", img.size
            img.verify()  # structure and checksums, without decoding every pixel
        if fmt == "JPEG" and not _jpeg_complete(path):
            raise BadImage("the JPEG data is truncated")
    except BadImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise BadImage(str(exc).split(" '", 1)[0]) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"the image data is damaged ({exc})") from exc
    mime = _PILLOW_FORMATS.get(fmt) or Image.MIME.get(fmt) or "application/octet-stream"
    return mime, width, height


def _jpeg_complete(path: Path) -> bool:
    """A JPEG ends with its EOI marker (FF D9), maybe followed by padding."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 64))
        return b"\xff\xd9" in fh.read()
