"""The NOC console (issue 17): static files served by the daemon under /ui/, talking to the API
with the caller's bearer token. `mount(app)` registers it; `vendor` fetches cytoscape.js."""

from oss.console.serving import mount

__all__ = ["mount"]
