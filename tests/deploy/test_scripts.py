"""scripts/setup (behind scripts/run and scripts/test) installs only when something changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.deploy import REPO

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for .venv/bin/python: answers -V, records every other call.
if [ "$1" = "-V" ]; then echo "Python 3.11.9"; exit 0; fi
echo "$*" >> "$(dirname "$0")/../calls"
"""


def _checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "clawgate"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "setup", repo / "scripts" / "setup")
    shutil.copy2(REPO / "pyproject.toml", repo / "pyproject.toml")
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(FAKE_PYTHON)
    (bin_dir / "python").chmod(0o755)
    return repo


def _setup(repo: Path, *args: str) -> list[str]:
    calls = repo / ".venv" / "calls"
    calls.unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(repo / "scripts" / "setup"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHON": "false"},  # never creates a real venv here
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", "pip runs quietly"
    return calls.read_text().splitlines() if calls.exists() else []


def test_setup_installs_once_then_only_when_pyproject_changes(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    first = _setup(repo)
    assert [c.split(" install ")[1] for c in first] == [
        "-qq --disable-pip-version-check --no-input --upgrade pip",
        "-qq --disable-pip-version-check --no-input -e .",
    ]
    assert _setup(repo) == []  # nothing changed: no pip at all
    assert len(_setup(repo, "dev")) == 2  # the test tools are new
    assert _setup(repo) == []  # a dev install serves `run` too
    with (repo / "pyproject.toml").open("a") as fh:
        fh.write("\n# changed\n")
    assert len(_setup(repo)) == 2


def test_run_and_test_go_through_setup() -> None:
    assert "scripts/setup\n" in (REPO / "scripts" / "run").read_text()
    assert "scripts/setup dev\n" in (REPO / "scripts" / "test").read_text()
