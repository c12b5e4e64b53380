"""``serve --workers N``: worker processes sharing the listening socket, supervised."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from svc_daemon import DaemonProcess

pytestmark = pytest.mark.daemon


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid``."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def test_workers_share_the_socket_and_the_store(tmp_path: Path) -> None:
    """Two workers answer; a session saved through one loads through any; a
    killed worker is replaced; SIGTERM stops them all and removes the socket."""
    d = DaemonProcess(tmp_path, "--workers", "2").start()
    assert d.proc is not None
    try:
        first = children(d.proc.pid)
        assert len(first) == 2
        app = d.client()
        assert app.call("describe")["data"]["limits"]["workers"] == 2
        created = app.call("create", data={"n": 1})["data"]
        for _ in range(20):  # fresh connections land on either worker
            c = d.client()
            assert c.call("load", cookie=created["cookie"])["data"]["session"]["data"] == {"n": 1}
            c.close()
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        for _ in range(300):  # the supervisor restarts it (bounded wait, not a timing check)
            now = children(d.proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.05)
        assert len(now) == 2 and victim not in now
        assert all(d.client().call("ping")["ok"] for _ in range(10))
    finally:
        code, err = d.stop()
    assert code == 0, err
    assert not d.socket.exists() and not (d.data_dir / "sessionward.pid").exists()
    assert "Traceback" not in err
