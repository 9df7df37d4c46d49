"""Fault management: TMF642 alarms with reduction, clearing, thresholds and topology
correlation, and the NOC feed over MQTT."""
