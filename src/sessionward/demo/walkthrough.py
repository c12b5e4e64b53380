"""A command-line walkthrough of sessionward on the embedded SQLite default.

Run it with ``make walkthrough`` or ``python -m sessionward.demo.walkthrough``.
It uses a throw-away data directory and a manual clock (so "15 minutes
later" takes no time) and prints what happens at each step.  Cookie values
are shown only as short prefixes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ..audit.events import Event
from ..core.clock import FrozenClock
from ..core.config import Settings
from ..core.keys import load_keyring, write_key_file
from ..lifecycle.manager import SessionManager
from ..stores.sqlite import SQLiteStore


def _short(cookie: str | None) -> str:
    return f"{cookie[:8]}…" if cookie else "(none)"


def _step(title: str) -> None:
    print(f"\n== {title}")


def run(out: Callable[[str], None] = print) -> None:
    """Walk through the lifecycle, printing each step and the events it fired."""
    with tempfile.TemporaryDirectory(prefix="sessionward-walkthrough-") as tmp:
        data = Path(tmp)
        write_key_file(data / "keys" / "session.key")
        clock = FrozenClock()
        store = SQLiteStore(data / "sessions.db", clock=clock)
        manager = SessionManager(store, load_keyring(data / "keys" / "session.key", "demo"),
                                 Settings(namespace="demo"), clock=clock)
        manager.events.subscribe(lambda e: out(f"   event: {_describe(e)}"))
        _scenario(manager, store, clock, out)


def _describe(event: Event) -> str:
    extra = f" reason={event.reason}" if event.reason else ""
    user = f" user={event.user}" if event.user else ""
    return f"{event.name} session={event.fingerprint or '-'}{user}{extra}"


def _scenario(manager: SessionManager, store: SQLiteStore, clock: FrozenClock,
              out: Callable[[str], None]) -> None:
    _step("1. an anonymous visitor: nothing is stored until data is")
    session = manager.new()
    manager.save(session)
    out(f"   cookie after saving an empty session: {_short(session.cookie_value)}")
    session["cart"] = ["book"]
    manager.save(session)
    anonymous = session.cookie_value
    out(f"   cookie after adding a cart: {_short(anonymous)}")

    _step("2. the next request loads it")
    loaded = manager.load(anonymous)
    out(f"   cart = {loaded['cart'] if loaded else None}")

    _step("3. login rotates the ID; the old one is dead at once")
    if loaded is None:
        raise RuntimeError("walkthrough: session vanished")
    manager.login(loaded, "alice")
    out(f"   new cookie {_short(loaded.cookie_value)}; old cookie loads as "
        f"{manager.load(anonymous)}")

    _step("4. 15 minutes later: periodic rotation with a 10 s grace")
    clock.advance(15 * 60)
    rotated = manager.load(loaded.cookie_value)
    if rotated is None:
        raise RuntimeError("walkthrough: session vanished")
    out(f"   response re-sends the cookie: {_short(rotated.cookie_value)}")
    forwarded = manager.load(loaded.cookie_value)
    out(f"   an in-flight request with the old cookie is forwarded to "
        f"{_short(forwarded.cookie_value if forwarded else None)}")
    clock.advance(11)
    out("   11 s later the old cookie is presented again (a thief?):")
    out(f"   -> {manager.load(loaded.cookie_value)}; the family is revoked, so the new "
        f"cookie is dead too: {manager.load(rotated.cookie_value)}")

    _step("5. a tampered record is rejected, never decrypted")
    victim = manager.new()
    victim["x"] = 1
    manager.save(victim)
    record = store.load(victim.storage_key or "")
    if record is not None:
        flipped = bytes([record.blob[0]]) + record.blob[1:-1] + bytes([record.blob[-1] ^ 1])
        store.replace(victim.storage_key or "", flipped, expected_version=record.version,
                      expires_at=record.expires_at, user_key=None)
    out(f"   load -> {manager.load(victim.cookie_value)}")

    _step("6. 'sign out everywhere': revoke_user through the per-user index")
    for _ in range(3):
        s = manager.new()
        s["device"] = True
        manager.save(s)
        manager.login(s, "bob")
    out(f"   bob has {len(manager.sessions_of('bob'))} sessions")
    out(f"   revoked {manager.revoke_user('bob')}; bob now has "
        f"{len(manager.sessions_of('bob'))}")

    _step("7. cleanup: batched, cost grows with the expired records only")
    clock.advance(31 * 60)
    out(f"   removed {manager.cleanup(batch=100)} expired records")
    out("\nDone. Nothing in the store is a session ID: only keyed hashes and sealed bytes.")


if __name__ == "__main__":
    run()
