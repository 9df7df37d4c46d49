"""Assurance: telemetry collection (SNMP polling and traps, gNMI subscriptions) and the KPIs
computed from it, as canonical events (oss/events.py)."""
