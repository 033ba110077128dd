"""The suite, the benches and the scripts need nothing outside the repository (issue: a fresh
clone without a sibling `shared/` folder collected 0 tests)."""

from __future__ import annotations

import re

from tests.deploy import REPO
from tests.fixtures import FLY_GUIDE

# A path that climbs out of the repository to a sibling folder, in any spelling we have used.
_OUTSIDE = re.compile(
    r"""(\.\./+shared|/work/shared|parents\[\d+\]\s*/\s*["']shared["']|["']shared["']\s*/\s*["']fixtures)"""
)


def _files(*tops: str) -> list[str]:
    out = []
    for top in tops:
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                out.append(path.relative_to(REPO).as_posix())
    return out


def test_no_test_bench_or_script_reads_outside_the_repo() -> None:
    offenders = []
    for rel in _files("tests", "bench", "scripts", ".ci"):
        if rel.endswith((".pyc", ".png", ".jpg")):
            continue
        text = (REPO / rel).read_text(encoding="utf-8", errors="replace")
        if rel == "tests/deploy/test_repo_alone.py":
            continue  # the pattern itself
        offenders += [f"{rel}: {m.group(0)}" for m in _OUTSIDE.finditer(text)]
    assert offenders == []


def test_the_guide_fixture_is_in_the_repo() -> None:
    assert FLY_GUIDE.is_relative_to(REPO / "tests")
    assert '"mode": "local"' in FLY_GUIDE.read_text(encoding="utf-8")


def test_ci_runs_from_a_copy_with_nothing_beside_it() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "mktemp -d" in script
    # The copy is made, then both the suite and the lint run inside it.
    copy_at = script.index('tar -xf - -C "$copy"')
    assert script.index('cd "$copy"') > copy_at
    assert script.index("bash scripts/test") > script.index('cd "$copy"')
    assert script.index("bash scripts/lint") > script.index('cd "$copy"')


def test_license_is_an_spdx_expression_with_its_file() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"  # PEP 639: an SPDX string, not a table
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the clawgate authors" in text
    # .dockerignore lets it into the build context, where the wheel picks it up.
    assert "!LICENSE" in (REPO / ".dockerignore").read_text(encoding="utf-8")
