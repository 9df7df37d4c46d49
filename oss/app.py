"""`build(settings) -> Runtime`: the one place where the daemon is wired together."""

from __future__ import annotations

from oss.api import create_app
from oss.api.server import ApiService
from oss.runtime import Runtime
from oss.settings import Settings


def build(settings: Settings) -> tuple[Runtime, ApiService]:
    runtime = Runtime(settings)
    api = ApiService(create_app(runtime), settings.api)
    runtime.add_service(api)
    return runtime, api
