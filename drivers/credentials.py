"""Device credentials, resolved from a device's `credentials_ref` at connect time.

A reference names where the secret lives, never the secret:
- `env:NAME`   the environment variable NAME holds a YAML/JSON mapping (below);
- `file:/path` a YAML file with that mapping (refused if group/other can read it);
- `vault:...`  reserved; refused with a clear error until a vault backend exists.

The mapping: `username`, `password`, `private_key_file`, `known_hosts`, `host_key` (a pinned
"ssh-ed25519 AAAA..." line), `snmp: {version, community, user, auth_protocol, auth_key,
priv_protocol, priv_key}`, `tls: {ca_file, cert_file, key_file, server_name, insecure}`.
Secrets are `SecretStr`: they never print, log or serialise by accident.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from oss.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SnmpCredentials(_Strict):
    version: Literal["2c", "3"] = "2c"
    community: SecretStr | None = None
    user: str | None = None
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] | None = None
    auth_key: SecretStr | None = None
    priv_protocol: Literal["DES", "AES", "AES192", "AES256"] | None = None
    priv_key: SecretStr | None = None


class TlsSettings(_Strict):
    ca_file: Path | None = None
    cert_file: Path | None = None  # client certificate, for mTLS
    key_file: Path | None = None
    server_name: str | None = None  # override the name checked in the server certificate
    insecure: bool = False  # plaintext gRPC: only when set explicitly


class Credentials(_Strict):
    username: str | None = None
    password: SecretStr | None = None
    private_key_file: Path | None = None
    known_hosts: Path | None = None  # default: ~/.ssh/known_hosts
    host_key: str | None = None  # a pinned public key; overrides known_hosts
    snmp: SnmpCredentials | None = None
    tls: TlsSettings | None = None


def resolve_credentials(ref: str | None, *, device: str) -> Credentials:
    if ref is None:
        return Credentials()
    scheme, _, where = ref.partition(":")
    if scheme == "env":
        text = os.environ.get(where)
        if text is None:
            raise ConfigError(f"device {device}: credentials {ref}: environment variable unset")
        return _parse(text, f"credentials {ref} of device {device}")
    if scheme == "file":
        path = Path(where)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"device {device}: credentials {ref}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"device {device}: credentials {ref}: readable by group or others; chmod 600 it"
            )
        return _parse(text, f"credentials {ref} of device {device}")
    raise ConfigError(f"device {device}: credentials {ref}: scheme {scheme!r} is not supported")


def _parse(text: str, what: str) -> Credentials:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        # The text is secret: name where it came from, never what it says.
        raise ConfigError(f"{what}: not valid YAML or JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a mapping of keys")
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{what}: {problems}") from None
