"""Client information and profiles (pure, no I/O).

A *client profile* is what sessionward records about the client of a
session to notice hijacking: the IP address reduced to a prefix (/24 for
IPv4, /64 for IPv6 by default, so ordinary address churn inside one network
is tolerated) and the User-Agent.  Profiles are compared by value.
Binding is detect-and-log by default (NIST 800-63B-4 §5.3 privacy note).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidReason

MAX_UA = 256


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the web layer knows about the current request's client.

    Attributes:
        ip: the client address as resolved by the app's trusted-proxy rules.
        user_agent: the ``User-Agent`` header.
        correlation_id: the request id, copied into events.
    """

    ip: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None


InvalidHook = Callable[[ClientInfo | None, InvalidReason], None]
"""A manager ``invalid_hook``: called with the client and the reason for every
rejected session cookie (the invalid-session flood guard counts them)."""


def ip_prefix(ip: str | None, v4: int = 24, v6: int = 64) -> str:
    """The network prefix of ``ip`` (``"203.0.113.0/24"``) or ``""``.

    IPv4-mapped IPv6 addresses are treated as IPv4.
    """
    if not ip:
        return ""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "invalid"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = v4 if addr.version == 4 else v6
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def profile_of(client: ClientInfo | None, v4: int = 24, v6: int = 64) -> dict[str, str]:
    """The profile recorded for ``client`` (empty when nothing is known)."""
    if client is None:
        return {}
    profile: dict[str, str] = {}
    prefix = ip_prefix(client.ip, v4, v6)
    if prefix:
        profile["ip"] = prefix
    if client.user_agent:
        profile["ua"] = "".join(ch for ch in client.user_agent[:MAX_UA] if ch.isprintable())
    return profile


def describe_device(user_agent: str | None) -> str:
    """A short human label for a User-Agent ("Firefox on Linux")."""
    if not user_agent:
        return "Unknown device"
    ua = user_agent
    browser = next(
        (name for token, name in (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
                                  ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"),
                                  ("python", "Python client")) if token in ua),
        "Browser",
    )
    system = next(
        (name for token, name in (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
                                  ("Windows", "Windows"), ("Mac OS X", "macOS"),
                                  ("Linux", "Linux")) if token in ua),
        "",
    )
    return f"{browser} on {system}" if system else browser
