"""Loopback checks (pure): the one definition of "local" for every part.

Two questions, two functions:

- :func:`is_loopback_address` — is this *literal* address loopback?  The
  daemon's rule (DESIGN §9): 127.0.0.0/8, ``::1`` and ``::ffff:127.0.0.0/104``;
  never ``0.0.0.0``, ``::``, another IPv4-mapped address or a name.
- :func:`is_loopback_host` — does this URL host or ``Host`` header (a name or
  an address, with or without a port) name this machine?  Adds ``localhost``
  and ``*.localhost`` (RFC 6761) to the literal rule.
"""

from __future__ import annotations

import ipaddress

from .errors import ConfigurationError

_V4_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_V6_LOOPBACK = ipaddress.IPv6Address("::1")


def is_loopback_address(host: str) -> bool:
    """True for a literal loopback address (a zone suffix ``%lo`` is ignored)."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped in _V4_LOOPBACK
    if isinstance(addr, ipaddress.IPv4Address):
        return addr in _V4_LOOPBACK
    return addr == _V6_LOOPBACK


def is_loopback_host(host: str | None) -> bool:
    """True when ``host`` (``name``, ``name:port``, ``addr``, ``[v6]:port``)
    names this machine: ``localhost``, ``*.localhost`` or a loopback address."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return is_loopback_address(name)


def require_loopback(host: str) -> str:
    """The numeric loopback address for ``host``.

    Accepted: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and the name
    ``localhost`` (→ 127.0.0.1).  Everything else — 0.0.0.0, ::, other
    IPv4-mapped addresses, any other host name — is refused.

    Raises:
        ConfigurationError: not a loopback address.
    """
    if host.lower() == "localhost":
        return "127.0.0.1"
    if not is_loopback_address(host):
        raise ConfigurationError(
            f"{host!r} is not a loopback address; the daemon only listens on and talks to "
            "127.0.0.0/8, ::1 or localhost"
        )
    return host
