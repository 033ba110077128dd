from __future__ import annotations

import pytest

from gateway.agents.ids import is_valid_agent_id, normalize_account_id, normalize_agent_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("main", "main"),
        ("  Main  ", "main"),
        ("WORK", "work"),
        ("a_b-c", "a_b-c"),
        ("9lives", "9lives"),
        ("", "main"),
        (None, "main"),
        ("   ", "main"),
        ("my agent", "my-agent"),
        ("my   agent!!", "my-agent"),
        ("--x--", "x"),
        ("héllo", "h-llo"),
        ("../etc/passwd", "etc-passwd"),
        ("!!!", "main"),
        ("a" * 80, "a" * 64),
        ("-" + "b" * 70, "b" * 64),
    ],
)
def test_normalize_agent_id(raw: str | None, expected: str) -> None:
    assert normalize_agent_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, "default"), ("", "default"), ("Work Bot", "work-bot"), ("acct_1", "acct_1")],
)
def test_normalize_account_id(raw: str | None, expected: str) -> None:
    assert normalize_account_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "valid"),
    [("main", True), ("Main", True), ("a-b_c", True), ("-a", False), ("a b", False), ("", False)],
)
def test_is_valid_agent_id(raw: str, valid: bool) -> None:
    assert is_valid_agent_id(raw) is valid
