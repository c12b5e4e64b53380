"""The daemon as a real subprocess: every hardening, each with a test that fails without it."""

from __future__ import annotations

import os
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.core.errors import ConfigurationError
from sessionward.daemon import fsutil
from sessionward.protocol.schema import ADMIN_COMMANDS, APP_COMMANDS

from svc_daemon import DaemonProcess, RawClient

# Pickle streams written out as bytes (the repository never imports pickle):
# pickle.dumps({"command": "ping"}).
PICKLE_PING = (b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x07command\x94"
               b"\x8c\x04ping\x94s.")

pytestmark = pytest.mark.daemon

HOSTILE_NAMES = ["", "__init__", "__class__", "__dict__", "__call__", "PING", "ping ", "h_ping",
                 "reload_keys", "revoke_all", "rotate-keys", "nope"]


@pytest.fixture(name="daemon", scope="module")
def daemon_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon shared by the tests that do not change its state for others."""
    with DaemonProcess(tmp_path_factory.mktemp("srv")) as d:
        yield d


def ping_ok(daemon: DaemonProcess) -> bool:
    client = daemon.client()
    try:
        return client.call("ping")["ok"] is True
    finally:
        client.close()


def error_type(reply: dict[str, object] | None) -> object:
    assert reply is not None
    assert reply["ok"] is False, reply
    return reply["error"]["type"]  # type: ignore[index]


# ------------------------------------------------------------- (1) socket


class TestSocket:
    def test_mode_0600_and_bootstrap(self, daemon: DaemonProcess) -> None:
        """Default: socket 0600 in a 0700 dir; key and tokens 0600; locations printed."""
        assert stat.S_ISSOCK(os.lstat(daemon.socket).st_mode)
        assert stat.S_IMODE(os.lstat(daemon.socket).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(daemon.data_dir).st_mode) == 0o700
        for path in (daemon.data_dir / "key", daemon.data_dir / "tokens" / "app.token",
                     daemon.data_dir / "tokens" / "admin.token"):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        printed = "\n".join(daemon.output)
        assert str(daemon.socket) in printed and "app.token" in printed
        assert daemon.app_token not in printed

    def test_socket_mode_flag(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path, "--socket-mode=0660") as d:
            assert stat.S_IMODE(os.lstat(d.socket).st_mode) == 0o660

    def test_world_socket_mode_refused(self, tmp_path: Path) -> None:
        code, _, err = DaemonProcess(tmp_path, "--socket-mode", "0666").run_to_exit()
        assert code != 0 and "0600 or 0660" in err

    def test_regular_file_at_socket_path_refused(self, tmp_path: Path) -> None:
        """An existing non-socket path is never replaced."""
        d = DaemonProcess(tmp_path)
        fsutil.ensure_private_dir(d.data_dir)
        d.socket.write_text("precious")
        code, _, err = d.run_to_exit()
        assert code != 0 and "not a socket" in err
        assert d.socket.read_text() == "precious"

    def test_symlink_at_socket_path_refused(self, tmp_path: Path) -> None:
        """A symlink at the socket path is refused and never followed."""
        d = DaemonProcess(tmp_path)
        fsutil.ensure_private_dir(d.data_dir)
        target = tmp_path / "target"
        d.socket.symlink_to(target)
        code, _, err = d.run_to_exit()
        assert code != 0 and "symlink" in err
        assert not target.exists() and d.socket.is_symlink()

    def test_insecure_socket_dir_refused(self, tmp_path: Path) -> None:
        """A socket directory writable by others is refused."""
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o777)
        code, _, err = DaemonProcess(tmp_path, "--socket", str(shared / "s.sock")).run_to_exit()
        assert code != 0 and "writable by group or others" in err
        assert not (shared / "s.sock").exists()

    def test_insecure_data_dir_refused(self, tmp_path: Path) -> None:
        d = DaemonProcess(tmp_path)
        d.data_dir.mkdir(mode=0o755)
        d.data_dir.chmod(0o755)
        code, _, err = d.run_to_exit()
        assert code != 0 and "chmod 700" in err

    def test_umask_at_bind(self, tmp_path: Path) -> None:
        """The socket never exists with wider permissions: bound under umask 0077."""
        old = os.umask(0)
        try:
            sock = fsutil.bind_unix_socket(tmp_path / "u.sock", 0o600)
        finally:
            os.umask(old)
        sock.close()
        assert stat.S_IMODE(os.lstat(tmp_path / "u.sock").st_mode) == 0o600
        assert os.umask(old) == old


# ------------------------------------------------------------ (2) allowlists


class TestAllowlists:
    @pytest.mark.parametrize("name", sorted(ADMIN_COMMANDS - APP_COMMANDS) + HOSTILE_NAMES)
    def test_app_forbidden(self, daemon: DaemonProcess, name: str) -> None:
        client = daemon.client()
        assert error_type(client.call(name)) == "forbidden_command"
        client.close()

    @pytest.mark.parametrize("name", sorted(APP_COMMANDS - ADMIN_COMMANDS) + HOSTILE_NAMES)
    def test_admin_forbidden(self, daemon: DaemonProcess, name: str) -> None:
        client = daemon.client(daemon.admin_token)
        assert error_type(client.call(name)) == "forbidden_command"
        client.close()

    def test_describe_lists_role_commands(self, daemon: DaemonProcess) -> None:
        app = daemon.client().call("describe")["data"]
        admin = daemon.client(daemon.admin_token).call("describe")["data"]
        assert set(app["commands"]) == APP_COMMANDS and set(admin["commands"]) == ADMIN_COMMANDS
        assert app["limits"]["max_frame"] == 65536 and app["limits"]["max_connections"] == 50


# ------------------------------------------------------------- (3) list/show


class TestAdminOutput:
    def test_list_show_have_no_secrets_and_handle_revokes(self, daemon: DaemonProcess) -> None:
        """list/show carry metadata and handles only; a handle works for revoke."""
        app = daemon.client()
        created = app.call("create", data={"secret": "s3cr3t"})["data"]
        cookie = created["cookie"]
        login = app.call("login", cookie=cookie, version=created["version"],
                         base=created["data"], data=created["data"], user="lister")["data"]
        cookie = login["cookie"]
        admin = daemon.client(daemon.admin_token)
        raw_list = admin.call("list", user="lister")
        text = repr(raw_list)
        session_id = cookie.split(".")[0]
        for secret in (cookie, session_id, daemon.app_token, daemon.admin_token, "s3cr3t"):
            assert secret not in text
        handles = [s["handle"] for s in raw_list["data"]["sessions"]]
        assert handles
        shown = admin.call("show", handle=handles[0])
        assert shown["ok"] and cookie not in repr(shown) and session_id not in repr(shown)
        assert admin.call("revoke", handle=handles[0])["ok"]
        assert app.call("load", cookie=cookie)["data"]["session"] is None

    def test_handle_is_not_a_cookie(self, daemon: DaemonProcess) -> None:
        app = daemon.client()
        created = app.call("create", data={"a": 1})["data"]
        assert app.call("load", cookie=created["handle"])["data"]["session"] is None


# ------------------------------------------------------------ (4) size/depth


class TestLimits:
    def test_oversized_frame_closes_connection(self, daemon: DaemonProcess) -> None:
        """65 537 bytes without a newline: payload_too_large and the connection is closed."""
        client = daemon.client()
        client.send_raw(b"x" * 65_537)
        assert error_type(client.recv()) == "payload_too_large"
        assert client.closed()
        assert ping_ok(daemon)

    def test_max_frame_accepted(self, daemon: DaemonProcess) -> None:
        client = daemon.client()
        pad = 65_536 - len(f'{{"command":"ping","token":"{client.token}","id":""}}')
        frame = f'{{"command":"ping","token":"{client.token}","id":"{"x" * 0}"}}'
        frame = frame[:-1] + " " * pad + "}"
        assert len(frame.encode()) == 65_536
        client.send_raw(frame.encode() + b"\n")
        assert client.recv()["ok"] is True  # type: ignore[index]

    def test_deep_nesting_invalid_argument_connection_stays(self, daemon: DaemonProcess) -> None:
        client = daemon.client()
        deep = '{"a":' * 33 + "1" + "}" * 33
        client.send_raw(deep.encode() + b"\n")
        assert error_type(client.recv()) == "invalid_argument"
        assert client.call("ping")["ok"] is True

    def test_pickle_stream_rejected(self, daemon: DaemonProcess) -> None:
        """A pickle opcode stream is invalid_json; nothing is unpickled; daemon serves on."""
        client = daemon.client()
        client.send_raw(PICKLE_PING.replace(b"\n", b" ") + b"\n")
        assert error_type(client.recv()) == "invalid_json"
        assert client.call("ping")["ok"] is True

    def test_garbage_then_many_frames_in_one_packet(self, daemon: DaemonProcess) -> None:
        client = daemon.client()
        good = f'{{"command":"ping","token":"{client.token}","id":%d}}'
        client.send_raw(b"\xff\xfe\n" + b"".join((good % i).encode() + b"\n" for i in range(5)))
        assert error_type(client.recv()) == "invalid_json"
        assert [client.recv()["id"] for _ in range(5)] == list(range(5))  # type: ignore[index]

    def test_too_many_connections(self, tmp_path: Path) -> None:
        """The 51st concurrent connection gets too_many_connections; others keep working."""
        with DaemonProcess(tmp_path) as daemon:
            self.check_connection_cap(daemon)

    def check_connection_cap(self, daemon: DaemonProcess) -> None:
        clients: list[RawClient] = []
        try:
            for _ in range(50):  # each authenticates at once, as a real client does
                clients.append(daemon.client())
                assert clients[-1].call("ping")["ok"]
            extra = daemon.client()
            assert error_type(extra.recv()) == "too_many_connections"
            assert clients[0].call("ping")["ok"]
        finally:
            for c in clients:
                c.close()
        for _ in range(100):  # the slots free up once the daemon sees the closes
            if ping_ok(daemon):
                break
        assert ping_ok(daemon)

    def test_idle_timeout(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path, "--idle-timeout", "0.2") as d:
            client = d.client()
            assert error_type(client.recv()) == "connection_timeout"
            assert client.closed()
            assert ping_ok(d)


# ---------------------------------------------------------- (6) sanitiser / (9) schema


class TestSchemaAndSanitiser:
    def test_unknown_field_echo_is_sanitised(self, daemon: DaemonProcess) -> None:
        reply = daemon.client().call("ping", **{"/etc/shadow": 1})
        assert error_type(reply) == "invalid_argument"
        assert "/etc/shadow" not in reply["error"]["message"]

    @pytest.mark.parametrize("fields", [
        {"cookie": 1}, {"cookie": "x", "mode": "exclusive"}, {"bogus": True},
        {"cookie": "x", "client": {"ip": "1.1.1.1", "x": 1}}, {"id": [1]},
    ])
    def test_strict_schema(self, daemon: DaemonProcess, fields: dict[str, object]) -> None:
        assert error_type(daemon.client().call("load", **fields)) == "invalid_argument"

    def test_id_echoed(self, daemon: DaemonProcess) -> None:
        client = daemon.client()
        assert client.call("ping", id="abc")["id"] == "abc"
        assert client.call("bogus", id=7)["id"] == 7


# ------------------------------------------------------------------- auth


class TestAuth:
    def test_token_required_even_for_ping(self, daemon: DaemonProcess) -> None:
        """No token: auth_failed, and the connection is closed (nothing more is read)."""
        client = RawClient(daemon.socket)
        client.send_raw(b'{"command":"ping"}\n{"command":"ping"}\n')
        assert error_type(client.recv()) == "auth_failed"
        assert client.closed()

    def test_failures_cost_the_connection_not_the_peer(self, tmp_path: Path) -> None:
        """Wrong tokens are answered auth_failed and closed, and audited; the same
        peer's correct token still works at once (1.0 locked it out: issue 15)."""
        audit = tmp_path / "audit.jsonl"
        with DaemonProcess(tmp_path, "--audit-file", str(audit)) as d:
            for _ in range(6):
                bad = d.client("wrong-token")
                assert error_type(bad.call("ping")) == "auth_failed"
                assert bad.closed()
                bad.close()
            assert ping_ok(d)
            lines = audit.read_text().splitlines()
            assert sum('"auth_failed"' in line for line in lines) == 6
            assert "wrong-token" not in audit.read_text()
            assert stat.S_IMODE(audit.stat().st_mode) == 0o600

    def test_env_and_flag_tokens(self, tmp_path: Path) -> None:
        """Tokens from the environment and --token work; --token warns about `ps`."""
        env_token = "e" * 40
        d = DaemonProcess(tmp_path, "--token", "admin=" + "f" * 40,
                          env={"SESSIONWARD_APP_TOKEN": env_token}).start()
        assert d.client(env_token).call("ping")["ok"]
        assert d.client("f" * 40).call("stats")["ok"]
        assert not (d.data_dir / "tokens" / "app.token").exists()
        _code, err = d.stop()
        assert "process list" in err

    def test_flag_token_warns(self, tmp_path: Path) -> None:
        d = DaemonProcess(tmp_path, "--token", "app=short")
        code, _, err = d.run_to_exit()
        assert "process list" in err and code != 0

    def test_allow_uid_refuses_other_uids(self, tmp_path: Path) -> None:
        """SO_PEERCRED: a peer whose uid is not allowed is refused before any command."""
        other = os.geteuid() + 12345
        with DaemonProcess(tmp_path, "--allow-uid", str(other)) as d:
            client = d.client()
            assert error_type(client.recv()) == "auth_failed"
            assert client.closed()

    def test_allow_uid_accepts_own_uid(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path, f"--allow-uid={os.geteuid()}",
                           f"--allow-gid={os.getegid()}") as d:
            assert ping_ok(d)

    def test_allow_gid_refuses(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path, "--allow-gid", str(os.getegid() + 4242)) as d:
            assert error_type(d.client().recv()) == "auth_failed"


# --------------------------------------------------------------- (5) TCP


class TestTcp:
    def test_loopback_tcp(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path, "--tcp", "127.0.0.1:0") as d:
            line = next(x for x in d.output if x.startswith("tcp"))
            host, port = line.split()[-1].rsplit(":", 1)
            client = RawClient((host, int(port)), d.app_token)
            assert client.call("ping")["ok"]

    @pytest.mark.parametrize("addr", ["0.0.0.0:0", "[::]:0", "[::ffff:10.0.0.1]:0",
                                      "example.com:0", "10.1.2.3:0"])
    def test_non_loopback_refused(self, tmp_path: Path, addr: str) -> None:
        code, _, err = DaemonProcess(tmp_path, "--tcp", addr).run_to_exit()
        assert code != 0 and "loopback" in err


# ------------------------------------------------- (7) key and token files


class TestSecretFiles:
    def prepared(self, tmp_path: Path) -> DaemonProcess:
        d = DaemonProcess(tmp_path)
        with d:
            pass
        return d

    def test_token_file_outside_allowed_dirs(self, tmp_path: Path) -> None:
        outside = tmp_path / "elsewhere"
        outside.mkdir(mode=0o700)
        tok = outside / "app.token"
        fsutil.write_token_file(tok)
        code, _, err = DaemonProcess(tmp_path, "--app-token-file", str(tok)).run_to_exit()
        assert code != 0 and "allowed-key-dirs" in err

    def test_token_file_in_allowed_dir(self, tmp_path: Path) -> None:
        extra = tmp_path / "keys"
        extra.mkdir(mode=0o700)
        tok = extra / "app.token"
        token = fsutil.write_token_file(tok)
        data = tmp_path / "d"
        with DaemonProcess(tmp_path, "--app-token-file", str(tok),
                           "--allowed-key-dirs", f"{extra}{os.pathsep}{data}") as d:
            assert d.client(token).call("ping")["ok"]

    def test_symlinked_token_refused(self, tmp_path: Path) -> None:
        d = self.prepared(tmp_path)
        app = d.data_dir / "tokens" / "app.token"
        real = d.data_dir / "tokens" / "real.token"
        app.rename(real)
        app.symlink_to(real)
        code, _, err = d.run_to_exit()
        assert code != 0 and "symlink" in err

    def test_readable_token_refused(self, tmp_path: Path) -> None:
        d = self.prepared(tmp_path)
        (d.data_dir / "tokens" / "admin.token").chmod(0o644)
        code, _, err = d.run_to_exit()
        assert code != 0 and "chmod 600" in err

    def test_symlinked_key_dir_escape_refused(self, tmp_path: Path) -> None:
        """A path that only looks inside the allowed dir (via a symlinked dir) is refused."""
        d = self.prepared(tmp_path)
        outside = tmp_path / "out"
        outside.mkdir(mode=0o700)
        (outside / "key").write_bytes((d.data_dir / "key").read_bytes())
        (outside / "key").chmod(0o600)
        (d.data_dir / "link").symlink_to(outside)
        code, _, err = DaemonProcess(tmp_path, "--key-file",
                                     str(d.data_dir / "link" / "key")).run_to_exit()
        assert code != 0 and "allowed-key-dirs" in err


# ------------------------------------------------------------- (8) PID file


class TestPidFile:
    def test_second_daemon_refused(self, daemon: DaemonProcess, tmp_path: Path) -> None:
        other = DaemonProcess(daemon.data_dir.parent, name=daemon.data_dir.name)
        code, _, err = other.run_to_exit()
        assert code != 0 and "remove it" in err
        assert ping_ok(daemon)

    def test_stale_pid_of_dead_process_taken_over(self, tmp_path: Path) -> None:
        d = DaemonProcess(tmp_path)
        fsutil.ensure_private_dir(d.data_dir)
        dead = os.fork()
        if dead == 0:
            os._exit(0)
        os.waitpid(dead, 0)
        (d.data_dir / "sessionward.pid").write_text(f"{dead}\n")
        with d:
            assert (d.data_dir / "sessionward.pid").read_text().strip() == str(d.proc.pid)  # type: ignore[union-attr]

    @pytest.mark.parametrize("content", ["1\n", "", "garbage"])
    def test_unprovable_pid_refused(self, tmp_path: Path, content: str) -> None:
        """A PID that is alive (init) or unreadable cannot be proven dead: refuse."""
        d = DaemonProcess(tmp_path)
        fsutil.ensure_private_dir(d.data_dir)
        (d.data_dir / "sessionward.pid").write_text(content)
        code, _, err = d.run_to_exit()
        assert code != 0 and "cannot be proven dead" in err and "rm " in err

    def test_eperm_counts_as_alive(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """kill(pid, 0) failing with EPERM means a live process we may not signal."""
        def eperm(pid: int, sig: int) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "kill", eperm)
        assert fsutil._proven_dead(4242) is False

    def test_pid_file_locked_and_atomic(self, daemon: DaemonProcess) -> None:
        import fcntl

        pid_path = daemon.data_dir / "sessionward.pid"
        assert pid_path.read_text().strip() == str(daemon.proc.pid)  # type: ignore[union-attr]
        fd = os.open(pid_path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)

    def test_symlinked_pid_file_refused(self, tmp_path: Path) -> None:
        d = DaemonProcess(tmp_path)
        fsutil.ensure_private_dir(d.data_dir)
        (d.data_dir / "sessionward.pid").symlink_to(tmp_path / "victim")
        code, _, _ = d.run_to_exit()
        assert code != 0 and not (tmp_path / "victim").exists()


# ------------------------------------------------------------ signals, CLI


class TestLifecycle:
    def test_sigterm_drains_and_cleans_up(self, tmp_path: Path) -> None:
        """SIGTERM: an in-flight request still gets its answer; socket and PID file go."""
        conf = tmp_path / "sw.toml"
        conf.write_text("[sessionward]\nlock_wait_seconds = 20\n")
        d = DaemonProcess(tmp_path, "--config", str(conf)).start()
        holder = d.client()
        cookie = holder.call("create", data={"n": 1})["data"]["cookie"]
        assert holder.call("lock", cookie=cookie)["data"]["session"] is not None
        waiter = d.client()
        waiter.send_raw(f'{{"command":"lock","token":"{d.app_token}","cookie":"{cookie}","id":1}}\n'
                        .encode())
        time.sleep(0.5)  # let the daemon start the (blocking) lock wait; not an assertion
        d.send(signal.SIGTERM)
        reply = waiter.recv()  # the holder's idle connection is closed, its lease released
        assert reply is not None and reply["id"] == 1 and reply["ok"] is True
        code, _ = d.stop()
        assert code == 0
        assert not d.socket.exists() and not (d.data_dir / "sessionward.pid").exists()

    def test_sighup_reloads_tokens(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path) as d:
            tok = d.data_dir / "tokens" / "app.token"
            tok.unlink()
            new = fsutil.write_token_file(tok)
            d.send(signal.SIGHUP)
            for _ in range(200):
                reply = d.client(new).call("ping")
                if reply["ok"]:
                    break
                time.sleep(0.05)
            assert d.client(new).call("ping")["ok"]

    def test_reload_keys_command(self, daemon: DaemonProcess) -> None:
        reply = daemon.client(daemon.admin_token).call("reload-keys")
        assert reply["ok"] and len(reply["data"]["active_key"]) == 8

    def test_unknown_flag_is_an_error(self, tmp_path: Path) -> None:
        code, _, err = DaemonProcess(tmp_path, "--no-such-flag").run_to_exit()
        assert code == 2 and "no-such-flag" in err

    def test_test_clock_needs_env(self, tmp_path: Path) -> None:
        clock = tmp_path / "clock"
        clock.write_text("1800000000.0")
        code, _, err = DaemonProcess(tmp_path, "--unsafe-test-clock-file", str(clock)
                                     ).run_to_exit()
        assert code != 0 and "SESSIONWARD_UNSAFE_TEST_CLOCK" in err

    def test_abuse_does_not_stop_service(self, daemon: DaemonProcess) -> None:
        """After garbage, oversized and truncated input on many connections, others are served."""
        for payload in (b"\x00" * 100, b"{" * 5000 + b"\n", b'{"command":', b"x" * 70_000):
            c = daemon.client()
            c.send_raw(payload)
            c.close()
        assert ping_ok(daemon)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(daemon.socket))
        assert ping_ok(daemon)


def test_config_error_messages_are_actionable() -> None:
    with pytest.raises(ConfigurationError, match="chmod 700"):
        fsutil.check_socket_parent(Path("/tmp"))
