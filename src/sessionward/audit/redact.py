"""The sanitisers: one for everything that leaves the process, one for the operator.

Two functions, two audiences, no flag between them:

- :func:`sanitize` is for **logs, audit lines, events and daemon replies**:
  whoever reads those may not be the one who configured the process, so
  every path and URL goes;
- :func:`for_operator` is for **the operator's own terminal** (CLI error
  lines, ``check`` findings): the paths and URL schemes they typed stay, so
  a message can say ``chmod 600 /etc/app/key`` or list ``redis://``;
  passwords and tokens inside URLs are still masked (``redis://u:***@h``),
  because terminals are shared, recorded and pasted into tickets.

``sanitize(text)`` turns any text into something safe to show or log:

- control characters (C0, C1, DEL, bidi and other format characters, line
  and paragraph separators, whole terminal escape sequences) are removed;
  each run of them becomes one space,
  so that removing them can never glue two words into a new token that the
  rules below would miss (``"see\\x00/etc/x"`` must not become ``"see/etc/x"``);
- URLs of any scheme, with or without credentials (``redis://u:pw@h:1/0``,
  ``https://x/y?token=...``, ``sqlite:///a/b.db``, ``mailto:a@b``) and bare
  ``user:password@host`` become ``[url]``;
- Unix paths (``/etc/x``, ``~/x``, ``~bob/x``, ``./x``, ``../x``, ``a/b/c``)
  and Windows paths (``C:\\x\\y``, ``C:/x``, ``\\\\server\\share``, any token
  holding a backslash) become ``[path]``.  A single-slash word such as
  ``TCP/IP`` or ``and/or`` is deliberately kept;
- the result is cut to :data:`MAX_LENGTH` characters.

Invariants (pinned by property tests in ``tests/audit/test_redact.py``): the output
never holds a credential or path segment of a recognised URL or path, is at
most :data:`MAX_LENGTH` long, and ``sanitize(sanitize(x)) == sanitize(x)``.

Security: a matched token is replaced up to the next whitespace, so a
password containing quotes, ``@`` or ``/`` cannot leak its tail.  Only
trailing sentence punctuation and unpaired closing quotes or brackets
(``'/etc/x'`` → ``'[path]'``) are given back, to keep messages readable.
The patterns use no look-ahead, so every prefix of a sanitised text is still
sanitised: truncation cannot uncover anything.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MAX_LENGTH = 500
"""Longest sanitised text, in characters."""

_PRE_CUT = 16 * MAX_LENGTH
"""Input beyond this is ignored before matching (bounded work per message)."""

REDACTED = "[redacted]"
"""Placeholder for values outside an allowlist (see :func:`redact_mapping`)."""

_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?)")
"""Terminal escape sequences (CSI, OSC): removed whole, or ``ESC[31m`` would
leave ``[31m`` glued to the next token."""

_NONSPACE = r"\S+"
_TOKEN_RE = re.compile(
    "|".join(
        (
            # scheme://anything, including credentials, query and fragment.
            rf"(?P<url>[A-Za-z][\w+.-]*://\S*"
            # opaque schemes without "//" that carry addresses or payloads.
            rf"|(?i:mailto|data|javascript|urn|tel|news|ldap|ldaps):{_NONSPACE}"
            # bare userinfo: user:password@host.
            rf"|(?<![\w.%+-])[\w.%+-]+:[^\s@]*@[\w.-]+\S*)",
            # Windows: drive paths (either slash), then any token holding a
            # backslash (UNC shares, rooted and relative paths).
            r"(?P<win>(?<![A-Za-z0-9])[A-Za-z]:[\\/]\S*|[^\s\\]*\\\S*)",
            # Unix: absolute, home, dot-relative, then multi-segment relative paths.
            rf"(?P<unix>(?<!\w)(?:~[\w.-]*|\.{{1,2}})?/{_NONSPACE}|[\w.~-]+/[\w.~-]+/\S*)",
        )
    )
)

_OPENERS = {")": "(", "]": "[", "}": "{", ">": "<", "'": "'", '"': '"', "`": "`"}
_TRAILING = ".,;:!?"


def _strip_controls(text: str) -> str:
    """Replace each run of control/format characters with one space."""
    if text.isprintable():
        return text
    text = _ANSI_RE.sub(" ", text)
    out: list[str] = []
    in_run = False
    for char in text:
        if unicodedata.category(char) in _CONTROL_CATEGORIES:
            if not in_run:
                out.append(" ")
            in_run = True
        else:
            out.append(char)
            in_run = False
    return "".join(out)


def _unpaired_tail(token: str) -> bool:
    """Whether the last character of ``token`` is punctuation that is not part of it."""
    last = token[-1]
    if last in _TRAILING:
        return True
    opener = _OPENERS.get(last)
    if opener is None:
        return False
    if opener == last:  # a quote: unpaired if it occurs an odd number of times
        return token.count(last) % 2 == 1
    return token.count(opener) < token.count(last)


def _replace(match: re.Match[str]) -> str:
    """Replacement for one URL/path token, giving back unpaired trailing punctuation."""
    token = match.group(0)
    placeholder = "[url]" if match.group("url") else "[path]"
    end = len(token)
    while end > 1 and _unpaired_tail(token[:end]):
        end -= 1
    return placeholder + token[end:]


def _substitute(text: str) -> str:
    """Apply the token rules until nothing changes (at most a few passes)."""
    for _ in range(4):
        new = _TOKEN_RE.sub(_replace, text)
        if new == text:
            break
        text = new
    return text


def sanitize(text: object) -> str:
    """Return ``text`` (``str()`` of any object) safe for error messages and logs.

    Args:
        text: a message, an exception or any object.

    Returns:
        The sanitised text, at most :data:`MAX_LENGTH` characters.
    """
    raw = text if isinstance(text, str) else _safe_str(text)
    cleaned = _substitute(_strip_controls(raw[:_PRE_CUT]))
    return cleaned[:MAX_LENGTH]


OPERATOR_MAX_LENGTH = 2000
"""Longest :func:`for_operator` text, in characters."""

_MASK = "***"
_URL_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<userinfo>\S*)@")
"""``scheme://userinfo@``: the userinfo runs to the *last* ``@`` of the token, so
a password holding a raw ``@`` is masked whole."""
_SECRET_QUERY_RE = re.compile(
    r"(?P<name>[?&;](?i:password|passwd|pass|pwd|token|secret|auth|api_key|key)=)[^&;#\s]*")
_BARE_USERINFO_RE = re.compile(r"(?<![\w/.%+:-])(?P<user>[\w.%+-]+):(?!//)\S*@(?=[\w.\[-])")


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    if userinfo.startswith("/"):  # no authority (sqlite:////a@b/x.db): an "@" in a path
        return match.group(0)
    user, colon, _secret = userinfo.partition(":")
    kept = f"{user}:{_MASK}" if colon else _MASK
    return f"{match.group('scheme')}{kept}@"


def for_operator(text: object) -> str:
    """Return ``text`` for the operator's own terminal: paths and schemes kept.

    Control characters and terminal escapes are removed as in
    :func:`sanitize`; URL passwords (``scheme://user:pw@``, a lone
    ``scheme://secret@``), secret query options (``?password=``,
    ``token=``...) and bare ``user:pw@host`` become ``***``; the result is
    cut to :data:`OPERATOR_MAX_LENGTH` characters.  Never use it for logs,
    audit, events or daemon replies: use :func:`sanitize`.

    Args:
        text: a message, an exception or any object.

    Returns:
        The text, safe to print on the terminal of the person who ran the command.
    """
    raw = text if isinstance(text, str) else _safe_str(text)
    cleaned = _strip_controls(raw[:_PRE_CUT])
    masked = _URL_USERINFO_RE.sub(_mask_userinfo, cleaned)
    masked = _SECRET_QUERY_RE.sub(lambda m: f"{m.group('name')}{_MASK}", masked)
    masked = _BARE_USERINFO_RE.sub(lambda m: f"{m.group('user')}:{_MASK}@", masked)
    return masked[:OPERATOR_MAX_LENGTH]


def _safe_str(obj: object) -> str:
    """``str(obj)`` that never raises (a broken ``__str__`` gives the type name)."""
    try:
        return str(obj)
    except Exception:  # noqa: BLE001 - sanitising must never raise
        return f"<unprintable {type(obj).__name__}>"


def sanitize_exception(exc: BaseException) -> str:
    """``"TypeName: sanitised message"`` for an exception (no traceback, no paths).

    Args:
        exc: the exception to describe.

    Returns:
        The sanitised one-line description.
    """
    message = _safe_str(exc)
    return sanitize(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def _redact_value(value: Any) -> Any:
    """Sanitise strings inside a JSON-like value; other scalars pass unchanged."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {sanitize(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return sanitize(value)


def redact_mapping(
    data: Mapping[str, Any],
    allowed_fields: Iterable[str],
    *,
    placeholder: str | None = None,
) -> dict[str, Any]:
    """Keep only allowlisted fields of ``data``, with their strings sanitised.

    Used for ``list`` / ``show`` / audit output: anything not on the allowlist
    is dropped (or, with ``placeholder``, shown as that placeholder so an
    operator can see the field exists without seeing its value).

    Args:
        data: the mapping to redact; it is not modified.
        allowed_fields: names of the fields that may appear with their value.
        placeholder: if given, non-allowed fields are kept with this value
            (e.g. :data:`REDACTED`); if ``None`` they are dropped.

    Returns:
        A new dict in the order of ``data``.
    """
    allowed = frozenset(allowed_fields)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in allowed:
            out[sanitize(key)] = _redact_value(value)
        elif placeholder is not None:
            out[sanitize(key)] = placeholder
    return out


class RedactingFilter(logging.Filter):
    """A :class:`logging.Filter` that sanitises every record it sees.

    The message is formatted with its arguments first and the result
    sanitised (so a secret split across the format string and an argument is
    still caught); ``args`` is then cleared.  Exception info is reduced to a
    sanitised ``TypeName: message`` line (tracebacks are full of paths), stack
    info is dropped, and extra string attributes (``extra=``) are sanitised.

    Attach it to *handlers* (``handler.addFilter(RedactingFilter())``): a
    filter on a logger does not see records propagated from child loggers.
    The filter never rejects a record.
    """

    _STANDARD = frozenset(vars(logging.makeLogRecord({})))

    def filter(self, record: logging.LogRecord) -> bool:
        """Sanitise ``record`` in place.

        Args:
            record: the record about to be emitted.

        Returns:
            Always ``True``.
        """
        record.msg = sanitize(_format_message(record))
        record.args = None
        if record.exc_info:
            exc = record.exc_info[1]
            record.exc_text = sanitize_exception(exc) if exc is not None else None
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = sanitize(record.exc_text)
        record.stack_info = None
        for name, value in list(vars(record).items()):
            if name not in self._STANDARD and isinstance(value, str):
                setattr(record, name, sanitize(value))
        return True


def _format_message(record: logging.LogRecord) -> str:
    """``record.getMessage()`` that never raises (bad format args are kept visible)."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a log call with bad args must not break the caller
        return f"{_safe_str(record.msg)} (unformattable args)"
