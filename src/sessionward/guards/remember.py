"""Remember-me: persistent login with split tokens, rotated on every use.

The cookie value is ``<selector>.<validator>`` (16 + 32 random bytes,
URL-safe base64).  The store holds, per token:

* ``rm:s:<hex>`` — ``hex = Key.mac(K_token, "sessionward/remember/selector",
  selector)``; a sealed (AES-256-GCM) document with the user, the family
  id, the *keyed hash* of the validator and, once used, when it was
  rotated.  The validator itself is never stored; it is compared in
  constant time (``hmac.compare_digest``);
* ``rm:f:<family>`` — the family marker (32 random hex characters): every
  token descending from one login shares it; deleting it kills them all;
* ``rm:u:<hex>`` — the user's family list (keyed hash of the user id), so
  :meth:`RememberMe.revoke_user` costs O(that user's families).

Every successful :meth:`RememberMe.use` marks the presented token as
rotated (compare-and-set) and issues a successor in the same family.  A
rotated token that comes back later than ``reuse_grace`` means two parties
hold copies of it: the family is revoked, **every session of the user**
is revoked (``manager.revoke_user``) and ``token_reused`` fires.  Within
``reuse_grace`` (parallel requests of one browser carrying the same cookie)
the loser simply gets ``None``.

New entries use ``keyring.active``; lookups try every ring key.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from ..core.client import ClientInfo
from ..core.clock import Clock
from ..core.errors import CodecError, CorruptEntryError, SessionConflictError
from ..core.keys import Key, KeyRing
from ..stores.base import SessionStore
from .tokens import kv_hash, open_value, seal_value


class _RequestSession(Protocol):
    @property
    def client(self) -> ClientInfo | None: ...


S = TypeVar("S", bound=_RequestSession)


class SessionHost(Protocol):
    """Protocol: what :class:`RememberMe` needs of a session manager (the
    embedded :class:`~sessionward.SessionManager` is one)."""

    @property
    def store(self) -> SessionStore: ...
    @property
    def keyring(self) -> KeyRing: ...
    @property
    def clock(self) -> Clock: ...
    def emit(self, name: str, **fields: Any) -> None: ...
    def login(self, session: Any, user: str, *, level: int = ..., fresh: bool = ...
              ) -> Any: ...
    def revoke_user(self, user: str) -> int: ...

SELECTOR_BYTES = 16
VALIDATOR_BYTES = 32
MAX_FAMILIES = 32
"""Families kept per user; issuing one more revokes the oldest."""
_COOKIE_RE = re.compile(r"([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")
_FAMILY_RE = re.compile(r"[0-9a-f]{32}")
_SELECTOR = b"sessionward/remember/selector"
_VALIDATOR = b"sessionward/remember/validator"
_USER = b"sessionward/remember/user"
_RETRIES = 50


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _parse(cookie_value: object) -> tuple[str, str] | None:
    if not isinstance(cookie_value, str):
        return None
    match = _COOKIE_RE.fullmatch(cookie_value)
    return (match.group(1), match.group(2)) if match else None


class _Token:
    """A selector entry found in the store (internal)."""

    def __init__(self, key: Key, kv_key: str, doc: dict[str, Any], version: int) -> None:
        self.key, self.kv_key, self.doc, self.version = key, kv_key, doc, version

    @property
    def user(self) -> str:
        return str(self.doc["u"])

    @property
    def family(self) -> str:
        return str(self.doc["f"])


class RememberMe:
    """Persistent-login tokens for one :class:`~sessionward.SessionManager`.

    Args:
        manager: supplies the store, keyring, clock and event hub, and
            revokes the user's sessions on theft.
        ttl: lifetime of each token; every use issues a fresh one (1 h..400 d).
        reuse_grace: how long a just-rotated token may be presented again
            (parallel requests) without counting as theft (0..60 s).

    Raises:
        ValueError: ``ttl`` or ``reuse_grace`` out of range.
    """

    def __init__(self, manager: SessionHost, *, ttl: timedelta | float = timedelta(days=30),
                 reuse_grace: timedelta | float = timedelta(seconds=5)) -> None:
        self.manager = manager
        self.ttl = _seconds(ttl)
        self.reuse_grace = _seconds(reuse_grace)
        if not 3600 <= self.ttl <= 400 * 86400:
            raise ValueError("remember-me ttl must be between 1 hour and 400 days")
        if not 0 <= self.reuse_grace <= 60:
            raise ValueError("remember-me reuse_grace must be between 0 and 60 seconds")
        self.store = manager.store

    # ------------------------------------------------------------- issuing

    def issue(self, user: str, *, client: ClientInfo | None = None) -> str:
        """Start a new family for ``user``; returns the cookie value.

        Security: the value is a bearer secret; send it only in a
        ``Secure; HttpOnly`` cookie.

        Raises:
            ValueError: empty user id.
            StoreError: backend failure.
        """
        if not isinstance(user, str) or not user:
            raise ValueError("user must be a non-empty string")
        now = self.manager.clock()
        family = secrets.token_hex(16)
        self.store.kv_create(f"rm:f:{family}", b"live", expires_at=now + self.ttl)
        self._index_add(user, family, now)
        cookie = self._issue_in_family(user, family, now)
        self.manager.emit("token_issued", user=user, client=client, purpose="remember_me")
        return cookie

    def _issue_in_family(self, user: str, family: str, now: float) -> str:
        key = self.manager.keyring.active
        selector = secrets.token_urlsafe(SELECTOR_BYTES)
        validator = secrets.token_urlsafe(VALIDATOR_BYTES)
        kv_key = self._selector_key(key, selector)
        doc = {"u": user, "f": family, "v": self._validator_hash(key, selector, validator),
               "r": 0.0, "e": now + self.ttl}
        if not self.store.kv_create(kv_key, seal_value(key, kv_key, doc),
                                    expires_at=now + self.ttl):
            raise SessionConflictError("remember-me selector collision (2^-128 event)")
        return f"{selector}.{validator}"

    @staticmethod
    def _selector_key(key: Key, selector: str) -> str:
        return "rm:s:" + kv_hash(key, _SELECTOR, selector.encode())

    @staticmethod
    def _validator_hash(key: Key, selector: str, validator: str) -> str:
        return kv_hash(key, _VALIDATOR, selector.encode(), validator.encode())

    # ---------------------------------------------------------------- using

    def use(self, cookie_value: object, *, client: ClientInfo | None = None
            ) -> tuple[str, str] | None:
        """Redeem a remember-me cookie: ``(user, new_cookie_value)`` or ``None``.

        The presented token is spent; set the new value in the response.
        ``None`` covers malformed, unknown, expired, revoked and forged
        values, a parallel request that lost the race, and theft (then the
        family and all the user's sessions are revoked, ``token_reused``).

        Raises:
            StoreError: backend failure (never ``None`` for an outage).
        """
        parsed = _parse(cookie_value)
        if parsed is None:
            return None
        for _attempt in range(_RETRIES):
            token = self._find(*parsed)
            if token is None or not self._family_live(token.family):
                return None
            if token.doc.get("r"):
                self._presented_rotated(token, client)
                return None
            result = self._rotate(token, client)
            if result is not None:
                return result
        return None

    def _find(self, selector: str, validator: str) -> _Token | None:
        """The verified selector entry, or ``None`` (unknown or wrong validator)."""
        for key in self.manager.keyring.keys:
            kv_key = self._selector_key(key, selector)
            try:
                entry = self.store.kv_get(kv_key)
                if entry is None:
                    continue
                doc = open_value(key, kv_key, entry[0])
            except (CodecError, CorruptEntryError):  # wrong type or shape: refused
                return None
            expected = str(doc.get("v", ""))
            if not hmac.compare_digest(expected, self._validator_hash(key, selector, validator)):
                self.manager.emit("remember_me_used", outcome="denied", reason="bad_validator")
                return None
            return _Token(key, kv_key, doc, entry[1])
        return None

    def _family_live(self, family: str) -> bool:
        return self.store.kv_get(f"rm:f:{family}") is not None

    def _rotate(self, token: _Token, client: ClientInfo | None) -> tuple[str, str] | None:
        """Spend ``token`` and issue its successor; ``None`` if another request won.

        Race timeline (two requests A and B present the same live token)::

            t0  A and B read the selector entry (version v, not rotated)
            t1  A's CAS(v -> rotated) wins; B's CAS fails
            t2  A issues the successor; B re-reads: rotated within the grace
                -> B gets None (no alarm), A's response carries the new cookie
        =>  exactly one successor per token.
        """
        now = self.manager.clock()
        doc = dict(token.doc, r=now)
        sealed = seal_value(token.key, token.kv_key, doc)
        if not self.store.kv_cas(token.kv_key, sealed, expected_version=token.version,
                                 expires_at=float(doc["e"])):
            return None
        cookie = self._issue_in_family(token.user, token.family, now)
        self._extend_family(token.family, now)
        self.manager.emit("remember_me_used", user=token.user, client=client,
                          family=token.family[:12])
        return token.user, cookie

    def _extend_family(self, family: str, now: float) -> None:
        entry = self.store.kv_get(f"rm:f:{family}")
        if entry is not None:  # a lost CAS means a concurrent revoke or use: nothing to do
            self.store.kv_cas(f"rm:f:{family}", b"live", expected_version=entry[1],
                              expires_at=now + self.ttl)

    def _presented_rotated(self, token: _Token, client: ClientInfo | None) -> None:
        """A spent token came back: a parallel request, or theft (revoke everything)."""
        now = self.manager.clock()
        if now - float(token.doc["r"]) <= self.reuse_grace:
            self.manager.emit("remember_me_used", user=token.user, client=client,
                              outcome="failure", reason="concurrent_use")
            return
        self.revoke_family(token.family)
        ended = self.manager.revoke_user(token.user)
        self.manager.emit("token_reused", user=token.user, client=client, outcome="denied",
                          reason="rotated_remember_me_token", family=token.family[:12],
                          sessions_revoked=ended)

    # ------------------------------------------------------------ recipes

    def resume(self, session: S, cookie_value: object) -> str | None:
        """Log ``session`` in from a remember-me cookie; returns the new cookie value.

        The login gets ``level=0`` and no ``auth_time``, so
        ``require_recent_auth`` still asks for the password (a remembered
        login is not a fresh authentication).

        Raises:
            StoreError: backend failure.
            SessionLimitError: the user is at ``max_sessions_per_user`` (reject policy).
        """
        result = self.use(cookie_value, client=session.client)
        if result is None:
            return None
        user, cookie = result
        self.manager.login(session, user, level=0, fresh=False)
        return cookie

    # ------------------------------------------------------------ revoking

    def family_of(self, cookie_value: object) -> str | None:
        """The family id of a valid cookie value (for "log out this device")."""
        parsed = _parse(cookie_value)
        token = self._find(*parsed) if parsed else None
        return token.family if token is not None else None

    def revoke(self, cookie_value: object) -> bool:
        """Revoke the family of this cookie (logout on this device)."""
        family = self.family_of(cookie_value)
        return family is not None and self.revoke_family(family)

    def revoke_family(self, family: str) -> bool:
        """Kill every token of ``family``; True if it was live.

        Raises:
            StoreError: backend failure.
        """
        if not isinstance(family, str) or not _FAMILY_RE.fullmatch(family):
            return False
        return self.store.kv_delete(f"rm:f:{family}")

    def revoke_user(self, user: str) -> int:
        """Kill every remember-me family of ``user``; returns how many were live.

        Raises:
            StoreError: backend failure.
        """
        count = 0
        for key in self.manager.keyring.keys:
            raw = self.store.kv_take(self._user_key(key, user))
            for family in _families(raw):
                count += self.revoke_family(family)
        return count

    # ---------------------------------------------------------- user index

    @staticmethod
    def _user_key(key: Key, user: str) -> str:
        return "rm:u:" + kv_hash(key, _USER, user.encode())

    def _index_add(self, user: str, family: str, now: float) -> None:
        """Append ``family`` to the user's list (CAS loop; evicts the oldest)."""
        kv_key = self._user_key(self.manager.keyring.active, user)
        for _attempt in range(_RETRIES):
            entry = self.store.kv_get(kv_key)
            families = [f for f in _families(entry[0] if entry else None) if self._family_live(f)]
            families.append(family)
            evicted, families = families[:-MAX_FAMILIES], families[-MAX_FAMILIES:]
            value = json.dumps(families).encode()
            if entry is None:
                done = self.store.kv_create(kv_key, value, expires_at=now + self.ttl)
            else:
                done = self.store.kv_cas(kv_key, value, expected_version=entry[1],
                                         expires_at=now + self.ttl)
            if done:
                for old in evicted:
                    self.revoke_family(old)
                return
        raise SessionConflictError("remember-me user index kept changing; gave up")


def _families(raw: bytes | None) -> Iterator[str]:
    if raw is None:
        return
    try:
        doc = json.loads(raw)
    except ValueError:
        return
    if isinstance(doc, list):
        yield from (f for f in doc if isinstance(f, str) and _FAMILY_RE.fullmatch(f))
