"""``sessionward serve``: the daemon command (defined in :mod:`sessionward.daemon.command`)."""

from __future__ import annotations

from ..daemon.command import serve as serve

__all__ = ["serve"]
