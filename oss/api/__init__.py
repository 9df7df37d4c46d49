"""The REST API: `create_app(daemon)` builds it; routes/ holds one router per resource."""

from oss.api.app import create_app

__all__ = ["create_app"]
