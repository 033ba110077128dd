"""Write the config file safely: base-hash check, validation first, backup, atomic replace.

A write never leaves a half-written or invalid file behind: the new text is validated with the
same loader the gateway starts with, written to a temp file in the same directory, fsynced and
renamed over the target (a symlinked config is replaced, not followed — config.md §1). The previous
file is kept next to it as `<name>.bak`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.config.loader import LoadedConfig, content_hash, read_config_text, validate_text

BACKUP_SUFFIX = ".bak"
DEFAULT_MODE = 0o600


class StaleHashError(Exception):
    """The file changed since the client read it (or the client sent no base hash)."""

    def __init__(self, current: str | None, given: str | None) -> None:
        self.current = current
        self.given = given
        if given is None:
            msg = "config base hash required; read the config (config.get) and retry with its hash"
        else:
            msg = "config changed since it was loaded; reload it (config.get) and apply your edit again"
        super().__init__(msg)


@dataclass(frozen=True)
class OnDisk:
    exists: bool
    raw: str
    hash: str | None


def read_on_disk(path: Path) -> OnDisk:
    raw = read_config_text(path)
    if raw is None:
        return OnDisk(exists=False, raw="", hash=None)
    return OnDisk(exists=True, raw=raw, hash=content_hash(raw))


def check_base_hash(current: OnDisk, base_hash: str | None) -> None:
    """Refuse a write unless the client saw exactly the file that is on disk now."""
    if not current.exists:
        # Creating the file: nothing to overwrite. A hash, if sent, must not claim a file.
        if base_hash is not None and base_hash != content_hash(""):
            raise StaleHashError(None, base_hash)
        return
    if base_hash is None or base_hash != current.hash:
        raise StaleHashError(current.hash, base_hash)


def write_config(
    path: Path,
    raw: str,
    base_hash: str | None,
    env: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Validate `raw`, check the base hash, back up the old file and atomically replace it.

    Raises `ConfigError` (invalid text; nothing written) or `StaleHashError` (nothing written).
    """
    loaded = validate_text(path, raw, env)
    current = read_on_disk(path)
    check_base_hash(current, base_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = DEFAULT_MODE
    if current.exists:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
        _atomic_write(path.with_name(path.name + BACKUP_SUFFIX), current.raw, mode)
    _atomic_write(path, raw, mode)
    return loaded


def _atomic_write(target: Path, text: str, mode: int) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
