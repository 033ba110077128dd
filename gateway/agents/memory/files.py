"""Which files are memory: MEMORY.md, USER.md, memory/**/*.md and configured extra paths.

Symlinks are skipped everywhere (a link could pull any file of the machine into the index),
as are hidden directories such as `memory/.dreams`.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gateway.agents.memory.settings import ExtraPath

ROOT_FILES = ("MEMORY.md", "USER.md")
MEMORY_DIR = "memory"
MAX_FILE_BYTES = 10 * 1024 * 1024  # one oversized file must not stall indexing


@dataclass(frozen=True)
class MemoryFile:
    key: str  # workspace-relative POSIX path, or the absolute path for extra paths outside
    path: Path
    mtime_ns: int
    size: int


def is_memory_path(rel: str) -> bool:
    """True for the workspace paths `memory_get` may read (tools.md §1.11)."""
    parts = PurePosixPath(rel).parts
    if not parts or ".." in parts or rel.startswith("/"):
        return False
    if len(parts) == 1:
        return parts[0] in ROOT_FILES
    return parts[0] == MEMORY_DIR and parts[-1].endswith(".md")


def discover(workspace: Path, extra_paths: Sequence[ExtraPath] = ()) -> list[MemoryFile]:
    """Every memory file with its stat stamp, each real file once."""
    found: dict[str, MemoryFile] = {}
    for name in ROOT_FILES:
        _add(found, workspace, workspace / name)
    for path in _walk_md(workspace / MEMORY_DIR):
        _add(found, workspace, path)
    for extra in extra_paths:
        _add_extra(found, workspace, extra)
    return sorted(found.values(), key=lambda f: f.key)


def _add_extra(found: dict[str, MemoryFile], workspace: Path, extra: ExtraPath) -> None:
    root = extra.path
    if root.is_symlink():
        return
    if root.is_file():
        _add(found, workspace, root)
        return
    for path in _walk_md(root):
        if extra.pattern is not None:
            rel = path.relative_to(root).as_posix()
            if not fnmatch.fnmatch(rel, extra.pattern):
                continue
        _add(found, workspace, path)


def _add(found: dict[str, MemoryFile], workspace: Path, path: Path) -> None:
    try:
        st = path.lstat()
    except OSError:
        return
    # Regular files only; a symlink's lstat is not a regular file.
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
        return
    try:
        key = path.relative_to(workspace).as_posix()
    except ValueError:
        key = path.absolute().as_posix()
    found.setdefault(key, MemoryFile(key, path, st.st_mtime_ns, st.st_size))


def _walk_md(root: Path) -> Iterator[Path]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_md(Path(entry.path))
        elif entry.name.endswith(".md") and entry.is_file(follow_symlinks=False):
            yield Path(entry.path)
