"""How many generated cases each fuzz target ran (printed at the end of the session)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
