"""Django sessions: ``SessionStore(session_key)`` / item access / ``save()``.

That is exactly what ``SessionMiddleware`` does per request (load lazily on
first access, ``save()`` when modified).  Django is configured in-process
with ``settings.configure``; the db backend uses the same SQLite settings as
the raw floor (WAL, synchronous=NORMAL), the cache backend Django's built-in
``RedisCache`` on the same Redis, the file backend a private directory.
Django's default JSON serializer and signing are kept (no encryption).
"""

from __future__ import annotations

from typing import Any

from bench.common import SESSION_TTL
from bench.targets import Env, Target, shared_secret


def _configure(env: Env, engine: str) -> None:
    import django  # type: ignore[import-untyped,unused-ignore]
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]

    settings.configure(
        SECRET_KEY=shared_secret(env).hex(),
        INSTALLED_APPS=["django.contrib.sessions"],
        USE_TZ=True,
        SESSION_ENGINE=engine,
        SESSION_COOKIE_AGE=SESSION_TTL,
        SESSION_FILE_PATH=f"{env.workdir}/django-files",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": f"{env.workdir}/django.db",
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                    "timeout": 30,
                },
            }
        },
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": env.redis_url.rsplit("/", 1)[0] + "/1",
            }
        },
    )
    django.setup()


class DjangoTarget(Target):
    kind = "peer"

    def __init__(self, env: Env, engine: str, store: str) -> None:
        import importlib
        import os

        os.makedirs(f"{env.workdir}/django-files", exist_ok=True)
        _configure(env, engine)
        self.store = store
        self.session_store = importlib.import_module(engine).SessionStore

    def create(self, data: dict[str, Any]) -> str:
        s = self.session_store()
        s.update(data)
        s.save()
        return str(s.session_key)

    def cycle(self, handle: str, value: int) -> str:
        s = self.session_store(session_key=handle)
        s["counter"] = value
        s.save()
        return handle

    def append(self, handle: str, item: Any) -> dict[str, Any]:
        s = self.session_store(session_key=handle)
        s["items"] = [*s.get("items", []), item]
        s.save()
        return {}

    def read(self, handle: str) -> dict[str, Any]:
        s = self.session_store(session_key=handle)
        return dict(s.items())

    def clear_expired(self) -> None:
        self.session_store.clear_expired()


def django_db(env: Env) -> DjangoTarget:
    t = DjangoTarget(env, "django.contrib.sessions.backends.db", "sqlite")
    from django.core.management import call_command  # type: ignore[import-untyped,unused-ignore]

    call_command("migrate", "sessions", verbosity=0)
    return t


def django_cache(env: Env) -> DjangoTarget:
    return DjangoTarget(env, "django.contrib.sessions.backends.cache", "redis")


def django_file(env: Env) -> DjangoTarget:
    return DjangoTarget(env, "django.contrib.sessions.backends.file", "filesystem")
