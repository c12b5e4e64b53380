"""``python -m sessionward.demo [--data-dir DIR] [--port 8000]``."""

from __future__ import annotations

from ..cli.demo import demo

if __name__ == "__main__":
    demo(prog_name="python -m sessionward.demo")
