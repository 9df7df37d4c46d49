"""`oss serve` as a real subprocess on a free loopback port, and the `oss` CLI against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.peers.ports import free_port

OSS = str(Path(sys.executable).parent / "oss")


@dataclass
class Daemon:
    state_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> Daemon:
        self.proc = subprocess.Popen(
            [
                OSS,
                "serve",
                "--state-dir",
                str(self.state_dir),
                "--port",
                str(self.port),
                *self.extra_args,
            ],
            env={**os.environ, "OSS_CLI_CONFIG": str(self.state_dir / "cli.yaml"), **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()  # never leave a half-started daemon behind
                raise
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        # A bound, not a measure: beside make test's other workers a start takes a few times
        # its quiet seconds (as in tests/peers/cluster.py).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise RuntimeError(f"oss serve exited with {self.proc.returncode}:\n{err}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"oss serve not ready on {self.url} after {timeout}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str]:
        """Signal the daemon; returns its exit code and what it logged."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def cli(
        self, *args: str, token: str | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "OSS_URL": self.url,
            "OSS_CLI_CONFIG": str(self.state_dir / "cli.yaml"),
            "COLUMNS": "200",
            **self.env,
        }
        if token or self.token:
            env["OSS_TOKEN"] = token or self.token or ""
        return subprocess.run(
            [OSS, *args], env=env, capture_output=True, text=True, timeout=60, input=input
        )

    def cli_json(self, *args: str) -> Any:
        result = self.cli("-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def create_token(self, role: str) -> str:
        result = self.cli(
            "token",
            "create",
            "--role",
            role,
            "--name",
            f"t-{role}",
            "--state-dir",
            str(self.state_dir),
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
