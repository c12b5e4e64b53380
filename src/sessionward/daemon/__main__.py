"""``python -m sessionward.daemon`` — the same as ``sessionward serve``."""

from __future__ import annotations

from .command import serve

if __name__ == "__main__":
    serve(prog_name="sessionward serve")
