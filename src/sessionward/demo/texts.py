"""The words the demo shows: event labels and details, notices, plurals.

Nothing here is built from what a client typed except user names and device
labels, and the templates escape those.  Reason codes of the library's
events (``periodic``, ``idle``, ``revoke_user``...) never reach a page as
they are: :func:`event_detail` turns each into a sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

EVENT_LABELS: Mapping[str, str] = {
    "signup": "Account created",
    "login": "Signed in",
    "login_failed": "Failed sign-in attempt",
    "throttled": "Sign-in temporarily locked",
    "logout": "Signed out",
    "rotated": "Session ID renewed",
    "elevated": "Password confirmed",
    "reauth_required": "Password confirmation requested",
    "revoked": "Session ended",
    "device_signed_out": "Device signed out",
    "others_signed_out": "Signed out everywhere else",
    "expired": "Session expired",
    "password_changed": "Password changed",
    "zombie_accessed": "Old session ID reused (possible theft)",
    "profile_changed": "Session used from a new network or browser",
}
"""Event name -> what the events page calls it."""

_REASONS: Mapping[tuple[str, str], str] = {
    ("rotated", "periodic"): "Routine renewal of the session ID (every 15 minutes of use)",
    ("rotated", "privilege_change"): "Renewed after a change of privileges",
    ("rotated", "profile_changed"): "Renewed because the network or browser changed",
    ("elevated", ""): "Confirmed for 5 minutes of sensitive actions",
    ("reauth_required", "auth_too_old"): "A sensitive action needed your password again",
    ("expired", "idle"): "Unused for longer than the idle timeout",
    ("expired", "expired"): "Reached its maximum lifetime",
    ("throttled", "lockout"): "Too many failed attempts; further tries wait",
    ("revoked", "admin"): "Ended by an administrator",
    ("revoked", "revoke_all"): "Ended by an administrator (every session)",
    ("revoked", "session_limit"): "Ended to stay within the per-user session limit",
    ("revoked", "zombie_family"): "Ended after an old session ID was reused",
    ("revoked", "profile_denied"): "Ended because the network or browser changed",
    ("zombie_accessed", "zombie"): "A rotated-away session ID was used after its grace",
    ("profile_changed", "log"): "Recorded; the session continues",
    ("profile_changed", "rotate"): "The session continues under a new ID",
    ("profile_changed", "deny"): "The session was ended",
}

NOTICES: Mapping[str, str] = {
    "signed_out": "You are signed out.",
    "ended": "Your session on this device has ended: it was signed out from another device "
             "or by a password change, or it was unused for too long. Sign in again.",
    "signin": "Sign in to see that page.",
}
"""``/login?notice=<name>`` -> the message above the form (a fixed set: nothing echoed)."""


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``"1 session"``, ``"2 sessions"``, ``"0 devices"``."""
    word = noun if count == 1 else (plural_form or f"{noun}s")
    return f"{count} {word}"


def device_list(labels: Sequence[str]) -> str:
    """``"Firefox on Linux, Chrome on Android and Safari on iPadOS"``."""
    if len(labels) <= 1:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} and {labels[-1]}"


def event_detail(name: str, reason: str, device: str = "") -> str:
    """A sentence for event ``name`` with the library's ``reason`` code.

    ``device`` is the label of the device the event happened on, when known.
    An unknown reason never shows its code: the detail is then just the device.
    """
    text = _REASONS.get((name, reason)) or _REASONS.get((name, ""), "")
    if device and text:
        return f"{text} · {device}"
    return text or device
