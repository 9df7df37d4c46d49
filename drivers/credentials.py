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

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NoReturn, get_args

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from oss.errors import ConfigError, InvalidInput


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


# A credentials file is a few lines; anything bigger is the wrong file (or /dev/zero).
MAX_FILE_BYTES = 64 * 1024

_REASONS = {
    errno.ENOENT: "not found",
    errno.EACCES: "not readable by the daemon (permission denied)",
    errno.EISDIR: "a directory, not a file",
    errno.ELOOP: "a symlink loop",
}


def check_reference(
    ref: str, allowed_dirs: Sequence[Path] | None, where: str = "credentials_ref"
) -> None:
    """Refuse a `file:` reference that is relative or outside `allowed_dirs` (None: anywhere),
    without reading it: the answer must not tell whether some other file exists. `where` names
    the field."""
    scheme, _, location = ref.partition(":")
    if scheme != "file":
        return
    path = Path(location)
    if not path.is_absolute():
        _refuse(where, f"{ref}: a file reference needs an absolute path")
    if allowed_dirs is None:
        return
    real = Path(os.path.realpath(path))  # `..` and symlinks cannot step outside
    if not any(real.is_relative_to(os.path.realpath(d)) for d in allowed_dirs):
        folders = ", ".join(str(d) for d in allowed_dirs) or "none configured"
        _refuse(
            where,
            f"{ref} is outside the allowed credentials folders ({folders}); "
            "see the drivers.credentials_dirs setting",
        )


def _refuse(where: str, reason: str) -> NoReturn:
    raise InvalidInput(f"{where}: {reason}", problems=[{"where": where, "reason": reason}])


def resolve_credentials(
    ref: str | None, *, device: str, allowed_dirs: Sequence[Path] | None = None
) -> Credentials:
    """The credentials a reference names. Every error names the reference and the problem,
    never the source's contents: not its values, not its key names (a secret pasted as a key
    is still a secret, and the file may not be a credentials file at all)."""
    if ref is None:
        return Credentials()
    scheme, _, where = ref.partition(":")
    if scheme == "env":
        text = os.environ.get(where)
        if text is None:
            raise ConfigError(f"device {device}: credentials {ref}: environment variable unset")
        return _parse(text, f"device {device}: credentials {ref}")
    if scheme == "file":
        try:
            check_reference(ref, allowed_dirs, where="credentials")
        except InvalidInput as exc:
            raise ConfigError(f"device {device}: {exc}") from None
        what = f"device {device}: credentials file {where}"
        return _parse(_read_private(Path(where), what), what)
    raise ConfigError(f"device {device}: credentials {ref}: scheme {scheme!r} is not supported")


def _read_private(path: Path, what: str) -> str:
    """The text of a private, regular, small file; ConfigError naming the problem otherwise."""
    try:
        # Non-blocking: opening a FIFO by mistake must not hang the reader.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{what}: not a regular file")
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(f"{what}: readable by group or others; chmod 600 it")
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = _REASONS.get(exc.errno or 0, exc.strerror or "cannot be read")
        raise ConfigError(f"{what}: {reason}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what}: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: not UTF-8 text") from None


def _parse(text: str, what: str) -> Credentials:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        # The text is secret: name where it came from, never what it says.
        raise ConfigError(f"{what}: not valid YAML or JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: not a mapping of credential fields")
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{what}: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """The validation problems without any key or value from the source. A location names
    only this module's own fields: an unknown key is counted under its (known) parent, never
    named; pydantic's messages describe the expected input, not the input."""
    unexpected: dict[str, int] = {}
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden":
            parent = ".".join(loc[:-1])
            unexpected[parent] = unexpected.get(parent, 0) + 1
        else:
            problems.append(f"{'.'.join(loc) or 'the mapping'}: {error['msg']}")
    for parent, count in unexpected.items():
        fields = _known_fields(parent)
        where = f"{parent}: " if parent else ""
        plural = "s" if count > 1 else ""
        problems.append(f"{where}{count} unexpected field{plural} (known fields: {fields})")
    return "; ".join(problems)


def _known_fields(parent: str) -> str:
    model: type[BaseModel] = Credentials
    for part in filter(None, parent.split(".")):
        annotation = model.model_fields[part].annotation
        model = next(
            a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
        )
    return ", ".join(model.model_fields)
