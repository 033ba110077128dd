"""Operator scopes and what each one grants."""

from __future__ import annotations

READ = "operator.read"
WRITE = "operator.write"
ADMIN = "operator.admin"
PAIRING = "operator.pairing"
APPROVALS = "operator.approvals"
QUESTIONS = "operator.questions"  # the official UI asks for it; question.list needs it
KNOWN = (READ, WRITE, ADMIN, PAIRING, APPROVALS, QUESTIONS)

# A scope also satisfies the scopes listed for it.
_IMPLIES = {
    ADMIN: frozenset(KNOWN),
    WRITE: frozenset({WRITE, READ}),
    READ: frozenset({READ}),
    PAIRING: frozenset({PAIRING}),
    APPROVALS: frozenset({APPROVALS}),
    QUESTIONS: frozenset({QUESTIONS}),
}


def expand(granted: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    out: set[str] = set()
    for scope in granted:
        out |= _IMPLIES.get(scope, frozenset())
    return frozenset(out)


def satisfies(granted: frozenset[str], required: str) -> bool:
    return required in expand(granted)
