"""Every table of the daemon. Inventory rows use natural keys (device and interface names),
because that is how engineers, containerlab files and the graph name things."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from oss.store.base import Base, UtcDateTime, utcnow


class SiteRow(Base):
    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")


class DeviceRow(Base):
    __tablename__ = "devices"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("sites.name", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str | None] = mapped_column(String(64))
    image: Mapped[str | None] = mapped_column(String(255))
    mgmt_address: Mapped[str | None] = mapped_column(String(64))
    loopback: Mapped[str | None] = mapped_column(String(64))
    credentials_ref: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class InterfaceRow(Base):
    __tablename__ = "interfaces"

    device: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.name", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    speed_bps: Mapped[int | None] = mapped_column(BigInteger)
    admin_state: Mapped[str] = mapped_column(String(16))
    oper_state: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")


class LinkRow(Base):
    __tablename__ = "links"
    __table_args__ = (
        ForeignKeyConstraint(
            ["a_device", "a_interface"],
            ["interfaces.device", "interfaces.name"],
            ondelete="CASCADE",
            name="fk_links_a_end_interfaces",
        ),
        ForeignKeyConstraint(
            ["b_device", "b_interface"],
            ["interfaces.device", "interfaces.name"],
            ondelete="CASCADE",
            name="fk_links_b_end_interfaces",
        ),
        UniqueConstraint("a_device", "a_interface", name="uq_links_a_end"),
        UniqueConstraint("b_device", "b_interface", name="uq_links_b_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    a_device: Mapped[str] = mapped_column(String(64))
    a_interface: Mapped[str] = mapped_column(String(64))
    b_device: Mapped[str] = mapped_column(String(64))
    b_interface: Mapped[str] = mapped_column(String(64))
    capacity_bps: Mapped[int] = mapped_column(BigInteger)
    latency_us: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))


class TokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the whole token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(255))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


class ServiceRow(Base):
    """A provisioned service or slice: its intent (type and parameters) and lifecycle state."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    customer: Mapped[str] = mapped_column(String(128), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[Any] = mapped_column(JSON)
    vlan: Mapped[int | None] = mapped_column(Integer)
    vrf: Mapped[str | None] = mapped_column(String(64))
    rd: Mapped[str | None] = mapped_column(String(32))
    placement: Mapped[Any] = mapped_column(JSON, nullable=True)
    sla: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ServiceResourceRow(Base):
    """What a service uses in the graph: devices, interfaces, and links with reserved bandwidth.

    No foreign keys to the inventory: the relation must outlive a re-imported link so the
    reservation is still known (and refused or released) rather than silently lost."""

    __tablename__ = "service_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # device | interface | link
    device: Mapped[str | None] = mapped_column(String(64), index=True)
    interface: Mapped[str | None] = mapped_column(String(64))
    link_id: Mapped[int | None] = mapped_column(Integer, index=True)
    role: Mapped[str] = mapped_column(String(32))
    bandwidth_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)


class TransactionRow(Base):
    """The journal of one multi-device change, written before any device is touched."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The instance that runs it (cluster mode): another finishes it if that one dies.
    instance: Mapped[str | None] = mapped_column(String(128), index=True)


class TransactionDeviceRow(Base):
    """One device's part of a transaction: what it gets, how to undo it, and each step."""

    __tablename__ = "transaction_devices"

    transaction_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True
    )
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    intent: Mapped[Any] = mapped_column(JSON)
    owned: Mapped[Any] = mapped_column(JSON)
    pre_image: Mapped[Any] = mapped_column(JSON, nullable=True)
    persist_id: Mapped[str | None] = mapped_column(String(64))
    steps: Mapped[Any] = mapped_column(JSON)


class AlarmRow(Base):
    """One alarm (TMF642 shape): repeats of one problem on one object fold into it (`count`),
    keyed by `reduction_key` while it is open."""

    __tablename__ = "alarms"
    # One open alarm per reduction key, whichever instance writes it (issue 18): the database's
    # guarantee, under the alarm path's own serialisation.
    __table_args__ = (
        Index(
            "ux_alarms_open_key",
            "reduction_key",
            unique=True,
            postgresql_where=text("open"),
            sqlite_where=text("open"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reduction_key: Mapped[str] = mapped_column(String(255), index=True)
    open: Mapped[bool] = mapped_column(Boolean, index=True)  # not cleared yet
    alarm_type: Mapped[str] = mapped_column(String(48))  # X.733 event type
    perceived_severity: Mapped[str] = mapped_column(String(16), index=True)
    probable_cause: Mapped[str] = mapped_column(String(64))
    specific_problem: Mapped[str] = mapped_column(Text, default="")
    alarmed_object_type: Mapped[str] = mapped_column(String(32))  # device, interface, link, service
    alarmed_object: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16))  # raised, updated, cleared
    ack_state: Mapped[str] = mapped_column(String(16), default="unacknowledged")
    ack_user_id: Mapped[str | None] = mapped_column(String(128))
    raised_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    changed_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    cleared_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    service_affecting: Mapped[bool] = mapped_column(Boolean, default=False)
    affected_services: Mapped[Any] = mapped_column(JSON, default=list)
    impact: Mapped[Any] = mapped_column(JSON, nullable=True)  # customers, slices, devices cut off
    parent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    is_root_cause: Mapped[bool] = mapped_column(Boolean, default=False)
    count: Mapped[int] = mapped_column(Integer, default=1)
    sequence: Mapped[int] = mapped_column(Integer, default=1)  # every change: +1 (consumers dedupe)
    details: Mapped[Any] = mapped_column(JSON, nullable=True)


class OutboxRow(Base):
    """Messages for the outside (the NOC's MQTT feed), written in the same database transaction
    as the change they report and sent in id order once the broker takes them."""

    __tablename__ = "outbox"
    # the publisher reads unsent rows in order (and prunes sent ones); the feed looks up an
    # alarm's last retained topic. No index of channel or sent_at alone: this one serves both,
    # and each index costs every insert and every mark as sent (migration 0006).
    __table_args__ = (Index("ix_outbox_unsent", "channel", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(512), index=True)
    payload: Mapped[str] = mapped_column(Text)  # "" with retain: delete the retained message
    retain: Mapped[bool] = mapped_column(Boolean, default=False)
    qos: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class KpiMinuteRow(Base):
    """Minute roll-ups of a KPI per interface or service: enough for SLA windows."""

    __tablename__ = "kpi_minutes"

    object_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    sum: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)


class MapViewRow(Base):
    """A named layout of the console's map (`default` exists before its first save)."""

    __tablename__ = "map_views"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))


class MapPositionRow(Base):
    """Where an operator put a device in a view. It goes with the device (ON DELETE CASCADE):
    a layout never holds a device back, unlike what a live service uses (oss.store.in_use)."""

    __tablename__ = "map_positions"

    view: Mapped[str] = mapped_column(
        String(64), ForeignKey("map_views.name", ondelete="CASCADE"), primary_key=True
    )
    device: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.name", ondelete="CASCADE"), primary_key=True, index=True
    )
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)


class ClusterLeaseRow(Base):
    """A lease (cluster mode): `member:<instance>`, `leader`, `singleton:<job>`. Its token moves
    on at every acquisition; a holder's writes carry it and the database refuses a stale one
    (the function `oss_fence`, migration 0008). Times are the database's clock."""

    __tablename__ = "cluster_leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    token: Mapped[int] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ClusterMemberRow(Base):
    """What an instance says about itself when it registers (its liveness is its lease)."""

    __tablename__ = "cluster_members"

    instance: Mapped[str] = mapped_column(String(128), primary_key=True)
    api_url: Mapped[str | None] = mapped_column(String(512))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeviceShareRow(Base):
    """Which instance polls a device, as the leader assigned it (cluster mode)."""

    __tablename__ = "device_shares"

    device: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.name", ondelete="CASCADE"), primary_key=True
    )
    instance: Mapped[str] = mapped_column(String(128), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    leader_token: Mapped[int] = mapped_column(BigInteger)
