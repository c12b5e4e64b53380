"""The CLI's client for the daemon's admin role, on the remote package's transport.

Protocol (DESIGN §9, ``docs/PROTOCOL.md``): one JSON object per line over a
Unix socket (or a loopback TCP socket).  The transport, URL checks and the
wire-error mapping are :mod:`sessionward.remote`'s (one client
implementation, not two); this module only turns a refusal into a
:class:`DaemonError` that names its protocol token, for the CLI's one-line
error output.

Security: the token is sent only inside request frames, never logged or
echoed; error messages from the daemon are sanitised before they are shown.
TCP URLs must name a loopback address (anything else is refused before
connecting).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from ..audit.redact import for_operator, sanitize
from ..core.errors import ConfigurationError, ProtocolError, SessionError, StoreUnavailableError
from ..core.net import is_loopback_host
from ..remote.pool import Pool, parse_url


class DaemonError(SessionError):
    """The daemon answered ``ok: false`` or could not be reached.

    Attributes:
        code: the protocol error token (``auth_failed``, ``session_not_found``...)
            or ``unavailable``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code


def parse_daemon_url(url: str) -> str | tuple[str, int]:
    """The socket path or ``(host, port)`` of a ``sessionward://`` or
    ``sessionward+tcp://`` URL.

    Raises:
        ConfigurationError: another scheme, no absolute socket path, or a TCP
            host that is not a loopback address.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() == "sessionward" and (
            parts.netloc or not unquote(parts.path).startswith("/")):
        raise ConfigurationError(
            "daemon URL must look like sessionward:///absolute/path/sessionward.sock")
    tcp_usage = ("sessionward+tcp:// must name a loopback address and port, "
                 "e.g. sessionward+tcp://127.0.0.1:7070")
    if parts.scheme.lower() == "sessionward+tcp" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(f"{tcp_usage} (not {parts.hostname or 'an empty host'!r})")
    try:
        return parse_url(url)
    except ConfigurationError:
        raise
    except ValueError:  # a malformed port (urllib's own error)
        raise ConfigurationError(tcp_usage) from None


class DaemonClient:
    """Admin requests to the daemon, one at a time on one kept connection.

    Args:
        url: ``sessionward:///path.sock`` or ``sessionward+tcp://127.0.0.1:PORT``.
        token: the admin token.
        timeout: seconds to wait for each answer (admin scans can be slow).

    Raises:
        ConfigurationError: bad URL.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 300.0) -> None:
        address = parse_daemon_url(url)
        self._where = address if isinstance(address, str) else "{}:{}".format(*address)
        self._pool = Pool(address, 1, timeout)
        self._token = token

    def call(self, command: str, **fields: Any) -> Any:
        """Send one request and return its ``data``.

        Raises:
            DaemonError: the daemon refused (``error.type`` becomes ``code``)
                or could not be reached (``unavailable``).
            SessionError: another library error the daemon answered with.
        """
        doc = {"command": command, "token": self._token,
               **{k: v for k, v in fields.items() if v is not None}}
        try:
            return self._pool.call(doc)
        except ProtocolError as exc:
            raise DaemonError(exc.code, sanitize(str(exc))) from None
        except StoreUnavailableError as exc:
            # The operator's own terminal: name the address they configured and the fix.
            raise DaemonError("unavailable", for_operator(
                f"cannot connect to the daemon at {self._where} ({exc}); start it with "
                "`sessionward serve`, or fix --daemon / SESSIONWARD_DAEMON")) from None
        except (TypeError, ValueError) as exc:  # the daemon's invalid_argument mapping
            raise DaemonError("invalid_argument", sanitize(
                f"{exc}; the daemon refused an argument of {command!r} (see the "
                "command's --help)")) from None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._pool.close()
