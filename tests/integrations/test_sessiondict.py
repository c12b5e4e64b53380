"""SessionDict: a real dict with the frameworks' accessed/modified flags and "emptied" tracking."""

from __future__ import annotations

import json

from sessionward.integrations.sessiondict import SessionDict
from sessionward.testing import memory_manager


def test_is_the_session_data_and_a_plain_dict_for_json() -> None:
    mgr = memory_manager()
    session = mgr.new()
    view = SessionDict(session=session)
    view["a"] = 1
    view |= {"b": 2}
    assert session["b"] == 2 and json.loads(json.dumps(view)) == {"a": 1, "b": 2}
    assert view.popitem() == ("b", 2) and type(view.copy()) is dict
    assert "keys=['a']" in repr(view) and "1" not in repr(view)


def test_manager_changes_are_not_the_apps() -> None:
    """A merge or login replacing the data does not set modified nor count as emptied."""
    mgr = memory_manager()
    session = mgr.new()
    view = SessionDict(session=session)
    session.replace_data({"x": 1})
    session.replace_data({})
    assert not view.modified and not view.emptied_by_app


def test_emptied_then_login_is_not_an_end() -> None:
    mgr = memory_manager()
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    view = SessionDict(session=session)
    view.clear()
    assert view.emptied_by_app
    mgr.login(session, "alice")
    assert not view.emptied_by_app
    view["k"] = 1
    del view["k"]
    assert view.emptied_by_app  # emptied again under the new ID
