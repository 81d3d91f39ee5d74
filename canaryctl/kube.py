"""Small Kubernetes client helpers: one way to build the ApiClient, one way to call the API.

Every part of canaryctl that talks to the API server gets its client from
`load_api_client`, so connection settings (TCP keep-alive for long watches, where the
credentials come from) are decided once. Status annotations are written with a JSON merge
patch that names only our keys: no read-modify-write, no conflict with other writers of
the same Service, and `None` removes a key.

The controller's own calls (Service list and watch, status patches, Events, leases,
reviews, HTTPRoutes) go through `api_request`: the ApiClient's settings and credentials (a
rotated token included) over canaryctl's own kept-alive connections (`canaryctl.wire`), raw
JSON in and out. Neither the generated client's typed layer nor urllib3 is on that path:
the typed layer costs a few tenths of a millisecond per call (argument validation,
serialization) and loading the `CoreV1Api` class alone builds validators for hundreds of
methods (about 20 MB and most of a second of CPU at start); urllib3 costs about 1 ms of CPU
per request, more than the rest of a weight change. The wire speaks plain and CONNECT-tunnel
HTTP proxies (`proxy` in the kubeconfig), not SOCKS.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import certifi
from kubernetes import client, config
from kubernetes.client.rest import is_socks_proxy_url, should_bypass_proxies
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME, InClusterConfigLoader
from kubernetes.utils.keepalive import tcp_keepalive_socket_options

from canaryctl import wire
from canaryctl.objects import Service

SERVICEACCOUNT_DIR_ENV = "CANARYCTL_SERVICEACCOUNT_DIR"
DEFAULT_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for ordinary calls
T = TypeVar("T")


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient from `kubeconfig` if given, else in-cluster config, else ~/.kube/config
    ($KUBECONFIG); `context` picks a kubeconfig context other than the current one.

    In a pod, the ServiceAccount token and CA are read from $CANARYCTL_SERVICEACCOUNT_DIR
    (default: where Kubernetes mounts them); the token is re-read as the kubelet rotates it.
    """
    configuration = client.Configuration()
    if kubeconfig or context:
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    elif os.environ.get(SERVICE_HOST_ENV_NAME):
        _load_incluster(configuration)
    else:
        config.load_kube_config(client_configuration=configuration)
    if hasattr(configuration, "keep_alive"):  # kubernetes >= 37: TCP keep-alive as client-go does
        configuration.keep_alive = True
    return client.ApiClient(configuration)


def context_namespace(kubeconfig: str | None, context: str | None = None) -> str:
    """The namespace of the kubeconfig context (default: the current one), as kubectl uses it;
    else `default`."""
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    return (chosen or {}).get("context", {}).get("namespace") or "default"


def add_kube_flags(parser: argparse.ArgumentParser) -> None:
    """`--kubeconfig` and `--context`, as kubectl spells them, for the user-facing commands."""
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: in-cluster config, then $KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument("--context", help="the kubeconfig context to use (default: its current)")


def _load_incluster(configuration: client.Configuration) -> None:
    directory = Path(os.environ.get(SERVICEACCOUNT_DIR_ENV) or DEFAULT_SERVICEACCOUNT_DIR)
    try:
        InClusterConfigLoader(
            token_filename=str(directory / "token"), cert_filename=str(directory / "ca.crt")
        ).load_and_set(configuration)
    except ConfigException as error:
        raise ConfigException(f"in-cluster config from {directory}: {error}") from None


def api_request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, Any] | None = None,
    body: Any = None,
    content_type: str = JSON,
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
    total: float | None = None,
) -> wire.Response:
    """One call to the API server: `body` sent as JSON, the raw response handed back unread.

    The caller reads it (`read_json`, or `lines()` for a watch). Answers other than 2xx
    raise kubernetes.client.ApiException (the subclass for its status, e.g. 404 or 410), as
    the generated client does; connection trouble raises OSError (see `canaryctl.wire`).
    Nothing is retried here; `total` bounds the whole call (see `wire.Pool.request`).
    """
    configuration = api.configuration
    headers = {"Accept": JSON, "User-Agent": api.user_agent}
    token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token:
        headers["Authorization"] = token
    if body is not None:
        headers["Content-Type"] = content_type
    target = path + ("?" + _query_string(query) if query else "")
    response = api_pool(api).request(
        method,
        target,
        headers=headers,
        body=None if body is None else json.dumps(body).encode(),
        timeout=timeout,
        total=total,
    )
    if not 200 <= response.status < 300:
        text = response.data.decode("utf-8", "replace")
        client.ApiException.from_response(http_resp=response, body=text, data=None)  # raises
    return response


def _query_string(query: Mapping[str, Any]) -> str:
    """`query` URL-encoded, booleans as the API spells them (`watch=true`)."""
    return urllib.parse.urlencode(
        [
            (key, str(value).lower() if isinstance(value, bool) else value)
            for key, value in query.items()
        ]
    )


_pools: weakref.WeakKeyDictionary[client.ApiClient, wire.Pool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def api_pool(api: client.ApiClient) -> wire.Pool:
    """The kept-alive connections of `api` to its API server (made on first use)."""
    pool = _pools.get(api)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(api) or _pools.setdefault(api, _pool_for(api.configuration))
    return pool


def _pool_for(configuration: client.Configuration) -> wire.Pool:
    """Connections as the generated client's urllib3 pool would make them from `configuration`:
    its CA (else certifi's), client certificate, TLS server name, proxy and keep-alive."""
    context = None
    if configuration.host.startswith("https:"):
        context = ssl.create_default_context(
            cafile=configuration.ssl_ca_cert
            or (None if configuration.ca_cert_data else certifi.where()),
            cadata=configuration.ca_cert_data,
        )
        if not configuration.verify_ssl or configuration.assert_hostname is False:
            context.check_hostname = False
        if not configuration.verify_ssl:
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
    proxy = configuration.proxy
    if proxy and should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
        proxy = None
    if proxy and is_socks_proxy_url(proxy):
        raise ConfigException(f"SOCKS proxies are not supported (proxy {proxy.split('://')[0]})")
    socket_options = configuration.socket_options
    if socket_options is None and getattr(configuration, "keep_alive", False):
        socket_options = tcp_keepalive_socket_options()
    assert_hostname = configuration.assert_hostname
    return wire.Pool(
        configuration.host,
        ssl_context=context,
        server_hostname=configuration.tls_server_name
        or (assert_hostname if isinstance(assert_hostname, str) else None),
        proxy=proxy or None,
        proxy_headers=configuration.proxy_headers,
        socket_options=socket_options,
        max_idle=configuration.connection_pool_maxsize or 10,
    )


def patch_service_annotations(
    api: client.ApiClient, namespace: str, name: str, changes: Mapping[str, str | None]
) -> Service:
    """Set (value) or remove (None) annotations of one Service; return the Service as patched.

    Raises kubernetes.client.ApiException (e.g. 404 if the Service is gone).
    """
    return Service.from_dict(read_json(_patch_annotations(api, namespace, name, changes)))


def write_service_annotations(
    api: client.ApiClient, namespace: str, name: str, changes: Mapping[str, str | None]
) -> None:
    """`patch_service_annotations` for a writer that needs no answer (the controller: its
    watch brings the new version anyway), so the answer is read but not parsed."""
    _patch_annotations(api, namespace, name, changes).drain_conn()


def _patch_annotations(
    api: client.ApiClient, namespace: str, name: str, changes: Mapping[str, str | None]
) -> wire.Response:
    body = {"metadata": {"annotations": dict(changes)}}
    path = f"/api/v1/namespaces/{namespace}/services/{name}"
    return api_request(api, "PATCH", path, body=body, content_type=MERGE_PATCH)


ListRequest = Callable[..., wire.Response]  # (limit, _continue, ...) -> raw response

# the list and watch parameters as the generated client names them -> as the API does
_QUERY = {
    "limit": "limit",
    "_continue": "continue",
    "watch": "watch",
    "resource_version": "resourceVersion",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
    "label_selector": "labelSelector",
    "field_selector": "fieldSelector",
}


def list_request(api: client.ApiClient, path: str) -> ListRequest:
    """A raw list (or, with watch=True, watch) call of the collection at `path`, taking the
    generated client's keyword names (`limit`, `_continue`, `_request_timeout`, ...)."""

    def request(
        _request_timeout: tuple[float, float] = REQUEST_TIMEOUT, **params: Any
    ) -> wire.Response:
        query = {_QUERY[name]: value for name, value in params.items()}
        return api_request(api, "GET", path, query=query, timeout=_request_timeout)

    return request


def service_list_request(api: client.ApiClient, namespace: str | None) -> ListRequest:
    """A raw list call for the Services of `namespace` (None: of all namespaces)."""
    if namespace is None:
        return list_request(api, "/api/v1/services")
    return list_request(api, f"/api/v1/namespaces/{namespace}/services")


def list_services(
    request: ListRequest, page_size: int = 500, timeout: tuple[float, float] = REQUEST_TIMEOUT
) -> tuple[list[Service], str]:
    """Every Service `request` lists, page by page, and the list's resourceVersion."""
    return list_objects(request, Service.from_dict, page_size, timeout)


def list_objects(
    request: ListRequest,
    project: Callable[[dict], T],
    page_size: int = 500,
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> tuple[list[T], str]:
    """Every object `request` lists, page by page, projected; and the list's resourceVersion."""
    objects: list[T] = []
    token = None
    while True:
        params: dict[str, Any] = {"limit": page_size, "_request_timeout": timeout}
        if token:
            params["_continue"] = token
        page = read_json(request(**params))
        objects.extend(project(item) for item in page.get("items") or ())
        metadata = page.get("metadata") or {}
        token = metadata.get("continue")
        if not token:
            return objects, metadata.get("resourceVersion", "")


def read_json(response: wire.Response) -> dict:
    """The JSON body of a raw response (its connection goes back to the pool once read)."""
    return json.loads(response.data)


def describe_error(error: Exception) -> str:
    """One line for logs: the HTTP status of an API error (its body can be long), else the text."""
    if isinstance(error, client.ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"
