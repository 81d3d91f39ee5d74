"""A real local Kubernetes control plane (kube-apiserver + etcd built from Go modules)."""

from canaryctl.testing.localkube.build import (
    KUBERNETES_VERSION,
    LocalKubeUnavailable,
    ensure_binaries,
)
from canaryctl.testing.localkube.cluster import LocalKube, free_port, wait_until

__all__ = [
    "KUBERNETES_VERSION",
    "LocalKube",
    "LocalKubeUnavailable",
    "ensure_binaries",
    "free_port",
    "wait_until",
]
