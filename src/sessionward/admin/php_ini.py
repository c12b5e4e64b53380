"""Audit of PHP's session settings in a ``php.ini`` and a PHP-FPM pool file.

``sessionward check --php-ini FILE [--php-fpm-pool FILE]`` reports each
insecure or fragile ``session.*`` setting as a :class:`~sessionward.admin.checks.Finding`
with a stable ID (``SW-E1xx`` errors, ``SW-W1xx`` warnings; listed in
:data:`PHP_CATALOGUE` and ``docs/cli.md``, never renumbered) whose message
names the file and line and whose ``fix`` is the exact line to write.

Effective values follow PHP's rules: PHP's built-in default, then the last
``php.ini`` line, then the pool's ``php_value``/``php_flag`` (and the
``php_admin_*`` ones, which scripts cannot override).  ``ini_set()`` in the
application is not visible here: the audit is of the deployment, as
PHP's own hardening guides audit it.  The sessionward PHP handler forces
``use_strict_mode``, ``use_only_cookies``, ``use_trans_sid``, ``lazy_write``,
``serialize_handler`` and ``gc_probability`` itself, but the findings stay
valid for every other script and handler on the same PHP.

Pure except :func:`save_path_findings` (it stats the directory), :func:`audit`
(it reads the two files) and :func:`compiled_defaults` (it runs ``php -n``).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .checks import Finding, Severity

PHP_CATALOGUE: Mapping[str, tuple[str, str]] = {
    "SW-E101": ("session.use_strict_mode off", "session.use_strict_mode = 1"),
    "SW-E102": ("session IDs accepted from URLs", "session.use_only_cookies = 1"),
    "SW-E103": ("session IDs written into URLs", "session.use_trans_sid = 0"),
    "SW-E104": ("session cookie readable by scripts", "session.cookie_httponly = 1"),
    "SW-E105": ("session cookie sent over plain http", "session.cookie_secure = 1"),
    "SW-E106": ("guessable session IDs", "session.sid_length = 48"),
    "SW-E107": ("sessions in the shared temp directory",
                'session.save_path = "/var/lib/php/sessions"'),
    "SW-E108": ("session files listable by others", "chmod 700 the save_path directory"),
    "SW-E109": ("save_path not writable by PHP", "chown the save_path directory to the PHP "
                "user and chmod 700 it"),
    "SW-E110": ("PHP configuration file unreadable", "pass a readable php.ini / pool file"),
    "SW-W101": ("session cookie sent cross-site", "session.cookie_samesite = Lax"),
    "SW-W102": ("session files writable by others", "chmod 700 the save_path directory"),
    "SW-W103": ("random garbage collection on requests", "session.gc_probability = 0"),
    "SW-W104": ("every request rewrites the session", "session.lazy_write = 1"),
    "SW-W105": ("PHP's legacy session serializer", "session.serialize_handler = php_serialize"),
    "SW-W106": ("session cookie shared with subdomains", "session.cookie_domain ="),
    "SW-W107": ("session cookie without the __Host- prefix", "session.name = __Host-PHPSESSID"),
}
"""ID -> (title, generic fix) of every PHP finding."""

DEFAULTS: Mapping[str, str] = {
    "session.use_strict_mode": "0", "session.use_only_cookies": "1",
    "session.use_trans_sid": "0", "session.cookie_httponly": "", "session.cookie_secure": "0",
    "session.cookie_samesite": "", "session.cookie_domain": "", "session.name": "PHPSESSID",
    "session.sid_length": "32", "session.sid_bits_per_character": "4",
    "session.save_handler": "files", "session.save_path": "", "session.gc_probability": "1",
    "session.lazy_write": "1", "session.serialize_handler": "php",
}
"""Upstream PHP 8.2's built-in values (``ext/session/session.c``) when no file sets
them; distributions change some at build time (Debian: ``save_path =
/var/lib/php/sessions``), which :func:`compiled_defaults` asks the local ``php`` for."""

MIN_ID_BITS = 128
"""Entropy below which PHP-generated session IDs are reported (OWASP asks >= 64; PHP's
own default gives 128)."""

_TRUE = {"1", "on", "true", "yes"}
_POOL_RE = re.compile(r"php(?:_admin)?_(?:value|flag)\[([^\]]+)\]\s*$")


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective setting and where it came from (``path`` None: PHP's default)."""

    name: str
    value: str
    path: str | None = None
    line: int = 0
    pool: bool = False

    @property
    def where(self) -> str:
        if self.path is None:
            return f"{self.name} is not set (PHP's default is {self.value!r})"
        return f"{self.path}:{self.line}: {self.name} = {self.value}"

    def fix_line(self, name: str, value: str) -> str:
        """The exact line that fixes it, in the syntax of the file it belongs in."""
        if self.pool:
            kind = "flag" if value.lower() in _TRUE | {"0", "off"} else "value"
            return f"php_admin_{kind}[{name}] = {value}"
        return f"{name} = {value}"


# ------------------------------------------------------------------- parsing


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.split(";", 1)[0].strip()  # an unquoted value ends at a comment


def parse_ini(text: str, path: str) -> dict[str, Setting]:
    """The ``session.*`` lines of a php.ini (the last occurrence wins).

    ``[HOST=…]``/``[PATH=…]`` sections are read like the rest (they narrow
    where a value applies, which a static audit cannot know).
    """
    out: dict[str, Setting] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#[" or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.strip().lower()
        if name.startswith("session."):
            out[name] = Setting(name, _unquote(value), path, number)
    return out


def parse_pool(text: str, path: str) -> tuple[dict[str, Setting], str | None]:
    """``php_value``/``php_flag``/``php_admin_*`` session settings and the pool ``user``."""
    out: dict[str, Setting] = {}
    user = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#[" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key == "user":
            user = _unquote(value)
        match = _POOL_RE.fullmatch(key)
        if match and match.group(1).strip().lower().startswith("session."):
            name = match.group(1).strip().lower()
            out[name] = Setting(name, _unquote(value), path, number, pool=True)
    return out, user


def compiled_defaults(php: str | None = None) -> dict[str, str]:
    """The session defaults compiled into the local PHP (``php -n``: no ini file read),
    or :data:`DEFAULTS` when no ``php`` binary runs here."""
    binary = php or shutil.which("php")
    if binary is None:
        return dict(DEFAULTS)
    code = "echo json_encode(array_map(fn($n) => (string) ini_get($n), $argv));"
    try:
        done = subprocess.run([binary, "-n", "-r", code, "--", *DEFAULTS], capture_output=True,
                              text=True, timeout=10, check=False)
        values = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != len(DEFAULTS) + 1:
        return dict(DEFAULTS)
    return dict(zip(DEFAULTS, (str(v) for v in values[1:]), strict=True))


def effective(ini: Mapping[str, Setting], pool: Mapping[str, Setting],
              defaults: Mapping[str, str] = DEFAULTS) -> dict[str, Setting]:
    """PHP's defaults, overridden by the php.ini, overridden by the pool."""
    merged = {name: Setting(name, defaults.get(name, value)) for name, value in DEFAULTS.items()}
    merged.update(ini)
    merged.update(pool)
    return merged


# ------------------------------------------------------------------ findings


def _finding(check_id: str, setting: Setting | None, message: str,
             fix: tuple[str, str] | None = None) -> Finding:
    title, generic = PHP_CATALOGUE[check_id]
    severity: Severity = "error" if check_id.startswith("SW-E") else "warning"
    where = f"{setting.where}: " if setting is not None else ""
    exact = setting.fix_line(*fix) if setting is not None and fix is not None else generic
    return Finding(check_id, severity, title, _clean(where + message), _clean(exact))


def _clean(text: str) -> str:
    """Printable and bounded.  Paths are kept on purpose: they are the operator's own
    files and the point of the finding (unlike :func:`sessionward.audit.redact.sanitize`)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:500]


def _on(setting: Setting) -> bool:
    return setting.value.strip().lower() in _TRUE


def _int(setting: Setting, default: int) -> int:
    try:
        return int(setting.value.strip())
    except ValueError:
        return default


def flag_findings(s: Mapping[str, Setting]) -> list[Finding]:
    """The on/off settings (pure)."""
    rules = [
        ("SW-E101", "session.use_strict_mode", False, "PHP adopts any session ID a client "
         "sends (session fixation)", "1"),
        ("SW-E102", "session.use_only_cookies", False, "IDs are taken from URLs too "
         "(they leak through Referer headers and logs)", "1"),
        ("SW-E103", "session.use_trans_sid", True, "PHP rewrites links to carry the session "
         "ID", "0"),
        ("SW-E104", "session.cookie_httponly", False, "scripts (XSS) can read the session "
         "cookie", "1"),
        ("SW-E105", "session.cookie_secure", False, "the session cookie travels over plain "
         "http", "1"),
        ("SW-W104", "session.lazy_write", False, "every request rewrites the session, "
         "widening lost-update races", "1"),
    ]
    out = []
    for check_id, name, bad_when_on, why, good in rules:
        setting = s[name]
        if _on(setting) == bad_when_on:
            out.append(_finding(check_id, setting, why, (name, good)))
    return out


def value_findings(s: Mapping[str, Setting]) -> list[Finding]:
    """SameSite, cookie scope and name, ID entropy, GC, serializer (pure)."""
    out = []
    same_site = s["session.cookie_samesite"]
    if same_site.value.strip().lower() not in ("lax", "strict"):
        out.append(_finding("SW-W101", same_site, "cross-site requests carry the session "
                            "cookie (CSRF)", ("session.cookie_samesite", "Lax")))
    if s["session.cookie_domain"].value.strip():
        out.append(_finding("SW-W106", s["session.cookie_domain"], "every subdomain "
                            "receives the session cookie", ("session.cookie_domain", "")))
    name = s["session.name"]
    if not name.value.startswith("__Host-"):
        out.append(_finding("SW-W107", name, "a subdomain or plain-http page can set this "
                            "cookie (needs cookie_secure = 1, path /, no domain)",
                            ("session.name", f"__Host-{name.value or 'PHPSESSID'}")))
    length, bits = s["session.sid_length"], s["session.sid_bits_per_character"]
    entropy = _int(length, 32) * _int(bits, 4)
    if entropy < MIN_ID_BITS:
        worse = length if length.path is not None else bits
        out.append(_finding("SW-E106", worse, f"sid_length x sid_bits_per_character = "
                            f"{entropy} bits (< {MIN_ID_BITS})", ("session.sid_length", "48")))
    gc = s["session.gc_probability"]
    if _int(gc, 1) > 0:
        out.append(_finding("SW-W103", gc, "a random request pays for deleting expired "
                            "sessions (latency spikes; with the files handler a scan of "
                            "the directory) — expire sessions from a timer instead",
                            ("session.gc_probability", "0")))
    serializer = s["session.serialize_handler"]
    if serializer.value.strip().lower() in ("php", "php_binary"):
        out.append(_finding("SW-W105", serializer, "the 'php' format splits keys on '|' "
                            "(past injection bugs) and no other language reads it",
                            ("session.serialize_handler", "php_serialize")))
    return out


def save_path_directory(value: str) -> str:
    """The directory of a files-handler ``save_path`` (``"N;MODE;/dir"`` → ``/dir``)."""
    return value.rsplit(";", 1)[-1].strip()


def save_path_findings(s: Mapping[str, Setting], user: str | None = None) -> list[Finding]:
    """The files handler's directory: set, owned by the PHP user, not open to others.

    Why each matters: file names *are* the session IDs (listable = stealable);
    a directory others can write lets them plant session files (fixation);
    an empty ``save_path`` means the system temp directory, shared with every
    user of the host; a directory PHP cannot write makes ``session_start()``
    fail with only a warning in the log, and the request continues without a
    session.
    """
    if s["session.save_handler"].value.strip().lower() != "files":
        return []
    setting = s["session.save_path"]
    directory = save_path_directory(setting.value)
    if not directory:
        return [_finding("SW-E107", setting, "PHP falls back to the system temp directory, "
                         "shared with every user and service of the host",
                         ("session.save_path", '"/var/lib/php/sessions"'))]
    try:
        info = os.stat(directory)
    except OSError:
        return [_finding("SW-E109", setting, "the directory does not exist or cannot be "
                         "reached: session_start() fails with only a warning")]
    if not stat.S_ISDIR(info.st_mode):
        return [_finding("SW-E109", setting, "save_path is not a directory")]
    return _mode_findings(setting, info, directory, user)


def _mode_findings(setting: Setting, info: os.stat_result, directory: str,
                   user: str | None) -> list[Finding]:
    out = []
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o004:
        out.append(_finding("SW-E108", setting, f"mode {mode:04o}: other users can list the "
                            "session files, whose names are the session IDs"))
    if mode & 0o022:
        out.append(_finding("SW-W102", setting, f"mode {mode:04o}: other users can create "
                            "session files (planted sessions) — Debian's 1733 is the "
                            "mildest form"))
    uid = _uid_of(user)
    if uid is not None and info.st_uid != uid and not os.access(directory, os.W_OK):
        out.append(_finding("SW-E109", setting, f"not owned by the pool user {user!r}: "
                            "session_start() cannot write here"))
    elif uid is None and not os.access(directory, os.W_OK | os.X_OK):
        out.append(_finding("SW-E109", setting, "not writable by this user"))
    return out


def _uid_of(user: str | None) -> int | None:
    if not user:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _read(path: Path) -> tuple[str | None, Finding | None]:
    try:
        return path.read_text(encoding="utf-8", errors="replace"), None
    except OSError as exc:
        return None, _finding("SW-E110", None, f"{path}: {exc.strerror or exc}")


def audit(php_ini: Path | None = None, fpm_pool: Path | None = None, *,
          defaults: Mapping[str, str] = DEFAULTS) -> list[Finding]:
    """Every PHP session finding of a php.ini and/or an FPM pool file, sorted by ID.

    ``defaults`` are the values PHP uses for unset settings (see
    :func:`compiled_defaults`).
    """
    found: list[Finding] = []
    ini: dict[str, Setting] = {}
    pool: dict[str, Setting] = {}
    user = None
    if php_ini is not None:
        text, error = _read(php_ini)
        found += [error] if error else []
        ini = parse_ini(text, str(php_ini)) if text is not None else {}
    if fpm_pool is not None:
        text, error = _read(fpm_pool)
        found += [error] if error else []
        if text is not None:
            pool, user = parse_pool(text, str(fpm_pool))
    if any(f.id == "SW-E110" for f in found):
        return found
    settings = effective(ini, pool, defaults)
    found += flag_findings(settings) + value_findings(settings)
    found += save_path_findings(settings, user)
    return sorted(found, key=lambda f: f.id)
