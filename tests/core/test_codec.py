"""The codec: exact round trips of the allowlist, clear errors, no code execution."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from sessionward.core import codec
from sessionward.core.errors import CodecError


def round_trip(data: dict[str, Any]) -> dict[str, Any]:
    return codec.decode_data(codec.loads(codec.dumps(codec.encode_data(data))))


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


EXAMPLES: list[Any] = [
    datetime(2026, 1, 2, 3, 4, 5, 6), datetime(2026, 1, 2, tzinfo=UTC),
    datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
    date(2026, 1, 2), time(3, 4, 5, 6), timedelta(days=-1, seconds=5, microseconds=7),
    b"\x00\xffbytes", {1, 2, 3}, frozenset({"a"}), (1, (2, [3])), Decimal("1.10"),
    Decimal("-1E+10"), UUID("12345678-1234-5678-1234-567812345678"), 2**100, -(2**70),
    float("inf"), float("-inf"), {"__sw": "not a tag"}, [None, True, 1.5, "x"],
    Markup("<em>flash</em>"), Markup(""), [Markup("<b>"), "<b>"],
]


@pytest.mark.parametrize("value", EXAMPLES, ids=[type(v).__name__ + str(i)
                                                  for i, v in enumerate(EXAMPLES)])
def test_allowlisted_types_round_trip_exactly(value: Any) -> None:
    """Each allowlisted type comes back equal and of the same type."""
    assert same(round_trip({"k": value})["k"], value)


def test_markup_stays_markup_and_plain_text_stays_str() -> None:
    """Flask's flash(Markup(...)): the safe-HTML mark survives; plain str is not promoted."""
    out = round_trip({"m": Markup("<em>Testing</em>"), "s": "<em>Testing</em>"})
    assert type(out["m"]) is Markup and out["m"] == Markup("<em>Testing</em>")
    assert type(out["s"]) is str
    assert codec.encode_data({"m": Markup("<i>")}) == {"m": {"__sw": "mu", "v": "<i>"}}


def test_nan_round_trips() -> None:
    out = round_trip({"k": float("nan")})["k"]
    assert out != out


class Color:
    pass


@pytest.mark.parametrize("value", [Color(), object(), {1: "int key"}, lambda: 1,
                                   datetime.now(UTC).astimezone().tzinfo])
def test_other_types_raise_naming_the_key(value: Any) -> None:
    """Anything outside the allowlist is a TypeError naming the session key."""
    with pytest.raises(TypeError, match="'prefs'"):
        codec.encode_data({"prefs": {"x": [value]}})


def test_enum_subclass_refused() -> None:
    """Subclasses do not round-trip, so they are refused."""
    from enum import IntEnum

    class Level(IntEnum):
        A = 1

    with pytest.raises(TypeError, match="'lvl'"):
        codec.encode_data({"lvl": Level.A})


@pytest.mark.parametrize("tree", [
    {"k": {"__sw": "pickle", "v": "gASV"}}, {"k": {"__sw": "dt", "v": "not a date"}},
    {"k": {"__sw": "b", "v": "!!!"}}, {"k": {"__sw": 5}}, {"k": {"__sw": "f", "v": "1e5"}},
    {"k": {"__sw": "int", "v": "9" * 5000}}, {"k": {"__sw": "map", "v": [[1, 2]]}},
    {"k": {"__sw": "mu", "v": ["<b>"]}}, {"k": {"__sw": "mu"}},
])
def test_malformed_tags_are_codec_errors(tree: Any) -> None:
    with pytest.raises(CodecError):
        codec.decode_data(tree)


def test_not_json_is_codec_error() -> None:
    with pytest.raises(CodecError):
        codec.loads(b"\x80\x04\x95pickle")


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    json_leaf | st.binary() | st.datetimes() | st.dates() | st.uuids() | st.decimals(
        allow_nan=False, allow_infinity=False) | st.text().map(Markup),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    | st.frozensets(st.integers(), max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_property_round_trip(data: dict[str, Any]) -> None:
    assert same(round_trip(data), data)


@pytest.mark.parametrize("data", [{}, {"a": [1, {"b": None}]}, {"d": date(2026, 1, 2)},
                                  {"__sw": "x"}, {"s": '"__sw"'}])
def test_loads_data_equals_the_slow_path(data: dict[str, Any]) -> None:
    """The no-tag fast path and the full decode agree, with and without tags."""
    raw = codec.dumps(codec.encode_data(data))
    assert same(codec.loads_data(raw), codec.decode_data(codec.loads(raw)))
    assert same(codec.loads_data(raw), data)


def test_loads_data_refuses_non_mappings() -> None:
    with pytest.raises(CodecError):
        codec.loads_data(b"[1, 2]")


class TestDumpsDataFastPath:
    """``dumps_data`` (the save path's encoder) equals ``dumps(encode_data(...))``
    byte for byte, whether or not its plain-JSON fast path applies."""

    @pytest.mark.parametrize("value", EXAMPLES, ids=[type(v).__name__ + str(i)
                                                      for i, v in enumerate(EXAMPLES)])
    def test_tagged_values_take_the_tagged_path(self, value: Any) -> None:
        """Tuples, UUIDs, non-finite floats, Markup, "__sw" dicts... encode as before."""
        data = {"k": value, "plain": [1, "x", None]}
        assert codec.dumps_data(data) == codec.dumps(codec.encode_data(data))
        assert same(codec.loads_data(codec.dumps_data(data)), data)

    @given(st.dictionaries(st.text(max_size=8), values, max_size=6))
    def test_property_same_bytes(self, data: dict[str, Any]) -> None:
        assert codec.dumps_data(data) == codec.dumps(codec.encode_data(data))

    @given(st.dictionaries(st.text(max_size=8), st.recursive(
        json_leaf, lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12), max_size=6))
    def test_property_plain_json_same_bytes(self, data: dict[str, Any]) -> None:
        """Plain JSON (the fast path's case) gives the slow path's exact bytes."""
        assert codec.dumps_data(data) == codec.dumps(codec.encode_data(data))

    def test_dict_subclass_at_the_top_is_read_as_its_items(self) -> None:
        """The integrations' SessionDict (a dict subclass) is the data mapping itself."""

        class Tracking(dict[str, Any]):
            pass

        data = Tracking(a=1, b=[2.5, None])
        assert codec.dumps_data(data) == codec.dumps(codec.encode_data(dict(data)))

    @pytest.mark.parametrize("value", [Color(), type("F", (float,), {})(1.5),
                                       type("S", (str,), {})("s"), [object()],
                                       {"x": bytearray(b"b")}])
    def test_refusals_are_unchanged(self, value: Any) -> None:
        """What the codec refuses is still refused, naming the key."""
        with pytest.raises(TypeError, match="'k'"):
            codec.dumps_data({"k": value})

    def test_enum_values_are_refused_not_flattened(self) -> None:
        """orjson would write an Enum as its value; the codec still refuses it."""
        import enum

        class Mode(enum.Enum):
            A = 1

        with pytest.raises(TypeError, match="'k'"):
            codec.dumps_data({"k": Mode.A})
        with pytest.raises(TypeError):
            codec.dumps_data({1: "non-str key"})  # type: ignore[dict-item]
