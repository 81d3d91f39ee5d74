"""Small Kubernetes client helpers: one way to build the ApiClient, one way to patch annotations.

Every part of canaryctl that talks to the API server gets its client from
`load_api_client`, so connection settings (TCP keep-alive for long watches, where the
credentials come from) are decided once. Status annotations are written with a JSON merge
patch that names only our keys: no read-modify-write, no conflict with other writers of
the same Service, and `None` removes a key.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME, InClusterConfigLoader

from canaryctl.objects import Service

SERVICEACCOUNT_DIR_ENV = "CANARYCTL_SERVICEACCOUNT_DIR"
DEFAULT_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
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


def patch_service_annotations(
    api: client.ApiClient, namespace: str, name: str, changes: Mapping[str, str | None]
) -> Service:
    """Set (value) or remove (None) annotations of one Service; return the Service as patched.

    Raises kubernetes.client.ApiException (e.g. 404 if the Service is gone).
    """
    body = {"metadata": {"annotations": dict(changes)}}
    response = client.CoreV1Api(api).patch_namespaced_service(
        name,
        namespace,
        body,
        _content_type=MERGE_PATCH,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
    return Service.from_dict(read_json(raw_response(response)))


ListRequest = Callable[..., urllib3.BaseHTTPResponse]  # (limit, _continue, ...) -> raw response


def service_list_request(api: client.ApiClient, namespace: str | None) -> ListRequest:
    """A raw list call for the Services of `namespace` (None: of all namespaces)."""
    core = client.CoreV1Api(api)
    if namespace is None:
        return lambda **params: cast(
            urllib3.BaseHTTPResponse,
            core.list_service_for_all_namespaces(_preload_content=False, **params),
        )
    return lambda **params: cast(
        urllib3.BaseHTTPResponse,
        core.list_namespaced_service(namespace, _preload_content=False, **params),
    )


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


def raw_response(result: object) -> urllib3.BaseHTTPResponse:
    """The result of a `_preload_content=False` call, typed as what it is.

    The client's annotations promise the model object whatever `_preload_content` says; with
    False the call returns the urllib3 response instead.
    """
    return cast(urllib3.BaseHTTPResponse, result)


def read_json(response: urllib3.BaseHTTPResponse) -> dict:
    """The JSON body of a raw (`_preload_content=False`) response, releasing its pooled connection.

    Reading the whole body first matters: a connection returned with unread bytes would
    garble the next request sent over it.
    """
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def describe_error(error: Exception) -> str:
    """One line for logs: the HTTP status of an API error (its body can be long), else the text."""
    if isinstance(error, client.ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"
