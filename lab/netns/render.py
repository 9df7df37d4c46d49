"""A node's configuration files, rendered from its profile's templates.

Everything a template needs is in one context (`node_context`): the node (name, loopback,
management address, AS number), its data-plane interfaces with their far ends and IGP cost,
the BGP sessions the topology asks for, the lab's management gateway and trap port, the SNMP
community and the paths of the node's sockets and files under `run_dir/<node>/`.

- IGP cost: the link's `ospf-cost` var (also used as the IS-IS metric), else the reference
  bandwidth 100G over the link's `capacity` (100G -> 1, 10G -> 10, 1G -> 100), else 10.
- BGP (a node with an `oss.bgp-asn` label runs bgpd with `router bgp <asn>`, its loopback as
  router-id, the loopback announced): sessions only where a link's `bgp` var asks: `bgp: ebgp`
  peers the two ends over the link's addresses (different AS numbers), `bgp: ibgp` peers them
  over their loopbacks, reached through the IGP (same AS number). Services add their own
  sessions (the `bgp-peering` service).
- IS-IS: area 49.0001, the system id spelled from the loopback (10.255.0.1 -> 0102.5500.0001).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from lab.netns.plan import LabPlan, LinkPlan, NodePlan
from lab.netns.profiles import DaemonSpec, Profile, templates_dir
from oss.errors import InvalidInput
from topology.units import parse_rate

REFERENCE_BPS = 100 * 10**9  # the IGP's reference bandwidth: a 100G link costs 1
DEFAULT_COST = 10
MAX_COST = 65535  # OSPF's interface cost is 16 bits
ISIS_AREA = "49.0001"
SOCKET_PATH_MAX = 107
# FRR's daemons run with the node's frr/ directory bind-mounted here (their compiled-in run
# directory, which user frr can reach wherever run_dir lives): their paths are spelled in it.
FRR_VIEW = Path("/run/frr")  # sun_path holds 108 bytes with its NUL


@dataclass(frozen=True)
class NodePaths:
    """Where a node's files live: run_dir/<node>/{frr,snmp,lldp,ssh}."""

    root: Path

    @property
    def frr(self) -> Path:  # configs, vty sockets, pid files, zserv.api, logs: FRR's /run/frr
        return self.root / "frr"

    @property
    def snmp(self) -> Path:
        return self.root / "snmp"

    @property
    def lldp(self) -> Path:
        return self.root / "lldp"

    @property
    def ssh(self) -> Path:
        return self.root / "ssh"

    @property
    def agentx(self) -> Path:  # in frr/: FRR's daemons (user frr) see it as /run/frr/agentx.sock
        return self.frr / "agentx.sock"

    @property
    def lldpd_socket(self) -> Path:
        return self.lldp / "lldpd.sock"

    @property
    def zserv(self) -> Path:
        return self.frr / "zserv.api"

    @property
    def vtysh_shell(self) -> Path:
        return self.ssh / "vtysh-shell"

    def sockets(self) -> tuple[Path, ...]:
        return (self.agentx, self.lldpd_socket, self.zserv, self.frr / "zebra.vty")

    def as_dict(self) -> dict[str, str]:
        names = ("root", "frr", "snmp", "lldp", "ssh", "agentx", "lldpd_socket", "zserv")
        return {name: str(getattr(self, name)) for name in names}


def node_paths(run_dir: Path, node: NodePlan) -> NodePaths:
    paths = NodePaths(run_dir.absolute() / node.name)
    for socket in paths.sockets():
        if len(str(socket)) > SOCKET_PATH_MAX:
            raise InvalidInput(
                f"node {node.name}: the socket path {socket} is longer than Unix sockets allow "
                f"({SOCKET_PATH_MAX} bytes): use a shorter state directory"
            )
    return paths


def link_cost(link: LinkPlan) -> int:
    """The IGP cost of a link: its `ospf-cost` var, else derived from its capacity."""
    written = link.vars.get("ospf-cost")
    if written is not None:
        if not str(written).isdigit() or not 1 <= int(written) <= MAX_COST:
            raise InvalidInput(
                f"link {link.a} -- {link.b}: ospf-cost '{written}' is not 1..{MAX_COST}"
            )
        return int(written)
    capacity = link.vars.get("capacity")
    if capacity is None:
        return DEFAULT_COST
    try:
        bps = parse_rate(capacity)
    except ValueError as exc:
        raise InvalidInput(f"link {link.a} -- {link.b}: capacity: {exc}") from None
    return max(1, min(MAX_COST, round(REFERENCE_BPS / bps))) if bps > 0 else DEFAULT_COST


def isis_net(loopback: str) -> str:
    """49.0001.0102.5500.0001.00 for 10.255.0.1: the address's digits, zero-padded, as the id."""
    digits = "".join(f"{int(octet):03d}" for octet in loopback.split("."))
    system_id = ".".join(digits[i : i + 4] for i in range(0, 12, 4))
    return f"{ISIS_AREA}.{system_id}.00"


def _address(cidr: str) -> str:
    return str(ipaddress.IPv4Interface(cidr).ip)


def _interfaces(lab: LabPlan, node: NodePlan) -> list[dict[str, Any]]:
    rows = []
    for interface in node.interfaces:
        link = lab.link(f"{node.name}:{interface.name}")
        far = link.far_end(f"{node.name}:{interface.name}")
        far_node, _, far_if = far.partition(":")
        far_address = lab.node(far_node).interface(far_if).address
        rows.append(
            {
                "name": interface.name,
                "address": interface.address,
                "ip": _address(interface.address),
                "cost": link_cost(link),
                "peer": far,
                "peer_node": far_node,
                "peer_interface": far_if,
                "peer_ip": _address(far_address),
                "vars": dict(link.vars),
            }
        )
    return rows


def bgp_kind(lab: LabPlan, link: LinkPlan) -> str | None:
    """The session a link's `bgp` var asks for ("ebgp", "ibgp"), None without one;
    InvalidInput naming the link when the var or its ends' AS numbers do not fit."""
    written = link.vars.get("bgp")
    if written is None or not str(written).strip():
        return None
    kind = str(written).strip().lower()
    where = f"link {link.a} -- {link.b}"
    if kind not in ("ebgp", "ibgp"):
        raise InvalidInput(f"{where}: bgp '{kind}' is not ebgp or ibgp")
    (a, _), (b, _) = link.ends()
    asns = {name: lab.node(name).asn for name in (a, b)}
    missing = [name for name, asn in asns.items() if asn is None]
    if missing:
        raise InvalidInput(f"{where}: bgp {kind} needs an oss.bgp-asn label on {missing[0]}")
    if (kind == "ebgp") == (asns[a] == asns[b]):
        same = "the same" if asns[a] == asns[b] else "different"
        raise InvalidInput(f"{where}: bgp {kind} between {same} AS numbers")
    return kind


def link_problem(lab: LabPlan, link: LinkPlan) -> str | None:
    """What is wrong with a link's vars for the node software (its IGP cost, its `bgp`)."""
    try:
        link_cost(link)
        bgp_kind(lab, link)
    except InvalidInput as exc:
        return str(exc)
    return None


def _bgp_neighbors(lab: LabPlan, node: NodePlan) -> list[dict[str, Any]]:
    if node.asn is None:
        return []
    neighbors = []
    for row in _interfaces(lab, node):
        kind = bgp_kind(lab, lab.link(f"{node.name}:{row['name']}"))
        if kind is None:
            continue
        far = lab.node(row["peer_node"])
        neighbors.append(
            {
                "kind": kind,
                "address": row["peer_ip"] if kind == "ebgp" else far.loopback,
                "remote_as": far.asn,
                "description": far.name,
                "update_source": None if kind == "ebgp" else "lo",
            }
        )
    return neighbors


def node_context(
    lab: LabPlan,
    node: NodePlan,
    profile: Profile,
    paths: NodePaths,
    *,
    community: str,
    ssh_user: str,
    trap_port: int,
    frr_user: str,
    iquery_user: str = "oss-internal",
) -> dict[str, Any]:
    """What every template of the node sees."""
    mgmt = ipaddress.IPv4Network(lab.mgmt_subnet)
    return {
        "lab": {
            "name": lab.name,
            "mgmt_gateway": lab.mgmt_gateway,
            "mgmt_subnet": lab.mgmt_subnet,
            "mgmt_prefixlen": mgmt.prefixlen,
        },
        "node": {
            "name": node.name,
            "loopback": node.loopback,
            "mgmt_address": node.mgmt_address,
            "asn": node.asn,
            "labels": dict(node.labels),
            "site": node.labels.get("oss.site", ""),
            "role": node.labels.get("oss.role", ""),
        },
        "profile": {"name": profile.name, "description": profile.description},
        "interfaces": _interfaces(lab, node),
        "bgp_neighbors": _bgp_neighbors(lab, node),
        "isis_net": isis_net(node.loopback),
        "community": community,
        "ssh_user": ssh_user,
        "trap_port": trap_port,
        "frr_user": frr_user,
        "frr_dir": str(FRR_VIEW),  # run_dir/<node>/frr as FRR's daemons see it
        "iquery_user": iquery_user,  # snmpd's own SNMPv3 user for its event monitors
        "paths": paths.as_dict(),
    }


def environment(folder: Path | None = None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir(folder))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # configuration files, not HTML
    )


# Where each launcher's configuration file goes, under run_dir/<node>/.
CONFIG_FILES = {
    "snmpd": "snmp/snmpd.conf",
    "lldpd": "lldp/lldpd.conf",
    "sshd": "ssh/sshd_config",
}
VTYSH_CONF = "frr/vtysh.conf"


def config_file(spec: DaemonSpec) -> str:
    """The daemon's configuration file, relative to run_dir/<node>/."""
    return f"frr/{spec.name}.conf" if spec.run == "frr" else CONFIG_FILES[spec.run]


def render_configs(
    profile: Profile, daemons: tuple[DaemonSpec, ...], context: dict[str, Any]
) -> dict[str, str]:
    """Every configuration file of the node's daemons (relative path -> text), and vtysh's
    when it runs FRR."""
    env = environment(profile.path.parent)
    files = {config_file(spec): render(env, spec.config, context) for spec in daemons}
    if any(spec.run == "frr" for spec in daemons):
        files[VTYSH_CONF] = render(env, "vtysh.conf.j2", context)
    return files


def render(env: jinja2.Environment, template: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(template).render(context)
    except jinja2.TemplateError as exc:
        raise InvalidInput(f"template {template}: {exc}") from None
