"""The emulator's state semantics, without HTTP: what API7 Cloud accepts, refuses and derives."""

from __future__ import annotations

import threading

import pytest

from canaryctl.testing.api7cloud.resources import ApiError
from canaryctl.testing.api7cloud.store import Store


def upstream(version: str, host: str = "svc", port: int = 80) -> dict:
    return {
        "version": version,
        "upstream": {"scheme": "http", "targets": [{"host": host, "port": port, "weight": 1}]},
    }


def app_body(name: str = "error-page", **fields) -> dict:
    return {
        "name": name,
        "hosts": [name],
        "path_prefix": "/",
        "default_upstream_version": "v1",
        "upstreams": [upstream("v1"), upstream("v2")],
        **fields,
    }


def canary_body(
    state: str = "in_progress", percent: int | None = 10, version: str = "v2", **fields
) -> dict:
    body = {
        "name": "c",
        "state": state,
        "type": "percent",
        "canary_upstream_version": version,
        **fields,
    }
    if percent is not None:
        body["percent"] = percent
    return body


@pytest.fixture
def store() -> Store:
    return Store("acme", "prod")


@pytest.fixture
def app(store: Store) -> dict:
    return store.create_app(None, app_body())


def status_of(call, *args) -> int:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value.status


def test_default_org_and_cluster_are_named_and_use_string_ids(store: Store):
    assert store.org(store.org_id)["name"] == "acme"
    assert store.cluster(store.cluster_id)["name"] == "prod"
    assert store.user()["org_ids"] == [store.org_id]
    assert (
        store.org_id.isdigit() and store.cluster_id.isdigit() and store.org_id != store.cluster_id
    )
    assert int(store.org_id) > 2**53


def test_org_and_cluster_ids_can_be_fixed():
    fixed = Store(org_id="7", cluster_id=str(10**17 + 424_242_000_000))
    assert (fixed.org_id, fixed.cluster_id) == ("7", str(10**17 + 424_242_000_000))
    assert fixed.create_app(None, app_body())["id"] not in (fixed.org_id, fixed.cluster_id)
    with pytest.raises(ValueError):
        Store(cluster_id="prod")


def test_create_ignores_management_fields_sent_by_the_client(store: Store):
    sent = app_body(
        id="0",
        status=0,
        created_at="0001-01-01T00:00:00Z",
        canary_release_id=["1"],
        canary_upstream_version_list=["v9"],
        cluster_id="7",
    )
    created = store.create_app(None, sent)
    assert created["id"] != "0" and created["id"].isdigit()
    assert created["cluster_id"] == created["control_plane_id"] == store.cluster_id
    assert created["status"] == 50 and created["created_at"] != "0001-01-01T00:00:00Z"
    assert created["canary_release_id"] is None and created["canary_upstream_version_list"] is None


def test_absent_arrays_stay_null(store: Store):
    created = store.create_app(None, {"name": "bare"})
    assert created["labels"] is None and created["upstreams"] is None and created["hosts"] is None


def test_duplicate_app_name_in_a_cluster_is_400(store: Store, app: dict):
    assert status_of(store.create_app, None, app_body()) == 400
    other = store.create_app(None, app_body("other"))
    assert status_of(store.replace_app, None, other["id"], app_body()) == 400


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"hosts": ["a"]},
        {"name": 5},
        {"name": "a", "hosts": "a"},
        {"name": "a", "active": "0"},
        {"name": "a", "upstreams": [{"upstream": {}}]},
        {"name": "a", "upstreams": [{"version": "v", "upstream": {"targets": [{"host": "h"}]}}]},
    ],
)
def test_malformed_app_bodies_are_400(store: Store, body):
    assert status_of(store.create_app, None, body) == 400


def test_unknown_ids_are_404(store: Store, app: dict):
    assert status_of(store.org, "1") == 404
    assert status_of(store.cluster, "1") == 404
    assert status_of(store.get_app, None, "1") == 404
    assert status_of(store.get_app, "1", app["id"]) == 404
    assert status_of(store.get_api, app["id"], "1") == 404
    assert status_of(store.get_canary, app["id"], "1") == 404
    assert status_of(store.list_apis, "1") == 404


def test_children_of_another_app_are_404(store: Store, app: dict):
    other = store.create_app(None, app_body("other"))
    api = store.create_api(
        app["id"], {"name": "all", "paths": [{"path": "/", "path_type": "Prefix"}]}
    )
    canary = store.create_canary(app["id"], canary_body())
    assert status_of(store.get_api, other["id"], api["id"]) == 404
    assert status_of(store.delete_canary, other["id"], canary["id"]) == 404


def test_delete_app_deletes_its_apis_and_canaries(store: Store, app: dict):
    api = store.create_api(app["id"], {"name": "all"})
    store.create_canary(app["id"], canary_body())
    store.delete_app(None, app["id"])
    assert store.list_apps() == []
    assert status_of(store.list_canaries, app["id"]) == 404
    assert status_of(store.get_api, app["id"], api["id"]) == 404


def test_canary_version_must_name_an_upstream(store: Store, app: dict):
    assert status_of(store.create_canary, app["id"], canary_body(version="v3")) == 400


@pytest.mark.parametrize("percent", [-1, 101, "10", 10.5, True])
def test_percent_outside_0_100_or_not_an_int_is_400(store: Store, app: dict, percent):
    assert status_of(store.create_canary, app["id"], canary_body(percent=percent)) == 400


@pytest.mark.parametrize(
    "field,value", [("state", "running"), ("state", None), ("type", "rules"), ("type", None)]
)
def test_unknown_state_or_type_is_400(store: Store, app: dict, field: str, value):
    assert status_of(store.create_canary, app["id"], canary_body(**{field: value})) == 400


def test_missing_percent_means_zero(store: Store, app: dict):
    assert store.create_canary(app["id"], canary_body(percent=None))["percent"] == 0


def test_only_one_canary_in_progress_per_app(store: Store, app: dict):
    first = store.create_canary(app["id"], canary_body())
    assert status_of(store.create_canary, app["id"], canary_body()) == 400
    paused = store.create_canary(app["id"], canary_body(state="paused"))
    assert status_of(store.replace_canary, app["id"], paused["id"], canary_body()) == 400
    store.replace_canary(app["id"], first["id"], canary_body(percent=20))  # itself: allowed
    store.replace_canary(app["id"], first["id"], canary_body(state="paused"))
    assert store.replace_canary(app["id"], paused["id"], canary_body())["state"] == "in_progress"


def test_app_read_only_fields_follow_the_canaries(store: Store, app: dict):
    live = store.create_canary(app["id"], canary_body())
    view = store.get_app(None, app["id"])
    assert view["canary_release_id"] == [live["id"]] and view["canary_upstream_version_list"] == [
        "v2"
    ]
    store.replace_canary(app["id"], live["id"], canary_body(state="paused"))
    view = store.get_app(None, app["id"])
    assert view["canary_release_id"] is None and view["canary_upstream_version_list"] == ["v2"]
    store.delete_canary(app["id"], live["id"])
    assert store.get_app(None, app["id"])["canary_upstream_version_list"] is None


def test_finishing_makes_the_canary_version_the_default(store: Store, app: dict):
    canary = store.create_canary(app["id"], canary_body())
    store.replace_canary(app["id"], canary["id"], canary_body(state="finished"))
    view = store.get_app(None, app["id"])
    assert view["default_upstream_version"] == "v2"
    assert view["canary_release_id"] is None and view["canary_upstream_version_list"] is None


def test_re_putting_a_finished_canary_does_not_override_a_later_default(store: Store, app: dict):
    canary = store.create_canary(app["id"], canary_body(state="finished"))
    assert store.get_app(None, app["id"])["default_upstream_version"] == "v2"
    store.replace_app(None, app["id"], app_body())  # default back to v1 by hand
    store.replace_canary(app["id"], canary["id"], canary_body(state="finished"))
    assert store.get_app(None, app["id"])["default_upstream_version"] == "v1"


@pytest.mark.parametrize(
    "rule",
    [
        {"position": "body", "key": "k", "operator": "equal", "value": "1"},
        {"position": "header", "key": "k", "operator": "like", "value": "1"},
        {"position": "header", "key": "", "operator": "equal", "value": "1"},
    ],
)
def test_bad_rules_are_400(store: Store, app: dict, rule: dict):
    assert status_of(store.create_canary, app["id"], canary_body(type="rule", rules=[rule])) == 400


def test_returned_objects_are_copies(store: Store, app: dict):
    app["name"] = "changed"
    store.get_app(None, app["id"])["hosts"].append("evil")
    assert store.get_app(None, app["id"])["name"] == "error-page"
    assert store.get_app(None, app["id"])["hosts"] == ["error-page"]


def test_concurrent_creates_never_share_an_id_or_a_name(store: Store):
    results: list = []

    def create(index: int) -> None:
        try:
            results.append(store.create_app(None, app_body(f"app-{index % 20}")))
        except ApiError as error:
            results.append(error.status)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [r for r in results if isinstance(r, dict)]
    assert len(created) == 20 and results.count(400) == 40
    assert len({app["id"] for app in created}) == 20


def test_published_apps_skip_unpublished_and_other_hosts(store: Store, app: dict):
    store.create_app(None, app_body("hidden", active=1))
    live = store.create_canary(app["id"], canary_body())
    [published] = store.published_apps("error-page")
    assert published.app["id"] == app["id"] and published.live_canary["id"] == live["id"]
    assert store.published_apps("hidden") == [] and store.published_apps("nobody") == []
