"""Device drivers, one module per protocol: netconf (ncclient, and an asyncio transport),
gnmi (pygnmi), snmp (pysnmp, gufo-snmp) with the trap receiver and its codec, cli (netmiko);
`platforms.py` reads configs/platforms, `targets.py` turns an inventory device into a
connection target, `credentials.py` resolves credential references.
"""
