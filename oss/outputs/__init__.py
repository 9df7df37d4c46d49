"""Where the collected events (`oss.events.Event` lists) go: the output contract and registry
(registry.py), InfluxDB with a bounded spool, Prometheus gauges, minute roll-ups, and MQTT
(the one client, the outbox's publisher, telemetry as JSON)."""
