"""Provisioning: service models rendered to per-device configuration and pushed as one
transaction across devices (issue 4). So far: template rendering."""
