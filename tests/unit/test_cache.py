"""ServiceStore: keyed storage, named indexes kept in step with every write, relist diffs."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from canaryctl.cache import ServiceStore
from canaryctl.objects import NO_ANNOTATIONS, Service


def view(
    name: str, rv: str = "1", namespace: str = "ns", app: str | None = None, **annotations: str
) -> Service:
    if app is not None:
        annotations["app"] = app
    return Service.from_dict(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "resourceVersion": rv,
                "annotations": annotations,
            },
            "spec": {"ports": [{"port": 80}]},
        }
    )


def by_app(service: Service) -> list[str]:
    return [service.annotations["app"]] if "app" in service.annotations else []


def by_every_annotation(service: Service) -> list[str]:
    return list(service.annotations.values())


@pytest.fixture
def store() -> ServiceStore:
    return ServiceStore({"app": by_app, "values": by_every_annotation})


def test_upsert_get_delete_return_what_was_stored(store):
    first, second = view("web", "1"), view("web", "2")
    assert store.upsert(first) is None
    assert store.upsert(second) is first
    assert store.get("ns/web") is second
    assert len(store) == 1 and store.keys() == ["ns/web"]
    assert store.delete("ns/web") is second
    assert store.delete("ns/web") is None
    assert store.get("ns/web") is None and len(store) == 0


def test_index_follows_updates_and_deletes(store):
    store.upsert(view("v1", app="shop"))
    store.upsert(view("v2", app="shop"))
    store.upsert(view("other", app="blog"))
    assert [s.name for s in store.by_index("app", "shop")] == ["v1", "v2"]

    store.upsert(view("v2", "2", app="blog"))  # moved to another app
    assert [s.name for s in store.by_index("app", "shop")] == ["v1"]
    assert [s.name for s in store.by_index("app", "blog")] == ["other", "v2"]

    store.delete("ns/v1")
    assert store.by_index("app", "shop") == []
    assert store.index_values("app") == ["blog"]


def test_object_filed_twice_under_one_value_is_listed_once(store):
    store.upsert(view("web", a="x", b="x"))
    assert [s.name for s in store.by_index("values", "x")] == ["web"]
    store.delete("ns/web")
    assert store.index_values("values") == []


def test_unknown_index_is_an_error(store):
    with pytest.raises(KeyError):
        store.by_index("nope", "x")


def test_answers_are_copies(store):
    store.upsert(view("web", app="shop"))
    store.list().clear()
    store.keys().clear()
    store.by_index("app", "shop").clear()
    assert (
        len(store.list()) == 1
        and store.keys() == ["ns/web"]
        and len(store.by_index("app", "shop")) == 1
    )
    with pytest.raises(TypeError):
        store.get("ns/web").annotations["app"] = "evil"  # type: ignore[index]


def test_replace_reports_added_updated_deleted_and_skips_unchanged(store):
    kept, changed, gone = view("kept"), view("changed", "1"), view("gone", app="shop")
    for service in (kept, changed, gone):
        store.upsert(service)
    changed_now, new = view("changed", "2"), view("new")

    changes = store.replace([view("kept"), changed_now, new])

    assert changes.added == [(None, new)]
    assert changes.updated == [(changed, changed_now)]
    assert changes.deleted == [(gone, None)]
    assert sorted(store.keys()) == ["ns/changed", "ns/kept", "ns/new"]
    assert store.get("ns/kept") is kept  # unchanged: the stored object stays
    assert store.by_index("app", "shop") == []


def test_replace_scoped_to_a_namespace_leaves_others_alone(store):
    store.upsert(view("a", namespace="one"))
    store.upsert(view("b", namespace="two"))
    store.upsert(view("c", namespace="twofold"))  # prefix of no concern: "two" != "twofold"

    changes = store.replace([], namespace="two")

    assert [old.key for old, _ in changes.deleted] == ["two/b"]
    assert sorted(store.keys()) == ["one/a", "twofold/c"]


def test_failing_indexer_leaves_the_store_unchanged():
    def broken(service: Service) -> list[str]:
        if service.resource_version == "2":
            raise ValueError("bad")
        return ["x"]

    store = ServiceStore({"x": broken})
    original = view("web", "1")
    store.upsert(original)
    with pytest.raises(ValueError):
        store.upsert(view("web", "2"))
    assert store.get("ns/web") is original and store.by_index("x", "x") == [original]


def test_concurrent_writers_keep_items_and_index_consistent(store):
    def writer(offset: int) -> None:
        for i in range(300):
            name = f"s{(offset + i) % 50}"
            if i % 3 == 2:
                store.delete(f"ns/{name}")
            else:
                store.upsert(view(name, str(i), app=f"app{i % 5}"))

    threads = [threading.Thread(target=writer, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    indexed = sorted(s.key for app in store.index_values("app") for s in store.by_index("app", app))
    assert indexed == sorted(store.keys())
    for service in store.list():
        assert service in store.by_index("app", service.annotations["app"])


def test_a_renamed_copy_of_a_service_is_filed_under_its_own_key():
    """`Service.key` is made once per object: a copy with another name must get its own."""
    original = Service("ns", "v1", "uid-1", "1", NO_ANNOTATIONS, ())
    renamed = replace(original, name="v2", uid="uid-2")
    assert (original.key, renamed.key) == ("ns/v1", "ns/v2")
    store: ServiceStore = ServiceStore({})
    store.upsert(original)
    store.upsert(renamed)
    assert sorted(service.key for service in store.list()) == ["ns/v1", "ns/v2"]
    assert original == replace(original)  # the key takes no part in equality
