"""Telemetry outputs: InfluxDB (with a bounded spool), Prometheus gauges, minute roll-ups."""
