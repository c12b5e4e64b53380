"""A minimal Django project (settings, URLs, views) for the MW suite.

Configured once per process; each test swaps the manager with
``configure_manager``.  Login goes through ``django.contrib.auth.login`` with
a real user in a SQLite database (migrated once).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

_ready = threading.Lock()
_app: Any = None


def _configure() -> None:
    import django
    from django.conf import settings

    db = Path(tempfile.mkdtemp(prefix="sw-django-")) / "db.sqlite3"
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-secret-" + "x" * 40,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                        "django.contrib.sessions", "sessionward.integrations.django"],
        MIDDLEWARE=["sessionward.integrations.django.middleware.SessionGuardMiddleware",
                    "django.contrib.sessions.middleware.SessionMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware"],
        SESSION_ENGINE="sessionward.integrations.django.backend",
        SESSION_COOKIE_NAME="__Host-session",
        SESSION_COOKIE_SECURE=True,
        SESSIONWARD={"namespace": "test"},
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_user("alice", password="pw-alice-123")


def wsgi_application() -> Any:
    """The Django WSGI handler (configuring Django on first call)."""
    global _app
    with _ready:
        if _app is None:
            _configure()
            from django.core.wsgi import get_wsgi_application

            _app = get_wsgi_application()
    return _app


# ------------------------------------------------------------------ views


def _whoami(request: Any) -> Any:
    from django.http import HttpResponse

    user = request.user.username if request.user.is_authenticated else "anon"
    return HttpResponse(f"user={user};n={request.session.get('n')}", content_type="text/plain")


def _plain(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


def _peek(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("yes" if "n" in request.session else "no", content_type="text/plain")


def _set(request: Any) -> Any:
    from django.http import HttpResponse

    request.session["n"] = request.GET.get("n", "")
    return HttpResponse("ok", content_type="text/plain")


def _login(request: Any) -> Any:
    from django.contrib.auth import authenticate, login
    from django.http import HttpResponseRedirect

    user = authenticate(request, username="alice", password="pw-alice-123")
    login(request, user)
    response = HttpResponseRedirect("/whoami")
    response.status_code = 303
    return response


def _logout(request: Any) -> Any:
    from django.contrib.auth import logout
    from django.http import HttpResponse

    logout(request)
    return HttpResponse("bye", content_type="text/plain")


def _csrf_exempt(view: Any) -> Any:
    from django.views.decorators.csrf import csrf_exempt

    return csrf_exempt(view)


def _patterns() -> list[Any]:
    from django.urls import path

    return [path("plain", _plain), path("whoami", _whoami), path("peek", _peek),
            path("set", _csrf_exempt(_set)), path("login", _csrf_exempt(_login)),
            path("logout", _csrf_exempt(_logout)), path("form", _csrf_exempt(_whoami))]


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        return _patterns()
    raise AttributeError(name)
