"""Load an upstream test file as a module, with sessionward wired in.

Upstream files are executed unmodified; the harness only (a) puts stand-in
modules in ``sys.modules`` for the few test-package imports they make
(``from tests.types import ...``, ``from .models import ...``), and (b) rebinds
module globals after loading (``SessionMiddleware``), exactly as a user would
swap the import in their own code.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def stand_ins(modules: Mapping[str, types.ModuleType]) -> Iterator[None]:
    """Temporarily make ``modules`` importable under their names."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def stub(name: str, **attrs: Any) -> types.ModuleType:
    """A stand-in module ``name`` holding ``attrs`` (a package if it has no dot)."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    if "." not in name:
        module.__path__ = []
    return module


def load(path: Path, name: str, *, package: str | None = None,
         modules: Mapping[str, types.ModuleType] | None = None,
         rebind: Mapping[str, Any] | None = None) -> types.ModuleType:
    """Execute the upstream file ``path`` as module ``name``.

    Args:
        path: the extracted upstream test file.
        name: a unique module name (the same file may be loaded twice).
        package: the package relative imports resolve against.
        modules: stand-in modules visible while the file executes.
        rebind: module globals replaced after execution.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    if package is not None:
        module.__package__ = package
    with stand_ins(modules or {}):
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module.__dict__.update(rebind or {})
    return module


def tests_of(module: types.ModuleType,
             keep: Callable[[str, Any], bool] = lambda name, obj: True) -> dict[str, Any]:
    """The ``test_*`` functions of ``module`` that ``keep`` accepts."""
    return {name: obj for name, obj in vars(module).items()
            if name.startswith("test_") and callable(obj) and keep(name, obj)}
