"""The command-line walkthrough (``make walkthrough``) tells the true story."""

from __future__ import annotations

from sessionward.demo import walkthrough


def test_walkthrough_steps() -> None:
    lines: list[str] = []
    walkthrough.run(lines.append)
    text = "\n".join(lines)
    assert "cookie after saving an empty session: (none)" in text
    assert "old cookie loads as None" in text
    assert "zombie_accessed" in text and "reason=zombie_family" in text
    assert "decode_failed" in text and "load -> None" in text
    assert "bob has 3 sessions" in text and "revoked 3; bob now has 0" in text
