"""The client-side view of a daemon session: :class:`RemoteSession`, and the
conversions between the daemon's session views and library objects.

Cost per request (issue 16): a view's ``data`` is decoded by the codec only
when its JSON holds a tagged value; the bytes serialised for that check are
the change-detection baseline, and a save sends its baseline (``base``) as
those bytes unparsed (:class:`orjson.Fragment`).
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from ..core import codec
from ..core.client import ClientInfo
from ..core.record import SessionMeta
from ..lifecycle.session import Session

_TAG = codec.TAG.encode()


class RemoteSession(Session):
    """A :class:`Session` whose record lives in the daemon.

    Never holds the raw ID; ``cookie_value`` is still the bearer secret.

    Attributes:
        lease: the daemon's lease id in exclusive mode.
        pending_expiry: a :meth:`RemoteSessionManager.set_expiry` request not
            yet sent (``{"idle": seconds or None, "at": POSIX seconds or None}``).
    """

    _fingerprint = ""
    lease: str | None = None
    pending_expiry: dict[str, float | None] | None = None

    @property
    def fingerprint(self) -> str:
        """Short keyed fingerprint for logs, as computed by the daemon."""
        return self._fingerprint


def meta_from(view: dict[str, Any]) -> SessionMeta:
    """The :class:`SessionMeta` of a daemon view (the client-visible fields)."""
    m = view["meta"]
    return SessionMeta(
        created=m["created"], last_seen=m["last_seen"], idle=m["idle"], absolute=m["absolute"],
        user=m["user"], auth_time=m["auth_time"], auth_level=m["auth_level"],
        pending=m["pending"], elevated_until=m["elevated_until"], rotated_at=m["rotated_at"],
        profiles=list(m["profiles"]),
    )


def client_doc(client: ClientInfo | None) -> dict[str, Any] | None:
    """The wire form of a :class:`ClientInfo`."""
    if client is None:
        return None
    return {"ip": client.ip, "user_agent": client.user_agent,
            "correlation_id": client.correlation_id}


def decode_tree(tree: Any) -> tuple[dict[str, Any], bytes]:
    """``(data, its JSON bytes)`` of a data tree from the daemon.

    A tree whose bytes hold neither the codec's tag marker nor a ``\\u``
    escape has nothing to rebuild: it is the data already.

    Raises:
        CodecError: not a mapping, or a malformed tagged value.
    """
    raw = orjson.dumps(tree)
    if type(tree) is dict and _TAG not in raw and b"\\u" not in raw:
        return cast(dict[str, Any], tree), raw
    return codec.decode_data(tree), raw


def apply_view(session: Session, view: dict[str, Any]) -> None:
    """Update ``session`` in place from a daemon view.

    Raises:
        CodecError: the view's data is malformed.
    """
    session.meta = meta_from(view)
    data, raw = decode_tree(view["data"])
    session.replace_data(data)
    session.bind_identity(None, view["cookie"], view["handle"], view["version"])
    base = view.get("base")  # sent by daemons before 1.1
    session.mark_stored(raw if base is None else codec.dumps(base))
    session.cookie_changed = session.cookie_changed or bool(view["cookie_changed"])
    session.ended = bool(view["ended"])
    session.lock_token = view.get("lease")
    if isinstance(session, RemoteSession):
        session._fingerprint = view["fingerprint"]
        session.lease = session.lock_token
        session.pending_expiry = None


def state_of(session: Session, tree: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the daemon needs to re-create ``session`` (``tree``: its data,
    already encoded by the caller).

    Raises:
        TypeError: a value outside the codec's allowlist (names the key).
    """
    state: dict[str, Any] = {
        "data": tree if tree is not None else codec.encode_data(session.data_snapshot()),
        "client": client_doc(session.client)}
    if session.lock_token is not None:
        state["lease"] = session.lock_token
    elif session.cookie_value is not None:
        state.update(cookie=session.cookie_value, version=session.version,
                     base=orjson.Fragment(session.loaded_json or b"{}"))
    expiry = session.pending_expiry if isinstance(session, RemoteSession) else None
    if expiry is not None:
        state["expiry"] = expiry
    return state
