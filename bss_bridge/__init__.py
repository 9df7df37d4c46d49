"""The integrated BSS bridge: product catalogue, customers and accounts, TMF622 product orders
that become provisioning, usage charging, bill runs and automatic SLA credits.

Empty for now: the foundation (inventory, storage, API) it builds on comes first.
"""
