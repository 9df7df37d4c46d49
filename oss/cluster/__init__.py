"""Several instances, one network: membership, device shares, a leader and singletons under
leases on PostgreSQL, every lease holder's writes fenced by the database (`oss.store.fencing`).

`build_cluster(settings.cluster, ...)` gives the composition root a `Cluster` (cluster mode) or
a `Solo` (one instance); see `cluster.py`. A sibling of the domain packages: it imports the
settings, the store, topology and the kernel; only delivery (`oss.app`, the API) imports it.
"""

from oss.cluster.cluster import Cluster, Solo, build_cluster

__all__ = ["Cluster", "Solo", "build_cluster"]
