"""The demo's own data: users (argon2id hashes) and per-user security events.

One small SQLite file in the demo's private data directory.  Each call opens
its own connection, so the event subscriber may run in any thread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..audit.events import Event
from .texts import EVENT_LABELS, event_detail

KEEP_EVENTS = 50
REQUEST_DEVICE: ContextVar[str] = ContextVar("REQUEST_DEVICE", default="")
"""The device label of the request being served ("Firefox on Linux"), set by the
demo's middleware; events emitted while serving it name that device."""
_ROUTE_RECORDED = frozenset({"user", "revoke_user"})
"""``revoked`` reasons the routes record themselves, naming the devices signed out."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL, ts REAL NOT NULL,
    name TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', client TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_user ON events (username, id);
"""
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True, slots=True)
class EventRow:
    """One security event as shown on the events page."""

    ts: float
    name: str
    label: str
    detail: str
    client: str


class DemoDB:
    """Users and security events in ``<data dir>/demo.db``.

    Args:
        path: the SQLite file (created 0600 inside the private data dir).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(_SCHEMA)
        path.chmod(0o600)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    # ------------------------------------------------------------- users

    def create_user(self, username: str, password: str) -> bool:
        """Add a user; False if the name is taken."""
        pw_hash = _hasher.hash(password)
        try:
            with self._connect() as db:
                db.execute("INSERT INTO users VALUES (?, ?, ?)", (username, pw_hash, time.time()))
        except sqlite3.IntegrityError:
            return False
        return True

    def verify(self, username: str, password: str) -> bool:
        """Check a password (constant work whether or not the user exists)."""
        with self._connect() as db:
            row = db.execute("SELECT pw_hash FROM users WHERE username = ?",
                             (username,)).fetchone()
        stored = row[0] if row else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and row is not None

    def set_password(self, username: str, password: str) -> None:
        """Replace a user's password hash."""
        with self._connect() as db:
            db.execute("UPDATE users SET pw_hash = ? WHERE username = ?",
                       (_hasher.hash(password), username))

    # ------------------------------------------------------------ events

    def add_event(self, username: str, name: str, *, ts: float | None = None,
                  detail: str = "", client: str = "") -> None:
        """Record an event for ``username`` and keep only the newest ones."""
        with self._connect() as db:
            db.execute("INSERT INTO events (username, ts, name, detail, client) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (username, ts or time.time(), name, detail[:200], client[:64]))
            db.execute("DELETE FROM events WHERE username = ? AND id NOT IN (SELECT id FROM "
                       "events WHERE username = ? ORDER BY id DESC LIMIT ?)",
                       (username, username, KEEP_EVENTS))

    def events_of(self, username: str, limit: int = KEEP_EVENTS) -> list[EventRow]:
        """The user's newest events first."""
        with self._connect() as db:
            rows = db.execute("SELECT ts, name, detail, client FROM events WHERE username = ? "
                              "ORDER BY id DESC LIMIT ?", (username, limit)).fetchall()
        return [EventRow(ts, name, EVENT_LABELS.get(name, name), detail, client)
                for ts, name, detail, client in rows]

    def on_event(self, event: Event) -> None:
        """EventHub subscriber: keep the account-relevant manager events, in words."""
        if event.user is None or event.name not in EVENT_LABELS:
            return
        if event.name == "rotated" and event.reason in ("login", "elevate"):
            return  # already shown as "Signed in" / "Password confirmed"
        if event.name == "revoked" and event.reason in _ROUTE_RECORDED:
            return  # recorded by the route with the devices it signed out
        detail = event_detail(event.name, event.reason, REQUEST_DEVICE.get())
        self.add_event(event.user, event.name, ts=event.ts, detail=detail,
                       client=event.client or "")
