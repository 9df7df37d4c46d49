"""Credential references through the API of a real `oss serve` (issue 14, defect 7): a `file:`
reference outside `drivers.credentials_dirs` is refused with 422 naming the allowed folders, and
neither the API nor the daemon's log ever shows what a referenced file holds: not a secret
pasted as a key, not the key names of some other program's file."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.peers.daemon import Daemon

pytestmark = pytest.mark.integration

CANARY = "CANARY-5d1e0b"
# What `file:/root/.config/oss/cli.yaml` held in the report: another program's settings.
CLI_CONFIG = f"url: http://127.0.0.1:8080\ntoken: {CANARY}-token\n"
# A credentials file with a secret pasted as a key by mistake, at the top and under snmp.
MISTYPED = f"username: oss\n{CANARY}-top: 1\nsnmp: {{version: '2c', {CANARY}-snmp: 2}}\n"


class LoggedDaemon:
    """The daemon with its log read as it runs, to wait for a line."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.lines: list[str] = []
        self._changed = threading.Condition()
        assert daemon.proc is not None and daemon.proc.stderr is not None
        stream = daemon.proc.stderr
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, text: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = [line for line in self.lines if text in line]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0, f"no log line with {text!r}:\n{''.join(self.lines)}"
                self._changed.wait(left)

    def stop(self) -> str:
        proc = self.daemon.proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        self._reader.join(timeout=10)
        return "".join(self.lines)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(allowed, outside): each holds both files, mode 0600."""
    allowed, outside = tmp_path / "credentials", tmp_path / "elsewhere"
    for folder in (allowed, outside):
        folder.mkdir()
        for name, text in (("cli.yaml", CLI_CONFIG), ("mistyped.yaml", MISTYPED)):
            (folder / name).write_text(text)
            os.chmod(folder / name, 0o600)
    return allowed, outside


@pytest.fixture
def daemon(tmp_path: Path, folders: tuple[Path, Path]) -> Iterator[LoggedDaemon]:
    allowed, _ = folders
    env = {
        "OSS_DRIVERS__CREDENTIALS_DIRS": json.dumps([str(allowed), "/etc/oss/credentials"]),
        "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "OSS_ASSURANCE__REFRESH_S": "0.2",  # the collector reads new devices' credentials soon
    }
    server = Daemon(tmp_path / "state", env=env).start()
    try:
        server.token = server.create_token("operator")
        yield LoggedDaemon(server)
    finally:
        server.kill()


def leaks(text: str) -> list[str]:
    return [word for word in (CANARY, "token", "url:", "8080") if word in text]


def test_refs_outside_the_allowed_folders_are_refused_and_nothing_leaks(
    daemon: LoggedDaemon, folders: tuple[Path, Path]
) -> None:
    allowed, outside = folders
    api = httpx.Client(
        base_url=daemon.daemon.url, headers={"Authorization": f"Bearer {daemon.daemon.token}"}
    )
    # outside: refused at create and at update, unread, naming the allowed folders
    for name in ("cli.yaml", "mistyped.yaml", "absent.yaml"):
        ref = f"file:{outside / name}"
        created = api.post("/api/v1/devices", json={"name": "r1", "credentials_ref": ref})
        assert created.status_code == 422, created.text
        assert created.headers["content-type"] == "application/problem+json"
        detail = created.json()["detail"]
        assert detail.startswith(f"credentials_ref: {ref} is outside the allowed")
        assert f"({allowed}, /etc/oss/credentials)" in detail
        assert not leaks(created.text) and "not found" not in created.text
    assert api.post("/api/v1/devices", json={"name": "r1"}).status_code == 201
    ref = f"file:{outside / 'cli.yaml'}"
    patched = api.patch("/api/v1/devices/r1", json={"credentials_ref": ref})
    assert patched.status_code == 422 and not leaks(patched.text), patched.text
    assert api.get("/api/v1/devices/r1").json()["credentials_ref"] is None  # nothing written
    clab = (
        "name: t\ntopology:\n  nodes:\n    r9:\n      kind: linux\n"
        f"      labels: {{oss.credentials-ref: 'file:{outside / 'cli.yaml'}'}}\n"
    )
    imported = api.post("/api/v1/topology/import?filename=t.clab.yml", content=clab)
    assert imported.status_code == 422 and not leaks(imported.text), imported.text
    assert imported.json()["detail"].startswith("t.clab.yml: node r9: oss.credentials-ref: ")
    assert api.get("/api/v1/devices/r9").status_code == 404

    # inside: stored (a reference, not a secret); the collector's refusal names file and problem
    for device, (name, problem) in {
        "r2": ("mistyped.yaml", "1 unexpected field (known fields: username"),
        "r3": ("cli.yaml", "2 unexpected fields (known fields: username"),
    }.items():
        body = {
            "name": device,
            "mgmt_address": "127.0.0.1",
            "credentials_ref": f"file:{allowed / name}",
        }
        created = api.post("/api/v1/devices", json=body)
        assert created.status_code == 201 and not leaks(created.text), created.text
        line = daemon.wait_for(f"not collecting from {device}")
        assert f"credentials file {allowed / name}: " in line and problem in line
        assert not leaks(line), line
    assert "snmp: 1 unexpected field" in daemon.wait_for("not collecting from r2")

    log = daemon.stop()
    assert CANARY not in log
    assert all(not leaks(line) for line in log.splitlines() if "credentials" in line)
