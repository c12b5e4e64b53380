"""Built-in event sinks: subscribers for :class:`sessionward.audit.events.EventHub`.

- :class:`sessionward.audit.sinks.audit_file.AuditFileSink`: JSON Lines audit file,
  optional hash chain, :func:`~sessionward.audit.sinks.audit_file.verify_chain`;
- :class:`sessionward.audit.sinks.syslog.SyslogSink`: the local or a remote syslog;
- :class:`sessionward.audit.sinks.webhook.WebhookSink`: signed HTTP POSTs from a
  bounded queue, :func:`~sessionward.audit.sinks.signature.verify_webhook` for receivers.

Import each sink from its module.  Every sink is a callable taking an
:class:`~sessionward.audit.events.Event`; none of them ever raises into the request
that emitted the event: a failure is counted in the sink's ``failures``
attribute and reported on the ``sessionward.security`` logger (sanitised).
"""

from __future__ import annotations

import logging
from typing import Literal, Self

from ...core.errors import ConfigurationError
from ..events import Level
from ..redact import sanitize

LevelName = Literal["critical", "auth", "all"]
"""Which events a sink takes: ``critical`` (level >= CRITICAL), ``auth``
(level >= AUTH, the default) or ``all``."""

_THRESHOLDS: dict[str, Level] = {
    "critical": Level.CRITICAL,
    "auth": Level.AUTH,
    "all": Level.INFO,
}

security_log = logging.getLogger("sessionward.security")


def level_threshold(level: str) -> Level:
    """The lowest :class:`~sessionward.audit.events.Level` a sink with ``level`` takes.

    Args:
        level: ``"critical"``, ``"auth"`` or ``"all"``.

    Returns:
        The threshold to compare ``event.level`` against.

    Raises:
        ConfigurationError: ``level`` is not one of the three names.
    """
    try:
        return _THRESHOLDS[level]
    except KeyError:
        raise ConfigurationError(
            f"unknown sink level {sanitize(repr(level))}: use 'critical', 'auth' or 'all'"
        ) from None


class ClosingSink:
    """Mixin: ``with Sink(...) as sink:`` calls ``sink.close()`` on exit."""

    def close(self) -> object:
        """Release the sink's resources (each sink documents its own close)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
