"""The one registry shape every plugin family uses (oss.plugins)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oss.plugins import Registry

Factory = Callable[[], str]


def _one() -> str:
    return "one"


def _two() -> str:
    return "two"


def test_a_registry_holds_its_plugins_by_name_in_registration_order() -> None:
    registry: Registry[Factory] = Registry("toy")
    registry.register("b")(_two)
    decorated = registry.register("a")(_one)

    assert decorated is _one  # the decorator hands the plugin back
    assert registry.names() == ("b", "a")
    assert list(registry.items()) == [("b", _two), ("a", _one)]
    assert registry.get("a") is _one
    assert registry.get("missing") is None
    assert registry["b"]() == "two"
    assert len(registry) == 2


def test_a_name_registers_once() -> None:
    registry: Registry[Factory] = Registry("toy")
    registry.add("x", _one)
    registry.add("x", _one)  # its module imported again: the same plugin, fine

    with pytest.raises(ValueError, match=r"toy 'x' is registered twice: .*test_plugins\._one"):
        registry.add("x", _two)
    assert registry["x"] is _one


def test_restoring_undoes_what_was_registered_inside() -> None:
    registry: Registry[Factory] = Registry("toy")
    registry.add("kept", _one)

    with registry.restoring():
        registry.add("scratch", _two)
        assert registry.names() == ("kept", "scratch")
    assert registry.names() == ("kept",)

    with registry.restoring(empty=True):
        assert registry.names() == ()
        registry.add("kept", _two)  # another plugin under the name, inside only
    assert registry["kept"] is _one
