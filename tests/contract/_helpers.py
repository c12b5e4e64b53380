"""Helpers shared by the contract tests."""

from __future__ import annotations

from typing import Any

from sessionward import SessionManager


def saved(manager: SessionManager, **data: Any) -> str:
    """Store a new session holding ``data`` and return its cookie value."""
    session = manager.new()
    session.update(data or {"k": "v"})
    manager.save(session)
    assert session.cookie_value is not None
    return session.cookie_value
