"""A minimal Django project (settings, URLs, views) for the MW suite.

Configured once per process; each test swaps the manager with
``configure_manager``.  Login goes through ``django.contrib.auth.login`` with
real users in a SQLite database (migrated once).  The same project serves
WSGI (:func:`wsgi_application`) and ASGI (:func:`asgi_application`, for the
async views under ``/a/``), and hosts Django's own session tests
(``tests/upstream/test_django.py``).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

_ready = threading.Lock()
_app: Any = None
HOLD_LOADED = threading.Event()
"""``/slow-set`` sets this once it has loaded the session..."""
HOLD_RELEASE = threading.Event()
"""...and waits for this before changing it (a request overtaken by a logout)."""


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
                    "django.middleware.csrf.CsrfViewMiddleware",
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
    User.objects.create_user("bob", password="pw-bob-123")


def wsgi_application() -> Any:
    """The Django WSGI handler (configuring Django on first call)."""
    global _app
    with _ready:
        if _app is None:
            _configure()
            from django.core.wsgi import get_wsgi_application

            _app = get_wsgi_application()
    return _app


def asgi_application() -> Any:
    """The Django ASGI handler of the same project."""
    wsgi_application()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


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


def _text(body: object) -> Any:
    from django.http import HttpResponse

    return HttpResponse(str(body), content_type="text/plain")


def _clear(request: Any) -> Any:
    request.session.clear()
    return _text("cleared")


def _expiry(request: Any) -> Any:
    request.session["n"] = request.session.get("n", "x")
    request.session.set_expiry(int(request.GET["s"]))
    return _text(request.session.get_expiry_age())


def _age(request: Any) -> Any:
    return _text(f"{request.session.get_expiry_age()};{request.session.get('n')}")


def _slow_set(request: Any) -> Any:
    request.session.get("n")
    HOLD_LOADED.set()
    HOLD_RELEASE.wait(10)
    request.session["n"] = "late"
    return _text("set")


def _password(request: Any) -> Any:
    from django.contrib.auth import update_session_auth_hash

    user = request.user
    user.set_password(request.POST["new"])
    user.save()
    update_session_auth_hash(request, user)
    return _text("changed")


def _login_as(request: Any) -> Any:
    from django.contrib.auth import authenticate, login

    user = authenticate(request, username=request.POST["u"], password=request.POST["p"])
    if user is None:
        return _text("denied")
    login(request, user)
    return _text(f"in={user.username}")


def _csrf_token(request: Any) -> Any:
    from django.middleware.csrf import get_token

    return _text(get_token(request))


def _csrf_post(request: Any) -> Any:
    return _text("posted")


async def _a_whoami(request: Any) -> Any:
    user = await request.auser()
    name = user.username if user.is_authenticated else "anon"
    return _text(f"user={name};n={await request.session.aget('n')}")


async def _a_login(request: Any) -> Any:
    from django.contrib.auth import aauthenticate, alogin

    user = await aauthenticate(request, username="alice", password="pw-alice-123")
    await alogin(request, user)
    return _text("in")


async def _a_logout(request: Any) -> Any:
    from django.contrib.auth import alogout

    await alogout(request)
    return _text("bye")


async def _a_set(request: Any) -> Any:
    await request.session.aset("n", request.GET.get("n", ""))
    return _text("ok")


async def _a_cycle(request: Any) -> Any:
    await request.session.acycle_key()
    return _text("cycled")


async def _a_flush(request: Any) -> Any:
    await request.session.aflush()
    return _text("flushed")


def _csrf_exempt(view: Any) -> Any:
    from django.views.decorators.csrf import csrf_exempt

    return csrf_exempt(view)


def _patterns() -> list[Any]:
    from django.urls import path

    exempt = _csrf_exempt
    return [path("plain", _plain), path("whoami", _whoami), path("peek", _peek),
            path("set", exempt(_set)), path("login", exempt(_login)),
            path("logout", exempt(_logout)), path("form", exempt(_whoami)),
            path("clear", exempt(_clear)), path("expiry", exempt(_expiry)), path("age", _age),
            path("slow-set", exempt(_slow_set)), path("password", exempt(_password)),
            path("login-as", exempt(_login_as)), path("csrf-token", _csrf_token),
            path("csrf-post", _csrf_post), path("a/whoami", _a_whoami),
            path("a/login", exempt(_a_login)), path("a/logout", exempt(_a_logout)),
            path("a/set", exempt(_a_set)), path("a/cycle", exempt(_a_cycle)),
            path("a/flush", exempt(_a_flush))]


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        return _patterns()
    raise AttributeError(name)
