"""Daemon settings: one pydantic-settings object from a YAML file and `OSS_*` environment.

Precedence, highest first: explicit overrides (CLI flags), environment (`OSS_API__PORT=9000`,
nested keys joined by `__`), the YAML file, defaults. Secrets (the database URL may hold a
password) are `SecretStr`, so they never print by accident.
"""

from __future__ import annotations

import contextvars
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oss.errors import ConfigError, InvalidInput
from oss.yaml_lines import key_lines, nearest_line, parse_yaml

ENV_PREFIX = "OSS_"
MiB = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- component sections: each component takes its own section; they live here so that the
# settings depend on no component (the components import them from here)


class PollerSettings(BaseModel):
    """Polling knobs (a section of the daemon's settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(60.0, gt=0, description="default polling interval per device")
    jitter_ratio: float = Field(
        0.1, ge=0, lt=1, description="each interval varies by up to this share, either way"
    )
    max_concurrency: int = Field(32, ge=1, description="devices polled at the same time")
    intervals_s: dict[str, float] = Field(
        default_factory=dict, description="per-device interval overrides, by device name"
    )

    def interval_for(self, device: str) -> float:
        return self.intervals_s.get(device, self.interval_s)


class ProbeSettings(BaseModel):
    """Active latency probes (oss/assurance/probes.py): each active service measured from its
    A-end device's CLI (its platform's `probe` data) to its B-end's loopback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="measure latency, jitter and loss per service")
    interval_s: float = Field(60.0, gt=0, description="a round of probes every this long")
    max_concurrency: int = Field(8, ge=1, description="probes running at the same time")
    max_workers: int = Field(8, ge=1, description="SSH worker threads of the probes' driver")


class InfluxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    url: str = Field(default="http://127.0.0.1:8086", description="InfluxDB v2 (or compatible)")
    org: str = "oss"
    bucket: str = "oss"
    token: SecretStr = Field(default=SecretStr(""), description="API token; empty sends none")
    verify_tls: bool = Field(
        default=True, description="verify the server certificate; turn off only for a lab"
    )
    timeout_s: float = Field(default=10.0, gt=0, description="time limit of one write")
    batch_size: int = Field(default=5000, ge=1, description="records per write")
    flush_interval_s: float = Field(default=1.0, gt=0, description="longest wait to fill a batch")
    queue_max: int = Field(default=100_000, ge=1, description="records kept in memory")
    spool_dir: Path | None = Field(
        default=None, description="on-disk spool for outages; absent, memory only"
    )
    spool_max_bytes: int = Field(default=256 * MiB, ge=4096, description="bound of the spool")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    shutdown_flush_s: float = Field(
        default=5.0, ge=0, description="on stop, time to write what is queued before spooling it"
    )


@dataclass(frozen=True)
class Threshold:
    """Raise when `metric` stays above `raise_above` for `min_duration_s`; clear once it falls
    below `clear_below` (the gap between the two is the hysteresis)."""

    metric: str
    raise_above: float
    clear_below: float
    min_duration_s: float = 0.0
    severity: str = "major"

    def __post_init__(self) -> None:
        if self.clear_below > self.raise_above:
            raise InvalidInput(
                f"threshold {self.metric}: clear_below ({self.clear_below}) must not be above "
                f"raise_above ({self.raise_above})"
            )
        if self.min_duration_s < 0:
            raise InvalidInput(f"threshold {self.metric}: min_duration_s must be >= 0")

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Threshold:
        try:
            return cls(
                metric=str(data["metric"]),
                raise_above=float(data["raise_above"]),
                clear_below=float(data["clear_below"]),
                min_duration_s=float(data.get("min_duration_s", 0.0)),
                severity=str(data.get("severity", "major")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"invalid threshold {dict(data)!r}: {exc}") from exc


class MqttTlsSettings(_Section):
    ca_file: Path | None = Field(default=None, description="CA bundle; None: the system's")
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(default=None, description="key of the client certificate")
    insecure: bool = Field(
        default=False,
        description="skip verifying the broker's certificate and name; lab use only",
    )


class MqttTelemetrySettings(_Section):
    """The MQTT telemetry output (oss/outputs/mqtt_telemetry.py): the collected events named
    in `events` to `<prefix>/telemetry/<event>/<device>[/<interface>]`, QoS 0, not retained,
    on the broker of the `mqtt` section (its own session: `client_id`)."""

    enabled: bool = False
    client_id: str = Field(default="oss-telemetry", min_length=1, max_length=64)
    events: list[str] = Field(
        default=["kpi.interface", "device.reachability"],
        description="names of the canonical events to publish",
    )
    queue_size: int = Field(
        default=10_000, ge=1, description="events held while the broker is slow or away"
    )


class NocFeedSettings(_Section):
    """Where and how the NOC feed publishes. The password is a SecretStr: never printed."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = Field(default="oss", description="topic prefix, e.g. 'oss' or 'noc/site1'")
    client_id: str = Field(default="oss-noc-feed", min_length=1, max_length=64)
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTlsSettings | None = Field(default=None, description="None: plain TCP")
    keepalive: int = Field(default=30, ge=5, le=65535, description="seconds")
    publish_timeout_s: float = Field(default=10.0, gt=0, description="wait for one PUBACK")
    batch_size: int = Field(default=500, ge=1, description="rows in flight per round")
    poll_interval_s: float = Field(default=1.0, gt=0, description="outbox check when not woken")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    keep_sent_s: float = Field(default=86400.0, ge=0, description="sent rows kept this long")
    telemetry: MqttTelemetrySettings = MqttTelemetrySettings()

    @field_validator("prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value or any(c in value for c in "+#\0"):
            raise ValueError("prefix must be a non-empty topic without wildcards (+, #)")
        return value


class ApiSettings(_Section):
    host: str = Field(default="127.0.0.1", description="listen address; loopback unless chosen")
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    graceful_timeout_s: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="larger request bodies are refused (413)"
    )
    max_import_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1, description="the same for a topology file import"
    )


class LogSettings(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ShutdownSettings(_Section):
    """Time budget of each shutdown stage, in seconds; stages run in this order."""

    ingress_s: float = Field(default=10.0, gt=0, description="stop accepting, drain requests")
    workers_s: float = Field(default=10.0, gt=0, description="collectors and background work")
    storage_s: float = Field(default=5.0, gt=0, description="flush and close the database")


class TopologySettings(_Section):
    import_file: Path | None = Field(
        default=None, description="containerlab file merged into the inventory at start-up"
    )


class DriverSettings(_Section):
    """How the daemon reaches devices."""

    allowed_networks: list[str] | None = Field(
        default=None,
        description="management addresses outside these networks are refused (a lab daemon "
        "sets 127.0.0.0/8); absent, any address",
    )
    ports: dict[Literal["netconf", "gnmi", "snmp", "cli"], int] = Field(
        default_factory=dict,
        description="per-protocol port overrides for every device (the non-root lab's ports)",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="time limit of one device call")
    credentials_dirs: list[Path] | None = Field(
        default=None,
        description="`credentials_ref: file:` paths must lie in these folders (e.g. "
        "[<state_dir>/credentials, /etc/oss/credentials]); absent, anywhere the daemon can read",
    )

    @field_validator("credentials_dirs")
    @classmethod
    def _absolute_dirs(cls, value: list[Path] | None) -> list[Path] | None:
        relative = [str(d) for d in value or () if not d.is_absolute()]
        if relative:
            raise ValueError(f"folders must be absolute paths: {', '.join(relative)}")
        return value


class ProvisioningSettings(_Section):
    asn: int = Field(default=65000, ge=1, le=4294967295, description="ASN in slice RDs")
    vlan_pool: tuple[int, int] = Field(default=(100, 3999), description="VLANs for path services")
    max_parallel: int = Field(default=64, ge=1, description="devices worked on at once")
    lock_wait_s: float = Field(
        default=300.0,
        ge=0,
        description="how long a transaction waits for a device another transaction (on this "
        "instance or another) is changing, before it fails naming the holder",
    )
    hold_before_confirm_s: float = Field(
        default=0.0,
        ge=0,
        description="fault injection for crash tests: wait this long between verify and the "
        "NETCONF confirmation; never set it in production",
    )


class AssuranceSettings(_Section):
    """Collection (SNMP polling, traps) and fault rules; see oss/assurance/pipeline.py."""

    enabled: bool = Field(default=True, description="poll devices and receive traps")
    polling: PollerSettings = PollerSettings()
    probes: ProbeSettings = ProbeSettings()
    traps_host: str = Field(default="127.0.0.1", description="trap receiver address")
    traps_port: int = Field(default=0, ge=0, le=65535, description="0: no trap receiver")
    trap_communities: list[SecretStr] = Field(default_factory=list)
    traps_receive_buffer_bytes: int = Field(
        default=16 << 20,
        ge=65_536,
        description="SO_RCVBUF asked for the trap socket (room for a burst); the kernel caps it "
        "at net.core.rmem_max unless the daemon has CAP_NET_ADMIN; the grant is logged at start",
    )
    traps_queue_size: int = Field(
        default=10_000,
        ge=1,
        description="traps decoded and waiting for the alarms at most; past it they are dropped "
        'and counted (oss_collection{counter="traps_dropped"})',
    )
    thresholds: list[dict[str, Any]] = Field(
        default_factory=list,
        description="TCA: [{metric, raise_above, clear_below, min_duration_s, severity}]",
    )
    refresh_s: float = Field(default=30.0, gt=0, description="re-read the device list")

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in value:
            try:
                Threshold.of(item)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        return value


class BssSettings(_Section):
    """The integrated BSS: catalogue, orders, usage charging, bills and SLA credits."""

    enabled: bool = Field(default=True, description="serve the BSS APIs and run its jobs")
    catalog_dir: Path | None = Field(
        default=None, description="product offerings (*.yaml); default configs/catalog"
    )
    usage_interval_s: float = Field(
        default=60.0, gt=0, description="how often telemetry becomes usage records"
    )


class AffinityRule(_Section):
    """Devices of a site (or a role) go to these instances while one of them is live."""

    site: str | None = None
    role: str | None = Field(default=None, description="a device role (its tag until tags exist)")
    instances: list[str] = Field(min_length=1)

    @field_validator("instances")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("an instance name is empty")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> AffinityRule:
        if (self.site is None) == (self.role is None):
            raise ValueError("an affinity rule names exactly one of site or role")
        return self


class ClusterSettings(_Section):
    """Several instances on one PostgreSQL database (see docs/deploy.md): membership leases,
    device shares assigned by a leader, singletons under leases, fencing tokens."""

    enabled: bool = Field(default=False, description="run as one instance of a cluster")
    instance: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=128,
        description="this instance's name, unique in the cluster (default: the host name)",
    )
    lease_s: float = Field(
        default=10.0,
        ge=1.0,
        le=300.0,
        description="lease period: a dead instance's devices are polled again within two",
    )
    api_url: str | None = Field(
        default=None, description="this instance's API address as others should reach it"
    )
    affinity: list[AffinityRule] = Field(
        default_factory=list, description="[{site|role: NAME, instances: [..]}], first match wins"
    )


def default_state_dir() -> Path:
    return Path(platformdirs.user_data_dir("oss", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    configs_dir: Path | None = Field(
        default=None,
        description="your own configs/ folder (platforms, services, templates, catalog, tmf), "
        "replacing the one shipped with the package",
    )
    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy async URL; default is SQLite in state_dir"
    )
    api: ApiSettings = ApiSettings()
    log: LogSettings = LogSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    topology: TopologySettings = TopologySettings()
    drivers: DriverSettings = DriverSettings()
    provisioning: ProvisioningSettings = ProvisioningSettings()
    assurance: AssuranceSettings = AssuranceSettings()
    influx: InfluxSettings = InfluxSettings()
    mqtt: NocFeedSettings = NocFeedSettings()
    bss: BssSettings = BssSettings()
    cluster: ClusterSettings = ClusterSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @field_validator("configs_dir")
    @classmethod
    def _configs_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.state_dir / 'oss.db'}"

    def cluster_problem(self) -> str | None:
        """Why these settings cannot run as a cluster instance, or None."""
        if not self.cluster.enabled:
            return None
        if not self.resolved_database_url().startswith("postgresql"):
            return (
                "cluster.enabled: cluster mode needs PostgreSQL (database_url: "
                "postgresql+asyncpg://USER@HOST/DB); SQLite is the single-instance default"
            )
        return None


_file_data: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("_file_data")


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds the already-parsed YAML file (see `load_settings`) into pydantic-settings."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return _file_data.get({}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_data.get({}))


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; any problem raises ConfigError naming the file, the key and why."""
    data, lines = _read_yaml(config) if config is not None else ({}, {})
    token = _file_data.set(data)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config, data, lines)) from None
    finally:
        _file_data.reset(token)
    problem = settings.cluster_problem()
    if problem is not None:
        line = nearest_line(lines, "cluster.enabled") if config is not None else None
        raise ConfigError(f"{config}:{line}: {problem}" if line else problem)
    return settings


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings file: {exc.strerror}") from None
    node, data = parse_yaml(path, text)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the settings file must be a mapping of keys, not {type(data).__name__}"
        )
    return data, key_lines(node)


def _describe(
    exc: ValidationError, config: Path | None, data: dict[str, Any], lines: dict[str, int]
) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        if config is not None and _in_file(data, err["loc"]):
            line = nearest_line(lines, key)
            where = f"{config}:{line}" if line else str(config)
            problems.append(f"{where}: {key}: {reason}")
        else:
            env = ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper()
            problems.append(f"setting {key} (environment {env} or option): {reason}")
    return "invalid settings:\n  " + "\n  ".join(problems)


def _in_file(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    current: Any = data
    for part in loc:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    return True
