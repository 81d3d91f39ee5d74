"""The gateway cache: full reads never overwrite newer writes; failed writes make an app suspect."""

from datetime import UTC, datetime, timedelta

from canaryctl.gateway.cache import GatewayCache
from canaryctl.gateway.model import AppState, Upstream

V1 = Upstream("ns", "v1", "v1.ns.svc.cluster.local", 80)
V2 = Upstream("ns", "v2", "v2.ns.svc.cluster.local", 80)


def state(name: str, weight: int = 0, owned: bool = True) -> AppState:
    return AppState(name, owned, V1, V2 if weight else None, weight)


def test_replace_reports_only_what_changed_and_marks_the_cache_loaded():
    cache = GatewayCache()
    assert not cache.loaded
    assert cache.replace({"a": state("a"), "b": state("b", owned=False)}) == ["a", "b"]
    assert cache.loaded
    assert cache.replace({"a": state("a"), "c": state("c")}) == ["b", "c"]
    assert cache.get("b") is None and cache.owned_names() == ["a", "c"]


def test_a_full_read_taken_before_a_write_does_not_undo_it():
    cache = GatewayCache()
    cache.replace({"a": state("a", 10)})
    mark = cache.write_mark()  # the full read starts ...
    cache.put("a", state("a", 20))  # ... a worker writes meanwhile ...
    cache.put("gone", None)
    changed = cache.replace(
        {"a": state("a", 10), "gone": state("gone")}, mark
    )  # ... the read ends, older
    assert cache.get("a").weight == 20 and cache.get("gone") is None
    assert changed == []
    # a later read (taken after the write) is trusted again
    assert cache.replace({"a": state("a", 30)}, cache.write_mark()) == ["a"]
    assert cache.get("a").weight == 30


T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_suspect_app_is_read_before_the_next_decision_and_again_when_its_window_ends():
    cache = GatewayCache()
    cache.put("a", state("a", 10))
    cache.mark_suspect("a", until=at(60))
    assert cache.needs_read("a", at(1)) and not cache.needs_read("b", at(1))
    cache.put_read("a", state("a", 10), at(5))  # read before deciding: suspicion settled...
    assert not cache.needs_read("a", at(30))
    assert cache.verify_in("a", at(30)) == 30.0  # ...but the window is still open
    assert cache.needs_read("a", at(60))  # its end: read once more
    cache.put_read("a", state("a", 10), at(61))
    assert not cache.needs_read("a", at(62)) and cache.verify_in("a", at(62)) is None


def test_a_new_suspicion_extends_the_window_and_a_full_read_settles_the_immediate_read():
    cache = GatewayCache()
    cache.mark_suspect("a", until=at(60))
    cache.mark_suspect("a", until=at(30))  # an earlier end never shortens the window
    assert cache.verify_in("a", T0) == 60.0
    cache.replace({"a": state("a", 10)}, cache.write_mark())
    assert not cache.needs_read("a", at(1)) and cache.needs_read("a", at(60))
