"""The gateway cache: full reads never overwrite newer writes; a failed write makes an app suspect."""

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


def test_suspect_until_the_next_write_or_read():
    cache = GatewayCache()
    cache.put("a", state("a", 10))
    cache.mark_suspect("a")
    assert cache.is_suspect("a") and not cache.is_suspect("b")
    cache.put("a", state("a", 10))
    assert not cache.is_suspect("a")
    cache.mark_suspect("a")
    cache.replace({"a": state("a", 10)}, cache.write_mark())
    assert not cache.is_suspect("a")
