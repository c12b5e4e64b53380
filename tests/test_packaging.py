"""The wheel `make dist` builds installs into a fresh venv and works there (issue 19 item 1):
the demo's templates and static files, ``py.typed`` and the license travel with it.

The fresh venv borrows the already-installed dependencies of the test venv through
a ``.pth`` line (appended after its own site-packages, so ``sessionward`` itself
comes from the wheel); nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {p.name for p in (ROOT / "src/sessionward/demo/templates").iterdir()}

pytestmark = pytest.mark.slow


@pytest.fixture(name="wheel", scope="module")
def wheel_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built exactly as `make dist` builds it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--wheel-dir", str(out), str(ROOT)],
                   check=True, timeout=600, capture_output=True)
    (wheel,) = out.glob("sessionward-*.whl")
    return wheel


def test_wheel_holds_the_package_data(wheel: Path) -> None:
    """Templates, the stylesheet, py.typed and the license are in the wheel; tests are not."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sessionward/demo/templates/{t}" for t in TEMPLATES} <= names
    assert {"sessionward/demo/static/style.css", "sessionward/py.typed"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_installs_into_a_fresh_venv_and_runs(wheel: Path, tmp_path: Path) -> None:
    """In a fresh venv: the console script runs, and the demo renders a page from the
    installed templates (not from the source tree)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--no-index", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    version = subprocess.run([str(venv / "bin" / "sessionward"), "--version"], check=True,
                             capture_output=True, text=True, timeout=60)
    assert "0.1.0" in version.stdout
    code = ("import sessionward, sys, tempfile; from pathlib import Path; "
            "from starlette.testclient import TestClient; "
            "from sessionward.demo import create_app; "
            "assert sys.argv[1] in sessionward.__file__, sessionward.__file__; "
            "client = TestClient(create_app(Path(tempfile.mkdtemp()) / 'd', environ={}), "
            "base_url='http://127.0.0.1:8000', client=('127.0.0.1', 5000)); "
            "page = client.get('/login'); css = client.get('/static/style.css'); "
            "assert page.status_code == 200 and 'Sign in' in page.text, page.text; "
            "assert css.status_code == 200 and 'media' in css.text; "
            "assert (Path(sessionward.__file__).parent / 'py.typed').exists(); print('ok')")
    ran = subprocess.run([str(python), "-c", code, str(venv)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert ran.stdout.strip().endswith("ok"), ran.stderr
