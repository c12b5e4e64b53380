"""A worker process for the concurrency contract tests.

Usage: ``python session_worker.py '<json job>'``; prints one JSON line with
its results.  Arguments travel as JSON (no pickle-based multiprocessing).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from datetime import timedelta
from typing import Any

from sessionward import SessionGoneError, SessionManager, Settings
from sessionward.core.keys import KeyRing
from sessionward.stores.base import SessionStore


def build_store(spec: dict[str, Any]) -> SessionStore:
    kind = spec["kind"]
    if kind == "sqlite":
        from sessionward.stores.sqlite import SQLiteStore

        return SQLiteStore(spec["path"])
    if kind == "filesystem":
        from sessionward.stores.filesystem import FileStore

        return FileStore(spec["path"])
    from sessionward.stores.redis import RedisStore

    return RedisStore.from_url(spec["url"], prefix=spec["prefix"])


def build_manager(job: dict[str, Any]) -> SessionManager:
    ring = KeyRing.from_bytes([base64.b64decode(job["key"])], job["namespace"])
    overrides = {k: timedelta(seconds=v) for k, v in job.get("timings", {}).items()}
    settings = Settings(namespace=job["namespace"], **overrides)
    return SessionManager(build_store(job["store"]), ring, settings)


def run(job: dict[str, Any]) -> dict[str, Any]:
    manager = build_manager(job)
    start_at = job.get("start_at")
    if start_at:
        time.sleep(max(0.0, start_at - time.time()))
    action = job["action"]
    tag, n, cookie = job.get("tag", "w"), job.get("n", 0), job["cookie"]
    out: dict[str, Any] = {"tag": tag}
    if action == "exclusive_append":
        for i in range(n):
            with manager.open(cookie, mode="exclusive") as session:
                session["items"] = [*session.get("items", []), f"{tag}-{i}"]
    elif action == "update_append":
        session = manager.load(cookie)
        if session is None:
            raise SystemExit("session vanished")
        for i in range(n):
            item = f"{tag}-{i}"
            manager.update(session, "items", lambda v, item=item: [*(v or []), item])
    elif action == "disjoint":
        for i in range(n):
            session = manager.load(cookie)
            if session is None:
                raise SystemExit("session vanished")
            session[f"{tag}:{i}"] = i
            session[tag] = session.get(tag, 0) + 1
            manager.save(session)
    elif action == "write_until_gone":
        writes = 0
        try:
            for i in range(n):
                session = manager.load(cookie)
                if session is None:
                    out["ended"] = "load_none"
                    break
                session[f"{tag}:{i}"] = i
                manager.save(session)
                writes += 1
        except SessionGoneError:
            out["ended"] = "gone_error"
        out["writes"] = writes
    elif action == "load_cookie":
        session = manager.load(cookie)
        out["cookie"] = None if session is None else session.cookie_value
    elif action == "hold_lock":
        session = manager.load(cookie, mode="exclusive")
        print(json.dumps({"locked": session is not None}), flush=True)
        time.sleep(600)  # killed by the test
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
