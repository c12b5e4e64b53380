"""No pickle, marshal or shelve anywhere in the repository (DESIGN §4, T-05)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle",
             "jsonpickle"}


def python_files() -> list[Path]:
    skip = {".venv", "build", "dist", ".git", "node_modules"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_no_unsafe_deserializer_imports() -> None:
    offenders = []
    for path in python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                names = [a.value for a in node.args if isinstance(a, ast.Constant)
                         and isinstance(a.value, str)]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names
                          if n in FORBIDDEN]
    assert offenders == []


def test_the_check_can_fail(tmp_path: Path) -> None:
    """The scanner recognises each forbidden import form."""
    sample = "import pickle\nfrom marshal import loads\n__import__('shelve')\n"
    tree = ast.parse(sample)
    found = {n.names[0].name if isinstance(n, ast.Import) else getattr(n, "module", None)
             for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)}
    assert {"pickle", "marshal"} <= found
    assert len(python_files()) > 20
