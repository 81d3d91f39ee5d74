"""`kube._pool_for`: the ApiClient's connection settings carried over to canaryctl's own wire.

The integration tests reach a real API server with a client certificate and, in-cluster,
with a ServiceAccount token; these cases are the settings a local API server cannot show:
verification turned off, a proxy and its exceptions, SOCKS, a path prefix, keep-alive.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from kubernetes import client
from kubernetes.config.config_exception import ConfigException

from canaryctl import kube


def configuration(host: str = "https://10.0.0.1:6443", **settings) -> client.Configuration:
    config = client.Configuration()
    config.host = host
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def test_verification_stays_on_by_default():
    context = kube._pool_for(configuration())._ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_verify_ssl_false_turns_verification_off():
    context = kube._pool_for(configuration(verify_ssl=False))._ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_plain_http_has_no_tls():
    assert kube._pool_for(configuration("http://127.0.0.1:8080"))._ssl_context is None


def test_a_proxy_is_used_unless_no_proxy_names_the_host():
    proxied = kube._pool_for(configuration(proxy="http://proxy.internal:3128"))
    assert proxied._proxy is not None and proxied._proxy.host == "proxy.internal"
    bypassed = kube._pool_for(
        configuration(proxy="http://proxy.internal:3128", no_proxy="10.0.0.1")
    )
    assert bypassed._proxy is None


def test_a_socks_proxy_is_refused_clearly():
    with pytest.raises(ConfigException, match="SOCKS"):
        kube._pool_for(configuration(proxy="socks5://proxy.internal:1080"))


def test_a_path_prefix_is_kept_for_every_request():
    pool = kube._pool_for(configuration("https://rancher.example/k8s/clusters/c-1"))
    assert pool.prefix == "/k8s/clusters/c-1" and pool.authority == "rancher.example"


def test_keep_alive_adds_tcp_keepalive_options():
    pool = kube._pool_for(configuration(keep_alive=True))
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in pool._socket_options
