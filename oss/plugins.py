"""One registry shape for every plugin family (after nornir's `PluginRegister`): configuration
protocols, telemetry collectors and outputs each keep a `Registry` of their plugins by name,
which the plugin's own module fills when it is imported.

    OUTPUTS: Registry[OutputFactory] = Registry("output")

    @OUTPUTS.register("influx")
    def _influx(context: OutputContext) -> InfluxOutput | None: ...

A registry is a read-only mapping of name -> plugin in registration order. A name registers
once: the same plugin again (its module imported twice) is fine, another plugin under a taken
name is a programming error. Imports nothing of the project (kernel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

F = TypeVar("F")


class Registry(Mapping[str, F]):
    def __init__(self, family: str) -> None:
        self.family = family  # names the plugin in the duplicate-name error
        self._plugins: dict[str, F] = {}

    def add(self, name: str, plugin: F) -> F:
        """Register `plugin` under `name`."""
        known = self._plugins.get(name)
        if known is not None and known is not plugin and _qualified(known) != _qualified(plugin):
            raise ValueError(f"{self.family} {name!r} is registered twice: {_qualified(known)}")
        self._plugins[name] = plugin
        return plugin

    def register(self, name: str) -> Callable[[F], F]:
        """A decorator that registers what it decorates under `name`."""
        return lambda plugin: self.add(name, plugin)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._plugins)

    @contextmanager
    def restoring(self, *, empty: bool = False) -> Iterator[None]:
        """Registrations made inside are undone on exit (tests register toy plugins); with
        `empty`, the registry holds only what is registered inside."""
        saved = dict(self._plugins)
        if empty:
            self._plugins.clear()
        try:
            yield
        finally:
            self._plugins.clear()
            self._plugins.update(saved)

    def __getitem__(self, name: str) -> F:
        return self._plugins[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)


def _qualified(plugin: object) -> str:
    """Where the plugin is defined: a module imported twice registers an equal name."""
    name = getattr(plugin, "__qualname__", None)
    if name is None:
        return repr(plugin)
    return f"{getattr(plugin, '__module__', '?')}.{name}"
