"""The tree keeps its shape: one concept per module, tests mirror the packages,
and docs/architecture.md names every layer package.

The arrows between the packages are checked by import-linter (``make lint``,
contracts in pyproject.toml); this file checks what import-linter cannot.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "sessionward"
MAX_LINES = 450
"""A module past ~400 lines holds more than one idea (STYLE.md); this is the hard stop."""


def layer_packages() -> list[str]:
    """The subpackages of ``sessionward`` (the layers and the interfaces)."""
    return sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def test_no_module_is_too_long() -> None:
    """Every module in src/ is at most MAX_LINES lines."""
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these modules by concept (limit {MAX_LINES} lines): {too_long}"


def test_tests_mirror_the_packages() -> None:
    """Each layer package has its own folder of tests under tests/."""
    missing = [name for name in layer_packages() if not (ROOT / "tests" / name).is_dir()]
    assert not missing, f"no tests/<package>/ folder for: {missing}"


def test_architecture_page_names_every_package() -> None:
    """docs/architecture.md describes the tree as it is: every package is named there."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    unnamed = [name for name in layer_packages() if f"`{name}/`" not in page]
    assert not unnamed, f"docs/architecture.md does not describe: {unnamed}"


def test_no_stray_top_level_modules() -> None:
    """Only the public face lives at the top: everything else sits in a layer package."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "testing.py"], top
