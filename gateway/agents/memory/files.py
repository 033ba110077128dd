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
    path: str  # a str, not a Path: building 1000 Paths per search is measurable
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
    """Every memory file with its stat stamp, each real file once.

    Runs before every search, so it sticks to one scandir per folder and one cached
    lstat per file.
    """
    found: dict[str, MemoryFile] = {}
    prefix = f"{workspace}{os.sep}"
    for name in ROOT_FILES:
        _add_path(found, prefix, workspace / name)
    for entry in _walk_md(workspace / MEMORY_DIR):
        _add_entry(found, prefix, entry)
    for extra in extra_paths:
        root = extra.path
        if root.is_symlink():
            continue
        if root.is_file():
            _add_path(found, prefix, root)
            continue
        root_prefix = f"{root}{os.sep}"
        for entry in _walk_md(root):
            rel = entry.path[len(root_prefix) :].replace(os.sep, "/")
            if extra.pattern is None or fnmatch.fnmatch(rel, extra.pattern):
                _add_entry(found, prefix, entry)
    return sorted(found.values(), key=lambda f: f.key)


def _key(prefix: str, path: str) -> str:
    if path.startswith(prefix):
        return path[len(prefix) :].replace(os.sep, "/")
    return Path(path).absolute().as_posix()


def _add_path(found: dict[str, MemoryFile], prefix: str, path: Path) -> None:
    try:
        st = path.lstat()
    except OSError:
        return
    # Regular files only; a symlink's lstat is not a regular file.
    if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES:
        key = _key(prefix, str(path))
        found.setdefault(key, MemoryFile(key, str(path), st.st_mtime_ns, st.st_size))


def _add_entry(found: dict[str, MemoryFile], prefix: str, entry: os.DirEntry[str]) -> None:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES:
        key = _key(prefix, entry.path)
        found.setdefault(key, MemoryFile(key, entry.path, st.st_mtime_ns, st.st_size))


def _walk_md(root: Path | str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(root) as it:
            entries = list(it)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_md(entry.path)
        elif entry.name.endswith(".md") and entry.is_file(follow_symlinks=False):
            yield entry
