"""Deployment checks with stable IDs, shared by ``sessionward check`` and the
Django system checks.

Every finding has a stable ID (``SW-E…`` errors, ``SW-W…`` warnings), a
severity, a message that explains the risk and a fix; :data:`CATALOGUE`
lists them all and ``docs/cli.md`` documents each one.  IDs are never reused
or renumbered.  Where a finding is about a file, its fix is the exact
command to run (``chmod 600 /etc/app/session.key``), built by
:mod:`sessionward.admin.fixes`.

The checks come in layers so that each caller runs what it can:
:func:`settings_findings` is pure (no I/O); :func:`key_findings`,
:func:`store_path_findings` and :func:`daemon_findings` look at files;
:func:`store_findings` talks to the store (ping, clock skew against Redis).
:func:`namespace_findings` opens a sample of records with the keys.
Findings are shown to the operator who runs the check (the CLI, Django's
``manage.py check``): messages and fixes pass through
:func:`sessionward.audit.redact.for_operator`, which keeps paths and masks
URL passwords; never log them unsanitised.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from ..audit.redact import for_operator
from ..core.config import Settings
from ..core.errors import CodecError, ConfigurationError, SessionError, StoreNotFoundError
from ..core.keys import load_keyring, read_secret_file
from ..core.net import is_loopback_host
from ..lifecycle.manager import SessionManager
from ..stores.base import Capability, SessionStore
from . import fixes

Severity = Literal["error", "warning"]

CATALOGUE: Mapping[str, tuple[str, str]] = {
    "SW-E001": ("store unreachable", "start the store or fix the store URL"),
    "SW-E002": ("key file unusable", "create one with `sessionward keygen --out PATH` and "
                "keep it 0600, owned by the app user, not a symlink"),
    "SW-E003": ("key directory writable by others", "chmod 700 the key directory"),
    "SW-E004": ("session cookie sent over plain http",
                "set cookie_secure = true and unsafe_dev_http = false in production"),
    "SW-E005": ("store files writable by others",
                "chmod 600 the SQLite file (700 for a file store directory)"),
    "SW-E006": ("daemon socket open to others",
                "keep the socket 0600 (serve's default) in a 0700 directory"),
    "SW-E007": ("no daemon admin token", "pass --token-file PATH or set SESSIONWARD_ADMIN_TOKEN"),
    "SW-E008": ("daemon token file unusable", "chmod 600 the token file, owned by this user"),
    "SW-E009": ("clock far off the store's", "run NTP (chrony, systemd-timesyncd) on every host"),
    "SW-E010": ("configuration invalid", "fix the setting named in the message"),
    "SW-E011": ("store does not exist", "fix the store URL; the app, `sessionward serve` or "
                "`sessionward --create` creates a store"),
    "SW-W001": ("development mode on", "set unsafe_dev_http = false outside development"),
    "SW-W002": ("cookie readable by scripts", "set cookie_http_only = true"),
    "SW-W003": ("cookie sent cross-site", "use cookie_same_site = 'lax' or 'strict'"),
    "SW-W004": ("cookie without a __Host- or __Secure- prefix",
                "use the default cookie_name '__Host-session'"),
    "SW-W005": ("cookie shared with subdomains", "leave cookie_domain unset"),
    "SW-W006": ("clock skew with the store", "run NTP (chrony, systemd-timesyncd) on every host"),
    "SW-W007": ("debug logging on", "unset SESSIONWARD_DEBUG / drop --debug in production"),
    "SW-W008": ("long session lifetimes", "idle_timeout <= 30 min and absolute_timeout <= 12 h "
                "(OWASP ASVS L2)"),
    "SW-W009": ("periodic ID rotation off", "set rotation_interval_seconds (default 900)"),
    "SW-W010": ("stolen sessions are only logged", "set zombie_policy = 'revoke'"),
    "SW-W011": ("client changes ignored", "set client_binding = 'log' (default) or stricter"),
    "SW-W012": ("sessions kept in process memory", "use a sqlite://, file:// or redis:// store"),
    "SW-W013": ("Redis without TLS over the network",
                "use rediss:// (TLS) or a loopback / unix:// connection"),
    "SW-W014": ("store files readable by others", "chmod 600 the SQLite file (700 for a "
                "file store directory)"),
    "SW-W015": ("records that do not open with these keys",
                "pass the app's namespace and key file: sessionward --namespace NAME "
                "--key-file PATH check"),
}
"""ID -> (title, fix) of every finding."""

SKEW_WARNING = 2.0
"""Seconds of clock skew with the store that give SW-W006."""
SKEW_ERROR = 60.0
"""Seconds of clock skew with the store that give SW-E009."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One check result.

    Attributes:
        id: stable ID (``SW-E001``...).
        severity: ``error`` or ``warning`` (from the ID).
        title: short constant title.
        message: what was found (sanitised).
        fix: how to fix it.
    """

    id: str
    severity: Severity
    title: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"id": self.id, "severity": self.severity, "title": self.title,
                "message": self.message, "fix": self.fix}


def finding(check_id: str, message: str, fix: str | None = None) -> Finding:
    """Build the finding ``check_id`` with ``message`` (title from the catalogue).

    Args:
        check_id: a :data:`CATALOGUE` ID.
        message: what was found.
        fix: the exact command or setting for this case; the catalogue's
            generic fix when ``None``.

    Raises:
        KeyError: unknown ID (a programming error).
    """
    title, generic = CATALOGUE[check_id]
    severity: Severity = "error" if check_id.startswith("SW-E") else "warning"
    return Finding(check_id, severity, title, for_operator(message),
                   for_operator(fix or generic))


# ---------------------------------------------------------------- settings


def settings_findings(settings: Settings) -> list[Finding]:
    """Pure checks of a :class:`Settings` (no I/O)."""
    s = settings
    out = []
    if not s.cookie_secure:
        out.append(finding("SW-E004", "cookie_secure is off (unsafe_dev_http): the session "
                                      "cookie travels over plain http"))
    elif s.unsafe_dev_http:
        out.append(finding("SW-W001", "unsafe_dev_http is on"))
    if not s.cookie_http_only:
        out.append(finding("SW-W002", "cookie_http_only is off: page scripts can read the "
                                      "session cookie (XSS steals sessions)"))
    if s.cookie_same_site == "none":
        out.append(finding("SW-W003", "cookie_same_site is 'none': cross-site requests carry "
                                      "the session (CSRF)"))
    if not s.cookie_name.startswith(("__Host-", "__Secure-")):
        out.append(finding("SW-W004", f"cookie_name {s.cookie_name!r} has no __Host- prefix: "
                                      "a subdomain or http page can overwrite it"))
    if s.cookie_domain is not None:
        out.append(finding("SW-W005", "cookie_domain is set: every subdomain receives the "
                                      "session cookie"))
    out.extend(_policy_findings(s))
    return out


def _policy_findings(s: Settings) -> list[Finding]:
    out = []
    if s.idle_timeout > timedelta(minutes=30) or s.absolute_timeout > timedelta(hours=12):
        out.append(finding("SW-W008", f"idle {s.idle_timeout}, absolute {s.absolute_timeout}"))
    if s.rotation_interval is None:
        out.append(finding("SW-W009", "rotation_interval is off: a stolen ID stays valid "
                                      "for the whole session"))
    if s.zombie_policy == "log":
        out.append(finding("SW-W010", "zombie_policy is 'log': use of a rotated-away ID "
                                      "(probable theft) does not end the session"))
    if s.client_binding == "ignore":
        out.append(finding("SW-W011", "client_binding is 'ignore': client changes are not "
                                      "even logged"))
    scheme = urlsplit(s.store_url).scheme.lower()
    if scheme == "memory":
        out.append(finding("SW-W012", "memory:// loses every session on restart and is not "
                                      "shared between processes"))
    if scheme in ("redis", "redis+cluster", "redis+sentinel") and not all(
            _loopback(host) for host in _redis_hosts(s.store_url)):
        out.append(finding("SW-W013", "the Redis connection is not encrypted and leaves "
                                      "this host"))
    return out


def _redis_hosts(url: str) -> list[str | None]:
    """The hosts a Redis URL names: one, or every sentinel of ``redis+sentinel://h1,h2/…``.

    (A Sentinel set's data nodes are learnt at run time; if every sentinel is
    local they are too, in any deployment this check can judge.)
    """
    parts = urlsplit(url)
    if not parts.scheme.lower().endswith("+sentinel"):
        return [parts.hostname]
    return [urlsplit(f"//{item}").hostname
            for item in parts.netloc.rpartition("@")[2].split(",")]


def _loopback(host: str | None) -> bool:
    """No host (a Unix socket) or a loopback one."""
    return not host or is_loopback_host(host)


def debug_findings(debug: bool) -> list[Finding]:
    """SW-W007 when debug output is on."""
    if not debug:
        return []
    return [finding("SW-W007", "debug output is on: tracebacks may reveal paths and "
                               "configuration")]


# ------------------------------------------------------------------- files


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def key_findings(key_file: str | None, namespace: str) -> list[Finding]:
    """The key file opens safely (SW-E002) and its directory is private (SW-E003)."""
    if key_file is None:
        return [finding("SW-E002", "no key file is configured (key_file / --key-file)",
                        "sessionward keygen --out /etc/sessionward/session.key, then pass "
                        "--key-file /etc/sessionward/session.key")]
    out = []
    try:
        load_keyring(key_file, namespace)
    except ConfigurationError as exc:
        out.append(finding("SW-E002", str(exc), fixes.secret_file(Path(key_file), keygen=True)))
    parent = Path(key_file).parent
    mode = _mode(parent)
    if mode is not None and mode & 0o022:
        out.append(finding("SW-E003", f"the key directory has mode {mode:04o}: others can "
                                      "replace the key file", fixes.chmod(0o700, parent)))
    return out


def _store_path(url: str) -> Path | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.netloc + parts.path)
        return Path(path[1:] if path.startswith("/") else path) if path else None
    if scheme == "file":
        return Path(unquote(parts.path))
    return None


def store_path_findings(store_url: str) -> list[Finding]:
    """SQLite file / file-store directory permissions (SW-E005, SW-W014)."""
    path = _store_path(store_url)
    mode = None if path is None else _mode(path)
    if path is None or mode is None:
        return []
    if mode & 0o022:
        return [finding("SW-E005", f"the store {path} has mode {mode:04o}: others can delete "
                                   "or roll back sessions", fixes.store_chmod(path))]
    if mode & 0o044:
        return [finding("SW-W014", f"the store {path} has mode {mode:04o}: others can read "
                                   "the sealed records and user index", fixes.store_chmod(path))]
    return []


def daemon_findings(daemon_url: str | None, token_file: str | None,
                    token_in_env: bool) -> list[Finding]:
    """Daemon socket permissions (SW-E006) and the admin token (SW-E007, SW-E008)."""
    if daemon_url is None:
        return []
    out = []
    parts = urlsplit(daemon_url)
    if parts.scheme.lower() == "sessionward":
        socket_path = Path(unquote(parts.path))
        mode, dir_mode = _mode(socket_path), _mode(socket_path.parent)
        if mode is not None and mode & 0o077:
            out.append(finding("SW-E006", f"the daemon socket has mode {mode:04o}",
                               fixes.chmod(0o600, socket_path)))
        if dir_mode is not None and dir_mode & 0o022:
            out.append(finding("SW-E006", f"the socket directory has mode {dir_mode:04o}: "
                                          "others can replace the socket",
                               fixes.chmod(0o700, socket_path.parent)))
    if token_file is not None:
        try:
            read_secret_file(token_file, what="token file")
        except ConfigurationError as exc:
            out.append(finding("SW-E008", str(exc), fixes.secret_file(Path(token_file))))
    elif not token_in_env:
        out.append(finding("SW-E007", "a daemon is configured but no admin token",
                           f"sessionward --daemon {daemon_url} --token-file PATH check "
                           "(PATH: the daemon's admin token file)"))
    return out


# ------------------------------------------------------------------- store


def store_findings(store: SessionStore,
                   clock: Callable[[], float] = time.time) -> list[Finding]:
    """Ping the store (SW-E001); with Redis, compare clocks (SW-W006, SW-E009)."""
    try:
        store.ping()
    except SessionError as exc:
        return [unreachable_finding(exc)]
    if not store.kind.startswith("redis"):
        return []
    skew = _redis_skew(store, clock)
    if skew is None or abs(skew) < SKEW_WARNING:
        return []
    check_id = "SW-E009" if abs(skew) >= SKEW_ERROR else "SW-W006"
    return [finding(check_id, f"this host's clock is {skew:+.1f} s off the Redis server's; "
                              "expiry and lockouts drift by as much")]


def _redis_skew(store: SessionStore, clock: Callable[[], float]) -> float | None:
    """Local clock minus the Redis ``TIME`` (midpoint of the round trip)."""
    import redis

    client = getattr(store, "_client", None)  # RedisStore's client; the TIME command
    if client is None:
        return None
    before = clock()
    try:
        reply: Any = client.time()
    except redis.RedisError:
        return None
    after = clock()
    if isinstance(reply, dict):  # a Cluster answers per node
        reply = next(iter(reply.values()), None)
    if not isinstance(reply, list | tuple) or len(reply) != 2:
        return None
    server = float(reply[0]) + float(reply[1]) / 1e6
    return (before + after) / 2 - server


def unreachable_finding(exc: SessionError, what: str = "") -> Finding:
    """SW-E011 for a store that does not exist, else SW-E001 (the message's own fix first)."""
    message, _, fix = str(exc).partition("; ")
    if isinstance(exc, StoreNotFoundError):
        return finding("SW-E011", message, fix or None)
    return finding("SW-E001", f"{what}{message}", fix or None)


NAMESPACE_SAMPLE = 200
"""Records :func:`namespace_findings` tries to open (one ``scan`` page)."""


def namespace_findings(manager: SessionManager) -> list[Finding]:
    """SW-W015 when records of the store do not open with these keys and namespace.

    A store shared by several apps holds records of other namespaces, so this
    is a warning; when *none* of the sample opens, the namespace or key file
    given is most likely not the app's (the demo's namespace is ``demo``).

    Raises:
        StoreError: the store failed.
    """
    if Capability.SCAN not in manager.store.capabilities:
        return []
    page, _ = manager.store.scan(None, NAMESPACE_SAMPLE)
    failed = 0
    for key, stored in page:
        try:
            manager.runtime.sealer.open(key, stored)
        except CodecError:
            failed += 1
    if not failed:
        return []
    namespace = manager.settings.namespace
    found = (f"none of the {len(page)} record(s) sampled opens" if failed == len(page)
             else f"{failed} of the {len(page)} record(s) sampled do not open")
    return [finding("SW-W015", f"{found} with namespace {namespace!r} and this key file: "
                               "another app's namespace, another key file, or damage",
                    "pass the app's own settings: sessionward --namespace NAME --key-file PATH "
                    "check (the demo: --namespace demo --key-file demo-data/session.key)")]


def has_errors(findings: list[Finding]) -> bool:
    """True if any finding is an error."""
    return any(f.severity == "error" for f in findings)


def env_debug(environ: Mapping[str, str] | None = None) -> bool:
    """``SESSIONWARD_DEBUG`` is set to a true value."""
    value = (os.environ if environ is None else environ).get("SESSIONWARD_DEBUG", "")
    return value.strip().lower() in ("1", "true", "yes", "on")
