"""The simulated lab: one SimDevice per containerlab node, each on its own loopback address,
serving NETCONF, gNMI, SNMP and an SSH CLI from the same model.

Addresses: a node keeps its `mgmt-ipv4` when it is a loopback address; otherwise it gets the
next free 127.10.0.N. `subnet=` relocates every node into one /24 (127.x.y.0/24), in node
order, so two labs of the same file can run side by side. Nothing is ever bound or sent outside
127.0.0.0/8.

Ports: as root the standard ones (NETCONF 830, gNMI 57400, SNMP 161, CLI 22); otherwise ports
below 1024 move up by 10000 (10830, 10161, 10022; gNMI stays 57400). Every node has its own
address, so every node uses the same ports.

Links share state: a link set down is oper-down at both ends (and both devices send linkDown),
and so is a link with one end disabled (admin down switches its laser off);
a node set down stops all its servers (connections are refused, SNMP goes silent) and its
neighbours' interfaces go oper-down. Every interface that is up carries a modest simulated
traffic rate, so counters advance.

Secrets live in the state directory (files mode 0600): one SSH host key and one login for every
node, an SNMP community, a CA for gNMI TLS (the server certificate names every node address).
The lab writes `credentials.yaml` in the format of `drivers/credentials.py` (usable as
`credentials_ref: file:<path>`), `known_hosts` and an `ssh_config` that points at it, and
`lab.json` with the pid, the control socket and every node's address and ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import errno
import functools
import ipaddress
import json
import logging
import math
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import asyncssh
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab.files import write_private
from lab.sim.cli_server import CliServer
from lab.sim.control import ControlServer
from lab.sim.datastore import Datastores, RpcFailure
from lab.sim.gnmi_data import SetRejected
from lab.sim.gnmi_server import rejection_text, start_gnmi_server
from lab.sim.model import Change, Leaves, SimDevice
from lab.sim.netconf_server import NetconfServer
from lab.sim.paths import Route, RouteLink, route
from lab.sim.snmp_agent import SnmpAgent
from lab.sim.sshd import LabLogin, server_options
from oss.errors import InvalidInput, OssError
from topology.clab import ClabTopology, parse_clab
from topology.model import Endpoint, LinkState

log = logging.getLogger(__name__)

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
DEFAULT_POOL = ipaddress.IPv4Network("127.10.0.0/24")
STATE_FILE = "lab.json"
CONTROL_SOCKET = "control.sock"
LOG_FILE = "lab.log"
LAB_USERNAME = "admin"


class LabError(OssError, RuntimeError):
    """The lab could not start or do what was asked."""


@dataclass(frozen=True)
class Ports:
    netconf: int
    gnmi: int
    snmp: int
    cli: int

    @classmethod
    def standard(cls) -> Ports:
        return cls(netconf=830, gnmi=57400, snmp=161, cli=22)

    @classmethod
    def high(cls) -> Ports:
        """The non-root scheme: ports below 1024 move up by 10000."""
        std = cls.standard()
        return cls(**{k: p + 10000 if p < 1024 else p for k, p in std.as_dict().items()})

    @classmethod
    def for_this_user(cls) -> Ports:
        return cls.standard() if os.geteuid() == 0 else cls.high()

    def as_dict(self) -> dict[str, int]:
        return {"netconf": self.netconf, "gnmi": self.gnmi, "snmp": self.snmp, "cli": self.cli}


def require_loopback(host: str, what: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(f"{what} '{host}' is not an IP address") from None
    if address not in LOOPBACK:
        raise InvalidInput(f"{what} '{host}' is outside 127.0.0.0/8; the lab stays on loopback")
    return str(address)


def parse_receiver(text: str) -> tuple[str, int]:
    """`127.0.0.1:1162` -> ("127.0.0.1", 1162), loopback only."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"trap receiver '{text}': expected HOST:PORT")
    return require_loopback(host, "trap receiver"), int(port)


# --- secrets and files ----------------------------------------------------------------------


@dataclass(frozen=True)
class LabSecrets:
    login: LabLogin
    community: str = field(repr=False)
    host_key: asyncssh.SSHKey = field(repr=False)
    ca_cert: x509.Certificate = field(repr=False)
    ca_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> LabSecrets:
        """Reuse the state directory's secrets, so known_hosts and the CA survive a restart."""
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secrets_file = state_dir / "secrets.yaml"
        key_file = state_dir / "ssh_host_ed25519_key"
        ca_file, ca_key_file = state_dir / "gnmi-ca.pem", state_dir / "gnmi-ca.key"
        if secrets_file.exists() and key_file.exists() and ca_key_file.exists():
            data = yaml.safe_load(secrets_file.read_text(encoding="utf-8"))
            ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
            if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
                raise LabError(f"{ca_key_file}: not an EC key")
            return cls(
                login=LabLogin(data["username"], data["password"]),
                community=data["community"],
                host_key=asyncssh.read_private_key(str(key_file)),
                ca_cert=x509.load_pem_x509_certificate(ca_file.read_bytes()),
                ca_key=ca_key,
            )
        login = LabLogin(LAB_USERNAME, secrets.token_urlsafe(18))
        community = "lab-" + secrets.token_hex(8)
        write_private(
            secrets_file,
            yaml.safe_dump(
                {"username": login.username, "password": login.password, "community": community}
            ),
        )
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        write_private(key_file, host_key.export_private_key())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key)
        write_private(
            ca_key_file,
            ca_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_private(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
        return cls(login, community, host_key, ca_cert, ca_key)


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oss lab CA")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def _server_certificate(secrets_: LabSecrets, addresses: Sequence[str]) -> tuple[bytes, bytes]:
    """A gNMI server certificate (PEM cert, PEM key) naming every node address."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oss lab device")]))
        .issuer_name(secrets_.ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(secrets_.ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# --- nodes and links ------------------------------------------------------------------------


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


@dataclass
class LabNode:
    name: str
    address: str
    device: SimDevice
    datastores: Datastores
    netconf: NetconfServer
    cli: CliServer
    snmp: SnmpAgent
    gnmi: _Stoppable | None = None
    up: bool = True


@dataclass
class LabLink:
    a: Endpoint
    b: Endpoint
    up: bool = True
    latency_us: int = 0
    loss: float = 0.0

    def ends(self) -> tuple[Endpoint, Endpoint]:
        return self.a, self.b


def assign_addresses(topology: ClabTopology, subnet: str | None = None) -> dict[str, str]:
    """Every node's loopback address (see the module docstring)."""
    names = [d.name for d in topology.devices]
    if subnet is not None:
        try:
            network = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise InvalidInput(f"subnet '{subnet}' is not an IPv4 network") from None
        if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(LOOPBACK):
            raise InvalidInput(f"subnet '{subnet}' is outside 127.0.0.0/8")
        hosts = list(network.hosts())
        if len(hosts) < len(names):
            raise InvalidInput(f"subnet {subnet} has room for {len(hosts)} of {len(names)} nodes")
        return {name: str(host) for name, host in zip(names, hosts, strict=False)}
    chosen: dict[str, str] = {}
    for device in topology.devices:
        if device.mgmt_address is None:
            continue
        address = ipaddress.ip_address(device.mgmt_address)
        if address.version == 4 and address in LOOPBACK:
            if str(address) in chosen.values():
                raise InvalidInput(f"node {device.name}: address {address} is used twice")
            chosen[device.name] = str(address)
    pool = (str(h) for h in DEFAULT_POOL.hosts() if str(h) not in chosen.values())
    for name in names:
        if name not in chosen:
            try:
                chosen[name] = next(pool)
            except StopIteration:
                raise InvalidInput(f"more than {DEFAULT_POOL} holds; use a subnet") from None
    return chosen


def default_rate_bps(speed_bps: int, index: int) -> int:
    """A modest rate: 1/1000 of the line rate (at least 1 Mbit/s), a little different per port."""
    return max(1_000_000, speed_bps // 1000) * (10 + index % 4) // 10


class Lab:
    """The simulated lab of one topology, in one asyncio loop."""

    def __init__(
        self,
        topology: ClabTopology,
        state_dir: Path,
        *,
        ports: Ports | None = None,
        subnet: str | None = None,
        trap_receivers: Sequence[tuple[str, int]] = (),
        gnmi: bool = True,
        gnmi_insecure: bool = False,
        topology_file: Path | None = None,
    ) -> None:
        self.topology = topology
        self.topology_file = topology_file
        self.state_dir = state_dir
        self.ports = ports or Ports.for_this_user()
        self.trap_receivers = [(require_loopback(h, "trap receiver"), p) for h, p in trap_receivers]
        self.gnmi_enabled = gnmi
        self.gnmi_insecure = gnmi_insecure
        self.addresses = assign_addresses(topology, subnet)
        self.secrets = LabSecrets.load_or_create(state_dir)
        self.nodes: dict[str, LabNode] = {}
        self.links: list[LabLink] = []
        self._link_at: dict[Endpoint, LabLink] = {}
        self._gnmi_tls: tuple[bytes, bytes, None] | None = None
        self._build()

    @classmethod
    def from_file(cls, path: Path, state_dir: Path, **options: Any) -> Lab:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read: {exc.strerror}") from None
        return cls(parse_clab(text, str(path)), state_dir, topology_file=path, **options)

    # --- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        key = [self.secrets.host_key]
        netconf_options = server_options(key, encoding=None, allow_pty=False)
        cli_options = server_options(key, encoding="utf-8", allow_pty=True)
        login = self.secrets.login
        speeds = {(i.device, i.name): i.speed_bps or 10**10 for i in self.topology.interfaces}
        for device_model in self.topology.devices:
            name = device_model.name
            ifnames = [i.name for i in self.topology.interfaces if i.device == name]
            device = SimDevice(
                name, interfaces=[], sys_descr=f"oss lab-sim {device_model.kind or ''}".strip()
            )
            for index, ifname in enumerate(ifnames, start=1):
                device.add_interface(ifname, index=index, speed_bps=speeds[(name, ifname)])
            datastores = Datastores(device)
            device.listen(self._on_change)
            self.nodes[name] = LabNode(
                name=name,
                address=self.addresses[name],
                device=device,
                datastores=datastores,
                netconf=NetconfServer(device, datastores, login=login, options=netconf_options),
                cli=CliServer(
                    device,
                    datastores,
                    login=login,
                    options=cli_options,
                    router=functools.partial(self.ping_route, name),
                    address=self.addresses[name],
                ),
                snmp=SnmpAgent(
                    device,
                    datastores,
                    community=self.secrets.community,
                    trap_receivers=self.trap_receivers,
                ),
            )
        for link in self.topology.links:
            lab_link = LabLink(
                a=link.a, b=link.b, up=link.state is LinkState.UP, latency_us=link.latency_us
            )
            self.links.append(lab_link)
            for end in link.ends():
                self._link_at[end] = lab_link

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_files)
        for node in self.nodes.values():
            for ifname, iface in node.device.interfaces.items():
                node.device.set_traffic(ifname, default_rate_bps(iface.speed_bps, iface.index))
        for link in self.links:
            self._sync_link(link)
            for end in link.ends():
                self.nodes[end.device].device.set_impairment(
                    end.interface, latency_us=link.latency_us
                )
        results = await asyncio.gather(
            *(self._start_node(node) for node in self.nodes.values()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            first = failures[0]
            if not isinstance(first, OSError):
                raise first
            hint = ""
            if first.errno == errno.EADDRINUSE:
                hint = (
                    " (a server listening on all addresses, such as sshd on 0.0.0.0:22, holds the"
                    " port on 127.x addresses too: stop it, or use the other port scheme with"
                    " --high-ports)"
                )
            raise LabError(f"the lab cannot start: {first}{hint}") from None

    def _prepare_files(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.gnmi_enabled and not self.gnmi_insecure:
            cert, key = _server_certificate(self.secrets, list(self.addresses.values()))
            self._gnmi_tls = (cert, key, None)
        self.write_client_files()

    async def stop(self) -> None:
        async with asyncio.TaskGroup() as group:
            for node in self.nodes.values():
                group.create_task(self._stop_node(node))
        for node in self.nodes.values():
            node.datastores.close()

    async def _start_node(self, node: LabNode) -> None:
        host = node.address
        try:
            await node.netconf.start(host, self.ports.netconf)
            await node.cli.start(host, self.ports.cli)
            await node.snmp.start(host, self.ports.snmp)
            node.gnmi = await self._start_gnmi(node)
        except OSError as exc:
            raise OSError(exc.errno, f"node {node.name} at {host}: {exc.strerror or exc}") from exc

    async def _start_gnmi(self, node: LabNode) -> _Stoppable | None:
        if not self.gnmi_enabled:
            return None
        login = self.secrets.login
        handle: _Stoppable = await start_gnmi_server(
            node.device,
            node.address,
            self.ports.gnmi,
            tls=self._gnmi_tls,
            auth=(login.username, login.password),
            commit=functools.partial(_commit_via_datastores, node.datastores),
        )
        return handle

    async def _stop_node(self, node: LabNode) -> None:
        await node.netconf.stop()
        await node.cli.stop()
        await node.snmp.stop()
        gnmi, node.gnmi = node.gnmi, None
        if gnmi is not None:
            await gnmi.stop()

    # --- faults --------------------------------------------------------------------------------

    def link_at(self, endpoint: str) -> LabLink:
        try:
            end = Endpoint.parse(endpoint)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        link = self._link_at.get(end)
        if link is None:
            raise InvalidInput(f"no link at {endpoint} in this lab")
        return link

    def node(self, name: str) -> LabNode:
        node = self.nodes.get(name)
        if node is None:
            raise InvalidInput(f"no node {name} in this lab")
        return node

    def set_link(self, endpoint: str, up: bool) -> None:
        link = self.link_at(endpoint)
        link.up = up
        self._sync_link(link)

    def impair(
        self, endpoint: str, *, latency_us: int | None = None, loss: float | None = None
    ) -> None:
        if loss is not None and not 0.0 <= loss <= 1.0:
            raise InvalidInput(f"loss {loss} is not a fraction between 0 and 1")
        if latency_us is not None and latency_us < 0:
            raise InvalidInput("latency cannot be negative")
        link = self.link_at(endpoint)
        if latency_us is not None:
            link.latency_us = latency_us
        if loss is not None:
            link.loss = loss
        for end in link.ends():
            self.nodes[end.device].device.set_impairment(
                end.interface, latency_us=latency_us, loss=loss
            )

    def ping_route(self, source: str, address: str) -> Route | Literal["unreachable"] | None:
        """What a ping from node `source` to `address` (a node's address or its loopback, the
        label oss.loopback) travels: the route over the links that carry light now, with
        their latency and loss (faults included); "unreachable" when no route reaches the
        node, None when no node has the address."""
        destination = self._node_at(address)
        if destination is None:
            return None
        cost = {(str(lk.a), str(lk.b)): lk.latency_us for lk in self.topology.links}
        links = [
            RouteLink(
                a=link.a.device,
                b=link.b.device,
                up=all(self.nodes[e.device].device.oper_up(e.interface) for e in link.ends()),
                cost_us=cost.get((str(link.a), str(link.b)), link.latency_us),
                latency_us=link.latency_us,
                loss=link.loss,
            )
            for link in self.links
        ]
        if not self.nodes[source].up:
            return "unreachable"
        found = route(links, source, destination)
        return found if found is not None else "unreachable"

    def _node_at(self, address: str) -> str | None:
        for device in self.topology.devices:
            if address in (self.addresses.get(device.name), device.loopback):
                return device.name
        return None

    def set_delay(self, name: str, seconds: float) -> None:
        """Hold back every NETCONF, gNMI (unary) and CLI answer of node `name` by `seconds`
        (0 ends the fault; replies already waiting then go at once)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidInput(f"delay {seconds} is not a number of seconds >= 0")
        self.node(name).device.set_reply_delay(seconds)

    async def set_node(self, name: str, up: bool) -> None:
        node = self.node(name)
        if node.up == up:
            return
        node.up = up
        if up:
            node.device.set_node_up(True)  # it rebooted: sysUpTime starts again
            await self._start_node(node)  # SNMP sends coldStart
        else:
            await self._stop_node(node)  # silent first: a dead node sends no traps
            node.device.set_node_up(False)
        for link in self.links:
            if name in (link.a.device, link.b.device):
                self._sync_link(link)

    def _sync_link(self, link: LabLink) -> None:
        """An end receives light when the link and both nodes are up and the far end is
        enabled: shutting one end takes both down, as a laser switched off would."""
        nodes_up = all(self.nodes[e.device].up for e in link.ends())
        for end, far in ((link.a, link.b), (link.b, link.a)):
            far_enabled = self.nodes[far.device].device.admin_up(far.interface)
            receiving = link.up and nodes_up and far_enabled
            self.nodes[end.device].device.set_link_up(end.interface, receiving)

    def _on_change(self, change: Change) -> None:
        if change.kind != "config" or not any("/config/enabled" in p for p in change.paths):
            return
        for link in self.links:
            if change.device in (link.a.device, link.b.device):
                self._sync_link(link)

    # --- files and status ----------------------------------------------------------------------

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.yaml"

    @property
    def known_hosts_file(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def ssh_config_file(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "gnmi-ca.pem"

    def write_client_files(self) -> None:
        """known_hosts, ssh_config and credentials.yaml for clients of this lab."""
        public = self.secrets.host_key.export_public_key().decode().strip()
        hosts: list[str] = []
        for address in self.addresses.values():
            for port in {self.ports.netconf, self.ports.cli}:
                hosts.append(address if port == 22 else f"[{address}]:{port}")
        # One line for every host: paramiko checks each new line against all the lines before
        # it, so a line per node would cost seconds per connection in a lab of hundreds.
        write_private(self.known_hosts_file, f"{','.join(hosts)} {public}\n")
        write_private(
            self.ssh_config_file,
            f"Host {' '.join(self.addresses.values())}\n"
            f"  User {self.secrets.login.username}\n"
            f"  UserKnownHostsFile {self.known_hosts_file}\n"
            "  StrictHostKeyChecking yes\n",
        )
        credentials: dict[str, Any] = {
            "username": self.secrets.login.username,
            "password": self.secrets.login.password,
            "known_hosts": str(self.known_hosts_file),
            "snmp": {"version": "2c", "community": self.secrets.community},
        }
        if self.gnmi_enabled:
            credentials["tls"] = (
                {"insecure": True} if self.gnmi_insecure else {"ca_file": str(self.ca_file)}
            )
        write_private(self.credentials_file, yaml.safe_dump(credentials, sort_keys=False))

    def status(self) -> dict[str, Any]:
        nodes = {}
        for node in self.nodes.values():
            device = node.device
            nodes[node.name] = {
                "address": node.address,
                "up": node.up,
                "reply_delay_s": device.reply_delay_s,
                "snmp_requests": dict(node.snmp.requests_by_source),
                "ports": self.port_map(),
                "interfaces": {
                    ifname: {
                        "ifindex": iface.index,
                        "admin": "up" if device.admin_up(ifname) else "down",
                        "oper": "up" if device.oper_up(ifname) else "down",
                        "latency_us": iface.latency_us,
                        "loss": iface.loss,
                    }
                    for ifname, iface in device.interfaces.items()
                },
            }
        return {
            "name": self.topology.name,
            "topology": str(self.topology_file) if self.topology_file else None,
            "credentials": str(self.credentials_file),
            "known_hosts": str(self.known_hosts_file),
            "ssh_config": str(self.ssh_config_file),
            "ca_file": str(self.ca_file) if self._gnmi_tls is not None else None,
            "gnmi": "off" if not self.gnmi_enabled else "insecure" if self.gnmi_insecure else "tls",
            "nodes": nodes,
            "links": [
                {
                    "a": str(link.a),
                    "b": str(link.b),
                    "up": link.up,
                    "latency_us": link.latency_us,
                    "loss": link.loss,
                }
                for link in self.links
            ],
        }

    def port_map(self) -> dict[str, int | None]:
        ports: dict[str, int | None] = dict(self.ports.as_dict())
        if not self.gnmi_enabled:
            ports["gnmi"] = None
        return ports

    # --- the control channel -------------------------------------------------------------------

    async def control(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        if op == "status":
            return self.status()
        if op == "link":
            self.set_link(str(request.get("endpoint")), _bool(request.get("up")))
            return self.status()["links"]
        if op == "impair":
            latency = request.get("latency_us")
            loss = request.get("loss")
            try:
                latency_us = int(latency) if latency is not None else None
                loss_fraction = float(loss) if loss is not None else None
            except (TypeError, ValueError):
                raise InvalidInput("latency_us must be an integer and loss a number") from None
            self.impair(str(request.get("endpoint")), latency_us=latency_us, loss=loss_fraction)
            return self.status()["links"]
        if op == "node":
            await self.set_node(str(request.get("name")), _bool(request.get("up")))
            return {n: s["up"] for n, s in self.status()["nodes"].items()}
        if op == "delay":
            seconds = request.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise InvalidInput(f"seconds must be a number, got {seconds!r}")
            self.set_delay(str(request.get("name")), float(seconds))
            return {n: s["reply_delay_s"] for n, s in self.status()["nodes"].items()}
        raise InvalidInput(f"unknown control operation {op!r}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidInput(f"expected true or false, got {value!r}")


# --- running a lab as a process ---------------------------------------------------------------


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The running lab's state file, or None when no lab has one here."""
    try:
        data = json.loads(state_file(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise LabError(f"{state_file(state_dir)}: unreadable: {exc}") from None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def serve(
    lab: Lab, on_ready: Callable[[dict[str, Any]], Awaitable[None]] | None = None
) -> None:
    """Run `lab` until SIGTERM/SIGINT or a control `stop`; lab.json says where it is."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def handle(request: dict[str, Any]) -> Any:
        if request.get("op") == "stop":
            stop.set()
            return "stopping"
        return await lab.control(request)

    control = ControlServer(lab.state_dir / CONTROL_SOCKET, handle)
    started = time.monotonic()
    async with lab:
        await control.start()
        try:
            status = lab.status()
            state = {
                "pid": os.getpid(),
                "control": str(control.path),
                "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "start_seconds": round(time.monotonic() - started, 3),
                **{k: v for k, v in status.items() if k not in ("links",)},
                "nodes": {
                    name: {"address": node["address"], "ports": node["ports"]}
                    for name, node in status["nodes"].items()
                },
            }
            write_private(state_file(lab.state_dir), json.dumps(state, indent=2))
            log.info("lab %s is up with %d nodes", lab.topology.name, len(lab.nodes))
            if on_ready is not None:
                await on_ready(state)
            await stop.wait()
        finally:
            await control.stop()
            with contextlib.suppress(FileNotFoundError):
                state_file(lab.state_dir).unlink()
    log.info("lab %s stopped", lab.topology.name)


# --- probing a running lab from outside ------------------------------------------------------


async def _ssh_banner(host: str, port: int, timeout_s: float) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    try:
        banner = await asyncio.wait_for(reader.readline(), timeout_s)
        return banner.startswith(b"SSH-2.0-")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _tcp_open(host: str, port: int, timeout_s: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def snmp_answers(host: str, port: int, community: str, timeout_s: float) -> bool:
    """Whether an SNMPv2c GET of sysUpTime.0 gets a response."""
    from pyasn1.codec.ber import encoder  # type: ignore[import-untyped]

    from lab.sim.snmp_agent import SYS_UPTIME, v2c

    pdu = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, [(SYS_UPTIME, v2c.Null(""))])
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, community)
    v2c.apiMessage.set_pdu(message, pdu)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_OneReply, remote_addr=(host, port))
    try:
        transport.sendto(encoder.encode(message))
        await asyncio.wait_for(protocol.reply, timeout_s)
        return True
    except (OSError, TimeoutError):
        return False
    finally:
        transport.close()


async def probe_node(
    address: str, ports: dict[str, int | None], community: str, *, timeout_s: float = 2.0
) -> dict[str, bool]:
    """Which of a node's services answer: SSH banners, the gNMI port, an SNMP GET."""
    checks: dict[str, Any] = {
        "netconf": _ssh_banner(address, int(ports["netconf"] or 0), timeout_s),
        "cli": _ssh_banner(address, int(ports["cli"] or 0), timeout_s),
        "snmp": snmp_answers(address, int(ports["snmp"] or 0), community, timeout_s),
    }
    if ports.get("gnmi"):
        checks["gnmi"] = _tcp_open(address, int(ports["gnmi"] or 0), timeout_s)
    results = await asyncio.gather(*checks.values())
    return dict(zip(checks, results, strict=True))


def _commit_via_datastores(datastores: Datastores, leaves: Leaves) -> None:
    """gNMI Set results go through the datastores: NETCONF locks and validation hold for them."""
    try:
        datastores.write_running(leaves, who="gNMI")
    except RpcFailure as exc:
        raise SetRejected(rejection_text(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lab.sim.lab FILE --state-dir DIR`: what `oss lab up` runs in the background."""
    parser = argparse.ArgumentParser(prog="python -m lab.sim.lab")
    parser.add_argument("topology", type=Path)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--subnet")
    parser.add_argument("--trap-receiver", action="append", default=[])
    parser.add_argument("--gnmi-insecure", action="store_true")
    parser.add_argument("--no-gnmi", action="store_true")
    parser.add_argument("--high-ports", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one line per connection is noise
    try:
        lab = Lab.from_file(
            args.topology,
            args.state_dir,
            subnet=args.subnet,
            ports=Ports.high() if args.high_ports else None,
            trap_receivers=[parse_receiver(r) for r in args.trap_receiver],
            gnmi=not args.no_gnmi,
            gnmi_insecure=args.gnmi_insecure,
        )
        asyncio.run(serve(lab))
    except InvalidInput as exc:
        log.error("%s", exc)
        return 2
    except OssError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
