"""Assurance: telemetry collection (SNMP polling and traps, gNMI subscriptions; one contract and
registry, collectors.py), the KPIs computed from it, as canonical events (oss/events.py), and
the pipeline that offers every event list to the outputs (pipeline.py)."""
