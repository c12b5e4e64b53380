"""Real nginx + php-fpm for the PHP tests and benchmark, on a free loopback port.

``PhpStack`` writes a php-fpm pool and an nginx config into a temporary
directory, starts both in the foreground as child processes (never the
system services: Debian's packages ship them stopped under a policy-rc.d,
and these use their own pid files, sockets and logs), and stops them on
exit.  The pool runs ``pm = static`` with ``workers`` children, so tests
can count on real parallelism and the benchmark gets "4 FPM workers".

A missing binary is a failure, never a skip (``require_php``): in CI that
means a broken image, and ``make test`` installs the Debian packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT_DIR = ROOT / "clients" / "php"
TEST_APP = ROOT / "tests" / "php" / "app"
START_SECONDS = 30.0


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                       else None)
        if found:
            return found
    return None


def php_fpm_binary() -> str | None:
    """Debian's php-fpm (``/usr/sbin/php-fpm8.2`` on bookworm), or None."""
    found = _find("php-fpm")
    if found:
        return found
    sbin = sorted(Path("/usr/sbin").glob("php-fpm*"))
    return str(sbin[-1]) if sbin else None


def require_php(*, fpm: bool = False) -> None:
    """Fail (never skip) when php, php-fpm or nginx is missing."""
    missing = [] if shutil.which("php") else ["php-cli"]
    if fpm:
        missing += [] if php_fpm_binary() else ["php-fpm"]
        missing += [] if _find("nginx") else ["nginx"]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install the Debian packages (make "
                    "system-deps does) to run the PHP tests", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PhpStack:
    """nginx (one worker) in front of a php-fpm pool serving one PHP app.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        env: environment variables the PHP app sees (``getenv``).
    """

    def __init__(self, tmp: Path, *, app_dir: Path = TEST_APP, env: dict[str, str] | None = None,
                 workers: int = 4, ini: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.app_dir = app_dir
        self.env = {"SW_CLIENT_DIR": str(CLIENT_DIR), **(env or {})}
        self.workers = workers
        self.ini = ini or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._procs: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------- configs

    def _fpm_conf(self) -> Path:
        lines = [
            "[global]", f"pid = {self.tmp}/fpm.pid", f"error_log = {self.tmp}/fpm.log",
            "daemonize = no", "log_level = warning", "",
            "[app]", f"listen = {self.tmp}/fpm.sock", "listen.mode = 0600",
            "pm = static", f"pm.max_children = {self.workers}", "catch_workers_output = yes",
            "clear_env = yes", "request_terminate_timeout = 60",
            "php_admin_value[error_log] = " + f"{self.tmp}/php-errors.log",
            "php_admin_flag[log_errors] = on", "php_admin_flag[display_errors] = off",
        ]
        if os.geteuid() == 0:
            lines += ["user = root", "group = root"]
        lines += [f"env[{k}] = {v}" for k, v in self.env.items()]
        lines += [f"php_value[{k}] = {v}" for k, v in self.ini.items()]
        path = self.tmp / "fpm.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _nginx_conf(self) -> Path:
        t = self.tmp
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}worker_processes 1;
daemon off;
pid {t}/nginx.pid;
error_log {t}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {t}/nginx-body;
    fastcgi_temp_path {t}/nginx-fastcgi;
    proxy_temp_path {t}/nginx-proxy;
    uwsgi_temp_path {t}/nginx-uwsgi;
    scgi_temp_path {t}/nginx-scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.app_dir};
        location / {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {self.app_dir}/index.php;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass unix:{t}/fpm.sock;
        }}
    }}
}}
"""
        path = t / "nginx.conf"
        path.write_text(conf)
        return path

    # ------------------------------------------------------------ lifecycle

    def start(self) -> PhpStack:
        """Start php-fpm, then nginx; wait until both answer.

        Raises:
            RuntimeError: either exited or did not come up (logs in the message).
        """
        require_php(fpm=True)
        fpm = php_fpm_binary()
        nginx = _find("nginx")
        assert fpm is not None and nginx is not None
        args = [fpm, "--nodaemonize", "--fpm-config", str(self._fpm_conf())]
        if os.geteuid() == 0:
            args.append("--allow-to-run-as-root")
        self._procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        self._wait(lambda: (self.tmp / "fpm.sock").exists(), "php-fpm", "fpm.log")
        self._procs.append(subprocess.Popen(
            [nginx, "-c", str(self._nginx_conf()), "-e", str(self.tmp / "nginx-error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(self._port_open, "nginx", "nginx-error.log")
        return self

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait(self, ready: object, name: str, log: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                break
            if callable(ready) and ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not start: {self.log(log)}")

    def log(self, name: str) -> str:
        """The tail of one of the stack's logs (``fpm.log``, ``php-errors.log``...)."""
        path = self.tmp / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop nginx and php-fpm (TERM, then KILL after 10 s)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if proc is self._procs[0] else signal.SIGQUIT)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def __enter__(self) -> PhpStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_php(script: Path, *args: str, ini: dict[str, str] | None = None,
            env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a PHP CLI script with assertions on (``zend.assertions=1``, exceptions)."""
    require_php()
    flags = ["-d", "zend.assertions=1", "-d", "assert.exception=1", "-d", "display_errors=stderr"]
    for key, value in (ini or {}).items():
        flags += ["-d", f"{key}={value}"]
    full_env = {**os.environ, "SW_CLIENT_DIR": str(CLIENT_DIR), **(env or {})}
    return subprocess.run(["php", *flags, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, check=False)
