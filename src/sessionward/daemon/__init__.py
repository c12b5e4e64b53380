"""The sessionward daemon: one local process holds the keys and the store and
serves sessions to any number of workers over a Unix socket (or loopback TCP).

Modules:

- :mod:`.protocol` — sans-IO: NDJSON framing, per-command schemas, the error
  table (pure functions, vector- and fuzz-tested);
- :mod:`.fsutil` — socket path, PID file, token and key files (the
  filesystem hardenings);
- :mod:`.auth` — role tokens, constant-time comparison, per-peer backoff;
- :mod:`.handlers` — the commands: session operations (role ``app``) and
  admin operations (role ``admin``, dispatched to :class:`sessionward.admin.Admin`);
- :mod:`.server` — asyncio I/O only: accept, read frames, enforce the caps,
  signals, drain.

The wire contract is ``docs/PROTOCOL.md``; the client is
:mod:`sessionward.remote`.
"""

from __future__ import annotations
