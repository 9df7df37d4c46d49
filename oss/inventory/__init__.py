"""The inventory: the live topology graph, loaded from the database and written through.

It sits above the graph (`topology`, which needs no database) and below the domain: each
change is checked against the graph, stored with its audit entry and in-use check in one
transaction (`oss.store`, `oss.audit`), then applied to the graph.
"""

from oss.inventory.write_through import ImportReport, Inventory

__all__ = ["ImportReport", "Inventory"]
