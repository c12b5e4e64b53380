"""Real Redis services for the tests: a private ``redis-server`` and a 3-master Cluster.

Everything binds to loopback (or a Unix socket in a private temp dir), runs
with persistence off, and is torn down by the fixtures.  Tests never FLUSH
anything: :func:`make_redis_store` gives every store a random prefix instead.

Import the fixtures where they are used::

    from svc_redis import redis_server, redis_cluster  # noqa: F401
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import ipaddress
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.cluster import RedisCluster

from sessionward.stores.redis import RedisStore

STARTUP_TIMEOUT = 20.0
"""Upper bound (seconds) for a server or the cluster to come up."""


def require_binaries(*names: str) -> None:
    """Fail (never skip) when a Redis binary is missing: in CI that is a broken image."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found on PATH: install the Debian package "
            "'redis-server' (it ships redis-server and redis-cli) to run the Redis tests",
            pytrace=False,
        )


def free_port() -> int:
    """A currently free loopback TCP port (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 <= 65535 and _port_is_free(port + 10000):
            return port
        candidate = 20000 + secrets.randbelow(30000)
        if _port_is_free(candidate) and _port_is_free(candidate + 10000):
            return candidate
    raise RuntimeError("no free port pair (port, port + 10000) on 127.0.0.1")


def _wait_until(check: Callable[[], bool], what: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Poll ``check`` every 50 ms until it returns True; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f}s")


def _stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def write_tls_files(directory: Path) -> dict[str, Path]:
    """A throw-away CA, a server cert for 127.0.0.1/localhost and a client cert (PEM files)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sessionward test CA")])

    def issue(
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
        san: list[x509.GeneralName],
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )  # fmt: skip
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    files: dict[str, Path] = {}

    def save(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> None:
        files[name] = directory / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            files[f"{name}_key"] = directory / f"{name}.key"
            files[f"{name}_key"].write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            files[f"{name}_key"].chmod(0o600)

    save("ca", issue(ca_name, ca_key, ca=True, san=[]), None)
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sessionward {name}")])
        san: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        save(name, issue(subject, key, ca=False, san=san), key)
    return files


class RedisServer:
    """A private ``redis-server`` on a free loopback port and a Unix socket.

    Args:
        password: ``requirepass`` for the default user, if any.
        acl_user: ``(username, password)`` of an extra ACL user with full rights.
        extra_args: more ``--option value`` arguments for ``redis-server``.
        tls: also listen with TLS on ``tls_port`` (client certificates required).
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        acl_user: tuple[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        tls: bool = False,
    ) -> None:
        require_binaries("redis-server")
        self.password = password
        self.acl_user = acl_user
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="sw-redis-")
        self.dir = Path(self._tmp.name)
        self.socket_path = self.dir / "redis.sock"
        self._extra_args = extra_args
        self.tls_files = write_tls_files(self.dir) if tls else {}
        self.tls_port = free_port() if tls else 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (no credentials)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """``unix:///…/redis.sock?db=0``."""
        return f"unix://{self.socket_path}?db=0"

    def _argv(self) -> list[str]:
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
            "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            "--protected-mode", "yes", "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password is not None:
            argv += ["--requirepass", self.password]
        if self.acl_user is not None:
            name, secret = self.acl_user
            argv += ["--user", name, "on", f">{secret}", "~*", "&*", "+@all"]
        if self.tls_files:
            argv += [
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(self.tls_files["server"]),
                "--tls-key-file", str(self.tls_files["server_key"]),
                "--tls-ca-cert-file", str(self.tls_files["ca"]),
                "--tls-auth-clients", "yes",
            ]  # fmt: skip
        return argv + list(self._extra_args)

    def client(self) -> redis.Redis[bytes]:
        """A plain redis-py client for assertions (authenticated when needed)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5
        )

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {self._proc.returncode}")
        with contextlib.closing(self.client()) as probe:
            try:
                return bool(probe.ping())
            except redis.RedisError:
                return False

    def start(self) -> None:
        """Start (or restart, on the same port and socket) the server and wait for it."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self._proc = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_until(self._ready, f"redis-server on port {self.port} answering PING")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); the port and socket path stay reserved."""
        _stop_process(self._proc)

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown save); :meth:`start` restarts it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its temp directory."""
        self.resume()  # a frozen process would ignore SIGTERM until continued
        self.stop()
        self._tmp.cleanup()


class RedisClusterProcess:
    """Redis Cluster masters on free loopback ports (3, no replicas by default).

    Args:
        masters: primaries (the slots are split evenly).
        replicas: replicas per primary (``--cluster-replicas``).
        node_timeout_ms: ``cluster-node-timeout`` (a failover starts after it).
    """

    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 5000) -> None:
        require_binaries("redis-server", "redis-cli")
        self._tmp = tempfile.TemporaryDirectory(prefix="sw-rcluster-")
        self.dir = Path(self._tmp.name)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports = [free_cluster_port() for _ in range(masters * (1 + replicas))]
        self._procs: list[subprocess.Popen[bytes]] = []
        try:
            for port in self.ports:
                self._procs.append(self._spawn(port))
            for port, proc in zip(self.ports, self._procs, strict=True):
                ping = functools.partial(self._node_ping, port, proc)
                _wait_until(ping, f"cluster node {port} up")
            self._create()
            _wait_until(self._state_ok, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:PORT`` naming the first master."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        node_dir = Path(self._tmp.name) / str(port)
        node_dir.mkdir(exist_ok=True)  # a restarted node keeps its nodes.conf
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms), "--save", "",
            "--appendonly", "no",
            "--dir", str(node_dir), "--loglevel", "warning",
            "--logfile", str(node_dir / "redis.log"),
        ]  # fmt: skip
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def _node_ping(port: int, proc: subprocess.Popen[bytes]) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"cluster node on port {port} exited with code {proc.returncode}")
        with contextlib.closing(redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)) as c:
            try:
                return bool(c.ping())
            except redis.RedisError:
                return False

    def _create(self) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas",
             str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            timeout=STARTUP_TIMEOUT,
        )  # fmt: skip

    def _state_ok(self) -> bool:
        for port in self.ports:
            with contextlib.closing(redis.Redis(host="127.0.0.1", port=port)) as c:
                try:
                    info = c.execute_command("CLUSTER", "INFO")
                except redis.RedisError:
                    return False
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
                if self.replicas and not self._replicated(c):
                    return False
        return True

    def _replicated(self, node: redis.Redis[bytes]) -> bool:
        """A primary has its replicas connected and in sync; a replica its link up."""
        info = node.info("replication")
        if info.get("role") == "master":
            online = [k for k, v in info.items()
                      if k.startswith("slave") and isinstance(v, dict)
                      and v.get("state") == "online"]
            return len(online) >= self.replicas
        return info.get("master_link_status") == "up"

    def client(self) -> RedisCluster[bytes]:
        """A plain redis-py cluster client for assertions."""
        return RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=5)

    def stop(self) -> None:
        """Stop every node and remove the data directory."""
        for proc in self._procs:
            _stop_process(proc)
        self._tmp.cleanup()


def make_redis_store(url: str, clock: Callable[[], float]) -> RedisStore:
    """A store with a fresh random prefix, so tests never see each other's keys."""
    return RedisStore.from_url(url, clock=clock, prefix=f"t{secrets.token_hex(6)}")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole test session (never stopped by tests)."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterProcess]:
    """A private 3-master Redis Cluster for the whole test session."""
    cluster = RedisClusterProcess()
    try:
        yield cluster
    finally:
        cluster.stop()
