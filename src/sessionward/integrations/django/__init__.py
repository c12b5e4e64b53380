"""Django: a ``SESSION_ENGINE`` backend, a cookie guard middleware, checks, cleanup.

settings.py::

    INSTALLED_APPS = [..., "sessionward.integrations.django"]
    SESSION_ENGINE = "sessionward.integrations.django.backend"
    SESSION_COOKIE_NAME = "__Host-session"
    MIDDLEWARE = [
        "sessionward.integrations.django.middleware.SessionGuardMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        ...
    ]
    SESSIONWARD = {"store_url": "sqlite:////var/lib/app/sessions.db",
                   "key_file": "/etc/app/session.key"}

``django.contrib.auth`` ``login()``/``logout()`` work unchanged: ``cycle_key``
becomes a sessionward login (new ID, user index) and ``flush`` a logout.
"""
