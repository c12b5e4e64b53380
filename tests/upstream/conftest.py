"""The frameworks' own session suites, run against sessionward (issue 14).

Each ``test_<suite>.py`` here loads one upstream test file from the pip cache
(see ``_fetch``) and re-exports its tests with sessionward wired in.  The
tests that fail *by design* are listed, with a one-line reason each, in
``differences.toml``; they run as strict xfails, so a new failure and an
unexpected pass both fail the run.  ``docs/integrations.md`` carries the same
list (``test_differences.py`` checks that the two agree).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DIFFERENCES = HERE / "differences.toml"
SUITES = ("django", "flask", "starlette")


def load_differences() -> dict[str, dict[str, str]]:
    """``{suite: {test id: reason}}`` from ``differences.toml``."""
    with DIFFERENCES.open("rb") as fh:
        doc = tomllib.load(fh)
    unknown = set(doc) - set(SUITES)
    if unknown:
        raise ValueError(f"differences.toml: unknown suite(s) {sorted(unknown)}")
    return {suite: dict(doc.get(suite, {})) for suite in SUITES}


def suite_and_id(item: pytest.Item) -> tuple[str, str] | None:
    """``("flask", "test_session_path")`` for an upstream test item, else ``None``."""
    path = Path(str(item.path))
    if path.parent != HERE or not path.stem.startswith("test_"):
        return None
    suite = path.stem[len("test_"):]
    if suite not in SUITES:
        return None
    return suite, item.nodeid.split("::", 1)[1]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the listed by-design failures as strict xfails (stale entries: test_differences)."""
    differences = load_differences()
    for item in items:
        found = suite_and_id(item)
        if found is None:
            continue
        suite, test_id = found
        reason = differences[suite].get(test_id)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"by design: {reason}"))
