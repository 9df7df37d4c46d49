"""Provisioning: service types from configs/services realised on the graph, rendered to
per-device configuration and pushed as one all-or-nothing transaction across devices, with its
journal, recovery, dry runs and drift checks (the README's map names each module)."""
