"""Every error path of the CLI: one line on stderr, no traceback, and its fix in it
(issue 19 item 2).

Each :class:`Case` runs the real ``sessionward`` executable in a fresh directory and
names the fix its error line must contain (a command to run, the flag or
setting to change, or the valid values).  :func:`test_every_cli_raise_site_is_covered`
ties the table to the code: every error message raised in ``sessionward.cli``
must be the ``covers`` text of some case, so a new error path without a case
(or without a fix) fails.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sessionward.protocol.framing import MAX_RESPONSE

from cli._harness import Cli, login, one_line_error

CLI_SOURCES = Path(__file__).resolve().parents[2] / "src" / "sessionward" / "cli"
TOKEN = "t" * 32


@dataclass
class Env:
    """What a case's setup may use: the runner and its directory."""

    cli: Cli
    tmp: Path

    @property
    def key(self) -> Path:
        return Path(self.cli.env["SESSIONWARD_KEY_FILE"])


Setup = Callable[[Env], None]


@dataclass(frozen=True)
class Case:
    """One failing invocation.

    Attributes:
        id: the test id.
        args: command-line arguments (``{tmp}``, ``{key}`` and ``{sock}`` are filled in).
        fix: text the error line must contain: what to do about it.
        covers: the fragment of a message raised in ``sessionward.cli`` this
            case exercises (for the coverage test), if any.
        env: extra environment (same placeholders).
        setup: prepares the directory first.
        stdin: text typed at a prompt (the line before the error is the prompt).
    """

    id: str
    args: tuple[str, ...]
    fix: str
    covers: str = ""
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None
    stdin: str | None = None


def _chmod_key(mode: int) -> Setup:
    return lambda e: e.key.chmod(mode)


def _write(name: str, text: str, mode: int = 0o600) -> Setup:
    def setup(e: Env) -> None:
        (e.tmp / name).write_text(text)
        (e.tmp / name).chmod(mode)
    return setup


def _symlink(name: str, target: str) -> Setup:
    return lambda e: (e.tmp / name).symlink_to(e.tmp / target)


def _mkdir(name: str, mode: int) -> Setup:
    def setup(e: Env) -> None:
        (e.tmp / name).mkdir()
        (e.tmp / name).chmod(mode)
    return setup


def _old_key_in_use(e: Env) -> None:
    """A session sealed and issued under the first key, then a rotation that adds a key."""
    from sessionward import SessionManager

    mgr = SessionManager.from_url(e.cli.env["SESSIONWARD_STORE"], key_file=str(e.key))
    login(e.cli, mgr, "alice")
    mgr.close()
    e.cli.ok("rotate-keys", "--no-reseal")
    doc = json.loads(e.key.read_text())
    (e.tmp / "old-kid").write_text(next(kid for kid in doc["keys"] if kid != doc["active"]))


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


PORT = _closed_port()

CASES = [
    # --- the command line itself
    Case("unknown-command", ("frobnicate",), "sessionward --help"),
    Case("unknown-option", ("list", "--nope"), "sessionward list --help"),
    Case("bad-value", ("cleanup", "--batch", "0"), "sessionward cleanup --help"),
    Case("missing-argument", ("show",), "sessionward show --help"),
    Case("global-after-command", ("list", "--store", "sqlite:///{tmp}/x.db", "--json"),
         "sessionward --store sqlite:///{tmp}/x.db list --json"),
    Case("global-flag-after-command", ("stats", "--audit-chain"),
         "sessionward --audit-chain stats"),
    Case("unlock-nothing", ("unlock",), "give KEY, --user or --ip",
         covers="give KEY, --user or --ip"),
    Case("unlock-twice", ("unlock", "alice", "--user", "bob"), "not both",
         covers="give the user either as KEY or with --user, not both"),
    Case("reseal-flags", ("rotate-keys", "--no-reseal", "--reseal-only"), "give one",
         covers="--no-reseal and --reseal-only exclude each other; give one"),
    Case("empty-user", ("revoke-user", ""), "sessionward list shows them",
         covers="give the user id the app signs the user in with"),
    Case("revoke-all-mismatch", ("revoke-all",), "pass --yes", stdin="wrong\n",
         covers="the namespace did not match; nothing was revoked (type "),
    # --- configuration
    Case("unknown-scheme", ("--store", "bogus://x", "list"), "known: file://, memory://"),
    Case("missing-config", ("--config", "{tmp}/nope.toml", "list"), "give an existing file"),
    Case("bad-toml", ("--config", "{tmp}/bad.toml", "list"), "is not valid TOML",
         setup=_write("bad.toml", "namespace = = 1\n")),
    Case("bad-setting-in-file", ("--config", "{tmp}/c.toml", "list"),
         "fix idle_timeout in {tmp}/c.toml",
         setup=_write("c.toml", "[sessionward]\nidle_timeout_seconds = -5\n")),
    Case("unknown-env", ("list",), "unset SESSIONWARD_BOGUS", env={"SESSIONWARD_BOGUS": "1"}),
    Case("bad-env-value", ("list",), "fix SESSIONWARD_IDLE_TIMEOUT_SECONDS='-5'",
         env={"SESSIONWARD_IDLE_TIMEOUT_SECONDS": "-5"}),
    # --- key files
    Case("no-key-file", ("list",), "sessionward keygen --out PATH",
         env={"SESSIONWARD_KEY_FILE": ""}, covers="no key file: pass --key-file PATH or set "),
    Case("missing-key-file", ("list",), "sessionward keygen --out {tmp}/none.key",
         env={"SESSIONWARD_KEY_FILE": "{tmp}/none.key"}),
    Case("key-file-0644", ("list",), "chmod 600 {key}", setup=_chmod_key(0o644)),
    Case("key-file-symlink", ("list",), "point to the real file",
         env={"SESSIONWARD_KEY_FILE": "{tmp}/link.key"},
         setup=lambda e: (e.tmp / "link.key").symlink_to(e.key)),
    Case("key-file-malformed", ("list",), "sessionward keygen",
         env={"SESSIONWARD_KEY_FILE": "{tmp}/junk.key"}, setup=_write("junk.key", "junk\n")),
    Case("keygen-exists", ("keygen", "--out", "{key}"), "pass --force"),
    Case("keygen-no-path", ("keygen",), "give --out PATH", env={"SESSIONWARD_KEY_FILE": ""},
         covers="give --out PATH (or configure key_file)"),
    Case("retire-no-key-file", ("retire-key", "abcd1234"), "pass --key-file PATH",
         env={"SESSIONWARD_KEY_FILE": ""},
         covers="no key file: pass --key-file PATH or set SESSIONWARD_KEY_FILE"),
    Case("retire-unknown", ("retire-key", "deadbeef"), "(keys: ",
         covers=" in the key file (keys: "),
    Case("retire-active", ("retire-key", "{active}"), "run `sessionward rotate-keys` first",
         covers=" is the active key; run `sessionward rotate-keys` first"),
    Case("retire-in-use", ("retire-key", "{old}"), "sessionward rotate-keys --reseal-only",
         setup=_old_key_in_use,
         covers="; run `sessionward rotate-keys --reseal-only` and wait for older sessi"),
    Case("rotate-insecure-dir", ("rotate-keys",), "chmod 700 {tmp}/keys",
         setup=lambda e: e.key.parent.chmod(0o777),
         covers=" is writable by group or others (mode "),
    # --- stores (never created by an admin command)
    Case("sqlite-missing", ("--store", "sqlite:///{tmp}/typo/x.db", "list"),
         "sessionward --create"),
    Case("sqlite-foreign-file", ("--store", "sqlite:///{tmp}/notes.txt", "stats"),
         "check the store URL", setup=_write("notes.txt", "not a database\n")),
    Case("file-store-missing", ("--store", "file:///{tmp}/sessions", "list"),
         "sessionward --create"),
    Case("file-store-empty-dir", ("--store", "file:///{tmp}/empty", "list"),
         "sessionward --create", setup=_mkdir("empty", 0o700)),
    Case("file-store-relative", ("--store", "file://relative", "list"),
         "file:///absolute/dir"),
    Case("file-store-insecure", ("--store", "file:///{tmp}/open", "list"), "chmod 700",
         setup=_mkdir("open", 0o777)),
    Case("redis-refused", ("--store", f"redis://127.0.0.1:{PORT}/0", "list"),
         "start redis-server there, or fix host:port"),
    Case("redis-socket-missing", ("--store", "unix:///{tmp}/redis.sock", "list"),
         "fix the socket path"),
    Case("cluster-refused", ("--store", f"redis+cluster://127.0.0.1:{PORT}", "list"),
         "start redis-server there"),
    Case("redis-bad-option", ("--store", "redis://127.0.0.1:1/0?bogus=1", "list"),
         "expected redis://"),
    # --- the admin operations
    Case("bad-handle", ("show", "nothex"), "`sessionward list` shows the current handles"),
    Case("unknown-handle", ("revoke", "a" * 64), "`sessionward list` shows the current handles"),
    # --- files the CLI reads or writes
    Case("audit-dir-missing", ("--audit-file", "{tmp}/no/dir/a.log", "list"),
         "mkdir -p -m 700 {tmp}/no/dir", covers=" does not exist; create it: mkdir -p -m 700 "),
    Case("audit-symlink", ("--audit-file", "{tmp}/a.log", "list"), "--audit-file {tmp}/real.log",
         setup=lambda e: (_write("real.log", ""), (e.tmp / "a.log").symlink_to(e.tmp / "real.log"))
         and None, covers=" is a symlink (never followed); give the real file: --audit-file "),
    *([Case("audit-not-ours", ("--audit-file", "{tmp}/o.log", "list"), "chown 0 {tmp}/o.log",
             setup=lambda e: (_write("o.log", "")(e), os.chown(e.tmp / "o.log", 4242, -1))
             and None, covers="; fix with: chown ")] if os.geteuid() == 0 else []),
    Case("audit-writable", ("--audit-file", "{tmp}/w.log", "list"), "chmod 600 {tmp}/w.log",
         setup=_write("w.log", "", 0o666), covers=" is writable by others; fix with: chmod 600 "),
    Case("audit-verify-missing", ("audit", "verify", "{tmp}/none.log"), "check the path"),
    Case("audit-verify-directory", ("audit", "verify", "{tmp}"),
         "is a directory. (see `sessionward audit verify --help`)"),
    # --- the daemon
    Case("daemon-no-token", ("--daemon", "sessionward://{tmp}/d.sock", "list"),
         "pass --token-file PATH", covers="daemon mode needs the admin token: pass --token-file"),
    Case("daemon-token-file-0644", ("--daemon", "sessionward://{tmp}/d.sock", "--token-file",
                                    "{tmp}/token", "list"), "chmod 600 {tmp}/token",
         setup=_write("token", TOKEN, 0o644)),
    Case("daemon-down", ("--daemon", "sessionward://{tmp}/d.sock", "list"), "sessionward serve",
         env={"SESSIONWARD_ADMIN_TOKEN": TOKEN},
         covers="); start it with `sessionward serve`, or fix --daemon / SESSIONWARD_DA"),
    Case("daemon-bad-scheme", ("--daemon", "http://example.com", "list"), "sessionward://",
         env={"SESSIONWARD_ADMIN_TOKEN": TOKEN},
         covers="daemon URLs are sessionward:///path/sessionward.sock or sessionward+tcp://"),
    Case("daemon-relative-socket", ("--daemon", "sessionward://relative.sock", "list"),
         "sessionward:///absolute/path", env={"SESSIONWARD_ADMIN_TOKEN": TOKEN},
         covers="daemon URL must look like sessionward:///absolute/path/sessionward.soc"),
    Case("daemon-empty-host", ("--daemon", "sessionward+tcp://:7000", "list"),
         "sessionward+tcp://127.0.0.1:", env={"SESSIONWARD_ADMIN_TOKEN": TOKEN},
         covers="an empty host"),
    Case("daemon-not-loopback", ("--daemon", "sessionward+tcp://192.0.2.1:7000", "list"),
         "sessionward+tcp://127.0.0.1:", env={"SESSIONWARD_ADMIN_TOKEN": TOKEN},
         covers="sessionward+tcp:// must name a loopback address and port, e.g. session"),
    Case("daemon-local-only", ("--daemon", "sessionward://{tmp}/d.sock", "retire-key", "x"),
         "run it without --daemon", env={"SESSIONWARD_ADMIN_TOKEN": TOKEN},
         covers="` works on the key file and store directly; run it without --daemon/SE"),
    # --- demo
    Case("demo-dir-open", ("demo", "--data-dir", "{tmp}/open-demo", "--port", PORT),
         "chmod 700 {tmp}/open-demo", setup=_mkdir("open-demo", 0o755)),
    Case("demo-dir-symlink", ("demo", "--data-dir", "{tmp}/ddl", "--port", PORT),
         "--data-dir {tmp}/real-demo",
         setup=lambda e: (_mkdir("real-demo", 0o700)(e), _symlink("ddl", "real-demo")(e))
         and None),
    Case("demo-dir-file", ("demo", "--data-dir", "{tmp}/f", "--port", PORT),
         "is a file. (see `sessionward demo --help`)", setup=_write("f", "x")),
]


def _fill(text: str, e: Env, extra: dict[str, str]) -> str:
    return text.format(tmp=e.tmp, key=e.key, **extra)


def _placeholders(e: Env, case: Case) -> dict[str, str]:
    """``{active}`` (the active key id) and ``{old}`` (a retired-to-be key id)."""
    values = {"active": "", "old": ""}
    if any("{active}" in a for a in case.args):
        doc = json.loads(e.key.read_text()) if e.key.read_text().startswith("{") else None
        if doc is not None:
            values["active"] = doc["active"]
        else:
            from sessionward.core.keys import load_keyring

            values["active"] = load_keyring(str(e.key), "default").active.kid
    old = e.tmp / "old-kid"
    values["old"] = old.read_text() if old.exists() else ""
    return values


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error_is_one_line_with_its_fix(cli: Cli, tmp_path: Path, case: Case) -> None:
    """The failing invocation prints exactly one error line, no traceback, with its fix."""
    e = Env(cli, tmp_path)
    if case.setup is not None:
        case.setup(e)
    extra = _placeholders(e, case)
    args = [_fill(a, e, extra) for a in case.args]
    env = {k: _fill(v, e, extra) for k, v in case.env.items()}
    result = cli(*args, env=env, input=case.stdin)
    one_line_error(result, prompted=case.stdin is not None)
    line = result.err.strip().splitlines()[-1]
    assert _fill(case.fix, e, extra) in line, line
    if case.covers:
        assert case.covers in line, line
    assert "[path]" not in line and "[url]" not in line  # the operator sees what they typed


def test_redis_password_never_shown(cli: Cli) -> None:
    """The operator's view keeps the URL but masks its password."""
    result = cli("--store", f"redis://app:hunter2secret@127.0.0.1:{PORT}/0", "list")
    one_line_error(result)
    assert "hunter2secret" not in result.err
    assert f"127.0.0.1:{PORT}" in result.err


# ------------------------------------------------- a daemon that misbehaves


@pytest.fixture(name="fake_daemon")
def fake_daemon_fixture(tmp_path: Path) -> Iterator[Callable[[bytes], str]]:
    """A Unix socket that answers each request with the given bytes, then closes.

    The real daemon never sends these; a wrong program behind --daemon does.
    """
    servers: list[socket.socket] = []

    def start(reply: bytes) -> str:
        path = tmp_path / f"fake{len(servers)}.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        server.settimeout(30)
        servers.append(server)

        def serve() -> None:
            # Every connection (the client reconnects after a lost answer) gets the same.
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    try:
                        conn.sendall(reply)
                    except OSError:  # the client stopped reading (the too-large answer)
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return f"sessionward://{path}"

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(("reply", "covers"), [
    (b"not json\n", "the daemon sent a malformed frame"),
    (b"[1, 2]\n", "the daemon sent a malformed frame"),
    (b'{"id": 999, "ok": true, "data": {}}\n', "the daemon answered another request"),
    (b'{"id": 1, "ok": false}\n', "the daemon sent an error without details"),
    (b"", "the daemon closed the connection"),
    (b"x" * (MAX_RESPONSE + 2 * 65536), "the daemon's answer is too large"),
    (b'{"id": 1, "ok": false, "error": {"type": "auth_failed", "message": "bad token"}}\n',
     "bad token [auth_failed]"),
    (b'{"id": 1, "ok": false, "error": {"type": "invalid_argument", "reason": "value",'
     b' "message": "limit must be positive"}}\n', "limit must be positive; the daemon refused"),
])
def test_daemon_protocol_errors(cli: Cli, fake_daemon: Callable[[bytes], str], reply: bytes,
                                covers: str) -> None:
    """Whatever a wrong peer sends, the CLI prints one line that says where to look."""
    url = fake_daemon(reply)
    result = cli("--daemon", url, "stats", env={"SESSIONWARD_ADMIN_TOKEN": TOKEN})
    one_line_error(result)
    assert covers in result.err
    assert any(fix in result.err for fix in ("sessionward serve", "admin token", "--help"))


DAEMON_COVERS = {"the daemon sent a malformed frame", "the daemon answered another request",
                 "the daemon sent an error without details", "the daemon closed the connection",
                 "the daemon's answer is too large", "; the daemon refused an argument of "}


def test_missing_extra_names_the_install(tmp_path: Path) -> None:
    """`sessionward demo` without the demo extra names the pip install, in one line."""
    import subprocess

    code = ("import sys; sys.modules['uvicorn'] = None; from sessionward.cli import main; "
            "sys.exit(main(['demo', '--data-dir', sys.argv[1]]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("SESSIONWARD_")})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "pip install 'sessionward[demo]'" in lines[0]


def test_broken_lazy_command_names_the_fix(tmp_path: Path) -> None:
    """A lazily registered command whose module fails to import: one line, the fix."""
    import subprocess

    (tmp_path / "brokencmd.py").write_text("import sessionward_no_such_dependency\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import sessionward.cli as c; "
            "c._LAZY['demo'] = ('brokencmd', 'broken'); sys.exit(c.main(['demo']))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "the demo command is unavailable (" in lines[0]
    assert "run: pip install 'sessionward[demo]'" in lines[0]


# ------------------------------------------------------ the table is complete

NOT_REACHABLE = {
    " defines no click command `":
        "a programming error (a lazy module without a command), not an operator's input",
}
OTHER_TESTS = {
    " (install the matching extra)": "replaced; see test_broken_lazy_command_names_the_fix",
}


def _raised_messages() -> set[str]:
    """The longest literal fragment of every error raised in sessionward.cli."""
    found = set()
    for path in sorted(CLI_SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            parts = [sub.value for arg in node.exc.args for sub in ast.walk(arg)
                     if isinstance(sub, ast.Constant) and isinstance(sub.value, str)]
            if parts and len(longest := max(parts, key=len)) >= 12:
                found.add(longest)
    return found


def test_every_cli_raise_site_is_covered() -> None:
    """Each error message raised in sessionward.cli is exercised by a case above."""
    covered = {c.covers for c in CASES} | DAEMON_COVERS | set(NOT_REACHABLE)
    covered |= {" command is unavailable (", "); run: pip install 'sessionward[demo]'"}
    if os.geteuid() != 0:  # chown to another uid needs root (CI runs as root)
        covered.add("; fix with: chown ")
    missing = sorted(m for m in _raised_messages()
                     if not any(m in c or c in m for c in covered if c))
    assert missing == []
