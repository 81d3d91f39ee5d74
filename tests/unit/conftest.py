"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture
def count_calls(monkeypatch) -> Callable[[ModuleType, str], list[tuple]]:
    """`count_calls(module, name)`: the arguments of every call to `module.name` from now on
    (the calls still go through), in a list that grows as they are made."""

    def count(module: ModuleType, name: str) -> list[tuple]:
        calls: list[tuple] = []
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args: calls.append(args) or real(*args))
        return calls

    return count
