"""IDs, cookie values and storage keys (T-01, T-06, CS-15)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import subprocess
import sys
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionward.core import ids
from sessionward.core.keys import KeyRing

RING = KeyRing.generate("t")


def _decode(session_id: str) -> bytes:
    return base64.urlsafe_b64decode(session_id + "=")


class TestGeneration:
    def test_100k_ids_unique_and_well_formed(self) -> None:
        """100,000 IDs from 8 threads: unique, 43 URL-safe chars, 256 bits (T-01)."""
        with ThreadPoolExecutor(8) as pool:
            batches = list(pool.map(lambda _: [ids.new_session_id() for _ in range(12_500)],
                                    range(8)))
        all_ids = [i for batch in batches for i in batch]
        assert len(set(all_ids)) == 100_000
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert all(len(i) == 43 and set(i) <= alphabet for i in all_ids)
        raw = [_decode(i) for i in all_ids]
        assert all(len(r) == 32 for r in raw)
        # Every bit position set 50 % +- 1 % over all 100,000 IDs.  Why 100,000: the
        # bound is then 6.3 sigma per position, so 256 positions never trip it by chance
        # (with 20,000 samples it would be 2.8 sigma and fail about once per run).
        for pos in range(32):
            histogram = Counter(r[pos] for r in raw)
            for bit in range(8):
                ones = sum(n for value, n in histogram.items() if value >> bit & 1)
                assert 0.49 < ones / 100_000 < 0.51, f"bit {pos * 8 + bit} biased: {ones}"
        blob = b"".join(raw[:10_000])
        assert len(zlib.compress(blob, 9)) > 0.99 * len(blob)
        assert len({i[:4] for i in all_ids}) > 10_000  # no common prefix

    def test_monobit_and_runs(self) -> None:
        """NIST SP 800-22 monobit and runs tests pass on 2 Mbit of ID output."""
        bits = "".join(f"{b:08b}" for _ in range(8_000) for b in _decode(ids.new_session_id()))
        n = len(bits)
        ones = bits.count("1")
        assert abs(ones - n / 2) < 3 * (n ** 0.5) / 2
        runs = 1 + sum(1 for a, b in itertools.pairwise(bits) if a != b)
        pi = ones / n
        expected = 2 * n * pi * (1 - pi)
        assert abs(runs - expected) < 4 * (2 * n) ** 0.5 * pi * (1 - pi) * 2

    def test_csprng_not_random_module(self) -> None:
        """Seeding the random module does not change the sequence (ASVS 3.2.4)."""
        random.seed(0)
        a = ids.new_session_id()
        random.seed(0)
        assert ids.new_session_id() != a

    def test_uses_secrets_module(self) -> None:
        """White-box: IDs come from secrets.token_bytes."""
        import inspect

        assert "secrets.token_bytes" in inspect.getsource(ids.new_session_id)

    def test_forked_processes_differ(self) -> None:
        """Parent and child produce different IDs after fork-like start-up."""
        code = "from sessionward.core import ids; print(ids.new_session_id())"
        outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout.strip() for _ in range(4)}
        assert len(outs) == 4 and ids.new_session_id() not in outs


class TestCookieParsing:
    def test_round_trip(self) -> None:
        sid = ids.new_session_id()
        parsed = ids.parse_cookie_value(ids.cookie_value(sid, RING.active), RING)
        assert parsed is not None and parsed[0] == sid and parsed[1] is RING.active

    def test_other_key_rejected(self) -> None:
        sid = ids.new_session_id()
        other = KeyRing.generate("t")
        assert ids.parse_cookie_value(ids.cookie_value(sid, other.active), RING) is None

    def test_old_key_still_accepted_after_rotation(self) -> None:
        old = KeyRing.generate("t")
        rotated = KeyRing([KeyRing.generate("t").active, old.active])
        sid = ids.new_session_id()
        parsed = ids.parse_cookie_value(ids.cookie_value(sid, old.active), rotated)
        assert parsed is not None and parsed[1].kid == old.active.kid

    @pytest.mark.parametrize("hostile", [
        "", "../../etc/passwd", "%2e%2e/", "'; DROP TABLE sw_sessions; --", "*", "a:b",
        "x" * 10_000, "A" * 66, "\x00" * 66, "a\r\nSet-Cookie: x", " " * 66, "é" * 66,
        None, 123, b"bytes",
    ])
    def test_hostile_values_rejected(self, hostile: object) -> None:
        """Wrong length, alphabet or type never parse (T-06)."""
        assert ids.parse_cookie_value(hostile, RING) is None

    def test_noncanonical_base64_rejected(self) -> None:
        """The last char of a 32-byte base64 carries 2 unused bits: only canonical values pass."""
        sid = ids.new_session_id()
        value = ids.cookie_value(sid, RING.active)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(sid[-1])
        tweaked = sid[:-1] + alphabet[last ^ 1] + value[43:]
        assert ids.parse_cookie_value(tweaked, RING) is None

    @given(st.text(max_size=100))
    def test_arbitrary_text_never_raises(self, text: str) -> None:
        assert ids.parse_cookie_value(text, RING) is None

    @given(st.integers(0, 65), st.integers(0, 255))
    def test_every_single_byte_flip_rejected(self, pos: int, value: int) -> None:
        cookie = ids.cookie_value(ids.new_session_id(), RING.active)
        ch = chr(value)
        if cookie[pos] == ch:
            return
        assert ids.parse_cookie_value(cookie[:pos] + ch + cookie[pos + 1:], RING) is None


class TestStorageKeys:
    def test_keyed_and_namespaced(self) -> None:
        sid = ids.new_session_id()
        raw = RING.active.raw
        a = ids.storage_key(sid, KeyRing.from_bytes([raw], "a").active)
        b = ids.storage_key(sid, KeyRing.from_bytes([raw], "b").active)
        assert a != b and ids.is_storage_key(a) and sid not in a

    def test_json_vectors_shape(self) -> None:
        """Storage keys are 64 lowercase hex chars (what stores validate)."""
        key = ids.storage_key(ids.new_session_id(), RING.active)
        assert json.loads(json.dumps(key)) == key and len(key) == 64
        assert not ids.is_storage_key(key.upper()) and not ids.is_storage_key(key[:-1])
        assert os.path.basename(key) == key
