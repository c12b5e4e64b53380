"""Three-way merge of session data after an optimistic-save conflict (pure).

Given the data as this request loaded it (*base*), as this request wants to
write it (*ours*) and as it now is in the store (*theirs*), changes to
disjoint keys are combined; a key changed differently on both sides is a
conflict.  Values are compared by their exact JSON bytes, so ``1`` and
``True``, or ``1`` and ``1.0``, are different values.
"""

from __future__ import annotations

from typing import Any

from . import codec

_ABSENT = object()


def _per_key(tree: dict[str, Any]) -> dict[str, bytes]:
    return {k: codec.dumps(v) for k, v in tree.items()}


def changed_keys(base: dict[str, bytes], other: dict[str, bytes]) -> set[str]:
    """Keys set, changed or deleted going from ``base`` to ``other``."""
    return {k for k in base.keys() | other.keys() if base.get(k) != other.get(k)}


def three_way(base_json: bytes, ours_json: bytes, theirs_json: bytes) -> tuple[bytes, set[str]]:
    """Merge ``ours`` into ``theirs`` relative to ``base``.

    Returns:
        ``(merged_json, conflicting_keys)``; when ``conflicting_keys`` is not
        empty the merged bytes must not be written.
    """
    base = _per_key(codec.loads(base_json))
    ours_tree = codec.loads(ours_json)
    ours = _per_key(ours_tree)
    theirs_tree = codec.loads(theirs_json)
    theirs = _per_key(theirs_tree)
    mine = changed_keys(base, ours)
    conflicts = {k for k in mine & changed_keys(base, theirs) if ours.get(k) != theirs.get(k)}
    if conflicts:
        return theirs_json, conflicts
    merged = dict(theirs_tree)
    for key in mine:
        if key in ours_tree:
            merged[key] = ours_tree[key]
        else:
            merged.pop(key, None)
    return codec.dumps(merged), set()


def pending_changes(base_json: bytes, local: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """This request's unsaved changes relative to ``base_json``.

    Returns:
        ``(set_values, deleted_keys)`` where ``set_values`` holds encoded trees.
    """
    base = _per_key(codec.loads(base_json))
    ours_tree = codec.encode_data(local)
    ours = _per_key(ours_tree)
    keys = changed_keys(base, ours)
    return {k: ours_tree[k] for k in keys if k in ours_tree}, {k for k in keys if k not in ours}
