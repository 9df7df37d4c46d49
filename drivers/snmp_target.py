"""What an SNMP session of one target is: its settings (`PollSettings`, read from a `Target`)
and the value types. Its own module so that both read backends (pysnmp in `drivers.snmp`,
gufo-snmp in `drivers.snmp_fast`) import it, and `drivers.snmp` imports the fast backend at the
top: no cycle between them."""

from __future__ import annotations

from typing import Literal

from drivers.base import Target
from drivers.credentials import SnmpCredentials
from oss.errors import ConfigError

PROTOCOL = "snmp"

SnmpValue = int | float | str | bytes | None
Varbind = tuple[str, SnmpValue]
KeyExpansion = Literal["blumenthal", "reeder"]


# --- settings of one target ------------------------------------------------------------------


class PollSettings:
    """What a session needs from a Target: address, credentials and the knobs in `options`
    (`max_repetitions`, `retries`, `request_timeout_s`, `aes_key_expansion`)."""

    def __init__(self, target: Target, *, max_repetitions: int, retries: int) -> None:
        snmp = target.credentials.snmp
        if snmp is None:
            raise ConfigError(f"device {target.name}: no SNMP credentials (credentials.snmp)")
        if snmp.version == "2c" and snmp.community is None:
            raise ConfigError(f"device {target.name}: SNMP v2c needs a community")
        if snmp.version == "3" and not snmp.user:
            raise ConfigError(f"device {target.name}: SNMP v3 needs a user")
        if snmp.priv_protocol and not snmp.auth_protocol:
            raise ConfigError(f"device {target.name}: SNMP v3 privacy needs authentication")
        if (snmp.auth_protocol is None) != (snmp.auth_key is None) or (
            snmp.priv_protocol is None
        ) != (snmp.priv_key is None):
            raise ConfigError(
                f"device {target.name}: SNMP v3 protocols and keys must be given together"
            )
        options = target.options
        self.device = target.name
        self.host = target.host
        self.port = target.port
        self.snmp: SnmpCredentials = snmp
        self.call_timeout_s = float(target.timeout_s)
        self.max_repetitions = int(options.get("max_repetitions", max_repetitions))
        self.retries = int(options.get("retries", retries))
        # A lost datagram should cost seconds, not the whole call: cap each attempt.
        default_request = min(5.0, max(0.05, self.call_timeout_s / (self.retries + 1)))
        self.request_timeout_s = float(options.get("request_timeout_s", default_request))
        expansion = str(options.get("aes_key_expansion", "blumenthal"))
        if expansion not in ("blumenthal", "reeder"):
            raise ConfigError(
                f"device {target.name}: aes_key_expansion must be blumenthal or reeder"
            )
        self.key_expansion: KeyExpansion = "reeder" if expansion == "reeder" else "blumenthal"
