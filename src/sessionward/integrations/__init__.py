"""Web framework integrations, each thin over :mod:`sessionward.integrations.cookies`.

- :mod:`sessionward.integrations.starlette` — ASGI middleware filling
  ``scope["session"]`` (Starlette, FastAPI);
- :mod:`sessionward.integrations.asgi` — the same for any ASGI app
  (``scope["sessionward.lifecycle.session"]``);
- :mod:`sessionward.integrations.wsgi` — WSGI middleware
  (``environ["sessionward.lifecycle.session"]``);
- :mod:`sessionward.integrations.flask` — a Flask ``SessionInterface``;
- :mod:`sessionward.integrations.django` — a Django ``SESSION_ENGINE`` app.

Framework imports happen only inside the module that needs them.
"""
