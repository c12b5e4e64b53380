"""A store writer's tools: put wrong-typed values into each store, or hide a record
from its user index, the way another program with write access to it would.

Each store kind gets a :class:`Tamper` with three families of cases:

* ``record_cases``: every field of a session record, each wrong type the backend
  can hold (SQLite: INTEGER, REAL, TEXT, BLOB, NULL; Redis: text in number
  fields, missing fields, a string where the hash belongs; file store: NaN and
  infinite times, version 0, a truncated file, a bad checksum, garbage);
* ``kv_cases``: the same for kv entries (throttle counters, one-time tokens);
* ``hide_cases``: ways to make ``by_user`` miss a record while it still exists.

Cases are ``(label, apply)``; ``apply(key)`` corrupts the entry under ``key``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
from collections.abc import Callable
from typing import Any

from sessionward.stores.base import SessionStore, StoredRecord

Case = tuple[str, Callable[[str], None]]
WRONG_SQL = {"int": 5, "float": 1.5, "text": "abc", "blob": b"\x00\x01", "null": None}
"""One value of every SQLite storage class (affinity may turn "5" into 5, so the
text value is not numeric)."""


class Tamper:
    """Protocol-ish base: no cases."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def record_cases(self) -> list[Case]:
        raise NotImplementedError

    def kv_cases(self) -> list[Case]:
        raise NotImplementedError

    def hide_cases(self) -> list[Case]:
        raise NotImplementedError


class SQLiteTamper(Tamper):
    def _run(self, sql: str, params: tuple[Any, ...]) -> None:
        db = sqlite3.connect(self.store.path, isolation_level=None)  # type: ignore[attr-defined]
        try:
            db.execute(sql, params)
        finally:
            db.close()

    def _cases(self, table: str, columns: list[str], not_null: set[str]) -> list[Case]:
        cases: list[Case] = []
        for column in columns:
            for label, value in WRONG_SQL.items():
                if value is None and column in not_null:
                    continue  # the schema refuses NULL there: no writer can store it
                def apply(key: str, c: str = column, v: Any = value) -> None:
                    sql = f"UPDATE {table} SET {c} = ? WHERE key = ?"  # noqa: S608 (fixed names)
                    self._run(sql, (v, key))
                cases.append((f"{table}.{column}={label}", apply))
        return cases

    def record_cases(self) -> list[Case]:
        return self._cases("sw_sessions", ["blob", "version", "expires_at", "touched_at",
                                           "user_key"], {"blob", "version", "expires_at",
                                                         "touched_at"})

    def kv_cases(self) -> list[Case]:
        return self._cases("sw_kv", ["value", "version", "expires_at"],
                           {"value", "version", "expires_at"})

    def hide_cases(self) -> list[Case]:
        def null(key: str) -> None:
            self._run("UPDATE sw_sessions SET user_key = NULL WHERE key = ?", (key,))

        def other(key: str) -> None:
            self._run("UPDATE sw_sessions SET user_key = ? WHERE key = ?", ("0" * 64, key))
        return [("user_key=NULL", null), ("user_key=another user", other)]


class MemoryTamper(Tamper):
    def _records(self) -> dict[str, StoredRecord]:
        found: dict[str, StoredRecord] = self.store._records  # type: ignore[attr-defined]
        return found

    def record_cases(self) -> list[Case]:
        wrong: dict[str, list[Any]] = {
            "blob": [5, 1.5, "abc", None], "version": ["abc", 1.5, None, 0, True],
            "expires_at": ["abc", None, math.nan], "touched_at": ["abc", b"x", math.inf],
            "user_key": [5, b"k", "NOT A KEY"],
        }
        cases: list[Case] = []
        for name, values in wrong.items():
            for value in values:
                def apply(key: str, n: str = name, v: Any = value) -> None:
                    records = self._records()
                    records[key] = dataclasses.replace(records[key], **{n: v})
                cases.append((f"{name}={value!r}", apply))
        return cases

    def kv_cases(self) -> list[Case]:
        cases: list[Case] = []
        for name, values in {"value": [5, "abc", None], "version": ["abc", None, 0],
                             "expires_at": ["abc", None]}.items():
            for value in values:
                def apply(key: str, n: str = name, v: Any = value) -> None:
                    setattr(self.store._kv[key], n, v)  # type: ignore[attr-defined]
                cases.append((f"kv.{name}={value!r}", apply))
        return cases

    def hide_cases(self) -> list[Case]:
        def unindex(key: str) -> None:
            for members in self.store._users.values():  # type: ignore[attr-defined]
                members.discard(key)

        def no_user(key: str) -> None:
            unindex(key)
            records = self._records()
            records[key] = dataclasses.replace(records[key], user_key=None)
        return [("removed from index", unindex), ("user_key=None", no_user)]


class FileTamper(Tamper):
    """The file format is fixed-width binary with a CRC (no authentication): a writer
    can produce any header value with a valid checksum."""

    def _path(self, ns: str, key: str) -> str:
        from sessionward.stores.filesystem.io import _data_path

        return os.path.join(self.store._path, _data_path(ns, key))  # type: ignore[attr-defined]

    def _rewrite(self, ns: str, key: str, change: Callable[[Any], Any]) -> None:
        from sessionward.stores.filesystem.format import _decode, _encode

        path = self._path(ns, key)
        with open(path, "rb") as f:
            entry = _decode(ns, f.read())
        with open(path, "wb") as f:
            f.write(_encode(ns, change(entry)))

    def _raw(self, ns: str, key: str, change: Callable[[bytes], bytes]) -> None:
        path = self._path(ns, key)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(change(data))

    def _cases(self, ns: str) -> list[Case]:
        fields: dict[str, list[Any]] = {"version": [0], "expires_at": [math.nan, math.inf],
                                        "touched_at": [math.nan, -math.inf]}
        cases: list[Case] = []
        for name, values in fields.items():
            for value in values:
                def apply(key: str, n: str = name, v: Any = value) -> None:
                    self._rewrite(ns, key, lambda e: dataclasses.replace(e, **{n: v}))
                cases.append((f"{ns}.{name}={value!r}", apply))
        raw: dict[str, Callable[[bytes], bytes]] = {
            "truncated": lambda d: d[: len(d) // 2], "bad crc": lambda d: d[:-1] + b"\x00",
            "garbage": lambda d: b"\xff" * len(d), "empty": lambda d: b"",
        }
        for label, change in raw.items():
            def apply_raw(key: str, c: Callable[[bytes], bytes] = change) -> None:
                self._raw(ns, key, c)
            cases.append((f"{ns} {label}", apply_raw))
        return cases

    def record_cases(self) -> list[Case]:
        return self._cases("records")

    def kv_cases(self) -> list[Case]:
        return self._cases("kv")

    def hide_cases(self) -> list[Case]:
        from sessionward.stores.filesystem.index import _user_dir

        def unmark(key: str) -> None:
            from sessionward.stores.filesystem.format import _decode

            with open(self._path("records", key), "rb") as f:
                user = _decode("records", f.read()).user_key
            os.unlink(os.path.join(self.store._path,  # type: ignore[attr-defined]
                                   _user_dir(user), key))

        def no_user(key: str) -> None:
            unmark(key)
            self._rewrite("records", key, lambda e: dataclasses.replace(e, user_key=None))
        return [("marker removed", unmark), ("user_key removed", no_user)]


class RedisTamper(Tamper):
    @property
    def _conn(self) -> Any:
        return self.store._conn  # type: ignore[attr-defined]

    def _cases(self, name_of: Callable[[str], str], fields: list[str]) -> list[Case]:
        client = self._conn.client
        cases: list[Case] = []
        for field in fields:
            for label, value in {"text": "abc", "nan": "nan", "empty": ""}.items():
                def apply(key: str, f: str = field, v: str = value) -> None:
                    client.hset(name_of(key), f, v)
                cases.append((f"{field}={label}", apply))

            def drop(key: str, f: str = field) -> None:
                client.hdel(name_of(key), f)
            cases.append((f"{field} missing", drop))

        def wrongtype(key: str) -> None:
            client.delete(name_of(key))
            client.set(name_of(key), "a string where a hash belongs")
        cases.append(("WRONGTYPE", wrongtype))
        return cases

    def record_cases(self) -> list[Case]:
        # "u" as text is a user key of the right shape or not: "abc" is one (then
        # it is not indexed), "" is "anonymous"; both are covered by hide_cases.
        return self._cases(self._conn.rec_key, ["b", "v", "e", "t"])

    def kv_cases(self) -> list[Case]:
        return self._cases(self._conn.kv_key, ["v", "n", "e"])

    def hide_cases(self) -> list[Case]:
        conn = self._conn

        def srem(key: str) -> None:
            user = conn.client.hget(conn.rec_key(key), "u").decode()
            conn.client.srem(conn.user_key(user), key)

        def no_user(key: str) -> None:
            srem(key)
            conn.client.hset(conn.rec_key(key), "u", "")

        def index_wrongtype(key: str) -> None:
            user = conn.client.hget(conn.rec_key(key), "u").decode()
            conn.client.delete(conn.user_key(user))
            conn.client.set(conn.user_key(user), "not a set")
        return [("SREM from index", srem), ("u emptied", no_user),
                ("index WRONGTYPE", index_wrongtype)]


def tamper_for(kind: str, store: SessionStore) -> Tamper:
    """The :class:`Tamper` of a store kind (as in ``STORE_KINDS``)."""
    return {"memory": MemoryTamper, "sqlite": SQLiteTamper, "filesystem": FileTamper,
            "redis": RedisTamper, "cluster": RedisTamper, "sentinel": RedisTamper}[kind](store)
