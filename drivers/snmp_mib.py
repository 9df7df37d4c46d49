"""A small built-in table of numeric OIDs: the SNMPv2-MIB system group, IF-MIB's ifTable and
ifXTable, and the standard notifications.

Debian packages no IETF MIB files, and loading MIBs costs time on every start, so the drivers
speak numeric OIDs and name them with this table (longest-prefix match: "ifHCInOctets.3").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

SYSTEM = "1.3.6.1.2.1.1"
IF_TABLE_ENTRY = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE_ENTRY = "1.3.6.1.2.1.31.1.1.1"
IF_TABLE = "1.3.6.1.2.1.2.2"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
SNMP_TRAPS = "1.3.6.1.6.3.1.1.5"

_SYSTEM_COLUMNS = {
    "sysDescr": 1,
    "sysObjectID": 2,
    "sysUpTime": 3,
    "sysContact": 4,
    "sysName": 5,
    "sysLocation": 6,
    "sysServices": 7,
    "sysORLastChange": 8,
}

_IF_TABLE_COLUMNS = {
    "ifIndex": 1,
    "ifDescr": 2,
    "ifType": 3,
    "ifMtu": 4,
    "ifSpeed": 5,
    "ifPhysAddress": 6,
    "ifAdminStatus": 7,
    "ifOperStatus": 8,
    "ifLastChange": 9,
    "ifInOctets": 10,
    "ifInUcastPkts": 11,
    "ifInNUcastPkts": 12,
    "ifInDiscards": 13,
    "ifInErrors": 14,
    "ifInUnknownProtos": 15,
    "ifOutOctets": 16,
    "ifOutUcastPkts": 17,
    "ifOutNUcastPkts": 18,
    "ifOutDiscards": 19,
    "ifOutErrors": 20,
    "ifOutQLen": 21,
    "ifSpecific": 22,
}

_IF_X_TABLE_COLUMNS = {
    "ifName": 1,
    "ifInMulticastPkts": 2,
    "ifInBroadcastPkts": 3,
    "ifOutMulticastPkts": 4,
    "ifOutBroadcastPkts": 5,
    "ifHCInOctets": 6,
    "ifHCInUcastPkts": 7,
    "ifHCInMulticastPkts": 8,
    "ifHCInBroadcastPkts": 9,
    "ifHCOutOctets": 10,
    "ifHCOutUcastPkts": 11,
    "ifHCOutMulticastPkts": 12,
    "ifHCOutBroadcastPkts": 13,
    "ifLinkUpDownTrapEnable": 14,
    "ifHighSpeed": 15,
    "ifPromiscuousMode": 16,
    "ifConnectorPresent": 17,
    "ifAlias": 18,
    "ifCounterDiscontinuityTime": 19,
}

NOTIFICATIONS: Mapping[str, str] = MappingProxyType(
    {
        "coldStart": f"{SNMP_TRAPS}.1",
        "warmStart": f"{SNMP_TRAPS}.2",
        "linkDown": f"{SNMP_TRAPS}.3",
        "linkUp": f"{SNMP_TRAPS}.4",
        "authenticationFailure": f"{SNMP_TRAPS}.5",
    }
)


def _build() -> dict[str, str]:
    names: dict[str, str] = {
        "system": SYSTEM,
        "ifNumber": "1.3.6.1.2.1.2.1",
        "ifTable": IF_TABLE,
        "ifEntry": IF_TABLE_ENTRY,
        "ifXTable": IF_X_TABLE,
        "ifXEntry": IF_X_TABLE_ENTRY,
        # SNMPv2-MIB notification varbinds (RFC 3416 section 4.2.6)
        "snmpTrapOID": "1.3.6.1.6.3.1.1.4.1",
        "snmpTrapEnterprise": "1.3.6.1.6.3.1.1.4.3",
        "snmpTrapAddress": "1.3.6.1.6.3.18.1.3",  # SNMP-COMMUNITY-MIB, set by v1->v2 proxies
        "snmpTrapCommunity": "1.3.6.1.6.3.18.1.4",
        "snmpEngineID": "1.3.6.1.6.3.10.2.1.1",
        "snmpEngineBoots": "1.3.6.1.6.3.10.2.1.2",
        "snmpEngineTime": "1.3.6.1.6.3.10.2.1.3",
    }
    names.update({k: f"{SYSTEM}.{v}" for k, v in _SYSTEM_COLUMNS.items()})
    names.update({k: f"{IF_TABLE_ENTRY}.{v}" for k, v in _IF_TABLE_COLUMNS.items()})
    names.update({k: f"{IF_X_TABLE_ENTRY}.{v}" for k, v in _IF_X_TABLE_COLUMNS.items()})
    names.update(NOTIFICATIONS)
    return names


OIDS: Mapping[str, str] = MappingProxyType(_build())
NAMES: Mapping[str, str] = MappingProxyType({oid: name for name, oid in OIDS.items()})

# Scalars: the instance is ".0"; `oid("sysName.0")` and `oid("sysName")` both work for them.
SNMP_TRAP_OID_0 = f"{OIDS['snmpTrapOID']}.0"
SYS_UPTIME_0 = f"{OIDS['sysUpTime']}.0"

IF_STATUS: Mapping[int, str] = MappingProxyType(
    {
        1: "up",
        2: "down",
        3: "testing",
        4: "unknown",
        5: "dormant",
        6: "notPresent",
        7: "lowerLayerDown",
    }
)


def normalize(oid: str) -> str:
    """Strip a leading dot and surrounding blanks: ".1.3.6" -> "1.3.6"."""
    return oid.strip().lstrip(".")


def oid(name_or_oid: str) -> str:
    """The numeric OID of "ifHCInOctets", "ifHCInOctets.3", "sysName.0" or "1.3.6..."."""
    text = normalize(name_or_oid)
    if not text:
        raise ValueError("empty OID")
    if text[0].isdigit():
        _check_numeric(text)
        return text
    name, dot, rest = text.partition(".")
    try:
        base = OIDS[name]
    except KeyError:
        raise ValueError(f"unknown OID name {name!r} (the built-in table is small)") from None
    if dot:
        _check_numeric(rest)
        return f"{base}.{rest}"
    return base


def _check_numeric(text: str) -> None:
    if not all(part.isdigit() for part in text.split(".")):
        raise ValueError(f"not a numeric OID: {text!r}")


def name_of(numeric: str) -> str:
    """The symbolic name of an OID by longest-prefix match: "1.3.6.1.2.1.31.1.1.1.6.3" ->
    "ifHCInOctets.3"; an OID the table does not know is returned numeric."""
    text = normalize(numeric)
    probe = text
    while probe:
        name = NAMES.get(probe)
        if name is not None:
            suffix = text[len(probe) :]
            return name + suffix
        probe, _, _ = probe.rpartition(".")
    return text


def split_column(numeric: str) -> tuple[str, str] | None:
    """("ifHCInOctets", "3") for a known column instance, else None. The index may be
    several sub-identifiers long (it is everything after the column's OID)."""
    named = name_of(numeric)
    if named[0].isdigit():
        return None
    name, _, index = named.partition(".")
    return (name, index) if index else None


def in_subtree(numeric: str, root: str) -> bool:
    return numeric == root or numeric.startswith(root + ".")
