"""The controller's gateway view: full reads never overwrite newer writes; failed writes force a re-read."""

from canaryctl.gateway.cache import GatewayCache
from canaryctl.gateway.model import AppState, Upstream

V1 = Upstream("ns", "v1", "v1.ns.svc.cluster.local", 80)
V2 = Upstream("ns", "v2", "v2.ns.svc.cluster.local", 80)


def state(name: str, weight: int = 0, owned: bool = True) -> AppState:
    return AppState(name, owned, V1, V2 if weight else None, weight)


def test_replace_reports_only_what_changed_and_marks_the_view_loaded():
    view = GatewayCache()
    assert not view.loaded
    assert view.replace({"a": state("a"), "b": state("b", owned=False)}) == ["a", "b"]
    assert view.loaded
    assert view.replace({"a": state("a"), "c": state("c")}) == ["b", "c"]
    assert view.get("b") is None and view.owned_names() == ["a", "c"]


def test_a_full_read_taken_before_a_write_does_not_undo_it():
    view = GatewayCache()
    view.replace({"a": state("a", 10)})
    mark = view.write_mark()  # the full read starts ...
    view.put(state("a", 20))  # ... a worker writes meanwhile ...
    view.remove("gone")
    changed = view.replace(
        {"a": state("a", 10), "gone": state("gone")}, mark
    )  # ... the read ends, older
    assert view.get("a").weight == 20 and view.get("gone") is None
    assert changed == []
    # a later read (taken after the write) is trusted again
    assert view.replace({"a": state("a", 30)}, view.write_mark()) == ["a"]
    assert view.get("a").weight == 30


def test_invalidate_until_the_next_write_or_read():
    view = GatewayCache()
    view.put(state("a", 10))
    view.invalidate("a")
    assert view.is_stale("a")
    view.put(state("a", 10))
    assert not view.is_stale("a")
    view.invalidate("a")
    view.replace({"a": state("a", 10)}, view.write_mark())
    assert not view.is_stale("a")
