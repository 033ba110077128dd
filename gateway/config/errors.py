"""Typed configuration errors with the reference's report format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConfigIssue:
    path: str  # dotted path, "" for the root
    message: str
    line: int | None = None
    column: int | None = None  # set for syntax errors, which have a place but no key path

    def render(self, file_name: str) -> str:
        where = self.path or "<root>"
        if self.line is not None and self.column is not None and not self.path:
            return f"{file_name}:{self.line}:{self.column} — {self.message}"
        if self.line is not None:
            return f"{file_name}:{self.line} — {where}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file cannot be used; `lines()` is what an operator needs to fix it."""

    def __init__(self, path: Path, issues: list[ConfigIssue]) -> None:
        self.path = path
        self.issues = issues
        super().__init__(
            f"invalid config at {path}: " + "; ".join(i.render(path.name) for i in issues)
        )

    def lines(self) -> list[str]:
        return [issue.render(self.path.name) for issue in self.issues]
