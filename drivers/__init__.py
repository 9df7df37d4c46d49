"""Device drivers, one module per protocol: netconf (ncclient, and an asyncio transport),
gnmi (pygnmi), snmp (pysnmp, gufo-snmp) with the trap receiver and its codec, cli (netmiko);
`platforms.py` reads configs/platforms, `credentials.py` resolves credential references.
Drivers take a connection target (`base.Target`); they know no inventory model.
"""
