"""open_store: one registry by URL scheme, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionward import ConfigurationError, open_store
from sessionward.stores.memory import MemoryStore
from sessionward.stores.sqlite import SQLiteStore


def test_known_schemes(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    assert isinstance(store, SQLiteStore) and store.path == tmp_path / "s.db"
    store.close()


@pytest.mark.parametrize("url,message", [
    ("ftp://x/y", "unknown store URL scheme 'ftp'"),
    ("just-a-path", "unknown store URL scheme ''"),
    ("sessionward:///run/sw.sock", "RemoteSessionManager"),
    ("sqlite://", "sqlite URL needs a file"),
])
def test_bad_urls_are_clear(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)


def test_url_credentials_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store("mongodb://admin:hunter2@db.example:27017/x")
    assert "hunter2" not in str(info.value)
