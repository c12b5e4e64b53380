"""The sessionward daemon: one local process holds the keys and the store and
serves sessions to any number of workers over a Unix socket (or loopback TCP).

Modules:

- :mod:`.command` / :mod:`.config` — ``sessionward serve``, its options, bootstrap;
- :mod:`.fsutil` — socket path, PID file, token and key files (the
  filesystem hardenings);
- :mod:`.runner` — assembly (manager, audit, listeners) and one or several
  processes; :mod:`.workers` — ``--workers N`` and their supervisor;
- :mod:`.server` — one process's listeners, connection caps, deadlines,
  signals, drain; :mod:`.connection` — one connection as an asyncio protocol;
- :mod:`.dispatch` — frame → answer: parse, authenticate, validate, run;
  :mod:`.gate` — on the event loop or in the pool (a slow store never
  stalls the loop);
- :mod:`.auth` — role tokens, constant-time comparison, the failure budget;
- :mod:`.handlers` — the command tables; :mod:`.sessions`, :mod:`.views`,
  :mod:`.reserved`, :mod:`.kv` — the ``app`` commands (admin ones go to
  :class:`sessionward.admin.Admin`); :mod:`.context` — what handlers use.

The sans-IO protocol (framing, schemas, errors) is :mod:`sessionward.protocol`.
The wire contract is ``docs/PROTOCOL.md``; the client is
:mod:`sessionward.remote`.
"""

from __future__ import annotations
