"""Key files: creation modes, refusal of insecure files, keyrings, derivation."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from sessionward.core.errors import ConfigurationError
from sessionward.core.keys import (
    KeyRing,
    keyring_document,
    load_keyring,
    parse_key_material,
    write_key_file,
)


def test_write_key_file_modes(tmp_path: Path) -> None:
    """keygen writes 32 random bytes (base64), 0600, in a 0700 directory."""
    os.umask(0o000)
    try:
        path = tmp_path / "keys" / "session.key"
        kid = write_key_file(path)
    finally:
        os.umask(0o022)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(base64.b64decode(path.read_text())) == 32
    assert load_keyring(path).active.kid == kid


def test_refuses_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "k" / "session.key"
    write_key_file(path)
    before = path.read_text()
    with pytest.raises(ConfigurationError, match="--force"):
        write_key_file(path)
    assert path.read_text() == before
    write_key_file(path, force=True)
    assert path.read_text() != before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_world_access_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k" / "session.key"
    write_key_file(path)
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_keyring(path)


def test_symlink_refused(tmp_path: Path) -> None:
    real = tmp_path / "k" / "real.key"
    write_key_file(real)
    link = tmp_path / "k" / "link.key"
    link.symlink_to(real)
    with pytest.raises(ConfigurationError, match="symlink"):
        load_keyring(link)


@pytest.mark.parametrize("content", [b"", b"not base64!!", base64.b64encode(b"short"),
                                     base64.b64encode(b"x" * 64)])
def test_wrong_size_or_garbage_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(ConfigurationError, match="keygen"):
        load_keyring(path)


def test_missing_file_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="sessionward keygen"):
        load_keyring(tmp_path / "nope.key")


def test_keyring_json(tmp_path: Path) -> None:
    """A keyring file lists several keys with one active; order newest-first."""
    a, b = KeyRing.generate(), KeyRing.generate()
    ring = KeyRing([b.active, a.active])
    text = keyring_document(ring)
    parsed = parse_key_material(text.encode(), "default")
    assert [k.kid for k in parsed.keys] == [b.active.kid, a.active.kid]
    doc = json.loads(text)
    doc["active"] = "missing"
    with pytest.raises(ConfigurationError, match="not in its keys"):
        parse_key_material(json.dumps(doc).encode(), "default")


def test_purpose_keys_are_distinct_and_namespaced() -> None:
    raw = KeyRing.generate().active.raw
    k1 = KeyRing.from_bytes([raw], "a").active
    k2 = KeyRing.from_bytes([raw], "b").active
    purposes = ["encryption", "lookup", "cookie", "user", "token", "webhook"]
    derived = {k1.derive(p) for p in purposes} | {k2.derive(p) for p in purposes}
    assert len(derived) == 12 and raw not in derived
    assert "raw" not in repr(k1) and repr(KeyRing([k1])).startswith("KeyRing(active=")
