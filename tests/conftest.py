"""Shared fixtures: the real local control plane comes from canaryctl.testing."""

pytest_plugins = ["canaryctl.testing.pytest_plugin"]
