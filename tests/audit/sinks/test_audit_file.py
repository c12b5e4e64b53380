"""Tests for the JSON Lines audit file sink and its hash chain."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sessionward.audit.events import Event
from sessionward.audit.sinks.audit_file import GENESIS, AuditFileSink, verify_chain
from sessionward.core.errors import ConfigurationError

TS = 1_700_000_000.123


def ev(name: str = "login", **kw: object) -> Event:
    """An event built directly, as the manager would emit it."""
    fields: dict[str, object] = {"namespace": "t", "fingerprint": "abc123", "user": "alice"}
    fields.update(kw)
    return Event(name=name, ts=TS, **fields)  # type: ignore[arg-type]


def read_lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(name="audit_path")
def fixture_audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture(name="security_records")
def fixture_security_records(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    caplog.set_level(logging.DEBUG, logger="sessionward.security")
    yield [r for r in caplog.records if r.name == "sessionward.security"]


class TestWriting:
    """Lines, levels and file creation."""

    def test_one_json_object_per_line(self, audit_path: Path) -> None:
        """Each event becomes exactly its to_dict() on one line."""
        event = ev("login", client="127.0.0.1", fields={"method": "password"})
        with AuditFileSink(audit_path) as sink:
            sink(event)
        assert read_lines(audit_path) == [event.to_dict()]
        assert audit_path.read_bytes().endswith(b"\n")
        assert sink.written == 1 and sink.failures == 0

    @pytest.mark.parametrize(
        ("level", "expected"),
        [
            ("critical", ["zombie_accessed"]),
            ("auth", ["login", "zombie_accessed"]),
            ("all", ["created", "login", "zombie_accessed"]),
        ],
    )
    def test_levels(self, audit_path: Path, level: str, expected: list[str]) -> None:
        """critical / auth / all keep events with level >= the threshold."""
        with AuditFileSink(audit_path, level=level) as sink:  # type: ignore[arg-type]
            for name in ("created", "login", "zombie_accessed"):
                sink(ev(name))
        assert [line["event"] for line in read_lines(audit_path)] == expected

    def test_default_level_is_auth(self, audit_path: Path) -> None:
        """Without a level, INFO events are skipped and AUTH events kept."""
        with AuditFileSink(audit_path) as sink:
            sink(ev("touched"))
            sink(ev("logout"))
        assert [line["event"] for line in read_lines(audit_path)] == ["logout"]

    def test_unknown_level_refused(self, audit_path: Path) -> None:
        """A typo in the level is a configuration error, not a silent default."""
        with pytest.raises(ConfigurationError, match="critical"):
            AuditFileSink(audit_path, level="debug")  # type: ignore[arg-type]

    def test_created_0600_or_stricter(self, audit_path: Path) -> None:
        """A new file gets mode 0600 even with a permissive umask (issue 15: it was 0640)."""
        old = os.umask(0)
        try:
            AuditFileSink(audit_path).close()
        finally:
            os.umask(old)
        assert stat.S_IMODE(audit_path.stat().st_mode) == 0o600

    def test_group_read_is_explicit(self, audit_path: Path) -> None:
        """``group_read=True`` creates the file 0640, for a log shipper in its group."""
        old = os.umask(0)
        try:
            AuditFileSink(audit_path, group_read=True).close()
        finally:
            os.umask(old)
        assert stat.S_IMODE(audit_path.stat().st_mode) == 0o640

    def test_appends_to_existing_file(self, audit_path: Path) -> None:
        """Existing lines are kept; new lines go at the end."""
        audit_path.write_bytes(b'{"event":"old"}\n')
        audit_path.chmod(0o600)
        with AuditFileSink(audit_path) as sink:
            sink(ev("login"))
        assert [line["event"] for line in read_lines(audit_path)] == ["old", "login"]

    def test_unserialisable_field_is_written_as_text(self, audit_path: Path) -> None:
        """An odd field value never loses the line; it is written as sanitised text."""
        with AuditFileSink(audit_path) as sink:
            sink(ev("login", fields={"where": Path("/srv/app")}))
        assert read_lines(audit_path)[0]["where"] == "[path]"
        assert sink.failures == 0


class TestRefusals:
    """Files the audit trail must never be written to."""

    def test_symlink(
        self, audit_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A symlink is refused (even to a good file), loudly, once."""
        target = tmp_path / "real.jsonl"
        target.write_bytes(b"")
        target.chmod(0o600)
        audit_path.symlink_to(target)
        caplog.set_level(logging.DEBUG, logger="sessionward.security")
        with pytest.raises(ConfigurationError, match="symlink"):
            AuditFileSink(audit_path)
        loud = [r for r in caplog.records if r.name == "sessionward.security"]
        assert [r.levelno for r in loud] == [logging.CRITICAL]
        assert "symlink" in loud[0].getMessage()
        assert str(tmp_path) not in loud[0].getMessage()
        assert target.read_bytes() == b""

    @pytest.mark.parametrize("mode", [0o660, 0o602, 0o666, 0o620])
    def test_group_or_world_writable(
        self, audit_path: Path, mode: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Group- or world-writable files are refused and reported once."""
        audit_path.write_bytes(b"")
        audit_path.chmod(mode)
        caplog.set_level(logging.DEBUG, logger="sessionward.security")
        with pytest.raises(ConfigurationError, match="writable"):
            AuditFileSink(audit_path)
        assert [r.levelno for r in caplog.records if r.name == "sessionward.security"] == [
            logging.CRITICAL
        ]

    @pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
    def test_owned_by_another_user(self, audit_path: Path) -> None:
        """A file owned by someone else is refused."""
        audit_path.write_bytes(b"")
        audit_path.chmod(0o600)
        os.chown(audit_path, 65534, 65534)
        with pytest.raises(ConfigurationError, match="owned by uid 65534"):
            AuditFileSink(audit_path)

    def test_fifo_refused_without_blocking(self, audit_path: Path) -> None:
        """A FIFO planted at the path neither blocks the open nor is accepted."""
        os.mkfifo(audit_path, 0o600)
        with pytest.raises(ConfigurationError, match="audit file"):
            AuditFileSink(audit_path)

    def test_directory_refused(self, tmp_path: Path) -> None:
        """A directory is not an audit file."""
        with pytest.raises(ConfigurationError, match="audit file"):
            AuditFileSink(tmp_path)

    def test_missing_parent(self, tmp_path: Path) -> None:
        """A missing directory is reported as a configuration error."""
        with pytest.raises(ConfigurationError, match="cannot open"):
            AuditFileSink(tmp_path / "nope" / "audit.jsonl")


class TestFailures:
    """Write failures are counted and reported, never silent."""

    def test_write_failure_counted_and_logged(
        self, audit_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An OS write error increments failures and logs on sessionward.security."""
        sink = AuditFileSink(audit_path)
        readonly = os.open(audit_path, os.O_RDONLY)
        os.dup2(readonly, sink._fd)  # the sink's descriptor now refuses writes (EBADF)
        os.close(readonly)
        caplog.set_level(logging.DEBUG, logger="sessionward.security")
        sink(ev("login"))
        sink(ev("logout"))
        sink.close()
        assert sink.failures == 2 and sink.written == 0
        errors = [r for r in caplog.records if r.name == "sessionward.security"]
        assert len(errors) == 2 and all(r.levelno == logging.ERROR for r in errors)
        assert "login" in errors[0].getMessage() and "OSError" in errors[0].getMessage()

    def test_closed_sink_counts_failures(self, audit_path: Path) -> None:
        """Events after close() are failures, never writes to a recycled descriptor."""
        sink = AuditFileSink(audit_path)
        sink.close()
        sink(ev("login"))
        assert sink.failures == 1
        assert audit_path.read_bytes() == b""


class TestHashChain:
    """prev links and verify_chain."""

    def write_chain(self, path: Path, n: int) -> None:
        with AuditFileSink(path, hash_chain=True) as sink:
            for i in range(n):
                sink(ev("login", user=f"u{i}"))

    def test_links(self, audit_path: Path) -> None:
        """The first line links to GENESIS and each next one to its predecessor."""
        import hashlib

        self.write_chain(audit_path, 3)
        raw = audit_path.read_bytes().splitlines()
        lines = [orjson.loads(r) for r in raw]
        assert lines[0]["prev"] == GENESIS
        assert lines[1]["prev"] == hashlib.sha256(raw[0]).hexdigest()
        assert lines[2]["prev"] == hashlib.sha256(raw[1]).hexdigest()
        result = verify_chain(audit_path)
        assert result.ok and result.lines == 3 and result.first_broken is None
        assert result.head == hashlib.sha256(raw[2]).hexdigest()

    def test_empty_file_is_ok(self, audit_path: Path) -> None:
        """An empty file is a valid, empty chain."""
        audit_path.write_bytes(b"")
        assert verify_chain(audit_path) == verify_chain(audit_path)
        assert verify_chain(audit_path).ok and verify_chain(audit_path).head == GENESIS

    def test_chain_continues_after_reopen(self, audit_path: Path) -> None:
        """A new sink on an existing chained file links to its last line."""
        self.write_chain(audit_path, 2)
        self.write_chain(audit_path, 2)
        assert verify_chain(audit_path).ok
        assert verify_chain(audit_path).lines == 4

    def test_two_writers_interleaved(self, audit_path: Path) -> None:
        """Two sinks on one file keep one linear chain (each re-reads the tail)."""
        a = AuditFileSink(audit_path, hash_chain=True)
        b = AuditFileSink(audit_path, hash_chain=True)
        for i in range(10):
            (a if i % 3 else b)(ev("login", user=f"u{i}"))
        a.close()
        b.close()
        result = verify_chain(audit_path)
        assert result.ok and result.lines == 10

    def test_edited_line(self, audit_path: Path) -> None:
        """Changing line 3 breaks the link of line 4."""
        self.write_chain(audit_path, 5)
        lines = audit_path.read_bytes().splitlines(keepends=True)
        lines[2] = lines[2].replace(b'"u2"', b'"mallory"')
        audit_path.write_bytes(b"".join(lines))
        result = verify_chain(audit_path)
        assert (result.ok, result.first_broken) == (False, 4)
        assert "previous line" in result.reason

    def test_deleted_line(self, audit_path: Path) -> None:
        """Removing line 2 breaks the link of (new) line 2."""
        self.write_chain(audit_path, 4)
        lines = audit_path.read_bytes().splitlines(keepends=True)
        del lines[1]
        audit_path.write_bytes(b"".join(lines))
        assert verify_chain(audit_path).first_broken == 2

    def test_deleted_first_line(self, audit_path: Path) -> None:
        """Removing the first line is detected at line 1."""
        self.write_chain(audit_path, 3)
        lines = audit_path.read_bytes().splitlines(keepends=True)
        audit_path.write_bytes(b"".join(lines[1:]))
        result = verify_chain(audit_path)
        assert result.first_broken == 1 and "first line" in result.reason

    def test_garbage_and_unchained_lines(self, audit_path: Path) -> None:
        """Non-JSON and lines without prev are named with their reason."""
        self.write_chain(audit_path, 2)
        with audit_path.open("ab") as f:
            f.write(b"not json\n")
        result = verify_chain(audit_path)
        assert (result.first_broken, result.reason) == (3, "not valid JSON")
        audit_path.write_bytes(b'{"event":"login"}\n')
        assert verify_chain(audit_path).reason.startswith("no 'prev'")

    def test_partial_last_line(self, audit_path: Path) -> None:
        """A torn final line is reported; a later append does not glue onto it."""
        self.write_chain(audit_path, 2)
        with audit_path.open("ab") as f:
            f.write(b'{"event":"tor')
        assert verify_chain(audit_path).first_broken == 3
        self.write_chain(audit_path, 1)
        raw = audit_path.read_bytes().splitlines()
        assert len(raw) == 4 and orjson.loads(raw[3])["user"] == "u0"
        assert verify_chain(audit_path).first_broken == 3

    def test_long_last_line(self, audit_path: Path) -> None:
        """The tail reader finds a last line longer than its read chunk."""
        with AuditFileSink(audit_path, hash_chain=True) as sink:
            sink(ev("login", fields={"note": "x" * 10_000}))
        self.write_chain(audit_path, 1)
        assert verify_chain(audit_path).ok


WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sessionward.audit.events import Event
    from sessionward.audit.sinks.audit_file import AuditFileSink

    path, worker, count, chain, go = sys.argv[1:6]
    count, chain, go = int(count), chain == "1", Path(go)
    sink = AuditFileSink(path, level="all", hash_chain=chain)
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    for i in range(count):
        sink(Event(name="login", ts=1.0, namespace="t", fingerprint="abc123", user=f"{worker}-{i}",
                   fields={"pad": "p" * (i % 300)}))
    sink.close()
    sys.exit(1 if sink.failures else 0)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("chain", [False, True], ids=["plain", "hash_chain"])
def test_four_processes_thousand_events_each(tmp_path: Path, chain: bool) -> None:
    """4 real processes × 1000 events: every line intact, parseable and present."""
    path = tmp_path / "audit.jsonl"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(path),
                f"w{w}",
                "1000",
                "1" if chain else "0",
                str(go),
            ],
            env=env,
        )
        for w in range(4)
    ]
    go.touch()
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0, 0, 0]
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = [orjson.loads(line) for line in raw.splitlines()]
    assert len(lines) == 4000
    users = {line["user"] for line in lines}
    assert users == {f"w{w}-{i}" for w in range(4) for i in range(1000)}
    if chain:
        result = verify_chain(path)
        assert result.ok, result
        assert result.lines == 4000
