"""The localkube build without Go: replace lines, versions, ldflags, the staged cache entry."""

import pytest

from canaryctl.testing.localkube.build import (
    required_version,
    staged_dir,
    staging_replaces,
    version_ldflags,
)

GOMOD = """module k8s.io/kubernetes

require (
	go.etcd.io/etcd/client/v3 v3.7.0
	k8s.io/api v0.0.0
)

require (
	go.etcd.io/etcd/server/v3 v3.7.1 // indirect
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	k8s.io/kube-openapi => k8s.io/kube-openapi v0.0.0-2025
)
"""


def test_staging_modules_map_to_their_published_tags():
    assert staging_replaces(GOMOD, "v1.37.2") == [
        "replace k8s.io/api => k8s.io/api v0.37.2",
        "replace k8s.io/client-go => k8s.io/client-go v0.37.2",
    ]


def test_required_version_finds_indirect_requirements():
    assert required_version(GOMOD, "go.etcd.io/etcd/server/v3") == "v3.7.1"
    assert required_version(GOMOD, "go.etcd.io/etcd/client/v3") == "v3.7.0"


def test_ldflags_stamp_the_release_for_client_and_server():
    flags = version_ldflags("v1.37.2")
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=37" in flags


def test_a_staged_directory_replaces_the_entry_only_when_complete(tmp_path):
    final = tmp_path / "v1" / "bin"
    final.mkdir(parents=True)
    (final / "old").write_text("old")
    with pytest.raises(RuntimeError), staged_dir(final) as staging:
        (staging / "half").write_text("half")
        raise RuntimeError("build failed")
    assert sorted(p.name for p in final.iterdir()) == ["old"]  # the old entry is untouched
    with staged_dir(final) as staging:
        (staging / "new").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["bin"]  # no staging left behind
