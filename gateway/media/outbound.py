"""Files the agent sends back: `MEDIA:` lines in a reply, resolved inside its workspace.

The reference's convention for automatic replies: a line whose text (after at most three
spaces) starts with `MEDIA:` names a file to attach; inside fenced or indented code, or
with anything else on the line, it stays text. A path may be double-quoted. Only local
files inside the agent's workspace (or the media store) are sent — never `..`, never a
symlink out — and each is checked against the channel's size limit; what cannot be sent is
said in words instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.media.refs import human_size
from gateway.media.sniff import HEAD_BYTES, sniff

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_MEDIA = re.compile(r'^ {0,3}MEDIA:\s*(?:"([^"]+)"|(\S+))\s*$')


@dataclass(frozen=True)
class OutgoingFile:
    path: Path
    name: str
    mime: str
    size: int


def split_media(text: str) -> tuple[str, list[str]]:
    """(the reply without its `MEDIA:` lines, the references they name, in order)."""
    kept: list[str] = []
    refs: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (found := _MEDIA.match(line)):
            refs.append(found.group(1) or found.group(2))
            continue
        kept.append(line)
    if not refs:
        return text, []
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), refs


class Refused(ValueError):
    """A `MEDIA:` reference that will not be sent (the message says why, without secrets)."""


def resolve(ref: str, roots: Sequence[Path], max_bytes: int) -> OutgoingFile:
    """The file `ref` names inside one of `roots` (relative: the first root, the workspace)."""
    if "://" in ref:
        raise Refused(f"{ref}: only files from the workspace can be attached")
    if not roots:
        raise Refused(f"{ref}: no workspace to attach files from")
    raw = Path(ref).expanduser()
    candidate = raw if raw.is_absolute() else roots[0] / raw
    try:
        full = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise Refused(f"{ref}: no such file") from None
    if not any(full.is_relative_to(root.resolve()) for root in roots):
        raise Refused(f"{ref}: outside the workspace")
    if not full.is_file():
        raise Refused(f"{ref}: not a file")
    size = full.stat().st_size
    if size == 0:
        raise Refused(f"{ref}: the file is empty")
    if size > max_bytes:
        raise Refused(f"{ref}: {human_size(size)} is over the {human_size(max_bytes)} limit")
    with full.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    return OutgoingFile(full, full.name, sniff(head, full.name), size)
