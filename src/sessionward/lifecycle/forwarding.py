"""Following a periodically rotated-away record to its successor.

A rotated-away record is a sealed *tombstone* whose :class:`~sessionward.core.record.Forward`
names its successor's storage key, the key id that issued the successor ID
and a 32-byte nonce.  The successor ID is *derived*
(:func:`~sessionward.core.ids.successor_id` of the old ID and the nonce), so
no ID is ever at rest, not even encrypted: only a request that presents the
old ID can compute the new one.  Both the load path (a request still on the
old cookie) and the save path (a save that lost its compare-and-set to the
rotation) go through :func:`successor_of`.
"""

from __future__ import annotations

from ..core import ids
from ..core.keys import Key
from ..core.record import TOMBSTONE, Forward
from .context import Runtime
from .port import Io
from .sealer import Opened
from .session import Session


def successor_of(rt: Runtime, session_id: str, issuer: Key,
                 forward: Forward) -> tuple[str, Key] | None:
    """``(successor ID, the key that issued it)`` when ``forward`` really
    belongs to ``session_id``, else ``None``.

    Security: the derived ID must hash to the storage key the sealed forward
    names, so a tombstone can only ever lead its own ID to its own successor.
    """
    succ_key = rt.keyring.by_id.get(forward.kid)
    if succ_key is None:
        return None
    succ_id = ids.successor_id(session_id, forward.nonce, issuer)
    if ids.storage_key(succ_id, succ_key) != forward.key:
        return None
    return succ_id, succ_key


def in_grace(forward: Forward | None, now: float) -> bool:
    """The tombstone still forwards (not closed, grace not over)."""
    return forward is not None and not forward.closed and now < forward.grace_until


async def rebind_to_successor(rt: Runtime, io: Io, session: Session,
                              tomb: Opened) -> Opened | None:
    """During a save conflict the record was rotated away under us: within the
    grace, move ``session`` onto the successor (the response sends its new
    cookie) and return the successor's record; ``None`` when it cannot be
    followed (grace over, closed, unknown key, successor gone).

    Raises:
        StoreError: the store failed.
    """
    forward = tomb.meta.forward
    issuer = rt.keyring.by_id.get(session.meta.issuer)
    if (forward is None or not in_grace(forward, rt.clock()) or issuer is None
            or session._id is None):
        return None
    found = successor_of(rt, session._id, issuer, forward)
    succ = await rt.open_record(io, forward.key)
    if found is None or succ is None or succ.meta.kind == TOMBSTONE:
        return None
    succ_id, succ_key = found
    session.bind_identity(succ_id, ids.cookie_value(succ_id, succ_key), forward.key,
                          succ.stored.version)
    session.cookie_changed = True
    return succ
