"""The cluster's status document (`GET /api/v1/cluster`, `oss cluster status`): who is a member,
who leads, which jobs run where, how many devices each instance polls, and how fresh each lease
is. Lease ages come from the database's clock (`clock_timestamp()`), never one instance's."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ClusterInstance(BaseModel):
    instance: str = Field(description="the instance's name (`cluster.instance`)")
    alive: bool = Field(description="its membership lease is unexpired")
    roles: list[str] = Field(
        description="what it runs: `leader` and the singleton jobs it holds (`noc-feed`, "
        "`usage`, `bill-runs`, `txn-recovery`, ...)"
    )
    devices: int = Field(ge=0, description="devices it owns: polls, subscribes to, alarms on")
    lease_age_s: float | None = Field(
        description="seconds since its membership lease was renewed; null without a cluster"
    )
    expires_in_s: float | None = Field(
        description="seconds until that lease expires (negative: expired); null without a cluster"
    )
    api_url: str | None = Field(description="the API address it advertises (`cluster.api_url`)")
    started_at: datetime | None = Field(description="when the instance registered")
    pid: int | None = Field(description="its process id on its host")


class ClusterSingleton(BaseModel):
    job: str = Field(description="the job its lease `singleton:<job>` guards")
    holder: str | None = Field(description="the instance holding it; null when nobody does")
    token: int | None = Field(description="the holder's fencing token")
    expires_in_s: float | None = Field(
        description="seconds until the lease expires (negative: expired, free to take)"
    )


class ClusterStatus(BaseModel):
    enabled: bool = Field(description="`cluster.enabled`: false for a single instance")
    instance: str = Field(description="the instance that answered")
    lease_s: float = Field(description="the lease period, seconds (`cluster.lease_s`)")
    leader: str | None = Field(description="the instance holding the `leader` lease")
    instances: list[ClusterInstance]
    singletons: list[ClusterSingleton]
    unassigned_devices: int = Field(
        ge=0, description="devices of the inventory no live instance owns yet"
    )
