"""T-14: no raw session ID, cookie value or key in any log record or audit line.

A full scenario (create, save, load, login, rotate, logout, revoke_user, plus
the refused loads an attacker would cause) runs with an ``AuditFileSink`` at
level ``all`` and every logger captured at DEBUG.  Then every log record
(message, arguments, extras, exception text) and every audit line is searched
for every session ID, cookie value and key created, and for every 10-character
substring of each (ASVS 4.0.3 7.1.1, 5.0 16.2.5; CS-29; P-S4).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from pathlib import Path

import pytest

from sessionward import SessionManager, Settings
from sessionward.audit.events import Event
from sessionward.audit.sinks.audit_file import AuditFileSink
from sessionward.core.client import ClientInfo
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.lifecycle.session import Session

from conftest import make_store, store_params

WINDOW = 10


def windows(secret: str) -> set[str]:
    """Every WINDOW-character substring (any longer leak contains one)."""
    if len(secret) <= WINDOW:
        return {secret}
    return {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}


def leaks(secrets: dict[str, str], haystacks: Iterable[tuple[str, str]]) -> list[str]:
    """``"<secret label> in <where>"`` for every secret fragment found."""
    found = []
    fragments = {frag: label for label, value in secrets.items() for frag in windows(value)}
    for where, text in haystacks:
        for frag, label in fragments.items():
            if frag in text:
                found.append(f"{label} in {where}: ...{frag}...")
    return found


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print for ``record``."""
    formatted = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return f"{formatted}\n{record.msg!r}\n{record.args!r}\n{vars(record)!r}"


class Scenario:
    """Runs the lifecycle and remembers every secret it created."""

    def __init__(self, manager: SessionManager, keyring: KeyRing) -> None:
        self.manager = manager
        self.secrets: dict[str, str] = {}
        for key in keyring.keys:
            for form, text in _key_forms(key.raw).items():
                self.secrets[f"key {key.kid} ({form})"] = text

    def remember(self, session: Session, label: str) -> str:
        cookie = session.cookie_value
        assert cookie is not None and session._id is not None
        self.secrets[f"{label} id"] = session._id
        self.secrets[f"{label} cookie"] = cookie
        return cookie

    def run(self) -> None:
        m = self.manager
        client = ClientInfo(ip="203.0.113.9", user_agent="Mozilla/5.0 test", correlation_id="r-1")
        anon = m.new(client=client)
        anon["cart"] = ["book"]
        m.save(anon)
        anon_cookie = self.remember(anon, "anonymous")

        loaded = m.load(anon_cookie, client=client)
        assert loaded is not None
        loaded["cart"] = ["book", "pen"]
        m.save(loaded)
        m.login(loaded, "alice")
        login_cookie = self.remember(loaded, "after login")
        m.save(loaded)
        m.rotate(loaded)
        rotated_cookie = self.remember(loaded, "after rotate")

        other = m.new(client=ClientInfo(ip="198.51.100.7", user_agent="curl/8"))
        other["x"] = 1
        m.save(other)
        self.remember(other, "second device (anonymous)")
        m.login(other, "alice")
        m.save(other)
        self.remember(other, "second device")

        # What an attacker or a stale tab would present: all refused, all logged.
        for stale in (anon_cookie, login_cookie):
            assert m.load(stale, client=client) is None
        assert m.load(rotated_cookie[:-3] + "AAA", client=client) is None
        assert m.load("A" * 60, client=client) is None

        m.logout(loaded)
        assert m.load(rotated_cookie, client=client) is None
        assert m.revoke_user("alice") >= 1
        m.cleanup()


def _key_forms(raw: bytes) -> dict[str, str]:
    return {
        "base64": base64.b64encode(raw).decode(),
        "urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
    }


@pytest.mark.parametrize("kind", store_params(["memory", "sqlite", "filesystem"]))
def test_no_secrets_in_logs_or_audit(
    request: pytest.FixtureRequest,
    kind: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Zero hits for any ID, cookie or key (or 10-char piece) in logs and audit lines."""
    clock = FrozenClock()
    keyring = KeyRing.generate("t14")
    store = make_store(request, kind, tmp_path, clock)
    manager = SessionManager(store, keyring, Settings(namespace="t14"), clock=clock)
    audit_path = tmp_path / "audit.jsonl"
    sink = AuditFileSink(audit_path, level="all")
    events: list[Event] = []
    manager.events.subscribe(sink)
    manager.events.subscribe(events.append)
    caplog.set_level(logging.DEBUG)

    scenario = Scenario(manager, keyring)
    try:
        scenario.run()
    finally:
        sink.close()
        manager.close()

    # The search must have something to search: the scenario really was audited.
    audit_lines = audit_path.read_text().splitlines()
    names = {e.name for e in events}
    assert {"created", "login", "rotated", "logout", "revoked", "invalid_session"} <= names
    assert len(audit_lines) == len(events) and sink.failures == 0
    assert len(scenario.secrets) >= 13

    haystacks = [(f"audit line {i + 1}", line) for i, line in enumerate(audit_lines)]
    haystacks += [(f"log record {r.name}:{r.lineno}", record_text(r)) for r in caplog.records]
    haystacks += [(f"event {e.name} repr", repr(e)) for e in events]
    assert leaks(scenario.secrets, haystacks) == []


def test_detector_finds_a_planted_fragment() -> None:
    """The search itself works: a 10-character piece of a secret is found."""
    secret = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
    assert leaks({"id": secret}, [("log", f"user logged in with {secret[17:27]}!")])
    assert not leaks({"id": secret}, [("log", f"nothing here but {secret[17:26]}")])
