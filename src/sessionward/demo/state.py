"""What the demo's routes share: the :class:`Demo` bundle and request helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request

from ..guards.throttle_set import Scope, ThrottleSet
from ..lifecycle.amanager import AsyncSessionManager
from .csrf import AnonymousCsrf
from .db import DemoDB

STEP_UP = timedelta(minutes=5)
"""How recent a password entry must be for a sensitive action (and how long it counts)."""
MIN_PASSWORD = 10

SIGNUP_LIMITS: Mapping[Scope, int] = {"ip": 10}
"""Sign-up answers "that name is taken" at most 10 times per address before a lockout."""


@dataclass
class Demo:
    """What the routes share.

    Attributes:
        manager: the session manager.
        db: users and security events.
        login: sign-in and step-up throttle: per (user, address), per account
            and per address (:class:`~sessionward.guards.throttle_set.ThrottleSet`).
        signup: sign-up throttle, per address: each "name taken" answer counts.
        csrf: the anonymous forms' CSRF signer.
    """

    manager: AsyncSessionManager
    db: DemoDB
    login: ThrottleSet
    signup: ThrottleSet
    csrf: AnonymousCsrf


def demo_of(request: Request) -> Demo:
    """The app's :class:`Demo`."""
    demo: Demo = request.app.state.demo
    return demo


def client_ip(request: Request) -> str:
    """The peer address (the demo trusts no proxy header)."""
    return request.client.host if request.client else ""


def throttle_user(name: str) -> str | None:
    """The throttle's spelling of a user name: case-folded, ``None`` when empty."""
    return name.strip().lower() or None
