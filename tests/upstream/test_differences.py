"""The by-design list is honest: docs and ``differences.toml`` agree, and every entry exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from upstream.conftest import HERE, load_differences

ROOT = HERE.parents[1]
DOCS = ROOT / "docs" / "integrations.md"
SECTION = "## Differences from the framework's own sessions"
ROW = re.compile(r"^\| (Django|Flask|Starlette) \| `([^`]+)` \| (.+) \|$")


def _documented() -> dict[str, dict[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    out: dict[str, dict[str, str]] = {"django": {}, "flask": {}, "starlette": {}}
    for line in body.splitlines():
        match = ROW.match(line)
        if match:
            out[match[1].lower()][match[2]] = match[3]
    return out


def test_docs_show_exactly_the_listed_differences() -> None:
    """docs/integrations.md's table is differences.toml, entry for entry, reason for reason."""
    assert _documented() == load_differences()


def test_every_listed_test_exists_upstream() -> None:
    """No stale entry: each listed id is collected from the upstream suites."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(HERE / "test_django.py"), str(HERE / "test_flask.py"),
         str(HERE / "test_starlette.py")],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    collected: set[tuple[str, str]] = set()
    for line in done.stdout.splitlines():
        path, sep, test_id = line.partition("::")
        if sep and path.startswith("tests/upstream/test_"):
            collected.add((Path(path).stem[len("test_"):], test_id))
    listed = {(suite, test_id) for suite, ids in load_differences().items() for test_id in ids}
    assert listed - collected == set()
    assert len(collected) > 100  # the suites really were collected
