"""One rule for a test whose real component cannot run here.

In CI (``CI`` set, as ``make test`` does) a missing service or a skipped fault
is a failure, never a silent skip; on a developer's machine without, say, the
right to mount a tmpfs, the test is skipped with the reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere, saying ``reason``."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (under CI this is a failure: the test must run)")
    pytest.skip(reason)
