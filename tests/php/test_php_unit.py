"""The PHP client's own tests (``clients/php/tests/*Test.php``) on PHP's built-in
assertions (``zend.assertions=1``), run by php-cli; the handler tests talk to a
real daemon subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from svc_php import CLIENT_DIR, run_php

from svc_daemon import DaemonProcess

pytestmark = pytest.mark.php

RUNNER = CLIENT_DIR / "tests" / "run.php"
PURE = ["SessionIdTest.php", "CodecTest.php", "ConfigTest.php"]


def check(done: object) -> None:
    stdout = getattr(done, "stdout", "")
    assert getattr(done, "returncode", 1) == 0, stdout + getattr(done, "stderr", "")
    assert " passed, 0 failed" in stdout.splitlines()[-1]


@pytest.mark.parametrize("name", PURE)
def test_pure_units(name: str) -> None:
    """SessionId mapping, JSON codec (no object ever instantiated), URL and token rules."""
    check(run_php(RUNNER, str(CLIENT_DIR / "tests" / name)))


@pytest.mark.daemon
def test_handler_against_daemon(tmp_path: Path) -> None:
    """ext/session's real call sequences (strict mode, regenerate, destroy, gc, outage)."""
    with DaemonProcess(tmp_path, "--namespace", "unit") as daemon:
        done = run_php(RUNNER, str(CLIENT_DIR / "tests" / "HandlerTest.php"),
                       ini={"session.use_cookies": "0", "session.cache_limiter": ""},
                       env={"SW_DAEMON": daemon.url,
                            "SW_TOKEN_FILE": str(daemon.data_dir / "tokens" / "app.token")})
    check(done)


def test_runner_fails_on_a_failing_assertion(tmp_path: Path) -> None:
    """The runner itself can fail: a false assertion is reported and exits 1."""
    bad = tmp_path / "BadTest.php"
    bad.write_text("<?php\nfunction test_false(): void { assert(1 === 2); }\n")
    done = run_php(RUNNER, str(bad))
    assert done.returncode == 1 and "0 passed, 1 failed" in done.stdout
