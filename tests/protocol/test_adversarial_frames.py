"""Adversarial frame shapes (issue 15): the depth check is exact on every valid
frame, never raises on garbage, and its cost cannot be made to grow faster than
the frame (it is built only from linear C passes, see framing.nesting_depth).

Fuzzed with hypothesis; ``make soak`` (HYPOTHESIS_PROFILE=soak) runs many more
examples of the same shapes.
"""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.core.errors import ProtocolError
from sessionward.protocol import framing
from sessionward.protocol.errors import FrameTooLarge
from sessionward.protocol.framing import FrameDecoder, nesting_depth, parse_frame


def true_depth(tree: object) -> int:
    if isinstance(tree, dict):
        return 1 + max((true_depth(v) for v in tree.values()), default=0)
    if isinstance(tree, list):
        return 1 + max((true_depth(v) for v in tree), default=0)
    return 0


hostile_text = st.text(alphabet='[]{}"\\\\ ,:u0123456789abc', max_size=40)
"""Strings full of what a depth scanner must get right: brackets, quotes, escapes."""


@st.composite
def nested(draw: st.DrawFn) -> object:
    """A JSON value with one spine of a drawn depth (around the cap) and hostile leaves."""
    depth = draw(st.integers(0, 40))
    leaf: object = draw(st.one_of(hostile_text, st.integers(-(10**30), 10**30).map(str),
                                  st.floats(allow_nan=False, allow_infinity=False)))
    tree: object = leaf
    for _ in range(depth):
        siblings = draw(st.lists(hostile_text, max_size=2))
        if draw(st.booleans()):
            tree = [*siblings, tree]
        else:
            tree = {**{f"{s}{i}": s for i, s in enumerate(siblings)}, draw(hostile_text): tree}
    return tree


@settings(deadline=None)
@given(nested())
def test_depth_is_exact_on_valid_frames(tree: object) -> None:
    """Valid JSON with brackets, quotes and escapes in its strings: refused
    exactly when nested deeper than 32 (the request object counts as 1)."""
    raw = orjson.dumps({"command": "ping", "x": tree})
    too_deep = true_depth({"x": tree}) > framing.MAX_DEPTH
    assert (nesting_depth(raw) > framing.MAX_DEPTH) == too_deep
    try:
        parse_frame(raw)
    except ProtocolError as exc:
        assert exc.code == "invalid_argument" and too_deep
    else:
        assert not too_deep


adversarial_piece = st.sampled_from([
    b"[", b"{", b"]", b"}", b'"', b'\\"', b"\\\\", b"\\", b'"[', b'"{', b"1", b"1e400",
    b"9" * 50, b",", b":", b"-", b" ", b"\xff", b"\x00",
])


@settings(deadline=None)
@given(st.lists(adversarial_piece, max_size=400), st.integers(1, 50))
def test_garbage_shapes_get_a_clean_answer(pieces: list[bytes], repeat: int) -> None:
    """Escaped quotes, unterminated strings, deep brackets, long numbers, stray
    bytes, repeated: always a ProtocolError (or a parsed object), nothing else."""
    raw = b"".join(pieces) * repeat
    try:
        parse_frame(raw[: framing.MAX_FRAME])
    except ProtocolError as exc:
        assert exc.code in ("invalid_json", "invalid_argument")


@settings(deadline=None)
@given(st.lists(st.sampled_from([b"[1]", b'{"a":"\\""}', b"[" * 40, b'"\\', b"{}"]),
                min_size=1, max_size=300), st.integers(1, 4096))
def test_many_small_frames_pipelined(frames: list[bytes], chunk: int) -> None:
    """Many small frames in one stream, cut anywhere: each comes out whole, in order."""
    stream = b"\n".join(frames) + b"\n"
    decoder = FrameDecoder()
    out: list[bytes] = []
    try:
        for i in range(0, len(stream), chunk):
            out += decoder.feed(stream[i:i + chunk])
    except FrameTooLarge:
        raise AssertionError("small frames never exceed the caps") from None
    assert out == frames
    for frame in out:
        try:
            parse_frame(frame)
        except ProtocolError as exc:
            assert exc.code in ("invalid_json", "invalid_argument")


def test_the_issue_frame_is_refused_as_too_deep() -> None:
    """The 65,434-byte frame of issue 15 ([×33, ", \\"×32,700): invalid_argument."""
    frame = b"[" * 33 + b'"' + b'\\"' * 32_700
    assert len(frame) == 65_434
    assert nesting_depth(frame) == framing.MAX_DEPTH + 1


def test_http_shapes() -> None:
    for line in (b"GET / HTTP/1.1", b"POST /x HTTP/1.1", b"Host: 127.0.0.1", b"host:x",
                 b"  HEAD / HTTP/1.0", b"OPTIONS * HTTP/1.1"):
        assert framing.looks_like_http(line), line
    for line in (b'{"command":"ping"}', b"[1]", b"GETTER", b"hostname"):
        assert not framing.looks_like_http(line), line
