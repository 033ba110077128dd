"""Path resolution shared by the file tools (tools.md §1.1).

Relative paths resolve against the agent workspace; `~`, `file://` and a leading `@` are
accepted like the reference. With `workspaceOnly` on, the *real* location (symlinks and `..`
resolved) must lie inside the workspace, so a link to `/etc` or `../openclaw.json` is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from gateway.agents.tools.policy import agent_tools_config
from gateway.agents.tools.registry import ToolContext, ToolError


def fs_workspace_only(ctx: ToolContext) -> bool:
    """`agents.entries.<id>.tools.fs.workspaceOnly`, else `tools.fs.workspaceOnly`, else True."""
    agent_tools = agent_tools_config(ctx.config, ctx.agent_id)
    for fs in (agent_tools.fs if agent_tools else None, ctx.config.tools.fs):
        if fs is not None and fs.workspace_only is not None:
            return fs.workspace_only
    return True


def patch_workspace_only(ctx: ToolContext) -> bool:
    """`tools.exec.applyPatch.workspaceOnly` (default True, independent of tools.fs)."""
    agent_tools = agent_tools_config(ctx.config, ctx.agent_id)
    for exec_cfg in (agent_tools.exec if agent_tools else None, ctx.config.tools.exec):
        if exec_cfg is not None and exec_cfg.apply_patch is not None:
            return exec_cfg.apply_patch.workspace_only
    return True


def expand_path(raw: str, workspace: Path) -> Path:
    """The absolute (lexical) path a tool argument names."""
    text = raw.strip()
    if not text:
        raise ToolError("path must not be empty")
    if "\x00" in text:
        raise ToolError("path must not contain NUL bytes")
    if text.startswith("file://"):
        text = unquote(urlparse(text).path) or "/"
    if text.startswith("@") and not (workspace / text).exists():
        text = text[1:]
    if text == "~" or text.startswith("~/"):
        text = os.path.expanduser(text)
    path = Path(text)
    if not path.is_absolute():
        path = workspace / path
    return Path(os.path.normpath(path))


def resolve_path(raw: str, ctx: ToolContext, *, workspace_only: bool | None = None) -> Path:
    """Resolve a path argument; refuse it when its real location leaves the workspace."""
    path = expand_path(raw, ctx.workspace)
    only = fs_workspace_only(ctx) if workspace_only is None else workspace_only
    if not only:
        return path
    root = Path(os.path.realpath(ctx.workspace))
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        how = " through a symlink" if real != path and _has_link(path) else ""
        raise ToolError(
            f"Path {raw!r} resolves{how} to {real}, outside the workspace {root};"
            " tools.fs.workspaceOnly only allows paths inside the workspace."
        )
    return real


def _has_link(path: Path) -> bool:
    probe = path
    while probe != probe.parent:
        if probe.is_symlink():
            return True
        probe = probe.parent
    return False


def display(path: Path, workspace: Path) -> str:
    """Path as shown to the model: relative to the workspace when inside it."""
    try:
        return str(path.relative_to(Path(os.path.realpath(workspace))))
    except ValueError:
        try:
            return str(path.relative_to(workspace))
        except ValueError:
            return str(path)
