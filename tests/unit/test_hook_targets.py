"""Where hooks may be sent (`canaryctl.release.hooktargets`): the default keeps them off
link-local addresses (cloud metadata); an allow list admits listed names, suffixes, networks."""

from __future__ import annotations

import pytest

from canaryctl.release.hooktargets import HookTargets

DEFAULT = HookTargets()


@pytest.mark.parametrize(
    "address", ["10.0.0.7", "127.0.0.1", "203.0.113.9", "::1", "fd00::5", "169.253.255.255"]
)
def test_by_default_any_address_but_link_local_is_allowed(address):
    assert DEFAULT.allowed("hooks", [address]) == ([address], None)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", "::ffff:169.254.169.254"],
)
def test_by_default_link_local_addresses_are_refused(address):
    allowed, why = DEFAULT.allowed("metadata", [address])
    assert allowed == []
    assert why == (
        f"metadata ({address}) is not a place hooks may call: --hook-allow allows any address "
        "but link-local"
    )


def test_a_host_with_some_addresses_refused_keeps_the_others_in_order():
    addresses = ["169.254.169.254", "10.0.0.2", "10.0.0.1"]
    assert DEFAULT.allowed("mixed", addresses) == (["10.0.0.2", "10.0.0.1"], None)


def test_a_literal_address_is_named_once():
    assert DEFAULT.allowed("169.254.169.254", ["169.254.169.254"])[1] == (
        "169.254.169.254 is not a place hooks may call: --hook-allow allows any address but "
        "link-local"
    )


LISTED = HookTargets(
    ["checks.tools.svc", ".hooks.svc.cluster.local", "*.example.com", "10.1.0.0/16"]
)


@pytest.mark.parametrize(
    "host, address",
    [
        ("checks.tools.svc", "192.0.2.1"),  # a listed name, wherever it resolves
        ("CHECKS.tools.svc.", "192.0.2.1"),  # names compare without case or the root dot
        ("a.hooks.svc.cluster.local", "192.0.2.1"),  # a suffix
        ("hooks.svc.cluster.local", "192.0.2.1"),  # a suffix covers the name itself
        ("deep.a.example.com", "192.0.2.1"),  # *. is a suffix too
        ("anything.else", "10.1.200.3"),  # an address in a listed network
    ],
)
def test_an_allow_list_admits_listed_names_suffixes_and_networks(host, address):
    assert LISTED.allowed(host, [address]) == ([address], None)


@pytest.mark.parametrize(
    "host, address",
    [
        ("other.tools.svc", "192.0.2.1"),  # a listed name is not a suffix
        ("evilhooks.svc.cluster.local", "192.0.2.1"),  # a suffix starts at a dot
        ("example.com.evil.net", "192.0.2.1"),
        ("anything.else", "10.2.0.1"),  # outside the network
        ("checks.tools.svc", "169.254.169.254"),  # a listed name may not reach link-local
    ],
)
def test_an_allow_list_refuses_the_rest(host, address):
    allowed, why = LISTED.allowed(host, [address])
    assert allowed == [] and why is not None
    assert why.endswith(
        "--hook-allow allows checks.tools.svc, .hooks.svc.cluster.local, *.example.com, 10.1.0.0/16"
    )


def test_a_listed_network_may_open_link_local_on_purpose():
    targets = HookTargets(["169.254.10.0/24"])
    assert targets.allowed("sidecar", ["169.254.10.4"]) == (["169.254.10.4"], None)
    assert targets.allowed("metadata", ["169.254.169.254"])[0] == []


def test_a_host_that_resolves_to_nothing_is_not_refused_here():
    assert LISTED.allowed("nowhere", []) == ([], None)  # the client reports the failed lookup


@pytest.mark.parametrize("pattern", ["", "http://x.example", "a..b", "*.", ".", "bad name", "x/y"])
def test_a_pattern_that_is_no_name_suffix_or_network_is_refused(pattern):
    with pytest.raises(ValueError, match="--hook-allow"):
        HookTargets([pattern])
