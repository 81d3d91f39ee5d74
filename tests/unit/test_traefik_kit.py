"""The pure parts of the Traefik test kit: pinned build module, bodies, flags, answers."""

from __future__ import annotations

import requests

from canaryctl.testing.traefik import build
from canaryctl.testing.traefik.backends import endpoint_slice_body, service_body
from canaryctl.testing.traefik.gateway import TraefikGateway
from canaryctl.testing.traefik.routes import route_condition
from canaryctl.testing.traefik.traffic import answer_label


def test_the_shipped_module_pins_traefik_and_carries_its_replaces():
    gomod = build.shipped_gomod()
    assert build.traefik_version() == "v3.7.13"
    for replaced in (
        "github.com/traefik/traefik/dynamic/ext => ./ext",
        "github.com/gorilla/mux => github.com/containous/mux",
        "github.com/abbot/go-http-auth => github.com/containous/go-http-auth",
        "github.com/go-acme/lego/v5 => ./lego",
    ):
        assert f"replace {replaced}" in gomod
    assert "exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible" in gomod


def test_lego_is_copied_without_dns_provider_packages_and_writable(tmp_path):
    lego = tmp_path / "lego"
    for path in ("acme/api.go", "providers/dns/zz_gen.go", "providers/dns/route53/r.go"):
        (lego / path).parent.mkdir(parents=True, exist_ok=True)
        (lego / path).write_text("package x\n")
    (lego / "providers" / "http" / "webroot").mkdir(parents=True)
    for path in lego.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)  # as in the module cache

    copy = tmp_path / "copy"
    build._copy_without_dns_providers(lego, copy)
    assert (copy / "acme" / "api.go").is_file()
    assert (copy / "providers" / "http" / "webroot").is_dir()
    assert list((copy / "providers" / "dns").iterdir()) == []
    (copy / "providers" / "dns" / "dns_providers.go").write_text("package dns\n")  # writable
    (copy / "acme" / "api.go").write_text("package acme\n")


def test_the_endpoint_slice_port_name_is_the_service_port_name():
    service_port = service_body("v1")["spec"]["ports"][0]
    slice_body = endpoint_slice_body("v1", "10.213.0.2", 8001)
    assert slice_body["ports"] == [{"name": service_port["name"], "port": 8001, "protocol": "TCP"}]
    assert slice_body["metadata"]["labels"]["kubernetes.io/service-name"] == "v1"
    assert slice_body["endpoints"][0]["addresses"] == ["10.213.0.2"]


def test_traefik_flags_listen_on_loopback_and_never_phone_home():
    gateway = TraefikGateway(kube=None, namespace="ns")  # type: ignore[arg-type]
    gateway.port, gateway.admin_port = 18000, 18001
    flags = gateway.arguments()
    assert "--entryPoints.web.address=127.0.0.1:18000" in flags
    assert "--entryPoints.traefik.address=127.0.0.1:18001" in flags
    assert "--global.checkNewVersion=false" in flags
    assert "--global.sendAnonymousUsage=false" in flags
    assert "--providers.providersThrottleDuration=0s" in flags
    selector = f"canaryctl.testing/traefik={gateway.instance}"
    assert f"--providers.kubernetesgateway.labelSelector={selector}" in flags
    addresses = [flag.split("=", 1)[1] for flag in flags if ".address=" in flag]
    assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)


def _response(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    return response


def test_answers_are_labelled_by_version_else_by_status():
    assert answer_label(_response(200, b'{"version": "v2"}')) == "v2"
    assert answer_label(_response(500, b'{"version": "v1"}')) == "v1"
    assert answer_label(_response(500, b"Internal Server Error")) == "HTTP 500"
    assert answer_label(_response(404, b"404 page not found")) == "HTTP 404"
    assert answer_label(_response(200, b"[1]")) == "HTTP 200"


def test_route_condition_reads_only_the_given_controller_and_gateway():
    def parent(controller: str, gateway: str, status: str) -> dict:
        return {
            "controllerName": controller,
            "parentRef": {"name": gateway},
            "conditions": [{"type": "Accepted", "status": status}],
        }

    route = {
        "status": {
            "parents": [
                parent("other.io/controller", "gw", "False"),
                parent("traefik.io/gateway-controller", "other-gw", "False"),
                parent("traefik.io/gateway-controller", "gw", "True"),
            ]
        }
    }
    found = route_condition(route, "Accepted", "traefik.io/gateway-controller", "gw")
    assert found == {"type": "Accepted", "status": "True"}
    assert route_condition(route, "ResolvedRefs", "traefik.io/gateway-controller", "gw") is None
    assert route_condition({}, "Accepted", "traefik.io/gateway-controller", "gw") is None
