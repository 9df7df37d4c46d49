"""The integrated BSS bridge: product catalogue, customers and accounts, TMF622 product orders
that become provisioning, usage charging, bill runs and automatic SLA credits.

`bridge.py` builds it for the daemon; the README's map names each module.
"""
