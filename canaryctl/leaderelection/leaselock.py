"""The API calls leader election makes on a coordination.k8s.io/v1 Lease, as raw JSON.

Writes are full updates (PUT) carrying the resourceVersion of the Lease as last seen, so
the API server itself arbitrates races: of two electors writing the same version, one
gets 409 Conflict and knows it lost. A patch would not give that guarantee.

Each call is bounded by a *total* timeout chosen by the caller and is never retried
underneath it, because a leader blocked in a request past its renew deadline must not
think it still leads. The generated client cannot promise that (urllib3 silently retries a
timed-out PUT up to three times, each with a fresh timeout) and its typed models reject
Lease fields newer than the client, so requests go through `kube.api_request` (the
ApiClient's settings and credentials, a rotated ServiceAccount token included, over
canaryctl's own connections, which never resend) but not through its models.

Standbys also watch the one Lease (`watch`, a stream of JSON lines) so that a released Lease
is taken at once rather than at the next poll; see `leasewatch`.
"""

from __future__ import annotations

import json

from kubernetes import client

from canaryctl import wire
from canaryctl.kube import api_request

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
MIN_TIMEOUT = 0.05  # seconds; a request is never sent with less (or no) time left


class LeaseConflict(Exception):
    """HTTP 409: another elector created or wrote the Lease first."""


class LeaseLock:
    """One Lease, named by namespace and name, read and written through `api`."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self._api = api
        self.namespace, self.name = namespace, name

    def get(self, timeout: float) -> dict | None:
        """The Lease, or None if it does not exist."""
        try:
            return self._request("GET", f"/{self.name}", None, timeout)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def create(self, spec: dict, timeout: float) -> dict:
        """Create the Lease with `spec`; LeaseConflict if it exists by now."""
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        return self._request("POST", "", body, timeout)

    def update(self, lease: dict, spec: dict, timeout: float) -> dict:
        """Replace `lease` (as read, resourceVersion included) with `spec` merged into its spec.

        Spec fields other than the election's (e.g. a strategy set by someone else) stay.
        LeaseConflict if the Lease changed since `lease` was read.
        """
        body = {**lease, "spec": {**(lease.get("spec") or {}), **spec}}
        return self._request("PUT", f"/{self.name}", body, timeout)

    def watch(
        self, resource_version: str, server_timeout: int, read_timeout: float
    ) -> wire.Response:
        """Open a watch of this Lease alone (fieldSelector on its name), streaming.

        An empty `resource_version` starts with the Lease as it is now (an ADDED event, none if
        it does not exist). The caller reads the stream and closes it; ApiException on refusal.
        """
        query = {
            "fieldSelector": f"metadata.name={self.name}",
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(server_timeout),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        path = LEASES.format(namespace=self.namespace)
        return api_request(self._api, "GET", path, query=query, timeout=(5.0, read_timeout))

    def _request(self, method: str, suffix: str, body: dict | None, timeout: float) -> dict:
        """One request, never resent, within `timeout` seconds; the response's JSON body.

        Raises LeaseConflict on 409, kubernetes ApiException on other errors, OSError when
        the API server cannot be reached in time.
        """
        path = LEASES.format(namespace=self.namespace) + suffix
        limit = max(timeout, MIN_TIMEOUT)
        try:
            response = api_request(
                self._api, method, path, body=body, timeout=(limit, limit), total=limit
            )
        except client.ApiException as error:
            if error.status == 409:
                raise LeaseConflict(f"HTTP 409 {error.reason}") from None
            raise
        return json.loads(response.data)
