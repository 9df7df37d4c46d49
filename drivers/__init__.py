"""Device drivers, one module per protocol: netconf (ncclient), gnmi (pygnmi), snmp (pysnmp),
cli (netmiko), each behind a small async `typing.Protocol`.

Empty for now: they arrive with the drivers issue, on top of the inventory in `topology`.
"""
