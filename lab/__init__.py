"""The lab: containerlab topologies (`lab/topologies/`) and the simulated multi-protocol
device (`lab/sim/`) that `oss lab up` starts per node on its own 127.0.0.0/8 address."""
