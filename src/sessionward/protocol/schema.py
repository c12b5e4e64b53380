"""Per-command request schemas, the two roles and their command allowlists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import invalid


@dataclass(frozen=True, slots=True)
class Field:
    """One request field.

    Attributes:
        kind: ``str``, ``int``, ``bool``, ``num``, ``obj`` (a JSON object),
            ``any`` (any JSON value) or ``enum`` (a str in ``choices``).
        required: the field must be present.
        nullable: ``null`` is accepted (and means "absent").
        max_len: longest accepted string (characters).
        min_len: shortest accepted string.
        lo / hi: bounds of an ``int`` or ``num``.
        choices: allowed values of an ``enum``.
        schema: for ``obj``, the schema of its members (``None``: any members).
    """

    kind: str
    required: bool = False
    nullable: bool = False
    max_len: int = 256
    min_len: int = 0
    lo: float = 0
    hi: float = 2**53
    choices: tuple[str, ...] = ()
    schema: Mapping[str, Field] | None = None


Schema = Mapping[str, Field]

_HANDLE = Field("str", max_len=64)
_COOKIE = Field("str", max_len=128)
_CLIENT: Schema = {
    "ip": Field("str", nullable=True, max_len=64),
    "user_agent": Field("str", nullable=True, max_len=512),
    "correlation_id": Field("str", nullable=True, max_len=128),
}
_CLIENT_F = Field("obj", nullable=True, schema=_CLIENT)
_USER = Field("str", required=True, max_len=256, min_len=1)
_STATE: Schema = {
    "cookie": Field("str", nullable=True, max_len=128),
    "version": Field("int", nullable=True),
    "base": Field("obj", nullable=True),
    "data": Field("obj", nullable=True),
    "lease": Field("str", nullable=True, max_len=64),
    "client": _CLIENT_F,
}
"""The client's copy of a session, sent with every state-changing command."""

_EXPIRY: Schema = {
    "idle": Field("num", nullable=True, lo=1, hi=10 * 366 * 86_400),
    "at": Field("num", nullable=True, lo=0, hi=2**40),
}
_EXPIRY_F = Field("obj", nullable=True, schema=_EXPIRY)
"""A per-session expiry (``set_expiry``): idle seconds and/or an end time;
``null`` members restore the setting."""

COMMON: Schema = {
    "command": Field("str", required=True, max_len=64),
    "token": Field("str", required=True, max_len=512),
    "id": Field("any", nullable=True),
}

SCHEMAS: dict[str, Schema] = {
    "ping": {},
    "describe": {},
    "create": {"data": Field("obj", required=True), "client": _CLIENT_F,
               "reservation": Field("str", nullable=True, min_len=1, max_len=64),
               "create_empty": Field("bool"), "expiry": _EXPIRY_F},
    "reserve": {},
    "reset": {},
    "load": {"cookie": _COOKIE, "client": _CLIENT_F,
             "mode": Field("enum", choices=("read", "optimistic"))},
    "lock": {"cookie": _COOKIE, "client": _CLIENT_F},
    "unlock": {"lease": Field("str", required=True, max_len=64)},
    "touch": {"cookie": _COOKIE, "client": _CLIENT_F},
    "save": {**_STATE, "mode": Field("enum", choices=("optimistic", "exclusive")),
             "create_empty": Field("bool"), "expiry": _EXPIRY_F},
    "update": {**_STATE, "key": Field("str", required=True, max_len=256),
               "value": Field("any", nullable=True),
               "expected": Field("any", nullable=True),
               "expected_present": Field("bool", required=True)},
    "login": {**_STATE, "user": _USER, "level": Field("int", hi=1000),
              "pending": Field("bool"), "keep_data": Field("bool")},
    "rotate": {**_STATE, "reason": Field("str", max_len=64)},
    "elevate": {**_STATE, "duration": Field("num", lo=0, hi=86_400)},
    "logout": _STATE,
    "destroy": _STATE,
    "sessions_of": {"user": _USER, "current": _HANDLE},
    "revoke_user": {"user": _USER, "keep": _HANDLE},
    "revoke_device": {**_STATE, "handle": Field("str", required=True, max_len=64),
                      "max_auth_age": Field("num", lo=0, hi=86_400)},
    "tokens": {"action": Field("enum", required=True, choices=("issue", "consume", "revoke")),
               "purpose": Field("str", required=True, min_len=1, max_len=64),
               "subject": Field("str", nullable=True, min_len=1, max_len=256),
               "secret": Field("str", nullable=True, min_len=1, max_len=64),
               "ttl": Field("num", lo=1, hi=30 * 86_400),
               "data": Field("any", nullable=True, max_len=16_384)},
    "throttle": {"action": Field("enum", required=True,
                                 choices=("hit", "check", "require", "reset")),
                 "namespace": Field("str", min_len=1, max_len=32),
                 "key": Field("str", nullable=True, max_len=128),
                 "user": Field("str", nullable=True, max_len=256),
                 "ip": Field("str", nullable=True, max_len=64),
                 "attempts": Field("int", lo=1, hi=100),
                 "initial": Field("num", lo=1, hi=3600),
                 "cap": Field("num", lo=60, hi=86_400),
                 "multiplier": Field("num", lo=1.1, hi=10),
                 "quiet_period": Field("num", lo=60, hi=30 * 86_400)},
    # admin
    "list": {"user": Field("str", nullable=True, max_len=256), "expired": Field("bool"),
             "limit": Field("int", lo=1, hi=1000), "cursor": Field("str", nullable=True,
                                                                   max_len=512)},
    "show": {"handle": Field("str", required=True, max_len=64), "data": Field("bool")},
    "revoke": {"handle": Field("str", required=True, max_len=64)},
    "revoke-user": {"user": _USER, "keep": Field("str", nullable=True, max_len=64)},
    "revoke-all": {},
    "cleanup": {"batch": Field("int", lo=1, hi=10_000),
                "max_batches": Field("int", nullable=True, lo=1, hi=10_000)},
    "stats": {},
    "unlock-admin": {"key": Field("str", nullable=True, max_len=128),
                     "user": Field("str", nullable=True, max_len=256),
                     "ip": Field("str", nullable=True, max_len=64),
                     "throttle": Field("str", min_len=1, max_len=32)},
    "reseal": {"batch": Field("int", lo=1, hi=10_000),
               "cursor": Field("str", nullable=True, max_len=512)},
    "key-usage": {"kid": Field("str", required=True, min_len=1, max_len=16)},
    "reload-keys": {},
}

BOTH: Final = frozenset({"ping", "describe"})
APP_COMMANDS: Final = BOTH | frozenset({
    "create", "load", "save", "rotate", "login", "logout", "destroy", "touch", "lock",
    "unlock", "update", "elevate", "sessions_of", "revoke_user", "revoke_device", "tokens",
    "throttle", "reserve", "reset",
})
ADMIN_COMMANDS: Final = BOTH | frozenset({
    "list", "show", "revoke", "revoke-user", "revoke-all", "cleanup", "stats", "unlock",
    "reseal", "key-usage", "reload-keys",
})
RESENDABLE: Final = frozenset({
    "ping", "describe", "load", "touch", "save", "sessions_of", "list", "show", "stats",
    "key-usage",
})
"""Commands a client may send again when its connection broke after the request
was sent and before the answer came (a daemon restart): applying one twice is
the same as once — reads, and ``save``, whose compare-and-set fails the second
time and whose merge then finds the same change on both sides (no conflict,
nothing applied twice).  Everything else (``create``, ``login``, ``update``,
``tokens``...) is never resent: the app gets a clear
``StoreUnavailableError`` instead."""

ROLES: Final[Mapping[str, frozenset[str]]] = {"app": APP_COMMANDS, "admin": ADMIN_COMMANDS}


def schema_for(role: str, command: str) -> Schema:
    """The schema of ``command`` as ``role`` sends it.

    ``unlock`` means "release my lease" to ``app`` and "break a lock" to
    ``admin``; the table keys the admin flavour as ``unlock-admin``.
    """
    if role == "admin" and command == "unlock":
        return SCHEMAS["unlock-admin"]
    return SCHEMAS[command]


def allowed(role: str, command: object) -> bool:
    """Whether ``role`` may run ``command`` (exact membership, nothing else)."""
    return isinstance(command, str) and command in ROLES.get(role, frozenset())


def _check_kind(name: str, spec: Field, value: Any) -> None:
    kind = spec.kind
    ok = {
        "str": type(value) is str, "enum": type(value) is str, "bool": type(value) is bool,
        "int": type(value) is int, "num": type(value) in (int, float),
        "obj": type(value) is dict, "any": True,
    }.get(kind, False)
    if not ok:
        raise invalid(f"field {name!r} must be of type {'string' if kind == 'enum' else kind}")
    if type(value) is str and not spec.min_len <= len(value) <= spec.max_len:
        raise invalid(f"field {name!r} must be {spec.min_len} to {spec.max_len} characters")
    if kind == "enum" and value not in spec.choices:
        raise invalid(f"field {name!r} must be one of {', '.join(spec.choices)}")
    if kind in ("int", "num") and not spec.lo <= value <= spec.hi:
        raise invalid(f"field {name!r} must be between {spec.lo:g} and {spec.hi:g}")
    if kind == "obj" and spec.schema is not None:
        validate(value, spec.schema, prefix=f"{name}.")


def validate(doc: Mapping[str, Any], schema: Schema, *, prefix: str = "",
             extra: Schema | None = None) -> dict[str, Any]:
    """Check ``doc`` against ``schema`` (plus ``extra``, e.g. :data:`COMMON`).

    Returns:
        The fields of ``schema`` that are present and not null.

    Raises:
        ProtocolError: ``invalid_argument`` naming the first bad field.
    """
    return _validate(doc, {**(extra or {}), **schema}, schema, prefix)


def validate_request(doc: Mapping[str, Any], role: str, command: str) -> dict[str, Any]:
    """:func:`validate` of a request of ``role`` against its command's schema
    plus :data:`COMMON` (merged once, at import).

    Raises:
        ProtocolError: ``invalid_argument`` naming the first bad field.
    """
    name = "unlock-admin" if role == "admin" and command == "unlock" else command
    return _validate(doc, _REQUESTS[name], SCHEMAS[name], "")


def _validate(doc: Mapping[str, Any], every: Schema, schema: Schema,
              prefix: str) -> dict[str, Any]:
    for name in doc:
        if name not in every:
            raise invalid(f"unknown field {prefix}{name[:64]!r}")
    out: dict[str, Any] = {}
    for name, spec in every.items():
        value = doc.get(name)
        if value is None:
            if spec.required or (name in doc and not spec.nullable and spec.kind != "any"):
                raise invalid(f"field {prefix}{name!r} is required")
            continue
        _check_kind(prefix + name, spec, value)
        if name in schema:
            out[name] = value
    return out


_REQUESTS: dict[str, Schema] = {name: {**COMMON, **fields} for name, fields in SCHEMAS.items()}


def check_request_id(value: Any) -> str | int | None:
    """The request ``id`` to echo (a string of at most 128 characters or an
    integer), else ``None``.

    Raises:
        ProtocolError: ``invalid_argument`` for any other id.
    """
    if value is None:
        return None
    if (type(value) is str and len(value) <= 128) or (
        type(value) is int and abs(value) < 2**53
    ):
        return value
    raise invalid("field 'id' must be a string (<= 128 chars) or an integer")
