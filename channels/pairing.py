"""DM pairing requests and approved senders, persisted under the state dir (channels.md §2.2).

Stored like the reference: SQLite `<state>/state/openclaw.sqlite`, tables
`channel_pairing_requests` and `channel_pairing_allow_entries`, keyed by channel + account.
SQLite gives the atomic writes and the cross-process lock, so the running gateway and the
offline CLI (`python -m gateway pairing approve ...`) share one store safely; the gateway
queries it on every admission check, so a CLI approval takes effect with the next message.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0 O 1 I
CODE_LENGTH = 8
TTL_MS = 60 * 60 * 1000  # a request expires this long after its sender's last message
MAX_PENDING_PER_ACCOUNT = 3
FULL_REPLY = "OpenClaw: the owner has too many pending requests; try later."
TURNED_AWAY_MEMORY = 10_000  # newcomers told "full" (each told once per TTL), oldest forgotten
CLI_NAME = "python -m gateway"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_pairing_requests (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    code TEXT NOT NULL,
    sender_label TEXT NOT NULL DEFAULT '',
    meta_json TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (channel, account_id, sender_id)
);
CREATE TABLE IF NOT EXISTS channel_pairing_allow_entries (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT 'pairing',
    PRIMARY KEY (channel, account_id, sender_id)
);
"""


def db_path(state_dir: Path) -> Path:
    return state_dir / "state" / "openclaw.sqlite"


def _now_ms() -> int:
    return int(time.time() * 1000)


def new_code(taken: set[str] | frozenset[str] = frozenset()) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code


@dataclass(frozen=True)
class PairingRequest:
    channel: str
    account_id: str
    sender_id: str
    code: str
    sender_label: str
    created_at: int
    last_seen_at: int

    @property
    def expires_at(self) -> int:
        return self.last_seen_at + TTL_MS


@dataclass(frozen=True)
class RequestOutcome:
    """`created`: a new request (reply with the code); `turned_away`: the pending list is full
    and this newcomer has not been told yet (reply FULL_REPLY, tell the owner); otherwise
    pending already, or told already."""

    request: PairingRequest | None
    created: bool
    turned_away: bool = False


@dataclass
class Overflow:
    """Newcomers turned away because an account's pending list was full (Control UI badge)."""

    count: int = 0
    last_at: int = 0
    last_sender: str = ""


def pairing_reply(channel: str, sender_id: str, code: str) -> str:
    """The fixed reply template (channels.md §2.2 step 4), with our CLI name."""
    label = {"discord": "Discord", "telegram": "Telegram"}.get(channel, channel.title())
    return (
        "OpenClaw: access not configured.\n\n"
        f"Your {label} user id: {sender_id}\n"
        f"Pairing code:\n```\n{code}\n```\n\n"
        "Ask the bot owner to approve with:\n"
        f"```\n{CLI_NAME} pairing approve {channel} {code}\n```"
    )


class PairingStore:
    def __init__(self, state_dir: Path, clock: Callable[[], int] = _now_ms) -> None:
        self.path = db_path(state_dir)
        self._clock = clock
        self._ready = False
        self._turned_away: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self.overflow: dict[tuple[str, str], Overflow] = {}

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            if not self._ready:
                conn.executescript(_SCHEMA)
                self._ready = True
            # IMMEDIATE takes the write lock up front: read-check-write is atomic across processes.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _expire(self, conn: sqlite3.Connection, now: int) -> None:
        # From the last message, not the first: a sender who is still writing keeps the slot.
        conn.execute(
            "DELETE FROM channel_pairing_requests WHERE last_seen_at <= ?", (now - TTL_MS,)
        )

    @staticmethod
    def _row(row: tuple[str, str, str, str, str, int, int]) -> PairingRequest:
        return PairingRequest(*row)

    _COLS = "channel, account_id, sender_id, code, sender_label, created_at, last_seen_at"

    # --- gateway side ---------------------------------------------------------------------

    def request(
        self, channel: str, account_id: str, sender_id: str, sender_label: str = ""
    ) -> RequestOutcome:
        """Record a DM from an unknown sender; a new request only when none is pending."""
        now = self._clock()
        with self._db(write=True) as conn:
            self._expire(conn, now)
            row = conn.execute(
                f"SELECT {self._COLS} FROM channel_pairing_requests "
                "WHERE channel=? AND account_id=? AND sender_id=?",
                (channel, account_id, sender_id),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE channel_pairing_requests SET last_seen_at=? "
                    "WHERE channel=? AND account_id=? AND sender_id=?",
                    (now, channel, account_id, sender_id),
                )
                return RequestOutcome(self._row(row), created=False)
            (pending,) = conn.execute(
                "SELECT COUNT(*) FROM channel_pairing_requests WHERE channel=? AND account_id=?",
                (channel, account_id),
            ).fetchone()
            if pending >= MAX_PENDING_PER_ACCOUNT:
                return RequestOutcome(
                    None,
                    created=False,
                    turned_away=self._turn_away(channel, account_id, sender_id, now),
                )
            taken = {c for (c,) in conn.execute("SELECT code FROM channel_pairing_requests")}
            req = PairingRequest(
                channel, account_id, sender_id, new_code(taken), sender_label, now, now
            )
            conn.execute(
                f"INSERT INTO channel_pairing_requests ({self._COLS}) VALUES (?,?,?,?,?,?,?)",
                (
                    req.channel,
                    req.account_id,
                    req.sender_id,
                    req.code,
                    req.sender_label,
                    req.created_at,
                    req.last_seen_at,
                ),
            )
            return RequestOutcome(req, created=True)

    def _turn_away(self, channel: str, account_id: str, sender_id: str, now: int) -> bool:
        """Count a newcomer refused for lack of room; True the first time (per TTL) for them."""
        told = self._turned_away
        while told and next(iter(told.values())) <= now - TTL_MS:
            told.popitem(last=False)
        key = (channel, account_id, sender_id)
        overflow = self.overflow.setdefault((channel, account_id), Overflow())
        overflow.last_at = now
        if key in told:
            return False
        told[key] = now
        while len(told) > TURNED_AWAY_MEMORY:
            told.popitem(last=False)
        overflow.count += 1
        overflow.last_sender = sender_id
        return True

    def allowed(self, channel: str, account_id: str) -> frozenset[str]:
        """Approved DM senders of one channel account (read fresh: the CLI may have written)."""
        if not self.path.exists():
            return frozenset()
        with self._db() as conn:
            rows = conn.execute(
                "SELECT sender_id FROM channel_pairing_allow_entries "
                "WHERE channel=? AND account_id=?",
                (channel, account_id),
            ).fetchall()
        return frozenset(r[0] for r in rows)

    # --- operator side (RPC + CLI) ----------------------------------------------------------

    def pending(
        self, channel: str | None = None, account_id: str | None = None
    ) -> list[PairingRequest]:
        if not self.path.exists():
            return []
        now = self._clock()
        with self._db(write=True) as conn:
            self._expire(conn, now)
            sql = f"SELECT {self._COLS} FROM channel_pairing_requests WHERE 1=1"
            args: list[str] = []
            if channel:
                sql += " AND channel=?"
                args.append(channel)
            if account_id:
                sql += " AND account_id=?"
                args.append(account_id)
            rows = conn.execute(sql + " ORDER BY created_at", args).fetchall()
        return [self._row(r) for r in rows]

    def approve(
        self, channel: str, code: str, account_id: str | None = None
    ) -> PairingRequest | None:
        """Move a pending request into the allow entries; None if no such pending code."""
        now = self._clock()
        with self._db(write=True) as conn:
            self._expire(conn, now)
            req = self._find(conn, channel, code, account_id)
            if req is None:
                return None
            conn.execute(
                "DELETE FROM channel_pairing_requests "
                "WHERE channel=? AND account_id=? AND sender_id=?",
                (req.channel, req.account_id, req.sender_id),
            )
            self.overflow.pop((req.channel, req.account_id), None)
            conn.execute(
                "INSERT OR REPLACE INTO channel_pairing_allow_entries "
                "(channel, account_id, sender_id, created_at, source) VALUES (?,?,?,?,?)",
                (req.channel, req.account_id, req.sender_id, now, "pairing"),
            )
            return req

    def dismiss(
        self, channel: str, code: str, account_id: str | None = None
    ) -> PairingRequest | None:
        """Drop a pending request without admitting the sender; None if no such code."""
        with self._db(write=True) as conn:
            self._expire(conn, self._clock())
            req = self._find(conn, channel, code, account_id)
            if req is None:
                return None
            conn.execute(
                "DELETE FROM channel_pairing_requests WHERE channel=? AND account_id=? AND code=?",
                (req.channel, req.account_id, req.code),
            )
            self.overflow.pop((req.channel, req.account_id), None)
            return req

    def _find(
        self, conn: sqlite3.Connection, channel: str, code: str, account_id: str | None
    ) -> PairingRequest | None:
        """The pending request with `code` (case-insensitive) on `channel`, if any."""
        sql = f"SELECT {self._COLS} FROM channel_pairing_requests WHERE channel=? AND code=?"
        args = [channel, code.strip().upper()]
        if account_id:
            sql += " AND account_id=?"
            args.append(account_id)
        row = conn.execute(sql, args).fetchone()
        return self._row(row) if row is not None else None
