"""Harness for the CLI tests: run the installed ``sessionward`` executable.

Import helpers with ``from cli._harness import ...`` (``tests`` is on sys.path).

Every test gets a private key file (made by ``sessionward keygen``), a SQLite
store (created by the library, as an app would: the CLI opens stores with
``create=False``) and a :class:`Cli` runner with a clean environment.  The runner
records every output; at teardown no session ID or cookie value created by
the test (``cli.secrets``) may appear in any of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sessionward import SessionManager
from sessionward.lifecycle.session import Session
from sessionward.stores.sqlite import SQLiteStore

EXE = Path(sys.prefix) / "bin" / "sessionward"
"""The installed console script (``/work/main/.venv/bin/sessionward``)."""


@dataclass
class Result:
    """One finished CLI run."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs ``sessionward`` with a controlled environment."""

    tmp: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str] | None = None) -> Result:
        full_env = {**self.env, **(env or {})}
        proc = subprocess.run([str(EXE), *args], capture_output=True, text=True, input=input,
                              env=full_env, cwd=self.tmp, timeout=120)
        self.outputs += [proc.stdout, proc.stderr]
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """Run and require exit code 0."""
        result = self(*args, **kwargs)
        assert result.code == 0, (result.code, result.out, result.err)
        return result

    def remember(self, session: Session) -> None:
        """Register the session's ID and cookie as secrets no output may hold."""
        assert session.cookie_value is not None
        self.secrets.add(session.cookie_value)
        self.secrets.add(session.cookie_value.partition(".")[0])


def base_env(tmp: Path) -> dict[str, str]:
    """The parent environment without any SESSIONWARD_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["HOME"] = str(tmp)
    env.pop("COLUMNS", None)
    return env


@pytest.fixture(name="cli")
def cli_fixture(tmp_path: Path) -> Iterator[Cli]:
    """A runner configured (by environment) with a fresh key file and SQLite store."""
    runner = Cli(tmp_path, base_env(tmp_path))
    key_file = tmp_path / "keys" / "sessionward.key"
    runner.ok("keygen", "--out", str(key_file))
    runner.env["SESSIONWARD_KEY_FILE"] = str(key_file)
    runner.env["SESSIONWARD_STORE"] = f"sqlite:///{tmp_path}/x.db"
    SQLiteStore(tmp_path / "x.db").close()  # the app made it: admin commands never create one
    yield runner
    leaked = [s for s in runner.secrets for text in runner.outputs if s in text]
    assert not leaked, "a session ID or cookie value appeared in CLI output"


ManagerFactory = Callable[..., SessionManager]


@pytest.fixture(name="manager")
def manager_fixture(cli: Cli) -> Iterator[ManagerFactory]:
    """``manager(clock=..., **settings)``: a library manager over the CLI's store and keys."""
    opened: list[SessionManager] = []

    def make(url: str | None = None, clock: Callable[[], float] | None = None,
             **overrides: Any) -> SessionManager:
        mgr = SessionManager.from_url(url or cli.env["SESSIONWARD_STORE"],
                                      key_file=cli.env["SESSIONWARD_KEY_FILE"], clock=clock,
                                      **overrides)
        opened.append(mgr)
        return mgr

    yield make
    for mgr in opened:
        mgr.close()


def login(cli: Cli, mgr: SessionManager, user: str | None, **data: Any) -> Session:
    """A saved session (logged in as ``user`` unless None) whose secrets are registered."""
    session = mgr.new()
    session.update(data or {"n": 1})
    if user is not None:
        mgr.login(session, user)
    mgr.save(session)
    cli.remember(session)
    return session


def past(seconds: float) -> Callable[[], float]:
    """A clock running ``seconds`` behind the real one (sessions created in the past)."""
    return lambda: time.time() - seconds


def one_line_error(result: Result, *, prompted: bool = False) -> None:
    """The run failed with exactly one error line on stderr and no traceback
    (after the prompt line, when the command asked a question)."""
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip()]
    if prompted:
        assert len(lines) == 2 and "confirm" in lines[0], result.err
        lines = lines[1:]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("sessionward: error: "), result.err
    assert "Traceback" not in result.err + result.out
