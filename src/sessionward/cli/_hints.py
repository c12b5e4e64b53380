"""The fix that goes with an error the operator sees, when the error itself cannot say it.

Library and admin errors state the rule ("idle_timeout must be positive",
"no session with that handle"); only the CLI knows where the operator set
the value or which command lists valid input.  :func:`with_fix` appends that
part, so every error line ends with something to do.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping

from ..core.errors import ConfigurationError, ProtocolError, SessionError

_DAEMON_FIX = ("check that --daemon names the socket or port of a running `sessionward serve` "
               "(and see its log)")
_CODE_FIXES = {
    "invalid_json": _DAEMON_FIX,
    "payload_too_large": _DAEMON_FIX,
    "unavailable": _DAEMON_FIX,
    "session_not_found": "`sessionward list` shows the current handles",
    "auth_failed": "give the daemon's admin token (--token-file PATH or "
                   "SESSIONWARD_ADMIN_TOKEN); the app token is refused for admin commands",
    "forbidden_command": "this token's role may not run it; use the daemon's admin token",
}
_OS_FIXES = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check the file's owner and mode (ls -l)",
    errno.EPERM: "check the file's owner and mode (ls -l)",
    errno.EISDIR: "give a file, not a directory",
    errno.ENOTDIR: "a part of the path is not a directory: check the path",
}
_SETTING_RE = re.compile(r"^(?:[a-z ]+: )?([a-z_0-9]+) (?:must|requires)")


def with_fix(exc: SessionError) -> str:
    """``str(exc)`` plus, for protocol/admin error codes, the command that helps."""
    text = str(exc)
    code = getattr(exc, "code", None)
    if "; " in text:  # the message already says what to do
        return text
    fix = _CODE_FIXES.get(code) if isinstance(code, str) else None
    if fix is None and isinstance(exc, ProtocolError) and "handle" in text:
        fix = _CODE_FIXES["session_not_found"]
    return f"{text}; {fix}" if fix else text


def os_error(exc: OSError) -> str:
    """``strerror (filename); fix`` for an ``OSError`` that reached the top."""
    where = f" ({exc.filename})" if exc.filename else ""
    fix = _OS_FIXES.get(exc.errno or 0)
    return f"{exc.strerror or exc}{where}" + (f"; {fix}" if fix else "")


def settings_error(exc: ConfigurationError, environ: Mapping[str, str],
                   config_file: str | None) -> ConfigurationError:
    """The settings error with where to fix it (the variable, the file or the flag).

    Returns:
        A new :class:`ConfigurationError` whose message ends with the fix.
    """
    text = str(exc)
    if text.startswith("config file") and "does not exist" in text:
        return ConfigurationError(f"{text}; give an existing file to --config or fix "
                                  "SESSIONWARD_CONFIG")
    unknown = re.match(r"environment: unknown setting (SESSIONWARD_\w+)", text)
    if unknown:
        return ConfigurationError(f"{text}; unset {unknown.group(1)} or fix its name (the "
                                  "settings are listed in docs/concepts.md)")
    found = _SETTING_RE.match(text)
    if found is None:
        return exc
    name = found.group(1).upper()
    variables = [v for v in (f"SESSIONWARD_{name}", f"SESSIONWARD_{name}_SECONDS")
                 if v in environ]
    if variables:
        return ConfigurationError(f"{text}; fix {variables[0]}={environ[variables[0]]!r}")
    if config_file:
        return ConfigurationError(f"{text}; fix {found.group(1)} in {config_file}")
    return ConfigurationError(f"{text}; fix the {found.group(1)} setting")
