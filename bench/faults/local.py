"""Helpers of the local-store fault scenarios (disk full, kill -9 of writers).

Not a scenario module (no ``SCENARIOS``): the URLs of the two local stores
under a directory, and the after-the-fault check every scenario runs —
``PRAGMA integrity_check`` (SQLite) and every stored record read and opened
(a torn or half-written record would fail to parse or to authenticate).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionward.core.errors import CodecError, StoreError

KINDS = ("sqlite", "filesystem")
LABEL = {"sqlite": "SQLite", "filesystem": "filesystem"}


def store_url(kind: str, root: Path) -> str:
    """The store URL of ``kind`` under ``root`` (an absolute directory)."""
    if kind == "sqlite":
        return f"sqlite:///{root}/sessions.db"
    return f"file://{root}/fs"


@dataclass
class Check:
    """What a full read of the store found."""

    records: int = 0
    torn: int = 0
    integrity: str = "n/a"

    def ok(self) -> bool:
        return self.torn == 0 and self.integrity in ("ok", "n/a")


def check_store(kind: str, root: Path, manager: Any) -> Check:
    """Read and open every record (``manager``: a ``SessionManager`` on the store).

    A record that does not parse (filesystem: ``StoreError`` from the file
    format's CRC and length checks) or does not authenticate and decode
    (``CodecError`` from the sealer) counts as torn.
    """
    found = Check()
    if kind == "sqlite":
        db = sqlite3.connect(root / "sessions.db")
        try:
            found.integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
            keys = [r[0] for r in db.execute("SELECT key FROM sw_sessions")]
        finally:
            db.close()
    else:
        keys = sorted(p.name for p in (root / "fs" / "records").glob("*/*"))
    store, sealer = manager.store, manager.sealer
    for key in keys:
        try:
            stored = store.load(key)
            if stored is None:
                continue  # deleted meanwhile: cleanly absent
            sealer.open(key, stored)
            found.records += 1
        except (StoreError, CodecError):
            found.torn += 1
    return found
