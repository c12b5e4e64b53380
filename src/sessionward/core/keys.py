"""Keys: the key file, the keyring and per-purpose derived keys.

A key file holds either one key (32 random bytes, base64, one line) or a
keyring (JSON: ``{"active": "<id>", "keys": {"<id>": "<base64>", ...}}``).
Every purpose key (encryption, lookup, cookie MAC, user index, tokens,
webhooks, fingerprints, successors) is derived with HKDF-SHA-256 from one
raw key, the purpose and the namespace, so two namespaces never accept each
other's sessions and no purpose key can stand in for another.

Security: key files are opened with ``O_NOFOLLOW`` and checked with
``fstat`` on the same descriptor (no check/use race): a symlink, a file
readable or writable by group/others, or a key of the wrong size is refused
with a message that says how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError

KEY_BYTES = 32
PURPOSES = (
    "encryption",
    "lookup",
    "cookie",
    "user",
    "token",
    "webhook",
    "fingerprint",
    "successor",
    "throttle",
)


def key_id_of(raw: bytes) -> str:
    """A short public identifier of a raw key (8 hex chars, not secret)."""
    return hashlib.sha256(b"sessionward/key-id\x00" + raw).hexdigest()[:8]


@dataclass(frozen=True, eq=False)
class Key:
    """One raw 256-bit key and the purpose keys derived from it.

    The raw bytes never appear in ``repr``.
    """

    raw: bytes = field(repr=False)
    namespace: str
    kid: str = ""

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise ConfigurationError(
                f"a sessionward key must be {KEY_BYTES} bytes, got {len(self.raw)}; "
                "create one with `sessionward keygen`"
            )
        if not self.kid:
            object.__setattr__(self, "kid", key_id_of(self.raw))

    def derive(self, purpose: str) -> bytes:
        """The 32-byte key for ``purpose`` in this key's namespace."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        return _hkdf(self.raw, f"sessionward/v1/{purpose}/{self.namespace}")

    @cached_property
    def aead(self) -> AESGCM:
        """AES-256-GCM bound to this key's encryption purpose key."""
        return AESGCM(self.derive("encryption"))

    @cached_property
    def lookup_key(self) -> bytes:
        return self.derive("lookup")

    @cached_property
    def cookie_key(self) -> bytes:
        return self.derive("cookie")

    @cached_property
    def user_key(self) -> bytes:
        return self.derive("user")

    @cached_property
    def successor_key(self) -> bytes:
        return self.derive("successor")

    @cached_property
    def fingerprint_key(self) -> bytes:
        return self.derive("fingerprint")

    def mac(self, purpose_key: bytes, *parts: bytes) -> bytes:
        """HMAC-SHA-256 over ``parts`` joined unambiguously (length-prefixed)."""
        mac = hmac.new(purpose_key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()


def _hkdf(raw: bytes, info: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=b"sessionward-hkdf-salt-v1",
        info=info.encode(),
    ).derive(raw)


class KeyRing:
    """The active key (encrypts and issues new IDs) plus older keys that
    still decrypt records and verify cookies, newest first.

    Nobody is logged out by a rotation: a session keeps the key that issued
    its ID for lookups until it rotates, and records sealed under an old key
    open until ``rotate-keys`` re-seals them.
    """

    def __init__(self, keys: Iterable[Key]) -> None:
        ordered = tuple(keys)
        if not ordered:
            raise ConfigurationError("a keyring needs at least one key")
        namespaces = {k.namespace for k in ordered}
        if len(namespaces) != 1:
            raise ConfigurationError("all keys of a keyring must share one namespace")
        kids = [k.kid for k in ordered]
        if len(set(kids)) != len(kids):
            raise ConfigurationError("duplicate key id in keyring; every key must be distinct")
        self.keys: tuple[Key, ...] = ordered
        self.by_id: dict[str, Key] = {k.kid: k for k in ordered}
        self.namespace = ordered[0].namespace

    @property
    def active(self) -> Key:
        """The key that seals new records and issues new IDs."""
        return self.keys[0]

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active.kid!r}, keys={[k.kid for k in self.keys]!r})"

    @classmethod
    def generate(cls, namespace: str = "default") -> KeyRing:
        """A fresh in-memory keyring (tests, demos)."""
        return cls([Key(secrets.token_bytes(KEY_BYTES), namespace)])

    @classmethod
    def from_bytes(cls, raws: Iterable[bytes], namespace: str = "default") -> KeyRing:
        """Keyring from raw keys, newest (active) first."""
        return cls(Key(r, namespace) for r in raws)

    def fingerprint(self, storage_key: str) -> str:
        """A short, stable, keyed fingerprint of a session for logs and events.

        Derived from the storage key (itself a keyed hash of the ID), so every
        code path, including admin paths that never see IDs, can compute it,
        and nothing about the ID can be recovered from it.
        """
        fp_key = self.keys[-1].fingerprint_key
        return hmac.digest(fp_key, storage_key.encode(), "sha256").hex()[:12]


# --------------------------------------------------------------------------- key files


def generate_key_material() -> str:
    """32 random bytes, base64 — the content of a new single-key file."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def write_key_file(path: str | os.PathLike[str], *, force: bool = False) -> str:
    """Create a new key file (mode 0600, parent directory 0700).

    Returns:
        the new key's id.

    Raises:
        ConfigurationError: the file exists and ``force`` is false, or the
            parent directory is insecure.
    """
    target = Path(path)
    parent = target.parent
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private_dir(parent)
    if target.is_symlink():
        raise ConfigurationError(f"refusing to write key file {target}: it is a symlink")
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    material = generate_key_material()
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ConfigurationError(
            f"key file {target} already exists; pass --force to overwrite it "
            "(every session sealed with it will be lost)"
        ) from None
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(material + "\n")
    return key_id_of(base64.b64decode(material))


def _check_private_dir(directory: Path) -> None:
    st = directory.stat()
    if st.st_mode & 0o077:
        raise ConfigurationError(
            f"directory {directory} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); fix with: chmod 700 {directory}"
        )


def read_secret_file(path: str | os.PathLike[str], *, what: str = "key file") -> bytes:
    """Read a small secret file safely.

    Opened with ``O_NOFOLLOW``; ``fstat`` on the same descriptor must show a
    regular file owned by this user with no group/other permission bits.

    Raises:
        ConfigurationError: missing, a symlink, not a regular file, wrong owner,
            or group/world accessible — the message says how to fix it.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY)
    except FileNotFoundError:
        raise ConfigurationError(
            f"{what} {p} does not exist; create one with `sessionward keygen --out {p}`"
        ) from None
    except OSError as exc:
        if exc.errno in (40, 62):  # ELOOP: O_NOFOLLOW hit a symlink
            raise ConfigurationError(
                f"{what} {p} is a symlink; refusing to follow it — point to the real file"
            ) from None
        raise ConfigurationError(f"cannot open {what} {p}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigurationError(f"{what} {p} is not a regular file")
        if st.st_uid != os.geteuid():
            raise ConfigurationError(
                f"{what} {p} is owned by uid {st.st_uid}, not by this user "
                f"(uid {os.geteuid()}); fix with: chown {os.geteuid()} {p}"
            )
        if st.st_mode & 0o077:
            raise ConfigurationError(
                f"{what} {p} is accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); fix with: chmod 600 {p}"
            )
        if st.st_size > 1 << 16:
            raise ConfigurationError(f"{what} {p} is too large to be a key file")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_key_material(content: bytes, namespace: str, *, source: str = "key file") -> KeyRing:
    """Parse a single-key file or a JSON keyring into a :class:`KeyRing`.

    Raises:
        ConfigurationError: malformed content or a key of the wrong size.
    """
    text = content.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        return _parse_keyring_json(text, namespace, source)
    return KeyRing([Key(_b64_key(text, source), namespace)])


def _b64_key(text: str, source: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{source} does not hold a base64 key; create one with `sessionward keygen`"
        ) from None
    if len(raw) != KEY_BYTES:
        raise ConfigurationError(
            f"{source} holds a {len(raw)}-byte key; sessionward needs exactly {KEY_BYTES} "
            "random bytes — create one with `sessionward keygen`"
        )
    return raw


def _parse_keyring_json(text: str, namespace: str, source: str) -> KeyRing:
    try:
        doc = json.loads(text)
        active = doc["active"]
        entries = doc["keys"]
        if not isinstance(entries, dict) or not isinstance(active, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f'{source} is not a valid keyring: expected {{"active": ID, "keys": {{ID: base64}}}}'
        ) from None
    if active not in entries:
        raise ConfigurationError(f"{source}: active key {active!r} is not in its keys")
    order = [active, *[kid for kid in entries if kid != active]]
    keys = []
    for kid in order:
        raw = _b64_key(str(entries[kid]), f"{source} key {kid!r}")
        keys.append(Key(raw, namespace, kid=str(kid)))
    return KeyRing(keys)


def load_keyring(path: str | os.PathLike[str], namespace: str = "default") -> KeyRing:
    """Read and validate a key file (single key or keyring).

    Raises:
        ConfigurationError: see :func:`read_secret_file` and :func:`parse_key_material`.
    """
    return parse_key_material(read_secret_file(path), namespace, source=f"key file {path}")


def keyring_document(ring: KeyRing) -> str:
    """Serialize a keyring to its JSON file form (active first)."""
    doc = {
        "active": ring.active.kid,
        "keys": {k.kid: base64.b64encode(k.raw).decode() for k in ring.keys},
    }
    return json.dumps(doc, indent=2) + "\n"
