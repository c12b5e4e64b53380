"""The daemon wire protocol, sans I/O — the one definition both ends use.

Everything here is a pure function, a table or a small state machine over
bytes, so it is tested with vectors and fuzzed without sockets
(``tests/protocol``).  The prose contract is ``docs/PROTOCOL.md``; change
both together.

- :mod:`.framing` — NDJSON frames: the limits, the frame decoder, request
  parsing and the response lines;
- :mod:`.schema` — per-command schemas, roles and their allowlists;
- :mod:`.errors` — the error tokens and the exception ⇄ wire-error table
  (the daemon encodes with it, :mod:`sessionward.remote` decodes).

Security: nothing but JSON is ever decoded (a pickle opcode stream is just
invalid JSON); every request is checked against a strict per-command schema
(unknown fields, wrong types, oversized strings are ``invalid_argument``);
every error message leaves through :func:`.framing.error_frame`, which runs
the one sanitiser (:func:`sessionward.audit.redact.sanitize`).
"""
